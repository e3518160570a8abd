//! Accounts: specialties and their quorum, users with their specialties, login credentials,
//! refresh-token families and the account lifecycle (deactivation, reactivation, password
//! resets and changes). Audited writes append their event in the same transaction.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::core::Store;
use super::error::{StoreError, Unique};
use super::rows;
use super::sql::{args, Row};
use crate::domain::conflict::Conflict;
use crate::domain::{
    EmailAddress, NewAuditEvent, NewUser, ParseError, PersonName, Role, Specialty, User, UserId,
};

/// What login needs, in one query, before anything else about the account is loaded.
#[derive(Clone)]
pub struct Credentials {
    pub user_id: UserId,
    pub password_hash: String,
    pub active: bool,
}

/// A refresh token as stored: only its hash, its family and its lifetime.
#[derive(Clone, Debug)]
pub struct NewRefreshToken {
    pub token_hash: String,
    pub family_id: Uuid,
    pub user_id: UserId,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What presenting a refresh token did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The token was current: it is now used and `next` replaces it in the same family.
    Rotated { user_id: UserId, family_id: Uuid },
    /// The token had already been used: the whole family is now revoked.
    Reused { user_id: UserId, family_id: Uuid },
    /// Unknown, expired or revoked.
    Invalid,
}

const USERS: &str = "SELECT u.id, u.email, u.name, u.role, u.organisation, u.active, \
    u.must_change_password, u.created_at, s.specialty \
    FROM users u LEFT JOIN user_specialties s ON s.user_id = u.id";
const INSERT_TOKEN: &str = "INSERT INTO refresh_tokens \
    (token_hash, family_id, user_id, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5)";
/// The presented token's family, revoked as of `$1` (`$2`: the token's hash).
const REVOKE_FAMILY: &str = "UPDATE refresh_tokens SET revoked_at = $1 WHERE revoked_at IS NULL \
    AND family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $2)";

/// Every open refresh-token family of the user `$2`, revoked as of `$1`.
const REVOKE_USER_FAMILIES: &str =
    "UPDATE refresh_tokens SET revoked_at = $1 WHERE revoked_at IS NULL AND user_id = $2";

/// A password to store: its Argon2id hash, whether it is a one-time password the person
/// must change at their next sign-in, and the sign-in family to start with it, if any.
pub struct NewPassword<'a> {
    pub hash: String,
    pub must_change: bool,
    pub next_family: Option<&'a NewRefreshToken>,
}

/// `422 unknown_specialty`: a new user names a specialty that is not on record.
fn unknown_specialty() -> StoreError {
    let message = "names a specialty that does not exist";
    StoreError::Invalid(ParseError::new("unknown_specialty", "specialties", message))
}

impl Store {
    #[tracing::instrument(skip_all)]
    pub async fn list_specialties(&self) -> Result<Vec<Specialty>, StoreError> {
        let sql = "SELECT slug FROM specialties ORDER BY slug";
        let found = self.db.all(sql, args![]).await?;
        found.iter().map(|r| rows::specialty(r, "slug")).collect()
    }

    /// Adds a specialty; `409 specialty_exists` if it is already there.
    #[tracing::instrument(skip_all, fields(specialty = %slug.as_str()))]
    pub async fn add_specialty(&self, slug: &Specialty, name: &str) -> Result<(), StoreError> {
        let sql = "INSERT INTO specialties (slug, name, created_at) VALUES ($1, $2, $3)";
        let values = args![slug.as_str(), name, Utc::now()];
        match self.db.run(sql, values).await {
            Err(e) if e.is_unique(Unique::SpecialtySlug) => Err(Conflict::SpecialtyExists.into()),
            other => other.map(|_| ()),
        }
    }

    /// Creates an account and appends `audit` in the same transaction;
    /// `409 email_taken`, `422 unknown_specialty`.
    #[tracing::instrument(skip_all, fields(user_id = %u.id))]
    pub async fn create_user(&self, u: NewUser, audit: NewAuditEvent) -> Result<User, StoreError> {
        let mut tx = self.db.write().await?;
        let sql = "INSERT INTO users (id, email, name, role, password_hash, active, created_at, \
                   organisation) VALUES ($1, $2, $3, $4, $5, TRUE, $6, $7)";
        let mut values = args![u.id, u.email.as_str(), u.name.as_str()];
        values.extend(args![u.role.as_str(), &u.password_hash, Utc::now(), &u.organisation]);
        match tx.run(sql, values).await {
            Err(e) if e.is_unique(Unique::UserEmail) => return Err(Conflict::EmailTaken.into()),
            other => other?,
        };
        let sql = "INSERT INTO user_specialties (user_id, specialty) VALUES ($1, $2)";
        for s in std::collections::BTreeSet::from_iter(&u.specialties) {
            match tx.run(sql, args![u.id, s.as_str()]).await {
                Err(e) if e.is_foreign_key() => return Err(unknown_specialty()),
                other => other?,
            };
        }
        super::audit::append_audit_in(&mut tx, audit).await?;
        let sql = format!("{USERS} WHERE u.id = $1 ORDER BY s.specialty");
        let created = Self::users_from(&tx.all(sql, args![u.id]).await?)?.pop();
        tx.commit().await?;
        created.ok_or(StoreError::NotFound("user"))
    }

