//! A room: the one task on this instance that owns a live session's state (session,
//! agenda, presence, hands, presenter, `seq`). Connections and handlers reach it only by
//! [`RoomMsg`] on its bounded channel. Every change is committed to the events table
//! before it is broadcast; events committed elsewhere (another instance, a REST handler)
//! are read back from that table, which is the source of truth.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytestring::ByteString;
use chrono::Utc;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::protocol::{self, Snapshot, You};
use super::shared::Shared;
use crate::auth::access::AgendaAccess;
use crate::domain::conflict::Conflict;
use crate::domain::live::{
    current_case, decide, media_policy, Actor, AgendaItem, Clock, Command, EventBody, LiveEvent,
    LiveState, NewLiveEvent,
};
use crate::domain::{Case, CaseView, Role, Session, SessionState, User, UserId};
use crate::signal::{self, Outbound};
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
    /// Events may have been committed elsewhere: catch up from the events table.
    Wake,
    /// The agenda changed outside the meeting: read it again.
    Reload,
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
    conns: HashMap<u64, Conn>,
    /// Answers by (sender, command id): applied ones from the event history, refused
    /// ones since this room started.
    answers: HashMap<(UserId, String), Answer>,
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
        let mut room = Room {
            shared,
            session,
            agenda,
            live: LiveState::default(),
            quorum_others,
            conns: HashMap::new(),
            answers: HashMap::new(),
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
            tokio::select! {
                msg = inbox.recv() => match msg {
                    Some(msg) => self.handle(msg).await,
                    None => break,
                },
                _ = poll.tick() => {
                    if self.shared.cross_instance && !self.shared.is_listening() {
                        self.catch_up().await;
                    }
                }
                _ = housekeeping.tick() => {
                    if self.shared.cross_instance {
                        // A wake can be lost (a full inbox), and agenda changes made
                        // through another instance do not reach this room: read both.
                        self.catch_up().await;
                        self.reload(true).await;
                    } else {
                        self.reconcile().await;
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
                    Some(last) => self.replay(id, last).await,
                    None => self.send_snapshot(id),
                }
                let _ = joined.send(());
            }
            RoomMsg::Leave { conn_id } => {
                if self.conns.remove(&conn_id).is_some() {
                    self.reconcile().await;
                }
            }
            RoomMsg::Command { conn_id, id, expected_seq, command } => {
                self.command(conn_id, id, expected_seq, command).await
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
            RoomMsg::Wake => self.catch_up().await,
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
                    self.answer(
                        conn_id,
                        &key.1,
                        &Answer::Refused(
                            "unavailable",
                            "the command could not be saved; try again".into(),
                        ),
                    );
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
        let stored = self
            .shared
            .store
            .append_live_events(self.session.id, Some(self.live.seq), events, Utc::now())
            .await?;
        self.absorb(stored).await;
        Ok(self.live.seq)
    }

    /// Reads and applies events committed elsewhere.
    async fn catch_up(&mut self) {
        loop {
            let batch = self.shared.settings.replay_limit.max(1);
            match self.shared.store.live_events(self.session.id, self.live.seq, batch).await {
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
            for conn in self.conns.values().filter(|c| !self.admitted(c)) {
                Self::show_the_door(conn);
            }
        }
    }

    async fn read_agenda(&mut self) {
        let store = &self.shared.store;
        match (store.session(self.session.id).await, store.session_cases(self.session.id).await) {
            (Ok(Some(session)), Ok(agenda)) => {
                self.session = session;
                self.agenda = agenda;
            }
            (Err(e), _) | (_, Err(e)) => tracing::warn!(error = %e, "cannot reload the agenda"),
            (Ok(None), _) => {}
        }
    }

    /// Makes presence match the connections: joins for people connected here but not
    /// present, departures for people shown here who are gone, and for people shown
    /// through an instance that has stopped.
    async fn reconcile(&mut self) {
        let me = self.shared.instance;
        let local: HashMap<UserId, &User> =
            self.conns.values().map(|c| (c.user.id, &c.user)).collect();
        let elsewhere: Vec<Uuid> = self
            .live
            .participants
            .values()
            .filter(|p| p.instance != me)
            .map(|p| p.instance)
            .collect();
        let alive = if elsewhere.is_empty() {
            Some(HashSet::new())
        } else {
            self.shared.alive_instances().await
        };
        let mut events = Vec::new();
        let mut gone = HashSet::new();
        for p in self.live.participants.values() {
            let stale = if p.instance == me {
                !local.contains_key(&p.user_id)
            } else {
                alive.as_ref().is_some_and(|a| !a.contains(&p.instance))
            };
            if stale {
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

    /// A practitioner sees the meeting through a case of theirs on the agenda; once none
    /// is left (withdrawn, moved) they are no longer admitted.
    fn admitted(&self, conn: &Conn) -> bool {
        let referrer_only =
            conn.user.role == Role::Practitioner && conn.user.id != self.session.plan.chair_id;
        !referrer_only || self.agenda.iter().any(|c| c.referrer_id == conn.user.id)
    }

    /// Closes the connection (and with it the person's media) with `not_a_participant`.
    fn show_the_door(conn: &Conn) {
        let text =
            signal::error(None, "not_a_participant", "you no longer have a case in this meeting");
        let _ = conn.tx.try_send(Outbound::Text(text));
        let _ = conn.tx.try_send(Outbound::Close);
    }

    fn send_snapshot(&self, conn_id: u64) {
        let Some(conn) = self.conns.get(&conn_id) else {
            return;
        };
        if !self.admitted(conn) {
            Self::show_the_door(conn);
            return;
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
            quorum: self.live.quorum(self.session.plan.chair_id, self.quorum_others),
            you: You {
                user_id: conn.user.id,
                role: conn.user.role,
                chair: conn.user.role == Role::Coordinator
                    || conn.user.id == self.session.plan.chair_id,
            },
        };
        let out = Outbound::Snapshot {
            text: snapshot.text(),
            cases: if identified { self.agenda.iter().map(|c| c.id).collect() } else { Vec::new() },
        };
        Self::push(conn, out);
    }

    fn send_to(&self, conn_id: u64, text: ByteString) {
        if let Some(conn) = self.conns.get(&conn_id) {
            Self::push(conn, Outbound::Text(text));
        }
    }

    fn broadcast(&self, text: ByteString) {
        for conn in self.conns.values() {
            Self::push(conn, Outbound::Text(text.clone()));
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
            active: true,
            created_at: Utc::now(),
        };
        let conn = Conn {
            id: 1,
            user,
            view: AgendaAccess::DeIdentified,
            tx,
            lag: Arc::new(AtomicU8::new(FLOWING)),
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
