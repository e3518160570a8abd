//! Case outcomes: a signed outcome is never overwritten (not by the API, not by raw SQL),
//! amendments keep every version, the referrer's letter arrives as text and HTML with no
//! patient details, a re-discussion books a follow-up case (or rolls the signing back),
//! only clinicians record outcomes, and trainees read them without free text.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::clinic::{nhs_numbers, referral, Clinic, Plan};
use crate::common::{eventually, Backend};

const NHS: &str = "9434765919";
const PLAN_TEXT: &str = "Graded exercise with the ESP; taper codeine over four weeks";
const NOTE: &str = "Compare with the 2024 films held at the Royal";
const REASON: &str = "Persistent pain despite twelve weeks of physiotherapy";

/// The shared referral, its free text marked as not identifying the patient.
fn booking(nhs: &str) -> Value {
    let mut body = referral(nhs);
    body["free_text_identifies_patient"] = json!(false);
    body
}

impl Clinic {
    /// How many cases `session` has booked.
    async fn booked(&self, session: &str) -> u64 {
        let (_, body) =
            self.app.get(&self.coordinator.token, &format!("/api/sessions/{session}")).await;
        body["session"]["booked"].as_u64().unwrap()
    }
}

/// A full outcome body with free text in every place it may go.
fn outcome_body(follow_up: Value) -> Value {
    json!({
        "investigations": [
            { "kind": "mri", "site": "lower back", "urgency": "urgent", "notes": NOTE },
            { "kind": "bloods", "urgency": "routine" }
        ],
        "referrals": [
            { "destination": "pain_management_programme", "urgency": "routine", "reason": REASON }
        ],
        "management_plan": { "text": PLAN_TEXT, "items": ["Review analgesia at six weeks"] },
        "follow_up": follow_up,
    })
}

fn none() -> Value {
    json!({ "kind": "none" })
}

async fn signed_outcomes_are_never_overwritten(backend: Backend) {
    let c = Clinic::open(backend).await;
    let session = c.session(7, 4, false).await;
    let case = c.book_case(&c.physio, &session, booking(NHS)).await;

    // The chair drafts, then revises the same unsigned version.
    let (status, v) = c.put_outcome(&c.chair, &case, outcome_body(none())).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["version"], 1);
    assert!(v["signed_at"].is_null());
    let mut revised = outcome_body(json!({ "kind": "review", "weeks": 6 }));
    revised["management_plan"]["text"] = json!("Revised plan before signing");
    let (status, v) = c.put_outcome(&c.chair, &case, revised).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["version"], 1);
    assert_eq!(v["body"]["follow_up"], json!({ "kind": "review", "weeks": 6 }));

    // Another consultant of the specialty signs.
    let (status, signed) = c.sign(&c.second_consultant, &case).await;
    assert_eq!(status, StatusCode::OK, "{signed}");
    assert_eq!(signed["version"], 1);
    assert_eq!(signed["signed_by"], json!(c.second_consultant.id));
    assert!(signed["signed_at"].is_string());
    assert!(signed["follow_up_case"].is_null());
    let (_, shown) = c.app.get(&c.chair.token, &format!("/api/cases/{case}")).await;
    assert_eq!(shown["state"], "outcome_signed");

    // Neither the API nor a second signature changes it.
    let (status, err) = c.put_outcome(&c.chair, &case, outcome_body(none())).await;
    assert_eq!((status, err["code"].as_str()), (StatusCode::CONFLICT, Some("outcome_signed")));
    let (status, err) = c.sign(&c.chair, &case).await;
    assert_eq!((status, err["code"].as_str()), (StatusCode::CONFLICT, Some("outcome_signed")));
    let (status, read) = c.outcome(&c.chair, &case).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["versions"].as_array().unwrap().len(), 1);
    let mut expected = signed.clone();
    expected.as_object_mut().unwrap().remove("follow_up_case");
    assert_eq!(read["current"], expected);
    assert_eq!(read["current"]["body"]["management_plan"]["text"], "Revised plan before signing");

    // Nor does the database: a signed row cannot be updated, no row can be deleted.
    let refused = c
        .app
        .db
        .raw(&format!("UPDATE outcome_versions SET body = '{{}}' WHERE case_id = '{case}'"))
        .await;
    assert!(refused.unwrap_err().contains("immutable"));
    let refused =
        c.app.db.raw(&format!("DELETE FROM outcome_versions WHERE case_id = '{case}'")).await;
    assert!(refused.unwrap_err().contains("never deleted"));
    if backend == Backend::Postgres {
        let refused = c.app.db.raw("TRUNCATE outcome_versions CASCADE").await;
        assert!(refused.unwrap_err().contains("never deleted"));
    }
    // An unsigned draft may still change (the trigger is about signed rows only).
    let other = c.book_case(&c.physio, &session, booking("9912003888")).await;
    let (status, _) = c.put_outcome(&c.chair, &other, outcome_body(none())).await;
    assert_eq!(status, StatusCode::OK);
    c.app
        .db
        .raw(&format!(
            "UPDATE outcome_versions SET updated_at = created_at WHERE case_id = '{other}'"
        ))
        .await
        .unwrap();
    let (_, after) = c.outcome(&c.chair, &case).await;
    assert_eq!(after["current"], expected);
}

