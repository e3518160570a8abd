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
use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, Days, NaiveDate, TimeZone, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::body_site::BodySite;
use super::case::age_band;
use super::case::{CaseState, PatientDetails, Urgency};
use super::communication::{judge, ClockRules, Judged};
use super::measures::{
    default_targets, percent, within_target, Distribution, MixFacts, WorkingDays,
};
use super::measures::{WaitMeasure, WaitTarget};
use super::outcome::{FollowUpKind, OutcomeSummary};
use super::outcome::{InvestigationKind, ReferralDestination};
use super::parse::ParseError;
use super::person_name::PersonName;
use super::proforma::ReferralSource;
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

/// An interval of instants, `[from, to)`.
pub type Span = (DateTime<Utc>, DateTime<Utc>);

/// The whole UK months inside `[starts_at, ends_at)` (each from local midnight on its
/// first day to local midnight on the next month's), and the parts of the interval
/// outside them (at most one before and one after; the whole interval when no month fits).
pub fn whole_months(starts_at: DateTime<Utc>, ends_at: DateTime<Utc>) -> (Vec<Span>, Vec<Span>) {
    let month_start =
        |m: Month| local_midnight(NaiveDate::from_ymd_opt(m.year, m.month, 1).unwrap_or_default());
    let mut months = Vec::new();
    let mut m = Month::of(starts_at);
    loop {
        let (lo, hi) = (month_start(m), month_start(m.next()));
        if lo >= ends_at {
            break;
        }
        if lo >= starts_at && hi <= ends_at {
            months.push((lo, hi));
        }
        m = m.next();
    }
    let edges = match (months.first(), months.last()) {
        (Some((first, _)), Some((_, last))) => {
            [(starts_at, *first), (*last, ends_at)].into_iter().filter(|(a, b)| a < b).collect()
        }
        _ => vec![(starts_at, ends_at)],
    };
    (months, edges)
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
}

/// What the per-case CSV shows of a case: its own columns without any free text (the
/// clinical question, history, notes and the proforma's text are never exported, so
/// they are never read for it).
#[derive(Clone, Debug)]
pub struct ExportedCase {
    pub id: Uuid,
    pub session_id: Uuid,
    pub referrer_id: UserId,
    pub patient: PatientDetails,
    pub urgency: Urgency,
    pub body_site: BodySite,
    pub state: CaseState,
    pub booked_at: DateTime<Utc>,
    pub follow_up_of: Option<Uuid>,
    /// It follows a standard plan (issue 15).
    pub planned: bool,
    /// From the proforma; `None` for a case booked before the proforma existed.
    pub referral_received_on: Option<NaiveDate>,
    pub referral_source: Option<ReferralSource>,
}

/// A case booked into a session of the window, with what the store derives for it (the
/// same dates and day counts the tallies group by).
#[derive(Clone, Debug)]
pub struct CaseRow {
    pub case: ExportedCase,
    pub referrer_role: Role,
    pub referrer_name: PersonName,
    /// The latest signed outcome version, without free text.
    pub outcome: Option<OutcomeSummary>,
    /// Its outcome was signed without a discussion, with a reason (issue 16).
    pub decided_outside_meeting: bool,
    /// The UK local date of the episode's first booking (before any deferral).
    pub booked_on: NaiveDate,
    /// The UK local date of the discussion: its live start, else its session's start.
    pub discussed_on: NaiveDate,
    /// The UK local date of its first triage decision.
    pub triaged_on: Option<NaiveDate>,
    /// Calendar days from `booked_on` to `discussed_on`.
    pub days_from_booking: i64,
    /// Calendar days from the referral (else `booked_on`) to `discussed_on`.
    pub days_from_referral: i64,
    /// Whole seconds from its live start to its live end, when it had both.
    pub live_seconds: Option<i64>,
}

/// Everything the per-case CSV reads, fetched together by the store.
#[derive(Clone, Debug, Default)]
pub struct ActivityData {
    /// In start order.
    pub sessions: Vec<SessionRow>,
    pub cases: Vec<CaseRow>,
}

