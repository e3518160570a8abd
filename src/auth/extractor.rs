//! The extractor that turns `Authorization: Bearer <access token>` into the current,
//! active [`User`] (with role and specialties), or a `401`.

use std::future::Future;
use std::pin::Pin;

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};

use super::tokens::TokenError;
use crate::domain::User;
use crate::error::ApiError;
use crate::state::AppState;

/// The authenticated caller.
pub struct AuthUser(pub User);

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_string());
        Box::pin(async move {
            let state =
                state.ok_or_else(|| ApiError::internal(anyhow::anyhow!("app state missing")))?;
            let token =
                token.ok_or_else(|| ApiError::unauthorized("missing_token", "sign in first"))?;
            let user_id = state.tokens.verify_access(&token).map_err(|e| match e {
                TokenError::Expired => {
                    ApiError::unauthorized("token_expired", "the access token has expired")
                }
                TokenError::Invalid => {
                    ApiError::unauthorized("invalid_token", "the access token is not valid")
                }
            })?;
            match state.store.user(user_id).await? {
                Some(user) if user.active => Ok(AuthUser(user)),
                _ => Err(ApiError::unauthorized(
                    "invalid_token",
                    "the access token is not valid",
                )),
            }
        })
    }
}
