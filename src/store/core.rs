//! The store itself: [`Store`] over the configured backend, opening it, its migrations,
//! and what the whole store answers (its backend, readiness, live notifications).

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use super::db::Db;
use super::error::{ConnectError, StoreError};
use super::postgres::{self, LiveSignal};
use super::sqlite;
use crate::config::DatabaseSettings;
use crate::domain::conflict::Conflict;

/// The store, shared by every handler and task.
pub type DynStore = Arc<Store>;

/// The one storage implementation; see the area modules for its methods.
pub struct Store {
    pub(super) db: Db,
}

/// Opens the backend named by the URL's scheme and runs its migrations.
pub async fn connect(settings: &DatabaseSettings) -> Result<DynStore, ConnectError> {
    let url = settings.url.expose_secret();
    let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or("");
    let db = match scheme {
        "sqlite" => Db::Sqlite(sqlite::open(url, settings).await?),
        "postgres" | "postgresql" => Db::Postgres(postgres::open(url, settings).await?),
        other => return Err(ConnectError::UnsupportedScheme(other.to_string())),
    };
    let store = Store { db };
    store.migrate().await?;
    Ok(Arc::new(store))
}

impl Store {
    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        if self.db.is_postgres() {
            "postgres"
        } else {
            "sqlite"
        }
    }

    /// Whether several server instances may share this database (PostgreSQL), so live
    /// rooms must follow each other's events.
    pub fn serves_many_instances(&self) -> bool {
        self.db.is_postgres()
    }

    /// Runs this backend's pending migrations.
    #[tracing::instrument(skip_all)]
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrated = match &self.db {
            Db::Sqlite(lite) => sqlx::migrate!("./migrations/sqlite").run(&lite.pool).await,
            Db::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await,
        };
        migrated.map_err(|e| StoreError::Database(e.into()))
    }

    /// A round trip to the database (readiness).
    #[tracing::instrument(skip_all)]
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.run("SELECT 1", vec![]).await.map(|_| ())
    }

    /// Starts delivering other instances' event notifications to `signal`; false when
    /// the backend has none (SQLite serves one instance).
    pub fn watch_live(&self, signal: Arc<dyn LiveSignal>) -> bool {
        match &self.db {
            Db::Sqlite(_) => false,
            Db::Postgres(pool) => {
                tokio::spawn(postgres::listen_live(pool.clone(), signal));
                true
            }
        }
    }
}

/// Builds database settings for a URL with the defaults for the rest (tests, CLI).
pub fn settings_for(url: &str) -> DatabaseSettings {
    DatabaseSettings { url: SecretString::from(url), max_connections: 10, busy_timeout_ms: 5000 }
}

/// Runs a workflow that plans from what it reads and then applies the plan (composing
/// mail in between) again while what it read changed before the plan could be applied
/// (`409 changed_meanwhile`), up to three times.
pub async fn until_unchanged<T, F, Fut>(mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Err(StoreError::Conflict(Conflict::Changed)) if tries < 2 => tries += 1,
            other => return other,
        }
    }
}
