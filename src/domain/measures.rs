//! What the services measure (issue 17), as pure rules: waiting-time targets per
//! specialty and urgency (data, with the national defaults), day distributions and their
//! median, 90th percentile and share within a target, a signed outcome's mix as the case
//! row keeps it, GP practices' list sizes from a coordinator's CSV, and the practices'
//! comparison with the locality's median.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::case::{OdsCode, Urgency};
use super::outcome::{InvestigationKind, OutcomeSummary, ReferralDestination};
use super::parse::ParseError;
use super::report::{median_by, nearest_rank};

/// Which wait a target is for: from the referral to the triage decision, or to the
/// discussion (the decision at the meeting, or outside it).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum WaitMeasure {
    ReferralToTriage,
    ReferralToDiscussion,
}

/// Which cases a target applies to.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum TargetUrgency {
    Any,
    Urgent,
    Routine,
}

impl TargetUrgency {
    pub fn covers(self, urgency: Urgency) -> bool {
        match self {
            Self::Any => true,
            Self::Urgent => urgency == Urgency::Urgent,
            Self::Routine => urgency == Urgency::Routine,
        }
    }
}

/// Whether a target counts calendar days or working days (weekends and bank holidays
/// skipped).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DayKind {
    Calendar,
    Working,
}

/// One waiting-time target: `target_percent` of the cases it covers wait at most
/// `within_days` days of `day_kind`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitTarget {
    pub measure: WaitMeasure,
    pub urgency: TargetUrgency,
    pub within_days: u32,
    pub day_kind: DayKind,
    pub target_percent: f64,
}

/// The most targets one specialty keeps.
pub const MAX_TARGETS: usize = 20;

/// The national defaults: discussed within 6 weeks (90%) and 18 weeks (100%), triaged
/// within one working day, urgent cases discussed within 5 days and routine ones within 4
/// weeks (no share is named for the last three: every case, until a coordinator says
/// otherwise).
pub fn default_targets() -> Vec<WaitTarget> {
    use {DayKind::*, TargetUrgency::*, WaitMeasure::*};
    let t = |measure, urgency, within_days, day_kind, target_percent| WaitTarget {
        measure,
        urgency,
        within_days,
        day_kind,
        target_percent,
    };
    vec![
        t(ReferralToTriage, Any, 1, Working, 100.0),
        t(ReferralToDiscussion, Any, 42, Calendar, 90.0),
        t(ReferralToDiscussion, Any, 126, Calendar, 100.0),
        t(ReferralToDiscussion, Urgent, 5, Calendar, 100.0),
        t(ReferralToDiscussion, Routine, 28, Calendar, 100.0),
    ]
}

/// `PUT /api/specialties/{slug}/targets` as it arrives.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct TargetsRequest {
    pub targets: Vec<serde_json::Value>,
}

/// Parses a specialty's targets: each a known measure, urgency and day kind
/// (`422 invalid_target`), `within_days` 0–365 and `target_percent` above 0 and at most
/// 100 (`422 invalid_target`), no two alike (`422 duplicate_target`), at most
/// [`MAX_TARGETS`] (`422 too_many_targets`). Kept in the order given.
pub fn parse_targets(raw: Vec<serde_json::Value>) -> Result<Vec<WaitTarget>, ParseError> {
    if raw.len() > MAX_TARGETS {
        let why = format!("at most {MAX_TARGETS} targets");
        return Err(ParseError::new("too_many_targets", "targets", why));
    }
    let mut out: Vec<WaitTarget> = Vec::with_capacity(raw.len());
    for (i, value) in raw.into_iter().enumerate() {
        let field = format!("targets[{i}]");
        let invalid = |why: &str| ParseError::new("invalid_target", field.clone(), why);
        let target: WaitTarget = serde_json::from_value(value).map_err(|_| {
            invalid(
                "needs measure (referral_to_triage or referral_to_discussion), urgency (any, \
                 urgent or routine), within_days, day_kind (calendar or working) and \
                 target_percent",
            )
        })?;
        if target.within_days > 365 {
            return Err(invalid("within_days is at most 365"));
        }
        if !(target.target_percent > 0.0 && target.target_percent <= 100.0) {
            return Err(invalid("target_percent is above 0 and at most 100"));
        }
        let same = |t: &WaitTarget| {
            (t.measure, t.urgency, t.within_days, t.day_kind)
                == (target.measure, target.urgency, target.within_days, target.day_kind)
        };
        if out.iter().any(same) {
            return Err(ParseError::new("duplicate_target", field, "this target is listed twice"));
        }
        out.push(target);
    }
    Ok(out)
}

