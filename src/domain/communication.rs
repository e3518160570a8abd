//! Communication clocks after a signed outcome (issue 16): working days (weekends and
//! England and Wales bank holidays skipped), each clock's deadline (the end of a UK local
//! day), and whether it was met on time. Pure: the bank holidays and the deliveries that
//! meet a clock are read by the store, "now" comes from the app's clock.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::parse::{bounded_text, ParseError};
use super::schedule::CLINIC_TZ;
use super::time_window::parse_calendar_date;

/// A day on which no working-day clock runs, besides weekends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BankHoliday {
    pub date: NaiveDate,
    pub name: String,
}

/// `POST /api/bank-holidays` as it arrives.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct BankHolidayRequest {
    pub date: String,
    pub name: String,
}

impl TryFrom<BankHolidayRequest> for BankHoliday {
    type Error = ParseError;

    /// A `YYYY-MM-DD` date, 1900–2200 (`422 invalid_date`), and a name of 1–100
    /// characters.
    fn try_from(r: BankHolidayRequest) -> Result<Self, ParseError> {
        let date = parse_calendar_date(r.date.trim(), "date")?;
        Ok(Self { date, name: bounded_text(&r.name, "name", 100, false)? })
    }
}

/// Whether `day` is a working day: not a Saturday, Sunday or listed bank holiday.
pub fn is_working_day(day: NaiveDate, holidays: &BTreeSet<NaiveDate>) -> bool {
    !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) && !holidays.contains(&day)
}

/// The `n`th working day after `day` (`day` itself when `n` is 0).
pub fn add_working_days(day: NaiveDate, n: u32, holidays: &BTreeSet<NaiveDate>) -> NaiveDate {
    let mut d = day;
    for _ in 0..n {
        d = d + Days::new(1);
        while !is_working_day(d, holidays) {
            d = d + Days::new(1);
        }
    }
    d
}

/// The last second of `day` in UK local time.
pub fn end_of_local_day(day: NaiveDate) -> DateTime<Utc> {
    let last = day.and_time(NaiveTime::from_hms_opt(23, 59, 59).unwrap_or_default());
    CLINIC_TZ
        .from_local_datetime(&last)
        .latest()
        .map(|t| t.with_timezone(&Utc))
        // 23:59:59 always exists in Europe/London (its changes are at 01:00 and 02:00).
        .unwrap_or_else(|| last.and_utc())
}

/// Which clock: the referrer told (the GP letter reached them), or the patient's letter
/// sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClockKind {
    ReferrerInformed,
    PatientLetterSent,
}

impl ClockKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ClockKind::ReferrerInformed => "referrer_informed",
            ClockKind::PatientLetterSent => "patient_letter_sent",
        }
    }
}

/// The working days each clock allows (`letters.referrer_working_days`,
/// `letters.patient_working_days`) and the bank holidays they skip.
#[derive(Clone, Debug, Default)]
pub struct ClockRules {
    pub referrer_working_days: u32,
    pub patient_working_days: u32,
    pub holidays: BTreeSet<NaiveDate>,
}

/// What the store knows about one signed case: when its outcome was first signed, when
/// each clock was first met (any version's letter counts), and its current letters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClockFacts {
    pub case_id: Uuid,
    pub signed_at: DateTime<Utc>,
    /// The first GP-letter delivery to the referrer sent (email) or printed (post).
    pub referrer_informed_at: Option<DateTime<Utc>>,
    /// The first patient-letter delivery to the patient sent or printed.
    pub patient_letter_sent_at: Option<DateTime<Utc>>,
    pub gp_letter_id: Option<Uuid>,
    pub patient_letter_id: Option<Uuid>,
}

/// One clock of one case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CommClock {
    pub case_id: Uuid,
    /// The current letter that meets it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub letter_id: Option<Uuid>,
    pub clock: ClockKind,
    /// The first signing.
    pub started_at: DateTime<Utc>,
    /// The UK local day it is due by, and that day's last second.
    pub due_on: NaiveDate,
    pub due_at: DateTime<Utc>,
    #[serde(skip)]
    pub met_at: Option<DateTime<Utc>>,
    /// Not met and past `due_at` (as of the time it was evaluated).
    pub overdue: bool,
}

impl CommClock {
    /// Met by its deadline.
    pub fn met_on_time(&self) -> bool {
        self.met_at.is_some_and(|m| m <= self.due_at)
    }
}

