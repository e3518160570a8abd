//! Tracked actions (issue 16): the actions a signed outcome version asks for, made in
//! the signing's (or amendment's) transaction; the list; a status change or reassignment
//! (with a result's re-discussion booked in the same transaction); and each specialty's
//! due days. The rules are `domain::action`'s; the store applies them.

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::json;
use uuid::Uuid;

use super::core::Store;
use super::db::Tx;
use super::error::StoreError;
use super::rows;
use super::schedule::{lock_case_and_session, session_in};
use super::sql::args;
use crate::domain::action::{
    decisions, replace, transition, Action, ActionStatus, Change, DueDays, SUPERSEDED,
};
use crate::domain::{Case, NewAuditEvent, OutcomeVersion, ParseError, Specialty, UserId};

/// Which actions a list shows: those `owner` owns and in `status`, of the viewer's
/// scope (every action, or the viewer's own and those of cases of `specialties`).
#[derive(Clone, Debug)]
pub struct ActionQuery {
    pub owner: Option<UserId>,
    pub status: Option<ActionStatus>,
    pub all: bool,
    pub viewer: UserId,
    pub specialties: Vec<String>,
}

/// A status change or reassignment of one action, as the caller asks for it.
#[derive(Clone, Debug)]
pub struct ActionUpdate {
    pub change: Option<Change>,
    pub owner: Option<UserId>,
    /// With a result: book the case for re-discussion into this session, as case `.1`.
    pub rediscuss: Option<(Uuid, Uuid)>,
}

/// What an update did: the action as it is now and any follow-up case it booked.
#[derive(Clone, Debug)]
pub struct UpdatedAction {
    pub action: Action,
    pub follow_up_case: Option<Case>,
}

const LIST: &str = "SELECT a.* FROM actions a JOIN cases c ON c.id = a.case_id \
     JOIN sessions s ON s.id = c.session_id \
     WHERE ($1::uuid IS NULL OR a.owner_id = $1) AND ($2::text IS NULL OR a.status = $2) \
     AND ($3 OR a.owner_id = $4 OR s.specialty = ANY($5)) ORDER BY a.due_on, a.created_at";
const INSERT: &str = "INSERT INTO actions (id, case_id, outcome_version, kind, what, urgency, \
     owner_id, due_on, status, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
const UPDATE: &str = "UPDATE actions SET status = $1, owner_id = $2, result_summary = $3, \
     result_attachment_id = $4, cancel_reason = $5, rediscuss_case_id = $6, urgency = $7, \
     due_on = $8, updated_at = $9 WHERE id = $10";

fn json_error(e: serde_json::Error) -> StoreError {
    StoreError::Database(sqlx::Error::Encode(e.into()))
}

async fn due_days_in(tx: &mut Tx, specialty: &Specialty) -> Result<DueDays, StoreError> {
    let sql = "SELECT action_due_days FROM specialties WHERE slug = $1";
    let row = tx.opt(sql, args![specialty.as_str()]).await?;
    let raw: String = row.ok_or(StoreError::NotFound("specialty"))?.get("action_due_days")?;
    serde_json::from_str(&raw).map_err(|_| StoreError::corrupt("action_due_days"))
}

/// Writes `action`'s changeable columns.
async fn write_action(tx: &mut Tx, a: &Action) -> Result<(), StoreError> {
    let (summary, attachment) = match &a.result {
        Some(r) => (Some(r.summary.clone()), r.attachment_id),
        None => (None, None),
    };
    let mut values = args![a.status.as_str(), a.owner_id, summary, attachment, &a.cancel_reason];
    values.extend(args![a.rediscuss_case_id, a.urgency.as_str(), a.due_on, a.updated_at, a.id]);
    tx.run(UPDATE, values).await.map(|_| ())
}

/// Makes the actions of the signed `version` of `case` (a first signing, an amendment or
/// a listed case's confirmation) in the caller's transaction: `domain::action::replace`
/// against the case's actions so far, owned by the referrer, due by the specialty's days.
pub(super) async fn track_decisions_in(
    tx: &mut Tx, case: &Case, version: &OutcomeVersion, now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let wanted = decisions(&version.body);
    let sql = "SELECT * FROM actions WHERE case_id = $1 ORDER BY created_at, id";
    let found = tx.all(sql, args![case.id]).await?;
    let existing = found.iter().map(rows::action).collect::<Result<Vec<_>, _>>()?;
    if wanted.is_empty() && existing.is_empty() {
        return Ok(());
    }
    let session = session_in(tx, case.session_id).await?;
    let days = due_days_in(tx, &session.plan.specialty).await?;
    let plan = replace(&wanted, &existing);
    for a in &existing {
        let mut changed = a.clone();
        if let Some((_, Some(urgency))) = plan.kept.iter().find(|(id, _)| *id == a.id) {
            (changed.urgency, changed.due_on) = (*urgency, days.due_at(*urgency, now));
        } else if plan.cancelled.contains(&a.id) {
            (changed.status, changed.cancel_reason) =
                (ActionStatus::Cancelled, Some(SUPERSEDED.to_string()));
        } else {
            continue;
        }
        changed.updated_at = now;
        write_action(tx, &changed).await?;
    }
    for d in &plan.added {
        let ids = (case.id, version.version);
        let a = Action::requested(Uuid::new_v4(), ids, d, case.referrer_id, &days, now);
        let mut values = args![a.id, a.case_id, a.outcome_version as i32, a.kind.as_str()];
        values.extend(args![a.what.as_str(), a.urgency.as_str(), a.owner_id, a.due_on]);
        values.extend(args![a.status.as_str(), a.created_at, a.updated_at]);
        tx.run(INSERT, values).await?;
    }
    Ok(())
}

