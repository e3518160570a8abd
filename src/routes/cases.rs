//! Cases: booking into a session, reading one, "my cases", and withdrawal. Every response
//! that carries patient data goes through `CaseView` and writes an audit event.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::access::{may_book_into, may_withdraw, AgendaAccess};
use crate::domain::patient::{PatientConflict, PatientUpdate, RecordedDetails};
use crate::domain::{CaseView, NewCase, NhsNumber, ParseError, Role, Session, User};
use crate::error::ApiError;
use crate::mail::templates;
use crate::routes::support::{
    audit_case_reads, parse_details, parse_patient, patient_cases, session_or_404, visible_case,
    ApiJson, AuthUser, DetailsRequest, PatientRequest,
};
use crate::state::AppState;
use crate::store::StoreError;

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "patient": { "nhs_number": "943 476 5919", "given_name": "Hermione",
        "family_name": "Quibble", "date_of_birth": "1978-05-17", "sex": "female",
        "gp_practice_code": "A81001" },
    "clinical_question": "Inflammatory back pain?",
    "history": "Twelve weeks of low back pain and morning stiffness.",
    "urgency": "routine", "body_site": "lower back", "red_flags": [],
    "referral_received_on": "2026-11-02", "referral_source": "gp", "symptom_weeks": 12,
    "conservative_care": [{ "kind": "physiotherapy", "weeks": 6 }],
    "imaging": [{ "kind": "xray", "done_on": "2026-10-20", "summary": "Sacroiliitis query" }],
    "medication_tried": "Naproxen 500 mg", "start_back": { "total": 5, "psychosocial": 3 },
    "patient_agrees": true
}))]
pub struct BookingRequest {
    patient: PatientRequest,
    #[serde(flatten)]
    details: DetailsRequest,
    /// The NHS number is on record with another name (or, from a coordinator, date of
    /// birth) and the booker confirms the record should change.
    #[serde(default)]
    confirm_patient_update: bool,
}

/// Parses a booking request; `None` fields come from the path and the caller.
async fn parse_booking(
    state: &AppState, r: BookingRequest, session: &Session, referrer: &User,
) -> Result<NewCase, ApiError> {
    let patient = parse_patient(&r.patient, Utc::now().date_naive())?;
    let d = parse_details(state, &r.details, &session.plan.specialty).await?;
    Ok(NewCase {
        id: Uuid::new_v4(),
        session_id: session.id,
        referrer_id: referrer.id,
        patient,
        clinical_question: d.clinical_question,
        history: d.history,
        urgency: d.urgency,
        body_site: d.body_site,
        free_text_identifies_patient: d.free_text_identifies_patient,
        idempotency_key: None,
        patient_update: PatientUpdate::None,
        proforma: d.proforma,
    })
}

/// The optional `Idempotency-Key` header: 1–200 visible ASCII characters.
fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(raw) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let key = raw.to_str().map(str::trim).unwrap_or("");
    if key.is_empty() || key.len() > 200 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ParseError::new(
            "invalid_idempotency_key",
            "Idempotency-Key",
            "must be 1-200 visible ASCII characters",
        )
        .into());
    }
    Ok(Some(key.to_string()))
}

/// `POST /api/sessions/{id}/cases`: `201` with the case, or the first result again when
/// the `Idempotency-Key` was used before.
#[utoipa::path(
    post, path = "/api/sessions/{id}/cases", operation_id = "cases_book", tag = "cases",
    request_body = BookingRequest,
    responses(
        (status = 201, description = "the booked case (header `Idempotent-Replayed: true` on a replay)", body = CaseView),
    ),
)]
pub async fn book(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser,
    session_id: web::Path<Uuid>, ApiJson(body): ApiJson<BookingRequest>,
) -> Result<HttpResponse, ApiError> {
    let session = session_or_404(&state, *session_id).await?;
    may_book_into(&caller, &session)?;
    let confirm = body.confirm_patient_update;
    let mut case = parse_booking(&state, body, &session, &caller).await?;
    case.idempotency_key = idempotency_key(&req)?;
    if confirm {
        case.patient_update = match caller.role {
            Role::Coordinator => PatientUpdate::Correction,
            _ if record_viewer(&state, &caller, &case.patient.nhs_number).await?.is_some() => {
                PatientUpdate::NameChange
            }
            // Someone who may not see the record cannot confirm a change to it.
            _ => PatientUpdate::None,
        };
    }
    let event = state.audit_event(&req, &caller, "case_booked", "case");
    let confirmation = templates::booking_confirmation(&caller.email, &session, &case);
    let nhs_number = case.patient.nhs_number.clone();
    let booked = match state.store.book_case(case, event, vec![confirmation], Utc::now()).await {
        Err(StoreError::PatientConflict(conflict)) => {
            return patient_conflict(&state, &req, &caller, &nhs_number, &conflict).await;
        }
        other => other?,
    };
    state.mail_wake.notify_one();
    state.live.agenda_changed(session.id);
    if booked.replayed {
        audit_case_reads(
            &state,
            &req,
            &caller,
            "idempotent_replay",
            std::slice::from_ref(&booked.case),
        )
        .await?;
    }
    let view = CaseView::of(&booked.case, true, 0, Utc::now().date_naive());
    let mut res = HttpResponse::Created();
    if booked.replayed {
        res.insert_header(("Idempotent-Replayed", "true"));
    }
    Ok(res.json(view))
}

