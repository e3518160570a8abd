//! A room: the one task on this instance that owns a live session's state (session,
//! agenda, presence, hands, presenter, `seq`). Connections and handlers reach it only by
//! [`RoomMsg`] on its bounded channel. Every change is committed to the events table
//! before it is broadcast; events committed elsewhere (another instance, a REST handler)
//! are read back from that table, which is the source of truth.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytestring::ByteString;
use chrono::Utc;
use tokio::sync::{mpsc, oneshot, Notify};
use uuid::Uuid;

use super::protocol::{self, Snapshot, You};
use super::shared::Shared;
use super::wire;
use crate::auth::access::{agenda_access, waits_in_lobby, AgendaAccess};
use crate::domain::conflict::Conflict;
use crate::domain::invitation::InvitationKind;
use crate::domain::live::{
    check_view_target, current_case, decide, drives_viewer, media_policy, Actor, AgendaItem, Clock,
    Command, EventBody, LiveEvent, LiveState, NewLiveEvent, View,
};
use crate::domain::{AttachmentKind, Case, CaseView, Role, Session, SessionState, User, UserId};
use crate::signal::{self, Outbound, SnapshotOut};
use crate::store::StoreError;

/// A connection's queue is flowing.
pub const FLOWING: u8 = 0;
/// The room found the queue full: the writer drops the backlog and asks for a snapshot.
pub const LAGGING: u8 = 1;
/// The writer has asked for a snapshot; the room sends nothing else until it does.
pub const RESYNC_ASKED: u8 = 2;

/// One WebSocket connection as its room knows it.
#[derive(Clone)]
pub struct Conn {
    pub id: u64,
    pub user: User,
    pub view: AgendaAccess,
    pub tx: mpsc::Sender<Outbound>,
    pub lag: Arc<AtomicU8>,
    /// Set by the room while the connection is not in the meeting (a guest waiting in the
    /// lobby, or being shown out): it gets no events, and its commands and media are
    /// refused. Starts set; the room clears it when it lets the connection in.
    pub lobby: Arc<AtomicBool>,
    /// Notified by the room when the person may not be here at all any more (their
    /// account was deactivated): the connection closes at once, whatever its queue holds,
    /// and its media with it.
    pub ended: Arc<Notify>,
}

/// Where a connection stands in its meeting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Standing {
    In,
    /// A guest waiting for the chair.
    Lobby,
    /// A guest the chair turned away.
    Denied,
    /// No longer entitled (no case left, invitation withdrawn).
    Out,
}

/// What a room is asked to do.
pub enum RoomMsg {
    /// A connection joins; it first gets a snapshot, or, with `last_seq`, the events it
    /// missed. `joined` answers once it is in.
    Join {
        conn: Conn,
        last_seq: Option<u64>,
        joined: oneshot::Sender<()>,
    },
    Leave {
        conn_id: u64,
    },
    Command {
        conn_id: u64,
        id: String,
        expected_seq: Option<u64>,
        command: Command,
    },
    Resume {
        conn_id: u64,
        last_seq: u64,
    },
    /// The connection's writer dropped its backlog and wants a fresh snapshot.
    Resync {
        conn_id: u64,
    },
    /// Events may have been committed elsewhere: catch up from the events table. With
    /// `upto`, the newest event committed (a notification): nothing to read if the room
    /// has it already, as it does when the event was its own.
    Wake {
        upto: Option<u64>,
    },
    /// The agenda changed outside the meeting: read it again.
    Reload,
    /// The account was deactivated: close its connections here.
    Deactivated {
        user_id: UserId,
    },
}

