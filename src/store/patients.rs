//! The patient register: one record per NHS number, kept by the booking's transaction
//! (`register_patient`, applying `domain::patient::reconcile`), the conflicts found in
//! older data, and a coordinator's correction. The rules are decided in the domain;
//! this module only applies them and records their audit events on each case.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::core::Store;
use super::db::Tx;
use super::error::StoreError;
use super::rows;
use super::sql::{args, Arg};
use crate::domain::patient::{reconcile, PatientUpdate, Reconciled};
use crate::domain::{NewAuditEvent, NewCase, NhsNumber, PatientDetails, PersonName, UserId};

/// A coordinator's correction of a patient's name and date of birth.
#[derive(Clone, Debug)]
pub struct PatientCorrection {
    pub nhs_number: NhsNumber,
    pub given_name: PersonName,
    pub family_name: PersonName,
    pub date_of_birth: NaiveDate,
    pub by: UserId,
}

/// The audit events for a change to a patient's record: `template` (its actor, address
/// and details) recorded against each of the patient's cases.
pub(super) fn per_case(template: &NewAuditEvent, case_ids: &[Uuid]) -> Vec<NewAuditEvent> {
    let mut on_case = template.clone();
    on_case.record_type = "case".into();
    case_ids.iter().map(|id| on_case.clone().record(id)).collect()
}

/// What a booking that changed the patient's record (`fields`) records on each case.
pub(super) fn patient_updated(booking: &NewAuditEvent, fields: &[&'static str]) -> NewAuditEvent {
    NewAuditEvent {
        action: "patient_updated".into(),
        details: serde_json::json!({ "fields": fields }).to_string(),
        ..booking.clone()
    }
}

/// Creating and rewriting a record; both take [`columns`].
const INSERT: &str = "INSERT INTO patients (nhs_number, given_name, family_name, \
    date_of_birth, sex, gp_practice_code, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
    ON CONFLICT (nhs_number) DO NOTHING";
const UPDATE: &str = "UPDATE patients SET given_name = $2, family_name = $3, \
    date_of_birth = $4, sex = $5, gp_practice_code = $6, updated_at = $7 WHERE nhs_number = $1";

/// A record's columns in the order [`INSERT`] and [`UPDATE`] take them.
fn columns(p: &PatientDetails, now: DateTime<Utc>) -> Vec<Arg> {
    let name = (p.given_name.as_str(), p.family_name.as_str());
    let (sex, practice) = (p.sex.as_str(), p.gp_practice_code.as_str());
    let (nhs, born) = (p.nhs_number.as_str(), p.date_of_birth);
    args![nhs, name.0, name.1, born, sex, practice, now]
}

/// The record for an NHS number, locked for the rest of the transaction.
async fn locked(tx: &mut Tx, nhs: &NhsNumber) -> Result<Option<PatientDetails>, StoreError> {
    let sql = "SELECT * FROM patients WHERE nhs_number = $1 FOR UPDATE";
    let row = tx.opt(sql, args![nhs.as_str()]).await?;
    row.as_ref().map(rows::patient).transpose()
}

/// Puts the record's name and date of birth on every case of the patient.
async fn rename_cases(tx: &mut Tx, p: &PatientDetails) -> Result<u64, StoreError> {
    let sql = "UPDATE cases SET given_name = $2, family_name = $3, date_of_birth = $4 \
               WHERE nhs_number = $1";
    let name = (p.given_name.as_str(), p.family_name.as_str());
    let values = args![p.nhs_number.as_str(), name.0, name.1, p.date_of_birth];
    tx.run(sql, values).await
}

/// Marks the NHS number's open conflict (if any) resolved by `by`.
async fn resolve_conflicts(
    tx: &mut Tx, nhs: &NhsNumber, by: UserId, now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let sql = "UPDATE patient_conflicts SET resolved_at = $2, resolved_by = $3 \
               WHERE nhs_number = $1 AND resolved_at IS NULL";
    tx.run(sql, args![nhs.as_str(), now, by]).await.map(|_| ())
}

/// Keeps one patient record per NHS number (`domain::patient::reconcile`): creates it,
/// checks the booking against it, or applies a confirmed change to it and to every case
/// of the patient. Returns the fields changed.
pub(super) async fn register_patient(
    tx: &mut Tx, case: &NewCase, now: DateTime<Utc>,
) -> Result<Vec<&'static str>, StoreError> {
    let p = &case.patient;
    // Twice at most: a booking that finds no record but loses the race to create it
    // decides again against the record the winner made.
    let mut found = None;
    for _ in 0..2 {
        found = locked(tx, &p.nhs_number).await?;
        if found.is_some() {
            break;
        }
        if tx.run(INSERT, columns(p, now)).await? == 1 {
            return Ok(Vec::new()); // Reconciled::New: this booking made the record.
        }
    }
    let recorded = found.ok_or(StoreError::Busy)?;
    let fields = match reconcile(Some(&recorded), p, case.patient_update) {
        Err(conflict) => return Err(StoreError::PatientConflict(conflict)),
        Ok(Reconciled::New | Reconciled::Same) => Vec::new(),
        Ok(Reconciled::Updated { fields }) => fields,
    };
    // Sex and registered practice follow the latest booking; the name and date of
    // birth only a confirmed change (and then on every case of the patient).
    let mut stored = p.clone();
    if fields.is_empty() {
        if (recorded.sex, &recorded.gp_practice_code) == (p.sex, &p.gp_practice_code) {
            return Ok(fields);
        }
        (stored.given_name, stored.family_name) = (recorded.given_name, recorded.family_name);
        stored.date_of_birth = recorded.date_of_birth;
    }
    tx.run(UPDATE, columns(&stored, now)).await?;
    if !fields.is_empty() {
        rename_cases(tx, &stored).await?;
    }
    if !fields.is_empty() && case.patient_update == PatientUpdate::Correction {
        // A coordinator's correction settles any conflict found in older data.
        resolve_conflicts(tx, &p.nhs_number, case.referrer_id, now).await?;
    }
    Ok(fields)
}

