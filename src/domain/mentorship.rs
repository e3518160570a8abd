//! Mentorship and CPD (DESIGN §3 "Mentorship", "Attendance"; §4 flows 6–7) as pure rules:
//! contracts and logs parsed from their requests, the date range reports use, the
//! pro-rata arithmetic of the delivered-vs-contracted summary and its backlog, and the
//! minutes a person was present at a session. No I/O; no patient data.
//!
//! **Pro rata by weeks.** A contract promises `minutes_per_week` for `weeks_per_year`
//! weeks of a 52-week year. For a window of dates (both ends inclusive) it is owed
//!
//! ```text
//! contracted = minutes_per_week × weeks_per_year / 52 × overlap_days / 7
//!            = minutes_per_week × weeks_per_year × overlap_days / 364
//! ```
//!
//! where `overlap_days` counts the days of the window on which the contract runs (its
//! `starts_on` to `ends_on`, both inclusive; an open end runs on). It is computed in
//! whole numbers and rounded to the nearest minute, halves up. A 13-week window
//! (91 days) owes exactly a quarter of the year: 60 min/week × 52 weeks → 780 minutes,
//! 60 min/week × 42 weeks → 630.
//!
//! **Delivered** is the sum of the durations of the logs that count to the contract,
//! dated on an overlapping day: the contract consultant's logs in the contract's arm
//! (specialty), and the logs of a consultant **covering** the contract (issue 21) in that
//! arm on a day of their cover. A log by someone covering a contract on its day counts to
//! the covered contract only (never also to a contract of their own in the arm): it counts
//! once. `covered_minutes` is the part of delivered that covers gave.
//!
//! **Missed weeks** split the overlapping days into Monday–Sunday weeks (the first and
//! last may be partial); a week is missed when no log counting to the contract falls in
//! it, counted only once the week (its overlapping part) has ended by the as-of day.
//!
//! **Backlog** is per arm: the cases of that specialty flagged for mentorship (and the
//! caseload cases added to its list, `domain::caseload`) on or before the as-of day and
//! not yet discussed in a log, unflagged or advised by then, where the as-of day is `to`,
//! or today when `to` is later. `oldest_backlog_days` is the as-of day minus the oldest
//! flag's day.

use std::cmp::{max, min};

use chrono::{DateTime, NaiveDate, SubsecRound, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::parse::{bounded_text, ParseError};
use super::schedule::CLINIC_TZ;
use super::specialty::Specialty;
use super::user::UserId;

/// Longest single mentorship log: a whole working day.
pub const MAX_LOG_MINUTES: i64 = 600;
/// Most minutes a contract may promise per week (40 hours).
pub const MAX_MINUTES_PER_WEEK: i64 = 2400;
/// Most mentees, cases and learning points on one log.
pub const MAX_LOG_ENTRIES: usize = 50;
const MAX_LEARNING_POINT: usize = 1000;

/// What kind of mentorship a log records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MentorshipKind {
    CaseReview,
    JointAssessment,
    Teaching,
}

impl MentorshipKind {
    pub const ALL: [MentorshipKind; 3] =
        [MentorshipKind::CaseReview, MentorshipKind::JointAssessment, MentorshipKind::Teaching];

    pub fn as_str(self) -> &'static str {
        match self {
            MentorshipKind::CaseReview => "case_review",
            MentorshipKind::JointAssessment => "joint_assessment",
            MentorshipKind::Teaching => "teaching",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw.trim()).ok_or_else(|| {
            ParseError::new(
                "invalid_kind",
                "kind",
                "must be case_review, joint_assessment or teaching",
            )
        })
    }
}

/// A calendar date as `YYYY-MM-DD` (strictly; see [`parse_calendar_date`]).
pub fn parse_date(raw: &str, field: &'static str) -> Result<NaiveDate, ParseError> {
    super::time_window::parse_calendar_date(raw, field)
}

/// A range of calendar dates, both ends inclusive (`from=2026-04-01&to=2026-06-30` is the
/// whole of April, May and June). Days are clinic (UK) days.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct DateRange {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl DateRange {
    /// Both ends required; `422 invalid_date_range` when `from` is after `to`.
    pub fn parse(from: Option<&str>, to: Option<&str>) -> Result<Self, ParseError> {
        let need = |v: Option<&str>, field: &'static str| {
            v.ok_or_else(|| ParseError::new("required", field, "give the date as YYYY-MM-DD"))
                .and_then(|raw| parse_date(raw, field))
        };
        Self::new(need(from, "from")?, need(to, "to")?)
    }

    /// Either end may be left out: the range then runs from the earliest or to the latest
    /// day there is.
    pub fn parse_open(from: Option<&str>, to: Option<&str>) -> Result<Self, ParseError> {
        let from = from.map(|f| parse_date(f, "from")).transpose()?;
        let to = to.map(|t| parse_date(t, "to")).transpose()?;
        Self::new(
            from.unwrap_or(NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN)),
            // Not the year's last day: the range ends at the start of the day after, which
            // must stay a four-digit year (SQLite compares stored times as text).
            to.unwrap_or(NaiveDate::from_ymd_opt(9999, 12, 30).unwrap_or(NaiveDate::MAX)),
        )
    }

    pub fn new(from: NaiveDate, to: NaiveDate) -> Result<Self, ParseError> {
        if from > to {
            return Err(ParseError::new("invalid_date_range", "to", "must be on or after from"));
        }
        Ok(Self { from, to })
    }

    pub fn contains(&self, day: NaiveDate) -> bool {
        self.from <= day && day <= self.to
    }

    /// Days in the range.
    pub fn days(&self) -> i64 {
        (self.to - self.from).num_days() + 1
    }

    /// The range as instants: from the start of `from` to the start of the day after
    /// `to`, in clinic local time (half-open).
    pub fn instants(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        let start = |d: NaiveDate| {
            d.and_hms_opt(0, 0, 0)
                .and_then(|t| CLINIC_TZ.from_local_datetime(&t).earliest())
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or(DateTime::<Utc>::MIN_UTC)
        };
        let end = self.to.succ_opt().map(start).unwrap_or(DateTime::<Utc>::MAX_UTC);
        (start(self.from), end)
    }
}

