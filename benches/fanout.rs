//! Agenda fan-out benchmark: how fast and how completely a chair's agenda change reaches
//! every viewer of a live MDT session, and what an idle viewer costs the server.
//!
//! Two scenarios, each run against every server:
//! - **one room**: N viewers (default 1,000) of one session, measured beside the peer;
//! - **many rooms**: R sessions (default 50) of V viewers each (default 100: 5,000
//!   connections), every chair sending its commands at the same time, to show that rooms
//!   do not slow each other. Ours and the floor: the peer has a single room.
//!
//! The servers, with the same harness code for all:
//! - **ours**: the real `mdt-coordinator serve` on a fresh SQLite database in a temporary
//!   directory; also on a fresh PostgreSQL database when `MDT_BENCH_POSTGRES_URL` names an
//!   admin URL (`mdt_fanout_<random>` is created there and dropped afterwards);
//! - **peer**: `benches/ws-peer/server.mjs`, a broadcast server on Node's `ws` library that
//!   speaks the same live protocol without persistence, accounts or tickets;
//! - **floor**: `benches/floor`, this executable serving the peer's
//!   protocol with the least work per delivery (one frame, one `write` per viewer, one
//!   task per CPU): not a target, the reference for what this machine allows.
//!
//! Method, identical for all: the viewers (10 trainee accounts on ours) connect 50 at a
//! time and read continuously, each checking that sequence numbers run on by exactly one
//! from its snapshot. They connect in two halves: the server's resident-memory growth
//! (`/proc/<pid>/status`) from the first half idle to all of them idle, per connection
//! of the second half, is the memory an idle connection costs. Each chair then sends M agenda reorders
//! (default 200) one at a time, each once every viewer of its room has the previous event
//! (or after 5 s, which counts as loss). Latency is the harness clock from sending the
//! command to a viewer reading its event, over every (viewer, event) pair.
//!
//! Run: `npm ci --prefix benches/ws-peer` once, then `cargo bench --bench fanout`.
//! Environment: `FANOUT_RUNS` (3), `FANOUT_SCENARIO=one|rooms` (both), `FANOUT_CLIENTS`
//! (1000), `FANOUT_ROOMS` (50), `FANOUT_ROOM_VIEWERS` (100), `FANOUT_COMMANDS` (200),
//! `FANOUT_ONLY=ours|peer`, `MDT_BENCH_POSTGRES_URL=postgres://user@host/postgres`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use futures_util::future::{join_all, try_join_all};
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch, Notify, Semaphore};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

use support::{
    clock_ticks, cpu_ticks, free_port, median, percentile_ms, rss_kib, spawn_server,
    wait_until_answering, Ours, PgDatabase,
};

mod floor;
mod support;

/// Accounts the viewers share on our server (trainees of a teaching session).
const VIEWER_ACCOUNTS: usize = 10;
/// glibc's malloc gives freed memory back to the system when it sees fit, which made the
/// growth in resident memory from half the viewers to all of them read negative in some
/// runs. Told to keep it (in the Rust servers, ours and the floor), the growth is what the
/// new connections hold.
const KEEP_FREED_MEMORY: (&str, &str) = ("MALLOC_TRIM_THRESHOLD_", "4294967296");
/// Viewers opening their connection at once.
const CONNECT_CONCURRENCY: usize = 50;
/// Each viewer's read buffer (bigger messages are read in several reads).
const READ_BUFFER_BYTES: usize = 4096;
/// Cases booked into the session: the agenda the chair reorders.
const CASES: usize = 8;
/// How long a viewer may take to receive an event before it counts as lost.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Commands in a row not delivered to every viewer in time before the run is abandoned.
const MAX_LATE_IN_A_ROW: usize = 5;
/// Quiet that ends the connection phase once every viewer has the latest event.
const QUIET: Duration = Duration::from_millis(500);
/// Quiet that ends it even though some viewer lags (its gap shows as out of order).
const LONG_QUIET: Duration = Duration::from_secs(2);
/// The longest the connection phase may keep producing traffic.
const SETTLE_LIMIT: Duration = Duration::from_secs(30);
const PASSWORD: &str = "fan-out benchmark password 2026";
const COORDINATOR: &str = "coord@bench.test";

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