async fn amendments_keep_every_version(backend: Backend) {
    let c = Clinic::open(backend).await;
    let session = c.session(7, 4, false).await;
    let case = c.book_case(&c.physio, &session, booking(NHS)).await;
    let amendments = format!("/api/cases/{case}/outcome/amendments");
    let mut amended = outcome_body(none());
    amended["referrals"][0]["destination"] = json!("spinal_surgery");
    amended["reason"] = json!("Referral destination recorded wrongly");

    // Nothing to amend before signing.
    let (status, err) = c.app.post(&c.chair.token, &amendments, amended.clone()).await;
    assert_eq!((status, err["code"].as_str()), (StatusCode::CONFLICT, Some("no_draft")));
    c.put_outcome(&c.chair, &case, outcome_body(none())).await;
    let (status, err) = c.app.post(&c.chair.token, &amendments, amended.clone()).await;
    assert_eq!((status, err["code"].as_str()), (StatusCode::CONFLICT, Some("outcome_not_signed")));
    let (status, v1) = c.sign(&c.chair, &case).await;
    assert_eq!(status, StatusCode::OK);

    // Only a consultant of the specialty amends, and only with a reason.
    let (status, _) = c.app.post(&c.physio.token, &amendments, amended.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let mut no_reason = amended.clone();
    no_reason["reason"] = json!("  ");
    let (status, err) = c.app.post(&c.second_consultant.token, &amendments, no_reason).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!((err["code"].as_str(), err["field"].as_str()), (Some("required"), Some("reason")));
    let mut long_reason = amended.clone();
    long_reason["reason"] = json!("x".repeat(1001));
    let (status, err) = c.app.post(&c.second_consultant.token, &amendments, long_reason).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("too_long"))
    );

    let (status, v2) = c.app.post(&c.second_consultant.token, &amendments, amended).await;
    assert_eq!(status, StatusCode::CREATED, "{v2}");
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["supersedes"], 1);
    assert_eq!(v2["amendment_reason"], "Referral destination recorded wrongly");
    assert_eq!(v2["author_id"], json!(c.second_consultant.id));
    assert_eq!(v2["signed_by"], json!(c.second_consultant.id));
    assert_eq!(v2["body"]["referrals"][0]["destination"], "spinal_surgery");

    let (status, read) = c.outcome(&c.physio, &case).await;
    assert_eq!(status, StatusCode::OK);
    let versions = read["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    let mut v1_stored = v1.clone();
    v1_stored.as_object_mut().unwrap().remove("follow_up_case");
    assert_eq!(versions[0], v1_stored, "version 1 is unchanged");
    assert_eq!(versions[0]["body"]["referrals"][0]["destination"], "pain_management_programme");
    assert_eq!(versions[1], v2);
    assert_eq!(read["current"], v2);
    // The signed case takes no new draft; a further amendment supersedes version 2.
    let (status, _) = c.put_outcome(&c.chair, &case, outcome_body(none())).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let mut third = outcome_body(none());
    third["reason"] = json!("Add the review");
    let (status, v3) = c.app.post(&c.chair.token, &amendments, third).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!((v3["version"].as_u64(), v3["supersedes"].as_u64()), (Some(3), Some(2)));
}

/// A delivered message: its headers and each leaf part as (MIME type, decoded body).
struct Mail {
    subject: String,
    to: String,
    top_type: String,
    alternative: bool,
    parts: Vec<(String, String)>,
    raw: String,
}

