//! Outcome versions: drafting, signing (booking a `re_discuss` follow-up), amending and
//! reading them; each signed version's decisions become tracked actions (`actions`). The rules are `domain::booking`'s and `domain::outcome`'s, the versions
//! and letters the caller's; each change is stored with its audit, letter and live event.

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::json;
use uuid::Uuid;

use super::core::Store;
use super::db::Tx;
use super::error::{StoreError, Unique};
use super::rows;
use super::schedule::{self, lock_case_and_session};
use super::sql::args;
use crate::domain::booking::{check_amendable, check_draftable, check_signable};
use crate::domain::letter::NewLetter;
use crate::domain::triage::StandardPlan;
use crate::domain::{conflict::Conflict, live::EventBody, outcome::check_follow_up_session};
use crate::domain::{Case, NewAuditEvent, NewMessage, OutcomeDraft, OutcomeVersion};
use crate::domain::{CaseState, ParseError, Session, UserId};

/// What signing an outcome did.
#[derive(Clone, Debug)]
pub struct SignedOutcome {
    pub version: OutcomeVersion,
    /// The case booked by a `re_discuss` follow-up.
    pub follow_up_case: Option<Case>,
}

/// The latest version of a case's outcome, if any.
pub(super) async fn current_outcome(
    tx: &mut Tx, case_id: Uuid,
) -> Result<Option<OutcomeVersion>, StoreError> {
    let sql = "SELECT * FROM outcome_versions WHERE case_id = $1 ORDER BY version DESC LIMIT 1";
    let row = tx.opt(sql, args![case_id]).await?;
    row.as_ref().map(rows::outcome).transpose()
}

/// The outcome body as stored: its JSON wire shape.
fn encode(body: &OutcomeDraft) -> Result<String, StoreError> {
    serde_json::to_string(body).map_err(|e| StoreError::Database(sqlx::Error::Encode(e.into())))
}

/// Inserts one outcome version inside the caller's transaction.
pub(super) async fn insert_outcome_row(tx: &mut Tx, v: &OutcomeVersion) -> Result<(), StoreError> {
    let sql = "INSERT INTO outcome_versions (case_id, version, body, author_id, created_at, \
               updated_at, signed_by, signed_at, amendment_reason, supersedes) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
    let (version, supersedes) = (v.version as i32, v.supersedes.map(|s| s as i32));
    let (body, reason) = (encode(&v.body)?, &v.amendment_reason);
    let (created, updated, signed) = (v.created_at, v.updated_at, v.signed_at);
    let mut values = args![v.case_id, version, body, v.author_id, created];
    values.extend(args![updated, v.signed_by, signed, reason, supersedes]);
    tx.run(sql, values).await.map(|_| ())
}

/// What follows every signed version, in its transaction: its decisions tracked as
/// actions, and the report's facts.
async fn signed_in(
    tx: &mut Tx, case: &Case, version: &OutcomeVersion, now: DateTime<Utc>,
) -> Result<(), StoreError> {
    super::actions::track_decisions_in(tx, case, version, now).await?;
    super::facts::signed_in(tx, version).await
}

/// The audit event recording the follow-up case a signing booked, from the signing's.
fn follow_up_audit(signing: &NewAuditEvent, follow_up: &Case) -> NewAuditEvent {
    let mut event = signing.clone().record(follow_up.id);
    (event.action, event.record_type) = ("follow_up_booked".into(), "case".into());
    let (of, session) = (follow_up.follow_up_of, follow_up.session_id);
    event.details(json!({ "follow_up_of": of, "session": session }))
}

/// Books the `re_discuss` follow-up of `case`, if `target` names a session, as case `id`
/// there (a later session of the same specialty; capacity enforced, cut-off not).
pub(super) async fn book_follow_up(
    tx: &mut Tx, case: &Case, target: Option<Uuid>, id: Uuid, audit: &NewAuditEvent,
    now: DateTime<Utc>,
) -> Result<Option<Case>, StoreError> {
    let Some(to) = target else { return Ok(None) };
    let why = "no such session";
    let unknown = ParseError::new("invalid_follow_up_session", "follow_up.session_id", why);
    let target = match schedule::session_in(tx, to).await {
        Err(StoreError::NotFound(_)) => return Err(StoreError::Invalid(unknown)),
        other => other?,
    };
    let session = schedule::session_in(tx, case.session_id).await?;
    check_follow_up_session(&session, &target).map_err(StoreError::Invalid)?;
    schedule::take_slot(tx, to, now, false).await?;
    let follow_up = case.follow_up(id, to, now);
    if schedule::patient_already_in(tx, case, to).await? {
        return Err(Conflict::DuplicateCase.into());
    }
    match schedule::insert_case_row(tx, &follow_up, None).await {
        Err(e) if e.is_unique(Unique::PatientInSession) => Err(Conflict::DuplicateCase.into()),
        other => other,
    }?;
    schedule::copy_attachments(tx, case.id, follow_up.id).await?;
    super::audit::append_audit_in(tx, follow_up_audit(audit, &follow_up)).await?;
    Ok(Some(follow_up))
}

