//! Letters after a signed outcome (issue 16): their kinds, GP practices as data, the
//! secure-domain rule and who gets which letter by which channel. Pure: composing the
//! text is `crate::letters`', storing and sending the store's and the outbox's.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::case::OdsCode;
use super::parse::{bounded_text, ParseError};
use super::{EmailAddress, UserId};

/// Which letter: the clinic letter to the GP and the referrer, or the patient's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LetterKind {
    Gp,
    Patient,
}

impl LetterKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LetterKind::Gp => "gp",
            LetterKind::Patient => "patient",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "gp" => Some(LetterKind::Gp),
            "patient" => Some(LetterKind::Patient),
            _ => None,
        }
    }
}

/// How a letter reaches someone: an email carrying it, or printed and posted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Post,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Post => "post",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "email" => Some(Channel::Email),
            "post" => Some(Channel::Post),
            _ => None,
        }
    }
}

/// Where a delivery stands: `queued` until its email is sent or its print is recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Queued,
    Sent,
    Printed,
}

/// Who a delivery is for (never the patient's name: the PDF carries the address).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Recipient {
    /// The patient's GP practice.
    Practice,
    /// The clinician who referred the case.
    Referrer,
    /// The patient.
    Patient,
}

impl Recipient {
    pub fn as_str(self) -> &'static str {
        match self {
            Recipient::Practice => "practice",
            Recipient::Referrer => "referrer",
            Recipient::Patient => "patient",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "practice" => Some(Recipient::Practice),
            "referrer" => Some(Recipient::Referrer),
            "patient" => Some(Recipient::Patient),
            _ => None,
        }
    }
}

/// A GP practice as coordinators keep it: its ODS code, name and (optional) address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Practice {
    #[schema(value_type = String)]
    pub ods_code: OdsCode,
    pub name: String,
    #[schema(value_type = Option<String>, format = Email)]
    pub email: Option<EmailAddress>,
    pub updated_at: DateTime<Utc>,
}

/// `PUT /api/practices/{ods_code}` as it arrives.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct PracticeRequest {
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
}

/// A practice's details, parsed: a name (1–200 characters) and an optional email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PracticeDetails {
    pub name: String,
    pub email: Option<EmailAddress>,
}

impl TryFrom<PracticeRequest> for PracticeDetails {
    type Error = ParseError;

    fn try_from(r: PracticeRequest) -> Result<Self, ParseError> {
        let name = bounded_text(&r.name, "name", 200, false)?;
        let email = match r.email.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => Some(EmailAddress::parse(raw)?),
        };
        Ok(Self { name, email })
    }
}

/// The domains (`mail.secure_domains`) to which identified letters may be emailed; an
/// address matches its domain exactly or as a subdomain (`x@gp.nhs.net` for `nhs.net`).
#[derive(Clone, Debug, Default)]
pub struct SecureDomains(Vec<String>);

impl SecureDomains {
    pub fn new(domains: &[String]) -> Self {
        Self(
            domains
                .iter()
                .map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase())
                .filter(|d| !d.is_empty())
                .collect(),
        )
    }

    pub fn allows(&self, address: &EmailAddress) -> bool {
        let domain = address.as_str().rsplit('@').next().unwrap_or("");
        self.0.iter().any(|d| domain == d || domain.ends_with(&format!(".{d}")))
    }
}

/// One planned delivery of one letter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedDelivery {
    pub kind: LetterKind,
    pub recipient: Recipient,
    pub channel: Channel,
    /// For `email`: the secure address the letter goes to as an attachment.
    pub email: Option<EmailAddress>,
}

