//! Backing up and restoring the embedded SQLite database with its attachments: a
//! consistent online copy taken while the service writes, and bringing one back (checked
//! before anything is replaced). PostgreSQL is backed up with `pg_dump` (README.md, "Back
//! up and restore"); this module refuses it rather than copy it half-way.
//!
//! A backup is one SQLite file: the database as one read transaction saw it (`VACUUM
//! INTO`), plus a `sqlar` table (SQLite's own archive format, so `sqlite3 FILE -Atv` lists
//! it and `sqlite3 FILE -Ax` extracts it) holding, uncompressed, every attachment and
//! letter file the copied rows name, as `attachments/<2 hex>/<sha256>`. Blob files are
//! content-addressed and never changed once written, and a row is committed only after
//! its file is in place, so the files read after the snapshot are exactly the ones it
//! references.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{Connection, Row, SqliteConnection};

use super::blobs::Blobs;
use super::core::Store;
use super::db::Db;
use super::error::BackupError;
use super::sqlite;
use crate::config::DatabaseSettings;

/// The blobs the database's rows name (attachments and signed letters' PDFs).
const REFERENCED: &str = "SELECT sha256 FROM attachments UNION SELECT sha256 FROM letters";
/// The SQLite Archive table (<https://sqlite.org/sqlar.html>).
const SQLAR: &str = "CREATE TABLE sqlar (name TEXT PRIMARY KEY, mode INT, mtime INT, \
    sz INT, data BLOB)";
/// A regular file, `rw-r--r--`, as `sqlar.mode` records it.
const FILE_MODE: i64 = 0o100644;

/// What a backup holds.
#[derive(Debug)]
pub struct BackupReport {
    pub audit_events: i64,
    pub attachments: usize,
    pub bytes: u64,
}

/// What a restore brought back.
#[derive(Debug)]
pub struct RestoreReport {
    pub database: PathBuf,
    pub audit_events: u64,
    pub attachments: usize,
}

/// Copies the SQLite database named by `settings` and the files its rows reference into
/// the new file `to`, while the service keeps writing. The copy is written beside `to`
/// under a temporary name and renamed when complete, so `to` is never half a backup.
/// Opens the database without migrating it (a newer binary must not upgrade a running
/// older service's database to back it up).
#[tracing::instrument(skip_all)]
pub async fn backup(
    settings: &DatabaseSettings, blobs: &Blobs, to: &Path,
) -> Result<BackupReport, BackupError> {
    let source = sqlite_options(settings)?.create_if_missing(false);
    if tokio::fs::try_exists(to).await? {
        return Err(BackupError::Exists(to.to_path_buf()));
    }
    let partial = beside(to, "partial");
    let done = async {
        let mut live = SqliteConnection::connect_with(&source).await?;
        // One read transaction: the copy is the database as of one instant.
        sqlx::query("VACUUM INTO $1").bind(path_text(&partial)?).execute(&mut live).await?;
        live.close().await?;
        let report = archive_blobs(&partial, blobs).await?;
        tokio::fs::File::open(&partial).await?.sync_all().await?;
        if tokio::fs::try_exists(to).await? {
            return Err(BackupError::Exists(to.to_path_buf()));
        }
        tokio::fs::rename(&partial, to).await?;
        Ok(report)
    };
    let result = done.await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&partial).await;
    }
    result
}

/// Adds to the fresh copy at `path` every blob its rows reference.
async fn archive_blobs(path: &Path, blobs: &Blobs) -> Result<BackupReport, BackupError> {
    let mut copy = SqliteConnection::connect_with(&writable(path)).await?;
    let mut tx = copy.begin().await?;
    sqlx::query(SQLAR).execute(&mut *tx).await?;
    let shas: Vec<String> = sqlx::query_scalar(REFERENCED).fetch_all(&mut *tx).await?;
    let mtime = chrono::Utc::now().timestamp();
    let mut bytes = 0;
    for sha in &shas {
        let data = blobs.get(sha).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => BackupError::MissingAttachment(sha.clone()),
            _ => BackupError::Io(e),
        })?;
        if hex::encode(Sha256::digest(&data)) != *sha {
            return Err(BackupError::DamagedAttachment(sha.clone()));
        }
        bytes += data.len() as u64;
        sqlx::query("INSERT INTO sqlar (name, mode, mtime, sz, data) VALUES ($1, $2, $3, $4, $5)")
            .bind(entry_name(sha))
            .bind(FILE_MODE)
            .bind(mtime)
            .bind(data.len() as i64)
            .bind(data)
            .execute(&mut *tx)
            .await?;
    }
    let audit_events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_events").fetch_one(&mut *tx).await?;
    tx.commit().await?;
    copy.close().await?;
    Ok(BackupReport { audit_events, attachments: shas.len(), bytes })
}

