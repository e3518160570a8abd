//! The OpenAPI 3.1 description of the API, served at `GET /api/openapi.json`: the
//! operations come from the handlers' `#[utoipa::path]` annotations, the schemas from
//! the request and response types themselves. This module owns what every operation
//! shares (the bearer scheme, the one error body, path parameters, the error statuses)
//! and nothing else: no behaviour, no route of its own beyond serving the document.

use actix_web::HttpResponse;
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, KnownFormat, ObjectBuilder, Ref, RefOr, Required, Response, ResponseBuilder,
    SchemaFormat, Type,
};
use utoipa::{Modify, OpenApi};

/// The document. Every route [`super::routes`] mounts is listed here; the route-coverage
/// test in `tests/api.rs` fails when the two differ.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "MDT Coordinator",
        description = "Virtual multidisciplinary team (MDT) meetings for musculoskeletal care. \
            Every refusal is `{code, message, field?}` with a stable snake_case `code`."
    ),
    paths(
        super::health::health,
        super::health::ready,
        super::health::metrics,
        document,
        super::auth::login,
        super::auth::refresh,
        super::auth::logout,
        super::auth::me,
        super::auth::change_password,
        super::users::create,
        super::users::list,
        super::users::deactivate,
        super::users::reactivate,
        super::users::reset_password,
        super::users::people,
        super::sessions::specialties,
        super::sessions::add_specialty,
        super::sessions::create,
        super::sessions::list,
        super::sessions::set_quorum,
        super::sessions::create_series,
        super::sessions::show,
        super::sessions::publish,
        super::cases::book,
        super::cases::mine,
        super::patients::conflicts,
        super::patients::correct,
        super::cases::show,
        super::cases::edit,
        super::cases::withdraw,
        super::triage::decide,
        super::cases::resubmit,
        super::triage::queue,
        super::reports::targets,
        super::reports::set_targets,
        super::triage::rules,
        super::triage::set_rules,
        super::attachments::upload,
        super::attachments::list,
        super::attachments::download,
        super::attachments::info,
        super::attachments::render,
        super::cases::move_case,
        super::outcomes::show,
        super::outcomes::draft,
        super::outcomes::sign,
        super::outcomes::letter_text,
        super::outcomes::amend,
        super::fhir::export,
        super::letters::of_case,
        super::letters::to_print,
        super::clocks::due,
        super::clocks::holidays,
        super::clocks::add_holiday,
        super::letters::pdf,
        super::letters::printed,
        super::practices::list_sizes,
        super::practices::import_list_sizes,
        super::practices::list,
        super::practices::put,
        super::actions::list,
        super::actions::update,
        super::actions::due_days,
        super::actions::set_due_days,
        super::audit::by_user,
        super::audit::search,
        super::audit::verify,
        super::sessions::reorder,
        super::sessions::cancel,
        super::sessions::reschedule,
        super::live::ticket,
        super::live::connect,
        super::live::attendance,
        super::invitations::invite,
        super::invitations::list,
        super::invitations::withdraw,
        super::mentorship::create_contract,
        super::mentorship::list_contracts,
        super::mentorship::create_log,
        super::mentorship::list_logs,
        super::mentorship::summary,
        super::mentorship::create_cover,
        super::caseload::create,
        super::caseload::list,
        super::caseload::show,
        super::caseload::advise,
        super::supervision::assign,
        super::supervision::assignments,
        super::supervision::assess,
        super::supervision::list_assessments,
        super::supervision::reflect,
        super::supervision::summary,
        super::supervision::portfolio,
        super::mentorship::backlog,
        super::mentorship::show_flag,
        super::mentorship::flag,
        super::mentorship::unflag,
        super::invitations::mine,
        super::cpd::record,
        super::cpd::certificate,
        super::reports::activity,
        super::reports::practices,
        super::reports::practice_summary
    ),
    components(schemas(crate::error::ErrorBody)),
    security(("bearer" = [])),
    modifiers(&Conventions),
)]
pub struct ApiDoc;

/// `GET /api/openapi.json`: this document (no patient data, so no sign-in).
#[utoipa::path(get, path = "/api/openapi.json", operation_id = "openapi_document", tag = "openapi", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)))]
pub async fn document() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

/// What the document says of every operation without each handler repeating it.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build(),
            ),
        );
        for (_, name, description) in ERRORS {
            components.responses.insert(name.to_string(), RefOr::T(error_response(description)));
        }
        for (path, item) in doc.paths.paths.iter_mut() {
            for (method, op) in operations(item) {
                add_path_parameters(path, op);
                add_error_responses(method, op);
            }
        }
    }
}

/// The error statuses the service answers, as reusable responses carrying `Error`.
const ERRORS: [(u16, &str, &str); 10] = [
    (400, "BadRequest", "The request could not be read (malformed JSON or query string)"),
    (401, "Unauthorized", "No valid access token (`WWW-Authenticate: Bearer`)"),
    (403, "Forbidden", "This role or specialty may not do this"),
    (404, "NotFound", "No such resource, or not visible to the caller"),
    (409, "Conflict", "Conflicts with the current state (duplicate, full, closed, signed)"),
    (413, "PayloadTooLarge", "The body is larger than allowed"),
    (415, "UnsupportedMediaType", "The body is not of the expected media type"),
    (422, "Unprocessable", "A value was read but is not acceptable; `field` names it"),
    (429, "RateLimited", "Too many attempts (`Retry-After`)"),
    (503, "Unavailable", "The database is briefly unavailable (`Retry-After`)"),
];

fn error_response(description: &str) -> Response {
    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("Error"))).build();
    ResponseBuilder::new().description(description).content("application/json", content).build()
}

fn operations(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("get", &mut item.get),
        ("put", &mut item.put),
        ("post", &mut item.post),
        ("delete", &mut item.delete),
        ("patch", &mut item.patch),
    ]
    .into_iter()
    .filter_map(|(method, op)| Some((method, op.as_mut()?)))
}

/// Declares each `{name}` of the path template that the handler did not: ids are UUIDs,
/// slugs and ODS codes strings.
fn add_path_parameters(path: &str, op: &mut Operation) {
    let params = op.parameters.get_or_insert_with(Vec::new);
    for name in path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')) {
        if params.iter().any(|p| p.name == name && p.parameter_in == ParameterIn::Path) {
            continue;
        }
        let mut schema = ObjectBuilder::new().schema_type(Type::String);
        if name == "id" || name.ends_with("_id") {
            schema = schema.format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)));
        }
        params.push(path_parameter(name, schema));
    }
}

fn path_parameter(name: &str, schema: ObjectBuilder) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .schema(Some(schema))
        .build()
}

/// Adds the error responses an operation can give: `404`, `503` always; `401`/`403` when
/// it needs a token; `400`/`422` when it reads a body, a query or a path parameter; `409`
/// for a change; `413`/`415` with a body; and any other error status its handler names
/// (e.g. `429`), each with the `Error` body.
fn add_error_responses(method: &str, op: &mut Operation) {
    let public = op.security.as_ref().is_some_and(|s| s.contains(&SecurityRequirement::default()));
    let body = op.request_body.is_some();
    let params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let change = method != "get";
    let wanted = |status: u16| match status {
        400 | 422 => body || params,
        401 | 403 => !public,
        404 | 503 => true,
        409 => change,
        413 | 415 => body,
        _ => false,
    };
    for (status, name, _) in ERRORS {
        let named = op.responses.responses.contains_key(&status.to_string());
        if wanted(status) || named {
            op.responses
                .responses
                .insert(status.to_string(), RefOr::Ref(Ref::from_response_name(name)));
        }
    }
}
