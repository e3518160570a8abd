//! Builds the application: settings → store (with migrations) → shared state
//! (`AppState`, owned by `state`) → HTTP server bound to its own listener
//! (port 0 in tests), with its middleware and routes mounted.

use std::net::TcpListener;
use std::time::Duration;

use actix_http::HttpService;
use actix_service::{map_config, ServiceFactoryExt};
use actix_web::body::MessageBody;
use actix_web::dev::{AppConfig, Server, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderValue, CACHE_CONTROL};
use actix_web::middleware::{from_fn, DefaultHeaders, Next};
use actix_web::{web, App, Error};

use crate::config::Settings;
use crate::mail::Mailer;
use crate::state::AppState;
use crate::store::{self, DynStore};
use crate::{error, routes, telemetry, upgraded};

/// A bound, ready-to-run server.
pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
}

/// Content Security Policy: same-origin everything, no plugins, no framing of this site;
/// the only frames it shows are blob URLs its own script made (a letter PDF on the case page).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
media-src 'self' blob:; frame-src blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
frame-ancestors 'none'";

/// Permissions Policy: what the meeting page really uses (the microphone, and screen
/// capture, which in Chromium may be a camera underneath), for this origin only; every
/// other powerful feature is denied to everyone.
const PERMISSIONS_POLICY: &str = "camera=(self), microphone=(self), display-capture=(self), \
geolocation=(), payment=(), usb=(), serial=(), hid=()";

/// `Cache-Control: no-store` on every answer under `/api`, errors included: they carry
/// patient data, tokens, tickets or who may see what, and no browser or proxy may keep
/// them. One rule here instead of a header per handler, so a new route cannot forget it.
/// The static front end (outside `/api`) keeps the default caching.
async fn no_store_api(
    req: ServiceRequest, next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let api = req.path() == "/api" || req.path().starts_with("/api/");
    let mut res = next.call(req).await?;
    if api {
        res.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(res)
}

/// The app every worker serves: the state, the extractors' error handlers, the
/// middleware and the routes.
fn app(
    state: web::Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = Error,
        InitError = (),
    >,
> {
    let json_limit = state.settings.http.json_limit_bytes;
    let web_dir = state.settings.http.web_dir.clone();
    let metrics = web::Data::from(state.metrics.clone());
    App::new()
        .app_data(state)
        .app_data(metrics)
        .app_data(web::JsonConfig::default().limit(json_limit).error_handler(error::json_error))
        .app_data(web::QueryConfig::default().error_handler(error::query_error))
        .app_data(web::PathConfig::default().error_handler(error::path_error))
        .wrap(from_fn(telemetry::observe))
        .wrap(from_fn(no_store_api))
        .wrap(
            DefaultHeaders::new()
                .add(("Content-Security-Policy", CSP))
                .add(("Strict-Transport-Security", "max-age=63072000; includeSubDomains"))
                .add(("X-Content-Type-Options", "nosniff"))
                .add(("X-Frame-Options", "DENY"))
                .add(("Referrer-Policy", "no-referrer"))
                .add(("Cross-Origin-Opener-Policy", "same-origin"))
                .add(("Permissions-Policy", PERMISSIONS_POLICY)),
        )
        .configure(|cfg| routes::configure(cfg, &web_dir))
}

impl Application {
    /// Opens the configured database (running migrations) and binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let store = store::connect(&settings.database).await?;
        Self::with_store(settings, store)
    }

    /// Binds the listener around an already-open store and starts the mail worker (must
    /// be called inside a tokio runtime).
    pub fn with_store(settings: Settings, store: DynStore) -> anyhow::Result<Self> {
        let listener = TcpListener::bind((settings.http.host.as_str(), settings.http.port))?;
        // Accepted sockets inherit the listener's send buffer.
        if settings.http.send_buffer_bytes > 0 {
            socket2::SockRef::from(&listener)
                .set_send_buffer_size(settings.http.send_buffer_bytes)?;
        }
        let port = listener.local_addr()?.port();
        let workers = match settings.http.workers {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let shutdown = settings.http.shutdown_timeout_seconds;
        let state = web::Data::new(AppState::new(settings, store)?);
        let mailer = Mailer::new(&state.settings, state.store.clone(), state.mail_wake.clone())?;
        tokio::spawn(mailer.run());
        let app_state = state.clone();
        // Assembled as actix-web's HttpServer assembles it, plus actix-http's upgrade
        // service, which HttpServer does not offer: upgraded (live) connections are carried
        // by `upgraded` once the app has answered them. AppConfig's default host is never
        // read: origins are checked against the Host header or `http.public_origins`.
        let addr = listener.local_addr()?;
        let mut builder = Server::build();
        let shutting_down = builder.graceful_shutdown_signal();
        builder = builder.listen("mdt-coordinator", listener, move || {
            let make_app = {
                let state = app_state.clone();
                move || map_config(app(state.clone()), |_| AppConfig::default())
            };
            let shutting_down = shutting_down.clone();
            HttpService::build()
                .graceful_shutdown_signal(move || {
                    let signal = shutting_down.clone();
                    async move { signal.notified().await }
                })
                .client_request_timeout(Duration::from_secs(30))
                .client_disconnect_timeout(Duration::from_secs(1))
                // Live events are small frames that must go out at once (no Nagle delay).
                .tcp_nodelay(true)
                .local_addr(addr)
                .upgrade(upgraded::factory(make_app.clone()))
                .finish(make_app().map_err(|e| e.error_response()))
                .tcp()
        })?;
        let hub = state.live.clone();
        let server = builder
            .workers(workers)
            .shutdown_timeout(shutdown)
            .shutdown_signal(async move {
                stop_requested().await;
                hub.going_away(LIVE_GOODBYE).await;
            })
            .run();
        Ok(Self { port, server, state })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Serves until SIGTERM/SIGINT; then closes the live connections with 1001 (going
    /// away) and finishes in-flight requests (graceful shutdown).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// How long a stopping server waits for its live connections' close frames to be written
/// before it stops serving.
const LIVE_GOODBYE: Duration = Duration::from_secs(2);

/// Resolves on SIGTERM (as an orchestrator stops the service) or SIGINT (Ctrl-C).
async fn stop_requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) =
            (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
        else {
            tracing::warn!("cannot listen for SIGTERM/SIGINT; the server stops only when killed");
            return std::future::pending().await;
        };
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "stopping: live connections first, then HTTP");
        // A second signal (an impatient Ctrl-C) stops at once.
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::warn!("a second stop signal: exiting now");
            std::process::exit(1);
        });
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("stopping: live connections first, then HTTP");
    }
}