/// A wait in working days, as the store counts it: the working days after the start up
/// to the end, where an end on a weekend or bank holiday counts as the next working day
/// (so a wait is within `n` working days exactly when it ends no later than the `n`th
/// working day after its start: `communication::add_working_days`).
pub type WorkingDays = i64;

/// Whether a wait of `calendar` days (`working` in working days) is within `target`: a
/// wait that ends on its first day always is.
pub fn within_target(calendar: i64, working: WorkingDays, target: &WaitTarget) -> bool {
    let limit = i64::from(target.within_days);
    calendar <= 0
        || match target.day_kind {
            DayKind::Calendar => calendar <= limit,
            DayKind::Working => working <= limit,
        }
}

/// A distribution of whole-day waits: how many cases waited each number of days.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Distribution(BTreeMap<i64, u32>);

impl Distribution {
    pub fn add(&mut self, days: i64, n: u32) {
        *self.0.entry(days).or_default() += n;
    }

    pub fn merge(&mut self, other: &Distribution) {
        for (d, n) in &other.0 {
            self.add(*d, *n);
        }
    }

    pub fn count(&self) -> u32 {
        self.0.values().sum()
    }

    /// The value at 1-based rank `rank` of the sorted waits.
    fn at_rank(&self, rank: usize) -> Option<i64> {
        let mut seen = 0;
        self.0.iter().find_map(|(d, n)| {
            seen += *n as usize;
            (seen >= rank).then_some(*d)
        })
    }

    /// The median (`report::median`'s rule).
    pub fn median(&self) -> Option<f64> {
        median_by(self.count() as usize, |rank| self.at_rank(rank).map(|d| d as f64))
    }

    /// The nearest-rank `p`th percentile (`report::nearest_rank`).
    pub fn percentile(&self, p: u32) -> Option<i64> {
        nearest_rank(self.count() as usize, p).and_then(|rank| self.at_rank(rank))
    }

    /// How many waited at most `days`.
    pub fn at_most(&self, days: i64) -> u32 {
        self.0.range(..=days).map(|(_, n)| n).sum()
    }

    /// Cases per week waited: index `k` counts waits of `7k..7k+6` days; the last,
    /// [`WEEKS_SHOWN`], counts that many weeks or more.
    pub fn weeks(&self) -> Vec<u32> {
        let mut out = vec![0; WEEKS_SHOWN + 1];
        for (d, n) in &self.0 {
            out[((d.max(&0) / 7) as usize).min(WEEKS_SHOWN)] += n;
        }
        out
    }
}

/// The weeks a waiting-time distribution shows one by one (half a year).
pub const WEEKS_SHOWN: usize = 26;

/// A percentage of `of`, one decimal place; `None` when `of` is 0.
pub fn percent(part: u32, of: u32) -> Option<f64> {
    (of > 0).then(|| (f64::from(part) * 1000.0 / f64::from(of)).round() / 10.0)
}

/// The outcome mix of a case's latest signed version, as its row keeps it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MixFacts {
    pub discharged: bool,
    /// Onward destinations (not GP discharge), sorted, distinct, comma-separated.
    pub onward: Option<String>,
    /// Investigation kinds, one per item, sorted, comma-separated.
    pub investigations: Option<String>,
    pub re_discuss: bool,
}