/// The triage turnaround target: a decision within 24 hours (in whole minutes) of the
/// booking reaching triage.
pub const TRIAGE_TARGET_MINUTES: i64 = 24 * 60;

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
        Self::classify(row.case.state, row.case.planned, row.decided_outside_meeting)
    }

    /// The class of a case row in `state`, following a standard plan or not, signed
    /// outside its meeting or not.
    pub fn classify(state: CaseState, planned: bool, outside_meeting: bool) -> Self {
        use CaseState::*;
        match state {
            OutcomeSigned if outside_meeting => Self::DecidedOutsideMeeting,
            Listed => Self::Listed,
            OutcomeSigned if planned => Self::Listed,
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

/// A wait as reported: a wait that ends before it starts (a referral date typed after
/// the discussion) waited no time.
pub fn waited(days: i64) -> i64 {
    days.max(0)
}

/// The conventional median of sorted values: the middle one, or the mean of the two
/// middle ones. `None` when there are none.
pub fn median(sorted: &[f64]) -> Option<f64> {
    median_by(sorted.len(), |rank| sorted.get(rank - 1).copied())
}

/// The conventional median of `n` sorted values read by their 1-based rank with `at`.
pub fn median_by(n: usize, at: impl Fn(usize) -> Option<f64>) -> Option<f64> {
    match n {
        0 => None,
        _ if n % 2 == 1 => at(n / 2 + 1),
        _ => Some((at(n / 2)? + at(n / 2 + 1)?) / 2.0),
    }
}

/// The 1-based rank of the nearest-rank `p`th percentile of `n` values: ⌈p·n/100⌉.
/// `None` when there are none.
pub fn nearest_rank(n: usize, p: u32) -> Option<usize> {
    (n > 0).then(|| (p as usize * n).div_ceil(100).clamp(1, n))
}

/// Rounds to one decimal place (figures shown to people).
fn one_decimal(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
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
    pub referral_waits: ReferralWaits,
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
    fn add(&mut self, clock: Judged, n: u32) {
        let count = |yes: bool| if yes { n } else { 0 };
        self.clocks += n;
        self.met_on_time += count(clock.met_on_time);
        self.overdue += count(clock.overdue);
        self.running += count(!clock.met && !clock.overdue);
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
    /// Episodes begun: case rows not made by a deferral and not follow-ups (issue 17).
    pub referrals: u32,
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
    /// Cases with an MRI requested.
    pub mri_requested: u32,
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

/// One group of case rows, sessions or triage decisions, as the store aggregates them:
/// the rows of one specialty and one group (a month `YYYY-MM`, or a GP practice's ODS
/// code) that share what the variant names, `n` of them.
#[derive(Clone, Debug, PartialEq)]
pub struct TallyRow {
    pub specialty: Specialty,
    pub group: String,
    pub tally: Tally,
    pub n: u32,
}

/// What a group of rows shares (see [`TallyRow`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Tally {
    /// Case rows. `moved`: a row a deferral made (its episode began elsewhere).
    Cases { class: CaseClass, follow_up: bool, urgency: Urgency, moved: bool },
    /// Case rows with UK local calendar days from the episode's first booking to the
    /// discussion (its live start, else its session's start).
    FromBooking { class: CaseClass, days: i64 },
    /// First-episode case rows (not follow-ups) with UK local calendar days from the
    /// referral to the discussion; `unreferred` rows have no referral date and count from
    /// the episode's first booking.
    FromReferral { class: CaseClass, urgency: Urgency, days: i64, unreferred: bool },
    /// Case rows triaged: from the referral date (or first booking) to the UK local date
    /// of the first triage decision, in calendar days and in working days
    /// ([`WorkingDays`]).
    ToTriage { urgency: Urgency, days: i64, working: WorkingDays, unreferred: bool },
    /// Case rows with a signed outcome, by the latest signed version's mix.
    Outcome { class: CaseClass, mix: MixFacts },
    /// Case rows with a live start and end: seconds between, and minutes allotted.
    Timing { class: CaseClass, seconds: i64, allotted_minutes: u32 },
    /// Signed case rows by the UK local dates their clocks started and were met.
    Clocks { signed_on: NaiveDate, informed_on: Option<NaiveDate>, letter_on: Option<NaiveDate> },
    /// Triage decisions, with whole minutes from reaching triage to the decision.
    Triage { decision: String, reason: Option<String>, minutes: i64 },
    /// Sessions.
    Sessions { state: SessionState, quorate: bool },
    /// Sessions with this many distinct attendees.
    Attendees { state: SessionState, people: u32 },
    /// Distinct attendees of a role, summed over sessions.
    Roles { state: SessionState, role: Role },
}

/// The waits from the referral (issue 17), each judged against the specialty's targets.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ReferralWaits {
    pub referral_to_triage: WaitFromReferral,
    pub referral_to_discussion: WaitFromReferral,
}

/// One wait's figures: cases measured (those counted from their first booking, having
/// no referral date, among them), median and nearest-rank 90th percentile in calendar
/// days, each target's share, and the cases per week waited (for the chart).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct WaitFromReferral {
    pub measured: u32,
    pub counted_from_booking: u32,
    pub median_days: Option<f64>,
    pub p90_days: Option<i64>,
    pub targets: Vec<TargetResult>,
    pub weeks: Vec<u32>,
}

/// A target and how the cases it covers did: `within` of `cases`, `percent` of them
/// (one decimal place), and whether that meets the target's share (`null` without
/// cases).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TargetResult {
    #[serde(flatten)]
    pub target: WaitTarget,
    pub cases: u32,
    pub within: u32,
    pub percent: Option<f64>,
    pub met: Option<bool>,
}

