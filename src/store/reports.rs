//! The per-case CSV's read (issues 7 and 17): a window's sessions and case rows, from one
//! consistent snapshot, with the dates and day counts of `measures::FACTS`. The CSV is
//! written in `domain::report`; this module only fetches and decodes what it needs.

use chrono::NaiveDate;

use super::core::Store;
use super::error::StoreError;
use super::measures::{Dialect, TallyGroup, FACTS};
use super::rows;
use super::sql::{args, Row};
use crate::domain::body_site::BodySite;
use crate::domain::case::{CaseState, Urgency};
use crate::domain::proforma::ReferralSource;
use crate::domain::report::{ActivityData, CaseRow, ExportedCase, ReportQuery, SessionRow};
use crate::domain::{OutcomeDraft, PersonName, Role, SessionState};

// Each query reads the sessions starting in [$1, $2) of the specialties in $3.

/// The sessions of the window.
const REPORT_SESSIONS: &str = "\
SELECT s.id, s.specialty, s.starts_at, s.state, s.minutes_per_case
FROM sessions s
WHERE s.starts_at >= $1 AND s.starts_at < $2 AND s.specialty = ANY($3)
ORDER BY s.starts_at, s.id";

/// Every case row booked into a session of the window (the facts `f` of
/// `measures::FACTS`): the case's columns the CSV shows (no free text), its referrer, its
/// latest signed outcome body, and the dates and day counts the tallies group by.
const REPORT_CASES: &str = "
SELECT c.id, c.session_id, c.referrer_id, c.nhs_number, c.given_name, c.family_name,
       c.date_of_birth, c.sex, c.gp_practice_code, c.urgency, c.body_site, c.state, c.booked_at,
       c.follow_up_of, c.referral_received_on, c.referral_source, f.planned, f.outside,
       u.role AS referrer_role, u.name AS referrer_name,
       (SELECT o.body FROM outcome_versions o WHERE o.case_id = c.id AND o.signed_at IS NOT NULL
        ORDER BY o.version DESC LIMIT 1) AS outcome_body,
       CAST(booked_on AS TEXT) AS booked_on_text, CAST(discussed_on AS TEXT) AS discussed_on_text,
       CAST(triaged_on AS TEXT) AS triaged_on_text,
       {from_booking} AS days_from_booking, {from_referral} AS days_from_referral,
       CASE WHEN ended_at >= started_at THEN {live_seconds} END AS live_seconds
FROM f JOIN cases c ON c.id = f.id JOIN users u ON u.id = c.referrer_id";

fn report_session(row: &Row) -> Result<SessionRow, StoreError> {
    Ok(SessionRow {
        id: row.get("id")?,
        specialty: rows::specialty(row, "specialty")?,
        starts_at: row.get("starts_at")?,
        state: rows::parsed(row, "state", |s| SessionState::parse(s).ok_or(()))?,
        minutes_per_case: rows::count(row, "minutes_per_case")?,
    })
}

/// A date the statement spelled as text.
fn date(row: &Row, column: &'static str) -> Result<Option<NaiveDate>, StoreError> {
    let text: Option<String> = row.get(column)?;
    let parse = |t: String| NaiveDate::parse_from_str(&t, "%Y-%m-%d");
    text.map(parse).transpose().map_err(|_| StoreError::corrupt(column))
}

/// A case row: the case's exported columns plus its referrer, its latest signed outcome
/// (as a summary without free text) and what the statement derived.
fn report_case(row: &Row) -> Result<CaseRow, StoreError> {
    let case = ExportedCase {
        id: row.get("id")?,
        session_id: row.get("session_id")?,
        referrer_id: row.get("referrer_id")?,
        patient: rows::patient(row)?,
        urgency: rows::parsed(row, "urgency", Urgency::parse)?,
        body_site: rows::parsed(row, "body_site", BodySite::parse)?,
        state: rows::parsed(row, "state", |s| CaseState::parse(s).ok_or(()))?,
        booked_at: row.get("booked_at")?,
        follow_up_of: row.get("follow_up_of")?,
        planned: rows::count::<i64>(row, "planned")? > 0,
        referral_received_on: row.get("referral_received_on")?,
        referral_source: row
            .get::<Option<String>>("referral_source")?
            .map(|s| ReferralSource::parse(&s).map_err(|_| StoreError::corrupt("referral_source")))
            .transpose()?,
    };
    let outcome = row
        .get::<Option<String>>("outcome_body")?
        .map(|body| {
            serde_json::from_str::<OutcomeDraft>(&body)
                .map(|draft| draft.summary())
                .map_err(|_| StoreError::corrupt("outcome_versions.body"))
        })
        .transpose()?;
    let required = |column| date(row, column)?.ok_or(StoreError::corrupt(column));
    Ok(CaseRow {
        referrer_role: rows::parsed(row, "referrer_role", str::parse::<Role>)?,
        referrer_name: rows::parsed(row, "referrer_name", PersonName::parse)?,
        decided_outside_meeting: rows::count::<i64>(row, "outside")? > 0,
        outcome,
        booked_on: required("booked_on_text")?,
        discussed_on: required("discussed_on_text")?,
        triaged_on: date(row, "triaged_on_text")?,
        days_from_booking: rows::count(row, "days_from_booking")?,
        days_from_referral: rows::count(row, "days_from_referral")?,
        live_seconds: row.get("live_seconds")?,
        case,
    })
}

impl Store {
    /// What the per-case CSV reads for sessions of `query.specialties` starting in
    /// `[query.starts_at, query.ends_at)`, from one consistent snapshot: the sessions and
    /// every case row booked into them (with its referrer, its latest signed outcome, and
    /// the dates and day counts the reports' tallies use).
    #[tracing::instrument(skip_all, fields(specialties = query.specialties.len()))]
    pub async fn activity_data(&self, query: &ReportQuery) -> Result<ActivityData, StoreError> {
        let names = query.specialties.iter().map(|s| s.as_str().to_string());
        let specialties: Vec<String> = names.collect();
        let window = || args![query.starts_at, query.ends_at, specialties.clone()];
        let mut tx = self.db.snapshot().await?;
        let sessions = tx.all(REPORT_SESSIONS, window()).await?;
        let sessions = sessions.iter().map(report_session).collect::<Result<_, _>>()?;
        let dialect = Dialect::new(tx.is_postgres(), query);
        let sql = dialect.spell(&format!("WITH {FACTS}{REPORT_CASES}"), TallyGroup::Month);
        let cases = tx.all(sql, window()).await?;
        let cases = cases.iter().map(report_case).collect::<Result<_, _>>()?;
        tx.commit().await?;
        Ok(ActivityData { sessions, cases })
    }
}
