//! The live meeting's storage: its append-only event history (each event applying its
//! durable change — session and case states by `domain::live`'s transitions, agenda
//! order, deferrals, attendance — in the appending transaction), WebSocket tickets and
//! instance heartbeats. The rules live in `domain::live` and `domain::booking`; this
//! file only applies them.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::core::Store;
use super::db::Tx;
use super::error::{StoreError, Unique};
use super::sql::args;
use super::{rows, schedule};
use crate::domain::conflict::Conflict;
use crate::domain::letter::NewLetter;
use crate::domain::live::{
    case_transition, session_transition, Attendance, EventBody, LiveEvent, NewLiveEvent,
};
use crate::domain::{booking, Case, CaseState, NewMessage, Session, SessionState, UserId};

const LATER_SESSIONS: &str = "SELECT later.id AS id FROM sessions this \
    JOIN sessions later ON later.series_id = this.series_id WHERE this.id = $1 \
    AND later.starts_at > this.starts_at AND later.state IN ('scheduled', 'published')";
const EVENTS_AFTER: &str =
    "SELECT * FROM session_events WHERE session_id = $1 AND seq > $2 ORDER BY seq LIMIT $3";
const INSERT_TICKET: &str = "INSERT INTO live_tickets \
    (ticket_hash, session_id, user_id, expires_at) VALUES ($1, $2, $3, $4)";
const USE_TICKET: &str = "UPDATE live_tickets SET used_at = $3 WHERE ticket_hash = $1 \
    AND session_id = $2 AND used_at IS NULL AND expires_at > $3 RETURNING user_id";
const ATTENDANCE: &str =
    "SELECT * FROM attendance WHERE session_id = $1 ORDER BY joined_at, user_id";
const LAST_SEQ: &str =
    "SELECT COALESCE(MAX(seq), 0) AS n FROM session_events WHERE session_id = $1";
const INSERT_EVENT: &str = "INSERT INTO session_events \
    (session_id, seq, kind, payload, actor_id, command_id, occurred_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7)";
const JOINED: &str = "INSERT INTO attendance (id, session_id, user_id, role, joined_at) \
    VALUES ($1, $2, $3, $4, $5)";
const LEFT: &str = "UPDATE attendance SET left_at = $1 \
    WHERE session_id = $2 AND user_id = $3 AND left_at IS NULL";
const CASE_IN: &str = "SELECT * FROM cases WHERE id = $1 AND session_id = $2 FOR UPDATE";
// A SQLite database is served by one process, so that process's clock is the clock.
const HEARTBEAT_PG: &str = "INSERT INTO live_instances (id, seen_at) VALUES ($1, now()) \
    ON CONFLICT (id) DO UPDATE SET seen_at = now()";
const HEARTBEAT_SQLITE: &str = "INSERT INTO live_instances (id, seen_at) VALUES ($1, $2) \
    ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at";
const ALIVE_PG: &str =
    "SELECT id FROM live_instances WHERE seen_at >= now() - make_interval(secs => $1)";
const ALIVE_SQLITE: &str = "SELECT id FROM live_instances WHERE seen_at >= $1";

impl Store {
    /// Appends events to a session's history in one transaction, each applying its
    /// durable change (session state, case states and order, deferrals, attendance).
    /// `seq` continues from the last stored event; with `expected_seq` the history must
    /// end exactly there (`409 stale_seq` otherwise: another writer got in first). A
    /// command id already used by the same actor is `409 duplicate_command`. Deferral
    /// events come back completed with where the case went. With PostgreSQL the other
    /// instances are notified on commit.
    #[tracing::instrument(skip_all, fields(session_id = %session_id))]
    pub async fn append_live_events(
        &self, session_id: Uuid, expected_seq: Option<u64>, events: Vec<NewLiveEvent>,
        now: DateTime<Utc>,
    ) -> Result<Vec<LiveEvent>, StoreError> {
        self.append_live_events_mailing(session_id, expected_seq, events, (&[], &[]), now).await
    }

    /// [`Store::append_live_events`], queueing `mail` and storing each case's version-1
    /// `letters` (those of the outcomes a `listed_confirmed` event signs) in the same
    /// transaction.
    #[tracing::instrument(skip_all, fields(session_id = %session_id))]
    pub async fn append_live_events_mailing(
        &self, session_id: Uuid, expected_seq: Option<u64>, events: Vec<NewLiveEvent>,
        (mail, letters): (&[NewMessage], &[(Uuid, Vec<NewLetter>)]), now: DateTime<Utc>,
    ) -> Result<Vec<LiveEvent>, StoreError> {
        let mut tx = self.db.write().await?;
        // Sessions are locked in id order before any case row (as every writer does); a
        // deferral also locks the later sessions of the series it may move into.
        let mut involved = vec![session_id];
        let defers = |e: &NewLiveEvent| matches!(e.body, EventBody::CaseDeferred { .. });
        if events.iter().any(defers) {
            let later = tx.all(LATER_SESSIONS, args![session_id]).await?;
            involved.extend(rows::ids(&later, "id")?);
        }
        tx.lock_sessions(&involved).await?;
        let stored = append_events_in(&mut tx, session_id, expected_seq, events, now).await?;
        for message in mail {
            super::outbox::enqueue_in(&mut tx, message, now).await?;
        }
        for (case_id, case_letters) in letters {
            super::letters::insert_letters_in(&mut tx, *case_id, 1, case_letters, now).await?;
        }
        tx.commit().await?;
        Ok(stored)
    }

