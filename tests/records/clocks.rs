//! Communication clocks (issue 16), on both backends with the app's clock moved by the
//! test: a case signed on Friday 30 April 2027, before the early-May bank holiday Monday,
//! has its referrer clock due on Tuesday 4 May and its patient clock on Wednesday 5 May;
//! the due list and the activity report's on-time share change as the clock moves and as
//! the coordinator records the letters printed; an amendment keeps the first signing's
//! clocks. Coordinators keep the bank holidays.

use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::clinic::{expect, referral, Clinic};
use crate::common::Backend;

const NHS: &str = "9434765919";

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

async fn due(c: &Clinic, query: &str) -> Vec<Value> {
    let (status, body) = c.app.get(&c.coordinator.token, &format!("/api/letters/due{query}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array().unwrap().clone()
}

/// The window totals' communication figures of the clinic's specialty, for the report
/// covering the next month of sessions.
async fn communication(c: &Clinic) -> Value {
    let today = Utc::now().date_naive();
    let query = format!(
        "/api/reports/activity?from={today}&to={}&specialty={}",
        today + Duration::days(30),
        c.specialty
    );
    let (status, body) = c.app.get(&c.coordinator.token, &query).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["totals"][0]["communication"].clone()
}

fn clock(clocks: u32, on_time: u32, overdue: u32, percent: Value) -> Value {
    json!({ "clocks": clocks, "met_on_time": on_time, "overdue": overdue, "on_time_percent": percent })
}

async fn printed(c: &Clinic, letter: &str) {
    let res = c.post(&c.coordinator, &format!("/api/letters/{letter}/printed"), json!({})).await;
    assert_eq!(res.status(), StatusCode::OK);
}

async fn bank_holidays_are_data_coordinators_add_to(backend: Backend) {
    let c = Clinic::open(backend).await;
    let (status, list) = c.app.get(&c.coordinator.token, "/api/bank-holidays").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let dates: Vec<&str> =
        list.as_array().unwrap().iter().map(|h| h["date"].as_str().unwrap()).collect();
    assert_eq!(dates.len(), 32);
    for want in ["2025-01-01", "2026-08-31", "2026-12-28", "2027-05-03", "2028-12-26"] {
        assert!(dates.contains(&want), "{want} in {dates:?}");
    }
    let add = |body| c.app.post(&c.coordinator.token, "/api/bank-holidays", body);
    let (status, body) = add(json!({ "date": "2027-05-03", "name": "Again" })).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("bank_holiday_exists"))
    );
    let (status, body) = add(json!({ "date": "3 May", "name": "Bad" })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "invalid_date");
    let made = expect(
        StatusCode::CREATED,
        add(json!({ "date": "2029-01-01", "name": "New Year's Day" })).await,
    );
    assert_eq!(made, json!({ "date": "2029-01-01", "name": "New Year's Day" }));
    let (_, list) = c.app.get(&c.coordinator.token, "/api/bank-holidays").await;
    assert_eq!(list.as_array().unwrap().len(), 33);
    // Coordinators only.
    let (status, _) = c.app.get(&c.physio.token, "/api/bank-holidays").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = c
        .app
        .post(&c.chair.token, "/api/bank-holidays", json!({ "date": "2029-12-25", "name": "X" }))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = c.app.get(&c.chair.token, "/api/letters/due").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = c.app.get(&c.coordinator.token, "/api/letters/due?state=late").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "invalid_state");
}

