//! Tokens: short-lived JWT access tokens (HS256, one algorithm, a key id; `iss`, `aud`,
//! `exp`, `sub` required) and opaque refresh tokens of which only a hash is stored.
//! Each token carries a purpose (`typ`), so a token minted for one use cannot serve another.

use std::collections::HashSet;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{Duration, Utc};
use jsonwebtoken::{
    decode, decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use rand::RngCore;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::AuthSettings;
use crate::domain::{User, UserId};

/// The only purpose accepted at the REST API.
pub const ACCESS_PURPOSE: &str = "access";

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub typ: String,
}

/// Why an access token was refused (both become `401`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Expired,
    Invalid,
}

pub struct TokenService {
    encoding: EncodingKey,
    decoding: DecodingKey,
    key_id: String,
    issuer: String,
    audience: String,
    access_ttl: Duration,
    refresh_ttl: Duration,
}

impl TokenService {
    /// Start-up: an empty secret means a random per-process key (development only).
    pub fn new(settings: &AuthSettings) -> Self {
        let configured = settings.jwt_secret.expose_secret().as_bytes().to_vec();
        let secret = if configured.is_empty() {
            tracing::warn!(
                "auth.jwt_secret is empty: using a random key; tokens end with this process"
            );
            let mut key = vec![0u8; 32];
            rand::rng().fill_bytes(&mut key);
            key
        } else {
            configured
        };
        Self {
            encoding: EncodingKey::from_secret(&secret),
            decoding: DecodingKey::from_secret(&secret),
            key_id: settings.jwt_key_id.clone(),
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            access_ttl: Duration::minutes(i64::from(settings.access_token_minutes)),
            refresh_ttl: Duration::days(i64::from(settings.refresh_token_days)),
        }
    }

    pub fn access_ttl_seconds(&self) -> i64 {
        self.access_ttl.num_seconds()
    }

    pub fn refresh_ttl(&self) -> Duration {
        self.refresh_ttl
    }

    /// Mints an access token for `user`.
    pub fn issue_access(&self, user: &User) -> Result<String, jsonwebtoken::errors::Error> {
        let now = Utc::now();
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user.id.to_string(),
            iat: now.timestamp(),
            exp: (now + self.access_ttl).timestamp(),
            jti: Uuid::new_v4().to_string(),
            typ: ACCESS_PURPOSE.to_string(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.key_id.clone());
        encode(&header, &claims, &self.encoding)
    }

    /// Checks signature, algorithm, key id, issuer, audience, expiry and purpose.
    pub fn verify_access(&self, token: &str) -> Result<UserId, TokenError> {
        let header = decode_header(token).map_err(|_| TokenError::Invalid)?;
        if header.alg != Algorithm::HS256 || header.kid.as_deref() != Some(self.key_id.as_str()) {
            return Err(TokenError::Invalid);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.required_spec_claims =
            ["exp", "iss", "aud", "sub"].iter().map(|s| s.to_string()).collect::<HashSet<_>>();
        validation.leeway = 5;
        validation.validate_exp = true;
        let data =
            decode::<Claims>(token, &self.decoding, &validation).map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })?;
        if data.claims.typ != ACCESS_PURPOSE {
            return Err(TokenError::Invalid);
        }
        Uuid::parse_str(&data.claims.sub).map(UserId).map_err(|_| TokenError::Invalid)
    }
}

/// A new opaque refresh token and the hash under which it is stored.
pub fn new_refresh_token() -> (String, String) {
    new_opaque_token()
}

/// 256 random bits, URL-safe, and the SHA-256 hash under which the server keeps it
/// (refresh tokens, live-channel tickets).
pub fn new_opaque_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_refresh_token(&token);
    (token, hash)
}

pub fn hash_refresh_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}
