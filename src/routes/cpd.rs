//! Teaching and CPD (DESIGN §3 "Attendance", §4 flow 6): the caller's attendance record
//! (`GET /api/me/attendance`) with minutes present and the cases discussed, always
//! de-identified, and a printable certificate (`GET /api/me/attendance/certificate`) as
//! HTML with no patient information at all. Minutes come from the live channel's
//! attendance rows (`domain::mentorship::minutes_present`). Beside MDT attendance both
//! list the mentoring the caller received as a mentee (minutes, from the mentorship logs)
//! and their workplace-based assessments (issue 21); the CPD hours count attendance and
//! mentoring.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::mentorship::{
    clinic_date, cpd_hours, minutes_present, DateRange, MentorshipKind,
};
use crate::domain::schedule::CLINIC_TZ;
use crate::domain::supervision::{AssessmentKind, AssessmentOutcome};
use crate::domain::{Case, CaseView, Role, Specialty, User, UserId};
use crate::error::ApiError;
use crate::mail::templates::escape;
use crate::routes::support::{audit_case_reads, mentee_record, AuthUser};
use crate::state::AppState;
use crate::store::AttendedSession;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AttendanceQuery {
    from: Option<String>,
    to: Option<String>,
}

/// One session the caller attended.
#[derive(Serialize, utoipa::ToSchema)]
struct SessionAttended {
    session_id: uuid::Uuid,
    title: String,
    #[schema(value_type = String)]
    specialty: Specialty,
    starts_at: DateTime<Utc>,
    duration_minutes: u32,
    teaching: bool,
    /// The role the caller attended in.
    role: Role,
    minutes_present: u64,
    /// Cases discussed at the session, de-identified for every viewer.
    cases: Vec<CaseView>,
}

/// Mentoring the caller received as a mentee (no cases, no learning points).
#[derive(Serialize, utoipa::ToSchema)]
struct MentoringReceived {
    log_id: uuid::Uuid,
    occurred_on: NaiveDate,
    #[schema(value_type = uuid::Uuid)]
    consultant_id: UserId,
    #[schema(value_type = String)]
    specialty: Specialty,
    kind: MentorshipKind,
    duration_minutes: u32,
}