/// The patient's cases through which `caller` may see the record for this NHS number, or
/// `None` if they may not see it: a coordinator sees it through every case; a referrer
/// through their own referrals, unless the number is awaiting a coordinator's review (its
/// cases disagreed when the register was made, so the record may be another person's).
async fn record_viewer(
    state: &AppState, caller: &User, nhs_number: &NhsNumber,
) -> Result<Option<Vec<crate::domain::Case>>, ApiError> {
    let coordinator = caller.role == Role::Coordinator;
    if !coordinator && state.store.patient_conflicts().await?.iter().any(|(n, _)| n == nhs_number) {
        return Ok(None);
    }
    let mut cases = patient_cases(state, nhs_number).await?;
    cases.retain(|case| coordinator || case.referrer_id == caller.id);
    Ok((!cases.is_empty()).then_some(cases))
}

/// `409 patient_details_conflict`: the NHS number is on record with another name or date
/// of birth. Whoever may see the record ([`record_viewer`]) is told what differs and
/// shown the recorded name and date of birth, and the read is audited; anyone else gets
/// one fixed message, so nobody can probe a stranger's details by trying values.
async fn patient_conflict(
    state: &AppState, req: &HttpRequest, caller: &User, nhs_number: &NhsNumber,
    conflict: &PatientConflict,
) -> Result<HttpResponse, ApiError> {
    let Some(cases) = record_viewer(state, caller, nhs_number).await? else {
        return Ok(HttpResponse::Conflict().json(serde_json::json!({
            "code": "patient_details_conflict",
            "message": "this NHS number is on record with different patient details: check \
                        the number and the patient's details; a coordinator can correct the record",
        })));
    };
    audit_case_reads(state, req, caller, "patient_details_conflict", &cases).await?;
    let dob = conflict.fields.contains(&"date_of_birth");
    let next = match (dob, caller.role == Role::Coordinator) {
        (false, _) => ", or confirm the patient's change of name",
        (true, true) => ", or confirm the correction",
        (true, false) => "; only a coordinator can correct a date of birth",
    };
    let message = format!(
        "this NHS number is on record for a patient with a different {}: check the number \
         and the patient's details{next}",
        if dob { "date of birth" } else { "name" }
    );
    Ok(HttpResponse::Conflict().json(serde_json::json!({
        "code": "patient_details_conflict",
        "message": message,
        "fields": conflict.fields,
        "recorded": RecordedDetails::from(&conflict.recorded),
    })))
}

/// `GET /api/cases/{id}` (audited).
#[utoipa::path(
    get, path = "/api/cases/{id}", operation_id = "cases_show", tag = "cases",
    responses((status = 200, description = "OK", body = CaseView)),
)]
pub async fn show(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser, id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let (case, access) = visible_case(&state, &caller, *id).await?;
    audit_case_reads(&state, &req, &caller, "case", std::slice::from_ref(&case)).await?;
    let view = CaseView::of(&case, access == AgendaAccess::Full, 1, Utc::now().date_naive());
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CasesQuery {
    mine: Option<bool>,
}

/// `GET /api/cases?mine=true`: the caller's own bookings in every state (audited).
#[utoipa::path(
    get, path = "/api/cases", operation_id = "cases_mine", tag = "cases",
    params(CasesQuery),
    responses((status = 200, description = "OK", body = [CaseView])),
)]
pub async fn mine(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser,
    query: web::Query<CasesQuery>,
) -> Result<HttpResponse, ApiError> {
    if query.mine != Some(true) {
        return Err(ApiError::bad_request("unsupported_filter", "list cases with ?mine=true"));
    }
    let cases = state.store.referrer_cases(caller.id).await?;
    audit_case_reads(&state, &req, &caller, "my_cases", &cases).await?;
    let today = Utc::now().date_naive();
    let identified = caller.role.sees_identifiers();
    let views: Vec<CaseView> =
        cases.iter().map(|c| CaseView::of(c, identified, 0, today)).collect();
    Ok(HttpResponse::Ok().json(views))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct MoveRequest {
    session_id: Uuid,
}

/// `POST /api/cases/{id}/move {session_id}`: the referrer or a coordinator moves (defers) a
/// case that has not been discussed to another session, re-checking capacity and cut-off.
/// The old booking stays as history; the referrer is told.
#[utoipa::path(
    post, path = "/api/cases/{id}/move", operation_id = "cases_move_case", tag = "cases",
    request_body = MoveRequest,
    responses((status = 200, description = "OK", body = CaseView)),
)]
pub async fn move_case(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser, id: web::Path<Uuid>,
    ApiJson(body): ApiJson<MoveRequest>,
) -> Result<HttpResponse, ApiError> {
    let (case, access) = visible_case(&state, &caller, *id).await?;
    if !may_withdraw(&caller, &case) {
        return Err(ApiError::forbidden("only the referrer or a coordinator may move a case"));
    }
    let from = state
        .store
        .session(case.session_id)
        .await?
        .ok_or_else(|| ApiError::not_found("not_found", "no such case"))?;
    let to = session_or_404(&state, body.session_id).await?;
    may_book_into(&caller, &to)?;
    let referrer = state
        .store
        .user(case.referrer_id)
        .await?
        .ok_or_else(|| ApiError::not_found("not_found", "no such case"))?;
    let new_id = Uuid::new_v4();
    let notice =
        templates::case_moved(&referrer.email, new_id, &from, &to, "Your case has been moved.");
    let event = state
        .audit_event(&req, &caller, "case_moved", "case")
        .details(serde_json::json!({ "from_case": case.id }));
    let moved =
        state.store.move_case(case.id, to.id, new_id, event, vec![notice], Utc::now()).await?;
    state.mail_wake.notify_one();
    state.live.agenda_changed(case.session_id);
    state.live.agenda_changed(to.id);
    Ok(HttpResponse::Ok().json(CaseView::of(
        &moved,
        access == AgendaAccess::Full,
        0,
        Utc::now().date_naive(),
    )))
}

