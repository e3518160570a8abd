//! Mentorship beyond the meeting and the supervision record (issue 21), on both backends:
//! a caseload case advised "book into the MDT" lands on a session's agenda with its
//! details and is seen only by those who may; a cover's log counts towards the contract
//! and a quarter with two weeks of leave, one covered, matches figures worked out by hand;
//! a fifth supervisee is refused and a month with one assessment is below target; the
//! mentee's certificate lists mentoring and assessments and the portfolio names no
//! patient. Bad input is refused with stable codes and changes nothing.

use chrono::Datelike;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use mdt_coordinator::domain::Role;

use crate::common::clinic::{referral, Account, Clinic};
use crate::common::Backend;

const NHS: [&str; 3] = ["9434765919", "9912003888", "9449305552"];

/// An IPASS-like service: spinal, with pain as the other arm. Dr Sam Spine (the chair)
/// mentors the spinal arm; Dr Nia Newton is the other spinal consultant; Dr Pat Payne is
/// pain's; Ellis Physio the spinal ESP, Pip Physio the pain one.
async fn service(backend: Backend) -> Clinic {
    Clinic::of(backend, "spinal", "pain", |_| {}).await
}

/// A caseload case: the usual referral of patient `nhs`, for the spinal arm.
fn caseload(nhs: &str) -> Value {
    let mut body = referral(nhs);
    body["specialty"] = json!("spinal");
    body
}

