//! Decisions as tracked actions (issue 16): signing makes an action of each investigation
//! and referral, owned by the referrer and due by the specialty's days; an MRI goes
//! requested → booked → done → result received and books the re-discussion onto a later
//! agenda in the same step; illegal moves are refused; an overdue action shows first to
//! its owner; an amendment replaces the open actions; the FHIR export follows them; and
//! trainees see none of it.

use chrono::{NaiveDate, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::clinic::{expect, referral, Account, Clinic};
use crate::common::Backend;

const NHS: &str = "9434765919";

impl Clinic {
    /// Drafts `body` as the chair and signs it (with a reason for deciding outside a
    /// meeting, which signing a case never discussed will need); returns the signed version.
    async fn sign_outcome(&self, case: &str, body: Value) -> Value {
        expect(StatusCode::OK, self.put_outcome(&self.chair, case, body).await);
        let path = format!("/api/cases/{case}/outcome/sign");
        let reason =
            json!({ "outside_meeting_reason": "Decided by the chair outside the meeting" });
        expect(StatusCode::OK, self.app.post(&self.chair.token, &path, reason).await)
    }

    /// `GET /api/actions?{query}` as `who`.
    async fn actions(&self, who: &Account, query: &str) -> (StatusCode, Value) {
        self.app.get(&who.token, &format!("/api/actions?{query}")).await
    }

    /// `PATCH /api/actions/{id}` with `body` as `who`.
    async fn patch_action(&self, who: &Account, id: &str, body: Value) -> (StatusCode, Value) {
        let path = format!("/api/actions/{id}");
        self.app.send(Method::PATCH, &who.token, &path, Some(body)).await
    }

    /// The FHIR export's `ServiceRequest` statuses, in bundle order.
    async fn order_statuses(&self, case: &str) -> Vec<String> {
        let (status, bundle) =
            self.app.get(&self.chair.token, &format!("/api/cases/{case}/fhir")).await;
        assert_eq!(status, StatusCode::OK, "{bundle}");
        bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["resource"])
            .filter(|r| r["resourceType"] == "ServiceRequest")
            .map(|r| r["status"].as_str().unwrap().to_string())
            .collect()
    }
}

fn outcome(investigations: Value, referrals: Value) -> Value {
    json!({
        "investigations": investigations, "referrals": referrals,
        "management_plan": { "text": "Graded exercise with the ESP" },
        "follow_up": { "kind": "none" },
    })
}

fn the<'a>(list: &'a Value, what: &str) -> &'a Value {
    let found = list.as_array().unwrap().iter().find(|a| a["what"] == what);
    found.unwrap_or_else(|| panic!("no action {what} in {list}"))
}

fn days_from_today(due: &Value) -> i64 {
    let due: NaiveDate = due.as_str().unwrap().parse().unwrap();
    (due - Utc::now().date_naive()).num_days()
}

