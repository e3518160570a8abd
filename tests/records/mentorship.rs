//! Mentorship and CPD (issue 7), on both backends: a seeded quarter of contracts, logs
//! and flagged cases whose summary matches figures worked out by hand; logging a flagged
//! case clears its flag in the same transaction; who may log and who sees which logs;
//! bad input refused with stable codes and nothing written; a trainee's attendance record
//! and certificate carry no patient identifiers; the backlog with its cases and the
//! names-only people directory, each shown only to those who may see it.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use mdt_coordinator::domain::live::{EventBody, NewLiveEvent};
use mdt_coordinator::domain::mentorship::{clinic_date, MentorshipKind, MentorshipLog};
use mdt_coordinator::domain::{NewAuditEvent, Role, Specialty, UserId};

use crate::common::clinic::{referral, Account, Clinic, Plan};
use crate::common::Backend;

const NHS: [&str; 3] = ["9434765919", "9912003888", "9449305552"];
const GIVEN: &str = "Hermione";
const FAMILY: &str = "Quibble";
const DOB: &str = "1978-05-17";

/// An IPASS-like service: spinal, with pain as the other specialty. Its chair (Dr Sam
/// Spine) and second consultant (Dr Nia Newton, who joins mid-quarter) are spinal, its
/// other chair (Dr Pat Payne) pain; Ellis Physio is the spinal ESP, Pip Physio the pain
/// one.
async fn service(backend: Backend) -> Clinic {
    Clinic::of(backend, "spinal", "pain", |_| {}).await
}

