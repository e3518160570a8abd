//! The four roles of DESIGN §2.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::parse::ParseError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Practitioner,
    Consultant,
    Trainee,
    Coordinator,
}

impl Role {
    pub const ALL: [Role; 4] =
        [Role::Practitioner, Role::Consultant, Role::Trainee, Role::Coordinator];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Practitioner => "practitioner",
            Role::Consultant => "consultant",
            Role::Trainee => "trainee",
            Role::Coordinator => "coordinator",
        }
    }

    /// Whether this role may ever receive patient identifiers (DESIGN §2).
    pub fn sees_identifiers(self) -> bool {
        self != Role::Trainee
    }
}

impl FromStr for Role {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| {
            ParseError::new(
                "invalid_role",
                "role",
                "must be one of practitioner, consultant, trainee, coordinator",
            )
        })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert!("admin".parse::<Role>().is_err());
        assert!(!Role::Trainee.sees_identifiers());
    }
}