async fn clocks_run_over_working_days_as_the_clock_moves(backend: Backend) {
    let c = Clinic::open(backend).await;
    let session = c.session(7, 4, false).await;
    let case = c.book_case(&c.physio, &session, referral(NHS)).await;
    let outcome = json!({
        "management_plan": { "text": "Graded exercise", "items": [] },
        "follow_up": { "kind": "review", "weeks": 6 },
    });
    expect(StatusCode::OK, c.put_outcome(&c.chair, &case, outcome).await);
    assert!(due(&c, "").await.is_empty());

    // Signed at 14:00 BST on Friday 30 April 2027; Monday 3 May is a bank holiday.
    c.app.state.clock.set(at("2027-04-30T13:00:00Z"));
    expect(StatusCode::OK, c.sign(&c.chair, &case).await);
    let (_, letters) = c.app.get(&c.chair.token, &format!("/api/cases/{case}/letters")).await;
    let letter = |kind: &str| {
        let found = letters.as_array().unwrap().iter().find(|l| l["kind"] == kind).unwrap();
        found["id"].as_str().unwrap().to_string()
    };
    let (gp, patient) = (letter("gp"), letter("patient"));

    let list = due(&c, "").await;
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0]["case_id"], case.as_str());
    assert_eq!(list[0]["clock"], "referrer_informed");
    assert_eq!(list[0]["letter_id"], gp.as_str());
    assert_eq!(list[0]["due_on"], "2027-05-04");
    assert_eq!(at(list[0]["due_at"].as_str().unwrap()), at("2027-05-04T22:59:59Z"));
    // The moved clock runs on from where it was set.
    let started = at(list[0]["started_at"].as_str().unwrap()) - at("2027-04-30T13:00:00Z");
    assert!(started >= Duration::zero() && started < Duration::minutes(1), "{started}");
    assert_eq!(list[0]["overdue"], false);
    assert_eq!(list[1]["clock"], "patient_letter_sent");
    assert_eq!(list[1]["letter_id"], patient.as_str());
    assert_eq!(list[1]["due_on"], "2027-05-05");
    // No patient identifiers: the case id only.
    let keys: Vec<&String> = list[0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["case_id", "clock", "due_at", "due_on", "letter_id", "overdue", "started_at"]
    );
    assert!(due(&c, "?state=overdue").await.is_empty());
    let running = clock(1, 0, 0, Value::Null);
    assert_eq!(
        communication(&c).await,
        json!({ "referrer_informed": running, "patient_letter_sent": running })
    );

    // 23:00 BST on Tuesday 4 May: still due.
    c.app.state.clock.set(at("2027-05-04T22:00:00Z"));
    assert_eq!(due(&c, "?state=due").await.len(), 2);
    assert!(due(&c, "?state=overdue").await.is_empty());

    // 00:30 BST on Wednesday 5 May: the referrer clock is overdue, the patient's runs on.
    c.app.state.clock.set(at("2027-05-04T23:30:00Z"));
    let overdue = due(&c, "?state=overdue").await;
    assert_eq!(overdue.len(), 1, "{overdue:?}");
    assert_eq!(overdue[0]["clock"], "referrer_informed");
    assert_eq!(overdue[0]["overdue"], true);
    let still = due(&c, "?state=due").await;
    assert_eq!(still.len(), 1);
    assert_eq!(still[0]["clock"], "patient_letter_sent");
    assert_eq!(
        communication(&c).await,
        json!({ "referrer_informed": clock(1, 0, 1, json!(0.0)), "patient_letter_sent": running })
    );

    // The coordinator prints the patient's letter on Wednesday: on time.
    c.app.state.clock.set(at("2027-05-05T09:00:00Z"));
    printed(&c, &patient).await;
    let list = due(&c, "").await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["clock"], "referrer_informed");
    assert_eq!(
        communication(&c).await,
        json!({ "referrer_informed": clock(1, 0, 1, json!(0.0)),
                "patient_letter_sent": clock(1, 1, 0, json!(100.0)) })
    );

    // And the GP letter, a day late: met, but not on time.
    printed(&c, &gp).await;
    assert!(due(&c, "").await.is_empty());
    assert_eq!(
        communication(&c).await,
        json!({ "referrer_informed": clock(1, 0, 0, json!(0.0)),
                "patient_letter_sent": clock(1, 1, 0, json!(100.0)) })
    );
}

async fn an_amendment_neither_restarts_nor_stops_the_clocks(backend: Backend) {
    let c = Clinic::open(backend).await;
    let session = c.session(7, 4, false).await;
    let case = c.book_case(&c.physio, &session, referral(NHS)).await;
    let outcome = json!({
        "management_plan": { "text": "Graded exercise", "items": [] },
        "follow_up": { "kind": "review", "weeks": 6 },
    });
    expect(StatusCode::OK, c.put_outcome(&c.chair, &case, outcome.clone()).await);
    c.app.state.clock.set(at("2027-04-30T13:00:00Z"));
    expect(StatusCode::OK, c.sign(&c.chair, &case).await);

    // Amended on Tuesday 4 May: the clocks keep Friday's start and deadlines, and point
    // at the amendment's letters.
    c.app.state.clock.set(at("2027-05-04T09:00:00Z"));
    let mut amended = outcome;
    amended["reason"] = json!("Plan clarified");
    amended["management_plan"]["text"] = json!("Graded exercise, three times a week");
    let path = format!("/api/cases/{case}/outcome/amendments");
    expect(StatusCode::CREATED, c.app.post(&c.chair.token, &path, amended).await);
    let (_, letters) = c.app.get(&c.chair.token, &format!("/api/cases/{case}/letters")).await;
    let current = |kind: &str| {
        let all = letters.as_array().unwrap();
        let found = all.iter().find(|l| l["kind"] == kind && l["version"] == 2).unwrap();
        found["id"].as_str().unwrap().to_string()
    };
    let list = due(&c, "").await;
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0]["due_on"], "2027-05-04");
    assert_eq!(list[0]["letter_id"], current("gp").as_str());
    assert_eq!(list[1]["due_on"], "2027-05-05");
    assert_eq!(list[1]["letter_id"], current("patient").as_str());
    let started = at(list[0]["started_at"].as_str().unwrap());
    assert!(started < at("2027-04-30T13:01:00Z"), "{started}");

    // Printing the amendment's patient letter meets that clock, on time.
    printed(&c, &current("patient")).await;
    let list = due(&c, "").await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["clock"], "referrer_informed");
    assert_eq!(communication(&c).await["patient_letter_sent"], clock(1, 1, 0, json!(100.0)));
}

crate::on_both_backends!(
    bank_holidays_are_data_coordinators_add_to,
    clocks_run_over_working_days_as_the_clock_moves,
    an_amendment_neither_restarts_nor_stops_the_clocks,
);