/// A clock judged as of `now`: due by the end of the UK local day `working_days` after
/// the local day it started; met on time when the local day it was met is no later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Judged {
    pub due_on: NaiveDate,
    pub met: bool,
    pub met_on_time: bool,
    /// Not met, and its deadline has passed.
    pub overdue: bool,
}

/// Judges a clock that started on `started_on` and was met on `met_on` (if it was).
pub fn judge(
    started_on: NaiveDate, met_on: Option<NaiveDate>, working_days: u32,
    holidays: &BTreeSet<NaiveDate>, now: DateTime<Utc>,
) -> Judged {
    let due_on = add_working_days(started_on, working_days, holidays);
    Judged {
        due_on,
        met: met_on.is_some(),
        met_on_time: met_on.is_some_and(|m| m <= due_on),
        overdue: met_on.is_none() && now > end_of_local_day(due_on),
    }
}

/// Both clocks of a signed case, as of `now`: started at the first signing (an amendment
/// neither restarts nor stops them), due by the end of the UK local day that many
/// working days after the signing's local day.
pub fn clocks_of(facts: &ClockFacts, rules: &ClockRules, now: DateTime<Utc>) -> [CommClock; 2] {
    let local = |t: DateTime<Utc>| t.with_timezone(&CLINIC_TZ).date_naive();
    let one = |clock, days, met_at: Option<DateTime<Utc>>, letter_id| {
        let judged = judge(local(facts.signed_at), met_at.map(local), days, &rules.holidays, now);
        CommClock {
            case_id: facts.case_id,
            letter_id,
            clock,
            started_at: facts.signed_at,
            due_on: judged.due_on,
            due_at: end_of_local_day(judged.due_on),
            met_at,
            overdue: judged.overdue,
        }
    };
    [
        one(
            ClockKind::ReferrerInformed,
            rules.referrer_working_days,
            facts.referrer_informed_at,
            facts.gp_letter_id,
        ),
        one(
            ClockKind::PatientLetterSent,
            rules.patient_working_days,
            facts.patient_letter_sent_at,
            facts.patient_letter_id,
        ),
    ]
}

/// `?state=` of the due list: `due` (not met, deadline not passed) or `overdue` (not
/// met, deadline passed); absent, both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DueFilter {
    All,
    Due,
    Overdue,
}

impl DueFilter {
    /// `422 invalid_state` for anything else.
    pub fn parse(raw: Option<&str>) -> Result<Self, ParseError> {
        match raw {
            None | Some("") => Ok(DueFilter::All),
            Some("due") => Ok(DueFilter::Due),
            Some("overdue") => Ok(DueFilter::Overdue),
            Some(_) => Err(ParseError::new("invalid_state", "state", "must be due or overdue")),
        }
    }
}

/// The clocks not yet met that `filter` asks for, the one due soonest (oldest) first.
pub fn due_list(
    facts: &[ClockFacts], rules: &ClockRules, now: DateTime<Utc>, filter: DueFilter,
) -> Vec<CommClock> {
    let mut out: Vec<CommClock> = facts
        .iter()
        .flat_map(|f| clocks_of(f, rules, now))
        .filter(|c| c.met_at.is_none())
        .filter(|c| match filter {
            DueFilter::All => true,
            DueFilter::Due => !c.overdue,
            DueFilter::Overdue => c.overdue,
        })
        .collect();
    out.sort_by_key(|c| (c.due_at, c.started_at, c.case_id, c.clock));
    out
}

