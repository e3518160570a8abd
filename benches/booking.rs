//! Booking benchmark (issue 3), measured in one run on SQLite and, when
//! `MDT_TEST_POSTGRES_URL` is set, PostgreSQL:
//! (a) uncontested booking over HTTP with 32 concurrent clients (throughput, p50/p99),
//!     beside the raw ceiling: the same booking transaction through sqlx (the store's
//!     `book_case`, no HTTP) with 32 concurrent tasks;
//! (b) a contested burst: 1,000 concurrent attempts at 10 free places.
//! Each figure is the median of several rounds. Run: `cargo bench --bench booking`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{json, Value};
use uuid::Uuid;

use mdt_coordinator::domain::case::parse_date_of_birth;
use mdt_coordinator::domain::nhs_number::check_digit;
use mdt_coordinator::domain::schedule::SessionPlan;
use mdt_coordinator::domain::*;
use mdt_coordinator::mail::templates;
use mdt_coordinator::routes::users::{create_account, ValidUser};
use mdt_coordinator::state::AppState;
use mdt_coordinator::store::DynStore;

use support::PgDatabase;

mod support;

const CLIENTS: usize = 32;
const PER_CLIENT: usize = 25;
const ROUNDS: usize = 5;
const BURST: usize = 1000;
const BURST_PLACES: u32 = 10;
const BURST_ROUNDS: usize = 3;
const PASSWORD: &str = "benchmark password 2026";

/// Distinct valid NHS numbers for the whole run.
struct NhsNumbers(AtomicU32);