fn main() -> std::process::ExitCode {
    if let Ok(port) = std::env::var(floor::PORT_VAR) {
        let served = port.parse::<u16>().context("port").and_then(floor::serve);
        if let Err(e) = served {
            eprintln!("fanout floor server failed: {e:#}");
        }
        return std::process::ExitCode::FAILURE;
    }
    match bench() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fanout benchmark failed: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn bench() -> Result<()> {
    let config = Config::from_env()?;
    let peer_script = if config.peer { Some(locate_peer()?) } else { None };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(run(&config, peer_script))
}

// ---------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------

struct Config {
    runs: usize,
    /// The scenarios to run, in order.
    scenarios: Vec<Scenario>,
    commands: usize,
    ours: bool,
    peer: bool,
    postgres: Option<String>,
}

impl Config {
    fn from_env() -> Result<Self> {
        let count =
            |name: &str, default: usize| -> Result<usize> {
                match std::env::var(name) {
                    Err(_) => Ok(default),
                    Ok(v) => v.trim().parse::<usize>().ok().filter(|n| *n > 0).with_context(|| {
                        format!("{name} must be a positive whole number, not {v:?}")
                    }),
                }
            };
        let (ours, peer) = match std::env::var("FANOUT_ONLY").ok().as_deref().map(str::trim) {
            None | Some("") => (true, true),
            Some("ours") => (true, false),
            Some("peer") => (false, true),
            Some(other) => bail!("FANOUT_ONLY must be `ours` or `peer`, not {other:?}"),
        };
        let one_room = Scenario { rooms: 1, viewers: count("FANOUT_CLIENTS", 1000)? };
        let many_rooms = Scenario {
            rooms: count("FANOUT_ROOMS", 50)?,
            viewers: count("FANOUT_ROOM_VIEWERS", 100)?,
        };
        let scenarios = match std::env::var("FANOUT_SCENARIO").ok().as_deref().map(str::trim) {
            None | Some("") => vec![one_room, many_rooms],
            Some("one") => vec![one_room],
            Some("rooms") => vec![many_rooms],
            Some(other) => bail!("FANOUT_SCENARIO must be `one` or `rooms`, not {other:?}"),
        };
        Ok(Self {
            runs: count("FANOUT_RUNS", 3)?,
            scenarios,
            commands: count("FANOUT_COMMANDS", 200)?,
            ours,
            peer,
            postgres: std::env::var("MDT_BENCH_POSTGRES_URL").ok().filter(|u| !u.trim().is_empty()),
        })
    }

    /// The servers one scenario measures: the peer has one room only.
    fn targets(&self, scenario: Scenario, peer_script: Option<&Path>) -> Vec<Target> {
        let mut targets = Vec::new();
        if self.ours {
            targets.push(Target::Ours { postgres: None });
            if let Some(admin) = &self.postgres {
                targets.push(Target::Ours { postgres: Some(admin.clone()) });
            }
        }
        if let Some(script) = peer_script {
            // The peer has one room; the floor has a room per path.
            if scenario.rooms == 1 {
                targets.push(Target::Peer { script: script.to_path_buf() });
            }
            targets.push(Target::Floor);
        }
        targets
    }
}

/// What one measurement connects: `rooms` live sessions of `viewers` viewers each, with
/// every room's chair sending its commands at the same time.
#[derive(Clone, Copy)]
struct Scenario {
    rooms: usize,
    viewers: usize,
}

impl Scenario {
    fn connections(&self) -> usize {
        self.rooms * self.viewers
    }

    fn describe(&self) -> String {
        match self.rooms {
            1 => format!("one room: {} viewers + 1 chair", self.viewers),
            n => format!(
                "{n} rooms at once: {} viewers + 1 chair each ({} connections)",
                self.viewers,
                self.connections() + n
            ),
        }
    }
}

/// Both the harness and each server hold one descriptor per connection.
fn check_open_file_limit(clients: usize) -> Result<()> {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse::<usize>().ok());
    match soft {
        Some(soft) if soft < clients + 256 => bail!(
            "the open-file limit is {soft}, too low for {clients} connections: \
             raise it (e.g. `ulimit -n {}`) or set FANOUT_CLIENTS lower",
            clients + 1024
        ),
        _ => Ok(()),
    }
}

/// The peer's script, after checking that `node` and its `ws` package are there.
fn locate_peer() -> Result<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/ws-peer");
    let install = "run `npm ci --prefix benches/ws-peer` (or set FANOUT_ONLY=ours)";
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            bail!("`node --version` failed ({}): the peer needs Node.js 18 or later", out.status)
        }
        Err(e) => bail!(
            "cannot run `node` ({e}): the peer needs Node.js 18 or later on PATH, then {install}"
        ),
    }
    if !dir.join("node_modules/ws/package.json").is_file() {
        bail!("{} is missing: {install}", dir.join("node_modules").display());
    }
    Ok(dir.join("server.mjs"))
}

// ---------------------------------------------------------------------------------------
// The run: every target, `runs` times, then the table
// ---------------------------------------------------------------------------------------

#[derive(Clone)]
enum Target {
    /// `mdt-coordinator serve`; on PostgreSQL when an admin URL is given.
    Ours { postgres: Option<String> },
    /// `node benches/ws-peer/server.mjs PORT`.
    Peer { script: PathBuf },
    /// This executable with FANOUT_FLOOR_PORT (`benches/floor`): the least work any
    /// server can do per delivery on this machine.
    Floor,
}

impl Target {
    fn label(&self) -> &'static str {
        match self {
            Target::Ours { postgres: None } => "ours (SQLite)",
            Target::Ours { postgres: Some(_) } => "ours (PostgreSQL)",
            Target::Peer { .. } => "peer (node ws)",
            Target::Floor => "floor (raw Rust)",
        }
    }

    fn is_peer(&self) -> bool {
        matches!(self, Target::Peer { .. })
    }
}

