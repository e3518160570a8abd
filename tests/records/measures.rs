//! What the services measure (issue 17): a quarter of spinal MDT referrals from three GP
//! practices is seeded through the store (proforma referral dates, triage decisions with
//! a return and a resubmission, urgent and routine cases, one case from before referral
//! dates existed, a decision outside the meeting, a triage decision after midnight in
//! British Summer Time, bank holidays) and the waits from the referral, the targets, the
//! practices' comparison and the practice summary must match figures worked out by hand.
//!
//! The quarter (2026-04-01 – 2026-06-30, UK dates; BST throughout). Sessions: S1 21 Apr,
//! S2 19 May, S3 16 Jun (12:00 UTC). Practices: P1 A81001 (4,000 patients), P2 B82002
//! (10,000), P3 C83003 (no list size). Bank holidays: 3 Apr, 6 Apr, 4 May.
//!
//! | case | practice | urgency | referral | first triage (UK date) | session | discussion | outcome |
//! |------|----------|---------|----------|------------------------|---------|------------|---------|
//! | k1   | P1 | routine | 30 Mar | accept 1 Apr            | S1 | live   | MRI; orthopaedics |
//! | k2   | P1 | urgent  | 13 Apr | accept 14 Apr           | S1 | live   | GP discharge |
//! | k3   | P2 | routine | 2 Apr  | accept 3 Apr (00:30 BST; 2 Apr in UTC) | S1 | live | x-ray; pain clinic |
//! | k4   | P3 | routine | 8 Apr  | return 8 Apr, resubmitted, accept 9 Apr | S1 | live | MRI; GP discharge |
//! | k5   | P2 | routine | 20 Mar | accept 25 Mar           | S2 | live   | orthopaedics |
//! | k6   | P2 | urgent  | 11 May | accept 11 May           | S2 | outside the meeting | MRI; spinal surgery |
//! | k7   | P1 | routine | 27 Apr | return 28 Apr (still returned) | S2 | – | – |
//! | k8   | P3 | routine | none (booked 1 May) | accept 1 May | S2 | live | GP discharge |
//! | k9   | P1 | routine | 5 May  | accept 7 May            | S3 | live   | physiotherapy |
//! | k10  | P2 | routine | 1 May  | accept 5 May            | S3 | live   | orthopaedics |
//!
//! Referral → first triage decision (calendar days; within one working day?):
//! k1 2 (due 31 Mar: no), k2 1 (yes), k3 1 (due 7 Apr over Easter: yes), k4 0 (yes),
//! k5 5 (due 23 Mar: no), k6 0 (yes), k7 1 (yes), k8 0 from booking (yes),
//! k9 2 (due 6 May: no), k10 4 (due 5 May over the bank holiday: yes).
//! - April (S1: k1–k4): [0,1,1,2] → median 1.0, p90 (rank ⌈3.6⌉=4) 2, within 3/4 = 75.0%.
//! - May (S2: k5–k8): [0,0,1,5] → median 0.5, p90 5, within 3/4 = 75.0%, 1 from booking.
//! - June (S3: k9, k10): [2,4] → median 3.0, p90 (rank 2) 4, within 1/2 = 50.0%.
//! - Quarter: [0,0,0,1,1,1,2,2,4,5] → median 1.0, p90 (rank 9) 4, within 7/10 = 70.0%.
//!
//! Referral → discussion (discussed, or decided outside the meeting on its session's
//! date; k7 is not decided), calendar days: k1 22, k2 8 (urgent), k3 19, k4 13, k5 60,
//! k6 8 (urgent), k8 18 (from booking), k9 42, k10 46.
//! Targets (defaults): any ≤ 42 days 90%, any ≤ 126 days 100%, urgent ≤ 5 days 100%,
//! routine ≤ 28 days 100%.
//! - April: [8,13,19,22] → median 16.0, p90 22; ≤42 4/4; ≤126 4/4; urgent 0/1; routine 3/3.
//! - May: [8,18,60] → median 18.0, p90 60; ≤42 2/3 = 66.7%; ≤126 3/3; urgent 0/1;
//!   routine 1/2 = 50.0%; 1 from booking.
//! - June: [42,46] → median 44.0, p90 46; ≤42 1/2 = 50.0%; ≤126 2/2; urgent none;
//!   routine 0/2.
//! - Quarter: [8,8,13,18,19,22,42,46,60] → median 19.0, p90 (rank ⌈8.1⌉=9) 60; ≤42 7/9 =
//!   77.8%; ≤126 9/9; urgent 0/2; routine 4/7 = 57.1%; weeks: 8,8,13 → week 1; 18,19 →
//!   week 2; 22 → week 3; 42,46 → week 6; 60 → week 8.
//!
//! Practices (referrals; per 1,000; triage decisions, accepted, returned; decided; median
//! days to triage; to discussion median, p90, within 6 weeks; signed, MRI, discharged,
//! onward):
//! - P1: 4; 4/4,000 = 1.0; 4, 3, 1 (25.0%); 3; [1,1,2,2] → 1.5; [8,22,42] → 22.0, 42,
//!   100.0%; 3, 1 (33.3%), 1 (33.3%), 2 (66.7%: orthopaedics, physiotherapy).
//! - P2: 4; 4/10,000 = 0.4; 4, 4, 0 (0.0%); 4; [0,1,4,5] → 2.5; [8,19,46,60] → 32.5, 60,
//!   50.0%; 4, 1 (25.0%), 0 (0.0%), 4 (100.0%: orthopaedics 2, pain clinic, spinal surgery).
//! - P3: 2; –; 3, 2, 1 (33.3%); 2; [0,0] → 0.0; [13,18] → 15.5, 18, 100.0%; 2, 1 (50.0%),
//!   2 (100.0%), 0 (0.0%).
//! - Locality medians over the three: referrals 4.0; per 1,000 (1.0, 0.4) 0.7; returned
//!   25.0; days to triage 1.5; days to discussion 22.0; within 6 weeks 100.0; MRI 33.3;
//!   discharged 33.3; onward 66.7.

