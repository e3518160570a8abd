//! Audit queries and chain verification for coordinators (DESIGN §2, §6, §7): who
//! accessed a patient's records, which records a user accessed, and whether the hash
//! chain is intact. Every query is itself audited (`audit_queried`).
//!
//! The NHS number never travels in a URL (§7: no identifiers in URLs, logs or spans), so
//! a patient's trail is asked for with `POST /api/audit/search {nhs_number, …}`;
//! `GET /api/audit?user_id=…` serves the by-user form, and refuses `nhs_number` in its
//! query string with `400 identifier_in_url`. This refines §6's `GET /api/audit?nhs_number=`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::domain::audit::{AuditQuery, AuditSubject, VerifyReport};
use crate::domain::{AuditEvent, NhsNumber, ParseError, Role, TimeWindow, User, UserId};
use crate::error::ApiError;
use crate::routes::support::{ApiJson, AuthUser};
use crate::state::AppState;

/// The search body (`POST`) and query string (`GET`): exactly one of `nhs_number` and
/// `user_id`; optional `from`/`to` (RFC 3339, half-open), `after` (a `seq`) and `limit`
/// (1–1000, default 100). Numbers may come as JSON numbers or strings.
#[derive(Deserialize, Default, utoipa::ToSchema)]
pub struct SearchRequest {
    nhs_number: Option<String>,
    user_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    after: Option<Value>,
    limit: Option<Value>,
}

fn text(v: &Option<Value>) -> Option<String> {
    match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    }
}

impl TryFrom<SearchRequest> for AuditQuery {
    type Error = ParseError;

    fn try_from(r: SearchRequest) -> Result<Self, ParseError> {
        let blank = |s: &Option<String>| s.as_deref().is_none_or(|s| s.trim().is_empty());
        let subject = match (blank(&r.nhs_number), blank(&r.user_id)) {
            (true, true) => {
                return Err(ParseError::new(
                    "subject_required",
                    "nhs_number",
                    "give one of nhs_number or user_id",
                ))
            }
            (false, false) => {
                return Err(ParseError::new(
                    "one_subject_only",
                    "user_id",
                    "give nhs_number or user_id, not both",
                ))
            }
            (false, true) => {
                AuditSubject::Patient(NhsNumber::parse(r.nhs_number.as_deref().unwrap_or(""))?)
            }
            (true, false) => AuditSubject::Actor(UserId(
                Uuid::parse_str(r.user_id.as_deref().unwrap_or("").trim()).map_err(|_| {
                    ParseError::new("invalid_value", "user_id", "must be a user id (UUID)")
                })?,
            )),
        };
        let window = TimeWindow::parse(r.from.as_deref(), r.to.as_deref())?;
        let (limit, after) =
            AuditQuery::page(text(&r.limit).as_deref(), text(&r.after).as_deref())?;
        Ok(AuditQuery { subject, window, after, limit })
    }
}

/// One event as an audit query returns it: the stored row with `details` as JSON.
#[derive(Serialize, utoipa::ToSchema)]
struct EventOut<'a> {
    seq: i64,
    occurred_at: chrono::DateTime<chrono::Utc>,
    #[schema(value_type = Option<Uuid>)]
    actor_id: Option<UserId>,
    #[schema(value_type = String)]
    action: &'a str,
    #[schema(value_type = String)]
    record_type: &'a str,
    #[schema(value_type = Option<String>)]
    record_id: Option<&'a str>,
    #[schema(value_type = Option<String>)]
    client_addr: Option<&'a str>,
    /// The event's details as stored: usually an object, any JSON value.
    details: Value,
    #[schema(value_type = String)]
    hash: &'a str,
}

/// What an audit query answers (the handler writes it with `json!`; this describes it):
/// one page of events, the `after` of the next page (`null` on the last), and for a
/// patient's trail their case ids.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct AuditPage<'a> {
    events: Vec<EventOut<'a>>,
    next: Option<i64>,
    /// A patient's case ids (`POST /api/audit/search` by `nhs_number` only).
    #[schema(required = false)]
    cases: Option<Vec<Uuid>>,
}

impl<'a> From<&'a AuditEvent> for EventOut<'a> {
    fn from(e: &'a AuditEvent) -> Self {
        Self {
            seq: e.seq,
            occurred_at: e.occurred_at,
            actor_id: e.actor_id,
            action: &e.action,
            record_type: &e.record_type,
            record_id: e.record_id.as_deref(),
            client_addr: e.client_addr.as_deref(),
            details: serde_json::from_str(&e.details)
                .unwrap_or_else(|_| Value::String(e.details.clone())),
            hash: &e.hash,
        }
    }
}

fn coordinator_only(caller: &User) -> Result<(), ApiError> {
    if caller.role == Role::Coordinator {
        Ok(())
    } else {
        Err(ApiError::forbidden("only coordinators run audit queries"))
    }
}

