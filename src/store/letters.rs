//! GP practices, the letters a signed outcome made and their deliveries: letters are
//! stored with the signing or amendment in its transaction (an amendment's supersede the
//! old, which stay readable), email deliveries queued in the outbox with the letter as
//! attachment, and post deliveries kept until a coordinator records the print. Which
//! delivery goes where is `domain::letter::plan_deliveries`'.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::core::Store;
use super::db::Tx;
use super::error::StoreError;
use super::rows::parsed;
use super::sql::{args, Row};
use crate::domain::case::OdsCode;
use crate::domain::letter::Letter;
use crate::domain::letter::{
    Channel, Delivery, DeliveryStatus, LetterKind, NewLetter, Practice, PracticeDetails, Recipient,
};
use crate::domain::{EmailAddress, NewAuditEvent, UserId};

const DELIVERIES: &str = "SELECT d.*, o.sent_at FROM letter_deliveries d \
     LEFT JOIN outbox o ON o.id = d.outbox_id WHERE d.letter_id = $1 ORDER BY d.created_at, d.id";
const TO_PRINT: &str = "SELECT DISTINCT l.* FROM letters l JOIN letter_deliveries d \
     ON d.letter_id = l.id WHERE d.channel = 'post' AND d.printed_at IS NULL \
     AND l.superseded_by IS NULL ORDER BY l.created_at, l.id";

fn practice(row: &Row) -> Result<Practice, StoreError> {
    let email: Option<String> = row.get("email")?;
    Ok(Practice {
        ods_code: parsed(row, "ods_code", OdsCode::parse)?,
        name: row.get("name")?,
        email: email
            .map(|e| EmailAddress::parse(&e).map_err(|_| StoreError::corrupt("email")))
            .transpose()?,
        updated_at: row.get("updated_at")?,
    })
}

fn delivery(row: &Row) -> Result<Delivery, StoreError> {
    let channel = parsed(row, "channel", |s| Channel::parse(s).ok_or(()))?;
    let printed_at: Option<DateTime<Utc>> = row.get("printed_at")?;
    let sent_at: Option<DateTime<Utc>> = row.get("sent_at")?;
    let created_at: DateTime<Utc> = row.get("created_at")?;
    let (status, at) = match (printed_at, sent_at) {
        (Some(at), _) => (DeliveryStatus::Printed, at),
        (None, Some(at)) => (DeliveryStatus::Sent, at),
        (None, None) => (DeliveryStatus::Queued, created_at),
    };
    Ok(Delivery {
        id: row.get("id")?,
        channel,
        recipient: parsed(row, "recipient", |s| Recipient::parse(s).ok_or(()))?,
        status,
        at,
        printed_by: row.get("printed_by")?,
    })
}

fn letter(row: &Row) -> Result<Letter, StoreError> {
    Ok(Letter {
        id: row.get("id")?,
        case_id: row.get("case_id")?,
        kind: parsed(row, "kind", |s| LetterKind::parse(s).ok_or(()))?,
        version: super::rows::count(row, "version")?,
        created_at: row.get("created_at")?,
        superseded_by: row.get("superseded_by")?,
        sha256: row.get("sha256")?,
        deliveries: Vec::new(),
    })
}

/// Stores the letters of outcome `version` of `case_id` (superseding the case's current
/// letters of the same kind), queues their emails and records every delivery, inside
/// the signing's transaction.
pub(super) async fn insert_letters_in(
    tx: &mut Tx, case_id: Uuid, version: u32, letters: &[NewLetter], now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for l in letters {
        let sql = "INSERT INTO letters (id, case_id, kind, version, sha256, created_at) \
                   VALUES ($1, $2, $3, $4, $5, $6)";
        let values = args![l.id, case_id, l.kind.as_str(), version as i32, &l.sha256, now];
        tx.run(sql, values).await?;
        let sql = "UPDATE letters SET superseded_by = $1 WHERE case_id = $2 AND kind = $3 \
                   AND id <> $1 AND superseded_by IS NULL";
        tx.run(sql, args![l.id, case_id, l.kind.as_str()]).await?;
        for notice in &l.notices {
            super::outbox::enqueue_in(tx, notice, now).await?;
        }
        let mut emails = l.emails.iter();
        for d in &l.deliveries {
            let outbox_id = match d.channel {
                Channel::Email => match emails.next() {
                    Some(m) => Some(super::outbox::enqueue_letter_in(tx, m, l.id, now).await?),
                    None => return Err(StoreError::corrupt("letter email")),
                },
                Channel::Post => None,
            };
            let sql = "INSERT INTO letter_deliveries (id, letter_id, recipient, channel, \
                       outbox_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)";
            let values = args![
                Uuid::new_v4(),
                l.id,
                d.recipient.as_str(),
                d.channel.as_str(),
                outbox_id,
                now
            ];
            tx.run(sql, values).await?;
        }
    }
    Ok(())
}

