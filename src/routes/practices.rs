//! GP practices as data, kept by coordinators: each practice's name and email address by
//! ODS code (the address decides how letters reach it: `domain::letter`).

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;

use crate::domain::case::OdsCode;
use crate::domain::letter::{PracticeDetails, PracticeRequest};
use crate::domain::Role;
use crate::error::ApiError;
use crate::routes::support::{ApiJson, AuthUser};
use crate::state::AppState;

fn coordinator_only(caller: &crate::domain::User) -> Result<(), ApiError> {
    if caller.role == Role::Coordinator {
        Ok(())
    } else {
        Err(ApiError::forbidden("coordinators keep the practices"))
    }
}

/// `PUT /api/practices/{ods_code} {name, email?}`: creates or replaces the practice.
pub async fn put(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser,
    code: web::Path<String>, ApiJson(body): ApiJson<PracticeRequest>,
) -> Result<HttpResponse, ApiError> {
    coordinator_only(&caller)?;
    let code = OdsCode::parse(&code)?;
    let details = PracticeDetails::try_from(body)?;
    let event = state.audit_event(&req, &caller, "practice_saved", "practice");
    let practice = state.store.put_practice(&code, &details, event, Utc::now()).await?;
    Ok(HttpResponse::Ok().json(practice))
}

/// `GET /api/practices`: every practice, by ODS code.
pub async fn list(
    state: web::Data<AppState>, AuthUser(caller): AuthUser,
) -> Result<HttpResponse, ApiError> {
    coordinator_only(&caller)?;
    Ok(HttpResponse::Ok().json(state.store.practices().await?))
}
