//! HTTP handlers, kept thin: parse the request into domain types, call the store, shape
//! the response. Also mounts the static front end from `web/`. What handlers share lives
//! in `support`; no route file imports another.

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
mod outcomes;
mod patients;
mod practices;
mod reports;
mod sessions;
mod supervision;
mod support;
mod triage;
pub mod users;

use actix_web::{web, HttpResponse};

use crate::error::ApiError;

/// Mounts every route. The API lives under `/api`; anything else is a static file.
pub fn configure(cfg: &mut web::ServiceConfig, web_dir: &std::path::Path) {
    cfg.service(resource("/health").get(health::health))
        .service(resource("/ready").get(health::ready))
        .service(resource("/metrics").get(health::metrics))
        .service(
            web::scope("/api")
                .service(resource("/auth/login").post(auth::login))
                .service(resource("/auth/refresh").post(auth::refresh))
                .service(resource("/auth/logout").post(auth::logout))
                .service(resource("/me").get(auth::me))
                .service(resource("/me/password").post(auth::change_password))
                .service(resource("/users").post(users::create).get(users::list))
                .service(resource("/users/{id}/deactivate").post(users::deactivate))
                .service(resource("/users/{id}/reactivate").post(users::reactivate))
                .service(resource("/users/{id}/reset-password").post(users::reset_password))
                .service(resource("/people").get(users::people))
                .service(
                    resource("/specialties")
                        .get(sessions::specialties)
                        .post(sessions::add_specialty),
                )
                .service(resource("/sessions").post(sessions::create).get(sessions::list))
                .service(resource("/specialties/{slug}/quorum").put(sessions::set_quorum))
                .service(resource("/series").post(sessions::create_series))
                .service(resource("/sessions/{id}").get(sessions::show))
                .service(resource("/sessions/{id}/publish").post(sessions::publish))
                .service(resource("/sessions/{id}/cases").post(cases::book))
                .service(resource("/cases").get(cases::mine))
                .service(resource("/patients/conflicts").get(patients::conflicts))
                .service(resource("/patients/correction").post(patients::correct))
                .service(
                    resource("/cases/{id}")
                        .get(cases::show)
                        .put(cases::edit)
                        .delete(cases::withdraw),
                )
                .service(resource("/cases/{id}/triage").post(triage::decide))
                .service(resource("/cases/{id}/resubmit").post(cases::resubmit))
                .service(resource("/triage").get(triage::queue))
                .service(
                    resource("/specialties/{slug}/targets")
                        .get(reports::targets)
                        .put(reports::set_targets),
                )
                .service(
                    resource("/specialties/{slug}/triage")
                        .get(triage::rules)
                        .put(triage::set_rules),
                )
                .service(
                    resource("/cases/{id}/attachments")
                        .post(attachments::upload)
                        .get(attachments::list),
                )
                .service(resource("/attachments/{id}").get(attachments::download))
                .service(resource("/attachments/{id}/info").get(attachments::info))
                .service(resource("/attachments/{id}/render").get(attachments::render))
                .service(resource("/cases/{id}/move").post(cases::move_case))
                .service(resource("/cases/{id}/outcome").get(outcomes::show).put(outcomes::draft))
                .service(resource("/cases/{id}/outcome/sign").post(outcomes::sign))
                .service(resource("/cases/{id}/outcome/letter").get(outcomes::letter_text))
                .service(resource("/cases/{id}/outcome/amendments").post(outcomes::amend))
                .service(resource("/cases/{id}/fhir").get(fhir::export))
                .service(resource("/cases/{id}/letters").get(letters::of_case))
                .service(resource("/letters/print").get(letters::to_print))
                .service(resource("/letters/due").get(clocks::due))
                .service(resource("/bank-holidays").get(clocks::holidays).post(clocks::add_holiday))
                .service(resource("/letters/{id}/pdf").get(letters::pdf))
                .service(resource("/letters/{id}/printed").post(letters::printed))
                .service(
                    resource("/practices/list-sizes")
                        .get(practices::list_sizes)
                        .post(practices::import_list_sizes),
                )
                .service(resource("/practices").get(practices::list))
                .service(resource("/practices/{ods_code}").put(practices::put))
                // Decisions as tracked actions (issue 16)
                .service(resource("/actions").get(actions::list))
                .service(resource("/actions/{id}").patch(actions::update))
                .service(
                    resource("/specialties/{slug}/action-due-days")
                        .get(actions::due_days)
                        .put(actions::set_due_days),
                )
                .service(resource("/audit").get(audit::by_user))
                .service(resource("/audit/search").post(audit::search))
                .service(resource("/admin/audit/verify").get(audit::verify))
                .service(resource("/sessions/{id}/agenda").put(sessions::reorder))
                .service(resource("/sessions/{id}/cancel").post(sessions::cancel))
                .service(resource("/sessions/{id}/reschedule").post(sessions::reschedule))
                .service(resource("/sessions/{id}/live-ticket").post(live::ticket))
                .service(resource("/sessions/{id}/live").get(live::connect))
                .service(resource("/sessions/{id}/attendance").get(live::attendance))
                .service(
                    resource("/sessions/{id}/invitations")
                        .post(invitations::invite)
                        .get(invitations::list),
                )
                .service(
                    resource("/sessions/{id}/invitations/{user_id}").delete(invitations::withdraw),
                )
                // Mentorship and CPD (issue 7)
                .service(
                    resource("/mentorship/contracts")
                        .post(mentorship::create_contract)
                        .get(mentorship::list_contracts),
                )
                .service(
                    resource("/mentorship/logs")
                        .post(mentorship::create_log)
                        .get(mentorship::list_logs),
                )
                .service(resource("/mentorship/summary").get(mentorship::summary))
                // Mentorship beyond the meeting and the supervision record (issue 21)
                .service(
                    resource("/mentorship/contracts/{id}/cover").post(mentorship::create_cover),
                )
                .service(resource("/mentorship/cases").post(caseload::create).get(caseload::list))
                .service(resource("/mentorship/cases/{id}").get(caseload::show))
                .service(resource("/mentorship/cases/{id}/advice").post(caseload::advise))
                .service(
                    resource("/supervision/assignments")
                        .post(supervision::assign)
                        .get(supervision::assignments),
                )
                .service(
                    resource("/supervision/assessments")
                        .post(supervision::assess)
                        .get(supervision::list_assessments),
                )
                .service(
                    resource("/supervision/assessments/{id}/reflection").put(supervision::reflect),
                )
                .service(resource("/supervision/summary").get(supervision::summary))
                .service(resource("/me/portfolio").get(supervision::portfolio))
                .service(resource("/mentorship/backlog").get(mentorship::backlog))
                .service(
                    resource("/cases/{id}/mentorship-flag")
                        .get(mentorship::show_flag)
                        .post(mentorship::flag)
                        .delete(mentorship::unflag),
                )
                .service(resource("/me/invitations").get(invitations::mine))
                .service(resource("/me/attendance").get(cpd::record))
                .service(resource("/me/attendance/certificate").get(cpd::certificate))
                .service(resource("/reports/activity").get(reports::activity))
                .service(resource("/reports/practices").get(reports::practices))
                .service(
                    resource("/reports/practices/{ods_code}/summary")
                        .get(reports::practice_summary),
                )
                .default_service(web::to(not_found)),
        )
        .service(
            actix_files::Files::new("/", web_dir)
                .index_file("index.html")
                .default_handler(web::to(not_found)),
        );
}

/// A resource whose unsupported methods get `405 method_not_allowed` as JSON.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found("not_found", "no such resource"))
}
