//! Storage conformance: the same behaviour on SQLite and PostgreSQL.

mod common;

#[path = "storage/backup.rs"]
mod backup;
#[path = "storage/upgrade.rs"]
mod upgrade;

use std::sync::Arc;

use chrono::{Duration, NaiveTime, SubsecRound, Utc};
use mdt_coordinator::domain::case::parse_date_of_birth;
use mdt_coordinator::domain::schedule::SessionPlan;
use mdt_coordinator::domain::*;
use mdt_coordinator::store::{self, DynStore, NewRefreshToken, RefreshOutcome, StoreError};

use common::clinic::nhs_numbers;
use common::{Backend, TestDb};

fn created() -> NewAuditEvent {
    NewAuditEvent::new("user_created", "user")
}

fn signed_in() -> NewAuditEvent {
    NewAuditEvent::new("login_succeeded", "user")
}

async fn fresh(backend: Backend) -> (TestDb, DynStore) {
    let db = TestDb::new(backend).await.expect("backend available");
    let store = db.store().await;
    (db, store)
}

fn new_user(email: &str, role: Role, specialties: &[&str]) -> NewUser {
    NewUser {
        id: UserId::new(),
        email: EmailAddress::parse(email).unwrap(),
        name: PersonName::parse("Test Person").unwrap(),
        role,
        specialties: specialties.iter().map(|s| Specialty::parse(s).unwrap()).collect(),
        organisation: None,
        password_hash: "$argon2id$not-a-real-hash".into(),
    }
}

fn conflict_code(e: StoreError) -> &'static str {
    match e {
        StoreError::Conflict(c) => c.code(),
        StoreError::Invalid(p) => p.code,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

async fn users_and_specialties(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let names: Vec<String> =
        store.list_specialties().await.unwrap().iter().map(|s| s.to_string()).collect();
    assert_eq!(names, ["pain", "rheumatology", "spinal"]);

    let jo = new_user("Jo@Example.org", Role::Consultant, &["spinal", "pain", "pain"]);
    let u = store.create_user(jo.clone(), created().record(jo.id)).await.unwrap();
    assert_eq!(u.id, jo.id);
    assert_eq!(u.email.as_str(), "jo@example.org");
    let again = store.user(u.id).await.unwrap().unwrap();
    assert_eq!(
        again.specialties.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        ["pain", "spinal"]
    );
    assert_eq!(again.role, Role::Consultant);
    let creds =
        store.credentials(&EmailAddress::parse("jo@example.org").unwrap()).await.unwrap().unwrap();
    assert_eq!(creds.user_id, u.id);
    assert_eq!(creds.password_hash, "$argon2id$not-a-real-hash");
    assert!(creds.active);
    assert!(store
        .credentials(&EmailAddress::parse("nobody@example.org").unwrap())
        .await
        .unwrap()
        .is_none());
    // The account and its audit event were written together.
    let audit = store.audit_events().await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].record_id.as_deref(), Some(u.id.to_string().as_str()));

    let dup = store
        .create_user(new_user("jo@example.org", Role::Trainee, &[]), created())
        .await
        .unwrap_err();
    assert_eq!(conflict_code(dup), "email_taken");
    // An unknown specialty refuses the whole account: no user, no specialties, no audit
    // row. (This also shows foreign keys are enforced on the store's own connections.)
    let bad = store
        .create_user(
            new_user("sam@example.org", Role::Practitioner, &["pain", "podiatry"]),
            created(),
        )
        .await
        .unwrap_err();
    assert_eq!(conflict_code(bad), "unknown_specialty");
    assert_eq!(store.count_users().await.unwrap(), 1);
    assert!(store
        .credentials(&EmailAddress::parse("sam@example.org").unwrap())
        .await
        .unwrap()
        .is_none());
    assert_eq!(store.audit_events().await.unwrap().len(), 1);

    store
        .add_specialty(&Specialty::parse("foot-and-ankle").unwrap(), "Foot and ankle")
        .await
        .unwrap();
    let e = store.add_specialty(&Specialty::parse("pain").unwrap(), "Pain").await.unwrap_err();
    assert_eq!(conflict_code(e), "specialty_exists");
    store
        .create_user(
            new_user("sam@example.org", Role::Practitioner, &["foot-and-ankle"]),
            created(),
        )
        .await
        .unwrap();
    assert_eq!(store.list_users().await.unwrap().len(), 2);
    assert!(store.verify_audit().await.unwrap().is_intact());
}

fn token(
    hash: char, family: uuid::Uuid, user: UserId, now: chrono::DateTime<Utc>,
) -> NewRefreshToken {
    NewRefreshToken {
        token_hash: hash.to_string().repeat(64),
        family_id: family,
        user_id: user,
        issued_at: now,
        expires_at: now + Duration::days(1),
    }
}

