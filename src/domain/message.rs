//! Outgoing email as the outbox holds it: already rendered, addressed to staff only,
//! carrying no patient identifiers.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::email::EmailAddress;

/// A message to queue with the change that causes it.
#[derive(Clone, Debug)]
pub struct NewMessage {
    pub to: Vec<EmailAddress>,
    pub subject: String,
    /// The plain-text body.
    pub body: String,
    /// An HTML alternative of `body` (everything interpolated escaped); sent with it as
    /// `multipart/alternative`.
    pub html: Option<String>,
    /// An iCalendar object (`METHOD:REQUEST`) sent as a `text/calendar` part.
    pub calendar: Option<String>,
}

/// A queued message as the worker sees it.
#[derive(Clone, Debug, Serialize)]
pub struct OutboxMessage {
    pub id: Uuid,
    pub to: Vec<EmailAddress>,
    pub subject: String,
    pub body: String,
    pub html: Option<String>,
    pub calendar: Option<String>,
    /// The letter (`crate::domain::letter`) this message carries as a PDF attachment.
    pub letter_id: Option<Uuid>,
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// Recipients as stored: comma-separated addresses.
pub fn join_recipients(to: &[EmailAddress]) -> String {
    to.iter().map(EmailAddress::as_str).collect::<Vec<_>>().join(",")
}

pub fn split_recipients(stored: &str) -> Vec<EmailAddress> {
    stored.split(',').filter_map(|a| EmailAddress::parse(a).ok()).collect()
}