async fn an_mri_runs_to_its_result_and_books_the_rediscussion(backend: Backend) {
    let c = Clinic::open(backend).await;
    let session = c.session(7, 4, false).await;
    let later = c.session(21, 4, false).await;
    let case = c.book_case(&c.physio, &session, referral(NHS)).await;
    c.sign_outcome(
        &case,
        outcome(
            json!([{ "kind": "mri", "site": "lower back", "urgency": "urgent",
                     "notes": "Hermione Quibble's films from 2024" }]),
            json!([{ "destination": "spinal_surgery", "urgency": "routine",
                     "reason": "Mrs Quibble asks for a surgical opinion" }]),
        ),
    )
    .await;

    // The referrer owns both, due by the default days (urgent 14, routine 42).
    let list = expect(StatusCode::OK, c.actions(&c.physio, "mine=true").await);
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    let text = list.to_string();
    assert!(!text.contains("Quibble") && !text.contains(NHS), "no identifiers: {text}");
    let mri = the(&list, "MRI (lower back)");
    assert_eq!(
        (&mri["case_id"], &mri["kind"], &mri["urgency"], &mri["status"], &mri["owner_id"]),
        (
            &json!(case),
            &json!("investigation"),
            &json!("urgent"),
            &json!("requested"),
            &json!(c.physio.id)
        )
    );
    assert!((13..=15).contains(&days_from_today(&mri["due_on"])), "{mri}");
    let referral_action = the(&list, "Referral: Spinal surgery");
    assert!((41..=43).contains(&days_from_today(&referral_action["due_on"])));
    let id = mri["id"].as_str().unwrap().to_string();
    assert_eq!(c.order_statuses(&case).await, ["active", "active"]);

    // Trainees see none of it; others outside the case do not see it either.
    assert_eq!(c.actions(&c.trainee, "").await.0, StatusCode::FORBIDDEN);
    let booked = json!({ "status": "booked" });
    assert_eq!(c.patch_action(&c.trainee, &id, booked.clone()).await.0, StatusCode::FORBIDDEN);
    assert_eq!(c.patch_action(&c.other_physio, &id, booked.clone()).await.0, StatusCode::NOT_FOUND);
    assert_eq!(expect(StatusCode::OK, c.actions(&c.other_physio, "").await), json!([]));
    assert_eq!(expect(StatusCode::OK, c.actions(&c.other_chair, "").await), json!([]));
    let seen = expect(StatusCode::OK, c.actions(&c.second_consultant, "").await);
    assert_eq!(seen.as_array().unwrap().len(), 2);

    // requested → booked → done, by the owner.
    let got = expect(StatusCode::OK, c.patch_action(&c.physio, &id, booked.clone()).await);
    assert_eq!(got["status"], "booked");
    let done = json!({ "status": "done" });
    expect(StatusCode::OK, c.patch_action(&c.physio, &id, done.clone()).await);
    assert_eq!(c.order_statuses(&case).await, ["completed", "active"]);

    // Illegal moves and incomplete changes are refused.
    let (status, err) = c.patch_action(&c.physio, &id, booked).await;
    assert_eq!((status, err["code"].as_str()), (StatusCode::CONFLICT, Some("invalid_transition")));
    let (status, err) = c.patch_action(&c.physio, &id, done).await;
    assert_eq!((status, err["code"].as_str()), (StatusCode::CONFLICT, Some("invalid_transition")));
    let (status, err) =
        c.patch_action(&c.physio, &id, json!({ "status": "result_received" })).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("result_required"))
    );
    let (status, err) = c.patch_action(&c.physio, &id, json!({ "status": "cancelled" })).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("reason_required"))
    );
    let to_trainee = json!({ "owner_id": c.trainee.id });
    let (status, err) = c.patch_action(&c.physio, &id, to_trainee).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_owner"))
    );

    // The result, and the re-discussion booked in the same step onto the later agenda.
    let result = json!({
        "status": "result_received",
        "result": { "summary": "L4/5 disc protrusion compressing the L5 root" },
        "rediscuss_session_id": later,
    });
    let got = expect(StatusCode::OK, c.patch_action(&c.physio, &id, result).await);
    assert_eq!(got["status"], "result_received");
    assert_eq!(got["result"]["summary"], "L4/5 disc protrusion compressing the L5 root");
    let follow_up = got["follow_up_case_id"].as_str().expect("a follow-up case").to_string();
    assert_eq!(got["rediscuss_case_id"], json!(follow_up));
    let (_, shown) = c.app.get(&c.chair.token, &format!("/api/sessions/{later}")).await;
    let agenda = shown["agenda"].as_array().unwrap();
    let item = agenda.iter().find(|i| i.to_string().contains(&follow_up)).expect("on the agenda");
    let fetched =
        expect(StatusCode::OK, c.app.get(&c.chair.token, &format!("/api/cases/{follow_up}")).await);
    assert_eq!(
        (&fetched["follow_up_of"], &fetched["state"]),
        (&json!(case), &json!("booked")),
        "{item}"
    );
    assert_eq!(c.order_statuses(&case).await, ["completed", "active"]);

    // A consultant of the specialty closes it; the referral is cancelled with a reason.
    let closed = json!({ "status": "closed" });
    expect(StatusCode::OK, c.patch_action(&c.second_consultant, &id, closed).await);
    let referral_id = referral_action["id"].as_str().unwrap();
    let cancel = json!({ "status": "cancelled", "reason": "The patient declined surgery" });
    let got = expect(StatusCode::OK, c.patch_action(&c.coordinator, referral_id, cancel).await);
    assert_eq!(got["cancel_reason"], "The patient declined surgery");
    assert_eq!(c.order_statuses(&case).await, ["completed", "revoked"]);
    let reopen = json!({ "status": "booked" });
    let (status, _) = c.patch_action(&c.physio, referral_id, reopen).await;
    assert_eq!(status, StatusCode::CONFLICT);
}

