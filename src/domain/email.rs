//! Email addresses of staff accounts.

use std::fmt;

use serde::{Serialize, Serializer};

use super::parse::ParseError;

/// A lower-cased, trimmed email address with one `@`, a non-empty local part and a
/// dotted domain. Deliberately conservative: NHS and provider addresses are plain.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let err = || ParseError::new("invalid_email", "email", "is not a valid email address");
        let email = raw.trim().to_lowercase();
        if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(err());
        }
        let (local, domain) = email.split_once('@').ok_or_else(err)?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        if local.is_empty() || local.len() > 64 || local.contains('@') || !domain_ok {
            return Err(err());
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for EmailAddress {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        let e = EmailAddress::parse("  Jo.Bloggs@NHS.net ").unwrap();
        assert_eq!(e.as_str(), "jo.bloggs@nhs.net");
    }

    #[test]
    fn rejects_bad_shapes() {
        for bad in [
            "",
            "jo",
            "jo@",
            "@nhs.net",
            "jo@nhs",
            "jo@@nhs.net",
            "jo bloggs@nhs.net",
            "jo@nhs..net",
            "jo@.nhs.net",
        ] {
            assert_eq!(EmailAddress::parse(bad).unwrap_err().code, "invalid_email", "{bad}");
        }
    }
}
