//! Sign-in, token refresh, sign-out, `GET /api/me` and the caller's own password change
//! (`POST /api/me/password`, the way out of a one-time password).

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::client_addr;
use crate::auth::tokens::{hash_refresh_token, new_refresh_token};
use crate::domain::{EmailAddress, NewAuditEvent, ParseError, Password, User};
use crate::error::ApiError;
use crate::routes::support::{ApiJson, AuthUser};
use crate::state::AppState;
use crate::store::{NewPassword, NewRefreshToken, RefreshOutcome};

/// The refresh cookie: HttpOnly, SameSite=Strict, scoped to the auth endpoints.
pub const REFRESH_COOKIE: &str = "mdt_refresh";

#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginRequest {
    email: String,
    password: String,
}

fn refresh_cookie(state: &AppState, value: String) -> Cookie<'static> {
    Cookie::build(REFRESH_COOKIE, value)
        .path("/api/auth")
        .http_only(true)
        .secure(state.settings.auth.cookie_secure)
        .same_site(SameSite::Strict)
        .max_age(CookieDuration::seconds(state.tokens.refresh_ttl().num_seconds()))
        .finish()
}

fn removal_cookie(state: &AppState) -> Cookie<'static> {
    let mut c = refresh_cookie(state, String::new());
    c.make_removal();
    c
}

/// What a sign-in (or a refresh, or a password change) answers besides the cookie.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    /// The access token, sent as `Authorization: Bearer …`.
    access_token: String,
    /// Always `Bearer`.
    token_type: &'static str,
    /// Seconds until the access token expires.
    expires_in: i64,
    user: User,
}

/// The login response body and cookie for `user`, in a new or continuing token family.
fn signed_in(state: &AppState, user: &User, refresh: String) -> Result<HttpResponse, ApiError> {
    let access = state.tokens.issue_access(user).map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().cookie(refresh_cookie(state, refresh)).json(TokenResponse {
        access_token: access,
        token_type: "Bearer",
        expires_in: state.tokens.access_ttl_seconds(),
        user: user.clone(),
    }))
}

/// A new sign-in family for `user`: the refresh token to send and what is stored of it.
fn new_family(state: &AppState, user: &User) -> (String, NewRefreshToken) {
    let (refresh, refresh_hash) = new_refresh_token();
    let now = Utc::now();
    let token = NewRefreshToken {
        token_hash: refresh_hash,
        family_id: uuid::Uuid::new_v4(),
        user_id: user.id,
        issued_at: now,
        expires_at: now + state.tokens.refresh_ttl(),
    };
    (refresh, token)
}

fn invalid_credentials() -> ApiError {
    ApiError::unauthorized("invalid_credentials", "email or password is incorrect")
}

/// `POST /api/auth/login`. Unknown account, inactive account and wrong password give the
/// same `401` after the same work: one credentials query and one Argon2 verification
/// (against a dummy hash when there is no account).
#[utoipa::path(
    post, path = "/api/auth/login", operation_id = "auth_login", tag = "auth",
    security(()),
    request_body = LoginRequest,
    responses(
        (status = 200, description = "signed in: an access token, and the refresh cookie", body = TokenResponse),
        (status = 401, description = "Email or password is incorrect"),
        (status = 429, description = "Too many attempts"),
    ),
)]
pub async fn login(
    req: HttpRequest, state: web::Data<AppState>, ApiJson(body): ApiJson<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let addr = client_addr(&req, state.settings.http.trust_proxy_headers);
    // Only a well-formed address is ever recorded: people type passwords into the email
    // box, and the audit log keeps what it is given for good.
    let email = EmailAddress::parse(&body.email).ok();
    let account_key = email.as_ref().map_or("<malformed>", |e| e.as_str());
    if let Err(e) = state.login_limiter.check(account_key, addr) {
        tracing::warn!("login attempt refused by rate limit");
        return Err(e);
    }
    let credentials = match &email {
        Some(email) => state.store.credentials(email).await?,
        None => None,
    }
    .filter(|c| c.active);
    let (user_id, hash) = match credentials {
        Some(c) => (Some(c.user_id), Some(c.password_hash)),
        None => (None, None),
    };
    let verified = state.passwords.verify(&body.password, hash).await?;
    let addr = addr.map(|a| a.to_string());
    let user = match user_id.filter(|_| verified) {
        Some(id) => state.store.user(id).await?,
        None => None,
    };
    let Some(user) = user else {
        let mut event = NewAuditEvent::new("login_failed", "user")
            .from_addr(addr)
            .details(json!({ "email": email.as_ref().map(|e| e.as_str()) }));
        if let Some(id) = user_id {
            event = event.record(id);
        }
        state.store.append_audit(event).await?;
        return Err(invalid_credentials());
    };
    let (refresh, token) = new_family(&state, &user);
    let audit = NewAuditEvent::new("login_succeeded", "user")
        .actor(user.id)
        .record(user.id)
        .from_addr(addr);
    state.store.insert_refresh_token(&token, audit).await?;
    signed_in(&state, &user, refresh)
}

