//! The activity report (DESIGN §4 flow 8, issue 7) as pure rules: the report window and
//! format parsed from the query, the rows the store returns for a window, and the
//! functions that fold them into monthly figures per specialty and into the per-case CSV.
//! No I/O here; who may run a report, and the audit of an export, live in the route.
//!
//! Definitions (also in the README):
//! - **Month**: the UK local month (Europe/London) of the session a case was booked
//!   into. The window `from..=to` is UK local dates; a session belongs to it when it
//!   starts between local midnight of `from` and local midnight after `to`.
//! - **Case counts** count case rows by their session: `booked` is every row (a case
//!   moved to a later session counts once in each), split into `discussed` (discussed or
//!   outcome signed), `deferred` (moved on, deferred in the meeting, or left for
//!   rebooking by a cancellation), `withdrawn` and `pending` (not yet discussed).
//! - **Days to discussion** (discussed cases): UK local calendar days from the episode's
//!   first booking (following deferrals back to the original booking) to the discussion:
//!   the time the chair started the case in the live meeting, or the session's start
//!   when it was never started live. Within six weeks means at most 42 days.
//! - **Median** is the middle value, or the mean of the two middle values; the 90th
//!   percentile is nearest-rank: the value at rank ⌈0.9·n⌉ of the sorted values.
//! - **Outcome mix** comes from the latest signed version of each case's outcome:
//!   discharged to GP (a `gp_discharge` referral), onward referral (any other
//!   destination; counted per case and per destination), investigations (items per kind,
//!   and cases with any), re-discuss follow-ups.
//! - **Time per case**: actual is `case_started` to that case's `case_completed` or
//!   `case_deferred` event, for discussed cases with both; allotted is the session's
//!   minutes per case for the same cases.
//! - **Sessions**: `run` means opened live (now live or closed); a run session is
//!   `quorate` when, at some moment, its chair and the specialty's `quorum_others`
//!   consultants or practitioners were present together (from attendance); attendees
//!   are distinct people per run session.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Datelike, Days, NaiveDate, TimeZone, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::case::age_band;
use super::case::{Case, CaseState};
use super::communication::{clocks_of, ClockFacts, ClockKind, ClockRules, CommClock};
use super::live::Attendance;
use super::outcome::{FollowUpKind, OutcomeSummary};
use super::outcome::{InvestigationKind, ReferralDestination};
use super::parse::ParseError;
use super::person_name::PersonName;
use super::role::Role;
use super::schedule::SessionState;
use super::schedule::CLINIC_TZ;
use super::specialty::Specialty;
use super::user::UserId;

/// The service's KPI: discussed within six weeks of booking.
pub const SIX_WEEKS_DAYS: i64 = 42;
/// The longest window one report covers (two years and a day), so a request cannot ask
/// the server to fold the whole history at once.
pub const MAX_WINDOW_DAYS: i64 = 731;

/// A report window: UK local dates `from..=to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportWindow {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl ReportWindow {
    /// Parses `from` and `to` (both required, `YYYY-MM-DD`); `to` may equal `from` (one
    /// day) but not precede it.
    pub fn parse(from: Option<&str>, to: Option<&str>) -> Result<Self, ParseError> {
        let date = |raw: Option<&str>, field: &'static str| {
            let raw = raw
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .ok_or_else(|| ParseError::new("required", field, "a date is required"))?;
            super::time_window::parse_calendar_date(raw, field)
        };
        let window = Self { from: date(from, "from")?, to: date(to, "to")? };
        if window.from > window.to {
            return Err(ParseError::new("invalid_window", "to", "must not be before from"));
        }
        if (window.to - window.from).num_days() >= MAX_WINDOW_DAYS {
            return Err(ParseError::new(
                "window_too_long",
                "to",
                format!("a report covers at most {MAX_WINDOW_DAYS} days"),
            ));
        }
        Ok(window)
    }

    /// Local midnight at the start of `from`, in UTC.
    pub fn starts_at(&self) -> DateTime<Utc> {
        local_midnight(self.from)
    }

    /// Local midnight at the end of `to`, in UTC (exclusive).
    pub fn ends_at(&self) -> DateTime<Utc> {
        local_midnight(self.to.checked_add_days(Days::new(1)).unwrap_or(self.to))
    }

    /// Every month the window touches, in order.
    pub fn months(&self) -> Vec<Month> {
        let last = Month::of_date(self.to);
        let mut months = vec![Month::of_date(self.from)];
        while let Some(m) = months.last().copied().filter(|m| *m < last) {
            months.push(m.next());
        }
        months
    }
}

/// Local midnight of a date in the clinic's time zone (the earliest instant, should a
/// time change ever fall at midnight).
fn local_midnight(date: NaiveDate) -> DateTime<Utc> {
    let midnight = date.and_time(chrono::NaiveTime::MIN);
    CLINIC_TZ
        .from_local_datetime(&midnight)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&midnight))
}

