//! Decisions as tracked actions (issue 16): the action list (`GET /api/actions`), a
//! status change, result or reassignment (`PATCH /api/actions/{id}`, which may book the
//! case's re-discussion in the same step), and each specialty's due days
//! (`GET`/`PUT /api/specialties/{slug}/action-due-days`). Trainees get none of it.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::auth::access::{may_handle_action, may_own_action};
use crate::auth::require_role;
use crate::domain::action::{
    sort_for_list, ActionResultRequest, ActionStatus, ActionView, Change, DueDays, DueDaysRequest,
};
use crate::domain::report::local_date;
use crate::domain::{ParseError, Role, Specialty, UserId};
use crate::error::ApiError;
use crate::routes::support::{session_or_404, ApiJson, AuthUser};
use crate::state::AppState;
use crate::store::{ActionQuery, ActionUpdate, StoreError};

const CLINICIANS: [Role; 3] = [Role::Coordinator, Role::Consultant, Role::Practitioner];

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    mine: Option<bool>,
    owner: Option<Uuid>,
    state: Option<String>,
    overdue: Option<bool>,
}

/// `GET /api/actions?mine=true&owner=&state=&overdue=true`: the actions the caller may
/// see (their own; a consultant's specialties'; a coordinator's all), overdue first,
/// then by due date. Each case shown is audited as read (`via: actions`).
#[utoipa::path(
    get, path = "/api/actions", operation_id = "actions_list", tag = "actions",
    params(ListQuery),
    responses((status = 200, description = "OK", body = [ActionView])),
)]
pub async fn list(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    require_role(&caller, &CLINICIANS)?;
    let status = query.state.as_deref().map(|s| ActionStatus::parse(s, "state")).transpose()?;
    let owner = match query.mine {
        Some(true) => Some(caller.id),
        _ => query.owner.map(UserId),
    };
    let specialties = match caller.role {
        Role::Consultant => caller.specialties.iter().map(|s| s.as_str().to_string()).collect(),
        _ => Vec::new(),
    };
    let all = caller.role == Role::Coordinator;
    let q = ActionQuery { owner, status, all, viewer: caller.id, specialties };
    let today = local_date(Utc::now());
    let mut actions = state.store.actions(&q).await?;
    if query.overdue == Some(true) {
        actions.retain(|a| a.is_overdue(today));
    }
    sort_for_list(&mut actions, today);
    let mut cases: Vec<Uuid> = actions.iter().map(|a| a.case_id).collect();
    cases.sort();
    cases.dedup();
    let events = cases
        .iter()
        .map(|id| {
            let event = state.audit_event(&req, &caller, "case_read", "case").record(id);
            event.details(json!({ "via": "actions" }))
        })
        .collect();
    state.store.append_audits(events).await?;
    let views: Vec<ActionView> = actions.iter().map(|a| ActionView::of(a, today)).collect();
    Ok(HttpResponse::Ok().json(views))
}

/// A changed action, with the follow-up case its result booked (if any).
#[derive(Serialize, utoipa::ToSchema)]
struct Updated<'a> {
    #[serde(flatten)]
    action: ActionView<'a>,
    follow_up_case_id: Option<Uuid>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PatchRequest {
    status: Option<String>,
    result: Option<ActionResultRequest>,
    reason: Option<String>,
    owner_id: Option<Uuid>,
    rediscuss_session_id: Option<Uuid>,
}

