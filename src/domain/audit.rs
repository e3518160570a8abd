//! Audit events and their hash chain: each row's hash covers its content and the previous
//! row's hash, so a changed or removed row breaks the chain from that point on.

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::user::UserId;

/// The `prev_hash` of the first row.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened, before it is chained and stored.
#[derive(Clone, Debug)]
pub struct NewAuditEvent {
    /// Microsecond precision, so both backends store exactly what was hashed.
    pub occurred_at: DateTime<Utc>,
    pub actor_id: Option<UserId>,
    /// A snake_case verb such as `login_succeeded`, `case_read`, `outcome_signed`.
    pub action: String,
    pub record_type: String,
    pub record_id: Option<String>,
    pub client_addr: Option<String>,
    /// Canonical JSON text (serde_json sorts object keys).
    pub details: String,
    /// Further records the event covers beyond `record_id` (a bulk export is one event
    /// covering every case it carried), kept as links so each record's trail finds the
    /// event; the chain hash covers them (see [`covers_digest`]).
    pub covers: Vec<String>,
}

impl NewAuditEvent {
    pub fn new(action: &str, record_type: &str) -> Self {
        Self {
            occurred_at: Utc::now().trunc_subsecs(6),
            actor_id: None,
            action: action.to_string(),
            record_type: record_type.to_string(),
            record_id: None,
            client_addr: None,
            details: "{}".to_string(),
            covers: Vec::new(),
        }
    }

    pub fn actor(mut self, id: UserId) -> Self {
        self.actor_id = Some(id);
        self
    }

    pub fn record(mut self, id: impl ToString) -> Self {
        self.record_id = Some(id.to_string());
        self
    }

    pub fn from_addr(mut self, addr: Option<String>) -> Self {
        self.client_addr = addr;
        self
    }

    pub fn details(mut self, value: serde_json::Value) -> Self {
        self.details = value.to_string();
        self
    }

    /// The further records the event covers (see [`NewAuditEvent::covers`]), kept in
    /// sorted order (the order their digest reads them in, and the links' key order).
    pub fn covering(mut self, mut records: Vec<String>) -> Self {
        records.sort_unstable();
        self.covers = records;
        self
    }

    /// Rounds the time to microseconds, the precision both backends store; stores call
    /// this before hashing so what is hashed is exactly what is kept.
    pub fn normalised(mut self) -> Self {
        self.occurred_at = self.occurred_at.trunc_subsecs(6);
        self
    }

    /// The chain hash of this event after `prev_hash`. An event that covers further
    /// records hashes their digest too, so a link added, changed or removed breaks the
    /// chain at that event; one that covers none hashes exactly as before links existed.
    pub fn chain_hash(&self, prev_hash: &str) -> String {
        let mut canonical = serde_json::json!([
            prev_hash,
            self.occurred_at.to_rfc3339_opts(SecondsFormat::Micros, true),
            self.actor_id.map(|a| a.to_string()),
            self.action,
            self.record_type,
            self.record_id,
            self.client_addr,
            self.details,
        ]);
        if let (false, Some(fields)) = (self.covers.is_empty(), canonical.as_array_mut()) {
            fields.push(covers_digest(&self.covers).into());
        }
        hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
    }
}

/// The digest of the records an event covers: SHA-256 of the ids in sorted order, one
/// per line, so it does not depend on the order they were read back in.
pub fn covers_digest(records: &[String]) -> String {
    let mut sorted: Vec<&str> = records.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    hex::encode(Sha256::digest(sorted.join("\n").as_bytes()))
}

/// A stored, chained audit event.
#[derive(Clone, Debug, Serialize)]
pub struct AuditEvent {
    pub seq: i64,
    pub occurred_at: DateTime<Utc>,
    pub actor_id: Option<UserId>,
    pub action: String,
    pub record_type: String,
    pub record_id: Option<String>,
    pub client_addr: Option<String>,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
    /// The further records the event covers: loaded by the whole-log read that
    /// verification walks, left empty by paged searches (whose `details` count them).
    #[serde(skip)]
    pub covers: Vec<String>,
}

impl AuditEvent {
    /// The event as stored at position `seq` of the chain.
    pub fn stored(event: NewAuditEvent, seq: i64, prev_hash: String, hash: String) -> Self {
        Self {
            seq,
            occurred_at: event.occurred_at,
            actor_id: event.actor_id,
            action: event.action,
            record_type: event.record_type,
            record_id: event.record_id,
            client_addr: event.client_addr,
            details: event.details,
            prev_hash,
            hash,
            covers: event.covers,
        }
    }

    fn content(&self) -> NewAuditEvent {
        NewAuditEvent {
            occurred_at: self.occurred_at,
            actor_id: self.actor_id,
            action: self.action.clone(),
            record_type: self.record_type.clone(),
            record_id: self.record_id.clone(),
            client_addr: self.client_addr.clone(),
            details: self.details.clone(),
            covers: self.covers.clone(),
        }
    }
}

