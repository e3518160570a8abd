//! One WebSocket connection to a live session. What the client sends is read by the
//! connection's own task (commands, signalling, pings, the heartbeat); what it is sent is
//! the HTTP response body itself, drawn from the connection's bounded queue by the task
//! that carries the upgraded socket (`crate::upgraded`): an event goes from the room to
//! the socket with one hand-off, frames already waiting go out in one write, and a slow
//! client only delays itself. Leaving the room happens in `Drop`, however the connection
//! ends.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_http::ws::CloseCode;
use actix_web::body::{BodyStream, MessageBody};
use actix_web::web::{Bytes, BytesMut};
use actix_web::HttpResponse;
use futures_util::Stream;
use serde_json::json;
use tokio::sync::{mpsc, oneshot, watch, Notify};
use uuid::Uuid;

use super::protocol::{self, ClientMessage};
use super::room::{Conn, RoomMsg, LAGGING, RESYNC_ASKED};
use super::wire::{self, Inbound, Inbox};
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

/// Frames already waiting are written together, up to about this many bytes.
const BATCH_BYTES: usize = 16 * 1024;

/// Joins the room and answers the upgrade: the handshake's 101, whose body is the
/// connection's queue. The client's messages are read by a task of their own.
pub async fn open(
    join: Joining, mut handshake: actix_http::ResponseBuilder, payload: actix_web::web::Payload,
) -> HttpResponse {
    // Counted from here, so a stopping server also waits for a connection still joining.
    let open = join.hub.open_token();
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
    let room = join.hub.join(join.session_id, conn, join.last_seq).await;
    let (gone_tx, gone) = oneshot::channel();
    let writer = Writer {
        rx,
        lag,
        room: room.clone(),
        conn_id,
        auditor: Auditor { store: join.store, user: user_id, client_addr: join.client_addr },
        done: false,
        _gone: gone_tx,
        _open: open,
    };
    match room {
        Some(room) => {
            let reader = Reader {
                inbox: Inbox::new(payload, settings.max_message_bytes),
                tx,
                lobby,
                ended,
                media: Media {
                    sfu: join.hub.media().clone(),
                    session_id: join.session_id,
                    user_id,
                    role,
                    peer: None,
                },
                membership: Membership { room, conn_id },
            };
            actix_web::rt::spawn(reader.run(settings, gone, join.hub.stopping()));
        }
        None => {
            let _ = tx.try_send(Outbound::Close(Some((
                CloseCode::Again,
                "the meeting is unavailable; try again",
            ))));
        }
    }
    let response = handshake.body(BodyStream::new(writer.into_body()).boxed());
    HttpResponse::from(response.map_body(|_, body| body.boxed()))
}

/// The connection's reading side, with what ends with it: its media and its membership.
struct Reader {
    inbox: Inbox<actix_web::web::Payload>,
    tx: mpsc::Sender<Outbound>,
    lobby: Arc<AtomicBool>,
    ended: Arc<Notify>,
    media: Media,
    /// The room it is in, and as whom.
    membership: Membership,
}

impl Reader {
    /// Reads until the client goes, stops answering pings, the response body ends
    /// (`gone`), or the server is stopping (`stopping`); then leaves and says goodbye.
    async fn run(
        mut self, settings: crate::config::LiveSettings, mut gone: oneshot::Receiver<()>,
        mut stopping: watch::Receiver<bool>,
    ) {
        let timeout = Duration::from_secs(settings.client_timeout_seconds);
        let mut heartbeat = tokio::time::interval(Duration::from_secs(settings.heartbeat_seconds));
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();
        let mut close = None;
        loop {
            tokio::select! {
                message = self.inbox.next() => {
                    let Some(message) = message else { break };
                    last_heard = Instant::now();
                    match message {
                        Inbound::Text(text) => {
                            // Boxed, as below: rare, and every idle connection's task
                            // would otherwise be the size of the largest.
                            if !Box::pin(self.handle(&text)).await {
                                break;
                            }
                        }
                        Inbound::Binary => {
                            let reply = signal::error(None, "invalid_message", "messages are JSON text");
                            let _ = self.tx.try_send(Outbound::Text(reply));
                        }
                        // A client that reads nothing fills its queue: give up rather than
                        // wait on it.
                        Inbound::Ping(bytes) => {
                            if !self.send_within(Outbound::Pong(bytes), timeout).await {
                                break;
                            }
                        }
                        Inbound::Pong => {}
                        Inbound::Close => break,
                    }
                }
                // The response body ended (the socket failed, or the room showed this
                // user the door): stop reading too, which also hangs up their media.
                _ = &mut gone => break,
                // The server is stopping: the client is to reconnect (elsewhere, or here
                // once it is back) and resume.
                _ = stopping.wait_for(|stopping| *stopping) => {
                    close = Some((CloseCode::Away, "the server is stopping; reconnect and resume"));
                    break;
                }
                // The account was deactivated: say so, and close.
                () = self.ended.notified() => {
                    let text = signal::error(None, "account_deactivated", "this account was deactivated");
                    let _ = self.send_within(Outbound::Text(text), timeout).await;
                    close = Some((CloseCode::Policy, "account deactivated"));
                    break;
                }
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() > timeout {
                        close = Some((CloseCode::Away, "no answer to pings; reconnect and resume"));
                        break;
                    }
                    if !self.send_within(Outbound::Ping, timeout).await {
                        break;
                    }
                }
            }
        }
        let Reader { tx, media, membership, .. } = self;
        drop(media);
        drop(membership);
        let _ = tx.try_send(Outbound::Close(close));
    }

    /// Passes a client's text message on; false once the room has gone.
    async fn handle(&mut self, text: &str) -> bool {
        let conn_id = self.membership.conn_id;
        let to_room = match protocol::parse(text) {
            Ok(ClientMessage::Command { id, expected_seq, command }) => {
                RoomMsg::Command { conn_id, id, expected_seq, command }
            }
            Ok(ClientMessage::Resume { last_seq }) => RoomMsg::Resume { conn_id, last_seq },
            Ok(ClientMessage::Rtc(_)) if self.lobby.load(Ordering::Acquire) => {
                let reply =
                    signal::error(None, "in_lobby", "media starts once the chair lets you in");
                let _ = self.tx.try_send(Outbound::Text(reply));
                return true;
            }
            Ok(ClientMessage::Rtc(signal)) => {
                self.media.signal(signal, &self.tx).await;
                return true;
            }
            Err(bad) => {
                let reply = signal::error(bad.id.as_deref(), "invalid_message", &bad.message);
                let _ = self.tx.try_send(Outbound::Text(reply));
                return true;
            }
        };
        self.membership.room.send(to_room).await.is_ok()
    }

    /// Queues a frame of the connection's own, waiting at most `timeout` for room.
    async fn send_within(&self, out: Outbound, timeout: Duration) -> bool {
        matches!(Box::pin(tokio::time::timeout(timeout, self.tx.send(out))).await, Ok(Ok(())))
    }
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
        // Boxed: the store's future is large, and every idle connection would carry it.
        match Box::pin(self.store.append_audits(events)).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "cannot audit a live snapshot; not sent");
                false
            }
        }
    }
}

