//! The supervision record (issue 21): coordinators name a supervisor for a practitioner;
//! the supervisor records workplace-based assessments and the supervisee their
//! reflections; the monthly count against the target; the supervisee's printable
//! portfolio (`GET /api/me/portfolio`, HTML with no patient identifiers: no case appears
//! in it at all). The rules are `domain::supervision`'s; limits come from the
//! `[supervision]` settings.

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{NaiveDate, Utc};
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::require_role;
use crate::domain::mentorship::{clinic_date, cpd_hours, DateRange, MentorshipLog};
use crate::domain::supervision::{
    check_people, month_name, monthly_summary, parse_month, parse_reflection, Assessment,
    AssessmentDraft, AssessmentRequest, Assignment, AssignmentDraft, AssignmentRequest,
};
use crate::domain::{ParseError, Role, User, UserId};
use crate::error::ApiError;
use crate::mail::templates::escape;
use crate::routes::support::{mentee_record, ApiJson, AuthUser};
use crate::state::AppState;

/// The account an id names, for `field`; `422 unknown_user` when there is none.
async fn account(state: &AppState, id: UserId, field: &'static str) -> Result<User, ApiError> {
    state
        .store
        .user(id)
        .await?
        .ok_or_else(|| ParseError::new("unknown_user", field, "no such account").into())
}

/// `POST /api/supervision/assignments {supervisee_id, supervisor_id}` (coordinator): names
/// the practitioner's supervisor, ending their previous assignment. `201` with the
/// assignment (`200` when that supervisor was already named). `422 unknown_user`,
/// `invalid_supervisee` (not an active practitioner), `invalid_supervisor` (not an active
/// consultant or practitioner, or the supervisee); `409 supervisor_full` when the
/// supervisor already has `[supervision] max_supervisees` (default 4).
#[utoipa::path(
    post, path = "/api/supervision/assignments", operation_id = "supervision_assign", tag = "supervision",
    request_body = AssignmentRequest,
    responses(
        (status = 201, description = "the assignment", body = Assignment),
        (status = 200, description = "the same assignment already stood", body = Assignment),
    ),
)]
pub async fn assign(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser,
    ApiJson(body): ApiJson<AssignmentRequest>,
) -> Result<HttpResponse, ApiError> {
    require_role(&caller, &[Role::Coordinator])?;
    let draft = AssignmentDraft::try_from(body)?;
    let supervisee = account(&state, draft.supervisee_id, "supervisee_id").await?;
    let supervisor = account(&state, draft.supervisor_id, "supervisor_id").await?;
    check_people(&supervisee, &supervisor)?;
    let assignment = Assignment::new(draft, caller.id, Utc::now());
    let event = state
        .audit_event(&req, &caller, "supervisor_assigned", "supervision_assignment")
        .details(serde_json::json!({ "supervisee": draft.supervisee_id, "supervisor": draft.supervisor_id }));
    let max = state.settings.supervision.max_supervisees;
    let (assignment, created) = state.store.assign_supervisor(&assignment, max, event).await?;
    let mut res = if created { HttpResponse::Created() } else { HttpResponse::Ok() };
    Ok(res.json(assignment))
}

/// `GET /api/supervision/assignments`: coordinators see every assignment, anyone else those
/// where they are the supervisor or the supervisee; current and ended, oldest first.
#[utoipa::path(
    get, path = "/api/supervision/assignments", operation_id = "supervision_assignments", tag = "supervision",
    responses((status = 200, description = "OK", body = [Assignment])),
)]
pub async fn assignments(
    state: web::Data<AppState>, AuthUser(caller): AuthUser,
) -> Result<HttpResponse, ApiError> {
    let involving = (caller.role != Role::Coordinator).then_some(caller.id);
    Ok(HttpResponse::Ok().json(state.store.supervision_assignments(involving).await?))
}

/// The supervisee's current supervisor, if any.
async fn current_supervisor(
    state: &AppState, supervisee: UserId,
) -> Result<Option<Assignment>, ApiError> {
    let all = state.store.supervision_assignments(Some(supervisee)).await?;
    Ok(all.into_iter().find(|a| a.supervisee_id == supervisee && a.ended_at.is_none()))
}

