//! Specialty slugs. Specialties are data (seeded rheumatology, spinal, pain); this type
//! only guarantees the slug's shape, the store checks that it exists.

use std::fmt;

use serde::{Serialize, Serializer};

use super::parse::ParseError;

/// A lower-case slug such as `rheumatology` or `foot-and-ankle`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Specialty(String);

impl Specialty {
    pub const SEEDED: [&'static str; 3] = ["rheumatology", "spinal", "pain"];

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let s = raw.trim();
        let ok = (2..=40).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && !s.ends_with('-')
            && !s.contains("--")
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(ParseError::new(
                "invalid_specialty",
                "specialty",
                "must be a lower-case slug such as rheumatology or foot-and-ankle",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Specialty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Specialty {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for ok in ["pain", "foot-and-ankle", "hand2"] {
            assert!(Specialty::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "p", "Pain", "foot and ankle", "-pain", "pain-", "a--b", "2pain"] {
            assert!(Specialty::parse(bad).is_err(), "{bad}");
        }
    }
}
