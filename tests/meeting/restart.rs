//! A live meeting survives `kill -9`: the real binary is killed mid-meeting and started
//! again on the same database; every acknowledged event is there, `seq` continues without
//! a gap or a repeat, and clients resume.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::live::{command, connect, recv, until, Ws, NHS, PASSWORD};
use crate::common::{Backend, TestDb};
use crate::on_both_backends;

/// The server binary, run as an operator would.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn binary(db: &TestDb) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mdt-coordinator"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    for (k, _) in std::env::vars() {
        if k.starts_with("MDT__") {
            cmd.env_remove(k);
        }
    }
    cmd.env("MDT__LOG__FILTER", "warn")
        .env("MDT__DATABASE__URL", &db.url)
        .env("MDT__DATA__DIR", db.dir.path().join("data"))
        .env("MDT__HTTP__PORT", "0")
        .env("MDT__AUTH__JWT_SECRET", crate::common::JWT_SECRET)
        .env("MDT__AUTH__COOKIE_SECURE", "false")
        // Its session starts days ahead and is opened at once (see TestDb::settings).
        .env("MDT__LIVE__OPEN_EARLY_MINUTES", "172800");
    cmd
}

fn start(db: &TestDb) -> Server {
    let mut child =
        binary(db).arg("serve").stdout(Stdio::piped()).spawn().expect("start the server");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("the server says where it listens");
    let base =
        line.trim().rsplit(' ').next().expect("an address").trim_end_matches('/').to_string();
    assert!(base.starts_with("http://"), "{line}");
    Server { child, base }
}

async fn post(http: &reqwest::Client, url: String, token: &str, body: Value) -> Value {
    let res = http.post(url).bearer_auth(token).json(&body).send().await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    res.json().await.unwrap_or(Value::Null)
}

async fn login(http: &reqwest::Client, base: &str, email: &str) -> String {
    let res = http
        .post(format!("{base}/api/auth/login"))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let v: Value = res.json().await.unwrap();
    v["access_token"].as_str().unwrap().to_string()
}

async fn join(
    http: &reqwest::Client, base: &str, token: &str, session: &str, last: Option<u64>,
) -> Ws {
    let t =
        post(http, format!("{base}/api/sessions/{session}/live-ticket"), token, json!({})).await;
    let resume = last.map(|s| format!("&last_seq={s}")).unwrap_or_default();
    let url = format!(
        "{}/api/sessions/{session}/live?ticket={}{resume}",
        base.replace("http://", "ws://"),
        t["ticket"].as_str().unwrap()
    );
    connect(&url, base).await.expect("live channel opens")
}

