//! Owns `AppState`, everything a handler may need, built once at start-up; there is no
//! other shared state. It builds no server and mounts no routes (that is `startup`).

use std::sync::Arc;

use tokio::sync::Notify;

use crate::auth::{LoginLimiter, Passwords, TokenService};
use crate::clock::Clock;
use crate::config::Settings;
use crate::live::Hub;
use crate::media::Sfu;
use crate::store::blobs::Blobs;
use crate::store::renders::Renders;
use crate::store::DynStore;
use crate::telemetry::Metrics;

/// How many bytes of rendered PNGs are kept in memory.
const RENDER_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// Everything a handler may need, built once at start-up.
pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: DynStore,
    pub passwords: Passwords,
    pub tokens: TokenService,
    pub login_limiter: LoginLimiter,
    /// Also the app data the request middleware counts into.
    pub metrics: Arc<Metrics>,
    /// Attachment bytes, content-addressed under the data directory.
    pub blobs: Blobs,
    /// Rendered frames of image attachments (the viewer's PNGs).
    pub renders: Renders,
    /// Renders signed outcomes' letters and stores their PDFs (shared with the live rooms).
    pub letters: Arc<crate::letters::issue::Issuer>,
    /// Wakes the mail worker after a change queued a message.
    pub mail_wake: Arc<Notify>,
    /// The live meeting rooms of this instance.
    pub live: Arc<Hub>,
    /// "Now" for signing, prints and the communication clocks (movable by tests).
    pub clock: Clock,
}

impl AppState {
    /// Must be called inside a tokio runtime (the live hub starts its tasks).
    pub fn new(settings: Settings, store: DynStore) -> anyhow::Result<Self> {
        let letters = Arc::new(crate::letters::issue::Issuer {
            blobs: Blobs::new(&settings.data.dir)?,
            secure: crate::domain::letter::SecureDomains::new(&settings.mail.secure_domains),
        });
        Ok(Self {
            passwords: Passwords::new()?,
            tokens: TokenService::new(&settings.auth),
            login_limiter: LoginLimiter::new(&settings.auth),
            metrics: Arc::new(Metrics::new()?),
            mail_wake: Arc::new(Notify::new()),
            blobs: Blobs::new(&settings.data.dir)?,
            renders: Renders::new(RENDER_CACHE_BYTES),
            letters: letters.clone(),
            live: Hub::start(
                store.clone(),
                settings.live.clone(),
                Sfu::new(settings.media.clone()),
                letters,
            ),
            clock: Clock::default(),
            settings: Arc::new(settings),
            store,
        })
    }
}

impl AppState {
    /// The client's address for audit rows (see [`crate::auth::client_addr`]).
    pub fn client_addr(&self, req: &actix_web::HttpRequest) -> Option<String> {
        crate::auth::client_addr(req, self.settings.http.trust_proxy_headers).map(|a| a.to_string())
    }

    /// An audit event for `action` by `actor`, from the request's client address.
    pub fn audit_event(
        &self, req: &actix_web::HttpRequest, actor: &crate::domain::User, action: &str,
        record_type: &str,
    ) -> crate::domain::NewAuditEvent {
        crate::domain::NewAuditEvent::new(action, record_type)
            .actor(actor.id)
            .from_addr(self.client_addr(req))
    }
}