impl TargetResult {
    fn new(target: WaitTarget, within: u32, cases: u32) -> Self {
        let percent = percent(within, cases);
        let met = (cases > 0)
            .then(|| f64::from(within) * 100.0 >= target.target_percent * f64::from(cases));
        Self { target, cases, within, percent, met }
    }
}

/// What the targets and clocks are judged by.
pub struct Judging<'a> {
    pub targets: &'a HashMap<Specialty, Vec<WaitTarget>>,
    pub clocks: &'a ClockRules,
    pub now: DateTime<Utc>,
}

impl Judging<'_> {
    fn targets_of(&self, specialty: &Specialty, measure: WaitMeasure) -> Vec<WaitTarget> {
        let all = self.targets.get(specialty).cloned().unwrap_or_else(default_targets);
        all.into_iter().filter(|t| t.measure == measure).collect()
    }
}

/// What one (specialty, month), (specialty, window) or practice collects before the
/// figures.
#[derive(Default)]
pub(super) struct Acc {
    pub(super) counts: CaseCounts,
    from_booking: Distribution,
    /// Referral to discussion, per urgency.
    pub(super) from_referral: BTreeMap<&'static str, Distribution>,
    discussion_unreferred: u32,
    /// Referral to triage: (urgency, calendar days, working days) → cases.
    to_triage: BTreeMap<(&'static str, i64, WorkingDays), u32>,
    triage_unreferred: u32,
    pub(super) outcomes: OutcomeMix,
    actual_seconds: Distribution,
    allotted: Distribution,
    sessions: SessionFigures,
    attendees: Distribution,
    pub(super) triage: TriageFigures,
    turnaround_minutes: Distribution,
    communication: CommunicationFigures,
    /// Case rows decided: discussed, listed, or decided outside the meeting.
    pub(super) decided: u32,
}

/// The classes whose wait to a decision counts: discussed, or decided outside the
/// meeting (dated by their session).
fn wait_counts(class: CaseClass) -> bool {
    matches!(class, CaseClass::Discussed | CaseClass::DecidedOutsideMeeting)
}

/// The classes whose signed outcome counts in the mix.
fn decided(class: CaseClass) -> bool {
    matches!(class, CaseClass::Discussed | CaseClass::Listed | CaseClass::DecidedOutsideMeeting)
}

impl Acc {
    pub(super) fn add(&mut self, tally: &Tally, n: u32, judging: &Judging<'_>) {
        match tally {
            Tally::Cases { class, follow_up, urgency, moved } => {
                let c = &mut self.counts;
                c.referrals += if !follow_up && !moved { n } else { 0 };
                c.booked += n;
                c.follow_up += if *follow_up { n } else { 0 };
                c.urgent += if *urgency == Urgency::Urgent { n } else { 0 };
                *match class {
                    CaseClass::Discussed => &mut c.discussed,
                    CaseClass::Listed => &mut c.listed,
                    CaseClass::DecidedOutsideMeeting => &mut c.decided_outside_meeting,
                    CaseClass::Deferred => &mut c.deferred,
                    CaseClass::Withdrawn => &mut c.withdrawn,
                    CaseClass::Pending => &mut c.pending,
                } += n;
                self.decided += if decided(*class) { n } else { 0 };
            }
            Tally::FromBooking { class, days } if wait_counts(*class) => {
                self.from_booking.add(waited(*days), n)
            }
            Tally::FromReferral { class, urgency, days, unreferred } if wait_counts(*class) => {
                self.from_referral.entry(urgency.as_str()).or_default().add(waited(*days), n);
                self.discussion_unreferred += if *unreferred { n } else { 0 };
            }
            Tally::ToTriage { urgency, days, working, unreferred } => {
                *self.to_triage.entry((urgency.as_str(), *days, *working)).or_default() += n;
                self.triage_unreferred += if *unreferred { n } else { 0 };
            }
            Tally::Outcome { class, mix } if decided(*class) => {
                add_outcome(&mut self.outcomes, mix, n)
            }
            Tally::Timing { class: CaseClass::Discussed, seconds, allotted_minutes } => {
                self.actual_seconds.add(*seconds, n);
                self.allotted.add(i64::from(*allotted_minutes), n);
            }
            Tally::Clocks { signed_on, informed_on, letter_on } => {
                let (rules, now) = (judging.clocks, judging.now);
                let c = &mut self.communication;
                let days = rules.referrer_working_days;
                c.referrer_informed
                    .add(judge(*signed_on, *informed_on, days, &rules.holidays, now), n);
                let days = rules.patient_working_days;
                c.patient_letter_sent
                    .add(judge(*signed_on, *letter_on, days, &rules.holidays, now), n);
            }
            Tally::Triage { decision, reason, minutes } => {
                let t = &mut self.triage;
                t.decisions += n;
                *match decision.as_str() {
                    "accept" => &mut t.accepted,
                    "return" => &mut t.returned,
                    _ => &mut t.listed,
                } += n;
                if let Some(reason) = reason {
                    *t.returns_by_reason.entry(reason.clone()).or_default() += n;
                }
                t.within_24_hours += if *minutes <= TRIAGE_TARGET_MINUTES { n } else { 0 };
                self.turnaround_minutes.add(*minutes, n);
            }
            Tally::Sessions { state, quorate } => {
                let s = &mut self.sessions;
                s.total += n;
                match state {
                    SessionState::Cancelled => s.cancelled += n,
                    SessionState::Live | SessionState::Closed => {
                        s.run += n;
                        s.quorate += if *quorate { n } else { 0 };
                    }
                    SessionState::Scheduled | SessionState::Published => {}
                }
            }
            Tally::Attendees { state: SessionState::Live | SessionState::Closed, people } => {
                self.sessions.attendees += people * n;
                self.attendees.add(i64::from(*people), n);
            }
            Tally::Roles { state: SessionState::Live | SessionState::Closed, role } => {
                *self.sessions.attendees_by_role.entry(role.as_str()).or_default() += n;
            }
            _ => {}
        }
    }

