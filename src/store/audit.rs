//! The audit log: appending to its hash chain (alone, or inside another area's write
//! transaction through [`append_audit_in`] / [`append_audits_in`]), reading it whole or
//! one page of a patient's or user's trail, and verifying it. The chain is serialised
//! here; what an event says is decided by its caller.

use std::collections::HashMap;

use uuid::Uuid;

use super::core::Store;
use super::db::Tx;
use super::error::StoreError;
use super::rows;
use super::sql::{args, values_list, Arg};
use crate::domain::audit::{verify_chain, AuditQuery, AuditSubject, GENESIS_HASH};
use crate::domain::{AuditEvent, AuditVerification, NewAuditEvent, NhsNumber};

/// Rows per multi-row insert: 9 parameters a row stay well inside both databases' limits.
const CHUNK: usize = 500;
/// An event's links `(record_id, seq)`, all from one array argument ($1, the record ids)
/// in one statement.
const INSERT_LINKS: &str =
    "INSERT INTO audit_event_records (record_id, seq) SELECT value, $2 FROM unnest($1::text[]) AS value";
/// An insert of chained rows, completed by `values_list(rows, 9)` (see [`event_args`]).
const INSERT: &str = "INSERT INTO audit_events (occurred_at, actor_id, action, record_type, \
    record_id, client_addr, details, prev_hash, hash) VALUES ";

impl Store {
    /// Appends one event to the hash chain (serialised so the chain has no forks).
    #[tracing::instrument(skip_all)]
    pub async fn append_audit(&self, event: NewAuditEvent) -> Result<AuditEvent, StoreError> {
        let mut tx = self.db.write().await?;
        let stored = append_audit_in(&mut tx, event).await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// Appends several events in one transaction (e.g. one per case a response shows).
    #[tracing::instrument(skip_all, fields(events = events.len()))]
    pub async fn append_audits(&self, events: Vec<NewAuditEvent>) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut tx = self.db.write().await?;
        append_audits_in(&mut tx, events).await?;
        tx.commit().await
    }

    /// All audit events in chain order, each with the records it covers, from one
    /// consistent snapshot.
    #[tracing::instrument(skip_all)]
    pub async fn audit_events(&self) -> Result<Vec<AuditEvent>, StoreError> {
        let mut tx = self.db.snapshot().await?;
        let found = tx.all("SELECT * FROM audit_events ORDER BY seq", args![]).await?;
        let links = tx.all("SELECT seq, record_id FROM audit_event_records", args![]).await?;
        tx.commit().await?;
        let mut covers: HashMap<i64, Vec<String>> = HashMap::new();
        for link in &links {
            covers.entry(link.get("seq")?).or_default().push(link.get("record_id")?);
        }
        let mut events = found.iter().map(rows::audit).collect::<Result<Vec<_>, _>>()?;
        for event in &mut events {
            event.covers = covers.remove(&event.seq).unwrap_or_default();
        }
        Ok(events)
    }

    /// Walks the chain and reports the first row that does not match.
    #[tracing::instrument(skip_all)]
    pub async fn verify_audit(&self) -> Result<AuditVerification, StoreError> {
        Ok(verify_chain(&self.audit_events().await?))
    }

    /// One page of the audit trail of a patient (events whose record is one of the
    /// patient's cases, in any state, an attachment of one, a caseload case of theirs on a
    /// mentorship list, or an event that covers one of their cases, such as an export) or
    /// of a user (events they caused): in chain order, `seq > query.after`, inside the time
    /// window, at most `query.limit`. Filtered in SQL; the log is never loaded whole.
    #[tracing::instrument(skip_all, fields(after = query.after, limit = query.limit))]
    pub async fn search_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        // A record id is a UUID as text, unique across record types.
        let (sql, subject): (&'static str, Arg) = match &query.subject {
            AuditSubject::Patient(nhs) => (
                "SELECT * FROM audit_events WHERE \
                 (record_id IN (SELECT id::text FROM cases WHERE nhs_number = $1) \
                  OR record_id IN (SELECT a.id::text FROM attachments a \
                                   JOIN cases c ON c.id = a.case_id WHERE c.nhs_number = $1) \
                  OR record_id IN (SELECT id::text FROM mentorship_cases \
                                   WHERE nhs_number = $1) \
                  OR seq IN (SELECT l.seq FROM audit_event_records l \
                             JOIN cases c ON l.record_id = c.id::text WHERE c.nhs_number = $1)) \
                 AND seq > $2 AND ($3::timestamptz IS NULL OR occurred_at >= $3) \
                 AND ($4::timestamptz IS NULL OR occurred_at < $4) ORDER BY seq LIMIT $5",
                nhs.as_str().into(),
            ),
            AuditSubject::Actor(id) => (
                "SELECT * FROM audit_events WHERE actor_id = $1 \
                 AND seq > $2 AND ($3::timestamptz IS NULL OR occurred_at >= $3) \
                 AND ($4::timestamptz IS NULL OR occurred_at < $4) ORDER BY seq LIMIT $5",
                (*id).into(),
            ),
        };
        let (window, mut values) = (&query.window, vec![subject]);
        values.extend(args![query.after, window.from, window.to, query.limit]);
        let found = self.db.all(sql, values).await?;
        found.iter().map(rows::audit).collect()
    }

    /// The ids of every case ever booked for this NHS number, in any state, oldest first.
    #[tracing::instrument(skip_all)]
    pub async fn patient_case_ids(&self, nhs_number: &NhsNumber) -> Result<Vec<Uuid>, StoreError> {
        let sql = "SELECT id FROM cases WHERE nhs_number = $1 ORDER BY booked_at, id";
        let found = self.db.all(sql, args![nhs_number.as_str()]).await?;
        rows::ids(&found, "id")
    }
}