    /// Up to `limit` events after `after_seq`, in order.
    #[tracing::instrument(skip_all, fields(session_id = %session_id, after_seq = after_seq))]
    pub async fn live_events(
        &self, session_id: Uuid, after_seq: u64, limit: u64,
    ) -> Result<Vec<LiveEvent>, StoreError> {
        let bound = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let args = args![session_id, bound(after_seq), bound(limit)];
        let rows = self.db.all(EVENTS_AFTER, args).await?;
        rows.iter().map(rows::live_event).collect()
    }

    /// Stores a live-channel ticket (only its hash) for one user and session.
    #[tracing::instrument(skip_all, fields(session_id = %session_id, user_id = %user))]
    pub async fn create_live_ticket(
        &self, ticket_hash: &str, session_id: Uuid, user: UserId, expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.write().await?;
        let stale = Utc::now() - chrono::Duration::hours(1);
        let sql = "DELETE FROM live_tickets WHERE expires_at < $1";
        tx.run(sql, args![stale]).await?;
        let args = args![ticket_hash, session_id, user, expires_at];
        tx.run(INSERT_TICKET, args).await?;
        tx.commit().await
    }

    /// Uses a ticket once: the user it was issued to, if it is for `session_id`, unused
    /// and unexpired; `None` otherwise.
    #[tracing::instrument(skip_all, fields(session_id = %session_id))]
    pub async fn use_live_ticket(
        &self, ticket_hash: &str, session_id: Uuid, now: DateTime<Utc>,
    ) -> Result<Option<UserId>, StoreError> {
        let args = args![ticket_hash, session_id, now];
        let row = self.db.opt(USE_TICKET, args).await?;
        row.map(|r| r.get("user_id")).transpose()
    }

    /// Records that this server instance is alive, by the database's clock (so instances
    /// with skewed clocks still agree on who is alive).
    #[tracing::instrument(skip_all, fields(instance = %instance))]
    pub async fn live_heartbeat(&self, instance: Uuid) -> Result<(), StoreError> {
        let (sql, args) = if self.db.is_postgres() {
            (HEARTBEAT_PG, args![instance])
        } else {
            (HEARTBEAT_SQLITE, args![instance, Utc::now()])
        };
        self.db.run(sql, args).await.map(|_| ())
    }

    /// Instances whose last heartbeat is at most `seconds` old by the database's clock.
    #[tracing::instrument(skip_all)]
    pub async fn live_instances_alive(&self, seconds: u64) -> Result<Vec<Uuid>, StoreError> {
        let seconds = i64::try_from(seconds).unwrap_or(i64::MAX);
        let (sql, args) = if self.db.is_postgres() {
            (ALIVE_PG, args![seconds])
        } else {
            (ALIVE_SQLITE, args![Utc::now() - chrono::Duration::seconds(seconds)])
        };
        let rows = self.db.all(sql, args).await?;
        rows::ids(&rows, "id")
    }

    /// Join and leave times of everyone who attended a session.
    #[tracing::instrument(skip_all, fields(session_id = %session_id))]
    pub async fn session_attendance(
        &self, session_id: Uuid,
    ) -> Result<Vec<Attendance>, StoreError> {
        let rows = self.db.all(ATTENDANCE, args![session_id]).await?;
        rows.iter().map(rows::attendance).collect()
    }
}