/// Queues the letter, tells a live meeting of the case's session of the signing, and commits.
async fn finish_signed(
    mut tx: Tx, case: &Case, version: &OutcomeVersion, (signer, now): (UserId, DateTime<Utc>),
    letter: Option<NewMessage>, letters: &[NewLetter],
) -> Result<(), StoreError> {
    if let Some(message) = letter {
        super::outbox::enqueue_in(&mut tx, &message, now).await?;
    }
    super::letters::insert_letters_in(&mut tx, case.id, version.version, letters, now).await?;
    let signed =
        EventBody::OutcomeSigned { case_id: case.id, version: version.version, signed_by: signer };
    super::live::outcome_event_in(&mut tx, case.session_id, signed, signer, now).await?;
    tx.commit().await
}

/// Signs the standard outcome of each listed case of `session` (its specialty's standard
/// plan that triage chose), as `signer`, in the caller's transaction (a live event's).
pub(super) async fn confirm_listed_in(
    tx: &mut Tx, session: &Session, case_ids: &[Uuid], signer: UserId, now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let sql = "SELECT standard_plans FROM specialties WHERE slug = $1";
    let row = tx.one(sql, args![session.plan.specialty.as_str()]).await?;
    let plans: Vec<StandardPlan> = serde_json::from_str(&row.get::<String>("standard_plans")?)
        .map_err(|_| StoreError::corrupt("standard_plans"))?;
    for case_id in case_ids {
        let case = schedule::lock_case(tx, *case_id).await?;
        let plan = case.standard_plan.as_deref().and_then(|c| plans.iter().find(|p| p.code == c));
        let (Some(plan), CaseState::Listed, true) =
            (plan, case.state, case.session_id == session.id)
        else {
            return Err(
                Conflict::invalid("only listed cases with a standard plan are confirmed").into()
            );
        };
        if current_outcome(tx, case.id).await?.is_some() {
            return Err(Conflict::OutcomeSigned.into());
        }
        let version =
            OutcomeVersion::first_draft(case.id, plan.outcome(), signer, now).signed(signer, now);
        insert_outcome_row(tx, &version).await?;
        signed_in(tx, &case, &version, now).await?;
        tx.run("UPDATE cases SET state = 'outcome_signed' WHERE id = $1", args![case.id]).await?;
        let audit = NewAuditEvent::new("outcome_signed", "case").actor(signer).record(case.id);
        let details = json!({ "version": 1, "listed": true, "standard_plan": plan.code });
        super::audit::append_audit_in(tx, audit.details(details)).await?;
    }
    Ok(())
}

impl Store {
    /// Saves the case's outcome draft: creates version 1, or replaces the body of the
    /// current unsigned version. `409 outcome_signed` once the current version is signed,
    /// `409 invalid_state` for a deferred or withdrawn case. With `audit`, atomically.
    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    pub async fn draft_outcome(
        &self, case_id: Uuid, draft: OutcomeDraft, author: UserId, audit: NewAuditEvent,
        now: DateTime<Utc>,
    ) -> Result<OutcomeVersion, StoreError> {
        let now = now.trunc_subsecs(6);
        let mut tx = self.db.write().await?;
        let case = lock_case_and_session(&mut tx, case_id, None).await?;
        let current = current_outcome(&mut tx, case_id).await?;
        check_draftable(&case, current.as_ref())?;
        let version = match current {
            Some(mut v) => {
                let sql = "UPDATE outcome_versions SET body = $1, author_id = $2, updated_at = $3 \
                           WHERE case_id = $4 AND version = $5 AND signed_at IS NULL";
                let values = args![encode(&draft)?, author, now, case_id, v.version as i32];
                tx.run(sql, values).await?;
                (v.body, v.author_id, v.updated_at) = (draft, author, now);
                v
            }
            None => {
                let v = OutcomeVersion::first_draft(case_id, draft, author, now);
                insert_outcome_row(&mut tx, &v).await?;
                v
            }
        };
        let details = json!({ "version": version.version });
        super::audit::append_audit_in(&mut tx, audit.record(case_id).details(details)).await?;
        let drafted = EventBody::OutcomeDrafted {
            case_id,
            version: version.version,
            summary: serde_json::to_value(version.body.summary()).unwrap_or_default(),
        };
        super::live::outcome_event_in(&mut tx, case.session_id, drafted, author, now).await?;
        tx.commit().await?;
        Ok(version)
    }

