//! The transactional outbox (messages queued with the change that caused them, claimed
//! and leased by the mail worker) and case attachments' records.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::audit::append_audit_in;
use super::core::Store;
use super::db::Tx;
use super::error::StoreError;
use super::rows;
use super::sql::args;
use crate::domain::message::join_recipients;
use crate::domain::{Attachment, NewAuditEvent, NewMessage, OutboxMessage};

/// Due messages, oldest due first; a message another worker holds is skipped.
const DUE: &str = "SELECT * FROM outbox WHERE sent_at IS NULL AND next_attempt_at <= $1 \
     ORDER BY next_attempt_at, created_at LIMIT $2 FOR UPDATE SKIP LOCKED";
const LEASE: &str = "UPDATE outbox SET next_attempt_at = $1 WHERE id = $2";
const SENT: &str =
    "UPDATE outbox SET sent_at = $1, attempts = attempts + 1, last_error = NULL WHERE id = $2";
const FAILED: &str = "UPDATE outbox SET attempts = attempts + 1, last_error = $1, \
     next_attempt_at = $2 WHERE id = $3";
const ATTACHMENTS_OF: &str =
    "SELECT * FROM attachments WHERE case_id = $1 ORDER BY uploaded_at, id";

/// Queues a message inside the caller's transaction.
pub(super) async fn enqueue_in(
    tx: &mut Tx, m: &NewMessage, now: DateTime<Utc>,
) -> Result<(), StoreError> {
    insert_message(tx, m, None, now).await.map(|_| ())
}

/// Queues a message carrying letter `letter_id` as a PDF attachment; its outbox id.
pub(super) async fn enqueue_letter_in(
    tx: &mut Tx, m: &NewMessage, letter_id: Uuid, now: DateTime<Utc>,
) -> Result<Uuid, StoreError> {
    insert_message(tx, m, Some(letter_id), now).await
}

async fn insert_message(
    tx: &mut Tx, m: &NewMessage, letter_id: Option<Uuid>, now: DateTime<Utc>,
) -> Result<Uuid, StoreError> {
    let id = Uuid::new_v4();
    tx.run(
        "INSERT INTO outbox (id, recipients, subject, body, html, calendar, created_at, \
         next_attempt_at, attempts, letter_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, 0, $8)",
        args![
            id,
            join_recipients(&m.to),
            &m.subject,
            &m.body,
            &m.html,
            &m.calendar,
            now,
            letter_id
        ],
    )
    .await?;
    Ok(id)
}

/// Records one attachment inside the caller's transaction.
pub(super) async fn insert_attachment_row(tx: &mut Tx, a: &Attachment) -> Result<(), StoreError> {
    tx.run(
        "INSERT INTO attachments (id, case_id, sha256, size, content_type, filename, uploaded_by, \
         uploaded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        args![
            a.id,
            a.case_id,
            &a.sha256,
            a.size as i64,
            &a.content_type,
            &a.filename,
            a.uploaded_by,
            a.uploaded_at
        ],
    )
    .await?;
    Ok(())
}

impl Store {
    /// Claims up to `limit` undelivered messages that are due, leasing them until
    /// `lease_until` so no other worker sends them meanwhile.
    #[tracing::instrument(skip_all)]
    pub async fn claim_due_messages(
        &self, now: DateTime<Utc>, lease_until: DateTime<Utc>, limit: u32,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        let mut tx = self.db.write().await?;
        let rows = tx.all(DUE, args![now, i64::from(limit)]).await?;
        let messages: Vec<OutboxMessage> =
            rows.iter().map(rows::message).collect::<Result<_, _>>()?;
        for m in &messages {
            tx.run(LEASE, args![lease_until, m.id]).await?;
        }
        tx.commit().await?;
        Ok(messages)
    }

    #[tracing::instrument(skip_all, fields(message_id = %id))]
    pub async fn message_sent(&self, id: Uuid, at: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tx = self.db.write().await?;
        tx.run(SENT, args![at, id]).await?;
        super::facts::delivered_in(&mut tx, "d.outbox_id = $2", id, at).await?;
        tx.commit().await
    }

    /// Records a failed attempt; the message is due again at `retry_at`.
    #[tracing::instrument(skip_all, fields(message_id = %id))]
    pub async fn message_failed(
        &self, id: Uuid, error: &str, retry_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.db.run(FAILED, args![error, retry_at, id]).await.map(|_| ())
    }

    /// Every message in the outbox, oldest first (operations and tests).
    #[tracing::instrument(skip_all)]
    pub async fn outbox_messages(&self) -> Result<Vec<OutboxMessage>, StoreError> {
        let rows = self.db.all("SELECT * FROM outbox ORDER BY created_at, id", args![]).await?;
        rows.iter().map(rows::message).collect()
    }

    /// Records an attachment (whose bytes are already in the blob store) with its audit
    /// event.
    #[tracing::instrument(skip_all, fields(attachment_id = %a.id, case_id = %a.case_id))]
    pub async fn add_attachment(
        &self, a: &Attachment, audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.write().await?;
        insert_attachment_row(&mut tx, a).await?;
        append_audit_in(&mut tx, audit.record(a.id)).await?;
        tx.commit().await
    }

    #[tracing::instrument(skip_all, fields(attachment_id = %id))]
    pub async fn attachment(&self, id: Uuid) -> Result<Option<Attachment>, StoreError> {
        let row = self.db.opt("SELECT * FROM attachments WHERE id = $1", args![id]).await?;
        row.as_ref().map(rows::attachment).transpose()
    }

    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    pub async fn case_attachments(&self, case_id: Uuid) -> Result<Vec<Attachment>, StoreError> {
        let rows = self.db.all(ATTACHMENTS_OF, args![case_id]).await?;
        rows.iter().map(rows::attachment).collect()
    }
}
