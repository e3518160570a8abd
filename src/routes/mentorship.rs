//! Mentorship (DESIGN §3 "Mentorship", §4 flow 7): contracts (coordinators), logs
//! (consultants log their own; mentees see the logs they are in; coordinators see all),
//! the delivered-vs-contracted summary, the backlog of flagged cases with those cases, and
//! flagging a case for mentorship; covers of a contract (issue 21). Handlers parse into
//! `domain::mentorship` types, check access, call the store; the arithmetic is
//! `domain::mentorship::summarise`.

use std::collections::hash_map::{Entry, HashMap};

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::auth::access::{
    case_access, may_flag_for_mentorship, may_see_caseload_case, AgendaAccess,
};
use crate::auth::require_role;
use crate::domain::caseload::CaseloadView;
use crate::domain::mentorship::{
    clinic_date, log_specialty, summarise, BacklogSource, Contract, ContractDraft, ContractRequest,
    ContractSummary, Cover, CoverDraft, CoverRequest, DateRange, LogDraft, LogRequest,
    MentorshipFlag, MentorshipLog,
};
use crate::domain::{Case, CaseView, ParseError, Role, Session, Specialty, User, UserId};
use crate::error::ApiError;
use crate::routes::support::{
    audit_case_reads, audit_caseload_reads, known_specialty, mentored_arms, session_or_404,
    visible_case, ApiJson, AuthUser,
};
use crate::state::AppState;

/// `POST /api/mentorship/contracts` (coordinator): `201` with the contract.
/// `422 unknown_consultant`, `not_a_consultant`, `unknown_specialty`,
/// `consultant_not_in_specialty`; `409 contract_overlaps`.
#[utoipa::path(
    post, path = "/api/mentorship/contracts", operation_id = "mentorship_create_contract", tag = "mentorship",
    request_body = ContractRequest,
    responses((status = 201, description = "OK", body = Contract)),
)]
pub async fn create_contract(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser,
    ApiJson(body): ApiJson<ContractRequest>,
) -> Result<HttpResponse, ApiError> {
    require_role(&caller, &[Role::Coordinator])?;
    let draft = ContractDraft::try_from(body)?;
    let consultant = consultant(&state, draft.consultant_id, "consultant_id").await?;
    if !state.store.list_specialties().await?.contains(&draft.specialty) {
        return Err(ParseError::new("unknown_specialty", "specialty", "no such specialty").into());
    }
    works_in(&consultant, &draft.specialty, "specialty")?;
    let contract = Contract::new(draft, caller.id, Utc::now());
    let event = state
        .audit_event(&req, &caller, "mentorship_contract_created", "mentorship_contract")
        .details(json!({ "consultant": contract.consultant_id, "specialty": contract.specialty }));
    state.store.create_mentorship_contract(&contract, event).await?;
    Ok(HttpResponse::Created().json(&contract))
}

/// `422 consultant_not_in_specialty` (naming `field`) unless the consultant works in `arm`.
fn works_in(consultant: &User, arm: &Specialty, field: &'static str) -> Result<(), ApiError> {
    if consultant.has_specialty(arm) {
        return Ok(());
    }
    let message = format!("the consultant does not work in {arm}");
    Err(ParseError::new("consultant_not_in_specialty", field, message).into())
}

/// The active consultant an id names; `422 unknown_consultant` or `not_a_consultant`.
async fn consultant(state: &AppState, id: UserId, field: &'static str) -> Result<User, ApiError> {
    let user = state
        .store
        .user(id)
        .await?
        .filter(|u| u.active)
        .ok_or_else(|| ParseError::new("unknown_consultant", field, "no such account"))?;
    if user.role != Role::Consultant {
        return Err(ParseError::new(
            "not_a_consultant",
            field,
            "names an account that is not a consultant",
        )
        .into());
    }
    Ok(user)
}

