//! Mentorship on the practitioner's own caseload (issue 21): adding a patient from one's
//! caseload to the arm's mentorship list, listing and reading such cases, and the
//! consultants' advice on them, "book into the MDT" booking the case into a session in one
//! step. Handlers parse with the booking's own parsers (`support::parse_patient`,
//! `parse_details`), check access (`auth::access::may_see_caseload_case`), and call the
//! store; every response showing such a case is an audited read or the audited write.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::auth::access::{may_advise, may_book_into, may_see_caseload_case};
use crate::domain::caseload::{
    Advice, AdviceDecision, AdviceDraft, AdviceRequest, CaseloadCase, CaseloadView,
};
use crate::domain::{CaseView, ParseError, Role, User};
use crate::error::ApiError;
use crate::mail::templates;
use crate::routes::support::{
    audit_caseload_reads, known_specialty, mentored_arms, parse_details, parse_patient,
    session_or_404, ApiJson, AuthUser, DetailsRequest, PatientRequest,
};
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "specialty": "spinal",
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
pub struct CaseloadRequest {
    patient: PatientRequest,
    #[serde(default)]
    specialty: String,
    #[serde(flatten)]
    details: DetailsRequest,
}

/// `POST /api/mentorship/cases`: a practitioner adds a patient from their own caseload to
/// the mentorship list of one of their arms, with the patient details and proforma a
/// booking gives (and the booking's codes: `422 invalid_nhs_number`, `red_flags_present`,
/// `proforma_field_required`, …). `201` with the case. `403` for anyone but a
/// practitioner, `403 forbidden_specialty` for an arm not theirs, `422 unknown_specialty`.
#[utoipa::path(
    post, path = "/api/mentorship/cases", operation_id = "caseload_create", tag = "caseload",
    request_body = CaseloadRequest,
    responses((status = 201, description = "OK", body = CaseloadView)),
)]
pub async fn create(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser,
    ApiJson(body): ApiJson<CaseloadRequest>,
) -> Result<HttpResponse, ApiError> {
    if caller.role != Role::Practitioner {
        return Err(ApiError::forbidden("practitioners add cases from their own caseload"));
    }
    let specialty = known_specialty(&state, &body.specialty).await?;
    if !caller.has_specialty(&specialty) {
        return Err(ApiError::Forbidden {
            code: "forbidden_specialty",
            message: format!("you do not work in {specialty}"),
        });
    }
    let now = Utc::now();
    let patient = parse_patient(&body.patient, now.date_naive())?;
    let details = parse_details(&state, &body.details, &specialty).await?;
    let case = CaseloadCase::new(caller.id, specialty, patient, details, now);
    let event = state
        .audit_event(&req, &caller, "mentorship_case_added", "mentorship_case")
        .details(json!({ "specialty": case.specialty }));
    state.store.add_caseload_case(&case, event).await?;
    Ok(HttpResponse::Created().json(CaseloadView::of(&case, &[])))
}

/// What `POST /api/mentorship/cases/{id}/advice` answers (written with `json!`; this
/// describes it): the advice, the case with it, and the MDT case a `book_mdt` booked.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct AdviceGiven<'a> {
    advice: Advice,
    case: CaseloadView<'a>,
    #[schema(required = false)]
    booked_case: CaseView,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    mine: Option<bool>,
}

/// `GET /api/mentorship/cases[?mine=true]`: with `mine=true` the caller's own caseload
/// cases; without, every caseload case the caller may see (a practitioner their own, a
/// consultant those of the arms they mentor, a coordinator all; a trainee `403`). Newest
/// first, each with its advice; audited.
#[utoipa::path(
    get, path = "/api/mentorship/cases", operation_id = "caseload_list", tag = "caseload",
    params(ListQuery),
    responses((status = 200, description = "OK", body = [CaseloadView])),
)]
pub async fn list(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    if caller.role == Role::Trainee {
        return Err(ApiError::forbidden("trainees do not see caseload cases"));
    }
    let mine = query.mine == Some(true);
    let own = (mine || caller.role == Role::Practitioner).then_some(caller.id);
    let mentored = mentored_arms(&state, &caller).await?;
    let cases: Vec<_> = state
        .store
        .caseload_cases(own)
        .await?
        .into_iter()
        .filter(|(c, _)| may_see_caseload_case(&caller, c, mentored.contains(&c.specialty)))
        .collect();
    let ids: Vec<Uuid> = cases.iter().map(|(c, _)| c.id).collect();
    audit_caseload_reads(&state, &req, &caller, "mentorship_cases", &ids).await?;
    let views: Vec<CaseloadView> = cases.iter().map(|(c, a)| CaseloadView::of(c, a)).collect();
    Ok(HttpResponse::Ok().json(views))
}

