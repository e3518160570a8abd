//! Session invitations: inviting (re-inviting after a withdrawal re-activates the row),
//! withdrawing (the row keeps its withdrawal time) and the active ones of a session. Who
//! may be invited is `domain::invitation`'s rule; each change is written with its audit
//! event and calendar mail in one transaction.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::core::Store;
use super::error::StoreError;
use super::schedule::{commit_with, session_in};
use super::sql::{args, Row};
use crate::domain::conflict::Conflict;
use crate::domain::invitation::{check_open, Invitation};
use crate::domain::{NewAuditEvent, NewMessage, SessionState, UserId};

const ACTIVE: &str = "SELECT * FROM session_invitations WHERE session_id = $1 \
    AND withdrawn_at IS NULL ORDER BY invited_at, user_id";
const ACTIVE_OF_USER: &str = "SELECT * FROM session_invitations WHERE user_id = $1 \
    AND withdrawn_at IS NULL ORDER BY invited_at, session_id";
/// Inserts, or re-activates a withdrawn invitation; changes nothing if it is active.
const INVITE: &str = "INSERT INTO session_invitations \
    (session_id, user_id, kind, invited_by, invited_at) VALUES ($1, $2, $3, $4, $5) \
    ON CONFLICT (session_id, user_id) DO UPDATE SET kind = excluded.kind, \
    invited_by = excluded.invited_by, invited_at = excluded.invited_at, withdrawn_at = NULL \
    WHERE session_invitations.withdrawn_at IS NOT NULL";
const WITHDRAW: &str = "UPDATE session_invitations SET withdrawn_at = $3 \
    WHERE session_id = $1 AND user_id = $2 AND withdrawn_at IS NULL";

fn invitation(row: &Row) -> Result<Invitation, StoreError> {
    Ok(Invitation {
        session_id: row.get("session_id")?,
        user_id: row.get("user_id")?,
        kind: super::rows::parsed(row, "kind", str::parse)?,
        invited_by: row.get("invited_by")?,
        invited_at: row.get("invited_at")?,
    })
}

/// The session, locked, as it was when the caller composed the mail (`409
/// changed_meanwhile` otherwise) and still taking invitation changes.
async fn session_as_seen(
    tx: &mut super::db::Tx, id: Uuid, seen: SessionState,
) -> Result<(), StoreError> {
    let session = session_in(tx, id).await?;
    check_open(&session)?;
    if session.state != seen {
        return Err(Conflict::Changed.into());
    }
    Ok(())
}

impl Store {
    /// Records `invitation` (checked by `domain::invitation::check_invitation`) with
    /// `audit` and `mail`, composed for a session in state `seen`. `409 already_invited`
    /// while the person's invitation is active.
    #[tracing::instrument(skip_all, fields(session_id = %i.session_id, user_id = %i.user_id))]
    pub async fn invite(
        &self, i: &Invitation, seen: SessionState, audit: NewAuditEvent, mail: Vec<NewMessage>,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.write().await?;
        session_as_seen(&mut tx, i.session_id, seen).await?;
        let values = args![i.session_id, i.user_id, i.kind.as_str(), i.invited_by, i.invited_at];
        if tx.run(INVITE, values).await? == 0 {
            return Err(Conflict::AlreadyInvited.into());
        }
        commit_with(tx, i.session_id, audit, &mail).await
    }

    /// Withdraws the person's active invitation (`404` if there is none), with `audit`
    /// and `mail` composed for a session in state `seen`.
    #[tracing::instrument(skip_all, fields(session_id = %session_id, user_id = %user))]
    pub async fn withdraw_invitation(
        &self, session_id: Uuid, user: UserId, seen: SessionState, now: DateTime<Utc>,
        audit: NewAuditEvent, mail: Vec<NewMessage>,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.write().await?;
        session_as_seen(&mut tx, session_id, seen).await?;
        if tx.run(WITHDRAW, args![session_id, user, now]).await? == 0 {
            return Err(StoreError::NotFound("invitation"));
        }
        commit_with(tx, session_id, audit, &mail).await
    }

    /// The session's active invitations, oldest first.
    #[tracing::instrument(skip_all, fields(session_id = %session_id))]
    pub async fn session_invitations(
        &self, session_id: Uuid,
    ) -> Result<Vec<Invitation>, StoreError> {
        self.db.all(ACTIVE, args![session_id]).await?.iter().map(invitation).collect()
    }

    /// The person's active invitations, oldest first.
    #[tracing::instrument(skip_all, fields(user_id = %user))]
    pub async fn user_invitations(&self, user: UserId) -> Result<Vec<Invitation>, StoreError> {
        self.db.all(ACTIVE_OF_USER, args![user]).await?.iter().map(invitation).collect()
    }
}