/// `POST /api/mentorship/contracts/{id}/cover {consultant_id, from, to}` (coordinator): a
/// consultant of the arm covers the contract on those days (both inclusive); `201` with the
/// cover. `404` for an unknown contract; `422 unknown_consultant`, `not_a_consultant`,
/// `consultant_not_in_specialty`, `invalid_cover` (its own consultant),
/// `cover_outside_contract`, `invalid_date_range`; `409 cover_overlaps`.
#[utoipa::path(
    post, path = "/api/mentorship/contracts/{id}/cover", operation_id = "mentorship_create_cover", tag = "mentorship",
    request_body = CoverRequest,
    responses((status = 201, description = "OK", body = Cover)),
)]
pub async fn create_cover(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser, id: web::Path<Uuid>,
    ApiJson(body): ApiJson<CoverRequest>,
) -> Result<HttpResponse, ApiError> {
    require_role(&caller, &[Role::Coordinator])?;
    let contract = state
        .store
        .mentorship_contract(*id)
        .await?
        .ok_or_else(|| ApiError::not_found("not_found", "no such contract"))?;
    let draft = CoverDraft::try_from(body)?;
    let cover_by = consultant(&state, draft.consultant_id, "consultant_id").await?;
    works_in(&cover_by, &contract.specialty, "consultant_id")?;
    draft.check_against(&contract)?;
    let cover = Cover::new(&contract, draft, caller.id, Utc::now());
    let event = state
        .audit_event(&req, &caller, "mentorship_cover_created", "mentorship_cover")
        .details(json!({ "contract": contract.id, "consultant": cover.consultant_id }));
    state.store.create_mentorship_cover(&cover, event).await?;
    Ok(HttpResponse::Created().json(&cover))
}

/// `GET /api/mentorship/contracts`: coordinators see every contract, consultants their own.
#[utoipa::path(
    get, path = "/api/mentorship/contracts", operation_id = "mentorship_list_contracts", tag = "mentorship",
    responses((status = 200, description = "OK", body = [Contract])),
)]
pub async fn list_contracts(
    state: web::Data<AppState>, AuthUser(caller): AuthUser,
) -> Result<HttpResponse, ApiError> {
    let contracts = state.store.mentorship_contracts(own_scope(&caller)?).await?;
    Ok(HttpResponse::Ok().json(contracts))
}

/// Coordinators see every contract (`None`); consultants their own; others none (403).
fn own_scope(caller: &User) -> Result<Option<UserId>, ApiError> {
    require_role(caller, &[Role::Coordinator, Role::Consultant])?;
    Ok((caller.role == Role::Consultant).then_some(caller.id))
}

/// A stored log with the cases it discussed, as the viewer may see them.
#[derive(Serialize, utoipa::ToSchema)]
struct LogView<'a> {
    #[serde(flatten)]
    log: &'a MentorshipLog,
    cases: Vec<CaseView>,
}

/// What `POST /api/mentorship/logs` answers (the stored log with one key added by hand;
/// this describes it): the log and the cases it took off the backlog.
#[derive(Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
struct LogCreated {
    #[serde(flatten)]
    log: MentorshipLog,
    unflagged_case_ids: Vec<Uuid>,
}

/// What the mentorship-flag routes answer (`flag_view`, or for a case never flagged only
/// `{case_id, flagged: false}`; written with `json!`, this describes it).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct FlagView {
    case_id: Uuid,
    /// Whether the case waits on the backlog now.
    flagged: bool,
    #[schema(required = false)]
    specialty: String,
    #[schema(required = false)]
    flagged_by: Uuid,
    #[schema(required = false)]
    flagged_at: chrono::DateTime<Utc>,
    #[schema(required = false)]
    flagged_on: chrono::NaiveDate,
    #[schema(required = false)]
    cleared_on: Option<chrono::NaiveDate>,
}

