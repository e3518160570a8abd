//! Account management for coordinators: `POST /api/users`, `GET /api/users`, the
//! lifecycle (`POST /api/users/{id}/deactivate`, `…/reactivate`, `…/reset-password`,
//! shared with the command line); and the names-only directory `GET /api/people` (no
//! emails) consultants choose mentees from.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::password::one_time_password;
use crate::auth::require_role;
use crate::domain::account::{check_change, AccountChange};
use crate::domain::{
    bounded_text, EmailAddress, NewAuditEvent, NewUser, ParseError, Password, PersonName, Role,
    Specialty, User, UserId,
};
use crate::error::ApiError;
use crate::routes::support::{ApiJson, AuthUser};
use crate::state::AppState;
use crate::store::{NewPassword, StoreError};

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "email": "sam.trainee@example.nhs.net", "name": "Sam Trainee", "role": "trainee",
    "specialties": ["spinal"], "organisation": "Example NHS Trust",
    "password": "a long enough demo password"
}))]
pub struct CreateUserRequest {
    email: String,
    name: String,
    role: String,
    #[serde(default)]
    specialties: Vec<String>,
    /// Where the person works (optional; up to 120 characters).
    #[serde(default)]
    organisation: Option<String>,
    password: String,
}

/// A create-user request with every field parsed.
pub struct ValidUser {
    pub email: EmailAddress,
    pub name: PersonName,
    pub role: Role,
    pub specialties: Vec<Specialty>,
    pub organisation: Option<String>,
    pub password: Password,
}

impl TryFrom<CreateUserRequest> for ValidUser {
    type Error = ParseError;

    fn try_from(r: CreateUserRequest) -> Result<Self, ParseError> {
        let role: Role = r.role.parse()?;
        let specialties = r
            .specialties
            .iter()
            .map(|s| Specialty::parse(s).map_err(|e| e.for_field("specialties")))
            .collect::<Result<Vec<_>, _>>()?;
        if matches!(role, Role::Practitioner | Role::Consultant) && specialties.is_empty() {
            return Err(ParseError::new(
                "specialty_required",
                "specialties",
                "practitioners and consultants belong to at least one specialty",
            ));
        }
        let organisation = match r.organisation.as_deref().map(str::trim) {
            Some(o) if !o.is_empty() => Some(bounded_text(o, "organisation", 120, false)?),
            _ => None,
        };
        Ok(Self {
            email: EmailAddress::parse(&r.email)?,
            name: PersonName::parse(&r.name)?,
            role,
            specialties,
            organisation,
            password: Password::parse(&r.password)?,
        })
    }
}

/// Hashes the password and stores the account with its `user_created` audit event
/// (shared by the API, the CLI and the demo; `actor` is `None` outside the API).
pub async fn create_account(
    state: &AppState, valid: ValidUser, actor: Option<UserId>, addr: Option<String>,
) -> Result<User, ApiError> {
    let password_hash = state.passwords.hash(&valid.password).await?;
    let id = UserId::new();
    let mut audit = NewAuditEvent::new("user_created", "user").record(id).from_addr(addr);
    if let Some(actor) = actor {
        audit = audit.actor(actor);
    }
    let user = NewUser {
        id,
        email: valid.email,
        name: valid.name,
        role: valid.role,
        specialties: valid.specialties,
        organisation: valid.organisation,
        password_hash,
    };
    Ok(state.store.create_user(user, audit).await?)
}

/// `POST /api/users` (coordinator): `201` with the account.
#[utoipa::path(
    post, path = "/api/users", operation_id = "users_create", tag = "users",
    request_body = CreateUserRequest,
    responses((status = 201, description = "the account", body = User)),
)]
pub async fn create(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser,
    ApiJson(body): ApiJson<CreateUserRequest>,
) -> Result<HttpResponse, ApiError> {
    require_role(&caller, &[Role::Coordinator])?;
    let valid = ValidUser::try_from(body)?;
    let addr = state.client_addr(&req);
    let user = create_account(&state, valid, Some(caller.id), addr).await?;
    Ok(HttpResponse::Created().json(user))
}

/// `GET /api/users` (coordinator).
#[utoipa::path(
    get, path = "/api/users", operation_id = "users_list", tag = "users",
    responses((status = 200, description = "every account", body = [User])),
)]
pub async fn list(
    state: web::Data<AppState>, AuthUser(caller): AuthUser,
) -> Result<HttpResponse, ApiError> {
    require_role(&caller, &[Role::Coordinator])?;
    Ok(HttpResponse::Ok().json(state.store.list_users().await?))
}