async fn run(config: &Config, peer_script: Option<PathBuf>) -> Result<()> {
    if config.ours && config.postgres.is_none() {
        println!("(ours on PostgreSQL skipped: set MDT_BENCH_POSTGRES_URL to include it)");
    }
    let mut failures = Vec::new();
    for &scenario in &config.scenarios {
        check_open_file_limit(scenario.connections())?;
        let mut targets = config.targets(scenario, peer_script.as_deref());
        println!();
        println!(
            "agenda fan-out, {}; {} agenda commands per chair, {} run(s)",
            scenario.describe(),
            config.commands,
            config.runs
        );
        let mut rows: Vec<(usize, &'static str, Figures)> = Vec::new();
        for run in 1..=config.runs {
            let mut unavailable = Vec::new();
            for target in &targets {
                eprintln!("run {run}/{}: {}", config.runs, target.label());
                match measure(target, config, scenario).await {
                    Ok(Some(figures)) => rows.push((run, target.label(), figures)),
                    Ok(None) => {
                        println!("{}: live channel not available", target.label());
                        unavailable.push(target.label());
                    }
                    // Reported at once and again at the end; the other servers still run.
                    Err(e) => {
                        eprintln!("  {} FAILED: {e:#}", target.label());
                        failures.push(format!("run {run}, {}: {e:#}", target.label()));
                    }
                }
            }
            targets.retain(|t| !unavailable.contains(&t.label()));
        }
        print_report(config, scenario, &rows);
    }
    if !failures.is_empty() {
        bail!("{} measurement(s) failed:\n  {}", failures.len(), failures.join("\n  "));
    }
    Ok(())
}

/// One server measured once: start, set up, connect, command, summarise. `None` when the
/// server has no live channel yet.
async fn measure(target: &Target, config: &Config, scenario: Scenario) -> Result<Option<Figures>> {
    let server = match target {
        Target::Ours { postgres } => Server::start_ours(postgres.as_deref()).await?,
        Target::Peer { script } => Server::start_peer(script).await?,
        Target::Floor => Server::start_floor().await?,
    };
    let fixtures = match target {
        Target::Ours { .. } => Fixture::ours(&server, scenario.rooms).await?,
        Target::Peer { .. } => vec![Fixture::peer(&server, 0)],
        Target::Floor => (0..scenario.rooms).map(|room| Fixture::peer(&server, room)).collect(),
    };
    let Some(first) = fixtures.first() else { bail!("no room was set up") };
    if first.live_url(&first.chair_token).await?.is_none() {
        return Ok(None);
    }

    // Half the viewers of every room, then the other half: the memory the second half
    // adds, per connection, is what an idle connection costs (the first half also pays
    // for what the first connections warm up, and what setting up left to free).
    let started = Instant::now();
    let half = scenario.viewers / 2;
    let mut rooms = Vec::with_capacity(fixtures.len());
    for fixture in fixtures {
        let fixture = Arc::new(fixture);
        let mut viewers = Viewers::new(scenario.viewers);
        viewers.connect(&fixture, 0..half, config.commands).await?;
        rooms.push((fixture, viewers));
    }
    join_all(rooms.iter().map(|(_, viewers)| viewers.board.settle(None))).await;
    let rss_half = rss_kib(server.child.id())?;
    for (fixture, viewers) in &mut rooms {
        viewers.connect(fixture, half..scenario.viewers, config.commands).await?;
    }
    let connect_secs = started.elapsed().as_secs_f64();
    join_all(rooms.iter().map(|(_, viewers)| viewers.board.settle(None))).await;
    let rss_all = rss_kib(server.child.id())?;
    let added = rooms.len() * (scenario.viewers - half);

    let mut chairs = Vec::with_capacity(rooms.len());
    for (fixture, _) in &rooms {
        chairs.push(Chair::connect(fixture).await?);
    }
    let opened = chairs.iter_mut().zip(&rooms).map(|(chair, (_, v))| chair.open_meeting(&v.board));
    try_join_all(opened).await?;
    // Every chair at once; the CPU both sides spend meanwhile is read around it.
    let ticks = clock_ticks()?;
    let cpu_before = (cpu_ticks(server.child.id())?, cpu_ticks(std::process::id())?);
    let reorders = chairs
        .iter_mut()
        .zip(&rooms)
        .map(|(chair, (fixture, v))| chair.reorder(&fixture.case_ids, config.commands, &v.board));
    let sent = try_join_all(reorders).await?;
    let cpu_after = (cpu_ticks(server.child.id())?, cpu_ticks(std::process::id())?);
    let mut outcomes = Vec::with_capacity(rooms.len());
    for ((_, viewers), sent) in rooms.into_iter().zip(sent) {
        outcomes.push((sent, viewers.stop().await));
    }
    drop(chairs);
    drop(server);

    let mut figures = Figures::from_rooms(&outcomes);
    figures.connect_secs = connect_secs;
    figures.rss_kib_per_conn = (rss_all as f64 - rss_half as f64) / added.max(1) as f64;
    let received = figures.received.max(1) as f64;
    let per_delivery =
        |before: u64, after: u64| after.saturating_sub(before) as f64 / ticks * 1e6 / received;
    figures.server_us = per_delivery(cpu_before.0, cpu_after.0);
    figures.harness_us = per_delivery(cpu_before.1, cpu_after.1);
    figures.peer = target.is_peer();
    figures.floor = matches!(target, Target::Floor);
    Ok(Some(figures))
}

// ---------------------------------------------------------------------------------------
// Servers: child processes, killed when dropped
// ---------------------------------------------------------------------------------------

struct Server {
    child: Child,
    port: u16,
    /// Ours: its settings, database and working directory.
    ours: Option<Ours>,
    /// Ours on PostgreSQL: the database created for this server (dropped after it).
    _database: Option<PgDatabase>,
}

impl Server {
    /// `mdt-coordinator serve` on a fresh database, with the coordinator account created
    /// first through `mdt-coordinator user add`.
    async fn start_ours(postgres_admin: Option<&str>) -> Result<Self> {
        let (database, url) = match postgres_admin {
            Some(admin) => {
                let (db, url) = PgDatabase::create(admin, "mdt_fanout")
                    .await
                    .context("MDT_BENCH_POSTGRES_URL")?;
                (Some(db), Some(url))
            }
            None => (None, None),
        };
        let mut ours = Ours::new(url)?;
        ours.set("MDT__LOG__FILTER", "warn").set(
            "MDT__HTTP__WORKERS",
            std::env::var("FANOUT_SERVER_WORKERS").unwrap_or_else(|_| "0".into()),
        );
        // Every chair and viewer account signs in from this one address.
        ours.set("MDT__AUTH__LOGIN_ATTEMPTS_PER_ADDRESS_PER_MINUTE", "10000");
        ours.set(KEEP_FREED_MEMORY.0, KEEP_FREED_MEMORY.1);
        ours.add_coordinator(COORDINATOR, "Bench Coordinator", PASSWORD)?;
        let child = ours.serve().await?;
        Ok(Self { child, port: ours.port, ours: Some(ours), _database: database })
    }

    /// `node server.mjs PORT`.
    async fn start_peer(script: &Path) -> Result<Self> {
        let port = free_port()?;
        let mut node = Command::new("node");
        node.arg(script).arg(port.to_string());
        let child = spawn_server(node).context("start node benches/ws-peer/server.mjs")?;
        let mut server = Self { child, port, ours: None, _database: None };
        // A plain GET gets 426 Upgrade Required: any answer means it is listening.
        let url = format!("{}/", server.origin());
        wait_until_answering(&mut server.child, &url, None, |_| true).await?;
        Ok(server)
    }

    /// This executable, serving `benches/floor` (it speaks the peer's protocol).
    async fn start_floor() -> Result<Self> {
        let port = free_port()?;
        let mut floor = Command::new(std::env::current_exe().context("this executable")?);
        floor.env(floor::PORT_VAR, port.to_string()).env(KEEP_FREED_MEMORY.0, KEEP_FREED_MEMORY.1);
        let child = spawn_server(floor).context("start the floor server")?;
        let mut server = Self { child, port, ours: None, _database: None };
        let url = format!("{}/", server.origin());
        wait_until_answering(&mut server.child, &url, None, |_| true).await?;
        Ok(server)
    }

    fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Fields (the tempdir, then the PostgreSQL database) go after the process.
        let _ = self.ours.take();
    }
}

