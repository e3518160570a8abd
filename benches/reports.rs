//! Activity report benchmark (issues 7 and 17: "measure what the services measure"), on
//! SQLite and on PostgreSQL in one run.
//!
//! **Seed.** A year of activity written only through the store's public API, so the rows
//! are what the product writes: 50 weekly series (17 rheumatology, 17 spinal, 16 pain)
//! for 52 weeks of 2025, 8 cases a session (20,800 case rows). Patients come from a pool
//! of 6,000, each registered with one of six GP practices (A81001–A81006; five of them
//! recorded as practices, one left unknown). Each case is booked 3–62 days before its
//! session; its proforma's referral date is 3–40 days before the booking's UK date (the
//! type has no undated proforma, so every case is dated); about 1 in 8 is urgent. The
//! session's chair triages each booking 0–3 days after it is made, before the session:
//! most are accepted; about 1 in 25 is returned with a reason, then resubmitted and
//! accepted when that can happen before the booking cut-off (else it stays returned and
//! is not discussed). The last accepted case of every fourth session is withdrawn. Each
//! session is then run live (opened, four attendees, every accepted case started and
//! completed, closed) and every discussed case gets a signed outcome. Series are seeded
//! `REPORTS_SEED_TASKS` at a time. Every variation is deterministic.
//!
//! **Measures**, per backend, each timed `REPORTS_RUNS` times after one untimed warm-up,
//! as median and p90 (nearest rank) in ms:
//! - the peer: ONE hand-written SQL `GROUP BY` (specialty, case state, urgency: count,
//!   first and last booking) over the same rows on the same database, through a plain
//!   sqlx pool of one connection opened by the bench (so no run pays for opening a
//!   connection), the window's bounds (UK local midnights) bound as `DateTime<Utc>` as
//!   the product stores them;
//! - `GET /api/reports/activity` JSON over HTTP as the coordinator, for 2025 and for
//!   spinal in June 2025, each with its ratio to the peer over the same window; the
//!   year's JSON also after a write to one month before each run (a no-op update of a
//!   December spinal case: the month's kept tallies are computed again) and after a
//!   write to every month (a no-op update of the bank holidays: a cold report);
//! - the identified, audited CSV of 2025 (`&format=csv`), its ratio to the year's peer;
//! - `GET /api/reports/practices` JSON for 2025 (also after a write to one month), or
//!   "not available" where it answers 404.
//!
//! Issue 17's targets, marked in the table: the year's JSON at most 2× the peer and under
//! 100 ms at the median; the year's CSV under 1 s.
//!
//! Run: `cargo bench --bench reports`. Settings (environment):
//! - `REPORTS_BACKENDS` (`sqlite,postgres`): which backends, in that order.
//! - `REPORTS_POSTGRES_URL`, else `MDT_TEST_POSTGRES_URL`, else
//!   `postgres://postgres@127.0.0.1:5432/postgres`: a PostgreSQL admin URL; the run makes
//!   a database `reports_bench_<random>` there and drops it at the end. When PostgreSQL
//!   cannot be reached the run says so loudly and exits non-zero after the rest (skipped
//!   is not passed).
//! - `REPORTS_RUNS` (9), `REPORTS_WEEKS` (52), `REPORTS_SEED_TASKS` (4).
//! - For developers iterating: `REPORTS_DB_DIR=DIR` keeps the SQLite database as
//!   `DIR/reports.db` and `REPORTS_KEEP=1` keeps the PostgreSQL database
//!   `reports_bench_keep`; a later run reuses a kept database (no seeding) when it holds
//!   this seed's complete year for the same `REPORTS_WEEKS`, and seeds it anew otherwise.
//!   The audited CSV adds audit rows to a kept database on each run.

use std::collections::BTreeSet;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::SqlitePoolOptions;
use sqlx::{Connection, Executor};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use uuid::Uuid;

use mdt_coordinator::domain::case::ReturnReason;
use mdt_coordinator::domain::letter::PracticeDetails;
use mdt_coordinator::domain::live::{EventBody, NewLiveEvent};
use mdt_coordinator::domain::nhs_number::check_digit;
use mdt_coordinator::domain::proforma::Proforma;
use mdt_coordinator::domain::schedule::{SessionPlan, CLINIC_TZ};
use mdt_coordinator::domain::triage::Decision;
use mdt_coordinator::domain::*;
use mdt_coordinator::routes::users::{create_account, ValidUser};
use mdt_coordinator::state::AppState;
use mdt_coordinator::store::DynStore;

mod support;
use support::PgDatabase;

const PASSWORD: &str = "benchmark password 2026";
const COORDINATOR: &str = "coordinator@bench.test";
const CASES_PER_SESSION: usize = 8;
/// (specialty, series per week): 17 + 17 + 16 = 50.
const SPECIALTIES: [(&str, usize); 3] = [("rheumatology", 17), ("spinal", 17), ("pain", 16)];
const SESSIONS_PER_WEEK: usize = 50;
const PATIENTS: usize = 6000;
/// The patients' practices; all but the last are recorded as practices.
const PRACTICES: [&str; 6] = ["A81001", "A81002", "A81003", "A81004", "A81005", "A81006"];
/// In every seeded session's title: a kept database is reused only when it holds this
/// seed (change it when the seed changes).
const SEED_TAG: &str = "[reports bench seed 2]";
const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const KEPT_POSTGRES: &str = "reports_bench_keep";
const YEAR: (&str, &str) = ("2025-01-01", "2025-12-31");
const JUNE: (&str, &str) = ("2025-06-01", "2025-06-30");