impl MixFacts {
    pub fn of(o: &OutcomeSummary) -> Self {
        let joined = |mut v: Vec<&'static str>| {
            v.sort_unstable();
            (!v.is_empty()).then(|| v.join(","))
        };
        let mut onward: Vec<&'static str> = o
            .referrals
            .iter()
            .filter(|r| r.destination != ReferralDestination::GpDischarge)
            .map(|r| r.destination.as_str())
            .collect();
        onward.sort_unstable();
        onward.dedup();
        Self {
            discharged: o
                .referrals
                .iter()
                .any(|r| r.destination == ReferralDestination::GpDischarge),
            onward: joined(onward),
            investigations: joined(o.investigations.iter().map(|i| i.kind.as_str()).collect()),
            re_discuss: o.follow_up.kind == super::outcome::FollowUpKind::ReDiscuss,
        }
    }

    pub fn onward(&self) -> impl Iterator<Item = &str> {
        self.onward.as_deref().unwrap_or_default().split(',').filter(|s| !s.is_empty())
    }

    pub fn investigations(&self) -> impl Iterator<Item = &str> {
        self.investigations.as_deref().unwrap_or_default().split(',').filter(|s| !s.is_empty())
    }

    pub fn mri(&self) -> bool {
        self.investigations().any(|k| k == InvestigationKind::Mri.as_str())
    }
}

/// The most lines a list-size CSV holds.
pub const MAX_LIST_SIZE_LINES: usize = 20_000;

/// One practice's registered patients.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ListSize {
    pub ods_code: OdsCode,
    pub list_size: u32,
}

/// Parses a coordinator's CSV of `ods_code,list_size` lines (an optional header naming
/// those two columns; blank lines skipped; a later line for the same practice wins).
/// Any bad line refuses the whole file with `422 invalid_list_sizes`, naming the line.
pub fn parse_list_sizes(text: &str) -> Result<Vec<ListSize>, ParseError> {
    let mut out: BTreeMap<String, ListSize> = BTreeMap::new();
    let lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    for (count, (i, line)) in lines.enumerate() {
        let bad = |why: &str| ParseError::new("invalid_list_sizes", format!("line {}", i + 1), why);
        if count >= MAX_LIST_SIZE_LINES {
            return Err(bad("too many lines"));
        }
        let cells: Vec<&str> = line.split(',').map(|c| c.trim().trim_matches('"').trim()).collect();
        if count == 0 && cells.first().is_some_and(|c| c.eq_ignore_ascii_case("ods_code")) {
            continue;
        }
        let [code, size] = cells.as_slice() else {
            return Err(bad("needs two columns: ods_code,list_size"));
        };
        let ods_code = OdsCode::parse(code).map_err(|_| bad("not an ODS practice code"))?;
        let list_size = size
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=1_000_000).contains(n))
            .ok_or_else(|| bad("list_size is a whole number from 1 to 1,000,000"))?;
        out.insert(ods_code.as_str().to_string(), ListSize { ods_code, list_size });
    }
    if out.is_empty() {
        return Err(ParseError::new("invalid_list_sizes", "body", "no list sizes in the file"));
    }
    Ok(out.into_values().collect())
}

/// Referrals per 1,000 registered patients, one decimal place.
pub fn per_thousand(referrals: u32, list_size: Option<u32>) -> Option<f64> {
    let size = f64::from(list_size.filter(|s| *s > 0)?);
    Some((f64::from(referrals) * 10_000.0 / size).round() / 10.0)
}