/// The UK local date of an instant.
pub fn local_date(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&CLINIC_TZ).date_naive()
}

/// A calendar month, shown as `YYYY-MM`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    pub year: i32,
    pub month: u32,
}

impl Month {
    pub fn of_date(d: NaiveDate) -> Self {
        Self { year: d.year(), month: d.month() }
    }

    /// The UK local month of an instant.
    pub fn of(t: DateTime<Utc>) -> Self {
        Self::of_date(local_date(t))
    }

    fn next(self) -> Self {
        if self.month == 12 {
            Self { year: self.year + 1, month: 1 }
        } else {
            Self { year: self.year, month: self.month + 1 }
        }
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// How the report is returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportFormat {
    /// Monthly figures per specialty (the default).
    Json,
    /// One row per case.
    Csv,
}

impl ReportFormat {
    pub fn parse(raw: Option<&str>) -> Result<Self, ParseError> {
        match raw.map(str::trim) {
            None | Some("") | Some("json") => Ok(Self::Json),
            Some("csv") => Ok(Self::Csv),
            Some(_) => Err(ParseError::new("unknown_format", "format", "must be json or csv")),
        }
    }
}

/// What the store is asked for: sessions starting in `[starts_at, ends_at)` of these
/// specialties.
#[derive(Clone, Debug)]
pub struct ReportQuery {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub specialties: Vec<Specialty>,
}

/// A session in the window, as the report needs it.
#[derive(Clone, Debug)]
pub struct SessionRow {
    pub id: Uuid,
    pub specialty: Specialty,
    pub starts_at: DateTime<Utc>,
    pub state: SessionState,
    pub minutes_per_case: u32,
    pub chair_id: UserId,
    /// The specialty's quorum: how many others besides the chair.
    pub quorum_others: u32,
}

/// A case booked into a session of the window, with what the report derives from the
/// rest of the database.
#[derive(Clone, Debug)]
pub struct CaseRow {
    pub case: Case,
    pub referrer_role: Role,
    pub referrer_name: PersonName,
    /// The booking time of the episode's first case row (before any deferral).
    pub first_booked_at: DateTime<Utc>,
    /// The first `case_started` event for this case row.
    pub started_at: Option<DateTime<Utc>>,
    /// Its first `case_completed` or `case_deferred` event.
    pub ended_at: Option<DateTime<Utc>>,
    /// The latest signed outcome version, without free text.
    pub outcome: Option<OutcomeSummary>,
    /// Its outcome was signed without a discussion, with a reason (issue 16).
    pub decided_outside_meeting: bool,
    /// Its communication clocks' facts, once an outcome was signed (issue 16).
    pub clock: Option<ClockFacts>,
}

/// Everything one report reads, fetched together by the store.
#[derive(Clone, Debug, Default)]
pub struct ActivityData {
    /// In start order.
    pub sessions: Vec<SessionRow>,
    pub cases: Vec<CaseRow>,
    pub attendance: Vec<Attendance>,
    /// Triage decisions on bookings into the window's sessions.
    pub triage: Vec<TriageRow>,
}

/// One triage decision, as the report needs it.
#[derive(Clone, Debug)]
pub struct TriageRow {
    pub session_id: Uuid,
    pub decision: String,
    /// A returned booking's reason.
    pub reason: Option<String>,
    /// When the booking went to triage, and when it was decided.
    pub submitted_at: DateTime<Utc>,
    pub decided_at: DateTime<Utc>,
}

/// The triage target: a decision within 24 hours of the booking reaching triage.
pub const TRIAGE_TARGET_HOURS: f64 = 24.0;

/// Triage turnaround and decisions (issue 15).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TriageFigures {
    pub decisions: u32,
    pub accepted: u32,
    pub returned: u32,
    pub listed: u32,
    /// Hours from reaching triage to the decision.
    pub median_turnaround_hours: Option<f64>,
    pub within_24_hours: u32,
    pub within_24_hours_percent: Option<f64>,
    /// Returned bookings by reason.
    pub returns_by_reason: BTreeMap<String, u32>,
}

/// How one case row ended up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaseClass {
    Discussed,
    /// Listed, not discussed: it follows a standard of care (signed or awaiting the chair).
    Listed,
    /// Signed by a consultant without a discussion, with a reason.
    DecidedOutsideMeeting,
    Deferred,
    Withdrawn,
    Pending,
}

impl CaseClass {
    pub fn of(row: &CaseRow) -> Self {
        use CaseState::*;
        let case = &row.case;
        match case.state {
            OutcomeSigned if row.decided_outside_meeting => Self::DecidedOutsideMeeting,
            Listed => Self::Listed,
            OutcomeSigned if case.standard_plan.is_some() => Self::Listed,
            Discussed | OutcomeSigned => Self::Discussed,
            Deferred => Self::Deferred,
            Withdrawn => Self::Withdrawn,
            AwaitingTriage | Returned | Booked | InDiscussion => Self::Pending,
        }
    }