// ---------------------------------------------------------------------------------------
// Settings

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

struct Config {
    runs: usize,
    weeks: u32,
    seed_tasks: usize,
    backends: Vec<Backend>,
    postgres_admin: String,
    sqlite_dir: Option<PathBuf>,
    keep_postgres: bool,
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match env_var(name) {
        None => Ok(default),
        Some(raw) => raw.parse().ok().with_context(|| format!("{name}={raw} is not a number")),
    }
}

impl Config {
    fn from_env() -> Result<Self> {
        let backends = env_var("REPORTS_BACKENDS")
            .unwrap_or_else(|| "sqlite,postgres".into())
            .split(',')
            .map(|b| match b.trim().to_ascii_lowercase().as_str() {
                "sqlite" => Ok(Backend::Sqlite),
                "postgres" | "postgresql" | "pg" => Ok(Backend::Postgres),
                other => bail!("REPORTS_BACKENDS: unknown backend {other:?} (sqlite, postgres)"),
            })
            .collect::<Result<Vec<_>>>()?;
        let config = Self {
            runs: env_number("REPORTS_RUNS", 9)?,
            weeks: env_number("REPORTS_WEEKS", 52)?,
            seed_tasks: env_number("REPORTS_SEED_TASKS", 4)?,
            backends,
            postgres_admin: env_var("REPORTS_POSTGRES_URL")
                .or_else(|| env_var("MDT_TEST_POSTGRES_URL"))
                .unwrap_or_else(|| DEFAULT_POSTGRES.into()),
            sqlite_dir: env_var("REPORTS_DB_DIR").map(PathBuf::from),
            keep_postgres: env_var("REPORTS_KEEP").is_some_and(|v| v != "0"),
        };
        if config.runs == 0 || config.weeks == 0 || config.seed_tasks == 0 {
            bail!("REPORTS_RUNS, REPORTS_WEEKS and REPORTS_SEED_TASKS must be at least 1");
        }
        Ok(config)
    }
}

// ---------------------------------------------------------------------------------------
// Where each backend's database is

/// A backend's database for this run, and whether it already holds the seeded year.
struct Target {
    url: String,
    seeded: bool,
    _dir: Option<tempfile::TempDir>,
    _database: Option<PgDatabase>,
}

async fn sqlite_target(config: &Config) -> Result<Target> {
    let Some(dir) = &config.sqlite_dir else {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}", dir.path().join("reports.db").display());
        return Ok(Target { url, seeded: false, _dir: Some(dir), _database: None });
    };
    std::fs::create_dir_all(dir).with_context(|| format!("REPORTS_DB_DIR {}", dir.display()))?;
    let path = dir.join("reports.db");
    let url = format!("sqlite://{}", path.display());
    let seeded = path.exists() && holds_seeded_year(&url, config.weeks).await;
    if seeded {
        eprintln!("SQLite: reusing {} (it holds the seeded year)", path.display());
    } else {
        for suffix in ["", "-wal", "-shm"] {
            let file = PathBuf::from(format!("{}{suffix}", path.display()));
            match std::fs::remove_file(&file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("remove {}", file.display()))
                }
                _ => {}
            }
        }
        eprintln!("SQLite: seeding {} anew (kept for the next run)", path.display());
    }
    Ok(Target { url, seeded, _dir: None, _database: None })
}

async fn postgres_target(config: &Config) -> Result<Target> {
    let admin = &config.postgres_admin;
    let within = |what: &'static str| move |_| anyhow::anyhow!("{what}: no answer within 20 s");
    let limit = Duration::from_secs(20);
    if !config.keep_postgres {
        let made = tokio::time::timeout(limit, PgDatabase::create(admin, "reports_bench"))
            .await
            .map_err(within("create the benchmark database"))??;
        let (database, url) = made;
        return Ok(Target { url, seeded: false, _dir: None, _database: Some(database) });
    }
    let url = database_url(admin, KEPT_POSTGRES);
    let mut conn = tokio::time::timeout(limit, sqlx::PgConnection::connect(admin))
        .await
        .map_err(within("connect to the PostgreSQL admin URL"))?
        .context("connect to the PostgreSQL admin URL")?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(KEPT_POSTGRES)
            .fetch_one(&mut conn)
            .await?;
    let seeded = exists && holds_seeded_year(&url, config.weeks).await;
    if seeded {
        eprintln!(
            "PostgreSQL: reusing the kept database {KEPT_POSTGRES} (it holds the seeded year)"
        );
    } else {
        conn.execute("DROP DATABASE IF EXISTS reports_bench_keep WITH (FORCE)").await?;
        conn.execute("CREATE DATABASE reports_bench_keep").await?;
        eprintln!("PostgreSQL: seeding {KEPT_POSTGRES} anew (kept for the next run)");
    }
    Ok(Target { url, seeded, _dir: None, _database: None })
}

/// The URL of database `name` on the server of `admin` (as `PgDatabase::create` makes it).
fn database_url(admin: &str, name: &str) -> String {
    let without_query = admin.split('?').next().unwrap_or(admin);
    let server = match without_query.rfind('/') {
        Some(i) if i > "postgres://".len() => &without_query[..i],
        _ => without_query,
    };
    format!("{server}/{name}")
}

