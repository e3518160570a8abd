//! The activity report (`GET /api/reports/activity`, DESIGN §4 flow 8): who may run it
//! and over which specialties, the JSON figures or the per-case CSV, and the audit of a
//! CSV export. The figures themselves are folded by `domain::report`.
//!
//! Access: coordinators, over any specialty, and the CSV with patient identifiers;
//! consultants, over their own specialties only (`403 forbidden_specialty` otherwise),
//! and the CSV without identifiers. Practitioners and trainees: `403 forbidden`.
//! Audit: every CSV writes one `report_exported` event (window, specialties, rows,
//! whether identified) covering every case row it carries, so each patient's trail shows
//! it, before the file is sent. The JSON holds no patient data and is not audited.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::auth::require_role;
use crate::domain::measures::{parse_targets, TargetsRequest};
use crate::domain::practices::{
    practice_report, practice_summary_html, PracticeDirectory, PracticeReport,
};
use crate::domain::report::{
    activity_csv, activity_report, ActivityData, Judging, ReportFormat, ReportQuery, ReportWindow,
};
use crate::domain::{NewAuditEvent, OdsCode, ParseError, Role, Specialty, User};
use crate::error::ApiError;
use crate::routes::support::{ApiJson, AuthUser};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::TallyGroup;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActivityParams {
    from: Option<String>,
    to: Option<String>,
    specialty: Option<String>,
    format: Option<String>,
}

/// The specialties a caller's report covers, and whether its CSV carries identifiers.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ReportScope {
    pub specialties: Vec<Specialty>,
    pub identified: bool,
}

/// Coordinators: the requested specialty or all, identified. Consultants: the requested
/// one if it is theirs, else all of theirs, never identified. `422 unknown_specialty`
/// for a specialty that does not exist.
pub(crate) fn report_scope(
    caller: &User, requested: Option<Specialty>, known: &[Specialty],
) -> Result<ReportScope, ApiError> {
    require_role(caller, &[Role::Coordinator, Role::Consultant])?;
    if let Some(s) = &requested {
        if !known.contains(s) {
            return Err(
                ParseError::new("unknown_specialty", "specialty", "no such specialty").into()
            );
        }
    }
    let identified = caller.role == Role::Coordinator;
    let specialties = match (requested, identified) {
        (Some(s), true) => vec![s],
        (None, true) => known.to_vec(),
        (Some(s), false) if caller.has_specialty(&s) => vec![s],
        (Some(s), false) => {
            return Err(ApiError::Forbidden {
                code: "forbidden_specialty",
                message: format!("you do not report on {s} sessions"),
            })
        }
        (None, false) => known.iter().filter(|s| caller.has_specialty(s)).cloned().collect(),
    };
    Ok(ReportScope { specialties, identified })
}

/// A report request checked: its window, who may see what, and the store's query.
pub(crate) struct ReportRequest {
    pub window: ReportWindow,
    pub scope: ReportScope,
    pub query: ReportQuery,
}

/// Checks `from`, `to` and `specialty` for `caller` (see [`report_scope`]).
pub(crate) async fn report_request(
    state: &AppState, caller: &User, from: Option<&str>, to: Option<&str>, specialty: Option<&str>,
) -> Result<ReportRequest, ApiError> {
    require_role(caller, &[Role::Coordinator, Role::Consultant])?;
    let window = ReportWindow::parse(from, to)?;
    let requested =
        specialty.map(|s| Specialty::parse(s).map_err(|e| e.for_field("specialty"))).transpose()?;
    let known = state.store.list_specialties().await?;
    let scope = report_scope(caller, requested, &known)?;
    let query = ReportQuery {
        starts_at: window.starts_at(),
        ends_at: window.ends_at(),
        specialties: scope.specialties.clone(),
    };
    Ok(ReportRequest { window, scope, query })
}