fn delivered(dir: &std::path::Path) -> Vec<Mail> {
    use mailparse::MailHeaderMap;
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
            fn walk(part: &mailparse::ParsedMail, alt: &mut bool, out: &mut Vec<(String, String)>) {
                if part.ctype.mimetype == "multipart/alternative" {
                    *alt = true;
                }
                if part.subparts.is_empty() {
                    out.push((part.ctype.mimetype.clone(), part.get_body().unwrap_or_default()));
                }
                for sub in &part.subparts {
                    walk(sub, alt, out);
                }
            }
            let mut alternative = false;
            let mut parts = Vec::new();
            walk(&mail, &mut alternative, &mut parts);
            Mail {
                subject: mail.headers.get_first_value("Subject").unwrap_or_default(),
                to: mail.headers.get_first_value("X-Envelope-To").unwrap_or_default(),
                top_type: mail.ctype.mimetype.clone(),
                alternative,
                parts,
                raw: String::from_utf8_lossy(&raw).into_owned(),
            }
        })
        .collect()
}

async fn the_outcome_letter_reaches_the_referrer_over_smtp(backend: Backend) {
    if !crate::common::aiosmtpd_available() {
        return;
    }
    let port = crate::common::free_port();
    let dir = tempfile::tempdir().unwrap();
    let _sink = crate::common::start_sink(port, dir.path()).expect("SMTP sink starts");
    let c = Clinic::open_with(backend, |s| {
        crate::common::mail_to_sink(s, port);
    })
    .await;
    let session = c.session(7, 4, false).await;
    let later = c.session(14, 4, false).await;
    let case = c.book_case(&c.physio, &session, booking(NHS)).await;
    let body = outcome_body(
        json!({ "kind": "re_discuss", "session_id": later, "reason": "After the MRI" }),
    );
    assert_eq!(c.put_outcome(&c.chair, &case, body).await.0, StatusCode::OK);
    let (status, signed) = c.sign(&c.chair, &case).await;
    assert_eq!(status, StatusCode::OK, "{signed}");
    let mut amended = outcome_body(none());
    amended["reason"] = json!("No follow-up needed after all");
    let (status, _) = c
        .app
        .post(&c.second_consultant.token, &format!("/api/cases/{case}/outcome/amendments"), amended)
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let mail = eventually("confirmation, outcome and amended outcome letters", async || {
        let m = delivered(dir.path());
        (m.len() == 3).then_some(m)
    })
    .await;
    let letter =
        mail.iter().find(|m| m.subject.starts_with("MDT outcome: ")).expect("the outcome letter");
    let amended = mail
        .iter()
        .find(|m| m.subject.starts_with("Amended MDT outcome: "))
        .expect("the amended outcome letter");
    // The chair signed the outcome; the second consultant, its amendment.
    for (m, signer) in [(letter, "Dr Sam Spine"), (amended, "Dr Nia Newton")] {
        assert_eq!(m.to, "physio@example.org");
        assert_eq!(m.top_type, "multipart/alternative", "{}", m.raw);
        assert!(m.alternative);
        let types: Vec<&str> = m.parts.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(types, ["text/plain", "text/html"]);
        let (_, text) = &m.parts[0];
        let (_, html) = &m.parts[1];
        for part in [text, html] {
            assert!(part.contains(&case), "the case reference: {part}");
            assert!(part.contains("lower back"));
            assert!(part.contains("MRI"));
            assert!(part.contains("Pain management programme"));
            assert!(part.contains(signer), "who signed: {part}");
            assert!(part.contains("Sign in to MDT Coordinator to read the full plan and notes"));
        }
        assert!(html.contains("<li>") && html.starts_with("<!DOCTYPE html>"));
        let secrets = [
            NHS,
            "943 476 5919",
            "Hermione",
            "Quibble",
            "1978-05-17",
            "17/05/1978",
            PLAN_TEXT,
            NOTE,
            REASON,
            "Review analgesia",
            "After the MRI",
            "No follow-up needed",
            "Inflammatory back pain",
            "morning stiffness",
        ];
        for secret in secrets {
            assert!(
                !m.subject.contains(secret)
                    && !m.raw.contains(secret)
                    && !text.contains(secret)
                    && !html.contains(secret),
                "{secret} in an outcome letter"
            );
        }
    }
    assert!(letter.parts[0].1.contains("discuss again at"), "{}", letter.parts[0].1);
    assert!(amended.parts[0].1.contains("version 2 replaces version 1"));
    let store = c.app.state.store.clone();
    eventually("every message marked sent", async || {
        let outbox = store.outbox_messages().await.unwrap();
        outbox.iter().all(|m| m.sent_at.is_some()).then_some(())
    })
    .await;
}

