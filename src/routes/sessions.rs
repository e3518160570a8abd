//! The schedule: specialties, sessions and weekly series (`/api/specialties`,
//! `/api/sessions`, `/api/series`), and a session's agenda shown by role.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::auth::access::{agenda_access, AgendaAccess};
use crate::auth::require_role;
use crate::domain::schedule::{SessionPlan, SessionView};
use crate::domain::time_window::parse_calendar_date;
use crate::domain::{
    CaseView, NewSeries, ParseError, Role, SessionState, Specialty, TimeWindow, UserId,
};
use crate::error::ApiError;
use crate::mail::templates;
use crate::routes::support::{
    audit, audit_case_reads, invitation_of, invitees, organizer, session_or_404, ApiJson, AuthUser,
};
use crate::state::AppState;
use crate::store;

/// The fields a session and a series share.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct PlanRequest {
    specialty: String,
    title: Option<String>,
    duration_minutes: u32,
    case_capacity: u32,
    #[serde(default = "default_minutes_per_case")]
    minutes_per_case: u32,
    booking_cutoff_hours: u32,
    chair_id: Uuid,
    #[serde(default)]
    teaching: bool,
}

fn default_minutes_per_case() -> u32 {
    10
}

/// Parses the plan and checks the chair is an active consultant of the specialty.
async fn parse_plan(state: &AppState, r: PlanRequest) -> Result<SessionPlan, ApiError> {
    let specialty = Specialty::parse(&r.specialty)?;
    let title = match r.title.as_deref().map(str::trim) {
        Some(t) if !t.is_empty() => crate::domain::bounded_text(t, "title", 120, false)?,
        _ => format!("{} MDT", capitalised(specialty.as_str())),
    };
    let plan = SessionPlan {
        specialty,
        title,
        duration_minutes: r.duration_minutes,
        case_capacity: r.case_capacity,
        minutes_per_case: r.minutes_per_case,
        booking_cutoff_hours: r.booking_cutoff_hours,
        chair_id: UserId(r.chair_id),
        teaching: r.teaching,
    };
    plan.check()?;
    let chair_ok = state.store.user(plan.chair_id).await?.is_some_and(|c| {
        c.active && c.role == Role::Consultant && c.has_specialty(&plan.specialty)
    });
    if !chair_ok {
        return Err(ParseError::new(
            "invalid_chair",
            "chair_id",
            "must be an active consultant of the specialty",
        )
        .into());
    }
    Ok(plan)
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateSession {
    starts_at: String,
    #[serde(flatten)]
    plan: PlanRequest,
}

/// `POST /api/sessions` (coordinator).
#[utoipa::path(
    post, path = "/api/sessions", operation_id = "sessions_create", tag = "sessions",
    request_body = CreateSession,
    responses((status = 201, description = "OK", body = SessionView)),
)]
pub async fn create(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser,
    ApiJson(body): ApiJson<CreateSession>,
) -> Result<HttpResponse, ApiError> {
    require_role(&caller, &[Role::Coordinator])?;
    let starts_at = future_start(&body.starts_at)?;
    let plan = parse_plan(&state, body.plan).await?;
    let session = state.store.create_session(plan, starts_at).await?;
    audit(&state, &req, &caller, "session_created", session.id).await?;
    Ok(HttpResponse::Created().json(SessionView::from(&session)))
}

/// Every account's email address, for telling referrers what happened to their cases.
async fn emails_by_user(
    state: &AppState,
) -> Result<std::collections::HashMap<UserId, crate::domain::EmailAddress>, ApiError> {
    Ok(state.store.list_users().await?.into_iter().map(|u| (u.id, u.email)).collect())
}

