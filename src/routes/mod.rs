//! HTTP handlers, kept thin: parse the request into domain types, call the store, shape
//! the response. [`routes`] is the one table of what is mounted, [`configure`] mounts it
//! and the static front end from `web/`, and `openapi` describes it. What handlers share
//! lives in `support`; no route file imports another.

mod actions;
mod attachments;
mod audit;
mod auth;
mod caseload;
mod cases;
mod clocks;
mod cpd;
mod fhir;
mod health;
mod invitations;
mod letters;
mod live;
mod mentorship;
mod openapi;
mod outcomes;
mod patients;
mod practices;
mod reports;
mod sessions;
mod supervision;
mod support;
mod triage;
pub mod users;

use actix_web::http::Method;
use actix_web::{web, HttpResponse, Resource};

use crate::error::ApiError;

/// One mounted route: its method, its full path as the OpenAPI document names it, and
/// the handler. [`configure`] mounts exactly these, and the route-coverage test checks
/// them against `/api/openapi.json`, so the two cannot drift apart.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    handler: fn(Method) -> actix_web::Route,
}

impl Route {
    fn new(method: Method, path: &'static str, handler: fn(Method) -> actix_web::Route) -> Self {
        Self { method, path, handler }
    }
}

/// Every API and operations route, in mounting order (a literal segment before a `{param}`
/// one where both could match, e.g. `/api/practices/list-sizes`).
pub fn routes() -> Vec<Route> {
    const GET: Method = Method::GET;
    const POST: Method = Method::POST;
    const PUT: Method = Method::PUT;
    const PATCH: Method = Method::PATCH;
    const DELETE: Method = Method::DELETE;
    vec![
        Route::new(GET, "/health", |m| web::method(m).to(health::health)),
        Route::new(GET, "/ready", |m| web::method(m).to(health::ready)),
        Route::new(GET, "/metrics", |m| web::method(m).to(health::metrics)),
        Route::new(GET, "/api/openapi.json", |m| web::method(m).to(openapi::document)),
        Route::new(POST, "/api/auth/login", |m| web::method(m).to(auth::login)),
        Route::new(POST, "/api/auth/refresh", |m| web::method(m).to(auth::refresh)),
        Route::new(POST, "/api/auth/logout", |m| web::method(m).to(auth::logout)),
        Route::new(GET, "/api/me", |m| web::method(m).to(auth::me)),
        Route::new(POST, "/api/me/password", |m| web::method(m).to(auth::change_password)),
        Route::new(POST, "/api/users", |m| web::method(m).to(users::create)),
        Route::new(GET, "/api/users", |m| web::method(m).to(users::list)),
        Route::new(POST, "/api/users/{id}/deactivate", |m| web::method(m).to(users::deactivate)),
        Route::new(POST, "/api/users/{id}/reactivate", |m| web::method(m).to(users::reactivate)),
        Route::new(POST, "/api/users/{id}/reset-password", |m| {
            web::method(m).to(users::reset_password)
        }),
        Route::new(GET, "/api/people", |m| web::method(m).to(users::people)),
        Route::new(GET, "/api/specialties", |m| web::method(m).to(sessions::specialties)),
        Route::new(POST, "/api/specialties", |m| web::method(m).to(sessions::add_specialty)),
        Route::new(POST, "/api/sessions", |m| web::method(m).to(sessions::create)),
        Route::new(GET, "/api/sessions", |m| web::method(m).to(sessions::list)),
        Route::new(PUT, "/api/specialties/{slug}/quorum", |m| {
            web::method(m).to(sessions::set_quorum)
        }),
        Route::new(POST, "/api/series", |m| web::method(m).to(sessions::create_series)),
        Route::new(GET, "/api/sessions/{id}", |m| web::method(m).to(sessions::show)),
        Route::new(POST, "/api/sessions/{id}/publish", |m| web::method(m).to(sessions::publish)),
        Route::new(POST, "/api/sessions/{id}/cases", |m| web::method(m).to(cases::book)),
        Route::new(GET, "/api/cases", |m| web::method(m).to(cases::mine)),
        Route::new(GET, "/api/patients/conflicts", |m| web::method(m).to(patients::conflicts)),
        Route::new(POST, "/api/patients/correction", |m| web::method(m).to(patients::correct)),
        Route::new(GET, "/api/cases/{id}", |m| web::method(m).to(cases::show)),
        Route::new(PUT, "/api/cases/{id}", |m| web::method(m).to(cases::edit)),
        Route::new(DELETE, "/api/cases/{id}", |m| web::method(m).to(cases::withdraw)),
        Route::new(POST, "/api/cases/{id}/triage", |m| web::method(m).to(triage::decide)),
        Route::new(POST, "/api/cases/{id}/resubmit", |m| web::method(m).to(cases::resubmit)),
        Route::new(GET, "/api/triage", |m| web::method(m).to(triage::queue)),
        Route::new(GET, "/api/specialties/{slug}/targets", |m| web::method(m).to(reports::targets)),
        Route::new(PUT, "/api/specialties/{slug}/targets", |m| {
            web::method(m).to(reports::set_targets)
        }),
        Route::new(GET, "/api/specialties/{slug}/triage", |m| web::method(m).to(triage::rules)),
        Route::new(PUT, "/api/specialties/{slug}/triage", |m| web::method(m).to(triage::set_rules)),
        Route::new(POST, "/api/cases/{id}/attachments", |m| web::method(m).to(attachments::upload)),
        Route::new(GET, "/api/cases/{id}/attachments", |m| web::method(m).to(attachments::list)),
        Route::new(GET, "/api/attachments/{id}", |m| web::method(m).to(attachments::download)),
        Route::new(GET, "/api/attachments/{id}/info", |m| web::method(m).to(attachments::info)),
        Route::new(GET, "/api/attachments/{id}/render", |m| web::method(m).to(attachments::render)),
        Route::new(POST, "/api/cases/{id}/move", |m| web::method(m).to(cases::move_case)),
        Route::new(GET, "/api/cases/{id}/outcome", |m| web::method(m).to(outcomes::show)),
        Route::new(PUT, "/api/cases/{id}/outcome", |m| web::method(m).to(outcomes::draft)),
        Route::new(POST, "/api/cases/{id}/outcome/sign", |m| web::method(m).to(outcomes::sign)),
        Route::new(GET, "/api/cases/{id}/outcome/letter", |m| {
            web::method(m).to(outcomes::letter_text)
        }),
        Route::new(POST, "/api/cases/{id}/outcome/amendments", |m| {
            web::method(m).to(outcomes::amend)
        }),
        Route::new(GET, "/api/cases/{id}/fhir", |m| web::method(m).to(fhir::export)),
        Route::new(GET, "/api/cases/{id}/letters", |m| web::method(m).to(letters::of_case)),
        Route::new(GET, "/api/letters/print", |m| web::method(m).to(letters::to_print)),
        Route::new(GET, "/api/letters/due", |m| web::method(m).to(clocks::due)),
        Route::new(GET, "/api/bank-holidays", |m| web::method(m).to(clocks::holidays)),
        Route::new(POST, "/api/bank-holidays", |m| web::method(m).to(clocks::add_holiday)),
        Route::new(GET, "/api/letters/{id}/pdf", |m| web::method(m).to(letters::pdf)),
        Route::new(POST, "/api/letters/{id}/printed", |m| web::method(m).to(letters::printed)),
        Route::new(GET, "/api/practices/list-sizes", |m| web::method(m).to(practices::list_sizes)),
        Route::new(POST, "/api/practices/list-sizes", |m| {
            web::method(m).to(practices::import_list_sizes)
        }),
        Route::new(GET, "/api/practices", |m| web::method(m).to(practices::list)),
        Route::new(PUT, "/api/practices/{ods_code}", |m| web::method(m).to(practices::put)),
        // Decisions as tracked actions (issue 16)
        Route::new(GET, "/api/actions", |m| web::method(m).to(actions::list)),
        Route::new(PATCH, "/api/actions/{id}", |m| web::method(m).to(actions::update)),
        Route::new(GET, "/api/specialties/{slug}/action-due-days", |m| {
            web::method(m).to(actions::due_days)
        }),
        Route::new(PUT, "/api/specialties/{slug}/action-due-days", |m| {
            web::method(m).to(actions::set_due_days)
        }),
        Route::new(GET, "/api/audit", |m| web::method(m).to(audit::by_user)),
        Route::new(POST, "/api/audit/search", |m| web::method(m).to(audit::search)),
        Route::new(GET, "/api/admin/audit/verify", |m| web::method(m).to(audit::verify)),
        Route::new(PUT, "/api/sessions/{id}/agenda", |m| web::method(m).to(sessions::reorder)),
        Route::new(POST, "/api/sessions/{id}/cancel", |m| web::method(m).to(sessions::cancel)),
        Route::new(POST, "/api/sessions/{id}/reschedule", |m| {
            web::method(m).to(sessions::reschedule)
        }),
        Route::new(POST, "/api/sessions/{id}/live-ticket", |m| web::method(m).to(live::ticket)),
        Route::new(GET, "/api/sessions/{id}/live", |m| web::method(m).to(live::connect)),
        Route::new(GET, "/api/sessions/{id}/attendance", |m| web::method(m).to(live::attendance)),
        Route::new(POST, "/api/sessions/{id}/invitations", |m| {
            web::method(m).to(invitations::invite)
        }),
        Route::new(GET, "/api/sessions/{id}/invitations", |m| web::method(m).to(invitations::list)),
        Route::new(DELETE, "/api/sessions/{id}/invitations/{user_id}", |m| {
            web::method(m).to(invitations::withdraw)
        }),
        // Mentorship and CPD (issue 7)
        Route::new(POST, "/api/mentorship/contracts", |m| {
            web::method(m).to(mentorship::create_contract)
        }),
        Route::new(GET, "/api/mentorship/contracts", |m| {
            web::method(m).to(mentorship::list_contracts)
        }),
        Route::new(POST, "/api/mentorship/logs", |m| web::method(m).to(mentorship::create_log)),
        Route::new(GET, "/api/mentorship/logs", |m| web::method(m).to(mentorship::list_logs)),
        Route::new(GET, "/api/mentorship/summary", |m| web::method(m).to(mentorship::summary)),
        // Mentorship beyond the meeting and the supervision record (issue 21)
        Route::new(POST, "/api/mentorship/contracts/{id}/cover", |m| {
            web::method(m).to(mentorship::create_cover)
        }),
        Route::new(POST, "/api/mentorship/cases", |m| web::method(m).to(caseload::create)),
        Route::new(GET, "/api/mentorship/cases", |m| web::method(m).to(caseload::list)),
        Route::new(GET, "/api/mentorship/cases/{id}", |m| web::method(m).to(caseload::show)),
        Route::new(POST, "/api/mentorship/cases/{id}/advice", |m| {
            web::method(m).to(caseload::advise)
        }),
        Route::new(POST, "/api/supervision/assignments", |m| {
            web::method(m).to(supervision::assign)
        }),
        Route::new(GET, "/api/supervision/assignments", |m| {
            web::method(m).to(supervision::assignments)
        }),
        Route::new(POST, "/api/supervision/assessments", |m| {
            web::method(m).to(supervision::assess)
        }),
        Route::new(GET, "/api/supervision/assessments", |m| {
            web::method(m).to(supervision::list_assessments)
        }),
        Route::new(PUT, "/api/supervision/assessments/{id}/reflection", |m| {
            web::method(m).to(supervision::reflect)
        }),
        Route::new(GET, "/api/supervision/summary", |m| web::method(m).to(supervision::summary)),
        Route::new(GET, "/api/me/portfolio", |m| web::method(m).to(supervision::portfolio)),
        Route::new(GET, "/api/mentorship/backlog", |m| web::method(m).to(mentorship::backlog)),
        Route::new(GET, "/api/cases/{id}/mentorship-flag", |m| {
            web::method(m).to(mentorship::show_flag)
        }),
        Route::new(POST, "/api/cases/{id}/mentorship-flag", |m| {
            web::method(m).to(mentorship::flag)
        }),
        Route::new(DELETE, "/api/cases/{id}/mentorship-flag", |m| {
            web::method(m).to(mentorship::unflag)
        }),
        Route::new(GET, "/api/me/invitations", |m| web::method(m).to(invitations::mine)),
        Route::new(GET, "/api/me/attendance", |m| web::method(m).to(cpd::record)),
        Route::new(GET, "/api/me/attendance/certificate", |m| web::method(m).to(cpd::certificate)),
        Route::new(GET, "/api/reports/activity", |m| web::method(m).to(reports::activity)),
        Route::new(GET, "/api/reports/practices", |m| web::method(m).to(reports::practices)),
        Route::new(GET, "/api/reports/practices/{ods_code}/summary", |m| {
            web::method(m).to(reports::practice_summary)
        }),
    ]
}