/// `POST /api/mentorship/logs`: a consultant logs their own mentorship (`403` for anyone
/// else, coordinators included). Every mentee must be a practitioner or trainee
/// (`422 unknown_mentee`, `invalid_mentee`); every case one the consultant may see
/// (`422 unknown_case`). The cases' backlog flags clear in the same transaction. `201`
/// with the log and `unflagged_case_ids`.
#[utoipa::path(
    post, path = "/api/mentorship/logs", operation_id = "mentorship_create_log", tag = "mentorship",
    request_body = LogRequest,
    responses((status = 201, description = "OK", body = LogCreated)),
)]
pub async fn create_log(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser,
    ApiJson(body): ApiJson<LogRequest>,
) -> Result<HttpResponse, ApiError> {
    let now = Utc::now();
    let draft = LogDraft::parse(body, clinic_date(now))?;
    if caller.role != Role::Consultant || draft.consultant_id != caller.id {
        return Err(ApiError::forbidden("consultants log their own mentorship"));
    }
    for (i, id) in draft.mentee_ids.iter().enumerate() {
        let field = format!("mentee_ids[{i}]");
        let mentee =
            state.store.user(*id).await?.filter(|u| u.active).ok_or_else(|| {
                ParseError::new("unknown_mentee", field.clone(), "no such account")
            })?;
        if !matches!(mentee.role, Role::Practitioner | Role::Trainee) {
            return Err(ParseError::new(
                "invalid_mentee",
                field,
                "mentees are practitioners or trainees",
            )
            .into());
        }
    }
    let mut cases = Vec::with_capacity(draft.case_ids.len());
    for (i, id) in draft.case_ids.iter().enumerate() {
        let unknown = || {
            ApiError::from(ParseError::new(
                "unknown_case",
                format!("case_ids[{i}]"),
                "no such case",
            ))
        };
        match visible_case(&state, &caller, *id).await {
            Ok((case, AgendaAccess::Full)) => cases.push(case),
            Ok(_) | Err(ApiError::NotFound { .. }) => return Err(unknown()),
            Err(e) => return Err(e),
        }
    }
    let specialty =
        log_specialty(&draft, &state.store.mentorship_contracts(Some(caller.id)).await?)?;
    if !caller.has_specialty(&specialty) {
        return Err(ParseError::new(
            "invalid_specialty",
            "specialty",
            format!("you are not a consultant in {specialty}"),
        )
        .into());
    }
    let log = MentorshipLog::new(draft, specialty, now);
    let mut events = vec![state
        .audit_event(&req, &caller, "mentorship_logged", "mentorship_log")
        .record(log.id)
        .details(json!({ "cases": log.case_ids, "mentees": log.mentee_ids.len() }))];
    events.extend(cases.iter().map(|c| {
        state
            .audit_event(&req, &caller, "case_mentorship_discussed", "case")
            .record(c.id)
            .details(json!({ "log": log.id, "session": c.session_id }))
    }));
    let unflagged = state.store.create_mentorship_log(&log, events, now).await?;
    let mut body = serde_json::to_value(&log).map_err(ApiError::internal)?;
    body["unflagged_case_ids"] = json!(unflagged);
    Ok(HttpResponse::Created().json(body))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogsQuery {
    from: Option<String>,
    to: Option<String>,
    consultant_id: Option<Uuid>,
}

/// `GET /api/mentorship/logs?from=&to=&consultant_id=` (dates inclusive, each optional):
/// coordinators see every log, everyone else the logs they gave or were mentored in.
/// Each log carries its cases, identified only for viewers who may see the case in full
/// and de-identified otherwise; every case shown is an audited read.
#[utoipa::path(
    get, path = "/api/mentorship/logs", operation_id = "mentorship_list_logs", tag = "mentorship",
    params(LogsQuery),
    responses((status = 200, description = "OK", body = [LogView])),
)]
pub async fn list_logs(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser,
    query: web::Query<LogsQuery>,
) -> Result<HttpResponse, ApiError> {
    let range = DateRange::parse_open(query.from.as_deref(), query.to.as_deref())?;
    let involving = (caller.role != Role::Coordinator).then_some(caller.id);
    let logs: Vec<MentorshipLog> = state
        .store
        .mentorship_logs(range, involving)
        .await?
        .into_iter()
        .filter(|l| query.consultant_id.is_none_or(|c| l.consultant_id.0 == c))
        .collect();
    let today = clinic_date(Utc::now());
    let mut shown: Vec<Case> = Vec::new();
    let mut views = Vec::with_capacity(logs.len());
    for log in &logs {
        let mut cases = Vec::with_capacity(log.case_ids.len());
        for (i, id) in log.case_ids.iter().enumerate() {
            let Some(case) = state.store.case(*id).await? else {
                continue;
            };
            let session = session_or_404(&state, case.session_id).await?;
            let identified = case_access(&caller, &case, &session) == AgendaAccess::Full;
            cases.push(CaseView::of(&case, identified, i + 1, today));
            shown.push(case);
        }
        views.push(LogView { log, cases });
    }
    audit_case_reads(&state, &req, &caller, "mentorship_logs", &shown).await?;
    Ok(HttpResponse::Ok().json(views))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SummaryQuery {
    from: Option<String>,
    to: Option<String>,
}

/// `GET /api/mentorship/summary?from=&to=` (both dates required, inclusive): per contract
/// running in the window, contracted minutes (pro rata by weeks), delivered minutes (with
/// the covered part), shortfall, missed weeks, its covers and the arm's backlog as of `to`
/// (or today, if earlier). Coordinators see every contract, consultants their own.
#[utoipa::path(
    get, path = "/api/mentorship/summary", operation_id = "mentorship_summary", tag = "mentorship",
    params(SummaryQuery),
    responses((status = 200, description = "OK", body = [ContractSummary])),
)]
pub async fn summary(
    state: web::Data<AppState>, AuthUser(caller): AuthUser, query: web::Query<SummaryQuery>,
) -> Result<HttpResponse, ApiError> {
    let scope = own_scope(&caller)?;
    let range = DateRange::parse(query.from.as_deref(), query.to.as_deref())?;
    let today = clinic_date(Utc::now());
    let contracts = state.store.mentorship_contracts(scope).await?;
    let covers = state.store.mentorship_covers().await?;
    // Every log in the window: a covering consultant's count to the covered contract.
    let logs = state.store.mentorship_logs(range, None).await?;
    let backlog = state.store.mentorship_backlog(std::cmp::min(range.to, today)).await?;
    Ok(HttpResponse::Ok().json(summarise(&contracts, &covers, &logs, &backlog, &range, today)))
}