async fn re_discussion_books_a_follow_up_or_rolls_signing_back(backend: Backend) {
    let c = Clinic::open(backend).await;
    let earlier = c.session(5, 4, false).await;
    let session = c.session(7, 4, false).await;
    let full = c.session(14, 1, false).await;
    let later = c.session(21, 2, false).await;
    let spinal = c.create_session(Plan { capacity: 2, ..c.other_plan(21) }).await;
    let case = c.book_case(&c.physio, &session, booking(NHS)).await;
    let other_patient = nhs_numbers(1).remove(0);
    c.book_case(&c.physio, &full, booking(&other_patient)).await;
    let re_discuss = |s: &str| {
        outcome_body(json!({ "kind": "re-discuss", "session_id": s, "reason": "After the MRI" }))
    };

    // The chosen session must exist, be of the same specialty, and come later.
    for bad in [&earlier, &session, &spinal, &uuid::Uuid::new_v4().to_string()] {
        let (status, err) = c.put_outcome(&c.chair, &case, re_discuss(bad)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
        assert_eq!(err["code"], "invalid_follow_up_session");
        assert_eq!(err["field"], "follow_up.session_id");
    }

    // A full target session refuses the signing as a whole.
    let (status, draft) = c.put_outcome(&c.chair, &case, re_discuss(&full)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(draft["body"]["follow_up"]["kind"], "re_discuss");
    let outbox_before = c.app.state.store.outbox_messages().await.unwrap().len();
    let (status, err) = c.sign(&c.chair, &case).await;
    assert_eq!((status, err["code"].as_str()), (StatusCode::CONFLICT, Some("session_full")));
    let (_, read) = c.outcome(&c.chair, &case).await;
    assert!(read["current"]["signed_at"].is_null(), "still a draft: {read}");
    assert_eq!(read["current"], draft);
    let (_, shown) = c.app.get(&c.chair.token, &format!("/api/cases/{case}")).await;
    assert_eq!(shown["state"], "booked");
    assert_eq!(c.booked(&full).await, 1);
    assert_eq!(c.booked(&session).await, 1);
    assert_eq!(c.app.state.store.outbox_messages().await.unwrap().len(), outbox_before);

    // A later session with room takes the follow-up case.
    assert_eq!(c.put_outcome(&c.chair, &case, re_discuss(&later)).await.0, StatusCode::OK);
    let (status, signed) = c.sign(&c.chair, &case).await;
    assert_eq!(status, StatusCode::OK, "{signed}");
    let follow_up = &signed["follow_up_case"];
    assert_eq!(follow_up["session_id"], json!(later));
    assert_eq!(follow_up["follow_up_of"], json!(case));
    assert_eq!(follow_up["state"], "booked");
    assert_eq!(follow_up["patient"]["nhs_number"], NHS);
    assert_ne!(follow_up["id"], json!(case));
    assert_eq!(c.booked(&later).await, 1);
    assert_eq!(c.booked(&session).await, 1, "the original keeps its place");
    let follow_up_id = follow_up["id"].as_str().unwrap();
    let (status, fetched) =
        c.app.get(&c.second_consultant.token, &format!("/api/cases/{follow_up_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched["follow_up_of"], json!(case));
    let (_, agenda) = c.app.get(&c.chair.token, &format!("/api/sessions/{later}")).await;
    assert_eq!(agenda["agenda"].as_array().unwrap().len(), 1);
    assert_eq!(c.app.state.store.outbox_messages().await.unwrap().len(), outbox_before + 1);
}

async fn only_clinicians_record_outcomes_and_trainees_see_no_free_text(backend: Backend) {
    let c = Clinic::open(backend).await;
    let teaching = c.session(7, 4, true).await;
    let case = c.book_case(&c.physio, &teaching, booking(NHS)).await;
    let body = outcome_body(json!({ "kind": "review", "weeks": 12 }));

    // Drafting: the chair or a consultant of the specialty; nobody else.
    for (who, expected) in [
        (&c.physio, StatusCode::FORBIDDEN),
        (&c.coordinator, StatusCode::FORBIDDEN),
        (&c.trainee, StatusCode::FORBIDDEN),
        (&c.other_physio, StatusCode::NOT_FOUND),
        (&c.other_chair, StatusCode::NOT_FOUND),
    ] {
        let (status, _) = c.put_outcome(who, &case, body.clone()).await;
        assert_eq!(status, expected);
    }
    let (status, _) = c.outcome(&c.chair, &case).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = c.put_outcome(&c.second_consultant, &case, body.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = c.put_outcome(&c.chair, &case, body.clone()).await;
    assert_eq!(status, StatusCode::OK);
    // Signing: consultants of the specialty only.
    for who in [&c.physio, &c.coordinator, &c.trainee] {
        assert_eq!(c.sign(who, &case).await.0, StatusCode::FORBIDDEN);
    }
    assert_eq!(c.sign(&c.other_chair, &case).await.0, StatusCode::NOT_FOUND);
    assert_eq!(c.sign(&c.chair, &case).await.0, StatusCode::OK);

    // The referrer reads it all; the trainee reads the decisions only.
    let (status, full) = c.outcome(&c.physio, &case).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(full["current"]["body"]["management_plan"]["text"], PLAN_TEXT);
    let res = c
        .app
        .http
        .get(c.app.url(&format!("/api/cases/{case}/outcome")))
        .bearer_auth(&c.trainee.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.unwrap();
    for secret in [
        NHS,
        "943 476 5919",
        "Hermione",
        "Quibble",
        "1978-05-17",
        PLAN_TEXT,
        NOTE,
        REASON,
        "Review analgesia",
        "management_plan",
        "notes",
    ] {
        assert!(!text.contains(secret), "trainee sees {secret}: {text}");
    }
    let seen: Value = serde_json::from_str(&text).unwrap();
    let summary = &seen["current"]["summary"];
    assert_eq!(
        summary["investigations"][0],
        json!({ "kind": "mri", "site": "lower back", "urgency": "urgent" })
    );
    assert_eq!(
        summary["referrals"][0],
        json!({ "destination": "pain_management_programme", "urgency": "routine" })
    );
    assert_eq!(summary["plan_items"], 1);
    assert_eq!(summary["follow_up"]["kind"], "review");
    assert!(seen["current"]["signed_at"].is_string());
    // Someone who may not see the case is told it does not exist.
    assert_eq!(c.outcome(&c.other_physio, &case).await.0, StatusCode::NOT_FOUND);
    // Every read was audited.
    let reads = c
        .app
        .state
        .store
        .audit_events()
        .await
        .unwrap()
        .into_iter()
        .filter(|e| {
            e.action == "case_read"
                && e.record_id.as_deref() == Some(case.as_str())
                && e.details.contains("\"via\":\"outcome\"")
        })
        .count();
    assert_eq!(reads, 3);
}

async fn bad_outcome_bodies_are_refused_with_codes(backend: Backend) {
    let c = Clinic::open(backend).await;
    let session = c.session(7, 4, false).await;
    let case = c.book_case(&c.physio, &session, booking(NHS)).await;
    let res = c
        .app
        .http
        .put(c.app.url(&format!("/api/cases/{case}/outcome")))
        .bearer_auth(&c.chair.token)
        .header("content-type", "application/json")
        .body(r#"{"investigations": [ {"kind": "mri", "#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["code"], "malformed_json");

    type Edit = Box<dyn Fn(&mut Value)>;
    let edits: Vec<(Edit, &str, &str)> = vec![
        (
            Box::new(|b| b["investigations"][1]["notes"] = json!("n".repeat(501))),
            "too_long",
            "investigations[1].notes",
        ),
        (
            Box::new(|b| b["investigations"][0]["kind"] = json!("pet_scan")),
            "invalid_value",
            "investigations[0].kind",
        ),
        (
            Box::new(|b| b["investigations"][0]["urgency"] = json!("asap")),
            "invalid_value",
            "investigations[0].urgency",
        ),
        (
            Box::new(|b| b["investigations"][0]["site"] = json!("Mrs Quibble's knee")),
            "invalid_body_site",
            "investigations[0].site",
        ),
        (
            Box::new(|b| b["referrals"][0]["destination"] = json!("dentistry")),
            "invalid_value",
            "referrals[0].destination",
        ),
        (
            Box::new(|b| b["referrals"][0]["reason"] = json!("tab\u{0000}null")),
            "invalid_characters",
            "referrals[0].reason",
        ),
        (
            Box::new(|b| b["management_plan"] = json!({ "text": " ", "items": [] })),
            "required",
            "management_plan.text",
        ),
        (
            Box::new(|b| b["management_plan"]["items"] = json!(vec!["x"; 21])),
            "too_many",
            "management_plan.items",
        ),
        (
            Box::new(|b| b["follow_up"] = json!({ "kind": "review", "weeks": 60 })),
            "invalid_value",
            "follow_up.weeks",
        ),
        (
            Box::new(|b| b["follow_up"] = json!({ "kind": "sometime" })),
            "invalid_value",
            "follow_up.kind",
        ),
        (Box::new(|b| b["investigations"] = json!("mri")), "invalid_field", "body"),
        (
            Box::new(|b| {
                b.as_object_mut().unwrap().remove("management_plan");
            }),
            "invalid_field",
            "body",
        ),
    ];
    for (edit, code, field) in edits {
        let mut body = outcome_body(none());
        edit(&mut body);
        let (status, err) = c.put_outcome(&c.chair, &case, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
        assert_eq!(
            (err["code"].as_str(), err["field"].as_str()),
            (Some(code), Some(field)),
            "{err}"
        );
    }
    // Nothing was stored; signing with no draft is a conflict.
    let (_, read) = c.outcome(&c.chair, &case).await;
    assert!(read["current"].is_null());
    assert_eq!(read["versions"], json!([]));
    let (status, err) = c.sign(&c.chair, &case).await;
    assert_eq!((status, err["code"].as_str()), (StatusCode::CONFLICT, Some("no_draft")));
    // A withdrawn case takes no outcome.
    let (status, _) = c
        .app
        .send(reqwest::Method::DELETE, &c.physio.token, &format!("/api/cases/{case}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, err) = c.put_outcome(&c.chair, &case, outcome_body(none())).await;
    assert_eq!((status, err["code"].as_str()), (StatusCode::CONFLICT, Some("invalid_state")));
}

/// The letter the referrer was sent can be read again in the app (the "my cases" page
/// shows it): worded as sent, for the latest signed version, audited, and only for those
/// who see the case identified.
async fn the_outcome_letter_can_be_read_in_the_app(backend: Backend) {
    let c = Clinic::open(backend).await;
    let session = c.session(7, 4, true).await;
    let case = c.book_case(&c.physio, &session, booking(NHS)).await;
    let letter = format!("/api/cases/{case}/outcome/letter");
    let (status, err) = c.app.get(&c.physio.token, &letter).await;
    assert_eq!((status, err["code"].as_str()), (StatusCode::NOT_FOUND, Some("no_signed_outcome")));
    c.put_outcome(&c.chair, &case, outcome_body(none())).await;
    let (status, _) = c.app.get(&c.physio.token, &letter).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a draft has no letter");
    assert_eq!(c.sign(&c.chair, &case).await.0, StatusCode::OK);

    let (status, body) = c.app.get(&c.physio.token, &letter).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["version"], 1);
    assert!(body["subject"].as_str().unwrap().starts_with("MDT outcome: "));
    // Decided today, outside a meeting, for a session a week away: the letter gives the
    // day it was decided, never the scheduled date it had not reached.
    let uk_day = |t: chrono::DateTime<Utc>| {
        t.with_timezone(&mdt_coordinator::domain::schedule::CLINIC_TZ)
            .format("%A %-d %B %Y")
            .to_string()
    };
    let subject = body["subject"].as_str().unwrap();
    assert!(subject.contains(&uk_day(Utc::now())), "{subject}");
    assert!(!subject.contains(&uk_day(Utc::now() + Duration::days(7))), "{subject}");
    // Everyone who sees the outcome sees who signed it.
    for who in [&c.physio, &c.trainee, &c.second_consultant] {
        let (status, outcome) = c.outcome(who, &case).await;
        assert_eq!(status, StatusCode::OK, "{outcome}");
        assert_eq!(outcome["current"]["signed_by_name"], "Dr Sam Spine", "{outcome}");
        assert_eq!(outcome["versions"][0]["signed_by_name"], "Dr Sam Spine");
    }
    let text = body["body"].as_str().unwrap();
    assert!(text.contains("MRI") && text.contains("Dr Sam Spine"), "{text}");
    assert_eq!(c.app.get(&c.chair.token, &letter).await.0, StatusCode::OK);
    let (status, _) = c.app.get(&c.trainee.token, &letter).await;
    assert!(
        status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND,
        "a trainee reads no letter: {status}"
    );
    assert_eq!(c.app.get(&c.other_physio.token, &letter).await.0, StatusCode::NOT_FOUND);
    let reads = c.app.state.store.audit_events().await.unwrap();
    assert!(
        reads
            .iter()
            .any(|e| e.action == "case_read" && e.details.to_string().contains("outcome_letter")),
        "reading the letter is audited"
    );

    let mut amended = outcome_body(none());
    amended["reason"] = json!("Referral destination recorded wrongly");
    let (status, _) = c
        .app
        .post(&c.second_consultant.token, &format!("/api/cases/{case}/outcome/amendments"), amended)
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, body) = c.app.get(&c.physio.token, &letter).await;
    assert_eq!(body["version"], 2);
    assert!(body["subject"].as_str().unwrap().starts_with("Amended MDT outcome: "));
}

/// Issue 16: an outcome is signed for a case its meeting discussed; for one it did not,
/// only with the consultant's reason, which is audited, kept with the version and counted
/// apart in the activity report.
async fn signing_needs_a_discussion_or_a_reason(backend: Backend) {
    let c = Clinic::open(backend).await;
    let session = c.session(7, 4, false).await;
    let case = c.book_case(&c.physio, &session, booking(NHS)).await;
    expect_ok(c.put_outcome(&c.chair, &case, outcome_body(none())).await);
    let (status, err) = c.sign_with(&c.chair, &case, json!({})).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::CONFLICT, Some("not_discussed")),
        "{err}"
    );
    let blank = json!({ "outside_meeting_reason": "  " });
    assert_eq!(c.sign_with(&c.chair, &case, blank).await.1["code"], "not_discussed");
    let typo = json!({ "outside_meeting": "x" });
    assert_eq!(c.sign_with(&c.chair, &case, typo).await.0, StatusCode::BAD_REQUEST);
    let (_, read) = c.outcome(&c.chair, &case).await;
    assert!(read["current"]["signed_at"].is_null(), "refusals sign nothing");

    let (status, signed) = c.sign(&c.chair, &case).await;
    assert_eq!(status, StatusCode::OK, "{signed}");
    assert_eq!(signed["outside_meeting_reason"], crate::common::clinic::OUTSIDE_MEETING);
    let audit = c.app.state.store.audit_events().await.unwrap();
    let event = audit.iter().find(|e| e.action == "outcome_signed").unwrap();
    assert!(event.details.contains("outside_meeting_reason"), "{}", event.details);

    let starts = session_start(&c, &session).await;
    let query = format!(
        "/api/reports/activity?from={starts}&to={starts}&specialty={}&format=csv",
        c.specialty
    );
    let csv = c.get(&c.coordinator, &query).await.text().await.unwrap();
    let row = csv.lines().find(|l| l.starts_with(case.as_str())).unwrap_or_else(|| panic!("{csv}"));
    assert!(row.contains("decided_outside_meeting"), "{row}");
    let query =
        format!("/api/reports/activity?from={starts}&to={starts}&specialty={}", c.specialty);
    let (_, report) = crate::common::clinic::answer(c.get(&c.coordinator, &query).await).await;
    let counts = &report["totals"][0]["cases"];
    assert_eq!(
        (counts["decided_outside_meeting"].as_u64(), counts["discussed"].as_u64()),
        (Some(1), Some(0)),
        "{counts}"
    );
}

/// The UK calendar date of the session's start.
async fn session_start(c: &Clinic, session: &str) -> String {
    let (_, body) = c.app.get(&c.coordinator.token, &format!("/api/sessions/{session}")).await;
    let starts: chrono::DateTime<Utc> =
        body["session"]["starts_at"].as_str().unwrap().parse().unwrap();
    starts.with_timezone(&chrono_tz::Europe::London).date_naive().to_string()
}

fn expect_ok((status, body): (StatusCode, Value)) -> Value {
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

crate::on_both_backends!(
    signing_needs_a_discussion_or_a_reason,
    the_outcome_letter_can_be_read_in_the_app,
    signed_outcomes_are_never_overwritten,
    amendments_keep_every_version,
    the_outcome_letter_reaches_the_referrer_over_smtp,
    re_discussion_books_a_follow_up_or_rolls_signing_back,
    only_clinicians_record_outcomes_and_trainees_see_no_free_text,
    bad_outcome_bodies_are_refused_with_codes,
);
