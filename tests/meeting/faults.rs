//! A live meeting across a database outage (PostgreSQL behind a proxy that cuts every
//! connection and closes its port): everyone is told the meeting's changes cannot be
//! saved, a command is refused `unavailable` rather than lost or half-done, the same
//! command sent again once the database is back is applied once, everyone is told it is
//! back and hears the events in order, and the events table holds each exactly once.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::common::outage::Outage;
use crate::common::{Backend, TestApp};
use crate::live::{command, send, until, Meeting, Ws};

/// Messages until one satisfies `done`, kept in order; fails with what came if none does
/// within `secs` seconds (the room may wait 10 s for a connection before it gives up on
/// the database).
async fn read_until(ws: &mut Ws, secs: u64, done: impl Fn(&Value) -> bool) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    let mut seen = Vec::new();
    loop {
        let Ok(frame) = tokio::time::timeout_at(deadline, ws.next()).await else {
            panic!("nothing matched within {secs} s; received: {seen:?}");
        };
        if let Message::Text(text) = frame.expect("socket open").expect("frame") {
            let m: Value = serde_json::from_str(text.as_str()).unwrap();
            let stop = done(&m);
            seen.push(m);
            if stop {
                return seen;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_meeting_rides_out_a_database_outage() {
    if !crate::common::postgres_available() {
        return;
    }
    let outage = Outage::in_front_of_postgres().await;
    let app = TestApp::spawn_with(Backend::Postgres, |s| outage.reroute(s))
        .await
        .expect("PostgreSQL available");
    let m = Meeting::on(app, false).await;
    let mut chair = m.join(&m.chair).await;
    until(&mut chair, "snapshot").await;
    let mut physio = m.join(&m.physio).await;
    until(&mut physio, "snapshot").await;
    assert_eq!(command(&mut chair, "open", json!({ "kind": "open_meeting" })).await["type"], "ack");
    let first = command(&mut chair, "next-1", json!({ "kind": "next_case" })).await;
    assert_eq!(first["type"], "ack", "{first}");
    until(&mut physio, "case_started").await;

    // The database goes away for longer than the room waits for a connection (10 s).
    outage.begin();
    let down_at = Instant::now();
    send(&mut chair, "next-2", json!({ "kind": "next_case" })).await;
    let chair_saw =
        read_until(&mut chair, 40, |m| m["type"] == "error" && m["id"] == "next-2").await;
    let refused = chair_saw.last().unwrap();
    assert_eq!(refused["code"], "unavailable", "{refused}");
    assert!(
        chair_saw.iter().any(|m| m["type"] == "service" && m["state"] == "unavailable"),
        "the chair is told: {chair_saw:?}"
    );
    let physio_saw = read_until(&mut physio, 40, |m| m["type"] == "service").await;
    assert_eq!(physio_saw.last().unwrap()["state"], "unavailable", "{physio_saw:?}");
    assert!(
        physio_saw.iter().all(|m| m["type"] != "event"),
        "nothing happened while it was down: {physio_saw:?}"
    );
    tokio::time::sleep(Duration::from_secs(12).saturating_sub(down_at.elapsed())).await;
    outage.end();

    // Sent again with the same id, the command is applied once; everyone is told the
    // database is back and hears the events in order.
    let answer = loop {
        send(&mut chair, "next-2", json!({ "kind": "next_case" })).await;
        let seen = read_until(&mut chair, 40, |m| {
            (m["type"] == "ack" || m["type"] == "error") && m["id"] == "next-2"
        })
        .await;
        let answer = seen.last().unwrap().clone();
        if answer["type"] == "ack" {
            break answer;
        }
        assert_eq!(answer["code"], "unavailable", "{answer}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let seq = answer["seq"].as_u64().unwrap();
    let physio_saw = read_until(&mut physio, 40, |m| m["seq"] == json!(seq)).await;
    assert!(
        physio_saw.iter().any(|m| m["type"] == "service" && m["state"] == "available"),
        "told it is back: {physio_saw:?}"
    );
    let seqs: Vec<u64> = physio_saw.iter().filter_map(|m| m["seq"].as_u64()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "in order, no gap: {seqs:?}");
    let again = command(&mut chair, "next-2", json!({ "kind": "next_case" })).await;
    assert_eq!(again["seq"], json!(seq), "a repeat is answered, not applied again");

    // Each acknowledged event is stored exactly once, with no gap.
    let events = m.app.state.store.live_events(m.session.parse().unwrap(), 0, u64::MAX).await;
    let events = events.unwrap();
    let stored: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(stored, (1..=stored.len() as u64).collect::<Vec<_>>());
    for id in ["open", "next-1", "next-2"] {
        let n = events.iter().filter(|e| e.command_id.as_deref() == Some(id)).count();
        assert_eq!(n, 1, "{id} stored once");
    }
    let ready = m.app.http.get(m.app.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), reqwest::StatusCode::OK);
}