/// `PATCH /api/actions/{id} {status?, result?, reason?, owner_id?, rediscuss_session_id?}`:
/// moves the action on (`result_received` with `result: {summary, attachment_id?}`,
/// `cancelled` with `reason`), reassigns it, and with a result may book the case into a
/// later session of its specialty for re-discussion, all in one transaction (audited
/// `action_updated` on the case).
#[utoipa::path(
    patch, path = "/api/actions/{id}", operation_id = "actions_update", tag = "actions",
    request_body = PatchRequest,
    responses((status = 200, description = "OK", body = Updated)),
)]
pub async fn update(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser, id: web::Path<Uuid>,
    ApiJson(body): ApiJson<PatchRequest>,
) -> Result<HttpResponse, ApiError> {
    require_role(&caller, &CLINICIANS)?;
    let hidden = || ApiError::not_found("not_found", "no such action");
    let action = state.store.action(*id).await?.ok_or_else(hidden)?;
    let case = state.store.case(action.case_id).await?.ok_or_else(hidden)?;
    let session = session_or_404(&state, case.session_id).await?;
    if !may_handle_action(&caller, action.owner_id, &session) {
        return Err(hidden());
    }
    let change = match body.status.as_deref() {
        Some(status) => Some(Change::parse(status, body.result, body.reason.as_deref())?),
        None if body.result.is_some() || body.reason.is_some() => {
            let why = "a result or reason comes with the status it moves to";
            return Err(ParseError::new("status_required", "status", why).into());
        }
        None => None,
    };
    if change.is_none() && body.owner_id.is_none() {
        let why = "give a status, an owner_id, or both";
        return Err(ParseError::new("nothing_to_change", "status", why).into());
    }
    if body.rediscuss_session_id.is_some() && !matches!(change, Some(Change::Result(_))) {
        let why = "a re-discussion is booked when the result is recorded";
        return Err(ParseError::new("unexpected_rediscuss", "rediscuss_session_id", why).into());
    }
    let owner = match body.owner_id.map(UserId) {
        None => None,
        Some(owner) => {
            let unknown = || ParseError::new("unknown_user", "owner_id", "no such active account");
            let user = state.store.user(owner).await?.filter(|u| u.active).ok_or_else(unknown)?;
            may_own_action(&user, &session)?;
            Some(owner)
        }
    };
    let rediscuss = body.rediscuss_session_id.map(|s| (s, Uuid::new_v4()));
    let update = ActionUpdate { change, owner, rediscuss };
    let event = state.audit_event(&req, &caller, "action_updated", "case");
    let updated = match state.store.update_action(action.id, &update, event, Utc::now()).await {
        Err(StoreError::NotFound("action")) => return Err(hidden()),
        other => other?,
    };
    if let Some(follow_up) = &updated.follow_up_case {
        state.live.agenda_changed(follow_up.session_id);
    }
    let today = local_date(Utc::now());
    Ok(HttpResponse::Ok().json(Updated {
        action: ActionView::of(&updated.action, today),
        follow_up_case_id: updated.follow_up_case.map(|c| c.id),
    }))
}

/// `GET /api/specialties/{slug}/action-due-days`: days from signing to an action's due
/// date, by urgency (any signed-in user).
#[utoipa::path(
    get, path = "/api/specialties/{slug}/action-due-days", operation_id = "actions_due_days", tag = "actions",
    responses((status = 200, description = "OK", body = DueDays)),
)]
pub async fn due_days(
    state: web::Data<AppState>, AuthUser(_caller): AuthUser, slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let slug = Specialty::parse(&slug)?;
    match state.store.action_due_days(&slug).await {
        Err(StoreError::NotFound(_)) => Err(ApiError::not_found("not_found", "no such specialty")),
        other => Ok(HttpResponse::Ok().json(other?)),
    }
}

/// `PUT /api/specialties/{slug}/action-due-days {urgent, routine}` (coordinator): for the
/// actions of outcomes signed from now on (audited `specialty_action_due_days_set`).
#[utoipa::path(
    put, path = "/api/specialties/{slug}/action-due-days", operation_id = "actions_set_due_days", tag = "actions",
    request_body = DueDaysRequest,
    responses((status = 200, description = "OK", body = DueDays)),
)]
pub async fn set_due_days(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser,
    slug: web::Path<String>, ApiJson(body): ApiJson<DueDaysRequest>,
) -> Result<HttpResponse, ApiError> {
    require_role(&caller, &[Role::Coordinator])?;
    let slug = Specialty::parse(&slug)?;
    let days = DueDays::try_from(body)?;
    let event = state
        .audit_event(&req, &caller, "specialty_action_due_days_set", "specialty")
        .record(slug.as_str());
    match state.store.set_action_due_days(&slug, &days, event).await {
        Err(StoreError::NotFound(_)) => Err(ApiError::not_found("not_found", "no such specialty")),
        other => other.map(|_| HttpResponse::Ok().json(days)).map_err(Into::into),
    }
}
