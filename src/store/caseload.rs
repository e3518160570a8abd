//! Caseload cases on the mentorship list and the consultants' advice on them (issue 21):
//! adding one, reading them with their advice, their backlog entries, recording advice,
//! and "book into the MDT", which books the case and accepts it onto the session's agenda
//! in the advice's own transaction (the booking and triage workflows of `schedule` and
//! `triage`, not copies of them). The rules are `domain::caseload`'s.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::audit::append_audit_in;
use super::core::Store;
use super::db::Tx;
use super::error::{or_unknown, StoreError};
use super::rows;
use super::sql::{args, Row};
use crate::domain::caseload::{Advice, AdviceDecision, CaseloadCase};
use crate::domain::mentorship::MentorshipFlag;
use crate::domain::triage::Decision;
use crate::domain::{
    BodySite, Case, CaseDetails, ClinicalText, NewAuditEvent, NewCase, NewMessage, Urgency, UserId,
};

const INSERT: &str = "INSERT INTO mentorship_cases (id, practitioner_id, specialty, nhs_number, \
     given_name, family_name, date_of_birth, sex, gp_practice_code, clinical_question, history, \
     urgency, body_site, free_text_identifies_patient, referral_received_on, referral_source, \
     proforma, created_at, created_on) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
     $12, $13, $14, $15, $16, $17, $18, $19)";
const INSERT_ADVICE: &str = "INSERT INTO mentorship_advice (id, mentorship_case_id, \
     consultant_id, decision, note, session_id, booked_case_id, given_at, given_on) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const ADVISED: &str = "UPDATE mentorship_cases SET advised_on = COALESCE(advised_on, $1), \
     booked_case_id = COALESCE(booked_case_id, $2) WHERE id = $3";
const ADVICE_OF: &str = "SELECT * FROM mentorship_advice WHERE mentorship_case_id = ANY($1) \
     ORDER BY given_at, id";

fn caseload_case(row: &Row) -> Result<CaseloadCase, StoreError> {
    Ok(CaseloadCase {
        id: row.get("id")?,
        practitioner_id: row.get("practitioner_id")?,
        specialty: rows::specialty(row, "specialty")?,
        patient: rows::patient(row)?,
        details: CaseDetails {
            clinical_question: rows::parsed(row, "clinical_question", |s| {
                ClinicalText::parse(s, "clinical_question")
            })?,
            history: rows::parsed(row, "history", |s| ClinicalText::parse(s, "history"))?,
            urgency: rows::parsed(row, "urgency", Urgency::parse)?,
            body_site: rows::parsed(row, "body_site", BodySite::parse)?,
            free_text_identifies_patient: row.get("free_text_identifies_patient")?,
            proforma: rows::proforma(row)?.ok_or_else(|| StoreError::corrupt("proforma"))?,
        },
        created_at: row.get("created_at")?,
        created_on: row.get("created_on")?,
        advised_on: row.get("advised_on")?,
        booked_case_id: row.get("booked_case_id")?,
    })
}

fn advice(row: &Row) -> Result<Advice, StoreError> {
    Ok(Advice {
        id: row.get("id")?,
        mentorship_case_id: row.get("mentorship_case_id")?,
        consultant_id: row.get("consultant_id")?,
        decision: rows::parsed(row, "decision", AdviceDecision::parse)?,
        note: row
            .get::<Option<String>>("note")?
            .map(|n| ClinicalText::parse(&n, "note"))
            .transpose()
            .map_err(|_| StoreError::corrupt("note"))?,
        session_id: row.get("session_id")?,
        booked_case_id: row.get("booked_case_id")?,
        given_at: row.get("given_at")?,
        given_on: row.get("given_on")?,
    })
}

/// The case, locked for the rest of the transaction; `NotFound` when there is none.
async fn lock(tx: &mut Tx, id: Uuid) -> Result<CaseloadCase, StoreError> {
    let sql = "SELECT * FROM mentorship_cases WHERE id = $1 FOR UPDATE";
    let row = tx.opt(sql, args![id]).await?.ok_or(StoreError::NotFound("mentorship case"))?;
    caseload_case(&row)
}

/// Stores `advice` and marks the case advised (and booked), with `audit`.
async fn advise_in(tx: &mut Tx, a: &Advice, audit: NewAuditEvent) -> Result<(), StoreError> {
    let mut values = args![a.id, a.mentorship_case_id, a.consultant_id, a.decision.as_str()];
    values.extend(args![a.note.as_ref().map(|n| n.as_str()), a.session_id, a.booked_case_id]);
    values.extend(args![a.given_at, a.given_on]);
    tx.run(INSERT_ADVICE, values).await?;
    tx.run(ADVISED, args![a.given_on, a.booked_case_id, a.mentorship_case_id]).await?;
    let details =
        serde_json::json!({ "decision": a.decision.as_str(), "booked_case": a.booked_case_id });
    append_audit_in(tx, audit.record(a.mentorship_case_id).details(details)).await?;
    Ok(())
}

