//! The activity report (`GET /api/reports/activity`, DESIGN §4 flow 8): who may run it
//! and over which specialties, the JSON figures or the per-case CSV, and the audit of a
//! CSV export. The figures themselves are folded by `domain::report`.
//!
//! Access: coordinators, over any specialty, and the CSV with patient identifiers;
//! consultants, over their own specialties only (`403 forbidden_specialty` otherwise),
//! and the CSV without identifiers. Practitioners and trainees: `403 forbidden`.
//! Audit: every CSV writes one `report_exported` event (window, specialties, rows,
//! whether identified); an identified CSV also writes one `case_read` per row (via
//! `activity_csv`), in the same transaction, before the file is sent. The JSON holds no
//! patient data and is not audited.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::auth::require_role;
use crate::domain::report::{
    activity_csv, activity_report, ActivityData, ReportFormat, ReportQuery, ReportWindow,
};
use crate::domain::{ParseError, Role, Specialty, User};
use crate::error::ApiError;
use crate::routes::support::AuthUser;
use crate::state::AppState;

#[derive(Deserialize)]
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

/// `GET /api/reports/activity?from=YYYY-MM-DD&to=YYYY-MM-DD[&specialty=][&format=csv]`.
pub async fn activity(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser,
    params: web::Query<ActivityParams>,
) -> Result<HttpResponse, ApiError> {
    require_role(&caller, &[Role::Coordinator, Role::Consultant])?;
    let window = ReportWindow::parse(params.from.as_deref(), params.to.as_deref())?;
    let format = ReportFormat::parse(params.format.as_deref())?;
    let requested = params
        .specialty
        .as_deref()
        .map(|s| Specialty::parse(s).map_err(|e| e.for_field("specialty")))
        .transpose()?;
    let known = state.store.list_specialties().await?;
    let scope = report_scope(&caller, requested, &known)?;
    let query = ReportQuery {
        starts_at: window.starts_at(),
        ends_at: window.ends_at(),
        specialties: scope.specialties.clone(),
    };
    let data = state.store.activity_data(&query).await?;
    match format {
        ReportFormat::Json => Ok(HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(activity_report(
                &window,
                &scope.specialties,
                &data,
                &crate::routes::support::clock_rules(&state).await?,
                state.clock.now(),
            ))),
        ReportFormat::Csv => {
            let body = activity_csv(&data, scope.identified);
            audit_export(&state, &req, &caller, &window, &scope, &data).await?;
            let filename = format!("activity-{}-{}.csv", window.from, window.to);
            Ok(HttpResponse::Ok()
                .content_type("text/csv; charset=utf-8")
                .insert_header((
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{filename}\""),
                ))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .body(body))
        }
    }
}

/// One `report_exported` event and one `case_read` per exported case row (identified or
/// not), in one transaction, before the file is sent.
async fn audit_export(
    state: &AppState, req: &HttpRequest, caller: &User, window: &ReportWindow, scope: &ReportScope,
    data: &ActivityData,
) -> Result<(), ApiError> {
    let specialties: Vec<&str> = scope.specialties.iter().map(|s| s.as_str()).collect();
    let mut events = Vec::with_capacity(1 + data.cases.len());
    events.push(
        state.audit_event(req, caller, "report_exported", "report").record("activity").details(
            json!({
                "format": "csv",
                "from": window.from,
                "to": window.to,
                "specialties": specialties,
                "rows": data.cases.len(),
                "identified": scope.identified,
            }),
        ),
    );
    // Every exported row is a read of that case's record, identified or not (a
    // de-identified row still describes one patient's episode): the patient's trail shows
    // each export that carried them.
    events.extend(data.cases.iter().map(|row| {
        state.audit_event(req, caller, "case_read", "case").record(row.case.id).details(json!({
            "via": "activity_csv",
            "session": row.case.session_id,
            "identified": scope.identified,
        }))
    }));
    state.store.append_audits(events).await?;
    Ok(())
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