    /// Signs the current draft (`signed`: as the caller read it, marked by
    /// `OutcomeVersion::signed`) and marks the case `outcome_signed`, in one transaction
    /// with `audit`, the referrer's `letter`, the GP and patient `letters` (stored, their
    /// emails queued, their deliveries recorded) and, for a `re_discuss` follow-up, a new case
    /// `follow_up_id` booked into the chosen later session of the same specialty (capacity
    /// enforced, cut-off not). Any refusal (`409 changed_meanwhile`, `409 outcome_signed`,
    /// `409 no_draft`, `409 session_full`, `422 invalid_follow_up_session`…) changes nothing.
    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    pub async fn sign_outcome(
        &self, case_id: Uuid, signed: &OutcomeVersion, audit: NewAuditEvent,
        letter: Option<NewMessage>, letters: &[NewLetter], follow_up_id: Uuid,
    ) -> Result<SignedOutcome, StoreError> {
        let (Some(signer), Some(now)) = (signed.signed_by, signed.signed_at) else {
            return Err(Conflict::invalid("the version to sign carries no signature").into());
        };
        let target = signed.body.follow_up.re_discuss_session();
        let mut tx = self.db.write().await?;
        let case = lock_case_and_session(&mut tx, case_id, target).await?;
        let current = current_outcome(&mut tx, case_id).await?;
        let draft =
            check_signable(&case, current.as_ref(), signed.outside_meeting_reason.is_some())?;
        let same = (draft.version, draft.updated_at) == (signed.version, signed.updated_at);
        if !same || draft.body.follow_up.re_discuss_session() != target {
            return Err(Conflict::Changed.into());
        }
        let reason = signed.outside_meeting_reason.clone();
        let version =
            OutcomeVersion { outside_meeting_reason: reason, ..draft.clone() }.signed(signer, now);
        let sql = "UPDATE outcome_versions SET signed_by = $1, signed_at = $2, \
                   outside_meeting_reason = $5 WHERE case_id = $3 AND version = $4 AND signed_at IS NULL";
        let reason = version.outside_meeting_reason.as_deref();
        let values = args![signer, now, case_id, version.version as i32, reason];
        tx.run(sql, values).await?;
        let sql = "UPDATE cases SET state = 'outcome_signed' WHERE id = $1";
        tx.run(sql, args![case_id]).await?;
        signed_in(&mut tx, &case, &version, now).await?;
        let follow_up = book_follow_up(&mut tx, &case, target, follow_up_id, &audit, now).await?;
        let follow_up_id = follow_up.as_ref().map(|c| c.id);
        let details = json!({ "version": version.version, "follow_up_case": follow_up_id,
            "outside_meeting_reason": version.outside_meeting_reason });
        super::audit::append_audit_in(&mut tx, audit.record(case_id).details(details)).await?;
        finish_signed(tx, &case, &version, (signer, now), letter, letters).await?;
        Ok(SignedOutcome { version, follow_up_case: follow_up })
    }

    /// Corrects a signed outcome: inserts `amended` (`OutcomeVersion::amended`, signed by
    /// its author), superseding the current version (never changing it), with the amended
    /// letter and new `letters` that supersede the case's current ones. `409 outcome_not_signed` while the current version is a draft, `409 no_draft`
    /// when there is none, `409 changed_meanwhile` when another version was added since.
    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    pub async fn amend_outcome(
        &self, case_id: Uuid, amended: &OutcomeVersion, audit: NewAuditEvent,
        letter: Option<NewMessage>, letters: &[NewLetter],
    ) -> Result<OutcomeVersion, StoreError> {
        let signature = (amended.author_id, amended.created_at);
        let mut tx = self.db.write().await?;
        let case = lock_case_and_session(&mut tx, case_id, None).await?;
        let current = current_outcome(&mut tx, case_id).await?;
        let supersedes = check_amendable(current.as_ref())?.version;
        if amended.case_id != case_id || amended.version != supersedes + 1 {
            return Err(Conflict::Changed.into());
        }
        insert_outcome_row(&mut tx, amended).await?;
        signed_in(&mut tx, &case, amended, amended.created_at).await?;
        let details = json!({ "version": amended.version, "supersedes": supersedes });
        super::audit::append_audit_in(&mut tx, audit.record(case_id).details(details)).await?;
        finish_signed(tx, &case, amended, signature, letter, letters).await?;
        Ok(amended.clone())
    }

    /// Every version of the case's outcome, oldest first.
    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    pub async fn outcome_versions(&self, case_id: Uuid) -> Result<Vec<OutcomeVersion>, StoreError> {
        let sql = "SELECT * FROM outcome_versions WHERE case_id = $1 ORDER BY version";
        let found = self.db.all(sql, args![case_id]).await?;
        found.iter().map(rows::outcome).collect()
    }
}
