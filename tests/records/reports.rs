//! The activity report (issue 7): a quarter of rheumatology and spinal MDT activity is
//! seeded in the past through the store (sessions, bookings, a move, a withdrawal, a
//! cancellation, live meetings with attendance, outcomes signed, amended and re-discussed)
//! and the report must match figures worked out by hand; consultants see only their
//! specialties and never patient identifiers; coordinators' CSV exports are audited;
//! bad input is a 4xx with a stable code.

use chrono::{DateTime, NaiveDate, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use mdt_coordinator::domain::audit::{AuditQuery, AuditSubject};
use mdt_coordinator::domain::live::{EventBody, NewLiveEvent};
use mdt_coordinator::domain::schedule::SessionPlan;
use mdt_coordinator::domain::{
    Amendment, AmendmentReason, AuditEvent, BodySite, CaseState, ClinicalText, NewAuditEvent,
    NewCase, NhsNumber, OdsCode, OutcomeDraft, OutcomeVersion, PatientDetails, PersonName, Role,
    Sex, Specialty, TimeWindow, Urgency, UserId,
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

/// An account: its token, id and name.
struct Person {
    token: String,
    id: UserId,
    name: &'static str,
    role: Role,
}

async fn person(
    app: &TestApp, email: &str, name: &'static str, role: Role, specialty: &str,
) -> Person {
    let (token, id) = crate::common::sign_up(app, email, name, role, specialty).await;
    Person { token, id: UserId(id.parse().unwrap()), name, role }
}

/// Patients' given names: unusual words so a scan of a CSV cannot find them by chance.
const GIVEN: [&str; 20] = [
    "Ottoline",
    "Perpetua",
    "Barnaby",
    "Clementine",
    "Ignatius",
    "Wilhelmina",
    "Ezekiel",
    "Philippa",
    "Thaddeus",
    "Araminta",
    "Cornelius",
    "Henrietta",
    "Lysander",
    "Rosalind",
    "Bartholomew",
    "Euphemia",
    "Septimus",
    "Winifred",
    "Aurelio",
    "Griselda",
];
const FAMILY: &str = "Featherstonehaugh";
const PRACTICE: &str = "Y02906";

/// The quarter: Q1 2026 (1 January – 31 March), all in GMT except the session just
/// after the window, which starts at 00:30 BST on 1 April (23:30 UTC on 31 March).
struct Quarter {
    app: TestApp,
    store: DynStore,
    coordinator: Person,
    rh_chair: Person,
    rh_second: Person,
    physio: Person,
    trainee: Person,
    sp_chair: Person,
    sp_physio: Person,
    nhs: Vec<String>,
    next_patient: usize,
    /// NHS numbers booked into sessions inside the window, and one outside it.
    inside: Vec<String>,
    outside: Vec<String>,
}

impl Quarter {
    async fn seed(backend: Backend) -> Self {
        let app = TestApp::spawn(backend).await.expect("backend available");
        let rh = "rheumatology";
        let mut q = Quarter {
            store: app.state.store.clone(),
            coordinator: person(&app, "coord@example.org", "Cora Ordinator", Role::Coordinator, rh)
                .await,
            rh_chair: person(&app, "rchair@example.org", "Rhea Chairwoman", Role::Consultant, rh)
                .await,
            rh_second: person(&app, "rsecond@example.org", "Rufus Secondo", Role::Consultant, rh)
                .await,
            physio: person(&app, "physio@example.org", "Phyllis Physio", Role::Practitioner, rh)
                .await,
            trainee: person(&app, "trainee@example.org", "Tristram Trainee", Role::Trainee, rh)
                .await,
            sp_chair: person(
                &app,
                "schair@example.org",
                "Spencer Spine",
                Role::Consultant,
                "spinal",
            )
            .await,
            sp_physio: person(
                &app,
                "sphysio@example.org",
                "Sybil Spinephysio",
                Role::Practitioner,
                "spinal",
            )
            .await,
            nhs: nhs_numbers(20),
            next_patient: 0,
            inside: Vec::new(),
            outside: Vec::new(),
            app,
        };
        q.populate().await;
        q
    }

    async fn session(&self, specialty: &str, chair: UserId, starts: &str, per_case: u32) -> Uuid {
        let plan = SessionPlan {
            specialty: Specialty::parse(specialty).unwrap(),
            title: format!("{specialty} MDT"),
            duration_minutes: 90,
            case_capacity: 8,
            minutes_per_case: per_case,
            booking_cutoff_hours: 48,
            chair_id: chair,
            teaching: false,
        };
        self.store.create_session(plan, t(starts)).await.unwrap().id
    }

    /// Books the next patient into `session` as `referrer` at `at`.
    async fn book(&mut self, session: Uuid, referrer: UserId, at: &str, urgency: Urgency) -> Uuid {
        let i = self.next_patient;
        self.next_patient += 1;
        let id = Uuid::new_v4();
        let case = NewCase {
            id,
            session_id: session,
            referrer_id: referrer,
            patient: PatientDetails {
                nhs_number: NhsNumber::parse(&self.nhs[i]).unwrap(),
                given_name: PersonName::parse(GIVEN[i]).unwrap(),
                family_name: PersonName::parse(FAMILY).unwrap(),
                date_of_birth: NaiveDate::from_ymd_opt(1960 + i as i32, 3, 9).unwrap(),
                sex: if i.is_multiple_of(2) { Sex::Female } else { Sex::Male },
                gp_practice_code: OdsCode::parse(PRACTICE).unwrap(),
            },
            clinical_question: ClinicalText::parse("Inflammatory back pain?", "clinical_question")
                .unwrap(),
            history: ClinicalText::parse("Twelve weeks of pain.", "history").unwrap(),
            urgency,
            body_site: BodySite::parse("lower back").unwrap(),
            free_text_identifies_patient: false,
            idempotency_key: None,
            patient_update: Default::default(),
            proforma: mdt_coordinator::domain::proforma::Proforma::example(Utc::now().date_naive()),
        };
        self.store.book_case(case, audit("case_booked").record(id), vec![], t(at)).await.unwrap();
        let accept = mdt_coordinator::domain::triage::Decision::Accept;
        let triaged = audit("case_triaged");
        let by = self.coordinator.id;
        self.store.triage_case(id, &accept, by, triaged, vec![], t(at)).await.unwrap();
        id
    }

    async fn live(&self, session: Uuid, at: &str, events: Vec<EventBody>) {
        let events = events
            .into_iter()
            .map(|body| NewLiveEvent { body, actor: Some(self.coordinator.id), command_id: None })
            .collect();
        self.store.append_live_events(session, None, events, t(at)).await.unwrap();
    }

    async fn join(&self, session: Uuid, who: &Person, at: &str) {
        self.live(
            session,
            at,
            vec![EventBody::ParticipantJoined {
                user_id: who.id,
                name: who.name.to_string(),
                role: who.role,
                instance: Uuid::nil(),
            }],
        )
        .await;
    }

    async fn leave(&self, session: Uuid, who: &Person, at: &str) {
        self.live(session, at, vec![EventBody::ParticipantLeft { user_id: who.id }]).await;
    }

    /// Discusses a case live: started at `from`, completed at `to`.
    async fn discuss(&self, session: Uuid, case: Uuid, from: &str, to: &str) {
        self.live(session, from, vec![EventBody::CaseStarted { case_id: case }]).await;
        self.live(session, to, vec![EventBody::CaseCompleted { case_id: case }]).await;
    }

    /// Drafts and signs an outcome at `at` as `signer`; returns the follow-up case, if
    /// the outcome books one.
    async fn sign(&self, case: Uuid, signer: UserId, at: &str, outcome: Value) -> Option<Uuid> {
        let draft: OutcomeDraft = serde_json::from_value(outcome).unwrap();
        self.store
            .draft_outcome(case, draft, signer, audit("outcome_drafted"), t(at))
            .await
            .unwrap();
        let draft = self.store.outcome_versions(case).await.unwrap().pop().unwrap();
        // A case its meeting did not discuss is decided outside it, with a reason.
        let state = self.store.case(case).await.unwrap().unwrap().state;
        let discussed = matches!(state, CaseState::InDiscussion | CaseState::Discussed);
        let reason = (!discussed).then(|| "Decided from the referral".to_string());
        let draft = OutcomeVersion { outside_meeting_reason: reason, ..draft };
        self.store
            .sign_outcome(
                case,
                &draft.signed(signer, t(at)),
                audit("outcome_signed"),
                None,
                &[],
                Uuid::new_v4(),
            )
            .await
            .unwrap()
            .follow_up_case
            .map(|c| c.id)
    }

    async fn populate(&mut self) {
        let (rc, r2, p, sc, sp) = (
            self.rh_chair.id,
            self.rh_second.id,
            self.physio.id,
            self.sp_chair.id,
            self.sp_physio.id,
        );
        let routine = Urgency::Routine;
        let rh = "rheumatology";

        // Rheumatology sessions (10 minutes per case, R3 15).
        let r0 = self.session(rh, rc, "2025-12-16T12:30:00Z", 10).await; // before the window
        let r1 = self.session(rh, rc, "2026-01-13T12:30:00Z", 10).await;
        let r2s = self.session(rh, rc, "2026-01-27T12:30:00Z", 10).await;
        let r3 = self.session(rh, rc, "2026-02-10T12:30:00Z", 15).await;
        let r4 = self.session(rh, rc, "2026-03-03T12:30:00Z", 10).await; // cancelled
        let r5 = self.session(rh, rc, "2026-03-24T12:30:00Z", 10).await; // never opened live
        let r6 = self.session(rh, rc, "2026-03-31T23:30:00Z", 10).await; // 1 April local
        let s1 = self.session("spinal", sc, "2026-02-03T13:00:00Z", 10).await;
        let s2 = self.session("spinal", sc, "2026-03-17T13:00:00Z", 10).await;

        // a1: booked into R0 on 1 Dec, moved to R1 on 10 Dec.
        let a1_old = self.book(r0, p, "2025-12-01T10:00:00Z", routine).await;
        let a1 = Uuid::new_v4();
        self.store
            .move_case(a1_old, r1, a1, audit("case_moved"), vec![], t("2025-12-10T10:00:00Z"))
            .await
            .unwrap();
        let a2 = self.book(r1, p, "2026-01-02T10:00:00Z", routine).await;
        let a3 = self.book(r1, p, "2026-01-05T10:00:00Z", routine).await;
        let a4 = self.book(r1, r2, "2026-01-06T10:00:00Z", routine).await;
        let a5 = self.book(r1, p, "2026-01-08T10:00:00Z", Urgency::Urgent).await;
        self.store.withdraw_case(a3, audit("case_withdrawn")).await.unwrap();

        // R1, live: everyone present; a4 deferred (flagged: R1 has no series).
        self.live(r1, "2026-01-13T12:30:00Z", vec![EventBody::MeetingOpened]).await;
        self.join(r1, &self.rh_chair, "2026-01-13T12:30:00Z").await;
        self.join(r1, &self.physio, "2026-01-13T12:31:00Z").await;
        self.join(r1, &self.rh_second, "2026-01-13T12:32:00Z").await;
        self.join(r1, &self.trainee, "2026-01-13T12:33:00Z").await;
        self.discuss(r1, a1, "2026-01-13T12:35:00Z", "2026-01-13T12:47:00Z").await;
        self.discuss(r1, a2, "2026-01-13T12:47:00Z", "2026-01-13T12:55:00Z").await;
        self.live(r1, "2026-01-13T12:55:00Z", vec![EventBody::CaseStarted { case_id: a4 }]).await;
        let defer = EventBody::CaseDeferred { case_id: a4, to_session_id: None, new_case_id: None };
        self.live(r1, "2026-01-13T12:58:00Z", vec![defer]).await;
        self.discuss(r1, a5, "2026-01-13T12:58:00Z", "2026-01-13T13:13:00Z").await;
        for who in [&self.rh_chair, &self.physio, &self.rh_second, &self.trainee] {
            self.leave(r1, who, "2026-01-13T13:15:00Z").await;
        }
        self.live(r1, "2026-01-13T13:15:00Z", vec![EventBody::MeetingClosed]).await;
        let at = "2026-01-14T09:00:00Z";
        self.sign(a1, rc, at, json!({
            "investigations": [
                { "kind": "mri", "site": "lower back", "urgency": "urgent" },
                { "kind": "bloods", "urgency": "routine" }
            ],
            "referrals": [{ "destination": "orthopaedics", "urgency": "routine", "reason": "Opinion" }],
            "management_plan": { "text": "Plan" }, "follow_up": { "kind": "none" }
        })).await;
        self.sign(a2, rc, at, json!({
            "investigations": [],
            "referrals": [{ "destination": "gp_discharge", "urgency": "routine", "reason": "Settled" }],
            "management_plan": { "text": "Plan" }, "follow_up": { "kind": "none" }
        })).await;
        let f5 = self.sign(a5, rc, at, json!({
            "investigations": [{ "kind": "xray", "urgency": "urgent" }],
            "referrals": [{ "destination": "pain_clinic", "urgency": "routine", "reason": "Pain" }],
            "management_plan": { "text": "Plan" },
            "follow_up": { "kind": "re_discuss", "session_id": r3, "reason": "With the films" }
        })).await.expect("a5's re-discussion booked into R3");

        // R2s, live: only the chair and the trainee (not quorate); b3 never reached.
        let b1 = self.book(r2s, p, "2026-01-20T10:00:00Z", routine).await;
        let b2 = self.book(r2s, p, "2026-01-21T10:00:00Z", routine).await;
        let _b3 = self.book(r2s, p, "2026-01-22T10:00:00Z", routine).await;
        self.live(r2s, "2026-01-27T12:30:00Z", vec![EventBody::MeetingOpened]).await;
        self.join(r2s, &self.rh_chair, "2026-01-27T12:30:00Z").await;
        self.join(r2s, &self.trainee, "2026-01-27T12:30:00Z").await;
        self.discuss(r2s, b1, "2026-01-27T12:32:00Z", "2026-01-27T12:42:00Z").await;
        self.discuss(r2s, b2, "2026-01-27T12:42:00Z", "2026-01-27T12:48:00Z").await;
        self.leave(r2s, &self.rh_chair, "2026-01-27T12:50:00Z").await;
        self.leave(r2s, &self.trainee, "2026-01-27T12:50:00Z").await;
        self.live(r2s, "2026-01-27T12:50:00Z", vec![EventBody::MeetingClosed]).await;
        self.sign(
            b1,
            rc,
            "2026-01-28T09:00:00Z",
            json!({
                "investigations": [
                    { "kind": "mri", "site": "neck", "urgency": "routine" },
                    { "kind": "mri", "site": "lower back", "urgency": "routine" }
                ],
                "referrals": [
                    { "destination": "physiotherapy", "urgency": "routine", "reason": "Exercise" },
                    { "destination": "orthopaedics", "urgency": "routine", "reason": "Opinion" }
                ],
                "management_plan": { "text": "Plan" }, "follow_up": { "kind": "review", "weeks": 6 }
            }),
        )
        .await;
        // b2: a draft only, never signed.
        let draft: OutcomeDraft = serde_json::from_value(json!({
            "investigations": [], "referrals": [],
            "management_plan": { "text": "Draft" }, "follow_up": { "kind": "none" }
        }))
        .unwrap();
        self.store
            .draft_outcome(b2, draft, rc, audit("outcome_drafted"), t("2026-01-28T09:00:00Z"))
            .await
            .unwrap();

        // R3 (15 minutes per case), live: chair and second consultant (quorate).
        let c1 = self.book(r3, p, "2026-02-02T10:00:00Z", routine).await;
        let c2 = self.book(r3, p, "2026-02-03T10:00:00Z", routine).await;
        let c2_moved = Uuid::new_v4();
        self.store
            .move_case(c2, r5, c2_moved, audit("case_moved"), vec![], t("2026-02-04T10:00:00Z"))
            .await
            .unwrap();
        self.live(r3, "2026-02-10T12:30:00Z", vec![EventBody::MeetingOpened]).await;
        self.join(r3, &self.rh_chair, "2026-02-10T12:30:00Z").await;
        self.join(r3, &self.rh_second, "2026-02-10T12:30:00Z").await;
        self.discuss(r3, f5, "2026-02-10T12:31:00Z", "2026-02-10T12:51:00Z").await;
        self.discuss(r3, c1, "2026-02-10T12:51:00Z", "2026-02-10T13:00:00Z").await;
        self.leave(r3, &self.rh_chair, "2026-02-10T13:05:00Z").await;
        self.leave(r3, &self.rh_second, "2026-02-10T13:05:00Z").await;
        self.live(r3, "2026-02-10T13:05:00Z", vec![EventBody::MeetingClosed]).await;
        self.sign(f5, rc, "2026-02-11T09:00:00Z", json!({
            "investigations": [],
            "referrals": [{ "destination": "gp_discharge", "urgency": "routine", "reason": "Settled" }],
            "management_plan": { "text": "Plan" }, "follow_up": { "kind": "none" }
        })).await;
        self.sign(c1, rc, "2026-02-11T09:00:00Z", json!({
            "investigations": [{ "kind": "nerve_conduction", "urgency": "routine" }],
            "referrals": [{ "destination": "neurology", "urgency": "urgent", "reason": "Weakness" }],
            "management_plan": { "text": "Plan" }, "follow_up": { "kind": "none" }
        })).await;
        // c1 amended: spinal surgery instead of neurology (the latest signed version counts).
        let amended: OutcomeDraft = serde_json::from_value(json!({
            "investigations": [{ "kind": "nerve_conduction", "urgency": "routine" }],
            "referrals": [{ "destination": "spinal_surgery", "urgency": "urgent", "reason": "Cord" }],
            "management_plan": { "text": "Plan" }, "follow_up": { "kind": "none" }
        }))
        .unwrap();
        let current = self.store.outcome_versions(c1).await.unwrap().pop().unwrap();
        let amendment = Amendment {
            reason: AmendmentReason::parse("Wrong destination").unwrap(),
            body: amended,
        };
        self.store
            .amend_outcome(
                c1,
                &current.amended(amendment, rc, t("2026-02-12T09:00:00Z")),
                audit("outcome_amended"),
                None,
                &[],
            )
            .await
            .unwrap();

        // R4: cancelled; its case is left for rebooking (no series to move it to).
        let _d1 = self.book(r4, p, "2026-02-20T10:00:00Z", routine).await;
        let when = t("2026-02-25T10:00:00Z");
        let plan = self.store.plan_cancellation(r4, when).await.unwrap();
        self.store
            .cancel_session(&plan, NewAuditEvent::new("session_cancelled", "session"), vec![], when)
            .await
            .unwrap();

        // R5: never opened live; two outcomes signed on the day outside a meeting (with a
        // reason: decided_outside_meeting, not discussed), one case not reached.
        let _e1 = self.book(r5, p, "2026-03-16T10:00:00Z", routine).await;
        let e2 = self.book(r5, p, "2026-03-17T10:00:00Z", routine).await;
        self.sign(c2_moved, rc, "2026-03-24T14:00:00Z", json!({
            "investigations": [{ "kind": "dexa", "urgency": "routine" }], "referrals": [],
            "management_plan": { "text": "Plan" }, "follow_up": { "kind": "review", "weeks": 12 }
        })).await;
        self.sign(e2, rc, "2026-03-24T14:00:00Z", json!({
            "investigations": [],
            "referrals": [
                { "destination": "gp_discharge", "urgency": "routine", "reason": "Back to GP" },
                { "destination": "injection_clinic", "urgency": "routine", "reason": "Injection" }
            ],
            "management_plan": { "text": "Plan" }, "follow_up": { "kind": "none" }
        })).await;

        // R6: 00:30 BST on 1 April, outside the window.
        self.book(r6, p, "2026-03-20T10:00:00Z", routine).await;
        let r6_patient = self.next_patient - 1;

        // Spinal: S1 with the chair and a coordinator only (not quorate).
        let sp1 = self.book(s1, sp, "2026-01-26T10:00:00Z", routine).await;
        self.live(s1, "2026-02-03T13:00:00Z", vec![EventBody::MeetingOpened]).await;
        self.join(s1, &self.sp_chair, "2026-02-03T13:00:00Z").await;
        self.join(s1, &self.coordinator, "2026-02-03T13:00:00Z").await;
        self.discuss(s1, sp1, "2026-02-03T13:05:00Z", "2026-02-03T13:16:30Z").await;
        self.leave(s1, &self.sp_chair, "2026-02-03T13:30:00Z").await;
        self.leave(s1, &self.coordinator, "2026-02-03T13:30:00Z").await;
        self.live(s1, "2026-02-03T13:30:00Z", vec![EventBody::MeetingClosed]).await;
        self.sign(sp1, sc, "2026-02-03T14:00:00Z", json!({
            "investigations": [{ "kind": "mri", "site": "lower back", "urgency": "urgent" }],
            "referrals": [{ "destination": "spinal_surgery", "urgency": "urgent", "reason": "Surgery" }],
            "management_plan": { "text": "Plan" }, "follow_up": { "kind": "none" }
        })).await;
        // Spinal meetings need the chair and two others (the report applies the quorum
        // as configured now to every session: S1 falls short either way).
        self.store
            .set_specialty_quorum(
                &Specialty::parse("spinal").unwrap(),
                2,
                NewAuditEvent::new("quorum_set", "specialty"),
            )
            .await
            .unwrap();
        // S2: chair, spinal physio, and the rheumatology physio for a while (quorate).
        let sp2 = self.book(s2, sp, "2026-03-02T10:00:00Z", routine).await;
        let sp3 = self.book(s2, sp, "2026-03-03T10:00:00Z", routine).await;
        self.live(s2, "2026-03-17T13:00:00Z", vec![EventBody::MeetingOpened]).await;
        self.join(s2, &self.sp_chair, "2026-03-17T13:00:00Z").await;
        self.join(s2, &self.sp_physio, "2026-03-17T13:00:00Z").await;
        self.join(s2, &self.physio, "2026-03-17T13:05:00Z").await;
        self.discuss(s2, sp2, "2026-03-17T13:02:00Z", "2026-03-17T13:10:00Z").await;
        self.discuss(s2, sp3, "2026-03-17T13:10:00Z", "2026-03-17T13:25:00Z").await;
        self.leave(s2, &self.physio, "2026-03-17T13:20:00Z").await;
        self.leave(s2, &self.sp_chair, "2026-03-17T13:30:00Z").await;
        self.leave(s2, &self.sp_physio, "2026-03-17T13:30:00Z").await;
        self.live(s2, "2026-03-17T13:30:00Z", vec![EventBody::MeetingClosed]).await;
        self.sign(sp2, sc, "2026-03-17T14:00:00Z", json!({
            "investigations": [],
            "referrals": [{ "destination": "pain_management_programme", "urgency": "routine", "reason": "PMP" }],
            "management_plan": { "text": "Plan" }, "follow_up": { "kind": "none" }
        })).await;
        self.sign(sp3, sc, "2026-03-17T14:00:00Z", json!({
            "investigations": [],
            "referrals": [{ "destination": "gp_discharge", "urgency": "routine", "reason": "Settled" }],
            "management_plan": { "text": "Plan" }, "follow_up": { "kind": "none" }
        })).await;
        // Every patient has a case in the window except the one booked into R6 (a1's
        // December row is outside, but its moved row is inside).
        for (i, nhs) in self.nhs[..self.next_patient].iter().enumerate() {
            if i == r6_patient {
                self.outside.push(nhs.clone());
            } else {
                self.inside.push(nhs.clone());
            }
        }
    }

    async fn get(
        &self, token: &str, query: &str,
    ) -> (StatusCode, String, reqwest::header::HeaderMap) {
        let res = self
            .app
            .http
            .get(self.app.url(&format!("/api/reports/activity{query}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        (status, res.text().await.unwrap(), headers)
    }

    async fn json(&self, token: &str, query: &str) -> Value {
        let (status, body, _) = self.get(token, query).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        serde_json::from_str(&body).unwrap()
    }
}

const Q1: &str = "?from=2026-01-01&to=2026-03-31";

/// The figures without their triage part (checked on its own: every seeded booking was
/// accepted by the coordinator as it was booked) and issue 17's measures (the waits from
/// the referral, MRI requests and referrals, checked by `measures.rs` on a quarter seeded
/// for them).
fn without_triage(figures: &Value) -> Value {
    let mut v = figures.clone();
    v.as_object_mut().unwrap().remove("triage");
    v.as_object_mut().unwrap().remove("referral_waits");
    v["outcomes"].as_object_mut().unwrap().remove("mri_requested");
    v["cases"].as_object_mut().unwrap().remove("referrals");
    v
}

/// The figures of one specialty and month (or `None`: the window's totals), without
/// their triage part.
fn figures(report: &Value, specialty: &str, month: Option<&str>) -> Value {
    without_triage(raw_figures(report, specialty, month))
}

fn raw_figures<'a>(report: &'a Value, specialty: &str, month: Option<&str>) -> &'a Value {
    let list = if month.is_some() { &report["months"] } else { &report["totals"] };
    list.as_array()
        .unwrap()
        .iter()
        .find(|f| f["specialty"] == specialty && f["month"].as_str() == month)
        .unwrap_or_else(|| panic!("no figures for {specialty} {month:?}"))
}

/// The communication clocks of `signed` cases signed by the fixture's store calls: no
/// letter was made or delivered, and the report is read long after the quarter, so every
/// clock is overdue and none was on time (issue 16).
fn communication(signed: u32) -> Value {
    let clock = json!({
        "clocks": signed, "met_on_time": 0, "overdue": signed,
        "on_time_percent": if signed > 0 { json!(0.0) } else { Value::Null },
    });
    json!({ "referrer_informed": clock, "patient_letter_sent": clock })
}

/// A month or specialty with nothing in it.
fn empty(specialty: &str, month: Option<&str>) -> Value {
    let mut v = json!({
        "specialty": specialty,
        "cases": { "booked": 0, "discussed": 0, "deferred": 0, "withdrawn": 0, "pending": 0, "listed": 0, "decided_outside_meeting": 0, "follow_up": 0, "urgent": 0 },
        "days_to_discussion": { "measured": 0, "median": null, "p90": null, "within_6_weeks": 0, "within_6_weeks_percent": null },
        "communication": communication(0),
        "outcomes": { "signed": 0, "discharged_to_gp": 0, "onward_referral": 0, "referrals": {}, "with_investigations": 0, "investigations": {}, "re_discuss": 0 },
        "time_per_case": { "timed": 0, "median_actual_minutes": null, "median_allotted_minutes": null },
        "sessions": { "total": 0, "run": 0, "cancelled": 0, "quorate": 0, "attendees": 0, "median_attendees": null, "attendees_by_role": {} }
    });
    if let Some(m) = month {
        v["month"] = json!(m);
    }
    v
}

// Expected figures, worked out by hand from the fixture above.
//
// Rheumatology case rows by session (days = UK calendar days from the episode's first
// booking to the live start, or to the session's start when never started live):
//
// | row | session | state          | days | live min | signed outcome                                  |
// |-----|---------|----------------|------|----------|-------------------------------------------------|
// | a1  | R1 13/1 | outcome_signed | 43 (1 Dec → 13 Jan; moved from R0) | 12 | mri, bloods; orthopaedics |
// | a2  | R1      | outcome_signed | 11   | 8        | gp_discharge                                    |
// | a3  | R1      | withdrawn      |      |          |                                                 |
// | a4  | R1      | deferred       |      | (3, not counted: not discussed) |                          |
// | a5  | R1      | outcome_signed | 5    | 15       | xray; pain_clinic; re_discuss → f5 (urgent case)|
// | b1  | R2 27/1 | outcome_signed | 7    | 10       | mri ×2; physiotherapy, orthopaedics; review     |
// | b2  | R2      | discussed      | 6    | 6        | (draft only)                                    |
// | b3  | R2      | booked         |      |          | (pending: never reached)                        |
// | f5  | R3 10/2 | outcome_signed | 27 (14 Jan signing → 10 Feb) | 20 | gp_discharge (follow-up) |
// | c1  | R3      | outcome_signed | 8    | 9        | nerve_conduction; spinal_surgery (amended from neurology) |
// | c2  | R3      | deferred       |      |          | (moved to R5)                                   |
// | d1  | R4 3/3  | deferred       |      |          | (session cancelled, flagged for rebooking)      |
// | c2' | R5 24/3 | outcome_signed | 49 (3 Feb → 24 Mar, no live start) | | dexa; review         |
// | e1  | R5      | booked         |      |          | (pending)                                       |
// | e2  | R5      | outcome_signed | 7    |          | gp_discharge, injection_clinic                  |
// (R0 in December and R6 at 00:30 BST on 1 April are outside the window.)
//
// January: booked 8, discussed 5 (a1 a2 a5 b1 b2), deferred 1, withdrawn 1, pending 1,
//   urgent 1. Days [5 6 7 11 43]: median 7, p90 rank ⌈4.5⌉ = 5 → 43, within 4/5 = 80.0%.
//   Signed 4; GP 1 (a2); onward 3 (a1 a5 b1): orthopaedics 2, pain_clinic 1,
//   physiotherapy 1; with investigations 3: mri 1 + 2 = 3, bloods 1, xray 1; re-discuss 1.
//   Live minutes [6 8 10 12 15] median 10.0; allotted all 10.
//   Sessions R1 (4 people: 2 consultants, practitioner, trainee; quorate) and R2 (chair
//   and trainee: not quorate): total 2, run 2, quorate 1, attendees 6, median (2, 4) 3.0.
// February: booked 3 (f5 c1 c2), discussed 2, deferred 1, follow-up 1, urgent 1 (f5
//   keeps a5's urgency). Days [8 27]:
//   median 17.5, p90 ⌈1.8⌉ = 2 → 27, within 2/2. Signed 2; GP 1; onward 1 spinal_surgery;
//   nerve_conduction 1. Minutes [9 20] median 14.5; allotted 15. R3: 2 consultants, quorate.
// March: booked 4 (d1 c2' e1 e2), discussed 2, deferred 1, pending 1. Days [7 49]: median
//   28.0, p90 49, within 1/2 = 50.0%. Signed 2; GP 1 (e2); onward 1 (e2) injection_clinic;
//   dexa 1. No live timings. Sessions R4 (cancelled) and R5 (not run).
// Quarter: booked 15, discussed 9, deferred 3, withdrawn 1, pending 2, follow-up 1,
//   urgent 2 (a5, f5). Days [5 6 7 7 8 11 27 43 49]: median 8, p90 ⌈8.1⌉ = 9 → 49, within 7/9 =
//   77.8%. Minutes [6 8 9 10 12 15 20] median 10.0; allotted [10×5, 15×2] median 10.0.
//   Sessions 5, run 3, cancelled 1, quorate 2, attendees 8, median of (4 2 2) 2.0.
//
// Spinal: S1 3/2 (chair and coordinator: not quorate; s1 booked 26 Jan, 8 days, 11.5 live
// minutes, mri + spinal_surgery); then quorum raised to 2 others; S2 17/3 (chair, spinal
// physio, and the rheumatology physio 13:05–13:20: quorate), s2 15 days 8 minutes
// pain_management_programme, s3 14 days 15 minutes gp_discharge.
fn expected_rheumatology() -> [(Option<&'static str>, Value); 4] {
    [
        (
            Some("2026-01"),
            json!({
                "specialty": "rheumatology", "month": "2026-01",
                "cases": { "booked": 8, "discussed": 5, "deferred": 1, "withdrawn": 1, "pending": 1, "listed": 0, "decided_outside_meeting": 0, "follow_up": 0, "urgent": 1 },
                "days_to_discussion": { "measured": 5, "median": 7.0, "p90": 43, "within_6_weeks": 4, "within_6_weeks_percent": 80.0 },
                "communication": communication(4),
                "outcomes": { "signed": 4, "discharged_to_gp": 1, "onward_referral": 3,
                              "referrals": { "orthopaedics": 2, "pain_clinic": 1, "physiotherapy": 1 },
                              "with_investigations": 3, "investigations": { "mri": 3, "bloods": 1, "xray": 1 },
                              "re_discuss": 1 },
                "time_per_case": { "timed": 5, "median_actual_minutes": 10.0, "median_allotted_minutes": 10.0 },
                "sessions": { "total": 2, "run": 2, "cancelled": 0, "quorate": 1, "attendees": 6, "median_attendees": 3.0,
                              "attendees_by_role": { "consultant": 3, "practitioner": 1, "trainee": 2 } }
            }),
        ),
        (
            Some("2026-02"),
            json!({
                "specialty": "rheumatology", "month": "2026-02",
                "cases": { "booked": 3, "discussed": 2, "deferred": 1, "withdrawn": 0, "pending": 0, "listed": 0, "decided_outside_meeting": 0, "follow_up": 1, "urgent": 1 },
                "days_to_discussion": { "measured": 2, "median": 17.5, "p90": 27, "within_6_weeks": 2, "within_6_weeks_percent": 100.0 },
                "communication": communication(2),
                "outcomes": { "signed": 2, "discharged_to_gp": 1, "onward_referral": 1,
                              "referrals": { "spinal_surgery": 1 },
                              "with_investigations": 1, "investigations": { "nerve_conduction": 1 },
                              "re_discuss": 0 },
                "time_per_case": { "timed": 2, "median_actual_minutes": 14.5, "median_allotted_minutes": 15.0 },
                "sessions": { "total": 1, "run": 1, "cancelled": 0, "quorate": 1, "attendees": 2, "median_attendees": 2.0,
                              "attendees_by_role": { "consultant": 2 } }
            }),
        ),
        (
            Some("2026-03"),
            json!({
                "specialty": "rheumatology", "month": "2026-03",
                "cases": { "booked": 4, "discussed": 0, "deferred": 1, "withdrawn": 0, "pending": 1, "listed": 0, "decided_outside_meeting": 2, "follow_up": 0, "urgent": 0 },
                "days_to_discussion": { "measured": 2, "median": 28.0, "p90": 49, "within_6_weeks": 1, "within_6_weeks_percent": 50.0 },
                "communication": communication(2),
                "outcomes": { "signed": 2, "discharged_to_gp": 1, "onward_referral": 1,
                              "referrals": { "injection_clinic": 1 },
                              "with_investigations": 1, "investigations": { "dexa": 1 },
                              "re_discuss": 0 },
                "time_per_case": { "timed": 0, "median_actual_minutes": null, "median_allotted_minutes": null },
                "sessions": { "total": 2, "run": 0, "cancelled": 1, "quorate": 0, "attendees": 0, "median_attendees": null,
                              "attendees_by_role": {} }
            }),
        ),
        (
            None,
            json!({
                "specialty": "rheumatology",
                "cases": { "booked": 15, "discussed": 7, "deferred": 3, "withdrawn": 1, "pending": 2, "listed": 0, "decided_outside_meeting": 2, "follow_up": 1, "urgent": 2 },
                "days_to_discussion": { "measured": 9, "median": 8.0, "p90": 49, "within_6_weeks": 7, "within_6_weeks_percent": 77.8 },
                "communication": communication(8),
                "outcomes": { "signed": 8, "discharged_to_gp": 3, "onward_referral": 5,
                              "referrals": { "orthopaedics": 2, "pain_clinic": 1, "physiotherapy": 1, "spinal_surgery": 1, "injection_clinic": 1 },
                              "with_investigations": 5, "investigations": { "mri": 3, "bloods": 1, "xray": 1, "nerve_conduction": 1, "dexa": 1 },
                              "re_discuss": 1 },
                "time_per_case": { "timed": 7, "median_actual_minutes": 10.0, "median_allotted_minutes": 10.0 },
                "sessions": { "total": 5, "run": 3, "cancelled": 1, "quorate": 2, "attendees": 8, "median_attendees": 2.0,
                              "attendees_by_role": { "consultant": 5, "practitioner": 1, "trainee": 2 } }
            }),
        ),
    ]
}

fn expected_spinal() -> [(Option<&'static str>, Value); 4] {
    [
        (Some("2026-01"), empty("spinal", Some("2026-01"))),
        (
            Some("2026-02"),
            json!({
                "specialty": "spinal", "month": "2026-02",
                "cases": { "booked": 1, "discussed": 1, "deferred": 0, "withdrawn": 0, "pending": 0, "listed": 0, "decided_outside_meeting": 0, "follow_up": 0, "urgent": 0 },
                "days_to_discussion": { "measured": 1, "median": 8.0, "p90": 8, "within_6_weeks": 1, "within_6_weeks_percent": 100.0 },
                "communication": communication(1),
                "outcomes": { "signed": 1, "discharged_to_gp": 0, "onward_referral": 1,
                              "referrals": { "spinal_surgery": 1 },
                              "with_investigations": 1, "investigations": { "mri": 1 }, "re_discuss": 0 },
                "time_per_case": { "timed": 1, "median_actual_minutes": 11.5, "median_allotted_minutes": 10.0 },
                "sessions": { "total": 1, "run": 1, "cancelled": 0, "quorate": 0, "attendees": 2, "median_attendees": 2.0,
                              "attendees_by_role": { "consultant": 1, "coordinator": 1 } }
            }),
        ),
        (
            Some("2026-03"),
            json!({
                "specialty": "spinal", "month": "2026-03",
                "cases": { "booked": 2, "discussed": 2, "deferred": 0, "withdrawn": 0, "pending": 0, "listed": 0, "decided_outside_meeting": 0, "follow_up": 0, "urgent": 0 },
                "days_to_discussion": { "measured": 2, "median": 14.5, "p90": 15, "within_6_weeks": 2, "within_6_weeks_percent": 100.0 },
                "communication": communication(2),
                "outcomes": { "signed": 2, "discharged_to_gp": 1, "onward_referral": 1,
                              "referrals": { "pain_management_programme": 1 },
                              "with_investigations": 0, "investigations": {}, "re_discuss": 0 },
                "time_per_case": { "timed": 2, "median_actual_minutes": 11.5, "median_allotted_minutes": 10.0 },
                "sessions": { "total": 1, "run": 1, "cancelled": 0, "quorate": 1, "attendees": 3, "median_attendees": 3.0,
                              "attendees_by_role": { "consultant": 1, "practitioner": 2 } }
            }),
        ),
        (
            None,
            json!({
                "specialty": "spinal",
                "cases": { "booked": 3, "discussed": 3, "deferred": 0, "withdrawn": 0, "pending": 0, "listed": 0, "decided_outside_meeting": 0, "follow_up": 0, "urgent": 0 },
                "days_to_discussion": { "measured": 3, "median": 14.0, "p90": 15, "within_6_weeks": 3, "within_6_weeks_percent": 100.0 },
                "communication": communication(3),
                "outcomes": { "signed": 3, "discharged_to_gp": 1, "onward_referral": 2,
                              "referrals": { "spinal_surgery": 1, "pain_management_programme": 1 },
                              "with_investigations": 1, "investigations": { "mri": 1 }, "re_discuss": 0 },
                "time_per_case": { "timed": 3, "median_actual_minutes": 11.5, "median_allotted_minutes": 10.0 },
                "sessions": { "total": 2, "run": 2, "cancelled": 0, "quorate": 1, "attendees": 5, "median_attendees": 2.5,
                              "attendees_by_role": { "consultant": 2, "coordinator": 1, "practitioner": 2 } }
            }),
        ),
    ]
}

async fn the_quarter_matches_hand_computed_figures(backend: Backend) {
    let q = Quarter::seed(backend).await;
    let report = q.json(&q.coordinator.token, Q1).await;
    assert_eq!(report["from"], "2026-01-01");
    assert_eq!(report["to"], "2026-03-31");
    assert_eq!(report["time_zone"], "Europe/London");
    assert_eq!(report["specialties"], json!(["pain", "rheumatology", "spinal"]));
    // Every specialty × month is listed, in order.
    let keys: Vec<(String, String)> = report["months"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["specialty"].as_str().unwrap().into(), f["month"].as_str().unwrap().into()))
        .collect();
    assert_eq!(keys.len(), 9);
    assert_eq!(keys[0], ("pain".to_string(), "2026-01".to_string()));
    assert_eq!(keys[8], ("spinal".to_string(), "2026-03".to_string()));
    for (month, expected) in expected_rheumatology().into_iter().chain(expected_spinal()) {
        let specialty = expected["specialty"].as_str().unwrap().to_string();
        assert_eq!(
            figures(&report, &specialty, month),
            expected,
            "{specialty} {month:?} on {backend:?}"
        );
    }
    for month in [Some("2026-01"), Some("2026-02"), Some("2026-03"), None] {
        assert_eq!(figures(&report, "pain", month), empty("pain", month));
    }

    // One specialty, one month: the same figures as in the full report.
    let feb =
        q.json(&q.coordinator.token, "?from=2026-02-01&to=2026-02-28&specialty=rheumatology").await;
    assert_eq!(feb["specialties"], json!(["rheumatology"]));
    assert_eq!(feb["months"].as_array().unwrap().len(), 1);
    let mut feb_total = expected_rheumatology()[1].1.clone();
    assert_eq!(without_triage(&feb["months"][0]), feb_total);
    feb_total.as_object_mut().unwrap().remove("month");
    assert_eq!(without_triage(&feb["totals"][0]), feb_total);
    // Triage: each of spinal's three bookings accepted at once.
    let triage = &raw_figures(&report, "spinal", None)["triage"];
    assert_eq!(triage["decisions"], 3, "{triage}");
    assert_eq!(triage["accepted"], 3);
    assert_eq!(triage["within_24_hours_percent"], 100.0);
    assert_eq!(triage["returns_by_reason"], json!({}));
}

/// Splits a CSV made of simple fields (no quoted commas in this fixture).
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    text.split_terminator("\r\n")
        .map(|line| line.split(',').map(str::to_string).collect())
        .collect()
}

async fn a_consultants_csv_has_no_identifiers_and_covers_their_specialties(backend: Backend) {
    let q = Quarter::seed(backend).await;
    let (status, csv, headers) = q.get(&q.sp_chair.token, &format!("{Q1}&format=csv")).await;
    assert_eq!(status, StatusCode::OK, "{csv}");
    assert!(headers[reqwest::header::CONTENT_TYPE].to_str().unwrap().starts_with("text/csv"));
    assert!(headers[reqwest::header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .contains("activity-2026-01-01-2026-03-31.csv"));
    assert_eq!(headers[reqwest::header::CACHE_CONTROL], "no-store");
    let rows = csv_rows(&csv);
    assert_eq!(rows.len(), 1 + 3, "header and the three spinal cases:\n{csv}");
    assert!(rows[1..].iter().all(|r| r[1] == "spinal"));
    for column in [
        "nhs_number",
        "given_name",
        "family_name",
        "date_of_birth",
        "gp_practice_code",
        "referrer_name",
    ] {
        assert!(!rows[0].iter().any(|h| h == column), "{column} in a consultant's CSV");
    }
    // No NHS number (any spelling), patient or staff name, date of birth or practice.
    let digits: String = csv.chars().filter(char::is_ascii_digit).collect();
    for nhs in q.nhs.iter() {
        assert!(!csv.contains(nhs.as_str()), "NHS number in a consultant's CSV");
        assert!(!digits.contains(nhs.as_str()), "NHS number digits in a consultant's CSV");
    }
    for name in GIVEN.iter().chain([&FAMILY, &PRACTICE]) {
        assert!(!csv.contains(name), "{name} in a consultant's CSV");
    }
    for staff in [&q.sp_chair, &q.sp_physio, &q.physio, &q.coordinator] {
        assert!(!csv.contains(staff.name), "a staff name in a consultant's CSV");
    }
    assert!(!csv.contains("-03-09"), "a date of birth in a consultant's CSV");
    // The JSON, too, covers their specialties only; another specialty is refused.
    let report = q.json(&q.sp_chair.token, Q1).await;
    assert_eq!(report["specialties"], json!(["spinal"]));
    assert_eq!(figures(&report, "spinal", None), expected_spinal()[3].1);
    let (status, body, _) = q.get(&q.rh_chair.token, &format!("{Q1}&specialty=spinal")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["code"], "forbidden_specialty");
    // A consultant's export is audited too: one event covering each case it carried.
    let events = q.store.audit_events().await.unwrap();
    let exported: Vec<_> = events.iter().filter(|e| e.action == "report_exported").collect();
    assert_eq!(exported.len(), 1);
    let details: Value = serde_json::from_str(&exported[0].details).unwrap();
    assert_eq!(details["identified"], false);
    assert_eq!(details["rows"], 3);
    assert_eq!(exported[0].covers.len(), 3);
    assert_eq!(exported[0].actor_id, Some(q.sp_chair.id));
}

async fn a_coordinators_csv_is_identified_and_audited(backend: Backend) {
    let q = Quarter::seed(backend).await;
    let before = q.store.audit_events().await.unwrap().len();
    let (status, csv, _) = q.get(&q.coordinator.token, &format!("{Q1}&format=csv")).await;
    assert_eq!(status, StatusCode::OK, "{csv}");
    let rows = csv_rows(&csv);
    let header = &rows[0];
    let col =
        |name: &str| header.iter().position(|h| h == name).unwrap_or_else(|| panic!("{name}"));
    assert_eq!(rows.len(), 1 + 15 + 3);
    // Every case row in the window, and none outside it.
    for nhs in &q.inside {
        assert!(csv.contains(nhs.as_str()), "a case in the window is missing");
    }
    for nhs in &q.outside {
        assert!(!csv.contains(nhs.as_str()), "a case outside the window is present");
    }
    // a1: the first patient (moved from December): the KPI counts from the first booking.
    let a1 = rows.iter().find(|r| r[col("nhs_number")] == q.nhs[0]).unwrap();
    let expect = [
        ("specialty", "rheumatology"),
        ("session_date", "2026-01-13"),
        ("month", "2026-01"),
        ("episode", "first"),
        ("referral_source", "gp"),
        ("referrer_role", "practitioner"),
        ("referrer_name", "Phyllis Physio"),
        ("given_name", GIVEN[0]),
        ("family_name", FAMILY),
        ("date_of_birth", "1960-03-09"),
        ("gp_practice_code", PRACTICE),
        ("sex", "female"),
        ("age_band", "60–69"),
        ("body_site", "lower back"),
        ("state", "outcome_signed"),
        ("seen_status", "seen"),
        ("first_booked_on", "2025-12-01"),
        ("discussed_on", "2026-01-13"),
        ("days_to_discussion", "43"),
        ("within_6_weeks", "no"),
        ("outcome_signed", "yes"),
        ("discharged_to_gp", "no"),
        ("onward_referrals", "orthopaedics (routine)"),
        ("investigations", "mri lower back (urgent); bloods (routine)"),
        ("mri", "yes"),
        ("follow_up", "none"),
        ("allotted_minutes", "10"),
        ("actual_minutes", "12.0"),
    ];
    for (name, value) in expect {
        assert_eq!(a1[col(name)], value, "a1 {name}");
    }
    // The follow-up of a5 in February, the withdrawn a3, the cancelled session's d1.
    let by_nhs = |i: usize| rows.iter().find(|r| r[col("nhs_number")] == q.nhs[i]).unwrap();
    assert_eq!(by_nhs(2)[col("seen_status")], "cancelled");
    assert_eq!(by_nhs(2)[col("discussed_on")], "");
    let follow_up = rows
        .iter()
        .find(|r| r[col("nhs_number")] == q.nhs[4] && r[col("month")] == "2026-02")
        .unwrap();
    assert_eq!(follow_up[col("episode")], "follow_up");
    assert_eq!(follow_up[col("days_to_discussion")], "27");
    assert_eq!(follow_up[col("discharged_to_gp")], "yes");
    assert_eq!(follow_up[col("actual_minutes")], "20.0");
    let d1 = by_nhs(10);
    assert_eq!(
        (d1[col("state")].as_str(), d1[col("seen_status")].as_str()),
        ("deferred", "deferred")
    );

    // Audited: one export event covering every row, nothing else.
    let events = q.store.audit_events().await.unwrap();
    let new = &events[before..];
    assert_eq!(new.len(), 1);
    assert_eq!(new[0].action, "report_exported");
    assert_eq!(new[0].actor_id, Some(q.coordinator.id));
    let details: Value = serde_json::from_str(&new[0].details).unwrap();
    assert_eq!(
        details,
        json!({ "format": "csv", "from": "2026-01-01", "to": "2026-03-31",
                "specialties": ["pain", "rheumatology", "spinal"], "rows": 18, "identified": true })
    );
    let mut covered = new[0].covers.clone();
    let mut ids: Vec<String> = rows[1..].iter().map(|r| r[col("case_id")].clone()).collect();
    covered.sort();
    ids.sort();
    assert_eq!(covered, ids);
    // The export is in the trail of a patient it carried, and of no patient it did not.
    let trail = |nhs: &str| AuditQuery {
        subject: AuditSubject::Patient(NhsNumber::parse(nhs).unwrap()),
        window: TimeWindow::default(),
        after: 0,
        limit: 1000,
    };
    let exports_in = |events: Vec<AuditEvent>| {
        events.iter().filter(|e| e.action == "report_exported").map(|e| e.seq).collect::<Vec<_>>()
    };
    let carried = q.store.search_audit(&trail(&q.inside[0])).await.unwrap();
    assert_eq!(exports_in(carried), [new[0].seq]);
    let left_out = q.store.search_audit(&trail(&q.outside[0])).await.unwrap();
    assert!(exports_in(left_out).is_empty());
    assert!(q.store.verify_audit().await.unwrap().is_intact());
    // The JSON is not audited.
    q.json(&q.coordinator.token, Q1).await;
    assert_eq!(q.store.audit_events().await.unwrap().len(), events.len());
}

async fn bad_input_and_other_roles_get_clear_4xx(backend: Backend) {
    let app = TestApp::spawn(backend).await.expect("backend available");
    let (coordinator, _) =
        crate::common::sign_up(&app, "c@example.org", "Cora", Role::Coordinator, "spinal").await;
    let (physio, _) =
        crate::common::sign_up(&app, "p@example.org", "Pat", Role::Practitioner, "spinal").await;
    let (trainee, _) =
        crate::common::sign_up(&app, "t@example.org", "Tim", Role::Trainee, "spinal").await;
    let get = |token: String, query: &'static str| {
        let req = app.http.get(app.url(&format!("/api/reports/activity{query}")));
        async move {
            let res = req.bearer_auth(token).send().await.unwrap();
            let status = res.status();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            (status, body["code"].as_str().unwrap_or_default().to_string())
        }
    };
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let cases: [(&str, StatusCode, &str); 11] = [
        ("", unprocessable, "required"),
        ("?from=2026-01-01", unprocessable, "required"),
        ("?from=2026-13-01&to=2026-12-31", unprocessable, "invalid_date"),
        ("?from=yesterday&to=2026-12-31", unprocessable, "invalid_date"),
        ("?from=2026-01-01&to=2026-02-30", unprocessable, "invalid_date"),
        ("?from=2026-03-01&to=2026-01-01", unprocessable, "invalid_window"),
        ("?from=2020-01-01&to=2026-01-01", unprocessable, "window_too_long"),
        ("?from=2026-01-01&to=2026-03-31&specialty=podiatry", unprocessable, "unknown_specialty"),
        ("?from=2026-01-01&to=2026-03-31&format=xlsx", unprocessable, "unknown_format"),
        (
            "?from=2026-01-01&to=2026-03-31&from=2026-02-01",
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        ("?from=2026-01-01&to=2026-03-31&specialty=%00", unprocessable, ""),
    ];
    for (query, status, code) in cases {
        let (got, got_code) = get(coordinator.clone(), query).await;
        assert_eq!(got, status, "{query}: {got_code}");
        assert!(code.is_empty() || got_code == code, "{query}: {got_code}");
        assert!(!got_code.is_empty(), "{query}: no code");
    }
    for token in [physio, trainee] {
        let (status, code) = get(token, "?from=2026-01-01&to=2026-03-31").await;
        assert_eq!((status, code.as_str()), (StatusCode::FORBIDDEN, "forbidden"));
    }
    let res = app
        .http
        .get(app.url("/api/reports/activity?from=2026-01-01&to=2026-03-31"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // An empty window is fine: every month listed with zeros.
    let (status, _) = get(coordinator, "?from=2030-01-01&to=2030-01-31&format=csv").await;
    assert_eq!(status, StatusCode::OK);
}

crate::on_both_backends!(
    the_quarter_matches_hand_computed_figures,
    a_consultants_csv_has_no_identifiers_and_covers_their_specialties,
    a_coordinators_csv_is_identified_and_audited,
    bad_input_and_other_roles_get_clear_4xx,
);