/// Runs `fold` with the targets and clock rules the figures are judged by.
pub(crate) async fn with_judging<T>(
    state: &AppState, fold: impl FnOnce(&Judging<'_>) -> T,
) -> Result<T, ApiError> {
    let targets = state.store.wait_targets().await?;
    let clocks = crate::routes::support::clock_rules(state).await?;
    Ok(fold(&Judging { targets: &targets, clocks: &clocks, now: state.clock.now() }))
}

/// `GET /api/reports/activity?from=YYYY-MM-DD&to=YYYY-MM-DD[&specialty=][&format=csv]`.
#[utoipa::path(
    get, path = "/api/reports/activity", operation_id = "reports_activity", tag = "reports",
    params(ActivityParams),
    responses(
        (status = 200, description = "the activity report (JSON), or per-case CSV with `format=csv`", content((Object = "application/json"), (String = "text/csv"))),
    ),
)]
pub async fn activity(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser,
    params: web::Query<ActivityParams>,
) -> Result<HttpResponse, ApiError> {
    let (from, to) = (params.from.as_deref(), params.to.as_deref());
    let ReportRequest { window, scope, query } =
        report_request(&state, &caller, from, to, params.specialty.as_deref()).await?;
    let format = ReportFormat::parse(params.format.as_deref())?;
    match format {
        ReportFormat::Json => {
            let tallies = state.store.report_tallies(&query, TallyGroup::Month).await?;
            let report = with_judging(&state, |judging| {
                activity_report(&window, &scope.specialties, &tallies, judging)
            })
            .await?;
            Ok(HttpResponse::Ok().json(report))
        }
        ReportFormat::Csv => {
            let data = state.store.activity_data(&query).await?;
            let event = export_event(&state, &req, &caller, &window, &scope, &data);
            // The file is written off the async workers while its audit event is
            // appended; it is sent only when both are done.
            let identified = scope.identified;
            let render = tokio::task::spawn_blocking(move || activity_csv(&data, identified));
            let (body, audited) = tokio::join!(render, state.store.append_audit(event));
            audited?;
            let body = body.map_err(ApiError::internal)?;
            let filename = format!("activity-{}-{}.csv", window.from, window.to);
            Ok(HttpResponse::Ok()
                .content_type("text/csv; charset=utf-8")
                .insert_header((
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{filename}\""),
                ))
                .body(body))
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PracticeParams {
    from: Option<String>,
    to: Option<String>,
    specialty: Option<String>,
}

/// The practices report for a checked request: tallies by practice, names and list sizes.
async fn practices_report(
    state: &AppState, request: &ReportRequest,
) -> Result<PracticeReport, ApiError> {
    let tallies = state.store.report_tallies(&request.query, TallyGroup::Practice).await?;
    let list_sizes = state.store.list_sizes().await?;
    let directory = PracticeDirectory {
        names: state.store.practice_names().await?,
        list_sizes: list_sizes
            .into_iter()
            .map(|(s, _)| (s.ods_code.as_str().to_string(), s.list_size))
            .collect(),
    };
    let (window, specialties) = (&request.window, &request.scope.specialties);
    with_judging(state, |judging| {
        practice_report(window, specialties, &tallies, &directory, judging)
    })
    .await
}

/// `GET /api/reports/practices?from=&to=[&specialty=]`: each GP practice's referrals,
/// waits, returns and outcome mix beside the locality's median (coordinators; consultants
/// for their specialties). No patient data: not audited.
#[utoipa::path(
    get, path = "/api/reports/practices", operation_id = "reports_practices", tag = "reports",
    params(PracticeParams),
    responses((status = 200, description = "OK", body = crate::domain::practices::PracticeReport)),
)]
pub async fn practices(
    state: web::Data<AppState>, AuthUser(caller): AuthUser, params: web::Query<PracticeParams>,
) -> Result<HttpResponse, ApiError> {
    let (from, to) = (params.from.as_deref(), params.to.as_deref());
    let request = report_request(&state, &caller, from, to, params.specialty.as_deref()).await?;
    let report = practices_report(&state, &request).await?;
    Ok(HttpResponse::Ok().json(report))
}

/// `GET /api/reports/practices/{ods_code}/summary?from=&to=[&specialty=]`: the
/// practice's one-page summary, printable HTML with no patient identifiers, to send to
/// the practice. `404 not_found` when the practice referred nothing in the window.
#[utoipa::path(
    get, path = "/api/reports/practices/{ods_code}/summary", operation_id = "reports_practice_summary", tag = "reports",
    params(PracticeParams),
    responses(
        (status = 200, description = "a printable practice summary", content_type = "text/html", body = String),
    ),
)]
pub async fn practice_summary(
    state: web::Data<AppState>, AuthUser(caller): AuthUser, code: web::Path<String>,
    params: web::Query<PracticeParams>,
) -> Result<HttpResponse, ApiError> {
    let code = OdsCode::parse(&code)?;
    let (from, to) = (params.from.as_deref(), params.to.as_deref());
    let request = report_request(&state, &caller, from, to, params.specialty.as_deref()).await?;
    let report = practices_report(&state, &request).await?;
    let practice = report
        .practices
        .iter()
        .find(|p| p.ods_code == code.as_str())
        .ok_or_else(|| ApiError::not_found("not_found", "no referrals from this practice"))?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(practice_summary_html(&report, practice)))
}

/// `GET /api/specialties/{slug}/targets`: the specialty's waiting-time targets (the
/// defaults until a coordinator sets them).
/// What the targets routes answer (written with `json!`; this describes it): a
/// specialty's slug and its waiting-time targets.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct SpecialtyTargets {
    specialty: String,
    targets: Vec<crate::domain::measures::WaitTarget>,
}

