//! GP practices as data, kept by coordinators: each practice's name and email address by
//! ODS code (the address decides how letters reach it: `domain::letter`).

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use futures_util::StreamExt as _;

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
#[utoipa::path(
    put, path = "/api/practices/{ods_code}", operation_id = "practices_put", tag = "practices",
    request_body = PracticeRequest,
    responses((status = 200, description = "OK", body = crate::domain::letter::Practice)),
)]
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
#[utoipa::path(
    get, path = "/api/practices", operation_id = "practices_list", tag = "practices",
    responses((status = 200, description = "OK", body = [crate::domain::letter::Practice])),
)]
pub async fn list(
    state: web::Data<AppState>, AuthUser(caller): AuthUser,
) -> Result<HttpResponse, ApiError> {
    coordinator_only(&caller)?;
    Ok(HttpResponse::Ok().json(state.store.practices().await?))
}

/// The largest list-size file: England's 6,500 practices take about 100 kB.
const LIST_SIZES_MAX_BYTES: usize = 2 << 20;

/// What the list-size import answers (written with `json!`; this describes it): how
/// many practices the file gave.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct ListSizesImported {
    imported: usize,
}

/// What `GET /api/practices/list-sizes` answers (written with `json!`; this describes it).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct ListSizes {
    list_sizes: Vec<ListSizeRow>,
}

/// One practice's registered-patient count and when it was imported.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct ListSizeRow {
    ods_code: String,
    list_size: u32,
    imported_at: chrono::DateTime<chrono::Utc>,
}

/// `POST /api/practices/list-sizes` with a CSV body (`ods_code,list_size` per line, an
/// optional header): adds or replaces each practice's registered-patient count. The whole
/// file is checked first; any bad line refuses it (`422 invalid_list_sizes`, the line
/// named) and nothing is stored. Audited (`list_sizes_imported`, with the count).
#[utoipa::path(post, path = "/api/practices/list-sizes", operation_id = "practices_import_list_sizes", tag = "practices",
    request_body(content = String, content_type = "text/csv", description = "`ods_code,list_size` per line, an optional header"),
    responses((status = 200, description = "OK", body = ListSizesImported)))]
pub async fn import_list_sizes(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    coordinator_only(&caller)?;
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|_| ApiError::bad_request("malformed_body", "the upload could not be read"))?;
        if body.len() + chunk.len() > LIST_SIZES_MAX_BYTES {
            return Err(ApiError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    let text = std::str::from_utf8(&body).map_err(|_| {
        crate::domain::ParseError::new("invalid_list_sizes", "body", "the CSV must be UTF-8 text")
    })?;
    let sizes = crate::domain::measures::parse_list_sizes(text)?;
    let event = state
        .audit_event(&req, &caller, "list_sizes_imported", "practice")
        .details(serde_json::json!({ "practices": sizes.len() }));
    state.store.import_list_sizes(&sizes, caller.id, event, state.clock.now()).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "imported": sizes.len() })))
}

/// `GET /api/practices/list-sizes`: every practice's list size, by ODS code.
#[utoipa::path(
    get, path = "/api/practices/list-sizes", operation_id = "practices_list_sizes", tag = "practices",
    responses((status = 200, description = "OK", body = ListSizes)),
)]
pub async fn list_sizes(
    state: web::Data<AppState>, AuthUser(caller): AuthUser,
) -> Result<HttpResponse, ApiError> {
    coordinator_only(&caller)?;
    let sizes: Vec<serde_json::Value> = state
        .store
        .list_sizes()
        .await?
        .into_iter()
        .map(|(s, at)| {
            serde_json::json!({ "ods_code": s.ods_code, "list_size": s.list_size, "imported_at": at })
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "list_sizes": sizes })))
}