    /// The per-episode reporting status of DESIGN §9 ("seen/cancelled/DNA"); a patient
    /// does not attend an MDT, so "not discussed at this session" is reported as
    /// `deferred` rather than DNA.
    pub fn seen_status(self) -> &'static str {
        match self {
            Self::Discussed => "seen",
            Self::Listed => "listed_not_discussed",
            Self::DecidedOutsideMeeting => "decided_outside_meeting",
            Self::Deferred => "deferred",
            Self::Withdrawn => "cancelled",
            Self::Pending => "pending",
        }
    }
}

/// When a discussed case was discussed: its live start, else its session's start.
pub fn discussed_at(row: &CaseRow, session: &SessionRow) -> DateTime<Utc> {
    row.started_at.unwrap_or(session.starts_at)
}

/// UK local calendar days from the episode's first booking to the discussion (never
/// negative).
pub fn days_to_discussion(row: &CaseRow, session: &SessionRow) -> i64 {
    (local_date(discussed_at(row, session)) - local_date(row.first_booked_at)).num_days().max(0)
}

/// Seconds of live discussion, when the case was started and then completed or deferred.
pub fn actual_seconds(row: &CaseRow) -> Option<i64> {
    match (row.started_at, row.ended_at) {
        (Some(s), Some(e)) if e >= s => Some((e - s).num_seconds()),
        _ => None,
    }
}

/// The conventional median of sorted values: the middle one, or the mean of the two
/// middle ones. `None` when there are none.
pub fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// The nearest-rank `p`th percentile of sorted values: the value at rank ⌈p·n/100⌉
/// (1-based). `None` when there are none.
pub fn nearest_rank<T: Copy>(sorted: &[T], p: u32) -> Option<T> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let rank = (p as usize * n).div_ceil(100).clamp(1, n);
    Some(sorted[rank - 1])
}

/// Rounds to one decimal place (figures shown to people).
fn one_decimal(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn sorted_f64(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// The report as returned: monthly figures and window totals per specialty.
#[derive(Clone, Debug, Serialize)]
pub struct ActivityReport {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub time_zone: &'static str,
    pub specialties: Vec<Specialty>,
    /// Every specialty in scope × every month of the window, in that order.
    pub months: Vec<Figures>,
    /// One per specialty, over the whole window (medians over all its cases, not of the
    /// monthly medians).
    pub totals: Vec<Figures>,
}

/// The figures for one specialty over one month (or the whole window).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Figures {
    pub specialty: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub month: Option<String>,
    pub cases: CaseCounts,
    pub days_to_discussion: WaitFigures,
    pub outcomes: OutcomeMix,
    pub time_per_case: TimePerCase,
    pub sessions: SessionFigures,
    pub triage: TriageFigures,
    pub communication: CommunicationFigures,
}

/// The communication clocks of the signed cases (issue 16), per clock.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CommunicationFigures {
    pub referrer_informed: ClockFigures,
    pub patient_letter_sent: ClockFigures,
}

/// One clock kind's figures: every started clock (one per signed case), those met by
/// their deadline, those not met and past it (as of the report), and the on-time share
/// of the clocks already decided (met, or past their deadline): `met_on_time` over
/// `clocks` minus those still running, one decimal place; `null` while none is decided.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ClockFigures {
    pub clocks: u32,
    pub met_on_time: u32,
    pub overdue: u32,
    pub on_time_percent: Option<f64>,
    #[serde(skip)]
    running: u32,
}

impl ClockFigures {
    fn add(&mut self, clock: &CommClock) {
        self.clocks += 1;
        self.met_on_time += u32::from(clock.met_on_time());
        self.overdue += u32::from(clock.overdue);
        self.running += u32::from(clock.met_at.is_none() && !clock.overdue);
    }