/// A contract as it arrives.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct ContractRequest {
    #[serde(default)]
    pub consultant_id: String,
    #[serde(default)]
    pub specialty: String,
    pub minutes_per_week: i64,
    pub weeks_per_year: i64,
    #[serde(default)]
    pub starts_on: String,
    pub ends_on: Option<String>,
}

/// A parsed contract request (the consultant's existence and specialty are checked
/// against the store by the handler).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContractDraft {
    pub consultant_id: UserId,
    pub specialty: Specialty,
    pub minutes_per_week: u32,
    pub weeks_per_year: u32,
    pub starts_on: NaiveDate,
    pub ends_on: Option<NaiveDate>,
}

/// An account id (`422 invalid_id` naming `field`).
pub fn user_id(
    raw: &str, field: impl Into<std::borrow::Cow<'static, str>>,
) -> Result<UserId, ParseError> {
    Uuid::parse_str(raw.trim())
        .map(UserId)
        .map_err(|_| ParseError::new("invalid_id", field, "must be an account id"))
}

impl TryFrom<ContractRequest> for ContractDraft {
    type Error = ParseError;

    fn try_from(r: ContractRequest) -> Result<Self, ParseError> {
        let consultant_id = user_id(&r.consultant_id, "consultant_id")?;
        let specialty = Specialty::parse(&r.specialty)?;
        if !(1..=MAX_MINUTES_PER_WEEK).contains(&r.minutes_per_week) {
            return Err(ParseError::new(
                "invalid_minutes_per_week",
                "minutes_per_week",
                format!("must be a whole number of minutes from 1 to {MAX_MINUTES_PER_WEEK}"),
            ));
        }
        if !(1..=52).contains(&r.weeks_per_year) {
            return Err(ParseError::new(
                "invalid_weeks_per_year",
                "weeks_per_year",
                "must be a whole number of weeks from 1 to 52",
            ));
        }
        let starts_on = parse_date(&r.starts_on, "starts_on")?;
        let ends_on = match r.ends_on.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => Some(parse_date(raw, "ends_on")?),
        };
        if ends_on.is_some_and(|end| end < starts_on) {
            return Err(ParseError::new(
                "invalid_date_range",
                "ends_on",
                "must be on or after starts_on",
            ));
        }
        Ok(ContractDraft {
            consultant_id,
            specialty,
            minutes_per_week: u32::try_from(r.minutes_per_week).unwrap_or(0),
            weeks_per_year: u32::try_from(r.weeks_per_year).unwrap_or(0),
            starts_on,
            ends_on,
        })
    }
}

/// A stored mentorship contract.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Contract {
    pub id: Uuid,
    #[schema(value_type = Uuid)]
    pub consultant_id: UserId,
    #[schema(value_type = String)]
    pub specialty: Specialty,
    pub minutes_per_week: u32,
    pub weeks_per_year: u32,
    pub starts_on: NaiveDate,
    pub ends_on: Option<NaiveDate>,
    #[schema(value_type = Uuid)]
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
}

impl Contract {
    pub fn new(draft: ContractDraft, by: UserId, now: DateTime<Utc>) -> Self {
        Contract {
            id: Uuid::new_v4(),
            consultant_id: draft.consultant_id,
            specialty: draft.specialty,
            minutes_per_week: draft.minutes_per_week,
            weeks_per_year: draft.weeks_per_year,
            starts_on: draft.starts_on,
            ends_on: draft.ends_on,
            created_by: by,
            // Microseconds: the precision both backends keep.
            created_at: now.trunc_subsecs(6),
        }
    }

    /// Whether the contract runs on `day`.
    pub fn runs_on(&self, day: NaiveDate) -> bool {
        self.starts_on <= day && self.ends_on.is_none_or(|end| day <= end)
    }

    /// Whether two contracts of the same consultant and arm share a day.
    pub fn overlaps(&self, other: &Contract) -> bool {
        let ends = |c: &Contract| c.ends_on.unwrap_or(NaiveDate::MAX);
        self.consultant_id == other.consultant_id
            && self.specialty == other.specialty
            && self.starts_on <= ends(other)
            && other.starts_on <= ends(self)
    }

    /// The days of `range` on which the contract runs, as a range (none if disjoint).
    pub fn overlap(&self, range: &DateRange) -> Option<DateRange> {
        let from = max(self.starts_on, range.from);
        let to = self.ends_on.map_or(range.to, |end| min(end, range.to));
        DateRange::new(from, to).ok()
    }

    /// Minutes owed over `range`, pro rata by weeks (see the module documentation).
    pub fn contracted_minutes(&self, range: &DateRange) -> u64 {
        let days = self.overlap(range).map_or(0, |o| o.days());
        let days = u64::try_from(days).unwrap_or(0);
        let numerator = u64::from(self.minutes_per_week) * u64::from(self.weeks_per_year) * days;
        // Round to the nearest minute, halves up: (n + d/2) / d with d = 364.
        (numerator + 182) / 364
    }
}

