//! One WebSocket connection to a live session: a reader (client messages, heartbeat) and
//! its own writer task draining a bounded queue, so a slow client only ever delays
//! itself. Leaving the room happens in `Drop`, however the connection ends.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_ws::{AggregatedMessage, CloseCode, CloseReason};
use serde_json::json;
use tokio::sync::{mpsc, Notify};
use uuid::Uuid;

use super::protocol::{self, ClientMessage};
use super::room::{Conn, RoomMsg, LAGGING, RESYNC_ASKED};
use super::Hub;
use crate::auth::access::AgendaAccess;
use crate::domain::{NewAuditEvent, User};
use crate::media::{PeerHandle, Sfu};
use crate::signal::{self, MediaRefusal, Outbound, RtcIn};
use crate::store::DynStore;

/// Everything a connection needs besides its socket.
pub struct Joining {
    pub hub: Arc<Hub>,
    pub store: DynStore,
    pub session_id: Uuid,
    pub user: User,
    pub view: AgendaAccess,
    pub client_addr: Option<String>,
    pub last_seq: Option<u64>,
}

/// Leaves the room when the connection ends, whatever ends it.
struct Membership {
    room: mpsc::Sender<RoomMsg>,
    conn_id: u64,
}

impl Drop for Membership {
    fn drop(&mut self) {
        let room = self.room.clone();
        let conn_id = self.conn_id;
        // Outside a runtime (the server is stopping) the room is going away too.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = room.send(RoomMsg::Leave { conn_id }).await;
            });
        }
    }
}

/// Runs the connection until the client goes, stops answering pings, or the server
/// stops.
pub async fn serve(join: Joining, mut ws: actix_ws::Session, stream: actix_ws::MessageStream) {
    let settings = join.hub.settings().clone();
    let (tx, rx) = mpsc::channel(settings.queue_capacity);
    let lag = Arc::new(AtomicU8::new(super::room::FLOWING));
    let conn_id = join.hub.next_conn_id();
    let user_id = join.user.id;
    let role = join.user.role;
    // Out of the meeting until the room lets the connection in.
    let lobby = Arc::new(AtomicBool::new(true));
    let ended = Arc::new(Notify::new());
    let conn = Conn {
        id: conn_id,
        user: join.user,
        view: join.view,
        tx: tx.clone(),
        lag: lag.clone(),
        lobby: lobby.clone(),
        ended: ended.clone(),
    };
    let Some(room) = join.hub.join(join.session_id, conn, join.last_seq).await else {
        let _ = ws
            .close(Some(CloseReason {
                code: CloseCode::Again,
                description: Some("the meeting is unavailable; try again".into()),
            }))
            .await;
        return;
    };
    let membership = Membership { room: room.clone(), conn_id };
    let auditor = Auditor { store: join.store, user: user_id, client_addr: join.client_addr };
    let mut writer = tokio::spawn(write(ws.clone(), rx, lag, room.clone(), conn_id, auditor));
    let mut media = Media {
        sfu: join.hub.media().clone(),
        session_id: join.session_id,
        user_id,
        role,
        peer: None,
    };

    let mut stream = stream
        .max_frame_size(settings.max_message_bytes)
        .aggregate_continuations()
        .max_continuation_size(settings.max_message_bytes);
    let timeout = Duration::from_secs(settings.client_timeout_seconds);
    let mut heartbeat = tokio::time::interval(Duration::from_secs(settings.heartbeat_seconds));
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_heard = Instant::now();
    let mut close = None;
    loop {
        tokio::select! {
            msg = stream.recv() => {
                let Some(Ok(msg)) = msg else { break };
                last_heard = Instant::now();
                match msg {
                    AggregatedMessage::Text(text) => {
                        let to_room = match protocol::parse(&text) {
                            Ok(ClientMessage::Command { id, expected_seq, command }) => {
                                RoomMsg::Command { conn_id, id, expected_seq, command }
                            }
                            Ok(ClientMessage::Resume { last_seq }) => {
                                RoomMsg::Resume { conn_id, last_seq }
                            }
                            Ok(ClientMessage::Rtc(_)) if lobby.load(Ordering::Acquire) => {
                                let reply = signal::error(None, "in_lobby", "media starts once the chair lets you in");
                                let _ = tx.try_send(Outbound::Text(reply));
                                continue;
                            }
                            Ok(ClientMessage::Rtc(signal)) => {
                                media.signal(signal, &tx).await;
                                continue;
                            }
                            Err(bad) => {
                                let reply = signal::error(bad.id.as_deref(), "invalid_message", &bad.message);
                                let _ = tx.try_send(Outbound::Text(reply));
                                continue;
                            }
                        };
                        if room.send(to_room).await.is_err() {
                            break;
                        }
                    }
                    AggregatedMessage::Binary(_) => {
                        let reply = signal::error(None, "invalid_message", "messages are JSON text");
                        let _ = tx.try_send(Outbound::Text(reply));
                    }
                    AggregatedMessage::Ping(bytes) => {
                        // A client that reads nothing fills the socket's queue: give up
                        // rather than wait on it.
                        let pong = tokio::time::timeout(timeout, ws.pong(&bytes)).await;
                        if !matches!(pong, Ok(Ok(()))) {
                            break;
                        }
                    }
                    AggregatedMessage::Pong(_) => {}
                    AggregatedMessage::Close(_) => break,
                }
            }
            // The writer stopped (the socket failed, or the room showed this user the
            // door): stop reading too, which also hangs up their media.
            _ = &mut writer => break,
            // The account was deactivated: say so past the queue, and close now.
            () = ended.notified() => {
                let text = signal::error(None, "account_deactivated", "this account was deactivated");
                let _ = tokio::time::timeout(timeout, ws.text(text)).await;
                close = Some(CloseReason {
                    code: CloseCode::Policy,
                    description: Some("account deactivated".into()),
                });
                break;
            }
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > timeout {
                    close = Some(CloseReason {
                        code: CloseCode::Away,
                        description: Some("no answer to pings; reconnect and resume".into()),
                    });
                    break;
                }
                let ping = tokio::time::timeout(timeout, ws.ping(b"")).await;
                if !matches!(ping, Ok(Ok(()))) {
                    break;
                }
            }
        }
    }
    drop(media);
    drop(membership);
    let _ = ws.close(close).await;
}