/// How a command was answered, kept so a repeated id gets the same answer.
#[derive(Clone)]
enum Answer {
    Applied(u64),
    Refused(&'static str, String),
}

pub struct Room {
    shared: Arc<Shared>,
    session: Session,
    agenda: Vec<Case>,
    live: LiveState,
    quorum_others: u32,
    /// The session's active invitations.
    invited: HashMap<UserId, InvitationKind>,
    conns: HashMap<u64, Conn>,
    /// Answers by (sender, command id): applied ones from the event history, refused
    /// ones since this room started.
    answers: HashMap<(UserId, String), Answer>,
    /// Attachments the viewer was asked to show: their case, and whether each is an image.
    attachments: HashMap<Uuid, Option<(Uuid, bool)>>,
    /// When the shared view last changed, and the view command waiting for
    /// [`View::EVERY`] to pass since then (faster changes are merged: the latest wins).
    last_view: Option<Instant>,
    pending_view: Option<PendingView>,
    /// Whether the last attempt to reach the database failed: everyone has been told the
    /// meeting's changes cannot be saved, and is told again once they can.
    store_down: bool,
}

/// A view command waiting its turn, and the ones it superseded (answered
/// `view_superseded` when it goes).
struct PendingView {
    conn_id: u64,
    id: String,
    command: Command,
    superseded: Vec<(u64, String)>,
}

/// The answer to a command that could not be stored: send it again with the same id.
fn unavailable() -> Answer {
    Answer::Refused("unavailable", "the command could not be saved; try again".into())
}

/// How many times a command is re-decided after losing a race for the next `seq`.
const ATTEMPTS: usize = 5;

/// Answers kept in memory per room before refusals and no-ops are forgotten.
const MAX_ANSWERS: usize = 50_000;

impl Room {
    /// Loads the session, its agenda and its whole event history.
    pub async fn load(shared: Arc<Shared>, session_id: Uuid) -> Result<Self, StoreError> {
        let store = &shared.store;
        let session = store.session(session_id).await?.ok_or(StoreError::NotFound("session"))?;
        let agenda = store.session_cases(session_id).await?;
        let quorum_others = store.specialty_quorum(&session.plan.specialty).await?;
        let invited = store.session_invitations(session_id).await?;
        let mut room = Room {
            shared,
            session,
            agenda,
            live: LiveState::default(),
            quorum_others,
            invited: invited.into_iter().map(|i| (i.user_id, i.kind)).collect(),
            conns: HashMap::new(),
            answers: HashMap::new(),
            attachments: HashMap::new(),
            last_view: None,
            pending_view: None,
            store_down: false,
        };
        for event in room.shared.store.live_events(session_id, 0, u64::MAX).await? {
            room.remember(&event);
            room.live.apply(&event);
        }
        room.tell_media();
        Ok(room)
    }

    /// Serves messages until no connection has been here for `room_idle_seconds`.
    pub async fn run(mut self, mut inbox: mpsc::Receiver<RoomMsg>) {
        let settings = &self.shared.settings;
        let idle_after = Duration::from_secs(settings.room_idle_seconds);
        let mut poll = tokio::time::interval(Duration::from_millis(settings.poll_interval_ms));
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut housekeeping =
            tokio::time::interval(Duration::from_secs(settings.instance_heartbeat_seconds));
        housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut idle_since = Some(Instant::now());
        // Presence left by a previous run of this session's room (a crash) is cleared.
        self.reconcile().await;
        loop {
            let view_due = self.last_view.map_or_else(Instant::now, |at| at + View::EVERY);
            tokio::select! {
                msg = inbox.recv() => match msg {
                    Some(msg) => self.handle(msg).await,
                    None => break,
                },
                _ = tokio::time::sleep_until(view_due.into()), if self.pending_view.is_some() => {
                    self.flush_view().await;
                }
                _ = poll.tick() => {
                    // While the database is away, the housekeeping tick alone probes it:
                    // each attempt may wait for a connection, and commands come first.
                    let polling = self.shared.cross_instance && !self.store_down;
                    if polling && !self.shared.is_listening() {
                        self.catch_up().await;
                    }
                }
                _ = housekeeping.tick() => {
                    // A wake can be lost (a full inbox), and agenda changes made through
                    // another instance do not reach this room: read both. Catching up
                    // also probes a database that was away; while it still is, nothing
                    // else is asked of it (each attempt may wait for a connection).
                    if self.store_down || self.shared.cross_instance {
                        self.catch_up().await;
                    }
                    if !self.store_down {
                        if self.shared.cross_instance {
                            self.reload(true).await;
                        } else {
                            self.reconcile().await;
                        }
                        // Deactivations made elsewhere (another instance, the command
                        // line, a lost `Deactivated`) reach this room here.
                        self.end_deactivated_accounts().await;
                    }
                    if !self.conns.is_empty() {
                        idle_since = None;
                    } else if idle_since.get_or_insert_with(Instant::now).elapsed() >= idle_after {
                        break;
                    }
                }
            }
        }
    }