use chrono::{DateTime, NaiveDate, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use mdt_coordinator::domain::live::{EventBody, NewLiveEvent};
use mdt_coordinator::domain::proforma::Proforma;
use mdt_coordinator::domain::schedule::SessionPlan;
use mdt_coordinator::domain::triage::{Decision, ReturnReason};
use mdt_coordinator::domain::{
    BodySite, ClinicalText, NewAuditEvent, NewCase, NhsNumber, OdsCode, OutcomeDraft,
    OutcomeVersion, PatientDetails, PersonName, Role, Sex, Specialty, Urgency, UserId,
};
use mdt_coordinator::store::DynStore;

use crate::common::clinic::nhs_numbers;
use crate::common::{Backend, TestApp};

fn t(s: &str) -> DateTime<Utc> {
    s.parse().expect("test time")
}

fn audit(action: &str) -> NewAuditEvent {
    NewAuditEvent::new(action, "case")
}

const GIVEN: &str = "Quillon";
const FAMILY: &str = "Abernethy";

struct Seeded {
    app: TestApp,
    store: DynStore,
    coordinator: String,
    consultant: String,
    coordinator_id: UserId,
    chair: UserId,
    referrer: UserId,
    nhs: Vec<String>,
    next: usize,
    case_ids: Vec<Uuid>,
}

impl Seeded {
    async fn book(
        &mut self, session: Uuid, practice: &str, urgency: Urgency, referral: Option<&str>,
        at: &str,
    ) -> Uuid {
        let i = self.next;
        self.next += 1;
        let id = Uuid::new_v4();
        let mut proforma = Proforma::example(NaiveDate::from_ymd_opt(2026, 6, 1).unwrap());
        proforma.referral_received_on = referral.unwrap_or("2026-01-01").parse().unwrap();
        let case = NewCase {
            id,
            session_id: session,
            referrer_id: self.referrer,
            patient: PatientDetails {
                nhs_number: NhsNumber::parse(&self.nhs[i]).unwrap(),
                given_name: PersonName::parse(GIVEN).unwrap(),
                family_name: PersonName::parse(FAMILY).unwrap(),
                date_of_birth: NaiveDate::from_ymd_opt(1950 + i as i32, 7, 19).unwrap(),
                sex: if i.is_multiple_of(2) { Sex::Female } else { Sex::Male },
                gp_practice_code: OdsCode::parse(practice).unwrap(),
            },
            clinical_question: ClinicalText::parse("Radicular pain?", "clinical_question").unwrap(),
            history: ClinicalText::parse("Eight weeks of leg pain.", "history").unwrap(),
            urgency,
            body_site: BodySite::parse("lower back").unwrap(),
            free_text_identifies_patient: false,
            idempotency_key: None,
            patient_update: Default::default(),
            proforma,
        };
        self.store.book_case(case, audit("case_booked").record(id), vec![], t(at)).await.unwrap();
        if referral.is_none() {
            // Booked before the proforma existed: none of its columns are filled.
            let sql = format!(
                "UPDATE cases SET referral_received_on = NULL, referral_source = NULL, \
                 proforma = NULL WHERE id = '{id}'"
            );
            self.app.db.raw(&sql).await.unwrap();
        }
        self.case_ids.push(id);
        id
    }

    async fn triage(&self, case: Uuid, decision: Decision, at: &str) {
        let (by, event) = (self.coordinator_id, audit("case_triaged"));
        self.store.triage_case(case, &decision, by, event, vec![], t(at)).await.unwrap();
    }

    async fn live(&self, session: Uuid, at: &str, body: EventBody) {
        let event = NewLiveEvent { body, actor: Some(self.chair), command_id: None };
        self.store.append_live_events(session, None, vec![event], t(at)).await.unwrap();
    }

    /// Opens `session` at `at`, discusses `cases` ten minutes each, and closes it.
    async fn meeting(&self, session: Uuid, at: DateTime<Utc>, cases: &[Uuid]) {
        let stamp = |m: i64| (at + chrono::Duration::minutes(m)).to_rfc3339();
        self.live(session, &stamp(0), EventBody::MeetingOpened).await;
        for (i, case) in cases.iter().enumerate() {
            let start = 1 + 10 * i as i64;
            self.live(session, &stamp(start), EventBody::CaseStarted { case_id: *case }).await;
            let end = EventBody::CaseCompleted { case_id: *case };
            self.live(session, &stamp(start + 10), end).await;
        }
        self.live(session, &stamp(90), EventBody::MeetingClosed).await;
    }

    async fn sign(&self, case: Uuid, at: &str, outside: bool, outcome: Value) {
        let draft: OutcomeDraft = serde_json::from_value(outcome).unwrap();
        let store = &self.store;
        store
            .draft_outcome(case, draft, self.chair, audit("outcome_drafted"), t(at))
            .await
            .unwrap();
        let draft = store.outcome_versions(case).await.unwrap().pop().unwrap();
        let reason = outside.then(|| "Decided from the referral and imaging".to_string());
        let draft = OutcomeVersion { outside_meeting_reason: reason, ..draft };
        let signed = draft.signed(self.chair, t(at));
        store
            .sign_outcome(case, &signed, audit("outcome_signed"), None, &[], Uuid::new_v4())
            .await
            .unwrap();
    }
}

fn outcome(investigations: &[&str], destinations: &[&str]) -> Value {
    let investigations: Vec<Value> =
        investigations.iter().map(|k| json!({ "kind": k, "urgency": "routine" })).collect();
    let referrals: Vec<Value> = destinations
        .iter()
        .map(|d| json!({ "destination": d, "urgency": "routine", "reason": "Next step" }))
        .collect();
    json!({ "investigations": investigations, "referrals": referrals,
            "management_plan": { "text": "Plan" }, "follow_up": { "kind": "none" } })
}

async fn seed(backend: Backend) -> Seeded {
    let app = TestApp::spawn(backend).await.expect("backend available");
    let (coordinator, coordinator_id) = crate::common::sign_up(
        &app,
        "coord@example.org",
        "Cora Ordinator",
        Role::Coordinator,
        "spinal",
    )
    .await;
    let (consultant, chair) = crate::common::sign_up(
        &app,
        "chair@example.org",
        "Spencer Spine",
        Role::Consultant,
        "spinal",
    )
    .await;
    let (_, referrer) = crate::common::sign_up(
        &app,
        "fcp@example.org",
        "Fenella Contact",
        Role::Practitioner,
        "spinal",
    )
    .await;
    let mut s = Seeded {
        store: app.state.store.clone(),
        app,
        coordinator,
        consultant,
        coordinator_id: UserId(coordinator_id.parse().unwrap()),
        chair: UserId(chair.parse().unwrap()),
        referrer: UserId(referrer.parse().unwrap()),
        nhs: nhs_numbers(12),
        next: 0,
        case_ids: Vec::new(),
    };
    let session = |starts: &str| {
        let plan = SessionPlan {
            specialty: Specialty::parse("spinal").unwrap(),
            title: "Spinal MDT".into(),
            duration_minutes: 120,
            case_capacity: 8,
            minutes_per_case: 10,
            booking_cutoff_hours: 48,
            chair_id: s.chair,
            teaching: false,
        };
        let store = s.store.clone();
        let at = t(starts);
        async move { store.create_session(plan, at).await.unwrap().id }
    };
    let s1 = session("2026-04-21T12:00:00Z").await;
    let s2 = session("2026-05-19T12:00:00Z").await;
    let s3 = session("2026-06-16T12:00:00Z").await;
    let (routine, urgent) = (Urgency::Routine, Urgency::Urgent);
    let returned = || Decision::Return {
        reason: ReturnReason::parse("incomplete_proforma").unwrap(),
        note: None,
    };

    let k5 = s.book(s2, "B82002", routine, Some("2026-03-20"), "2026-03-25T09:00:00Z").await;
    s.triage(k5, Decision::Accept, "2026-03-25T12:00:00Z").await;
    let k1 = s.book(s1, "A81001", routine, Some("2026-03-30"), "2026-04-01T09:00:00Z").await;
    s.triage(k1, Decision::Accept, "2026-04-01T15:00:00Z").await;
    let k3 = s.book(s1, "B82002", routine, Some("2026-04-02"), "2026-04-02T11:00:00Z").await;
    s.triage(k3, Decision::Accept, "2026-04-02T23:30:00Z").await;
    let k4 = s.book(s1, "C83003", routine, Some("2026-04-08"), "2026-04-08T09:00:00Z").await;
    s.triage(k4, returned(), "2026-04-08T14:00:00Z").await;
    s.store.resubmit_case(k4, audit("case_resubmitted"), t("2026-04-09T08:00:00Z")).await.unwrap();
    s.triage(k4, Decision::Accept, "2026-04-09T10:00:00Z").await;
    let k2 = s.book(s1, "A81001", urgent, Some("2026-04-13"), "2026-04-14T09:00:00Z").await;
    s.triage(k2, Decision::Accept, "2026-04-14T10:00:00Z").await;
    let k7 = s.book(s2, "A81001", routine, Some("2026-04-27"), "2026-04-28T09:00:00Z").await;
    s.triage(k7, returned(), "2026-04-28T13:00:00Z").await;
    let k8 = s.book(s2, "C83003", routine, None, "2026-05-01T09:00:00Z").await;
    s.triage(k8, Decision::Accept, "2026-05-01T10:00:00Z").await;
    let k10 = s.book(s3, "B82002", routine, Some("2026-05-01"), "2026-05-04T09:00:00Z").await;
    s.triage(k10, Decision::Accept, "2026-05-05T09:00:00Z").await;
    let k9 = s.book(s3, "A81001", routine, Some("2026-05-05"), "2026-05-06T09:00:00Z").await;
    s.triage(k9, Decision::Accept, "2026-05-07T09:00:00Z").await;
    let k6 = s.book(s2, "B82002", urgent, Some("2026-05-11"), "2026-05-11T09:00:00Z").await;
    s.triage(k6, Decision::Accept, "2026-05-11T10:00:00Z").await;

    s.meeting(s1, t("2026-04-21T12:00:00Z"), &[k1, k2, k3, k4]).await;
    s.sign(k1, "2026-04-21T15:00:00Z", false, outcome(&["mri"], &["orthopaedics"])).await;
    s.sign(k2, "2026-04-21T15:00:00Z", false, outcome(&[], &["gp_discharge"])).await;
    s.sign(k3, "2026-04-21T15:00:00Z", false, outcome(&["xray"], &["pain_clinic"])).await;
    s.sign(k4, "2026-04-21T15:00:00Z", false, outcome(&["mri"], &["gp_discharge"])).await;
    s.meeting(s2, t("2026-05-19T12:00:00Z"), &[k5, k8]).await;
    s.sign(k5, "2026-05-19T15:00:00Z", false, outcome(&[], &["orthopaedics"])).await;
    s.sign(k8, "2026-05-19T15:00:00Z", false, outcome(&[], &["gp_discharge"])).await;
    s.sign(k6, "2026-05-19T15:00:00Z", true, outcome(&["mri"], &["spinal_surgery"])).await;
    s.meeting(s3, t("2026-06-16T12:00:00Z"), &[k9, k10]).await;
    s.sign(k9, "2026-06-16T15:00:00Z", false, outcome(&[], &["physiotherapy"])).await;
    s.sign(k10, "2026-06-16T15:00:00Z", false, outcome(&[], &["orthopaedics"])).await;
    let _ = k7;
    s
}

const QUARTER: &str = "from=2026-04-01&to=2026-06-30";

fn figures<'a>(report: &'a Value, month: Option<&str>) -> &'a Value {
    let list = if month.is_some() { &report["months"] } else { &report["totals"] };
    let spinal = |f: &&Value| f["specialty"] == "spinal" && f["month"].as_str() == month;
    list.as_array().unwrap().iter().find(spinal).unwrap()
}