/// This connection's media: its peer in the SFU, started by its first signal and closed
/// with the connection.
struct Media {
    sfu: Arc<Sfu>,
    session_id: Uuid,
    user_id: crate::domain::UserId,
    role: crate::domain::Role,
    peer: Option<PeerHandle>,
}

impl Media {
    async fn signal(&mut self, signal: RtcIn, tx: &mpsc::Sender<Outbound>) {
        let refuse = |refusal: MediaRefusal| {
            let _ = tx.try_send(Outbound::Text(refusal.frame()));
        };
        if self.peer.as_ref().is_none_or(PeerHandle::is_closed) {
            let connected = self.sfu.connect(self.session_id, self.user_id, self.role, tx.clone());
            match connected {
                Ok(peer) => self.peer = Some(peer),
                Err(code) => {
                    self.peer = None;
                    return refuse(code);
                }
            }
        }
        if let Some(peer) = &self.peer {
            if !peer.signal(signal).await {
                refuse(MediaRefusal::Unavailable);
            }
        }
    }
}

/// Audits what a snapshot shows before it is sent (every read of patient data).
struct Auditor {
    store: DynStore,
    user: crate::domain::UserId,
    client_addr: Option<String>,
}

impl Auditor {
    async fn cases_read(&self, cases: &[Uuid]) -> bool {
        if cases.is_empty() {
            return true;
        }
        let events = cases
            .iter()
            .map(|id| {
                NewAuditEvent::new("case_read", "case")
                    .actor(self.user)
                    .record(id)
                    .from_addr(self.client_addr.clone())
                    .details(json!({ "via": "live" }))
            })
            .collect();
        match self.store.append_audits(events).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "cannot audit a live snapshot; not sent");
                false
            }
        }
    }
}

/// Drains the connection's queue into the socket. When the room found the queue full,
/// the backlog is dropped and a fresh snapshot asked for instead.
async fn write(
    mut ws: actix_ws::Session, mut rx: mpsc::Receiver<Outbound>, lag: Arc<AtomicU8>,
    room: mpsc::Sender<RoomMsg>, conn_id: u64, auditor: Auditor,
) {
    while let Some(out) = rx.recv().await {
        if lag.load(Ordering::Acquire) == LAGGING {
            // Media signalling is not in the snapshot: it survives the drop.
            let mut signals = Vec::new();
            for out in std::iter::once(out).chain(std::iter::from_fn(|| rx.try_recv().ok())) {
                if let Outbound::Signal(text) = out {
                    signals.push(text);
                }
            }
            for text in signals {
                if ws.text(text).await.is_err() {
                    return;
                }
            }
            lag.store(RESYNC_ASKED, Ordering::Release);
            if room.send(RoomMsg::Resync { conn_id }).await.is_err() {
                break;
            }
            continue;
        }
        let sent = match out {
            Outbound::Close => break,
            Outbound::Text(text) | Outbound::Signal(text) => ws.text(text).await,
            Outbound::Snapshot { text, cases } => {
                if !auditor.cases_read(&cases).await {
                    let _ = ws
                        .text(signal::error(
                            None,
                            "unavailable",
                            "the meeting state could not be sent; reconnect",
                        ))
                        .await;
                    break;
                }
                ws.text(text).await
            }
        };
        if sent.is_err() {
            break;
        }
    }
    let _ = ws.close(None).await;
}