/// Deactivates, reactivates or resets the password of account `target` as `actor`
/// (`None`: the command line), after `domain::account`'s rules; audited. Deactivation
/// ends the account's sign-in families in the same transaction and closes its live
/// connections (and media) on this instance at once; rooms elsewhere find it on their
/// housekeeping tick. Access tokens need nothing: every request reads the account. A
/// reset ends the sign-ins too and returns the one-time password (stored only hashed;
/// the person must change it at their next sign-in).
pub async fn change_account(
    state: &AppState, actor: Option<&User>, target: UserId, change: AccountChange,
    addr: Option<String>,
) -> Result<(User, Option<Password>), ApiError> {
    let user = state
        .store
        .user(target)
        .await?
        .ok_or_else(|| ApiError::not_found("not_found", "no such account"))?;
    check_change(actor, &user, change).map_err(StoreError::from)?;
    let mut audit = NewAuditEvent::new(change.audit_action(), "user").from_addr(addr);
    if let Some(actor) = actor {
        audit = audit.actor(actor.id);
    }
    let now = Utc::now();
    match change {
        AccountChange::Deactivate | AccountChange::Reactivate => {
            let active = change == AccountChange::Reactivate;
            let user = state.store.set_user_active(user.id, active, now, audit).await?;
            if !active {
                state.live.account_deactivated(user.id);
            }
            Ok((user, None))
        }
        AccountChange::ResetPassword => {
            let once = one_time_password()?;
            let hash = state.passwords.hash(&once).await?;
            let password = NewPassword { hash, must_change: true, next_family: None };
            state.store.set_password(user.id, password, now, audit).await?;
            let user = state.store.user(user.id).await?.ok_or(StoreError::NotFound("user"))?;
            Ok((user, Some(once)))
        }
    }
}

/// `POST /api/users/{id}/{deactivate|reactivate|reset-password}` (coordinator).
async fn lifecycle(
    req: HttpRequest, state: web::Data<AppState>, caller: User, id: UserId, change: AccountChange,
) -> Result<HttpResponse, ApiError> {
    require_role(&caller, &[Role::Coordinator])?;
    let addr = state.client_addr(&req);
    let (user, once) = change_account(&state, Some(&caller), id, change, addr).await?;
    Ok(HttpResponse::Ok().json(match once {
        Some(once) => json!({ "user": user, "one_time_password": once.expose() }),
        None => json!(user),
    }))
}

/// `POST /api/users/{id}/deactivate` (coordinator): `200` the account, now inactive.
#[utoipa::path(
    post, path = "/api/users/{id}/deactivate", operation_id = "users_deactivate", tag = "users",
    responses((status = 200, description = "The account", body = User)),
)]
pub async fn deactivate(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser, id: web::Path<UserId>,
) -> Result<HttpResponse, ApiError> {
    lifecycle(req, state, caller, *id, AccountChange::Deactivate).await
}

/// `POST /api/users/{id}/reactivate` (coordinator): `200` the account, active again.
#[utoipa::path(
    post, path = "/api/users/{id}/reactivate", operation_id = "users_reactivate", tag = "users",
    responses((status = 200, description = "The account", body = User)),
)]
pub async fn reactivate(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser, id: web::Path<UserId>,
) -> Result<HttpResponse, ApiError> {
    lifecycle(req, state, caller, *id, AccountChange::Reactivate).await
}

/// `POST /api/users/{id}/reset-password` (coordinator): `200 {user, one_time_password}`.
#[utoipa::path(
    post, path = "/api/users/{id}/reset-password", operation_id = "users_reset_password", tag = "users",
    responses((status = 200, description = "OK", body = PasswordReset)),
)]
pub async fn reset_password(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser, id: web::Path<UserId>,
) -> Result<HttpResponse, ApiError> {
    lifecycle(req, state, caller, *id, AccountChange::ResetPassword).await
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeopleQuery {
    role: Option<String>,
}

/// One entry of the directory: a name, never an email.
#[derive(Serialize, utoipa::ToSchema)]
struct Person<'a> {
    #[schema(value_type = uuid::Uuid)]
    id: UserId,
    #[schema(value_type = String)]
    name: &'a str,
    role: Role,
    /// Specialty slugs.
    #[schema(value_type = Vec<String>)]
    specialties: &'a [Specialty],
}

/// What `POST /api/users/{id}/reset-password` answers (written with `json!`; this
/// describes it): the account and the one-time password to hand over.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct PasswordReset {
    user: User,
    one_time_password: String,
}

/// `GET /api/people[?role=]`: active accounts by name, names only. Coordinators see
/// everyone; consultants the people who share a specialty with them, and every trainee
/// (trainees may have no specialty yet, and any consultant may teach one); others `403`.
/// `422 invalid_role` for an unknown role.
#[utoipa::path(
    get, path = "/api/people", operation_id = "users_people", tag = "users",
    params(PeopleQuery),
    responses((status = 200, description = "OK", body = [Person])),
)]
pub async fn people(
    state: web::Data<AppState>, AuthUser(caller): AuthUser, query: web::Query<PeopleQuery>,
) -> Result<HttpResponse, ApiError> {
    require_role(&caller, &[Role::Coordinator, Role::Consultant])?;
    let role: Option<Role> = query.role.as_deref().map(str::parse).transpose()?;
    let mut users: Vec<User> = state
        .store
        .list_users()
        .await?
        .into_iter()
        .filter(|u| u.active && role.is_none_or(|r| u.role == r))
        .filter(|u| {
            caller.role == Role::Coordinator
                || u.role == Role::Trainee
                || u.specialties.iter().any(|s| caller.has_specialty(s))
        })
        .collect();
    users.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()).then(a.id.cmp(&b.id)));
    let people: Vec<Person> = users
        .iter()
        .map(|u| Person {
            id: u.id,
            name: u.name.as_str(),
            role: u.role,
            specialties: &u.specialties,
        })
        .collect();
    Ok(HttpResponse::Ok().json(people))
}