/// A target's result: `within` of `cases`, the share, and whether it is met.
fn target(
    (measure, urgency, days, kind, share): (&str, &str, u32, &str, f64), within: u32, cases: u32,
    percent: Option<f64>,
) -> Value {
    json!({
        "measure": measure, "urgency": urgency, "within_days": days, "day_kind": kind,
        "target_percent": share, "cases": cases, "within": within, "percent": percent,
        "met": if cases == 0 { Value::Null } else { json!(percent.unwrap_or(0.0) >= share) },
    })
}

fn weeks(at: &[(usize, u32)]) -> Value {
    let mut w = vec![0u32; 27];
    for (i, n) in at {
        w[*i] = *n;
    }
    json!(w)
}

/// Referral → triage: measured, from booking, median, p90, within one working day.
fn to_triage(measured: u32, from_booking: u32, median: f64, p90: i64, within: u32) -> Value {
    let percent = (f64::from(within) * 1000.0 / f64::from(measured)).round() / 10.0;
    json!({
        "measured": measured, "counted_from_booking": from_booking,
        "median_days": median, "p90_days": p90,
        "targets": [target(("referral_to_triage", "any", 1, "working", 100.0), within, measured, Some(percent))],
        "weeks": weeks(&[(0, measured)]),
    })
}