/// One of the caller's workplace-based assessments (no reflection: that is the
/// portfolio's).
#[derive(Serialize, utoipa::ToSchema)]
struct AssessmentDone {
    assessment_id: uuid::Uuid,
    occurred_on: NaiveDate,
    kind: AssessmentKind,
    outcome: AssessmentOutcome,
    #[schema(value_type = uuid::Uuid)]
    supervisor_id: UserId,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Record {
    #[schema(value_type = uuid::Uuid)]
    user_id: UserId,
    name: String,
    role: Role,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    sessions: Vec<SessionAttended>,
    /// Minutes present at the sessions.
    total_minutes: u64,
    mentoring: Vec<MentoringReceived>,
    mentoring_minutes: u64,
    assessments: Vec<AssessmentDone>,
    /// Attendance and mentoring, in hours.
    cpd_hours: f64,
}

/// The caller's sessions in the window (UK days, inclusive, each end optional), with
/// minutes present. A stay never left counts until the session's scheduled end (or now).
async fn attended(
    state: &AppState, caller: &User, query: &AttendanceQuery,
) -> Result<(DateRange, Vec<(AttendedSession, u64)>), ApiError> {
    let range = DateRange::parse_open(query.from.as_deref(), query.to.as_deref())?;
    let (from, to) = range.instants();
    let now = Utc::now();
    let sessions = state
        .store
        .attended_sessions(caller.id, from, to)
        .await?
        .into_iter()
        .map(|s| {
            let end =
                s.session.starts_at + Duration::minutes(i64::from(s.session.plan.duration_minutes));
            let stays: Vec<_> = s.stays.iter().map(|a| (a.joined_at, a.left_at)).collect();
            let minutes = minutes_present(&stays, std::cmp::min(end, now));
            (s, minutes)
        })
        .collect();
    Ok((range, sessions))
}

/// `GET /api/me/attendance?from=&to=`: the caller's CPD record. Reads of the discussed
/// cases (de-identified) are audited like any other.
#[utoipa::path(
    get, path = "/api/me/attendance", operation_id = "cpd_record", tag = "cpd",
    params(AttendanceQuery),
    responses((status = 200, description = "OK", body = Record)),
)]
pub async fn record(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser,
    query: web::Query<AttendanceQuery>,
) -> Result<HttpResponse, ApiError> {
    let (range, sessions) = attended(&state, &caller, &query).await?;
    let today = clinic_date(Utc::now());
    let shown: Vec<Case> = sessions.iter().flat_map(|(s, _)| s.cases.iter().cloned()).collect();
    audit_case_reads(&state, &req, &caller, "attendance", &shown).await?;
    let total_minutes = sessions.iter().map(|(_, m)| m).sum();
    let sessions = sessions
        .into_iter()
        .map(|(s, minutes)| SessionAttended {
            session_id: s.session.id,
            title: s.session.plan.title.clone(),
            specialty: s.session.plan.specialty.clone(),
            starts_at: s.session.starts_at,
            duration_minutes: s.session.plan.duration_minutes,
            teaching: s.session.plan.teaching,
            role: s.stays.first().map_or(caller.role, |a| a.role),
            minutes_present: minutes,
            cases: s
                .cases
                .iter()
                .enumerate()
                .map(|(i, c)| CaseView::of(c, false, i + 1, today))
                .collect(),
        })
        .collect();
    let (logs, assessments) = mentee_record(&state, caller.id, range).await?;
    let mentoring_minutes = logs.iter().map(|l| u64::from(l.duration_minutes)).sum::<u64>();
    Ok(HttpResponse::Ok().json(Record {
        user_id: caller.id,
        name: caller.name.as_str().to_string(),
        role: caller.role,
        from: query.from.is_some().then_some(range.from),
        to: query.to.is_some().then_some(range.to),
        sessions,
        total_minutes,
        mentoring: logs
            .into_iter()
            .map(|l| MentoringReceived {
                log_id: l.id,
                occurred_on: l.occurred_on,
                consultant_id: l.consultant_id,
                specialty: l.specialty,
                kind: l.kind,
                duration_minutes: l.duration_minutes,
            })
            .collect(),
        mentoring_minutes,
        assessments: assessments
            .into_iter()
            .map(|a| AssessmentDone {
                assessment_id: a.id,
                occurred_on: a.occurred_on,
                kind: a.kind,
                outcome: a.outcome,
                supervisor_id: a.supervisor_id,
            })
            .collect(),
        cpd_hours: cpd_hours(total_minutes + mentoring_minutes),
    }))
}

/// `GET /api/me/attendance/certificate?from=&to=`: a printable certificate of attendance
/// (`text/html`): the caller's name, each session's date, title and minutes, the
/// mentoring received as a mentee (date, arm, kind, minutes) and the workplace-based
/// assessments (date, kind, outcome), and the CPD hours. No patient information; no script; styled by `/certificate.css` (the site's
/// `style-src 'self'` policy forbids inline styles).
#[utoipa::path(
    get, path = "/api/me/attendance/certificate", operation_id = "cpd_certificate", tag = "cpd",
    params(AttendanceQuery),
    responses(
        (status = 200, description = "a printable certificate", content_type = "text/html", body = String),
    ),
)]
pub async fn certificate(
    state: web::Data<AppState>, AuthUser(caller): AuthUser, query: web::Query<AttendanceQuery>,
) -> Result<HttpResponse, ApiError> {
    let (range, sessions) = attended(&state, &caller, &query).await?;
    let rows: Vec<CertificateRow> = sessions
        .iter()
        .map(|(s, minutes)| CertificateRow {
            starts_at: s.session.starts_at,
            title: s.session.plan.title.clone(),
            specialty: s.session.plan.specialty.to_string(),
            teaching: s.session.plan.teaching,
            minutes: *minutes,
        })
        .collect();
    let period = Period {
        from: query.from.is_some().then_some(range.from),
        to: query.to.is_some().then_some(range.to),
    };
    let (logs, assessments) = mentee_record(&state, caller.id, range).await?;
    let received = Received {
        mentoring: logs
            .iter()
            .map(|l| MentoringRow {
                occurred_on: l.occurred_on,
                specialty: l.specialty.to_string(),
                kind: l.kind.as_str().replace('_', " "),
                minutes: u64::from(l.duration_minutes),
            })
            .collect(),
        assessments: assessments
            .iter()
            .map(|a| AssessmentRow {
                occurred_on: a.occurred_on,
                kind: a.kind.as_str().replace('_', " "),
                outcome: a.outcome.as_str().replace('_', " "),
            })
            .collect(),
    };
    let html = certificate_html(&caller, &period, &rows, &received, clinic_date(Utc::now()));
    Ok(HttpResponse::Ok().content_type("text/html; charset=utf-8").body(html))
}