async fn refresh_tokens_rotate_and_reuse_revokes_family(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let u =
        store.create_user(new_user("jo@example.org", Role::Trainee, &[]), created()).await.unwrap();
    let h = |c: char| c.to_string().repeat(64);
    let now = Utc::now();
    let later = now + Duration::days(2);
    let family = uuid::Uuid::new_v4();
    store.insert_refresh_token(&token('a', family, u.id, now), signed_in()).await.unwrap();
    assert_eq!(store.audit_events().await.unwrap().len(), 2, "sign-in audited with its token");

    let rotated = store.rotate_refresh_token(&h('a'), &h('b'), now, later).await.unwrap();
    assert_eq!(rotated, RefreshOutcome::Rotated { user_id: u.id, family_id: family });
    let rotated = store.rotate_refresh_token(&h('b'), &h('c'), now, later).await.unwrap();
    assert!(matches!(rotated, RefreshOutcome::Rotated { .. }));
    // Presenting "a" again is reuse: the family dies, including the current "c".
    let reused = store.rotate_refresh_token(&h('a'), &h('d'), now, later).await.unwrap();
    assert_eq!(reused, RefreshOutcome::Reused { user_id: u.id, family_id: family });
    assert_eq!(
        store.rotate_refresh_token(&h('c'), &h('e'), now, later).await.unwrap(),
        RefreshOutcome::Invalid
    );
    assert_eq!(
        store.rotate_refresh_token(&h('z'), &h('y'), now, later).await.unwrap(),
        RefreshOutcome::Invalid
    );

    // Expired tokens are refused.
    store
        .insert_refresh_token(&token('f', uuid::Uuid::new_v4(), u.id, now), signed_in())
        .await
        .unwrap();
    let expired =
        store.rotate_refresh_token(&h('f'), &h('g'), now + Duration::days(3), later).await.unwrap();
    assert_eq!(expired, RefreshOutcome::Invalid);

    // Rotation never extends a family past its first token's expiry: "j" was asked to
    // live two days but dies with the family after one.
    store
        .insert_refresh_token(&token('i', uuid::Uuid::new_v4(), u.id, now), signed_in())
        .await
        .unwrap();
    let rotated = store.rotate_refresh_token(&h('i'), &h('j'), now, later).await.unwrap();
    assert!(matches!(rotated, RefreshOutcome::Rotated { .. }));
    let past_family = now + Duration::hours(25);
    assert_eq!(
        store.rotate_refresh_token(&h('j'), &h('k'), past_family, later).await.unwrap(),
        RefreshOutcome::Invalid
    );

    // Logout revokes the family.
    store
        .insert_refresh_token(&token('m', uuid::Uuid::new_v4(), u.id, now), signed_in())
        .await
        .unwrap();
    store.revoke_refresh_family(&h('m'), now).await.unwrap();
    assert_eq!(
        store.rotate_refresh_token(&h('m'), &h('n'), now, later).await.unwrap(),
        RefreshOutcome::Invalid
    );
}

async fn audit_is_append_only_and_tamper_evident(backend: Backend) {
    let (db, store) = fresh(backend).await;
    for i in 0..3 {
        store
            .append_audit(
                NewAuditEvent::new("case_read", "case")
                    .record(i)
                    .details(serde_json::json!({"n": i})),
            )
            .await
            .unwrap();
    }
    let events = store.audit_events().await.unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(events[1].prev_hash, events[0].hash);
    assert!(store.verify_audit().await.unwrap().is_intact());

    let update = db.raw("UPDATE audit_events SET action = 'nothing' WHERE seq = 2").await;
    assert!(update.unwrap_err().contains("append-only"));
    let delete = db.raw("DELETE FROM audit_events WHERE seq = 1").await;
    assert!(delete.unwrap_err().contains("append-only"));
    if backend == Backend::Postgres {
        // Refused alone (the links refer to it) and with its links (the trigger).
        assert!(db.raw("TRUNCATE audit_events").await.is_err());
        let both = db.raw("TRUNCATE audit_events, audit_event_records").await;
        assert!(both.unwrap_err().contains("append-only"));
    }
    assert!(store.verify_audit().await.unwrap().is_intact());

    // Someone with enough privilege goes behind the triggers' back.
    let tamper = match backend {
        Backend::Sqlite => {
            "DROP TRIGGER audit_events_no_update; UPDATE audit_events SET record_id = '99' WHERE seq = 2"
        }
        Backend::Postgres => {
            "ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_delete; \
             UPDATE audit_events SET record_id = '99' WHERE seq = 2"
        }
    };
    db.raw(tamper).await.unwrap();
    let v = store.verify_audit().await.unwrap();
    assert_eq!(v.first_broken_seq, Some(2));
}

async fn concurrent_audit_appends_keep_one_chain(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store.append_audit(NewAuditEvent::new("login_failed", "user").record(i)).await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let v = store.verify_audit().await.unwrap();
    assert!(v.is_intact(), "{v:?}");
    assert_eq!(v.rows_checked, 24);
}

