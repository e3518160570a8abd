//! The live channel against the real server: tickets and the Origin check, the chair's
//! commands as consecutive events, refusals, repeated command ids, resuming after a
//! disconnect, trainees' de-identified view, presence and attendance, deferral, and two
//! instances on one PostgreSQL database.

use std::time::Duration;

use chrono::Utc;
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::Connection;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use mdt_coordinator::domain::Role;

use crate::common::{eventually, Backend, TestApp};
use crate::on_both_backends;

pub use crate::common::PASSWORD;

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// An account created directly and signed in over HTTP: (token, id).
pub async fn account(app: &TestApp, email: &str, role: Role, specialty: &str) -> (String, String) {
    crate::common::sign_up(app, email, "Test Person", role, specialty).await
}

/// A rheumatology meeting: chair, a second consultant, a physio with three cases booked
/// into the first of two weekly sessions, a trainee and a coordinator.
pub struct Meeting {
    pub app: TestApp,
    pub coordinator: String,
    pub chair: String,
    pub chair_id: String,
    pub colleague: String,
    pub physio: String,
    pub physio_id: String,
    pub trainee: String,
    pub session: String,
    pub next_session: String,
    pub cases: Vec<String>,
}

pub const NHS: [&str; 3] = ["9912003888", "9449305552", "9434765919"];

pub fn booking(nhs: &str) -> Value {
    json!({
        "patient": { "nhs_number": nhs, "given_name": "Hermione", "family_name": "Quibble",
                     "date_of_birth": "1978-05-17", "sex": "female", "gp_practice_code": "A81001" },
        "clinical_question": "Inflammatory pattern on bloods: start DMARDs?",
        "history": "Twelve weeks of hand pain and morning stiffness.",
        "urgency": "routine", "body_site": "hands", "red_flags": [],
        "free_text_identifies_patient": true, "patient_agrees": true,
        "referral_received_on": "2026-11-02", "referral_source": "gp",
    })
}