/// A session's start: an RFC 3339 time in the future (`422 invalid_time`,
/// `422 starts_in_past`).
fn future_start(text: &str) -> Result<DateTime<Utc>, ParseError> {
    let starts_at = DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| ParseError::new("invalid_time", "starts_at", "must be an RFC 3339 time"))?;
    if starts_at <= Utc::now() {
        return Err(ParseError::new("starts_in_past", "starts_at", "must be in the future"));
    }
    Ok(starts_at)
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct Reschedule {
    starts_at: String,
}

/// `POST /api/sessions/{id}/reschedule {starts_at}` (coordinator): moves a session not yet
/// held to a new start (e.g. earlier, when the meeting is to be held sooner than planned);
/// the referrers of its cases are told. `409 invalid_state` once it is live, closed or
/// cancelled.
#[utoipa::path(
    post, path = "/api/sessions/{id}/reschedule", operation_id = "sessions_reschedule", tag = "sessions",
    request_body = Reschedule,
    responses((status = 200, description = "OK", body = SessionView)),
)]
pub async fn reschedule(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser, id: web::Path<Uuid>,
    ApiJson(body): ApiJson<Reschedule>,
) -> Result<HttpResponse, ApiError> {
    require_role(&caller, &[Role::Coordinator])?;
    let starts_at = future_start(&body.starts_at)?;
    let before = session_or_404(&state, *id).await?;
    let emails = emails_by_user(&state).await?;
    // A published session's invitees hold it in their calendars: they get the update.
    let invited = match before.state {
        SessionState::Published => {
            let cases = state.store.session_cases(before.id).await?;
            invitees(&state, &before, &cases).await?
        }
        _ => Vec::new(),
    };
    let organizer = organizer(&state, &caller);
    let session = store::until_unchanged(|| async {
        let cases = state.store.session_bookings(before.id).await?;
        let mut moved = before.clone();
        moved.starts_at = starts_at;
        let referrers = cases.iter().filter_map(|case| {
            let referrer = emails.get(&case.referrer_id)?;
            Some(templates::case_moved(
                referrer,
                case.id,
                &before,
                &moved,
                "The session your case is booked into has been moved to a new time.",
            ))
        });
        let calendars = invited.iter().map(|to| {
            templates::session_moved(&moved, before.starts_at, &organizer, vec![to.clone()])
        });
        let mail = referrers.chain(calendars).collect();
        let ids: Vec<Uuid> = cases.iter().map(|c| c.id).collect();
        let event = state
            .audit_event(&req, &caller, "session_rescheduled", "session")
            .details(json!({ "starts_at": starts_at }));
        state.store.reschedule_session(before.id, starts_at, &ids, event, mail).await
    })
    .await?;
    state.mail_wake.notify_one();
    state.live.agenda_changed(session.id);
    Ok(HttpResponse::Ok().json(SessionView::from(&session)))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateSeries {
    first_date: String,
    local_time: String,
    weeks: u32,
    #[serde(flatten)]
    plan: PlanRequest,
}

/// `POST /api/series` (coordinator): weekly sessions at a clinic-local time.
#[utoipa::path(
    post, path = "/api/series", operation_id = "sessions_create_series", tag = "sessions",
    request_body = CreateSeries,
    responses((status = 201, description = "OK", body = SeriesCreated)),
)]
pub async fn create_series(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser,
    ApiJson(body): ApiJson<CreateSeries>,
) -> Result<HttpResponse, ApiError> {
    require_role(&caller, &[Role::Coordinator])?;
    let first_date = parse_calendar_date(&body.first_date, "first_date")?;
    if first_date < Utc::now().date_naive() {
        return Err(
            ParseError::new("starts_in_past", "first_date", "must not be in the past").into()
        );
    }
    let local_time = NaiveTime::parse_from_str(body.local_time.trim(), "%H:%M")
        .map_err(|_| ParseError::new("invalid_time", "local_time", "must be a time as HH:MM"))?;
    if !(1..=104).contains(&body.weeks) {
        return Err(ParseError::new("invalid_value", "weeks", "must be between 1 and 104").into());
    }
    let plan = parse_plan(&state, body.plan).await?;
    let (series, sessions) = state
        .store
        .create_series(NewSeries { plan, first_date, local_time, weeks: body.weeks })
        .await?;
    audit(&state, &req, &caller, "series_created", series.id).await?;
    Ok(HttpResponse::Created().json(json!({
        "id": series.id,
        "sessions": sessions.iter().map(SessionView::from).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    specialty: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// `GET /api/sessions?specialty=&from=&to=`: the schedule (no patient data).
#[utoipa::path(
    get, path = "/api/sessions", operation_id = "sessions_list", tag = "sessions",
    params(ListQuery),
    responses((status = 200, description = "OK", body = [SessionView])),
)]
pub async fn list(
    state: web::Data<AppState>, AuthUser(_caller): AuthUser, query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let specialty = query.specialty.as_deref().map(Specialty::parse).transpose()?;
    let window = TimeWindow::parse(query.from.as_deref(), query.to.as_deref())?;
    let sessions = state.store.list_sessions(specialty.as_ref(), window).await?;
    Ok(HttpResponse::Ok().json(sessions.iter().map(SessionView::from).collect::<Vec<_>>()))
}

/// `GET /api/sessions/{id}`: the session and, where the caller may see it, its agenda
/// (identified or de-identified). Showing cases is audited.
/// A session with its agenda as far as the caller may see it (`null`: not at all).
#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionWithAgenda {
    session: SessionView,
    /// The cases in agenda order, identified or de-identified as the caller may see them.
    agenda: Option<Vec<CaseView>>,
}

#[utoipa::path(
    get, path = "/api/sessions/{id}", operation_id = "sessions_show", tag = "sessions",
    responses((status = 200, description = "OK", body = SessionWithAgenda)),
)]
pub async fn show(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser, id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let session = session_or_404(&state, *id).await?;
    let cases = state.store.session_cases(session.id).await?;
    let booked_into = cases.iter().any(|c| c.referrer_id == caller.id);
    let invited = invitation_of(&state, session.id, caller.id).await?;
    let access = agenda_access(&caller, &session, booked_into, invited);
    let today = Utc::now().date_naive();
    let agenda: Option<Vec<CaseView>> = match access {
        AgendaAccess::None => None,
        AgendaAccess::DeIdentified | AgendaAccess::Full => Some(
            cases
                .iter()
                .enumerate()
                .map(|(i, c)| CaseView::of(c, access == AgendaAccess::Full, i + 1, today))
                .collect(),
        ),
    };
    if agenda.is_some() {
        audit_case_reads(&state, &req, &caller, "agenda", &cases).await?;
    }
    Ok(HttpResponse::Ok().json(SessionWithAgenda { session: SessionView::from(&session), agenda }))
}

