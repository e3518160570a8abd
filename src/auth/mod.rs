//! Authentication and authorisation: password hashing, access and refresh tokens, login
//! rate limits, the [`AuthUser`] extractor and role checks. It owns no HTTP routes.

pub mod extractor;
pub mod password;
pub mod rate_limit;
pub mod tokens;

use std::net::IpAddr;

use actix_web::HttpRequest;

pub use extractor::AuthUser;
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
        Err(ApiError::forbidden(format!(
            "a {} may not do this",
            user.role.as_str()
        )))
    }
}

/// The client's address: the socket peer, or the proxy-reported address when the
/// deployment says a trusted proxy sits in front.
pub fn client_addr(req: &HttpRequest, trust_proxy_headers: bool) -> Option<IpAddr> {
    if trust_proxy_headers {
        if let Some(ip) = req.connection_info().realip_remote_addr().and_then(|a| {
            a.parse::<IpAddr>()
                .ok()
                .or_else(|| a.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
        }) {
            return Some(ip);
        }
    }
    req.peer_addr().map(|a| a.ip())
}
