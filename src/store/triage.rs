//! Triage: the queue of bookings waiting for it, decisions (accept, return, list) with
//! their history, editing and resubmitting a returned booking, and each specialty's
//! triage data (required proforma fields, standard plans). The rules are
//! `domain::triage`'s; each change is stored with its audit and mail.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::audit::append_audit_in;
use super::core::Store;
use super::db::Tx;
use super::error::StoreError;
use super::rows;
use super::schedule::{enqueue_in, lock_case_and_session, session_in};
use super::sql::args;
use crate::domain::booking::check_bookable;
use crate::domain::proforma::ProformaField;
use crate::domain::triage::{check_returned, check_triage, Decision, StandardPlan};
use crate::domain::{Case, CaseDetails, NewAuditEvent, NewMessage, Specialty, UserId};

/// A specialty's triage data.
#[derive(Clone, Debug, Default, serde::Serialize, utoipa::ToSchema)]
pub struct SpecialtyRules {
    /// Proforma fields a booking must give (`start_back` for back and neck cases only).
    pub proforma_required: Vec<ProformaField>,
    pub standard_plans: Vec<StandardPlan>,
}

const QUEUE: &str = "SELECT c.* FROM cases c JOIN sessions s ON s.id = c.session_id \
     WHERE c.state = 'awaiting_triage' AND ($1::text IS NULL OR s.specialty = $1) \
     ORDER BY c.submitted_at, c.id";
const DECIDED: &str = "UPDATE cases SET state = $1, return_reason = $2, return_note = $3, \
     standard_plan = $4 WHERE id = $5";
const DECISION: &str = "INSERT INTO triage_decisions (id, case_id, specialty, decision, reason, \
     note, standard_plan, submitted_at, decided_at, decided_by) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
const EDITED: &str = "UPDATE cases SET clinical_question = $1, history = $2, urgency = $3, \
     body_site = $4, free_text_identifies_patient = $5, referral_received_on = $6, \
     referral_source = $7, proforma = $8 WHERE id = $9";

/// Applies a triage decision by `by` inside the caller's write transaction
/// (`domain::triage::check_triage` on the case and session as they are now), recording it
/// with `audit`.
pub(super) async fn triage_in(
    tx: &mut Tx, case_id: Uuid, decision: &Decision, by: UserId, audit: NewAuditEvent,
    now: DateTime<Utc>,
) -> Result<Case, StoreError> {
    let case = lock_case_and_session(tx, case_id, None).await?;
    let session = session_in(tx, case.session_id).await?;
    check_triage(&case, &session, decision, by == session.plan.chair_id)?;
    let mut decided = case.clone();
    decided.state = decision.state();
    match decision {
        Decision::Accept => {}
        Decision::Return { reason, note } => decided.returned = Some((*reason, note.clone())),
        Decision::List { plan } => decided.standard_plan = Some(plan.code.clone()),
    }
    let (reason, note) = rows::returned_columns(&decided);
    let plan = decided.standard_plan.as_deref();
    tx.run(DECIDED, args![decided.state.as_str(), reason, note, plan, case_id]).await?;
    super::facts::triaged_in(tx, case_id, now).await?;
    let submitted = case.submitted_at.unwrap_or(case.booked_at);
    let mut values = args![Uuid::new_v4(), case_id, session.plan.specialty.as_str()];
    values.extend(args![decision.as_str(), reason, note, plan, submitted, now, by]);
    tx.run(DECISION, values).await?;
    let details = serde_json::json!({ "decision": decision.as_str(), "reason": reason, "standard_plan": plan });
    append_audit_in(tx, audit.record(case_id).details(details)).await?;
    Ok(decided)
}

fn json_error(e: serde_json::Error) -> StoreError {
    StoreError::Database(sqlx::Error::Encode(e.into()))
}

impl Store {
    /// The specialty's triage data; `NotFound` for an unknown specialty.
    #[tracing::instrument(skip_all, fields(specialty = %slug.as_str()))]
    pub async fn specialty_rules(&self, slug: &Specialty) -> Result<SpecialtyRules, StoreError> {
        let sql = "SELECT proforma_required, standard_plans FROM specialties WHERE slug = $1";
        let row = self.db.opt(sql, args![slug.as_str()]).await?;
        let row = row.ok_or(StoreError::NotFound("specialty"))?;
        let required: Vec<String> = serde_json::from_str(&row.get::<String>("proforma_required")?)
            .map_err(|_| StoreError::corrupt("proforma_required"))?;
        Ok(SpecialtyRules {
            proforma_required: required
                .iter()
                .map(|f| {
                    ProformaField::parse(f).map_err(|_| StoreError::corrupt("proforma_required"))
                })
                .collect::<Result<_, _>>()?,
            standard_plans: serde_json::from_str(&row.get::<String>("standard_plans")?)
                .map_err(|_| StoreError::corrupt("standard_plans"))?,
        })
    }

