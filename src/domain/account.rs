//! The account lifecycle as pure rules: which changes a coordinator (or the operator's
//! command line) may make to an account — deactivate, reactivate, reset the password —
//! what each is audited as, and what a caller whose password was reset may still reach.
//! No I/O: the store applies the change, `live` closes the connections.

use super::conflict::Conflict;
use super::user::User;

/// A change to someone's account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountChange {
    /// Sign-in refused, refresh families revoked, live connections closed.
    Deactivate,
    /// Sign-in allowed again (with the password the account had).
    Reactivate,
    /// A one-time password the person must change at their next sign-in.
    ResetPassword,
}

impl AccountChange {
    /// The audit action the change is recorded as.
    pub fn audit_action(self) -> &'static str {
        match self {
            AccountChange::Deactivate => "user_deactivated",
            AccountChange::Reactivate => "user_reactivated",
            AccountChange::ResetPassword => "password_reset",
        }
    }

    /// Whether the account's sign-in families end with the change.
    pub fn ends_sign_ins(self) -> bool {
        matches!(self, AccountChange::Deactivate | AccountChange::ResetPassword)
    }
}

/// May `actor` (`None`: the operator's command line) make `change` to `target`?
/// The caller has already checked that the actor is a coordinator.
/// - `409 cannot_change_own_account`: nobody deactivates or resets their own account
///   (a service always keeps a coordinator who can undo a deactivation; one's own
///   password is changed with the current one, `POST /api/me/password`);
/// - `409 already_inactive` / `already_active`: the account already is;
/// - `409 account_inactive`: a deactivated account's password is not reset (reactivate
///   it first, so a reset never quietly hands out access).
pub fn check_change(
    actor: Option<&User>, target: &User, change: AccountChange,
) -> Result<(), Conflict> {
    let own = actor.is_some_and(|a| a.id == target.id);
    match change {
        AccountChange::Deactivate | AccountChange::ResetPassword if own => {
            Err(Conflict::OwnAccount)
        }
        AccountChange::Deactivate if !target.active => Err(Conflict::AlreadyInactive),
        AccountChange::Reactivate if target.active => Err(Conflict::AlreadyActive),
        AccountChange::ResetPassword if !target.active => Err(Conflict::AccountInactive),
        _ => Ok(()),
    }
}

/// The API paths a caller who must change their password may still use: who they are,
/// and the change itself. Everything else is `403 password_change_required`.
pub const BEFORE_PASSWORD_CHANGE: [&str; 2] = ["/api/me", "/api/me/password"];

/// Whether a caller with `must_change_password` may use `path`.
pub fn reachable_before_password_change(path: &str) -> bool {
    BEFORE_PASSWORD_CHANGE.contains(&path.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EmailAddress, PersonName, Role, UserId};

    fn user(active: bool) -> User {
        User {
            id: UserId::new(),
            email: EmailAddress::parse("a@example.org").unwrap(),
            name: PersonName::parse("A Person").unwrap(),
            role: Role::Coordinator,
            specialties: vec![],
            organisation: None,
            active,
            must_change_password: false,
            created_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn nobody_deactivates_or_resets_themselves() {
        let me = user(true);
        for change in [AccountChange::Deactivate, AccountChange::ResetPassword] {
            assert_eq!(check_change(Some(&me), &me, change), Err(Conflict::OwnAccount));
        }
        // The command line has no actor: it may (it is how a locked-out service recovers).
        assert_eq!(check_change(None, &me, AccountChange::Deactivate), Ok(()));
    }

    #[test]
    fn changes_follow_the_active_flag() {
        let (coordinator, active, inactive) = (user(true), user(true), user(false));
        let c = Some(&coordinator);
        assert_eq!(check_change(c, &active, AccountChange::Deactivate), Ok(()));
        assert_eq!(
            check_change(c, &inactive, AccountChange::Deactivate),
            Err(Conflict::AlreadyInactive)
        );
        assert_eq!(check_change(c, &inactive, AccountChange::Reactivate), Ok(()));
        assert_eq!(
            check_change(c, &active, AccountChange::Reactivate),
            Err(Conflict::AlreadyActive)
        );
        assert_eq!(check_change(c, &active, AccountChange::ResetPassword), Ok(()));
        assert_eq!(
            check_change(c, &inactive, AccountChange::ResetPassword),
            Err(Conflict::AccountInactive)
        );
    }

    #[test]
    fn a_reset_password_reaches_only_the_change() {
        assert!(reachable_before_password_change("/api/me"));
        assert!(reachable_before_password_change("/api/me/password"));
        assert!(!reachable_before_password_change("/api/me/attendance"));
        assert!(!reachable_before_password_change("/api/cases"));
    }
}