async fn an_overdue_action_comes_first_for_its_owner(backend: Backend) {
    let c = Clinic::open(backend).await;
    let due_days = format!("/api/specialties/{}/action-due-days", c.specialty);
    let default = expect(StatusCode::OK, c.app.get(&c.physio.token, &due_days).await);
    assert_eq!(default, json!({ "urgent": 14, "routine": 42 }));
    let put = async |who: &Account, body: Value| {
        c.app.send(Method::PUT, &who.token, &due_days, Some(body)).await
    };
    assert_eq!(put(&c.physio, json!({ "urgent": 0, "routine": 7 })).await.0, StatusCode::FORBIDDEN);
    let (status, err) = put(&c.coordinator, json!({ "urgent": 0, "routine": 400 })).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_due_days"))
    );
    expect(StatusCode::OK, put(&c.coordinator, json!({ "urgent": 0, "routine": 7 })).await);

    let session = c.session(7, 4, false).await;
    let case = c.book_case(&c.physio, &session, referral(NHS)).await;
    c.sign_outcome(
        &case,
        outcome(
            json!([{ "kind": "mri", "urgency": "urgent" }, { "kind": "bloods", "urgency": "routine" }]),
            json!([]),
        ),
    )
    .await;
    let list = expect(StatusCode::OK, c.actions(&c.physio, "mine=true").await);
    assert!((-1..=1).contains(&days_from_today(&the(&list, "MRI")["due_on"])));
    let bloods = the(&list, "Blood tests")["id"].as_str().unwrap().to_string();
    assert!((6..=8).contains(&days_from_today(&the(&list, "Blood tests")["due_on"])));
    assert_eq!(expect(StatusCode::OK, c.actions(&c.physio, "overdue=true").await), json!([]));

    // The blood tests fall overdue: they come first, and alone with overdue=true.
    c.app
        .db
        .raw(&format!("UPDATE actions SET due_on = '2020-01-01' WHERE id = '{bloods}'"))
        .await
        .unwrap();
    let list = expect(StatusCode::OK, c.actions(&c.physio, "mine=true").await);
    assert_eq!((&list[0]["id"], &list[0]["overdue"]), (&json!(bloods), &json!(true)));
    assert_eq!(list[1]["overdue"], false);
    for who in [&c.physio, &c.coordinator] {
        let overdue = expect(StatusCode::OK, c.actions(who, "overdue=true").await);
        assert_eq!(overdue.as_array().unwrap().len(), 1, "{overdue}");
        assert_eq!(overdue[0]["id"], json!(bloods));
    }
    let by_owner =
        expect(StatusCode::OK, c.actions(&c.coordinator, &format!("owner={}", c.physio.id)).await);
    assert_eq!(by_owner.as_array().unwrap().len(), 2);
    assert_eq!(expect(StatusCode::OK, c.actions(&c.chair, "mine=true").await), json!([]));
    let (status, err) = c.actions(&c.physio, "state=finished").await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_status"))
    );

    // Reassigned to the chair, the MRI is the chair's.
    let mri = the(&list, "MRI")["id"].as_str().unwrap().to_string();
    let got = expect(
        StatusCode::OK,
        c.patch_action(&c.physio, &mri, json!({ "owner_id": c.chair.id })).await,
    );
    assert_eq!(got["owner_id"], json!(c.chair.id));
    let mine = expect(StatusCode::OK, c.actions(&c.chair, "mine=true").await);
    assert_eq!(mine[0]["id"], json!(mri));

    // An amendment keeps the MRI, cancels the blood tests, and adds the new referral.
    let mut amended = outcome(
        json!([{ "kind": "mri", "urgency": "urgent" }]),
        json!([{ "destination": "neurology", "urgency": "routine", "reason": "Foot drop" }]),
    );
    amended["reason"] = json!("Blood tests were already done by the GP");
    let path = format!("/api/cases/{case}/outcome/amendments");
    expect(StatusCode::CREATED, c.app.post(&c.chair.token, &path, amended).await);
    let all = expect(StatusCode::OK, c.actions(&c.coordinator, "").await);
    assert_eq!(all.as_array().unwrap().len(), 3, "{all}");
    assert_eq!(
        (&the(&all, "MRI")["id"], &the(&all, "MRI")["status"]),
        (&json!(mri), &json!("requested"))
    );
    let superseded = the(&all, "Blood tests");
    assert_eq!(
        (&superseded["status"], &superseded["cancel_reason"]),
        (&json!("cancelled"), &json!("superseded by amendment"))
    );
    assert_eq!(superseded["overdue"], false);
    let new = the(&all, "Referral: Neurology");
    assert_eq!(
        (&new["status"], &new["outcome_version"], &new["owner_id"]),
        (&json!("requested"), &json!(2), &json!(c.physio.id))
    );
    let cancelled = expect(StatusCode::OK, c.actions(&c.coordinator, "state=cancelled").await);
    assert_eq!(cancelled.as_array().unwrap().len(), 1);
}

crate::on_both_backends!(
    an_mri_runs_to_its_result_and_books_the_rediscussion,
    an_overdue_action_comes_first_for_its_owner,
);