/// Checks a patient's details against the register without changing it (a caseload case
/// is no booking: it neither makes nor changes the record); `PatientConflict` when the
/// NHS number is on record with another name or date of birth.
pub(super) async fn check_patient_in(tx: &mut Tx, p: &PatientDetails) -> Result<(), StoreError> {
    let recorded = locked(tx, &p.nhs_number).await?;
    match reconcile(recorded.as_ref(), p, PatientUpdate::None) {
        Err(conflict) => Err(StoreError::PatientConflict(conflict)),
        Ok(_) => Ok(()),
    }
}

/// The ids of every case booked for this NHS number, inside a transaction.
pub(super) async fn patient_cases_in(
    tx: &mut Tx, nhs: &NhsNumber,
) -> Result<Vec<Uuid>, StoreError> {
    let sql = "SELECT id FROM cases WHERE nhs_number = $1";
    rows::ids(&tx.all(sql, args![nhs.as_str()]).await?, "id")
}

impl Store {
    /// NHS numbers whose cases disagreed on name or date of birth when the patient
    /// register was made (not merged: a coordinator decides), with when they were found;
    /// unresolved ones only, oldest first.
    #[tracing::instrument(skip_all)]
    pub async fn patient_conflicts(&self) -> Result<Vec<(NhsNumber, DateTime<Utc>)>, StoreError> {
        let sql = "SELECT nhs_number, found_at FROM patient_conflicts \
                   WHERE resolved_at IS NULL ORDER BY found_at, nhs_number";
        let found = self.db.all(sql, args![]).await?;
        let conflict = |r: &super::sql::Row| {
            let nhs = rows::parsed(r, "nhs_number", NhsNumber::parse)?;
            Ok((nhs, r.get("found_at")?))
        };
        found.iter().map(conflict).collect()
    }

    /// A coordinator's correction of the patient's record: the name and date of birth on
    /// the register and on every case of the patient, any conflict marked resolved, and
    /// `audit` recorded against each of those cases, in one transaction. Returns how many
    /// cases changed; `404` for an NHS number not on record.
    #[tracing::instrument(skip_all)]
    pub async fn correct_patient(
        &self, correction: &PatientCorrection, audit: NewAuditEvent, now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let c = correction;
        let mut tx = self.db.write().await?;
        let mut stored =
            locked(&mut tx, &c.nhs_number).await?.ok_or(StoreError::NotFound("patient"))?;
        (stored.given_name, stored.family_name) = (c.given_name.clone(), c.family_name.clone());
        stored.date_of_birth = c.date_of_birth;
        tx.run(UPDATE, columns(&stored, now)).await?;
        let changed = rename_cases(&mut tx, &stored).await?;
        resolve_conflicts(&mut tx, &c.nhs_number, c.by, now).await?;
        let ids = patient_cases_in(&mut tx, &c.nhs_number).await?;
        super::audit::append_audits_in(&mut tx, per_case(&audit, &ids)).await?;
        tx.commit().await?;
        Ok(changed)
    }
}
