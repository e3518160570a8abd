//! The patient register's coordinator side (`/api/patients/…`): the NHS numbers whose
//! cases disagreed when the register was made, and corrections of a patient's name and
//! date of birth. NHS numbers travel in bodies, never in URLs. Booking against the
//! register lives with the cases (`routes::cases`).

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use crate::auth::require_role;
use crate::domain::case::parse_date_of_birth;
use crate::domain::patient::RecordedDetails;
use crate::domain::{NhsNumber, ParseError, PersonName, Role};
use crate::error::ApiError;
use crate::routes::support::{audit_case_reads, patient_cases, ApiJson, AuthUser};
use crate::state::AppState;
use crate::store::PatientCorrection;

/// `GET /api/patients/conflicts` (coordinator; audited as a read of each case shown):
/// each unresolved NHS number with the different name and date of birth combinations its
/// cases were booked under, and which cases carry each.
#[utoipa::path(
    get, path = "/api/patients/conflicts", operation_id = "patients_conflicts", tag = "patients",
    responses((status = 200, description = "OK", body = [PatientConflict])),
)]
pub async fn conflicts(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser,
) -> Result<HttpResponse, ApiError> {
    require_role(&caller, &[Role::Coordinator])?;
    let mut out = Vec::new();
    let mut shown = Vec::new();
    for (nhs_number, found_at) in state.store.patient_conflicts().await? {
        let cases = patient_cases(&state, &nhs_number).await?;
        let mut variants: Vec<(RecordedDetails, Vec<uuid::Uuid>)> = Vec::new();
        for case in &cases {
            let details = RecordedDetails::from(&case.patient);
            let same = |v: &&mut (RecordedDetails, Vec<uuid::Uuid>)| {
                v.0.given_name.to_lowercase() == details.given_name.to_lowercase()
                    && v.0.family_name.to_lowercase() == details.family_name.to_lowercase()
                    && v.0.date_of_birth == details.date_of_birth
            };
            match variants.iter_mut().find(same) {
                Some(v) => v.1.push(case.id),
                None => variants.push((details, vec![case.id])),
            }
        }
        out.push(json!({
            "nhs_number": nhs_number.as_str(),
            "found_at": found_at,
            "variants": variants.iter().map(|(d, ids)| json!({
                "given_name": d.given_name,
                "family_name": d.family_name,
                "date_of_birth": d.date_of_birth,
                "case_ids": ids,
            })).collect::<Vec<_>>(),
        }));
        shown.extend(cases);
    }
    audit_case_reads(&state, &req, &caller, "patient_conflicts", &shown).await?;
    Ok(HttpResponse::Ok().json(out))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CorrectionRequest {
    nhs_number: String,
    given_name: String,
    family_name: String,
    date_of_birth: String,
    reason: String,
}

/// `POST /api/patients/correction {nhs_number, given_name, family_name, date_of_birth,
/// reason}` (coordinator): sets the patient's name and date of birth on the register and
/// on every case of the patient, resolving any conflict; each case gets an audit event
/// with the reason. `404 not_found` for an NHS number not on record.
#[utoipa::path(
    post, path = "/api/patients/correction", operation_id = "patients_correct", tag = "patients",
    request_body = CorrectionRequest,
    responses((status = 200, description = "OK", body = PatientCorrected)),
)]
pub async fn correct(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser,
    ApiJson(body): ApiJson<CorrectionRequest>,
) -> Result<HttpResponse, ApiError> {
    require_role(&caller, &[Role::Coordinator])?;
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(ParseError::new("invalid_value", "reason", "must be 1-500 characters").into());
    }
    let correction = PatientCorrection {
        nhs_number: NhsNumber::parse(&body.nhs_number)?,
        given_name: PersonName::parse(&body.given_name).map_err(|e| e.for_field("given_name"))?,
        family_name: PersonName::parse(&body.family_name)
            .map_err(|e| e.for_field("family_name"))?,
        date_of_birth: parse_date_of_birth(&body.date_of_birth, Utc::now().date_naive())?,
        by: caller.id,
    };
    let event = state
        .audit_event(&req, &caller, "patient_corrected", "case")
        .details(json!({ "reason": reason }));
    let changed = state.store.correct_patient(&correction, event, Utc::now()).await?;
    let cases = patient_cases(&state, &correction.nhs_number).await?;
    for session in cases.iter().map(|c| c.session_id) {
        state.live.agenda_changed(session);
    }
    Ok(HttpResponse::Ok().json(json!({ "cases_updated": changed })))
}

// What these routes answer, written with `json!` in the handlers; these describe it.

/// One NHS number recorded with differing details: when that was found, and each set of
/// details with the cases that carry it.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct PatientConflict {
    nhs_number: String,
    found_at: chrono::DateTime<Utc>,
    variants: Vec<PatientVariant>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct PatientVariant {
    given_name: String,
    family_name: String,
    date_of_birth: chrono::NaiveDate,
    case_ids: Vec<uuid::Uuid>,
}

/// How many cases the correction changed.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct PatientCorrected {
    cases_updated: u64,
}