/// `DELETE /api/cases/{id}`: the referrer or a coordinator withdraws a case that has not
/// been discussed; its slot is freed.
#[utoipa::path(
    delete, path = "/api/cases/{id}", operation_id = "cases_withdraw", tag = "cases",
    responses((status = 200, description = "OK", body = CaseView)),
)]
pub async fn withdraw(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser, id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let (case, access) = visible_case(&state, &caller, *id).await?;
    if !may_withdraw(&caller, &case) {
        return Err(ApiError::forbidden("only the referrer or a coordinator may withdraw a case"));
    }
    let event = state.audit_event(&req, &caller, "case_withdrawn", "case");
    let case = state.store.withdraw_case(case.id, event).await?;
    state.live.agenda_changed(case.session_id);
    Ok(HttpResponse::Ok().json(CaseView::of(
        &case,
        access == AgendaAccess::Full,
        0,
        Utc::now().date_naive(),
    )))
}

/// `PUT /api/cases/{id}`: the referrer (or a coordinator) edits a returned booking, giving
/// its details again as when booking (less the patient); `409 not_returned` otherwise.
#[utoipa::path(
    put, path = "/api/cases/{id}", operation_id = "cases_edit", tag = "cases",
    request_body = DetailsRequest,
    responses((status = 200, description = "OK", body = CaseView)),
)]
pub async fn edit(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser, id: web::Path<Uuid>,
    ApiJson(body): ApiJson<DetailsRequest>,
) -> Result<HttpResponse, ApiError> {
    let (case, session) = own_case(&state, &caller, *id, "edit").await?;
    let details = parse_details(&state, &body, &session.plan.specialty).await?;
    let event = state.audit_event(&req, &caller, "case_edited", "case");
    let case = state.store.edit_returned_case(case.id, &details, event).await?;
    Ok(HttpResponse::Ok().json(CaseView::of(&case, true, 0, Utc::now().date_naive())))
}

/// `POST /api/cases/{id}/resubmit`: sends a returned booking back to triage (until the
/// session's cut-off); the patient's clock keeps its start.
#[utoipa::path(
    post, path = "/api/cases/{id}/resubmit", operation_id = "cases_resubmit", tag = "cases",
    responses((status = 200, description = "OK", body = CaseView)),
)]
pub async fn resubmit(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser, id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let (case, _) = own_case(&state, &caller, *id, "resubmit").await?;
    let event = state.audit_event(&req, &caller, "case_resubmitted", "case");
    let case = state.store.resubmit_case(case.id, event, Utc::now()).await?;
    Ok(HttpResponse::Ok().json(CaseView::of(&case, true, 0, Utc::now().date_naive())))
}

/// The case and its session, for its referrer or a coordinator (`403` for others who
/// may see it, `404` for those who may not).
async fn own_case(
    state: &AppState, caller: &User, id: Uuid, verb: &str,
) -> Result<(crate::domain::Case, Session), ApiError> {
    let (case, _) = visible_case(state, caller, id).await?;
    if !may_withdraw(caller, &case) {
        return Err(ApiError::forbidden(format!(
            "only the referrer or a coordinator may {verb} a booking"
        )));
    }
    let session = session_or_404(state, case.session_id).await?;
    Ok((case, session))
}