/// `POST /api/sessions/{id}/publish` (coordinator): publishes the agenda and invites the
/// chair, the referrers of its cases and the specialty's consultants (and, for teaching
/// sessions, its trainees) with an iCalendar invitation.
#[utoipa::path(
    post, path = "/api/sessions/{id}/publish", operation_id = "sessions_publish", tag = "sessions",
    responses((status = 200, description = "OK", body = SessionView)),
)]
pub async fn publish(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser, id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    require_role(&caller, &[Role::Coordinator])?;
    let session = session_or_404(&state, *id).await?;
    let cases = state.store.session_cases(session.id).await?;
    let invitees = invitees(&state, &session, &cases).await?;
    let organizer = organizer(&state, &caller);
    // One message per invitee: a refused address delays nobody else, and nobody sees
    // the other invitees' addresses.
    let invitations: Vec<_> = invitees
        .into_iter()
        .map(|to| templates::agenda_published(&session, cases.len(), &organizer, vec![to]))
        .collect();
    let event = state.audit_event(&req, &caller, "session_published", "session");
    let hours = state.settings.live.publish_hours_before;
    let session =
        state.store.publish_session(session.id, event, invitations, Utc::now(), hours).await?;
    state.mail_wake.notify_one();
    Ok(HttpResponse::Ok().json(SessionView::from(&session)))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct Reorder {
    case_ids: Vec<Uuid>,
}

/// `PUT /api/sessions/{id}/agenda {case_ids}`: the chair or a coordinator sets the order,
/// before or during the meeting.
#[utoipa::path(
    put, path = "/api/sessions/{id}/agenda", operation_id = "sessions_reorder", tag = "sessions",
    request_body = Reorder,
    responses((status = 200, description = "OK", body = SessionWithAgenda)),
)]
pub async fn reorder(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser, id: web::Path<Uuid>,
    ApiJson(body): ApiJson<Reorder>,
) -> Result<HttpResponse, ApiError> {
    let session = session_or_404(&state, *id).await?;
    if caller.role != Role::Coordinator && caller.id != session.plan.chair_id {
        return Err(ApiError::forbidden("only the chair or a coordinator may reorder the agenda"));
    }
    use crate::domain::SessionState::{Live, Published, Scheduled};
    if !matches!(session.state, Scheduled | Published | Live) {
        return Err(ApiError::conflict(
            "invalid_state",
            format!("the agenda of a {} session cannot change", session.state.as_str()),
        ));
    }
    let event = state.audit_event(&req, &caller, "agenda_reordered", "session");
    let cases = state.store.reorder_agenda(session.id, &body.case_ids, event).await?;
    state.live.agenda_changed(session.id);
    let today = Utc::now().date_naive();
    let agenda: Vec<CaseView> =
        cases.iter().enumerate().map(|(i, c)| CaseView::of(c, true, i + 1, today)).collect();
    let agenda = Some(agenda);
    Ok(HttpResponse::Ok().json(SessionWithAgenda { session: SessionView::from(&session), agenda }))
}