/// The caseload case with its advice, and whether the caller mentors its arm; `404` when
/// it does not exist or the caller may not see it.
async fn visible(
    state: &AppState, caller: &User, id: Uuid,
) -> Result<(CaseloadCase, Vec<Advice>, bool), ApiError> {
    let hidden = || ApiError::not_found("not_found", "no such case");
    let (case, advice) = state.store.caseload_case(id).await?.ok_or_else(hidden)?;
    let mentors = mentored_arms(state, caller).await?.contains(&case.specialty);
    if !may_see_caseload_case(caller, &case, mentors) {
        return Err(hidden());
    }
    Ok((case, advice, mentors))
}

/// `GET /api/mentorship/cases/{id}` (audited).
#[utoipa::path(
    get, path = "/api/mentorship/cases/{id}", operation_id = "caseload_show", tag = "caseload",
    responses((status = 200, description = "OK", body = CaseloadView)),
)]
pub async fn show(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser, id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let (case, advice, _) = visible(&state, &caller, *id).await?;
    audit_caseload_reads(&state, &req, &caller, "mentorship_case", &[case.id]).await?;
    Ok(HttpResponse::Ok().json(CaseloadView::of(&case, &advice)))
}

/// `POST /api/mentorship/cases/{id}/advice {decision, note?, session_id?}`: a consultant
/// mentoring the case's arm records advice (`403` for anyone else who may see the case,
/// `404` for those who may not); the first advice takes the case off the backlog.
/// `book_mdt` books the case into `session_id` (a session of the case's arm, `422
/// wrong_specialty` otherwise; `404` for no such session) with its details, the
/// practitioner as referrer, and accepts it onto the agenda as the consultant's triage
/// decision, all in one transaction (the booking's and triage's codes apply:
/// `409 session_full`, `booking_closed`, `duplicate_case`, `agenda_published`, …).
/// `409 already_booked` once the case was booked. `201` with `advice`, the `case` and,
/// for `book_mdt`, the `booked_case`.
#[utoipa::path(
    post, path = "/api/mentorship/cases/{id}/advice", operation_id = "caseload_advise", tag = "caseload",
    request_body = AdviceRequest,
    responses((status = 201, description = "OK", body = AdviceGiven)),
)]
pub async fn advise(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser, id: web::Path<Uuid>,
    ApiJson(body): ApiJson<AdviceRequest>,
) -> Result<HttpResponse, ApiError> {
    let (case, mut given, mentors) = visible(&state, &caller, *id).await?;
    may_advise(&caller, mentors)?;
    let draft = AdviceDraft::try_from(body)?;
    let now = Utc::now();
    let event = state.audit_event(&req, &caller, "mentorship_advice_given", "mentorship_case");
    if let (AdviceDecision::BookMdt, Some(session_id)) = (draft.decision, draft.session_id) {
        let session = session_or_404(&state, session_id).await?;
        if session.plan.specialty != case.specialty {
            return Err(ParseError::new(
                "wrong_specialty",
                "session_id",
                format!("book the case into a {} session", case.specialty),
            )
            .into());
        }
        may_book_into(&caller, &session)?;
        let practitioner = state
            .store
            .user(case.practitioner_id)
            .await?
            .ok_or_else(|| ApiError::not_found("not_found", "no such case"))?;
        let booking = case.booking(session.id);
        let mail = templates::booking_confirmation(&practitioner.email, &session, &booking);
        let advice = Advice::new(&case, caller.id, draft, Some(booking.id), now);
        let audits = [
            event.details(json!({ "session": session.id })),
            state
                .audit_event(&req, &caller, "case_booked", "case")
                .details(json!({ "mentorship_case": case.id })),
            state.audit_event(&req, &caller, "case_triaged", "case"),
        ];
        let (case, booked) =
            state.store.book_caseload_case(&advice, &booking, audits, vec![mail], now).await?;
        state.mail_wake.notify_one();
        state.live.agenda_changed(session.id);
        given.push(advice.clone());
        return Ok(HttpResponse::Created().json(json!({
            "advice": advice,
            "case": CaseloadView::of(&case, &given),
            "booked_case": CaseView::of(&booked, true, 0, now.date_naive()),
        })));
    }
    let advice = Advice::new(&case, caller.id, draft, None, now);
    let case = state.store.advise_caseload_case(&advice, event).await?;
    given.push(advice.clone());
    Ok(HttpResponse::Created().json(json!({
        "advice": advice,
        "case": CaseloadView::of(&case, &given),
    })))
}
