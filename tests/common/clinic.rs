//! The clinic the HTTP suites start from: a server on a fresh database, staffed and
//! signed in (a coordinator; a chair, a second consultant, a referring practitioner and
//! a trainee of the clinic's specialty; a consultant and a practitioner of another
//! specialty), and the steps the suites share: a session, a booked case, an outcome
//! drafted and signed. A suite adds what only it needs in its own `impl Clinic`.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use mdt_coordinator::config::Settings;
use mdt_coordinator::domain::{Role, UserId};

use super::{sign_up, Backend, TestApp};

/// A signed-in account.
pub struct Account {
    pub token: String,
    pub id: String,
}

impl Account {
    pub fn uid(&self) -> UserId {
        UserId(self.id.parse().expect("a user id"))
    }
}

/// A running service with its staff. Each account is named as below in every clinic;
/// the specialties are the clinic's.
pub struct Clinic {
    pub app: TestApp,
    /// The clinic's specialty: the coordinator's, the chair's, the physio's, the trainee's.
    pub specialty: &'static str,
    /// Another specialty, for the people and sessions outside the clinic's.
    pub other_specialty: &'static str,
    /// `coord@example.org`, "Cora Ordinator".
    pub coordinator: Account,
    /// `chair@example.org`, "Dr Sam Spine": the consultant who chairs the sessions.
    pub chair: Account,
    /// `second@example.org`, "Dr Nia Newton": another consultant of the specialty.
    pub second_consultant: Account,
    /// `other-chair@example.org`, "Dr Pat Payne": a consultant of the other specialty.
    pub other_chair: Account,
    /// `physio@example.org`, "Ellis Physio": the practitioner who books cases.
    pub physio: Account,
    /// `other-physio@example.org`, "Pip Physio": a practitioner of the other specialty.
    pub other_physio: Account,
    /// `trainee@example.org`, "Tam <Trainee> & Co" (a name HTML must escape).
    pub trainee: Account,
}

impl Clinic {
    /// A rheumatology clinic, with spinal as the other specialty.
    pub async fn open(backend: Backend) -> Self {
        Self::open_with(backend, |_| {}).await
    }