// ---------------------------------------------------------------------------------------
// Fixtures: who connects where, and the agenda to reorder
// ---------------------------------------------------------------------------------------

struct Fixture {
    origin: String,
    /// `ws://127.0.0.1:PORT/...`, before any ticket.
    live_base: String,
    /// Ours: the REST API that issues one single-use ticket per connection.
    tickets: Option<Api>,
    viewer_tokens: Vec<String>,
    chair_token: String,
    case_ids: Vec<String>,
}

impl Fixture {
    /// Ours: `rooms` teaching sessions, each with its own consultant chair and booked
    /// cases, watched by the same trainee accounts; all made through the REST API as a
    /// coordinator would.
    async fn ours(server: &Server, rooms: usize) -> Result<Vec<Self>> {
        let api = Api::new(server.origin())?;
        let coordinator = api.login(COORDINATOR).await?;
        let viewers: Vec<String> =
            (0..VIEWER_ACCOUNTS).map(|i| format!("viewer{i}@bench.test")).collect();
        for (i, email) in viewers.iter().enumerate() {
            let name = format!("Bench Trainee {}", i + 1);
            api.create(&coordinator, "/api/users", &user(email, &name, "trainee")).await?;
        }
        let mut viewer_tokens = Vec::new();
        for email in &viewers {
            viewer_tokens.push(api.login(email).await?);
        }
        let mut patients = nhs_numbers(CASES * rooms).into_iter();
        let mut fixtures = Vec::with_capacity(rooms);
        for room in 0..rooms {
            let email = format!("chair{room}@bench.test");
            let name = format!("Bench Chair {}", room + 1);
            let chair = user(&email, &name, "consultant");
            let chair_id = field(&api.create(&coordinator, "/api/users", &chair).await?, "id")?;
            // Sessions two hours apart, none overlapping.
            let starts_at = chrono::Utc::now()
                + chrono::TimeDelta::days(3)
                + chrono::TimeDelta::hours(2 * room as i64);
            let session = api
                .create(
                    &coordinator,
                    "/api/sessions",
                    &json!({
                        "specialty": "rheumatology", "starts_at": starts_at.to_rfc3339(),
                        "duration_minutes": 120, "case_capacity": 12, "chair_id": chair_id,
                        "booking_cutoff_hours": 24, "teaching": true,
                    }),
                )
                .await?;
            let session_id = field(&session, "id")?;
            let chair_token = api.login(&email).await?;
            let mut case_ids = Vec::new();
            let cases_path = format!("/api/sessions/{session_id}/cases");
            for nhs in patients.by_ref().take(CASES) {
                let booked = api.create(&chair_token, &cases_path, &booking(&nhs)).await?;
                let case = field(&booked, "id")?;
                // Triage puts the booking on the agenda.
                let triage = format!("/api/cases/{case}/triage");
                let (status, reply) =
                    api.post(Some(&coordinator), &triage, &json!({ "decision": "accept" })).await?;
                if !status.is_success() {
                    bail!("POST {triage} answered {status}: {reply}");
                }
                case_ids.push(case);
            }
            fixtures.push(Self {
                origin: server.origin(),
                live_base: format!("ws://127.0.0.1:{}/api/sessions/{session_id}/live", server.port),
                tickets: Some(api.for_tickets(format!("/api/sessions/{session_id}/live-ticket"))?),
                viewer_tokens: viewer_tokens.clone(),
                chair_token,
                case_ids,
            });
        }
        eprintln!(
            "  set up: {rooms} teaching session(s) of {CASES} cases, each with its own chair; \
             {} trainee accounts",
            viewers.len()
        );
        Ok(fixtures)
    }

    /// The peer and the floor have no accounts: the same shape, with placeholder tokens
    /// and case ids (the floor's rooms are told apart by path).
    fn peer(server: &Server, room: usize) -> Self {
        Self {
            origin: server.origin(),
            live_base: format!("ws://127.0.0.1:{}/live/{room}", server.port),
            tickets: None,
            viewer_tokens: (0..VIEWER_ACCOUNTS).map(|i| format!("viewer{i}")).collect(),
            chair_token: "chair".into(),
            case_ids: (0..CASES).map(|_| Uuid::new_v4().to_string()).collect(),
        }
    }

    /// The URL one connection opens (ours: with a fresh ticket for `token`); `None` when
    /// the server answers 404 for tickets, i.e. has no live channel.
    async fn live_url(&self, token: &str) -> Result<Option<String>> {
        let Some(api) = &self.tickets else {
            return Ok(Some(self.live_base.clone()));
        };
        let Some(ticket) = api.ticket(token).await? else {
            return Ok(None);
        };
        Ok(Some(format!("{}?ticket={}", self.live_base, query_escape(&ticket))))
    }
}

/// Our REST API, as the setup and the ticket requests use it.
struct Api {
    http: reqwest::Client,
    base: String,
    ticket_path: String,
}

impl Api {
    fn new(base: String) -> Result<Self> {
        Ok(Self { http: reqwest::Client::builder().build()?, base, ticket_path: String::new() })
    }

    /// A client for tickets that keeps no idle HTTP connections, so that the server's
    /// memory after the viewers connect holds WebSockets only.
    fn for_tickets(&self, ticket_path: String) -> Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder().pool_max_idle_per_host(0).build()?,
            base: self.base.clone(),
            ticket_path,
        })
    }

    async fn post(
        &self, token: Option<&str>, path: &str, body: &Value,
    ) -> Result<(StatusCode, Value)> {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let res = req.send().await.with_context(|| format!("POST {path}"))?;
        let status = res.status();
        Ok((status, res.json().await.unwrap_or(Value::Null)))
    }

    /// POST that must answer 201 Created; returns the body.
    async fn create(&self, token: &str, path: &str, body: &Value) -> Result<Value> {
        let (status, reply) = self.post(Some(token), path, body).await?;
        if status != StatusCode::CREATED {
            bail!("POST {path} answered {status}, not 201: {reply}");
        }
        Ok(reply)
    }

    async fn login(&self, email: &str) -> Result<String> {
        let body = json!({ "email": email, "password": PASSWORD });
        let (status, reply) = self.post(None, "/api/auth/login", &body).await?;
        if status != StatusCode::OK {
            bail!("login as {email} answered {status}: {reply}");
        }
        field(&reply, "access_token")
    }

    /// A single-use live ticket; `None` on 404 (no live channel on this server).
    async fn ticket(&self, token: &str) -> Result<Option<String>> {
        let (status, reply) = self.post(Some(token), &self.ticket_path, &json!({})).await?;
        match status {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => field(&reply, "ticket").map(Some),
            s => bail!("POST {} answered {s}: {reply}", self.ticket_path),
        }
    }
}

