//! Argon2id password hashing, run on the blocking pool so it never stalls async workers.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::domain::Password;
use crate::error::ApiError;

/// Hashes and verifies passwords. Holds a dummy hash so that a login for an unknown
/// account costs the same time as one with a wrong password.
#[derive(Clone)]
pub struct Passwords {
    dummy_hash: String,
}

fn hash_now(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default().hash_password(password.as_bytes(), &salt)?.to_string())
}

fn verify_now(candidate: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|parsed| Argon2::default().verify_password(candidate.as_bytes(), &parsed).is_ok())
        .unwrap_or(false)
}

impl Passwords {
    /// Start-up only: computes the dummy hash.
    pub fn new() -> anyhow::Result<Self> {
        let dummy_hash = hash_now("dummy password that matches nothing")
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
        Ok(Self { dummy_hash })
    }

    pub async fn hash(&self, password: &Password) -> Result<String, ApiError> {
        let plain = password.expose().to_string();
        tokio::task::spawn_blocking(move || hash_now(&plain))
            .await
            .map_err(ApiError::internal)?
            .map_err(|e| ApiError::internal(anyhow::anyhow!("argon2: {e}")))
    }

    /// True only if `stored` exists and matches. With no stored hash the dummy is
    /// checked anyway, so both failures take the same time.
    pub async fn verify(&self, candidate: &str, stored: Option<String>) -> Result<bool, ApiError> {
        let candidate = candidate.to_string();
        let exists = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.dummy_hash.clone());
        let ok = tokio::task::spawn_blocking(move || verify_now(&candidate, &hash))
            .await
            .map_err(ApiError::internal)?;
        Ok(exists && ok)
    }
}

/// A one-time password for a reset: four groups of four characters from an alphabet
/// without look-alikes (no `0`/`o`, `1`/`l`/`i`), about 79 bits from the thread's CSPRNG;
/// easy to read out over the phone and to type once.
pub fn one_time_password() -> Result<Password, ApiError> {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = rand::rng();
    let groups: Vec<String> = (0..4)
        .map(|_| {
            (0..4).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect()
        })
        .collect();
    Password::parse(&groups.join("-")).map_err(|e| ApiError::internal(anyhow::anyhow!("{e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_time_passwords_are_long_enough_and_differ() {
        let a = one_time_password().unwrap();
        let b = one_time_password().unwrap();
        assert_eq!(a.expose().len(), 19);
        assert_ne!(a.expose(), b.expose());
        assert!(a.expose().chars().all(|c| c == '-' || c.is_ascii_alphanumeric()));
    }

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() {
        let p = Passwords::new().unwrap();
        let h = p.hash(&Password::parse("correct horse battery").unwrap()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(p.verify("correct horse battery", Some(h.clone())).await.unwrap());
        assert!(!p.verify("wrong horse battery", Some(h)).await.unwrap());
        assert!(!p.verify("dummy password that matches nothing", None).await.unwrap());
    }
}
