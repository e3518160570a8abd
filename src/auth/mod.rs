//! Authentication and authorisation: password hashing, access and refresh tokens, login
//! rate limits, access rules and role checks. It owns no HTTP routes and does not know
//! the application state: the `AuthUser` extractor, which reads both, is the HTTP
//! layer's (`routes::support`).

pub mod access;
pub mod password;
pub mod rate_limit;
pub mod tokens;

use std::net::IpAddr;

use actix_web::HttpRequest;

pub use password::Passwords;
pub use rate_limit::LoginLimiter;
pub use tokens::TokenService;

use crate::domain::{Role, User};
use crate::error::ApiError;

/// Refuses with `403 forbidden` unless the user has one of `allowed`.
pub fn require_role(user: &User, allowed: &[Role]) -> Result<(), ApiError> {
    if allowed.contains(&user.role) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!("a {} may not do this", user.role.as_str())))
    }
}

/// The client's address: the socket peer, or, when the deployment says its own proxy
/// sits in front, the right-most `X-Forwarded-For` entry (the one that proxy appended;
/// entries further left are whatever the client chose to send).
pub fn client_addr(req: &HttpRequest, trust_proxy_headers: bool) -> Option<IpAddr> {
    let peer = req.peer_addr().map(|a| a.ip());
    if !trust_proxy_headers {
        return peer;
    }
    req.headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .last()
        .and_then(|a| a.trim().parse::<IpAddr>().ok())
        .or(peer)
}