impl NhsNumbers {
    fn next(&self) -> String {
        loop {
            let prefix = self.0.fetch_add(1, Ordering::Relaxed);
            let digits: Vec<u32> =
                prefix.to_string().bytes().map(|b| u32::from(b - b'0')).collect();
            if let Some(c) = check_digit(&digits) {
                return format!("{prefix}{c}");
            }
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

struct Clinic {
    state: actix_web::web::Data<AppState>,
    store: DynStore,
    base: String,
    token: String,
    chair: UserId,
    physio: User,
    nhs: Arc<NhsNumbers>,
    http: reqwest::Client,
}

impl Clinic {
    async fn open(url: &str, dir: &std::path::Path) -> anyhow::Result<Self> {
        let (base, state) =
            support::in_process(url, dir, |s| s.database.max_connections = 16).await?;
        let store = state.store.clone();
        let account = |email: &str, role| ValidUser {
            email: EmailAddress::parse(email).unwrap(),
            name: PersonName::parse("Bench Person").unwrap(),
            role,
            specialties: vec![Specialty::parse("rheumatology").unwrap()],
            organisation: None,
            password: Password::parse(PASSWORD).unwrap(),
        };
        let chair =
            create_account(&state, account("chair@bench.test", Role::Consultant), None, None)
                .await?;
        let physio =
            create_account(&state, account("physio@bench.test", Role::Practitioner), None, None)
                .await?;
        let http = reqwest::Client::builder().pool_max_idle_per_host(BURST).build()?;
        let login: Value = http
            .post(format!("{base}/api/auth/login"))
            .json(&json!({ "email": "physio@bench.test", "password": PASSWORD }))
            .send()
            .await?
            .json()
            .await?;
        let token = login["access_token"].as_str().unwrap_or_default().to_string();
        Ok(Self {
            state,
            store,
            base,
            token,
            chair: chair.id,
            physio,
            nhs: Arc::new(NhsNumbers(AtomicU32::new(400_000_000))),
            http,
        })
    }

    async fn sessions(&self, n: usize, capacity: u32) -> anyhow::Result<Vec<Uuid>> {
        let mut ids = Vec::new();
        for _ in 0..n {
            let plan = SessionPlan {
                specialty: Specialty::parse("rheumatology")?,
                title: "Rheumatology MDT".into(),
                duration_minutes: 480,
                case_capacity: capacity,
                minutes_per_case: 10,
                booking_cutoff_hours: 48,
                chair_id: self.chair,
                teaching: false,
            };
            ids.push(
                self.store.create_session(plan, Utc::now() + chrono::Duration::days(30)).await?.id,
            );
        }
        Ok(ids)
    }
}

fn body(nhs: &str) -> Value {
    json!({
        "patient": { "nhs_number": nhs, "given_name": "Bench", "family_name": "Patient",
                     "date_of_birth": "1970-01-01", "sex": "female", "gp_practice_code": "A81001" },
        "clinical_question": "Benchmark question?", "history": "Benchmark history.",
        "urgency": "routine", "body_site": "lower back",
    })
}

/// The booking the HTTP route would make, built directly.
fn new_case(c: &Clinic, session_id: Uuid, nhs: &str) -> NewCase {
    NewCase {
        id: Uuid::new_v4(),
        session_id,
        referrer_id: c.physio.id,
        patient: PatientDetails {
            nhs_number: NhsNumber::parse(nhs).unwrap(),
            given_name: PersonName::parse("Bench").unwrap(),
            family_name: PersonName::parse("Patient").unwrap(),
            date_of_birth: parse_date_of_birth("1970-01-01", Utc::now().date_naive()).unwrap(),
            sex: Sex::Female,
            gp_practice_code: OdsCode::parse("A81001").unwrap(),
        },
        clinical_question: ClinicalText::parse("Benchmark question?", "clinical_question").unwrap(),
        history: ClinicalText::parse("Benchmark history.", "history").unwrap(),
        urgency: Urgency::Routine,
        body_site: BodySite::parse("lower back").unwrap(),
        free_text_identifies_patient: true,
        idempotency_key: None,
        patient_update: Default::default(),
        proforma: mdt_coordinator::domain::proforma::Proforma::example(Utc::now().date_naive()),
    }
}

/// One uncontested HTTP round: each client books PER_CLIENT cases into its own session.
async fn http_round(c: &Arc<Clinic>) -> anyhow::Result<(f64, Vec<Duration>)> {
    let sessions = c.sessions(CLIENTS, PER_CLIENT as u32).await?;
    let started = Instant::now();
    let tasks: Vec<_> = sessions
        .into_iter()
        .map(|session| {
            let c = Arc::clone(c);
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(PER_CLIENT);
                for _ in 0..PER_CLIENT {
                    let t = Instant::now();
                    let res = c
                        .http
                        .post(format!("{}/api/sessions/{session}/cases", c.base))
                        .bearer_auth(&c.token)
                        .json(&body(&c.nhs.next()))
                        .send()
                        .await?;
                    anyhow::ensure!(res.status() == 201, "booking answered {}", res.status());
                    latencies.push(t.elapsed());
                }
                Ok::<_, anyhow::Error>(latencies)
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    Ok((rate, all))
}

/// One raw round: the same booking transaction through the store (sqlx), no HTTP, from
/// `writers` concurrent tasks (32 like the HTTP clients, or 1: no lock contention at all).
/// Each session takes PER_CLIENT bookings, as in the HTTP round.
async fn raw_round(c: &Arc<Clinic>, writers: usize) -> anyhow::Result<f64> {
    let sessions = c.sessions(CLIENTS, PER_CLIENT as u32).await?;
    let session = c.store.session(sessions[0]).await?.ok_or_else(|| anyhow::anyhow!("session"))?;
    let chunks: Vec<Vec<Uuid>> = sessions.chunks(CLIENTS / writers).map(<[Uuid]>::to_vec).collect();
    let started = Instant::now();
    let tasks: Vec<_> = chunks
        .into_iter()
        .map(|mine| {
            let c = Arc::clone(c);
            let session = session.clone();
            tokio::spawn(async move {
                for id in mine {
                    for _ in 0..PER_CLIENT {
                        let case = new_case(&c, id, &c.nhs.next());
                        let mail =
                            templates::booking_confirmation(&c.physio.email, &session, &case);
                        let audit = NewAuditEvent::new("case_booked", "case").actor(c.physio.id);
                        c.store.book_case(case, audit, vec![mail], Utc::now()).await?;
                    }
                }
                Ok::<_, anyhow::Error>(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    Ok((CLIENTS * PER_CLIENT) as f64 / started.elapsed().as_secs_f64())
}

/// A contested burst: BURST concurrent attempts at BURST_PLACES places.
async fn burst(c: &Arc<Clinic>) -> anyhow::Result<(usize, usize, usize, f64)> {
    let session = c.sessions(1, BURST_PLACES).await?[0];
    let bodies: Vec<Value> = (0..BURST).map(|_| body(&c.nhs.next())).collect();
    let started = Instant::now();
    let tasks: Vec<_> = bodies
        .into_iter()
        .map(|b| {
            let c = Arc::clone(c);
            tokio::spawn(async move {
                c.http
                    .post(format!("{}/api/sessions/{session}/cases", c.base))
                    .bearer_auth(&c.token)
                    .json(&b)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            })
        })
        .collect();
    let (mut created, mut full, mut errors) = (0, 0, 0);
    for t in tasks {
        match t.await? {
            Ok(201) => created += 1,
            Ok(409) => full += 1,
            _ => errors += 1,
        }
    }
    let settle = started.elapsed().as_secs_f64() * 1000.0;
    let booked = c.store.session(session).await?.map(|s| s.booked).unwrap_or(0) as usize;
    anyhow::ensure!(booked == created, "session says {booked} booked, {created} were created");
    Ok((created, full, errors, settle))
}

struct Row {
    backend: &'static str,
    http: f64,
    p50: f64,
    p99: f64,
    raw: f64,
    raw_serial: f64,
    burst: (usize, usize, usize, f64),
}

async fn measure(backend: &'static str, url: &str) -> anyhow::Result<Row> {
    let dir = tempfile::tempdir()?;
    let c = Arc::new(Clinic::open(url, dir.path()).await?);
    // Warm-up: connections, caches, the JIT-free but cold paths.
    http_round(&c).await?;
    raw_round(&c, CLIENTS).await?;
    let (mut http, mut raw, mut serial, mut latencies) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let (rate, l) = http_round(&c).await?;
        http.push(rate);
        latencies.extend(l);
        raw.push(raw_round(&c, CLIENTS).await?);
        serial.push(raw_round(&c, 1).await?);
    }
    latencies.sort();
    let mut bursts = Vec::new();
    for _ in 0..BURST_ROUNDS {
        bursts.push(burst(&c).await?);
    }
    let settle = median(bursts.iter().map(|b| b.3).collect());
    let worst = bursts.iter().fold((BURST_PLACES as usize, 0, 0), |acc, b| {
        (if b.0 != BURST_PLACES as usize { b.0 } else { acc.0 }, acc.1.max(b.1), acc.2.max(b.2))
    });
    let _ = &c.state;
    Ok(Row {
        backend,
        http: median(http),
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        raw: median(raw),
        raw_serial: median(serial),
        burst: (worst.0, worst.1, worst.2, settle),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut rows =
        vec![measure("sqlite", &format!("sqlite://{}/bench.db", dir.path().display())).await?];
    if let Ok(admin) = std::env::var("MDT_TEST_POSTGRES_URL") {
        let (database, url) = PgDatabase::create(&admin, "mdt_bench").await?;
        let row = measure("postgres", &url).await;
        drop(database);
        rows.push(row?);
    } else {
        println!("(PostgreSQL skipped: set MDT_TEST_POSTGRES_URL to include it)");
    }
    println!(
        "\n(a) uncontested booking, {CLIENTS} concurrent clients, {} bookings a round, median of {ROUNDS} rounds",
        CLIENTS * PER_CLIENT
    );
    println!(
        "{:<9} {:>12} {:>8} {:>8} {:>14} {:>12} {:>16}",
        "backend",
        "HTTP book/s",
        "p50 ms",
        "p99 ms",
        "raw 32 tasks",
        "raw 1 task",
        "HTTP / best raw"
    );
    for r in &rows {
        let ceiling = r.raw.max(r.raw_serial);
        println!(
            "{:<9} {:>12.0} {:>8.1} {:>8.1} {:>14.0} {:>12.0} {:>15.0}%",
            r.backend,
            r.http,
            r.p50,
            r.p99,
            r.raw,
            r.raw_serial,
            100.0 * r.http / ceiling
        );
    }
    println!("\n(b) contested burst: {BURST} concurrent attempts at {BURST_PLACES} places, {BURST_ROUNDS} rounds");
    println!(
        "{:<9} {:>9} {:>13} {:>10} {:>18}",
        "backend", "created", "session_full", "5xx/other", "settle ms (median)"
    );
    let mut ok = true;
    for r in &rows {
        let (created, full, errors, settle) = r.burst;
        println!("{:<9} {:>9} {:>13} {:>10} {:>18.0}", r.backend, created, full, errors, settle);
        ok &= created == BURST_PLACES as usize && errors == 0;
    }
    anyhow::ensure!(ok, "the burst over-booked, under-booked or answered 5xx");
    Ok(())
}
