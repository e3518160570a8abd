//! Communication clocks' reads and the bank holidays they skip (issue 16): for each
//! signed case, when its outcome was first signed and when each clock was first met by a
//! letter's delivery; the bank-holiday table coordinators add to. Deadlines and states
//! are `domain::communication`'s.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};

use super::core::Store;
use super::error::{StoreError, Unique};
use super::sql::{args, Row};
use crate::domain::communication::{BankHoliday, ClockFacts};
use crate::domain::conflict::Conflict;
use crate::domain::NewAuditEvent;

/// The columns of a case `c` the clocks need: the first signing and the first time a GP
/// letter (any version) reached the referrer and a patient letter reached the patient,
/// as `facts.rs` keeps them on the row (an email delivery when the outbox sent it, a post
/// delivery when it was printed); and the case's current letters.
pub(super) const CLOCK_COLUMNS: &str = "\
c.first_signed_at, c.referrer_informed_at, c.patient_letter_sent_at,
(SELECT l.id FROM letters l WHERE l.case_id = c.id AND l.kind = 'gp'
   AND l.superseded_by IS NULL) AS gp_letter_id,
(SELECT l.id FROM letters l WHERE l.case_id = c.id AND l.kind = 'patient'
   AND l.superseded_by IS NULL) AS patient_letter_id";

/// Signed cases with a clock not yet met.
const OPEN_CLOCKS: &str = "\
SELECT * FROM (SELECT c.id AS case_id, {clock_columns} FROM cases c) x
WHERE x.first_signed_at IS NOT NULL
  AND (x.referrer_informed_at IS NULL OR x.patient_letter_sent_at IS NULL)
ORDER BY x.first_signed_at, x.case_id";

/// A case row's clock facts (columns [`CLOCK_COLUMNS`]; the case id in `id_column`), if
/// its outcome was signed.
pub(super) fn clock_facts(row: &Row, id_column: &str) -> Result<Option<ClockFacts>, StoreError> {
    let signed_at: Option<DateTime<Utc>> = row.get("first_signed_at")?;
    let Some(signed_at) = signed_at else {
        return Ok(None);
    };
    Ok(Some(ClockFacts {
        case_id: row.get(id_column)?,
        signed_at,
        referrer_informed_at: row.get("referrer_informed_at")?,
        patient_letter_sent_at: row.get("patient_letter_sent_at")?,
        gp_letter_id: row.get("gp_letter_id")?,
        patient_letter_id: row.get("patient_letter_id")?,
    }))
}

impl Store {
    /// Every bank holiday, by date.
    #[tracing::instrument(skip_all)]
    pub async fn bank_holidays(&self) -> Result<Vec<BankHoliday>, StoreError> {
        let sql = "SELECT day, name FROM bank_holidays ORDER BY day";
        let rows = self.db.all(sql, args![]).await?;
        rows.iter().map(|r| Ok(BankHoliday { date: r.get("day")?, name: r.get("name")? })).collect()
    }

    /// The bank holidays' dates alone, for working-day arithmetic.
    #[tracing::instrument(skip_all)]
    pub async fn bank_holiday_dates(&self) -> Result<BTreeSet<NaiveDate>, StoreError> {
        Ok(self.bank_holidays().await?.into_iter().map(|h| h.date).collect())
    }

    /// Adds a bank holiday with its audit event; `409 bank_holiday_exists` if that day is
    /// one already.
    #[tracing::instrument(skip_all, fields(date = %holiday.date))]
    pub async fn add_bank_holiday(
        &self, holiday: &BankHoliday, audit: NewAuditEvent, now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.write().await?;
        let sql = "INSERT INTO bank_holidays (day, name, created_at) VALUES ($1, $2, $3)";
        match tx.run(sql, args![holiday.date, &holiday.name, now]).await {
            Err(e) if e.is_unique(Unique::BankHolidayDay) => {
                return Err(Conflict::BankHolidayExists.into())
            }
            other => other?,
        };
        let details = serde_json::json!({ "name": holiday.name });
        super::audit::append_audit_in(&mut tx, audit.record(holiday.date).details(details)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Signed cases with a communication clock not yet met, first signed first.
    #[tracing::instrument(skip_all)]
    pub async fn open_clock_facts(&self) -> Result<Vec<ClockFacts>, StoreError> {
        let sql = OPEN_CLOCKS.replace("{clock_columns}", CLOCK_COLUMNS);
        let rows = self.db.all(sql, args![]).await?;
        let mut out = Vec::new();
        for row in &rows {
            out.extend(clock_facts(row, "case_id")?);
        }
        Ok(out)
    }
}
