//! Activity report benchmark (issue 7), on SQLite: seeds a year of activity through the
//! store (50 sessions a week for 52 weeks, 8 cases each; each session run live with four
//! attendees, every case discussed with a live start and end and a signed outcome except
//! one withdrawal in every fourth session), then times `GET /api/reports/activity` over
//! HTTP: the JSON and the (identified, audited) CSV, for the whole year and for one
//! specialty and month. Beside each, the peer: the store's read alone
//! (`Store::activity_data`, no folding, no HTTP). Prints median and p90 (nearest rank)
//! over several runs. Run: `cargo bench --bench reports`; `REPORTS_RUNS` (9) and
//! `REPORTS_WEEKS` (52) change what it runs.

use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use mdt_coordinator::domain::live::{EventBody, NewLiveEvent};
use mdt_coordinator::domain::nhs_number::check_digit;
use mdt_coordinator::domain::report::{ReportQuery, ReportWindow};
use mdt_coordinator::domain::schedule::SessionPlan;
use mdt_coordinator::domain::*;
use mdt_coordinator::routes::users::{create_account, ValidUser};
use mdt_coordinator::store::DynStore;

mod support;

const PASSWORD: &str = "benchmark password 2026";
const SESSIONS_PER_WEEK: usize = 50;
const CASES_PER_SESSION: usize = 8;
/// (specialty, series per week): 17 + 17 + 16 = 50.
const SPECIALTIES: [(&str, usize); 3] = [("rheumatology", 17), ("spinal", 17), ("pain", 16)];

fn nhs_pool(n: usize) -> Vec<NhsNumber> {
    (400_000_000u32..)
        .filter_map(|p| {
            let digits: Vec<u32> = p.to_string().bytes().map(|b| u32::from(b - b'0')).collect();
            check_digit(&digits).map(|c| NhsNumber::parse(&format!("{p}{c}")).unwrap())
        })
        .take(n)
        .collect()
}

fn stats(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = ms(v[v.len() / 2]);
    let rank = (9 * v.len()).div_ceil(10).clamp(1, v.len());
    (median, ms(v[rank - 1]))
}

struct Staff {
    chair: User,
    others: Vec<User>,
    referrer: User,
}

fn outcome(i: usize) -> OutcomeDraft {
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
    serde_json::from_value(json!({
        "investigations": investigations, "referrals": referrals,
        "management_plan": { "text": "Graded exercise and review." }, "follow_up": follow_up,
    }))
    .unwrap()
}

/// Runs one session: opened, four attendees, each case started and completed (7–15
/// minutes), closed; outcomes signed after.
async fn run_session(store: &DynStore, session: &Session, cases: &[Uuid], staff: &Staff) {
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
    store.append_live_events(session.id, None, opening, at).await.unwrap();
    let mut previous: Option<Uuid> = None;
    for (i, case) in cases.iter().enumerate() {
        at += chrono::Duration::minutes(7 + (i as i64 * 3) % 9);
        let mut step: Vec<NewLiveEvent> =
            previous.map(|p| ev(EventBody::CaseCompleted { case_id: p })).into_iter().collect();
        step.push(ev(EventBody::CaseStarted { case_id: *case }));
        store.append_live_events(session.id, None, step, at).await.unwrap();
        previous = Some(*case);
    }
    at += chrono::Duration::minutes(10);
    let mut closing: Vec<NewLiveEvent> =
        previous.map(|p| ev(EventBody::CaseCompleted { case_id: p })).into_iter().collect();
    closing.extend(people.iter().map(|u| ev(EventBody::ParticipantLeft { user_id: u.id })));
    closing.push(ev(EventBody::MeetingClosed));
    store.append_live_events(session.id, None, closing, at).await.unwrap();
}

