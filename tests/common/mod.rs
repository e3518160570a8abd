//! Shared test harness: fresh databases (a SQLite file per test; a PostgreSQL database
//! per test, dropped afterwards, when `MDT_TEST_POSTGRES_URL` is set), a running server on
//! port 0, the staffed [`clinic`] the HTTP suites start from, and the macro that runs one
//! test body on both backends.
#![allow(dead_code)]

pub mod clinic;
pub mod outage;

use std::path::PathBuf;

use secrecy::SecretString;
use sqlx::{AssertSqlSafe, Connection, Executor};

use mdt_coordinator::config::Settings;
use mdt_coordinator::startup::Application;
use mdt_coordinator::state::AppState;
use mdt_coordinator::store::{self, DynStore};

pub const JWT_SECRET: &str = "test-signing-key-that-is-long-enough-0123456789";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty database for one test.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    pub dir: tempfile::TempDir,
    pg: Option<(String, String)>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> Option<Self> {
        let dir = tempfile::tempdir().expect("tempdir");
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("mdt.db").display());
                Some(Self { backend, url, dir, pg: None })
            }
            Backend::Postgres => {
                let admin = std::env::var("MDT_TEST_POSTGRES_URL").ok()?;
                let name = format!("mdt_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .expect("connect to MDT_TEST_POSTGRES_URL");
                conn.execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .await
                    .expect("create test database");
                let base = admin.split('?').next().unwrap_or(&admin);
                let url = format!(
                    "{}/{name}",
                    &base[..base.rfind('/').expect("database URL has a path")]
                );
                Some(Self { backend, url, dir, pg: Some((admin, name)) })
            }
        }
    }

    pub async fn store(&self) -> DynStore {
        store::connect(&store::settings_for(&self.url)).await.expect("open test store")
    }

    /// Runs raw SQL behind the store's back; returns the database's refusal as text.
    pub async fn raw(&self, sql: &str) -> Result<(), String> {
        let sql = AssertSqlSafe(sql.to_string());
        match self.backend {
            Backend::Sqlite => {
                let mut c =
                    sqlx::SqliteConnection::connect(&self.url).await.map_err(|e| e.to_string())?;
                c.execute(sql).await.map(|_| ()).map_err(|e| e.to_string())
            }
            Backend::Postgres => {
                let mut c =
                    sqlx::PgConnection::connect(&self.url).await.map_err(|e| e.to_string())?;
                c.execute(sql).await.map(|_| ()).map_err(|e| e.to_string())
            }
        }
    }

    pub fn settings(&self) -> Settings {
        let mut s = Settings::defaults().expect("defaults");
        s.database.url = SecretString::from(self.url.clone());
        s.http.port = 0;
        s.http.workers = 1;
        s.http.web_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("web");
        s.data.dir = self.dir.path().to_path_buf();
        s.auth.jwt_secret = SecretString::from(JWT_SECRET);
        // The fixtures' sessions start a week or more ahead and are opened at once; the
        // default window (`too_early` more than 30 minutes before the start) has its own
        // test with the default setting (tests/meeting/live.rs).
        s.live.open_early_minutes = 60 * 24 * 120;
        s
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg.take() {
            // Drop runs outside async; use a private runtime on a plain thread.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async {
                    if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                        let _ = c
                            .execute(AssertSqlSafe(format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            )))
                            .await;
                    }
                });
            })
            .join();
        }
    }
}