/// `POST /api/supervision/assessments {supervisee_id, kind, occurred_on, outcome,
/// reflection?}`: the supervisee's current supervisor records a workplace-based assessment
/// (`403 not_supervisor` for anyone else). `201` with it. `422 invalid_kind`
/// (`case_based_discussion`, `direct_observation`, `joint_clinic`, `record_review`,
/// `multi_source_feedback`), `invalid_outcome` (`meets_expectations`,
/// `development_needed`, `below_expectations`), `invalid_date`, `date_in_future`,
/// `patient_identifier` (an NHS number in the reflection).
#[utoipa::path(
    post, path = "/api/supervision/assessments", operation_id = "supervision_assess", tag = "supervision",
    request_body = AssessmentRequest,
    responses((status = 201, description = "OK", body = crate::domain::supervision::Assessment)),
)]
pub async fn assess(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser,
    ApiJson(body): ApiJson<AssessmentRequest>,
) -> Result<HttpResponse, ApiError> {
    let now = Utc::now();
    let draft = AssessmentDraft::parse(body, clinic_date(now))?;
    let supervises = current_supervisor(&state, draft.supervisee_id)
        .await?
        .is_some_and(|a| a.supervisor_id == caller.id);
    if !supervises {
        return Err(ApiError::Forbidden {
            code: "not_supervisor",
            message: "assessments are recorded by the supervisee's supervisor".into(),
        });
    }
    let assessment = Assessment::new(draft, caller.id, now);
    let event = state
        .audit_event(&req, &caller, "assessment_recorded", "supervision_assessment")
        .details(serde_json::json!({ "supervisee": assessment.supervisee_id }));
    state.store.record_assessment(&assessment, event).await?;
    Ok(HttpResponse::Created().json(assessment))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ReflectionRequest {
    #[serde(default)]
    reflection: String,
}

/// `PUT /api/supervision/assessments/{id}/reflection {reflection}`: the supervisee writes
/// (or rewrites) their reflective note on one of their assessments (`404` for anyone
/// else). `422 required`, `too_long`, `patient_identifier`.
#[utoipa::path(
    put, path = "/api/supervision/assessments/{id}/reflection", operation_id = "supervision_reflect", tag = "supervision",
    request_body = ReflectionRequest,
    responses((status = 200, description = "OK", body = crate::domain::supervision::Assessment)),
)]
pub async fn reflect(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser, id: web::Path<Uuid>,
    ApiJson(body): ApiJson<ReflectionRequest>,
) -> Result<HttpResponse, ApiError> {
    let mut assessment = state
        .store
        .assessment(*id)
        .await?
        .filter(|a| a.supervisee_id == caller.id)
        .ok_or_else(|| ApiError::not_found("not_found", "no such assessment"))?;
    let reflection = parse_reflection(&body.reflection)?;
    let event = state.audit_event(&req, &caller, "reflection_written", "supervision_assessment");
    state.store.set_reflection(assessment.id, &reflection, event).await?;
    assessment.reflection = Some(reflection);
    Ok(HttpResponse::Ok().json(assessment))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AssessmentsQuery {
    supervisee_id: Option<Uuid>,
    from: Option<String>,
    to: Option<String>,
}

/// `GET /api/supervision/assessments?supervisee_id=&from=&to=`: a supervisee sees their
/// own, a supervisor those of the people they supervise (or supervised), a coordinator
/// all; oldest first.
#[utoipa::path(
    get, path = "/api/supervision/assessments", operation_id = "supervision_list_assessments", tag = "supervision",
    params(AssessmentsQuery),
    responses((status = 200, description = "OK", body = [crate::domain::supervision::Assessment])),
)]
pub async fn list_assessments(
    state: web::Data<AppState>, AuthUser(caller): AuthUser, query: web::Query<AssessmentsQuery>,
) -> Result<HttpResponse, ApiError> {
    let days = DateRange::parse_open(query.from.as_deref(), query.to.as_deref())?;
    let supervisee = query.supervisee_id.map(UserId);
    let mut found = state.store.assessments(supervisee, days).await?;
    if caller.role != Role::Coordinator {
        let mine = state.store.supervision_assignments(Some(caller.id)).await?;
        let supervised: Vec<UserId> =
            mine.iter().filter(|a| a.supervisor_id == caller.id).map(|a| a.supervisee_id).collect();
        found.retain(|a| a.supervisee_id == caller.id || supervised.contains(&a.supervisee_id));
    }
    Ok(HttpResponse::Ok().json(found))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SummaryQuery {
    month: Option<String>,
}

/// `GET /api/supervision/summary?month=YYYY-MM`: per supervisee with a supervisor during
/// the month, `{supervisee_id, supervisor_id, assessments, target, below_target}` (the
/// target is `[supervision] monthly_assessment_target`, default 2). Coordinators see every
/// supervisee, a supervisor their supervisees, a supervisee themselves. `422
/// invalid_month`.
#[utoipa::path(
    get, path = "/api/supervision/summary", operation_id = "supervision_summary", tag = "supervision",
    params(SummaryQuery),
    responses((status = 200, description = "OK", body = [crate::domain::supervision::SuperviseeMonth])),
)]
pub async fn summary(
    state: web::Data<AppState>, AuthUser(caller): AuthUser, query: web::Query<SummaryQuery>,
) -> Result<HttpResponse, ApiError> {
    let month = parse_month(query.month.as_deref())?;
    let involving = (caller.role != Role::Coordinator).then_some(caller.id);
    let assignments = state.store.supervision_assignments(involving).await?;
    let assessments = state.store.assessments(None, month).await?;
    let target = state.settings.supervision.monthly_assessment_target;
    Ok(HttpResponse::Ok().json(monthly_summary(&assignments, &assessments, &month, target)))
}

