//! A session's invitations (`/api/sessions/{id}/invitations`): the chair or a
//! coordinator invites learners, trainees and guests of another specialty, lists them and
//! withdraws them. A published session's invitee gets the calendar invitation at once
//! (and its cancellation on withdrawal). Who may be invited is `domain::invitation`.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::auth::access::may_manage_invitations;
use crate::domain::invitation::{check_invitation, Invitation, InvitationKind};
use crate::domain::{ParseError, Role, SessionState, User, UserId};
use crate::error::ApiError;
use crate::mail::templates;
use crate::routes::support::{organizer, session_or_404, ApiJson, AuthUser};
use crate::state::AppState;
use crate::store::{self, StoreError};

#[derive(Deserialize, utoipa::ToSchema)]
pub struct InviteRequest {
    user_id: Uuid,
    kind: String,
}

/// An invitation as listed: who, as what, since when (no email address).
#[derive(Serialize, utoipa::ToSchema)]
struct InvitationView<'a> {
    #[schema(value_type = uuid::Uuid)]
    user_id: UserId,
    name: &'a str,
    role: Role,
    organisation: Option<&'a str>,
    kind: InvitationKind,
    invited_at: DateTime<Utc>,
}

impl<'a> InvitationView<'a> {
    fn of(user: &'a User, kind: InvitationKind, invited_at: DateTime<Utc>) -> Self {
        InvitationView {
            user_id: user.id,
            name: user.name.as_str(),
            role: user.role,
            organisation: user.organisation.as_deref(),
            kind,
            invited_at,
        }
    }
}

fn unknown_user() -> ApiError {
    ParseError::new("unknown_user", "user_id", "names no active account").into()
}

/// `POST /api/sessions/{id}/invitations {user_id, kind}` (the chair or a coordinator):
/// `201` with the invitation. `422 invalid_kind`, `422 unknown_user`,
/// `422 invalid_invitee`, `422 not_a_guest`, `409 not_a_teaching_session`,
/// `409 already_invited`, `409 invalid_state` (closed or cancelled).
#[utoipa::path(
    post, path = "/api/sessions/{id}/invitations", operation_id = "invitations_invite", tag = "invitations",
    request_body = InviteRequest,
    responses((status = 201, description = "The invitation", body = InvitationView)),
)]
pub async fn invite(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser, id: web::Path<Uuid>,
    ApiJson(body): ApiJson<InviteRequest>,
) -> Result<HttpResponse, ApiError> {
    may_manage_invitations(&caller, &session_or_404(&state, *id).await?)?;
    let kind: InvitationKind = body.kind.parse()?;
    let invitee = state.store.user(UserId(body.user_id)).await?.ok_or_else(unknown_user)?;
    let organizer = organizer(&state, &caller);
    let invitation = store::until_unchanged(|| async {
        let session = state.store.session(*id).await?.ok_or(StoreError::NotFound("session"))?;
        check_invitation(&session, &invitee, kind)?;
        let invitation = Invitation {
            session_id: session.id,
            user_id: invitee.id,
            kind,
            invited_by: caller.id,
            invited_at: Utc::now(),
        };
        // Those holding the published agenda's invitation in their calendars: now them too.
        let mail = match session.state {
            SessionState::Published => {
                vec![templates::invited(&session, &organizer, invitee.email.clone())]
            }
            _ => Vec::new(),
        };
        let event = state
            .audit_event(&req, &caller, "invitation_sent", "session")
            .details(json!({ "user_id": invitee.id, "kind": kind }));
        state.store.invite(&invitation, session.state, event, mail).await?;
        Ok(invitation)
    })
    .await?;
    state.mail_wake.notify_one();
    state.live.agenda_changed(invitation.session_id);
    let view = InvitationView::of(&invitee, kind, invitation.invited_at);
    Ok(HttpResponse::Created().json(view))
}

/// `GET /api/sessions/{id}/invitations` (the chair or a coordinator): the active
/// invitations, oldest first.
#[utoipa::path(
    get, path = "/api/sessions/{id}/invitations", operation_id = "invitations_list", tag = "invitations",
    responses((status = 200, description = "The session's invitations", body = [InvitationView])),
)]
pub async fn list(
    state: web::Data<AppState>, AuthUser(caller): AuthUser, id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let session = session_or_404(&state, *id).await?;
    may_manage_invitations(&caller, &session)?;
    let invitations = state.store.session_invitations(session.id).await?;
    let users = state.store.list_users().await?;
    let views: Vec<InvitationView> = invitations
        .iter()
        .filter_map(|i| {
            let user = users.iter().find(|u| u.id == i.user_id)?;
            Some(InvitationView::of(user, i.kind, i.invited_at))
        })
        .collect();
    Ok(HttpResponse::Ok().json(views))
}

/// `DELETE /api/sessions/{id}/invitations/{user_id}` (the chair or a coordinator):
/// `204`; a published session's invitee gets the calendar cancellation, and is shown out
/// of a meeting in progress. `404` without an active invitation; `409 invalid_state` once
/// the session is closed or cancelled.
#[utoipa::path(
    delete, path = "/api/sessions/{id}/invitations/{user_id}", operation_id = "invitations_withdraw", tag = "invitations",
    responses((status = 204, description = "withdrawn")),
)]
pub async fn withdraw(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (id, user_id) = path.into_inner();
    may_manage_invitations(&caller, &session_or_404(&state, id).await?)?;
    let no_invitation = || ApiError::not_found("not_found", "no such invitation");
    let invitee = state.store.user(UserId(user_id)).await?.ok_or_else(no_invitation)?;
    let organizer = organizer(&state, &caller);
    store::until_unchanged(|| async {
        let session = state.store.session(id).await?.ok_or(StoreError::NotFound("session"))?;
        let mail = match session.state {
            SessionState::Published => {
                vec![templates::invitation_withdrawn(&session, &organizer, invitee.email.clone())]
            }
            _ => Vec::new(),
        };
        let event = state
            .audit_event(&req, &caller, "invitation_withdrawn", "session")
            .details(json!({ "user_id": invitee.id }));
        let now = Utc::now();
        state
            .store
            .withdraw_invitation(session.id, invitee.id, session.state, now, event, mail)
            .await
    })
    .await
    .map_err(|e| match e {
        StoreError::NotFound("invitation") => no_invitation(),
        other => other.into(),
    })?;
    state.mail_wake.notify_one();
    state.live.agenda_changed(id);
    Ok(HttpResponse::NoContent().finish())
}

/// One of the caller's own invitations: which session, as what, since when.
#[derive(Serialize, utoipa::ToSchema)]
struct OwnInvitation {
    session_id: Uuid,
    kind: InvitationKind,
    invited_at: DateTime<Utc>,
}

/// `GET /api/me/invitations` (signed in): the caller's active invitations, oldest first,
/// so the schedule can offer them the meetings they were invited to (no patient data).
#[utoipa::path(
    get, path = "/api/me/invitations", operation_id = "invitations_mine", tag = "invitations",
    responses((status = 200, description = "The caller's invitations", body = [OwnInvitation])),
)]
pub async fn mine(
    state: web::Data<AppState>, AuthUser(caller): AuthUser,
) -> Result<HttpResponse, ApiError> {
    let invitations = state.store.user_invitations(caller.id).await?;
    let views: Vec<OwnInvitation> = invitations
        .into_iter()
        .map(|i| OwnInvitation { session_id: i.session_id, kind: i.kind, invited_at: i.invited_at })
        .collect();
    Ok(HttpResponse::Ok().json(views))
}