impl Clinic {
    async fn contract(
        &self, who: &Account, arm: &str, mpw: i64, wpy: i64, starts: &str, ends: Option<&str>,
    ) -> String {
        let (status, body) = self
            .app
            .post(
                &self.coordinator.token,
                "/api/mentorship/contracts",
                json!({ "consultant_id": who.id, "specialty": arm, "minutes_per_week": mpw,
                        "weeks_per_year": wpy, "starts_on": starts, "ends_on": ends }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// Logs mentorship as `who`; returns the response body. (The arguments are the log's
    /// fields, in the order the tables below read best.)
    #[allow(clippy::too_many_arguments)]
    async fn log(
        &self, who: &Account, on: &str, minutes: i64, kind: &str, mentees: &[&Account],
        cases: &[&str], arm: Option<&str>,
    ) -> Value {
        let (status, body) = self
            .app
            .post(
                &who.token,
                "/api/mentorship/logs",
                log_body(who, on, minutes, kind, mentees, cases, arm),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Flags a case as if on `day` (through the store, which takes the clock as an
    /// argument, so a past quarter can be seeded).
    async fn flag_on(&self, case: &str, by: &Account, day: &str) {
        let at: DateTime<Utc> = format!("{day}T10:00:00Z").parse().unwrap();
        let (_, created) = self
            .app
            .state
            .store
            .flag_for_mentorship(
                case.parse().unwrap(),
                by.uid(),
                NewAuditEvent::new("case_flagged_for_mentorship", "case").actor(by.uid()),
                at,
            )
            .await
            .unwrap();
        assert!(created);
    }

    async fn log_count(&self) -> usize {
        let (status, body) = self.app.get(&self.coordinator.token, "/api/mentorship/logs").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body.as_array().unwrap().len()
    }
}

fn log_body(
    who: &Account, on: &str, minutes: i64, kind: &str, mentees: &[&Account], cases: &[&str],
    arm: Option<&str>,
) -> Value {
    json!({
        "consultant_id": who.id,
        "mentee_ids": mentees.iter().map(|m| m.id.clone()).collect::<Vec<_>>(),
        "occurred_on": on, "duration_minutes": minutes, "kind": kind,
        "case_ids": cases, "learning_points": ["Check the STarT Back score before imaging"],
        "specialty": arm,
    })
}

/// The payload must not carry any patient identifier.
fn assert_no_identifiers(text: &str) {
    for secret in NHS.iter().copied().chain([GIVEN, FAMILY, DOB, "A81001"]) {
        assert!(!text.contains(secret), "payload leaks {secret}: {text}");
    }
}

fn row<'a>(summary: &'a Value, contract: &str) -> &'a Value {
    summary
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["contract_id"] == contract)
        .unwrap_or_else(|| panic!("no summary row for {contract}: {summary}"))
}

/// The seeded quarter: 1 April – 30 June 2025, 91 days (30 + 31 + 30), i.e. 13 weeks.
const FROM: &str = "2025-04-01";
const TO: &str = "2025-06-30";

async fn summary_of_a_seeded_quarter_matches_hand_computed_figures(backend: Backend) {
    let s = service(backend).await;
    // Contracts. Contracted minutes = minutes/week × weeks/year × days in window / 364.
    // Spinal, 60 min/week, 52 weeks, running all quarter: 60 × 52 × 91 / 364 = 780.
    let c_spine = s.contract(&s.chair, "spinal", 60, 52, "2025-01-01", None).await;
    // Pain, 60 min/week, 42 weeks (pain mentoring pauses 10 weeks a year), all quarter:
    // 60 × 42 × 91 / 364 = 630.
    let c_pain = s.contract(&s.other_chair, "pain", 60, 42, "2025-01-01", Some("2025-12-31")).await;
    // Spinal, 90 min/week, 52 weeks, starting 16 June: 15 days of the quarter
    // (16–30 June): 90 × 52 × 15 / 364 = 192.86, rounded to 193.
    let c_spine2 = s.contract(&s.second_consultant, "spinal", 90, 52, "2025-06-16", None).await;

    // Cases (booked into future sessions; their flags are seeded on past days).
    let spinal_session = s.session(7, 6, false).await;
    let pain_session = s.create_session(Plan { capacity: 6, ..s.other_plan(7) }).await;
    let a = s.book_case(&s.physio, &spinal_session, referral(NHS[0])).await;
    let b = s.book_case(&s.physio, &spinal_session, referral(NHS[1])).await;
    let c = s.book_case(&s.physio, &spinal_session, referral(NHS[2])).await;
    let spinal_session2 = s.session(14, 6, false).await;
    let d = s.book_case(&s.physio, &spinal_session2, referral(NHS[0])).await;
    let e = s.book_case(&s.physio, &spinal_session2, referral(NHS[1])).await;
    let p = s.book_case(&s.other_physio, &pain_session, referral(NHS[2])).await;
    s.flag_on(&a, &s.physio, "2025-04-02").await; // discussed on 7 April: off the backlog
    s.flag_on(&b, &s.physio, "2025-04-10").await; // open on 30 June: 20 + 31 + 30 = 81 days
    s.flag_on(&c, &s.chair, "2025-05-20").await; // open: 11 + 30 = 41 days
    s.flag_on(&d, &s.physio, "2025-06-01").await; // discussed 1 July, after the quarter: open, 29 days
    s.flag_on(&p, &s.other_physio, "2025-06-20").await; // pain arm, open: 10 days
                                                        // Flagged today through the API: after the quarter, so not on its backlog.
    let (status, flag) =
        s.app.post(&s.physio.token, &format!("/api/cases/{e}/mentorship-flag"), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{flag}");
    assert_eq!(flag["specialty"], "spinal");
    let (status, _) =
        s.app.post(&s.physio.token, &format!("/api/cases/{e}/mentorship-flag"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "flagging twice changes nothing");

    // Logs. Sam Spine (spinal contract only, so the arm may be left out):
    s.log(&s.chair, "2025-03-31", 30, "case_review", &[&s.physio], &[], None).await; // before the quarter
    let first = s.log(&s.chair, "2025-04-07", 60, "case_review", &[&s.physio], &[&a], None).await; // 60
    assert_eq!(first["unflagged_case_ids"], json!([a]));
    assert_eq!(first["specialty"], "spinal");
    s.log(&s.chair, "2025-05-12", 90, "joint_assessment", &[&s.physio, &s.trainee], &[&a], None)
        .await; // 90
    s.log(&s.chair, "2025-06-30", 45, "teaching", &[&s.trainee], &[], None).await; // 45: last day counts
    s.log(&s.chair, "2025-07-01", 120, "case_review", &[&s.physio], &[&d], None).await; // after the quarter
                                                                                        // Pat Payne, pain: 3 × 60 = 180.
    for on in ["2025-04-14", "2025-05-19", "2025-06-23"] {
        s.log(&s.other_chair, on, 60, "case_review", &[&s.other_physio], &[], None).await;
    }
    // Nia Newton: 60 minutes on 10 June, before her contract began (the arm must then be
    // named, and it counts towards no contract), and 240 on 20 June.
    s.log(&s.second_consultant, "2025-06-10", 60, "teaching", &[&s.trainee], &[], Some("spinal"))
        .await;
    s.log(&s.second_consultant, "2025-06-20", 240, "joint_assessment", &[&s.physio], &[], None)
        .await;

    let (status, summary) = s
        .app
        .get(&s.coordinator.token, &format!("/api/mentorship/summary?from={FROM}&to={TO}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(summary.as_array().unwrap().len(), 3, "{summary}");
    // Spinal backlog on 30 June: b (81 days), c (41), d (29): 3 cases, oldest 81 days.
    // Both spinal contracts show the arm's backlog.
    let spine = row(&summary, &c_spine);
    assert_eq!(spine["consultant_id"], s.chair.id);
    assert_eq!(spine["specialty"], "spinal");
    assert_eq!(spine["contracted_minutes"], 780);
    assert_eq!(spine["delivered_minutes"], 195); // 60 + 90 + 45
    assert_eq!(spine["shortfall_minutes"], 585); // 780 − 195
    assert_eq!(spine["backlog_cases"], 3);
    assert_eq!(spine["oldest_backlog_days"], 81);
    let pain = row(&summary, &c_pain);
    assert_eq!(pain["specialty"], "pain");
    assert_eq!(pain["contracted_minutes"], 630);
    assert_eq!(pain["delivered_minutes"], 180);
    assert_eq!(pain["shortfall_minutes"], 450); // 630 − 180
    assert_eq!(pain["backlog_cases"], 1); // p, flagged 20 June
    assert_eq!(pain["oldest_backlog_days"], 10); // 20 → 30 June
    let spine2 = row(&summary, &c_spine2);
    assert_eq!(spine2["days"], 15);
    assert_eq!(spine2["contracted_minutes"], 193);
    assert_eq!(spine2["delivered_minutes"], 240); // the 10 June hour predates the contract
    assert_eq!(spine2["shortfall_minutes"], 0); // delivered more than contracted
    assert_eq!(spine2["backlog_cases"], 3);
    assert_eq!(spine2["oldest_backlog_days"], 81);

    // May alone (31 days), as of 31 May: spinal 60 × 52 × 31 / 364 = 265.71 → 266,
    // delivered 90, backlog b (51 days) and c (11 days); Nia's contract had not begun.
    let (_, may) = s
        .app
        .get(&s.coordinator.token, "/api/mentorship/summary?from=2025-05-01&to=2025-05-31")
        .await;
    assert_eq!(may.as_array().unwrap().len(), 2, "{may}");
    let spine = row(&may, &c_spine);
    assert_eq!(spine["contracted_minutes"], 266);
    assert_eq!(spine["delivered_minutes"], 90);
    assert_eq!(spine["shortfall_minutes"], 176);
    assert_eq!(spine["backlog_cases"], 2);
    assert_eq!(spine["oldest_backlog_days"], 51);
    // Pain in May: 60 × 42 × 31 / 364 = 214.6 → 215; nothing flagged yet.
    let pain = row(&may, &c_pain);
    assert_eq!(pain["contracted_minutes"], 215);
    assert_eq!(pain["backlog_cases"], 0);
    assert_eq!(pain["oldest_backlog_days"], Value::Null);

    // A consultant sees their own contracts only; mentees see no summary.
    let (status, own) =
        s.app.get(&s.chair.token, &format!("/api/mentorship/summary?from={FROM}&to={TO}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(own.as_array().unwrap().len(), 1);
    assert_eq!(own[0]["contract_id"], c_spine.as_str());
    assert_eq!(own[0]["delivered_minutes"], 195);
    let (status, _) =
        s.app.get(&s.physio.token, &format!("/api/mentorship/summary?from={FROM}&to={TO}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, contracts) = s.app.get(&s.coordinator.token, "/api/mentorship/contracts").await;
    assert_eq!(contracts.as_array().unwrap().len(), 3);
    let (_, contracts) = s.app.get(&s.other_chair.token, "/api/mentorship/contracts").await;
    assert_eq!(contracts.as_array().unwrap().len(), 1);
    assert_eq!(contracts[0]["weeks_per_year"], 42);
    let (status, _) = s.app.get(&s.trainee.token, "/api/mentorship/contracts").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // An overlapping second spinal contract for the same consultant is refused.
    let (status, body) = s
        .app
        .post(
            &s.coordinator.token,
            "/api/mentorship/contracts",
            json!({ "consultant_id": s.chair.id, "specialty": "spinal", "minutes_per_week": 30,
                    "weeks_per_year": 52, "starts_on": "2025-06-01", "ends_on": null }),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("contract_overlaps")));
}

async fn logging_a_flagged_case_unflags_it_in_the_same_transaction(backend: Backend) {
    let s = service(backend).await;
    s.contract(&s.chair, "spinal", 60, 52, "2025-01-01", None).await;
    let session = s.session(7, 6, false).await;
    let case = s.book_case(&s.physio, &session, referral(NHS[0])).await;
    let (status, _) =
        s.app.post(&s.chair.token, &format!("/api/cases/{case}/mentorship-flag"), json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, flag) =
        s.app.get(&s.physio.token, &format!("/api/cases/{case}/mentorship-flag")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(flag["flagged"], true);
    // A trainee may not flag, and a practitioner cannot even see another's case.
    let (status, _) = s
        .app
        .post(&s.other_physio.token, &format!("/api/cases/{case}/mentorship-flag"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The store refuses a log naming a mentee that does not exist: the whole log is
    // rolled back, and the flag it would have cleared is still there.
    let store = &s.app.state.store;
    let bad = MentorshipLog {
        id: Uuid::new_v4(),
        consultant_id: s.chair.uid(),
        specialty: Specialty::parse("spinal").unwrap(),
        mentee_ids: vec![UserId::new()],
        occurred_on: clinic_date(Utc::now()),
        duration_minutes: 30,
        kind: MentorshipKind::CaseReview,
        case_ids: vec![case.parse().unwrap()],
        learning_points: vec![],
        created_at: Utc::now(),
    };
    let err = store
        .create_mentorship_log(
            &bad,
            vec![NewAuditEvent::new("mentorship_logged", "mentorship_log")],
            Utc::now(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, mdt_coordinator::store::StoreError::Invalid(ref p) if p.code == "unknown_reference"),
        "{err:?}"
    );
    assert_eq!(s.log_count().await, 0);
    assert!(store.mentorship_flag(case.parse().unwrap()).await.unwrap().is_some());

    // Through the API the log and the unflagging commit together.
    let audit_before = store.audit_events().await.unwrap().len();
    let today = clinic_date(Utc::now()).to_string();
    let log = s.log(&s.chair, &today, 30, "case_review", &[&s.physio], &[&case], None).await;
    assert_eq!(log["unflagged_case_ids"], json!([case]));
    // No open flag is an ordinary answer, not a 404.
    let (status, body) =
        s.app.get(&s.physio.token, &format!("/api/cases/{case}/mentorship-flag")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({ "case_id": case, "flagged": false }));
    let flag = store.mentorship_backlog(clinic_date(Utc::now())).await.unwrap();
    assert!(flag.is_empty(), "{flag:?}");
    // Audited: the log and the case it discussed.
    let audit = store.audit_events().await.unwrap();
    let new: Vec<_> =
        audit[audit_before..].iter().map(|e| (e.action.as_str(), e.record_id.clone())).collect();
    assert!(new.contains(&("mentorship_logged", log["id"].as_str().map(String::from))), "{new:?}");
    assert!(new.contains(&("case_mentorship_discussed", Some(case.clone()))), "{new:?}");
    // Unflagging a case that is not flagged says so; flag and unflag again.
    let (status, body) = s
        .app
        .send(
            reqwest::Method::DELETE,
            &s.physio.token,
            &format!("/api/cases/{case}/mentorship-flag"),
            None,
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_flagged")));
    let (status, _) = s
        .app
        .post(&s.coordinator.token, &format!("/api/cases/{case}/mentorship-flag"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = s
        .app
        .send(
            reqwest::Method::DELETE,
            &s.physio.token,
            &format!("/api/cases/{case}/mentorship-flag"),
            None,
        )
        .await;
    assert_eq!((status, body["flagged"].as_bool()), (StatusCode::OK, Some(false)));
    let (status, _) = s
        .app
        .post(&s.trainee.token, &format!("/api/cases/{case}/mentorship-flag"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "trainees do not see non-teaching cases");
}

async fn who_logs_and_who_sees_which_logs(backend: Backend) {
    let s = service(backend).await;
    s.contract(&s.chair, "spinal", 60, 52, "2025-01-01", None).await;
    s.contract(&s.other_chair, "pain", 60, 42, "2025-01-01", None).await;
    let session = s.session(7, 6, false).await;
    let case = s.book_case(&s.physio, &session, referral(NHS[0])).await;
    let to_esp =
        s.log(&s.chair, "2025-05-01", 60, "case_review", &[&s.physio], &[&case], None).await;
    let to_trainee =
        s.log(&s.chair, "2025-05-08", 45, "teaching", &[&s.trainee], &[&case], None).await;
    let pain_log = s
        .log(&s.other_chair, "2025-05-02", 30, "joint_assessment", &[&s.other_physio], &[], None)
        .await;

    // Consultants log only their own mentorship; no one else logs at all.
    for (who, consultant) in [
        (&s.chair, &s.other_chair),
        (&s.coordinator, &s.chair),
        (&s.physio, &s.chair),
        (&s.trainee, &s.chair),
    ] {
        let body = log_body(consultant, "2025-05-03", 30, "case_review", &[&s.physio], &[], None);
        let (status, res) = s.app.post(&who.token, "/api/mentorship/logs", body).await;
        assert_eq!(
            (status, res["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden")),
            "{res}"
        );
    }
    assert_eq!(s.log_count().await, 3);

    let ids = |v: &Value| -> Vec<String> {
        v.as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap().to_string()).collect()
    };
    let id = |v: &Value| v["id"].as_str().unwrap().to_string();
    // Mentees see the logs they are in.
    let (_, esp_logs) = s.app.get(&s.physio.token, "/api/mentorship/logs").await;
    assert_eq!(ids(&esp_logs), [id(&to_esp)]);
    let (_, pain_esp_logs) = s.app.get(&s.other_physio.token, "/api/mentorship/logs").await;
    assert_eq!(ids(&pain_esp_logs), [id(&pain_log)]);
    let (status, trainee_logs) = s.app.get(&s.trainee.token, "/api/mentorship/logs").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&trainee_logs), [id(&to_trainee)]);
    // The trainee's log shows its case de-identified only.
    assert_no_identifiers(&trainee_logs.to_string());
    assert!(trainee_logs[0]["cases"][0]["label"].as_str().unwrap().starts_with("Case 1 · F · "));
    // The referrer sees their own case in full.
    assert_eq!(esp_logs[0]["cases"][0]["patient"]["nhs_number"], NHS[0]);
    // Consultants see the logs they gave; coordinators see all, filtered by date.
    let (_, spine_logs) = s.app.get(&s.chair.token, "/api/mentorship/logs").await;
    assert_eq!(ids(&spine_logs), [id(&to_esp), id(&to_trainee)]);
    let (_, pain_logs) = s.app.get(&s.other_chair.token, "/api/mentorship/logs").await;
    assert_eq!(ids(&pain_logs), [id(&pain_log)]);
    let (_, all) = s.app.get(&s.coordinator.token, "/api/mentorship/logs").await;
    assert_eq!(ids(&all), [id(&to_esp), id(&pain_log), id(&to_trainee)]);
    let (_, first_days) =
        s.app.get(&s.coordinator.token, "/api/mentorship/logs?from=2025-05-01&to=2025-05-02").await;
    assert_eq!(ids(&first_days), [id(&to_esp), id(&pain_log)]);
    let (_, by_consultant) = s
        .app
        .get(
            &s.coordinator.token,
            &format!("/api/mentorship/logs?consultant_id={}", s.other_chair.id),
        )
        .await;
    assert_eq!(ids(&by_consultant), [id(&pain_log)]);
    assert_eq!(all[0]["mentee_ids"], json!([s.physio.id]));
    assert_eq!(all[0]["kind"], "case_review");
    assert_eq!(all[0]["duration_minutes"], 60);
    assert_eq!(all[0]["occurred_on"], "2025-05-01");
    // Every case shown in a log list is an audited read.
    let audit = s.app.state.store.audit_events().await.unwrap();
    let trainee_read = audit.iter().any(|e| {
        e.action == "case_read"
            && e.actor_id == Some(s.trainee.uid())
            && e.record_id.as_deref() == Some(case.as_str())
            && e.details.contains("mentorship_logs")
    });
    assert!(trainee_read, "the trainee's read of the case is audited");
}

async fn bad_input_is_refused_with_stable_codes_and_nothing_written(backend: Backend) {
    let s = service(backend).await;
    s.contract(&s.chair, "spinal", 60, 52, "2025-01-01", None).await;
    let session = s.session(7, 6, false).await;
    let case = s.book_case(&s.physio, &session, referral(NHS[0])).await;
    s.flag_on(&case, &s.physio, "2025-04-01").await;
    let pain_session = s.create_session(Plan { capacity: 6, ..s.other_plan(7) }).await;
    let pain_case = s.book_case(&s.other_physio, &pain_session, referral(NHS[1])).await;
    let audit_before = s.app.state.store.audit_events().await.unwrap().len();

    let contract = |consultant: &str, arm: &str, mpw: i64, wpy: i64, starts: &str, ends: &str| {
        json!({ "consultant_id": consultant, "specialty": arm, "minutes_per_week": mpw,
                "weeks_per_year": wpy, "starts_on": starts, "ends_on": ends })
    };
    let unknown = Uuid::new_v4().to_string();
    for (body, code) in [
        (contract(&unknown, "spinal", 60, 52, "2025-01-01", "2025-12-31"), "unknown_consultant"),
        (contract(&s.physio.id, "spinal", 60, 52, "2025-01-01", "2025-12-31"), "not_a_consultant"),
        (
            contract(&s.other_chair.id, "spinal", 60, 52, "2025-01-01", "2025-12-31"),
            "consultant_not_in_specialty",
        ),
        (
            contract(&s.other_chair.id, "podiatry", 60, 52, "2025-01-01", "2025-12-31"),
            "unknown_specialty",
        ),
        (
            contract(&s.other_chair.id, "pain", -60, 42, "2025-01-01", "2025-12-31"),
            "invalid_minutes_per_week",
        ),
        (
            contract(&s.other_chair.id, "pain", 60, 53, "2025-01-01", "2025-12-31"),
            "invalid_weeks_per_year",
        ),
        (
            contract(&s.other_chair.id, "pain", 60, 42, "2025-12-31", "2025-01-01"),
            "invalid_date_range",
        ),
        (contract(&s.other_chair.id, "pain", 60, 42, "1 Jan", "2025-12-31"), "invalid_date"),
    ] {
        let (status, res) =
            s.app.post(&s.coordinator.token, "/api/mentorship/contracts", body).await;
        assert_eq!(
            (status, res["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(code)),
            "{res}"
        );
    }
    let (status, _) = s
        .app
        .post(
            &s.chair.token,
            "/api/mentorship/contracts",
            contract(&s.chair.id, "spinal", 60, 52, "2027-01-01", "2027-12-31"),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only coordinators make contracts");

    let good = log_body(&s.chair, "2025-05-01", 60, "case_review", &[&s.physio], &[&case], None);
    let with = |key: &str, value: Value| {
        let mut body = good.clone();
        body[key] = value;
        body
    };
    let tomorrow = (clinic_date(Utc::now()) + Duration::days(1)).to_string();
    for (body, code) in [
        (with("duration_minutes", json!(-30)), "invalid_duration"),
        (with("duration_minutes", json!(0)), "invalid_duration"),
        (with("duration_minutes", json!(601)), "invalid_duration"),
        (with("kind", json!("coffee")), "invalid_kind"),
        (with("occurred_on", json!(tomorrow)), "date_in_future"),
        (with("occurred_on", json!("May 1st")), "invalid_date"),
        (with("case_ids", json!([case, Uuid::new_v4()])), "unknown_case"),
        (with("case_ids", json!([case, pain_case])), "unknown_case"), // not the consultant's arm
        (with("case_ids", json!(["not-a-uuid"])), "invalid_id"),
        (with("mentee_ids", json!([Uuid::new_v4()])), "unknown_mentee"),
        (with("mentee_ids", json!([s.coordinator.id])), "invalid_mentee"),
        (with("mentee_ids", json!([])), "required"),
        (with("specialty", json!("pain")), "invalid_specialty"),
        (with("occurred_on", json!("2024-06-01")), "specialty_required"), // no contract then
        (with("duration_minutes", json!("an hour")), "invalid_field"),
    ] {
        let (status, res) = s.app.post(&s.chair.token, "/api/mentorship/logs", body).await;
        assert_eq!(
            (status, res["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(code)),
            "{res}"
        );
    }
    let res = s
        .app
        .http
        .post(s.app.url("/api/mentorship/logs"))
        .bearer_auth(&s.chair.token)
        .header("content-type", "application/json")
        .body("{\"consultant_id\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    for query in ["from=2025-07-01&to=2025-06-30", "from=2025-04-01", "from=2025-04-01&to=June"] {
        let (status, res) =
            s.app.get(&s.coordinator.token, &format!("/api/mentorship/summary?{query}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {res}");
    }
    let (_, res) = s
        .app
        .get(&s.coordinator.token, "/api/mentorship/summary?from=2025-07-01&to=2025-06-30")
        .await;
    assert_eq!(res["code"], "invalid_date_range");
    let (status, res) =
        s.app.get(&s.trainee.token, "/api/me/attendance?from=2025-07-01&to=2025-06-30").await;
    assert_eq!(
        (status, res["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_date_range"))
    );

    // Nothing was written: no contract beyond the first, no log, the flag still set, and
    // no audit event.
    let (_, contracts) = s.app.get(&s.coordinator.token, "/api/mentorship/contracts").await;
    assert_eq!(contracts.as_array().unwrap().len(), 1);
    assert_eq!(s.log_count().await, 0);
    assert!(s.app.state.store.mentorship_flag(case.parse().unwrap()).await.unwrap().is_some());
    let audit = s.app.state.store.audit_events().await.unwrap();
    let written: Vec<&str> = audit[audit_before..]
        .iter()
        .map(|e| e.action.as_str())
        .filter(|a| *a != "case_read")
        .collect();
    assert!(written.is_empty(), "{written:?}");
    // And the good body is accepted.
    let (status, res) = s.app.post(&s.chair.token, "/api/mentorship/logs", good).await;
    assert_eq!(status, StatusCode::CREATED, "{res}");
}

/// Live-channel events at a chosen time (the store takes the clock as an argument).
async fn at(s: &Clinic, session: &str, when: DateTime<Utc>, body: EventBody, actor: &Account) {
    s.app
        .state
        .store
        .append_live_events(
            session.parse().unwrap(),
            None,
            vec![NewLiveEvent { body, actor: Some(actor.uid()), command_id: None }],
            when,
        )
        .await
        .unwrap();
}

async fn a_trainees_attendance_record_and_certificate_carry_no_patient_identifiers(
    backend: Backend,
) {
    let s = service(backend).await;
    let plan = Plan { capacity: 6, teaching: true, ..s.plan(3) };
    let starts = plan.starts_at;
    let session = s.create_session(plan).await;
    let discussed = s.book_case(&s.physio, &session, referral(NHS[0])).await;
    let _waiting = s.book_case(&s.physio, &session, referral(NHS[1])).await;
    let _other = s.session(4, 6, true).await; // not attended
    let trainee = UserId(s.trainee.id.parse().unwrap());
    let joined = |name: &str, role: Role, id: UserId| EventBody::ParticipantJoined {
        user_id: id,
        name: name.into(),
        role,
        instance: Uuid::new_v4(),
    };
    let m = |n: i64| starts + Duration::minutes(n);
    at(&s, &session, m(0), EventBody::MeetingOpened, &s.chair).await;
    at(&s, &session, m(0), joined("Tam", Role::Trainee, trainee), &s.trainee).await;
    at(
        &s,
        &session,
        m(1),
        EventBody::CaseStarted { case_id: discussed.parse().unwrap() },
        &s.chair,
    )
    .await;
    at(
        &s,
        &session,
        m(20),
        EventBody::CaseCompleted { case_id: discussed.parse().unwrap() },
        &s.chair,
    )
    .await;
    // Present 0–50 and again 60–75: 65 minutes, 1.08 CPD hours.
    at(&s, &session, m(50), EventBody::ParticipantLeft { user_id: trainee }, &s.trainee).await;
    at(&s, &session, m(60), joined("Tam", Role::Trainee, trainee), &s.trainee).await;
    at(&s, &session, m(75), EventBody::ParticipantLeft { user_id: trainee }, &s.trainee).await;
    at(&s, &session, m(80), EventBody::MeetingClosed, &s.chair).await;

    let day: NaiveDate = clinic_date(starts);
    let window = format!("from={day}&to={day}");
    let res = s
        .app
        .http
        .get(s.app.url(&format!("/api/me/attendance?{window}")))
        .bearer_auth(&s.trainee.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.unwrap();
    assert_no_identifiers(&text);
    let record: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(record["name"], "Tam <Trainee> & Co");
    assert_eq!(record["from"], day.to_string());
    let sessions = record["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{record}");
    assert_eq!(sessions[0]["session_id"], session.as_str());
    assert_eq!(sessions[0]["minutes_present"], 65);
    assert_eq!(sessions[0]["role"], "trainee");
    assert_eq!(sessions[0]["teaching"], true);
    let cases = sessions[0]["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 1, "only the case discussed: {record}");
    assert_eq!(cases[0]["id"], discussed.as_str());
    assert!(cases[0]["label"].as_str().unwrap().starts_with("Case 1 · F · "));
    assert!(cases[0].get("patient").is_none());
    assert_eq!(record["total_minutes"], 65);
    assert_eq!(record["cpd_hours"], 1.08);
    // Reading the record is an audited read of the (de-identified) case.
    let audit = s.app.state.store.audit_events().await.unwrap();
    assert!(audit.iter().any(|e| e.action == "case_read"
        && e.actor_id == Some(trainee)
        && e.record_id.as_deref() == Some(discussed.as_str())
        && e.details.contains("attendance")));
    // A window open at either end, or at both, holds the session too (SQLite compares
    // stored times as text: an open end must still sort as a time there).
    let next_day = day.succ_opt().unwrap();
    for open in
        [String::new(), format!("?from={day}"), format!("?to={day}"), "?from=1900-01-01".into()]
    {
        let (status, open_record) =
            s.app.get(&s.trainee.token, &format!("/api/me/attendance{open}")).await;
        assert_eq!(status, StatusCode::OK, "{open}: {open_record}");
        let sessions = open_record["sessions"].as_array().unwrap();
        assert_eq!(sessions.len(), 1, "{open}: {open_record}");
        assert_eq!(open_record["total_minutes"], 65, "{open}");
        let res = s
            .app
            .http
            .get(s.app.url(&format!("/api/me/attendance/certificate{open}")))
            .bearer_auth(&s.trainee.token)
            .send()
            .await
            .unwrap();
        let html = res.text().await.unwrap();
        assert!(html.contains("Total: 1 session<"), "{open}: {html}");
    }
    for after in [format!("?from={next_day}"), format!("?from={next_day}&to=2200-12-31")] {
        let (_, none) = s.app.get(&s.trainee.token, &format!("/api/me/attendance{after}")).await;
        assert_eq!(none["sessions"], json!([]), "{after}");
    }
    // Another window holds nothing.
    let (_, empty) =
        s.app.get(&s.trainee.token, "/api/me/attendance?from=2025-01-01&to=2025-01-31").await;
    assert_eq!(empty["sessions"], json!([]));
    assert_eq!(empty["total_minutes"], 0);

    let res = s
        .app
        .http
        .get(s.app.url(&format!("/api/me/attendance/certificate?{window}")))
        .bearer_auth(&s.trainee.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let header = |name: &str| {
        res.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
    };
    assert_eq!(header("content-type"), "text/html; charset=utf-8");
    assert!(header("content-security-policy").contains("style-src 'self'"));
    assert!(header("content-security-policy").contains("script-src 'self'"));
    let html = res.text().await.unwrap();
    assert_no_identifiers(&html);
    assert!(html.contains("Tam &lt;Trainee&gt; &amp; Co"), "{html}");
    assert!(!html.contains("<Trainee>"));
    assert!(html.contains("Spinal MDT"));
    assert!(html.contains("65 minutes (1.08 CPD hours)"), "{html}");
    assert!(html.contains("Total: 1 session<"));
    assert!(html.contains(&format!("{}", day.format("%-d %B %Y"))));
    assert!(!html.contains("<script") && !html.contains("<style") && !html.contains("style="));
    assert!(html.contains("<link rel=\"stylesheet\" href=\"/certificate.css\">"));
    // The stylesheet it links is served from the site's own origin.
    let css = s.app.http.get(s.app.url("/certificate.css")).send().await.unwrap();
    assert_eq!(css.status(), StatusCode::OK);
    assert!(css.text().await.unwrap().contains("@media print"));
    let res = s.app.http.get(s.app.url("/api/me/attendance/certificate")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

/// A flag follows its case: a withdrawn case leaves the backlog, a moved case takes its
/// flag to its new booking (where a log clears it), and a log dated before the flag was
/// raised does not clear it. Dates outside 1900-2200 are refused, never stored.
async fn flags_follow_their_cases_and_dates_are_real(backend: Backend) {
    let s = service(backend).await;
    let contract = s.contract(&s.chair, "spinal", 60, 52, "2020-01-01", None).await;
    let first = s.session(7, 6, false).await;
    let later = s.session(14, 6, false).await;
    let withdrawn = s.book_case(&s.physio, &first, referral(NHS[0])).await;
    let moved = s.book_case(&s.physio, &first, referral(NHS[1])).await;
    for case in [&withdrawn, &moved] {
        let (status, body) = s
            .app
            .post(&s.physio.token, &format!("/api/cases/{case}/mentorship-flag"), json!({}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, _) = s
        .app
        .send(reqwest::Method::DELETE, &s.physio.token, &format!("/api/cases/{withdrawn}"), None)
        .await;
    assert!(status.is_success(), "{status}");
    let (status, body) = s
        .app
        .post(&s.physio.token, &format!("/api/cases/{moved}/move"), json!({ "session_id": later }))
        .await;
    assert!(status.is_success(), "{status} {body}");
    let rebooked = body["id"].as_str().unwrap().to_string();
    assert_ne!(rebooked, moved);

    let today = clinic_date(Utc::now()).to_string();
    let backlog = |summary: &Value| row(summary, &contract)["backlog_cases"].as_u64().unwrap();
    let summary_path = format!("/api/mentorship/summary?from={today}&to={today}");
    let (_, summary) = s.app.get(&s.coordinator.token, &summary_path).await;
    assert_eq!(backlog(&summary), 1, "only the moved case waits: {summary}");
    let (_, flag) =
        s.app.get(&s.physio.token, &format!("/api/cases/{rebooked}/mentorship-flag")).await;
    assert_eq!(flag["flagged"], true, "the flag moved with the case: {flag}");

    // A discussion dated before the flag was raised does not clear it; today's does.
    let early = s
        .log(&s.chair, "2020-06-01", 30, "case_review", &[&s.physio], &[&rebooked], Some("spinal"))
        .await;
    assert_eq!(early["unflagged_case_ids"], json!([]));
    let (_, summary) = s.app.get(&s.coordinator.token, &summary_path).await;
    assert_eq!(backlog(&summary), 1);
    let now = s
        .log(&s.chair, &today, 30, "case_review", &[&s.physio], &[&rebooked], Some("spinal"))
        .await;
    assert_eq!(now["unflagged_case_ids"], json!([rebooked]));
    let (_, summary) = s.app.get(&s.coordinator.token, &summary_path).await;
    assert_eq!(backlog(&summary), 0);

    // Years no clinic record has: refused, nothing written.
    let logs = s.log_count().await;
    for path in [
        "/api/mentorship/summary?from=-5000-01-01&to=2026-01-01",
        "/api/mentorship/logs?from=-5000-01-01",
        "/api/me/attendance?from=12026-01-01",
        "/api/reports/activity?from=-5000-01-01&to=-5000-01-02",
    ] {
        let (status, body) = s.app.get(&s.coordinator.token, path).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_date")),
            "{path}: {body}"
        );
    }
    let (status, body) = s
        .app
        .post(
            &s.chair.token,
            "/api/mentorship/logs",
            log_body(&s.chair, "-5000-01-01", 30, "teaching", &[&s.physio], &[], Some("spinal")),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_date")),
        "{body}"
    );
    assert_eq!(s.log_count().await, logs);
}

fn case_ids(items: &Value) -> Vec<String> {
    items.as_array().unwrap().iter().map(|i| i["case_id"].as_str().unwrap().to_string()).collect()
}

async fn the_backlog_lists_open_flags_to_those_who_may_see_them(backend: Backend) {
    let s = service(backend).await;
    let spinal_session = s.session(7, 6, false).await;
    let pain_session = s.create_session(Plan { capacity: 6, ..s.other_plan(7) }).await;
    let a = s.book_case(&s.physio, &spinal_session, referral(NHS[0])).await;
    let b = s.book_case(&s.physio, &spinal_session, referral(NHS[1])).await;
    let unflagged = s.book_case(&s.physio, &spinal_session, referral(NHS[2])).await;
    let p = s.book_case(&s.other_physio, &pain_session, referral(NHS[2])).await;
    s.flag_on(&a, &s.physio, "2025-04-02").await;
    s.flag_on(&p, &s.other_physio, "2025-04-15").await;
    s.flag_on(&b, &s.chair, "2025-05-01").await;

    // A case not on the backlog reads as `flagged: false`, a flagged one in full.
    let (status, body) =
        s.app.get(&s.physio.token, &format!("/api/cases/{unflagged}/mentorship-flag")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({ "case_id": unflagged, "flagged": false }));
    let (status, body) =
        s.app.get(&s.physio.token, &format!("/api/cases/{a}/mentorship-flag")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["flagged"], true);
    assert_eq!(body["flagged_on"], "2025-04-02");
    assert_eq!(body["specialty"], "spinal");

    // Coordinators see every arm, oldest flag first, each case identified.
    let (status, all) = s.app.get(&s.coordinator.token, "/api/mentorship/backlog").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(case_ids(&all), [a.clone(), p.clone(), b.clone()]);
    let first = &all[0];
    assert_eq!(first["specialty"], "spinal");
    assert_eq!(first["flagged_by"], s.physio.id);
    assert_eq!(first["flagged_on"], "2025-04-02");
    assert!(first["flagged_at"].is_string());
    assert_eq!(first["case"]["id"], a);
    assert_eq!(first["case"]["patient"]["nhs_number"], NHS[0]);
    assert_eq!(first["case"]["referrer_id"], s.physio.id);
    let (_, pain_only) =
        s.app.get(&s.coordinator.token, "/api/mentorship/backlog?specialty=pain").await;
    assert_eq!(case_ids(&pain_only), [p.as_str()]);

    // Consultants see the arms of their specialties, identified.
    let (status, spinal) = s.app.get(&s.chair.token, "/api/mentorship/backlog").await;
    assert_eq!(status, StatusCode::OK, "{spinal}");
    assert_eq!(case_ids(&spinal), [a.clone(), b.clone()]);
    assert_eq!(spinal[1]["case"]["patient"]["nhs_number"], NHS[1]);
    let (_, pain) = s.app.get(&s.other_chair.token, "/api/mentorship/backlog").await;
    assert_eq!(case_ids(&pain), [p.as_str()]);
    assert_eq!(pain[0]["case"]["patient"]["family_name"], FAMILY);
    let (status, none) = s.app.get(&s.chair.token, "/api/mentorship/backlog?specialty=pain").await;
    assert_eq!((status, none), (StatusCode::OK, json!([])), "not their arm");

    // Everyone else is refused, and a bad arm is a 422.
    for who in [&s.physio, &s.other_physio, &s.trainee] {
        let (status, res) = s.app.get(&who.token, "/api/mentorship/backlog").await;
        assert_eq!(
            (status, res["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden")),
            "{res}"
        );
    }
    for arm in ["podiatry", "Not An Arm"] {
        let (status, res) = s
            .app
            .get(&s.coordinator.token, &format!("/api/mentorship/backlog?specialty={arm}"))
            .await;
        assert_eq!(
            (status, res["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_specialty")),
            "{res}"
        );
    }

    // Reading the backlog is an audited read of each case shown, and only of those.
    let audit = s.app.state.store.audit_events().await.unwrap();
    let backlog_reads = |who: &Account| -> Vec<String> {
        let mut ids: Vec<String> = audit
            .iter()
            .filter(|e| {
                e.action == "case_read"
                    && e.actor_id == Some(who.uid())
                    && e.details.contains("mentorship_backlog")
            })
            .filter_map(|e| e.record_id.clone())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    };
    let mut spinal_cases = vec![a.clone(), b.clone()];
    spinal_cases.sort();
    assert_eq!(backlog_reads(&s.chair), spinal_cases);
    assert_eq!(backlog_reads(&s.other_chair), [p.as_str()]);
    assert!(backlog_reads(&s.physio).is_empty());

    // A case discussed in a log leaves the backlog.
    s.log(&s.chair, "2025-05-02", 30, "case_review", &[&s.physio], &[&a], Some("spinal")).await;
    let (_, spinal) = s.app.get(&s.chair.token, "/api/mentorship/backlog").await;
    assert_eq!(case_ids(&spinal), [b.as_str()]);
}

fn names(people: &Value) -> Vec<&str> {
    people.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect()
}

async fn the_people_directory_shows_names_to_coordinators_and_consultants(backend: Backend) {
    let s = service(backend).await;
    let get = |token: &str, path: &str| {
        let (token, path) = (token.to_string(), path.to_string());
        let s = &s;
        async move {
            let res = s.app.http.get(s.app.url(&path)).bearer_auth(&token).send().await.unwrap();
            let status = res.status();
            (status, res.text().await.unwrap())
        }
    };

    // Coordinators see every active account, by name, with no email.
    let (status, text) = get(&s.coordinator.token, "/api/people").await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(!text.contains("email") && !text.contains("@example.org"), "{text}");
    let everyone: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        names(&everyone),
        [
            "Cora Ordinator",
            "Dr Nia Newton",
            "Dr Pat Payne",
            "Dr Sam Spine",
            "Ellis Physio",
            "Pip Physio",
            "Tam <Trainee> & Co",
        ]
    );
    let ellis = everyone.as_array().unwrap().iter().find(|p| p["name"] == "Ellis Physio").unwrap();
    assert_eq!(
        ellis,
        &json!({ "id": s.physio.id, "name": "Ellis Physio", "role": "practitioner",
                 "specialties": ["spinal"] })
    );
    let (_, text) = get(&s.coordinator.token, "/api/people?role=practitioner").await;
    let practitioners: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(names(&practitioners), ["Ellis Physio", "Pip Physio"]);

    // Consultants see the people who share a specialty with them.
    let (status, text) = get(&s.chair.token, "/api/people").await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let spinal: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        names(&spinal),
        ["Cora Ordinator", "Dr Nia Newton", "Dr Sam Spine", "Ellis Physio", "Tam <Trainee> & Co",]
    );
    for (token, role, expected) in [
        (&s.chair.token, "practitioner", vec!["Ellis Physio"]),
        (&s.chair.token, "trainee", vec!["Tam <Trainee> & Co"]),
        (&s.other_chair.token, "practitioner", vec!["Pip Physio"]),
        // Every trainee, whatever their specialty: any consultant may teach one.
        (&s.other_chair.token, "trainee", vec!["Tam <Trainee> & Co"]),
        (&s.other_chair.token, "consultant", vec!["Dr Pat Payne"]),
    ] {
        let (status, text) = get(token, &format!("/api/people?role={role}")).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        let people: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(names(&people), expected, "{role}");
        assert!(people.as_array().unwrap().iter().all(|p| p["role"] == role));
    }

    // Everyone else is refused; a bad role is a 422.
    for who in [&s.physio, &s.other_physio, &s.trainee] {
        let (status, text) = get(&who.token, "/api/people").await;
        let res: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            (status, res["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden")),
            "{res}"
        );
    }
    let (status, text) = get(&s.chair.token, "/api/people?role=wizard").await;
    let res: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (status, res["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_role")),
        "{res}"
    );
    let res = s.app.http.get(s.app.url("/api/people")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

crate::on_both_backends!(
    summary_of_a_seeded_quarter_matches_hand_computed_figures,
    logging_a_flagged_case_unflags_it_in_the_same_transaction,
    who_logs_and_who_sees_which_logs,
    bad_input_is_refused_with_stable_codes_and_nothing_written,
    a_trainees_attendance_record_and_certificate_carry_no_patient_identifiers,
    flags_follow_their_cases_and_dates_are_real,
    the_backlog_lists_open_flags_to_those_who_may_see_them,
    the_people_directory_shows_names_to_coordinators_and_consultants,
);