/// The result of walking the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditVerification {
    pub rows_checked: u64,
    /// The first row whose link or content does not match, if any.
    pub first_broken_seq: Option<i64>,
}

impl AuditVerification {
    pub fn is_intact(&self) -> bool {
        self.first_broken_seq.is_none()
    }
}

/// Walks events in `seq` order and finds the first broken link.
pub fn verify_chain<'a>(events: impl IntoIterator<Item = &'a AuditEvent>) -> AuditVerification {
    let mut prev = GENESIS_HASH.to_string();
    let mut rows_checked = 0;
    for event in events {
        rows_checked += 1;
        if event.prev_hash != prev || event.content().chain_hash(&prev) != event.hash {
            return AuditVerification { rows_checked, first_broken_seq: Some(event.seq) };
        }
        prev = event.hash.clone();
    }
    AuditVerification { rows_checked, first_broken_seq: None }
}

/// Whose trail an audit query follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditSubject {
    /// Events on any case booked for this patient (in any state) or on its attachments.
    Patient(super::nhs_number::NhsNumber),
    /// Events by this user.
    Actor(UserId),
}

/// At most this many events per page of an audit query.
pub const MAX_AUDIT_PAGE: u32 = 1000;
/// The page size when none is asked for.
pub const DEFAULT_AUDIT_PAGE: u32 = 100;

/// A parsed audit query: the subject, a time window, and the page (events after `after`
/// in chain order, at most `limit`).
#[derive(Clone, Debug)]
pub struct AuditQuery {
    pub subject: AuditSubject,
    pub window: super::time_window::TimeWindow,
    /// Only events with a greater `seq` (the previous page's `next`).
    pub after: i64,
    pub limit: u32,
}

impl AuditQuery {
    /// Parses the paging parameters: `limit` 1–1000 (default 100), `after` a `seq` ≥ 0.
    pub fn page(
        limit: Option<&str>, after: Option<&str>,
    ) -> Result<(u32, i64), super::parse::ParseError> {
        use super::parse::ParseError;
        let limit = match limit.map(str::trim) {
            None | Some("") => DEFAULT_AUDIT_PAGE,
            Some(raw) => {
                raw.parse::<u32>().ok().filter(|n| (1..=MAX_AUDIT_PAGE).contains(n)).ok_or_else(
                    || {
                        ParseError::new(
                            "invalid_value",
                            "limit",
                            format!("must be a whole number from 1 to {MAX_AUDIT_PAGE}"),
                        )
                    },
                )?
            }
        };
        let after = match after.map(str::trim) {
            None | Some("") => 0,
            Some(raw) => raw.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                ParseError::new("invalid_value", "after", "must be an event seq (a whole number)")
            })?,
        };
        Ok((limit, after))
    }
}

/// What `GET /api/admin/audit/verify` and `mdt-coordinator audit verify` report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct VerifyReport {
    pub ok: bool,
    /// Events checked.
    pub length: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broken_at: Option<i64>,
}

impl From<&AuditVerification> for VerifyReport {
    fn from(v: &AuditVerification) -> Self {
        Self { ok: v.is_intact(), length: v.rows_checked, broken_at: v.first_broken_seq }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: usize) -> Vec<AuditEvent> {
        let mut prev = GENESIS_HASH.to_string();
        (0..n)
            .map(|i| {
                let e = NewAuditEvent::new("login_succeeded", "user").record(i);
                let hash = e.chain_hash(&prev);
                let stored = AuditEvent::stored(e, i as i64 + 1, prev.clone(), hash.clone());
                prev = hash;
                stored
            })
            .collect()
    }

    #[test]
    fn audit_pages_parse() {
        assert_eq!(AuditQuery::page(None, None).unwrap(), (100, 0));
        assert_eq!(AuditQuery::page(Some("1000"), Some("42")).unwrap(), (1000, 42));
        for bad in ["0", "1001", "-1", "ten"] {
            assert_eq!(AuditQuery::page(Some(bad), None).unwrap_err().field, "limit");
        }
        assert_eq!(AuditQuery::page(None, Some("-3")).unwrap_err().field, "after");
    }

    #[test]
    fn intact_chain_verifies() {
        let v = verify_chain(&chain(5));
        assert!(v.is_intact());
        assert_eq!(v.rows_checked, 5);
    }

    #[test]
    fn edited_row_is_found() {
        let mut events = chain(5);
        events[2].action = "nothing_happened".into();
        assert_eq!(verify_chain(&events).first_broken_seq, Some(3));
    }

    #[test]
    fn removed_row_is_found() {
        let mut events = chain(5);
        events.remove(1);
        assert_eq!(verify_chain(&events).first_broken_seq, Some(3));
    }
}