    fn finish(mut self) -> Self {
        let decided = self.clocks - self.running;
        self.on_time_percent = (decided > 0)
            .then(|| one_decimal(f64::from(self.met_on_time) * 100.0 / f64::from(decided)));
        self
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CaseCounts {
    pub booked: u32,
    pub discussed: u32,
    pub deferred: u32,
    pub withdrawn: u32,
    pub pending: u32,
    /// Listed, not discussed (following a standard of care).
    pub listed: u32,
    /// Decided by a consultant outside the meeting, with a reason.
    pub decided_outside_meeting: u32,
    /// Booked as a re-discussion of an earlier case.
    pub follow_up: u32,
    pub urgent: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct WaitFigures {
    /// Discussed cases measured.
    pub measured: u32,
    pub median: Option<f64>,
    pub p90: Option<i64>,
    pub within_6_weeks: u32,
    /// Percentage of `measured`, one decimal place.
    pub within_6_weeks_percent: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct OutcomeMix {
    /// Cases with a signed outcome.
    pub signed: u32,
    pub discharged_to_gp: u32,
    /// Cases referred onward (any destination but GP discharge).
    pub onward_referral: u32,
    /// Cases per onward destination (a case referred to two places counts in each).
    pub referrals: BTreeMap<&'static str, u32>,
    /// Cases with at least one investigation.
    pub with_investigations: u32,
    /// Investigations ordered, per kind.
    pub investigations: BTreeMap<&'static str, u32>,
    pub re_discuss: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TimePerCase {
    /// Discussed cases with a live start and end.
    pub timed: u32,
    pub median_actual_minutes: Option<f64>,
    pub median_allotted_minutes: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SessionFigures {
    pub total: u32,
    pub run: u32,
    pub cancelled: u32,
    pub quorate: u32,
    /// Distinct people per run session, summed.
    pub attendees: u32,
    pub median_attendees: Option<f64>,
    pub attendees_by_role: BTreeMap<&'static str, u32>,
}

/// What one (specialty, month) or (specialty, window) collects before the figures.
#[derive(Default)]
struct Acc {
    counts: CaseCounts,
    waits: Vec<i64>,
    outcomes: OutcomeMix,
    actual_seconds: Vec<f64>,
    allotted: Vec<f64>,
    sessions: SessionFigures,
    attendees: Vec<f64>,
    triage: TriageFigures,
    turnarounds: Vec<f64>,
    communication: CommunicationFigures,
}

impl Acc {
    fn add_case(&mut self, row: &CaseRow, session: &SessionRow) {
        let c = &mut self.counts;
        c.booked += 1;
        c.follow_up += u32::from(row.case.follow_up_of.is_some());
        c.urgent += u32::from(row.case.urgency == super::case::Urgency::Urgent);
        let class = CaseClass::of(row);
        match class {
            CaseClass::Discussed => c.discussed += 1,
            CaseClass::Listed => c.listed += 1,
            CaseClass::DecidedOutsideMeeting => c.decided_outside_meeting += 1,
            CaseClass::Deferred => c.deferred += 1,
            CaseClass::Withdrawn => c.withdrawn += 1,
            CaseClass::Pending => c.pending += 1,
        }
        // Every signed outcome counts in the mix; the wait to a decision counts for the
        // cases discussed and those decided outside their meeting (dated by their session),
        // the live timings for the discussed alone.
        let decided = matches!(
            class,
            CaseClass::Discussed | CaseClass::Listed | CaseClass::DecidedOutsideMeeting
        );
        if let (true, Some(outcome)) = (decided, &row.outcome) {
            add_outcome(&mut self.outcomes, outcome);
        }
        if matches!(class, CaseClass::Discussed | CaseClass::DecidedOutsideMeeting) {
            self.waits.push(days_to_discussion(row, session));
        }
        if class != CaseClass::Discussed {
            return;
        }
        if let Some(secs) = actual_seconds(row) {
            self.actual_seconds.push(secs as f64);
            self.allotted.push(f64::from(session.minutes_per_case));
        }
    }

    fn add_clocks(&mut self, clocks: &[CommClock]) {
        for clock in clocks {
            match clock.clock {
                ClockKind::ReferrerInformed => self.communication.referrer_informed.add(clock),
                ClockKind::PatientLetterSent => self.communication.patient_letter_sent.add(clock),
            }
        }
    }

    fn add_session(&mut self, session: &SessionRow, stays: &[&Attendance]) {
        let s = &mut self.sessions;
        s.total += 1;
        match session.state {
            SessionState::Cancelled => s.cancelled += 1,
            SessionState::Live | SessionState::Closed => {
                s.run += 1;
                s.quorate += u32::from(was_quorate(session, stays));
                let mut seen: HashSet<UserId> = HashSet::new();
                for stay in stays {
                    if seen.insert(stay.user_id) {
                        *s.attendees_by_role.entry(stay.role.as_str()).or_default() += 1;
                    }
                }
                s.attendees += seen.len() as u32;
                self.attendees.push(seen.len() as f64);
            }
            SessionState::Scheduled | SessionState::Published => {}
        }
    }

    fn add_triage(&mut self, row: &TriageRow) {
        let t = &mut self.triage;
        t.decisions += 1;
        match row.decision.as_str() {
            "accept" => t.accepted += 1,
            "return" => t.returned += 1,
            _ => t.listed += 1,
        }
        if let Some(reason) = &row.reason {
            *t.returns_by_reason.entry(reason.clone()).or_default() += 1;
        }
        let hours = (row.decided_at - row.submitted_at).num_seconds() as f64 / 3600.0;
        t.within_24_hours += u32::from(hours <= TRIAGE_TARGET_HOURS);
        self.turnarounds.push(hours);
    }

    fn figures(mut self, specialty: &Specialty, month: Option<Month>) -> Figures {
        self.waits.sort_unstable();
        let measured = self.waits.len() as u32;
        let within = self.waits.iter().filter(|d| **d <= SIX_WEEKS_DAYS).count() as u32;
        let waits_f: Vec<f64> = self.waits.iter().map(|d| *d as f64).collect();
        let mut sessions = self.sessions;
        sessions.median_attendees = median(&sorted_f64(self.attendees));
        Figures {
            specialty: specialty.as_str().to_string(),
            month: month.map(|m| m.to_string()),
            cases: self.counts,
            days_to_discussion: WaitFigures {
                measured,
                median: median(&waits_f),
                p90: nearest_rank(&self.waits, 90),
                within_6_weeks: within,
                within_6_weeks_percent: (measured > 0)
                    .then(|| one_decimal(f64::from(within) * 100.0 / f64::from(measured))),
            },
            outcomes: self.outcomes,
            time_per_case: TimePerCase {
                timed: self.actual_seconds.len() as u32,
                median_actual_minutes: median(&sorted_f64(self.actual_seconds))
                    .map(|s| one_decimal(s / 60.0)),
                median_allotted_minutes: median(&sorted_f64(self.allotted)).map(one_decimal),
            },
            sessions,
            triage: TriageFigures {
                median_turnaround_hours: median(&sorted_f64(self.turnarounds)).map(one_decimal),
                within_24_hours_percent: (self.triage.decisions > 0).then(|| {
                    let within = f64::from(self.triage.within_24_hours);
                    one_decimal(within * 100.0 / f64::from(self.triage.decisions))
                }),
                ..self.triage
            },
            communication: CommunicationFigures {
                referrer_informed: self.communication.referrer_informed.finish(),
                patient_letter_sent: self.communication.patient_letter_sent.finish(),
            },
        }
    }
}

fn add_outcome(mix: &mut OutcomeMix, outcome: &OutcomeSummary) {
    mix.signed += 1;
    let mut onward: Vec<ReferralDestination> = outcome
        .referrals
        .iter()
        .map(|r| r.destination)
        .filter(|d| *d != ReferralDestination::GpDischarge)
        .collect();
    onward.sort_by_key(|d| d.as_str());
    onward.dedup();
    if outcome.referrals.iter().any(|r| r.destination == ReferralDestination::GpDischarge) {
        mix.discharged_to_gp += 1;
    }
    if !onward.is_empty() {
        mix.onward_referral += 1;
    }
    for d in onward {
        *mix.referrals.entry(d.as_str()).or_default() += 1;
    }
    if !outcome.investigations.is_empty() {
        mix.with_investigations += 1;
    }
    for i in &outcome.investigations {
        *mix.investigations.entry(i.kind.as_str()).or_default() += 1;
    }
    if outcome.follow_up.kind == FollowUpKind::ReDiscuss {
        mix.re_discuss += 1;
    }
}

/// Whether, at some moment, the chair and `quorum_others` other consultants or
/// practitioners were present together. A stay without a leaving time lasts on.
pub fn was_quorate(session: &SessionRow, stays: &[&Attendance]) -> bool {
    // (time, +1 join / -1 leave, user); leaves sort before joins at the same instant, so
    // people who merely hand over do not count as together.
    let mut edges: Vec<(DateTime<Utc>, i32, UserId)> = Vec::new();
    for stay in stays {
        let counts = stay.user_id == session.chair_id
            || matches!(stay.role, Role::Consultant | Role::Practitioner);
        if !counts {
            continue;
        }
        edges.push((stay.joined_at, 1, stay.user_id));
        if let Some(left) = stay.left_at {
            edges.push((left, -1, stay.user_id));
        }
    }
    edges.sort_by_key(|(t, delta, _)| (*t, *delta));
    let mut present: HashMap<UserId, i32> = HashMap::new();
    for (_, delta, user) in edges {
        *present.entry(user).or_default() += delta;
        if delta > 0 {
            let here = |u: &UserId| present.get(u).is_some_and(|n| *n > 0);
            let others =
                present.iter().filter(|(u, n)| **u != session.chair_id && **n > 0).count() as u32;
            if here(&session.chair_id) && others >= session.quorum_others {
                return true;
            }
        }
    }
    false
}

/// Folds the rows into monthly figures and window totals for each specialty in scope
/// (every month listed, empty ones with zero counts and no medians). The communication
/// clocks are judged by `rules` as of `now`.
pub fn activity_report(
    window: &ReportWindow, specialties: &[Specialty], data: &ActivityData, rules: &ClockRules,
    now: DateTime<Utc>,
) -> ActivityReport {
    let sessions: HashMap<Uuid, &SessionRow> = data.sessions.iter().map(|s| (s.id, s)).collect();
    let mut stays: HashMap<Uuid, Vec<&Attendance>> = HashMap::new();
    for a in &data.attendance {
        stays.entry(a.session_id).or_default().push(a);
    }
    let mut accs: BTreeMap<(String, Option<Month>), Acc> = BTreeMap::new();
    for session in &data.sessions {
        let month = Month::of(session.starts_at);
        let own = stays.get(&session.id).map(Vec::as_slice).unwrap_or_default();
        for key in [Some(month), None] {
            accs.entry((session.specialty.as_str().to_string(), key))
                .or_default()
                .add_session(session, own);
        }
    }
    for row in &data.cases {
        let Some(session) = sessions.get(&row.case.session_id) else {
            continue;
        };
        let month = Month::of(session.starts_at);
        let clocks = row.clock.as_ref().map(|f| clocks_of(f, rules, now));
        for key in [Some(month), None] {
            let acc = accs.entry((session.specialty.as_str().to_string(), key)).or_default();
            acc.add_case(row, session);
            acc.add_clocks(clocks.as_ref().map(|c| c.as_slice()).unwrap_or_default());
        }
    }
    for row in &data.triage {
        let Some(session) = sessions.get(&row.session_id) else {
            continue;
        };
        let month = Month::of(session.starts_at);
        for key in [Some(month), None] {
            accs.entry((session.specialty.as_str().to_string(), key)).or_default().add_triage(row);
        }
    }
    let mut specialties = specialties.to_vec();
    specialties.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    let mut months = Vec::new();
    let mut totals = Vec::new();
    for specialty in &specialties {
        for month in window.months() {
            let acc =
                accs.remove(&(specialty.as_str().to_string(), Some(month))).unwrap_or_default();
            months.push(acc.figures(specialty, Some(month)));
        }
        let acc = accs.remove(&(specialty.as_str().to_string(), None)).unwrap_or_default();
        totals.push(acc.figures(specialty, None));
    }
    ActivityReport {
        from: window.from,
        to: window.to,
        time_zone: "Europe/London",
        specialties,
        months,
        totals,
    }
}

/// Columns only coordinators receive: the patient's identifiers, the practice and the
/// referrer's name.
const IDENTIFIED_COLUMNS: [&str; 6] = [
    "nhs_number",
    "given_name",
    "family_name",
    "date_of_birth",
    "gp_practice_code",
    "referrer_name",
];

/// The per-case CSV (RFC 4180, CRLF line ends, a header row), in session order. With
/// `identified` false (consultants) there is no NHS number, name, date of birth,
/// practice or referrer name: the case id, sex, ten-year age band and body site remain.
/// Free text (clinical question, history, notes, reasons, plan) is never exported.
pub fn activity_csv(data: &ActivityData, identified: bool) -> String {
    let sessions: HashMap<Uuid, &SessionRow> = data.sessions.iter().map(|s| (s.id, s)).collect();
    let mut rows: Vec<(&CaseRow, &SessionRow)> = data
        .cases
        .iter()
        .filter_map(|r| sessions.get(&r.case.session_id).map(|s| (r, *s)))
        .collect();
    rows.sort_by(|(a, sa), (b, sb)| {
        (sa.starts_at, sa.specialty.as_str(), a.case.booked_at, a.case.id).cmp(&(
            sb.starts_at,
            sb.specialty.as_str(),
            b.case.booked_at,
            b.case.id,
        ))
    });
    let mut header: Vec<&str> = vec![
        "case_id",
        "specialty",
        "session_id",
        "session_date",
        "month",
        "episode",
        "referral_source",
        "referrer_role",
        "referrer_id",
    ];
    if identified {
        header.extend(IDENTIFIED_COLUMNS);
    }
    header.extend([
        "sex",
        "age_band",
        "body_site",
        "urgency",
        "state",
        "seen_status",
        "first_booked_on",
        "discussed_on",
        "days_to_discussion",
        "within_6_weeks",
        "outcome_signed",
        "discharged_to_gp",
        "onward_referrals",
        "investigations",
        "mri",
        "follow_up",
        "allotted_minutes",
        "actual_minutes",
    ]);
    let mut out = String::with_capacity(256 * (rows.len() + 1));
    push_record(&mut out, header.iter().map(|h| Cow::Borrowed(*h)));
    for (row, session) in rows {
        let case = &row.case;
        let class = CaseClass::of(row);
        // Decided (in the meeting or outside it, dated by the session): the wait counts.
        let discussed = matches!(class, CaseClass::Discussed | CaseClass::DecidedOutsideMeeting);
        let session_date = local_date(session.starts_at);
        let mut fields: Vec<Cow<'_, str>> = vec![
            case.id.to_string().into(),
            session.specialty.as_str().into(),
            session.id.to_string().into(),
            session_date.to_string().into(),
            Month::of(session.starts_at).to_string().into(),
            if case.follow_up_of.is_some() { "follow_up" } else { "first" }.into(),
            // Where the referral came from (the proforma; blank before it existed), then
            // the role of whoever booked it.
            case.proforma
                .as_ref()
                .and_then(|p| p.referral_source)
                .map_or("", |s| s.as_str())
                .into(),
            row.referrer_role.as_str().into(),
            case.referrer_id.to_string().into(),
        ];
        if identified {
            let p = &case.patient;
            fields.extend([
                Cow::Owned(p.nhs_number.as_str().to_string()),
                p.given_name.as_str().into(),
                p.family_name.as_str().into(),
                p.date_of_birth.to_string().into(),
                p.gp_practice_code.as_str().into(),
                row.referrer_name.as_str().into(),
            ]);
        }
        let days = discussed.then(|| days_to_discussion(row, session));
        let outcome = row.outcome.as_ref();
        let yes_no = |b: bool| Cow::Borrowed(if b { "yes" } else { "no" });
        let blank_unless = |shown: bool, v: Cow<'static, str>| if shown { v } else { "".into() };
        fields.extend([
            case.patient.sex.as_str().into(),
            age_band(case.patient.date_of_birth, session_date).into(),
            case.body_site.as_str().into(),
            case.urgency.as_str().into(),
            case.state.as_str().into(),
            class.seen_status().into(),
            local_date(row.first_booked_at).to_string().into(),
            match discussed {
                true => local_date(discussed_at(row, session)).to_string().into(),
                false => "".into(),
            },
            days.map(|d| d.to_string()).unwrap_or_default().into(),
            blank_unless(discussed, yes_no(days.is_some_and(|d| d <= SIX_WEEKS_DAYS))),
            yes_no(outcome.is_some()),
            blank_unless(
                outcome.is_some(),
                yes_no(outcome.is_some_and(|o| {
                    o.referrals.iter().any(|r| r.destination == ReferralDestination::GpDischarge)
                })),
            ),
            outcome.map(onward_text).unwrap_or_default().into(),
            outcome.map(investigations_text).unwrap_or_default().into(),
            blank_unless(
                outcome.is_some(),
                yes_no(outcome.is_some_and(|o| {
                    o.investigations.iter().any(|i| i.kind == InvestigationKind::Mri)
                })),
            ),
            outcome.map(follow_up_text).unwrap_or_default().into(),
            session.minutes_per_case.to_string().into(),
            actual_seconds(row)
                .filter(|_| discussed)
                .map(|s| format!("{:.1}", s as f64 / 60.0))
                .unwrap_or_default()
                .into(),
        ]);
        push_record(&mut out, fields.into_iter());
    }
    out
}

/// `orthopaedics (urgent); pain_clinic (routine)`: onward referrals, GP discharge left
/// to its own column; no reasons (free text).
fn onward_text(o: &OutcomeSummary) -> String {
    o.referrals
        .iter()
        .filter(|r| r.destination != ReferralDestination::GpDischarge)
        .map(|r| format!("{} ({})", r.destination.as_str(), r.urgency.as_str()))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `mri lower back (urgent); bloods (routine)`: no notes (free text).
fn investigations_text(o: &OutcomeSummary) -> String {
    o.investigations
        .iter()
        .map(|i| match &i.site {
            Some(site) => format!("{} {} ({})", i.kind.as_str(), site.as_str(), i.urgency.as_str()),
            None => format!("{} ({})", i.kind.as_str(), i.urgency.as_str()),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn follow_up_text(o: &OutcomeSummary) -> String {
    match (o.follow_up.kind, o.follow_up.weeks) {
        (FollowUpKind::Review, Some(w)) => format!("review in {w} weeks"),
        (FollowUpKind::Review, None) => "review".to_string(),
        (FollowUpKind::ReDiscuss, _) => "re_discuss".to_string(),
        (FollowUpKind::None, _) => "none".to_string(),
    }
}

fn push_record<'a>(out: &mut String, fields: impl Iterator<Item = Cow<'a, str>>) {
    for (i, field) in fields.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&csv_field(&field));
    }
    out.push_str("\r\n");
}

/// One CSV field: quoted (with quotes doubled) when it holds a comma, quote or line
/// break; and, so a spreadsheet never runs it as a formula, prefixed with `'` when it
/// starts with `=`, `+`, `-`, `@`, tab or carriage return.
pub fn csv_field(raw: &str) -> Cow<'_, str> {
    let formula = raw.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = raw.contains([',', '"', '\n', '\r']);
    match (formula, quote) {
        (false, false) => Cow::Borrowed(raw),
        (true, false) => Cow::Owned(format!("'{raw}")),
        (formula, true) => Cow::Owned(format!(
            "\"{}{}\"",
            if formula { "'" } else { "" },
            raw.replace('"', "\"\"")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_nearest_rank_percentiles() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[7.0]), Some(7.0));
        assert_eq!(median(&[1.0, 2.0, 3.0, 10.0]), Some(2.5));
        assert_eq!(median(&[1.0, 2.0, 3.0, 4.0, 100.0]), Some(3.0));
        let v: Vec<i64> = (1..=10).collect();
        // ⌈0.9·10⌉ = 9 → the 9th value.
        assert_eq!(nearest_rank(&v, 90), Some(9));
        // ⌈0.9·11⌉ = 10.
        let v: Vec<i64> = (1..=11).collect();
        assert_eq!(nearest_rank(&v, 90), Some(10));
        // ⌈0.9·3⌉ = 3: with few values the 90th percentile is the largest.
        assert_eq!(nearest_rank(&[5, 6, 40], 90), Some(40));
        assert_eq!(nearest_rank(&[5], 90), Some(5));
        assert_eq!(nearest_rank::<i64>(&[], 90), None);
        assert_eq!(nearest_rank(&[1, 2, 3, 4], 50), Some(2));
    }

    #[test]
    fn windows_are_uk_local_dates() {
        let w = ReportWindow::parse(Some("2026-01-01"), Some("2026-03-31")).unwrap();
        assert_eq!(w.starts_at().to_rfc3339(), "2026-01-01T00:00:00+00:00");
        // 1 April is in British Summer Time: local midnight is 23:00 UTC the day before.
        assert_eq!(w.ends_at().to_rfc3339(), "2026-03-31T23:00:00+00:00");
        let months: Vec<String> = w.months().iter().map(Month::to_string).collect();
        assert_eq!(months, ["2026-01", "2026-02", "2026-03"]);
        let one_day = ReportWindow::parse(Some("2026-12-31"), Some("2026-12-31")).unwrap();
        assert_eq!(one_day.months().len(), 1);
        let over_new_year = ReportWindow::parse(Some("2026-12-15"), Some("2027-01-02")).unwrap();
        assert_eq!(over_new_year.months().len(), 2);
        // 00:30 BST on 1 June is still 31 May in UTC, but June in the report.
        assert_eq!(Month::of("2026-05-31T23:30:00Z".parse().unwrap()).to_string(), "2026-06");
    }

    #[test]
    fn bad_windows_and_formats_are_refused_with_codes() {
        let code = |f: Option<&str>, t: Option<&str>| ReportWindow::parse(f, t).unwrap_err().code;
        assert_eq!(code(None, Some("2026-01-01")), "required");
        assert_eq!(code(Some("2026-01-01"), Some("")), "required");
        assert_eq!(code(Some("2026-13-01"), Some("2026-12-01")), "invalid_date");
        assert_eq!(code(Some("01/01/2026"), Some("2026-12-01")), "invalid_date");
        assert_eq!(code(Some("2026-02-30"), Some("2026-03-01")), "invalid_date");
        assert_eq!(code(Some("2026-03-01"), Some("2026-02-28")), "invalid_window");
        assert_eq!(code(Some("2020-01-01"), Some("2026-01-01")), "window_too_long");
        assert_eq!(ReportFormat::parse(None).unwrap(), ReportFormat::Json);
        assert_eq!(ReportFormat::parse(Some("csv")).unwrap(), ReportFormat::Csv);
        assert_eq!(ReportFormat::parse(Some("xlsx")).unwrap_err().code, "unknown_format");
    }

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_field("-1,2"), "\"'-1,2\"");
        assert_eq!(csv_field("@x"), "'@x");
        assert_eq!(csv_field(""), "");
    }

    fn stay(user: UserId, role: Role, from: &str, to: Option<&str>) -> Attendance {
        Attendance {
            session_id: Uuid::nil(),
            user_id: user,
            role,
            joined_at: from.parse().unwrap(),
            left_at: to.map(|t| t.parse().unwrap()),
        }
    }

    #[test]
    fn quorum_needs_the_chair_and_others_together() {
        let chair = UserId::new();
        let session = SessionRow {
            id: Uuid::nil(),
            specialty: Specialty::parse("spinal").unwrap(),
            starts_at: "2026-01-06T12:30:00Z".parse().unwrap(),
            state: SessionState::Closed,
            minutes_per_case: 10,
            chair_id: chair,
            quorum_others: 1,
        };
        let other = UserId::new();
        let trainee = UserId::new();
        let chair_early =
            stay(chair, Role::Consultant, "2026-01-06T12:30:00Z", Some("2026-01-06T12:40:00Z"));
        let other_late =
            stay(other, Role::Practitioner, "2026-01-06T12:40:00Z", Some("2026-01-06T13:00:00Z"));
        let trainee_all = stay(trainee, Role::Trainee, "2026-01-06T12:30:00Z", None);
        // The chair left as the other joined; the trainee never counts.
        assert!(!was_quorate(&session, &[&chair_early, &other_late, &trainee_all]));
        let chair_back = stay(chair, Role::Consultant, "2026-01-06T12:50:00Z", None);
        assert!(was_quorate(&session, &[&chair_early, &other_late, &trainee_all, &chair_back]));
        let mut two = session.clone();
        two.quorum_others = 2;
        assert!(!was_quorate(&two, &[&chair_early, &other_late, &chair_back]));
        let mut none_needed = session;
        none_needed.quorum_others = 0;
        assert!(was_quorate(&none_needed, &[&chair_early]));
    }
}
