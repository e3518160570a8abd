//! The PostgreSQL backend (multi-instance deployments): native UUID and timestamp types,
//! row locks (`FOR UPDATE`) and conditional updates in place of SQLite's single writer,
//! and a transaction-scoped advisory lock that keeps the audit chain linear.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

use super::*;
use crate::config::DatabaseSettings;
use crate::domain::audit::GENESIS_HASH;
use crate::domain::mentorship::clinic_date;
use crate::domain::message::{join_recipients, split_recipients};
use crate::domain::outcome::check_follow_up_session;
use crate::domain::schedule::SessionPlan;

pub struct PgStore {
    pool: PgPool,
}

/// Key of the advisory lock that serialises audit appends.
const AUDIT_CHAIN_LOCK: i64 = 0x4d44_545f_4155_4454;

impl PgStore {
    pub async fn open(url: &str, settings: &DatabaseSettings) -> Result<Self, ConnectError> {
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(Self { pool })
    }

    async fn write_tx(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        Ok(self.pool.begin().await?)
    }

    /// Specialties of the given users: one query for one user, one for all otherwise.
    async fn specialties_of(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, Vec<String>>, StoreError> {
        let rows = match ids {
            [] => return Ok(HashMap::new()),
            [one] => {
                sqlx::query("SELECT user_id, specialty FROM user_specialties WHERE user_id = $1 ORDER BY specialty")
                    .bind(one)
                    .fetch_all(&self.pool)
                    .await?
            }
            _ => {
                sqlx::query("SELECT user_id, specialty FROM user_specialties ORDER BY specialty")
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        let mut map: HashMap<Uuid, Vec<String>> = HashMap::new();
        for row in rows {
            map.entry(row.try_get("user_id")?)
                .or_default()
                .push(row.try_get("specialty")?);
        }
        Ok(map)
    }

    async fn users_from(&self, rows: Vec<PgRow>) -> Result<Vec<User>, StoreError> {
        let ids: Vec<Uuid> = rows
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<Result<_, _>>()?;
        let specialties = self.specialties_of(&ids).await?;
        rows.into_iter()
            .map(|row| {
                let id: Uuid = row.try_get("id")?;
                decode_user(
                    id,
                    row.try_get("email")?,
                    row.try_get("name")?,
                    row.try_get("role")?,
                    row.try_get("active")?,
                    row.try_get("created_at")?,
                    specialties.get(&id).map(Vec::as_slice).unwrap_or_default(),
                )
            })
            .collect()
    }

    fn session_from(row: &PgRow) -> Result<Session, StoreError> {
        SessionColumns {
            id: row.try_get("id")?,
            series_id: row.try_get("series_id")?,
            specialty: row.try_get("specialty")?,
            title: row.try_get("title")?,
            starts_at: row.try_get("starts_at")?,
            duration_minutes: row.try_get("duration_minutes")?,
            case_capacity: row.try_get("case_capacity")?,
            booked: row.try_get("booked")?,
            minutes_per_case: row.try_get("minutes_per_case")?,
            booking_cutoff_hours: row.try_get("booking_cutoff_hours")?,
            chair_id: row.try_get("chair_id")?,
            teaching: row.try_get("teaching")?,
            state: row.try_get("state")?,
        }
        .decode()
    }

    fn case_from(row: &PgRow) -> Result<Case, StoreError> {
        CaseColumns {
            id: row.try_get("id")?,
            session_id: row.try_get("session_id")?,
            referrer_id: row.try_get("referrer_id")?,
            nhs_number: row.try_get("nhs_number")?,
            given_name: row.try_get("given_name")?,
            family_name: row.try_get("family_name")?,
            date_of_birth: row.try_get("date_of_birth")?,
            sex: row.try_get("sex")?,
            gp_practice_code: row.try_get("gp_practice_code")?,
            clinical_question: row.try_get("clinical_question")?,
            history: row.try_get("history")?,
            urgency: row.try_get("urgency")?,
            body_site: row.try_get("body_site")?,
            free_text_identifies_patient: row.try_get("free_text_identifies_patient")?,
            state: row.try_get("state")?,
            booked_at: row.try_get("booked_at")?,
            moved_from: row.try_get("moved_from")?,
            needs_rebooking: row.try_get("needs_rebooking")?,
            follow_up_of: row.try_get("follow_up_of")?,
        }
        .decode()
    }

    /// The booking this referrer already made with this idempotency key, if any.
    async fn idempotent_case(&self, case: &NewCase) -> Result<Option<Case>, StoreError> {
        let Some(key) = &case.idempotency_key else {
            return Ok(None);
        };
        let row =
            sqlx::query("SELECT * FROM cases WHERE referrer_id = $1 AND idempotency_key = $2")
                .bind(case.referrer_id.0)
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(Self::case_from).transpose()
    }

    fn message_from(row: &PgRow) -> Result<OutboxMessage, StoreError> {
        let attempts: i32 = row.try_get("attempts")?;
        Ok(OutboxMessage {
            id: row.try_get("id")?,
            to: split_recipients(row.try_get("recipients")?),
            subject: row.try_get("subject")?,
            body: row.try_get("body")?,
            calendar: row.try_get("calendar")?,
            html: row.try_get("html")?,
            attempts: u32::try_from(attempts)
                .map_err(|_| StoreError::corrupt("outbox.attempts"))?,
            created_at: row.try_get("created_at")?,
            sent_at: row.try_get("sent_at")?,
            last_error: row.try_get("last_error")?,
        })
    }

    fn attachment_from(row: &PgRow) -> Result<Attachment, StoreError> {
        let size: i64 = row.try_get("size")?;
        Ok(Attachment {
            id: row.try_get("id")?,
            case_id: row.try_get("case_id")?,
            sha256: row.try_get("sha256")?,
            size: u64::try_from(size).map_err(|_| StoreError::corrupt("attachments.size"))?,
            content_type: row.try_get("content_type")?,
            filename: row.try_get("filename")?,
            uploaded_by: UserId(row.try_get("uploaded_by")?),
            uploaded_at: row.try_get("uploaded_at")?,
        })
    }

    fn audit_from(row: &PgRow) -> Result<AuditEvent, StoreError> {
        Ok(AuditEvent {
            seq: row.try_get("seq")?,
            occurred_at: row.try_get("occurred_at")?,
            actor_id: row.try_get::<Option<Uuid>, _>("actor_id")?.map(UserId),
            action: row.try_get("action")?,
            record_type: row.try_get("record_type")?,
            record_id: row.try_get("record_id")?,
            client_addr: row.try_get("client_addr")?,
            details: row.try_get("details")?,
            prev_hash: row.try_get("prev_hash")?,
            hash: row.try_get("hash")?,
        })
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations/postgres")
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Database(e.into()))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn list_specialties(&self) -> Result<Vec<Specialty>, StoreError> {
        let slugs: Vec<String> = sqlx::query_scalar("SELECT slug FROM specialties ORDER BY slug")
            .fetch_all(&self.pool)
            .await?;
        slugs
            .iter()
            .map(|s| Specialty::parse(s).map_err(|_| StoreError::corrupt("specialties.slug")))
            .collect()
    }

    async fn add_specialty(&self, slug: &Specialty, name: &str) -> Result<(), StoreError> {
        let result =
            sqlx::query("INSERT INTO specialties (slug, name, created_at) VALUES ($1, $2, $3)")
                .bind(slug.as_str())
                .bind(name)
                .bind(Utc::now())
                .execute(&self.pool)
                .await;
        match result {
            Err(e) if is_unique_violation(&e, "specialties_pkey") => Err(StoreError::conflict(
                "specialty_exists",
                "that specialty already exists",
            )),
            other => other.map(|_| ()).map_err(StoreError::from),
        }
    }

    async fn create_user(&self, user: NewUser, audit: NewAuditEvent) -> Result<User, StoreError> {
        let id = user.id;
        let now = Utc::now();
        let mut specialties = user.specialties;
        specialties.sort();
        specialties.dedup();
        let mut tx = self.write_tx().await?;
        let inserted = sqlx::query(
            "INSERT INTO users (id, email, name, role, password_hash, active, created_at) \
             VALUES ($1, $2, $3, $4, $5, TRUE, $6)",
        )
        .bind(id.0)
        .bind(user.email.as_str())
        .bind(user.name.as_str())
        .bind(user.role.as_str())
        .bind(&user.password_hash)
        .bind(now)
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e, "email") => {
                return Err(StoreError::conflict(
                    "email_taken",
                    "an account with that email exists",
                ))
            }
            other => other?,
        };
        for s in &specialties {
            let r =
                sqlx::query("INSERT INTO user_specialties (user_id, specialty) VALUES ($1, $2)")
                    .bind(id.0)
                    .bind(s.as_str())
                    .execute(&mut *tx)
                    .await;
            match r {
                Err(e) if is_foreign_key_violation(&e) => return Err(unknown_specialty()),
                other => {
                    other?;
                }
            }
        }
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(User {
            id,
            email: user.email,
            name: user.name,
            role: user.role,
            specialties,
            active: true,
            created_at: now,
        })
    }

    async fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, email, name, role, active, created_at FROM users WHERE id = $1",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?;
        Ok(self.users_from(rows).await?.into_iter().next())
    }