/// A mentorship log as it arrives. `specialty` (the arm the time counts towards) may be
/// left out when the consultant has exactly one contract running on `occurred_on`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct LogRequest {
    #[serde(default)]
    pub consultant_id: String,
    #[serde(default)]
    pub mentee_ids: Vec<String>,
    #[serde(default)]
    pub occurred_on: String,
    pub duration_minutes: i64,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub case_ids: Vec<String>,
    #[serde(default)]
    pub learning_points: Vec<String>,
    pub specialty: Option<String>,
}

/// A parsed log request: ids are well formed and distinct, the date is not in the future,
/// the duration is 1–600 minutes. Whether the ids name real people and cases is checked
/// against the store by the handler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogDraft {
    pub consultant_id: UserId,
    pub mentee_ids: Vec<UserId>,
    pub occurred_on: NaiveDate,
    pub duration_minutes: u32,
    pub kind: MentorshipKind,
    pub case_ids: Vec<Uuid>,
    pub learning_points: Vec<String>,
    pub specialty: Option<Specialty>,
}

fn too_many(field: &'static str) -> ParseError {
    ParseError::new("too_many", field, format!("must have at most {MAX_LOG_ENTRIES} entries"))
}

impl LogDraft {
    /// Parses a request received on `today` (clinic local date).
    pub fn parse(r: LogRequest, today: NaiveDate) -> Result<Self, ParseError> {
        let consultant_id = user_id(&r.consultant_id, "consultant_id")?;
        if r.mentee_ids.is_empty() {
            return Err(ParseError::new("required", "mentee_ids", "name at least one mentee"));
        }
        if r.mentee_ids.len() > MAX_LOG_ENTRIES {
            return Err(too_many("mentee_ids"));
        }
        if r.case_ids.len() > MAX_LOG_ENTRIES {
            return Err(too_many("case_ids"));
        }
        if r.learning_points.len() > MAX_LOG_ENTRIES {
            return Err(too_many("learning_points"));
        }
        let mut mentee_ids = Vec::new();
        for (i, raw) in r.mentee_ids.iter().enumerate() {
            let id = user_id(raw, format!("mentee_ids[{i}]"))?;
            if id == consultant_id {
                return Err(ParseError::new(
                    "invalid_mentee",
                    format!("mentee_ids[{i}]"),
                    "a consultant does not mentor themselves",
                ));
            }
            if !mentee_ids.contains(&id) {
                mentee_ids.push(id);
            }
        }
        let mut case_ids = Vec::new();
        for (i, raw) in r.case_ids.iter().enumerate() {
            let id = Uuid::parse_str(raw.trim()).map_err(|_| {
                ParseError::new("invalid_id", format!("case_ids[{i}]"), "must be a case id")
            })?;
            if !case_ids.contains(&id) {
                case_ids.push(id);
            }
        }
        let occurred_on = parse_date(&r.occurred_on, "occurred_on")?;
        if occurred_on > today {
            return Err(ParseError::new(
                "date_in_future",
                "occurred_on",
                "log mentorship once it has happened",
            ));
        }
        if !(1..=MAX_LOG_MINUTES).contains(&r.duration_minutes) {
            return Err(ParseError::new(
                "invalid_duration",
                "duration_minutes",
                format!("must be a whole number of minutes from 1 to {MAX_LOG_MINUTES}"),
            ));
        }
        let learning_points = r
            .learning_points
            .iter()
            .enumerate()
            .map(|(i, p)| {
                bounded_text(p, "learning_points", MAX_LEARNING_POINT, true)
                    .map_err(|e| e.for_field(format!("learning_points[{i}]")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let specialty = match r.specialty.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => Some(Specialty::parse(raw)?),
        };
        Ok(LogDraft {
            consultant_id,
            mentee_ids,
            occurred_on,
            duration_minutes: u32::try_from(r.duration_minutes).unwrap_or(0),
            kind: MentorshipKind::parse(&r.kind)?,
            case_ids,
            learning_points,
            specialty,
        })
    }
}

/// The arm a log counts towards: the one named, or else the consultant's only contract
/// running that day. `422 specialty_required` when that is not one contract.
pub fn log_specialty(draft: &LogDraft, contracts: &[Contract]) -> Result<Specialty, ParseError> {
    if let Some(s) = &draft.specialty {
        return Ok(s.clone());
    }
    let running: Vec<&Contract> = contracts
        .iter()
        .filter(|c| c.consultant_id == draft.consultant_id && c.runs_on(draft.occurred_on))
        .collect();
    match running.as_slice() {
        [one] => Ok(one.specialty.clone()),
        _ => Err(ParseError::new(
            "specialty_required",
            "specialty",
            format!(
                "the consultant has {} contracts running that day: name the specialty",
                running.len()
            ),
        )),
    }
}

/// A stored mentorship log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MentorshipLog {
    pub id: Uuid,
    #[schema(value_type = Uuid)]
    pub consultant_id: UserId,
    #[schema(value_type = String)]
    pub specialty: Specialty,
    #[schema(value_type = Vec<Uuid>)]
    pub mentee_ids: Vec<UserId>,
    pub occurred_on: NaiveDate,
    pub duration_minutes: u32,
    pub kind: MentorshipKind,
    pub case_ids: Vec<Uuid>,
    pub learning_points: Vec<String>,
    pub created_at: DateTime<Utc>,
}

impl MentorshipLog {
    pub fn new(draft: LogDraft, specialty: Specialty, now: DateTime<Utc>) -> Self {
        MentorshipLog {
            id: Uuid::new_v4(),
            consultant_id: draft.consultant_id,
            specialty,
            mentee_ids: draft.mentee_ids,
            occurred_on: draft.occurred_on,
            duration_minutes: draft.duration_minutes,
            kind: draft.kind,
            case_ids: draft.case_ids,
            learning_points: draft.learning_points,
            created_at: now.trunc_subsecs(6),
        }
    }

    /// Whether `user` took part (as the consultant or a mentee).
    pub fn involves(&self, user: UserId) -> bool {
        self.consultant_id == user || self.mentee_ids.contains(&user)
    }
}

/// Where a backlog entry comes from: an MDT case flagged for mentorship, or a case from
/// a practitioner's own caseload (`domain::caseload`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BacklogSource {
    Mdt,
    Caseload,
}

/// A case's place on its arm's mentorship backlog: flagged on a day, cleared on a day
/// (the day of the log that discussed it, or the day it was unflagged; for a caseload
/// case, the day of its first advice).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MentorshipFlag {
    pub case_id: Uuid,
    pub source: BacklogSource,
    pub specialty: Specialty,
    pub flagged_by: UserId,
    pub flagged_at: DateTime<Utc>,
    pub flagged_on: NaiveDate,
    pub cleared_on: Option<NaiveDate>,
    pub cleared_by_log: Option<Uuid>,
}