/// `GET /api/me/portfolio?from=&to=`: the caller's supervision portfolio as a printable
/// page (`text/html`, styled by `/certificate.css`, no script): their supervisor, each
/// workplace-based assessment with its outcome and reflection, the month-by-month count
/// against the target, and the mentoring received as a mentee (date, consultant, arm,
/// kind, minutes). No case appears in it, so no patient identifier can: reflections
/// carrying an NHS number are refused when written, and mentorship logs' cases and
/// learning points are left out.
#[utoipa::path(
    get, path = "/api/me/portfolio", operation_id = "supervision_portfolio", tag = "supervision",
    params(AssessmentsQuery),
    responses(
        (status = 200, description = "a printable portfolio", content_type = "text/html", body = String),
    ),
)]
pub async fn portfolio(
    state: web::Data<AppState>, AuthUser(caller): AuthUser, query: web::Query<AssessmentsQuery>,
) -> Result<HttpResponse, ApiError> {
    let days = DateRange::parse_open(query.from.as_deref(), query.to.as_deref())?;
    let (logs, assessments) = mentee_record(&state, caller.id, days).await?;
    let names: HashMap<UserId, String> = state
        .store
        .list_users()
        .await?
        .into_iter()
        .map(|u| (u.id, u.name.as_str().to_string()))
        .collect();
    let supervisor = current_supervisor(&state, caller.id)
        .await?
        .and_then(|a| names.get(&a.supervisor_id).cloned());
    let target = state.settings.supervision.monthly_assessment_target;
    let html = portfolio_html(
        &caller,
        supervisor.as_deref(),
        &assessments,
        &logs,
        &names,
        target,
        clinic_date(Utc::now()),
    );
    Ok(HttpResponse::Ok().content_type("text/html; charset=utf-8").body(html))
}

fn long_date(d: NaiveDate) -> String {
    d.format("%-d %B %Y").to_string()
}

fn words(wire: &str) -> String {
    wire.replace('_', " ")
}

