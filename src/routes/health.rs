//! Operational endpoints: liveness, readiness and Prometheus metrics.

use actix_web::{web, HttpResponse};
use serde::Serialize;

use crate::error::ApiError;
use crate::state::AppState;

/// `GET /health`'s answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok`.
    status: &'static str,
}

/// `GET /ready`'s answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// Always `ready`.
    status: &'static str,
    /// The backend: `sqlite` or `postgres`.
    database: &'static str,
}

/// `GET /health`: the process is up.
#[utoipa::path(
    get, path = "/health", operation_id = "health_health", tag = "health",
    security(()),
    responses((status = 200, description = "the process is up", body = Health)),
)]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// `GET /ready`: the database answers; `503` otherwise.
#[utoipa::path(
    get, path = "/ready", operation_id = "health_ready", tag = "health",
    security(()),
    responses((status = 200, description = "the database answers", body = Readiness)),
)]
pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    match state.store.ping().await {
        Ok(()) => {
            Ok(HttpResponse::Ok()
                .json(Readiness { status: "ready", database: state.store.backend() }))
        }
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            Err(ApiError::Unavailable { retry_after_secs: 5 })
        }
    }
}

/// `GET /metrics`: Prometheus text exposition.
#[utoipa::path(
    get, path = "/metrics", operation_id = "health_metrics", tag = "health",
    security(()),
    responses(
        (status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String),
    ),
)]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    state.metrics.set_media(state.live.media().stats());
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}