    async fn credentials(&self, email: &EmailAddress) -> Result<Option<Credentials>, StoreError> {
        let row = sqlx::query("SELECT id, password_hash, active FROM users WHERE email = $1")
            .bind(email.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok(Credentials {
                user_id: UserId(row.try_get("id")?),
                password_hash: row.try_get("password_hash")?,
                active: row.try_get("active")?,
            })
        })
        .transpose()
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, email, name, role, active, created_at FROM users ORDER BY email",
        )
        .fetch_all(&self.pool)
        .await?;
        self.users_from(rows).await
    }

    async fn count_users(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?;
        Ok(n.unsigned_abs())
    }

    async fn insert_refresh_token(
        &self,
        t: &NewRefreshToken,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, family_id, user_id, issued_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&t.token_hash)
        .bind(t.family_id)
        .bind(t.user_id.0)
        .bind(t.issued_at)
        .bind(t.expires_at)
        .execute(&mut *tx)
        .await?;
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn rotate_refresh_token(
        &self,
        presented_hash: &str,
        next_hash: &str,
        now: DateTime<Utc>,
        next_expires_at: DateTime<Utc>,
    ) -> Result<RefreshOutcome, StoreError> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(
            "SELECT family_id, user_id, expires_at, used_at, revoked_at FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE",
        )
        .bind(presented_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(RefreshOutcome::Invalid);
        };
        let family: Uuid = row.try_get("family_id")?;
        let user_id = UserId(row.try_get("user_id")?);
        let family_id = family;
        let expires_at: DateTime<Utc> = row.try_get("expires_at")?;
        let used_at: Option<DateTime<Utc>> = row.try_get("used_at")?;
        let revoked_at: Option<DateTime<Utc>> = row.try_get("revoked_at")?;
        if revoked_at.is_some() || expires_at <= now {
            return Ok(RefreshOutcome::Invalid);
        }
        if used_at.is_some() {
            sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL")
                .bind(now)
                .bind(family)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(RefreshOutcome::Reused { user_id, family_id });
        }
        sqlx::query("UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2")
            .bind(now)
            .bind(presented_hash)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, family_id, user_id, issued_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(next_hash)
        .bind(family)
        .bind(user_id.0)
        .bind(now)
        .bind(next_expires_at.min(expires_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(RefreshOutcome::Rotated { user_id, family_id })
    }

    async fn revoke_refresh_family(
        &self,
        presented_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $1 WHERE revoked_at IS NULL AND family_id = \
             (SELECT family_id FROM refresh_tokens WHERE token_hash = $2)",
        )
        .bind(now)
        .bind(presented_hash)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn append_audit(&self, event: NewAuditEvent) -> Result<AuditEvent, StoreError> {
        let mut tx = self.write_tx().await?;
        let stored = append_audit_in(&mut tx, event).await?;
        tx.commit().await?;
        Ok(stored)
    }

    async fn append_audits(&self, events: Vec<NewAuditEvent>) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_tx().await?;
        append_audits_in(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn audit_events(&self) -> Result<Vec<AuditEvent>, StoreError> {
        let rows = sqlx::query("SELECT * FROM audit_events ORDER BY seq")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Self::audit_from).collect()
    }

    async fn create_series(&self, series: NewSeries) -> Result<(Series, Vec<Session>), StoreError> {
        let plan = &series.plan;
        let id = Uuid::new_v4();
        let now = Utc::now();
        let mut tx = self.write_tx().await?;
        let inserted = sqlx::query(
            "INSERT INTO series (id, specialty, title, first_date, local_time, weeks, duration_minutes, \
             case_capacity, minutes_per_case, booking_cutoff_hours, chair_id, teaching, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(id)
        .bind(plan.specialty.as_str())
        .bind(&plan.title)
        .bind(series.first_date)
        .bind(series.local_time)
        .bind(series.weeks as i32)
        .bind(plan.duration_minutes as i32)
        .bind(plan.case_capacity as i32)
        .bind(plan.minutes_per_case as i32)
        .bind(plan.booking_cutoff_hours as i32)
        .bind(plan.chair_id.0)
        .bind(plan.teaching)
        .bind(now)
        .execute(&mut *tx)
        .await;
        if let Err(e) = &inserted {
            if is_foreign_key_violation(e) {
                return Err(unknown_reference());
            }
        }
        inserted?;
        let mut sessions = Vec::new();
        for starts_at in series.occurrences() {
            let session_id = Uuid::new_v4();
            insert_session(&mut tx, session_id, Some(id), plan, starts_at).await?;
            sessions.push(Session {
                id: session_id,
                series_id: Some(id),
                plan: plan.clone(),
                starts_at,
                booked: 0,
                state: crate::domain::SessionState::Scheduled,
            });
        }
        tx.commit().await?;
        let NewSeries {
            plan,
            first_date,
            local_time,
            weeks,
        } = series;
        Ok((
            Series {
                id,
                plan,
                first_date,
                local_time,
                weeks,
            },
            sessions,
        ))
    }

    async fn session(&self, id: Uuid) -> Result<Option<Session>, StoreError> {
        let row = sqlx::query("SELECT * FROM sessions WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::session_from).transpose()
    }

    async fn book_case(
        &self,
        case: NewCase,
        audit: NewAuditEvent,
        mail: Vec<NewMessage>,
        now: DateTime<Utc>,
    ) -> Result<Booked, StoreError> {
        if let Some(existing) = self.idempotent_case(&case).await? {
            return replay_of(existing, &case);
        }
        let mut tx = self.write_tx().await?;
        take_slot(&mut tx, case.session_id, now, true).await?;
        let booked = booked_case(&case, now);
        let changed = register_patient(&mut tx, &case, now).await?;
        if !changed.is_empty() {
            // Every case of the patient now carries the change: each records it.
            let mut ids = patient_cases_in(&mut tx, &case.patient.nhs_number).await?;
            ids.push(booked.id);
            let events = per_case(&patient_updated(&audit, &changed), &ids);
            append_audits_in(&mut tx, events).await?;
        }
        match insert_case_row(&mut tx, &booked, case.idempotency_key.as_deref()).await {
            Err(e) if is_unique_violation(&e, "idempotency") => {
                // A concurrent retry with the same key won the race: answer with its booking.
                drop(tx);
                let existing = self
                    .idempotent_case(&case)
                    .await?
                    .ok_or(StoreError::NotFound("case"))?;
                return replay_of(existing, &case);
            }
            Err(e) if is_unique_violation(&e, "cases_patient_once_per_session") => {
                return Err(duplicate_case())
            }
            other => other?,
        };
        append_audit_in(&mut tx, audit.record(booked.id)).await?;
        for message in &mail {
            enqueue_in(&mut tx, message, now).await?;
        }
        tx.commit().await?;
        Ok(Booked {
            case: booked,
            replayed: false,
        })
    }

    async fn reorder_agenda(
        &self,
        session_id: Uuid,
        case_ids: &[Uuid],
        audit: NewAuditEvent,
    ) -> Result<Vec<Case>, StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query("SELECT id FROM sessions WHERE id = $1 FOR UPDATE")
            .bind(session_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound("session"))?;
        let rows = sqlx::query(
            "SELECT * FROM cases WHERE session_id = $1 AND state NOT IN ('withdrawn', 'deferred')",
        )
        .bind(session_id)
        .fetch_all(&mut *tx)
        .await?;
        let current: Vec<Case> = rows.iter().map(Self::case_from).collect::<Result<_, _>>()?;
        check_same_cases(&current, case_ids)?;
        for (position, id) in case_ids.iter().enumerate() {
            sqlx::query("UPDATE cases SET agenda_position = $1 WHERE id = $2")
                .bind(i32::try_from(position + 1).unwrap_or(i32::MAX))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        append_audit_in(&mut tx, audit.record(session_id)).await?;
        tx.commit().await?;
        self.session_cases(session_id).await
    }

    async fn move_case(
        &self,
        id: Uuid,
        target: Uuid,
        new_id: Uuid,
        audit: NewAuditEvent,
        mail: Vec<NewMessage>,
        now: DateTime<Utc>,
    ) -> Result<Case, StoreError> {
        let mut tx = self.write_tx().await?;
        let source = case_session(&mut tx, id).await?;
        lock_sessions(&mut tx, &[source, target]).await?;
        let row = sqlx::query("SELECT * FROM cases WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound("case"))?;
        let case = Self::case_from(&row)?;
        if !case.state.withdrawable() {
            return Err(not_withdrawable(&case));
        }
        if case.session_id == target {
            return Err(StoreError::conflict(
                "same_session",
                "the case is already in that session",
            ));
        }
        take_slot(&mut tx, target, now, true).await?;
        let moved = case.moved_to(new_id, target, now);
        if patient_already_in(&mut tx, &case, target).await? {
            return Err(duplicate_case());
        }
        insert_case_row(&mut tx, &moved, None).await?;
        copy_attachments(&mut tx, case.id, moved.id).await?;
        carry_mentorship_flag(&mut tx, case.id, moved.id).await?;
        release_case(&mut tx, &case, false).await?;
        append_audit_in(&mut tx, audit.record(new_id)).await?;
        for message in &mail {
            enqueue_in(&mut tx, message, now).await?;
        }
        tx.commit().await?;
        Ok(moved)
    }

    async fn cancel_session(
        &self,
        id: Uuid,
        audit: NewAuditEvent,
        notice: CancelNotice<'_>,
        now: DateTime<Utc>,
    ) -> Result<Cancelled, StoreError> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query("SELECT * FROM sessions WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound("session"))?;
        let mut session = Self::session_from(&row)?;
        check_takes_bookings(&session).map_err(|_| {
            StoreError::conflict(
                "invalid_state",
                format!("a {} session cannot be cancelled", session.state.as_str()),
            )
        })?;
        sqlx::query("UPDATE sessions SET state = 'cancelled' WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        session.state = crate::domain::SessionState::Cancelled;
        let rows = sqlx::query(
            "SELECT * FROM cases WHERE session_id = $1 AND state IN ('booked', 'listed') \
             ORDER BY CASE urgency WHEN 'urgent' THEN 0 ELSE 1 END, booked_at, id",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        let cases: Vec<Case> = rows.iter().map(Self::case_from).collect::<Result<_, _>>()?;
        let later: Vec<Session> = match session.series_id {
            None => Vec::new(),
            Some(series) => {
                let rows = sqlx::query(
                    "SELECT * FROM sessions WHERE series_id = $1 AND starts_at > $2 \
                     AND state IN ('scheduled', 'published') ORDER BY starts_at",
                )
                .bind(series)
                .bind(session.starts_at)
                .fetch_all(&mut *tx)
                .await?;
                rows.iter()
                    .map(Self::session_from)
                    .collect::<Result<_, _>>()?
            }
        };
        let mut involved: Vec<Uuid> = later.iter().map(|s| s.id).collect();
        involved.push(id);
        lock_sessions(&mut tx, &involved).await?;
        let mut report = Cancelled {
            session: session.clone(),
            moved: Vec::new(),
            flagged: Vec::new(),
        };
        for case in &cases {
            let mut destination = None;
            for candidate in &later {
                if patient_already_in(&mut tx, case, candidate.id).await? {
                    continue;
                }
                match take_slot(&mut tx, candidate.id, now, true).await {
                    Ok(s) => {
                        destination = Some(s);
                        break;
                    }
                    Err(StoreError::Conflict { .. }) => continue,
                    Err(e) => return Err(e),
                }
            }
            let message = match &destination {
                Some(target) => {
                    let moved = case.moved_to(Uuid::new_v4(), target.id, now);
                    insert_case_row(&mut tx, &moved, None).await?;
                    copy_attachments(&mut tx, case.id, moved.id).await?;
                    carry_mentorship_flag(&mut tx, case.id, moved.id).await?;
                    release_case(&mut tx, case, false).await?;
                    let message = notice(case, Some((&moved, target)));
                    report.moved.push((case.id, moved));
                    message
                }
                None => {
                    release_case(&mut tx, case, true).await?;
                    report.flagged.push(case.id);
                    notice(case, None)
                }
            };
            if let Some(message) = message {
                enqueue_in(&mut tx, &message, now).await?;
            }
        }
        append_audit_in(&mut tx, audit.record(id)).await?;
        tx.commit().await?;
        report.session.booked = 0;
        Ok(report)
    }

    async fn case(&self, id: Uuid) -> Result<Option<Case>, StoreError> {
        let row = sqlx::query("SELECT * FROM cases WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::case_from).transpose()
    }

    async fn session_cases(&self, session_id: Uuid) -> Result<Vec<Case>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM cases WHERE session_id = $1 AND state NOT IN ('withdrawn', 'deferred') \
             ORDER BY COALESCE(agenda_position, 2147483647), CASE urgency WHEN 'urgent' THEN 0 ELSE 1 END, booked_at, id",
        )
        .bind(session_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Self::case_from).collect()
    }

    async fn referrer_cases(&self, referrer: UserId) -> Result<Vec<Case>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM cases WHERE referrer_id = $1 ORDER BY booked_at DESC, id")
                .bind(referrer.0)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(Self::case_from).collect()
    }

    async fn withdraw_case(&self, id: Uuid, audit: NewAuditEvent) -> Result<Case, StoreError> {
        let mut tx = self.write_tx().await?;
        let session_id = case_session(&mut tx, id).await?;
        lock_sessions(&mut tx, &[session_id]).await?;
        let row = sqlx::query("SELECT * FROM cases WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound("case"))?;
        let mut case = Self::case_from(&row)?;
        if !case.state.withdrawable() {
            return Err(not_withdrawable(&case));
        }
        sqlx::query("UPDATE cases SET state = 'withdrawn' WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE sessions SET booked = booked - 1 WHERE id = $1")
            .bind(case.session_id)
            .execute(&mut *tx)
            .await?;
        // A withdrawn case leaves the mentorship backlog, cleared by whoever withdrew it.
        if let Some(actor) = audit.actor_id {
            sqlx::query(
                "UPDATE mentorship_flags SET cleared_at = $1, cleared_on = $2, cleared_by = $3 \
                 WHERE case_id = $4 AND cleared_at IS NULL",
            )
            .bind(audit.occurred_at)
            .bind(clinic_date(audit.occurred_at))
            .bind(actor.0)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        append_audit_in(&mut tx, audit.record(id)).await?;
        tx.commit().await?;
        case.state = crate::domain::CaseState::Withdrawn;
        Ok(case)
    }

    async fn add_attachment(&self, a: &Attachment, audit: NewAuditEvent) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        insert_attachment_row(&mut tx, a).await?;
        append_audit_in(&mut tx, audit.record(a.id)).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn attachment(&self, id: Uuid) -> Result<Option<Attachment>, StoreError> {
        let row = sqlx::query("SELECT * FROM attachments WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::attachment_from).transpose()
    }

    async fn case_attachments(&self, case_id: Uuid) -> Result<Vec<Attachment>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM attachments WHERE case_id = $1 ORDER BY uploaded_at, id")
                .bind(case_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(Self::attachment_from).collect()
    }

    async fn claim_due_messages(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        let mut tx = self.write_tx().await?;
        let rows = sqlx::query(
            "SELECT * FROM outbox WHERE sent_at IS NULL AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at, created_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let messages: Vec<OutboxMessage> = rows
            .iter()
            .map(Self::message_from)
            .collect::<Result<_, _>>()?;
        for m in &messages {
            sqlx::query("UPDATE outbox SET next_attempt_at = $1 WHERE id = $2")
                .bind(lease_until)
                .bind(m.id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(messages)
    }

    async fn message_sent(&self, id: Uuid, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("UPDATE outbox SET sent_at = $1, attempts = attempts + 1, last_error = NULL WHERE id = $2")
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn message_failed(
        &self,
        id: Uuid,
        error: &str,
        retry_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE outbox SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2 WHERE id = $3")
            .bind(error)
            .bind(retry_at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn outbox_messages(&self) -> Result<Vec<OutboxMessage>, StoreError> {
        let rows = sqlx::query("SELECT * FROM outbox ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Self::message_from).collect()
    }

    async fn create_session(
        &self,
        plan: SessionPlan,
        starts_at: DateTime<Utc>,
    ) -> Result<Session, StoreError> {
        let id = Uuid::new_v4();
        let mut tx = self.write_tx().await?;
        insert_session(&mut tx, id, None, &plan, starts_at).await?;
        tx.commit().await?;
        Ok(Session {
            id,
            series_id: None,
            plan,
            starts_at,
            booked: 0,
            state: crate::domain::SessionState::Scheduled,
        })
    }

    async fn list_sessions(
        &self,
        specialty: Option<&Specialty>,
        window: TimeWindow,
    ) -> Result<Vec<Session>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM sessions WHERE ($1::text IS NULL OR specialty = $1) \
             AND ($2::timestamptz IS NULL OR starts_at >= $2) AND ($3::timestamptz IS NULL OR starts_at < $3) \
             ORDER BY starts_at, id",
        )
        .bind(specialty.map(|s| s.as_str()))
        .bind(window.from)
        .bind(window.to)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Self::session_from).collect()
    }

    async fn publish_session(
        &self,
        id: Uuid,
        audit: NewAuditEvent,
        mail: Vec<NewMessage>,
    ) -> Result<Session, StoreError> {
        let mut tx = self.write_tx().await?;
        let updated = sqlx::query(
            "UPDATE sessions SET state = 'published' WHERE id = $1 AND state = 'scheduled'",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let session = guarded_session(&mut tx, id, updated.rows_affected(), "published").await?;
        commit_session_change(tx, id, audit, &mail).await?;
        Ok(session)
    }
    fn watch_live(&self, signal: Arc<dyn LiveSignal>) -> bool {
        tokio::spawn(listen_live(self.pool.clone(), signal));
        true
    }

    async fn reschedule_session(
        &self,
        id: Uuid,
        starts_at: DateTime<Utc>,
        audit: NewAuditEvent,
        mail: RescheduleNotice<'_>,
    ) -> Result<Session, StoreError> {
        let mut tx = self.write_tx().await?;
        let updated = sqlx::query(
            "UPDATE sessions SET starts_at = $2 WHERE id = $1 \
             AND state IN ('scheduled', 'published')",
        )
        .bind(id)
        .bind(starts_at)
        .execute(&mut *tx)
        .await?;
        let session = guarded_session(&mut tx, id, updated.rows_affected(), "moved").await?;
        let cases = sqlx::query(
            "SELECT * FROM cases WHERE session_id = $1 AND state NOT IN ('withdrawn', 'deferred')",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(Self::case_from)
        .collect::<Result<Vec<_>, _>>()?;
        commit_session_change(tx, id, audit, &mail(&session, &cases)).await?;
        Ok(session)
    }

    async fn append_live_events(
        &self,
        session_id: Uuid,
        expected_seq: Option<u64>,
        events: Vec<NewLiveEvent>,
        now: DateTime<Utc>,
    ) -> Result<Vec<LiveEvent>, StoreError> {
        let mut tx = self.write_tx().await?;
        // Sessions are locked in id order before any case row (as every writer does);
        // a deferral also locks the later sessions of the series it may move into.
        let later = if events
            .iter()
            .any(|e| matches!(e.body, EventBody::CaseDeferred { .. }))
        {
            later_sessions_of(&mut tx, session_id).await?
        } else {
            Vec::new()
        };
        let mut involved = later.clone();
        involved.push(session_id);
        lock_sessions(&mut tx, &involved).await?;
        let stored =
            append_events_in(&mut tx, session_id, expected_seq, events, &later, now).await?;
        tx.commit().await?;
        Ok(stored)
    }

    async fn live_events(
        &self,
        session_id: Uuid,
        after_seq: u64,
        limit: u64,
    ) -> Result<Vec<LiveEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, payload, actor_id, command_id, occurred_at FROM session_events \
             WHERE session_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(session_id)
        .bind(i64::try_from(after_seq).unwrap_or(i64::MAX))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                decode_live_event(
                    session_id,
                    r.try_get("seq")?,
                    r.try_get::<String, _>("payload")?.as_str(),
                    r.try_get::<Option<Uuid>, _>("actor_id")?,
                    r.try_get("command_id")?,
                    r.try_get("occurred_at")?,
                )
            })
            .collect()
    }

    async fn create_live_ticket(
        &self,
        ticket_hash: &str,
        session_id: Uuid,
        user: UserId,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM live_tickets WHERE expires_at < $1")
            .bind(Utc::now() - chrono::Duration::hours(1))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO live_tickets (ticket_hash, session_id, user_id, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(ticket_hash)
        .bind(session_id)
        .bind(user.0)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn use_live_ticket(
        &self,
        ticket_hash: &str,
        session_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<UserId>, StoreError> {
        let mut tx = self.write_tx().await?;
        let user: Option<Uuid> = sqlx::query_scalar(
            "UPDATE live_tickets SET used_at = $3 WHERE ticket_hash = $1 AND session_id = $2 \
             AND used_at IS NULL AND expires_at > $3 RETURNING user_id",
        )
        .bind(ticket_hash)
        .bind(session_id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(user.map(UserId))
    }

    async fn live_heartbeat(&self, instance: Uuid) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO live_instances (id, seen_at) VALUES ($1, now()) \
             ON CONFLICT (id) DO UPDATE SET seen_at = now()",
        )
        .bind(instance)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn live_instances_alive(&self, seconds: u64) -> Result<Vec<Uuid>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM live_instances WHERE seen_at >= now() - make_interval(secs => $1)",
        )
        .bind(seconds as f64)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn set_specialty_quorum(
        &self,
        specialty: &Specialty,
        others: u32,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let updated = sqlx::query("UPDATE specialties SET quorum_others = $1 WHERE slug = $2")
            .bind(i32::try_from(others).unwrap_or(i32::MAX))
            .bind(specialty.as_str())
            .execute(&mut *tx)
            .await?;
        if updated.rows_affected() != 1 {
            return Err(StoreError::NotFound("specialty"));
        }
        append_audit_in(&mut tx, audit.record(specialty.as_str())).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn specialty_quorum(&self, specialty: &Specialty) -> Result<u32, StoreError> {
        let n: Option<i32> =
            sqlx::query_scalar("SELECT quorum_others FROM specialties WHERE slug = $1")
                .bind(specialty.as_str())
                .fetch_optional(&self.pool)
                .await?;
        u32::try_from(n.unwrap_or(1)).map_err(|_| StoreError::corrupt("specialties.quorum_others"))
    }

    async fn session_attendance(&self, session_id: Uuid) -> Result<Vec<Attendance>, StoreError> {
        let rows = sqlx::query(
            "SELECT user_id, role, joined_at, left_at FROM attendance WHERE session_id = $1 ORDER BY joined_at, user_id",
        )
        .bind(session_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Attendance {
                    session_id,
                    user_id: UserId(r.try_get("user_id")?),
                    role: r
                        .try_get::<String, _>("role")?
                        .parse()
                        .map_err(|_| StoreError::corrupt("attendance.role"))?,
                    joined_at: r.try_get("joined_at")?,
                    left_at: r.try_get("left_at")?,
                })
            })
            .collect()
    }

    async fn draft_outcome(
        &self,
        case_id: Uuid,
        draft: OutcomeDraft,
        author: UserId,
        audit: NewAuditEvent,
        now: DateTime<Utc>,
    ) -> Result<OutcomeVersion, StoreError> {
        let now = now.trunc_subsecs(6);
        let mut tx = self.write_tx().await?;
        // The session before the case (the lock order of every writer): a live
        // meeting hears of the draft in this transaction.
        let source = case_session(&mut tx, case_id).await?;
        lock_sessions(&mut tx, &[source]).await?;
        let case = lock_case(&mut tx, case_id).await?;
        check_outcome_open(&case)?;
        let version = match current_outcome(&mut tx, case_id).await? {
            Some(v) if v.is_signed() => return Err(outcome_signed()),
            Some(mut v) => {
                sqlx::query(
                    "UPDATE outcome_versions SET body = $1, author_id = $2, updated_at = $3 \
                     WHERE case_id = $4 AND version = $5 AND signed_at IS NULL",
                )
                .bind(encode_outcome(&draft)?)
                .bind(author.0)
                .bind(now)
                .bind(case_id)
                .bind(v.version as i32)
                .execute(&mut *tx)
                .await?;
                v.body = draft;
                v.author_id = author;
                v.updated_at = now;
                v
            }
            None => {
                let v = first_draft(case_id, draft, author, now);
                insert_outcome_row(&mut tx, &v).await?;
                v
            }
        };
        append_audit_in(
            &mut tx,
            audit
                .record(case_id)
                .details(serde_json::json!({ "version": version.version })),
        )
        .await?;
        let drafted = EventBody::OutcomeDrafted {
            case_id,
            version: version.version,
            summary: serde_json::to_value(version.body.summary()).unwrap_or_default(),
        };
        outcome_event_in(&mut tx, case.session_id, drafted, author, now).await?;
        tx.commit().await?;
        Ok(version)
    }

    async fn sign_outcome(
        &self,
        case_id: Uuid,
        signer: UserId,
        audit: NewAuditEvent,
        letter: OutcomeLetter<'_>,
        follow_up_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<SignedOutcome, StoreError> {
        let now = now.trunc_subsecs(6);
        let mut tx = self.write_tx().await?;
        let source = case_session(&mut tx, case_id).await?;
        let target = current_outcome(&mut tx, case_id)
            .await?
            .and_then(|v| v.body.follow_up.re_discuss_session());
        let mut involved = vec![source];
        involved.extend(target);
        lock_sessions(&mut tx, &involved).await?;
        let mut case = lock_case(&mut tx, case_id).await?;
        let mut version = current_outcome(&mut tx, case_id)
            .await?
            .ok_or_else(no_draft)?;
        if version.is_signed() {
            return Err(outcome_signed());
        }
        check_signable(&case)?;
        let session = session_in(&mut tx, case.session_id)
            .await?
            .ok_or(StoreError::NotFound("session"))?;
        sqlx::query(
            "UPDATE outcome_versions SET signed_by = $1, signed_at = $2 \
             WHERE case_id = $3 AND version = $4 AND signed_at IS NULL",
        )
        .bind(signer.0)
        .bind(now)
        .bind(case_id)
        .bind(version.version as i32)
        .execute(&mut *tx)
        .await?;
        version.signed_by = Some(signer);
        version.signed_at = Some(now);
        sqlx::query("UPDATE cases SET state = 'outcome_signed' WHERE id = $1")
            .bind(case_id)
            .execute(&mut *tx)
            .await?;
        case.state = crate::domain::CaseState::OutcomeSigned;
        let follow_up_case = match version.body.follow_up.re_discuss_session() {
            None => None,
            Some(target_id) => {
                let target = session_in(&mut tx, target_id).await?.ok_or_else(|| {
                    StoreError::Invalid(ParseError::new(
                        "invalid_follow_up_session",
                        "follow_up.session_id",
                        "no such session",
                    ))
                })?;
                check_follow_up_session(&session, &target).map_err(StoreError::Invalid)?;
                take_slot(&mut tx, target_id, now, false).await?;
                let follow_up = case.follow_up(follow_up_id, target_id, now);
                if patient_already_in(&mut tx, &case, target_id).await? {
                    return Err(duplicate_case());
                }
                match insert_case_row(&mut tx, &follow_up, None).await {
                    Err(e) if is_unique_violation(&e, "cases_patient_once_per_session") => {
                        return Err(duplicate_case())
                    }
                    other => other?,
                }
                copy_attachments(&mut tx, case.id, follow_up.id).await?;
                append_audit_in(&mut tx, follow_up_audit(&audit, &follow_up)).await?;
                Some(follow_up)
            }
        };
        append_audit_in(
            &mut tx,
            audit.record(case_id).details(serde_json::json!({
                "version": version.version,
                "follow_up_case": follow_up_case.as_ref().map(|c| c.id),
            })),
        )
        .await?;
        if let Some(message) = letter(&case, &session, &version) {
            enqueue_in(&mut tx, &message, now).await?;
        }
        let signed = EventBody::OutcomeSigned {
            case_id,
            version: version.version,
            signed_by: signer,
        };
        outcome_event_in(&mut tx, case.session_id, signed, signer, now).await?;
        tx.commit().await?;
        Ok(SignedOutcome {
            version,
            follow_up_case,
        })
    }

    async fn amend_outcome(
        &self,
        case_id: Uuid,
        amendment: Amendment,
        author: UserId,
        audit: NewAuditEvent,
        letter: OutcomeLetter<'_>,
        now: DateTime<Utc>,
    ) -> Result<OutcomeVersion, StoreError> {
        let now = now.trunc_subsecs(6);
        let mut tx = self.write_tx().await?;
        let source = case_session(&mut tx, case_id).await?;
        lock_sessions(&mut tx, &[source]).await?;
        let case = lock_case(&mut tx, case_id).await?;
        let current = current_outcome(&mut tx, case_id)
            .await?
            .ok_or_else(no_draft)?;
        if !current.is_signed() {
            return Err(outcome_not_signed());
        }
        let amended = amendment_of(&current, amendment, author, now);
        insert_outcome_row(&mut tx, &amended).await?;
        let session = session_in(&mut tx, case.session_id)
            .await?
            .ok_or(StoreError::NotFound("session"))?;
        append_audit_in(
            &mut tx,
            audit.record(case_id).details(serde_json::json!({
                "version": amended.version,
                "supersedes": current.version,
            })),
        )
        .await?;
        if let Some(message) = letter(&case, &session, &amended) {
            enqueue_in(&mut tx, &message, now).await?;
        }
        let signed = EventBody::OutcomeSigned {
            case_id,
            version: amended.version,
            signed_by: author,
        };
        outcome_event_in(&mut tx, case.session_id, signed, author, now).await?;
        tx.commit().await?;
        Ok(amended)
    }

    async fn outcome_versions(&self, case_id: Uuid) -> Result<Vec<OutcomeVersion>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM outcome_versions WHERE case_id = $1 ORDER BY version")
                .bind(case_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(outcome_from).collect()
    }

    // FHIR and audit queries (issue 7)

    async fn search_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        use crate::domain::audit::AuditSubject;
        // A record id is a UUID as text, unique across record types.
        let base = match &query.subject {
            AuditSubject::Patient(nhs) => sqlx::query(
                "SELECT * FROM audit_events WHERE \
                 (record_id IN (SELECT id::text FROM cases WHERE nhs_number = $1) \
                  OR record_id IN (SELECT a.id::text FROM attachments a JOIN cases c ON c.id = a.case_id \
                                   WHERE c.nhs_number = $1)) \
                 AND seq > $2 AND ($3::timestamptz IS NULL OR occurred_at >= $3) \
                 AND ($4::timestamptz IS NULL OR occurred_at < $4) ORDER BY seq LIMIT $5",
            )
            .bind(nhs.as_str().to_string()),
            AuditSubject::Actor(id) => sqlx::query(
                "SELECT * FROM audit_events WHERE actor_id = $1 \
                 AND seq > $2 AND ($3::timestamptz IS NULL OR occurred_at >= $3) \
                 AND ($4::timestamptz IS NULL OR occurred_at < $4) ORDER BY seq LIMIT $5",
            )
            .bind(id.0),
        };
        let rows = base
            .bind(query.after)
            .bind(query.window.from)
            .bind(query.window.to)
            .bind(i64::from(query.limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Self::audit_from).collect()
    }

    async fn patient_case_ids(&self, nhs_number: &NhsNumber) -> Result<Vec<Uuid>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT id FROM cases WHERE nhs_number = $1 ORDER BY booked_at, id")
                .bind(nhs_number.as_str())
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn patient_conflicts(&self) -> Result<Vec<(NhsNumber, DateTime<Utc>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT nhs_number, found_at FROM patient_conflicts WHERE resolved_at IS NULL \
             ORDER BY found_at, nhs_number",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let nhs: String = r.try_get("nhs_number")?;
                let nhs = NhsNumber::parse(&nhs)
                    .map_err(|_| StoreError::corrupt("patient_conflicts.nhs_number"))?;
                Ok((nhs, r.try_get("found_at")?))
            })
            .collect()
    }

    async fn correct_patient(
        &self,
        correction: &PatientCorrection,
        audit: NewAuditEvent,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.write_tx().await?;
        let nhs = correction.nhs_number.as_str();
        let found = sqlx::query(
            "UPDATE patients SET given_name = $2, family_name = $3, date_of_birth = $4, \
             updated_at = $5 WHERE nhs_number = $1",
        )
        .bind(nhs)
        .bind(correction.given_name.as_str())
        .bind(correction.family_name.as_str())
        .bind::<NaiveDate>(correction.date_of_birth)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if found.rows_affected() == 0 {
            return Err(StoreError::NotFound("patient"));
        }
        let cases = sqlx::query(
            "UPDATE cases SET given_name = $2, family_name = $3, date_of_birth = $4 \
             WHERE nhs_number = $1",
        )
        .bind(nhs)
        .bind(correction.given_name.as_str())
        .bind(correction.family_name.as_str())
        .bind::<NaiveDate>(correction.date_of_birth)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE patient_conflicts SET resolved_at = $2, resolved_by = $3 \
             WHERE nhs_number = $1 AND resolved_at IS NULL",
        )
        .bind(nhs)
        .bind(now)
        .bind(correction.by.0)
        .execute(&mut *tx)
        .await?;
        let ids = patient_cases_in(&mut tx, &correction.nhs_number).await?;
        append_audits_in(&mut tx, per_case(&audit, &ids)).await?;
        tx.commit().await?;
        Ok(cases.rows_affected())
    }

    // Mentorship and attendance (issue 7) -------------------------------------------------

    async fn create_mentorship_contract(
        &self,
        contract: &Contract,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        // Two contracts for one consultant are checked for overlap one at a time.
        sqlx::query("SELECT id FROM users WHERE id = $1 FOR UPDATE")
            .bind(contract.consultant_id.0)
            .execute(&mut *tx)
            .await?;
        let rows = sqlx::query(
            "SELECT * FROM mentorship_contracts WHERE consultant_id = $1 AND specialty = $2",
        )
        .bind(contract.consultant_id.0)
        .bind(contract.specialty.as_str())
        .fetch_all(&mut *tx)
        .await?;
        for row in &rows {
            if contract_from(row)?.overlaps(contract) {
                return Err(contract_overlaps());
            }
        }
        sqlx::query(
            "INSERT INTO mentorship_contracts (id, consultant_id, specialty, minutes_per_week, \
             weeks_per_year, starts_on, ends_on, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(contract.id)
        .bind(contract.consultant_id.0)
        .bind(contract.specialty.as_str())
        .bind(i32::try_from(contract.minutes_per_week).unwrap_or(i32::MAX))
        .bind(i32::try_from(contract.weeks_per_year).unwrap_or(i32::MAX))
        .bind(contract.starts_on)
        .bind(contract.ends_on)
        .bind(contract.created_by.0)
        .bind(contract.created_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if is_foreign_key_violation(&e) {
                unknown_reference()
            } else {
                e.into()
            }
        })?;
        append_audit_in(&mut tx, audit.record(contract.id)).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn mentorship_contracts(
        &self,
        consultant: Option<UserId>,
    ) -> Result<Vec<Contract>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM mentorship_contracts WHERE ($1 IS NULL OR consultant_id = $1) \
             ORDER BY consultant_id, specialty, starts_on",
        )
        .bind(consultant.map(|c| c.0))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(contract_from).collect()
    }

    async fn create_mentorship_log(
        &self,
        log: &MentorshipLog,
        audit: Vec<NewAuditEvent>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, StoreError> {
        let fk = |e: sqlx::Error| {
            if is_foreign_key_violation(&e) {
                unknown_log_reference()
            } else {
                StoreError::from(e)
            }
        };
        let mut tx = self.write_tx().await?;
        let id = log.id;
        sqlx::query(
            "INSERT INTO mentorship_logs (id, consultant_id, specialty, occurred_on, \
             duration_minutes, kind, learning_points, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id)
        .bind(log.consultant_id.0)
        .bind(log.specialty.as_str())
        .bind(log.occurred_on)
        .bind(i32::try_from(log.duration_minutes).unwrap_or(i32::MAX))
        .bind(log.kind.as_str())
        .bind(encode_learning_points(&log.learning_points)?)
        .bind(log.created_at)
        .execute(&mut *tx)
        .await
        .map_err(fk)?;
        for mentee in &log.mentee_ids {
            sqlx::query("INSERT INTO mentorship_log_mentees (log_id, user_id) VALUES ($1, $2)")
                .bind(id)
                .bind(mentee.0)
                .execute(&mut *tx)
                .await
                .map_err(fk)?;
        }
        let mut cleared = Vec::new();
        for case in &log.case_ids {
            sqlx::query("INSERT INTO mentorship_log_cases (log_id, case_id) VALUES ($1, $2)")
                .bind(id)
                .bind(case)
                .execute(&mut *tx)
                .await
                .map_err(fk)?;
            let done = sqlx::query(
                "UPDATE mentorship_flags SET cleared_at = $1, cleared_on = $2, cleared_by = $3, \
                 cleared_by_log = $4 WHERE case_id = $5 AND cleared_at IS NULL AND flagged_on <= $2",
            )
            .bind(now)
            .bind(log.occurred_on)
            .bind(log.consultant_id.0)
            .bind(id)
            .bind(case)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() > 0 {
                cleared.push(*case);
            }
        }
        for event in audit {
            append_audit_in(&mut tx, event).await?;
        }
        tx.commit().await?;
        Ok(cleared)
    }

    async fn mentorship_logs(
        &self,
        range: DateRange,
        involving: Option<UserId>,
    ) -> Result<Vec<MentorshipLog>, StoreError> {
        const FILTER: &str = "occurred_on >= $1 AND occurred_on <= $2 AND ($3 IS NULL \
             OR consultant_id = $3 OR id IN (SELECT log_id FROM mentorship_log_mentees WHERE user_id = $3))";
        let who = involving.map(|u| u.0);
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT * FROM mentorship_logs WHERE {FILTER} ORDER BY occurred_on, created_at, id"
        )))
        .bind(range.from)
        .bind(range.to)
        .bind(who)
        .fetch_all(&self.pool)
        .await?;
        let mut mentees: HashMap<Uuid, Vec<UserId>> = HashMap::new();
        for row in sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT log_id, user_id FROM mentorship_log_mentees WHERE log_id IN \
             (SELECT id FROM mentorship_logs WHERE {FILTER}) ORDER BY user_id"
        )))
        .bind(range.from)
        .bind(range.to)
        .bind(who)
        .fetch_all(&self.pool)
        .await?
        {
            mentees
                .entry(row.try_get("log_id")?)
                .or_default()
                .push(UserId(row.try_get("user_id")?));
        }
        let mut cases: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for row in sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT c.log_id, c.case_id FROM mentorship_log_cases c JOIN cases k ON k.id = c.case_id \
             WHERE c.log_id IN (SELECT id FROM mentorship_logs WHERE {FILTER}) ORDER BY k.booked_at, c.case_id"
        )))
        .bind(range.from)
        .bind(range.to)
        .bind(who)
        .fetch_all(&self.pool)
        .await?
        {
            cases
                .entry(row.try_get("log_id")?)
                .or_default()
                .push(row.try_get("case_id")?);
        }
        rows.iter()
            .map(|row| {
                let id: Uuid = row.try_get("id")?;
                Ok(MentorshipLog {
                    id,
                    consultant_id: UserId(row.try_get("consultant_id")?),
                    specialty: decode_specialty(
                        row.try_get("specialty")?,
                        "mentorship_logs.specialty",
                    )?,
                    mentee_ids: mentees.remove(&id).unwrap_or_default(),
                    occurred_on: row.try_get("occurred_on")?,
                    duration_minutes: decode_minutes(
                        row.try_get("duration_minutes")?,
                        "mentorship_logs.duration_minutes",
                    )?,
                    kind: decode_kind(row.try_get("kind")?)?,
                    case_ids: cases.remove(&id).unwrap_or_default(),
                    learning_points: decode_learning_points(row.try_get("learning_points")?)?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    async fn flag_for_mentorship(
        &self,
        case_id: Uuid,
        by: UserId,
        audit: NewAuditEvent,
        now: DateTime<Utc>,
    ) -> Result<(MentorshipFlag, bool), StoreError> {
        let mut tx = self.write_tx().await?;
        let case = lock_case(&mut tx, case_id).await?;
        check_flaggable(&case)?;
        if let Some(open) = open_flag_in(&mut tx, case_id).await? {
            return Ok((open, false));
        }
        let session = session_in(&mut tx, case.session_id)
            .await?
            .ok_or(StoreError::NotFound("session"))?;
        let now = now.trunc_subsecs(6);
        let flag = MentorshipFlag {
            case_id,
            specialty: session.plan.specialty,
            flagged_by: by,
            flagged_at: now,
            flagged_on: clinic_date(now),
            cleared_on: None,
            cleared_by_log: None,
        };
        sqlx::query(
            "INSERT INTO mentorship_flags (id, case_id, specialty, flagged_by, flagged_at, flagged_on) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(Uuid::new_v4())
        .bind(case_id)
        .bind(flag.specialty.as_str())
        .bind(by.0)
        .bind(now)
        .bind(flag.flagged_on)
        .execute(&mut *tx)
        .await?;
        append_audit_in(&mut tx, audit.record(case_id)).await?;
        tx.commit().await?;
        Ok((flag, true))
    }

    async fn unflag_for_mentorship(
        &self,
        case_id: Uuid,
        by: UserId,
        audit: NewAuditEvent,
        now: DateTime<Utc>,
    ) -> Result<Option<MentorshipFlag>, StoreError> {
        let mut tx = self.write_tx().await?;
        let Some(mut flag) = open_flag_in(&mut tx, case_id).await? else {
            return Ok(None);
        };
        flag.cleared_on = Some(clinic_date(now));
        sqlx::query(
            "UPDATE mentorship_flags SET cleared_at = $1, cleared_on = $2, cleared_by = $3 \
             WHERE case_id = $4 AND cleared_at IS NULL",
        )
        .bind(now)
        .bind(flag.cleared_on)
        .bind(by.0)
        .bind(case_id)
        .execute(&mut *tx)
        .await?;
        append_audit_in(&mut tx, audit.record(case_id)).await?;
        tx.commit().await?;
        Ok(Some(flag))
    }

    async fn mentorship_flag(&self, case_id: Uuid) -> Result<Option<MentorshipFlag>, StoreError> {
        let row =
            sqlx::query("SELECT * FROM mentorship_flags WHERE case_id = $1 AND cleared_at IS NULL")
                .bind(case_id)
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(flag_from).transpose()
    }

    async fn mentorship_backlog(
        &self,
        as_of: NaiveDate,
    ) -> Result<Vec<MentorshipFlag>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM mentorship_flags WHERE flagged_on <= $1 \
             AND (cleared_on IS NULL OR cleared_on > $1) ORDER BY flagged_at, case_id",
        )
        .bind(as_of)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(flag_from).collect()
    }

    async fn attended_sessions(
        &self,
        user: UserId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<AttendedSession>, StoreError> {
        let who = user.0;
        let sessions = sqlx::query(
            "SELECT * FROM sessions WHERE starts_at >= $1 AND starts_at < $2 \
             AND id IN (SELECT session_id FROM attendance WHERE user_id = $3) ORDER BY starts_at, id",
        )
        .bind(from)
        .bind(to)
        .bind(who)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(sessions.len());
        for row in &sessions {
            let session = Self::session_from(row)?;
            let sid = session.id;
            let stays = sqlx::query(
                "SELECT role, joined_at, left_at FROM attendance WHERE session_id = $1 \
                 AND user_id = $2 ORDER BY joined_at",
            )
            .bind(sid)
            .bind(who)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(Attendance {
                    session_id: session.id,
                    user_id: user,
                    role: r
                        .try_get::<String, _>("role")?
                        .parse()
                        .map_err(|_| StoreError::corrupt("attendance.role"))?,
                    joined_at: r.try_get("joined_at")?,
                    left_at: r.try_get("left_at")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
            let cases = sqlx::query(
                "SELECT * FROM cases WHERE session_id = $1 \
                 AND state IN ('in_discussion', 'discussed', 'outcome_signed') \
                 ORDER BY COALESCE(agenda_position, 2147483647), CASE urgency WHEN 'urgent' THEN 0 ELSE 1 END, booked_at, id",
            )
            .bind(sid)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(Self::case_from)
            .collect::<Result<Vec<_>, _>>()?;
            out.push(AttendedSession {
                session,
                stays,
                cases,
            });
        }
        Ok(out)
    }

    // Reports (issue 7) ---------------------------------------------------------------

    async fn activity_data(&self, query: &ReportQuery) -> Result<ActivityData, StoreError> {
        let specialties: Vec<String> = query
            .specialties
            .iter()
            .map(|s| s.as_str().to_string())
            .collect();
        // One read-only snapshot for the three reads.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let sessions = sqlx::query(
            "SELECT s.id, s.specialty, s.starts_at, s.state, s.minutes_per_case, s.chair_id, \
             sp.quorum_others FROM sessions s JOIN specialties sp ON sp.slug = s.specialty \
             WHERE s.starts_at >= $1 AND s.starts_at < $2 AND s.specialty = ANY($3) \
             ORDER BY s.starts_at, s.id",
        )
        .bind(query.starts_at)
        .bind(query.ends_at)
        .bind(&specialties)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| {
            report_session(
                r.try_get("id")?,
                r.try_get("specialty")?,
                r.try_get("starts_at")?,
                r.try_get("state")?,
                r.try_get("minutes_per_case")?,
                r.try_get("chair_id")?,
                r.try_get("quorum_others")?,
            )
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        let mut extras = ReportExtras::default();
        for r in sqlx::query(REPORT_TIMING)
            .bind(query.starts_at)
            .bind(query.ends_at)
            .bind(&specialties)
            .fetch_all(&mut *tx)
            .await?
        {
            extras.timing.insert(
                r.try_get("case_id")?,
                (r.try_get("started_at")?, r.try_get("ended_at")?),
            );
        }
        for r in sqlx::query(REPORT_FIRST_BOOKED)
            .bind(query.starts_at)
            .bind(query.ends_at)
            .bind(&specialties)
            .fetch_all(&mut *tx)
            .await?
        {
            extras
                .first_booked
                .insert(r.try_get("case_id")?, r.try_get("first_booked_at")?);
        }
        let cases = sqlx::query(REPORT_CASES)
            .bind(query.starts_at)
            .bind(query.ends_at)
            .bind(&specialties)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| {
                ReportCaseColumns {
                    referrer_role: r.try_get("referrer_role")?,
                    referrer_name: r.try_get("referrer_name")?,
                    outcome_body: r.try_get("outcome_body")?,
                }
                .decode(Self::case_from(r)?, &extras)
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let attendance = sqlx::query(
            "SELECT a.session_id, a.user_id, a.role, a.joined_at, a.left_at FROM attendance a \
             JOIN sessions s ON s.id = a.session_id \
             WHERE s.starts_at >= $1 AND s.starts_at < $2 AND s.specialty = ANY($3) \
             ORDER BY a.joined_at",
        )
        .bind(query.starts_at)
        .bind(query.ends_at)
        .bind(&specialties)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| {
            Ok(Attendance {
                session_id: r.try_get("session_id")?,
                user_id: UserId(r.try_get("user_id")?),
                role: r
                    .try_get::<String, _>("role")?
                    .parse()
                    .map_err(|_| StoreError::corrupt("attendance.role"))?,
                joined_at: r.try_get("joined_at")?,
                left_at: r.try_get("left_at")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        tx.commit().await?;
        Ok(ActivityData {
            sessions,
            cases,
            attendance,
        })
    }
}

// Reports (issue 7) -------------------------------------------------------------------
// Each query reads the sessions starting in [$1, $2) of the specialties in $3.

/// Every case row booked into a session of the window, with its referrer and its latest
/// signed outcome body.
const REPORT_CASES: &str = "\
SELECT c.*, u.role AS referrer_role, u.name AS referrer_name,
       (SELECT o.body FROM outcome_versions o WHERE o.case_id = c.id AND o.signed_at IS NOT NULL
        ORDER BY o.version DESC LIMIT 1) AS outcome_body
FROM sessions s
JOIN cases c ON c.session_id = s.id
JOIN users u ON u.id = c.referrer_id
WHERE s.starts_at >= $1 AND s.starts_at < $2 AND s.specialty = ANY($3)";

/// Each case's first live start and its first completion or deferral.
const REPORT_TIMING: &str = "\
SELECT (e.payload::jsonb ->> 'case_id')::uuid AS case_id,
       MIN(e.occurred_at) FILTER (WHERE e.kind = 'case_started') AS started_at,
       MIN(e.occurred_at) FILTER (WHERE e.kind <> 'case_started') AS ended_at
FROM sessions s
JOIN session_events e ON e.session_id = s.id
WHERE s.starts_at >= $1 AND s.starts_at < $2 AND s.specialty = ANY($3)
  AND e.kind IN ('case_started', 'case_completed', 'case_deferred')
GROUP BY 1";

/// For each case row that was moved from another, its episode's first booking (following
/// `moved_from` back, possibly to before the window).
const REPORT_FIRST_BOOKED: &str = "\
WITH RECURSIVE origin(case_id, ancestor, booked_at) AS (
    SELECT c.id, c.moved_from, c.booked_at
    FROM sessions s JOIN cases c ON c.session_id = s.id
    WHERE s.starts_at >= $1 AND s.starts_at < $2 AND s.specialty = ANY($3) AND c.moved_from IS NOT NULL
    UNION ALL
    SELECT o.case_id, p.moved_from, p.booked_at FROM origin o JOIN cases p ON p.id = o.ancestor
)
SELECT case_id, MIN(booked_at) AS first_booked_at FROM origin GROUP BY case_id";

/// Appends one audit event inside the caller's write transaction, so the event and the
/// change it records commit (or fail) together.
async fn append_audit_in(
    tx: &mut Transaction<'static, Postgres>,
    event: NewAuditEvent,
) -> Result<AuditEvent, StoreError> {
    let event = event.normalised();
    let prev_hash = chain_tail(tx).await?;
    let hash = event.chain_hash(&prev_hash);
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO audit_events (occurred_at, actor_id, action, record_type, record_id, client_addr, \
         details, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING seq",
    )
    .bind(event.occurred_at)
    .bind(event.actor_id.map(|a| a.0))
    .bind(&event.action)
    .bind(&event.record_type)
    .bind(&event.record_id)
    .bind(&event.client_addr)
    .bind(&event.details)
    .bind(&prev_hash)
    .bind(&hash)
    .fetch_one(&mut **tx)
    .await?;
    Ok(AuditEvent::stored(event, seq, prev_hash, hash))
}

/// The audit chain's last hash (the genesis hash for an empty log), read inside the
/// caller's write transaction, which holds the chain's lock from here on.
async fn chain_tail(tx: &mut Transaction<'static, Postgres>) -> Result<String, StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(AUDIT_CHAIN_LOCK)
        .execute(&mut **tx)
        .await?;
    let prev: Option<String> =
        sqlx::query_scalar("SELECT hash FROM audit_events ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut **tx)
            .await?;
    Ok(prev.unwrap_or_else(|| GENESIS_HASH.to_string()))
}

/// Appends many audit events inside the caller's write transaction: the chain's last
/// hash is read once, the hashes are chained here, and the rows go in as multi-row
/// inserts (a year's identified report export is some 20,000 reads to record), in order,
/// so `seq` follows the chain.
async fn append_audits_in(
    tx: &mut Transaction<'static, Postgres>,
    events: Vec<NewAuditEvent>,
) -> Result<(), StoreError> {
    let mut prev_hash = chain_tail(tx).await?;
    let mut chained = Vec::with_capacity(events.len());
    for event in events {
        let event = event.normalised();
        let hash = event.chain_hash(&prev_hash);
        chained.push((event, std::mem::replace(&mut prev_hash, hash.clone()), hash));
    }
    // 9 parameters a row: 500 rows stay well inside both databases' limits.
    for rows in chained.chunks(500) {
        let mut insert = sqlx::QueryBuilder::<Postgres>::new(
            "INSERT INTO audit_events (occurred_at, actor_id, action, record_type, record_id, \
             client_addr, details, prev_hash, hash) ",
        );
        insert.push_values(rows, |mut row, (event, prev_hash, hash)| {
            row.push_bind(event.occurred_at)
                .push_bind(event.actor_id.map(|a| a.0))
                .push_bind(&event.action)
                .push_bind(&event.record_type)
                .push_bind(&event.record_id)
                .push_bind(&event.client_addr)
                .push_bind(&event.details)
                .push_bind(prev_hash)
                .push_bind(hash);
        });
        insert.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// Inserts one scheduled session inside the caller's write transaction.
async fn insert_session(
    tx: &mut Transaction<'static, Postgres>,
    id: Uuid,
    series_id: Option<Uuid>,
    plan: &SessionPlan,
    starts_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO sessions (id, series_id, specialty, title, starts_at, duration_minutes, case_capacity, \
         booked, minutes_per_case, booking_cutoff_hours, chair_id, teaching, state, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $9, $10, $11, 'scheduled', $12)",
    )
    .bind(id)
    .bind(series_id)
    .bind(plan.specialty.as_str())
    .bind(&plan.title)
    .bind(starts_at)
    .bind(plan.duration_minutes as i32)
    .bind(plan.case_capacity as i32)
    .bind(plan.minutes_per_case as i32)
    .bind(plan.booking_cutoff_hours as i32)
    .bind(plan.chair_id.0)
    .bind(plan.teaching)
    .bind(Utc::now())
    .execute(&mut **tx)
    .await;
    match inserted {
        Err(e) if is_foreign_key_violation(&e) => Err(unknown_reference()),
        other => other.map(|_| ()).map_err(StoreError::from),
    }
}

/// Queues a message inside the caller's transaction (the transactional outbox).
async fn enqueue_in(
    tx: &mut Transaction<'static, Postgres>,
    message: &NewMessage,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO outbox (id, recipients, subject, body, html, calendar, created_at, next_attempt_at, attempts) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, 0)",
    )
    .bind(Uuid::new_v4())
    .bind(join_recipients(&message.to))
    .bind(&message.subject)
    .bind(&message.body)
    .bind(&message.html)
    .bind(&message.calendar)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Locks `session_id`, checks it takes bookings (and, with `enforce_cutoff`, that its
/// cut-off has not passed), and takes one slot with the conditional update that can never
/// over-book; `409 session_full` when there is no room.
async fn take_slot(
    tx: &mut Transaction<'static, Postgres>,
    session_id: Uuid,
    now: DateTime<Utc>,
    enforce_cutoff: bool,
) -> Result<Session, StoreError> {
    let row = sqlx::query("SELECT * FROM sessions WHERE id = $1 FOR UPDATE")
        .bind(session_id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(StoreError::NotFound("session"))?;
    let session = PgStore::session_from(&row)?;
    if enforce_cutoff {
        check_bookable(&session, now)?;
    } else {
        check_takes_bookings(&session)?;
    }
    let taken = sqlx::query(
        "UPDATE sessions SET booked = booked + 1 WHERE id = $1 AND booked < case_capacity",
    )
    .bind(session_id)
    .execute(&mut **tx)
    .await?;
    if taken.rows_affected() != 1 {
        return Err(session_full());
    }
    Ok(session)
}

/// Whether the patient of `case` already holds a slot in `session_id`.
async fn patient_already_in(
    tx: &mut Transaction<'static, Postgres>,
    case: &Case,
    session_id: Uuid,
) -> Result<bool, StoreError> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM cases WHERE session_id = $1 AND nhs_number = $2 AND state NOT IN ('withdrawn', 'deferred')",
    )
    .bind(session_id)
    .bind(case.patient.nhs_number.as_str())
    .fetch_one(&mut **tx)
    .await?;
    Ok(n > 0)
}

/// Marks `case` deferred (optionally flagged for rebooking) and frees its slot.
async fn release_case(
    tx: &mut Transaction<'static, Postgres>,
    case: &Case,
    needs_rebooking: bool,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE cases SET state = 'deferred', needs_rebooking = $1 WHERE id = $2")
        .bind(needs_rebooking)
        .bind(case.id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE sessions SET booked = booked - 1 WHERE id = $1")
        .bind(case.session_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Keeps one patient record per NHS number (`domain::patient::reconcile`): creates it,
/// checks the booking against it, or applies a confirmed change to it and to every case
/// of the patient. Returns the fields changed.
async fn register_patient(
    tx: &mut Transaction<'static, Postgres>,
    case: &NewCase,
    now: DateTime<Utc>,
) -> Result<Vec<&'static str>, StoreError> {
    use crate::domain::patient::{reconcile, PatientUpdate, Reconciled};
    let p = &case.patient;
    // Twice at most: a booking that finds no record but loses the race to create it
    // decides again against the record the winner made.
    for _ in 0..2 {
        let row = sqlx::query("SELECT * FROM patients WHERE nhs_number = $1 FOR UPDATE")
            .bind(p.nhs_number.as_str())
            .fetch_optional(&mut **tx)
            .await?;
        let recorded = match row {
            Some(row) => Some(
                PatientColumns {
                    nhs_number: row.try_get("nhs_number")?,
                    given_name: row.try_get("given_name")?,
                    family_name: row.try_get("family_name")?,
                    date_of_birth: row.try_get("date_of_birth")?,
                    sex: row.try_get("sex")?,
                    gp_practice_code: row.try_get("gp_practice_code")?,
                }
                .decode()?,
            ),
            None => None,
        };
        let fields = match reconcile(recorded.as_ref(), p, case.patient_update) {
            Err(conflict) => return Err(StoreError::PatientConflict(conflict)),
            Ok(Reconciled::New) => {
                let inserted = sqlx::query(
                    "INSERT INTO patients (nhs_number, given_name, family_name, date_of_birth, sex, \
                     gp_practice_code, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (nhs_number) DO NOTHING",
                )
                .bind(p.nhs_number.as_str())
                .bind(p.given_name.as_str())
                .bind(p.family_name.as_str())
                .bind::<NaiveDate>(p.date_of_birth)
                .bind(p.sex.as_str())
                .bind(p.gp_practice_code.as_str())
                .bind(now)
                .execute(&mut **tx)
                .await?;
                if inserted.rows_affected() == 0 {
                    continue;
                }
                return Ok(Vec::new());
            }
            Ok(Reconciled::Same) => Vec::new(),
            Ok(Reconciled::Updated { fields }) => fields,
        };
        // Sex and registered practice follow the latest booking; the name and date of
        // birth only a confirmed change (and then on every case of the patient).
        let unchanged = recorded.as_ref().is_some_and(|r| {
            fields.is_empty() && r.sex == p.sex && r.gp_practice_code == p.gp_practice_code
        });
        if unchanged {
            return Ok(fields);
        }
        let (given, family, born) = match (&recorded, fields.is_empty()) {
            (Some(r), true) => (&r.given_name, &r.family_name, r.date_of_birth),
            _ => (&p.given_name, &p.family_name, p.date_of_birth),
        };
        sqlx::query(
            "UPDATE patients SET given_name = $2, family_name = $3, date_of_birth = $4, sex = $5, \
             gp_practice_code = $6, updated_at = $7 WHERE nhs_number = $1",
        )
        .bind(p.nhs_number.as_str())
        .bind(given.as_str())
        .bind(family.as_str())
        .bind::<NaiveDate>(born)
        .bind(p.sex.as_str())
        .bind(p.gp_practice_code.as_str())
        .bind(now)
        .execute(&mut **tx)
        .await?;
        if !fields.is_empty() {
            sqlx::query(
                "UPDATE cases SET given_name = $2, family_name = $3, date_of_birth = $4 \
                 WHERE nhs_number = $1",
            )
            .bind(p.nhs_number.as_str())
            .bind(given.as_str())
            .bind(family.as_str())
            .bind::<NaiveDate>(born)
            .execute(&mut **tx)
            .await?;
        }
        if !fields.is_empty() && case.patient_update == PatientUpdate::Correction {
            // A coordinator's correction settles any conflict found in older data.
            sqlx::query(
                "UPDATE patient_conflicts SET resolved_at = $2, resolved_by = $3 \
                 WHERE nhs_number = $1 AND resolved_at IS NULL",
            )
            .bind(p.nhs_number.as_str())
            .bind(now)
            .bind(case.referrer_id.0)
            .execute(&mut **tx)
            .await?;
        }
        return Ok(fields);
    }
    Err(StoreError::Busy)
}

/// The ids of every case booked for this NHS number, inside a transaction.
async fn patient_cases_in(
    tx: &mut Transaction<'static, Postgres>,
    nhs_number: &NhsNumber,
) -> Result<Vec<Uuid>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT id FROM cases WHERE nhs_number = $1")
            .bind(nhs_number.as_str())
            .fetch_all(&mut **tx)
            .await?,
    )
}

/// The session after a state-guarded update of it (`updated` rows): `404` if there is no
/// such session, `409 invalid_state` ("a … session cannot be {verb}") if the guard held
/// the update back.
async fn guarded_session(
    tx: &mut Transaction<'static, Postgres>,
    id: Uuid,
    updated: u64,
    verb: &str,
) -> Result<Session, StoreError> {
    let row = sqlx::query("SELECT * FROM sessions WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(StoreError::NotFound("session"))?;
    let session = PgStore::session_from(&row)?;
    if updated != 1 {
        return Err(StoreError::conflict(
            "invalid_state",
            format!("a {} session cannot be {verb}", session.state.as_str()),
        ));
    }
    Ok(session)
}

/// Records `audit` against session `id`, queues `mail`, and commits.
async fn commit_session_change(
    mut tx: Transaction<'static, Postgres>,
    id: Uuid,
    audit: NewAuditEvent,
    mail: &[NewMessage],
) -> Result<(), StoreError> {
    append_audit_in(&mut tx, audit.record(id)).await?;
    let now = Utc::now();
    for message in mail {
        enqueue_in(&mut tx, message, now).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Inserts a case row; a second active booking of the patient in the session is
/// `409 duplicate_case`. Other unique violations (the idempotency key) are returned raw.
async fn insert_case_row(
    tx: &mut Transaction<'static, Postgres>,
    case: &Case,
    idempotency_key: Option<&str>,
) -> Result<(), sqlx::Error> {
    let p = &case.patient;
    let inserted = sqlx::query(
        "INSERT INTO cases (id, session_id, referrer_id, nhs_number, given_name, family_name, date_of_birth, \
         sex, gp_practice_code, clinical_question, history, urgency, body_site, state, booked_at, \
         free_text_identifies_patient, idempotency_key, moved_from, follow_up_of) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
    )
    .bind(case.id)
    .bind(case.session_id)
    .bind(case.referrer_id.0)
    .bind(p.nhs_number.as_str())
    .bind(p.given_name.as_str())
    .bind(p.family_name.as_str())
    .bind::<NaiveDate>(p.date_of_birth)
    .bind(p.sex.as_str())
    .bind(p.gp_practice_code.as_str())
    .bind(case.clinical_question.as_str())
    .bind(case.history.as_str())
    .bind(case.urgency.as_str())
    .bind(case.body_site.as_str())
    .bind(case.state.as_str())
    .bind(case.booked_at)
    .bind(case.free_text_identifies_patient)
    .bind(idempotency_key)
    .bind(case.moved_from)
    .bind(case.follow_up_of)
    .execute(&mut **tx)
    .await;
    inserted.map(|_| ())
}

/// Locks sessions in id order (PostgreSQL), always before any case row, so concurrent
/// bookings, moves, withdrawals and cancellations cannot deadlock.
async fn lock_sessions(
    tx: &mut Transaction<'static, Postgres>,
    ids: &[Uuid],
) -> Result<(), StoreError> {
    sqlx::query("SELECT id FROM sessions WHERE id = ANY($1) ORDER BY id FOR UPDATE")
        .bind(ids)
        .fetch_all(&mut **tx)
        .await?;
    Ok(())
}

/// The session a case belongs to (a case row never changes session: moves add rows).
async fn case_session(
    tx: &mut Transaction<'static, Postgres>,
    id: Uuid,
) -> Result<Uuid, StoreError> {
    let session: Option<Uuid> = sqlx::query_scalar("SELECT session_id FROM cases WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    session.ok_or(StoreError::NotFound("case"))
}

/// Gives the moved case the attachments of the case it was moved from.
async fn copy_attachments(
    tx: &mut Transaction<'static, Postgres>,
    from: Uuid,
    to: Uuid,
) -> Result<(), StoreError> {
    let rows = sqlx::query("SELECT * FROM attachments WHERE case_id = $1")
        .bind(from)
        .fetch_all(&mut **tx)
        .await?;
    for row in &rows {
        let mut a = PgStore::attachment_from(row)?;
        a.id = Uuid::new_v4();
        a.case_id = to;
        insert_attachment_row(tx, &a).await?;
    }
    Ok(())
}

/// A case moved to another session (moved, deferred, or its session cancelled) keeps its
/// place on the mentorship backlog: the open flag goes with the new case row.
async fn carry_mentorship_flag(
    tx: &mut Transaction<'static, Postgres>,
    from: Uuid,
    to: Uuid,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE mentorship_flags SET case_id = $1 WHERE case_id = $2 AND cleared_at IS NULL",
    )
    .bind(to)
    .bind(from)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Inserts one attachment row inside the caller's transaction.
async fn insert_attachment_row(
    tx: &mut Transaction<'static, Postgres>,
    a: &Attachment,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO attachments (id, case_id, sha256, size, content_type, filename, uploaded_by, uploaded_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(a.id)
    .bind(a.case_id)
    .bind(&a.sha256)
    .bind(i64::try_from(a.size).map_err(|_| StoreError::corrupt("attachment size"))?)
    .bind(&a.content_type)
    .bind(&a.filename)
    .bind(a.uploaded_by.0)
    .bind(a.uploaded_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Applies what one live event changes in the session's tables, inside the appending
/// transaction; returns the event, completed where the store decides (deferrals).
async fn apply_live_event(
    tx: &mut Transaction<'static, Postgres>,
    session: &Session,
    body: EventBody,
    later: &[Uuid],
    now: DateTime<Utc>,
) -> Result<EventBody, StoreError> {
    let sid = session.id;
    let changed = |done: sqlx::postgres::PgQueryResult, what: &str| {
        if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(invalid_transition(what))
        }
    };
    match &body {
        EventBody::MeetingOpened => changed(
            sqlx::query(
                "UPDATE sessions SET state = 'live' WHERE id = $1 AND state IN ('scheduled', 'published')",
            )
            .bind(sid)
            .execute(&mut **tx)
            .await?,
            "opening the meeting",
        )?,
        EventBody::MeetingClosed => changed(
            sqlx::query("UPDATE sessions SET state = 'closed' WHERE id = $1 AND state = 'live'")
                .bind(sid)
                .execute(&mut **tx)
                .await?,
            "closing the meeting",
        )?,
        EventBody::CaseStarted { case_id } => changed(
            sqlx::query(
                "UPDATE cases SET state = 'in_discussion' WHERE id = $1 AND session_id = $2 \
                 AND state IN ('booked', 'listed')",
            )
            .bind(case_id)
            .bind(sid)
            .execute(&mut **tx)
            .await?,
            "starting that case",
        )?,
        EventBody::CaseCompleted { case_id } => {
            // A case whose outcome was signed during discussion stays signed.
            sqlx::query(
                "UPDATE cases SET state = 'discussed' WHERE id = $1 AND session_id = $2 AND state = 'in_discussion'",
            )
            .bind(case_id)
            .bind(sid)
            .execute(&mut **tx)
            .await?;
        }
        EventBody::CaseDeferred { case_id, .. } => {
            return defer_case_in(tx, session, *case_id, later, now).await;
        }
        EventBody::AgendaReordered { case_ids } => {
            let rows = sqlx::query(
                "SELECT * FROM cases WHERE session_id = $1 AND state NOT IN ('withdrawn', 'deferred')",
            )
            .bind(sid)
            .fetch_all(&mut **tx)
            .await?;
            let current: Vec<Case> =
                rows.iter().map(PgStore::case_from).collect::<Result<_, _>>()?;
            check_same_cases(&current, case_ids)?;
            for (position, id) in case_ids.iter().enumerate() {
                sqlx::query("UPDATE cases SET agenda_position = $1 WHERE id = $2")
                    .bind(i32::try_from(position + 1).unwrap_or(i32::MAX))
                    .bind(id)
                    .execute(&mut **tx)
                    .await?;
            }
        }
        EventBody::ParticipantJoined { user_id, role, .. } => {
            sqlx::query(
                "INSERT INTO attendance (id, session_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(Uuid::new_v4())
            .bind(sid)
            .bind(user_id.0)
            .bind(role.as_str())
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
        EventBody::ParticipantLeft { user_id } => {
            sqlx::query(
                "UPDATE attendance SET left_at = $1 WHERE session_id = $2 AND user_id = $3 AND left_at IS NULL",
            )
            .bind(now)
            .bind(sid)
            .bind(user_id.0)
            .execute(&mut **tx)
            .await?;
        }
        _ => {}
    }
    Ok(body)
}

/// Defers a case from a live session: to the next session of the series that takes it,
/// or flagged for rebooking when none can.
async fn defer_case_in(
    tx: &mut Transaction<'static, Postgres>,
    session: &Session,
    case_id: Uuid,
    later: &[Uuid],
    now: DateTime<Utc>,
) -> Result<EventBody, StoreError> {
    let row = sqlx::query(
        "SELECT * FROM cases WHERE id = $1 AND session_id = $2 AND state IN ('booked', 'listed', 'in_discussion')",
    )
    .bind(case_id)
    .bind(session.id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| invalid_transition("deferring that case"))?;
    let case = PgStore::case_from(&row)?;
    // Only the sessions locked (in id order) before any case row: see append_live_events.
    for &candidate in later {
        if patient_already_in(tx, &case, candidate).await? {
            continue;
        }
        match take_slot(tx, candidate, now, false).await {
            Ok(_) => {
                let moved = case.moved_to(Uuid::new_v4(), candidate, now);
                insert_case_row(tx, &moved, None).await?;
                copy_attachments(tx, case.id, moved.id).await?;
                carry_mentorship_flag(tx, case.id, moved.id).await?;
                release_case(tx, &case, false).await?;
                return Ok(EventBody::CaseDeferred {
                    case_id,
                    to_session_id: Some(candidate),
                    new_case_id: Some(moved.id),
                });
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    release_case(tx, &case, true).await?;
    Ok(EventBody::CaseDeferred {
        case_id,
        to_session_id: None,
        new_case_id: None,
    })
}

/// The bookable sessions of the same series after `session_id`, in start order.
async fn later_sessions_of(
    tx: &mut Transaction<'static, Postgres>,
    session_id: Uuid,
) -> Result<Vec<Uuid>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT later.id FROM sessions this JOIN sessions later ON later.series_id = this.series_id \
         WHERE this.id = $1 AND later.starts_at > this.starts_at \
         AND later.state IN ('scheduled', 'published') ORDER BY later.starts_at",
    )
    .bind(session_id)
    .fetch_all(&mut **tx)
    .await?)
}

/// Follows the instances' event notifications (`LISTEN`). When the connection drops the
/// signal hears so (rooms then poll the events table) and the listener reconnects.
async fn listen_live(pool: PgPool, signal: Arc<dyn LiveSignal>) {
    loop {
        match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(mut listener) => match listener.listen(LIVE_CHANNEL).await {
                Ok(()) => {
                    signal.listening(true);
                    // `try_recv` answers `None` when the connection is lost.
                    while let Ok(Some(note)) = listener.try_recv().await {
                        if let Some((session, seq)) = note.payload().split_once(':') {
                            if let (Ok(session), Ok(seq)) = (session.parse(), seq.parse()) {
                                signal.event(session, seq);
                            }
                        }
                    }
                    tracing::warn!("live notifications lost; polling until they return");
                }
                Err(e) => tracing::warn!(error = %e, "cannot listen for live notifications"),
            },
            Err(e) => tracing::warn!(error = %e, "cannot connect to listen for live notifications"),
        }
        signal.listening(false);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The case row, locked for the rest of the transaction.
async fn lock_case(tx: &mut Transaction<'static, Postgres>, id: Uuid) -> Result<Case, StoreError> {
    let row = sqlx::query("SELECT * FROM cases WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(StoreError::NotFound("case"))?;
    PgStore::case_from(&row)
}

/// A session read inside the caller's transaction.
async fn session_in(
    tx: &mut Transaction<'static, Postgres>,
    id: Uuid,
) -> Result<Option<Session>, StoreError> {
    let row = sqlx::query("SELECT * FROM sessions WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(PgStore::session_from).transpose()
}

fn outcome_from(row: &PgRow) -> Result<OutcomeVersion, StoreError> {
    OutcomeColumns {
        case_id: row.try_get("case_id")?,
        version: row.try_get("version")?,
        body: row.try_get("body")?,
        author_id: row.try_get("author_id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        signed_by: row.try_get("signed_by")?,
        signed_at: row.try_get("signed_at")?,
        amendment_reason: row.try_get("amendment_reason")?,
        supersedes: row.try_get("supersedes")?,
    }
    .decode()
}

/// The latest version of a case's outcome, if any.
async fn current_outcome(
    tx: &mut Transaction<'static, Postgres>,
    case_id: Uuid,
) -> Result<Option<OutcomeVersion>, StoreError> {
    let row = sqlx::query(
        "SELECT * FROM outcome_versions WHERE case_id = $1 ORDER BY version DESC LIMIT 1",
    )
    .bind(case_id)
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref().map(outcome_from).transpose()
}

/// Inserts one outcome version inside the caller's transaction.
async fn insert_outcome_row(
    tx: &mut Transaction<'static, Postgres>,
    v: &OutcomeVersion,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO outcome_versions (case_id, version, body, author_id, created_at, updated_at, \
         signed_by, signed_at, amendment_reason, supersedes) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(v.case_id)
    .bind(v.version as i32)
    .bind(encode_outcome(&v.body)?)
    .bind(v.author_id.0)
    .bind(v.created_at)
    .bind(v.updated_at)
    .bind(v.signed_by.map(|u| u.0))
    .bind(v.signed_at)
    .bind(&v.amendment_reason)
    .bind(v.supersedes.map(|s| s as i32))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Appends events to a session's history inside the caller's write transaction (which,
/// on PostgreSQL, already holds the session's row lock), applying each event's change;
/// `seq` continues from the last stored event.
async fn append_events_in(
    tx: &mut Transaction<'static, Postgres>,
    session_id: Uuid,
    expected_seq: Option<u64>,
    events: Vec<NewLiveEvent>,
    later: &[Uuid],
    now: DateTime<Utc>,
) -> Result<Vec<LiveEvent>, StoreError> {
    let row = sqlx::query("SELECT * FROM sessions WHERE id = $1")
        .bind(session_id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(StoreError::NotFound("session"))?;
    let session = PgStore::session_from(&row)?;
    let last: i64 = sqlx::query_scalar(
        "SELECT COALESCE(MAX(seq), 0) FROM session_events WHERE session_id = $1",
    )
    .bind(session_id)
    .fetch_one(&mut **tx)
    .await?;
    if expected_seq.is_some_and(|e| i64::try_from(e).ok() != Some(last)) {
        return Err(stale_seq());
    }
    let mut stored = Vec::with_capacity(events.len());
    for (i, event) in events.into_iter().enumerate() {
        let seq = last + 1 + i as i64;
        let body = apply_live_event(tx, &session, event.body, later, now).await?;
        let inserted = sqlx::query(
            "INSERT INTO session_events (session_id, seq, kind, payload, actor_id, command_id, occurred_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(session_id)
        .bind(seq)
        .bind(body.kind())
        .bind(encode_live_event(&body)?)
        .bind(event.actor.map(|a| a.0))
        .bind(&event.command_id)
        .bind(now)
        .execute(&mut **tx)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e, "session_events_command") => {
                return Err(duplicate_command())
            }
            Err(e) if is_unique_violation(&e, "session_events_pkey") => return Err(stale_seq()),
            other => other.map(|_| ())?,
        }
        stored.push(LiveEvent {
            session_id,
            seq: seq as u64,
            body,
            actor: event.actor,
            command_id: event.command_id,
            at: now,
        });
    }
    if let Some(newest) = stored.last() {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(LIVE_CHANNEL)
            .bind(format!("{session_id}:{}", newest.seq))
            .execute(&mut **tx)
            .await?;
    }
    Ok(stored)
}

/// During a live meeting, records an outcome change as an event of the case's session,
/// in the outcome's own transaction (the session row is already locked).
async fn outcome_event_in(
    tx: &mut Transaction<'static, Postgres>,
    session_id: Uuid,
    body: EventBody,
    actor: UserId,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let state: Option<String> = sqlx::query_scalar("SELECT state FROM sessions WHERE id = $1")
        .bind(session_id)
        .fetch_optional(&mut **tx)
        .await?;
    if state.as_deref() == Some("live") {
        let event = NewLiveEvent {
            body,
            actor: Some(actor),
            command_id: None,
        };
        append_events_in(tx, session_id, None, vec![event], &[], now).await?;
    }
    Ok(())
}

/// A stored mentorship contract.
fn contract_from(row: &PgRow) -> Result<Contract, StoreError> {
    Ok(Contract {
        id: row.try_get("id")?,
        consultant_id: UserId(row.try_get("consultant_id")?),
        specialty: decode_specialty(row.try_get("specialty")?, "mentorship_contracts.specialty")?,
        minutes_per_week: decode_minutes(
            row.try_get("minutes_per_week")?,
            "mentorship_contracts.minutes_per_week",
        )?,
        weeks_per_year: decode_minutes(
            row.try_get("weeks_per_year")?,
            "mentorship_contracts.weeks_per_year",
        )?,
        starts_on: row.try_get("starts_on")?,
        ends_on: row.try_get("ends_on")?,
        created_by: UserId(row.try_get("created_by")?),
        created_at: row.try_get("created_at")?,
    })
}

/// A stored mentorship flag.
fn flag_from(row: &PgRow) -> Result<MentorshipFlag, StoreError> {
    Ok(MentorshipFlag {
        case_id: row.try_get("case_id")?,
        specialty: decode_specialty(row.try_get("specialty")?, "mentorship_flags.specialty")?,
        flagged_by: UserId(row.try_get("flagged_by")?),
        flagged_at: row.try_get("flagged_at")?,
        flagged_on: row.try_get("flagged_on")?,
        cleared_on: row.try_get("cleared_on")?,
        cleared_by_log: row.try_get("cleared_by_log")?,
    })
}

/// The case's open mentorship flag, read inside the caller's transaction.
async fn open_flag_in(
    tx: &mut Transaction<'static, Postgres>,
    case_id: Uuid,
) -> Result<Option<MentorshipFlag>, StoreError> {
    let row = sqlx::query(
        "SELECT * FROM mentorship_flags WHERE case_id = $1 AND cleared_at IS NULL FOR UPDATE",
    )
    .bind(case_id)
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref().map(flag_from).transpose()
}