impl MentorshipFlag {
    /// Whether the case was waiting for mentorship at the end of `day`.
    pub fn open_on(&self, day: NaiveDate) -> bool {
        self.flagged_on <= day && self.cleared_on.is_none_or(|c| c > day)
    }
}

/// The clinic (UK) date of an instant.
pub fn clinic_date(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&CLINIC_TZ).date_naive()
}

/// A cover as it arrives (`POST /api/mentorship/contracts/{id}/cover`).
#[derive(Deserialize, utoipa::ToSchema)]
pub struct CoverRequest {
    #[serde(default)]
    pub consultant_id: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// A parsed cover: a consultant and the days (both inclusive) they cover.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoverDraft {
    pub consultant_id: UserId,
    pub days: DateRange,
}

impl TryFrom<CoverRequest> for CoverDraft {
    type Error = ParseError;

    fn try_from(r: CoverRequest) -> Result<Self, ParseError> {
        let consultant_id = user_id(&r.consultant_id, "consultant_id")?;
        let days = DateRange::parse(r.from.as_deref(), r.to.as_deref())?;
        Ok(CoverDraft { consultant_id, days })
    }
}

impl CoverDraft {
    /// Someone other than the contract's consultant covers it (`422 invalid_cover`), on
    /// days it runs (`422 cover_outside_contract`).
    pub fn check_against(&self, contract: &Contract) -> Result<(), ParseError> {
        if self.consultant_id == contract.consultant_id {
            return Err(ParseError::new(
                "invalid_cover",
                "consultant_id",
                "the contract's own consultant does not cover it",
            ));
        }
        if !contract.runs_on(self.days.from) || !contract.runs_on(self.days.to) {
            return Err(ParseError::new(
                "cover_outside_contract",
                "to",
                "a cover falls on days the contract runs",
            ));
        }
        Ok(())
    }
}

/// A consultant covering a contract for a range of days.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Cover {
    pub id: Uuid,
    pub contract_id: Uuid,
    /// The covered contract's arm.
    #[schema(value_type = String)]
    pub specialty: Specialty,
    #[schema(value_type = Uuid)]
    pub consultant_id: UserId,
    pub from: NaiveDate,
    pub to: NaiveDate,
    #[schema(value_type = Uuid)]
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
}

impl Cover {
    pub fn new(contract: &Contract, draft: CoverDraft, by: UserId, now: DateTime<Utc>) -> Self {
        Cover {
            id: Uuid::new_v4(),
            contract_id: contract.id,
            specialty: contract.specialty.clone(),
            consultant_id: draft.consultant_id,
            from: draft.days.from,
            to: draft.days.to,
            created_by: by,
            created_at: now.trunc_subsecs(6),
        }
    }

    pub fn days(&self) -> DateRange {
        DateRange { from: self.from, to: self.to }
    }

    /// Whether two covers of one contract share a day.
    pub fn overlaps(&self, other: &Cover) -> bool {
        self.contract_id == other.contract_id && self.from <= other.to && other.from <= self.to
    }
}

/// Whether `log` counts to `contract` (see the module documentation): through the cover
/// its consultant holds in its arm on its day, if any, else as the contract consultant's
/// own log in the arm on a day the contract runs.
pub fn counts_to(log: &MentorshipLog, contract: &Contract, covers: &[Cover]) -> bool {
    let cover = covers.iter().find(|v| {
        v.consultant_id == log.consultant_id
            && v.specialty == log.specialty
            && v.days().contains(log.occurred_on)
    });
    match cover {
        Some(v) => v.contract_id == contract.id,
        None => {
            log.consultant_id == contract.consultant_id
                && log.specialty == contract.specialty
                && contract.runs_on(log.occurred_on)
        }
    }
}

/// Whether `user` mentors in `arm` on `day`: a contract of theirs in the arm runs, or they
/// cover one of the arm's contracts.
pub fn mentors_arm(
    user: UserId, arm: &Specialty, contracts: &[Contract], covers: &[Cover], day: NaiveDate,
) -> bool {
    contracts.iter().any(|c| c.consultant_id == user && &c.specialty == arm && c.runs_on(day))
        || covers
            .iter()
            .any(|v| v.consultant_id == user && &v.specialty == arm && v.days().contains(day))
}

