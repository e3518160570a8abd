//! The shared image viewer over the live channel (issue 18): only the presenter (or the
//! chair) drives it, only images of the case under discussion open in it, followers get
//! each view as a `view_changed` event, changes faster than ten a second are merged with
//! the latest winning, late joiners find the view in their snapshot, and handing back
//! to screen share or moving to the next case closes it.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::live::{command, recv, send, until, Meeting, Ws};
use crate::on_both_backends;

async fn attach(m: &Meeting, case: &str, name: &str, mime: &str, bytes: Vec<u8>) -> String {
    let part =
        reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()).mime_str(mime).unwrap();
    let res = m
        .app
        .http
        .post(m.app.url(&format!("/api/cases/{case}/attachments")))
        .bearer_auth(&m.physio)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string()
}

fn ct() -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/dicom/CT_small.dcm", env!("CARGO_MANIFEST_DIR")))
        .unwrap()
}

/// The next `view_changed` event's view.
async fn next_view(ws: &mut Ws) -> Value {
    until(ws, "view_changed").await["event"].clone()
}

fn view(attachment: &str, frame: u32, zoom: f64) -> Value {
    json!({ "kind": "view", "attachment_id": attachment, "frame": frame, "zoom": zoom,
            "pan": [0.4, 0.6], "wc": 40, "ww": 400 })
}

async fn the_presenter_drives_the_shared_viewer(backend: crate::common::Backend) {
    let m = Meeting::open(backend, true).await;
    let scan = attach(&m, &m.cases[0], "CT_small.dcm", "application/dicom", ct()).await;
    let letter =
        attach(&m, &m.cases[0], "letter.pdf", "application/pdf", b"%PDF-1.4\n".to_vec()).await;
    let elsewhere = attach(&m, &m.cases[1], "CT_small.dcm", "application/dicom", ct()).await;
    let mut chair = m.join(&m.chair).await;
    until(&mut chair, "snapshot").await;
    let mut physio = m.join(&m.physio).await;
    until(&mut physio, "snapshot").await;
    let mut colleague = m.join(&m.colleague).await;
    until(&mut colleague, "snapshot").await;
    let mut trainee = m.join(&m.trainee).await;
    until(&mut trainee, "snapshot").await;
    command(&mut chair, "open", json!({ "kind": "open_meeting" })).await;
    let refused = command(&mut physio, "early", view(&scan, 0, 1.0)).await;
    assert_eq!(refused["code"], "forbidden", "not the presenter yet: {refused}");
    command(&mut physio, "ask", json!({ "kind": "request_present" })).await;
    let grant = json!({ "kind": "grant_present", "user_id": m.physio_id });
    assert_eq!(command(&mut chair, "grant", grant).await["type"], "ack");
    let none = command(&mut physio, "none", view(&scan, 0, 1.0)).await;
    assert_eq!(none["code"], "no_current_case", "{none}");
    command(&mut chair, "next", json!({ "kind": "next_case" })).await;

    // Only the presenter (or the chair) drives; only images of the current case open.
    for (who, cmd, code) in [
        ("colleague", view(&scan, 0, 1.0), "forbidden"),
        ("trainee", view(&scan, 0, 1.0), "forbidden"),
        ("physio", view(&elsewhere, 0, 1.0), "unknown_attachment"),
        ("physio", view(&letter, 0, 1.0), "not_an_image"),
        ("physio", view(&scan, 0, 99.0), "invalid_view"),
        ("physio", json!({ "kind": "view", "attachment_id": scan, "wc": 40 }), "invalid_view"),
    ] {
        let ws = match who {
            "colleague" => &mut colleague,
            "trainee" => &mut trainee,
            _ => &mut physio,
        };
        let answer = command(ws, &format!("bad-{code}-{}", rand_id()), cmd).await;
        assert_eq!(answer["code"], code, "{answer}");
    }

    // One view reaches every follower, trainees included (their viewer shows no image:
    // they may not fetch it), as the same fields.
    let ack = command(&mut physio, "v-first", view(&scan, 0, 2.0)).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    for ws in [&mut chair, &mut colleague, &mut trainee] {
        let got = next_view(ws).await;
        assert_eq!(
            (&got["attachment_id"], &got["frame"], &got["zoom"], &got["pan"], &got["ww"]),
            (&json!(scan), &json!(0), &json!(2.0), &json!([0.4, 0.6]), &json!(400.0))
        );
    }

    // A burst far faster than ten a second: every command is answered (applied, or
    // superseded by a later one), followers see at most about ten changes a second,
    // and the last view sent is the one everyone ends on.
    let burst = 30;
    let started = Instant::now();
    for i in 0..burst {
        send(&mut physio, &format!("burst-{i}"), view(&scan, 0, 1.0 + f64::from(i) / 10.0)).await;
    }
    let (mut applied, mut superseded) = (0, 0);
    while applied + superseded < burst {
        let m = recv(&mut physio).await;
        match (m["type"].as_str(), m["code"].as_str()) {
            (Some("ack"), _) => applied += 1,
            (Some("error"), Some("view_superseded")) => superseded += 1,
            (Some("error"), _) => panic!("refused: {m}"),
            _ => {}
        }
    }
    let elapsed = started.elapsed();
    let last_zoom = 1.0 + f64::from(burst - 1) / 10.0;
    let mut seen = 0;
    loop {
        let got = next_view(&mut colleague).await;
        seen += 1;
        if got["zoom"] == json!(last_zoom) {
            break;
        }
    }
    let allowed = (elapsed.as_millis() / 100) as usize + 2;
    assert!(seen <= allowed, "{seen} view changes in {elapsed:?}");
    assert!(applied >= 1 && superseded >= 1, "{applied} applied, {superseded} superseded");
    while next_view(&mut chair).await["zoom"] != json!(last_zoom) {}

    // A late joiner lands on the current view.
    let mut late = m.join(&m.colleague).await;
    let snapshot = until(&mut late, "snapshot").await;
    assert_eq!(snapshot["view"]["attachment_id"], json!(scan));
    assert_eq!(snapshot["view"]["zoom"], json!(last_zoom));

    // The presenter hands back to screen share: the viewer closes for everyone.
    tokio::time::sleep(Duration::from_millis(120)).await;
    let ack = command(&mut physio, "back", json!({ "kind": "view", "attachment_id": null })).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(next_view(&mut late).await["attachment_id"], Value::Null);
    let mut again = m.join(&m.chair).await;
    assert_eq!(until(&mut again, "snapshot").await["view"], Value::Null);

    // The next case closes the viewer too.
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(command(&mut chair, "v-chair", view(&scan, 0, 3.0)).await["type"], "ack");
    command(&mut chair, "next2", json!({ "kind": "next_case" })).await;
    let mut after = m.join(&m.colleague).await;
    assert_eq!(until(&mut after, "snapshot").await["view"], Value::Null);
}

fn rand_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

on_both_backends!(the_presenter_drives_the_shared_viewer);
