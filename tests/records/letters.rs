//! Letters after signing (issue 16), on both backends with a real SMTP sink: signing
//! makes the GP and patient letters as PDFs whose text (`pdftotext`) holds the plan,
//! every decision and the patient's identifiers; an amendment supersedes them and the
//! old stay readable; a practice on a secure domain gets the PDF attached, the referrer
//! on `example.org` and a practice without a secure address get no identifiers; the
//! print-and-post list holds what they did not get; printing records who and when.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::clinic::{expect, referral, Account, Clinic};
use crate::common::{self, Backend};

const NHS: &str = "9434765919";

fn outcome() -> Value {
    json!({
        "investigations": [
            { "kind": "mri", "site": "lower back", "urgency": "urgent", "notes": "Whole spine" },
            { "kind": "bloods", "urgency": "routine" }
        ],
        "referrals": [
            { "destination": "physiotherapy", "urgency": "routine", "reason": "Graded exercise" },
            { "destination": "rheumatology", "urgency": "urgent", "reason": "Possible spondyloarthritis" }
        ],
        "management_plan": { "text": "Graded exercise and taper codeine", "items": ["Review analgesia at six weeks"] },
        "follow_up": { "kind": "review", "weeks": 6 },
    })
}

async fn pdf_text(c: &Clinic, who: &Account, letter: &str) -> String {
    let res = c.get(who, &format!("/api/letters/{letter}/pdf")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/pdf");
    to_text(&res.bytes().await.unwrap())
}

fn to_text(pdf: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.pdf");
    std::fs::write(&path, pdf).unwrap();
    let out = std::process::Command::new("pdftotext").arg(&path).arg("-").output();
    let out = out.expect("pdftotext (poppler-utils) is installed");
    String::from_utf8_lossy(&out.stdout).split_whitespace().collect::<Vec<_>>().join(" ")
}

async fn letters(c: &Clinic, case: &str) -> Vec<Value> {
    let (status, body) = c.app.get(&c.chair.token, &format!("/api/cases/{case}/letters")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array().unwrap().clone()
}

async fn put(c: &Clinic, code: &str, body: Value) -> (StatusCode, Value) {
    let path = format!("/api/practices/{code}");
    c.app.send(reqwest::Method::PUT, &c.coordinator.token, &path, Some(body)).await
}

async fn sign(c: &Clinic, case: &str) {
    let path = format!("/api/cases/{case}/outcome/sign");
    let body = json!({ "outside_meeting_reason": "Decided outside the meeting" });
    expect(StatusCode::OK, c.app.post(&c.chair.token, &path, body).await);
}

/// Every message the sink received: recipients, whole raw text, PDF attachments.
fn received(dir: &std::path::Path) -> Vec<(String, String, Vec<Vec<u8>>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "eml"));
    files.sort();
    files
        .iter()
        .map(|p| {
            let raw = std::fs::read(p).unwrap();
            let mail = mailparse::parse_mail(&raw).unwrap();
            use mailparse::MailHeaderMap;
            let to = mail
                .headers
                .get_first_value("X-Envelope-To")
                .or_else(|| mail.headers.get_first_value("To"))
                .unwrap_or_default();
            let mut text = String::new();
            let mut pdfs = Vec::new();
            fn walk(m: &mailparse::ParsedMail, text: &mut String, pdfs: &mut Vec<Vec<u8>>) {
                if m.subparts.is_empty() {
                    if m.ctype.mimetype == "application/pdf" {
                        pdfs.push(m.get_body_raw().unwrap());
                    } else {
                        text.push_str(&m.get_body().unwrap_or_default());
                    }
                }
                for s in &m.subparts {
                    walk(s, text, pdfs);
                }
            }
            walk(&mail, &mut text, &mut pdfs);
            (to, text, pdfs)
        })
        .collect()
}