/// Monday–Sunday weeks of `days` (the first and last may be partial) that have ended by
/// `as_of` with none of `delivered` in them.
pub fn missed_weeks(days: &DateRange, delivered: &[NaiveDate], as_of: NaiveDate) -> u64 {
    use chrono::Datelike;
    let mut missed = 0;
    let mut start = days.from;
    loop {
        let to_sunday = 6 - i64::from(start.weekday().num_days_from_monday());
        let end = start
            .checked_add_signed(chrono::Duration::days(to_sunday))
            .map_or(days.to, |sunday| min(sunday, days.to));
        if end <= as_of && !delivered.iter().any(|d| start <= *d && *d <= end) {
            missed += 1;
        }
        match end.succ_opt() {
            Some(next) if next <= days.to && next <= as_of => start = next,
            _ => break,
        }
    }
    missed
}

/// A cover of a summary row, with the minutes it gave in the window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CoverSummary {
    pub cover_id: Uuid,
    #[schema(value_type = Uuid)]
    pub consultant_id: UserId,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub minutes: u64,
}

/// One row of `GET /api/mentorship/summary`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ContractSummary {
    pub contract_id: Uuid,
    #[schema(value_type = Uuid)]
    pub consultant_id: UserId,
    #[schema(value_type = String)]
    pub specialty: Specialty,
    pub minutes_per_week: u32,
    pub weeks_per_year: u32,
    /// Days of the window the contract runs on.
    pub days: i64,
    pub contracted_minutes: u64,
    pub delivered_minutes: u64,
    /// The part of `delivered_minutes` that covering consultants gave.
    pub covered_minutes: u64,
    /// `contracted − delivered`, never below zero.
    pub shortfall_minutes: u64,
    /// Weeks ended by the as-of day with no mentoring counted to the contract.
    pub missed_weeks: u64,
    /// The covers overlapping the window, oldest first.
    pub covers: Vec<CoverSummary>,
    pub backlog_cases: u64,
    /// Age of the oldest backlog flag on the as-of day; `null` with no backlog.
    pub oldest_backlog_days: Option<i64>,
}

/// The summary over `range` of every contract running on some day of it, in the order
/// given. `logs` and `flags` may include others; only those that count are used.
pub fn summarise(
    contracts: &[Contract], covers: &[Cover], logs: &[MentorshipLog], flags: &[MentorshipFlag],
    range: &DateRange, today: NaiveDate,
) -> Vec<ContractSummary> {
    let as_of = min(range.to, today);
    contracts
        .iter()
        .filter_map(|c| {
            let overlap = c.overlap(range)?;
            let counted: Vec<&MentorshipLog> = logs
                .iter()
                .filter(|l| overlap.contains(l.occurred_on) && counts_to(l, c, covers))
                .collect();
            let minutes = |ls: &mut dyn Iterator<Item = &&MentorshipLog>| -> u64 {
                ls.map(|l| u64::from(l.duration_minutes)).sum()
            };
            let delivered = minutes(&mut counted.iter());
            let covered =
                minutes(&mut counted.iter().filter(|l| l.consultant_id != c.consultant_id));
            let days: Vec<NaiveDate> = counted.iter().map(|l| l.occurred_on).collect();
            let covers = covers
                .iter()
                .filter(|v| v.contract_id == c.id && v.from <= overlap.to && overlap.from <= v.to)
                .map(|v| CoverSummary {
                    cover_id: v.id,
                    consultant_id: v.consultant_id,
                    from: v.from,
                    to: v.to,
                    minutes: minutes(&mut counted.iter().filter(|l| {
                        l.consultant_id == v.consultant_id && v.days().contains(l.occurred_on)
                    })),
                })
                .collect();
            let backlog: Vec<&MentorshipFlag> =
                flags.iter().filter(|f| f.specialty == c.specialty && f.open_on(as_of)).collect();
            let contracted = c.contracted_minutes(range);
            Some(ContractSummary {
                contract_id: c.id,
                consultant_id: c.consultant_id,
                specialty: c.specialty.clone(),
                minutes_per_week: c.minutes_per_week,
                weeks_per_year: c.weeks_per_year,
                days: overlap.days(),
                contracted_minutes: contracted,
                delivered_minutes: delivered,
                covered_minutes: covered,
                shortfall_minutes: contracted.saturating_sub(delivered),
                missed_weeks: missed_weeks(&overlap, &days, as_of),
                covers,
                backlog_cases: backlog.len() as u64,
                oldest_backlog_days: backlog
                    .iter()
                    .map(|f| f.flagged_on)
                    .min()
                    .map(|oldest| (as_of - oldest).num_days()),
            })
        })
        .collect()
}