    async fn handle(&mut self, msg: RoomMsg) {
        match msg {
            RoomMsg::Join { conn, last_seq, joined } => {
                // Presence first (the newcomer hears nothing meanwhile), so their
                // snapshot already shows them; then the snapshot or the missed events.
                let id = conn.id;
                let lag = conn.lag.clone();
                lag.store(RESYNC_ASKED, Ordering::Release);
                self.conns.insert(id, conn);
                self.reconcile().await;
                lag.store(FLOWING, Ordering::Release);
                match last_seq {
                    Some(last) if self.standing_of(id) == Some(Standing::In) => {
                        if let Some(conn) = self.conns.get(&id) {
                            conn.lobby.store(false, Ordering::Release);
                        }
                        self.replay(id, last).await
                    }
                    // The snapshot (or the lobby, or the door) also sets `lobby`.
                    _ => self.send_snapshot(id),
                }
                let _ = joined.send(());
            }
            RoomMsg::Leave { conn_id } => {
                if self.conns.remove(&conn_id).is_some() {
                    self.reconcile().await;
                }
            }
            RoomMsg::Command { conn_id, id, expected_seq, command } => {
                // Views from whoever drives the viewer are paced; others are refused at once.
                let paced = matches!(command, Command::View(_)) && self.drives_viewer(conn_id);
                if paced && !self.view_may_go_now() {
                    self.hold_view(PendingView { conn_id, id, command, superseded: Vec::new() });
                } else {
                    self.command(conn_id, id, expected_seq, command).await
                }
            }
            RoomMsg::Resume { conn_id, last_seq } => self.replay(conn_id, last_seq).await,
            RoomMsg::Resync { conn_id } => {
                let asked = self.conns.get(&conn_id).is_some_and(|c| {
                    c.lag
                        .compare_exchange(
                            RESYNC_ASKED,
                            FLOWING,
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        )
                        .is_ok()
                });
                if asked {
                    self.send_snapshot(conn_id);
                }
            }
            RoomMsg::Wake { upto: Some(seq) } if seq <= self.live.seq => {}
            RoomMsg::Wake { .. } => self.catch_up().await,
            RoomMsg::Deactivated { user_id } => self.end_accounts(&[user_id]),
            // Nothing changed outside while the database is away; the housekeeping tick
            // reads everything again once it is back.
            RoomMsg::Reload if self.store_down => {}
            RoomMsg::Reload => {
                // Outside changes: the agenda, and the specialty's quorum (read only here,
                // not after every event).
                self.reload(true).await;
                let specialty = &self.session.plan.specialty;
                if let Ok(n) = self.shared.store.specialty_quorum(specialty).await {
                    self.quorum_others = n;
                }
            }
        }
    }