/// Has `coordinator` accept the booking `case` onto its agenda.
pub async fn accept(app: &TestApp, coordinator: &str, case: &str) {
    let res = app
        .http
        .post(app.url(&format!("/api/cases/{case}/triage")))
        .bearer_auth(coordinator)
        .json(&json!({ "decision": "accept" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

impl Meeting {
    pub async fn open(backend: Backend, teaching: bool) -> Self {
        Self::open_with(backend, teaching, |_| {}).await
    }

    pub async fn open_with(
        backend: Backend, teaching: bool,
        tweak: impl FnOnce(&mut mdt_coordinator::config::Settings),
    ) -> Self {
        let app = TestApp::spawn_with(backend, tweak).await.expect("backend available");
        Self::on(app, teaching).await
    }

    pub async fn on(app: TestApp, teaching: bool) -> Self {
        let (coordinator, _) =
            account(&app, "coord@example.org", Role::Coordinator, "rheumatology").await;
        let (chair, chair_id) =
            account(&app, "chair@example.org", Role::Consultant, "rheumatology").await;
        let (colleague, _) =
            account(&app, "second@example.org", Role::Consultant, "rheumatology").await;
        let (physio, physio_id) =
            account(&app, "physio@example.org", Role::Practitioner, "rheumatology").await;
        let (trainee, _) =
            account(&app, "trainee@example.org", Role::Trainee, "rheumatology").await;
        let first_date = (Utc::now() + chrono::Duration::days(7)).date_naive();
        let res = app
            .http
            .post(app.url("/api/series"))
            .bearer_auth(&coordinator)
            .json(&json!({
                "specialty": "rheumatology", "first_date": first_date.to_string(), "local_time": "12:30",
                "weeks": 2, "duration_minutes": 90, "case_capacity": 6, "chair_id": chair_id,
                "booking_cutoff_hours": 24, "teaching": teaching,
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let series: Value = res.json().await.unwrap();
        let session = series["sessions"][0]["id"].as_str().unwrap().to_string();
        let next_session = series["sessions"][1]["id"].as_str().unwrap().to_string();
        let mut cases = Vec::new();
        for nhs in NHS {
            let res = app
                .http
                .post(app.url(&format!("/api/sessions/{session}/cases")))
                .bearer_auth(&physio)
                .json(&booking(nhs))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::CREATED);
            let case: Value = res.json().await.unwrap();
            let id = case["id"].as_str().unwrap().to_string();
            accept(&app, &coordinator, &id).await;
            cases.push(id);
        }
        Self {
            app,
            coordinator,
            chair,
            chair_id,
            colleague,
            physio,
            physio_id,
            trainee,
            session,
            next_session,
            cases,
        }
    }

    pub async fn ticket(&self, token: &str, session: &str) -> reqwest::Response {
        self.app
            .http
            .post(self.app.url(&format!("/api/sessions/{session}/live-ticket")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn join(&self, token: &str) -> Ws {
        self.join_at(&self.app.base, token, None).await
    }

    /// Joins through the server at `base` (another instance), optionally resuming.
    pub async fn join_at(&self, base: &str, token: &str, last_seq: Option<u64>) -> Ws {
        let url = self.live_url(base, token, last_seq).await;
        connect(&url, base).await.expect("live channel opens")
    }

    /// The live channel's address on the server at `base`, with a fresh ticket.
    async fn live_url(&self, base: &str, token: &str, last_seq: Option<u64>) -> String {
        let res = self
            .app
            .http
            .post(format!("{base}/api/sessions/{}/live-ticket", self.session))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let ticket: Value = res.json().await.unwrap();
        let ticket = ticket["ticket"].as_str().unwrap();
        let resume = last_seq.map(|s| format!("&last_seq={s}")).unwrap_or_default();
        format!(
            "{}/api/sessions/{}/live?ticket={ticket}{resume}",
            base.replace("http://", "ws://"),
            self.session
        )
    }

    /// The live channel over a socket with a tiny receive window, so that what the client
    /// does not read backs up on the server at once rather than in the kernel.
    pub async fn join_with_small_window(&self, token: &str) -> Ws {
        let url = self.live_url(&self.app.base, token, None).await;
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert("Origin", self.app.base.parse().unwrap());
        let addr = self.app.base.trim_start_matches("http://").parse().unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(2048).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        let (ws, _) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream))
            .await
            .expect("live channel opens");
        ws
    }
}

/// Opens a WebSocket with the given `Origin`; the HTTP status on refusal.
pub async fn connect(url: &str, origin: &str) -> Result<Ws, StatusCode> {
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert("Origin", origin.parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            Err(StatusCode::from_u16(res.status().as_u16()).unwrap())
        }
        Err(e) => panic!("websocket error: {e}"),
    }
}

/// The next JSON message, skipping control frames.
pub async fn recv(ws: &mut Ws) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("a message within 10 s")
            .expect("socket open")
            .expect("frame");
        if let Message::Text(text) = msg {
            return serde_json::from_str(text.as_str()).unwrap();
        }
    }
}

/// Reads until a message of `kind` (`snapshot`, `ack`, `error`, or an event kind).
pub async fn until(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let m = recv(ws).await;
        if m["type"] == kind || m["event"]["kind"] == kind {
            return m;
        }
    }
}

/// Whether nothing arrives for a short while.
pub async fn quiet(ws: &mut Ws) -> bool {
    loop {
        match tokio::time::timeout(Duration::from_millis(400), ws.next()).await {
            Err(_) => return true,
            Ok(Some(Ok(Message::Text(t)))) => {
                eprintln!("unexpected: {t}");
                return false;
            }
            Ok(Some(Ok(_))) => continue,
            Ok(_) => return false,
        }
    }
}

pub async fn send(ws: &mut Ws, id: &str, command: Value) {
    let msg = json!({ "type": "command", "id": id, "command": command });
    ws.send(Message::text(msg.to_string())).await.unwrap();
}

/// Sends a command and returns its answer (`ack` or `error`), skipping events.
pub async fn command(ws: &mut Ws, id: &str, command: Value) -> Value {
    send(ws, id, command).await;
    loop {
        let m = recv(ws).await;
        if std::env::var_os("LIVE_DEBUG").is_some() {
            eprintln!("{id}: {m}");
        }
        if (m["type"] == "ack" || m["type"] == "error") && m["id"] == id {
            return m;
        }
    }
}

async fn the_chair_drives_and_everyone_follows(backend: Backend) {
    let m = Meeting::open(backend, false).await;
    let mut chair = m.join(&m.chair).await;
    let snap = until(&mut chair, "snapshot").await;
    assert_eq!(snap["agenda"].as_array().unwrap().len(), 3);
    assert_eq!(snap["you"]["chair"], true);
    assert_eq!(snap["session"]["state"], "scheduled");
    let mut physio = m.join(&m.physio).await;
    let snap = until(&mut physio, "snapshot").await;
    assert_eq!(snap["you"]["chair"], false);
    // The newcomer's own snapshot already shows them; the others hear of them.
    assert_eq!(snap["participants"].as_array().unwrap().len(), 2);
    until(&mut chair, "participant_joined").await;
    let mut colleague = m.join(&m.colleague).await;
    until(&mut colleague, "snapshot").await;
    until(&mut physio, "participant_joined").await;

    let opened = command(&mut chair, "o1", json!({ "kind": "open_meeting" })).await;
    assert_eq!(opened["type"], "ack", "{opened}");
    until(&mut physio, "meeting_opened").await;

    // A practitioner may not drive the agenda; nothing changes.
    let refused = command(&mut physio, "p1", json!({ "kind": "next_case" })).await;
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["code"], "forbidden");

    let start = json!({ "kind": "start_case", "case_id": m.cases[0] });
    let started = command(&mut chair, "c1", start.clone()).await;
    let s = started["seq"].as_u64().unwrap();
    let next = command(&mut chair, "c2", json!({ "kind": "next_case" })).await;
    assert_eq!(next["seq"].as_u64().unwrap(), s + 2, "completed + started");

    // Both other clients saw the same consecutive events.
    for ws in [&mut colleague, &mut physio] {
        let mut seen = Vec::new();
        while seen.len() < 3 {
            let msg = recv(ws).await;
            if msg["type"] == "event" && msg["seq"].as_u64().unwrap() >= s {
                seen.push((
                    msg["seq"].as_u64().unwrap(),
                    msg["event"]["kind"].as_str().unwrap().to_string(),
                ));
            }
        }
        assert_eq!(
            seen,
            vec![
                (s, "case_started".into()),
                (s + 1, "case_completed".into()),
                (s + 2, "case_started".into()),
            ]
        );
    }
    assert!(quiet(&mut physio).await);

    // A repeated command id is answered with its original seq and not applied again.
    let again = command(&mut chair, "c2", json!({ "kind": "next_case" })).await;
    assert_eq!(again["type"], "ack");
    assert_eq!(again["seq"].as_u64().unwrap(), s + 2);
    assert!(quiet(&mut physio).await, "no new event for a repeated id");
    let repeated_refusal = command(&mut physio, "p1", json!({ "kind": "next_case" })).await;
    assert_eq!(repeated_refusal["code"], "forbidden");

    // A stale expected_seq is refused with the current state.
    let stale = json!({ "type": "command", "id": "c3", "expected_seq": 1, "command": { "kind": "next_case" } });
    chair.send(Message::text(stale.to_string())).await.unwrap();
    let err = until(&mut chair, "error").await;
    assert_eq!(err["code"], "stale_seq");
    let snap = until(&mut chair, "snapshot").await;
    assert_eq!(snap["seq"].as_u64().unwrap(), s + 2);
    assert_eq!(snap["current_case"], m.cases[1].as_str());
    // With when its discussion started, for the meeting room's timer.
    let since = snap["current_case_since"].as_str().expect("when the current case started");
    let since = chrono::DateTime::parse_from_rfc3339(since).unwrap();
    let age = chrono::Utc::now() - since.with_timezone(&chrono::Utc);
    assert!(age.num_seconds() >= 0 && age.num_seconds() < 60, "{since}");

    // The case states are stored: the agenda over REST agrees.
    let agenda: Value = m
        .app
        .http
        .get(m.app.url(&format!("/api/sessions/{}", m.session)))
        .bearer_auth(&m.chair)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let states: Vec<&str> =
        agenda["agenda"].as_array().unwrap().iter().map(|c| c["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["discussed", "in_discussion", "booked"]);
    assert_eq!(agenda["session"]["state"], "live");

    // Hands: raise own; lowering someone else's is the chair's.
    let raised = command(&mut physio, "h1", json!({ "kind": "raise_hand" })).await;
    assert_eq!(raised["type"], "ack");
    let chair_id: Value = m.chair_id.clone().into();
    let not_yours =
        command(&mut physio, "h2", json!({ "kind": "lower_hand", "user_id": chair_id })).await;
    assert_eq!(not_yours["code"], "forbidden");
    let lowered =
        command(&mut chair, "h3", json!({ "kind": "lower_hand", "user_id": m.physio_id })).await;
    assert_eq!(lowered["type"], "ack");
    let bad = json!({ "type": "command", "id": "x", "command": { "kind": "teleport" } });
    physio.send(Message::text(bad.to_string())).await.unwrap();
    let err = until(&mut physio, "error").await;
    assert_eq!(err["code"], "invalid_message");
    assert_eq!(err["id"], "x");
}

/// A change to the agenda made outside the meeting (here a reorder over REST, then a
/// withdrawal) has no event of its own: everyone connected gets the new agenda as a
/// snapshot at once.
async fn agenda_changes_made_outside_the_meeting_reach_everyone(backend: Backend) {
    let m = Meeting::open(backend, false).await;
    let mut chair = m.join(&m.chair).await;
    until(&mut chair, "snapshot").await;
    let mut physio = m.join(&m.physio).await;
    until(&mut physio, "snapshot").await;
    let order = [&m.cases[1], &m.cases[2], &m.cases[0]];
    let res = m
        .app
        .http
        .put(m.app.url(&format!("/api/sessions/{}/agenda", m.session)))
        .bearer_auth(&m.coordinator)
        .json(&json!({ "case_ids": order }))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let ids = |snap: &Value| -> Vec<String> {
        snap["agenda"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect()
    };
    for ws in [&mut chair, &mut physio] {
        let snap = until(ws, "snapshot").await;
        assert_eq!(ids(&snap), order.map(|s| s.clone()));
    }
    let res = m
        .app
        .http
        .delete(m.app.url(&format!("/api/cases/{}", m.cases[2])))
        .bearer_auth(&m.physio)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let snap = until(&mut chair, "snapshot").await;
    assert_eq!(ids(&snap), [m.cases[1].clone(), m.cases[0].clone()]);
    until(&mut physio, "snapshot").await;

    // A reorder inside the meeting is its event alone: no snapshot follows it (each
    // snapshot is an audited read of every case for every participant).
    let open = command(&mut chair, "o1", json!({ "kind": "open_meeting" })).await;
    assert_eq!(open["type"], "ack", "{open}");
    assert_eq!(until(&mut physio, "event").await["event"]["kind"], "meeting_opened");
    let ack = command(
        &mut chair,
        "r1",
        json!({ "kind": "reorder", "case_ids": [m.cases[0], m.cases[1]] }),
    )
    .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let event = until(&mut physio, "event").await;
    assert_eq!(event["event"]["kind"], "agenda_reordered");
    assert!(quiet(&mut physio).await, "no snapshot after the meeting's own reorder");
}

async fn a_client_that_misses_events_resumes_with_exactly_those(backend: Backend) {
    let m = Meeting::open(backend, false).await;
    let mut chair = m.join(&m.chair).await;
    until(&mut chair, "snapshot").await;
    assert_eq!(command(&mut chair, "o", json!({ "kind": "open_meeting" })).await["type"], "ack");
    // The physio has the meeting open twice, so dropping one connection leaves them
    // present (no leave event of their own in between).
    let mut keep = m.join(&m.physio).await;
    until(&mut keep, "snapshot").await;
    let mut dropped = m.join(&m.physio).await;
    let last_seq = until(&mut dropped, "snapshot").await["seq"].as_u64().unwrap();
    drop(dropped);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let order: Vec<&String> = [&m.cases[2], &m.cases[0], &m.cases[1]].into();
    command(&mut chair, "r", json!({ "kind": "reorder", "case_ids": order })).await;
    command(&mut chair, "s", json!({ "kind": "start_case", "case_id": m.cases[2] })).await;
    let last =
        command(&mut chair, "d", json!({ "kind": "defer_case", "case_id": m.cases[2] })).await;
    assert_eq!(last["seq"].as_u64().unwrap(), last_seq + 3);

    let mut back = m.join_at(&m.app.base, &m.physio, Some(last_seq)).await;
    let mut kinds = Vec::new();
    for expected in last_seq + 1..=last_seq + 3 {
        let msg = recv(&mut back).await;
        assert_eq!(msg["type"], "event", "no snapshot when resuming: {msg}");
        assert_eq!(msg["seq"].as_u64().unwrap(), expected);
        kinds.push(msg["event"]["kind"].as_str().unwrap().to_string());
    }
    assert_eq!(kinds, ["agenda_reordered", "case_started", "case_deferred"]);
    assert!(quiet(&mut back).await, "exactly the missed events");

    // The deferred case went to the next session of the series.
    let moved: Value = m
        .app
        .http
        .get(m.app.url(&format!("/api/sessions/{}", m.next_session)))
        .bearer_auth(&m.chair)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(moved["agenda"].as_array().unwrap().len(), 1);

    // In-band resume on a fresh connection replays the same events after its snapshot.
    let mut other = m.join(&m.physio).await;
    until(&mut other, "snapshot").await;
    other
        .send(Message::text(json!({ "type": "resume", "last_seq": last_seq }).to_string()))
        .await
        .unwrap();
    let first = recv(&mut other).await;
    assert_eq!(first["seq"].as_u64().unwrap(), last_seq + 1);

    // Too far behind: a snapshot instead.
    let mut far = m.join_at(&m.app.base, &m.physio, Some(0)).await;
    let msg = recv(&mut far).await;
    assert!(msg["type"] == "event" || msg["type"] == "snapshot");
    let _ = keep.close(None).await;
}

/// A client that stops reading fills its bounded queue: the room stops queueing for it
/// rather than wait, and once it reads again it gets what was queued, then a fresh
/// snapshot, then the events that follow, in order. Everyone else hears every event in
/// order meanwhile, and the chair is never held up.
async fn a_client_that_stops_reading_catches_up_from_a_snapshot(backend: Backend) {
    const COMMANDS: usize = 1000;
    let m = Meeting::open_with(backend, false, |s| s.live.queue_capacity = 32).await;
    let mut chair = m.join(&m.chair).await;
    until(&mut chair, "snapshot").await;
    assert_eq!(command(&mut chair, "o", json!({ "kind": "open_meeting" })).await["type"], "ack");
    let mut steady = m.join(&m.colleague).await;
    let from = until(&mut steady, "snapshot").await["seq"].as_u64().unwrap();
    let mut slow = m.join_with_small_window(&m.physio).await;
    let slow_from = until(&mut slow, "snapshot").await["seq"].as_u64().unwrap();
    // The steady reader reads throughout, counting on by exactly one.
    let (last_tx, mut last_rx) = tokio::sync::watch::channel(0u64);
    let steady_reader = tokio::spawn(async move {
        let mut seq = from;
        loop {
            let msg = recv(&mut steady).await;
            if msg["type"] == "event" {
                assert_eq!(msg["seq"].as_u64().unwrap(), seq + 1, "the steady reader missed one");
                seq += 1;
                let _ = last_tx.send(seq);
            } else {
                assert_ne!(msg["type"], "snapshot", "the steady reader never lags: {msg}");
            }
        }
    });

    // The chair sends its commands back to back, reading its own acks meanwhile.
    let (mut to_room, mut from_room) = chair.split();
    let acks = tokio::spawn(async move {
        let mut last = 0;
        for _ in 0..COMMANDS {
            loop {
                let msg = tokio::time::timeout(Duration::from_secs(20), from_room.next())
                    .await
                    .expect("the chair hears its acks")
                    .unwrap()
                    .unwrap();
                let Message::Text(text) = msg else { continue };
                let msg: Value = serde_json::from_str(text.as_str()).unwrap();
                assert_ne!(msg["type"], "error", "{msg}");
                if msg["type"] == "ack" {
                    last = msg["seq"].as_u64().unwrap();
                    break;
                }
            }
        }
        (last, from_room)
    });
    for k in 0..COMMANDS {
        let order: Vec<&String> = m.cases.iter().cycle().skip(k % 3).take(3).collect();
        let command = json!({ "kind": "reorder", "case_ids": order });
        let msg = json!({ "type": "command", "id": format!("r{k}"), "command": command });
        to_room.send(Message::text(msg.to_string())).await.unwrap();
    }
    let (last, from_room) = acks.await.unwrap();
    let mut chair = to_room.reunite(from_room).unwrap();
    tokio::time::timeout(Duration::from_secs(20), last_rx.wait_for(|seq| *seq == last))
        .await
        .expect("the steady reader heard every event")
        .unwrap();
    steady_reader.abort();

    // Now the slow client reads: the backlog in order, a snapshot, then in order again.
    let mut seq = slow_from;
    let mut snapshots = 0;
    while seq < last {
        let msg = recv(&mut slow).await;
        match msg["type"].as_str() {
            Some("event") => {
                assert_eq!(msg["seq"].as_u64().unwrap(), seq + 1, "a gap with no snapshot");
                seq += 1;
            }
            Some("snapshot") => {
                let at = msg["seq"].as_u64().unwrap();
                eprintln!("the slow client's snapshot at {at}, after {seq}, of {last}");
                assert!(at >= seq, "a snapshot never goes back: {at} after {seq}");
                snapshots += 1;
                seq = at;
            }
            _ => {}
        }
    }
    assert!(snapshots >= 1, "the slow client never fell behind; the test proves nothing");
    // (The snapshot may already show the steady reader leaving, after the last reorder.)
    assert!(seq >= last);
    // And it is in the meeting as before: the next event reaches it.
    let ack = command(&mut chair, "after", json!({ "kind": "next_case" })).await;
    let next = until(&mut slow, "case_started").await;
    assert_eq!(next["seq"], ack["seq"]);
}

async fn handshakes_without_a_valid_ticket_and_origin_are_refused(backend: Backend) {
    let m = Meeting::open_with(backend, false, |s| s.live.ticket_seconds = 1).await;
    let ws_base = m.app.base.replace("http://", "ws://");
    let url = |ticket: &str, session: &str| {
        format!("{ws_base}/api/sessions/{session}/live?ticket={ticket}")
    };
    let fresh = |res: reqwest::Response| async move {
        assert_eq!(res.status(), StatusCode::CREATED);
        let v: Value = res.json().await.unwrap();
        v["ticket"].as_str().unwrap().to_string()
    };

    // Wrong Origin, and no Origin: refused, and the ticket is not spent.
    let t = fresh(m.ticket(&m.physio, &m.session).await).await;
    assert_eq!(
        connect(&url(&t, &m.session), "https://evil.example").await.err(),
        Some(StatusCode::FORBIDDEN)
    );
    // A ticket for another session does not open this one.
    assert_eq!(
        connect(&url(&t, &m.next_session), &m.app.base).await.err(),
        Some(StatusCode::UNAUTHORIZED)
    );
    let ws = connect(&url(&t, &m.session), &m.app.base).await;
    assert!(ws.is_ok(), "the right origin and ticket open the channel");
    // Reused ticket.
    assert_eq!(
        connect(&url(&t, &m.session), &m.app.base).await.err(),
        Some(StatusCode::UNAUTHORIZED)
    );
    // Unknown and expired tickets.
    assert_eq!(
        connect(&url("not-a-ticket", &m.session), &m.app.base).await.err(),
        Some(StatusCode::UNAUTHORIZED)
    );
    let t = fresh(m.ticket(&m.physio, &m.session).await).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        connect(&url(&t, &m.session), &m.app.base).await.err(),
        Some(StatusCode::UNAUTHORIZED)
    );
    // Who may have a ticket at all: not a trainee at a non-teaching session.
    let res = m.ticket(&m.trainee, &m.session).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // Without a token.
    let res = m
        .app
        .http
        .post(m.app.url(&format!("/api/sessions/{}/live-ticket", m.session)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

/// A WebSocket upgrade request for `target` on `host`, from a page at `origin`.
fn upgrade_request(host: &str, target: &str, origin: &str) -> String {
    format!(
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n"
    )
}

/// Opens the live channel over a plain socket, writing `first` (a client frame) in the
/// same write as the upgrade request, as a client that acts at once may: the server reads
/// both in one go.
async fn join_sending_at_once(m: &Meeting, token: &str, first: &Value) -> Ws {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let url = m.live_url(&m.app.base, token, None).await;
    let (host, target) = url.trim_start_matches("ws://").split_once('/').unwrap();
    let mut bytes = upgrade_request(host, &format!("/{target}"), &m.app.base).into_bytes();
    // One masked text frame (RFC 6455 section 5.2).
    let payload = first.to_string().into_bytes();
    let mask = [0x11, 0x22, 0x33, 0x44];
    bytes.push(0x81);
    match u16::try_from(payload.len()).unwrap() {
        n if n < 126 => bytes.push(0x80 | n as u8),
        n => {
            bytes.push(0x80 | 126);
            bytes.extend_from_slice(&n.to_be_bytes());
        }
    }
    bytes.extend_from_slice(&mask);
    bytes.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    let mut stream = TcpStream::connect(host).await.unwrap();
    stream.write_all(&bytes).await.unwrap();
    let mut head = Vec::new();
    let end = loop {
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the server closed during the handshake");
        head.extend_from_slice(&chunk[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
    };
    let rest = head.split_off(end);
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let role = tokio_tungstenite::tungstenite::protocol::Role::Client;
    WebSocketStream::from_partially_read(MaybeTlsStream::Plain(stream), rest, role, None).await
}

/// A client that sends its first command in the same packet as its handshake: the
/// command is not lost behind the upgrade, and is answered after the snapshot. Repeated,
/// on fresh connections, so that a race between the upgrade and the first read shows.
async fn a_command_sent_with_the_handshake_is_answered(backend: Backend) {
    let m = Meeting::open(backend, false).await;
    let mut chair = m.join(&m.chair).await;
    let ack = command(&mut chair, "open", json!({ "kind": "open_meeting" })).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let mut agenda = m.cases.clone();
    for round in 0..20 {
        agenda.rotate_left(1);
        let id = format!("at-once-{round}");
        let first = json!({ "type": "command", "id": id,
                            "command": { "kind": "reorder", "case_ids": agenda } });
        let mut ws = join_sending_at_once(&m, &m.chair, &first).await;
        assert_eq!(recv(&mut ws).await["type"], "snapshot");
        let reply = loop {
            let v = recv(&mut ws).await;
            if v["id"] == id.as_str() {
                break v;
            }
        };
        assert_eq!(reply["type"], "ack", "round {round}: {reply}");
        let event = until(&mut chair, "agenda_reordered").await;
        assert_eq!(event["event"]["case_ids"], json!(agenda), "round {round}");
        ws.close(None).await.unwrap();
    }
}

/// A refused upgrade is answered like any refusal (a status and a JSON `code`), and the
/// connection is closed after it: it cannot go back to serving HTTP.
async fn a_refused_upgrade_says_why_and_closes(backend: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let m = Meeting::open(backend, false).await;
    let host = m.app.base.trim_start_matches("http://").to_string();
    let target = format!("/api/sessions/{}/live?ticket=not-a-ticket", m.session);
    let request = upgrade_request(&host, &target, &m.app.base);
    let mut stream = TcpStream::connect(&host).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer));
    read.await.expect("the server closes the connection").unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["code"], "invalid_ticket", "{body}");
}

/// A stopping server (what SIGTERM starts; the binary's own test sends the signal) closes
/// each live connection with 1001 so the client reconnects at once, and refuses new ones
/// with 503 until it has stopped.
async fn a_stopping_server_says_goodbye_and_takes_no_one_new(backend: Backend) {
    let m = Meeting::open(backend, false).await;
    let mut chair = m.join(&m.chair).await;
    until(&mut chair, "snapshot").await;
    let mut physio = m.join(&m.physio).await;
    until(&mut physio, "snapshot").await;
    m.app.state.live.going_away(Duration::from_secs(5)).await;
    for ws in [&mut chair, &mut physio] {
        let close = crate::common::close_frame(ws).await;
        assert_eq!(u16::from(close.code), 1001, "{close:?}");
    }
    let url = m.live_url(&m.app.base, &m.physio, None).await;
    assert_eq!(connect(&url, &m.app.base).await.err(), Some(StatusCode::SERVICE_UNAVAILABLE));
}

async fn trainees_see_only_de_identified_cases_live(backend: Backend) {
    let m = Meeting::open(backend, true).await;
    let mut chair = m.join(&m.chair).await;
    until(&mut chair, "snapshot").await;
    let mut trainee = m.join(&m.trainee).await;
    let mut received = Vec::new();
    let snap = until(&mut trainee, "snapshot").await;
    received.push(snap.to_string());
    command(&mut chair, "o", json!({ "kind": "open_meeting" })).await;
    command(&mut chair, "n", json!({ "kind": "next_case" })).await;
    command(&mut chair, "d", json!({ "kind": "defer_case", "case_id": m.cases[1] })).await;
    let refused = command(&mut trainee, "t", json!({ "kind": "request_present" })).await;
    assert_eq!(refused["code"], "forbidden");
    received.push(refused.to_string());
    while !quiet(&mut trainee).await {}
    let mut again = m.join(&m.trainee).await;
    received.push(until(&mut again, "snapshot").await.to_string());
    for payload in &received {
        for secret in NHS.iter().copied().chain([
            "Hermione",
            "Quibble",
            "1978-05-17",
            "A81001",
            "DMARDs",
            "morning stiffness",
        ]) {
            assert!(!payload.contains(secret), "{secret} leaked: {payload}");
        }
    }
    assert!(received[0].contains("Case 1 · F · 40–49 · hands"));
    // The chair's view is identified, and reading it is audited.
    let events = m.app.state.store.audit_events().await.unwrap();
    assert!(events.iter().any(|e| e.action == "case_read" && e.details.contains("live")));
}

async fn presence_makes_attendance_and_quorum(backend: Backend) {
    let m = Meeting::open(backend, false).await;
    // The quorum is the specialty's to set (coordinators only).
    let set = |token: &str, n: i64| {
        m.app
            .http
            .put(m.app.url("/api/specialties/rheumatology/quorum"))
            .bearer_auth(token)
            .json(&json!({ "quorum_others": n }))
            .send()
    };
    assert_eq!(set(&m.coordinator, 2).await.unwrap().status(), StatusCode::OK);
    // Refusals change nothing: the snapshot below still shows 2.
    assert_eq!(set(&m.chair, 3).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(set(&m.coordinator, 99).await.unwrap().status(), StatusCode::UNPROCESSABLE_ENTITY);
    let mut probe = m.join(&m.colleague).await;
    let snap = until(&mut probe, "snapshot").await;
    assert_eq!(snap["quorum"]["required_others"], 2);
    drop(probe);
    assert_eq!(set(&m.coordinator, 1).await.unwrap().status(), StatusCode::OK);
    // Rooms already running pick the new quorum up at once.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut chair = m.join(&m.chair).await;
    let snap = until(&mut chair, "snapshot").await;
    assert_eq!(snap["quorum"]["required_others"], 1);
    assert_eq!(snap["quorum"]["quorate"], false, "the chair alone");
    let mut colleague = m.join(&m.colleague).await;
    let snap = until(&mut colleague, "snapshot").await;
    assert_eq!(snap["quorum"]["quorate"], true, "{snap}");
    assert_eq!(snap["quorum"]["present_others"], 1);
    drop(colleague);
    let left = until(&mut chair, "participant_left").await;
    assert!(left["event"]["user_id"].is_string());

    let res = m
        .app
        .http
        .get(m.app.url(&format!("/api/sessions/{}/attendance", m.session)))
        .bearer_auth(&m.coordinator)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let rows: Value = res.json().await.unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3, "the colleague's two stays and the chair's: {rows:?}");
    let finished: Vec<&Value> = rows.iter().filter(|r| !r["left_at"].is_null()).collect();
    assert_eq!(finished.len(), 2, "the colleague left twice; the chair is still here");
    assert!(finished.iter().all(|r| r["role"] == "consultant"));
    let res = m
        .app
        .http
        .get(m.app.url(&format!("/api/sessions/{}/attendance", m.session)))
        .bearer_auth(&m.physio)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

async fn a_silent_connection_is_dropped_and_leaves(backend: Backend) {
    let m = Meeting::open_with(backend, false, |s| {
        s.live.heartbeat_seconds = 1;
        s.live.client_timeout_seconds = 2;
    })
    .await;
    let mut chair = m.join(&m.chair).await;
    until(&mut chair, "snapshot").await;
    let mut physio = m.join(&m.physio).await;
    until(&mut physio, "snapshot").await;
    until(&mut chair, "participant_joined").await;
    // The physio's client stops reading, so it no longer answers the server's pings.
    let started = std::time::Instant::now();
    let left = until(&mut chair, "participant_left").await;
    assert_eq!(left["event"]["user_id"], m.physio_id.as_str());
    assert!(started.elapsed() < Duration::from_secs(8));
    drop(physio);
}

/// With the default window a chair cannot open a meeting days before it (`too_early`,
/// nothing stored); a coordinator moves the session, its referrer is told, and then it
/// opens. A session already live cannot be moved.
async fn a_meeting_opened_too_early_is_refused_until_the_session_is_moved(backend: Backend) {
    let defaults = mdt_coordinator::config::Settings::defaults().unwrap().live;
    assert_eq!(defaults.open_early_minutes, 30);
    let m = Meeting::open_with(backend, false, |s| s.live.open_early_minutes = 30).await;
    let mut chair = m.join(&m.chair).await;
    let snap = until(&mut chair, "snapshot").await;
    let seq = snap["seq"].as_u64().unwrap();
    let refused = command(&mut chair, "open", json!({"kind": "open_meeting"})).await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "too_early", "{refused}");
    let path = format!("/api/sessions/{}", m.session);
    let (_, session) = m.app.get(&m.chair, &path).await;
    assert_eq!(session["session"]["state"], "scheduled", "nothing changed");

    // Only a coordinator moves a session, to a valid time in the future.
    let move_to = |at: String| json!({ "starts_at": at });
    let soon = (Utc::now() + chrono::Duration::minutes(20)).to_rfc3339();
    let reschedule = format!("/api/sessions/{}/reschedule", m.session);
    let (status, body) = m.app.post(&m.chair, &reschedule, move_to(soon.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = m.app.post(&m.coordinator, &reschedule, move_to("tomorrow".into())).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_time"))
    );
    let past = (Utc::now() - chrono::Duration::minutes(5)).to_rfc3339();
    let (status, body) = m.app.post(&m.coordinator, &reschedule, move_to(past)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("starts_in_past"))
    );
    let before = m.app.state.store.outbox_messages().await.unwrap().len();
    let (status, moved) = m.app.post(&m.coordinator, &reschedule, move_to(soon)).await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    let outbox = m.app.state.store.outbox_messages().await.unwrap();
    let told: Vec<_> = outbox[before..]
        .iter()
        .filter(|msg| msg.to.iter().any(|t| t.as_str() == "physio@example.org"))
        .collect();
    assert_eq!(told.len(), 3, "one message per booked case");
    assert!(told[0].subject.starts_with("Case moved to"), "{}", told[0].subject);

    // The room has the new time: the chair opens it now.
    let opened = eventually("the meeting to open", async || {
        let v = command(
            &mut chair,
            &format!("open-{}", Utc::now().timestamp_micros()),
            json!({"kind": "open_meeting"}),
        )
        .await;
        (v["type"] == "ack").then_some(v)
    })
    .await;
    assert!(opened["seq"].as_u64().unwrap() > seq);
    let again = (Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let (status, body) = m.app.post(&m.coordinator, &reschedule, move_to(again)).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("invalid_state")));

    // A published session is in its invitees' calendars: moving it sends each of them the
    // updated invitation (same UID, a higher SEQUENCE).
    let publish = format!("/api/sessions/{}/publish", m.next_session);
    let (status, _) = m.app.post(&m.coordinator, &publish, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let before = m.app.state.store.outbox_messages().await.unwrap().len();
    let later = (Utc::now() + chrono::Duration::days(30)).to_rfc3339();
    let path = format!("/api/sessions/{}/reschedule", m.next_session);
    let (status, moved) = m.app.post(&m.coordinator, &path, move_to(later)).await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    let outbox = m.app.state.store.outbox_messages().await.unwrap();
    let updates: Vec<_> =
        outbox[before..].iter().filter(|msg| msg.subject.starts_with("Session moved:")).collect();
    let to: Vec<&str> = updates.iter().map(|u| u.to[0].as_str()).collect();
    assert!(to.contains(&"chair@example.org") && to.contains(&"second@example.org"), "{to:?}");
    let calendar = updates[0].calendar.as_deref().unwrap();
    assert!(calendar.contains(&format!("UID:session-{}@mdt-coordinator", m.next_session)));
    let sequence = calendar
        .lines()
        .find_map(|l| l.strip_prefix("SEQUENCE:"))
        .and_then(|n| n.trim().parse::<u32>().ok())
        .unwrap();
    assert!(sequence > 0, "{calendar}");
}

/// Reads `ws` until the server closes it, at most until `deadline`: whether an
/// `account_deactivated` error came first, and the close code.
async fn closed_for_deactivation(
    ws: &mut Ws, deadline: tokio::time::Instant,
) -> (bool, Option<u16>) {
    let mut told = false;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => panic!("the connection was still open at the deadline"),
            Ok(Some(Ok(Message::Text(text)))) => {
                let v: Value = serde_json::from_str(text.as_str()).unwrap();
                told |= v["type"] == "error" && v["code"] == "account_deactivated";
            }
            Ok(Some(Ok(Message::Close(frame)))) => return (told, frame.map(|f| u16::from(f.code))),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_)) | None) => return (told, None),
        }
    }
}

/// A deactivated account leaves the meeting at once: a coordinator's deactivation closes
/// the person's live connection within a second (`account_deactivated`, close code 1008,
/// which also hangs up their media), the others see them leave, and their access token is
/// refused on its next request. A deactivation the room is not told of (the command line,
/// another instance) is found on its housekeeping tick.
async fn a_deactivated_account_leaves_the_meeting_at_once(backend: Backend) {
    let m = Meeting::open_with(backend, false, |s| s.live.instance_heartbeat_seconds = 1).await;
    let mut chair = m.join(&m.chair).await;
    until(&mut chair, "snapshot").await;
    let mut physio = m.join(&m.physio).await;
    until(&mut physio, "snapshot").await;
    let joined = until(&mut chair, "participant_joined").await;
    assert_eq!(joined["event"]["user_id"], m.physio_id.as_str());

    let started = tokio::time::Instant::now();
    let path = format!("/api/users/{}/deactivate", m.physio_id);
    let (status, body) = m.app.post(&m.coordinator, &path, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (told, code) = closed_for_deactivation(&mut physio, started + Duration::from_secs(1)).await;
    assert!(told, "the client is told why");
    assert_eq!(code, Some(1008));
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    loop {
        let left = until(&mut chair, "participant_left").await;
        if left["event"]["user_id"] == m.physio_id.as_str() {
            break;
        }
    }
    let (status, body) = m.app.get(&m.physio, "/api/me").await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_token")));
    let res = m.ticket(&m.physio, &m.session).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // Deactivated behind the room's back (as the command line or another instance does).
    let mut colleague = m.join(&m.colleague).await;
    until(&mut colleague, "snapshot").await;
    let email = mdt_coordinator::domain::EmailAddress::parse("second@example.org").unwrap();
    let id = m.app.state.store.credentials(&email).await.unwrap().unwrap().user_id;
    let started = tokio::time::Instant::now();
    let audit = mdt_coordinator::domain::NewAuditEvent::new("user_deactivated", "user");
    m.app.state.store.set_user_active(id, false, Utc::now(), audit).await.unwrap();
    let (told, code) =
        closed_for_deactivation(&mut colleague, started + Duration::from_secs(3)).await;
    assert!(told && code == Some(1008), "{told} {code:?}");
    // The chair, still active, is still connected and hears nothing odd.
    let v = command(&mut chair, "after", json!({"kind": "open_meeting"})).await;
    assert_eq!(v["type"], "ack", "{v}");
}

on_both_backends!(
    listed_cases_are_confirmed_together,
    a_meeting_opened_too_early_is_refused_until_the_session_is_moved,
    a_silent_connection_is_dropped_and_leaves,
    the_chair_drives_and_everyone_follows,
    a_client_that_misses_events_resumes_with_exactly_those,
    a_client_that_stops_reading_catches_up_from_a_snapshot,
    agenda_changes_made_outside_the_meeting_reach_everyone,
    handshakes_without_a_valid_ticket_and_origin_are_refused,
    a_command_sent_with_the_handshake_is_answered,
    a_refused_upgrade_says_why_and_closes,
    a_stopping_server_says_goodbye_and_takes_no_one_new,
    trainees_see_only_de_identified_cases_live,
    presence_makes_attendance_and_quorum,
    a_deactivated_account_leaves_the_meeting_at_once,
);

/// Two instances on one PostgreSQL database: a command sent to A reaches a client of B,
/// and `seq` stays one sequence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_on_one_instance_reaches_clients_of_another() {
    if !crate::common::postgres_available() {
        return;
    }
    let m = Meeting::open(Backend::Postgres, false).await;
    let b = TestApp::spawn_beside(&m.app).await;
    let mut on_a = m.join(&m.chair).await;
    until(&mut on_a, "snapshot").await;
    let mut on_b = m.join_at(&b.base, &m.physio, None).await;
    until(&mut on_b, "snapshot").await;
    // A sees B's participant through the database.
    let joined = until(&mut on_a, "participant_joined").await;
    let joined = if joined["event"]["user_id"] == m.physio_id.as_str() {
        joined
    } else {
        until(&mut on_a, "participant_joined").await
    };
    assert_eq!(joined["event"]["user_id"], m.physio_id.as_str());

    let ack = command(&mut on_a, "o", json!({ "kind": "open_meeting" })).await;
    let seq = ack["seq"].as_u64().unwrap();
    let ev = until(&mut on_b, "meeting_opened").await;
    assert_eq!(ev["seq"].as_u64().unwrap(), seq);
    let ack = command(&mut on_a, "n", json!({ "kind": "next_case" })).await;
    let ev = until(&mut on_b, "case_started").await;
    assert_eq!(ev["seq"], ack["seq"]);

    // The instances' LISTEN connections are cut: events still arrive (rooms poll the
    // events table until the listeners are back).
    let mut admin = sqlx::PgConnection::connect(&m.app.db.url).await.unwrap();
    let cut: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(!cut.is_empty(), "each instance listens");
    let ack = command(&mut on_a, "n2", json!({ "kind": "next_case" })).await;
    let ev = until(&mut on_b, "case_started").await;
    assert_eq!(ev["seq"], ack["seq"]);

    // B's participant raises a hand; A's chair sees it, and lowers it from A.
    let raised = command(&mut on_b, "h", json!({ "kind": "raise_hand" })).await;
    let seen = until(&mut on_a, "hand_raised").await;
    assert_eq!(seen["seq"], raised["seq"]);
    command(&mut on_a, "l", json!({ "kind": "lower_hand", "user_id": m.physio_id })).await;
    until(&mut on_b, "hand_lowered").await;
}

/// Issue 15: triage lists two cases as following a standard of care; in the meeting the
/// chair confirms both in one `confirm_listed` command (another participant is refused
/// `forbidden`, `next_case` passes them by): each gets a signed outcome with the standard
/// plan, and the activity report shows them as listed, not discussed.
async fn listed_cases_are_confirmed_together(backend: Backend) {
    let m = Meeting::open(backend, false).await;
    let mut listed = Vec::new();
    for nhs in crate::common::clinic::nhs_numbers(2) {
        let res = m
            .app
            .http
            .post(m.app.url(&format!("/api/sessions/{}/cases", m.session)))
            .bearer_auth(&m.physio)
            .json(&booking(&nhs))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let id = res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
        let list = json!({ "decision": "list", "standard_plan": "continue_current_care" });
        let res = m
            .app
            .http
            .post(m.app.url(&format!("/api/cases/{id}/triage")))
            .bearer_auth(&m.coordinator)
            .json(&list)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        listed.push(id);
    }
    let mut chair = m.join(&m.chair).await;
    let snap = until(&mut chair, "snapshot").await;
    let states: Vec<&str> =
        snap["agenda"].as_array().unwrap().iter().map(|c| c["state"].as_str().unwrap()).collect();
    assert_eq!(states.iter().filter(|s| **s == "listed").count(), 2, "{states:?}");
    let mut physio = m.join(&m.physio).await;
    until(&mut physio, "snapshot").await;
    assert_eq!(command(&mut chair, "o", json!({ "kind": "open_meeting" })).await["type"], "ack");
    let confirm = json!({ "kind": "confirm_listed", "case_ids": listed });
    let refused = command(&mut physio, "p", confirm.clone()).await;
    assert_eq!(refused["code"], "forbidden", "{refused}");
    let not_listed = json!({ "kind": "confirm_listed", "case_ids": [m.cases[0]] });
    assert_eq!(command(&mut chair, "x", not_listed).await["code"], "invalid_state");
    let ack = command(&mut chair, "c", confirm).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let event = until(&mut physio, "listed_confirmed").await;
    assert_eq!(event["event"]["case_ids"], json!(listed));
    for id in &listed {
        let res = m
            .app
            .http
            .get(m.app.url(&format!("/api/cases/{id}/outcome")))
            .bearer_auth(&m.chair)
            .send()
            .await
            .unwrap();
        let outcome: Value = res.json().await.unwrap();
        let text = outcome.to_string();
        assert!(text.contains("Continue the current first-contact"), "{text}");
        assert!(
            outcome["versions"][0]["signed_at"].is_string() || text.contains("\"signed_at\":\""),
            "{text}"
        );
    }
    // Each referrer has the outcome letter, queued with the signing.
    let outbox = m.app.state.store.outbox_messages().await.unwrap();
    let letters: Vec<_> = outbox.iter().filter(|l| l.subject.starts_with("MDT outcome")).collect();
    assert_eq!(letters.len(), 2);
    assert!(letters.iter().all(|l| !l.body.contains(NHS[0]) && !l.body.contains("Quibble")));
    // And each case has its GP and patient letters, made from the signed version.
    for id in &listed {
        let res = m
            .app
            .http
            .get(m.app.url(&format!("/api/cases/{id}/letters")))
            .bearer_auth(&m.chair)
            .send()
            .await
            .unwrap();
        let letters: Value = res.json().await.unwrap();
        let mut kinds: Vec<&str> =
            letters.as_array().unwrap().iter().map(|l| l["kind"].as_str().unwrap()).collect();
        kinds.sort();
        assert_eq!(kinds, ["gp", "patient"], "{letters}");
        assert!(letters.as_array().unwrap().iter().all(|l| l["version"] == 1));
    }
    // The meeting goes on with the discussed cases only.
    let next = command(&mut chair, "n", json!({ "kind": "next_case" })).await;
    assert_eq!(next["type"], "ack");
    let started = until(&mut physio, "case_started").await;
    assert!(!listed.contains(&started["event"]["case_id"].as_str().unwrap().to_string()));

    let today = Utc::now().date_naive();
    let query = format!("?from={}&to={}&format=csv", today, today + chrono::Duration::days(30));
    let csv = m
        .app
        .http
        .get(m.app.url(&format!("/api/reports/activity{query}")))
        .bearer_auth(&m.coordinator)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for id in &listed {
        let row =
            csv.lines().find(|l| l.starts_with(id.as_str())).unwrap_or_else(|| panic!("{csv}"));
        assert!(row.contains("listed_not_discussed"), "{row}");
    }
}