/// The median of the values present (the middle one, or the mean of the two middle
/// ones), one decimal place; `None` when there are none.
pub fn median_of(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let mut v: Vec<f64> = values.flatten().collect();
    v.sort_by(f64::total_cmp);
    super::report::median(&v).map(|m| (m * 10.0).round() / 10.0)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use chrono::NaiveDate;

    use super::super::communication::is_working_day;
    use super::*;

    fn days(values: &[i64]) -> Distribution {
        let mut d = Distribution::default();
        for v in values {
            d.add(*v, 1);
        }
        d
    }

    #[test]
    fn day_distributions_give_the_conventional_median_and_nearest_rank() {
        let d = days(&[3, 1, 4, 1, 5, 9, 2, 6]);
        assert_eq!(d.median(), Some(3.5));
        assert_eq!(d.percentile(90), Some(9));
        assert_eq!(d.percentile(50), Some(3));
        assert_eq!(days(&[7, 7, 50]).median(), Some(7.0));
        assert_eq!(Distribution::default().median(), None);
        assert_eq!(d.at_most(4), 5);
        let w = days(&[0, 6, 7, 200]).weeks();
        assert_eq!((w[0], w[1], w[WEEKS_SHOWN]), (2, 1, 1));
    }

    /// The working-day wait from `start` to `end` (see [`WorkingDays`]), day by day: what
    /// the store's SQL must count.
    fn working_days(
        start: NaiveDate, end: NaiveDate, holidays: &BTreeSet<NaiveDate>,
    ) -> WorkingDays {
        let mut n = 0;
        let mut d = start;
        while d < end {
            d = d + chrono::Days::new(1);
            n += i64::from(is_working_day(d, holidays));
        }
        n + i64::from(end > start && !is_working_day(end, holidays))
    }

    #[test]
    fn targets_count_calendar_or_working_days() {
        use super::super::communication::add_working_days;
        let easter = [(2026, 4, 3), (2026, 4, 6)];
        let holidays: BTreeSet<NaiveDate> =
            easter.iter().map(|(y, m, d)| NaiveDate::from_ymd_opt(*y, *m, *d).unwrap()).collect();
        let day =
            |d: u32| NaiveDate::from_ymd_opt(2026, 3, 1).unwrap() + chrono::Days::new(u64::from(d));
        let triage = default_targets()[0];
        // Whatever the start and end, within one working day by the count exactly when
        // the end is no later than the first working day after the start.
        for start in 0..45 {
            for length in 0..12 {
                let (a, b) = (day(start), day(start + length));
                let working = working_days(a, b, &holidays);
                let counted = within_target((b - a).num_days(), working, &triage);
                assert_eq!(counted, b <= add_working_days(a, 1, &holidays), "{a} → {b}");
            }
        }
        let six_weeks = default_targets()[1];
        assert!(within_target(42, 30, &six_weeks));
        assert!(!within_target(43, 30, &six_weeks));
    }

    #[test]
    fn bad_targets_are_refused_with_their_field() {
        let t = |v: serde_json::Value| parse_targets(vec![v]).unwrap_err();
        let ok = serde_json::json!({"measure": "referral_to_triage", "urgency": "any",
            "within_days": 1, "day_kind": "working", "target_percent": 95});
        assert_eq!(parse_targets(vec![ok.clone()]).unwrap()[0].target_percent, 95.0);
        let mut bad = ok.clone();
        bad["day_kind"] = "weekly".into();
        assert_eq!(t(bad).field, "targets[0]");
        let mut bad = ok.clone();
        bad["target_percent"] = 120.into();
        assert_eq!(t(bad).code, "invalid_target");
        let twice = parse_targets(vec![ok.clone(), ok]).unwrap_err();
        assert_eq!((twice.code, &*twice.field), ("duplicate_target", "targets[1]"));
    }

    #[test]
    fn list_sizes_come_from_a_csv_with_an_optional_header() {
        let sizes =
            parse_list_sizes("ods_code,list_size\r\nA81001, 8000\n\nb82002,12000\n").unwrap();
        assert_eq!(sizes.len(), 2);
        assert_eq!((sizes[1].ods_code.as_str(), sizes[1].list_size), ("B82002", 12000));
        let bad = parse_list_sizes("A81001,8000\nA81002,lots\n").unwrap_err();
        assert_eq!((bad.code, &*bad.field), ("invalid_list_sizes", "line 2"));
        assert!(parse_list_sizes("A81001\n").is_err());
        assert!(parse_list_sizes("").is_err());
        assert_eq!(per_thousand(12, Some(8000)), Some(1.5));
        assert_eq!(per_thousand(12, None), None);
    }
}