/// Renders the portfolio; every piece of text is escaped.
fn portfolio_html(
    user: &User, supervisor: Option<&str>, assessments: &[Assessment], logs: &[MentorshipLog],
    names: &HashMap<UserId, String>, target: u32, issued: NaiveDate,
) -> String {
    let name_of = |id: &UserId| escape(names.get(id).map_or("(unknown)", String::as_str));
    let mut rows = String::new();
    for a in assessments {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"reflection\">{}</td></tr>\n",
            escape(&long_date(a.occurred_on)),
            escape(&words(a.kind.as_str())),
            escape(&words(a.outcome.as_str())),
            name_of(&a.supervisor_id),
            escape(a.reflection.as_deref().unwrap_or("(no reflection yet)")),
        ));
    }
    if assessments.is_empty() {
        rows.push_str("<tr><td colspan=\"5\">No assessments recorded.</td></tr>\n");
    }
    // Month by month, from the first assessment's month to the issue month.
    let mut months = String::new();
    let mut counts: Vec<(String, usize)> = Vec::new();
    for a in assessments {
        let month = month_name(&DateRange { from: a.occurred_on, to: a.occurred_on });
        match counts.iter_mut().find(|(m, _)| *m == month) {
            Some((_, n)) => *n += 1,
            None => counts.push((month, 1)),
        }
    }
    for (month, n) in &counts {
        let below = u32::try_from(*n).unwrap_or(u32::MAX) < target;
        months.push_str(&format!(
            "<tr><td>{}</td><td class=\"num\">{n}</td><td>{}</td></tr>\n",
            escape(month),
            if below { "below target" } else { "on target" },
        ));
    }
    let mut mentoring = String::new();
    for l in logs {
        mentoring.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>\n",
            escape(&long_date(l.occurred_on)),
            name_of(&l.consultant_id),
            escape(l.specialty.as_str()),
            escape(&words(l.kind.as_str())),
            l.duration_minutes,
        ));
    }
    if logs.is_empty() {
        mentoring.push_str("<tr><td colspan=\"5\">No mentoring recorded.</td></tr>\n");
    }
    let minutes: u64 = logs.iter().map(|l| u64::from(l.duration_minutes)).sum();
    format!(
        "<!DOCTYPE html>\n<html lang=\"en-GB\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<title>Supervision portfolio: {name}</title>\n\
<link rel=\"stylesheet\" href=\"/certificate.css\">\n</head>\n<body class=\"certificate portfolio\">\n<main>\n\
<h1>Supervision portfolio</h1>\n\
<p class=\"lead\"><strong>{name}</strong> ({role}). Named supervisor: {supervisor}. \
Target: {target} workplace-based assessment{target_plural} a month.</p>\n\
<h2>Workplace-based assessments</h2>\n\
<table class=\"assessments\">\n<thead><tr><th scope=\"col\">Date</th><th scope=\"col\">Kind</th>\
<th scope=\"col\">Outcome</th><th scope=\"col\">Assessor</th><th scope=\"col\">Reflection</th></tr></thead>\n\
<tbody>\n{rows}</tbody>\n</table>\n\
<h2>Assessments by month</h2>\n\
<table class=\"months\">\n<thead><tr><th scope=\"col\">Month</th><th scope=\"col\" class=\"num\">Assessments</th>\
<th scope=\"col\">Against target</th></tr></thead>\n<tbody>\n{months}</tbody>\n</table>\n\
<h2>Mentoring received</h2>\n\
<table class=\"mentoring\">\n<thead><tr><th scope=\"col\">Date</th><th scope=\"col\">Consultant</th>\
<th scope=\"col\">Arm</th><th scope=\"col\">Kind</th><th scope=\"col\" class=\"num\">Minutes</th></tr></thead>\n\
<tbody>\n{mentoring}</tbody>\n\
<tfoot><tr><th scope=\"row\" colspan=\"4\">Total mentoring</th>\
<td class=\"num\">{minutes} minutes ({hours} hours)</td></tr></tfoot>\n</table>\n\
<p class=\"issued\">Issued on {issued} by MDT Coordinator from the supervision and mentorship \
records. It names no patients.</p>\n</main>\n</body>\n</html>\n",
        name = escape(user.name.as_str()),
        role = escape(user.role.as_str()),
        supervisor = supervisor.map_or_else(|| "none named".to_string(), escape),
        target_plural = if target == 1 { "" } else { "s" },
        hours = cpd_hours(minutes),
        issued = escape(&long_date(issued)),
    )
}
