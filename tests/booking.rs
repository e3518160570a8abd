//! Scheduling and booking over HTTP, on both backends: sessions and series, every
//! booking refusal, idempotent retries, withdrawal, access rules, trainee
//! de-identification, and the over-booking race.

mod common;

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use mdt_coordinator::domain::Role;

use common::clinic::{answer, nhs_numbers, referral, Account, Clinic, Plan};
use common::outage::Outage;
use common::{eventually, Backend};

async fn code(res: reqwest::Response) -> (StatusCode, String, Value) {
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    (status, body["code"].as_str().unwrap_or("").to_string(), body)
}

async fn schedule_is_created_listed_and_published(backend: Backend) {
    let c = Clinic::open(backend).await;
    let first = (Utc::now() + Duration::days(3)).date_naive().to_string();
    let series = json!({
        "specialty": "rheumatology", "title": "Rheumatology MDT", "first_date": first, "local_time": "12:30",
        "weeks": 4, "duration_minutes": 90, "case_capacity": 8, "chair_id": c.chair.id,
        "booking_cutoff_hours": 48,
    });
    let res = c.post(&c.physio, "/api/series", series.clone()).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = c.post(&c.coordinator, "/api/series", series.clone()).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["sessions"].as_array().unwrap().len(), 4);

    let list: Vec<Value> =
        c.get(&c.physio, "/api/sessions?specialty=rheumatology").await.json().await.unwrap();
    assert_eq!(list.len(), 4);
    assert!(list
        .iter()
        .all(|s| s["booked"] == 0 && s["capacity"] == 8 && s["state"] == "scheduled"));
    let to = (Utc::now() + Duration::days(11)).to_rfc3339();
    let window: Vec<Value> = c
        .app
        .http
        .get(c.app.url("/api/sessions"))
        .query(&[("specialty", "rheumatology"), ("to", to.as_str())])
        .bearer_auth(&c.physio.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(window.len(), 2);
    let spinal: Vec<Value> =
        c.get(&c.physio, "/api/sessions?specialty=spinal").await.json().await.unwrap();
    assert!(spinal.is_empty());
    let (status, code_, _) = code(c.get(&c.physio, "/api/sessions?from=yesterday").await).await;
    assert_eq!((status, code_.as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_time"));

    // A chair who is not a consultant of the specialty is refused.
    let mut bad = series.clone();
    bad["chair_id"] = json!(uuid::Uuid::new_v4());
    let (status, code_, body) = code(c.post(&c.coordinator, "/api/series", bad).await).await;
    assert_eq!(
        (status, code_.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_chair"),
        "{body}"
    );
    let mut bad = series.clone();
    bad["local_time"] = json!("lunchtime");
    assert_eq!(code(c.post(&c.coordinator, "/api/series", bad).await).await.1, "invalid_time");

    let id = list[0]["id"].as_str().unwrap();
    let res = c.post(&c.coordinator, &format!("/api/sessions/{id}/publish"), json!({})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let again = c.post(&c.coordinator, &format!("/api/sessions/{id}/publish"), json!({})).await;
    assert_eq!(code(again).await.1, "invalid_state");
    let shown: Value = c.get(&c.physio, &format!("/api/sessions/{id}")).await.json().await.unwrap();
    assert_eq!(shown["session"]["state"], "published");

    // Specialties are data.
    let res = c
        .post(
            &c.coordinator,
            "/api/specialties",
            json!({ "slug": "foot-and-ankle", "name": "Foot and ankle" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = c
        .post(
            &c.coordinator,
            "/api/specialties",
            json!({ "slug": "foot-and-ankle", "name": "Again" }),
        )
        .await;
    assert_eq!(code(res).await.1, "specialty_exists");
    let all: Vec<String> = c.get(&c.physio, "/api/specialties").await.json().await.unwrap();
    assert!(all.contains(&"foot-and-ankle".to_string()));
}

async fn booking_refusals_and_happy_path(backend: Backend) {
    let c = Clinic::open(backend).await;
    let session = c.session(7, 2, false).await;

    for (mutate, expected_code, field) in [
        (json!({"patient": {"nhs_number": "943 476 5918"}}), "invalid_nhs_number", "nhs_number"),
        (
            json!({"patient": {"date_of_birth": "2999-01-01"}}),
            "date_of_birth_in_future",
            "date_of_birth",
        ),
        (json!({"patient": {"sex": "f"}}), "invalid_sex", "sex"),
        (json!({"patient": {"gp_practice_code": "12"}}), "invalid_ods_code", "gp_practice_code"),
        (json!({"patient": {"family_name": "  "}}), "required", "family_name"),
        (json!({"urgency": "whenever"}), "invalid_urgency", "urgency"),
        (json!({"clinical_question": ""}), "required", "clinical_question"),
        (json!({"red_flags": ["saddle anaesthesia"]}), "red_flags_present", "red_flags"),
    ] {
        let mut body = referral("9434765919");
        for (k, v) in mutate.as_object().unwrap() {
            if let Some(inner) = v.as_object() {
                for (ik, iv) in inner {
                    body[k][ik] = iv.clone();
                }
            } else {
                body[k] = v.clone();
            }
        }
        let (status, got, res_body) = code(c.book(&c.physio, &session, body).await).await;
        assert_eq!(
            (status, got.as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, expected_code),
            "{res_body}"
        );
        assert_eq!(res_body["field"], field, "{res_body}");
    }
    let (_, _, body) = code(c.book(&c.physio, &session, json!({"red_flags": ["x"]})).await).await;
    assert_eq!(body["code"], "invalid_field", "missing fields are a 422 too");
    let (status, got, _) =
        code(c.book(&c.other_physio, &session, referral("9434765919")).await).await;
    assert_eq!((status, got.as_str()), (StatusCode::FORBIDDEN, "forbidden_specialty"));
    let (status, _, _) = code(c.book(&c.trainee, &session, referral("9434765919")).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let missing = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        c.book(&c.physio, &missing, referral("9434765919")).await.status(),
        StatusCode::NOT_FOUND
    );
    let shown: Value =
        c.get(&c.coordinator, &format!("/api/sessions/{session}")).await.json().await.unwrap();
    assert_eq!(shown["session"]["booked"], 0, "no refusal wrote anything");

    let res = c.book(&c.physio, &session, referral("943 476 5919")).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let case: Value = res.json().await.unwrap();
    assert_eq!(case["patient"]["nhs_number"], "9434765919");
    assert_eq!(case["state"], "awaiting_triage");
    c.accept_waiting(&session).await;
    let agenda: Value =
        c.get(&c.chair, &format!("/api/sessions/{session}")).await.json().await.unwrap();
    assert_eq!(agenda["agenda"][0]["id"], case["id"]);
    let (status, got, _) = code(c.book(&c.physio, &session, referral("9434765919")).await).await;
    assert_eq!((status, got.as_str()), (StatusCode::CONFLICT, "duplicate_case"));
    assert_eq!(
        c.book(&c.chair, &session, referral("9912003888")).await.status(),
        StatusCode::CREATED
    );
    c.accept_waiting(&session).await;
    let (status, got, _) = code(c.book(&c.physio, &session, referral("9449305552")).await).await;
    assert_eq!((status, got.as_str()), (StatusCode::CONFLICT, "session_full"));

    let soon = c.session(1, 8, false).await;
    let (status, got, _) = code(c.book(&c.physio, &soon, referral("9449305552")).await).await;
    assert_eq!((status, got.as_str()), (StatusCode::CONFLICT, "booking_closed"));

    // My cases, one case, withdrawal.
    let mine: Vec<Value> = c.get(&c.physio, "/api/cases?mine=true").await.json().await.unwrap();
    assert_eq!(mine.len(), 1);
    let id = case["id"].as_str().unwrap();
    assert_eq!(c.get(&c.physio, &format!("/api/cases/{id}")).await.status(), StatusCode::OK);
    assert_eq!(
        c.get(&c.other_physio, &format!("/api/cases/{id}")).await.status(),
        StatusCode::NOT_FOUND
    );
    let res = c
        .app
        .http
        .delete(c.app.url(&format!("/api/cases/{id}")))
        .bearer_auth(&c.other_physio.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = c
        .app
        .http
        .delete(c.app.url(&format!("/api/cases/{id}")))
        .bearer_auth(&c.physio.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let shown: Value =
        c.get(&c.coordinator, &format!("/api/sessions/{session}")).await.json().await.unwrap();
    assert_eq!(shown["session"]["booked"], 1, "withdrawal frees the slot");
    assert_eq!(shown["agenda"].as_array().unwrap().len(), 1);
    let res = c
        .app
        .http
        .delete(c.app.url(&format!("/api/cases/{id}")))
        .bearer_auth(&c.physio.token)
        .send()
        .await
        .unwrap();
    assert_eq!(code(res).await.1, "invalid_state");
    let mine: Vec<Value> = c.get(&c.physio, "/api/cases?mine=true").await.json().await.unwrap();
    assert_eq!(mine[0]["state"], "withdrawn");

    let audit = c.app.state.store.audit_events().await.unwrap();
    for action in ["case_booked", "case_read", "case_withdrawn"] {
        assert!(audit.iter().any(|e| e.action == action), "{action} not audited");
    }
    // Every way of reading a case leaves a row naming that case.
    let case_id = case["id"].as_str().unwrap();
    for via in ["case", "my_cases", "agenda"] {
        assert!(
            audit.iter().any(|e| e.action == "case_read"
                && e.record_id.as_deref() == Some(case_id)
                && e.details.contains(&format!("\"via\":\"{via}\""))),
            "read via {via} not audited for the case"
        );
    }
    assert!(c.app.state.store.verify_audit().await.unwrap().is_intact());
}

async fn idempotent_retry_books_once(backend: Backend) {
    let c = Clinic::open(backend).await;
    let session = c.session(7, 4, false).await;
    let send = || {
        c.app
            .http
            .post(c.app.url(&format!("/api/sessions/{session}/cases")))
            .bearer_auth(&c.physio.token)
            .header("Idempotency-Key", "booking-7f3a")
            .json(&referral("9434765919"))
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let second = send().await.unwrap();
    assert_eq!(second.status(), StatusCode::CREATED);
    assert_eq!(second.headers().get("idempotent-replayed").unwrap(), "true");
    let second: Value = second.json().await.unwrap();
    assert_eq!(first["id"], second["id"]);
    let shown: Value =
        c.get(&c.coordinator, &format!("/api/sessions/{session}")).await.json().await.unwrap();
    assert_eq!(shown["session"]["booked"], 1);
    let bad = c
        .app
        .http
        .post(c.app.url(&format!("/api/sessions/{session}/cases")))
        .bearer_auth(&c.physio.token)
        .header("Idempotency-Key", "")
        .json(&referral("9912003888"))
        .send()
        .await
        .unwrap();
    assert_eq!(code(bad).await.1, "invalid_idempotency_key");
    // The same key for a different booking is refused, not answered with the first one.
    let reused = c
        .app
        .http
        .post(c.app.url(&format!("/api/sessions/{session}/cases")))
        .bearer_auth(&c.physio.token)
        .header("Idempotency-Key", "booking-7f3a")
        .json(&referral("9912003888"))
        .send()
        .await
        .unwrap();
    let (status, got, _) = code(reused).await;
    assert_eq!(
        (status, got.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused")
    );
}

async fn trainees_see_teaching_agendas_de_identified(backend: Backend) {
    let c = Clinic::open(backend).await;
    let teaching = c.session(7, 4, true).await;
    let private = c.session(8, 4, false).await;
    let patients = [
        ("9434765919", "Hermione", "Quibble", "1978-05-17"),
        ("9912003888", "Barnaby", "Thistlewood", "1961-02-03"),
    ];
    for session in [&teaching, &private] {
        for (nhs, given, family, dob) in patients {
            let mut body = referral(nhs);
            body["patient"]["given_name"] = json!(given);
            body["patient"]["family_name"] = json!(family);
            body["patient"]["date_of_birth"] = json!(dob);
            body["free_text_identifies_patient"] = json!(false);
            assert_eq!(c.book(&c.physio, session, body).await.status(), StatusCode::CREATED);
        }
        c.accept_waiting(session).await;
    }
    let res = c.get(&c.trainee, &format!("/api/sessions/{teaching}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.unwrap();
    for (nhs, given, family, dob) in patients {
        for needle in
            [nhs, &format!("{} {} {}", &nhs[..3], &nhs[3..6], &nhs[6..]), given, family, dob]
        {
            assert!(!text.contains(needle), "trainee response contains {needle}: {text}");
        }
    }
    // A birth year alone would also identify; it must not appear in any value that is
    // not an id (ids are random and may contain any four digits).
    assert!(!text.contains("date_of_birth"));
    let body: Value = serde_json::from_str(&text).unwrap();
    let agenda = body["agenda"].as_array().unwrap();
    for case in agenda {
        for (key, value) in case.as_object().unwrap() {
            if !key.ends_with("id") {
                let value = value.to_string();
                assert!(!value.contains("1978") && !value.contains("1961"), "{key}: {value}");
            }
        }
    }
    assert_eq!(agenda.len(), 2);
    assert!(agenda[0]["label"].as_str().unwrap().starts_with("Case 1 · "), "{text}");
    assert!(
        agenda.iter().any(|c| c["label"].as_str().unwrap().ends_with("· F · 40–49 · lower back")),
        "{text}"
    );
    // A case read directly is de-identified too; private sessions show no cases.
    let id = agenda[0]["id"].as_str().unwrap();
    let one = c.get(&c.trainee, &format!("/api/cases/{id}")).await.text().await.unwrap();
    assert!(
        !one.contains("9434765919") && !one.contains("9912003888") && !one.contains("Quibble"),
        "{one}"
    );
    let other: Value =
        c.get(&c.trainee, &format!("/api/sessions/{private}")).await.json().await.unwrap();
    assert!(other["agenda"].is_null());
    // Consultants of the specialty see identifiers; urgent cases come first.
    let full = c.get(&c.chair, &format!("/api/sessions/{teaching}")).await.text().await.unwrap();
    assert!(full.contains("9434765919") && full.contains("Thistlewood"));
    let spinal: Value =
        c.get(&c.other_physio, &format!("/api/sessions/{teaching}")).await.json().await.unwrap();
    assert!(spinal["agenda"].is_null(), "a practitioner who booked nothing here sees no cases");
}

async fn agenda_puts_urgent_cases_first(backend: Backend) {
    let c = Clinic::open(backend).await;
    let session = c.session(7, 4, false).await;
    let mut urgent = referral("9912003888");
    urgent["urgency"] = json!("urgent");
    assert_eq!(
        c.book(&c.physio, &session, referral("9434765919")).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(c.book(&c.physio, &session, urgent).await.status(), StatusCode::CREATED);
    c.accept_waiting(&session).await;
    let shown: Value =
        c.get(&c.chair, &format!("/api/sessions/{session}")).await.json().await.unwrap();
    let order: Vec<&str> = shown["agenda"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["urgency"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["urgent", "routine"]);
}

/// 200 concurrent booking requests at 10 places: exactly 10 succeed, the rest are
/// `409 session_full`, never a 5xx, and the session says 10.
async fn two_hundred_concurrent_bookings_fill_ten_places(backend: Backend) {
    let c = Clinic::open(backend).await;
    let session = c.session(7, 10, false).await;
    let requests = nhs_numbers(200).into_iter().map(|nhs| {
        let req = c
            .app
            .http
            .post(c.app.url(&format!("/api/sessions/{session}/cases")))
            .bearer_auth(&c.physio.token)
            .json(&referral(&nhs));
        tokio::spawn(async move {
            let res = req.send().await.unwrap();
            let status = res.status();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            (status, body["code"].as_str().unwrap_or("").to_string())
        })
    });
    let mut created = 0;
    let mut full = 0;
    for task in requests.collect::<Vec<_>>() {
        match task.await.unwrap() {
            (StatusCode::CREATED, _) => created += 1,
            (StatusCode::CONFLICT, code) if code == "session_full" => full += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!((created, full), (10, 190));
    c.accept_waiting(&session).await;
    let shown: Value =
        c.get(&c.coordinator, &format!("/api/sessions/{session}")).await.json().await.unwrap();
    assert_eq!(shown["session"]["booked"], 10);
    assert_eq!(shown["agenda"].as_array().unwrap().len(), 10);
}

async fn moves_keep_history_and_cancellation_moves_or_flags_cases(backend: Backend) {
    let c = Clinic::open(backend).await;
    let first = (Utc::now() + Duration::days(3)).date_naive().to_string();
    let res = c
        .post(
            &c.coordinator,
            "/api/series",
            json!({ "specialty": "rheumatology", "first_date": first, "local_time": "12:30", "weeks": 3,
                    "duration_minutes": 60, "case_capacity": 1, "chair_id": c.chair.id, "booking_cutoff_hours": 48 }),
        )
        .await;
    let series: Value = res.json().await.unwrap();
    let ids: Vec<String> = series["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    let (s1, s2, s3) = (&ids[0], &ids[1], &ids[2]);
    let booked = async |session: &str| -> i64 {
        let v: Value =
            c.get(&c.coordinator, &format!("/api/sessions/{session}")).await.json().await.unwrap();
        v["session"]["booked"].as_i64().unwrap()
    };

    let a: Value = c.book(&c.physio, s1, referral("9434765919")).await.json().await.unwrap();
    let a_id = a["id"].as_str().unwrap();
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    assert_eq!(
        upload(&c, &c.physio, a_id, "mri.png", "image/png", png).await.status(),
        StatusCode::CREATED
    );
    let res =
        c.post(&c.physio, &format!("/api/cases/{a_id}/move"), json!({ "session_id": s2 })).await;
    assert_eq!(res.status(), StatusCode::OK);
    let moved: Value = res.json().await.unwrap();
    assert_ne!(moved["id"], a["id"]);
    assert_eq!(moved["moved_from"], a["id"]);
    assert_eq!(moved["session_id"].as_str(), Some(s2.as_str()));
    assert_eq!((booked(s1).await, booked(s2).await), (0, 1));
    let old: Value = c.get(&c.physio, &format!("/api/cases/{a_id}")).await.json().await.unwrap();
    assert_eq!(old["state"], "deferred", "the old booking stays as history");
    let files: Vec<Value> = c
        .get(&c.physio, &format!("/api/cases/{}/attachments", moved["id"].as_str().unwrap()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(files.len(), 1, "the moved case keeps its attachments");
    let moved_id = moved["id"].as_str().unwrap();
    let again = c
        .post(&c.physio, &format!("/api/cases/{moved_id}/move"), json!({ "session_id": s2 }))
        .await;
    assert_eq!(code(again).await.1, "same_session");
    let deferred_again =
        c.post(&c.physio, &format!("/api/cases/{a_id}/move"), json!({ "session_id": s3 })).await;
    assert_eq!(code(deferred_again).await.1, "invalid_state");

    let b: Value = c.book(&c.physio, s1, referral("9912003888")).await.json().await.unwrap();
    let b_id = b["id"].as_str().unwrap();
    let full =
        c.post(&c.physio, &format!("/api/cases/{b_id}/move"), json!({ "session_id": s2 })).await;
    assert_eq!(code(full).await.1, "session_full");
    let hidden = c
        .post(&c.other_physio, &format!("/api/cases/{b_id}/move"), json!({ "session_id": s3 }))
        .await;
    assert_eq!(hidden.status(), StatusCode::NOT_FOUND);

    // Cancelling s1 moves b past the full s2 into s3.
    assert_eq!(
        c.post(&c.physio, &format!("/api/sessions/{s1}/cancel"), json!({})).await.status(),
        StatusCode::FORBIDDEN
    );
    let res = c.post(&c.coordinator, &format!("/api/sessions/{s1}/cancel"), json!({})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let report: Value = res.json().await.unwrap();
    assert_eq!(report["session"]["state"], "cancelled");
    assert_eq!(report["moved"][0]["case_id"], b["id"]);
    assert_eq!(report["moved"][0]["session_id"].as_str(), Some(s3.as_str()));
    assert_eq!((booked(s1).await, booked(s3).await), (0, 1));
    // Cancelling s3, the last of the series, leaves its case to be rebooked.
    let report: Value = c
        .post(&c.coordinator, &format!("/api/sessions/{s3}/cancel"), json!({}))
        .await
        .json()
        .await
        .unwrap();
    let flagged = report["needs_rebooking"][0].as_str().unwrap().to_string();
    let case: Value =
        c.get(&c.physio, &format!("/api/cases/{flagged}")).await.json().await.unwrap();
    assert_eq!(
        (case["state"].as_str(), case["needs_rebooking"].as_bool()),
        (Some("deferred"), Some(true))
    );
    assert_eq!(
        code(c.post(&c.coordinator, &format!("/api/sessions/{s3}/cancel"), json!({})).await)
            .await
            .1,
        "invalid_state"
    );
    assert_eq!(
        code(c.book(&c.physio, s3, referral("9449305552")).await).await.1,
        "session_not_bookable"
    );

    let store = c.app.state.store.clone();
    let subjects = eventually("the move and cancellation notices", async || {
        let subjects: Vec<String> =
            store.outbox_messages().await.unwrap().into_iter().map(|m| m.subject).collect();
        (subjects.iter().filter(|s| s.starts_with("Case moved")).count() == 2
            && subjects.iter().any(|s| s.contains("please rebook")))
        .then_some(subjects)
    })
    .await;
    assert!(subjects.iter().all(|s| !s.contains("9434765919") && !s.contains("Quibble")));
}

async fn the_chair_reorders_the_agenda(backend: Backend) {
    let c = Clinic::open(backend).await;
    let session = c.session(7, 5, false).await;
    for nhs in ["9434765919", "9912003888", "9449305552"] {
        assert_eq!(c.book(&c.physio, &session, referral(nhs)).await.status(), StatusCode::CREATED);
    }
    c.accept_waiting(&session).await;
    let agenda = async || -> Vec<String> {
        let v: Value =
            c.get(&c.chair, &format!("/api/sessions/{session}")).await.json().await.unwrap();
        v["agenda"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect()
    };
    let mut order = agenda().await;
    order.reverse();
    let put = async |who: &Account, ids: &[String]| {
        c.app
            .http
            .put(c.app.url(&format!("/api/sessions/{session}/agenda")))
            .bearer_auth(&who.token)
            .json(&json!({ "case_ids": ids }))
            .send()
            .await
            .unwrap()
    };
    assert_eq!(put(&c.physio, &order).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(code(put(&c.chair, &order[..2]).await).await.1, "agenda_changed");
    assert_eq!(put(&c.chair, &order).await.status(), StatusCode::OK);
    assert_eq!(agenda().await, order);
    // A later booking joins the end.
    let late: Value =
        c.book(&c.physio, &session, referral("9876543210")).await.json().await.unwrap();
    c.accept_waiting(&session).await;
    let now = agenda().await;
    assert_eq!(now.len(), 4, "{late}");
    assert_eq!(now[..3], order[..]);
}

/// SQLite with another writer holding the lock: the booking waits (busy timeout, then a
/// bounded retry) and answers `503` with `Retry-After`, never a 500, and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_lock_contention_is_a_503_with_retry_after() {
    use sqlx::{Connection, Executor};
    let c = Clinic::open_with(Backend::Sqlite, |s| s.database.busy_timeout_ms = 100).await;
    let session = c.session(7, 4, false).await;
    let mut holder = sqlx::SqliteConnection::connect(&c.app.db.url).await.unwrap();
    holder.execute("BEGIN IMMEDIATE").await.unwrap();
    let res = c.book(&c.physio, &session, referral("9434765919")).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(code(res).await.1, "service_unavailable");
    holder.execute("ROLLBACK").await.unwrap();
    assert_eq!(
        c.book(&c.physio, &session, referral("9434765919")).await.status(),
        StatusCode::CREATED
    );
    let shown: Value =
        c.get(&c.coordinator, &format!("/api/sessions/{session}")).await.json().await.unwrap();
    assert_eq!(shown["session"]["booked"], 1);
}

// ---- attachments ----------------------------------------------------------------

async fn upload(
    c: &Clinic, who: &Account, case: &str, name: &str, mime: &str, bytes: Vec<u8>,
) -> reqwest::Response {
    let part =
        reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()).mime_str(mime).unwrap();
    let form = reqwest::multipart::Form::new().part("file", part);
    c.app
        .http
        .post(c.app.url(&format!("/api/cases/{case}/attachments")))
        .bearer_auth(&who.token)
        .multipart(form)
        .send()
        .await
        .unwrap()
}

async fn attachments_are_sniffed_capped_stored_once_and_audited(backend: Backend) {
    let c = Clinic::open_with(backend, |s| s.data.attachment_max_bytes = 4096).await;
    let session = c.session(7, 4, true).await;
    let case: Value =
        c.book(&c.physio, &session, referral("9434765919")).await.json().await.unwrap();
    let case = case["id"].as_str().unwrap().to_string();
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0".to_vec();
    let blobs = || c.app.state.blobs.count();
    let listed = async || -> usize {
        let l: Vec<Value> =
            c.get(&c.physio, &format!("/api/cases/{case}/attachments")).await.json().await.unwrap();
        l.len()
    };

    // Refusals store nothing.
    for (name, mime, bytes, status, expected) in [
        (
            "scan.pdf",
            "application/pdf",
            png.clone(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "attachment_type_mismatch",
        ),
        (
            "big.txt",
            "text/plain",
            vec![b'a'; 5000],
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            "empty.png",
            "image/png",
            Vec::new(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "empty_attachment",
        ),
        (
            "archive.zip",
            "application/zip",
            b"PK\x03\x04rest".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unsupported_attachment_type",
        ),
    ] {
        let (got_status, got_code, body) =
            code(upload(&c, &c.physio, &case, name, mime, bytes).await).await;
        assert_eq!((got_status, got_code.as_str()), (status, expected), "{name}: {body}");
    }
    assert_eq!((blobs(), listed().await), (0, 0));

    let res = upload(&c, &c.physio, &case, "../../MRI lumbar.png", "image/png", png.clone()).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let stored: Value = res.json().await.unwrap();
    use sha2::Digest;
    assert_eq!(stored["sha256"], hex::encode(sha2::Sha256::digest(&png)));
    assert_eq!(stored["size"], png.len());
    assert_eq!(stored["content_type"], "image/png");
    assert_eq!(stored["filename"], "MRI lumbar.png");
    let letter = upload(
        &c,
        &c.physio,
        &case,
        "letter.pdf",
        "application/pdf",
        b"%PDF-1.7\nclinic letter".to_vec(),
    )
    .await;
    assert_eq!(letter.status(), StatusCode::CREATED);
    // The same bytes again are a second attachment but one stored blob.
    assert_eq!(
        upload(&c, &c.physio, &case, "again.png", "image/png", png.clone()).await.status(),
        StatusCode::CREATED
    );
    assert_eq!((blobs(), listed().await), (2, 3));

    let id = stored["id"].as_str().unwrap();
    let res = c.get(&c.chair, &format!("/api/attachments/{id}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let h = res.headers().clone();
    assert_eq!(h["content-type"], "image/png");
    assert_eq!(h["content-disposition"], "attachment; filename=\"MRI lumbar.png\"");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(res.bytes().await.unwrap().to_vec(), png);
    // Trainees (even at a teaching session) and other specialties never get the bytes.
    for token in [&c.trainee, &c.other_physio] {
        assert_eq!(
            c.get(token, &format!("/api/attachments/{id}")).await.status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            upload(&c, token, &case, "x.png", "image/png", png.clone()).await.status(),
            StatusCode::NOT_FOUND
        );
    }
    let audit = c.app.state.store.audit_events().await.unwrap();
    assert_eq!(audit.iter().filter(|e| e.action == "attachment_uploaded").count(), 3);
    assert_eq!(audit.iter().filter(|e| e.action == "attachment_downloaded").count(), 1);
}

/// Real DICOM files attach whatever their preamble looks like (pydicom's CT and MR files
/// start like a TIFF); a file with the marker that does not parse is refused, storing
/// nothing; an attachment store that cannot be written answers 503 and stores no row.
async fn real_dicom_files_attach_and_fakes_are_refused(backend: Backend) {
    let c = Clinic::open(backend).await;
    let session = c.session(7, 4, true).await;
    let case: Value =
        c.book(&c.physio, &session, referral("9434765919")).await.json().await.unwrap();
    let case = case["id"].as_str().unwrap().to_string();
    let mut fake = vec![0u8; 128];
    fake.extend_from_slice(b"DICMgarbage");
    for mime in ["application/dicom", "application/octet-stream"] {
        let (status, code, body) =
            code(upload(&c, &c.physio, &case, "fake.dcm", mime, fake.clone()).await).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_dicom"),
            "{body}"
        );
    }
    assert_eq!(c.app.state.blobs.count(), 0);
    // A data folder that cannot be written (here its attachment folder is a file, which
    // even root cannot write into): 503 with Retry-After, and no row without its file.
    let ct =
        std::fs::read(format!("{}/tests/fixtures/dicom/CT_small.dcm", env!("CARGO_MANIFEST_DIR")))
            .unwrap();
    let root = c.app.state.blobs.root().to_path_buf();
    let _ = std::fs::remove_dir_all(&root);
    std::fs::write(&root, b"not a folder").unwrap();
    let res = upload(&c, &c.physio, &case, "CT_small.dcm", "application/dicom", ct).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "service_unavailable");
    let listed: Vec<Value> =
        c.get(&c.physio, &format!("/api/cases/{case}/attachments")).await.json().await.unwrap();
    assert!(listed.is_empty());
    std::fs::remove_file(&root).unwrap();
    for name in ["CT_small.dcm", "MR_small.dcm", "examples_rgb_color.dcm"] {
        let path = format!("{}/tests/fixtures/dicom/{name}", env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(path).unwrap();
        // Browsers send .dcm files as application/octet-stream.
        for mime in ["application/dicom", "application/octet-stream"] {
            let res = upload(&c, &c.physio, &case, name, mime, bytes.clone()).await;
            assert_eq!(res.status(), StatusCode::CREATED, "{name} as {mime}");
            let stored: Value = res.json().await.unwrap();
            assert_eq!(stored["content_type"], "application/dicom");
        }
    }
    // A truncated file (pydicom's MR_truncated.dcm) is corrupt: refused, nothing stored.
    let truncated = fixture("MR_truncated.dcm");
    let (status, code_, _) = code(
        upload(&c, &c.physio, &case, "MR_truncated.dcm", "application/dicom", truncated).await,
    )
    .await;
    assert_eq!((status, code_.as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_dicom"));
    // The viewer's facts: what the study is, nothing of whom.
    let listed: Vec<Value> =
        c.get(&c.physio, &format!("/api/cases/{case}/attachments")).await.json().await.unwrap();
    assert_eq!(listed.len(), 6, "each file uploaded twice");
    assert_eq!(c.app.state.blobs.count(), 3, "each file stored once");
    let ct = listed.iter().find(|a| a["filename"] == "CT_small.dcm").unwrap()["id"].clone();
    let ct = ct.as_str().unwrap();
    let res = c.get(&c.chair, &format!("/api/attachments/{ct}/info")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.unwrap();
    let facts: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (&facts["media_type"], &facts["modality"], &facts["study_date"], &facts["frames"]),
        (&json!("application/dicom"), &json!("CT"), &json!("2004-01-19"), &json!(1))
    );
    assert_eq!((&facts["rows"], &facts["columns"]), (&json!(128), &json!(128)));
    assert!(!text.contains("CompressedSamples") && !text.contains("1CT1"), "{text}");
    let audit = c.app.state.store.audit_events().await.unwrap();
    assert!(audit.iter().any(|e| e.action == "attachment_info_read"));
    // A PDF is no image; a PNG whose pixels are missing is refused, not a 5xx.
    let pdf = b"%PDF-1.4\n%%EOF\n".to_vec();
    let pdf: Value = upload(&c, &c.physio, &case, "letter.pdf", "application/pdf", pdf)
        .await
        .json()
        .await
        .unwrap();
    let res =
        c.get(&c.chair, &format!("/api/attachments/{}/info", pdf["id"].as_str().unwrap())).await;
    assert_eq!(code(res).await.1, "not_an_image");
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0".to_vec();
    let res = upload(&c, &c.physio, &case, "photo.png", "image/png", png).await;
    let png: Value = res.json().await.unwrap();
    let res =
        c.get(&c.chair, &format!("/api/attachments/{}/render", png["id"].as_str().unwrap())).await;
    assert_eq!(code(res).await.1, "undecodable_image");
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/dicom/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// A PNG's size, channels and 8-bit pixels.
fn read_png(bytes: &[u8]) -> (u32, u32, usize, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    (info.width, info.height, info.color_type.samples(), buf)
}

/// The viewer (issue 18): pydicom's test files and a multi-frame CT of distinct frames
/// render to the pixels pydicom computes for the same frame and window (within
/// rounding; `tests/fixtures/dicom/make_fixtures.py` wrote them), monochrome and colour,
/// native and RLE; shrunk on request; cached; a transfer syntax this build cannot
/// decode is a 415, never a 5xx; only those who see the case identified get anything,
/// every read is audited, and no answer carries the file's patient name or ID.
async fn the_viewer_renders_what_pydicom_computes(backend: Backend) {
    let c = Clinic::open(backend).await;
    let session = c.session(7, 4, true).await;
    let case: Value =
        c.book(&c.physio, &session, referral("9434765919")).await.json().await.unwrap();
    let case = case["id"].as_str().unwrap().to_string();
    let cases: Vec<Value> =
        serde_json::from_slice(&fixture("expected/cases.json")).expect("cases.json");
    let mut ids = std::collections::HashMap::new();
    let mut renders = 0;
    let mut identifiers = std::collections::HashSet::new();
    for expected in &cases {
        let name = expected["file"].as_str().unwrap();
        identifiers.insert(expected["patient_name"].as_str().unwrap().to_string());
        identifiers.insert(expected["patient_id"].as_str().unwrap().to_string());
        if !ids.contains_key(name) {
            let res = upload(&c, &c.physio, &case, name, "application/dicom", fixture(name)).await;
            assert_eq!(res.status(), StatusCode::CREATED, "{name}");
            let stored: Value = res.json().await.unwrap();
            ids.insert(name.to_string(), stored["id"].as_str().unwrap().to_string());
        }
        let id = &ids[name];
        let mut query = format!("frame={}", expected["frame"]);
        if !expected["wc"].is_null() {
            query += &format!("&wc={}&ww={}", expected["wc"], expected["ww"]);
        }
        let res = c.get(&c.chair, &format!("/api/attachments/{id}/render?{query}")).await;
        renders += 1;
        assert_eq!(res.status(), StatusCode::OK, "{name} {query}");
        assert_eq!(res.headers()["content-type"], "image/png");
        let (w, h, channels, pixels) = read_png(&res.bytes().await.unwrap());
        assert_eq!(
            (w, h, channels),
            (
                expected["columns"].as_u64().unwrap() as u32,
                expected["rows"].as_u64().unwrap() as u32,
                expected["channels"].as_u64().unwrap() as usize
            ),
            "{name} {query}"
        );
        let want = fixture(&format!("expected/{}", expected["expected"].as_str().unwrap()));
        assert_eq!(pixels.len(), want.len());
        let off: Vec<(usize, u8, u8)> = pixels
            .iter()
            .zip(&want)
            .enumerate()
            .filter(|(_, (a, b))| a.abs_diff(**b) > 1)
            .map(|(i, (a, b))| (i, *a, *b))
            .take(5)
            .collect();
        assert!(off.is_empty(), "{name} {query}: (index, ours, pydicom's) {off:?}");
    }
    // The multi-frame study's facts; no frame is like another.
    let multi = &ids["multiframe_ct.dcm"];
    let res = c.get(&c.chair, &format!("/api/attachments/{multi}/info")).await;
    let text = res.text().await.unwrap();
    let info: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (&info["frames"], &info["window_center"], &info["window_width"], &info["pixel_spacing"]),
        (&json!(8), &json!(40.0), &json!(400.0), &json!([0.5, 0.5]))
    );
    assert_eq!((&info["body_part"], &info["renderable"]), (&json!("LSPINE"), &json!(true)));
    let mut frames = std::collections::HashSet::new();
    for frame in 0..8 {
        let res = c.get(&c.chair, &format!("/api/attachments/{multi}/render?frame={frame}")).await;
        renders += 1;
        frames.insert(res.bytes().await.unwrap());
    }
    assert_eq!(frames.len(), 8, "eight distinct frames");
    // Out of range, bad windows and sizes: 422 with a code.
    for (query, want) in [
        ("frame=8", "frame_out_of_range"),
        ("wc=40", "invalid_window"),
        ("wc=40&ww=0", "invalid_window"),
        ("size=2", "invalid_size"),
        ("frame=x", "invalid_frame"),
    ] {
        let res = c.get(&c.chair, &format!("/api/attachments/{multi}/render?{query}")).await;
        let (status, got, body) = code(res).await;
        assert!(status.is_client_error(), "{query}: {status} {body}");
        assert_eq!(got, want, "{query}");
    }
    // Shrunk to the longer edge; cached (the same bytes again).
    let us = &ids["examples_rgb_color.dcm"];
    let path = format!("/api/attachments/{us}/render?size=64");
    let first = c.get(&c.chair, &path).await.bytes().await.unwrap();
    let again = c.get(&c.chair, &path).await.bytes().await.unwrap();
    renders += 2;
    assert_eq!(first, again);
    let (w, h, channels, _) = read_png(&first);
    assert_eq!((w, h, channels), (64, 48, 3));
    // JPEG 2000 is stored, described, and refused for rendering with a 415.
    let res = upload(
        &c,
        &c.physio,
        &case,
        "jp2k.dcm",
        "application/dicom",
        fixture("MR_small_jp2klossless.dcm"),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let jp2k: Value = res.json().await.unwrap();
    let jp2k = jp2k["id"].as_str().unwrap();
    let info: Value =
        c.get(&c.chair, &format!("/api/attachments/{jp2k}/info")).await.json().await.unwrap();
    assert_eq!(info["renderable"], false);
    let (status, got, _) =
        code(c.get(&c.chair, &format!("/api/attachments/{jp2k}/render")).await).await;
    assert_eq!(
        (status, got.as_str()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_transfer_syntax")
    );
    // Only those who see the case identified; no patient field in any answer.
    for token in [&c.trainee, &c.other_physio] {
        for path in
            [format!("/api/attachments/{multi}/info"), format!("/api/attachments/{multi}/render")]
        {
            let res = c.get(token, &path).await;
            assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
        }
    }
    for id in ids.values() {
        for path in [format!("/api/attachments/{id}/info"), format!("/api/attachments/{id}/render")]
        {
            let bytes = c.get(&c.physio, &path).await.bytes().await.unwrap();
            let text = String::from_utf8_lossy(&bytes);
            for identifier in &identifiers {
                assert!(!text.contains(identifier.as_str()), "{path} carries {identifier}");
            }
        }
        renders += 1;
    }
    let audit = c.app.state.store.audit_events().await.unwrap();
    let rendered = audit.iter().filter(|e| e.action == "attachment_rendered").count();
    assert_eq!(rendered, renders, "every render (cached or not) is audited");
}

// ---- mail -----------------------------------------------------------------------

/// The `.eml` files in `dir`, parsed: (envelope recipients or To, subject, text, calendar).
struct Delivered {
    to: String,
    subject: String,
    text: String,
    calendar: Option<String>,
}

fn delivered(dir: &std::path::Path) -> Vec<Delivered> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "eml"));
    files.sort();
    files
        .iter()
        .map(|path| {
            let raw = std::fs::read(path).unwrap();
            let mail = mailparse::parse_mail(&raw).unwrap();
            use mailparse::MailHeaderMap;
            let to = mail
                .headers
                .get_first_value("X-Envelope-To")
                .or_else(|| mail.headers.get_first_value("To"))
                .unwrap_or_default();
            let subject = mail.headers.get_first_value("Subject").unwrap_or_default();
            let mut text = String::new();
            let mut calendar = None;
            fn walk(
                part: &mailparse::ParsedMail, text: &mut String, calendar: &mut Option<String>,
            ) {
                if part.subparts.is_empty() {
                    let body = part.get_body().unwrap_or_default();
                    match part.ctype.mimetype.as_str() {
                        "text/plain" => text.push_str(&body),
                        "text/calendar" => *calendar = Some(body),
                        _ => {}
                    }
                }
                for sub in &part.subparts {
                    walk(sub, text, calendar);
                }
            }
            walk(&mail, &mut text, &mut calendar);
            Delivered { to, subject, text, calendar }
        })
        .collect()
}

/// Checks an invitation parses as iCalendar with METHOD:REQUEST and the session's UID.
/// A session a week ahead with the physio's case on it, published (its invitations sent).
async fn published_with_a_case(c: &Clinic) -> String {
    let session = c.session(7, 4, false).await;
    assert_eq!(
        c.book(&c.physio, &session, referral("9434765919")).await.status(),
        StatusCode::CREATED
    );
    c.accept_waiting(&session).await;
    let res = c.post(&c.coordinator, &format!("/api/sessions/{session}/publish"), json!({})).await;
    assert_eq!(res.status(), StatusCode::OK);
    session
}

fn check_invitation(ics: &str, session: &str, attendee: &str) {
    use icalendar::Component;
    let calendar: icalendar::Calendar = ics.parse().expect("the .ics part parses");
    assert_eq!(calendar.property_value("METHOD"), Some("REQUEST"), "{ics}");
    let event = calendar.components.iter().find_map(|c| c.as_event()).expect("a VEVENT");
    assert_eq!(event.get_uid(), Some(format!("session-{session}@mdt-coordinator").as_str()));
    assert!(event.get_start().is_some() && event.get_end().is_some());
    assert!(ics.contains(&format!("ATTENDEE:mailto:{attendee}")), "{ics}");
}

async fn booking_and_publishing_write_mail_to_the_file_outbox(backend: Backend) {
    let c = Clinic::open(backend).await;
    let session = published_with_a_case(&c).await;
    let dir = c.app.db.dir.path().join("outbox");
    // The confirmation, and one invitation each for the chair, the referrer and the
    // specialty's other consultant.
    let mail = eventually("four messages in the file outbox", async || {
        let m = delivered(&dir);
        (m.len() == 4).then_some(m)
    })
    .await;
    let confirmation =
        mail.iter().find(|m| m.subject.starts_with("Case booked")).expect("confirmation");
    assert!(confirmation.to.contains("physio@example.org"), "{}", confirmation.to);
    let mut invited: Vec<&str> = Vec::new();
    for invitation in mail.iter().filter(|m| m.subject.starts_with("Agenda published")) {
        assert!(!invitation.to.contains(','), "one recipient per invitation: {}", invitation.to);
        check_invitation(
            invitation.calendar.as_deref().expect("calendar part"),
            &session,
            &invitation.to,
        );
        invited.push(&invitation.to);
    }
    invited.sort();
    assert_eq!(invited, ["chair@example.org", "physio@example.org", "second@example.org"]);
    for m in &mail {
        for secret in ["9434765919", "943 476 5919", "Hermione", "Quibble", "1978-05-17"] {
            assert!(
                !m.subject.contains(secret) && !m.text.contains(secret),
                "{secret} in an email"
            );
        }
    }
    let store = c.app.state.store.clone();
    eventually("every message marked sent", async || {
        let outbox = store.outbox_messages().await.unwrap();
        outbox.iter().all(|m| m.sent_at.is_some()).then_some(())
    })
    .await;
}

async fn smtp_delivery_waits_out_a_down_server(backend: Backend) {
    if !crate::common::aiosmtpd_available() {
        return;
    }
    let port = crate::common::free_port();
    let dir = tempfile::tempdir().unwrap();
    let sink = crate::common::start_sink(port, dir.path()).expect("SMTP sink starts");
    let c = Clinic::open_with(backend, |s| {
        crate::common::mail_to_sink(s, port);
        s.mail.retry_base_ms = 100;
        s.mail.retry_max_seconds = 1;
    })
    .await;
    let session = c.session(7, 4, false).await;
    assert_eq!(
        c.book(&c.physio, &session, referral("9434765919")).await.status(),
        StatusCode::CREATED
    );
    let first = eventually("the booking confirmation over SMTP", async || {
        let m = delivered(dir.path());
        (m.len() == 1).then_some(m)
    })
    .await;
    assert!(first[0].subject.starts_with("Case booked"));
    assert_eq!(first[0].to, "physio@example.org");

    // The relay goes down: the invitation waits in the outbox, retried, not lost.
    drop(sink);
    c.accept_waiting(&session).await;
    let res = c.post(&c.coordinator, &format!("/api/sessions/{session}/publish"), json!({})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let store = c.app.state.store.clone();
    eventually("a failed delivery attempt", async || {
        let outbox = store.outbox_messages().await.unwrap();
        outbox
            .iter()
            .any(|m| m.sent_at.is_none() && m.attempts >= 2 && m.last_error.is_some())
            .then_some(())
    })
    .await;
    assert_eq!(delivered(dir.path()).len(), 1);

    // The relay is back: the invitation is delivered.
    let _sink = crate::common::start_sink(port, dir.path()).expect("SMTP sink restarts");
    let all = eventually("the invitations after the relay returns", async || {
        let m = delivered(dir.path());
        (m.len() == 4).then_some(m)
    })
    .await;
    let mut invited: Vec<&str> = Vec::new();
    for invitation in all.iter().filter(|m| m.subject.starts_with("Agenda published")) {
        check_invitation(
            invitation.calendar.as_deref().expect("calendar part"),
            &session,
            &invitation.to,
        );
        invited.push(&invitation.to);
    }
    invited.sort();
    assert_eq!(invited, ["chair@example.org", "physio@example.org", "second@example.org"]);
    // The relay has the message; the worker records the delivery just after.
    let store = c.app.state.store.clone();
    eventually("every message marked sent", async || {
        let outbox = store.outbox_messages().await.unwrap();
        outbox.iter().all(|m| m.sent_at.is_some()).then_some(())
    })
    .await;
}

/// A booking of `nhs` for the named patient.
fn patient_booking(nhs: &str, given: &str, family: &str, born: &str, confirm: bool) -> Value {
    let mut b = referral(nhs);
    b["patient"]["given_name"] = json!(given);
    b["patient"]["family_name"] = json!(family);
    b["patient"]["date_of_birth"] = json!(born);
    b["confirm_patient_update"] = json!(confirm);
    b
}

/// One NHS number is one person: a booking that gives a known number another name or date
/// of birth is refused with `patient_details_conflict` and changes nothing; whoever may see
/// the record is shown it; a name change is confirmed by someone who may see the record, a
/// date of birth only by a coordinator; coordinators correct the record.
async fn one_nhs_number_is_one_patient(backend: Backend) {
    let c = Clinic::open(backend).await;
    let other_physio =
        c.account("other@example.org", "Test Person", Role::Practitioner, "rheumatology").await;
    let s1 = c.session(7, 6, false).await;
    let s2 = c.session(14, 6, false).await;
    let s3 = c.session(21, 6, false).await;
    let booked = async |session: &str| {
        let res = c.get(&c.coordinator, &format!("/api/sessions/{session}")).await;
        let body: Value = res.json().await.unwrap();
        body["session"]["booked"].as_u64().unwrap()
    };
    const JO: &str = "943 476 5919";
    let res =
        c.book(&c.physio, &s1, patient_booking(JO, "Jo", "Specimen", "1962-11-30", false)).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let first: Value = res.json().await.unwrap();
    let first = first["id"].as_str().unwrap().to_string();

    // The defect: the same number, someone else, another session.
    let robin = |confirm| patient_booking(JO, "Robin", "Other", "1958-02-01", confirm);
    let (status, code_, body) = code(c.book(&other_physio, &s2, robin(false)).await).await;
    assert_eq!(
        (status, code_.as_str()),
        (StatusCode::CONFLICT, "patient_details_conflict"),
        "{body}"
    );
    assert!(body.get("recorded").is_none(), "a stranger to the record is not shown it: {body}");
    // ... nor even which detail differs (no probing of a stranger's details).
    assert!(body.get("fields").is_none(), "{body}");
    assert_eq!(booked(&s2).await, 0, "nothing was written");
    // The referrer of Jo's case is shown the record, and the read is audited.
    let (status, code_, body) = code(c.book(&c.physio, &s2, robin(false)).await).await;
    assert_eq!((status, code_.as_str()), (StatusCode::CONFLICT, "patient_details_conflict"));
    assert_eq!(
        body["recorded"],
        json!({"given_name": "Jo", "family_name": "Specimen", "date_of_birth": "1962-11-30"})
    );
    let audit = c.app.state.store.audit_events().await.unwrap();
    assert!(audit.iter().any(|e| e.action == "case_read"
        && e.record_id.as_deref() == Some(first.as_str())
        && e.details.to_string().contains("patient_details_conflict")));
    // Confirming does not change a date of birth, except from a coordinator.
    let (status, code_, _) = code(c.book(&c.physio, &s2, robin(true)).await).await;
    assert_eq!((status, code_.as_str()), (StatusCode::CONFLICT, "patient_details_conflict"));
    assert_eq!(booked(&s2).await, 0);

    // The same person in other capitals is the same person.
    let res =
        c.book(&c.physio, &s2, patient_booking(JO, "JO", "specimen", "1962-11-30", false)).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    // A change of name: refused unconfirmed, and from someone who may not see the record;
    // confirmed by the referrer, it changes the record and every case of the patient.
    let married = |confirm| patient_booking(JO, "Jo", "Example", "1962-11-30", confirm);
    let (status, code_, body) = code(c.book(&other_physio, &s3, married(true)).await).await;
    assert_eq!(
        (status, code_.as_str()),
        (StatusCode::CONFLICT, "patient_details_conflict"),
        "{body}"
    );
    assert!(body.get("fields").is_none(), "{body}");
    let res = c.book(&c.physio, &s3, married(true)).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = c.get(&c.physio, &format!("/api/cases/{first}")).await;
    let case: Value = res.json().await.unwrap();
    assert_eq!(case["patient"]["family_name"], "Example", "{case}");
    let audit = c.app.state.store.audit_events().await.unwrap();
    let updated: Vec<_> = audit.iter().filter(|e| e.action == "patient_updated").collect();
    // Each of the patient's three cases records the change.
    assert_eq!(updated.len(), 3);
    assert!(updated.iter().all(|e| e.details.to_string().contains("name")));
    assert!(updated.iter().any(|e| e.record_id.as_deref() == Some(first.as_str())));

    // A coordinator corrects the date of birth while booking.
    let s4 = c.session(28, 6, false).await;
    let fixed = patient_booking(JO, "Jo", "Example", "1962-12-30", true);
    let res = c.book(&c.coordinator, &s4, fixed).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = c.get(&c.physio, &format!("/api/cases/{first}")).await;
    let case: Value = res.json().await.unwrap();
    assert_eq!(case["patient"]["date_of_birth"], "1962-12-30");

    // ... or on its own, with a reason; each case of the patient records it.
    let correction = json!({
        "nhs_number": JO, "given_name": "Jo", "family_name": "Specimen",
        "date_of_birth": "1962-11-30", "reason": "Date of birth keyed wrongly",
    });
    let (status, code_, _) =
        code(c.post(&c.physio, "/api/patients/correction", correction.clone()).await).await;
    assert_eq!((status, code_.as_str()), (StatusCode::FORBIDDEN, "forbidden"));
    let mut unknown = correction.clone();
    unknown["nhs_number"] = json!("9912003888");
    let (status, _, _) =
        code(c.post(&c.coordinator, "/api/patients/correction", unknown).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let mut bad = correction.clone();
    bad["reason"] = json!("  ");
    let (status, _, _) = code(c.post(&c.coordinator, "/api/patients/correction", bad).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let res = c.post(&c.coordinator, "/api/patients/correction", correction).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["cases_updated"], 4);
    let res = c.get(&c.physio, &format!("/api/cases/{first}")).await;
    let case: Value = res.json().await.unwrap();
    assert_eq!(
        (case["patient"]["family_name"].as_str(), case["patient"]["date_of_birth"].as_str()),
        (Some("Specimen"), Some("1962-11-30"))
    );
    let audit = c.app.state.store.audit_events().await.unwrap();
    assert_eq!(audit.iter().filter(|e| e.action == "patient_corrected").count(), 4);
    // A fresh register has nothing to reconcile; only coordinators may look.
    let res = c.get(&c.coordinator, "/api/patients/conflicts").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap(), json!([]));
    assert_eq!(c.get(&c.physio, "/api/patients/conflicts").await.status(), StatusCode::FORBIDDEN);
}

/// Two referrers book one new NHS number for two different people at the same instant,
/// 20 times: exactly one booking stands each time.
async fn two_people_under_one_new_nhs_number_at_once(backend: Backend) {
    let c = Clinic::open(backend).await;
    let other_physio =
        c.account("other@example.org", "Test Person", Role::Practitioner, "rheumatology").await;
    let s1 = c.session(7, 30, false).await;
    let s2 = c.session(14, 30, false).await;
    // Numbers no other test here books.
    let numbers: Vec<String> = nhs_numbers(400).split_off(380);
    for nhs in &numbers {
        let (a, b) = tokio::join!(
            c.book(&c.physio, &s1, patient_booking(nhs, "Ann", "First", "1970-01-01", false)),
            c.book(&other_physio, &s2, patient_booking(nhs, "Bea", "Second", "1980-01-01", false)),
        );
        let mut statuses = [a.status(), b.status()];
        statuses.sort();
        assert_eq!(statuses, [StatusCode::CREATED, StatusCode::CONFLICT], "{nhs}");
    }
}

/// Cases booked before the register that disagree (two people under one number): listed
/// for coordinators with each variant, never shown to a referrer nor changed by one while
/// unresolved, and settled by a correction.
async fn conflicting_records_wait_for_a_coordinator(backend: Backend) {
    let c = Clinic::open(backend).await;
    let other_physio =
        c.account("other@example.org", "Test Person", Role::Practitioner, "rheumatology").await;
    let s1 = c.session(7, 6, false).await;
    let s2 = c.session(14, 6, false).await;
    let (x, y) = ("9912003888", "9449305552");
    let hermione = patient_booking(x, "Hermione", "Quibble", "1978-05-17", false);
    let res = c.book(&c.physio, &s1, hermione).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let robin = patient_booking(y, "Robin", "Other", "1958-02-01", false);
    let res = c.book(&other_physio, &s2, robin).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let robin: Value = res.json().await.unwrap();
    // As data from before the register could stand: Robin booked under Hermione's number.
    c.app
        .db
        .raw(&format!(
            "UPDATE cases SET nhs_number = '{x}' WHERE nhs_number = '{y}'; \
             DELETE FROM patients WHERE nhs_number = '{y}'; \
             INSERT INTO patient_conflicts (nhs_number, found_at) VALUES ('{x}', '2026-12-01T00:00:00Z')"
        ))
        .await
        .unwrap();
    let res = c.get(&c.coordinator, "/api/patients/conflicts").await;
    assert_eq!(res.status(), StatusCode::OK);
    let list: Value = res.json().await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["nhs_number"], x);
    let variants = list[0]["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 2, "{list}");
    let robin_variant = variants.iter().find(|v| v["given_name"] == "Robin").unwrap();
    assert_eq!(robin_variant["date_of_birth"], "1958-02-01");
    assert_eq!(robin_variant["case_ids"], json!([robin["id"]]));
    let audit = c.app.state.store.audit_events().await.unwrap();
    assert!(audit
        .iter()
        .any(|e| e.action == "case_read" && e.details.to_string().contains("patient_conflicts")));

    // Robin's referrer, who may see Robin's case, is neither shown the record (which may be
    // Hermione's) nor allowed to rename it.
    let rename = patient_booking(x, "Robin", "Other", "1978-05-17", true);
    let (status, code_, body) = code(c.book(&other_physio, &s1, rename).await).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(code_, "patient_details_conflict");
    assert!(body.get("recorded").is_none() && body.get("fields").is_none(), "{body}");
    let res = c.get(&c.coordinator, &format!("/api/sessions/{s1}")).await;
    let session: Value = res.json().await.unwrap();
    assert_eq!(session["session"]["booked"], 1, "nothing was booked");

    // The coordinator settles it; the number is no longer listed.
    let fix = json!({"nhs_number": x, "given_name": "Hermione", "family_name": "Quibble",
                     "date_of_birth": "1978-05-17", "reason": "Robin's number was mistyped"});
    let res = c.post(&c.coordinator, "/api/patients/correction", fix).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = c.get(&c.coordinator, "/api/patients/conflicts").await;
    assert_eq!(res.json::<Value>().await.unwrap(), json!([]));
}

/// Cancelling a published session removes it from every invitee's calendar: each gets a
/// `METHOD:CANCEL` for the same UID the invitation carried, with the event marked
/// cancelled; an unpublished session's cancellation sends no calendar mail.
async fn cancelling_a_published_session_cancels_the_invitations(backend: Backend) {
    use icalendar::Component;
    let c = Clinic::open(backend).await;
    let session = published_with_a_case(&c).await;
    let res = c.post(&c.coordinator, &format!("/api/sessions/{session}/cancel"), json!({})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let dir = c.app.db.dir.path().join("outbox");
    let cancellations = eventually("three cancellations in the file outbox", async || {
        let m: Vec<Delivered> = delivered(&dir)
            .into_iter()
            .filter(|m| m.subject.starts_with("Session cancelled") && m.calendar.is_some())
            .collect();
        (m.len() == 3).then_some(m)
    })
    .await;
    let mut cancelled: Vec<&str> = Vec::new();
    for m in &cancellations {
        let ics = m.calendar.as_deref().expect("calendar part");
        let calendar: icalendar::Calendar = ics.parse().expect("the .ics part parses");
        assert_eq!(calendar.property_value("METHOD"), Some("CANCEL"), "{ics}");
        let event = calendar.components.iter().find_map(|c| c.as_event()).expect("a VEVENT");
        assert_eq!(event.get_uid(), Some(format!("session-{session}@mdt-coordinator").as_str()));
        assert_eq!(event.get_status(), Some(icalendar::EventStatus::Cancelled), "{ics}");
        assert!(event.get_sequence().is_some_and(|s| s > 0), "{ics}");
        assert!(ics.contains(&format!("ATTENDEE:mailto:{}", m.to)), "{ics}");
        assert!(!m.text.contains("9434765919") && !m.subject.contains("9434765919"));
        cancelled.push(&m.to);
    }
    cancelled.sort();
    assert_eq!(cancelled, ["chair@example.org", "physio@example.org", "second@example.org"]);

    // A session nobody was invited to is cancelled without calendar mail.
    let quiet = c.session(14, 4, false).await;
    let res = c.post(&c.coordinator, &format!("/api/sessions/{quiet}/cancel"), json!({})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let store = c.app.state.store.clone();
    let outbox = store.outbox_messages().await.unwrap();
    let calendars = outbox
        .iter()
        .filter(|m| m.calendar.as_deref().is_some_and(|c| c.contains("METHOD:CANCEL")))
        .count();
    assert_eq!(calendars, 3, "only the published session's invitees");
}

on_both_backends!(
    triage_returns_a_booking_that_is_fixed_resubmitted_and_accepted,
    a_published_agenda_takes_only_urgent_cases_the_chair_approves,
    cancelling_a_published_session_cancels_the_invitations,
    conflicting_records_wait_for_a_coordinator,
    one_nhs_number_is_one_patient,
    two_people_under_one_new_nhs_number_at_once,
    schedule_is_created_listed_and_published,
    booking_refusals_and_happy_path,
    idempotent_retry_books_once,
    trainees_see_teaching_agendas_de_identified,
    agenda_puts_urgent_cases_first,
    two_hundred_concurrent_bookings_fill_ten_places,
    booking_and_publishing_write_mail_to_the_file_outbox,
    smtp_delivery_waits_out_a_down_server,
    attachments_are_sniffed_capped_stored_once_and_audited,
    real_dicom_files_attach_and_fakes_are_refused,
    the_viewer_renders_what_pydicom_computes,
    moves_keep_history_and_cancellation_moves_or_flags_cases,
    the_chair_reorders_the_agenda,
);

/// `POST /api/cases/{case}/triage` by `who` with `body`: status and code.
async fn triage_code(c: &Clinic, who: &Account, case: &str, body: Value) -> (StatusCode, String) {
    let (status, body) = c.triage(who, case, body).await;
    (status, body["code"].as_str().unwrap_or("").to_string())
}

/// Issue 15: a back-pain booking needs its STarT Back score (the specialty's data) and
/// the patient's agreement; it waits for triage off the agenda; returned, the referrer is
/// emailed over SMTP without identifiers, edits and resubmits it, and once accepted it is
/// on the agenda with its waiting-time clock still starting at the referral date.
async fn triage_returns_a_booking_that_is_fixed_resubmitted_and_accepted(backend: Backend) {
    if !crate::common::aiosmtpd_available() {
        return;
    }
    let port = crate::common::free_port();
    let dir = tempfile::tempdir().unwrap();
    let _sink = crate::common::start_sink(port, dir.path()).expect("SMTP sink starts");
    let c = Clinic::open_with(backend, |s| crate::common::mail_to_sink(s, port)).await;
    let session = c.session(7, 4, false).await;
    let session_view = async || -> Value {
        c.get(&c.coordinator, &format!("/api/sessions/{session}")).await.json().await.unwrap()
    };

    let mut body = referral("9434765919");
    body.as_object_mut().unwrap().remove("start_back");
    body["body_site"] = json!("lumbar spine");
    let (status, code_, refused) = code(c.book(&c.physio, &session, body.clone()).await).await;
    assert_eq!(
        (status, code_.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "proforma_field_required")
    );
    assert_eq!(refused["field"], "start_back", "{refused}");
    let mut disagreeing = referral("9434765919");
    disagreeing["patient_agrees"] = json!(false);
    let (status, code_, _) = code(c.book(&c.physio, &session, disagreeing).await).await;
    assert_eq!(
        (status, code_.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "patient_agreement_required")
    );
    assert_eq!(session_view().await["session"]["booked"], 0, "no refusal wrote anything");
    // A knee case needs no STarT Back score.
    let mut knee = body.clone();
    knee["body_site"] = json!("left knee");
    knee["patient"]["nhs_number"] = json!("9912003888");
    c.submit_case(&c.physio, &session, knee).await;

    body["start_back"] = json!({ "total": 6, "psychosocial": 4 });
    let case = c.submit_case(&c.physio, &session, body).await;
    let shown = session_view().await;
    assert_eq!(shown["session"]["booked"], 2, "the place is held");
    assert_eq!(shown["agenda"], json!([]), "not on the agenda until triaged");
    let (_, queue) = answer(c.get(&c.coordinator, "/api/triage").await).await;
    let waiting: Vec<&str> =
        queue.as_array().unwrap().iter().map(|i| i["case"]["id"].as_str().unwrap()).collect();
    assert_eq!(waiting.len(), 2);
    assert_eq!(waiting[1], case, "oldest first");
    assert!(queue[0]["waiting_minutes"].as_i64().unwrap() >= 0);
    assert_eq!(queue[1]["case"]["start_back_risk"], "high");
    assert_eq!(c.get(&c.physio, "/api/triage").await.status(), StatusCode::FORBIDDEN);
    let (_, chairs_queue) = answer(c.get(&c.chair, "/api/triage").await).await;
    assert_eq!(chairs_queue.as_array().unwrap().len(), 2, "the chair sees their sessions'");
    let (_, others) = answer(c.get(&c.other_chair, "/api/triage").await).await;
    assert_eq!(others, json!([]));

    // Refusals change nothing; a booking in triage has no outcome to record yet.
    let plan = json!({ "management_plan": { "text": "Too soon", "items": [] } });
    assert_eq!(c.put_outcome(&c.chair, &case, plan).await.1["code"], "invalid_state");
    let accept = json!({ "decision": "accept" });
    assert_eq!(triage_code(&c, &c.physio, &case, accept.clone()).await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        triage_code(&c, &c.other_chair, &case, accept.clone()).await.0,
        StatusCode::NOT_FOUND
    );
    let no_reason = json!({ "decision": "return" });
    assert_eq!(triage_code(&c, &c.coordinator, &case, no_reason).await.1, "reason_required");
    let bad_plan = json!({ "decision": "list", "standard_plan": "nothing" });
    assert_eq!(triage_code(&c, &c.coordinator, &case, bad_plan).await.1, "unknown_standard_plan");
    let (_, still) = answer(c.get(&c.physio, &format!("/api/cases/{case}")).await).await;
    assert_eq!(still["state"], "awaiting_triage");
    assert_eq!(
        c.post(&c.physio, &format!("/api/cases/{case}/resubmit"), json!({})).await.status(),
        StatusCode::CONFLICT
    );

    const NOTE: &str = "Please attach the MRI report from Tuesday";
    let back = json!({ "decision": "return", "reason": "imaging_needed", "note": NOTE });
    let (status, returned) = c.triage(&c.coordinator, &case, back).await;
    assert_eq!(status, StatusCode::OK, "{returned}");
    assert_eq!(
        (returned["state"].as_str(), returned["return_reason"].as_str()),
        (Some("returned"), Some("imaging_needed"))
    );
    let mail = eventually("the return notice over SMTP", async || {
        delivered(dir.path()).into_iter().find(|m| m.subject.starts_with("Booking returned"))
    })
    .await;
    assert_eq!(mail.to, "physio@example.org");
    for secret in ["9434765919", "Quibble", "Hermione", "MRI report", "1978"] {
        assert!(
            !mail.subject.contains(secret) && !mail.text.contains(secret),
            "{secret} in the notice"
        );
    }
    assert!(mail.text.contains("imaging needed"), "{}", mail.text);
    let mine: Vec<Value> = c.get(&c.physio, "/api/cases?mine=true").await.json().await.unwrap();
    let listed = mine.iter().find(|m| m["id"] == case).unwrap();
    assert_eq!(
        (listed["state"].as_str(), listed["return_note"].as_str()),
        (Some("returned"), Some(NOTE))
    );

    // The referrer edits (the rules apply again) and resubmits.
    let mut fixed = referral("9434765919");
    fixed.as_object_mut().unwrap().remove("patient");
    fixed["body_site"] = json!("lumbar spine");
    fixed["imaging"] =
        json!([{ "kind": "mri", "done_on": "2026-11-24", "summary": "L4/5 disc protrusion" }]);
    let path = format!("/api/cases/{case}");
    let edit = |body: Value| c.app.send(reqwest::Method::PUT, &c.physio.token, &path, Some(body));
    let mut unscored = fixed.clone();
    unscored.as_object_mut().unwrap().remove("start_back");
    assert_eq!(edit(unscored).await.1["code"], "proforma_field_required");
    let (status, edited) = edit(fixed).await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["imaging"][0]["kind"], "mri");
    let (status, resubmitted) =
        answer(c.post(&c.physio, &format!("/api/cases/{case}/resubmit"), json!({})).await).await;
    assert_eq!((status, resubmitted["state"].as_str()), (StatusCode::OK, Some("awaiting_triage")));
    assert_eq!(edit(referral("9434765919")).await.1["code"], "not_returned");

    let (status, accepted) = c.triage(&c.chair, &case, json!({ "decision": "accept" })).await;
    assert_eq!(
        (status, accepted["state"].as_str()),
        (StatusCode::OK, Some("booked")),
        "{accepted}"
    );
    assert_eq!(accepted["referral_received_on"], "2026-11-02", "the clock keeps its start");
    let agenda = session_view().await["agenda"].clone();
    assert_eq!(agenda.as_array().unwrap().len(), 1);
    assert_eq!(agenda[0]["id"], case);
    assert_eq!(agenda[0]["referral_received_on"], "2026-11-02");
    assert_eq!(triage_code(&c, &c.chair, &case, accept).await.1, "not_awaiting_triage");

    // The report counts the decisions, their turnaround and the returns by reason.
    let today = Utc::now().date_naive();
    let to = today + Duration::days(30);
    let query = format!("/api/reports/activity?from={today}&to={to}&specialty={}", c.specialty);
    let (status, report) = answer(c.get(&c.coordinator, &query).await).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let triage = &report["totals"][0]["triage"];
    assert_eq!(report["totals"][0]["specialty"], c.specialty);
    assert_eq!(
        (triage["decisions"].as_u64(), triage["accepted"].as_u64()),
        (Some(2), Some(1)),
        "{triage}"
    );
    assert_eq!(triage["returns_by_reason"], json!({ "imaging_needed": 1 }));
    assert_eq!(
        (triage["within_24_hours"].as_u64(), triage["within_24_hours_percent"].as_f64()),
        (Some(2), Some(100.0))
    );
    assert!(triage["median_turnaround_hours"].as_f64().unwrap() < 1.0);

    let audit = c.app.state.store.audit_events().await.unwrap();
    for action in ["case_triaged", "case_edited", "case_resubmitted"] {
        assert!(
            audit
                .iter()
                .any(|e| e.action == action && e.record_id.as_deref() == Some(case.as_str())),
            "{action}"
        );
    }
}

/// Issue 15: the agenda is published at least `live.publish_hours_before` hours ahead;
/// after publication only an urgent case the chair approves joins it, and every invitee
/// is told.
async fn a_published_agenda_takes_only_urgent_cases_the_chair_approves(backend: Backend) {
    let c = Clinic::open(backend).await;
    let soon =
        c.create_session(Plan { starts_at: Utc::now() + Duration::hours(20), ..c.plan(0) }).await;
    let (status, code_, _) =
        code(c.post(&c.coordinator, &format!("/api/sessions/{soon}/publish"), json!({})).await)
            .await;
    assert_eq!((status, code_.as_str()), (StatusCode::CONFLICT, "publication_too_late"));

    let session = c.session(7, 4, false).await;
    c.book_case(&c.physio, &session, referral("9434765919")).await;
    let res = c.post(&c.coordinator, &format!("/api/sessions/{session}/publish"), json!({})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let store = c.app.state.store.clone();
    let recipients = async |subject: &str| -> Vec<String> {
        let outbox = store.outbox_messages().await.unwrap();
        let mut to: Vec<String> = outbox
            .iter()
            .filter(|m| m.subject.starts_with(subject))
            .flat_map(|m| m.to.iter().map(|t| t.to_string()))
            .collect();
        to.sort();
        to
    };
    let invited = recipients("Agenda published").await;
    assert!(invited.contains(&"physio@example.org".to_string()), "{invited:?}");

    let routine = c.submit_case(&c.physio, &session, referral("9912003888")).await;
    // A practitioner not yet invited (no case on the agenda) books the urgent case.
    let newcomer =
        c.account("robin@example.org", "Robin Referrer", Role::Practitioner, c.specialty).await;
    let mut body = referral("9449305552");
    body["urgency"] = json!("urgent");
    let urgent = c.submit_case(&newcomer, &session, body).await;
    let accept = json!({ "decision": "accept" });
    assert_eq!(triage_code(&c, &c.chair, &routine, accept.clone()).await.1, "agenda_published");
    assert_eq!(
        triage_code(&c, &c.coordinator, &urgent, accept.clone()).await.1,
        "agenda_published"
    );
    assert_eq!(recipients("Agenda changed").await, Vec::<String>::new(), "refusals send nothing");
    let (status, added) = c.triage(&c.chair, &urgent, accept).await;
    assert_eq!(status, StatusCode::OK, "{added}");
    assert_eq!(
        recipients("Agenda changed").await,
        invited,
        "every invitee hears of the late addition"
    );
    let mut now_invited = invited.clone();
    now_invited.push("robin@example.org".into());
    now_invited.sort();
    assert_eq!(
        recipients("Agenda published").await,
        now_invited,
        "the newcomer gets the invitation"
    );
    let (_, shown) = answer(c.get(&c.chair, &format!("/api/sessions/{session}")).await).await;
    assert_eq!(shown["agenda"].as_array().unwrap().len(), 2);
}

// ---- faults -----------------------------------------------------------------------

/// PostgreSQL goes away for longer than a request waits for a connection, while two
/// referrers book: requests and `/ready` get `503` with `Retry-After` (never another
/// 5xx), a client
/// that repeats its request with the same `Idempotency-Key` gets its booking once, and
/// afterwards the service works without a restart with every acknowledged booking there
/// exactly once.
#[tokio::test]
async fn a_database_outage_answers_503_and_loses_or_doubles_nothing() {
    if !common::postgres_available() {
        return;
    }
    let outage = Outage::in_front_of_postgres().await;
    let c = Clinic::open_with(Backend::Postgres, |s| outage.reroute(s)).await;
    let direct = c.app.db.url.clone();
    let session = c.session(7, 40, false).await;
    let patients = nhs_numbers(40);
    let started = std::time::Instant::now();
    let book_all = |who: &Account, mine: Vec<String>| {
        let (c, session) = (&c, &session);
        let token = who.token.clone();
        async move {
            let (mut acknowledged, mut unavailable) = (Vec::new(), 0);
            for nhs in mine {
                loop {
                    let res = c
                        .app
                        .http
                        .post(c.app.url(&format!("/api/sessions/{session}/cases")))
                        .bearer_auth(&token)
                        .header("Idempotency-Key", format!("outage-{nhs}"))
                        .json(&referral(&nhs))
                        .send()
                        .await
                        .unwrap();
                    match res.status() {
                        StatusCode::CREATED => {
                            let body: Value = res.json().await.unwrap();
                            acknowledged.push(body["id"].as_str().unwrap().to_string());
                            break;
                        }
                        StatusCode::SERVICE_UNAVAILABLE => {
                            assert!(res.headers().contains_key("retry-after"), "no Retry-After");
                            unavailable += 1;
                            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                        }
                        other => panic!("{other}: {}", res.text().await.unwrap_or_default()),
                    }
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            (acknowledged, unavailable)
        }
    };
    let (first, second) = patients.split_at(20);
    let fault = async {
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        outage.begin();
        let down_since = std::time::Instant::now();
        // Readiness says so (after at most the pool's 10 s wait for a connection).
        let ready = c.app.http.get(c.app.url("/ready")).send().await.unwrap();
        assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(ready.headers().contains_key("retry-after"));
        // Longer than a request waits for a connection (10 s): some must be told 503.
        let outage_for = std::time::Duration::from_secs(12);
        tokio::time::sleep(outage_for.saturating_sub(down_since.elapsed())).await;
        outage.end();
    };
    let ((a, a_unavailable), (b, b_unavailable), ()) = tokio::join!(
        book_all(&c.physio, first.to_vec()),
        book_all(&c.chair, second.to_vec()),
        fault
    );
    assert!(started.elapsed() > std::time::Duration::from_secs(12), "the outage was missed");
    assert!(a_unavailable + b_unavailable > 0, "nobody was told the database was down");

    // The service works again without a restart, and holds every acknowledged booking
    // exactly once.
    let ready = c.app.http.get(c.app.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let shown: Value =
        c.get(&c.coordinator, &format!("/api/sessions/{session}")).await.json().await.unwrap();
    assert_eq!(shown["session"]["booked"], 40, "{shown}");
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&direct).await.unwrap();
    let stored: Vec<(String, String)> = sqlx::query_as("SELECT id::text, nhs_number FROM cases")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let mut ids: Vec<String> = stored.iter().map(|(id, _)| id.clone()).collect();
    let mut nhs: Vec<String> = stored.into_iter().map(|(_, n)| n).collect();
    let mut acknowledged: Vec<String> = a.into_iter().chain(b).collect();
    for v in [&mut ids, &mut nhs, &mut acknowledged] {
        v.sort();
    }
    assert_eq!(ids, acknowledged);
    let mut expected = patients.clone();
    expected.sort();
    assert_eq!(nhs, expected, "a patient is missing or booked twice");
    assert!(c.app.state.store.verify_audit().await.unwrap().is_intact());
}
