//! Triage (issue 15): the queue of bookings waiting for it (`GET /api/triage`), the
//! decision (`POST /api/cases/{id}/triage`), and each specialty's triage data
//! (`GET`/`PUT /api/specialties/{slug}/triage`). Editing and resubmitting a returned
//! booking are in `cases`.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::auth::access::{case_access, may_triage, AgendaAccess};
use crate::auth::require_role;
use crate::domain::proforma::ProformaField;
use crate::domain::schedule::SessionView;
use crate::domain::triage::{Decision, StandardPlan, TriageRequest};
use crate::domain::{CaseView, ParseError, Role, SessionState, Specialty};
use crate::error::ApiError;
use crate::mail::templates;
use crate::routes::support::{
    audit_case_reads, invitees, organizer, session_or_404, ApiJson, AuthUser,
};
use crate::state::AppState;
use crate::store::{SpecialtyRules, StoreError};

/// `POST /api/cases/{id}/triage {decision, reason?, note?, standard_plan?}`: accept the
/// booking onto the agenda, return it as not ready (the referrer is emailed, without
/// identifiers), or list it as not discussed with one of the specialty's standard plans.
/// An urgent case the chair accepts onto a published agenda is announced to the invitees.
#[utoipa::path(
    post, path = "/api/cases/{id}/triage", operation_id = "triage_decide", tag = "triage",
    request_body = TriageRequest,
    responses((status = 200, description = "OK", body = CaseView)),
)]
pub async fn decide(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser, id: web::Path<Uuid>,
    ApiJson(body): ApiJson<TriageRequest>,
) -> Result<HttpResponse, ApiError> {
    let hidden = || ApiError::not_found("not_found", "no such case");
    let case = state.store.case(*id).await?.ok_or_else(hidden)?;
    let session = session_or_404(&state, case.session_id).await?;
    if case_access(&caller, &case, &session) == AgendaAccess::None
        && caller.id != session.plan.chair_id
    {
        return Err(hidden());
    }
    may_triage(&caller, &session)?;
    let rules = state.store.specialty_rules(&session.plan.specialty).await?;
    let decision = body.parse(&rules.standard_plans)?;
    let mut mail = Vec::new();
    match &decision {
        Decision::Return { reason, .. } => {
            if let Some(referrer) = state.store.user(case.referrer_id).await? {
                mail.push(templates::case_returned(&referrer.email, case.id, &session, *reason));
            }
        }
        _ if session.state == SessionState::Published => {
            // Those already invited hear of the change; the new case's referrer, if not
            // among them, gets the invitation itself.
            let mut cases = state.store.session_cases(session.id).await?;
            let before = invitees(&state, &session, &cases).await?;
            cases.push(case.clone());
            let organizer = organizer(&state, &caller);
            for to in invitees(&state, &session, &cases).await? {
                mail.push(match before.contains(&to) {
                    true => templates::agenda_changed(&session, to),
                    false => {
                        templates::agenda_published(&session, cases.len(), &organizer, vec![to])
                    }
                });
            }
        }
        _ => {}
    }
    let event = state.audit_event(&req, &caller, "case_triaged", "case");
    let case =
        state.store.triage_case(case.id, &decision, caller.id, event, mail, Utc::now()).await?;
    state.mail_wake.notify_one();
    state.live.agenda_changed(session.id);
    Ok(HttpResponse::Ok().json(CaseView::of(&case, true, 0, Utc::now().date_naive())))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QueueQuery {
    specialty: Option<String>,
}

/// `GET /api/triage?specialty=`: bookings waiting for triage, oldest first, each with its
/// session and how long it has waited. Coordinators see every session's; a chair the
/// sessions they chair. Audited.
/// One entry of the triage queue (written with `json!`; this describes it): the case,
/// identified, its session, and how long it has waited.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct TriageItem {
    case: CaseView,
    session: SessionView,
    waiting_since: chrono::DateTime<Utc>,
    waiting_minutes: i64,
}

#[utoipa::path(
    get, path = "/api/triage", operation_id = "triage_queue", tag = "triage",
    params(QueueQuery),
    responses((status = 200, description = "OK", body = [TriageItem])),
)]
pub async fn queue(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser,
    query: web::Query<QueueQuery>,
) -> Result<HttpResponse, ApiError> {
    require_role(&caller, &[Role::Coordinator, Role::Consultant])?;
    let specialty = query.specialty.as_deref().map(Specialty::parse).transpose()?;
    let now = Utc::now();
    let mut items = Vec::new();
    let mut shown = Vec::new();
    for case in state.store.triage_queue(specialty.as_ref()).await? {
        let session = session_or_404(&state, case.session_id).await?;
        if caller.role != Role::Coordinator && caller.id != session.plan.chair_id {
            continue;
        }
        let since = case.submitted_at.unwrap_or(case.booked_at);
        items.push(json!({
            "case": CaseView::of(&case, true, 0, now.date_naive()),
            "session": SessionView::from(&session),
            "waiting_since": since,
            "waiting_minutes": (now - since).num_minutes(),
        }));
        shown.push(case);
    }
    audit_case_reads(&state, &req, &caller, "triage_queue", &shown).await?;
    Ok(HttpResponse::Ok().json(items))
}

/// `GET /api/specialties/{slug}/triage`: the proforma fields the specialty requires and
/// its standard plans (any signed-in user: the booking page shows the fields).
#[utoipa::path(
    get, path = "/api/specialties/{slug}/triage", operation_id = "triage_rules", tag = "triage",
    responses((status = 200, description = "OK", body = crate::store::SpecialtyRules)),
)]
pub async fn rules(
    state: web::Data<AppState>, AuthUser(_caller): AuthUser, slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let slug = Specialty::parse(&slug)?;
    match state.store.specialty_rules(&slug).await {
        Err(StoreError::NotFound(_)) => Err(ApiError::not_found("not_found", "no such specialty")),
        other => Ok(HttpResponse::Ok().json(other?)),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RulesRequest {
    proforma_required: Vec<String>,
    standard_plans: Vec<StandardPlan>,
}

/// `PUT /api/specialties/{slug}/triage {proforma_required, standard_plans}` (coordinator).
#[utoipa::path(
    put, path = "/api/specialties/{slug}/triage", operation_id = "triage_set_rules", tag = "triage",
    request_body = RulesRequest,
    responses((status = 200, description = "OK", body = crate::store::SpecialtyRules)),
)]
pub async fn set_rules(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser,
    slug: web::Path<String>, ApiJson(body): ApiJson<RulesRequest>,
) -> Result<HttpResponse, ApiError> {
    require_role(&caller, &[Role::Coordinator])?;
    let slug = Specialty::parse(&slug)?;
    let required = body
        .proforma_required
        .iter()
        .enumerate()
        .map(|(i, f)| {
            ProformaField::parse(f).map_err(|e| e.for_field(format!("proforma_required[{i}]")))
        })
        .collect::<Result<Vec<_>, ParseError>>()?;
    let rules = SpecialtyRules {
        proforma_required: required,
        standard_plans: StandardPlan::parse_list(body.standard_plans)
            .map_err(|e| ParseError { field: format!("standard_{}", e.field).into(), ..e })?,
    };
    let event =
        state.audit_event(&req, &caller, "specialty_triage_set", "specialty").record(slug.as_str());
    match state.store.set_specialty_rules(&slug, &rules, event).await {
        Err(StoreError::NotFound(_)) => Err(ApiError::not_found("not_found", "no such specialty")),
        other => other.map(|_| HttpResponse::Ok().json(&rules)).map_err(Into::into),
    }
}