/// Runs a parsed query: one page of events (and, for a patient, their case ids), with
/// the query itself audited.
async fn run(
    state: &AppState, req: &HttpRequest, caller: &User, query: AuditQuery,
) -> Result<HttpResponse, ApiError> {
    let (cases, details) = match &query.subject {
        AuditSubject::Patient(nhs) => {
            let cases = state.store.patient_case_ids(nhs).await?;
            // The NHS number stays out of the audit log too: the cases identify the patient.
            let details = json!({ "subject": "patient", "cases": cases });
            (Some(cases), details)
        }
        AuditSubject::Actor(id) => (None, json!({ "subject": "user", "user_id": id })),
    };
    let mut page =
        state.store.search_audit(&AuditQuery { limit: query.limit + 1, ..query.clone() }).await?;
    let more = page.len() > query.limit as usize;
    page.truncate(query.limit as usize);
    let next = if more { page.last().map(|e| e.seq) } else { None };
    let mut event = state.audit_event(req, caller, "audit_queried", "audit").details(json!({
        "query": details,
        "from": query.window.from,
        "to": query.window.to,
        "after": query.after,
        "limit": query.limit,
        "returned": page.len(),
    }));
    if let AuditSubject::Actor(id) = &query.subject {
        event = event.record(id);
    }
    state.store.append_audit(event).await?;
    let events: Vec<EventOut> = page.iter().map(EventOut::from).collect();
    let mut body = json!({ "events": events, "next": next });
    if let Some(cases) = cases {
        body["cases"] = json!(cases);
    }
    Ok(HttpResponse::Ok().json(body))
}

/// `POST /api/audit/search {nhs_number | user_id, from?, to?, after?, limit?}`
/// (coordinator): `{events, next, cases?}`; `next` is the `after` of the following page,
/// `null` on the last.
#[utoipa::path(
    post, path = "/api/audit/search", operation_id = "audit_search", tag = "audit",
    request_body = SearchRequest,
    responses((status = 200, description = "OK", body = AuditPage)),
)]
pub async fn search(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser,
    ApiJson(body): ApiJson<SearchRequest>,
) -> Result<HttpResponse, ApiError> {
    coordinator_only(&caller)?;
    let query = AuditQuery::try_from(body)?;
    run(&state, &req, &caller, query).await
}

/// `GET /api/audit?user_id=&from=&to=&after=&limit=` (coordinator): a user's trail, as
/// the search. An NHS number in the query string is refused: use the search.
#[utoipa::path(get, path = "/api/audit", operation_id = "audit_by_user", tag = "audit",
    params(
        ("user_id" = Option<uuid::Uuid>, Query, description = "Whose trail (required)"),
        ("from" = Option<String>, Query, description = "First day, YYYY-MM-DD"),
        ("to" = Option<String>, Query, description = "Last day, YYYY-MM-DD"),
        ("after" = Option<i64>, Query, description = "The `next` of the previous page"),
        ("limit" = Option<u32>, Query, description = "Events per page"),
    ),
    responses((status = 200, description = "OK", body = AuditPage)))]
pub async fn by_user(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser,
) -> Result<HttpResponse, ApiError> {
    coordinator_only(&caller)?;
    let params =
        web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
            .map_err(|_| ApiError::bad_request("malformed_query", "the query string is malformed"))?
            .into_inner();
    if params.contains_key("nhs_number") {
        return Err(ApiError::bad_request(
            "identifier_in_url",
            "NHS numbers never go in URLs: POST /api/audit/search {\"nhs_number\": …}",
        ));
    }
    let get = |k: &str| params.get(k).cloned();
    if get("user_id").is_none() {
        return Err(ParseError::new(
            "subject_required",
            "user_id",
            "give user_id (a patient's trail: POST /api/audit/search)",
        )
        .into());
    }
    let query = AuditQuery::try_from(SearchRequest {
        nhs_number: None,
        user_id: get("user_id"),
        from: get("from"),
        to: get("to"),
        after: get("after").map(Value::String),
        limit: get("limit").map(Value::String),
    })?;
    run(&state, &req, &caller, query).await
}

/// `GET /api/admin/audit/verify` (coordinator): walks the hash chain with the same code as
/// `mdt-coordinator audit verify`; `{ok, length, broken_at?}`. The check is audited
/// (`audit_verified`, appended after the walk).
#[utoipa::path(
    get, path = "/api/admin/audit/verify", operation_id = "audit_verify", tag = "audit",
    responses((status = 200, description = "OK", body = VerifyReport)),
)]
pub async fn verify(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser,
) -> Result<HttpResponse, ApiError> {
    if caller.role != Role::Coordinator {
        return Err(ApiError::forbidden("only coordinators verify the audit log"));
    }
    let report = VerifyReport::from(&state.store.verify_audit().await?);
    let event = state.audit_event(&req, &caller, "audit_verified", "audit").details(json!(report));
    state.store.append_audit(event).await?;
    Ok(HttpResponse::Ok().json(report))
}