/// `url` with any password hidden, for messages.
fn redacted(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else { return url.to_string() };
    match url.rfind('@').filter(|at| *at > start) {
        Some(at) => match url[start..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &url[..start], &url[at..]),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// Whether the database at `url` holds this seed's complete year of `weeks` weeks: the
/// coordinator, every seeded session there and closed, and every case at its end state.
async fn holds_seeded_year(url: &str, weeks: u32) -> bool {
    let check = async {
        let peer = Peer::connect(url).await?;
        let expected = i64::from(weeks) * SESSIONS_PER_WEEK as i64;
        let tag = format!("%{SEED_TAG}");
        let counts = peer.seed_counts(&tag).await;
        peer.close().await;
        let (sessions, closed, coordinators, unfinished) = counts?;
        anyhow::Ok(
            sessions == expected && closed == expected && coordinators == 1 && unfinished == 0,
        )
    };
    check.await.unwrap_or(false)
}

// ---------------------------------------------------------------------------------------
// The peer: a plain sqlx pool on the same database

/// One group of the peer's `GROUP BY`.
#[derive(sqlx::FromRow)]
struct Group {
    specialty: String,
    state: String,
    urgency: String,
    n: i64,
    first_booked: DateTime<Utc>,
    last_booked: DateTime<Utc>,
}

const GROUP_BY: &str = "SELECT s.specialty, c.state, c.urgency, COUNT(*) AS n, \
     MIN(c.booked_at) AS first_booked, MAX(c.booked_at) AS last_booked \
     FROM sessions s JOIN cases c ON c.session_id = s.id \
     WHERE s.starts_at >= $1 AND s.starts_at < $2 \
     GROUP BY s.specialty, c.state, c.urgency";
const GROUP_BY_SPECIALTY: &str = "SELECT s.specialty, c.state, c.urgency, COUNT(*) AS n, \
     MIN(c.booked_at) AS first_booked, MAX(c.booked_at) AS last_booked \
     FROM sessions s JOIN cases c ON c.session_id = s.id \
     WHERE s.starts_at >= $1 AND s.starts_at < $2 AND s.specialty = $3 \
     GROUP BY s.specialty, c.state, c.urgency";
const SEED_COUNTS: &str = "SELECT \
     (SELECT COUNT(*) FROM sessions WHERE title LIKE $1) AS sessions, \
     (SELECT COUNT(*) FROM sessions WHERE title LIKE $1 AND state = 'closed') AS closed, \
     (SELECT COUNT(*) FROM users WHERE email = $2) AS coordinators, \
     (SELECT COUNT(*) FROM cases \
      WHERE state NOT IN ('outcome_signed', 'returned', 'withdrawn')) AS unfinished";

enum Peer {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// What the peer's groups add up to.
struct Groups {
    groups: usize,
    specialties: usize,
    /// Distinct (case state, urgency) pairs.
    kinds: usize,
    cases: i64,
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
}

impl Groups {
    fn of(groups: &[Group]) -> Self {
        let kinds: BTreeSet<(&str, &str)> =
            groups.iter().map(|g| (g.state.as_str(), g.urgency.as_str())).collect();
        let specialties: BTreeSet<&str> = groups.iter().map(|g| g.specialty.as_str()).collect();
        Self {
            groups: groups.len(),
            specialties: specialties.len(),
            kinds: kinds.len(),
            cases: groups.iter().map(|g| g.n).sum(),
            first: groups.iter().map(|g| g.first_booked).min(),
            last: groups.iter().map(|g| g.last_booked).max(),
        }
    }
}

impl Peer {
    async fn connect(url: &str) -> Result<Self> {
        // One connection, reused: each run measures the query, not a connection opened
        // while the last one is still on its way back to the pool.
        Ok(if url.starts_with("sqlite:") {
            Peer::Sqlite(SqlitePoolOptions::new().max_connections(1).connect(url).await?)
        } else {
            Peer::Postgres(PgPoolOptions::new().max_connections(1).connect(url).await?)
        })
    }

    async fn close(&self) {
        match self {
            Peer::Sqlite(pool) => pool.close().await,
            Peer::Postgres(pool) => pool.close().await,
        }
    }

    /// The one `GROUP BY` over the sessions starting in `[starts, ends)`, of `specialty`
    /// or all.
    async fn group_by(
        &self, starts: DateTime<Utc>, ends: DateTime<Utc>, specialty: Option<&str>,
    ) -> Result<Groups> {
        let sql = if specialty.is_some() { GROUP_BY_SPECIALTY } else { GROUP_BY };
        let groups = match self {
            Peer::Sqlite(pool) => {
                let mut query = sqlx::query_as::<_, Group>(sql).bind(starts).bind(ends);
                if let Some(s) = specialty {
                    query = query.bind(s);
                }
                query.fetch_all(pool).await?
            }
            Peer::Postgres(pool) => {
                let mut query = sqlx::query_as::<_, Group>(sql).bind(starts).bind(ends);
                if let Some(s) = specialty {
                    query = query.bind(s);
                }
                query.fetch_all(pool).await?
            }
        };
        Ok(Groups::of(&groups))
    }

    /// A write the reports must see: `sql` run as it is (the product's triggers note what
    /// it changed).
    async fn touch(&self, sql: &'static str) -> Result<()> {
        match self {
            Peer::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(|_| ())?,
            Peer::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(|_| ())?,
        }
        Ok(())
    }

    /// (sessions with `tag`, of them closed, coordinators of the bench, cases the seed
    /// leaves at no end state).
    async fn seed_counts(&self, tag: &str) -> Result<(i64, i64, i64, i64)> {
        Ok(match self {
            Peer::Sqlite(pool) => {
                sqlx::query_as(SEED_COUNTS).bind(tag).bind(COORDINATOR).fetch_one(pool).await?
            }
            Peer::Postgres(pool) => {
                sqlx::query_as(SEED_COUNTS).bind(tag).bind(COORDINATOR).fetch_one(pool).await?
            }
        })
    }
}

/// Local midnight of `date` in the clinic's time zone, in UTC: a report window's bound.
fn uk_midnight(date: NaiveDate) -> DateTime<Utc> {
    let midnight = date.and_time(NaiveTime::MIN);
    CLINIC_TZ
        .from_local_datetime(&midnight)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&midnight))
}

/// The UTC bounds `[starts, ends)` of the UK local dates `from..=to`.
fn window((from, to): (&str, &str)) -> (DateTime<Utc>, DateTime<Utc>) {
    let date = |d: &str| NaiveDate::parse_from_str(d, "%Y-%m-%d").expect("a fixed date");
    (uk_midnight(date(from)), uk_midnight(date(to) + chrono::Days::new(1)))
}

// ---------------------------------------------------------------------------------------
// The seed

/// A deterministic spread of `n` for one purpose (`salt`), so the seed varies without a
/// random generator (splitmix64's finaliser).
fn vary(n: usize, salt: u64) -> u64 {
    let mut x = (n as u64).wrapping_add(salt.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn nhs_pool(n: usize) -> Vec<NhsNumber> {
    (400_000_000u32..)
        .filter_map(|p| {
            let digits: Vec<u32> = p.to_string().bytes().map(|b| u32::from(b - b'0')).collect();
            check_digit(&digits).and_then(|c| NhsNumber::parse(&format!("{p}{c}")).ok())
        })
        .take(n)
        .collect()
}

/// Patient `p` of the pool, always with the same details (a change would be recorded as
/// a correction on every case of the patient).
fn patient(nhs: &[NhsNumber], p: usize) -> Result<PatientDetails> {
    Ok(PatientDetails {
        nhs_number: nhs[p].clone(),
        given_name: PersonName::parse("Bench")?,
        family_name: PersonName::parse("Patient")?,
        date_of_birth: NaiveDate::from_ymd_opt(1940 + (p % 60) as i32, 1 + (p % 12) as u32, 1)
            .context("date of birth")?,
        sex: if p.is_multiple_of(2) { Sex::Female } else { Sex::Male },
        gp_practice_code: OdsCode::parse(PRACTICES[p % PRACTICES.len()])?,
    })
}

struct Staff {
    chair: User,
    others: Vec<User>,
    referrer: User,
}

/// What the seed wrote.
#[derive(Default)]
struct Tally {
    rows: usize,
    urgent: usize,
    returned: usize,
    left_returned: usize,
    withdrawn: usize,
    discussed: usize,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.rows += o.rows;
        self.urgent += o.urgent;
        self.returned += o.returned;
        self.left_returned += o.left_returned;
        self.withdrawn += o.withdrawn;
        self.discussed += o.discussed;
    }
}

fn outcome(i: usize) -> Result<OutcomeDraft> {
    let investigations = match i % 4 {
        0 => json!([{ "kind": "mri", "site": "lower back", "urgency": "routine" }]),
        1 => {
            json!([{ "kind": "bloods", "urgency": "routine" }, { "kind": "xray", "urgency": "urgent" }])
        }
        _ => json!([]),
    };
    let referrals = match i % 3 {
        0 => json!([{ "destination": "gp_discharge", "urgency": "routine", "reason": "Settled" }]),
        1 => json!([{ "destination": "orthopaedics", "urgency": "routine", "reason": "Opinion" }]),
        _ => json!([{ "destination": "pain_clinic", "urgency": "routine", "reason": "Pain" }]),
    };
    let follow_up = match i % 5 {
        0 => json!({ "kind": "none" }),
        _ => json!({ "kind": "review", "weeks": 6 }),
    };
    Ok(serde_json::from_value(json!({
        "investigations": investigations, "referrals": referrals,
        "management_plan": { "text": "Graded exercise and review." }, "follow_up": follow_up,
    }))?)
}

/// Runs one session: opened, four attendees, each case started and completed (7–15
/// minutes), closed.
async fn run_session(
    store: &DynStore, session: &Session, cases: &[Uuid], staff: &Staff,
) -> Result<()> {
    let ev = |body| NewLiveEvent { body, actor: Some(staff.chair.id), command_id: None };
    let people: Vec<&User> = std::iter::once(&staff.chair).chain(staff.others.iter()).collect();
    let mut at = session.starts_at;
    let mut opening = vec![ev(EventBody::MeetingOpened)];
    opening.extend(people.iter().map(|u| {
        ev(EventBody::ParticipantJoined {
            user_id: u.id,
            name: u.name.as_str().to_string(),
            role: u.role,
            instance: Uuid::nil(),
        })
    }));
    store.append_live_events(session.id, None, opening, at).await?;
    let mut previous: Option<Uuid> = None;
    for (i, case) in cases.iter().enumerate() {
        at += chrono::Duration::minutes(7 + (i as i64 * 3) % 9);
        let mut step: Vec<NewLiveEvent> =
            previous.map(|p| ev(EventBody::CaseCompleted { case_id: p })).into_iter().collect();
        step.push(ev(EventBody::CaseStarted { case_id: *case }));
        store.append_live_events(session.id, None, step, at).await?;
        previous = Some(*case);
    }
    at += chrono::Duration::minutes(10);
    let mut closing: Vec<NewLiveEvent> =
        previous.map(|p| ev(EventBody::CaseCompleted { case_id: p })).into_iter().collect();
    closing.extend(people.iter().map(|u| ev(EventBody::ParticipantLeft { user_id: u.id })));
    closing.push(ev(EventBody::MeetingClosed));
    store.append_live_events(session.id, None, closing, at).await?;
    Ok(())
}

/// One weekly series to seed: its place among all series (`ordinal`), its number within
/// its specialty (`k`, which sets its weekday and time).
struct SeriesJob {
    ordinal: usize,
    k: usize,
    specialty: Specialty,
    staff: Arc<Staff>,
}

const RETURN_REASONS: [ReturnReason; 4] = [
    ReturnReason::IncompleteProforma,
    ReturnReason::ConservativeCareNotTried,
    ReturnReason::ImagingNeeded,
    ReturnReason::Other,
];

/// Books, triages, runs and signs one series, week by week.
async fn seed_series(
    store: &DynStore, job: &SeriesJob, nhs: &[NhsNumber], weeks: u32,
) -> Result<Tally> {
    let staff = &job.staff;
    let chair = staff.chair.id;
    let plan = SessionPlan {
        specialty: job.specialty.clone(),
        title: format!("{} MDT {} {SEED_TAG}", job.specialty, job.k),
        duration_minutes: 120,
        case_capacity: CASES_PER_SESSION as u32,
        minutes_per_case: 10,
        booking_cutoff_hours: 48,
        chair_id: chair,
        teaching: false,
    };
    let first = NaiveDate::from_ymd_opt(2025, 1, 6).context("first date")?;
    let (_, sessions) = store
        .create_series(NewSeries {
            plan,
            first_date: first + chrono::Days::new((job.k % 5) as u64),
            local_time: NaiveTime::from_hms_opt(8 + (job.k / 5) as u32 * 2, 30, 0)
                .context("local time")?,
            weeks,
        })
        .await?;
    let hours = chrono::Duration::hours;
    let mut tally = Tally::default();
    for (w, session) in sessions.iter().enumerate() {
        let latest_decision = session.starts_at - hours(1);
        let mut accepted = Vec::new();
        for i in 0..CASES_PER_SESSION {
            // Every case of the year has its own number, whatever order series run in.
            let n = (job.ordinal * weeks as usize + w) * CASES_PER_SESSION + i;
            let id = Uuid::new_v4();
            let booked_at: DateTime<Utc> =
                session.starts_at - chrono::Duration::days(3 + ((w * 7 + i * 5) % 60) as i64);
            let booked_on = booked_at.with_timezone(&CLINIC_TZ).date_naive();
            let mut proforma = Proforma::example(booked_on);
            proforma.referral_received_on = booked_on - chrono::Days::new(3 + vary(n, 1) % 38);
            let urgency =
                if vary(n, 2).is_multiple_of(8) { Urgency::Urgent } else { Urgency::Routine };
            let case = NewCase {
                id,
                session_id: session.id,
                referrer_id: staff.referrer.id,
                patient: patient(nhs, n % PATIENTS)?,
                clinical_question: ClinicalText::parse("Question?", "clinical_question")?,
                history: ClinicalText::parse("History.", "history")?,
                urgency,
                body_site: BodySite::parse("lower back")?,
                free_text_identifies_patient: false,
                idempotency_key: None,
                patient_update: Default::default(),
                proforma,
            };
            let audit = NewAuditEvent::new("case_booked", "case").record(id);
            store.book_case(case, audit, vec![], booked_at).await.context("book a case")?;
            tally.rows += 1;
            tally.urgent += usize::from(urgency == Urgency::Urgent);

            // Triage by the chair, 0–3 days after the booking and before the session.
            let decided_at = (booked_at + hours((vary(n, 3) % 73) as i64)).min(latest_decision);
            let triage = |decision: Decision, at: DateTime<Utc>| async move {
                let audit = NewAuditEvent::new("case_triaged", "case");
                store.triage_case(id, &decision, chair, audit, vec![], at).await
            };
            if !vary(n, 4).is_multiple_of(25) {
                triage(Decision::Accept, decided_at).await.context("accept a case")?;
                accepted.push(id);
                continue;
            }
            let reason = RETURN_REASONS[(vary(n, 5) % RETURN_REASONS.len() as u64) as usize];
            let note = Some(ClinicalText::parse("Please complete and resubmit.", "note")?);
            triage(Decision::Return { reason, note }, decided_at).await.context("return a case")?;
            tally.returned += 1;
            let resubmitted_at = decided_at + hours(6 + (vary(n, 6) % 42) as i64);
            if resubmitted_at >= session.booking_closes_at() {
                tally.left_returned += 1;
                continue;
            }
            let audit = NewAuditEvent::new("case_resubmitted", "case");
            store.resubmit_case(id, audit, resubmitted_at).await.context("resubmit a case")?;
            let accepted_at =
                (resubmitted_at + hours((vary(n, 7) % 25) as i64)).min(latest_decision);
            triage(Decision::Accept, accepted_at).await.context("accept a resubmitted case")?;
            accepted.push(id);
        }
        if w % 4 == 3 {
            if let Some(last) = accepted.pop() {
                let audit = NewAuditEvent::new("case_withdrawn", "case").record(last);
                store.withdraw_case(last, audit).await.context("withdraw a case")?;
                tally.withdrawn += 1;
            }
        }
        run_session(store, session, &accepted, staff).await.context("run a session")?;
        let signed_at = session.starts_at + hours(3);
        for (i, case) in accepted.iter().enumerate() {
            let audit = NewAuditEvent::new("outcome_drafted", "case").record(case);
            let draft = store
                .draft_outcome(*case, outcome(i + w)?, chair, audit, signed_at)
                .await
                .context("draft an outcome")?;
            let audit = NewAuditEvent::new("outcome_signed", "case").record(case);
            let signed = draft.signed(chair, signed_at);
            store
                .sign_outcome(*case, &signed, audit, None, &[], Uuid::new_v4())
                .await
                .context("sign an outcome")?;
        }
        tally.discussed += accepted.len();
    }
    Ok(tally)
}

/// The staff of each specialty (a chair, three attendees, a referrer) and the coordinator
/// who runs the reports.
async fn make_staff(state: &AppState) -> Result<Vec<(Specialty, Arc<Staff>)>> {
    let account = |email: String, role, specialty: &Specialty| -> Result<ValidUser> {
        Ok(ValidUser {
            email: EmailAddress::parse(&email)?,
            name: PersonName::parse("Bench Person")?,
            role,
            specialties: vec![specialty.clone()],
            organisation: None,
            password: Password::parse(PASSWORD)?,
        })
    };
    let mut staff = Vec::new();
    for (slug, _) in SPECIALTIES {
        let s = Specialty::parse(slug)?;
        let make = |n: &str, role| account(format!("{n}-{slug}@bench.test"), role, &s);
        let chair = create_account(state, make("chair", Role::Consultant)?, None, None).await?;
        let mut others = Vec::new();
        for (n, role) in
            [("second", Role::Consultant), ("esp", Role::Practitioner), ("trainee", Role::Trainee)]
        {
            others.push(create_account(state, make(n, role)?, None, None).await?);
        }
        let referrer = create_account(state, make("fcp", Role::Practitioner)?, None, None).await?;
        staff.push((s, Arc::new(Staff { chair, others, referrer })));
    }
    let rheumatology = Specialty::parse("rheumatology")?;
    let coordinator = account(COORDINATOR.into(), Role::Coordinator, &rheumatology)?;
    create_account(state, coordinator, None, None).await?;
    Ok(staff)
}

/// Seeds the year, `tasks` series at a time.
async fn seed(
    store: &DynStore, staff: &[(Specialty, Arc<Staff>)], config: &Config,
) -> Result<Tally> {
    let registered = PRACTICES.len() - 1;
    for (i, code) in PRACTICES.iter().take(registered).enumerate() {
        let details = PracticeDetails { name: format!("Bench Surgery {}", i + 1), email: None };
        let audit = NewAuditEvent::new("practice_saved", "practice");
        let at = uk_midnight(NaiveDate::from_ymd_opt(2024, 12, 1).context("date")?);
        store.put_practice(&OdsCode::parse(code)?, &details, audit, at).await?;
    }
    let nhs: Arc<Vec<NhsNumber>> = Arc::new(nhs_pool(PATIENTS));
    let limit = Arc::new(Semaphore::new(config.seed_tasks));
    let mut jobs = JoinSet::new();
    let mut ordinal = 0;
    for (specialty, people) in staff {
        let count = SPECIALTIES.iter().find(|(s, _)| *s == specialty.as_str()).map_or(0, |s| s.1);
        for k in 0..count {
            let job = SeriesJob { ordinal, k, specialty: specialty.clone(), staff: people.clone() };
            ordinal += 1;
            let (store, nhs, limit, weeks) =
                (store.clone(), nhs.clone(), limit.clone(), config.weeks);
            jobs.spawn(async move {
                let _turn = limit.acquire_owned().await?;
                seed_series(&store, &job, &nhs, weeks)
                    .await
                    .with_context(|| format!("seed {} series {}", job.specialty, job.k))
            });
        }
    }
    let started = Instant::now();
    let mut tally = Tally::default();
    let mut done = 0;
    while let Some(joined) = jobs.join_next().await {
        tally.add(&joined.context("a seeding task")??);
        done += 1;
        if done % 5 == 0 || done == ordinal {
            eprintln!(
                "  seeded {done}/{ordinal} series: {} case rows ({:.0} s)",
                tally.rows,
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(tally)
}

// ---------------------------------------------------------------------------------------
// Measuring

fn stats(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = ms(v[v.len() / 2]);
    let rank = (9 * v.len()).div_ceil(10).clamp(1, v.len());
    (median, ms(v[rank - 1]))
}

/// Runs `f` once untimed (warm-up), then `runs` times timed; the times and the last answer.
async fn timed<T, F, Fut>(runs: usize, mut f: F) -> Result<(Vec<Duration>, T)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut last = f().await?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        last = f().await?;
        times.push(t.elapsed());
    }
    Ok((times, last))
}

/// Like [`timed`], but `write` runs (untimed) before each timed request: what a report
/// costs when the data changed since the last one.
async fn timed_after<W, WF, T, F, Fut>(
    runs: usize, mut write: W, mut f: F,
) -> Result<(Vec<Duration>, T)>
where
    W: FnMut() -> WF,
    WF: Future<Output = Result<()>>,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut last = f().await?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        write().await?;
        let t = Instant::now();
        last = f().await?;
        times.push(t.elapsed());
    }
    Ok((times, last))
}

/// A no-op update of one spinal case booked into a December 2025 session: a write to
/// one specialty's month.
const TOUCH_ONE_MONTH: &str = "UPDATE cases SET urgency = urgency WHERE id = (SELECT c.id \
     FROM cases c JOIN sessions s ON s.id = c.session_id WHERE s.specialty = 'spinal' \
     AND s.starts_at >= '2025-12-08' AND s.starts_at < '2025-12-13' ORDER BY c.id LIMIT 1)";
/// A no-op update of the bank holidays: every month's working days may have changed.
const TOUCH_EVERY_MONTH: &str = "UPDATE bank_holidays SET name = name";

/// One GET as the coordinator, body read whole.
async fn fetch(
    http: &reqwest::Client, url: &str, token: &str,
) -> Result<(StatusCode, bytes::Bytes)> {
    let res = http.get(url).bearer_auth(token).send().await?;
    let status = res.status();
    Ok((status, res.bytes().await?))
}

/// One GET that must succeed.
async fn fetch_ok(http: &reqwest::Client, url: &str, token: &str) -> Result<bytes::Bytes> {
    let (status, body) = fetch(http, url, token).await?;
    if !status.is_success() {
        bail!("GET {url}: {status}: {}", String::from_utf8_lossy(&body[..body.len().min(300)]));
    }
    Ok(body)
}

/// A line of a backend's table.
struct Line {
    what: String,
    /// (median, p90) in ms; none when not measured.
    ms: Option<(f64, f64)>,
    ratio: Option<f64>,
    note: String,
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "MISSED"
    }
}