/// `POST /api/cases/{id}/mentorship-flag`: the referrer, a consultant of the specialty or
/// a coordinator puts the case on its arm's backlog (`201`; `200` when it already was).
#[utoipa::path(
    post, path = "/api/cases/{id}/mentorship-flag", operation_id = "mentorship_flag", tag = "mentorship",
    responses(
        (status = 201, description = "flagged", body = FlagView),
        (status = 200, description = "already flagged", body = FlagView),
    ),
)]
pub async fn flag(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser, id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let case = flaggable_case(&state, &caller, *id).await?;
    let event = state.audit_event(&req, &caller, "case_flagged_for_mentorship", "case");
    let (flag, created) =
        state.store.flag_for_mentorship(case.id, caller.id, event, Utc::now()).await?;
    let mut res = if created { HttpResponse::Created() } else { HttpResponse::Ok() };
    Ok(res.json(flag_view(&flag)))
}

/// `DELETE /api/cases/{id}/mentorship-flag`: takes the case off the backlog without a
/// log; `404 not_flagged` when it was not on it.
#[utoipa::path(
    delete, path = "/api/cases/{id}/mentorship-flag", operation_id = "mentorship_unflag", tag = "mentorship",
    responses((status = 200, description = "OK", body = FlagView)),
)]
pub async fn unflag(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser, id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let case = flaggable_case(&state, &caller, *id).await?;
    let event = state.audit_event(&req, &caller, "case_unflagged_for_mentorship", "case");
    let flag = state
        .store
        .unflag_for_mentorship(case.id, caller.id, event, Utc::now())
        .await?
        .ok_or_else(|| {
            ApiError::not_found("not_flagged", "the case is not flagged for mentorship")
        })?;
    Ok(HttpResponse::Ok().json(flag_view(&flag)))
}

/// `GET /api/cases/{id}/mentorship-flag`: the open flag (`"flagged": true`), or
/// `{"case_id", "flagged": false}` when the case is not on the backlog (an ordinary
/// answer, not an error, so case pages do not log a failed request).
#[utoipa::path(
    get, path = "/api/cases/{id}/mentorship-flag", operation_id = "mentorship_show_flag", tag = "mentorship",
    responses((status = 200, description = "OK", body = FlagView)),
)]
pub async fn show_flag(
    state: web::Data<AppState>, AuthUser(caller): AuthUser, id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let (case, _) = visible_case(&state, &caller, *id).await?;
    let body = match state.store.mentorship_flag(case.id).await? {
        Some(flag) => flag_view(&flag),
        None => json!({ "case_id": case.id, "flagged": false }),
    };
    Ok(HttpResponse::Ok().json(body))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BacklogQuery {
    specialty: Option<String>,
}

/// One open entry of `GET /api/mentorship/backlog`, with its case as the viewer may see it
/// (`source` says which kind of case it is).
#[derive(Serialize, utoipa::ToSchema)]
struct BacklogItem<'a> {
    case_id: Uuid,
    source: BacklogSource,
    #[schema(value_type = String)]
    specialty: &'a Specialty,
    #[schema(value_type = Uuid)]
    flagged_by: UserId,
    flagged_at: chrono::DateTime<Utc>,
    flagged_on: chrono::NaiveDate,
    /// The case as the caller may see it: a caseload case (`source: caseload`) or an MDT
    /// case (`CaseView`).
    case: serde_json::Value,
}