async fn seed(store: &DynStore, staff: &[(Specialty, Staff)], weeks: u32) -> usize {
    let first = NaiveDate::from_ymd_opt(2025, 1, 6).unwrap();
    let nhs = nhs_pool(CASES_PER_SESSION);
    let mut cases_total = 0;
    let started = Instant::now();
    for (specialty, people) in staff {
        let series_count = SPECIALTIES
            .iter()
            .find(|(s, _)| *s == specialty.as_str())
            .map(|(_, n)| *n)
            .unwrap_or(0);
        for k in 0..series_count {
            let plan = SessionPlan {
                specialty: specialty.clone(),
                title: format!("{specialty} MDT {k}"),
                duration_minutes: 120,
                case_capacity: CASES_PER_SESSION as u32,
                minutes_per_case: 10,
                booking_cutoff_hours: 48,
                chair_id: people.chair.id,
                teaching: false,
            };
            let (_, sessions) = store
                .create_series(NewSeries {
                    plan,
                    first_date: first + chrono::Days::new((k % 5) as u64),
                    local_time: NaiveTime::from_hms_opt(8 + (k / 5) as u32 * 2, 30, 0).unwrap(),
                    weeks,
                })
                .await
                .unwrap();
            for (w, session) in sessions.iter().enumerate() {
                let mut ids = Vec::new();
                for (i, number) in nhs.iter().enumerate() {
                    let id = Uuid::new_v4();
                    let booked_at: DateTime<Utc> = session.starts_at
                        - chrono::Duration::days(3 + ((w * 7 + i * 5) % 60) as i64);
                    let case = NewCase {
                        id,
                        session_id: session.id,
                        referrer_id: people.referrer.id,
                        patient: PatientDetails {
                            nhs_number: number.clone(),
                            given_name: PersonName::parse("Bench").unwrap(),
                            family_name: PersonName::parse("Patient").unwrap(),
                            date_of_birth: NaiveDate::from_ymd_opt(1950 + i as i32 * 5, 1, 1)
                                .unwrap(),
                            sex: if i.is_multiple_of(2) { Sex::Female } else { Sex::Male },
                            gp_practice_code: OdsCode::parse("A81001").unwrap(),
                        },
                        clinical_question: ClinicalText::parse("Question?", "clinical_question")
                            .unwrap(),
                        history: ClinicalText::parse("History.", "history").unwrap(),
                        urgency: if i == 0 { Urgency::Urgent } else { Urgency::Routine },
                        body_site: BodySite::parse("lower back").unwrap(),
                        free_text_identifies_patient: false,
                        idempotency_key: None,
                        patient_update: Default::default(),
                        proforma: mdt_coordinator::domain::proforma::Proforma::example(
                            Utc::now().date_naive(),
                        ),
                    };
                    let audit = NewAuditEvent::new("case_booked", "case").record(id);
                    store.book_case(case, audit, vec![], booked_at).await.unwrap();
                    ids.push(id);
                }
                if w % 4 == 3 {
                    let last = ids.pop().unwrap();
                    let audit = NewAuditEvent::new("case_withdrawn", "case").record(last);
                    store.withdraw_case(last, audit).await.unwrap();
                }
                run_session(store, session, &ids, people).await;
                let signed_at = session.starts_at + chrono::Duration::hours(3);
                for (i, case) in ids.iter().enumerate() {
                    let audit = NewAuditEvent::new("outcome_drafted", "case").record(case);
                    let draft = store
                        .draft_outcome(*case, outcome(i + w), people.chair.id, audit, signed_at)
                        .await
                        .unwrap();
                    let audit = NewAuditEvent::new("outcome_signed", "case").record(case);
                    let signed = draft.signed(people.chair.id, signed_at);
                    store
                        .sign_outcome(*case, &signed, audit, None, &[], Uuid::new_v4())
                        .await
                        .unwrap();
                }
                cases_total += ids.len();
            }
            eprintln!(
                "  seeded {specialty} series {k}: {cases_total} cases so far ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
    }
    cases_total
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::var("REPORTS_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(9);
    let weeks: u32 = std::env::var("REPORTS_WEEKS").ok().and_then(|v| v.parse().ok()).unwrap_or(52);
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("reports.db").display());
    let (base, state) = support::in_process(&url, dir.path(), |_| {}).await?;
    let store = state.store.clone();

    let account = |email: String, role, specialty: &Specialty| ValidUser {
        email: EmailAddress::parse(&email).unwrap(),
        name: PersonName::parse("Bench Person").unwrap(),
        role,
        specialties: vec![specialty.clone()],
        organisation: None,
        password: Password::parse(PASSWORD).unwrap(),
    };
    let mut staff = Vec::new();
    for (slug, _) in SPECIALTIES {
        let s = Specialty::parse(slug)?;
        let make = |n: &str, role| account(format!("{n}-{slug}@bench.test"), role, &s);
        let chair = create_account(&state, make("chair", Role::Consultant), None, None).await?;
        let mut others = Vec::new();
        for (n, role) in
            [("second", Role::Consultant), ("esp", Role::Practitioner), ("trainee", Role::Trainee)]
        {
            others.push(create_account(&state, make(n, role), None, None).await?);
        }
        let referrer = create_account(&state, make("fcp", Role::Practitioner), None, None).await?;
        staff.push((s, Staff { chair, others, referrer }));
    }
    let rheumatology = Specialty::parse("rheumatology")?;
    create_account(
        &state,
        account("coordinator@bench.test".into(), Role::Coordinator, &rheumatology),
        None,
        None,
    )
    .await?;

    eprintln!("seeding {weeks} weeks × {SESSIONS_PER_WEEK} sessions × {CASES_PER_SESSION} cases…");
    let seeding = Instant::now();
    let cases = seed(&store, &staff, weeks).await;
    eprintln!("seeded {cases} case rows in {:.0} s", seeding.elapsed().as_secs_f64());

    let http = reqwest::Client::new();
    let login: Value = http
        .post(format!("{base}/api/auth/login"))
        .json(&json!({ "email": "coordinator@bench.test", "password": PASSWORD }))
        .send()
        .await?
        .json()
        .await?;
    let token = login["access_token"].as_str().unwrap_or_default().to_string();

    let year = ("2025-01-01", "2025-12-31", None);
    let month = ("2025-06-01", "2025-06-30", Some("spinal"));
    println!("activity report, SQLite, {cases} case rows over {weeks} weeks ({runs} runs; ms)");
    println!("{:<44} {:>9} {:>9} {:>7}", "request", "median", "p90", "rows");
    for (label, (from, to, specialty)) in [("year", year), ("one specialty, one month", month)] {
        let window = ReportWindow::parse(Some(from), Some(to)).unwrap();
        let specialties = match specialty {
            Some(s) => vec![Specialty::parse(s)?],
            None => SPECIALTIES.iter().map(|(s, _)| Specialty::parse(s).unwrap()).collect(),
        };
        // The peer: the store's read alone.
        let query =
            ReportQuery { starts_at: window.starts_at(), ends_at: window.ends_at(), specialties };
        let mut times = Vec::new();
        let mut rows = 0;
        for _ in 0..runs {
            let t = Instant::now();
            rows = store.activity_data(&query).await?.cases.len();
            times.push(t.elapsed());
        }
        let (m, p) = stats(times);
        println!("{:<44} {m:>9.1} {p:>9.1} {rows:>7}", format!("{label}: store read only (peer)"));
        for format in ["json", "csv"] {
            let mut path =
                format!("{base}/api/reports/activity?from={from}&to={to}&format={format}");
            if let Some(s) = specialty {
                path.push_str(&format!("&specialty={s}"));
            }
            let mut times = Vec::new();
            let mut bytes = 0;
            for _ in 0..runs {
                let t = Instant::now();
                let res = http.get(&path).bearer_auth(&token).send().await?;
                assert!(res.status().is_success(), "{}", res.status());
                bytes = res.bytes().await?.len();
                times.push(t.elapsed());
            }
            let (m, p) = stats(times);
            let what = if format == "csv" {
                format!("{label}: CSV over HTTP ({} kB, audited)", bytes / 1024)
            } else {
                format!("{label}: JSON over HTTP ({} kB)", bytes / 1024)
            };
            println!("{what:<44} {m:>9.1} {p:>9.1} {rows:>7}");
        }
    }
    Ok(())
}