/// The connection's writing side: its queue, drawn by the response body.
struct Writer {
    rx: mpsc::Receiver<Outbound>,
    lag: Arc<AtomicU8>,
    /// `None` when the room could not be joined (the queue then holds only a close).
    room: Option<mpsc::Sender<RoomMsg>>,
    conn_id: u64,
    auditor: Auditor,
    /// A close frame has been written: nothing follows it.
    done: bool,
    /// Dropped with the body, which tells the reader the connection is gone.
    _gone: oneshot::Sender<()>,
    /// Counts the connection as open until its last byte is written (`Hub::going_away`).
    _open: Arc<()>,
}

impl Writer {
    /// The response body: each item is every frame waiting at the time, in order.
    fn into_body(self) -> impl Stream<Item = Result<Bytes, actix_web::Error>> + 'static {
        futures_util::stream::unfold(self, |mut writer| async move {
            let chunk = writer.next_chunk().await?;
            Some((Ok(chunk), writer))
        })
    }

    /// Waits for something to send, then takes whatever else is already waiting;
    /// `None` once the connection is closed or every sender has gone.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        let mut buf = BytesMut::new();
        // A lagging connection's drained backlog may leave nothing to write.
        while buf.is_empty() {
            if self.done {
                return None;
            }
            match self.rx.recv().await {
                // The common case, one broadcast with nothing behind it, goes out as the
                // shared bytes themselves.
                Some(Outbound::Frame(frame))
                    if self.rx.is_empty() && self.lag.load(Ordering::Acquire) != LAGGING =>
                {
                    return Some(frame);
                }
                out => self.write(out, &mut buf).await,
            }
        }
        while !self.done && buf.len() < BATCH_BYTES {
            let Ok(out) = self.rx.try_recv() else { break };
            self.write(Some(out), &mut buf).await;
        }
        Some(buf.freeze())
    }

    /// Encodes one queued item. When the room found the queue full, the backlog is
    /// dropped (but for what survives lag) and a fresh snapshot asked for instead.
    async fn write(&mut self, out: Option<Outbound>, buf: &mut BytesMut) {
        let Some(out) = out else { return self.close(buf, None) };
        if self.lag.load(Ordering::Acquire) == LAGGING {
            let kept: Vec<Outbound> = std::iter::once(out)
                .chain(std::iter::from_fn(|| self.rx.try_recv().ok()))
                .filter(Outbound::survives_lag)
                .collect();
            for out in kept {
                self.encode(out, buf).await;
            }
            self.lag.store(RESYNC_ASKED, Ordering::Release);
            let resync = RoomMsg::Resync { conn_id: self.conn_id };
            if let Some(room) = &self.room {
                if room.send(resync).await.is_err() {
                    self.close(buf, None);
                }
            }
            return;
        }
        self.encode(out, buf).await;
    }

    async fn encode(&mut self, out: Outbound, buf: &mut BytesMut) {
        if self.done {
            return;
        }
        match out {
            Outbound::Text(text) | Outbound::Signal(text) => wire::put_text(buf, &text),
            Outbound::Frame(frame) => buf.extend_from_slice(&frame),
            Outbound::Snapshot(snapshot) => {
                if self.auditor.cases_read(&snapshot.cases).await {
                    wire::put_text(buf, &snapshot.text);
                } else {
                    let text = signal::error(
                        None,
                        "unavailable",
                        "the meeting state could not be sent; reconnect",
                    );
                    wire::put_text(buf, &text);
                    self.close(buf, None);
                }
            }
            Outbound::Ping => wire::put_ping(buf),
            Outbound::Pong(payload) => wire::put_pong(buf, &payload),
            Outbound::Close(reason) => self.close(buf, reason),
        }
    }

    fn close(&mut self, buf: &mut BytesMut, reason: Option<(CloseCode, &'static str)>) {
        if !self.done {
            wire::put_close(buf, reason);
            self.done = true;
        }
    }
}