fn field(body: &Value, name: &str) -> Result<String> {
    body[name].as_str().map(str::to_string).with_context(|| format!("no string `{name}` in {body}"))
}

fn user(email: &str, name: &str, role: &str) -> Value {
    json!({
        "email": email, "name": name, "role": role,
        "specialties": ["rheumatology"], "password": PASSWORD,
    })
}

fn booking(nhs_number: &str) -> Value {
    json!({
        "patient": {
            "nhs_number": nhs_number, "given_name": "Hermione", "family_name": "Quibble",
            "date_of_birth": "1978-05-17", "sex": "female", "gp_practice_code": "A81001",
        },
        "clinical_question": "Inflammatory pattern on bloods: start DMARDs?",
        "history": "Twelve weeks of hand pain and morning stiffness.",
        "urgency": "routine", "body_site": "hands", "red_flags": [],
        "free_text_identifies_patient": true, "patient_agrees": true,
        "referral_received_on": "2026-11-02", "referral_source": "gp",
    })
}

/// `n` distinct valid NHS numbers: nine digits counted up, then the Modulus 11 check
/// digit (weights 10 down to 2; 11 becomes 0; a body whose check would be 10 is skipped).
fn nhs_numbers(n: usize) -> Vec<String> {
    (400_000_000u32..)
        .filter_map(|body| {
            let digits = body.to_string();
            let sum: u32 = digits
                .bytes()
                .zip((2..=10).rev())
                .map(|(d, weight)| u32::from(d - b'0') * weight)
                .sum();
            match 11 - sum % 11 {
                10 => None,
                11 => Some(format!("{digits}0")),
                check => Some(format!("{digits}{check}")),
            }
        })
        .take(n)
        .collect()
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The live protocol, as far as the harness reads it
// ---------------------------------------------------------------------------------------

/// A server message: `snapshot`, `event`, `ack` or `error`; other fields are skipped.
#[derive(Deserialize)]
struct Incoming {
    #[serde(rename = "type")]
    kind: String,
    seq: Option<u64>,
    id: Option<String>,
    code: Option<String>,
    message: Option<String>,
    event: Option<EventBody>,
}

#[derive(Deserialize)]
struct EventBody {
    at: Option<String>,
}

/// Opens a live connection and reads its snapshot; returns the socket and its `seq`.
async fn open_socket(url: &str, origin: &str) -> Result<(Socket, u64)> {
    let mut request = url.into_client_request().context("live URL")?;
    request.headers_mut().insert("Origin", origin.parse().context("origin header")?);
    // Nagle off, as browsers and the servers have it. A small read buffer: tungstenite's
    // default (128 KiB) is cleared on every read, which made the harness, not the server
    // under test, the bottleneck.
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER_BYTES);
    let (mut socket, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true)
        .await
        .context("WebSocket handshake")?;
    let first = tokio::time::timeout(DELIVERY_TIMEOUT, next_text(&mut socket))
        .await
        .context("no snapshot within 5 s")??;
    let message: Incoming = serde_json::from_str(&first).context("snapshot is not JSON")?;
    match (message.kind.as_str(), message.seq) {
        ("snapshot", Some(seq)) => Ok((socket, seq)),
        _ => bail!("the first message was not a snapshot with a seq: {first}"),
    }
}

/// The next text message; pings are answered by tungstenite as it reads.
async fn next_text(socket: &mut Socket) -> Result<String> {
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_string()),
            Some(Ok(Message::Close(frame))) => bail!("closed by the server: {frame:?}"),
            Some(Ok(Message::Binary(_))) => bail!("unexpected binary message"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => bail!("connection ended"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Viewers: one task each, reading until told to stop
// ---------------------------------------------------------------------------------------

/// What every viewer has read so far, for pacing the chair.
struct Board {
    /// The highest `seq` each viewer has read (its snapshot's at first), or GONE.
    last: Vec<AtomicU64>,
    /// Woken whenever any viewer reads an event.
    moved: Notify,
}

/// A viewer whose connection ended: the chair no longer waits for it.
const GONE: u64 = u64::MAX;

impl Board {
    fn connected(&self) -> impl Iterator<Item = u64> + '_ {
        self.last.iter().map(|s| s.load(Ordering::Acquire)).filter(|&s| s != GONE)
    }

    fn lowest(&self) -> u64 {
        self.connected().min().unwrap_or(0)
    }

    fn highest(&self) -> u64 {
        self.connected().max().unwrap_or(0)
    }

    /// Waits until every viewer has read `seq`; false if `deadline` came first.
    async fn all_reached(&self, seq: u64, deadline: Instant) -> bool {
        let deadline = tokio::time::Instant::from_std(deadline);
        // Viewers only move forward: those already there need no second look.
        let mut caught_up = 0;
        loop {
            while caught_up < self.last.len() && self.last[caught_up].load(Ordering::Acquire) >= seq
            {
                caught_up += 1;
            }
            if caught_up == self.last.len() {
                return true;
            }
            if tokio::time::timeout_at(deadline, self.moved.notified()).await.is_err() {
                return false;
            }
        }
    }

    /// Waits for traffic to settle: every viewer at the highest `seq` (and at least
    /// `at_least`) with QUIET since the last change, or LONG_QUIET with some behind.
    async fn settle(&self, at_least: Option<u64>) {
        let started = Instant::now();
        let mut seen = (self.lowest(), self.highest());
        let mut since = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now = (self.lowest(), self.highest());
            let caught_up = now.0 == now.1 && at_least.is_none_or(|s| now.0 >= s);
            if now != seen {
                (seen, since) = (now, Instant::now());
            } else if caught_up && since.elapsed() >= QUIET {
                return;
            } else if since.elapsed() >= LONG_QUIET || started.elapsed() >= SETTLE_LIMIT {
                eprintln!(
                    "  note: traffic settled with viewers between seq {} and {}",
                    now.0, now.1
                );
                return;
            }
        }
    }
}