/// An event covering further records (a CSV export) links each one; the chain hashes the
/// links with the event, so a link added or removed behind the triggers' back breaks it.
async fn audit_links_are_chained(backend: Backend) {
    let (db, store) = fresh(backend).await;
    let covered: Vec<String> = (0..2500).map(|i| format!("case-{i:04}")).collect();
    let events = vec![
        NewAuditEvent::new("login_succeeded", "user").record("u1"),
        NewAuditEvent::new("report_exported", "report")
            .record("activity")
            .covering(covered.clone()),
        NewAuditEvent::new("login_succeeded", "user").record("u2"),
    ];
    store.append_audits(events).await.unwrap();
    let single = NewAuditEvent::new("report_exported", "report").covering(vec!["case-0001".into()]);
    store.append_audit(single).await.unwrap();
    let log = store.audit_events().await.unwrap();
    let seqs: Vec<i64> = log.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    let mut links = log[1].covers.clone();
    links.sort();
    assert_eq!(links, covered);
    assert!(log[0].covers.is_empty() && log[2].covers.is_empty());
    assert_eq!(log[3].covers, ["case-0001"]);
    assert!(store.verify_audit().await.unwrap().is_intact());

    let delete = db.raw("DELETE FROM audit_event_records WHERE seq = 2").await;
    assert!(delete.unwrap_err().contains("append-only"));
    let update = db.raw("UPDATE audit_event_records SET record_id = 'x' WHERE seq = 2").await;
    assert!(update.unwrap_err().contains("append-only"));
    assert!(store.verify_audit().await.unwrap().is_intact());
    // A link slipped in afterwards: the event it was added to no longer verifies.
    db.raw("INSERT INTO audit_event_records (record_id, seq) VALUES ('case-9999', 4)")
        .await
        .unwrap();
    assert_eq!(store.verify_audit().await.unwrap().first_broken_seq, Some(4));
}

async fn seeded_series(store: &DynStore, capacity: u32) -> Vec<Session> {
    let chair = store
        .create_user(new_user("chair@example.org", Role::Consultant, &["rheumatology"]), created())
        .await
        .unwrap();
    let first = Utc::now().date_naive() + Duration::days(7);
    let (series, sessions) = store
        .create_series(NewSeries {
            plan: SessionPlan {
                specialty: Specialty::parse("rheumatology").unwrap(),
                title: "Rheumatology MDT".into(),
                duration_minutes: 90,
                case_capacity: capacity,
                minutes_per_case: 10,
                booking_cutoff_hours: 48,
                chair_id: chair.id,
                teaching: false,
            },
            first_date: first,
            local_time: NaiveTime::from_hms_opt(12, 30, 0).unwrap(),
            weeks: 3,
        })
        .await
        .unwrap();
    assert_eq!(sessions.len(), 3);
    assert!(sessions.iter().all(|s| s.series_id == Some(series.id) && s.booked == 0));
    let stored = store.session(sessions[0].id).await.unwrap().unwrap();
    assert_eq!(stored.starts_at, sessions[0].starts_at);
    assert_eq!(stored.state, SessionState::Scheduled);
    sessions
}

fn a_case(session: &Session, referrer: UserId, nhs: &str) -> NewCase {
    NewCase {
        id: uuid::Uuid::new_v4(),
        session_id: session.id,
        referrer_id: referrer,
        patient: PatientDetails {
            nhs_number: NhsNumber::parse(nhs).unwrap(),
            given_name: PersonName::parse("Alex").unwrap(),
            family_name: PersonName::parse("Example").unwrap(),
            date_of_birth: parse_date_of_birth("1970-01-01", Utc::now().date_naive()).unwrap(),
            sex: Sex::Female,
            gp_practice_code: OdsCode::parse("A81001").unwrap(),
        },
        clinical_question: ClinicalText::parse("Is an MRI indicated?", "clinical_question")
            .unwrap(),
        history: ClinicalText::parse("Twelve weeks of physiotherapy.", "history").unwrap(),
        urgency: Urgency::Routine,
        body_site: BodySite::parse("lower back").unwrap(),
        free_text_identifies_patient: true,
        idempotency_key: None,
        patient_update: Default::default(),
        proforma: mdt_coordinator::domain::proforma::Proforma::example(Utc::now().date_naive()),
    }
}

/// The practitioner who books into the seeded series.
async fn physio(store: &DynStore) -> User {
    store
        .create_user(
            new_user("physio@example.org", Role::Practitioner, &["rheumatology"]),
            created(),
        )
        .await
        .unwrap()
}

/// Triage accepts the booking onto its agenda, decided by `by`.
async fn accept(store: &DynStore, case: uuid::Uuid, by: UserId) {
    let accept = mdt_coordinator::domain::triage::Decision::Accept;
    let audit = NewAuditEvent::new("case_triaged", "case");
    store.triage_case(case, &accept, by, audit, vec![], Utc::now()).await.unwrap();
}