/// Whole minutes someone was present, from their stays `(joined, left)` at one session:
/// overlapping stays (two devices) count once, and a stay with no leave time (still
/// there, or the instance holding it stopped) counts until `open_until` (the earlier of
/// the session's scheduled end and now, or when it was joined if that is later).
pub fn minutes_present(
    stays: &[(DateTime<Utc>, Option<DateTime<Utc>>)], open_until: DateTime<Utc>,
) -> u64 {
    let mut spans: Vec<(DateTime<Utc>, DateTime<Utc>)> = stays
        .iter()
        .map(|&(joined, left)| (joined, max(joined, left.unwrap_or(open_until))))
        .collect();
    spans.sort();
    let mut total = chrono::Duration::zero();
    let mut current: Option<(DateTime<Utc>, DateTime<Utc>)> = None;
    for (start, end) in spans {
        current = match current {
            Some((s, e)) if start <= e => Some((s, max(e, end))),
            Some((s, e)) => {
                total += e - s;
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    if let Some((s, e)) = current {
        total += e - s;
    }
    u64::try_from(total.num_minutes()).unwrap_or(0)
}

/// CPD hours for a number of minutes, to two decimal places.
pub fn cpd_hours(minutes: u64) -> f64 {
    (minutes as f64 / 60.0 * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn contract(mpw: u32, wpy: u32, starts: &str, ends: Option<&str>, arm: &str) -> Contract {
        Contract {
            id: Uuid::new_v4(),
            consultant_id: UserId(Uuid::nil()),
            specialty: Specialty::parse(arm).unwrap(),
            minutes_per_week: mpw,
            weeks_per_year: wpy,
            starts_on: d(starts),
            ends_on: ends.map(d),
            created_by: UserId(Uuid::nil()),
            created_at: Utc::now(),
        }
    }

    /// A case review by `by` in `arm` on `on`.
    fn log_by(by: UserId, arm: &str, on: &str, minutes: u32) -> MentorshipLog {
        MentorshipLog {
            id: Uuid::new_v4(),
            consultant_id: by,
            specialty: Specialty::parse(arm).unwrap(),
            mentee_ids: vec![],
            occurred_on: d(on),
            duration_minutes: minutes,
            kind: MentorshipKind::CaseReview,
            case_ids: vec![],
            learning_points: vec![],
            created_at: Utc::now(),
        }
    }

    fn quarter() -> DateRange {
        // 1 April – 30 June 2025: 30 + 31 + 30 = 91 days, exactly 13 weeks.
        DateRange::parse(Some("2025-04-01"), Some("2025-06-30")).unwrap()
    }

    #[test]
    fn contracted_minutes_are_pro_rata_by_weeks() {
        let q = quarter();
        assert_eq!(q.days(), 91);
        // 60 × 52 × 91 / 364 = 780 (a quarter of 52 weeks is 13 weeks).
        assert_eq!(contract(60, 52, "2025-01-01", None, "spinal").contracted_minutes(&q), 780);
        // 60 × 42 × 91 / 364 = 630 (a quarter of 42 weeks is 10.5 weeks).
        assert_eq!(contract(60, 42, "2025-01-01", None, "pain").contracted_minutes(&q), 630);
        // Starting 16 June: 15 days of the quarter. 90 × 52 × 15 / 364 = 192.857… → 193.
        assert_eq!(contract(90, 52, "2025-06-16", None, "spinal").contracted_minutes(&q), 193);
        // Ending 7 April: 7 days. 30 × 42 × 7 / 364 = 24.23… → 24.
        assert_eq!(
            contract(30, 42, "2024-01-01", Some("2025-04-07"), "pain").contracted_minutes(&q),
            24
        );
        // Rounding halves up: 1 × 26 × 7 / 364 = 0.5 → 1.
        assert_eq!(
            contract(1, 26, "2025-04-01", Some("2025-04-07"), "pain").contracted_minutes(&q),
            1
        );
        // A contract outside the window owes nothing and is left out of the summary.
        let later = contract(60, 52, "2025-07-01", None, "spinal");
        assert_eq!(later.contracted_minutes(&q), 0);
        assert!(summarise(&[later], &[], &[], &[], &q, d("2026-01-01")).is_empty());
    }

    #[test]
    fn summary_counts_logs_in_the_arm_and_the_backlog_as_of_the_end() {
        let q = quarter();
        let spinal = contract(60, 52, "2025-01-01", None, "spinal");
        let log =
            |on: &str, minutes: u32, arm: &str| log_by(spinal.consultant_id, arm, on, minutes);
        let logs = [
            log("2025-04-01", 60, "spinal"),
            log("2025-06-30", 45, "spinal"),
            log("2025-07-01", 500, "spinal"), // after the window
            log("2025-05-01", 500, "pain"),   // another arm
        ];
        let flag = |on: &str, cleared: Option<&str>, arm: &str| MentorshipFlag {
            case_id: Uuid::new_v4(),
            source: BacklogSource::Mdt,
            specialty: Specialty::parse(arm).unwrap(),
            flagged_by: UserId(Uuid::nil()),
            flagged_at: Utc::now(),
            flagged_on: d(on),
            cleared_on: cleared.map(d),
            cleared_by_log: None,
        };
        let flags = [
            flag("2025-05-10", None, "spinal"), // open: 51 days on 30 June
            flag("2025-04-20", Some("2025-05-01"), "spinal"), // discussed in time
            flag("2025-04-02", Some("2025-07-02"), "spinal"), // open on 30 June: 89 days
            flag("2025-07-01", None, "spinal"), // after the window
            flag("2025-04-01", None, "pain"),   // another arm
        ];
        let rows =
            summarise(std::slice::from_ref(&spinal), &[], &logs, &flags, &q, d("2026-01-01"));
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!(r.days, 91);
        assert_eq!(r.contracted_minutes, 780);
        assert_eq!(r.delivered_minutes, 105);
        assert_eq!(r.shortfall_minutes, 675);
        assert_eq!(r.backlog_cases, 2);
        assert_eq!(r.oldest_backlog_days, Some(89));
        // Delivered beyond the contract is no shortfall; as of a day inside the window the
        // backlog is measured on that day.
        let rows = summarise(
            std::slice::from_ref(&spinal),
            &[],
            &[log("2025-04-03", 600, "spinal"), log("2025-04-04", 600, "spinal")],
            &flags,
            &q,
            d("2025-05-10"),
        );
        assert_eq!(rows[0].shortfall_minutes, 0);
        assert_eq!(rows[0].backlog_cases, 2);
        assert_eq!(rows[0].oldest_backlog_days, Some(38));
    }

    #[test]
    fn cover_logs_count_once_to_the_covered_contract_and_weeks_without_any_are_missed() {
        // 1 April (a Tuesday) – 30 June 2025: 14 Monday–Sunday weeks, the first and last
        // partial. The consultant logs 60 minutes a week but for two weeks of leave from 5
        // May; the week of 5 May is covered (45 minutes on 7 May), that of 12 May not.
        let q = quarter();
        let spinal = contract(60, 52, "2025-01-01", None, "spinal");
        let cover_by = UserId(Uuid::new_v4());
        let log = |by: UserId, on: &str, minutes: u32| log_by(by, "spinal", on, minutes);
        // 1 April, then every Monday from 7 April to 30 June.
        let mondays = std::iter::successors(Some(d("2025-04-07")), |w| {
            w.checked_add_signed(chrono::Duration::days(7))
        });
        let mut logs: Vec<MentorshipLog> = std::iter::once(d("2025-04-01"))
            .chain(mondays)
            .take_while(|day| *day <= d("2025-06-30"))
            .filter(|day| !(d("2025-05-05")..=d("2025-05-18")).contains(day))
            .map(|day| log(spinal.consultant_id, &day.to_string(), 60))
            .collect();
        assert_eq!(logs.len(), 12);
        logs.push(log(cover_by, "2025-05-07", 45));
        // Outside the cover: the covering consultant's own time, not this contract's.
        logs.push(log(cover_by, "2025-05-20", 30));
        let draft = CoverDraft {
            consultant_id: cover_by,
            days: DateRange::new(d("2025-05-05"), d("2025-05-11")).unwrap(),
        };
        draft.check_against(&spinal).unwrap();
        let cover = Cover::new(&spinal, draft, UserId(Uuid::nil()), Utc::now());
        let rows = summarise(
            std::slice::from_ref(&spinal),
            std::slice::from_ref(&cover),
            &logs,
            &[],
            &q,
            d("2026-01-01"),
        );
        let r = &rows[0];
        assert_eq!(r.contracted_minutes, 780);
        assert_eq!(r.delivered_minutes, 12 * 60 + 45);
        assert_eq!(r.covered_minutes, 45);
        assert_eq!(r.shortfall_minutes, 15);
        assert_eq!(r.missed_weeks, 1);
        assert_eq!(r.covers.len(), 1);
        assert_eq!(r.covers[0].minutes, 45);
        // As of 14 May, the week of 12 May has not ended: nothing is missed yet.
        let early = summarise(
            std::slice::from_ref(&spinal),
            std::slice::from_ref(&cover),
            &logs,
            &[],
            &q,
            d("2025-05-14"),
        );
        assert_eq!(early[0].missed_weeks, 0);
        // The contract's consultant does not cover themselves; covers fall on its days.
        let own = CoverDraft { consultant_id: spinal.consultant_id, days: cover.days() };
        assert_eq!(own.check_against(&spinal).unwrap_err().code, "invalid_cover");
        let before = CoverDraft {
            consultant_id: cover_by,
            days: DateRange::new(d("2024-12-30"), d("2025-01-03")).unwrap(),
        };
        assert_eq!(before.check_against(&spinal).unwrap_err().code, "cover_outside_contract");
        assert!(mentors_arm(
            cover_by,
            &spinal.specialty,
            &[],
            std::slice::from_ref(&cover),
            d("2025-05-06")
        ));
        assert!(!mentors_arm(cover_by, &spinal.specialty, &[], &[cover], d("2025-05-12")));
    }

    #[test]
    fn date_ranges() {
        assert_eq!(
            DateRange::parse(Some("2025-07-01"), Some("2025-06-30")).unwrap_err().code,
            "invalid_date_range"
        );
        assert_eq!(DateRange::parse(Some("2025-07-01"), None).unwrap_err().code, "required");
        assert_eq!(
            DateRange::parse(Some("July"), Some("2025-06-30")).unwrap_err().code,
            "invalid_date"
        );
        let one = DateRange::parse(Some("2025-06-30"), Some("2025-06-30")).unwrap();
        assert_eq!(one.days(), 1);
        // Summer time: the UK day 30 June starts at 23:00 UTC the day before.
        let (start, end) = one.instants();
        assert_eq!(start, "2025-06-29T23:00:00Z".parse::<DateTime<Utc>>().unwrap());
        assert_eq!(end, "2025-06-30T23:00:00Z".parse::<DateTime<Utc>>().unwrap());
        assert!(DateRange::parse_open(None, None).unwrap().contains(d("2025-01-01")));
    }

    /// SQLite compares stored times as text: an open window's ends must still be times
    /// with a four-digit year, or every stored time sorts outside them (the CPD record
    /// came back empty without `to`).
    #[test]
    fn open_ranges_stay_within_four_digit_years() {
        for (from, to) in [(None, None), (Some("2025-01-01"), None), (None, Some("2025-01-01"))] {
            let (start, end) = DateRange::parse_open(from, to).unwrap().instants();
            for t in [start, end] {
                let text = t.to_rfc3339();
                assert!(text.as_bytes()[..4].iter().all(u8::is_ascii_digit), "{text}");
                assert_eq!(text.as_bytes()[4], b'-', "{text}");
            }
        }
    }

    fn request(body: serde_json::Value) -> LogRequest {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn log_requests_are_parsed() {
        let consultant = Uuid::new_v4().to_string();
        let mentee = Uuid::new_v4().to_string();
        let good = serde_json::json!({
            "consultant_id": consultant, "mentee_ids": [mentee, mentee],
            "occurred_on": "2025-05-01", "duration_minutes": 45, "kind": "case_review",
            "case_ids": [], "learning_points": ["Read the STarT Back tool"],
        });
        let today = d("2025-06-01");
        let draft = LogDraft::parse(request(good.clone()), today).unwrap();
        assert_eq!(draft.mentee_ids.len(), 1);
        assert_eq!(draft.kind, MentorshipKind::CaseReview);
        let code = |patch: serde_json::Value| {
            let mut body = good.clone();
            for (k, v) in patch.as_object().unwrap() {
                body[k] = v.clone();
            }
            LogDraft::parse(request(body), today).unwrap_err().code
        };
        assert_eq!(code(serde_json::json!({"duration_minutes": -5})), "invalid_duration");
        assert_eq!(code(serde_json::json!({"duration_minutes": 0})), "invalid_duration");
        assert_eq!(code(serde_json::json!({"kind": "chat"})), "invalid_kind");
        assert_eq!(code(serde_json::json!({"occurred_on": "2025-06-02"})), "date_in_future");
        assert_eq!(code(serde_json::json!({"mentee_ids": []})), "required");
        assert_eq!(code(serde_json::json!({"mentee_ids": [consultant]})), "invalid_mentee");
        assert_eq!(code(serde_json::json!({"case_ids": ["x"]})), "invalid_id");
        assert_eq!(code(serde_json::json!({"consultant_id": "me"})), "invalid_id");
        assert_eq!(code(serde_json::json!({"learning_points": [" "]})), "required");
    }

    #[test]
    fn a_log_without_a_specialty_takes_its_only_running_contract() {
        let spinal = contract(60, 52, "2025-01-01", None, "spinal");
        let pain = contract(60, 42, "2025-05-01", None, "pain");
        let draft = |on: &str| LogDraft {
            consultant_id: spinal.consultant_id,
            mentee_ids: vec![],
            occurred_on: d(on),
            duration_minutes: 30,
            kind: MentorshipKind::Teaching,
            case_ids: vec![],
            learning_points: vec![],
            specialty: None,
        };
        let both = [spinal.clone(), pain];
        assert_eq!(log_specialty(&draft("2025-04-15"), &both).unwrap().as_str(), "spinal");
        assert_eq!(
            log_specialty(&draft("2025-05-15"), &both).unwrap_err().code,
            "specialty_required"
        );
        assert_eq!(
            log_specialty(&draft("2024-05-15"), &both).unwrap_err().code,
            "specialty_required"
        );
    }

    #[test]
    fn contracts_parse_and_overlap() {
        let req = |body: serde_json::Value| -> Result<ContractDraft, ParseError> {
            ContractDraft::try_from(serde_json::from_value::<ContractRequest>(body).unwrap())
        };
        let id = Uuid::new_v4().to_string();
        let ok = req(serde_json::json!({"consultant_id": id, "specialty": "spinal",
            "minutes_per_week": 60, "weeks_per_year": 52, "starts_on": "2025-01-01", "ends_on": null}));
        assert!(ok.is_ok());
        let bad = |mpw: i64, wpy: i64, ends: &str| {
            req(serde_json::json!({"consultant_id": id, "specialty": "spinal",
                "minutes_per_week": mpw, "weeks_per_year": wpy, "starts_on": "2025-01-01", "ends_on": ends}))
            .unwrap_err()
            .code
        };
        assert_eq!(bad(0, 52, "2025-12-31"), "invalid_minutes_per_week");
        assert_eq!(bad(60, 53, "2025-12-31"), "invalid_weeks_per_year");
        assert_eq!(bad(60, 52, "2024-12-31"), "invalid_date_range");
        let a = contract(60, 52, "2025-01-01", Some("2025-06-30"), "spinal");
        let mut b = contract(60, 52, "2025-06-30", None, "spinal");
        assert!(a.overlaps(&b));
        b.starts_on = d("2025-07-01");
        assert!(!a.overlaps(&b));
        let c = contract(60, 52, "2025-01-01", None, "pain");
        assert!(!a.overlaps(&c));
    }

    #[test]
    fn presence_merges_overlapping_stays() {
        let t = |s: &str| format!("2025-05-01T{s}:00Z").parse::<DateTime<Utc>>().unwrap();
        // 12:30–13:00 and 12:45–13:15 on two devices: 12:30–13:15 = 45; rejoined
        // 13:30–13:40: 10 more.
        let stays = [
            (t("12:30"), Some(t("13:00"))),
            (t("12:45"), Some(t("13:15"))),
            (t("13:30"), Some(t("13:40"))),
        ];
        assert_eq!(minutes_present(&stays, t("14:00")), 55);
        // Never left: counted until the session's end.
        assert_eq!(minutes_present(&[(t("12:30"), None)], t("14:00")), 90);
        // Joined after the end with no leave time: nothing.
        assert_eq!(minutes_present(&[(t("14:30"), None)], t("14:00")), 0);
        assert_eq!(minutes_present(&[], t("14:00")), 0);
        assert_eq!(cpd_hours(90), 1.5);
        assert_eq!(cpd_hours(55), 0.92);
    }
}