/// `POST /api/sessions/{id}/cancel` (coordinator): each case moves to the next session of
/// the series with room, or is flagged for rebooking; every referrer is told, and for a
/// published session everyone invited gets a calendar cancellation.
#[utoipa::path(
    post, path = "/api/sessions/{id}/cancel", operation_id = "sessions_cancel", tag = "sessions",
    responses((status = 200, description = "OK", body = SessionCancelled)),
)]
pub async fn cancel(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser, id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    require_role(&caller, &[Role::Coordinator])?;
    let emails = emails_by_user(&state).await?;
    let session = session_or_404(&state, *id).await?;
    let report = store::until_unchanged(|| async {
        let now = Utc::now();
        let plan = state.store.plan_cancellation(session.id, now).await?;
        let mut mail: Vec<_> = plan
            .cases
            .iter()
            .filter_map(|(case, to)| {
                let referrer = emails.get(&case.referrer_id)?;
                Some(match to {
                    Some((next, new_id)) => templates::case_moved(
                        referrer,
                        *new_id,
                        &plan.session,
                        next,
                        "The session your case was booked into has been cancelled.",
                    ),
                    None => templates::rebooking_needed(referrer, case.id, &plan.session),
                })
            })
            .collect();
        // Everyone who holds the invitation gets the cancellation, one message each.
        if plan.session.state == SessionState::Published {
            let cases: Vec<_> = plan.cases.iter().map(|(c, _)| c.clone()).collect();
            let organizer = organizer(&state, &caller);
            for to in invitees(&state, &plan.session, &cases).await? {
                mail.push(templates::session_cancelled(&plan.session, &organizer, vec![to]));
            }
        }
        let event = state.audit_event(&req, &caller, "session_cancelled", "session");
        state.store.cancel_session(&plan, event, mail, now).await
    })
    .await?;
    state.mail_wake.notify_one();
    Ok(HttpResponse::Ok().json(json!({
        "session": SessionView::from(&report.session),
        "moved": report.moved.iter().map(|(old, new)| json!({ "case_id": old, "new_case_id": new.id, "session_id": new.session_id })).collect::<Vec<_>>(),
        "needs_rebooking": report.flagged,
    })))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewSpecialty {
    slug: String,
    name: String,
}

/// `GET /api/specialties`.
#[utoipa::path(
    get, path = "/api/specialties", operation_id = "sessions_specialties", tag = "sessions",
    responses((status = 200, description = "OK", body = [String])),
)]
pub async fn specialties(
    state: web::Data<AppState>, AuthUser(_caller): AuthUser,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.store.list_specialties().await?))
}