fn booked() -> NewAuditEvent {
    NewAuditEvent::new("case_booked", "case")
}

async fn booking_rules(backend: Backend) {
    let (db, store) = fresh(backend).await;
    let sessions = seeded_series(&store, 2).await;
    let physio = physio(&store).await;
    let now = Utc::now();
    store
        .book_case(a_case(&sessions[0], physio.id, "9912003888"), booked(), Vec::new(), now)
        .await
        .unwrap();
    let dup = store
        .book_case(a_case(&sessions[0], physio.id, "9912003888"), booked(), Vec::new(), now)
        .await
        .unwrap_err();
    assert_eq!(conflict_code(dup), "duplicate_case");
    store
        .book_case(a_case(&sessions[0], physio.id, "9449305552"), booked(), Vec::new(), now)
        .await
        .unwrap();
    let full = store
        .book_case(a_case(&sessions[0], physio.id, "9434765919"), booked(), Vec::new(), now)
        .await
        .unwrap_err();
    assert_eq!(conflict_code(full), "session_full");
    assert_eq!(store.session(sessions[0].id).await.unwrap().unwrap().booked, 2);

    let late = sessions[1].starts_at - Duration::hours(47);
    let closed = store
        .book_case(a_case(&sessions[1], physio.id, "9434765919"), booked(), Vec::new(), late)
        .await
        .unwrap_err();
    assert_eq!(conflict_code(closed), "booking_closed");
    assert_eq!(store.session(sessions[1].id).await.unwrap().unwrap().booked, 0);

    let missing = Session { id: uuid::Uuid::new_v4(), ..sessions[2].clone() };
    assert!(matches!(
        store.book_case(a_case(&missing, physio.id, "9434765919"), booked(), Vec::new(), now).await,
        Err(StoreError::NotFound(_))
    ));

    // The CHECK constraint is the last line against over-booking.
    let id = match backend {
        Backend::Sqlite => format!("'{}'", sessions[0].id),
        Backend::Postgres => format!("'{}'::uuid", sessions[0].id),
    };
    assert!(db.raw(&format!("UPDATE sessions SET booked = 3 WHERE id = {id}")).await.is_err());

    // Closed and cancelled sessions take no bookings.
    let id2 = match backend {
        Backend::Sqlite => format!("'{}'", sessions[2].id),
        Backend::Postgres => format!("'{}'::uuid", sessions[2].id),
    };
    db.raw(&format!("UPDATE sessions SET state = 'cancelled' WHERE id = {id2}")).await.unwrap();
    let e = store
        .book_case(a_case(&sessions[2], physio.id, "9434765919"), booked(), Vec::new(), now)
        .await
        .unwrap_err();
    assert_eq!(conflict_code(e), "session_not_bookable");

    // Withdrawal frees the slot; an idempotent retry returns the first booking.
    let agenda = store.session_bookings(sessions[0].id).await.unwrap();
    assert_eq!(agenda.len(), 2);
    let withdrawn = store
        .withdraw_case(agenda[0].id, NewAuditEvent::new("case_withdrawn", "case"))
        .await
        .unwrap();
    assert_eq!(withdrawn.state, CaseState::Withdrawn);
    assert_eq!(store.session(sessions[0].id).await.unwrap().unwrap().booked, 1);
    let again = store
        .withdraw_case(agenda[0].id, NewAuditEvent::new("case_withdrawn", "case"))
        .await
        .unwrap_err();
    assert_eq!(conflict_code(again), "invalid_state");
    let mut keyed = a_case(&sessions[0], physio.id, "9434765919");
    keyed.idempotency_key = Some("retry-1".into());
    let first = store.book_case(keyed.clone(), booked(), Vec::new(), now).await.unwrap();
    let second = store.book_case(keyed, booked(), Vec::new(), now).await.unwrap();
    assert!(!first.replayed && second.replayed);
    assert_eq!(first.case.id, second.case.id);
    assert_eq!(store.session(sessions[0].id).await.unwrap().unwrap().booked, 2);
    assert_eq!(store.referrer_cases(physio.id).await.unwrap().len(), 3);
    let loaded = store.case(first.case.id).await.unwrap().unwrap();
    assert_eq!(loaded.patient.nhs_number.as_str(), "9434765919");
    assert!(store.verify_audit().await.unwrap().is_intact());
}

async fn no_overbooking_under_a_race(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let sessions = seeded_series(&store, 3).await;
    let physio = physio(&store).await;
    let tasks: Vec<_> = nhs_numbers(16)
        .into_iter()
        .map(|nhs| {
            let store = Arc::clone(&store);
            let case = a_case(&sessions[0], physio.id, &nhs);
            tokio::spawn(
                async move { store.book_case(case, booked(), Vec::new(), Utc::now()).await },
            )
        })
        .collect();
    let mut booked = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => booked += 1,
            Err(e) => assert_eq!(conflict_code(e), "session_full"),
        }
    }
    assert_eq!(booked, 3);
    assert_eq!(store.session(sessions[0].id).await.unwrap().unwrap().booked, 3);
}