/// Brings the backup `from` back as the SQLite database named by `settings`, its files
/// into `blobs`. Refuses a target that already has a database or attachments unless
/// `force` (the service must be stopped). Nothing is replaced until the copy opens with
/// this version (migrated if the backup is older), every referenced file is in place and
/// its audit chain verifies.
#[tracing::instrument(skip_all)]
pub async fn restore(
    settings: &DatabaseSettings, blobs: &Blobs, from: &Path, force: bool,
) -> Result<RestoreReport, BackupError> {
    let target = sqlite_options(settings)?.get_filename().to_path_buf();
    if !force {
        let has_db = tokio::fs::metadata(&target).await.is_ok_and(|m| m.len() > 0);
        if has_db {
            return Err(BackupError::NotEmpty(target));
        }
        if blobs.count() > 0 {
            return Err(BackupError::NotEmpty(blobs.root().to_path_buf()));
        }
    }
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(dir).await?;
    }
    let staged = beside(&target, "restore");
    let result = stage(settings, blobs, from, &staged).await;
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            for path in [staged.clone(), wal(&staged, "-wal"), wal(&staged, "-shm")] {
                let _ = tokio::fs::remove_file(path).await;
            }
            return Err(e);
        }
    };
    for stale in [wal(&target, "-wal"), wal(&target, "-shm")] {
        match tokio::fs::remove_file(&stale).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
    }
    tokio::fs::rename(&staged, &target).await?;
    Ok(RestoreReport { database: target, ..report })
}

/// Copies the backup to `staged`, puts its files into the blob store, drops the archive
/// table, and opens, migrates and verifies the copy.
async fn stage(
    settings: &DatabaseSettings, blobs: &Blobs, from: &Path, staged: &Path,
) -> Result<RestoreReport, BackupError> {
    let not_a_backup = || BackupError::NotABackup(from.to_path_buf());
    let options = file_options(from).read_only(true);
    let mut backup = SqliteConnection::connect_with(&options).await.map_err(|_| not_a_backup())?;
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(&mut backup)
            .await
            .map_err(|_| not_a_backup())?;
    if !["sqlar", "_sqlx_migrations", "audit_events"].iter().all(|t| tables.iter().any(|n| n == t))
    {
        return Err(not_a_backup());
    }
    sqlx::query("VACUUM INTO $1").bind(path_text(staged)?).execute(&mut backup).await?;
    backup.close().await?;

    let mut copy = SqliteConnection::connect_with(&writable(staged)).await?;
    let entries = sqlx::query("SELECT name, sz, data FROM sqlar").fetch_all(&mut copy).await?;
    for entry in &entries {
        let name: String = entry.try_get("name")?;
        let size: i64 = entry.try_get("sz")?;
        let data: Vec<u8> = entry.try_get("data")?;
        let sha = name.rsplit('/').next().unwrap_or_default().to_string();
        // Compressed entries (size differs from the stored length) are not ours.
        if name != entry_name(&sha) || size != data.len() as i64 {
            return Err(not_a_backup());
        }
        if hex::encode(Sha256::digest(&data)) != sha {
            return Err(BackupError::DamagedAttachment(sha));
        }
        blobs.put(&data).await?;
    }
    let shas: Vec<String> = sqlx::query_scalar(REFERENCED).fetch_all(&mut copy).await?;
    for sha in shas {
        if blobs.get(&sha).await.is_err() {
            return Err(BackupError::MissingAttachment(sha));
        }
    }
    sqlx::query("DROP TABLE sqlar").execute(&mut copy).await?;
    sqlx::query("VACUUM").execute(&mut copy).await?;
    copy.close().await?;

    // Open it as the service will (WAL, migrations), and check its audit chain.
    let url = format!("sqlite://{}", path_text(staged)?);
    let lite = sqlite::open(&url, settings).await?;
    let store = Store { db: Db::Sqlite(lite.clone()) };
    store.migrate().await?;
    let verified = store.verify_audit().await;
    lite.pool.close().await;
    let verified = verified?;
    if let Some(seq) = verified.first_broken_seq {
        return Err(BackupError::BrokenChain { seq, checked: verified.rows_checked });
    }
    // Leave one file (no WAL beside it) to rename into place.
    SqliteConnection::connect_with(&writable(staged)).await?.close().await?;
    Ok(RestoreReport {
        database: staged.to_path_buf(),
        audit_events: verified.rows_checked,
        attachments: entries.len(),
    })
}

/// The SQLite options of the configured database; PostgreSQL and unknown schemes refused.
fn sqlite_options(settings: &DatabaseSettings) -> Result<SqliteConnectOptions, BackupError> {
    let url = settings.url.expose_secret();
    match url.split_once(':').map_or("", |(scheme, _)| scheme) {
        "sqlite" => {
            let options = SqliteConnectOptions::from_str(url)?;
            Ok(options.busy_timeout(std::time::Duration::from_millis(settings.busy_timeout_ms)))
        }
        "postgres" | "postgresql" => Err(BackupError::Postgres),
        other => Err(BackupError::UnsupportedScheme(other.to_string())),
    }
}

/// A plain connection to a backup or staged file, which keeps a rollback journal (one
/// file, no WAL beside it) once written through this.
fn file_options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new().filename(path)
}

fn writable(path: &Path) -> SqliteConnectOptions {
    file_options(path).journal_mode(SqliteJournalMode::Delete)
}

/// A hidden name in `path`'s folder for work in progress.
fn beside(path: &Path, what: &str) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{what}-{}", uuid::Uuid::new_v4().simple()))
}

/// The database file's `-wal` or `-shm` companion.
fn wal(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn path_text(path: &Path) -> Result<&str, BackupError> {
    path.to_str().ok_or_else(|| BackupError::Io(std::io::Error::other("path is not UTF-8")))
}

/// An attachment's name in the archive: its place under the data folder.
fn entry_name(sha: &str) -> String {
    format!("attachments/{}/{sha}", sha.get(..2).unwrap_or_default())
}