/// A server running on port 0 against a fresh database.
pub struct TestApp {
    pub base: String,
    pub db: TestDb,
    pub state: actix_web::web::Data<AppState>,
    pub http: reqwest::Client,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Option<Self> {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> Option<Self> {
        let db = TestDb::new(backend).await?;
        let mut settings = db.settings();
        tweak(&mut settings);
        let store = store::connect(&settings.database).await.expect("open test store");
        let app = Application::with_store(settings, store).expect("build app");
        let base = format!("http://127.0.0.1:{}", app.port());
        let state = app.state();
        tokio::spawn(app.run_until_stopped());
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Some(Self { base, db, state, http })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Calls the API as the holder of `token`, with `body` as JSON if given: the status
    /// and the JSON answer (`null` when the answer is not JSON).
    pub async fn send(
        &self, method: reqwest::Method, token: &str, path: &str, body: Option<serde_json::Value>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn get(&self, token: &str, path: &str) -> (reqwest::StatusCode, serde_json::Value) {
        self.send(reqwest::Method::GET, token, path, None).await
    }

    pub async fn post(
        &self, token: &str, path: &str, body: serde_json::Value,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        self.send(reqwest::Method::POST, token, path, Some(body)).await
    }

    /// Another instance of the server on this app's database (multi-instance tests).
    pub async fn spawn_beside(first: &TestApp) -> Instance {
        let settings = first.db.settings();
        let store = store::connect(&settings.database).await.expect("open test store");
        let app = Application::with_store(settings, store).expect("build app");
        let base = format!("http://127.0.0.1:{}", app.port());
        let state = app.state();
        tokio::spawn(app.run_until_stopped());
        Instance { base, state }
    }
}

/// A further instance sharing a [`TestApp`]'s database.
pub struct Instance {
    pub base: String,
    pub state: actix_web::web::Data<AppState>,
}

/// An account created directly through the service's own path (no coordinator needed)
/// and signed in over HTTP: `(access token, user id)`.
pub async fn sign_up(
    app: &TestApp, email: &str, name: &str, role: mdt_coordinator::domain::Role, specialty: &str,
) -> (String, String) {
    use mdt_coordinator::domain::{EmailAddress, Password, PersonName, Specialty};
    use mdt_coordinator::routes::users::{create_account, ValidUser};
    let valid = ValidUser {
        email: EmailAddress::parse(email).unwrap(),
        name: PersonName::parse(name).unwrap(),
        role,
        specialties: vec![Specialty::parse(specialty).unwrap()],
        organisation: None,
        password: Password::parse(PASSWORD).unwrap(),
    };
    let user = create_account(&app.state, valid, None, None).await.unwrap();
    let res = app
        .http
        .post(app.url("/api/auth/login"))
        .json(&serde_json::json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::OK);
    let body: serde_json::Value = res.json().await.unwrap();
    (body["access_token"].as_str().unwrap().to_string(), user.id.to_string())
}

/// The password of every test account.
pub const PASSWORD: &str = "correct horse battery staple";

/// Whether the SMTP sink can run; in CI it must.
pub fn aiosmtpd_available() -> bool {
    let available = std::process::Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        skip("no SMTP server: python3 -m pip install aiosmtpd");
    }
    available
}

/// Whether this run is CI (`CI` set to anything but empty, `0` or `false`): there, what a
/// test needs is installed by `.ci/run`, and a test that cannot run fails.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// The running test's name (libtest names each test's thread after it; a test body runs on
/// that thread, `#[tokio::test]` ones included).
pub fn current_test() -> String {
    std::thread::current().name().unwrap_or("this test").to_string()
}

/// The running test cannot run because of `reason`. That is not a pass: under CI the test
/// fails (so `.ci/run` fails); elsewhere it is named on the terminal, past the test
/// harness's output capture (which hides `eprintln!` of passing tests), as
/// `SKIPPED <test>: <reason>`, and the caller returns.
pub fn skip(reason: &str) {
    let test = current_test();
    assert!(!in_ci(), "{test} cannot run under CI: {reason}");
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED {test}: {reason} (not run, not passed)");
}

/// Whether PostgreSQL tests can run (`MDT_TEST_POSTGRES_URL` is set); if not, the test
/// is [`skip`]ped.
pub fn postgres_available() -> bool {
    let available = std::env::var_os("MDT_TEST_POSTGRES_URL").is_some();
    if !available {
        skip("no PostgreSQL: set MDT_TEST_POSTGRES_URL");
    }
    available
}

/// The SMTP sink process (`tests/smtp_sink.py`); stopped and reaped when dropped, even
/// if a test fails.
pub struct Sink(std::process::Child);

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `check` every 50 ms until it returns a value (at most 15 s).
pub async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..300 {
        if let Some(v) = check().await {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A free TCP port on loopback (for a test's own SMTP sink).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Settings that send mail by SMTP to the sink on `port`, looking at the outbox often.
pub fn mail_to_sink(settings: &mut Settings, port: u16) {
    settings.mail.transport = mdt_coordinator::config::MailTransportKind::Smtp;
    settings.mail.smtp_url = SecretString::from(format!("smtp://127.0.0.1:{port}"));
    settings.mail.poll_interval_ms = 50;
}

/// Starts the SMTP sink on `port`, writing to `dir`; waits until it listens.
pub fn start_sink(port: u16, dir: &std::path::Path) -> Option<Sink> {
    use std::io::BufRead;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_sink.py");
    let mut child = std::process::Command::new("python3")
        .arg(script)
        .arg(port.to_string())
        .arg(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take()?).read_line(&mut line).ok()?;
    let sink = Sink(child);
    (line.trim() == "ready").then_some(sink)
}

/// Runs each listed `async fn name(backend: Backend)` once per backend. Without
/// `MDT_TEST_POSTGRES_URL` the PostgreSQL cases are [`skip`]ped: named, or failed under CI.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::common::Backend::Sqlite).await; })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if !$crate::common::postgres_available() {
                    return;
                }
                super::$name($crate::common::Backend::Postgres).await;
            })*
        }
    };
}

/// Reads a WebSocket until its close frame (skipping what comes before), within 10 s;
/// fails if the connection ends without one or with no close code.
pub async fn close_frame<S>(
    ws: &mut tokio_tungstenite::WebSocketStream<S>,
) -> tokio_tungstenite::tungstenite::protocol::CloseFrame
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let frame = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => break frame,
                Some(Ok(_)) => continue,
                other => panic!("the connection ended without a close frame: {other:?}"),
            }
        }
    })
    .await
    .expect("a close frame within 10 s");
    frame.expect("a close code")
}
