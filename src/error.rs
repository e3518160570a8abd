//! The one API error type. Each variant says which status it becomes; clients receive
//! `{"code", "message"}` and internal causes are logged, never sent.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::domain::ParseError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request could not be read (malformed JSON, bad query string).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// 401: no valid credentials; carries `WWW-Authenticate: Bearer`.
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    /// 403: authenticated, but this role or specialty may not do this.
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// 404: no such thing (or not visible to the caller).
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// 405: the resource exists but not with this method.
    #[error("this method is not allowed here")]
    MethodNotAllowed,
    /// 409: conflicts with the current state (duplicate, full, closed, signed).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// 413: the body is larger than allowed.
    #[error("request body is too large")]
    PayloadTooLarge,
    /// 415: the body is not JSON.
    #[error("request body must be application/json")]
    UnsupportedMediaType,
    /// 415: stored content of a kind this service cannot process (e.g. a DICOM transfer
    /// syntax it cannot decode).
    #[error("{message}")]
    Unsupported { code: &'static str, message: String },
    /// 422: a value was read but is not acceptable (bad NHS number, unknown role…).
    #[error("{0}")]
    Invalid(#[from] ParseError),
    /// 429: too many attempts; carries `Retry-After`.
    #[error("too many attempts; try again in {retry_after_secs} seconds")]
    RateLimited { retry_after_secs: u64 },
    /// 503: a dependency is briefly unavailable (database busy or down); carries `Retry-After`.
    #[error("the service is busy; try again shortly")]
    Unavailable { retry_after_secs: u64 },
    /// 500: a bug or an unexpected failure. The cause is logged, never returned.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// The one error body every refusal carries (the OpenAPI document's `Error`).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody<'a> {
    /// A stable snake_case code, e.g. `not_found`, `invalid_nhs_number`.
    #[schema(pattern = "^[a-z0-9_]+$")]
    code: &'a str,
    /// What went wrong, for people; never an internal cause.
    message: String,
    /// On `422`, the request field that was not acceptable.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::Unauthorized { code, message: message.into() }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden { code: "forbidden", message: message.into() }
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::NotFound { code, message: message.into() }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict { code, message: message.into() }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest { code, message: message.into() }
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self::Internal(cause.into())
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. }
            | ApiError::Unauthorized { code, .. }
            | ApiError::Forbidden { code, .. }
            | ApiError::NotFound { code, .. }
            | ApiError::Conflict { code, .. }
            | ApiError::Unsupported { code, .. } => code,
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::Invalid(e) => e.code,
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Unavailable { .. } => "service_unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType | ApiError::Unsupported { .. } => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(cause) = self {
            tracing::error!(error = %format!("{cause:#}"), "internal error");
        }
        let mut res = HttpResponse::build(self.status_code());
        match self {
            ApiError::Unauthorized { .. } => {
                res.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            ApiError::RateLimited { retry_after_secs }
            | ApiError::Unavailable { retry_after_secs } => {
                res.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            _ => {}
        }
        res.json(ErrorBody {
            code: self.code(),
            message: self.to_string(),
            field: match self {
                ApiError::Invalid(e) => Some(e.field.as_ref()),
                _ => None,
            },
        })
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => {
                ApiError::not_found("not_found", format!("{what} not found"))
            }
            StoreError::Conflict(c) => {
                ApiError::Conflict { code: c.code(), message: c.to_string() }
            }
            StoreError::Violation(v) => {
                tracing::warn!(violation = ?v, "unexpected constraint refusal");
                ApiError::conflict("constraint_violation", "the change conflicts with stored data")
            }
            StoreError::Invalid(p) => ApiError::Invalid(p),
            StoreError::PatientConflict(_) => ApiError::conflict(
                "patient_details_conflict",
                "this NHS number is on record with a different name or date of birth",
            ),
            StoreError::Busy => ApiError::Unavailable { retry_after_secs: 1 },
            StoreError::Database(e) => ApiError::internal(e),
        }
    }
}

/// Turns actix's JSON extractor errors into `400 malformed_json`, `413` or `415`. (Shape
/// errors are `422`, raised by `routes::ApiJson` once the text is known to be JSON.)
pub fn json_error(
    err: actix_web::error::JsonPayloadError, _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as J;
    let api = match &err {
        J::OverflowKnownLength { .. } | J::Overflow { .. } => ApiError::PayloadTooLarge,
        J::ContentType => ApiError::UnsupportedMediaType,
        J::Deserialize(e) if e.is_data() => {
            ApiError::Invalid(ParseError::new("invalid_field", "body", e.to_string()))
        }
        _ => ApiError::bad_request("malformed_json", "request body is not valid JSON"),
    };
    api.into()
}

/// Query-string errors become `400 invalid_query`.
pub fn query_error(
    err: actix_web::error::QueryPayloadError, _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::bad_request("invalid_query", err.to_string()).into()
}

/// Path errors (e.g. a malformed id) become `404`: there is no such resource.
pub fn path_error(
    _err: actix_web::error::PathError, _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::not_found("not_found", "no such resource").into()
}