/// Mounts every route of [`routes`]: one resource per path (its unsupported methods get
/// `405`), the API under `/api` with a JSON `404` for unknown paths; anything else is a
/// static file.
pub fn configure(cfg: &mut web::ServiceConfig, web_dir: &std::path::Path) {
    let mut grouped: Vec<(&'static str, Vec<actix_web::Route>)> = Vec::new();
    for route in routes() {
        let mounted = (route.handler)(route.method);
        match grouped.iter_mut().find(|(path, _)| *path == route.path) {
            Some((_, same_path)) => same_path.push(mounted),
            None => grouped.push((route.path, vec![mounted])),
        }
    }
    let mut api = web::scope("/api");
    for (path, mounted) in grouped {
        match path.strip_prefix("/api") {
            Some(inner) => {
                api = api.service(mounted.into_iter().fold(resource(inner), Resource::route))
            }
            None => {
                cfg.service(mounted.into_iter().fold(resource(path), Resource::route));
            }
        }
    }
    cfg.service(api.default_service(web::to(not_found))).service(
        actix_files::Files::new("/", web_dir)
            .index_file("index.html")
            .default_handler(web::to(not_found)),
    );
}

/// A resource whose unsupported methods get `405 method_not_allowed` as JSON.
fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found("not_found", "no such resource"))
}