/// `POST /api/auth/refresh`: rotates the refresh cookie and returns a new access token.
/// Presenting an already-rotated token revokes its whole family. With no refresh cookie
/// at all the answer is `204 No Content`: nobody is signed in, which is no error (every
/// fresh visit asks); a cookie that is present but not valid is still a `401`.
#[utoipa::path(
    post, path = "/api/auth/refresh", operation_id = "auth_refresh", tag = "auth",
    security(()),
    responses(
        (status = 200, description = "a new access token; the refresh cookie rotated", body = TokenResponse),
        (status = 204, description = "no refresh cookie: nobody is signed in"),
        (status = 401, description = "The refresh cookie is not valid, or was reused"),
    ),
)]
pub async fn refresh(
    req: HttpRequest, state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let fail = |err: ApiError| {
        let mut res = err.error_response();
        let _ = res.add_removal_cookie(&removal_cookie(&state));
        Ok(res)
    };
    let Some(cookie) = req.cookie(REFRESH_COOKIE) else {
        return Ok(HttpResponse::NoContent().finish());
    };
    let presented = hash_refresh_token(cookie.value());
    let (next, next_hash) = new_refresh_token();
    let now = Utc::now();
    let outcome = state
        .store
        .rotate_refresh_token(&presented, &next_hash, now, now + state.tokens.refresh_ttl())
        .await?;
    match outcome {
        RefreshOutcome::Rotated { user_id, .. } => match state.store.user(user_id).await? {
            Some(user) if user.active => signed_in(&state, &user, next),
            _ => fail(ApiError::unauthorized("invalid_refresh_token", "sign in again")),
        },
        RefreshOutcome::Reused { user_id, family_id } => {
            let addr = state.client_addr(&req);
            state
                .store
                .append_audit(
                    NewAuditEvent::new("refresh_token_reused", "user")
                        .record(user_id)
                        .from_addr(addr)
                        .details(json!({ "family_revoked": family_id })),
                )
                .await?;
            tracing::warn!(%user_id, "refresh token reused; family revoked");
            fail(ApiError::unauthorized(
                "refresh_token_reused",
                "this sign-in was used elsewhere and has been ended; sign in again",
            ))
        }
        RefreshOutcome::Invalid => {
            fail(ApiError::unauthorized("invalid_refresh_token", "sign in again"))
        }
    }
}

/// `POST /api/auth/logout`: revokes the refresh family and clears the cookie.
#[utoipa::path(
    post, path = "/api/auth/logout", operation_id = "auth_logout", tag = "auth",
    security(()),
    responses((status = 204, description = "signed out; the refresh cookie cleared")),
)]
pub async fn logout(
    req: HttpRequest, state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if let Some(cookie) = req.cookie(REFRESH_COOKIE) {
        state.store.revoke_refresh_family(&hash_refresh_token(cookie.value()), Utc::now()).await?;
    }
    let mut res = HttpResponse::NoContent().finish();
    let _ = res.add_removal_cookie(&removal_cookie(&state));
    Ok(res)
}

/// `GET /api/me`: who the caller is, with role and specialties.
#[utoipa::path(
    get, path = "/api/me", operation_id = "auth_me", tag = "auth",
    responses((status = 200, description = "the caller", body = User)),
)]
pub async fn me(AuthUser(user): AuthUser) -> HttpResponse {
    HttpResponse::Ok().json(user)
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ChangePasswordRequest {
    current_password: String,
    new_password: String,
}

/// `POST /api/me/password {current_password, new_password}`: the caller changes their own
/// password (the only way past a one-time password a coordinator set). Every sign-in
/// family of the account ends and a new one starts: `200` as a login, with a new access
/// token and refresh cookie. Limited like sign-in (`429`); `422 wrong_password` (field
/// `current_password`), `weak_password`/`too_long` (field `new_password`),
/// `password_unchanged`. Audited as `password_changed` (a wrong current password as
/// `password_change_failed`, like a failed sign-in); nothing else changes on a refusal.
#[utoipa::path(
    post, path = "/api/me/password", operation_id = "auth_change_password", tag = "auth",
    request_body = ChangePasswordRequest,
    responses(
        (status = 200, description = "changed: a new access token and refresh cookie", body = TokenResponse),
        (status = 429, description = "Too many attempts"),
    ),
)]
pub async fn change_password(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser,
    ApiJson(body): ApiJson<ChangePasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let addr = client_addr(&req, state.settings.http.trust_proxy_headers);
    state.login_limiter.check(caller.email.as_str(), addr)?;
    let new = Password::parse(&body.new_password).map_err(|e| e.for_field("new_password"))?;
    if body.new_password == body.current_password {
        let message = "choose a password other than the current one";
        return Err(ParseError::new("password_unchanged", "new_password", message).into());
    }
    let stored = state.store.credentials(&caller.email).await?.map(|c| c.password_hash);
    if !state.passwords.verify(&body.current_password, stored).await? {
        // Like a failed sign-in: someone holding the token may be guessing the password.
        let event = state.audit_event(&req, &caller, "password_change_failed", "user");
        state.store.append_audit(event.record(caller.id)).await?;
        let message = "the current password is not right";
        return Err(ParseError::new("wrong_password", "current_password", message).into());
    }
    let hash = state.passwords.hash(&new).await?;
    let (refresh, token) = new_family(&state, &caller);
    let password = NewPassword { hash, must_change: false, next_family: Some(&token) };
    let audit = state.audit_event(&req, &caller, "password_changed", "user");
    state.store.set_password(caller.id, password, Utc::now(), audit).await?;
    let user = state.store.user(caller.id).await?.ok_or_else(invalid_credentials)?;
    signed_in(&state, &user, refresh)
}
