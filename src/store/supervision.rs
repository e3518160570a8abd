//! The supervision record (issue 21): supervisors named for practitioners (at most so
//! many supervisees each, checked under the supervisor's lock), workplace-based
//! assessments and the supervisee's reflections on them. The rules are
//! `domain::supervision`'s; this stores and reads.

use uuid::Uuid;

use super::audit::append_audit_in;
use super::core::Store;
use super::error::StoreError;
use super::rows;
use super::sql::{args, Row};
use crate::domain::mentorship::DateRange;
use crate::domain::supervision::{
    check_capacity, Assessment, AssessmentKind, AssessmentOutcome, Assignment,
};
use crate::domain::{NewAuditEvent, UserId};

fn assignment(row: &Row) -> Result<Assignment, StoreError> {
    Ok(Assignment {
        id: row.get("id")?,
        supervisee_id: row.get("supervisee_id")?,
        supervisor_id: row.get("supervisor_id")?,
        assigned_at: row.get("assigned_at")?,
        assigned_by: row.get("assigned_by")?,
        ended_at: row.get("ended_at")?,
    })
}

fn assessment(row: &Row) -> Result<Assessment, StoreError> {
    Ok(Assessment {
        id: row.get("id")?,
        supervisee_id: row.get("supervisee_id")?,
        supervisor_id: row.get("supervisor_id")?,
        kind: rows::parsed(row, "kind", AssessmentKind::parse)?,
        occurred_on: row.get("occurred_on")?,
        outcome: rows::parsed(row, "outcome", AssessmentOutcome::parse)?,
        reflection: row.get("reflection")?,
        created_at: row.get("created_at")?,
    })
}

impl Store {
    /// Names `a.supervisor_id` the supervisee's supervisor, ending the supervisee's current
    /// assignment, with `audit`. Returns the current assignment and whether this call
    /// made it (naming the current supervisor again changes nothing). `409
    /// supervisor_full` when the supervisor already has `max` other supervisees.
    #[tracing::instrument(skip_all, fields(assignment_id = %a.id))]
    pub async fn assign_supervisor(
        &self, a: &Assignment, max: u32, audit: NewAuditEvent,
    ) -> Result<(Assignment, bool), StoreError> {
        let mut tx = self.db.write().await?;
        // Assignments to one supervisor are counted one at a time.
        tx.run("SELECT id FROM users WHERE id = $1 FOR UPDATE", args![a.supervisor_id]).await?;
        let current = "SELECT * FROM supervision_assignments WHERE supervisee_id = $1 \
                       AND ended_at IS NULL";
        let current = tx.opt(current, args![a.supervisee_id]).await?;
        let current = current.as_ref().map(assignment).transpose()?;
        if let Some(same) = current.filter(|c| c.supervisor_id == a.supervisor_id) {
            return Ok((same, false));
        }
        let count = "SELECT COUNT(*) AS n FROM supervision_assignments \
                     WHERE supervisor_id = $1 AND ended_at IS NULL";
        let n: i64 = tx.one(count, args![a.supervisor_id]).await?.get("n")?;
        check_capacity(usize::try_from(n).unwrap_or(usize::MAX), max)?;
        let end = "UPDATE supervision_assignments SET ended_at = $1 \
                   WHERE supervisee_id = $2 AND ended_at IS NULL";
        tx.run(end, args![a.assigned_at, a.supervisee_id]).await?;
        let insert = "INSERT INTO supervision_assignments (id, supervisee_id, supervisor_id, \
                      assigned_at, assigned_by) VALUES ($1, $2, $3, $4, $5)";
        let values = args![a.id, a.supervisee_id, a.supervisor_id, a.assigned_at, a.assigned_by];
        tx.run(insert, values).await?;
        append_audit_in(&mut tx, audit.record(a.id)).await?;
        tx.commit().await?;
        Ok((a.clone(), true))
    }

    /// Assignments, current and ended, oldest first; with `involving`, only those where
    /// that person is the supervisor or the supervisee.
    #[tracing::instrument(skip_all)]
    pub async fn supervision_assignments(
        &self, involving: Option<UserId>,
    ) -> Result<Vec<Assignment>, StoreError> {
        let sql = "SELECT * FROM supervision_assignments WHERE ($1::uuid IS NULL \
                   OR supervisee_id = $1 OR supervisor_id = $1) ORDER BY assigned_at, id";
        self.db.all(sql, args![involving]).await?.iter().map(assignment).collect()
    }

    /// Stores an assessment with `audit`.
    #[tracing::instrument(skip_all, fields(assessment_id = %a.id))]
    pub async fn record_assessment(
        &self, a: &Assessment, audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let insert = "INSERT INTO supervision_assessments (id, supervisee_id, supervisor_id, \
                      kind, occurred_on, outcome, reflection, created_at) \
                      VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        let mut values = args![a.id, a.supervisee_id, a.supervisor_id, a.kind.as_str()];
        values.extend(args![a.occurred_on, a.outcome.as_str(), a.reflection.as_deref()]);
        values.extend(args![a.created_at]);
        let mut tx = self.db.write().await?;
        tx.run(insert, values).await?;
        append_audit_in(&mut tx, audit.record(a.id)).await?;
        tx.commit().await
    }

    /// One assessment.
    #[tracing::instrument(skip_all, fields(assessment_id = %id))]
    pub async fn assessment(&self, id: Uuid) -> Result<Option<Assessment>, StoreError> {
        let sql = "SELECT * FROM supervision_assessments WHERE id = $1";
        self.db.opt(sql, args![id]).await?.as_ref().map(assessment).transpose()
    }

    /// Sets the supervisee's reflection on an assessment, with `audit`.
    #[tracing::instrument(skip_all, fields(assessment_id = %id))]
    pub async fn set_reflection(
        &self, id: Uuid, reflection: &str, audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.write().await?;
        let sql = "UPDATE supervision_assessments SET reflection = $1 WHERE id = $2";
        if tx.run(sql, args![reflection, id]).await? != 1 {
            return Err(StoreError::NotFound("assessment"));
        }
        append_audit_in(&mut tx, audit.record(id)).await?;
        tx.commit().await
    }

    /// Assessments dated within `days`, oldest first; with `supervisee`, only theirs.
    #[tracing::instrument(skip_all)]
    pub async fn assessments(
        &self, supervisee: Option<UserId>, days: DateRange,
    ) -> Result<Vec<Assessment>, StoreError> {
        let sql = "SELECT * FROM supervision_assessments WHERE occurred_on >= $1 \
                   AND occurred_on <= $2 AND ($3::uuid IS NULL OR supervisee_id = $3) \
                   ORDER BY occurred_on, created_at, id";
        let found = self.db.all(sql, args![days.from, days.to, supervisee]).await?;
        found.iter().map(assessment).collect()
    }
}
