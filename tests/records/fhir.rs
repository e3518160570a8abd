//! The FHIR export and the audit queries (issue 7), on both backends: a case's bundle is
//! structurally valid FHIR R4 (required fields, codes from the stated value sets, every
//! reference resolving inside the bundle) through draft, signing and amendment; only
//! those who see the case identified get it, and the export is audited. Coordinators
//! follow a patient's trail (by NHS number, never in a URL) and a user's, page by page;
//! the chain verification endpoint finds a tampered row.

use std::collections::{HashMap, HashSet};

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::clinic::{expect, referral, Clinic};
use crate::common::Backend;

const NHS: &str = "9434765919";
const OTHER_NHS: &str = "9912003888";
const NHS_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhs-number";
const ODS_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
const SNOMED: &str = "http://snomed.info/sct";

impl Clinic {
    /// The export as `token` sees it: status, content type, body.
    async fn fhir(&self, token: &str, case: &str) -> (StatusCode, String, Value) {
        let res = self
            .app
            .http
            .get(self.app.url(&format!("/api/cases/{case}/fhir")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = res.status();
        let content_type = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        (status, content_type, res.json().await.unwrap_or(Value::Null))
    }

    async fn audit_search(&self, token: &str, body: Value) -> (StatusCode, Value) {
        self.app.post(token, "/api/audit/search", body).await
    }
}

fn outcome() -> Value {
    json!({
        "investigations": [
            { "kind": "mri", "site": "lower back", "urgency": "urgent", "notes": "Whole spine" },
            { "kind": "bloods", "urgency": "routine" },
            { "kind": "nerve_conduction", "urgency": "routine" }
        ],
        "referrals": [
            { "destination": "physiotherapy", "urgency": "routine", "reason": "Graded exercise" },
            { "destination": "pain_management_programme", "urgency": "urgent", "reason": "Persistent pain" }
        ],
        "management_plan": { "text": "Graded exercise; taper codeine", "items": ["Review analgesia at six weeks"] },
        "follow_up": { "kind": "review", "weeks": 6 },
    })
}

// ---------------------------------------------------------------------------------------
// A structural FHIR R4 validator: the parts of the specification this export relies on.
// (No FHIR model crate: see the commit message.)

const BUNDLE_TYPE: &[&str] = &[
    "document",
    "message",
    "transaction",
    "transaction-response",
    "batch",
    "batch-response",
    "history",
    "searchset",
    "collection",
];
const ADMINISTRATIVE_GENDER: &[&str] = &["male", "female", "other", "unknown"];
const ENCOUNTER_STATUS: &[&str] = &[
    "planned",
    "arrived",
    "triaged",
    "in-progress",
    "onleave",
    "finished",
    "cancelled",
    "entered-in-error",
    "unknown",
];
/// v3 ActEncounterCode, the R4 binding of `Encounter.class`.
const ENCOUNTER_CLASS: &[&str] =
    &["AMB", "EMER", "FLD", "HH", "IMP", "ACUTE", "NONAC", "OBSENC", "PRENC", "SS", "VR"];
const REQUEST_STATUS: &[&str] =
    &["draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"];
const REQUEST_INTENT: &[&str] = &[
    "proposal",
    "plan",
    "directive",
    "order",
    "original-order",
    "reflex-order",
    "filler-order",
    "instance-order",
    "option",
];
const REQUEST_PRIORITY: &[&str] = &["routine", "urgent", "asap", "stat"];
const CARE_PLAN_INTENT: &[&str] = &["proposal", "plan", "order", "option"];
const CARE_PLAN_ACTIVITY_STATUS: &[&str] = &[
    "not-started",
    "scheduled",
    "in-progress",
    "on-hold",
    "completed",
    "cancelled",
    "stopped",
    "unknown",
    "entered-in-error",
];

fn in_set(v: &Value, set: &[&str], what: &str) {
    let s = v.as_str().unwrap_or_else(|| panic!("{what} missing: {v}"));
    assert!(set.contains(&s), "{what} = {s} is not in its value set");
}

/// Every `{"reference": …}` anywhere under `v`, with the key it sits under.
fn references<'a>(v: &'a Value, key: &str, out: &mut Vec<(String, &'a str)>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("reference") {
                out.push((key.to_string(), r));
            }
            for (k, v) in m {
                references(v, k, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| references(v, key, out)),
        _ => {}
    }
}

/// Checks the bundle and returns its resources by type.
fn validate(bundle: &Value) -> HashMap<String, Vec<Value>> {
    assert_eq!(bundle["resourceType"], "Bundle");
    in_set(&bundle["type"], BUNDLE_TYPE, "Bundle.type");
    assert_eq!(bundle["type"], "collection");
    assert!(bundle["timestamp"].is_string());
    let entries = bundle["entry"].as_array().expect("Bundle.entry");
    let mut by_url: HashMap<String, &Value> = HashMap::new();
    let mut by_type: HashMap<String, Vec<Value>> = HashMap::new();
    for entry in entries {
        let url = entry["fullUrl"].as_str().expect("entry.fullUrl");
        let id = url.strip_prefix("urn:uuid:").expect("urn:uuid: fullUrl");
        uuid::Uuid::parse_str(id).expect("fullUrl is a UUID");
        let resource = &entry["resource"];
        let kind = resource["resourceType"].as_str().expect("resourceType");
        assert_eq!(resource["id"], id, "id matches fullUrl");
        assert!(by_url.insert(url.to_string(), resource).is_none(), "fullUrl unique");
        by_type.entry(kind.to_string()).or_default().push(resource.clone());
    }
    // Every reference resolves, to a resource of the kind its element expects.
    let mut refs = Vec::new();
    references(bundle, "", &mut refs);
    for (key, r) in &refs {
        let target = by_url.get(*r).unwrap_or_else(|| panic!("{key} → {r} does not resolve"));
        let expected = match key.as_str() {
            "subject" => Some("Patient"),
            "encounter" => Some("Encounter"),
            "requester" | "author" | "individual" => Some("Practitioner"),
            "generalPractitioner" => Some("Organization"),
            "reference" => Some("ServiceRequest"),
            _ => None,
        };
        if let Some(expected) = expected {
            assert_eq!(target["resourceType"], expected, "{key} → {r}");
        }
    }

    let patients = &by_type["Patient"];
    assert_eq!(patients.len(), 1);
    let p = &patients[0];
    let nhs: Vec<&Value> =
        p["identifier"].as_array().unwrap().iter().filter(|i| i["system"] == NHS_SYSTEM).collect();
    assert_eq!(nhs.len(), 1);
    let value = nhs[0]["value"].as_str().unwrap();
    assert!(value.len() == 10 && value.bytes().all(|b| b.is_ascii_digit()));
    in_set(&p["gender"], ADMINISTRATIVE_GENDER, "Patient.gender");
    chrono::NaiveDate::parse_from_str(p["birthDate"].as_str().unwrap(), "%Y-%m-%d")
        .expect("Patient.birthDate");
    let gp = p["generalPractitioner"][0]["reference"].as_str().unwrap();
    assert_eq!(by_url[gp]["identifier"][0]["system"], ODS_SYSTEM);

    for e in &by_type["Encounter"] {
        in_set(&e["status"], ENCOUNTER_STATUS, "Encounter.status");
        assert_eq!(e["class"]["system"], "http://terminology.hl7.org/CodeSystem/v3-ActCode");
        in_set(&e["class"]["code"], ENCOUNTER_CLASS, "Encounter.class");
        assert!(e["subject"]["reference"].is_string());
    }
    for r in by_type.get("ServiceRequest").into_iter().flatten() {
        in_set(&r["status"], REQUEST_STATUS, "ServiceRequest.status");
        in_set(&r["intent"], REQUEST_INTENT, "ServiceRequest.intent");
        in_set(&r["priority"], REQUEST_PRIORITY, "ServiceRequest.priority");
        assert!(r["subject"]["reference"].is_string(), "ServiceRequest.subject");
        let codings = r["code"]["coding"].as_array().expect("ServiceRequest.code");
        assert!(!codings.is_empty());
        for c in codings {
            assert!(c["system"].is_string() && c["code"].is_string());
            if c["system"] == SNOMED {
                assert!(c["code"].as_str().unwrap().bytes().all(|b| b.is_ascii_digit()));
            }
        }
    }
    for c in by_type.get("CarePlan").into_iter().flatten() {
        in_set(&c["status"], REQUEST_STATUS, "CarePlan.status");
        in_set(&c["intent"], CARE_PLAN_INTENT, "CarePlan.intent");
        assert!(c["subject"]["reference"].is_string(), "CarePlan.subject");
        for a in c["activity"].as_array().into_iter().flatten() {
            // cpl-3: a reference or a detail, not both.
            assert!(a.get("reference").is_some() != a.get("detail").is_some());
            if let Some(detail) = a.get("detail") {
                in_set(
                    &detail["status"],
                    CARE_PLAN_ACTIVITY_STATUS,
                    "CarePlan.activity.detail.status",
                );
            }
        }
    }
    for p in by_type.get("Practitioner").into_iter().flatten() {
        assert!(p["name"].is_array());
    }
    by_type
}

fn codes(request: &Value, system: &str) -> Vec<String> {
    request["code"]["coding"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["system"] == system)
        .map(|c| c["code"].as_str().unwrap().to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------

async fn fhir_bundle_follows_the_outcome_and_validates(backend: Backend) {
    let c = Clinic::open(backend).await;
    let session = c.session(7, 4, false).await;
    let case = c.book_case(&c.physio, &session, referral(NHS)).await;

    // No outcome yet: Patient, GP practice and a planned Encounter; no orders.
    let (status, content_type, bundle) = c.fhir(&c.chair.token, &case).await;
    assert_eq!(status, StatusCode::OK, "{bundle}");
    assert!(content_type.starts_with("application/fhir+json"), "{content_type}");
    let r = validate(&bundle);
    assert_eq!(r["Encounter"][0]["status"], "planned");
    assert!(!r.contains_key("ServiceRequest") && !r.contains_key("CarePlan"));

    // A draft: orders and plan as drafts, no signer yet.
    expect(StatusCode::OK, c.put_outcome(&c.chair, &case, outcome()).await);
    let (_, _, bundle) = c.fhir(&c.physio.token, &case).await;
    let r = validate(&bundle);
    assert_eq!(r["ServiceRequest"].len(), 5);
    assert!(r["ServiceRequest"].iter().all(|s| s["status"] == "draft"));
    assert_eq!(r["CarePlan"][0]["status"], "draft");
    assert!(!r.contains_key("Practitioner"));

    // Signed: active orders, the signer as Practitioner, a finished virtual Encounter.
    expect(StatusCode::OK, c.sign(&c.chair, &case).await);
    let (status, _, bundle) = c.fhir(&c.coordinator.token, &case).await;
    assert_eq!(status, StatusCode::OK);
    let r = validate(&bundle);
    let p = &r["Patient"][0];
    assert_eq!(p["identifier"][0]["value"], NHS);
    assert_eq!((&p["gender"], &p["birthDate"]), (&json!("female"), &json!("1978-05-17")));
    assert_eq!(p["name"][0]["family"], "Quibble");
    assert_eq!(r["Organization"][0]["identifier"][0]["value"], "A81001");
    let e = &r["Encounter"][0];
    assert_eq!((&e["status"], &e["class"]["code"]), (&json!("finished"), &json!("VR")));
    let orders = &r["ServiceRequest"];
    assert!(orders.iter().all(|s| s["status"] == "active" && s["intent"] == "order"));
    assert_eq!(codes(&orders[0], SNOMED), ["113091000"]);
    assert_eq!(orders[0]["priority"], "urgent");
    assert_eq!(codes(&orders[1], SNOMED), ["396550006"]);
    // No confirmed SNOMED concept for nerve conduction: the service's own code only.
    assert!(codes(&orders[2], SNOMED).is_empty());
    assert_eq!(
        codes(&orders[2], "https://mdt-coordinator.example/fhir/CodeSystem/investigation-kind"),
        ["nerve_conduction"]
    );
    assert_eq!(codes(&orders[3], SNOMED), ["306170007"]);
    assert_eq!(orders[4]["priority"], "urgent");
    let plan = &r["CarePlan"][0];
    assert_eq!((&plan["status"], &plan["intent"]), (&json!("active"), &json!("plan")));
    assert_eq!(plan["description"], "Graded exercise; taper codeine");
    assert_eq!(r["Practitioner"].len(), 1);
    assert_eq!(
        plan["author"]["reference"],
        bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["resource"]["resourceType"] == "Practitioner")
            .unwrap()["fullUrl"]
    );

    // Amended: the bundle is the latest version.
    let mut amended = outcome();
    amended["investigations"] = json!([{ "kind": "ct", "urgency": "routine" }]);
    amended["reason"] = json!("CT rather than MRI: pacemaker");
    let (status, out) =
        c.app.post(&c.chair.token, &format!("/api/cases/{case}/outcome/amendments"), amended).await;
    assert_eq!(status, StatusCode::CREATED, "{out}");
    let (_, _, bundle) = c.fhir(&c.chair.token, &case).await;
    let r = validate(&bundle);
    assert_eq!(r["ServiceRequest"].len(), 3);
    assert_eq!(codes(&r["ServiceRequest"][0], SNOMED), ["77477000"]);
    assert!(r["ServiceRequest"].iter().all(|s| s["status"] == "active"));

    // Each export is audited against the case.
    let events = c.app.state.store.audit_events().await.unwrap();
    let exports = events
        .iter()
        .filter(|e| e.action == "case_exported" && e.record_id.as_deref() == Some(case.as_str()))
        .count();
    assert_eq!(exports, 4);
}

async fn fhir_export_only_for_identified_viewers(backend: Backend) {
    let c = Clinic::open(backend).await;
    let teaching = c.session(7, 4, true).await;
    let case = c.book_case(&c.physio, &teaching, referral(NHS)).await;
    // A trainee sees a teaching case de-identified only: no bundle.
    let (status, _, body) = c.fhir(&c.trainee.token, &case).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(!body.to_string().contains(NHS));
    // Not a teaching session: the case is invisible to the trainee and to others.
    let plain = c.session(8, 4, false).await;
    let other = c.book_case(&c.physio, &plain, referral(OTHER_NHS)).await;
    for token in [&c.trainee.token, &c.other_physio.token] {
        let (status, _, body) = c.fhir(token, &other).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    }
    let (status, _, _) = c.fhir(&c.chair.token, &uuid::Uuid::new_v4().to_string()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = c.fhir("not-a-token", &case).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Refusals export nothing and so write no export event.
    let events = c.app.state.store.audit_events().await.unwrap();
    assert!(!events.iter().any(|e| e.action == "case_exported"));
}

async fn audit_queries_follow_a_patient_and_a_user(backend: Backend) {
    let c = Clinic::open(backend).await;
    let first = c.session(7, 4, false).await;
    let second = c.session(14, 4, false).await;
    let a1 = c.book_case(&c.physio, &first, referral(NHS)).await;
    let a2 = c.book_case(&c.physio, &second, referral(NHS)).await;
    let b = c.book_case(&c.physio, &first, referral(OTHER_NHS)).await;
    let started = Utc::now();
    // The chair reads one of A's cases and exports the other; then B's case.
    assert_eq!(c.app.get(&c.chair.token, &format!("/api/cases/{a1}")).await.0, StatusCode::OK);
    assert_eq!(c.fhir(&c.chair.token, &a2).await.0, StatusCode::OK);
    assert_eq!(c.app.get(&c.chair.token, &format!("/api/cases/{b}")).await.0, StatusCode::OK);

    // Patient A's trail: the bookings, the read and the export, nothing about B.
    let (status, body) =
        c.audit_search(&c.coordinator.token, json!({ "nhs_number": "943 476 5919" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["cases"], json!([a1, a2]));
    assert_eq!(body["next"], Value::Null);
    let events = body["events"].as_array().unwrap();
    let seen: HashSet<(&str, &str)> = events
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["record_id"].as_str().unwrap()))
        .collect();
    for expected in [
        ("case_booked", a1.as_str()),
        ("case_booked", a2.as_str()),
        ("case_read", a1.as_str()),
        ("case_exported", a2.as_str()),
    ] {
        assert!(seen.contains(&expected), "{expected:?} missing from {seen:?}");
    }
    assert!(events.iter().all(|e| e["record_id"] == json!(a1) || e["record_id"] == json!(a2)));
    assert!(events.iter().any(|e| e["actor_id"] == json!(c.chair.id)));
    assert!(events[0]["details"].is_object());
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "chain order");

    // Time window: only what the chair did after the bookings.
    let (_, windowed) = c
        .audit_search(
            &c.coordinator.token,
            json!({ "nhs_number": NHS, "from": started.to_rfc3339() }),
        )
        .await;
    let actions: Vec<&str> = windowed["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["case_read", "case_exported"]);
    let (_, empty) = c
        .audit_search(
            &c.coordinator.token,
            json!({ "nhs_number": NHS, "to": started.to_rfc3339(), "from": (started - Duration::days(1)).to_rfc3339() }),
        )
        .await;
    let before = ["case_booked", "case_triaged"];
    assert!(empty["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| before.contains(&e["action"].as_str().unwrap())));

    // A user's trail by GET, paged two at a time until `next` is null.
    let chair_all = c
        .app
        .get(&c.coordinator.token, &format!("/api/audit?user_id={}&limit=1000", c.chair.id))
        .await;
    assert_eq!(chair_all.0, StatusCode::OK, "{}", chair_all.1);
    let all: Vec<i64> = chair_all.1["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["actor_id"], json!(c.chair.id));
            e["seq"].as_i64().unwrap()
        })
        .collect();
    assert!(all.len() >= 4, "{all:?}"); // login, two reads, one export at least
    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let (status, page) = c
            .app
            .get(
                &c.coordinator.token,
                &format!("/api/audit?user_id={}&limit=2&after={after}", c.chair.id),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let events = page["events"].as_array().unwrap();
        assert!(events.len() <= 2);
        paged.extend(events.iter().map(|e| e["seq"].as_i64().unwrap()));
        match page["next"].as_i64() {
            Some(next) => after = next,
            None => break,
        }
    }
    assert_eq!(paged, all);

    // Attachments of the patient's cases are part of the trail.
    let before_upload = Utc::now();
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"Clinic letter: lower back pain.".to_vec())
            .file_name("letter.txt")
            .mime_str("text/plain")
            .unwrap(),
    );
    let res = c
        .app
        .http
        .post(c.app.url(&format!("/api/cases/{a1}/attachments")))
        .bearer_auth(&c.physio.token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let attachment = res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let res = c
        .app
        .http
        .get(c.app.url(&format!("/api/attachments/{attachment}")))
        .bearer_auth(&c.chair.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (_, trail) = c
        .audit_search(
            &c.coordinator.token,
            json!({ "nhs_number": NHS, "from": before_upload.to_rfc3339() }),
        )
        .await;
    let got: Vec<(&str, &str)> = trail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["record_id"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            ("attachment_uploaded", attachment.as_str()),
            ("attachment_downloaded", attachment.as_str())
        ]
    );

    // Every query is itself audited, without the NHS number.
    let log = c.app.state.store.audit_events().await.unwrap();
    let queries: Vec<_> = log.iter().filter(|e| e.action == "audit_queried").collect();
    assert!(queries.len() >= 4);
    assert!(queries
        .iter()
        .all(|e| e.actor_id.map(|a| a.to_string()) == Some(c.coordinator.id.clone())));
    assert!(log.iter().all(|e| !e.details.contains(NHS)));
}

async fn audit_queries_refuse_bad_requests(backend: Backend) {
    let c = Clinic::open(backend).await;
    let co = &c.coordinator.token;
    // Coordinators only.
    for token in [&c.chair.token, &c.physio.token, &c.trainee.token] {
        let (status, _) = c.audit_search(token, json!({ "user_id": c.chair.id })).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = c.app.get(token, &format!("/api/audit?user_id={}", c.chair.id)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    // No NHS number in a URL, ever.
    let (status, body) = c.app.get(co, &format!("/api/audit?nhs_number={NHS}")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("identifier_in_url"))
    );
    let refusals = [
        (json!({}), "subject_required"),
        (json!({ "nhs_number": NHS, "user_id": c.chair.id }), "one_subject_only"),
        (json!({ "nhs_number": "9434765918" }), "invalid_nhs_number"),
        (json!({ "user_id": "chair" }), "invalid_value"),
        (json!({ "user_id": c.chair.id, "limit": 1001 }), "invalid_value"),
        (json!({ "user_id": c.chair.id, "limit": 0 }), "invalid_value"),
        (json!({ "user_id": c.chair.id, "after": -1 }), "invalid_value"),
        (json!({ "user_id": c.chair.id, "from": "yesterday" }), "invalid_time"),
        (
            json!({ "user_id": c.chair.id, "from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z" }),
            "invalid_time_window",
        ),
    ];
    for (body, code) in refusals {
        let (status, out) = c.audit_search(co, body.clone()).await;
        assert_eq!(
            (status, out["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(code)),
            "{body}"
        );
    }
    let (status, out) = c.app.get(co, "/api/audit").await;
    assert_eq!(
        (status, out["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("subject_required"))
    );
    let (status, out) = c.app.get(co, "/api/audit?user_id=1&limit=ten").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{out}");
    // A patient with no cases has an empty trail, not an error.
    let (status, out) = c.audit_search(co, json!({ "nhs_number": NHS })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((&out["events"], &out["cases"]), (&json!([]), &json!([])));
}

async fn audit_verify_endpoint_finds_a_tampered_row(backend: Backend) {
    let c = Clinic::open(backend).await;
    let (status, _) = c.app.get(&c.chair.token, "/api/admin/audit/verify").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, report) = c.app.get(&c.coordinator.token, "/api/admin/audit/verify").await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["ok"], true);
    assert!(report["length"].as_u64().unwrap() >= 5, "{report}");
    assert!(report.get("broken_at").is_none());
    // The same walk as the CLI's `audit verify`.
    let direct = c.app.state.store.verify_audit().await.unwrap();
    assert!(direct.is_intact());

    // Tamper with row 2 behind the application's back (disabling the guard first).
    let disable = match backend {
        Backend::Sqlite => "DROP TRIGGER audit_events_no_update",
        Backend::Postgres => {
            "ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_delete"
        }
    };
    c.app.db.raw(disable).await.unwrap();
    c.app
        .db
        .raw("UPDATE audit_events SET action = 'nothing_happened' WHERE seq = 2")
        .await
        .unwrap();
    let (status, report) = c.app.get(&c.coordinator.token, "/api/admin/audit/verify").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((&report["ok"], &report["broken_at"]), (&json!(false), &json!(2)));
}

crate::on_both_backends!(
    fhir_bundle_follows_the_outcome_and_validates,
    fhir_export_only_for_identified_viewers,
    audit_queries_follow_a_patient_and_a_user,
    audit_queries_refuse_bad_requests,
    audit_verify_endpoint_finds_a_tampered_row,
);
