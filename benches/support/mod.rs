//! How the benches start our server, written once: as a child process (`mdt-coordinator
//! serve` with only the settings chosen here, its first coordinator made by `user add`),
//! or inside the bench process on port 0; and the PostgreSQL database a run makes and
//! drops; the two statistics every bench reports (nearest-rank percentile, median); and
//! a server process's CPU time and resident memory from `/proc`.
#![allow(dead_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actix_web::web;
use anyhow::{bail, Context, Result};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::Value;
use sqlx::{AssertSqlSafe, Connection, Executor};
use uuid::Uuid;

use mdt_coordinator::config::Settings;
use mdt_coordinator::startup::Application;
use mdt_coordinator::state::AppState;
use mdt_coordinator::store;

/// `mdt-coordinator` run as a child process: a fresh database (SQLite in a temporary
/// directory unless a URL is given) and data directory, loopback on a free port, a random
/// signing key, and meetings that may open days early (the benches' sessions start days
/// ahead and are opened at once). Nothing comes from the caller's `MDT_*` variables (but
/// those under [`Ours::pass_through`]) or from a `.env`: the working directory is the
/// temporary one.
pub struct Ours {
    pub dir: tempfile::TempDir,
    pub port: u16,
    binary: PathBuf,
    env: Vec<(&'static str, String)>,
    pass_through: Option<&'static str>,
}

impl Ours {
    /// The settings for a server on `database_url`, or on SQLite in its directory.
    pub fn new(database_url: Option<String>) -> Result<Self> {
        let binary = PathBuf::from(env!("CARGO_BIN_EXE_mdt-coordinator"));
        if !binary.is_file() {
            bail!("{} is missing: run through `cargo bench`", binary.display());
        }
        let dir = tempfile::tempdir().context("temporary directory")?;
        let url = database_url
            .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("mdt.db").display()));
        let port = free_port()?;
        let web_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
        let env = vec![
            ("MDT__DATABASE__URL", url),
            ("MDT__DATA__DIR", dir.path().join("data").display().to_string()),
            ("MDT__HTTP__HOST", "127.0.0.1".to_string()),
            ("MDT__LIVE__OPEN_EARLY_MINUTES", "172800".to_string()),
            ("MDT__HTTP__PORT", port.to_string()),
            ("MDT__HTTP__WEB_DIR", web_dir.display().to_string()),
            (
                "MDT__AUTH__JWT_SECRET",
                format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple()),
            ),
        ];
        Ok(Self { dir, port, binary, env, pass_through: None })
    }

    /// Sets one setting (an `MDT__…` variable), replacing any value it had.
    pub fn set(&mut self, key: &'static str, value: impl Into<String>) -> &mut Self {
        self.env.retain(|(k, _)| *k != key);
        self.env.push((key, value.into()));
        self
    }

    /// Lets the caller's variables starting with `prefix` (e.g. `MDT__MEDIA__`) through.
    pub fn pass_through(&mut self, prefix: &'static str) -> &mut Self {
        self.pass_through = Some(prefix);
        self
    }

    /// The working directory (with the database and data), to keep while the server runs.
    pub fn into_dir(self) -> tempfile::TempDir {
        self.dir
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `mdt-coordinator ARGS` with exactly these settings.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.binary);
        for (key, _) in std::env::vars_os() {
            let name = key.to_string_lossy();
            let passed = self.pass_through.is_some_and(|p| name.starts_with(p));
            if name.starts_with("MDT_") && !passed {
                cmd.env_remove(key);
            }
        }
        cmd.args(args)
            .envs(self.env.iter().map(|(k, v)| (*k, v.clone())))
            .current_dir(self.dir.path());
        cmd
    }

    /// Makes the first coordinator with `mdt-coordinator user add --password-stdin`.
    pub fn add_coordinator(&self, email: &str, name: &str, password: &str) -> Result<()> {
        let mut add = self
            .command(&[
                "user",
                "add",
                "--email",
                email,
                "--name",
                name,
                "--role",
                "coordinator",
                "--password-stdin",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("run mdt-coordinator user add")?;
        add.stdin
            .take()
            .context("user add: standard input")?
            .write_all(password.as_bytes())
            .context("user add: write the password")?;
        let out = add.wait_with_output().context("user add")?;
        if !out.status.success() {
            bail!(
                "mdt-coordinator user add failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// Starts `mdt-coordinator serve` and waits until `/health` answers `200`.
    pub async fn serve(&self) -> Result<Child> {
        let mut child = spawn_server(self.command(&["serve"]))?;
        let health = format!("{}/health", self.base());
        if let Err(e) =
            wait_until_answering(&mut child, &health, None, |s| s == StatusCode::OK).await
        {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
        Ok(child)
    }
}

/// Starts a server command with no input, its output discarded and its errors shown.
pub fn spawn_server(mut cmd: Command) -> Result<Child> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("start {}", cmd.get_program().to_string_lossy()))
}

/// Waits up to 30 s until `url` answers a GET (or a POST of `body`) with a status `ready`
/// accepts; fails at once if `child` exits first.
pub async fn wait_until_answering(
    child: &mut Child, url: &str, body: Option<&Value>, ready: impl Fn(StatusCode) -> bool,
) -> Result<()> {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().context("server process")? {
            bail!("the server exited before answering {url}: {status}");
        }
        let req = match body {
            Some(b) => http.post(url).json(b),
            None => http.get(url),
        };
        if let Ok(res) = req.send().await {
            if ready(res.status()) {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("the server did not answer {url} within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A free loopback port: bound to port 0, read, and released for the server to take.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("bind 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Our server inside the bench process, on port 0: the database at `url` (migrated), data
/// in `dir`, the default settings as `tweak` leaves them. Its base URL and state; it
/// serves until the process ends.
pub async fn in_process(
    url: &str, dir: &Path, tweak: impl FnOnce(&mut Settings),
) -> Result<(String, web::Data<AppState>)> {
    let mut settings = Settings::defaults()?;
    settings.database.url = SecretString::from(url.to_string());
    settings.http.port = 0;
    settings.data.dir = dir.to_path_buf();
    tweak(&mut settings);
    let store = store::connect(&settings.database).await?;
    let app = Application::with_store(settings, store)?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let state = app.state();
    tokio::spawn(app.run_until_stopped());
    Ok((base, state))
}

/// A PostgreSQL database made for one run and dropped with it.
pub struct PgDatabase {
    admin: String,
    pub name: String,
}

impl PgDatabase {
    /// Creates `<prefix>_<random>` through the admin URL; returns it and its URL.
    pub async fn create(admin: &str, prefix: &str) -> Result<(Self, String)> {
        let name = format!("{prefix}_{}", Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(admin)
            .await
            .context("connect to the PostgreSQL admin URL")?;
        conn.execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .with_context(|| format!("CREATE DATABASE {name}"))?;
        let without_query = admin.split('?').next().unwrap_or(admin);
        let server = match without_query.rfind('/') {
            Some(i) if i > "postgres://".len() => &without_query[..i],
            _ => without_query,
        };
        let url = format!("{server}/{name}");
        Ok((Self { admin: admin.to_string(), name }, url))
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop is not async and may run on the runtime: use a private one on its own thread.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin).await?;
                conn.execute(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                    .await?;
                anyhow::Ok(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop the benchmark database {}", self.name);
        }
    }
}

/// Nearest-rank percentile of durations (in any order), in milliseconds; NaN for none.
pub fn percentile_ms(values: &[Duration], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1e3
}

/// The median of the finite values; NaN for none.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

// ---------------------------------------------------------------------------------------
// /proc readings of a server process
// ---------------------------------------------------------------------------------------

/// Clock ticks per second (`getconf CLK_TCK`), the unit of `/proc/<pid>/stat` times.
pub fn clock_ticks() -> Result<f64> {
    let out = Command::new("getconf").arg("CLK_TCK").output().context("run getconf CLK_TCK")?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse::<f64>()
        .context("getconf CLK_TCK printed no number")
}

/// utime + stime of a process (all its threads), in clock ticks.
pub fn cpu_ticks(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    // Fields after the command name (which may hold spaces) start at field 3 (state);
    // utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').context("no ) in stat")? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> Result<u64> {
        fields
            .get(i - 3)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no field {i} in {path}"))
    };
    Ok(field(14)? + field(15)?)
}

pub fn rss_kib(pid: u32) -> Result<u64> {
    status_field(pid, "VmRSS:")
}

/// A number from `/proc/<pid>/status` (`VmRSS:` in KiB, `Threads:`).
pub fn status_field(pid: u32, name: &str) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no {name} in {path}"))
}