/// Appends events to a session's history inside the caller's write transaction (which,
/// on PostgreSQL, already holds the session's row lock and those of the sessions a
/// deferral may move into), applying each event's change; `seq` continues from the last
/// stored event. Other instances are notified on commit.
pub(super) async fn append_events_in(
    tx: &mut Tx, session_id: Uuid, expected_seq: Option<u64>, events: Vec<NewLiveEvent>,
    now: DateTime<Utc>,
) -> Result<Vec<LiveEvent>, StoreError> {
    let mut session = schedule::session_in(tx, session_id).await?;
    let last: u64 = rows::count(&tx.one(LAST_SEQ, args![session_id]).await?, "n")?;
    if expected_seq.is_some_and(|e| e != last) {
        return Err(Conflict::StaleSeq.into());
    }
    let mut stored = Vec::with_capacity(events.len());
    for (seq, event) in (last + 1..).zip(events) {
        let body = apply_live_event(tx, &mut session, event.body, now).await?;
        let payload = serde_json::to_string(&body).map_err(|_| StoreError::corrupt("event"))?;
        let n = i64::try_from(seq).map_err(|_| StoreError::corrupt("seq"))?;
        let (kind, command) = (body.kind(), &event.command_id);
        let args = args![session_id, n, kind, payload, event.actor, command, now];
        match tx.run(INSERT_EVENT, args).await {
            Err(e) if e.is_unique(Unique::EventCommand) => {
                return Err(Conflict::DuplicateCommand.into())
            }
            Err(e) if e.is_unique(Unique::EventSeq) => return Err(Conflict::StaleSeq.into()),
            other => other?,
        };
        stored.push(LiveEvent {
            session_id,
            seq,
            body,
            actor: event.actor,
            command_id: event.command_id,
            at: now,
        });
    }
    if let Some(newest) = stored.last() {
        tx.notify_live(session_id, newest.seq).await?;
    }
    Ok(stored)
}

/// Applies what one event changes in the session's tables: the session's and the named
/// case's states by `domain::live`'s transitions (the rows are locked, so the check and
/// the update cannot be overtaken), the agenda order and attendance. Returns the event,
/// completed where the store decides (deferrals).
async fn apply_live_event(
    tx: &mut Tx, session: &mut Session, body: EventBody, now: DateTime<Utc>,
) -> Result<EventBody, StoreError> {
    if let Some(next) = session_transition(session.state, &body).transpose()? {
        let sql = "UPDATE sessions SET state = $1 WHERE id = $2";
        tx.run(sql, args![next.as_str(), session.id]).await?;
        session.state = next;
    }
    let case_id = match &body {
        EventBody::CaseStarted { case_id }
        | EventBody::CaseCompleted { case_id }
        | EventBody::CaseDeferred { case_id, .. } => Some(*case_id),
        _ => None,
    };
    if let Some(case_id) = case_id {
        let started = matches!(body, EventBody::CaseStarted { .. });
        super::facts::discussion_in(tx, case_id, session.id, started, now).await?;
        let row = tx.opt(CASE_IN, args![case_id, session.id]).await?;
        let case = row.as_ref().map(rows::case).transpose()?;
        // A case not on this session's agenda changes as a withdrawn one would: never.
        let from = case.as_ref().map_or(CaseState::Withdrawn, |c| c.state);
        match (case_transition(from, &body).transpose()?, case) {
            (Some(CaseState::Deferred), Some(case)) => {
                return defer_case_in(tx, session, &case, now).await
            }
            (Some(next), _) => {
                let sql = "UPDATE cases SET state = $1 WHERE id = $2";
                tx.run(sql, args![next.as_str(), case_id]).await?;
            }
            (None, _) => {}
        }
    }
    match &body {
        EventBody::AgendaReordered { case_ids } => {
            schedule::set_agenda_order(tx, session.id, case_ids).await?;
        }
        EventBody::ParticipantJoined { user_id, role, .. } => {
            let args = args![Uuid::new_v4(), session.id, *user_id, role.as_str(), now];
            tx.run(JOINED, args).await?;
            super::facts::joined_in(tx, session.id, now).await?;
        }
        EventBody::ParticipantLeft { user_id } => {
            tx.run(LEFT, args![now, session.id, *user_id]).await?;
        }
        EventBody::ListedConfirmed { case_ids, signed_by } => {
            super::outcomes::confirm_listed_in(tx, session, case_ids, *signed_by, now).await?;
        }
        _ => {}
    }
    Ok(body)
}

/// Defers a case from a live session: to the first later session of the series that
/// takes it (`domain::booking::destination`, the cut-off not applying), or flagged for
/// rebooking when none can.
async fn defer_case_in(
    tx: &mut Tx, session: &Session, case: &Case, now: DateTime<Utc>,
) -> Result<EventBody, StoreError> {
    let mut candidates = schedule::later_candidates_in(tx, session).await?;
    let target = booking::destination(case, &mut candidates, false, now);
    let moved = schedule::rebook_in(tx, case, target, false, now).await?;
    Ok(EventBody::CaseDeferred {
        case_id: case.id,
        to_session_id: moved.as_ref().map(|c| c.session_id),
        new_case_id: moved.map(|c| c.id),
    })
}

/// During a live meeting, records an outcome change as an event of the case's session,
/// in the outcome's own transaction (the session row is already locked).
pub(super) async fn outcome_event_in(
    tx: &mut Tx, session_id: Uuid, body: EventBody, actor: UserId, now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if schedule::session_in(tx, session_id).await?.state == SessionState::Live {
        let event = NewLiveEvent { body, actor: Some(actor), command_id: None };
        append_events_in(tx, session_id, None, vec![event], now).await?;
    }
    Ok(())
}