impl Clinic {
    /// A spinal contract for `who` (60 minutes a week, 52 weeks) from `starts`.
    async fn spinal_contract(&self, who: &Account, starts: &str) -> String {
        let body = json!({ "consultant_id": who.id, "specialty": "spinal",
            "minutes_per_week": 60, "weeks_per_year": 52, "starts_on": starts, "ends_on": null });
        let (status, body) =
            self.app.post(&self.coordinator.token, "/api/mentorship/contracts", body).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// Adds a caseload case of patient `nhs` as `who`, asserting `201`; returns its id.
    async fn add_caseload(&self, who: &Account, nhs: &str) -> String {
        let (status, body) =
            self.app.post(&who.token, "/api/mentorship/cases", caseload(nhs)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["state"], "awaiting_advice", "{body}");
        assert_eq!(body["source"], "caseload", "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    async fn advise(&self, who: &Account, case: &str, body: Value) -> (StatusCode, Value) {
        self.app.post(&who.token, &format!("/api/mentorship/cases/{case}/advice"), body).await
    }

    /// Logs `minutes` of spinal case review by `who` with Ellis Physio on `on`.
    async fn spinal_log(&self, who: &Account, on: &str, minutes: i64) {
        let body = json!({ "consultant_id": who.id, "mentee_ids": [self.physio.id],
            "occurred_on": on, "duration_minutes": minutes, "kind": "case_review",
            "case_ids": [], "learning_points": [], "specialty": "spinal" });
        let (status, body) = self.app.post(&who.token, "/api/mentorship/logs", body).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    async fn cover(&self, who: &Account, contract: &str, body: Value) -> (StatusCode, Value) {
        let path = format!("/api/mentorship/contracts/{contract}/cover");
        self.app.post(&who.token, &path, body).await
    }

    async fn assign(
        &self, who: &Account, supervisee: &str, supervisor: &str,
    ) -> (StatusCode, Value) {
        let body = json!({ "supervisee_id": supervisee, "supervisor_id": supervisor });
        self.app.post(&who.token, "/api/supervision/assignments", body).await
    }

    async fn assess(&self, who: &Account, body: Value) -> (StatusCode, Value) {
        self.app.post(&who.token, "/api/supervision/assessments", body).await
    }

    /// `GET path` as `who`: status and text.
    async fn text(&self, who: &Account, path: &str) -> (StatusCode, String) {
        let res = self.get(who, path).await;
        (res.status(), res.text().await.unwrap())
    }
}

fn code(answer: &(StatusCode, Value)) -> (StatusCode, &str) {
    (answer.0, answer.1["code"].as_str().unwrap_or(""))
}

fn ids(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("a list: {list}"))
        .iter()
        .map(|v| v[key].as_str().unwrap().to_string())
        .collect()
}

async fn a_caseload_case_booked_into_the_mdt_lands_on_the_agenda_and_only_its_circle_sees_it(
    backend: Backend,
) {
    let s = service(backend).await;
    s.spinal_contract(&s.chair, "2026-01-01").await;
    let case = s.add_caseload(&s.physio, NHS[0]).await;
    let session = s.session(10, 4, false).await;

    // The practitioner sees it as theirs; it waits on the arm's backlog beside MDT cases.
    let (_, mine) = s.app.get(&s.physio.token, "/api/mentorship/cases?mine=true").await;
    assert_eq!(ids(&mine, "id"), std::slice::from_ref(&case));
    assert_eq!(mine[0]["patient"]["nhs_number"], NHS[0]);
    assert_eq!(mine[0]["symptom_weeks"], 12, "the proforma travels with it: {mine}");
    for viewer in [&s.chair, &s.coordinator] {
        let (status, backlog) = s.app.get(&viewer.token, "/api/mentorship/backlog").await;
        assert_eq!(status, StatusCode::OK, "{backlog}");
        let item = backlog.as_array().unwrap().iter().find(|i| i["case_id"] == case.as_str());
        let item = item.unwrap_or_else(|| panic!("not on the backlog: {backlog}"));
        assert_eq!(item["source"], "caseload");
        assert_eq!(item["case"]["patient"]["family_name"], "Quibble");
    }

    // Another practitioner, a consultant of another arm, a consultant of the arm who does
    // not mentor it, and a trainee cannot see it, nor find it on a list or the backlog.
    for outsider in [&s.other_physio, &s.other_chair, &s.second_consultant, &s.trainee] {
        let path = format!("/api/mentorship/cases/{case}");
        let (status, body) = s.app.get(&outsider.token, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        let (status, list) = s.app.get(&outsider.token, "/api/mentorship/cases").await;
        if outsider.id == s.trainee.id {
            assert_eq!(status, StatusCode::FORBIDDEN, "{list}");
        } else {
            assert_eq!(list, json!([]), "{list}");
        }
        let (_, backlog) = s.app.get(&outsider.token, "/api/mentorship/backlog").await;
        assert!(!backlog.to_string().contains(NHS[0]), "{backlog}");
        let advice = s.advise(outsider, &case, json!({ "decision": "advice_given" })).await;
        assert_eq!(advice.0, StatusCode::NOT_FOUND, "{}", advice.1);
    }
    // The practitioner and the coordinator see it but do not advise.
    for viewer in [&s.physio, &s.coordinator] {
        let advice = s.advise(viewer, &case, json!({ "decision": "advice_given" })).await;
        assert_eq!(advice.0, StatusCode::FORBIDDEN, "{}", advice.1);
    }

    // Bad advice is refused with a stable code and changes nothing.
    let other_arm = s.create_session(s.other_plan(10)).await;
    let bad = [
        (json!({ "decision": "refer" }), StatusCode::UNPROCESSABLE_ENTITY, "invalid_decision"),
        (json!({ "decision": "book_mdt" }), StatusCode::UNPROCESSABLE_ENTITY, "required"),
        (
            json!({ "decision": "advice_given", "session_id": session }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unexpected_session",
        ),
        (
            json!({ "decision": "book_mdt", "session_id": other_arm }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "wrong_specialty",
        ),
        (
            json!({ "decision": "book_mdt", "session_id": uuid::Uuid::new_v4() }),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ];
    for (body, status, want) in bad {
        let answer = s.advise(&s.chair, &case, body.clone()).await;
        assert_eq!(code(&answer), (status, want), "{body}: {}", answer.1);
    }
    let (_, still) = s.app.get(&s.chair.token, &format!("/api/mentorship/cases/{case}")).await;
    assert_eq!(still["state"], "awaiting_advice", "{still}");
    assert_eq!(still["advice"], json!([]), "{still}");
    let (_, agenda) = s.app.get(&s.chair.token, &format!("/api/sessions/{session}")).await;
    assert_eq!(agenda["agenda"], json!([]), "{agenda}");

    // "Book into the MDT": one step, the case on the agenda with its details.
    let booked = s
        .advise(
            &s.chair,
            &case,
            json!({ "decision": "book_mdt", "session_id": session,
            "note": "Needs the MDT: MRI shows a large L4/5 disc" }),
        )
        .await;
    assert_eq!(booked.0, StatusCode::CREATED, "{}", booked.1);
    let booked_id = booked.1["booked_case"]["id"].as_str().unwrap().to_string();
    assert_eq!(booked.1["case"]["state"], "booked");
    assert_eq!(booked.1["case"]["booked_case_id"], booked_id.as_str());
    assert_eq!(booked.1["advice"]["decision"], "book_mdt");
    let (_, shown) = s.app.get(&s.chair.token, &format!("/api/sessions/{session}")).await;
    let agenda = shown["agenda"].as_array().unwrap();
    assert_eq!(agenda.len(), 1, "{shown}");
    let listed = &agenda[0];
    assert_eq!(listed["id"], booked_id.as_str());
    assert_eq!(listed["state"], "booked");
    assert_eq!(listed["referrer_id"], s.physio.id.as_str());
    assert_eq!(listed["patient"]["nhs_number"], NHS[0]);
    assert_eq!(listed["patient"]["date_of_birth"], "1978-05-17");
    assert_eq!(listed["clinical_question"], "Inflammatory back pain?");
    assert_eq!(listed["symptom_weeks"], 12);
    assert_eq!(listed["referral_source"], "gp");
    // The practitioner sees the booking as theirs; outsiders still cannot.
    let (status, _) = s.app.get(&s.physio.token, &format!("/api/cases/{booked_id}")).await;
    assert_eq!(status, StatusCode::OK);
    for outsider in [&s.other_physio, &s.other_chair, &s.trainee] {
        let (status, _) = s.app.get(&outsider.token, &format!("/api/cases/{booked_id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    // Advised, it has left the backlog; it takes no more advice.
    let (_, backlog) = s.app.get(&s.chair.token, "/api/mentorship/backlog").await;
    assert!(!ids(&backlog, "case_id").contains(&case), "{backlog}");
    let again = s.advise(&s.chair, &case, json!({ "decision": "advice_given" })).await;
    assert_eq!(code(&again), (StatusCode::CONFLICT, "already_booked"));

    // Other advice records a decision and takes the case off the backlog too.
    let second = s.add_caseload(&s.physio, NHS[1]).await;
    let phoned = s
        .advise(
            &s.chair,
            &second,
            json!({ "decision": "phone_follow_up", "note": "Ring in 2 weeks" }),
        )
        .await;
    assert_eq!(phoned.0, StatusCode::CREATED, "{}", phoned.1);
    assert_eq!(phoned.1["case"]["state"], "advised");
    let (_, backlog) = s.app.get(&s.chair.token, "/api/mentorship/backlog").await;
    assert!(!ids(&backlog, "case_id").contains(&second), "{backlog}");

    // Every read of a caseload case is audited, and found by the patient's NHS number.
    let events = s.app.state.store.audit_events().await.unwrap();
    let reads = |who: &Account, id: &str| {
        events.iter().any(|e| {
            e.action == "mentorship_case_read"
                && e.record_id.as_deref() == Some(id)
                && e.actor_id == Some(who.uid())
        })
    };
    assert!(reads(&s.physio, &case));
    assert!(reads(&s.chair, &case));
    let (status, trail) = s
        .app
        .post(&s.coordinator.token, "/api/audit/search", json!({ "nhs_number": NHS[0] }))
        .await;
    assert_eq!(status, StatusCode::OK, "{trail}");
    let actions = trail.to_string();
    for action in ["mentorship_case_added", "mentorship_case_read", "mentorship_advice_given"] {
        assert!(actions.contains(action), "{action} missing from {trail}");
    }
}

async fn bad_caseload_input_is_refused_and_nothing_is_written(backend: Backend) {
    let s = service(backend).await;
    let mut red = caseload(NHS[0]);
    red["red_flags"] = json!(["saddle anaesthesia"]);
    let cases = [
        (&s.physio, caseload("1234567890"), StatusCode::UNPROCESSABLE_ENTITY, "invalid_nhs_number"),
        (&s.physio, red, StatusCode::UNPROCESSABLE_ENTITY, "red_flags_present"),
        (&s.other_physio, caseload(NHS[0]), StatusCode::FORBIDDEN, "forbidden_specialty"),
        (&s.chair, caseload(NHS[0]), StatusCode::FORBIDDEN, "forbidden"),
        (&s.trainee, caseload(NHS[0]), StatusCode::FORBIDDEN, "forbidden"),
    ];
    for (who, body, status, want) in cases {
        let answer = s.app.post(&who.token, "/api/mentorship/cases", body).await;
        assert_eq!(code(&answer), (status, want), "{}", answer.1);
    }
    // A patient on record with another name is refused as a booking would be.
    let session = s.session(10, 4, false).await;
    s.book_case(&s.physio, &session, referral(NHS[1])).await;
    let mut renamed = caseload(NHS[1]);
    renamed["patient"]["given_name"] = json!("Hermia");
    let answer = s.app.post(&s.physio.token, "/api/mentorship/cases", renamed).await;
    assert_eq!(code(&answer), (StatusCode::CONFLICT, "patient_details_conflict"), "{}", answer.1);
    assert!(!answer.1.to_string().contains("Hermione"), "no recorded details: {}", answer.1);
    let mut unknown = caseload(NHS[0]);
    unknown["specialty"] = json!("podiatry");
    let answer = s.app.post(&s.physio.token, "/api/mentorship/cases", unknown).await;
    assert_eq!(code(&answer), (StatusCode::UNPROCESSABLE_ENTITY, "unknown_specialty"));
    let (_, all) = s.app.get(&s.coordinator.token, "/api/mentorship/cases").await;
    assert_eq!(all, json!([]));
}

async fn a_refused_booking_into_the_mdt_changes_nothing(backend: Backend) {
    let s = service(backend).await;
    s.spinal_contract(&s.chair, "2026-01-01").await;
    // A caseload case names NHS[2] otherwise than the booking that registers her after it.
    let open = s.session(10, 4, false).await;
    let mut renamed = caseload(NHS[2]);
    renamed["patient"]["family_name"] = json!("Otherwise");
    let (status, body) = s.app.post(&s.physio.token, "/api/mentorship/cases", renamed).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let conflicting = body["id"].as_str().unwrap().to_string();
    s.book_case(&s.physio, &open, referral(NHS[2])).await;
    // A full session: its one place taken.
    let full = s.session(12, 1, false).await;
    s.book_case(&s.physio, &full, referral(NHS[1])).await;
    let case = s.add_caseload(&s.physio, NHS[0]).await;
    let refusals = [
        (&conflicting, &open, "patient_details_conflict"),
        (&case, &full, "session_full"),
        (&case, &open, "ok"),
        (&case, &open, "already_booked"),
    ];
    for (case, session, want) in refusals {
        let before = s.app.get(&s.chair.token, &format!("/api/sessions/{session}")).await.1;
        let answer = s
            .advise(&s.chair, case, json!({ "decision": "book_mdt", "session_id": session }))
            .await;
        if want == "ok" {
            assert_eq!(answer.0, StatusCode::CREATED, "{}", answer.1);
            continue;
        }
        assert_eq!(code(&answer), (StatusCode::CONFLICT, want), "{}", answer.1);
        let after = s.app.get(&s.chair.token, &format!("/api/sessions/{session}")).await.1;
        assert_eq!(before, after, "the session is as it was");
        let (_, shown) = s.app.get(&s.chair.token, &format!("/api/mentorship/cases/{case}")).await;
        if want != "already_booked" {
            assert_eq!(shown["state"], "awaiting_advice", "{shown}");
            assert_eq!(shown["advice"], json!([]), "{shown}");
        } else {
            assert_eq!(shown["advice"].as_array().unwrap().len(), 1, "{shown}");
        }
    }
    let bookings = s.app.state.store.referrer_cases(s.physio.uid()).await.unwrap();
    assert_eq!(bookings.len(), 3, "the two bookings and the one advice booked");
}

/// The quarter: 1 April (a Wednesday) – 30 June 2026, 91 days; as Monday–Sunday weeks,
/// 1–5 April, twelve whole weeks from 6 April, and 29–30 June: 14 weeks.
const FROM: &str = "2026-04-01";
const TO: &str = "2026-06-30";

async fn a_covers_log_counts_and_a_quarter_with_two_weeks_of_leave_matches_by_hand(
    backend: Backend,
) {
    let s = service(backend).await;
    let contract = s.spinal_contract(&s.chair, "2026-01-01").await;
    // Dr Spine mentors 60 minutes on 1 April and every Monday from 6 April to 29 June
    // but for two weeks of leave from 4 May: 14 − 2 = 12 sessions.
    let mut day = chrono::NaiveDate::from_ymd_opt(2026, 4, 6).unwrap();
    let mut days = vec!["2026-04-01".to_string()];
    while day <= chrono::NaiveDate::from_ymd_opt(2026, 6, 29).unwrap() {
        if day.to_string() != "2026-05-04" && day.to_string() != "2026-05-11" {
            days.push(day.to_string());
        }
        day += chrono::Duration::days(7);
    }
    assert_eq!(days.len(), 12);
    for on in &days {
        s.spinal_log(&s.chair, on, 60).await;
    }
    // Dr Newton covers the first week of leave (45 minutes on 6 May); the second is
    // missed. Her mentoring outside the cover (20 May) is not the contract's.
    let cover = json!({ "consultant_id": s.second_consultant.id, "from": "2026-05-04", "to": "2026-05-10" });
    let (status, made) = s.cover(&s.coordinator, &contract, cover).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    s.spinal_log(&s.second_consultant, "2026-05-06", 45).await;
    s.spinal_log(&s.second_consultant, "2026-05-20", 30).await;

    // Bad covers are refused with stable codes and change nothing.
    let cover_by = |who: &Account, from: &str, to: &str| json!({ "consultant_id": who.id, "from": from, "to": to });
    let bad = [
        (&s.coordinator, cover_by(&s.chair, "2026-05-11", "2026-05-17"), 422, "invalid_cover"),
        (
            &s.coordinator,
            cover_by(&s.second_consultant, "2025-12-01", "2025-12-05"),
            422,
            "cover_outside_contract",
        ),
        (
            &s.coordinator,
            cover_by(&s.second_consultant, "2026-05-17", "2026-05-11"),
            422,
            "invalid_date_range",
        ),
        (
            &s.coordinator,
            cover_by(&s.other_chair, "2026-05-11", "2026-05-17"),
            422,
            "consultant_not_in_specialty",
        ),
        (&s.coordinator, cover_by(&s.physio, "2026-05-11", "2026-05-17"), 422, "not_a_consultant"),
        (
            &s.coordinator,
            cover_by(&s.second_consultant, "2026-05-10", "2026-05-12"),
            409,
            "cover_overlaps",
        ),
        (&s.chair, cover_by(&s.second_consultant, "2026-05-11", "2026-05-17"), 403, "forbidden"),
    ];
    for (who, body, status, want) in bad {
        let answer = s.cover(who, &contract, body.clone()).await;
        assert_eq!(code(&answer), (StatusCode::from_u16(status).unwrap(), want), "{body}");
    }
    let unknown = s
        .cover(
            &s.coordinator,
            &uuid::Uuid::new_v4().to_string(),
            cover_by(&s.second_consultant, FROM, FROM),
        )
        .await;
    assert_eq!(code(&unknown), (StatusCode::NOT_FOUND, "not_found"));

    // By hand: contracted 60 × 52 × 91 / 364 = 780; delivered 12 × 60 + 45 = 765, of
    // which 45 covered; shortfall 15; one week (11–17 May) with no mentoring at all.
    let path = format!("/api/mentorship/summary?from={FROM}&to={TO}");
    for viewer in [&s.coordinator, &s.chair] {
        let (status, summary) = s.app.get(&viewer.token, &path).await;
        assert_eq!(status, StatusCode::OK, "{summary}");
        let row = summary
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["contract_id"] == contract.as_str())
            .unwrap_or_else(|| panic!("no row: {summary}"));
        assert_eq!(row["contracted_minutes"], 780, "{row}");
        assert_eq!(row["delivered_minutes"], 765, "{row}");
        assert_eq!(row["covered_minutes"], 45, "{row}");
        assert_eq!(row["shortfall_minutes"], 15, "{row}");
        assert_eq!(row["missed_weeks"], 1, "{row}");
        let covers = row["covers"].as_array().unwrap();
        assert_eq!(covers.len(), 1, "{row}");
        assert_eq!(covers[0]["consultant_id"], s.second_consultant.id.as_str());
        assert_eq!(covers[0]["minutes"], 45);
        assert_eq!(
            (covers[0]["from"].as_str(), covers[0]["to"].as_str()),
            (Some("2026-05-04"), Some("2026-05-10"))
        );
    }
    // Without the cover's log the covered week would be missed too: the same quarter for
    // a second contract with no logs misses all 14 weeks.
    let newton = s.spinal_contract(&s.other_physio_consultant().await, "2026-01-01").await;
    let (_, summary) = s.app.get(&s.coordinator.token, &path).await;
    let row = summary.as_array().unwrap().iter().find(|r| r["contract_id"] == newton.as_str());
    assert_eq!(row.unwrap()["missed_weeks"], 14, "{summary}");
}

impl Clinic {
    /// A third spinal consultant, with no mentoring of their own.
    async fn other_physio_consultant(&self) -> Account {
        self.account("third@example.org", "Dr Ola Third", Role::Consultant, "spinal").await
    }
}

async fn a_fifth_supervisee_is_refused_and_one_assessment_a_month_is_below_target(
    backend: Backend,
) {
    let s = service(backend).await;
    let mut practitioners = vec![s.physio.id.clone()];
    for i in 1..=4 {
        let who = s
            .account(
                &format!("fcp{i}@example.org"),
                &format!("Fran Cee {i}"),
                Role::Practitioner,
                "spinal",
            )
            .await;
        practitioners.push(who.id);
    }
    for p in &practitioners[..4] {
        let (status, body) = s.assign(&s.coordinator, p, &s.chair.id).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    // Naming the same supervisor again changes nothing.
    let (status, _) = s.assign(&s.coordinator, &practitioners[0], &s.chair.id).await;
    assert_eq!(status, StatusCode::OK);
    // The fifth is refused with a clear code; nothing is written.
    let fifth = s.assign(&s.coordinator, &practitioners[4], &s.chair.id).await;
    assert_eq!(code(&fifth), (StatusCode::CONFLICT, "supervisor_full"), "{}", fifth.1);
    assert!(fifth.1["message"].as_str().unwrap().contains('4'), "{}", fifth.1);
    let (_, all) = s.app.get(&s.coordinator.token, "/api/supervision/assignments").await;
    assert_eq!(all.as_array().unwrap().len(), 4, "{all}");
    // Other bad assignments.
    let bad = [
        (&s.coordinator, s.trainee.id.clone(), s.chair.id.clone(), 422, "invalid_supervisee"),
        (&s.coordinator, practitioners[4].clone(), s.trainee.id.clone(), 422, "invalid_supervisor"),
        (
            &s.coordinator,
            practitioners[4].clone(),
            practitioners[4].clone(),
            422,
            "invalid_supervisor",
        ),
        (
            &s.coordinator,
            practitioners[4].clone(),
            uuid::Uuid::new_v4().to_string(),
            422,
            "unknown_user",
        ),
        (&s.coordinator, practitioners[4].clone(), "me".to_string(), 422, "invalid_id"),
        (&s.chair, practitioners[4].clone(), s.chair.id.clone(), 403, "forbidden"),
    ];
    for (who, supervisee, supervisor, status, want) in bad {
        let answer = s.assign(who, &supervisee, &supervisor).await;
        assert_eq!(code(&answer), (StatusCode::from_u16(status).unwrap(), want), "{}", answer.1);
    }
    // Moving one supervisee to Dr Newton frees a place.
    let (status, _) = s.assign(&s.coordinator, &practitioners[3], &s.second_consultant.id).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = s.assign(&s.coordinator, &practitioners[4], &s.chair.id).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // This month (supervisors are named from today): one assessment for Ellis, two for
    // Fran Cee 1; one for Ellis last month does not count.
    let (month, first, before) = this_month();
    let assessment = |who: &str, on: &str| {
        json!({ "supervisee_id": who, "kind": "case_based_discussion", "occurred_on": on,
                "outcome": "meets_expectations" })
    };
    for (who, on) in [
        (&practitioners[0], &first),
        (&practitioners[1], &first),
        (&practitioners[1], &first),
        (&practitioners[0], &before),
    ] {
        let (status, body) = s.assess(&s.chair, assessment(who, on)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    // Only the supervisee's supervisor assesses; bad values are refused.
    let with = |patch: Value| {
        let mut body = assessment(&practitioners[0], &first);
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let bad = [
        (&s.second_consultant, with(json!({})), 403, "not_supervisor"),
        (&s.chair, with(json!({ "kind": "chat" })), 422, "invalid_kind"),
        (&s.chair, with(json!({ "outcome": "great" })), 422, "invalid_outcome"),
        (&s.chair, with(json!({ "occurred_on": "2099-01-01" })), 422, "date_in_future"),
        (&s.chair, with(json!({ "occurred_on": "2026-11-31" })), 422, "invalid_date"),
        (
            &s.chair,
            with(json!({ "reflection": "Saw 943 476 5919 with sciatica" })),
            422,
            "patient_identifier",
        ),
    ];
    for (who, body, status, want) in bad {
        let answer = s.assess(who, body.clone()).await;
        assert_eq!(code(&answer), (StatusCode::from_u16(status).unwrap(), want), "{body}");
    }
    let path = format!("/api/supervision/summary?month={month}");
    let (status, summary) = s.app.get(&s.coordinator.token, &path).await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    let row = |summary: &Value, who: &str| {
        summary
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["supervisee_id"] == who)
            .cloned()
            .unwrap_or_else(|| panic!("no row for {who}: {summary}"))
    };
    let ellis = row(&summary, &practitioners[0]);
    assert_eq!(
        (&ellis["assessments"], &ellis["target"], &ellis["below_target"]),
        (&json!(1), &json!(2), &json!(true))
    );
    let fran = row(&summary, &practitioners[1]);
    assert_eq!((&fran["assessments"], &fran["below_target"]), (&json!(2), &json!(false)));
    assert_eq!(summary.as_array().unwrap().len(), 5, "{summary}");
    // A supervisor sees their own supervisees; a supervisee themselves.
    let (_, mine) = s.app.get(&s.second_consultant.token, &path).await;
    assert_eq!(ids(&mine, "supervisee_id"), [practitioners[3].clone()]);
    let (_, own) = s.app.get(&s.physio.token, &path).await;
    assert_eq!(ids(&own, "supervisee_id"), [practitioners[0].clone()]);
    for month in ["2026-13", "November", ""] {
        let path = format!("/api/supervision/summary?month={month}");
        let answer = s.app.get(&s.coordinator.token, &path).await;
        assert_eq!(code(&answer), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_month"));
    }
}

/// This month (UK) as `YYYY-MM`, its first day, and the day before it.
fn this_month() -> (String, String, String) {
    let today = mdt_coordinator::domain::mentorship::clinic_date(chrono::Utc::now());
    let first = today.with_day(1).unwrap();
    let before = first.pred_opt().unwrap();
    (today.format("%Y-%m").to_string(), first.to_string(), before.to_string())
}

async fn the_limit_and_the_target_are_settings(backend: Backend) {
    let s = Clinic::of(backend, "spinal", "pain", |settings| {
        settings.supervision.max_supervisees = 1;
        settings.supervision.monthly_assessment_target = 1;
    })
    .await;
    let (status, _) = s.assign(&s.coordinator, &s.physio.id, &s.chair.id).await;
    assert_eq!(status, StatusCode::CREATED);
    let second = s.assign(&s.coordinator, &s.other_physio.id, &s.chair.id).await;
    assert_eq!(code(&second), (StatusCode::CONFLICT, "supervisor_full"));
    let (month, first, _) = this_month();
    let body = json!({ "supervisee_id": s.physio.id, "kind": "joint_clinic",
        "occurred_on": first, "outcome": "development_needed" });
    assert_eq!(s.assess(&s.chair, body).await.0, StatusCode::CREATED);
    let path = format!("/api/supervision/summary?month={month}");
    let (_, summary) = s.app.get(&s.coordinator.token, &path).await;
    assert_eq!(summary[0]["target"], 1, "{summary}");
    assert_eq!(summary[0]["below_target"], false, "{summary}");
}

async fn the_mentees_certificate_lists_mentoring_and_assessments_and_the_portfolio_names_no_patient(
    backend: Backend,
) {
    let s = service(backend).await;
    s.spinal_contract(&s.chair, "2026-01-01").await;
    // Patient data everywhere around the mentee: a caseload case, an MDT case discussed
    // in their mentoring.
    let caseload_case = s.add_caseload(&s.physio, NHS[0]).await;
    let session = s.session(10, 4, false).await;
    let mdt_case = s.book_case(&s.physio, &session, referral(NHS[1])).await;
    let log = json!({ "consultant_id": s.chair.id, "mentee_ids": [s.physio.id],
        "occurred_on": "2026-11-05", "duration_minutes": 45, "kind": "case_review",
        "case_ids": [mdt_case], "learning_points": ["Hermione Quibble's MRI: read the sagittal views"],
        "specialty": "spinal" });
    let (status, body) = s.app.post(&s.chair.token, "/api/mentorship/logs", log).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let advice =
        s.advise(&s.chair, &caseload_case, json!({ "decision": "joint_assessment" })).await;
    assert_eq!(advice.0, StatusCode::CREATED, "{}", advice.1);
    let (status, _) = s.assign(&s.coordinator, &s.physio.id, &s.chair.id).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, assessment) = s
        .assess(
            &s.chair,
            json!({ "supervisee_id": s.physio.id, "kind": "direct_observation",
            "occurred_on": "2026-11-06", "outcome": "development_needed" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{assessment}");
    let id = assessment["id"].as_str().unwrap();

    // The supervisee writes the reflection (no NHS number in it; nobody else writes it).
    let path = format!("/api/supervision/assessments/{id}/reflection");
    let reflect = async |who: &Account, text: &str| {
        let body = json!({ "reflection": text });
        s.app.send(Method::PUT, &who.token, &path, Some(body)).await
    };
    let refused = reflect(&s.physio, "Patient 9912003888 was anxious").await;
    assert_eq!(code(&refused), (StatusCode::UNPROCESSABLE_ENTITY, "patient_identifier"));
    let stranger = reflect(&s.other_physio, "Not mine").await;
    assert_eq!(stranger.0, StatusCode::NOT_FOUND);
    let blank = reflect(&s.physio, "   ").await;
    assert_eq!(code(&blank), (StatusCode::UNPROCESSABLE_ENTITY, "required"));
    let written = reflect(&s.physio, "I rushed the neuro exam; next time slow down.").await;
    assert_eq!(written.0, StatusCode::OK, "{}", written.1);

    // The CPD record and certificate list the mentoring minutes and the assessment.
    let (_, record) = s.app.get(&s.physio.token, "/api/me/attendance").await;
    assert_eq!(record["mentoring_minutes"], 45, "{record}");
    assert_eq!(record["mentoring"][0]["kind"], "case_review", "{record}");
    assert_eq!(record["assessments"][0]["kind"], "direct_observation", "{record}");
    assert_eq!(record["cpd_hours"], 0.75, "{record}");
    let (status, certificate) = s.text(&s.physio, "/api/me/attendance/certificate").await;
    assert_eq!(status, StatusCode::OK);
    assert!(certificate.contains("Mentoring received"), "{certificate}");
    assert!(
        certificate.contains(
            "<td>5 November 2026</td><td>spinal</td><td>case review</td><td class=\"num\">45</td>"
        ),
        "{certificate}"
    );
    assert!(certificate.contains("45 minutes (0.75 CPD hours)"), "{certificate}");
    assert!(
        certificate.contains(
            "<td>6 November 2026</td><td>direct observation</td><td>development needed</td>"
        ),
        "{certificate}"
    );
    assert!(certificate.contains("and 1 assessment."), "{certificate}");

    // The portfolio is printable and holds no patient's NHS number, name or birth date.
    let res = s.get(&s.physio, "/api/me/portfolio").await;
    assert_eq!(res.status(), StatusCode::OK);
    let kind = res.headers()["content-type"].to_str().unwrap().to_string();
    assert!(kind.starts_with("text/html"), "{kind}");
    let portfolio = res.text().await.unwrap();
    assert!(portfolio.contains("Named supervisor: Dr Sam Spine"), "{portfolio}");
    assert!(portfolio.contains("I rushed the neuro exam; next time slow down."), "{portfolio}");
    assert!(portfolio.contains("direct observation"), "{portfolio}");
    assert!(
        portfolio.contains("<td>November 2026</td><td class=\"num\">1</td><td>below target</td>"),
        "{portfolio}"
    );
    assert!(portfolio.contains("45 minutes"), "{portfolio}");
    for secret in
        NHS.iter().copied().chain(["Hermione", "Quibble", "1978-05-17", "17 May 1978", "A81001"])
    {
        assert!(!portfolio.contains(secret), "the portfolio leaks {secret}: {portfolio}");
        assert!(!certificate.contains(secret), "the certificate leaks {secret}: {certificate}");
    }
}

crate::on_both_backends!(
    a_caseload_case_booked_into_the_mdt_lands_on_the_agenda_and_only_its_circle_sees_it,
    bad_caseload_input_is_refused_and_nothing_is_written,
    a_refused_booking_into_the_mdt_changes_nothing,
    a_covers_log_counts_and_a_quarter_with_two_weeks_of_leave_matches_by_hand,
    a_fifth_supervisee_is_refused_and_one_assessment_a_month_is_below_target,
    the_limit_and_the_target_are_settings,
    the_mentees_certificate_lists_mentoring_and_assessments_and_the_portfolio_names_no_patient,
);