/// One event as a viewer read it.
struct Delivery {
    seq: u64,
    received: Instant,
    /// Wall-clock time from the event's `at` stamp to its reading, when it had one.
    since_stamp: Option<Duration>,
}

/// One viewer's record of the run.
struct ViewerLog {
    deliveries: Vec<Delivery>,
    /// Events whose `seq` was not exactly the previous one plus one.
    out_of_order: u64,
    /// Why the connection ended before the harness stopped it.
    failure: Option<String>,
}

struct Viewers {
    board: Arc<Board>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<ViewerLog>>,
}

impl Viewers {
    /// Room for `clients` viewers, none connected yet (each counts as gone until it is).
    fn new(clients: usize) -> Self {
        let board = Arc::new(Board {
            last: (0..clients).map(|_| AtomicU64::new(GONE)).collect(),
            moved: Notify::new(),
        });
        let (stop, _) = watch::channel(false);
        Self { board, stop, tasks: Vec::with_capacity(clients) }
    }

    /// Connects the viewers numbered `range`, CONNECT_CONCURRENCY at a time, each
    /// reading in its own task from its snapshot on. Fails if any of them cannot connect.
    async fn connect(
        &mut self, fixture: &Arc<Fixture>, range: std::ops::Range<usize>, commands: usize,
    ) -> Result<()> {
        let gate = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
        let (ready_tx, mut ready) = mpsc::channel::<Result<(), String>>(range.len().max(1));
        let count = range.len();
        for index in range {
            let fixture = Arc::clone(fixture);
            let board = Arc::clone(&self.board);
            let gate = Arc::clone(&gate);
            let ready = ready_tx.clone();
            let stopped = self.stop.subscribe();
            self.tasks.push(tokio::spawn(async move {
                let opened = async {
                    let _permit = gate.acquire().await?;
                    let token = &fixture.viewer_tokens[index % fixture.viewer_tokens.len()];
                    let url = fixture
                        .live_url(token)
                        .await?
                        .context("the ticket endpoint disappeared")?;
                    open_socket(&url, &fixture.origin).await
                }
                .await;
                match opened {
                    Ok((socket, seq)) => {
                        board.last[index].store(seq, Ordering::Release);
                        let _ = ready.send(Ok(())).await;
                        read_until_stopped(socket, seq, index, &board, stopped, commands).await
                    }
                    Err(e) => {
                        let failure = format!("viewer {index}: {e:#}");
                        let _ = ready.send(Err(failure.clone())).await;
                        ViewerLog {
                            deliveries: Vec::new(),
                            out_of_order: 0,
                            failure: Some(failure),
                        }
                    }
                }
            }));
        }
        drop(ready_tx);
        for _ in 0..count {
            match ready.recv().await {
                Some(Ok(())) => {}
                Some(Err(failure)) => bail!("a viewer could not connect: {failure}"),
                None => bail!("a viewer task ended before connecting"),
            }
        }
        Ok(())
    }

    /// Stops every viewer and collects what each read.
    async fn stop(self) -> Vec<ViewerLog> {
        let _ = self.stop.send(true);
        let mut logs = Vec::with_capacity(self.tasks.len());
        for task in self.tasks {
            logs.push(task.await.unwrap_or_else(|e| ViewerLog {
                deliveries: Vec::new(),
                out_of_order: 0,
                failure: Some(format!("viewer task failed: {e}")),
            }));
        }
        logs
    }
}

/// A viewer's read loop: timestamps each event as soon as it is read and checks its order.
async fn read_until_stopped(
    mut socket: Socket, snapshot_seq: u64, index: usize, board: &Board,
    mut stopped: watch::Receiver<bool>, commands: usize,
) -> ViewerLog {
    let mut log =
        ViewerLog { deliveries: Vec::with_capacity(commands + 64), out_of_order: 0, failure: None };
    let mut previous = snapshot_seq;
    loop {
        let message = tokio::select! {
            _ = stopped.changed() => break,
            message = socket.next() => message,
        };
        let received = Instant::now();
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                log.failure = Some(format!("closed by the server: {frame:?}"));
                break;
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                log.failure = Some(e.to_string());
                break;
            }
            None => {
                log.failure = Some("connection ended".into());
                break;
            }
        };
        let Ok(message) = serde_json::from_str::<Incoming>(text.as_str()) else {
            log.failure = Some(format!("not JSON: {}", text.as_str()));
            break;
        };
        let (Some(seq), "event") = (message.seq, message.kind.as_str()) else {
            continue;
        };
        let since_stamp = message
            .event
            .and_then(|e| e.at)
            .and_then(|at| chrono::DateTime::parse_from_rfc3339(&at).ok())
            .and_then(|at| SystemTime::now().duration_since(at.into()).ok());
        if seq != previous + 1 {
            log.out_of_order += 1;
        }
        previous = seq;
        log.deliveries.push(Delivery { seq, received, since_stamp });
        board.last[index].fetch_max(seq, Ordering::AcqRel);
        board.moved.notify_one();
    }
    if log.failure.is_some() {
        board.last[index].store(GONE, Ordering::Release);
        board.moved.notify_one();
    }
    log
}

// ---------------------------------------------------------------------------------------
// The chair: opens the meeting, then reorders the agenda one command at a time
// ---------------------------------------------------------------------------------------

struct Chair {
    socket: Socket,
    /// The highest `seq` the chair has seen.
    seq: u64,
}

/// A command as sent: when, and the `seq` its ack gave.
struct Sent {
    at: Instant,
    seq: u64,
}

impl Chair {
    async fn connect(fixture: &Fixture) -> Result<Self> {
        let url = fixture
            .live_url(&fixture.chair_token)
            .await?
            .context("the ticket endpoint disappeared")?;
        let (socket, seq) =
            open_socket(&url, &fixture.origin).await.context("the chair could not connect")?;
        Ok(Self { socket, seq })
    }