/// Appends one audit event inside the caller's write transaction, so the event and the
/// change it records commit (or fail) together.
pub(super) async fn append_audit_in(
    tx: &mut Tx, event: NewAuditEvent,
) -> Result<AuditEvent, StoreError> {
    let event = event.normalised();
    let prev_hash = chain_tail(tx).await?;
    let hash = event.chain_hash(&prev_hash);
    let seq = insert_one(tx, &event, &prev_hash, &hash).await?;
    Ok(AuditEvent::stored(event, seq, prev_hash, hash))
}

/// Appends many audit events inside the caller's write transaction: the chain's last
/// hash is read once, the hashes are chained here, and the rows go in as multi-row
/// inserts, in order, so `seq` follows the chain (an event that covers further records
/// goes in alone, to link them to its `seq`).
pub(super) async fn append_audits_in(
    tx: &mut Tx, events: Vec<NewAuditEvent>,
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let mut prev_hash = chain_tail(tx).await?;
    let mut pending = Vec::with_capacity(events.len());
    for event in events {
        let event = event.normalised();
        let hash = event.chain_hash(&prev_hash);
        if event.covers.is_empty() {
            pending.push(event_args(&event, &prev_hash, &hash));
        } else {
            insert_many(tx, std::mem::take(&mut pending)).await?;
            insert_one(tx, &event, &prev_hash, &hash).await?;
        }
        prev_hash = hash;
    }
    insert_many(tx, pending).await
}

/// Inserts one chained event and links it to the records it covers; returns its `seq`.
async fn insert_one(
    tx: &mut Tx, event: &NewAuditEvent, prev_hash: &str, hash: &str,
) -> Result<i64, StoreError> {
    let sql = format!("{INSERT}{} RETURNING seq", values_list(1, 9));
    let seq: i64 = tx.one(sql, event_args(event, prev_hash, hash)).await?.get("seq")?;
    if !event.covers.is_empty() {
        tx.run(INSERT_LINKS, args![event.covers.clone(), seq]).await?;
    }
    Ok(seq)
}

/// Inserts already chained rows (see [`event_args`]) as multi-row inserts, in order.
async fn insert_many(tx: &mut Tx, rows: Vec<Vec<Arg>>) -> Result<(), StoreError> {
    for chunk in rows.chunks(CHUNK) {
        let sql = format!("{INSERT}{}", values_list(chunk.len(), 9));
        tx.run(sql, chunk.concat()).await?;
    }
    Ok(())
}

/// The nine values of one `audit_events` row, in column order.
fn event_args(event: &NewAuditEvent, prev_hash: &str, hash: &str) -> Vec<Arg> {
    args![
        event.occurred_at,
        event.actor_id,
        &event.action,
        &event.record_type,
        &event.record_id,
        &event.client_addr,
        &event.details,
        prev_hash,
        hash,
    ]
}

/// The audit chain's last hash (the genesis hash for an empty log), read inside the
/// caller's write transaction, which holds the chain's lock from here on.
async fn chain_tail(tx: &mut Tx) -> Result<String, StoreError> {
    tx.lock_audit_chain().await?;
    let sql = "SELECT hash FROM audit_events ORDER BY seq DESC LIMIT 1";
    let last = tx.opt(sql, args![]).await?;
    last.map_or(Ok(GENESIS_HASH.to_string()), |row| row.get("hash"))
}