/// Who gets which letter and how: the GP letter goes to the practice and the referrer,
/// the patient's letter to the patient (by post: no patient email is recorded) with a
/// copy to the referrer. An identified letter is emailed only to an address on a secure
/// domain; everyone else's copy is printed and posted.
pub fn plan_deliveries(
    practice_email: Option<&EmailAddress>, referrer_email: Option<&EmailAddress>,
    secure: &SecureDomains,
) -> Vec<PlannedDelivery> {
    let by =
        |kind, recipient, email: Option<&EmailAddress>| match email.filter(|e| secure.allows(e)) {
            Some(e) => {
                PlannedDelivery { kind, recipient, channel: Channel::Email, email: Some(e.clone()) }
            }
            None => PlannedDelivery { kind, recipient, channel: Channel::Post, email: None },
        };
    vec![
        by(LetterKind::Gp, Recipient::Practice, practice_email),
        by(LetterKind::Gp, Recipient::Referrer, referrer_email),
        by(LetterKind::Patient, Recipient::Patient, None),
        by(LetterKind::Patient, Recipient::Referrer, referrer_email),
    ]
}

/// A delivery as recorded.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    pub id: Uuid,
    pub channel: Channel,
    pub recipient: Recipient,
    pub status: DeliveryStatus,
    /// When it was queued, sent or printed (whichever it last became).
    pub at: DateTime<Utc>,
    /// Who printed it (`printed` only).
    #[schema(value_type = Option<Uuid>)]
    pub printed_by: Option<UserId>,
}

/// A stored letter without its bytes.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Letter {
    pub id: Uuid,
    pub case_id: Uuid,
    pub kind: LetterKind,
    /// The outcome version it was made from.
    pub version: u32,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<Uuid>,
    /// The PDF's sha256 in the blob store.
    #[serde(skip)]
    pub sha256: String,
    pub deliveries: Vec<Delivery>,
}

/// A letter to store with the signing that made it; its bytes are already in the blob
/// store under `sha256`.
#[derive(Clone, Debug)]
pub struct NewLetter {
    pub id: Uuid,
    pub kind: LetterKind,
    pub sha256: String,
    pub deliveries: Vec<PlannedDelivery>,
    /// The message that carries it as an attachment, per email delivery (same order).
    pub emails: Vec<super::NewMessage>,
    /// Messages that only say a letter is waiting (no identifiers), queued with it.
    pub notices: Vec<super::NewMessage>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(s: &str) -> EmailAddress {
        EmailAddress::parse(s).unwrap()
    }

    #[test]
    fn only_secure_domains_get_identified_letters() {
        let secure = SecureDomains::new(&["nhs.net".into()]);
        assert!(secure.allows(&email("gp.a81001@nhs.net")));
        assert!(secure.allows(&email("x@trust.nhs.net")));
        assert!(!secure.allows(&email("x@evilnhs.net")));
        assert!(!secure.allows(&email("dr@example.org")));
    }

    #[test]
    fn plan_emails_secure_addresses_and_posts_the_rest() {
        let secure = SecureDomains::new(&["nhs.net".into()]);
        let practice = email("gp.a81001@nhs.net");
        let referrer = email("dr@example.org");
        let plan = plan_deliveries(Some(&practice), Some(&referrer), &secure);
        let channels: Vec<_> = plan.iter().map(|d| (d.kind, d.recipient, d.channel)).collect();
        assert_eq!(
            channels,
            vec![
                (LetterKind::Gp, Recipient::Practice, Channel::Email),
                (LetterKind::Gp, Recipient::Referrer, Channel::Post),
                (LetterKind::Patient, Recipient::Patient, Channel::Post),
                (LetterKind::Patient, Recipient::Referrer, Channel::Post),
            ]
        );
        let none = plan_deliveries(None, None, &secure);
        assert!(none.iter().all(|d| d.channel == Channel::Post && d.email.is_none()));
    }

    #[test]
    fn practice_details_are_parsed() {
        let ok = PracticeDetails::try_from(PracticeRequest {
            name: " The Surgery ".into(),
            email: Some("GP@nhs.net".into()),
        })
        .unwrap();
        assert_eq!(ok.name, "The Surgery");
        assert_eq!(ok.email.unwrap().as_str(), "gp@nhs.net");
        let bad = PracticeDetails::try_from(PracticeRequest {
            name: "x".into(),
            email: Some("not an email".into()),
        });
        assert_eq!(bad.unwrap_err().code, "invalid_email");
    }
}
