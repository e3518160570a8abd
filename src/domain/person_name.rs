//! Names of people (staff and patients).

use std::fmt;

use serde::{Serialize, Serializer};

use super::parse::{bounded_text, ParseError};

/// A trimmed name of 1–100 characters without control characters.
#[derive(Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        bounded_text(raw, "name", 100, false).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Names may be patient identifiers: keep them out of logs.
impl fmt::Debug for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PersonName(…)")
    }
}

impl Serialize for PersonName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            PersonName::parse("  Siân O'Neill-Jones ").unwrap().as_str(),
            "Siân O'Neill-Jones"
        );
        assert_eq!(PersonName::parse("   ").unwrap_err().code, "required");
        assert_eq!(PersonName::parse(&"a".repeat(101)).unwrap_err().code, "too_long");
        assert_eq!(PersonName::parse("a\u{0}b").unwrap_err().code, "invalid_characters");
        assert!(!format!("{:?}", PersonName::parse("Jo").unwrap()).contains("Jo"));
    }
}
