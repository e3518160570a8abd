//! Staff accounts.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::email::EmailAddress;
use super::person_name::PersonName;
use super::role::Role;
use super::specialty::Specialty;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub Uuid);

impl UserId {
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }
}

impl Default for UserId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An account as the rest of the service sees it (never with its password hash).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct User {
    #[schema(value_type = uuid::Uuid)]
    pub id: UserId,
    #[schema(value_type = String, format = Email)]
    pub email: EmailAddress,
    #[schema(value_type = String)]
    pub name: PersonName,
    pub role: Role,
    /// Specialty slugs, e.g. `rheumatology`.
    #[schema(value_type = Vec<String>)]
    pub specialties: Vec<Specialty>,
    /// Where the person works (e.g. a guest's trust), shown to the chair in the lobby.
    pub organisation: Option<String>,
    pub active: bool,
    /// Signed in with a one-time password a coordinator set: until it is changed, the
    /// account reaches only `GET /api/me` and `POST /api/me/password`.
    pub must_change_password: bool,
    pub created_at: DateTime<Utc>,
}

impl User {
    pub fn has_specialty(&self, s: &Specialty) -> bool {
        self.specialties.contains(s)
    }
}

/// A parsed request to create an account; the id is chosen by the caller (so the audit
/// event can name it) and the password is already hashed.
#[derive(Clone, Debug)]
pub struct NewUser {
    pub id: UserId,
    pub email: EmailAddress,
    pub name: PersonName,
    pub role: Role,
    pub specialties: Vec<Specialty>,
    pub organisation: Option<String>,
    pub password_hash: String,
}
