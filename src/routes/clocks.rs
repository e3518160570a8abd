//! Communication clocks for coordinators: the letters due and overdue after signed
//! outcomes (case ids only, no patient identifiers, like the print-and-post list), and the
//! bank holidays the working days skip. The rules are `domain::communication`'s; "now" is
//! the app's clock.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::domain::communication::{due_list, BankHoliday, BankHolidayRequest, DueFilter};
use crate::domain::{Role, User};
use crate::error::ApiError;
use crate::routes::support::{clock_rules, ApiJson, AuthUser};
use crate::state::AppState;

fn coordinator_only(caller: &User) -> Result<(), ApiError> {
    if caller.role == Role::Coordinator {
        Ok(())
    } else {
        Err(ApiError::forbidden("coordinators keep the communication clocks"))
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DueParams {
    state: Option<String>,
}

/// `GET /api/letters/due?state=due|overdue` (coordinators): the clocks not yet met,
/// due soonest first; `422 invalid_state` for another state.
#[utoipa::path(
    get, path = "/api/letters/due", operation_id = "clocks_due", tag = "clocks",
    params(DueParams),
    responses((status = 200, description = "OK", body = [crate::domain::communication::CommClock])),
)]
pub async fn due(
    state: web::Data<AppState>, AuthUser(caller): AuthUser, params: web::Query<DueParams>,
) -> Result<HttpResponse, ApiError> {
    coordinator_only(&caller)?;
    let filter = DueFilter::parse(params.state.as_deref())?;
    let rules = clock_rules(&state).await?;
    let facts = state.store.open_clock_facts().await?;
    Ok(HttpResponse::Ok().json(due_list(&facts, &rules, state.clock.now(), filter)))
}

/// `GET /api/bank-holidays` (coordinators): every bank holiday, by date.
#[utoipa::path(
    get, path = "/api/bank-holidays", operation_id = "clocks_holidays", tag = "clocks",
    responses((status = 200, description = "OK", body = [BankHoliday])),
)]
pub async fn holidays(
    state: web::Data<AppState>, AuthUser(caller): AuthUser,
) -> Result<HttpResponse, ApiError> {
    coordinator_only(&caller)?;
    Ok(HttpResponse::Ok().json(state.store.bank_holidays().await?))
}

/// `POST /api/bank-holidays {date, name}` (coordinators, audited): adds a bank holiday;
/// `409 bank_holiday_exists` when the day is one already.
#[utoipa::path(
    post, path = "/api/bank-holidays", operation_id = "clocks_add_holiday", tag = "clocks",
    request_body = BankHolidayRequest,
    responses((status = 201, description = "OK", body = BankHoliday)),
)]
pub async fn add_holiday(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser,
    ApiJson(body): ApiJson<BankHolidayRequest>,
) -> Result<HttpResponse, ApiError> {
    coordinator_only(&caller)?;
    let holiday = BankHoliday::try_from(body)?;
    let event = state.audit_event(&req, &caller, "bank_holiday_added", "bank_holiday");
    state.store.add_bank_holiday(&holiday, event, state.clock.now()).await?;
    Ok(HttpResponse::Created().json(holiday))
}