    #[tracing::instrument(skip_all, fields(user_id = %id.0))]
    pub async fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let sql = format!("{USERS} WHERE u.id = $1 ORDER BY s.specialty");
        Ok(Self::users_from(&self.db.all(sql, args![id]).await?)?.pop())
    }

    /// The account id, password hash and active flag, for login.
    #[tracing::instrument(skip_all)]
    pub async fn credentials(
        &self, email: &EmailAddress,
    ) -> Result<Option<Credentials>, StoreError> {
        let sql = "SELECT id, password_hash, active FROM users WHERE email = $1";
        let row = self.db.opt(sql, args![email.as_str()]).await?;
        row.map(|row| {
            Ok(Credentials {
                user_id: row.get("id")?,
                password_hash: row.get("password_hash")?,
                active: row.get("active")?,
            })
        })
        .transpose()
    }

    #[tracing::instrument(skip_all)]
    pub async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let sql = format!("{USERS} ORDER BY u.email, s.specialty");
        Self::users_from(&self.db.all(sql, args![]).await?)
    }

    #[tracing::instrument(skip_all)]
    pub async fn count_users(&self) -> Result<u64, StoreError> {
        let sql = "SELECT COUNT(*) AS n FROM users";
        rows::count(&self.db.one(sql, args![]).await?, "n")
    }

    /// Stores the first token of a new sign-in family, with its audit event, atomically.
    #[tracing::instrument(skip_all, fields(user_id = %t.user_id, family_id = %t.family_id))]
    pub async fn insert_refresh_token(
        &self, t: &NewRefreshToken, audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.write().await?;
        let mut values = args![&t.token_hash, t.family_id, t.user_id];
        values.extend(args![t.issued_at, t.expires_at]);
        tx.run(INSERT_TOKEN, values).await?;
        super::audit::append_audit_in(&mut tx, audit).await?;
        tx.commit().await
    }

    /// Atomically checks the presented token and either rotates it (storing `next_hash`
    /// in the same family) or, if it was already used, revokes the family.
    #[tracing::instrument(skip_all)]
    pub async fn rotate_refresh_token(
        &self, presented_hash: &str, next_hash: &str, now: DateTime<Utc>,
        next_expires_at: DateTime<Utc>,
    ) -> Result<RefreshOutcome, StoreError> {
        let mut tx = self.db.write().await?;
        let sql = "SELECT * FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE";
        let Some(row) = tx.opt(sql, args![presented_hash]).await? else {
            return Ok(RefreshOutcome::Invalid);
        };
        let (family_id, user_id): (Uuid, UserId) = (row.get("family_id")?, row.get("user_id")?);
        let expires_at: DateTime<Utc> = row.get("expires_at")?;
        if row.get::<Option<DateTime<Utc>>>("revoked_at")?.is_some() || expires_at <= now {
            return Ok(RefreshOutcome::Invalid);
        }
        if row.get::<Option<DateTime<Utc>>>("used_at")?.is_some() {
            tx.run(REVOKE_FAMILY, args![now, presented_hash]).await?;
            tx.commit().await?;
            return Ok(RefreshOutcome::Reused { user_id, family_id });
        }
        let sql = "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2";
        tx.run(sql, args![now, presented_hash]).await?;
        let expires = next_expires_at.min(expires_at);
        let values = args![next_hash, family_id, user_id, now, expires];
        tx.run(INSERT_TOKEN, values).await?;
        tx.commit().await?;
        Ok(RefreshOutcome::Rotated { user_id, family_id })
    }

    /// Revokes the family of the presented token (logout). Unknown tokens are ignored.
    #[tracing::instrument(skip_all)]
    pub async fn revoke_refresh_family(
        &self, token_hash: &str, now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.db.run(REVOKE_FAMILY, args![now, token_hash]).await?;
        Ok(())
    }

    /// Sets the account's active flag from `!active` to `active` with its audit event, in
    /// one transaction; deactivation also revokes every refresh-token family of the
    /// account. `404` for an unknown account; `409 changed_meanwhile` when the flag no
    /// longer has the value the rules were checked against. Returns the account.
    #[tracing::instrument(skip_all, fields(user_id = %id, active))]
    pub async fn set_user_active(
        &self, id: UserId, active: bool, now: DateTime<Utc>, audit: NewAuditEvent,
    ) -> Result<User, StoreError> {
        let mut tx = self.db.write().await?;
        let sql = "UPDATE users SET active = $1 WHERE id = $2 AND active = $3";
        if tx.run(sql, args![active, id, !active]).await? != 1 {
            let exists = tx.opt("SELECT id FROM users WHERE id = $1", args![id]).await?;
            return Err(match exists {
                Some(_) => Conflict::Changed.into(),
                None => StoreError::NotFound("user"),
            });
        }
        let revoked = if active { 0 } else { tx.run(REVOKE_USER_FAMILIES, args![now, id]).await? };
        let audit = audit.record(id).details(serde_json::json!({ "sign_ins_ended": revoked }));
        super::audit::append_audit_in(&mut tx, audit).await?;
        let sql = format!("{USERS} WHERE u.id = $1 ORDER BY s.specialty");
        let user = Self::users_from(&tx.all(sql, args![id]).await?)?.pop();
        tx.commit().await?;
        user.ok_or(StoreError::NotFound("user"))
    }

    /// Replaces the account's password with `password` and ends every sign-in family of
    /// the account (starting `password.next_family`, if given, in the same transaction),
    /// with its audit event. `404` for an unknown or deactivated account.
    #[tracing::instrument(skip_all, fields(user_id = %id))]
    pub async fn set_password(
        &self, id: UserId, password: NewPassword<'_>, now: DateTime<Utc>, audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.write().await?;
        let sql = "UPDATE users SET password_hash = $1, must_change_password = $2 \
                   WHERE id = $3 AND active = TRUE";
        if tx.run(sql, args![&password.hash, password.must_change, id]).await? != 1 {
            return Err(StoreError::NotFound("user"));
        }
        let revoked = tx.run(REVOKE_USER_FAMILIES, args![now, id]).await?;
        if let Some(t) = password.next_family {
            let mut values = args![&t.token_hash, t.family_id, t.user_id];
            values.extend(args![t.issued_at, t.expires_at]);
            tx.run(INSERT_TOKEN, values).await?;
        }
        let audit = audit.record(id).details(serde_json::json!({ "sign_ins_ended": revoked }));
        super::audit::append_audit_in(&mut tx, audit).await?;
        tx.commit().await
    }

    /// Which of `ids` are accounts no longer active (live rooms show them out).
    #[tracing::instrument(skip_all)]
    pub async fn inactive_users(&self, ids: &[UserId]) -> Result<Vec<UserId>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = "SELECT id FROM users WHERE active = FALSE AND id = ANY($1)";
        let list: Vec<Uuid> = ids.iter().map(|u| u.0).collect();
        let found = self.db.all(sql, args![list.as_slice()]).await?;
        found.iter().map(|r| r.get("id")).collect()
    }

    /// How many consultants or specialists besides the chair make a meeting quorate.
    #[tracing::instrument(skip_all, fields(specialty = %specialty))]
    pub async fn specialty_quorum(&self, specialty: &Specialty) -> Result<u32, StoreError> {
        let sql = "SELECT quorum_others FROM specialties WHERE slug = $1";
        let row = self.db.opt(sql, args![specialty.as_str()]).await?;
        row.map_or(Ok(1), |r| rows::count(&r, "quorum_others"))
    }

    /// Sets that number, with its audit event; `404` for an unknown specialty.
    #[tracing::instrument(skip_all, fields(specialty = %specialty.as_str()))]
    pub async fn set_specialty_quorum(
        &self, specialty: &Specialty, others: u32, audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.write().await?;
        let sql = "UPDATE specialties SET quorum_others = $1 WHERE slug = $2";
        if tx.run(sql, args![others, specialty.as_str()]).await? != 1 {
            return Err(StoreError::NotFound("specialty"));
        }
        super::audit::append_audit_in(&mut tx, audit.record(specialty.as_str())).await?;
        tx.commit().await
    }

    /// Users from `users` LEFT JOIN `user_specialties` rows, a user's rows together.
    fn users_from(found: &[Row]) -> Result<Vec<User>, StoreError> {
        let mut users: Vec<User> = Vec::new();
        for row in found {
            let id: UserId = row.get("id")?;
            if users.last().map(|u| u.id) != Some(id) {
                users.push(User {
                    id,
                    email: rows::parsed(row, "email", EmailAddress::parse)?,
                    name: rows::parsed(row, "name", PersonName::parse)?,
                    role: rows::parsed(row, "role", str::parse::<Role>)?,
                    specialties: Vec::new(),
                    organisation: row.get("organisation")?,
                    active: row.get("active")?,
                    must_change_password: row.get("must_change_password")?,
                    created_at: row.get("created_at")?,
                });
            }
            let specialty: Option<String> = row.get("specialty")?;
            if let (Some(user), Some(_)) = (users.last_mut(), specialty) {
                user.specialties.push(rows::specialty(row, "specialty")?);
            }
        }
        Ok(users)
    }
}