impl Store {
    /// One action, if it exists.
    #[tracing::instrument(skip_all, fields(action_id = %id))]
    pub async fn action(&self, id: Uuid) -> Result<Option<Action>, StoreError> {
        let row = self.db.opt("SELECT * FROM actions WHERE id = $1", args![id]).await?;
        row.as_ref().map(rows::action).transpose()
    }

    /// Every action of the case, oldest first.
    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    pub async fn case_actions(&self, case_id: Uuid) -> Result<Vec<Action>, StoreError> {
        let sql = "SELECT * FROM actions WHERE case_id = $1 ORDER BY created_at, id";
        self.db.all(sql, args![case_id]).await?.iter().map(rows::action).collect()
    }

    /// The actions `query` asks for, by due date (the caller orders them for the list).
    #[tracing::instrument(skip_all)]
    pub async fn actions(&self, query: &ActionQuery) -> Result<Vec<Action>, StoreError> {
        let q = query;
        let mut values = args![q.owner, q.status.map(|s| s.as_str()), q.all, q.viewer];
        values.extend(args![q.specialties.clone()]);
        self.db.all(LIST, values).await?.iter().map(rows::action).collect()
    }

    /// Changes an action as `update` asks, in one transaction with `audit`: the status
    /// by `domain::action::transition` on the action as it is now (`409
    /// invalid_transition`), a result's attachment checked to be the case's (`422
    /// unknown_attachment`), the owner, and a re-discussion booked into a later session
    /// of the specialty (capacity enforced; `409 session_full`, `duplicate_case`, `422
    /// invalid_follow_up_session` undo it all).
    #[tracing::instrument(skip_all, fields(action_id = %id))]
    pub async fn update_action(
        &self, id: Uuid, update: &ActionUpdate, audit: NewAuditEvent, now: DateTime<Utc>,
    ) -> Result<UpdatedAction, StoreError> {
        let now = now.trunc_subsecs(6);
        let mut tx = self.db.write().await?;
        let row = tx.opt("SELECT case_id FROM actions WHERE id = $1", args![id]).await?;
        let case_id: Uuid = row.ok_or(StoreError::NotFound("action"))?.get("case_id")?;
        let target = update.rediscuss.map(|(session, _)| session);
        let case = lock_case_and_session(&mut tx, case_id, target).await?;
        let row = tx.one("SELECT * FROM actions WHERE id = $1 FOR UPDATE", args![id]).await?;
        let before = rows::action(&row)?;
        let mut after = match &update.change {
            Some(change) => transition(&before, change.clone(), now)?,
            None => before.clone(),
        };
        if let Some(attachment) = after.result.as_ref().and_then(|r| r.attachment_id) {
            let sql = "SELECT case_id FROM attachments WHERE id = $1";
            let of = tx.opt(sql, args![attachment]).await?.map(|r| r.get::<Uuid>("case_id"));
            if of.transpose()? != Some(case_id) {
                let why = "no attachment of this case has that id";
                let e = ParseError::new("unknown_attachment", "result.attachment_id", why);
                return Err(StoreError::Invalid(e));
            }
        }
        if let Some(owner) = update.owner {
            (after.owner_id, after.updated_at) = (owner, now);
        }
        let follow_up = match update.rediscuss {
            None => None,
            Some((to, new_id)) => {
                let booked =
                    super::outcomes::book_follow_up(&mut tx, &case, Some(to), new_id, &audit, now)
                        .await
                        .map_err(|e| match e {
                            StoreError::Invalid(p) => {
                                StoreError::Invalid(p.for_field("rediscuss_session_id"))
                            }
                            other => other,
                        })?;
                after.rediscuss_case_id = booked.as_ref().map(|c| c.id);
                booked
            }
        };
        write_action(&mut tx, &after).await?;
        let details = json!({
            "action": id, "from": before.status.as_str(), "to": after.status.as_str(),
            "owner": after.owner_id, "follow_up_case": after.rediscuss_case_id,
        });
        super::audit::append_audit_in(&mut tx, audit.record(case_id).details(details)).await?;
        tx.commit().await?;
        Ok(UpdatedAction { action: after, follow_up_case: follow_up })
    }

    /// The specialty's due days; `NotFound` for an unknown specialty.
    #[tracing::instrument(skip_all, fields(specialty = %slug.as_str()))]
    pub async fn action_due_days(&self, slug: &Specialty) -> Result<DueDays, StoreError> {
        let mut tx = self.db.snapshot().await?;
        let days = due_days_in(&mut tx, slug).await?;
        tx.commit().await?;
        Ok(days)
    }

    /// Sets the specialty's due days (for actions made from now on), with `audit`.
    #[tracing::instrument(skip_all, fields(specialty = %slug.as_str()))]
    pub async fn set_action_due_days(
        &self, slug: &Specialty, days: &DueDays, audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let raw = serde_json::to_string(days).map_err(json_error)?;
        let mut tx = self.db.write().await?;
        let sql = "UPDATE specialties SET action_due_days = $1 WHERE slug = $2";
        if tx.run(sql, args![raw, slug.as_str()]).await? != 1 {
            return Err(StoreError::NotFound("specialty"));
        }
        super::audit::append_audit_in(&mut tx, audit).await?;
        tx.commit().await
    }
}