    /// Sends one command and reads until its ack (`Ok(seq)`) or error (`Err`).
    async fn command(
        &mut self, id: &str, command: Value,
    ) -> Result<(Instant, Result<u64, String>)> {
        let text = json!({ "type": "command", "id": id, "command": command }).to_string();
        let at = Instant::now();
        self.socket
            .send(Message::text(text))
            .await
            .with_context(|| format!("send command {id}"))?;
        let deadline = tokio::time::Instant::from_std(at + DELIVERY_TIMEOUT);
        loop {
            let text = tokio::time::timeout_at(deadline, next_text(&mut self.socket))
                .await
                .with_context(|| format!("no reply to command {id} within 5 s"))?
                .with_context(|| format!("the chair's connection, awaiting {id}"))?;
            let reply: Incoming = serde_json::from_str(&text)
                .with_context(|| format!("the chair got a message that is not JSON: {text}"))?;
            if let Some(seq) = reply.seq {
                self.seq = self.seq.max(seq);
            }
            if reply.id.as_deref() != Some(id) {
                continue;
            }
            return match (reply.kind.as_str(), reply.seq) {
                ("ack", Some(seq)) => Ok((at, Ok(seq))),
                ("error", _) => Ok((
                    at,
                    Err(format!(
                        "{}: {}",
                        reply.code.unwrap_or_default(),
                        reply.message.unwrap_or_default()
                    )),
                )),
                _ => bail!("unexpected reply to {id}: {text}"),
            };
        }
    }

    /// `open_meeting`, then waits for the viewers to settle. A refusal is reported, not
    /// fatal: the reorders may still be allowed.
    async fn open_meeting(&mut self, board: &Board) -> Result<()> {
        let (at, reply) = self.command("open", json!({ "kind": "open_meeting" })).await?;
        match reply {
            Ok(seq) => {
                if !board.all_reached(seq, at + DELIVERY_TIMEOUT).await {
                    eprintln!("  note: not every viewer received meeting_opened within 5 s");
                }
            }
            Err(refusal) => eprintln!("  note: open_meeting refused ({refusal})"),
        }
        board.settle(Some(self.seq)).await;
        Ok(())
    }

    /// `commands` reorders (the agenda rotated by one each time), each sent once every
    /// viewer has the previous event or DELIVERY_TIMEOUT has passed.
    async fn reorder(
        &mut self, case_ids: &[String], commands: usize, board: &Board,
    ) -> Result<Vec<Sent>> {
        let mut agenda = case_ids.to_vec();
        let mut sent = Vec::with_capacity(commands);
        let (mut late, mut late_in_a_row) = (0, 0);
        for k in 0..commands {
            agenda.rotate_left(1);
            let id = format!("r{k}");
            let command = json!({ "kind": "reorder", "case_ids": agenda });
            let (at, reply) = self.command(&id, command).await?;
            let seq = match reply {
                Ok(seq) => seq,
                Err(refusal) => bail!("reorder {id} was refused: {refusal}"),
            };
            sent.push(Sent { at, seq });
            if board.all_reached(seq, at + DELIVERY_TIMEOUT).await {
                late_in_a_row = 0;
                continue;
            }
            late += 1;
            late_in_a_row += 1;
            if late_in_a_row == MAX_LATE_IN_A_ROW {
                bail!(
                    "{MAX_LATE_IN_A_ROW} commands in a row (up to {id}) did not reach every \
                     viewer within 5 s: the viewers have stopped receiving events"
                );
            }
        }
        if late > 0 {
            eprintln!("  note: {late} command(s) not received by every viewer within 5 s");
        }
        Ok(sent)
    }
}

// ---------------------------------------------------------------------------------------
// Summary
// ---------------------------------------------------------------------------------------

#[derive(Clone, Default)]
struct Figures {
    peer: bool,
    /// The floor server's figures: a reference, not held to the targets.
    floor: bool,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// p99 from the event's own `at` stamp to its reading (wall clock).
    stamp_p99_ms: Option<f64>,
    expected: u64,
    received: u64,
    lost: u64,
    out_of_order: u64,
    /// Viewers whose connection ended before the harness stopped it.
    dropped: u64,
    connect_secs: f64,
    rss_kib_per_conn: f64,
    /// CPU time per delivery while the chairs send, of the server and of this harness.
    server_us: f64,
    harness_us: f64,
}

impl Figures {
    /// Every room's commands as sent and what each of its viewers read.
    fn from_rooms(rooms: &[(Vec<Sent>, Vec<ViewerLog>)]) -> Self {
        let expected: usize = rooms.iter().map(|(sent, logs)| sent.len() * logs.len()).sum();
        let mut latencies = Vec::with_capacity(expected);
        let mut stamp = Vec::with_capacity(expected);
        let mut figures = Figures { expected: expected as u64, ..Figures::default() };
        for (sent, log) in rooms.iter().flat_map(|(sent, logs)| logs.iter().map(move |l| (sent, l)))
        {
            figures.out_of_order += log.out_of_order;
            if let Some(failure) = &log.failure {
                figures.dropped += 1;
                if figures.dropped == 1 {
                    eprintln!("  note: a viewer's connection ended early: {failure}");
                }
            }
            let by_seq: HashMap<u64, &Delivery> =
                log.deliveries.iter().map(|d| (d.seq, d)).collect();
            for command in sent.iter() {
                let Some(delivery) = by_seq.get(&command.seq) else {
                    continue;
                };
                let latency = delivery.received.saturating_duration_since(command.at);
                if latency <= DELIVERY_TIMEOUT {
                    latencies.push(latency);
                    stamp.extend(delivery.since_stamp);
                }
            }
        }
        figures.received = latencies.len() as u64;
        figures.lost = figures.expected - figures.received;
        latencies.sort_unstable();
        stamp.sort_unstable();
        figures.p50_ms = percentile_ms(&latencies, 0.50);
        figures.p99_ms = percentile_ms(&latencies, 0.99);
        figures.max_ms = latencies.last().map_or(f64::NAN, |d| d.as_secs_f64() * 1e3);
        if !stamp.is_empty() {
            figures.stamp_p99_ms = Some(percentile_ms(&stamp, 0.99));
        }
        figures
    }
}