async fn letters_are_made_delivered_and_printed(backend: Backend) {
    if !common::aiosmtpd_available() {
        return;
    }
    let port = common::free_port();
    let dir = tempfile::tempdir().unwrap();
    let _sink = common::start_sink(port, dir.path()).expect("the SMTP sink starts");
    let c = Clinic::open_with(backend, |s| common::mail_to_sink(s, port)).await;
    expect(
        StatusCode::OK,
        put(&c, "a81001", json!({"name": "Quay Surgery", "email": "gp.a81001@nhs.net"})).await,
    );
    let refused = put(&c, "A81002", json!({"name": "X", "email": "nope"})).await;
    assert_eq!(
        (refused.0, refused.1["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_email"))
    );
    let refused = put(&c, "bad", json!({"name": "X"})).await;
    assert_eq!(refused.1["code"], "invalid_ods_code");
    let (status, _) = c.app.get(&c.physio.token, "/api/practices").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let session = c.session(7, 4, false).await;
    let case = c.book_case(&c.physio, &session, referral(NHS)).await;
    expect(StatusCode::OK, c.put_outcome(&c.chair, &case, outcome()).await);
    sign(&c, &case).await;

    let first = letters(&c, &case).await;
    assert_eq!(first.len(), 2, "{first:?}");
    let gp = first.iter().find(|l| l["kind"] == "gp").unwrap();
    let patient = first.iter().find(|l| l["kind"] == "patient").unwrap();
    let gp_text = pdf_text(&c, &c.chair, gp["id"].as_str().unwrap()).await;
    let patient_text = pdf_text(&c, &c.physio, patient["id"].as_str().unwrap()).await;
    for text in [&gp_text, &patient_text] {
        for want in [
            "Hermione Quibble",
            "943 476 5919",
            "Graded exercise and taper codeine",
            "Review analgesia at six weeks",
        ] {
            assert!(text.contains(want), "{want} in {text}");
        }
    }
    for want in [
        "MRI (lower back), urgent: Whole spine",
        "Blood tests, routine",
        "Physiotherapy, routine",
        "Rheumatology, urgent",
        "Dr Sam Spine",
        "Inflammatory back pain?",
    ] {
        assert!(gp_text.contains(want), "{want} in {gp_text}");
    }
    for want in [
        "magnetic resonance imaging",
        "Blood tests",
        "physiotherapy team",
        "rheumatology team",
        "Who to contact",
    ] {
        assert!(patient_text.contains(want), "{want} in {patient_text}");
    }
    // Trainees never get letters.
    let res = c.get(&c.trainee, &format!("/api/letters/{}/pdf", gp["id"].as_str().unwrap())).await;
    assert!(matches!(res.status(), StatusCode::FORBIDDEN | StatusCode::NOT_FOUND));

    // The practice on nhs.net gets the GP letter attached; the referrer on example.org
    // gets no identifiers.
    let mails = common::eventually("the letters are sent", async || {
        let m = received(dir.path());
        (m.iter().any(|(to, _, p)| to.contains("gp.a81001@nhs.net") && !p.is_empty())
            && m.iter().any(|(to, _, _)| to.contains("physio@example.org")))
        .then_some(m)
    })
    .await;
    for (to, text, pdfs) in &mails {
        if to.contains("nhs.net") {
            assert!(to_text(&pdfs[0]).contains("943 476 5919"));
        } else {
            assert!(pdfs.is_empty(), "{to}");
        }
        assert!(
            !text.contains("Quibble") && !text.contains(NHS) && !text.contains("943 476"),
            "{text}"
        );
    }
    let sent = common::eventually("the email delivery is sent", async || {
        let l = letters(&c, &case).await;
        let gp = l.into_iter().find(|l| l["kind"] == "gp")?;
        gp["deliveries"]
            .as_array()?
            .iter()
            .any(|d| d["channel"] == "email" && d["status"] == "sent")
            .then_some(gp)
    })
    .await;
    assert!(sent["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["channel"] == "post" && d["status"] == "queued"));

    // The print-and-post list: both letters (the referrer's copies, the patient's).
    let (status, list) = c.app.get(&c.coordinator.token, "/api/letters/print").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    let (status, _) = c.app.get(&c.physio.token, "/api/letters/print").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let pid = patient["id"].as_str().unwrap();
    let (status, printed) =
        c.app.post(&c.coordinator.token, &format!("/api/letters/{pid}/printed"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{printed}");
    let d = printed["deliveries"].as_array().unwrap();
    assert!(d
        .iter()
        .filter(|d| d["channel"] == "post")
        .all(|d| d["status"] == "printed" && d["printed_by"] == c.coordinator.id.as_str()));
    let (status, again) =
        c.app.post(&c.coordinator.token, &format!("/api/letters/{pid}/printed"), json!({})).await;
    assert_eq!((status, again["code"].as_str()), (StatusCode::CONFLICT, Some("already_printed")));
    let (_, list) = c.app.get(&c.coordinator.token, "/api/letters/print").await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");

    // An amendment: new letters supersede the old, which stay readable.
    let mut amended = outcome();
    amended["investigations"] = json!([{ "kind": "ct", "urgency": "routine" }]);
    amended["reason"] = json!("CT rather than MRI: pacemaker");
    let path = format!("/api/cases/{case}/outcome/amendments");
    expect(StatusCode::CREATED, c.app.post(&c.chair.token, &path, amended).await);
    let all = letters(&c, &case).await;
    assert_eq!(all.len(), 4);
    for old in all.iter().filter(|l| l["version"] == 1) {
        let new = all.iter().find(|l| l["version"] == 2 && l["kind"] == old["kind"]).unwrap();
        assert_eq!(old["superseded_by"], new["id"]);
        assert!(new.get("superseded_by").is_none());
    }
    assert!(gp_text.contains("MRI"));
    let old_again = pdf_text(&c, &c.chair, gp["id"].as_str().unwrap()).await;
    assert_eq!(old_again, gp_text);
    let new_gp = all.iter().find(|l| l["version"] == 2 && l["kind"] == "gp").unwrap();
    let new_text = pdf_text(&c, &c.chair, new_gp["id"].as_str().unwrap()).await;
    assert!(new_text.contains("CT, routine") && new_text.contains("pacemaker"), "{new_text}");
}

async fn a_practice_without_a_secure_address_is_told_only_that_a_letter_waits(backend: Backend) {
    if !common::aiosmtpd_available() {
        return;
    }
    let port = common::free_port();
    let dir = tempfile::tempdir().unwrap();
    let _sink = common::start_sink(port, dir.path()).expect("the SMTP sink starts");
    let c = Clinic::open_with(backend, |s| common::mail_to_sink(s, port)).await;
    let path = "/api/practices/A81001";
    let body = json!({"name": "Quay Surgery", "email": "reception@quay.example.org"});
    expect(
        StatusCode::OK,
        c.app.send(reqwest::Method::PUT, &c.coordinator.token, path, Some(body)).await,
    );
    let session = c.session(7, 4, false).await;
    let case = c.book_case(&c.physio, &session, referral(NHS)).await;
    expect(StatusCode::OK, c.put_outcome(&c.chair, &case, outcome()).await);
    sign(&c, &case).await;
    let mails = common::eventually("the notice is sent", async || {
        let m = received(dir.path());
        m.iter().any(|(to, _, _)| to.contains("reception@quay.example.org")).then_some(m)
    })
    .await;
    for (_, text, pdfs) in &mails {
        assert!(pdfs.is_empty());
        assert!(
            !text.contains("Quibble") && !text.contains(NHS) && !text.contains("943 476"),
            "{text}"
        );
    }
    let all = letters(&c, &case).await;
    let gp = all.iter().find(|l| l["kind"] == "gp").unwrap();
    assert!(gp["deliveries"].as_array().unwrap().iter().all(|d| d["channel"] == "post"));
    let (_, list) = c.app.get(&c.coordinator.token, "/api/letters/print").await;
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
}

crate::on_both_backends!(
    letters_are_made_delivered_and_printed,
    a_practice_without_a_secure_address_is_told_only_that_a_letter_waits,
);