async fn waits_from_the_referral_match_the_hand_computed_quarter(backend: Backend) {
    let s = seed(backend).await;
    let (status, report) =
        s.app.get(&s.coordinator, &format!("/api/reports/activity?{QUARTER}")).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let d = "referral_to_discussion";
    let expected = [
        (
            Some("2026-04"),
            to_triage(4, 0, 1.0, 2, 3),
            json!({
                "measured": 4, "counted_from_booking": 0, "median_days": 16.0, "p90_days": 22,
                "targets": [
                    target((d, "any", 42, "calendar", 90.0), 4, 4, Some(100.0)),
                    target((d, "any", 126, "calendar", 100.0), 4, 4, Some(100.0)),
                    target((d, "urgent", 5, "calendar", 100.0), 0, 1, Some(0.0)),
                    target((d, "routine", 28, "calendar", 100.0), 3, 3, Some(100.0)),
                ],
                "weeks": weeks(&[(1, 2), (2, 1), (3, 1)]),
            }),
        ),
        (
            Some("2026-05"),
            to_triage(4, 1, 0.5, 5, 3),
            json!({
                "measured": 3, "counted_from_booking": 1, "median_days": 18.0, "p90_days": 60,
                "targets": [
                    target((d, "any", 42, "calendar", 90.0), 2, 3, Some(66.7)),
                    target((d, "any", 126, "calendar", 100.0), 3, 3, Some(100.0)),
                    target((d, "urgent", 5, "calendar", 100.0), 0, 1, Some(0.0)),
                    target((d, "routine", 28, "calendar", 100.0), 1, 2, Some(50.0)),
                ],
                "weeks": weeks(&[(1, 1), (2, 1), (8, 1)]),
            }),
        ),
        (
            Some("2026-06"),
            {
                let mut v = to_triage(2, 0, 3.0, 4, 1);
                v["weeks"] = weeks(&[(0, 2)]);
                v
            },
            json!({
                "measured": 2, "counted_from_booking": 0, "median_days": 44.0, "p90_days": 46,
                "targets": [
                    target((d, "any", 42, "calendar", 90.0), 1, 2, Some(50.0)),
                    target((d, "any", 126, "calendar", 100.0), 2, 2, Some(100.0)),
                    target((d, "urgent", 5, "calendar", 100.0), 0, 0, None),
                    target((d, "routine", 28, "calendar", 100.0), 0, 2, Some(0.0)),
                ],
                "weeks": weeks(&[(6, 2)]),
            }),
        ),
        (
            None,
            to_triage(10, 1, 1.0, 4, 7),
            json!({
                "measured": 9, "counted_from_booking": 1, "median_days": 19.0, "p90_days": 60,
                "targets": [
                    target((d, "any", 42, "calendar", 90.0), 7, 9, Some(77.8)),
                    target((d, "any", 126, "calendar", 100.0), 9, 9, Some(100.0)),
                    target((d, "urgent", 5, "calendar", 100.0), 0, 2, Some(0.0)),
                    target((d, "routine", 28, "calendar", 100.0), 4, 7, Some(57.1)),
                ],
                "weeks": weeks(&[(1, 3), (2, 2), (3, 1), (6, 2), (8, 1)]),
            }),
        ),
    ];
    for (month, triage, discussion) in expected {
        let waits = &figures(&report, month)["referral_waits"];
        assert_eq!(waits["referral_to_triage"], triage, "triage {month:?} on {backend:?}");
        assert_eq!(
            waits["referral_to_discussion"], discussion,
            "discussion {month:?} on {backend:?}"
        );
    }
    // Referrals (episodes begun): April k1–k4, May k5–k8, June k9, k10.
    let referrals = |month| figures(&report, month)["cases"]["referrals"].clone();
    assert_eq!(
        [referrals(Some("2026-04")), referrals(Some("2026-05")), referrals(None)],
        [4, 4, 10]
    );
    // MRI requested: k1, k4 (April) and k6 (May).
    assert_eq!(figures(&report, None)["outcomes"]["mri_requested"], 3);
    assert_eq!(figures(&report, Some("2026-04"))["outcomes"]["mri_requested"], 2);

    // The months' tallies are kept between reports, and every write that changes them
    // is seen by the next one. A bank holiday on 31 March: k1 (30 Mar → 1 Apr) was
    // triaged within one working day after all (April 4/4, the quarter 8/10).
    let holiday = json!({ "date": "2026-03-31", "name": "Test holiday" });
    let (status, body) =
        s.app.send(Method::POST, &s.coordinator, "/api/bank-holidays", Some(holiday)).await;
    assert!(status.is_success(), "{status} {body}");
    let (_, report) = s.app.get(&s.coordinator, &format!("/api/reports/activity?{QUARTER}")).await;
    let triage_target = |month| {
        figures(&report, month)["referral_waits"]["referral_to_triage"]["targets"][0].clone()
    };
    let t = ("referral_to_triage", "any", 1, "working", 100.0);
    assert_eq!(triage_target(Some("2026-04")), target(t, 4, 4, Some(100.0)));
    assert_eq!(triage_target(None), target(t, 8, 10, Some(80.0)));
    // k7, returned in May, is withdrawn: pending becomes withdrawn.
    let may = |r: &Value| figures(r, Some("2026-05"))["cases"].clone();
    let before = may(&report);
    s.store.withdraw_case(s.case_ids[5], audit("case_withdrawn")).await.unwrap();
    let (_, report) = s.app.get(&s.coordinator, &format!("/api/reports/activity?{QUARTER}")).await;
    let after = may(&report);
    assert_eq!(after["withdrawn"], before["withdrawn"].as_u64().unwrap() + 1, "{after}");
    assert_eq!(after["pending"], before["pending"].as_u64().unwrap() - 1, "{after}");

    // A window ending inside a month whose tallies are kept counts only its own days:
    // 1–15 June holds no session (S3 is on the 16th).
    let (_, early_june) =
        s.app.get(&s.coordinator, "/api/reports/activity?from=2026-06-01&to=2026-06-15").await;
    assert_eq!(figures(&early_june, None)["cases"]["booked"], 0, "{early_june}");
    let (_, to_mid_june) =
        s.app.get(&s.coordinator, "/api/reports/activity?from=2026-05-01&to=2026-06-15").await;
    assert_eq!(
        figures(&to_mid_june, None)["cases"]["booked"],
        figures(&report, Some("2026-05"))["cases"]["booked"]
    );

    // A coordinator's targets replace the defaults: discussed within 3 weeks for half.
    let path = "/api/specialties/spinal/targets";
    let mine = json!({ "targets": [{ "measure": "referral_to_discussion", "urgency": "any",
        "within_days": 21, "day_kind": "calendar", "target_percent": 50 }] });
    let (status, _) = s.app.send(Method::PUT, &s.consultant, path, Some(mine.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let bad = json!({ "targets": [{ "measure": "referral_to_discussion", "urgency": "any",
        "within_days": 21, "day_kind": "fortnightly", "target_percent": 50 }] });
    let (status, body) = s.app.send(Method::PUT, &s.coordinator, path, Some(bad)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_target"))
    );
    let (_, unchanged) = s.app.get(&s.coordinator, path).await;
    assert_eq!(unchanged["targets"].as_array().unwrap().len(), 5, "{unchanged}");
    let (status, body) = s.app.send(Method::PUT, &s.coordinator, path, Some(mine)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, report) = s.app.get(&s.coordinator, &format!("/api/reports/activity?{QUARTER}")).await;
    let waits = &figures(&report, None)["referral_waits"];
    // ≤ 21 days: 8, 8, 13, 18, 19 of 9 = 55.6%, which meets 50%.
    assert_eq!(
        waits["referral_to_discussion"]["targets"],
        json!([target((d, "any", 21, "calendar", 50.0), 5, 9, Some(55.6))])
    );
    assert_eq!(waits["referral_to_triage"]["targets"], json!([]));
}

fn practice(
    (ods, list): (&str, Option<u32>), (referrals, per_1000): (u32, Option<f64>),
    triage: (u32, u32, u32, Option<f64>), decided: u32, to_triage: f64,
    discussion: (f64, i64, f64), outcomes: Value,
) -> Value {
    json!({
        "ods_code": ods, "name": null, "list_size": list, "referrals": referrals,
        "referrals_per_1000": per_1000, "triage_decisions": triage.0, "accepted": triage.1,
        "returned": triage.2, "returned_percent": triage.3, "decided": decided,
        "median_days_to_triage": to_triage, "median_days_to_discussion": discussion.0,
        "p90_days_to_discussion": discussion.1, "within_6_weeks_percent": discussion.2,
        "outcomes": outcomes,
    })
}

async fn practices_compare_with_the_locality_and_their_summary_names_no_patient(backend: Backend) {
    let s = seed(backend).await;
    // List sizes come from a coordinator's CSV; a bad file changes nothing.
    let import = |token: &str, body: &'static str| {
        s.app
            .http
            .post(s.app.url("/api/practices/list-sizes"))
            .bearer_auth(token.to_string())
            .header("content-type", "text/csv")
            .body(body)
            .send()
    };
    let res = import(&s.consultant, "A81001,4000\n").await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = import(&s.coordinator, "A81001,4000\nB82002,many\n").await.unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        (body["code"].as_str(), body["field"].as_str()),
        (Some("invalid_list_sizes"), Some("line 2"))
    );
    let (_, sizes) = s.app.get(&s.coordinator, "/api/practices/list-sizes").await;
    assert_eq!(sizes["list_sizes"], json!([]));
    // A file over 2 MiB is refused before it is read, and changes nothing.
    let huge: &'static str = "A81001,4000\n".repeat(200_000).leak();
    let res = import(&s.coordinator, huge).await.unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "payload_too_large");
    let (_, sizes) = s.app.get(&s.coordinator, "/api/practices/list-sizes").await;
    assert_eq!(sizes["list_sizes"], json!([]));
    let res = import(&s.coordinator, "ods_code,list_size\r\nA81001,4000\r\nB82002,10000\r\n")
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["imported"], 2);

    let (status, report) =
        s.app.get(&s.coordinator, &format!("/api/reports/practices?{QUARTER}")).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let outcomes = |signed, mri, mri_p, dis, dis_p, on, on_p, referrals: Value| {
        json!({ "signed": signed, "mri_requested": mri, "mri_requested_percent": mri_p,
                "discharged_to_gp": dis, "discharged_to_gp_percent": dis_p,
                "onward_referral": on, "onward_referral_percent": on_p, "referrals": referrals })
    };
    let expected = json!([
        practice(
            ("A81001", Some(4000)),
            (4, Some(1.0)),
            (4, 3, 1, Some(25.0)),
            3,
            1.5,
            (22.0, 42, 100.0),
            outcomes(
                3,
                1,
                33.3,
                1,
                33.3,
                2,
                66.7,
                json!({ "orthopaedics": 1, "physiotherapy": 1 })
            )
        ),
        practice(
            ("B82002", Some(10000)),
            (4, Some(0.4)),
            (4, 4, 0, Some(0.0)),
            4,
            2.5,
            (32.5, 60, 50.0),
            outcomes(
                4,
                1,
                25.0,
                0,
                0.0,
                4,
                100.0,
                json!({ "orthopaedics": 2, "pain_clinic": 1, "spinal_surgery": 1 })
            )
        ),
        practice(
            ("C83003", None),
            (2, None),
            (3, 2, 1, Some(33.3)),
            2,
            0.0,
            (15.5, 18, 100.0),
            outcomes(2, 1, 50.0, 2, 100.0, 0, 0.0, json!({}))
        ),
    ]);
    assert_eq!(report["practices"], expected, "on {backend:?}");
    assert_eq!(
        report["locality"],
        json!({ "practices": 3, "median": {
            "referrals": 4.0, "referrals_per_1000": 0.7, "returned_percent": 25.0,
            "median_days_to_triage": 1.5, "median_days_to_discussion": 22.0,
            "within_6_weeks_percent": 100.0, "mri_requested_percent": 33.3,
            "discharged_to_gp_percent": 33.3, "onward_referral_percent": 66.7 } })
    );
    // The consultant sees the same practices (spinal is theirs).
    let (status, theirs) =
        s.app.get(&s.consultant, &format!("/api/reports/practices?{QUARTER}")).await;
    assert_eq!((status, &theirs["practices"]), (StatusCode::OK, &expected));

    // The practice's own page: its figures beside the locality's, no patient in it.
    let res = s
        .app
        .http
        .get(s.app.url(&format!("/api/reports/practices/A81001/summary?{QUARTER}")))
        .bearer_auth(&s.coordinator)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = res.text().await.unwrap();
    assert!(html.contains("A81001") && html.contains("<td>1.0</td><td>0.7</td>"), "{html}");
    assert!(html.contains("<td>22.0</td><td>22.0</td>"), "{html}");
    for identifier in [GIVEN, FAMILY, "1950-07-19", "Fenella", "Spencer"] {
        assert!(!html.contains(identifier), "the summary names {identifier}");
    }
    for (i, nhs) in s.nhs.iter().enumerate().take(s.next) {
        assert!(!html.contains(nhs.as_str()), "the summary holds patient {i}'s NHS number");
    }
    for id in &s.case_ids {
        assert!(!html.contains(&id.to_string()), "the summary holds a case id");
    }
    let (status, body) = s
        .app
        .get(&s.coordinator, &format!("/api/reports/practices/Z99999/summary?{QUARTER}"))
        .await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    let (status, body) = s
        .app
        .get(&s.coordinator, &format!("/api/reports/practices/not-a-code/summary?{QUARTER}"))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_ods_code"))
    );

    // The consultant's CSV carries the waits from the referral and no identifier.
    let res = s
        .app
        .http
        .get(s.app.url(&format!("/api/reports/activity?{QUARTER}&format=csv")))
        .bearer_auth(&s.consultant)
        .send()
        .await
        .unwrap();
    let csv = res.text().await.unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    for column in ["referral_received_on", "wait_counted_from", "days_referral_to_discussion"] {
        assert!(header.contains(&column), "{column} in {header:?}");
    }
    for identifier in [GIVEN, FAMILY, "1950-07-19", "A81001", "B82002", "C83003", "Fenella"] {
        assert!(!csv.contains(identifier), "the consultant's CSV holds {identifier}");
    }
    for nhs in s.nhs.iter().take(s.next) {
        assert!(!csv.contains(nhs.as_str()), "the consultant's CSV holds an NHS number");
    }
    // k8 (no referral date) counts from its booking; k5 waited 60 days from its referral.
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().skip(1).map(|l| l.split(',').collect()).collect();
    let k5 = rows.iter().find(|r| r[0] == s.case_ids[0].to_string()).unwrap();
    assert_eq!(k5[column("days_referral_to_discussion")], "60");
    assert_eq!(k5[column("wait_counted_from")], "referral");
    let k8 = rows.iter().find(|r| r[0] == s.case_ids[6].to_string()).unwrap();
    assert_eq!(k8[column("wait_counted_from")], "first_booking");
    assert_eq!(k8[column("days_referral_to_discussion")], "18");
    assert_eq!(k8[column("referral_received_on")], "");
}

crate::on_both_backends!(
    waits_from_the_referral_match_the_hand_computed_quarter,
    practices_compare_with_the_locality_and_their_summary_names_no_patient,
);