impl Store {
    /// Stores a new caseload case with `audit`, once its patient's details agree with the
    /// register (`409 patient_details_conflict` otherwise).
    #[tracing::instrument(skip_all, fields(mentorship_case_id = %case.id))]
    pub async fn add_caseload_case(
        &self, case: &CaseloadCase, audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let (p, d) = (&case.patient, &case.details);
        let proforma = serde_json::to_string(&d.proforma)
            .map_err(|e| StoreError::Database(sqlx::Error::Encode(e.into())))?;
        let mut values = args![case.id, case.practitioner_id, case.specialty.as_str()];
        values.extend(args![p.nhs_number.as_str(), p.given_name.as_str(), p.family_name.as_str()]);
        values.extend(args![p.date_of_birth, p.sex.as_str(), p.gp_practice_code.as_str()]);
        values.extend(args![d.clinical_question.as_str(), d.history.as_str(), d.urgency.as_str()]);
        values.extend(args![d.body_site.as_str(), d.free_text_identifies_patient]);
        let source = d.proforma.referral_source.map(|s| s.as_str());
        values.extend(args![d.proforma.referral_received_on, source, proforma]);
        values.extend(args![case.created_at, case.created_on]);
        let mut tx = self.db.write().await?;
        super::patients::check_patient_in(&mut tx, p).await?;
        or_unknown(tx.run(INSERT, values).await, "specialty", "no such specialty")?;
        append_audit_in(&mut tx, audit.record(case.id)).await?;
        tx.commit().await
    }

    /// One caseload case with its advice, oldest first.
    #[tracing::instrument(skip_all, fields(mentorship_case_id = %id))]
    pub async fn caseload_case(
        &self, id: Uuid,
    ) -> Result<Option<(CaseloadCase, Vec<Advice>)>, StoreError> {
        let sql = "SELECT * FROM mentorship_cases WHERE id = $1";
        let Some(row) = self.db.opt(sql, args![id]).await? else {
            return Ok(None);
        };
        let case = caseload_case(&row)?;
        let advice = self.db.all(ADVICE_OF, args![&[id][..]]).await?;
        Ok(Some((case, advice.iter().map(self::advice).collect::<Result<_, _>>()?)))
    }

    /// Caseload cases, newest first, each with its advice: one practitioner's, or all.
    #[tracing::instrument(skip_all)]
    pub async fn caseload_cases(
        &self, practitioner: Option<UserId>,
    ) -> Result<Vec<(CaseloadCase, Vec<Advice>)>, StoreError> {
        let sql =
            "SELECT * FROM mentorship_cases WHERE ($1::uuid IS NULL OR practitioner_id = $1) \
                   ORDER BY created_at DESC, id";
        let cases: Vec<CaseloadCase> = self
            .db
            .all(sql, args![practitioner])
            .await?
            .iter()
            .map(caseload_case)
            .collect::<Result<_, _>>()?;
        let ids: Vec<Uuid> = cases.iter().map(|c| c.id).collect();
        let mut by_case: HashMap<Uuid, Vec<Advice>> = HashMap::new();
        for row in self.db.all(ADVICE_OF, args![&ids[..]]).await? {
            let a = advice(&row)?;
            by_case.entry(a.mentorship_case_id).or_default().push(a);
        }
        Ok(cases
            .into_iter()
            .map(|c| {
                let advice = by_case.remove(&c.id).unwrap_or_default();
                (c, advice)
            })
            .collect())
    }

    /// Caseload cases waiting for advice at the end of `as_of` (added on or before it,
    /// not advised by then), as backlog entries.
    pub(super) async fn caseload_backlog(
        &self, as_of: NaiveDate,
    ) -> Result<Vec<MentorshipFlag>, StoreError> {
        let sql = "SELECT * FROM mentorship_cases WHERE created_on <= $1 \
                   AND (advised_on IS NULL OR advised_on > $1)";
        let found = self.db.all(sql, args![as_of]).await?;
        found.iter().map(|r| caseload_case(r).map(|c| c.backlog_entry())).collect()
    }

    /// Records advice other than "book into the MDT" (`409 already_booked` once booked),
    /// with `audit`; returns the case as it now is.
    #[tracing::instrument(skip_all, fields(mentorship_case_id = %advice.mentorship_case_id))]
    pub async fn advise_caseload_case(
        &self, advice: &Advice, audit: NewAuditEvent,
    ) -> Result<CaseloadCase, StoreError> {
        let mut tx = self.db.write().await?;
        let mut case = lock(&mut tx, advice.mentorship_case_id).await?;
        case.check_advisable()?;
        advise_in(&mut tx, advice, audit).await?;
        tx.commit().await?;
        case.advised_on = case.advised_on.or(Some(advice.given_on));
        Ok(case)
    }

    /// "Book into the MDT": in one transaction, books `booking` (made of the case by
    /// `CaseloadCase::booking`) like any booking (`booking_audit`, `mail`), accepts it onto
    /// the session's agenda as the advising consultant's triage decision (`triage_audit`;
    /// `domain::triage::check_triage` applies), and records `advice` (`advice_audit`).
    /// `409 already_booked` when the case was booked before.
    #[tracing::instrument(skip_all, fields(mentorship_case_id = %advice.mentorship_case_id))]
    pub async fn book_caseload_case(
        &self, advice: &Advice, booking: &NewCase, audits: [NewAuditEvent; 3],
        mail: Vec<NewMessage>, now: DateTime<Utc>,
    ) -> Result<(CaseloadCase, Case), StoreError> {
        let [advice_audit, booking_audit, triage_audit] = audits;
        let mut tx = self.db.write().await?;
        let mut case = lock(&mut tx, advice.mentorship_case_id).await?;
        case.check_advisable()?;
        super::schedule::book_in(&mut tx, booking, booking_audit, &mail, now).await?;
        let by = advice.consultant_id;
        let decision = Decision::Accept;
        let booked =
            super::triage::triage_in(&mut tx, booking.id, &decision, by, triage_audit, now).await?;
        advise_in(&mut tx, advice, advice_audit).await?;
        tx.commit().await?;
        case.advised_on = case.advised_on.or(Some(advice.given_on));
        case.booked_case_id = Some(booked.id);
        Ok((case, booked))
    }
}