async fn a_killed_server_restarts_with_every_acknowledged_event(backend: Backend) {
    let db = TestDb::new(backend).await.expect("backend available");
    let mut add = binary(&db)
        .args(["user", "add", "--email", "coord@example.org", "--name", "Clinic Coordinator"])
        .args(["--role", "coordinator", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    add.stdin.take().unwrap().write_all(PASSWORD.as_bytes()).unwrap();
    assert!(add.wait().unwrap().success());

    let http = reqwest::Client::new();
    let server = start(&db);
    let base = server.base.clone();
    let coord = login(&http, &base, "coord@example.org").await;
    let user = |email: &str, role: &str| {
        json!({ "email": email, "name": "Test Person", "role": role,
                "specialties": ["rheumatology"], "password": PASSWORD })
    };
    let chair =
        post(&http, format!("{base}/api/users"), &coord, user("chair@example.org", "consultant"))
            .await;
    post(&http, format!("{base}/api/users"), &coord, user("physio@example.org", "practitioner"))
        .await;
    let chair_token = login(&http, &base, "chair@example.org").await;
    let physio_token = login(&http, &base, "physio@example.org").await;
    let starts = (chrono::Utc::now() + chrono::Duration::days(3)).to_rfc3339();
    let session = post(
        &http,
        format!("{base}/api/sessions"),
        &coord,
        json!({ "specialty": "rheumatology", "starts_at": starts, "duration_minutes": 60,
                "case_capacity": 4, "chair_id": chair["id"], "booking_cutoff_hours": 24 }),
    )
    .await;
    let session = session["id"].as_str().unwrap().to_string();
    for nhs in NHS {
        let case = post(
            &http,
            format!("{base}/api/sessions/{session}/cases"),
            &physio_token,
            super::live::booking(nhs),
        )
        .await;
        let triage = format!("{base}/api/cases/{}/triage", case["id"].as_str().unwrap());
        post(&http, triage, &coord, json!({ "decision": "accept" })).await;
    }

    let mut chair_ws = join(&http, &base, &chair_token, &session, None).await;
    until(&mut chair_ws, "snapshot").await;
    let mut physio_ws = join(&http, &base, &physio_token, &session, None).await;
    let mut physio_seen = until(&mut physio_ws, "snapshot").await["seq"].as_u64().unwrap();
    let mut acked = Vec::new();
    for (id, cmd) in [
        ("o", json!({ "kind": "open_meeting" })),
        ("n1", json!({ "kind": "next_case" })),
        ("n2", json!({ "kind": "next_case" })),
    ] {
        let ack = command(&mut chair_ws, id, cmd).await;
        assert_eq!(ack["type"], "ack", "{ack}");
        acked.push(ack["seq"].as_u64().unwrap());
    }
    // Outcomes during the meeting: the first case signed, the second drafted. Each shows
    // in the meeting as an event.
    let outcome = json!({
        "investigations": [{ "kind": "mri", "site": "hands", "urgency": "routine" }],
        "referrals": [{ "destination": "rheumatology", "urgency": "routine", "reason": "Start DMARDs" }],
        "management_plan": { "text": "Methotrexate; review bloods at six weeks.", "items": [] },
        "follow_up": { "kind": "none" },
    });
    let snap_cases: Vec<String> = {
        let mut probe = join(&http, &base, &chair_token, &session, None).await;
        let snap = until(&mut probe, "snapshot").await;
        snap["agenda"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect()
    };
    let put = |case: &str| {
        http.put(format!("{base}/api/cases/{case}/outcome"))
            .bearer_auth(&chair_token)
            .json(&outcome)
            .send()
    };
    assert_eq!(put(&snap_cases[0]).await.unwrap().status(), StatusCode::OK);
    let drafted = until(&mut chair_ws, "outcome_drafted").await;
    assert_eq!(drafted["event"]["summary"]["investigations"][0]["kind"], "mri");
    assert!(!drafted.to_string().contains("Methotrexate"), "no free text in events");
    post(
        &http,
        format!("{base}/api/cases/{}/outcome/sign", snap_cases[0]),
        &chair_token,
        json!({}),
    )
    .await;
    let signed = until(&mut chair_ws, "outcome_signed").await;
    acked.push(signed["seq"].as_u64().unwrap());
    assert_eq!(put(&snap_cases[1]).await.unwrap().status(), StatusCode::OK);
    let drafted = until(&mut chair_ws, "outcome_drafted").await;
    acked.push(drafted["seq"].as_u64().unwrap());
    let last_acked = *acked.last().unwrap();
    while physio_seen < last_acked {
        let m = recv(&mut physio_ws).await;
        if m["type"] == "event" {
            physio_seen = m["seq"].as_u64().unwrap();
        }
    }

    // kill -9, then start again on the same database.
    drop(server);
    drop(chair_ws);
    drop(physio_ws);
    let server = start(&db);
    let base = server.base.clone();

    // The physio resumes from what they had and catches up in order.
    let mut physio_ws = join(&http, &base, &physio_token, &session, Some(physio_seen)).await;
    let mut chair_ws = join(&http, &base, &chair_token, &session, None).await;
    let snap = until(&mut chair_ws, "snapshot").await;
    assert_eq!(snap["session"]["state"], "live");
    let states: Vec<&str> =
        snap["agenda"].as_array().unwrap().iter().map(|c| c["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["outcome_signed", "in_discussion", "booked"]);
    let stored: Value = http
        .get(format!("{base}/api/cases/{}/outcome", snap_cases[0]))
        .bearer_auth(&chair_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(stored["current"]["signed_at"].is_string(), "{stored}");
    let draft: Value = http
        .get(format!("{base}/api/cases/{}/outcome", snap_cases[1]))
        .bearer_auth(&chair_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(draft["current"]["signed_at"].is_null(), "{draft}");
    // A repeated command from before the crash is answered from history, not re-applied.
    let again = command(&mut chair_ws, "n2", json!({ "kind": "next_case" })).await;
    assert_eq!(again["seq"].as_u64().unwrap(), acked[2], "n2's own seq");
    let next = command(&mut chair_ws, "n3", json!({ "kind": "next_case" })).await;
    let next_seq = next["seq"].as_u64().unwrap();
    assert!(next_seq > last_acked);
    let mut expected = physio_seen + 1;
    while expected <= next_seq {
        let m = recv(&mut physio_ws).await;
        if m["type"] == "event" {
            assert_eq!(m["seq"].as_u64().unwrap(), expected, "in order, no gap: {m}");
            expected += 1;
        }
    }

    // The events table holds 1..=N with no gap or repeat, and every acknowledged event.
    let store = mdt_coordinator::store::connect(&mdt_coordinator::store::settings_for(&db.url))
        .await
        .unwrap();
    let id = session.parse().unwrap();
    let events = store.live_events(id, 0, u64::MAX).await.unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    for seq in acked {
        assert!(seqs.contains(&seq));
    }
    assert_eq!(events[acked_index(&events, "o")].body.kind(), "meeting_opened");
    drop(server);
}

fn acked_index(events: &[mdt_coordinator::domain::live::LiveEvent], id: &str) -> usize {
    events
        .iter()
        .position(|e| e.command_id.as_deref() == Some(id))
        .expect("the command's event is stored")
}

on_both_backends!(a_killed_server_restarts_with_every_acknowledged_event);