impl Store {
    /// Creates or replaces the practice `ods_code`.
    #[tracing::instrument(skip_all, fields(ods_code = %ods_code.as_str()))]
    pub async fn put_practice(
        &self, ods_code: &OdsCode, details: &PracticeDetails, audit: NewAuditEvent,
        now: DateTime<Utc>,
    ) -> Result<Practice, StoreError> {
        let mut tx = self.db.write().await?;
        let email = details.email.as_ref().map(|e| e.as_str().to_string());
        let sql = "INSERT INTO practices (ods_code, name, email, updated_at) \
                   VALUES ($1, $2, $3, $4) ON CONFLICT (ods_code) DO UPDATE \
                   SET name = excluded.name, email = excluded.email, updated_at = excluded.updated_at";
        tx.run(sql, args![ods_code.as_str(), &details.name, email, now]).await?;
        super::audit::append_audit_in(&mut tx, audit.record(ods_code.as_str())).await?;
        tx.commit().await?;
        Ok(Practice {
            ods_code: ods_code.clone(),
            name: details.name.clone(),
            email: details.email.clone(),
            updated_at: now,
        })
    }

    /// Every practice, by ODS code.
    #[tracing::instrument(skip_all)]
    pub async fn practices(&self) -> Result<Vec<Practice>, StoreError> {
        let rows = self.db.all("SELECT * FROM practices ORDER BY ods_code", args![]).await?;
        rows.iter().map(practice).collect()
    }

    #[tracing::instrument(skip_all, fields(ods_code = %ods_code.as_str()))]
    pub async fn practice(&self, ods_code: &OdsCode) -> Result<Option<Practice>, StoreError> {
        let sql = "SELECT * FROM practices WHERE ods_code = $1";
        let row = self.db.opt(sql, args![ods_code.as_str()]).await?;
        row.as_ref().map(practice).transpose()
    }

    async fn with_deliveries(&self, mut l: Letter) -> Result<Letter, StoreError> {
        let rows = self.db.all(DELIVERIES, args![l.id]).await?;
        l.deliveries = rows.iter().map(delivery).collect::<Result<_, _>>()?;
        Ok(l)
    }

    /// Every letter of the case with its deliveries, oldest first.
    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    pub async fn case_letters(&self, case_id: Uuid) -> Result<Vec<Letter>, StoreError> {
        let sql = "SELECT * FROM letters WHERE case_id = $1 ORDER BY created_at, kind, id";
        let rows = self.db.all(sql, args![case_id]).await?;
        let mut out = Vec::new();
        for row in &rows {
            out.push(self.with_deliveries(letter(row)?).await?);
        }
        Ok(out)
    }

    #[tracing::instrument(skip_all, fields(letter_id = %id))]
    pub async fn letter(&self, id: Uuid) -> Result<Option<Letter>, StoreError> {
        let row = self.db.opt("SELECT * FROM letters WHERE id = $1", args![id]).await?;
        match row.as_ref().map(letter).transpose()? {
            Some(l) => self.with_deliveries(l).await.map(Some),
            None => Ok(None),
        }
    }

    /// The print-and-post list: current (not superseded) letters with a delivery by post
    /// not yet printed, oldest first.
    #[tracing::instrument(skip_all)]
    pub async fn letters_to_print(&self) -> Result<Vec<Letter>, StoreError> {
        let rows = self.db.all(TO_PRINT, args![]).await?;
        let mut out = Vec::new();
        for row in &rows {
            out.push(self.with_deliveries(letter(row)?).await?);
        }
        Ok(out)
    }

    /// Records that `by` printed the letter for every post delivery still waiting; how
    /// many it marked (none when it was printed already).
    #[tracing::instrument(skip_all, fields(letter_id = %id))]
    pub async fn letter_printed(
        &self, id: Uuid, by: UserId, audit: NewAuditEvent, now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.db.write().await?;
        let sql = "UPDATE letter_deliveries SET printed_by = $1, printed_at = $2 \
                   WHERE letter_id = $3 AND channel = 'post' AND printed_at IS NULL";
        let n = tx.run(sql, args![by, now, id]).await?;
        super::facts::delivered_in(&mut tx, "d.letter_id = $2 AND d.channel = 'post'", id, now)
            .await?;
        if n > 0 {
            let details = serde_json::json!({ "deliveries": n });
            super::audit::append_audit_in(&mut tx, audit.record(id).details(details)).await?;
        }
        tx.commit().await?;
        Ok(n)
    }
}