#[utoipa::path(
    get, path = "/api/specialties/{slug}/targets", operation_id = "reports_targets", tag = "reports",
    responses((status = 200, description = "OK", body = SpecialtyTargets)),
)]
pub async fn targets(
    state: web::Data<AppState>, AuthUser(_caller): AuthUser, slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let slug = Specialty::parse(&slug)?;
    let all = state.store.wait_targets().await?;
    let targets =
        all.get(&slug).ok_or_else(|| ApiError::not_found("not_found", "no such specialty"))?;
    Ok(HttpResponse::Ok().json(json!({ "specialty": slug, "targets": targets })))
}

/// `PUT /api/specialties/{slug}/targets {targets: [...]}` (coordinators): replaces the
/// specialty's waiting-time targets. Audited (`wait_targets_set`).
#[utoipa::path(
    put, path = "/api/specialties/{slug}/targets", operation_id = "reports_set_targets", tag = "reports",
    request_body = TargetsRequest,
    responses((status = 200, description = "OK", body = SpecialtyTargets)),
)]
pub async fn set_targets(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser,
    slug: web::Path<String>, ApiJson(body): ApiJson<TargetsRequest>,
) -> Result<HttpResponse, ApiError> {
    require_role(&caller, &[Role::Coordinator])?;
    let slug = Specialty::parse(&slug)?;
    let targets = parse_targets(body.targets)?;
    let event = state
        .audit_event(&req, &caller, "wait_targets_set", "specialty")
        .record(slug.as_str())
        .details(json!({ "targets": targets }));
    match state.store.set_wait_targets(&slug, &targets, event).await {
        Err(StoreError::NotFound(_)) => Err(ApiError::not_found("not_found", "no such specialty")),
        other => {
            other?;
            Ok(HttpResponse::Ok().json(json!({ "specialty": slug, "targets": targets })))
        }
    }
}

/// The one `report_exported` event of a CSV export, covering every exported case row
/// (identified or not); appended before the file is sent.
fn export_event(
    state: &AppState, req: &HttpRequest, caller: &User, window: &ReportWindow, scope: &ReportScope,
    data: &ActivityData,
) -> NewAuditEvent {
    let specialties: Vec<&str> = scope.specialties.iter().map(|s| s.as_str()).collect();
    // Every exported row is a read of that case's record, identified or not (a
    // de-identified row still describes one patient's episode): the event covers each
    // case, so the patient's trail shows each export that carried them.
    let cases = data.cases.iter().map(|row| row.case.id.to_string()).collect();
    state
        .audit_event(req, caller, "report_exported", "report")
        .record("activity")
        .details(json!({
            "format": "csv",
            "from": window.from,
            "to": window.to,
            "specialties": specialties,
            "rows": data.cases.len(),
            "identified": scope.identified,
        }))
        .covering(cases)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EmailAddress, PersonName, UserId};

    fn user(role: Role, specialties: &[&str]) -> User {
        User {
            id: UserId::new(),
            email: EmailAddress::parse("someone@example.org").unwrap(),
            name: PersonName::parse("Someone").unwrap(),
            role,
            specialties: specialties.iter().map(|s| Specialty::parse(s).unwrap()).collect(),
            organisation: None,
            active: true,
            must_change_password: false,
            created_at: chrono::Utc::now(),
        }
    }

    fn specialties(names: &[&str]) -> Vec<Specialty> {
        names.iter().map(|s| Specialty::parse(s).unwrap()).collect()
    }

    #[test]
    fn who_reports_on_what() {
        let known = specialties(&["pain", "rheumatology", "spinal"]);
        let coordinator = user(Role::Coordinator, &[]);
        let scope = report_scope(&coordinator, None, &known).unwrap();
        assert_eq!(scope.specialties, known);
        assert!(scope.identified);

        let consultant = user(Role::Consultant, &["spinal", "pain"]);
        let scope = report_scope(&consultant, None, &known).unwrap();
        assert_eq!(scope.specialties, specialties(&["pain", "spinal"]));
        assert!(!scope.identified);
        let spinal = Specialty::parse("spinal").ok();
        assert_eq!(
            report_scope(&consultant, spinal, &known).unwrap().specialties,
            specialties(&["spinal"])
        );
        let rheumatology = Specialty::parse("rheumatology").ok();
        let refused = report_scope(&consultant, rheumatology, &known).unwrap_err();
        assert_eq!(refused.code(), "forbidden_specialty");
        let unknown = Specialty::parse("foot-and-ankle").ok();
        assert_eq!(
            report_scope(&coordinator, unknown, &known).unwrap_err().code(),
            "unknown_specialty"
        );
        for role in [Role::Practitioner, Role::Trainee] {
            let refused = report_scope(&user(role, &["spinal"]), None, &known).unwrap_err();
            assert_eq!(refused.code(), "forbidden");
        }
    }
}