/// The median of each figure over the runs of one server.
fn medians(runs: &[&Figures]) -> Figures {
    let m = |f: fn(&Figures) -> f64| median(runs.iter().map(|r| f(r)).collect());
    let stamps: Vec<f64> = runs.iter().filter_map(|r| r.stamp_p99_ms).collect();
    Figures {
        peer: runs.first().is_some_and(|r| r.peer),
        floor: runs.first().is_some_and(|r| r.floor),
        p50_ms: m(|r| r.p50_ms),
        p99_ms: m(|r| r.p99_ms),
        max_ms: m(|r| r.max_ms),
        stamp_p99_ms: (!stamps.is_empty()).then(|| median(stamps)),
        expected: m(|r| r.expected as f64) as u64,
        received: m(|r| r.received as f64) as u64,
        lost: m(|r| r.lost as f64) as u64,
        out_of_order: m(|r| r.out_of_order as f64) as u64,
        dropped: m(|r| r.dropped as f64) as u64,
        connect_secs: m(|r| r.connect_secs),
        rss_kib_per_conn: m(|r| r.rss_kib_per_conn),
        server_us: m(|r| r.server_us),
        harness_us: m(|r| r.harness_us),
    }
}

/// The most an idle connection may cost the server, in KiB.
const KIB_PER_IDLE_CONNECTION: f64 = 16.0;
/// The many-rooms scenario's p99 must stay under this, in ms.
const ROOMS_P99_MS: f64 = 50.0;

fn print_report(config: &Config, scenario: Scenario, rows: &[(usize, &'static str, Figures)]) {
    if rows.is_empty() {
        println!("nothing was measured");
        return;
    }
    let mut labels: Vec<&str> = Vec::new();
    for (_, label, _) in rows {
        if !labels.contains(label) {
            labels.push(label);
        }
    }
    let peer_p99 = |run: Option<usize>| {
        let p99s: Vec<f64> = rows
            .iter()
            .filter(|(r, _, f)| f.peer && run.is_none_or(|run| *r == run))
            .map(|(_, _, f)| f.p99_ms)
            .collect();
        median(p99s)
    };

    println!();
    println!(
        "{:<4} {:<18} {:>8} {:>8} {:>8} {:>9} {:>9} {:>17} {:>6} {:>6} {:>8} {:>9} {:>9} {:>8} {:>8}",
        "run",
        "server",
        "p50 ms",
        "p99 ms",
        "max ms",
        "at→rd p99",
        "p99/peer",
        "received/expected",
        "lost",
        "order",
        "dropped",
        "connect s",
        "KiB/conn",
        "srv µs",
        "hns µs",
    );
    let line = |run: &str, label: &str, f: &Figures, peer: f64| {
        let ratio = if f.peer || peer.is_nan() {
            "-".to_string()
        } else {
            format!("{:.2}", f.p99_ms / peer)
        };
        let stamp = f.stamp_p99_ms.map_or("-".into(), |v| format!("{v:.2}"));
        println!(
            "{:<4} {:<18} {:>8.2} {:>8.2} {:>8.2} {:>9} {:>9} {:>17} {:>6} {:>6} {:>8} {:>9.2} {:>9.1} {:>8.1} {:>8.1}",
            run,
            label,
            f.p50_ms,
            f.p99_ms,
            f.max_ms,
            stamp,
            ratio,
            format!("{}/{}", f.received, f.expected),
            f.lost,
            f.out_of_order,
            f.dropped,
            f.connect_secs,
            f.rss_kib_per_conn,
            f.server_us,
            f.harness_us,
        );
    };
    for (run, label, figures) in rows {
        line(&run.to_string(), label, figures, peer_p99(Some(*run)));
    }
    let mut summary = Vec::new();
    for label in &labels {
        let runs: Vec<&Figures> =
            rows.iter().filter(|(_, l, _)| l == label).map(|(_, _, f)| f).collect();
        let m = medians(&runs);
        line("med", label, &m, peer_p99(None));
        summary.push((*label, m, runs));
    }

    println!();
    println!("targets ({}, medians of {} run(s)):", scenario.describe(), config.runs);
    let verdict = |met: bool| if met { "met" } else { "MISSED" };
    let peer = peer_p99(None);
    for (label, m, runs) in &summary {
        let clean = runs.iter().all(|r| r.lost == 0 && r.out_of_order == 0 && r.dropped == 0);
        println!("  {label:<18} zero loss and reordering in every run: {}", verdict(clean));
        if m.peer {
            continue;
        }
        if m.floor {
            let ratio = if peer.is_nan() {
                String::new()
            } else {
                format!(" = {:.2}× the peer's", m.p99_ms / peer)
            };
            println!(
                "  {label:<18} (reference) p99 {:.2} ms{ratio}: the least any server reached here",
                m.p99_ms,
            );
            continue;
        }
        if scenario.rooms > 1 {
            println!(
                "  {label:<18} p99 < {ROOMS_P99_MS} ms: {:.2} ms → {}",
                m.p99_ms,
                verdict(m.p99_ms < ROOMS_P99_MS)
            );
        } else if peer.is_nan() {
            println!("  {label:<18} p99 ≤ 1/3 of the peer's: no peer figure to compare");
        } else {
            let ratio = m.p99_ms / peer;
            println!(
                "  {label:<18} p99 ≤ 1/3 of the peer's: {:.2} ms vs {:.2} ms = {ratio:.2}× → {}",
                m.p99_ms,
                peer,
                verdict(ratio <= 1.0 / 3.0)
            );
        }
        println!(
            "  {label:<18} ≤ {KIB_PER_IDLE_CONNECTION} KiB per idle connection: {:.1} KiB → {}",
            m.rss_kib_per_conn,
            verdict(m.rss_kib_per_conn <= KIB_PER_IDLE_CONNECTION)
        );
    }
    println!(
        "(latency: harness clock, command sent → event read, every viewer × command; \
         at→rd: the event's `at` stamp → read; order: events whose seq was not the \
         previous + 1; dropped: viewers disconnected early; srv µs / hns µs: CPU time of the \
         server / of this harness per delivery while the chairs send)"
    );
}