    /// Referral to discussion, all urgencies together.
    pub(super) fn referral_to_discussion(&self) -> Distribution {
        let mut all = Distribution::default();
        for days in self.from_referral.values() {
            all.merge(days);
        }
        all
    }

    /// Referral to triage decision, in calendar days.
    pub(super) fn referral_to_triage(&self) -> Distribution {
        let mut days = Distribution::default();
        for ((_, calendar, _), n) in &self.to_triage {
            days.add(waited(*calendar), *n);
        }
        days
    }

    fn referral_waits(&self, specialty: &Specialty, judging: &Judging<'_>) -> ReferralWaits {
        let all = self.referral_to_discussion();
        let discussion = judging
            .targets_of(specialty, WaitMeasure::ReferralToDiscussion)
            .into_iter()
            .map(|target| {
                let mut covered = Distribution::default();
                for (urgency, days) in &self.from_referral {
                    if Urgency::parse(urgency).is_ok_and(|u| target.urgency.covers(u)) {
                        covered.merge(days);
                    }
                }
                let within = covered.at_most(i64::from(target.within_days));
                TargetResult::new(target, within, covered.count())
            })
            .collect();
        let triage_days = self.referral_to_triage();
        let triage = judging
            .targets_of(specialty, WaitMeasure::ReferralToTriage)
            .into_iter()
            .map(|target| {
                let (mut cases, mut within) = (0, 0);
                for ((urgency, calendar, working), n) in &self.to_triage {
                    if Urgency::parse(urgency).is_ok_and(|u| target.urgency.covers(u)) {
                        cases += n;
                        within += if within_target(*calendar, *working, &target) { *n } else { 0 };
                    }
                }
                TargetResult::new(target, within, cases)
            })
            .collect();
        let figures = |days: &Distribution, unreferred, targets| WaitFromReferral {
            measured: days.count(),
            counted_from_booking: unreferred,
            median_days: days.median(),
            p90_days: days.percentile(90),
            targets,
            weeks: days.weeks(),
        };
        ReferralWaits {
            referral_to_triage: figures(&triage_days, self.triage_unreferred, triage),
            referral_to_discussion: figures(&all, self.discussion_unreferred, discussion),
        }
    }