    /// Decides and commits one client command, answering its sender. The span carries
    /// ids only (the command's kind and ids, never patient data), so a slow command can
    /// be followed from the socket to the store.
    #[tracing::instrument(
        skip_all,
        fields(
            session_id = %self.session.id,
            conn_id = conn_id,
            command_id = %id,
            command = ?command,
            user_id = tracing::field::Empty,
        )
    )]
    async fn command(
        &mut self, conn_id: u64, id: String, expected_seq: Option<u64>, command: Command,
    ) {
        let Some(conn) = self.conns.get(&conn_id) else {
            return;
        };
        tracing::Span::current().record("user_id", tracing::field::display(conn.user.id));
        if conn.lobby.load(Ordering::Acquire) {
            let message = "you are waiting in the lobby until the chair lets you in";
            self.answer(conn_id, &id, &Answer::Refused("in_lobby", message.into()));
            return;
        }
        let actor = Actor { user_id: conn.user.id, role: conn.user.role };
        let key = (actor.user_id, id);
        if let Some(answer) = self.answers.get(&key).cloned() {
            self.answer(conn_id, &key.1, &answer);
            return;
        }
        if expected_seq.is_some_and(|e| e != self.live.seq) {
            self.refuse_stale(conn_id, &key.1);
            return;
        }
        if self.store_down {
            // Answered at once rather than after another wait for a connection; the
            // housekeeping tick finds the database back (`live.instance_heartbeat_seconds`).
            self.answer(conn_id, &key.1, &unavailable());
            return;
        }
        // The attachment is looked up for those who drive the viewer (others are refused
        // by `decide`, without learning whether it exists).
        let target_id = match &command {
            Command::View(View { attachment_id: Some(id), .. }) if self.drives_viewer(conn_id) => {
                Some(*id)
            }
            _ => None,
        };
        if let Some(attachment_id) = target_id {
            let target = self.attachment(attachment_id).await;
            let current = current_case(&self.agenda_items());
            if let Err(refusal) = check_view_target(current, target) {
                self.answer(conn_id, &key.1, &Answer::Refused(refusal.code, refusal.message));
                return;
            }
        }
        for _ in 0..ATTEMPTS {
            let events = match decide(
                &self.session,
                &self.agenda_items(),
                &self.live,
                &actor,
                &command,
                Clock {
                    now: Utc::now(),
                    open_early: chrono::Duration::minutes(i64::from(
                        self.shared.settings.open_early_minutes,
                    )),
                },
            ) {
                Ok(events) => events,
                Err(refusal) => {
                    let answer = Answer::Refused(refusal.code, refusal.message);
                    self.answer(conn_id, &key.1, &answer);
                    self.keep_answer(key, answer);
                    return;
                }
            };
            if events.is_empty() {
                let answer = Answer::Applied(self.live.seq);
                self.answer(conn_id, &key.1, &answer);
                self.keep_answer(key, answer);
                return;
            }
            let last = events.len() - 1;
            let events = events
                .into_iter()
                .enumerate()
                .map(|(i, body)| NewLiveEvent {
                    body,
                    actor: Some(actor.user_id),
                    command_id: (i == last).then(|| key.1.clone()),
                })
                .collect();
            match self.commit(events).await {
                Ok(seq) => {
                    self.answer(conn_id, &key.1, &Answer::Applied(seq));
                    if matches!(command, Command::Admit { .. }) {
                        // The guest's presence, now that they are in.
                        self.reconcile().await;
                    }
                    return;
                }
                Err(StoreError::Conflict(Conflict::StaleSeq | Conflict::DuplicateCommand)) => {
                    // Another writer got in first (or this very command was applied
                    // elsewhere): catch up, then answer from history or decide again.
                    self.catch_up().await;
                    if let Some(answer) = self.answers.get(&key).cloned() {
                        self.answer(conn_id, &key.1, &answer);
                        return;
                    }
                    if expected_seq.is_some_and(|e| e != self.live.seq) {
                        self.refuse_stale(conn_id, &key.1);
                        return;
                    }
                }
                Err(StoreError::Conflict(Conflict::InvalidState(_) | Conflict::AgendaChanged)) => {
                    // The agenda changed outside the meeting (a withdrawal, a move):
                    // reload it and decide again.
                    self.reload(true).await;
                }
                Err(StoreError::Conflict(conflict)) => {
                    let answer = Answer::Refused(conflict.code(), conflict.to_string());
                    self.answer(conn_id, &key.1, &answer);
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "live command not stored");
                    self.answer(conn_id, &key.1, &unavailable());
                    return;
                }
            }
        }
        self.answer(
            conn_id,
            &key.1,
            &Answer::Refused("busy", "the session is changing fast; try again".into()),
        );
    }

    /// Whether the connection's person drives the shared viewer, as `decide` will check.
    fn drives_viewer(&self, conn_id: u64) -> bool {
        self.conns.get(&conn_id).is_some_and(|c| {
            let actor = Actor { user_id: c.user.id, role: c.user.role };
            drives_viewer(&self.session, &self.live, &actor)
        })
    }

    /// Whether a view command may be decided now: the last change is [`View::EVERY`] old.
    fn view_may_go_now(&mut self) -> bool {
        let now = Instant::now();
        if self.pending_view.is_some() || self.last_view.is_some_and(|at| now < at + View::EVERY) {
            return false;
        }
        self.last_view = Some(now);
        true
    }

    /// Keeps a view command until its turn; the one it replaces is superseded.
    fn hold_view(&mut self, mut view: PendingView) {
        if let Some(older) = self.pending_view.take() {
            view.superseded = older.superseded;
            view.superseded.push((older.conn_id, older.id));
        }
        self.pending_view = Some(view);
    }

    /// Decides the waiting view command, and tells the senders of those it replaced.
    async fn flush_view(&mut self) {
        let Some(view) = self.pending_view.take() else {
            return;
        };
        self.last_view = Some(Instant::now());
        for (conn_id, id) in &view.superseded {
            let message =
                "a later view replaced this one (views change at most ten times a second)";
            self.answer(*conn_id, id, &Answer::Refused("view_superseded", message.into()));
        }
        self.command(view.conn_id, view.id, None, view.command).await;
    }

    /// An attachment's case and whether it is an image (`None` if there is no such
    /// attachment), read once per room.
    async fn attachment(&mut self, id: Uuid) -> Option<(Uuid, bool)> {
        if let Some(known) = self.attachments.get(&id) {
            return *known;
        }
        match self.shared.store.attachment(id).await {
            Ok(found) => {
                let target = found.map(|a| {
                    let kind = AttachmentKind::from_mime(&a.content_type);
                    let image = matches!(
                        kind,
                        Some(AttachmentKind::Png | AttachmentKind::Jpeg | AttachmentKind::Dicom)
                    );
                    (a.case_id, image)
                });
                self.attachments.insert(id, target);
                target
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read an attachment for the viewer");
                None
            }
        }
    }

    fn refuse_stale(&mut self, conn_id: u64, id: &str) {
        self.send_to(
            conn_id,
            signal::error(
                Some(id),
                "stale_seq",
                "the session has moved on; here is the current state",
            ),
        );
        self.send_snapshot(conn_id);
    }

    /// Keeps an answer that no event records (a refusal, a command that changed nothing),
    /// within a bound so no sender can grow it without limit.
    fn keep_answer(&mut self, key: (UserId, String), answer: Answer) {
        if self.answers.len() >= MAX_ANSWERS {
            self.answers.retain(|_, a| matches!(a, Answer::Applied(_)));
        }
        if self.answers.len() < MAX_ANSWERS {
            self.answers.insert(key, answer);
        }
    }

    fn answer(&self, conn_id: u64, id: &str, answer: &Answer) {
        let text = match answer {
            Answer::Applied(seq) => protocol::ack(id, *seq),
            Answer::Refused(code, message) => signal::error(Some(id), code, message),
        };
        self.send_to(conn_id, text);
    }

    /// Appends events after the current `seq` and, once committed, applies and
    /// broadcasts them. Returns the last `seq`.
    #[tracing::instrument(
        skip_all,
        fields(session_id = %self.session.id, after_seq = self.live.seq, events = events.len())
    )]
    async fn commit(&mut self, events: Vec<NewLiveEvent>) -> Result<u64, StoreError> {
        let now = Utc::now();
        let mut mail = super::letters::ListedMail::default();
        for event in &events {
            if let EventBody::ListedConfirmed { case_ids, signed_by } = &event.body {
                let (session, agenda) = (&self.session, &self.agenda);
                let more = super::letters::listed_mail(
                    &self.shared,
                    session,
                    agenda,
                    case_ids,
                    *signed_by,
                    now,
                )
                .await?;
                mail.notices.extend(more.notices);
                mail.letters.extend(more.letters);
            }
        }
        let stored = self
            .shared
            .store
            .append_live_events_mailing(
                self.session.id,
                Some(self.live.seq),
                events,
                (&mail.notices, &mail.letters),
                now,
            )
            .await;
        let stored = self.reached_store(stored)?;
        self.absorb(stored).await;
        Ok(self.live.seq)
    }

    /// Notes whether the database answered, telling everyone when that changes: while it
    /// cannot be reached, commands are refused (`unavailable`, to be sent again with the
    /// same id) and everyone hears `{"type":"service","state":"unavailable"}`; once it
    /// answers again, `{"type":"service","state":"available"}`.
    fn reached_store<T>(&mut self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        let down = matches!(result, Err(StoreError::Busy | StoreError::Database(_)));
        if down != self.store_down {
            self.store_down = down;
            self.broadcast(protocol::service(!down));
        }
        result
    }

    /// Reads and applies events committed elsewhere.
    async fn catch_up(&mut self) {
        loop {
            let batch = self.shared.settings.replay_limit.max(1);
            let read = self.shared.store.live_events(self.session.id, self.live.seq, batch).await;
            match self.reached_store(read) {
                Ok(events) if events.is_empty() => break,
                Ok(events) => {
                    let full = events.len() as u64 == batch;
                    self.absorb(events).await;
                    if !full {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read live events");
                    return;
                }
            }
        }
        self.reconcile().await;
    }

    /// Applies committed events in order, broadcasts each, and reloads the session and
    /// agenda when they changed.
    async fn absorb(&mut self, events: Vec<LiveEvent>) {
        let mut reload = false;
        let mut applied = Vec::with_capacity(events.len());
        for event in events {
            if event.seq != self.live.seq + 1 {
                continue;
            }
            self.remember(&event);
            self.live.apply(&event);
            match event.body {
                EventBody::MeetingOpened => self.session.state = SessionState::Live,
                EventBody::MeetingClosed => self.session.state = SessionState::Closed,
                _ => {}
            }
            reload |= event.body.touches_agenda();
            applied.push(event);
        }
        if applied.is_empty() {
            return;
        }
        // The SFU learns what the batch changes before anyone hears of it (once, so it
        // never acts on a state between two events of one command): a client that offers
        // the instant it reads `meeting_opened` finds the media open, whatever the reload
        // below takes or however it ends.
        self.tell_media();
        for event in &applied {
            self.broadcast(protocol::event(event));
        }
        // A guest let in gets the meeting; one turned away is told and shown out.
        for event in &applied {
            if let EventBody::LobbyAdmitted { user_id } | EventBody::LobbyDenied { user_id } =
                event.body
            {
                let ids: Vec<u64> =
                    self.conns.values().filter(|c| c.user.id == user_id).map(|c| c.id).collect();
                for id in ids {
                    self.send_snapshot(id);
                }
            }
        }
        if reload {
            self.reload(false).await;
        }
    }

    /// Tells the SFU what it may forward now (presenter, microphones, meeting open).
    fn tell_media(&self) {
        self.shared.media.set_policy(self.session.id, media_policy(&self.session, &self.live));
    }

    fn remember(&mut self, event: &LiveEvent) {
        if let (Some(actor), Some(id)) = (event.actor, &event.command_id) {
            self.answers.insert((actor, id.clone()), Answer::Applied(event.seq));
        }
    }

    /// Reads the agenda again. `outside` says the change (if any) was made outside the
    /// meeting (a booking, a withdrawal, a move, a reorder over REST): it has no event, so
    /// when the agenda's cases or order changed, everyone gets it as a snapshot. After the
    /// meeting's own events (`outside` false) the events have told everyone already.
    async fn reload(&mut self, outside: bool) {
        let before: Vec<Uuid> = self.agenda.iter().map(|c| c.id).collect();
        self.read_agenda().await;
        self.tell_media();
        if outside && self.agenda.iter().map(|c| c.id).ne(before) {
            // Snapshots also show the door to whoever the new agenda no longer admits.
            let ids: Vec<u64> = self.conns.keys().copied().collect();
            for id in ids {
                self.send_snapshot(id);
            }
        } else {
            for conn in self.conns.values() {
                match self.standing(conn) {
                    Standing::Out => Self::show_the_door(conn),
                    Standing::Denied => Self::turn_away(conn),
                    Standing::In | Standing::Lobby => {}
                }
            }
        }
    }

    /// Reads the session, its agenda and its invitations again; stops at the first read
    /// that fails (a database that cannot be reached is not asked three times).
    async fn read_agenda(&mut self) {
        let store = self.shared.store.clone();
        let id = self.session.id;
        let read = store.session(id).await;
        let session = match self.reached_store(read) {
            Ok(found) => found,
            Err(e) => return tracing::warn!(error = %e, "cannot reload the agenda"),
        };
        let read = store.session_cases(id).await;
        match self.reached_store(read) {
            Ok(agenda) => {
                if let Some(session) = session {
                    self.session = session;
                    self.agenda = agenda;
                }
            }
            Err(e) => return tracing::warn!(error = %e, "cannot reload the agenda"),
        }
        let read = store.session_invitations(id).await;
        match self.reached_store(read) {
            Ok(found) => self.invited = found.into_iter().map(|i| (i.user_id, i.kind)).collect(),
            Err(e) => tracing::warn!(error = %e, "cannot reload the invitations"),
        }
    }

    /// Makes presence match the connections: joins for people connected here but not
    /// present, departures for people shown here who are gone, and for people shown
    /// through an instance that has stopped. The lobby likewise, for guests waiting.
    async fn reconcile(&mut self) {
        let me = self.shared.instance;
        let mut local: HashMap<UserId, &User> = HashMap::new();
        let mut waiting: HashMap<UserId, &User> = HashMap::new();
        for c in self.conns.values() {
            match self.standing(c) {
                Standing::In => local.insert(c.user.id, &c.user),
                Standing::Lobby => waiting.insert(c.user.id, &c.user),
                Standing::Denied | Standing::Out => None,
            };
        }
        let elsewhere: Vec<Uuid> = self
            .live
            .participants
            .values()
            .map(|p| p.instance)
            .chain(self.live.lobby.values().map(|l| l.instance))
            .filter(|i| *i != me)
            .collect();
        let alive = if elsewhere.is_empty() {
            Some(HashSet::new())
        } else {
            self.shared.alive_instances().await
        };
        let mut events = Vec::new();
        let mut gone = HashSet::new();
        let lost = |instance: Uuid, user: &UserId, here: &HashMap<UserId, &User>| {
            if instance == me {
                !here.contains_key(user)
            } else {
                alive.as_ref().is_some_and(|a| !a.contains(&instance))
            }
        };
        for p in self.live.participants.values() {
            if lost(p.instance, &p.user_id, &local) {
                gone.insert(p.user_id);
                let actor = (p.instance == me).then_some(p.user_id);
                events.extend(
                    self.live.departure(p.user_id).into_iter().map(|body| NewLiveEvent {
                        body,
                        actor,
                        command_id: None,
                    }),
                );
            }
        }
        let mut left_lobby = HashSet::new();
        for l in self.live.lobby.values().filter(|l| lost(l.instance, &l.user_id, &waiting)) {
            left_lobby.insert(l.user_id);
            let actor = (l.instance == me).then_some(l.user_id);
            let body = EventBody::LobbyLeft { user_id: l.user_id };
            events.push(NewLiveEvent { body, actor, command_id: None });
        }
        for user in waiting.values() {
            if !self.live.lobby.contains_key(&user.id) || left_lobby.contains(&user.id) {
                events.push(NewLiveEvent {
                    body: EventBody::LobbyWaiting {
                        user_id: user.id,
                        name: user.name.as_str().to_owned(),
                        role: user.role,
                        organisation: user.organisation.clone(),
                        instance: me,
                    },
                    actor: Some(user.id),
                    command_id: None,
                });
            }
        }
        for user in local.values() {
            if !self.live.participants.contains_key(&user.id) || gone.contains(&user.id) {
                events.push(NewLiveEvent {
                    body: EventBody::ParticipantJoined {
                        user_id: user.id,
                        name: user.name.as_str().to_owned(),
                        role: user.role,
                        instance: me,
                    },
                    actor: Some(user.id),
                    command_id: None,
                });
            }
        }
        if events.is_empty() {
            return;
        }
        match self.commit(events).await {
            Ok(_) => {}
            // Someone else wrote first: the next wake or tick catches up and retries.
            Err(StoreError::Conflict(_)) => {}
            Err(e) => tracing::warn!(error = %e, "cannot record presence"),
        }
    }

    async fn replay(&mut self, conn_id: u64, last_seq: u64) {
        if self.conns.get(&conn_id).is_some_and(|c| c.lobby.load(Ordering::Acquire)) {
            self.send_snapshot(conn_id);
            return;
        }
        let behind = self.live.seq.saturating_sub(last_seq);
        if last_seq > self.live.seq || behind > self.shared.settings.replay_limit {
            self.send_snapshot(conn_id);
            return;
        }
        if behind == 0 {
            return;
        }
        match self.shared.store.live_events(self.session.id, last_seq, behind).await {
            Ok(events) => {
                for event in &events {
                    self.send_to(conn_id, protocol::event(event));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot replay live events");
                self.send_snapshot(conn_id);
            }
        }
    }

    fn agenda_items(&self) -> Vec<AgendaItem> {
        self.agenda.iter().map(|c| AgendaItem { case_id: c.id, state: c.state }).collect()
    }

    /// Whether the connection is in the meeting, by the agenda rules of REST as they
    /// stand now: a practitioner sees it through a case of theirs on the agenda (none left
    /// — withdrawn, moved — and they are out), an invitee through their invitation (out
    /// once withdrawn); a guest waits in the lobby until the chair lets them in.
    fn standing(&self, conn: &Conn) -> Standing {
        let user = &conn.user;
        if user.id == self.session.plan.chair_id {
            return Standing::In;
        }
        let booked = self.agenda.iter().any(|c| c.referrer_id == user.id);
        let invited = self.invited.get(&user.id).copied();
        if waits_in_lobby(user, &self.session, booked, invited) {
            if self.live.admitted.contains(&user.id) {
                Standing::In
            } else if self.live.denied.contains(&user.id) {
                Standing::Denied
            } else {
                Standing::Lobby
            }
        } else if agenda_access(user, &self.session, booked, invited) == AgendaAccess::None {
            Standing::Out
        } else {
            Standing::In
        }
    }

    fn standing_of(&self, conn_id: u64) -> Option<Standing> {
        self.conns.get(&conn_id).map(|c| self.standing(c))
    }

    /// Ends the connections of `users` (deactivated accounts): each closes at once with
    /// `account_deactivated`; leaving the room then follows from the connection's end.
    fn end_accounts(&self, users: &[UserId]) {
        for conn in self.conns.values().filter(|c| users.contains(&c.user.id)) {
            conn.ended.notify_one();
        }
    }

    /// Asks the store which connected people's accounts are no longer active, and ends
    /// their connections.
    async fn end_deactivated_accounts(&self) {
        let ids: HashSet<UserId> = self.conns.values().map(|c| c.user.id).collect();
        let ids: Vec<UserId> = ids.into_iter().collect();
        match self.shared.store.inactive_users(&ids).await {
            Ok(inactive) => self.end_accounts(&inactive),
            Err(e) => tracing::warn!(error = %e, "cannot check the connected accounts"),
        }
    }

    /// Tells a guest the chair turned them away, and closes the connection.
    fn turn_away(conn: &Conn) {
        let text =
            signal::error(None, "entry_denied", "the chair did not let you into this meeting");
        let _ = conn.tx.try_send(Outbound::Text(text));
        let _ = conn.tx.try_send(Outbound::Close(None));
    }

    /// Closes the connection (and with it the person's media) with `not_a_participant`.
    fn show_the_door(conn: &Conn) {
        let text =
            signal::error(None, "not_a_participant", "you no longer have a case in this meeting");
        let _ = conn.tx.try_send(Outbound::Text(text));
        let _ = conn.tx.try_send(Outbound::Close(None));
    }

    fn send_snapshot(&self, conn_id: u64) {
        let Some(conn) = self.conns.get(&conn_id) else {
            return;
        };
        let standing = self.standing(conn);
        conn.lobby.store(standing != Standing::In, Ordering::Release);
        match standing {
            Standing::In => {}
            Standing::Lobby => {
                return Self::push(conn, Outbound::Text(protocol::lobby(self.session.id)))
            }
            Standing::Denied => return Self::turn_away(conn),
            Standing::Out => return Self::show_the_door(conn),
        }
        let identified = conn.view == AgendaAccess::Full;
        let today = Utc::now().date_naive();
        let current_case = current_case(&self.agenda_items());
        let snapshot = Snapshot {
            kind: "snapshot",
            seq: self.live.seq,
            session: (&self.session).into(),
            agenda: self
                .agenda
                .iter()
                .enumerate()
                .map(|(i, c)| CaseView::of(c, identified, i + 1, today))
                .collect(),
            current_case,
            current_case_since: self
                .live
                .discussing
                .filter(|(id, _)| Some(*id) == current_case)
                .map(|(_, at)| at),
            participants: self.live.participants.values().collect(),
            presenter: self.live.presenter,
            hands: &self.live.hands,
            present_requests: &self.live.present_requests,
            lobby: self.live.lobby.values().collect(),
            view: self.live.view.as_ref(),
            quorum: self.live.quorum(self.session.plan.chair_id, self.quorum_others),
            you: You {
                user_id: conn.user.id,
                role: conn.user.role,
                chair: conn.user.role == Role::Coordinator
                    || conn.user.id == self.session.plan.chair_id,
            },
        };
        let out = Outbound::Snapshot(Box::new(SnapshotOut {
            text: snapshot.text(),
            cases: if identified { self.agenda.iter().map(|c| c.id).collect() } else { Vec::new() },
        }));
        Self::push(conn, out);
    }

    fn send_to(&self, conn_id: u64, text: ByteString) {
        if let Some(conn) = self.conns.get(&conn_id) {
            Self::push(conn, Outbound::Text(text));
        }
    }

    /// Sends the same text to everyone in the meeting, framed once for all of them.
    fn broadcast(&self, text: ByteString) {
        let frame = wire::text_frame(&text);
        for conn in self.conns.values().filter(|c| !c.lobby.load(Ordering::Acquire)) {
            Self::push(conn, Outbound::Frame(frame.clone()));
        }
    }

    /// Queues without waiting: a full queue marks the connection as lagging (its writer
    /// then asks for a snapshot); a lagging connection is sent nothing until then.
    fn push(conn: &Conn, out: Outbound) {
        if conn.lag.load(Ordering::Acquire) != FLOWING {
            return;
        }
        if let Err(mpsc::error::TrySendError::Full(_)) = conn.tx.try_send(out) {
            conn.lag.store(LAGGING, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(capacity: usize) -> (Conn, mpsc::Receiver<Outbound>) {
        let (tx, rx) = mpsc::channel(capacity);
        let user = User {
            id: UserId::new(),
            email: crate::domain::EmailAddress::parse("slow@example.org").unwrap(),
            name: crate::domain::PersonName::parse("Slow Reader").unwrap(),
            role: Role::Trainee,
            specialties: Vec::new(),
            organisation: None,
            active: true,
            must_change_password: false,
            created_at: Utc::now(),
        };
        let conn = Conn {
            id: 1,
            user,
            view: AgendaAccess::DeIdentified,
            tx,
            lag: Arc::new(AtomicU8::new(FLOWING)),
            lobby: Arc::new(AtomicBool::new(false)),
            ended: Arc::new(Notify::new()),
        };
        (conn, rx)
    }

    #[test]
    fn a_full_queue_marks_the_connection_lagging_and_nothing_more_is_queued() {
        let (conn, mut rx) = conn(2);
        for _ in 0..2 {
            Room::push(&conn, Outbound::Text("e".into()));
        }
        assert_eq!(conn.lag.load(Ordering::Acquire), FLOWING);
        Room::push(&conn, Outbound::Text("overflow".into()));
        assert_eq!(conn.lag.load(Ordering::Acquire), LAGGING);
        // Drained by its writer, the queue still gets nothing until the snapshot.
        while rx.try_recv().is_ok() {}
        Room::push(&conn, Outbound::Text("later".into()));
        assert!(rx.try_recv().is_err(), "a lagging connection is skipped");
    }
}
