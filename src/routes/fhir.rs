//! The FHIR export of a case (`GET /api/cases/{id}/fhir`): who may export, the audit
//! event, and the `application/fhir+json` response. The bundle itself is built by
//! [`crate::domain::fhir`]; nothing here shapes FHIR.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use crate::auth::access::AgendaAccess;
use crate::domain::fhir::{case_bundle, CaseExport, FHIR_JSON};
use crate::error::ApiError;
use crate::routes::support::{discussion_of, session_or_404, visible_case, AuthUser};
use crate::state::AppState;

/// `GET /api/cases/{id}/fhir`: the case as a FHIR R4 `Bundle` (type `collection`) built
/// from the latest outcome version (a case with no outcome yet exports its Patient and
/// Encounter). Those who see the case identified only: trainees get `403`, callers who
/// may not see the case at all `404`. Audited as `case_exported`.
#[utoipa::path(
    get, path = "/api/cases/{id}/fhir", operation_id = "fhir_export", tag = "fhir",
    responses(
        (status = 200, description = "a FHIR R4 Bundle of the signed outcome", content_type = "application/fhir+json", body = Object),
    ),
)]
pub async fn export(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser, id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let (case, access) = visible_case(&state, &caller, *id).await?;
    if access != AgendaAccess::Full {
        return Err(ApiError::forbidden("the FHIR export identifies the patient"));
    }
    let session = session_or_404(&state, case.session_id).await?;
    let versions = state.store.outcome_versions(case.id).await?;
    let outcome = versions.last();
    let signer = match outcome.and_then(|v| v.signed_by) {
        Some(id) => state.store.user(id).await?,
        None => None,
    };
    let event =
        state.audit_event(&req, &caller, "case_exported", "case").record(case.id).details(json!({
            "format": "fhir_r4",
            "session": case.session_id,
            "outcome_version": outcome.map(|v| v.version),
        }));
    state.store.append_audit(event).await?;
    let actions = state.store.case_actions(case.id).await?;
    let bundle = case_bundle(&CaseExport {
        case: &case,
        session: &session,
        outcome,
        signer: signer.as_ref(),
        discussion: discussion_of(&state, &case).await?,
        actions: &actions,
        generated_at: Utc::now(),
    });
    Ok(HttpResponse::Ok().content_type(FHIR_JSON).json(bundle))
}
