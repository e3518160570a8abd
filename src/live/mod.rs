//! The live meeting channel: the [`Hub`] that finds or starts each live session's room,
//! the rooms themselves ([`room`], one owner task per session, with what they all share
//! in `shared`), the WebSocket connections ([`connection`]) with their framing ([`wire`]),
//! and the wire format ([`protocol`]; the frames shared with the SFU are in
//! `crate::signal`). Across instances
//! (PostgreSQL) the events table is the source of truth; `LISTEN/NOTIFY` only wakes rooms,
//! and rooms poll while the listening connection is down.

pub mod connection;
mod letters;
pub mod protocol;
pub mod room;
pub mod shared;
pub mod wire;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use crate::config::LiveSettings;
use crate::domain::UserId;
use crate::media::Sfu;
use crate::store::{DynStore, LiveSignal};
use room::{Conn, Room, RoomMsg};
use shared::Shared;

/// Finds or starts the room of each live session on this instance.
pub struct Hub {
    shared: Arc<Shared>,
    rooms: Mutex<HashMap<Uuid, mpsc::Sender<RoomMsg>>>,
    next_conn: AtomicU64,
    /// Becomes true when the server is stopping: every connection then says goodbye.
    stopping: watch::Sender<bool>,
    /// Held by each connection's writing side until its last byte is written: the count
    /// of open connections, less one.
    open: Arc<()>,
}

/// How many messages wait for a room before senders wait.
const ROOM_INBOX: usize = 1024;

impl Hub {
    /// Builds the hub, starts listening for other instances' events where the backend
    /// can, and starts this instance's heartbeat. Must be called inside a tokio runtime.
    pub fn start(
        store: DynStore, settings: LiveSettings, media: Arc<Sfu>,
        letters: Arc<crate::letters::issue::Issuer>,
    ) -> Arc<Self> {
        let cross_instance = store.serves_many_instances();
        let hub = Arc::new(Hub {
            shared: Arc::new(Shared::new(store.clone(), settings, cross_instance, media, letters)),
            rooms: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
            stopping: watch::Sender::new(false),
            open: Arc::new(()),
        });
        if cross_instance {
            store.watch_live(hub.clone());
        }
        tokio::spawn(heartbeat(hub.shared.clone()));
        hub
    }

    pub fn settings(&self) -> &LiveSettings {
        &self.shared.settings
    }

    pub fn media(&self) -> &Arc<Sfu> {
        &self.shared.media
    }

    pub fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// What a connection watches to learn that the server is stopping.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// Whether the server is stopping (new live connections are refused).
    pub fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// What a connection holds from its upgrade until its last byte is written.
    pub fn open_token(&self) -> Arc<()> {
        self.open.clone()
    }

    /// The server is stopping: every live connection of this instance closes with 1001
    /// (going away), so its client reconnects and resumes at once (on another instance,
    /// or on this one once it is back) instead of finding a dropped socket. Waits until
    /// each has written its close, or `within` has passed.
    pub async fn going_away(&self, within: Duration) {
        self.stopping.send_replace(true);
        let deadline = tokio::time::Instant::now() + within;
        while Arc::strong_count(&self.open) > 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The inbox of the session's room, starting the room if it is not running.
    fn room(&self, session_id: Uuid) -> mpsc::Sender<RoomMsg> {
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        rooms.retain(|_, inbox| !inbox.is_closed());
        if let Some(inbox) = rooms.get(&session_id) {
            return inbox.clone();
        }
        let (inbox, rx) = mpsc::channel(ROOM_INBOX);
        let shared = self.shared.clone();
        tokio::spawn(async move {
            match Room::load(shared, session_id).await {
                Ok(room) => room.run(rx).await,
                Err(e) => tracing::warn!(error = %e, "cannot start a live room"),
            }
        });
        rooms.insert(session_id, inbox.clone());
        inbox
    }

    /// Adds a connection to its session's room; once this returns the connection has its
    /// snapshot (or replay) queued. Returns the room's inbox for the connection's
    /// commands, or `None` if the room could not start.
    pub async fn join(
        &self, session_id: Uuid, conn: Conn, last_seq: Option<u64>,
    ) -> Option<mpsc::Sender<RoomMsg>> {
        // A room that stopped for idleness just as the join arrived is started again.
        for _ in 0..3 {
            let inbox = self.room(session_id);
            let (joined, done) = oneshot::channel();
            let join = RoomMsg::Join { conn: conn.clone(), last_seq, joined };
            if inbox.send(join).await.is_ok() && done.await.is_ok() {
                return Some(inbox);
            }
        }
        None
    }

    /// The session's agenda changed outside the meeting (a booking, a withdrawal, a move):
    /// this instance's room, if any, reloads it. Rooms elsewhere reload on their
    /// housekeeping tick or when a command meets the change.
    pub fn agenda_changed(&self, session_id: Uuid) {
        self.tell(Some(session_id), || RoomMsg::Reload);
    }

    /// Settings every room depends on changed (e.g. a specialty's quorum): all rooms of
    /// this instance read their session again.
    pub fn reload_all(&self) {
        self.tell(None, || RoomMsg::Reload);
    }

    /// Events were appended outside this instance's room (e.g. with an outcome over
    /// REST): the room, if any, catches up now.
    pub fn events_appended(&self, session_id: Uuid) {
        self.tell(Some(session_id), || RoomMsg::Wake { upto: None });
    }

    /// The account was deactivated: every room of this instance closes its connections
    /// now (and with them its media). Rooms elsewhere, and any room whose inbox was full,
    /// find it on their housekeeping tick (`live.instance_heartbeat_seconds`).
    pub fn account_deactivated(&self, user_id: UserId) {
        self.tell(None, || RoomMsg::Deactivated { user_id });
    }

    /// Sends `msg` to the session's room (or every room) if it is running here, without
    /// waiting: a full inbox already holds work that will bring the room up to date.
    fn tell(&self, session_id: Option<Uuid>, msg: impl Fn() -> RoomMsg) {
        let rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        match session_id {
            Some(id) => {
                if let Some(inbox) = rooms.get(&id) {
                    let _ = inbox.try_send(msg());
                }
            }
            None => {
                for inbox in rooms.values() {
                    let _ = inbox.try_send(msg());
                }
            }
        }
    }
}

impl LiveSignal for Hub {
    fn event(&self, session_id: Uuid, seq: u64) {
        self.tell(Some(session_id), || RoomMsg::Wake { upto: Some(seq) });
    }

    fn listening(&self, up: bool) {
        let was = self.shared.set_listening(up);
        if up && !was {
            // Whatever was missed while deaf is in the events table.
            self.tell(None, || RoomMsg::Wake { upto: None });
        }
    }
}

/// Tells the other instances this one is alive.
async fn heartbeat(shared: Arc<Shared>) {
    let every = Duration::from_secs(shared.settings.instance_heartbeat_seconds);
    loop {
        if let Err(e) = shared.store.live_heartbeat(shared.instance).await {
            tracing::warn!(error = %e, "cannot record the instance heartbeat");
        }
        tokio::time::sleep(every).await;
    }
}