    /// A rheumatology clinic on settings changed by `tweak`.
    pub async fn open_with(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> Self {
        Self::of(backend, "rheumatology", "spinal", tweak).await
    }

    /// A clinic of `specialty`, with `other_specialty` as the other one.
    pub async fn of(
        backend: Backend, specialty: &'static str, other_specialty: &'static str,
        tweak: impl FnOnce(&mut Settings),
    ) -> Self {
        let app = TestApp::spawn_with(backend, tweak).await.expect("backend available");
        let account = async |email, name, role, specialty| {
            let (token, id) = sign_up(&app, email, name, role, specialty).await;
            Account { token, id }
        };
        let (main, other) = (specialty, other_specialty);
        let coordinator =
            account("coord@example.org", "Cora Ordinator", Role::Coordinator, main).await;
        let chair = account("chair@example.org", "Dr Sam Spine", Role::Consultant, main).await;
        let second_consultant =
            account("second@example.org", "Dr Nia Newton", Role::Consultant, main).await;
        let other_chair =
            account("other-chair@example.org", "Dr Pat Payne", Role::Consultant, other).await;
        let physio = account("physio@example.org", "Ellis Physio", Role::Practitioner, main).await;
        let other_physio =
            account("other-physio@example.org", "Pip Physio", Role::Practitioner, other).await;
        let trainee =
            account("trainee@example.org", "Tam <Trainee> & Co", Role::Trainee, main).await;
        Self {
            app,
            specialty,
            other_specialty,
            coordinator,
            chair,
            second_consultant,
            other_chair,
            physio,
            other_physio,
            trainee,
        }
    }

    /// One more account, signed in.
    pub async fn account(&self, email: &str, name: &str, role: Role, specialty: &str) -> Account {
        let (token, id) = sign_up(&self.app, email, name, role, specialty).await;
        Account { token, id }
    }

    /// `POST path` with `body` as `who`: the raw response.
    pub async fn post(&self, who: &Account, path: &str, body: Value) -> reqwest::Response {
        self.app
            .http
            .post(self.app.url(path))
            .bearer_auth(&who.token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// `GET path` as `who`: the raw response.
    pub async fn get(&self, who: &Account, path: &str) -> reqwest::Response {
        self.app.http.get(self.app.url(path)).bearer_auth(&who.token).send().await.unwrap()
    }

    /// The usual session of the clinic's specialty: chaired by the chair, `days` from now
    /// (to the second), four places, not for teaching, no title of its own.
    pub fn plan(&self, days: i64) -> Plan<'_> {
        Plan {
            specialty: self.specialty,
            chair: &self.chair,
            starts_at: (Utc::now() + Duration::days(days)).trunc_subsecs(0),
            capacity: 4,
            teaching: false,
            title: None,
        }
    }

    /// The same in the other specialty, chaired by its consultant.
    pub fn other_plan(&self, days: i64) -> Plan<'_> {
        Plan { specialty: self.other_specialty, chair: &self.other_chair, ..self.plan(days) }
    }

    /// Creates the session as the coordinator (90 minutes, bookings closing 48 hours
    /// before), asserting `201`; returns its id.
    pub async fn create_session(&self, plan: Plan<'_>) -> String {
        let res = self
            .post(
                &self.coordinator,
                "/api/sessions",
                json!({
                    "specialty": plan.specialty, "title": plan.title,
                    "starts_at": plan.starts_at.to_rfc3339(), "duration_minutes": 90,
                    "case_capacity": plan.capacity, "chair_id": plan.chair.id,
                    "booking_cutoff_hours": 48, "teaching": plan.teaching,
                }),
            )
            .await;
        let body = expect(StatusCode::CREATED, answer(res).await);
        body["id"].as_str().unwrap().to_string()
    }

    /// The usual session, `days` from now with `capacity` places; returns its id.
    pub async fn session(&self, days: i64, capacity: u32, teaching: bool) -> String {
        self.create_session(Plan { capacity, teaching, ..self.plan(days) }).await
    }

    /// Books `body` into `session` as `referrer`: the raw response.
    pub async fn book(&self, referrer: &Account, session: &str, body: Value) -> reqwest::Response {
        self.post(referrer, &format!("/api/sessions/{session}/cases"), body).await
    }

    /// Books `body` into `session` as `referrer`, asserting `201` and that it awaits
    /// triage; returns the case id.
    pub async fn submit_case(&self, referrer: &Account, session: &str, body: Value) -> String {
        let res = self.book(referrer, session, body).await;
        let body = expect(StatusCode::CREATED, answer(res).await);
        assert_eq!(body["state"], "awaiting_triage", "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// `POST /api/cases/{case}/triage` with `body` as `who`.
    pub async fn triage(&self, who: &Account, case: &str, body: Value) -> (StatusCode, Value) {
        answer(self.post(who, &format!("/api/cases/{case}/triage"), body).await).await
    }

    /// Books `body` into `session` as `referrer` and has the coordinator accept it onto
    /// the agenda; returns the case id.
    pub async fn book_case(&self, referrer: &Account, session: &str, body: Value) -> String {
        let id = self.submit_case(referrer, session, body).await;
        let accept = json!({ "decision": "accept" });
        expect(StatusCode::OK, self.triage(&self.coordinator, &id, accept).await);
        id
    }

    /// Has the coordinator accept every booking of `session` waiting for triage.
    pub async fn accept_waiting(&self, session: &str) {
        let (_, queue) = answer(self.get(&self.coordinator, "/api/triage").await).await;
        for item in queue.as_array().expect("the triage queue") {
            if item["session"]["id"] == session {
                let id = item["case"]["id"].as_str().unwrap();
                let accept = json!({ "decision": "accept" });
                expect(StatusCode::OK, self.triage(&self.coordinator, id, accept).await);
            }
        }
    }

    /// `PUT /api/cases/{case}/outcome` as `who`.
    pub async fn put_outcome(&self, who: &Account, case: &str, body: Value) -> (StatusCode, Value) {
        let path = format!("/api/cases/{case}/outcome");
        self.app.send(reqwest::Method::PUT, &who.token, &path, Some(body)).await
    }

    /// `POST /api/cases/{case}/outcome/sign` as `who`, for a case decided outside its
    /// meeting (the suites that sign without holding one give this reason).
    pub async fn sign(&self, who: &Account, case: &str) -> (StatusCode, Value) {
        let reason = json!({ "outside_meeting_reason": OUTSIDE_MEETING });
        self.sign_with(who, case, reason).await
    }

    /// `POST /api/cases/{case}/outcome/sign` with `body` as `who`.
    pub async fn sign_with(&self, who: &Account, case: &str, body: Value) -> (StatusCode, Value) {
        let path = format!("/api/cases/{case}/outcome/sign");
        self.app.post(&who.token, &path, body).await
    }

    /// `GET /api/cases/{case}/outcome` as `who`.
    pub async fn outcome(&self, who: &Account, case: &str) -> (StatusCode, Value) {
        let path = format!("/api/cases/{case}/outcome");
        self.app.get(&who.token, &path).await
    }
}

/// The reason the suites give for signing outcomes outside a meeting.
pub const OUTSIDE_MEETING: &str =
    "Decided by the chair from the referral, the meeting having run out of time";

/// A session to create: [`Clinic::plan`] is the usual one; a test changes what it needs.
pub struct Plan<'a> {
    pub specialty: &'a str,
    pub chair: &'a Account,
    pub starts_at: DateTime<Utc>,
    pub capacity: u32,
    pub teaching: bool,
    pub title: Option<&'a str>,
}

/// A routine referral of patient `nhs` (Hermione Quibble, born 17 May 1978, GP practice
/// A81001) for low back pain, with free text that may identify her (the default), and
/// its proforma: a GP referral received on 2 November 2026, physiotherapy and an X-ray
/// tried, a STarT Back score, the patient agreeing.
pub fn referral(nhs: &str) -> Value {
    json!({
        "patient": { "nhs_number": nhs, "given_name": "Hermione", "family_name": "Quibble",
                     "date_of_birth": "1978-05-17", "sex": "female", "gp_practice_code": "A81001" },
        "clinical_question": "Inflammatory back pain?",
        "history": "Twelve weeks of low back pain and morning stiffness.",
        "urgency": "routine", "body_site": "lower back", "red_flags": [],
        "referral_received_on": "2026-11-02", "referral_source": "gp", "symptom_weeks": 12,
        "conservative_care": [{ "kind": "physiotherapy", "weeks": 6 }],
        "imaging": [{ "kind": "xray", "done_on": "2026-10-20", "summary": "Sacroiliitis query" }],
        "medication_tried": "Naproxen 500 mg", "start_back": { "total": 5, "psychosocial": 3 },
        "patient_agrees": true,
    })
}

/// The body of an answer with status `want`; any other status fails the test, showing
/// the body.
pub fn expect(want: StatusCode, (status, body): (StatusCode, Value)) -> Value {
    assert_eq!(status, want, "{body}");
    body
}

/// A raw response as its status and JSON body (`null` when it has none).
pub async fn answer(res: reqwest::Response) -> (StatusCode, Value) {
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// The first `n` valid NHS numbers from 400 000 000 up (by the check-digit rule).
pub fn nhs_numbers(n: usize) -> Vec<String> {
    use mdt_coordinator::domain::nhs_number::check_digit;
    (400_000_000u32..)
        .filter_map(|p| {
            let digits: Vec<u32> = p.to_string().bytes().map(|b| u32::from(b - b'0')).collect();
            check_digit(&digits).map(|c| format!("{p}{c}"))
        })
        .take(n)
        .collect()
}
