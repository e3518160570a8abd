//! HTTP handlers, kept thin: parse the request into domain types, call the store, shape
//! the response. Also mounts the static front end from `web/`.

mod auth;
mod health;
pub mod users;

use actix_web::{web, HttpResponse};

use crate::error::ApiError;

/// Mounts every route. The API lives under `/api`; anything else is a static file.
pub fn configure(cfg: &mut web::ServiceConfig, web_dir: &std::path::Path) {
    cfg.service(web::resource("/health").get(health::health))
        .service(web::resource("/ready").get(health::ready))
        .service(web::resource("/metrics").get(health::metrics))
        .service(
            web::scope("/api")
                .service(web::resource("/auth/login").post(auth::login))
                .service(web::resource("/auth/refresh").post(auth::refresh))
                .service(web::resource("/auth/logout").post(auth::logout))
                .service(web::resource("/me").get(auth::me))
                .service(web::resource("/users").post(users::create).get(users::list))
                .default_service(web::to(not_found)),
        )
        .service(
            actix_files::Files::new("/", web_dir)
                .index_file("index.html")
                .default_handler(web::to(not_found)),
        );
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found("not_found", "no such resource"))
}