/// Mentorship and attendance (issue 7): contracts refuse overlaps in one arm; a log and
/// the clearing of its cases' flags commit together (or not at all); the backlog is read
/// as of a day; logs are found by the people in them; attended sessions carry the stays
/// and the discussed cases.
async fn mentorship_and_attendance(backend: Backend) {
    use mdt_coordinator::domain::live::{EventBody, NewLiveEvent};
    use mdt_coordinator::domain::mentorship::{
        Contract, ContractDraft, DateRange, MentorshipKind, MentorshipLog,
    };
    let (_db, store) = fresh(backend).await;
    let sessions = seeded_series(&store, 4).await;
    let chair = sessions[0].plan.chair_id;
    let physio = physio(&store).await;
    let trainee = store
        .create_user(new_user("trainee@example.org", Role::Trainee, &["rheumatology"]), created())
        .await
        .unwrap();
    let day = |s: &str| s.parse::<chrono::NaiveDate>().unwrap();
    let rheum = Specialty::parse("rheumatology").unwrap();
    let contract = |starts: &str, ends: Option<&str>| {
        Contract::new(
            ContractDraft {
                consultant_id: chair,
                specialty: rheum.clone(),
                minutes_per_week: 60,
                weeks_per_year: 52,
                starts_on: day(starts),
                ends_on: ends.map(day),
            },
            chair,
            Utc::now(),
        )
    };
    let first = contract("2025-01-01", Some("2025-06-30"));
    store
        .create_mentorship_contract(
            &first,
            NewAuditEvent::new("mentorship_contract_created", "mentorship_contract"),
        )
        .await
        .unwrap();
    let overlapping = store
        .create_mentorship_contract(&contract("2025-06-30", None), created())
        .await
        .unwrap_err();
    assert_eq!(conflict_code(overlapping), "contract_overlaps");
    store.create_mentorship_contract(&contract("2025-07-01", None), created()).await.unwrap();
    let stored = store.mentorship_contracts(Some(chair)).await.unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0], first);
    assert!(store.mentorship_contracts(Some(physio.id)).await.unwrap().is_empty());

    let nhs = nhs_numbers(2);
    let now = Utc::now();
    let mut cases = Vec::new();
    for n in &nhs {
        let case = store
            .book_case(a_case(&sessions[0], physio.id, n), booked(), vec![], now)
            .await
            .unwrap()
            .case;
        accept(&store, case.id, physio.id).await;
        cases.push(case.id);
    }
    let at = |d: &str| format!("{d}T09:00:00Z").parse::<chrono::DateTime<Utc>>().unwrap();
    let flag = NewAuditEvent::new("case_flagged_for_mentorship", "case");
    let (f, created_now) = store
        .flag_for_mentorship(cases[0], physio.id, flag.clone(), at("2025-04-01"))
        .await
        .unwrap();
    assert!(created_now);
    assert_eq!((f.specialty.as_str(), f.flagged_on), ("rheumatology", day("2025-04-01")));
    let (_, again) =
        store.flag_for_mentorship(cases[0], chair, flag.clone(), at("2025-04-02")).await.unwrap();
    assert!(!again, "a flagged case stays flagged once");
    store.flag_for_mentorship(cases[1], physio.id, flag.clone(), at("2025-04-03")).await.unwrap();
    assert!(store.flag_for_mentorship(uuid::Uuid::new_v4(), chair, flag, now).await.is_err());

    let log = |mentees: Vec<UserId>, on: &str| MentorshipLog {
        id: uuid::Uuid::new_v4(),
        consultant_id: chair,
        specialty: rheum.clone(),
        mentee_ids: mentees,
        occurred_on: day(on),
        duration_minutes: 45,
        kind: MentorshipKind::CaseReview,
        case_ids: vec![cases[0]],
        learning_points: vec!["Ask about morning stiffness".into()],
        created_at: now.trunc_subsecs(6),
    };
    // A mentee that does not exist: nothing is written, the flag stays.
    let bad = log(vec![UserId::new()], "2025-05-01");
    let err = store.create_mentorship_log(&bad, vec![], now).await.unwrap_err();
    assert_eq!(conflict_code(err), "unknown_reference");
    assert_eq!(store.mentorship_backlog(day("2025-12-31")).await.unwrap().len(), 2);
    let good = log(vec![physio.id], "2025-05-01");
    let cleared = store
        .create_mentorship_log(
            &good,
            vec![NewAuditEvent::new("mentorship_logged", "mentorship_log")],
            now,
        )
        .await
        .unwrap();
    assert_eq!(cleared, [cases[0]]);
    assert!(store.mentorship_flag(cases[0]).await.unwrap().is_none());
    // As of 30 April both were waiting; as of 1 May only the second.
    let waiting = |d: &'static str| {
        let store = store.clone();
        async move {
            store
                .mentorship_backlog(day(d))
                .await
                .unwrap()
                .iter()
                .map(|f| f.case_id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(waiting("2025-04-30").await, [cases[0], cases[1]]);
    assert_eq!(waiting("2025-05-01").await, [cases[1]]);
    assert_eq!(waiting("2025-04-02").await, [cases[0]]);
    let unflagged = store
        .unflag_for_mentorship(
            cases[1],
            chair,
            NewAuditEvent::new("case_unflagged_for_mentorship", "case"),
            now,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(unflagged.cleared_on, Some(mdt_coordinator::domain::mentorship::clinic_date(now)));
    assert!(store
        .unflag_for_mentorship(cases[1], chair, NewAuditEvent::new("x", "case"), now)
        .await
        .unwrap()
        .is_none());

    let quarter = DateRange::new(day("2025-04-01"), day("2025-06-30")).unwrap();
    let all = store.mentorship_logs(quarter, None).await.unwrap();
    assert_eq!(all, std::slice::from_ref(&good));
    assert_eq!(store.mentorship_logs(quarter, Some(physio.id)).await.unwrap().len(), 1);
    assert_eq!(store.mentorship_logs(quarter, Some(chair)).await.unwrap().len(), 1);
    assert!(store.mentorship_logs(quarter, Some(trainee.id)).await.unwrap().is_empty());
    let june = DateRange::new(day("2025-06-01"), day("2025-06-30")).unwrap();
    assert!(store.mentorship_logs(june, None).await.unwrap().is_empty());

    // Attendance: the trainee joined twice; one case was discussed.
    let session = &sessions[0];
    let t0 = session.starts_at;
    let event = |body: EventBody| vec![NewLiveEvent { body, actor: Some(chair), command_id: None }];
    let joined = EventBody::ParticipantJoined {
        user_id: trainee.id,
        name: "Trainee".into(),
        role: Role::Trainee,
        instance: uuid::Uuid::new_v4(),
    };
    store.append_live_events(session.id, None, event(EventBody::MeetingOpened), t0).await.unwrap();
    store.append_live_events(session.id, None, event(joined.clone()), t0).await.unwrap();
    store
        .append_live_events(
            session.id,
            None,
            event(EventBody::CaseStarted { case_id: cases[1] }),
            t0,
        )
        .await
        .unwrap();
    store
        .append_live_events(
            session.id,
            None,
            event(EventBody::ParticipantLeft { user_id: trainee.id }),
            t0 + Duration::minutes(30),
        )
        .await
        .unwrap();
    store
        .append_live_events(session.id, None, event(joined), t0 + Duration::minutes(40))
        .await
        .unwrap();
    let attended = store
        .attended_sessions(trainee.id, t0 - Duration::days(1), t0 + Duration::days(1))
        .await
        .unwrap();
    assert_eq!(attended.len(), 1);
    assert_eq!(attended[0].session.id, session.id);
    assert_eq!(attended[0].stays.len(), 2);
    assert_eq!(attended[0].stays[0].left_at, Some(t0 + Duration::minutes(30)));
    assert_eq!(attended[0].stays[1].left_at, None);
    assert_eq!(attended[0].cases.iter().map(|c| c.id).collect::<Vec<_>>(), [cases[1]]);
    assert!(store
        .attended_sessions(trainee.id, t0 + Duration::days(1), t0 + Duration::days(2))
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .attended_sessions(physio.id, t0 - Duration::days(1), t0 + Duration::days(1))
        .await
        .unwrap()
        .is_empty());
}

/// A batch (a year's report export records some 20,000 reads) goes in as multi-row
/// inserts: in order, on the one chain, interleaved safely with single appends.
async fn batched_audit_appends_keep_order_and_chain(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    store.append_audit(NewAuditEvent::new("login_failed", "user").record("first")).await.unwrap();
    let batch: Vec<NewAuditEvent> = (0..1203)
        .map(|i| NewAuditEvent::new("case_read", "case").record(format!("case-{i}")))
        .collect();
    let (a, b) = tokio::join!(
        store.append_audits(batch),
        store.append_audit(NewAuditEvent::new("login_failed", "user").record("during"))
    );
    a.unwrap();
    b.unwrap();
    store.append_audits(Vec::new()).await.unwrap();
    let v = store.verify_audit().await.unwrap();
    assert!(v.is_intact(), "{v:?}");
    assert_eq!(v.rows_checked, 1205);
    let events = store.audit_events().await.unwrap();
    let reads: Vec<&str> = events
        .iter()
        .filter(|e| e.action == "case_read")
        .map(|e| e.record_id.as_deref().unwrap())
        .collect();
    let expected: Vec<String> = (0..1203).map(|i| format!("case-{i}")).collect();
    assert_eq!(reads, expected, "the batch keeps its order in seq");
}

/// The register's migration, on data booked before it: one record per NHS number, and
/// the numbers whose cases disagree on name or date of birth listed for a coordinator,
/// not merged.
async fn the_patient_register_migration_reports_conflicting_cases(backend: Backend) {
    let (db, store) = fresh(backend).await;
    let sessions = seeded_series(&store, 2).await;
    let physio = physio(&store).await;
    let now = Utc::now();
    for (session, nhs) in
        [(&sessions[0], "9912003888"), (&sessions[1], "9449305552"), (&sessions[0], "9434765919")]
    {
        store.book_case(a_case(session, physio.id, nhs), booked(), Vec::new(), now).await.unwrap();
    }
    // As the data stood before the register: a second person booked under 9912003888.
    db.raw(
        "DELETE FROM patient_conflicts; DELETE FROM patients; \
         UPDATE cases SET nhs_number = '9912003888', given_name = 'Robin' WHERE nhs_number = '9449305552'",
    )
    .await
    .unwrap();
    let folder = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let migration = std::fs::read_to_string(format!(
        "{}/migrations/{folder}/0011_patients.sql",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let statements: Vec<String> = migration
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
        .split(';')
        .map(str::trim)
        .filter(|s| s.starts_with("INSERT"))
        .map(String::from)
        .collect();
    assert_eq!(statements.len(), 2);
    for statement in &statements {
        db.raw(statement).await.unwrap();
    }
    let conflicts = store.patient_conflicts().await.unwrap();
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].0.as_str(), "9912003888");
    // Both cases keep what they were booked with: nothing was merged.
    let ids = store.patient_case_ids(&NhsNumber::parse("9912003888").unwrap()).await.unwrap();
    let mut names = Vec::new();
    for id in ids {
        names.push(store.case(id).await.unwrap().unwrap().patient.given_name.as_str().to_string());
    }
    names.sort();
    assert_eq!(names, ["Alex", "Robin"]);
    // A correction resolves it.
    let fixed = mdt_coordinator::store::PatientCorrection {
        nhs_number: NhsNumber::parse("9912003888").unwrap(),
        given_name: PersonName::parse("Alex").unwrap(),
        family_name: PersonName::parse("Example").unwrap(),
        date_of_birth: "1970-01-01".parse().unwrap(),
        by: physio.id,
    };
    let event = NewAuditEvent::new("patient_corrected", "case").actor(physio.id);
    assert_eq!(store.correct_patient(&fixed, event, now).await.unwrap(), 2);
    let audit = store.audit_events().await.unwrap();
    assert_eq!(audit.iter().filter(|e| e.action == "patient_corrected").count(), 2);
    assert!(store.patient_conflicts().await.unwrap().is_empty());
}

/// Cancellation and signing are planned from a read and applied in a later transaction:
/// whatever changed in between (a booking after the plan, a draft edited after it was
/// read) refuses the stale plan with `changed_meanwhile` and changes nothing; a fresh plan
/// then applies. Each race is provoked on purpose, between the read and the write.
async fn stale_plans_are_refused_and_change_nothing(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let sessions = seeded_series(&store, 3).await;
    let physio = physio(&store).await;
    let nhs = nhs_numbers(6);
    let now = Utc::now();
    let first = store.book_case(a_case(&sessions[0], physio.id, &nhs[0]), booked(), vec![], now);
    let first = first.await.unwrap().case;
    let plan = store.plan_cancellation(sessions[0].id, now).await.unwrap();
    assert_eq!(plan.cases.len(), 1);
    // A booking lands between the plan and its application.
    store.book_case(a_case(&sessions[0], physio.id, &nhs[1]), booked(), vec![], now).await.unwrap();
    let cancel = NewAuditEvent::new("session_cancelled", "session");
    let stale = store.cancel_session(&plan, cancel.clone(), vec![], now).await.unwrap_err();
    assert_eq!(conflict_code(stale), "changed_meanwhile");
    let unchanged = store.session(sessions[0].id).await.unwrap().unwrap();
    assert_eq!((unchanged.state, unchanged.booked), (SessionState::Scheduled, 2));
    assert_eq!(store.session(sessions[1].id).await.unwrap().unwrap().booked, 0);
    // The next session fills after the plan chose it: the plan is stale again.
    let plan = store.plan_cancellation(sessions[0].id, now).await.unwrap();
    assert!(plan.cases.iter().all(|(_, to)| to.as_ref().map(|t| t.0.id) == Some(sessions[1].id)));
    for n in &nhs[2..5] {
        store.book_case(a_case(&sessions[1], physio.id, n), booked(), vec![], now).await.unwrap();
    }
    let stale = store.cancel_session(&plan, cancel.clone(), vec![], now).await.unwrap_err();
    assert_eq!(conflict_code(stale), "changed_meanwhile");
    assert_eq!(store.session(sessions[0].id).await.unwrap().unwrap().booked, 2);
    let plan = store.plan_cancellation(sessions[0].id, now).await.unwrap();
    let done = store.cancel_session(&plan, cancel, vec![], now).await.unwrap();
    assert_eq!(done.moved.len(), 2, "both cases go to the third session");
    assert!(done.moved.iter().all(|(_, c)| c.session_id == sessions[2].id));

    // A draft edited after the signer read it.
    let case = store.book_case(a_case(&sessions[1], physio.id, &nhs[5]), booked(), vec![], now);
    let case = case.await;
    assert_eq!(conflict_code(case.unwrap_err()), "session_full");
    let case = store.book_case(a_case(&sessions[2], physio.id, &nhs[5]), booked(), vec![], now);
    let case = case.await.unwrap().case;
    let chair = store.session(sessions[2].id).await.unwrap().unwrap().plan.chair_id;
    accept(&store, case.id, chair).await;
    let draft = |plan: &str| {
        serde_json::from_value::<OutcomeDraft>(serde_json::json!({
            "management_plan": { "text": plan, "items": [] }, "follow_up": { "kind": "none" }
        }))
        .unwrap()
    };
    let drafted = NewAuditEvent::new("outcome_drafted", "case");
    store.draft_outcome(case.id, draft("Rest."), chair, drafted.clone(), now).await.unwrap();
    let read = store.outcome_versions(case.id).await.unwrap().pop().unwrap();
    let later = now + Duration::seconds(1);
    store.draft_outcome(case.id, draft("Physiotherapy."), chair, drafted, later).await.unwrap();
    let signing = NewAuditEvent::new("outcome_signed", "case");
    // Decided outside the meeting (the case was not discussed in one), with the reason.
    let outside = |v: OutcomeVersion| OutcomeVersion {
        outside_meeting_reason: Some("Decided from the referral".into()),
        ..v
    };
    let stale = outside(read).signed(chair, later);
    let refused =
        store.sign_outcome(case.id, &stale, signing.clone(), None, &[], uuid::Uuid::new_v4());
    assert_eq!(conflict_code(refused.await.unwrap_err()), "changed_meanwhile");
    assert!(!store.outcome_versions(case.id).await.unwrap()[0].is_signed());
    let fresh = store.outcome_versions(case.id).await.unwrap().pop().unwrap();
    let fresh = outside(fresh).signed(chair, later);
    let signed = store.sign_outcome(case.id, &fresh, signing, None, &[], uuid::Uuid::new_v4());
    assert_eq!(signed.await.unwrap().version.body, draft("Physiotherapy."));
    assert_eq!(store.case(first.id).await.unwrap().unwrap().state, CaseState::Deferred);
}

on_both_backends!(
    stale_plans_are_refused_and_change_nothing,
    the_patient_register_migration_reports_conflicting_cases,
    users_and_specialties,
    refresh_tokens_rotate_and_reuse_revokes_family,
    audit_is_append_only_and_tamper_evident,
    concurrent_audit_appends_keep_one_chain,
    batched_audit_appends_keep_order_and_chain,
    audit_links_are_chained,
    booking_rules,
    no_overbooking_under_a_race,
    mentorship_and_attendance,
);

/// A workflow whose plan went stale is planned again, at most three times in all.
#[tokio::test]
async fn a_stale_plan_is_planned_again_up_to_three_times() {
    use mdt_coordinator::domain::conflict::Conflict;
    let stale_for = |n: usize| {
        let tries = std::sync::atomic::AtomicUsize::new(0);
        async move {
            let outcome = store::until_unchanged(|| {
                let attempt = tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async move {
                    if attempt < n {
                        Err(StoreError::Conflict(Conflict::Changed))
                    } else {
                        Ok(attempt)
                    }
                }
            })
            .await;
            (outcome.map_err(conflict_code), tries.into_inner())
        }
    };
    assert_eq!(stale_for(2).await, (Ok(2), 3));
    assert_eq!(stale_for(3).await, (Err("changed_meanwhile"), 3));
}

#[tokio::test]
async fn unknown_scheme_is_refused_with_an_exact_message() {
    let err = match store::connect(&store::settings_for("mysql://root:secret@localhost/mdt")).await
    {
        Err(e) => e.to_string(),
        Ok(_) => panic!("mysql accepted"),
    };
    assert_eq!(err, "unsupported database URL scheme \"mysql\": use sqlite:// or postgres://");
}

#[tokio::test]
async fn sqlite_runs_in_wal_mode() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let _store = db.store().await;
    let mode = std::fs::read_dir(db.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().ends_with("-wal"));
    assert!(mode, "no WAL file next to the database");
}