/// The published England and Wales bank holidays that migration 0016 ships (kept here
/// for the unit tests; the database is the source the app reads).
#[cfg(test)]
pub(crate) const SHIPPED_2025_2028: [&str; 32] = [
    "2025-01-01",
    "2025-04-18",
    "2025-04-21",
    "2025-05-05",
    "2025-05-26",
    "2025-08-25",
    "2025-12-25",
    "2025-12-26",
    "2026-01-01",
    "2026-04-03",
    "2026-04-06",
    "2026-05-04",
    "2026-05-25",
    "2026-08-31",
    "2026-12-25",
    "2026-12-28",
    "2027-01-01",
    "2027-03-26",
    "2027-03-29",
    "2027-05-03",
    "2027-05-31",
    "2027-08-30",
    "2027-12-27",
    "2027-12-28",
    "2028-01-03",
    "2028-04-14",
    "2028-04-17",
    "2028-05-01",
    "2028-05-29",
    "2028-08-28",
    "2028-12-25",
    "2028-12-26",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn holidays() -> BTreeSet<NaiveDate> {
        SHIPPED_2025_2028.iter().map(|s| d(s)).collect()
    }

    #[test]
    fn shipped_holidays_are_weekdays() {
        for h in holidays() {
            assert!(!matches!(h.weekday(), Weekday::Sat | Weekday::Sun), "{h}");
        }
    }

    #[test]
    fn working_days_skip_weekends_and_bank_holidays() {
        let h = holidays();
        // Friday 4 Dec 2026: next working day Monday 7 Dec; two: Tuesday 8 Dec.
        assert_eq!(add_working_days(d("2026-12-04"), 1, &h), d("2026-12-07"));
        assert_eq!(add_working_days(d("2026-12-04"), 2, &h), d("2026-12-08"));
        // Friday before the late-summer bank holiday Monday 31 Aug 2026 → Tuesday.
        assert_eq!(add_working_days(d("2026-08-28"), 1, &h), d("2026-09-01"));
        assert_eq!(add_working_days(d("2026-08-28"), 2, &h), d("2026-09-02"));
        // Christmas 2026: Thursday 24 Dec → Tuesday 29 Dec (25th, weekend, 28th off).
        assert_eq!(add_working_days(d("2026-12-24"), 1, &h), d("2026-12-29"));
        // Easter 2026: Thursday 2 Apr → Tuesday 7 Apr.
        assert_eq!(add_working_days(d("2026-04-02"), 1, &h), d("2026-04-07"));
        // Signed on a Saturday: Monday is the first working day after it.
        assert_eq!(add_working_days(d("2026-12-05"), 1, &h), d("2026-12-07"));
        assert_eq!(add_working_days(d("2026-12-05"), 0, &h), d("2026-12-05"));
        assert!(!is_working_day(d("2027-12-28"), &h));
        assert!(is_working_day(d("2027-12-29"), &h));
    }

    #[test]
    fn deadlines_are_the_end_of_the_uk_local_day() {
        // Winter: GMT.
        assert_eq!(end_of_local_day(d("2026-12-07")).to_rfc3339(), "2026-12-07T23:59:59+00:00");
        // Summer: BST is UTC+1.
        assert_eq!(end_of_local_day(d("2026-09-01")).to_rfc3339(), "2026-09-01T22:59:59+00:00");
    }

    fn rules() -> ClockRules {
        ClockRules { referrer_working_days: 1, patient_working_days: 2, holidays: holidays() }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn clocks_start_at_signing_and_are_overdue_after_their_day() {
        let facts = ClockFacts {
            case_id: Uuid::nil(),
            // 23:30 BST on Friday 28 Aug 2026 is still that Friday in the UK.
            signed_at: at("2026-08-28T22:30:00Z"),
            referrer_informed_at: None,
            patient_letter_sent_at: Some(at("2026-09-02T10:00:00Z")),
            gp_letter_id: None,
            patient_letter_id: None,
        };
        let [referrer, patient] = clocks_of(&facts, &rules(), at("2026-09-01T12:00:00Z"));
        assert_eq!(referrer.due_on, d("2026-09-01"));
        assert!(!referrer.overdue);
        assert_eq!(patient.due_on, d("2026-09-02"));
        assert!(patient.met_on_time());
        let later = at("2026-09-01T23:00:00Z");
        let list = due_list(std::slice::from_ref(&facts), &rules(), later, DueFilter::Overdue);
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].clock, ClockKind::ReferrerInformed);
        assert!(due_list(&[facts], &rules(), later, DueFilter::Due).is_empty());
    }

    #[test]
    fn requests_and_filters_are_parsed() {
        let ok = BankHoliday::try_from(BankHolidayRequest {
            date: "2029-01-01".into(),
            name: " New Year's Day ".into(),
        })
        .unwrap();
        assert_eq!(ok, BankHoliday { date: d("2029-01-01"), name: "New Year's Day".into() });
        let bad =
            BankHoliday::try_from(BankHolidayRequest { date: "1/1/29".into(), name: "x".into() });
        assert_eq!(bad.unwrap_err().code, "invalid_date");
        assert_eq!(DueFilter::parse(Some("overdue")).unwrap(), DueFilter::Overdue);
        assert_eq!(DueFilter::parse(Some("late")).unwrap_err().code, "invalid_state");
    }
}