/// `POST /api/specialties` (coordinator) `{slug, name}`.
#[utoipa::path(
    post, path = "/api/specialties", operation_id = "sessions_add_specialty", tag = "sessions",
    request_body = NewSpecialty,
    responses((status = 201, description = "OK", body = SpecialtyAdded)),
)]
pub async fn add_specialty(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser,
    ApiJson(body): ApiJson<NewSpecialty>,
) -> Result<HttpResponse, ApiError> {
    require_role(&caller, &[Role::Coordinator])?;
    let slug = Specialty::parse(&body.slug)?;
    let name = crate::domain::bounded_text(&body.name, "name", 80, false)?;
    state.store.add_specialty(&slug, &name).await?;
    audit(&state, &req, &caller, "specialty_added", &slug).await?;
    Ok(HttpResponse::Created().json(json!({ "slug": slug, "name": name })))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct QuorumRequest {
    quorum_others: u32,
}

/// `PUT /api/specialties/{slug}/quorum {quorum_others}` (coordinator): how many
/// consultants or specialists besides the chair make this specialty's meetings quorate.
#[utoipa::path(
    put, path = "/api/specialties/{slug}/quorum", operation_id = "sessions_set_quorum", tag = "sessions",
    request_body = QuorumRequest,
    responses((status = 200, description = "OK", body = QuorumSet)),
)]
pub async fn set_quorum(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser,
    slug: web::Path<String>, ApiJson(body): ApiJson<QuorumRequest>,
) -> Result<HttpResponse, ApiError> {
    require_role(&caller, &[Role::Coordinator])?;
    let slug = Specialty::parse(&slug)?;
    if body.quorum_others > 10 {
        return Err(
            ParseError::new("invalid_value", "quorum_others", "must be between 0 and 10").into()
        );
    }
    let event = state
        .audit_event(&req, &caller, "quorum_set", "specialty")
        .details(json!({ "quorum_others": body.quorum_others }));
    state.store.set_specialty_quorum(&slug, body.quorum_others, event).await.map_err(
        |e| match e {
            crate::store::StoreError::NotFound(_) => {
                ApiError::not_found("not_found", "no such specialty")
            }
            other => other.into(),
        },
    )?;
    state.live.reload_all();
    Ok(HttpResponse::Ok().json(json!({ "slug": slug, "quorum_others": body.quorum_others })))
}

// What some routes answer, written with `json!` in the handlers; these describe it.

/// `POST /api/series`: the series and its sessions.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct SeriesCreated {
    id: Uuid,
    sessions: Vec<SessionView>,
}

/// `POST /api/sessions/{id}/cancel`: the cancelled session, the cases moved on (each with
/// its new case and session) and those left needing rebooking.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct SessionCancelled {
    session: SessionView,
    moved: Vec<CaseMoved>,
    needs_rebooking: Vec<Uuid>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct CaseMoved {
    case_id: Uuid,
    new_case_id: Uuid,
    session_id: Uuid,
}

/// `POST /api/specialties`: the specialty added.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct SpecialtyAdded {
    slug: String,
    name: String,
}

/// `PUT /api/specialties/{slug}/quorum`: the quorum set.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct QuorumSet {
    slug: String,
    quorum_others: u32,
}