    /// Replaces the specialty's triage data, with `audit`; `NotFound` for an unknown one.
    #[tracing::instrument(skip_all, fields(specialty = %slug.as_str()))]
    pub async fn set_specialty_rules(
        &self, slug: &Specialty, rules: &SpecialtyRules, audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let required: Vec<&str> = rules.proforma_required.iter().map(|f| f.as_str()).collect();
        let required = serde_json::to_string(&required).map_err(json_error)?;
        let plans = serde_json::to_string(&rules.standard_plans).map_err(json_error)?;
        let mut tx = self.db.write().await?;
        let sql =
            "UPDATE specialties SET proforma_required = $1, standard_plans = $2 WHERE slug = $3";
        if tx.run(sql, args![required, plans, slug.as_str()]).await? != 1 {
            return Err(StoreError::NotFound("specialty"));
        }
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await
    }

    /// Bookings waiting for triage, oldest first, in one specialty or all.
    #[tracing::instrument(skip_all)]
    pub async fn triage_queue(
        &self, specialty: Option<&Specialty>,
    ) -> Result<Vec<Case>, StoreError> {
        let found = self.db.all(QUEUE, args![specialty.map(|s| s.as_str())]).await?;
        found.iter().map(rows::case).collect()
    }

    /// Applies a triage decision by `by` (`domain::triage::check_triage` on the case and
    /// session as they are now), recording it with `audit` and `mail` in one transaction.
    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    pub async fn triage_case(
        &self, case_id: Uuid, decision: &Decision, by: UserId, audit: NewAuditEvent,
        mail: Vec<NewMessage>, now: DateTime<Utc>,
    ) -> Result<Case, StoreError> {
        let mut tx = self.db.write().await?;
        let decided = triage_in(&mut tx, case_id, decision, by, audit, now).await?;
        for message in &mail {
            enqueue_in(&mut tx, message, now).await?;
        }
        tx.commit().await?;
        Ok(decided)
    }

    /// Edits a returned booking (`409 not_returned` otherwise), with `audit`.
    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    pub async fn edit_returned_case(
        &self, case_id: Uuid, details: &CaseDetails, audit: NewAuditEvent,
    ) -> Result<Case, StoreError> {
        let mut tx = self.db.write().await?;
        let case = lock_case_and_session(&mut tx, case_id, None).await?;
        check_returned(&case)?;
        let edited = case.edited(details);
        let p = &details.proforma;
        let mut values = args![edited.clinical_question.as_str(), edited.history.as_str()];
        values.extend(args![edited.urgency.as_str(), edited.body_site.as_str()]);
        values.extend(args![edited.free_text_identifies_patient, p.referral_received_on]);
        values.extend(args![p.referral_source.map(|s| s.as_str()), rows::proforma_json(&edited)?]);
        values.extend(args![case_id]);
        tx.run(EDITED, values).await?;
        append_audit_in(&mut tx, audit.record(case_id)).await?;
        tx.commit().await?;
        Ok(edited)
    }

    /// Sends a returned booking back to triage while its session takes bookings (its
    /// slot is held until the cut-off: `409 booking_closed` after it), with `audit`.
    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    pub async fn resubmit_case(
        &self, case_id: Uuid, audit: NewAuditEvent, now: DateTime<Utc>,
    ) -> Result<Case, StoreError> {
        let mut tx = self.db.write().await?;
        let case = lock_case_and_session(&mut tx, case_id, None).await?;
        check_returned(&case)?;
        check_bookable(&session_in(&mut tx, case.session_id).await?, now)?;
        let sql = "UPDATE cases SET state = 'awaiting_triage', submitted_at = $1, \
                   return_reason = NULL, return_note = NULL WHERE id = $2";
        tx.run(sql, args![now, case_id]).await?;
        append_audit_in(&mut tx, audit.record(case_id)).await?;
        tx.commit().await?;
        let state = crate::domain::CaseState::AwaitingTriage;
        Ok(Case { state, submitted_at: Some(now), returned: None, ..case })
    }
}