    fn figures(
        self, specialty: &Specialty, month: Option<Month>, judging: &Judging<'_>,
    ) -> Figures {
        let referral_waits = self.referral_waits(specialty, judging);
        let waits = &self.from_booking;
        let (measured, within) = (waits.count(), waits.at_most(SIX_WEEKS_DAYS));
        let mut sessions = self.sessions;
        sessions.median_attendees = self.attendees.median();
        let minutes = |d: &Distribution| d.median().map(|m| one_decimal(m / 60.0));
        Figures {
            specialty: specialty.as_str().to_string(),
            month: month.map(|m| m.to_string()),
            cases: self.counts,
            days_to_discussion: WaitFigures {
                measured,
                median: waits.median(),
                p90: waits.percentile(90),
                within_6_weeks: within,
                within_6_weeks_percent: percent(within, measured),
            },
            referral_waits,
            outcomes: self.outcomes,
            time_per_case: TimePerCase {
                timed: self.actual_seconds.count(),
                median_actual_minutes: minutes(&self.actual_seconds),
                median_allotted_minutes: self.allotted.median().map(one_decimal),
            },
            sessions,
            triage: TriageFigures {
                median_turnaround_hours: minutes(&self.turnaround_minutes),
                within_24_hours_percent: percent(
                    self.triage.within_24_hours,
                    self.triage.decisions,
                ),
                ..self.triage
            },
            communication: CommunicationFigures {
                referrer_informed: self.communication.referrer_informed.finish(),
                patient_letter_sent: self.communication.patient_letter_sent.finish(),
            },
        }
    }
}

fn add_outcome(mix: &mut OutcomeMix, facts: &MixFacts, n: u32) {
    mix.signed += n;
    mix.discharged_to_gp += if facts.discharged { n } else { 0 };
    mix.onward_referral += if facts.onward().next().is_some() { n } else { 0 };
    for d in facts.onward() {
        if let Some(d) = ReferralDestination::ALL.iter().find(|k| k.as_str() == d) {
            *mix.referrals.entry(d.as_str()).or_default() += n;
        }
    }
    mix.with_investigations += if facts.investigations().next().is_some() { n } else { 0 };
    for kind in facts.investigations() {
        if let Some(k) = InvestigationKind::ALL.iter().find(|k| k.as_str() == kind) {
            *mix.investigations.entry(k.as_str()).or_default() += n;
        }
    }
    mix.re_discuss += if facts.re_discuss { n } else { 0 };
    mix.mri_requested += if facts.mri() { n } else { 0 };
}

/// Folds the store's tallies into monthly figures and window totals for each specialty
/// in scope (every month listed, empty ones with zero counts and no medians). Targets
/// and communication clocks are judged by `judging`.
pub fn activity_report(
    window: &ReportWindow, specialties: &[Specialty], tallies: &[TallyRow], judging: &Judging<'_>,
) -> ActivityReport {
    let mut accs: BTreeMap<(&str, Option<&str>), Acc> = BTreeMap::new();
    for row in tallies {
        for key in [Some(row.group.as_str()), None] {
            accs.entry((row.specialty.as_str(), key)).or_default().add(&row.tally, row.n, judging);
        }
    }
    let month_keys: Vec<(Month, String)> =
        window.months().into_iter().map(|m| (m, m.to_string())).collect();
    let mut specialties = specialties.to_vec();
    specialties.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    let mut months = Vec::new();
    let mut totals = Vec::new();
    for specialty in &specialties {
        for (month, key) in &month_keys {
            let acc = accs.remove(&(specialty.as_str(), Some(key.as_str()))).unwrap_or_default();
            months.push(acc.figures(specialty, Some(*month), judging));
        }
        let acc = accs.remove(&(specialty.as_str(), None)).unwrap_or_default();
        totals.push(acc.figures(specialty, None, judging));
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
        "referral_received_on",
        "wait_counted_from",
        "triaged_on",
        "days_referral_to_triage",
        "days_referral_to_discussion",
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
            case.referral_source.map_or("", |s| s.as_str()).into(),
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
        let days = discussed.then(|| waited(row.days_from_booking));
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
            row.booked_on.to_string().into(),
            match discussed {
                true => row.discussed_on.to_string().into(),
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
            row.live_seconds
                .filter(|_| class == CaseClass::Discussed)
                .map(|s| format!("{:.1}", s as f64 / 60.0))
                .unwrap_or_default()
                .into(),
        ]);
        // The waits from the referral: first episodes only (not follow-ups), counted from
        // the first booking when the case has no referral date.
        let referred = case.referral_received_on;
        let first = case.follow_up_of.is_none();
        let start = referred.unwrap_or(row.booked_on);
        fields.extend([
            referred.map(|d| d.to_string()).unwrap_or_default().into(),
            if referred.is_some() { "referral" } else { "first_booking" }.into(),
            row.triaged_on.map(|d| d.to_string()).unwrap_or_default().into(),
            row.triaged_on
                .filter(|_| first)
                .map(|d| waited((d - start).num_days()).to_string())
                .unwrap_or_default()
                .into(),
            match discussed && first {
                true => waited(row.days_from_referral).to_string().into(),
                false => "".into(),
            },
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
        // ⌈0.9·10⌉ = 9 → the 9th value.
        assert_eq!(nearest_rank(10, 90), Some(9));
        // ⌈0.9·11⌉ = 10.
        assert_eq!(nearest_rank(11, 90), Some(10));
        // ⌈0.9·3⌉ = 3: with few values the 90th percentile is the largest.
        assert_eq!(nearest_rank(3, 90), Some(3));
        assert_eq!(nearest_rank(1, 90), Some(1));
        assert_eq!(nearest_rank(0, 90), None);
        assert_eq!(nearest_rank(4, 50), Some(2));
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
    fn windows_split_into_whole_uk_months_and_edges() {
        let w = ReportWindow::parse(Some("2026-03-15"), Some("2026-06-30")).unwrap();
        let (months, edges) = whole_months(w.starts_at(), w.ends_at());
        let text = |spans: &[Span]| -> Vec<String> {
            spans.iter().map(|(a, b)| format!("{} {}", a.to_rfc3339(), b.to_rfc3339())).collect()
        };
        assert_eq!(
            text(&months),
            [
                // April to June: BST, local midnight is 23:00 UTC the day before.
                "2026-03-31T23:00:00+00:00 2026-04-30T23:00:00+00:00",
                "2026-04-30T23:00:00+00:00 2026-05-31T23:00:00+00:00",
                "2026-05-31T23:00:00+00:00 2026-06-30T23:00:00+00:00",
            ]
        );
        assert_eq!(text(&edges), ["2026-03-15T00:00:00+00:00 2026-03-31T23:00:00+00:00"]);
        let short = ReportWindow::parse(Some("2026-02-03"), Some("2026-02-10")).unwrap();
        let (months, edges) = whole_months(short.starts_at(), short.ends_at());
        assert!(months.is_empty());
        assert_eq!(edges, [(short.starts_at(), short.ends_at())]);
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
}
