//! Entry to the live meeting: single-use tickets (`POST /api/sessions/{id}/live-ticket`),
//! the WebSocket upgrade (`GET /api/sessions/{id}/live?ticket=…`) with its `Origin`
//! check, and the session's attendance record. The channel itself is `crate::live`.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::auth::access::{agenda_access, AgendaAccess};
use crate::auth::tokens::{hash_refresh_token, new_opaque_token};
use crate::domain::{Role, Session, SessionState, User};
use crate::error::ApiError;
use crate::live::connection::{self, Joining};
use crate::routes::support::{invitation_of, session_or_404, AuthUser};
use crate::state::AppState;

/// How much of the meeting `user` may see: the agenda rules of REST (invitations
/// included), where the chair always sees it in full. A guest's connection is then kept
/// in the lobby by the room until the chair lets them in.
async fn meeting_access(
    state: &AppState, user: &User, session: &Session,
) -> Result<AgendaAccess, ApiError> {
    if user.id == session.plan.chair_id {
        return Ok(AgendaAccess::Full);
    }
    let booked_into = user.role == Role::Practitioner
        && state.store.session_cases(session.id).await?.iter().any(|c| c.referrer_id == user.id);
    let invited = invitation_of(state, session.id, user.id).await?;
    Ok(agenda_access(user, session, booked_into, invited))
}

fn not_a_participant() -> ApiError {
    ApiError::Forbidden {
        code: "not_a_participant",
        message: "you are not a participant of this session".into(),
    }
}

/// `POST /api/sessions/{id}/live-ticket`: a single-use ticket, valid for
/// `live.ticket_seconds`, to open this session's live channel as the caller.
#[utoipa::path(
    post, path = "/api/sessions/{id}/live-ticket", operation_id = "live_ticket", tag = "live",
    responses((status = 201, description = "OK", body = LiveTicket)),
)]
pub async fn ticket(
    state: web::Data<AppState>, AuthUser(caller): AuthUser, id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let session = session_or_404(&state, *id).await?;
    if meeting_access(&state, &caller, &session).await? == AgendaAccess::None {
        return Err(not_a_participant());
    }
    if session.state == SessionState::Cancelled {
        return Err(ApiError::Conflict {
            code: "invalid_state",
            message: "the session is cancelled".into(),
        });
    }
    let (ticket, hash) = new_opaque_token();
    let seconds = state.live.settings().ticket_seconds;
    let expires_at = Utc::now() + chrono::Duration::seconds(i64::try_from(seconds).unwrap_or(30));
    state.store.create_live_ticket(&hash, session.id, caller.id, expires_at).await?;
    Ok(HttpResponse::Created().json(json!({
        "ticket": ticket,
        "expires_in": seconds,
        "ice_servers": state.live.media().ice_servers(caller.id),
    })))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConnectQuery {
    ticket: Option<String>,
    /// Reconnecting: the last `seq` the client has; it is sent only what it missed.
    last_seq: Option<u64>,
}

/// `GET /api/sessions/{id}/live?ticket=…[&last_seq=N]`: upgrades to the live channel.
#[utoipa::path(
    get, path = "/api/sessions/{id}/live", operation_id = "live_connect", tag = "live",
    security(()),
    params(ConnectQuery),
    responses((status = 101, description = "switches to the live channel (WebSocket)")),
)]
pub async fn connect(
    req: HttpRequest, body: web::Payload, state: web::Data<AppState>, id: web::Path<Uuid>,
    query: web::Query<ConnectQuery>,
) -> Result<HttpResponse, ApiError> {
    if !origin_allowed(&req, &state) {
        return Err(ApiError::Forbidden {
            code: "origin_not_allowed",
            message: "this page's origin may not open the live channel".into(),
        });
    }
    // A stopping server takes no new live connections: the client tries again shortly,
    // and finds another instance or this one back.
    if state.live.is_stopping() {
        return Err(ApiError::Unavailable { retry_after_secs: 1 });
    }
    let invalid_ticket = || ApiError::Unauthorized {
        code: "invalid_ticket",
        message: "the ticket is unknown, used, expired or for another session".into(),
    };
    let ticket = query.ticket.as_deref().ok_or_else(invalid_ticket)?;
    let user_id = state
        .store
        .use_live_ticket(&hash_refresh_token(ticket), *id, Utc::now())
        .await?
        .ok_or_else(invalid_ticket)?;
    let user = state.store.user(user_id).await?.filter(|u| u.active).ok_or_else(invalid_ticket)?;
    let session = session_or_404(&state, *id).await?;
    let view = meeting_access(&state, &user, &session).await?;
    if view == AgendaAccess::None {
        return Err(not_a_participant());
    }
    let handshake = actix_http::ws::handshake(req.head()).map_err(|_| ApiError::BadRequest {
        code: "websocket_expected",
        message: "this address speaks WebSocket only".into(),
    })?;
    let joining = Joining {
        hub: state.live.clone(),
        store: state.store.clone(),
        session_id: session.id,
        user,
        view,
        client_addr: state.client_addr(&req),
        last_seq: query.last_seq,
    };
    Ok(connection::open(joining, handshake, body).await)
}

/// The browser's `Origin` must be one of `http.public_origins`, or, when that list is
/// empty, this server's own origin as the request addressed it.
fn origin_allowed(req: &HttpRequest, state: &AppState) -> bool {
    let Some(origin) = req.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return false;
    };
    let http = &state.settings.http;
    if !http.public_origins.is_empty() {
        return http.public_origins.iter().any(|allowed| allowed.trim_end_matches('/') == origin);
    }
    let Some(host) = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let scheme = if http.trust_proxy_headers {
        req.connection_info().scheme().to_owned()
    } else {
        "http".to_owned()
    };
    origin == format!("{scheme}://{host}")
}

/// `GET /api/sessions/{id}/attendance` (coordinator or the chair): who joined and left.
#[utoipa::path(
    get, path = "/api/sessions/{id}/attendance", operation_id = "live_attendance", tag = "live",
    responses((status = 200, description = "OK", body = [crate::domain::live::Attendance])),
)]
pub async fn attendance(
    state: web::Data<AppState>, AuthUser(caller): AuthUser, id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let session = session_or_404(&state, *id).await?;
    if caller.role != Role::Coordinator && caller.id != session.plan.chair_id {
        return Err(ApiError::forbidden("only coordinators and the chair see attendance"));
    }
    let rows = state.store.session_attendance(session.id).await?;
    Ok(HttpResponse::Ok().json(rows))
}

/// What `POST /api/sessions/{id}/live-ticket` answers (written with `json!`; this
/// describes it): the one-time ticket for the WebSocket, its lifetime in seconds, and the
/// ICE servers the browser may use.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct LiveTicket {
    ticket: String,
    expires_in: u64,
    ice_servers: Vec<crate::media::IceServer>,
}