/// Seeds the backend's database if needed and prints its table.
async fn bench(config: &Config, backend: Backend, target: &Target) -> Result<()> {
    let name = backend.name();
    let data = tempfile::tempdir()?;
    let (base, state) = support::in_process(&target.url, data.path(), |_| {}).await?;
    let peer = Peer::connect(&target.url).await.context("the peer's pool")?;
    let seeding = if target.seeded {
        "seed reused".to_string()
    } else {
        eprintln!(
            "{name}: seeding {} weeks × {SESSIONS_PER_WEEK} sessions × {CASES_PER_SESSION} cases, \
             {} series at a time…",
            config.weeks, config.seed_tasks
        );
        let started = Instant::now();
        let staff = make_staff(&state).await?;
        let t = seed(&state.store, &staff, config).await?;
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "{name}: seeded {} case rows in {secs:.0} s: {} urgent, {} returned at triage ({} left \
             returned), {} withdrawn, {} discussed with a signed outcome",
            t.rows, t.urgent, t.returned, t.left_returned, t.withdrawn, t.discussed
        );
        format!("seeded in {secs:.0} s")
    };

    let http = reqwest::Client::new();
    let login: Value = http
        .post(format!("{base}/api/auth/login"))
        .json(&json!({ "email": COORDINATOR, "password": PASSWORD }))
        .send()
        .await?
        .error_for_status()
        .context("log in as the coordinator")?
        .json()
        .await?;
    let token = login["access_token"].as_str().context("no access token")?.to_string();
    let runs = config.runs;
    let load = load_average();
    let (year_starts, year_ends) = window(YEAR);
    let (june_starts, june_ends) = window(JUNE);
    let mut lines = Vec::new();

    // The year: peer, JSON, CSV.
    let (times, year) = timed(runs, || peer.group_by(year_starts, year_ends, None)).await?;
    let peer_year = stats(times);
    let booked = |g: &Groups| match (g.first, g.last) {
        (Some(a), Some(b)) => format!(", booked {} to {}", a.date_naive(), b.date_naive()),
        _ => String::new(),
    };
    lines.push(Line {
        what: "peer: SQL GROUP BY, 2025".into(),
        ms: Some(peer_year),
        ratio: None,
        note: format!(
            "{} groups ({} specialties × {} state/urgency), {} case rows{}",
            year.groups,
            year.specialties,
            year.kinds,
            year.cases,
            booked(&year)
        ),
    });
    let activity = format!("{base}/api/reports/activity?from={}&to={}", YEAR.0, YEAR.1);
    let (times, body) = timed(runs, || fetch_ok(&http, &activity, &token)).await?;
    let (m, p) = stats(times);
    lines.push(Line {
        what: "JSON over HTTP, 2025".into(),
        ms: Some((m, p)),
        ratio: Some(m / peer_year.0),
        note: format!(
            "{} kB; target <100 ms and ≤2× peer: {}",
            body.len() / 1024,
            verdict(m < 100.0 && m <= 2.0 * peer_year.0)
        ),
    });

    // The same after a write to one month (the realistic case: today's month changes all
    // day), and after a write that changes every month (a cold report).
    for (label, touch) in
        [("one month changed", TOUCH_ONE_MONTH), ("every month changed", TOUCH_EVERY_MONTH)]
    {
        let (times, body) =
            timed_after(runs, || peer.touch(touch), || fetch_ok(&http, &activity, &token)).await?;
        let (m, p) = stats(times);
        lines.push(Line {
            what: format!("JSON over HTTP, 2025, {label}"),
            ms: Some((m, p)),
            ratio: Some(m / peer_year.0),
            note: format!("{} kB", body.len() / 1024),
        });
    }

    // One specialty, one month.
    let (times, june) =
        timed(runs, || peer.group_by(june_starts, june_ends, Some("spinal"))).await?;
    let peer_june = stats(times);
    lines.push(Line {
        what: "peer: SQL GROUP BY, spinal June 2025".into(),
        ms: Some(peer_june),
        ratio: None,
        note: format!("{} groups, {} case rows{}", june.groups, june.cases, booked(&june)),
    });
    let month =
        format!("{base}/api/reports/activity?from={}&to={}&specialty=spinal", JUNE.0, JUNE.1);
    let (times, body) = timed(runs, || fetch_ok(&http, &month, &token)).await?;
    let (m, p) = stats(times);
    lines.push(Line {
        what: "JSON over HTTP, spinal June 2025".into(),
        ms: Some((m, p)),
        ratio: Some(m / peer_june.0),
        note: format!("{} kB", body.len() / 1024),
    });

    let csv = format!("{activity}&format=csv");
    let (times, body) = timed(runs, || fetch_ok(&http, &csv, &token)).await?;
    let (m, p) = stats(times);
    let rows = body.iter().filter(|b| **b == b'\n').count().saturating_sub(1);
    lines.push(Line {
        what: "CSV over HTTP, 2025 (identified, audited)".into(),
        ms: Some((m, p)),
        ratio: Some(m / peer_year.0),
        note: format!(
            "{} kB, {rows} rows; target <1 s: {}",
            body.len() / 1024,
            verdict(m < 1000.0)
        ),
    });

    let practices = format!("{base}/api/reports/practices?from={}&to={}", YEAR.0, YEAR.1);
    let what = "practices JSON over HTTP, 2025".to_string();
    let (status, _) = fetch(&http, &practices, &token).await?;
    if status == StatusCode::NOT_FOUND {
        lines.push(Line { what, ms: None, ratio: None, note: "not available (404)".into() });
    } else {
        let (times, body) = timed(runs, || fetch_ok(&http, &practices, &token)).await?;
        let (m, p) = stats(times);
        let note = format!("{} kB", body.len() / 1024);
        lines.push(Line { what, ms: Some((m, p)), ratio: Some(m / peer_year.0), note });
        let (times, _) = timed_after(
            runs,
            || peer.touch(TOUCH_ONE_MONTH),
            || fetch_ok(&http, &practices, &token),
        )
        .await?;
        let (m, p) = stats(times);
        lines.push(Line {
            what: "practices JSON over HTTP, 2025, one month changed".into(),
            ms: Some((m, p)),
            ratio: Some(m / peer_year.0),
            note: String::new(),
        });
    }
    peer.close().await;

    println!();
    println!(
        "activity report on {name}: {} case rows in 2025 ({} weeks, {seeding}), {runs} runs, \
         load average {load}",
        year.cases, config.weeks
    );
    println!("{:<42} {:>10} {:>10} {:>7}  notes", "measure", "median ms", "p90 ms", "× peer");
    for l in &lines {
        let (m, p) = match l.ms {
            Some((m, p)) => (format!("{m:.1}"), format!("{p:.1}")),
            None => ("—".into(), "—".into()),
        };
        let ratio = l.ratio.map(|r| format!("{r:.1}")).unwrap_or_default();
        println!("{:<42} {m:>10} {p:>10} {ratio:>7}  {}", l.what, l.note);
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let config = Config::from_env()?;
    let mut skipped = Vec::new();
    for backend in &config.backends {
        let target = match backend {
            Backend::Sqlite => sqlite_target(&config).await?,
            Backend::Postgres => match postgres_target(&config).await {
                Ok(target) => target,
                Err(e) => {
                    let line = format!(
                        "!!! PostgreSQL part SKIPPED: no database at {} ({e:#}). Set \
                         REPORTS_POSTGRES_URL or MDT_TEST_POSTGRES_URL, or \
                         REPORTS_BACKENDS=sqlite. Skipped is not passed: this run fails. !!!",
                        redacted(&config.postgres_admin)
                    );
                    println!("\n{line}");
                    eprintln!("{line}");
                    skipped.push(*backend);
                    continue;
                }
            },
        };
        bench(&config, *backend, &target).await.with_context(|| backend.name())?;
    }
    if !skipped.is_empty() {
        let names: Vec<&str> = skipped.iter().map(|b| b.name()).collect();
        let line =
            format!("!!! SKIPPED: {}; the benchmark did not run in full !!!", names.join(", "));
        println!("\n{line}");
        eprintln!("{line}");
        std::process::exit(2);
    }
    Ok(())
}