/// `GET /api/mentorship/backlog[?specialty=]`: the entries open today, oldest first: MDT
/// cases flagged for mentorship (`"source": "mdt"`, identified only for viewers who may see
/// the case in full) and caseload cases waiting for advice (`"source": "caseload"`, shown
/// to the consultants mentoring the arm and coordinators). Coordinators see every arm,
/// consultants the arms of their specialties, anyone else `403`; `422 unknown_specialty`
/// for an arm that does not exist. Every case shown is an audited read.
#[utoipa::path(
    get, path = "/api/mentorship/backlog", operation_id = "mentorship_backlog", tag = "mentorship",
    params(BacklogQuery),
    responses((status = 200, description = "OK", body = [BacklogItem])),
)]
pub async fn backlog(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser,
    query: web::Query<BacklogQuery>,
) -> Result<HttpResponse, ApiError> {
    require_role(&caller, &[Role::Coordinator, Role::Consultant])?;
    let arm = match query.specialty.as_deref() {
        None => None,
        Some(raw) => Some(known_specialty(&state, raw).await?),
    };
    let today = clinic_date(Utc::now());
    let flags: Vec<MentorshipFlag> = state
        .store
        .mentorship_backlog(today)
        .await?
        .into_iter()
        .filter(|f| arm.as_ref().is_none_or(|a| &f.specialty == a))
        .filter(|f| caller.role == Role::Coordinator || caller.has_specialty(&f.specialty))
        .collect();
    let mentored = mentored_arms(&state, &caller).await?;
    // One read per case (the backlog is short); sessions are shared by many cases.
    let mut sessions: HashMap<Uuid, Session> = HashMap::new();
    let mut shown: Vec<Case> = Vec::with_capacity(flags.len());
    let mut shown_caseload: Vec<Uuid> = Vec::new();
    let mut items = Vec::with_capacity(flags.len());
    for flag in &flags {
        let case = match flag.source {
            BacklogSource::Caseload => {
                let Some((case, advice)) = state.store.caseload_case(flag.case_id).await? else {
                    continue;
                };
                let mentors = mentored.contains(&case.specialty);
                if !may_see_caseload_case(&caller, &case, mentors) {
                    continue;
                }
                shown_caseload.push(case.id);
                serde_json::to_value(CaseloadView::of(&case, &advice))
                    .map_err(ApiError::internal)?
            }
            BacklogSource::Mdt => {
                let Some(case) = state.store.case(flag.case_id).await? else {
                    continue;
                };
                let session = match sessions.entry(case.session_id) {
                    Entry::Occupied(known) => known.into_mut(),
                    Entry::Vacant(slot) => {
                        slot.insert(session_or_404(&state, case.session_id).await?)
                    }
                };
                let access = case_access(&caller, &case, session);
                if access == AgendaAccess::None {
                    continue;
                }
                let view =
                    CaseView::of(&case, access == AgendaAccess::Full, items.len() + 1, today);
                shown.push(case);
                serde_json::to_value(view).map_err(ApiError::internal)?
            }
        };
        items.push(BacklogItem {
            case_id: flag.case_id,
            source: flag.source,
            specialty: &flag.specialty,
            flagged_by: flag.flagged_by,
            flagged_at: flag.flagged_at,
            flagged_on: flag.flagged_on,
            case,
        });
    }
    audit_case_reads(&state, &req, &caller, "mentorship_backlog", &shown).await?;
    audit_caseload_reads(&state, &req, &caller, "mentorship_backlog", &shown_caseload).await?;
    Ok(HttpResponse::Ok().json(items))
}

/// The case, if the caller may see it (else 404) and may flag it (else 403).
async fn flaggable_case(state: &AppState, caller: &User, id: Uuid) -> Result<Case, ApiError> {
    let (case, _) = visible_case(state, caller, id).await?;
    let session = session_or_404(state, case.session_id).await?;
    may_flag_for_mentorship(caller, &case, &session)?;
    Ok(case)
}

fn flag_view(flag: &MentorshipFlag) -> serde_json::Value {
    json!({
        "case_id": flag.case_id,
        "specialty": flag.specialty,
        "flagged_by": flag.flagged_by,
        "flagged_at": flag.flagged_at,
        "flagged_on": flag.flagged_on,
        "flagged": flag.cleared_on.is_none(),
        "cleared_on": flag.cleared_on,
    })
}