/// A line of the certificate.
pub struct CertificateRow {
    pub starts_at: DateTime<Utc>,
    pub title: String,
    pub specialty: String,
    pub teaching: bool,
    pub minutes: u64,
}

/// A line of the certificate's mentoring: a mentorship log naming the person as a mentee.
pub struct MentoringRow {
    pub occurred_on: NaiveDate,
    pub specialty: String,
    pub kind: String,
    pub minutes: u64,
}

/// A line of the certificate's workplace-based assessments.
pub struct AssessmentRow {
    pub occurred_on: NaiveDate,
    pub kind: String,
    pub outcome: String,
}

/// What the person received beside MDT attendance.
#[derive(Default)]
pub struct Received {
    pub mentoring: Vec<MentoringRow>,
    pub assessments: Vec<AssessmentRow>,
}

/// The dates the certificate covers, as asked.
pub struct Period {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

fn long_date(d: NaiveDate) -> String {
    d.format("%-d %B %Y").to_string()
}

/// Renders the certificate; every piece of text is escaped.
pub fn certificate_html(
    user: &User, period: &Period, rows: &[CertificateRow], received: &Received, issued: NaiveDate,
) -> String {
    let name = escape(user.name.as_str());
    let span = match (period.from, period.to) {
        (Some(f), Some(t)) => format!("from {} to {}", long_date(f), long_date(t)),
        (Some(f), None) => format!("since {}", long_date(f)),
        (None, Some(t)) => format!("up to {}", long_date(t)),
        (None, None) => "to date".to_string(),
    };
    let total: u64 = rows.iter().map(|r| r.minutes).sum();
    let mentoring_total: u64 = received.mentoring.iter().map(|m| m.minutes).sum();
    let mut mentoring = String::new();
    for m in &received.mentoring {
        mentoring.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>\n",
            escape(&long_date(m.occurred_on)),
            escape(&m.specialty),
            escape(&m.kind),
            m.minutes,
        ));
    }
    if received.mentoring.is_empty() {
        mentoring
            .push_str("<tr><td colspan=\"4\">No mentoring received in this period.</td></tr>\n");
    }
    let mut assessed = String::new();
    for a in &received.assessments {
        assessed.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            escape(&long_date(a.occurred_on)),
            escape(&a.kind),
            escape(&a.outcome),
        ));
    }
    if received.assessments.is_empty() {
        assessed.push_str("<tr><td colspan=\"3\">No assessments in this period.</td></tr>\n");
    }
    let mut body = String::new();
    for r in rows {
        let local = r.starts_at.with_timezone(&CLINIC_TZ);
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>\n",
            escape(&local.format("%a %-d %b %Y, %H:%M").to_string()),
            escape(&r.title),
            escape(&r.specialty),
            if r.teaching { "Teaching" } else { "MDT" },
            r.minutes,
        ));
    }
    if rows.is_empty() {
        body.push_str("<tr><td colspan=\"5\">No sessions attended in this period.</td></tr>\n");
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en-GB\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<title>Certificate of attendance: {name}</title>\n\
<link rel=\"stylesheet\" href=\"/certificate.css\">\n</head>\n<body class=\"certificate\">\n<main>\n\
<h1>Certificate of attendance</h1>\n\
<p class=\"lead\">This certifies that <strong>{name}</strong> ({role}) attended the following \
multidisciplinary team meetings {span}, for continuing professional development.</p>\n\
<table>\n<thead><tr><th scope=\"col\">Date (UK time)</th><th scope=\"col\">Meeting</th>\
<th scope=\"col\">Specialty</th><th scope=\"col\">Kind</th><th scope=\"col\" class=\"num\">Minutes present</th></tr></thead>\n\
<tbody>\n{body}</tbody>\n\
<tfoot><tr><th scope=\"row\" colspan=\"4\">Total: {sessions} session{plural}</th>\
<td class=\"num\">{total} minutes ({hours} CPD hours)</td></tr></tfoot>\n</table>\n\
<h2>Mentoring received</h2>\n\
<table class=\"mentoring\">\n<thead><tr><th scope=\"col\">Date</th><th scope=\"col\">Arm</th>\
<th scope=\"col\">Kind</th><th scope=\"col\" class=\"num\">Minutes</th></tr></thead>\n\
<tbody>\n{mentoring}</tbody>\n\
<tfoot><tr><th scope=\"row\" colspan=\"3\">Total mentoring</th>\
<td class=\"num\">{mentoring_total} minutes ({mentoring_hours} CPD hours)</td></tr></tfoot>\n</table>\n\
<h2>Workplace-based assessments</h2>\n\
<table class=\"assessments\">\n<thead><tr><th scope=\"col\">Date</th><th scope=\"col\">Kind</th>\
<th scope=\"col\">Outcome</th></tr></thead>\n<tbody>\n{assessed}</tbody>\n</table>\n\
<p class=\"total\">In all: {all_hours} CPD hours of meetings and mentoring, and {assessments} \
assessment{assessment_plural}.</p>\n\
<p class=\"issued\">Issued on {issued} by MDT Coordinator from the meetings' attendance records. \
It names no patients.</p>\n</main>\n</body>\n</html>\n",
        role = escape(user.role.as_str()),
        span = escape(&span),
        sessions = rows.len(),
        plural = if rows.len() == 1 { "" } else { "s" },
        hours = cpd_hours(total),
        mentoring_hours = cpd_hours(mentoring_total),
        all_hours = cpd_hours(total + mentoring_total),
        assessments = received.assessments.len(),
        assessment_plural = if received.assessments.len() == 1 { "" } else { "s" },
        issued = escape(&long_date(issued)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EmailAddress, PersonName};

    #[test]
    fn certificate_escapes_everything_and_has_no_script_or_inline_style() {
        let user = User {
            id: UserId::new(),
            email: EmailAddress::parse("t@example.org").unwrap(),
            name: PersonName::parse("Ann <b>O'Neil</b> & Co").unwrap(),
            role: Role::Trainee,
            specialties: vec![],
            organisation: None,
            active: true,
            must_change_password: false,
            created_at: Utc::now(),
        };
        let rows = [CertificateRow {
            starts_at: "2025-05-06T11:30:00Z".parse().unwrap(),
            title: "Spinal <script>alert(1)</script>".into(),
            specialty: "spinal".into(),
            teaching: true,
            minutes: 90,
        }];
        let period = Period {
            from: Some("2025-04-01".parse().unwrap()),
            to: Some("2025-06-30".parse().unwrap()),
        };
        let received = Received {
            mentoring: vec![MentoringRow {
                occurred_on: "2025-05-07".parse().unwrap(),
                specialty: "spinal".into(),
                kind: "case review".into(),
                minutes: 30,
            }],
            assessments: vec![AssessmentRow {
                occurred_on: "2025-05-08".parse().unwrap(),
                kind: "joint clinic".into(),
                outcome: "meets expectations".into(),
            }],
        };
        let html =
            certificate_html(&user, &period, &rows, &received, "2025-07-01".parse().unwrap());
        assert!(html.contains("Ann &lt;b&gt;O&#39;Neil&lt;/b&gt; &amp; Co"));
        assert!(html.contains("Spinal &lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!html.contains("<script"));
        assert!(!html.contains("<style"));
        assert!(!html.contains("style="));
        // 12:30 UK summer time; 90 minutes is 1.5 hours.
        assert!(html.contains("Tue 6 May 2025, 12:30"));
        assert!(html.contains("90 minutes (1.5 CPD hours)"));
        assert!(html.contains("from 1 April 2025 to 30 June 2025"));
        assert!(html.contains("30 minutes (0.5 CPD hours)"));
        assert!(html.contains("In all: 2 CPD hours of meetings and mentoring, and 1 assessment."));
        assert!(
            html.contains("<td>8 May 2025</td><td>joint clinic</td><td>meets expectations</td>")
        );
    }
}
