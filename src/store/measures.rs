//! The reports' aggregation (issue 17): one statement that groups a window's case rows,
//! triage decisions and sessions into tallies (`domain::report::TallyRow`), by month or by
//! GP practice, from the facts `facts.rs` keeps on the rows; the summary rows that keep
//! each UK month's tallies until a write touches the month (migration 0018's triggers);
//! the specialties' waiting-time targets; and the practices' list sizes. The figures are
//! folded in the domain.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};

use serde::{Deserialize, Serialize};

use super::core::Store;
use super::db::Tx;
use super::error::StoreError;
use super::rows;
use super::sql::{args, Row};
use crate::domain::case::{CaseState, Urgency};
use crate::domain::measures::{default_targets, ListSize, MixFacts, WaitTarget};
use crate::domain::report::{whole_months, CaseClass, Month, ReportQuery, Span, Tally, TallyRow};
use crate::domain::{NewAuditEvent, OdsCode, Role, SessionState, Specialty};

/// How the tallies are grouped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TallyGroup {
    /// By the UK local month of the session (`YYYY-MM`), sessions and attendance included.
    Month,
    /// By the patient's GP practice (ODS code), case rows and triage only.
    Practice,
}

/// The window's case rows with the facts the tallies group by (and the CSV shows).
/// `{grp}`, `{local(…)}`, `{days(…)}` and `{seconds(…)}` are the fragments the backends
/// spell differently ([`Dialect`]); `{from_booking}`, `{from_referral}` and
/// `{live_seconds}` are the measures over its columns, written once here.
pub(super) const FACTS: &str = "\
f AS MATERIALIZED (
  SELECT c.id, s.specialty, {grp} AS grp, {mon} AS mon, c.state, c.urgency,
    CASE WHEN c.standard_plan IS NULL THEN 0 ELSE 1 END AS planned,
    c.outside_meeting AS outside,
    CASE WHEN c.follow_up_of IS NULL THEN 0 ELSE 1 END AS follow_up,
    CASE WHEN c.moved_from IS NULL THEN 0 ELSE 1 END AS moved,
    {local(COALESCE(c.discussion_started_at, s.starts_at))} AS discussed_on,
    {local(COALESCE(c.episode_booked_at, c.booked_at))} AS booked_on,
    c.referral_received_on AS referred_on,
    COALESCE(c.referral_received_on, {local(COALESCE(c.episode_booked_at, c.booked_at))})
      AS clock_start,
    {local(c.first_triaged_at)} AS triaged_on,
    c.discussion_started_at AS started_at, c.discussion_ended_at AS ended_at,
    s.minutes_per_case,
    c.outcome_discharged, c.outcome_onward, c.outcome_investigations, c.outcome_re_discuss,
    {local(c.first_signed_at)} AS signed_on,
    {local(c.referrer_informed_at)} AS informed_on,
    {local(c.patient_letter_sent_at)} AS letter_on
  FROM sessions s JOIN cases c ON c.session_id = s.id
  WHERE s.starts_at >= $1 AND s.starts_at < $2 AND s.specialty = ANY($3))";

/// The case rows' and triage decisions' tallies, one statement per `Tally` variant
/// its keys in `k1`…`k7` as text, grouped by `grp` and by the session's UK month `mon`
/// (how the summary rows are kept). Waits are tallied only for rows in a state a counted
/// wait can have (discussed, outcome signed); the domain decides which count.
const CASE_TALLIES: [(&str, &str); 8] = [
    (
        "cases",
        "SELECT 'cases' AS measure, specialty, grp, mon, state AS k1, CAST(planned AS TEXT) AS k2,
            CAST(outside AS TEXT) AS k3, CAST(follow_up AS TEXT) AS k4, urgency AS k5,
            CAST(moved AS TEXT) AS k6, NULL AS k7, COUNT(*) AS n
     FROM f GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11",
    ),
    (
        "from_booking",
        "SELECT 'from_booking', specialty, grp, mon, state, CAST(planned AS TEXT), CAST(outside AS TEXT),
            CAST({from_booking} AS TEXT), NULL, NULL, NULL, COUNT(*)
     FROM f WHERE state IN ('discussed', 'outcome_signed') GROUP BY 1, 2, 3, 4, 5, 6, 7, 8",
    ),
    (
        "from_referral",
        "SELECT 'from_referral', specialty, grp, mon, state, CAST(planned AS TEXT), CAST(outside AS TEXT),
            urgency, CAST({from_referral} AS TEXT),
            CASE WHEN referred_on IS NULL THEN '1' ELSE '0' END, NULL, COUNT(*)
     FROM f WHERE follow_up = 0 AND state IN ('discussed', 'outcome_signed')
     GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10",
    ),
    (
        "to_triage",
        "SELECT 'to_triage', specialty, grp, mon, urgency, CAST({days(triaged_on, clock_start)} AS TEXT),
            CAST({working_days(clock_start, triaged_on)} AS TEXT),
            CASE WHEN referred_on IS NULL THEN '1' ELSE '0' END, NULL, NULL, NULL, COUNT(*)
     FROM f WHERE triaged_on IS NOT NULL AND follow_up = 0 GROUP BY 1, 2, 3, 4, 5, 6, 7, 8",
    ),
    (
        "outcome",
        "SELECT 'outcome', specialty, grp, mon, state, CAST(planned AS TEXT), CAST(outside AS TEXT),
            CAST(outcome_discharged AS TEXT), outcome_onward, outcome_investigations,
            CAST(outcome_re_discuss AS TEXT), COUNT(*)
     FROM f WHERE outcome_discharged IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11",
    ),
    (
        "timing",
        "SELECT 'timing', specialty, grp, mon, state, CAST(planned AS TEXT), CAST(outside AS TEXT),
            CAST({live_seconds} AS TEXT), CAST(minutes_per_case AS TEXT), NULL, NULL, COUNT(*)
     FROM f WHERE ended_at >= started_at GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9",
    ),
    (
        "clocks",
        "SELECT 'clocks', specialty, grp, mon, CAST(signed_on AS TEXT), CAST(informed_on AS TEXT),
            CAST(letter_on AS TEXT), NULL, NULL, NULL, NULL, COUNT(*)
     FROM f WHERE signed_on IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 7",
    ),
    (
        "triage",
        "SELECT 'triage', f.specialty, f.grp, f.mon, t.decision, t.reason,
            CAST({seconds(t.submitted_at, t.decided_at)} / 60 AS TEXT), NULL, NULL, NULL, NULL,
            COUNT(*)
     FROM f JOIN triage_decisions t ON t.case_id = f.id GROUP BY 1, 2, 3, 4, 5, 6, 7",
    ),
];

/// The window's sessions, their distinct attendees, and those per role (by month only).
const SESSION_TALLIES: &str = "
UNION ALL
SELECT 'sessions', s.specialty, {grp}, {mon}, s.state,
       CASE WHEN s.quorate_at IS NULL THEN '0' ELSE '1' END, NULL, NULL, NULL, NULL, NULL,
       COUNT(*)
FROM sessions s WHERE s.starts_at >= $1 AND s.starts_at < $2 AND s.specialty = ANY($3)
GROUP BY 1, 2, 3, 4, 5, 6
UNION ALL
SELECT 'attendees', specialty, grp, mon, state, CAST(people AS TEXT), NULL, NULL, NULL, NULL,
       NULL, COUNT(*)
FROM (SELECT s.id, s.specialty, {grp} AS grp, {mon} AS mon, s.state,
             COUNT(DISTINCT a.user_id) AS people
      FROM sessions s LEFT JOIN attendance a ON a.session_id = s.id
      WHERE s.starts_at >= $1 AND s.starts_at < $2 AND s.specialty = ANY($3)
      GROUP BY s.id, s.specialty, s.starts_at, s.state) x
GROUP BY 1, 2, 3, 4, 5, 6
UNION ALL
SELECT 'roles', specialty, grp, mon, state, role, NULL, NULL, NULL, NULL, NULL, COUNT(*)
FROM (SELECT DISTINCT s.id, s.specialty, {grp} AS grp, {mon} AS mon, s.state, a.user_id, a.role
      FROM sessions s JOIN attendance a ON a.session_id = s.id
      WHERE s.starts_at >= $1 AND s.starts_at < $2 AND s.specialty = ANY($3)) x
GROUP BY 1, 2, 3, 4, 5, 6";

/// UK local calendar days from the episode's first booking to the discussion (its live
/// start, else its session's start).
const FROM_BOOKING: &str = "{days(discussed_on, booked_on)}";
/// UK local calendar days from the referral (or, without a referral date, the episode's
/// first booking) to the discussion.
const FROM_REFERRAL: &str = "{days(discussed_on, COALESCE(referred_on, booked_on))}";
/// Whole seconds of live discussion.
const LIVE_SECONDS: &str = "{seconds(started_at, ended_at)}";

/// The fragments of [`FACTS`] and the tallies that the backends spell differently.
pub(super) struct Dialect {
    postgres: bool,
    /// SQLite: the instants (as stored, RFC 3339 in UTC) at which UK clocks change,
    /// ascending, from a GMT period's start: British Summer Time runs between the first
    /// and second of each pair.
    changes: Vec<String>,
}

impl Dialect {
    pub(super) fn new(postgres: bool, query: &ReportQuery) -> Self {
        // Instants read by a report reach back before its window (first bookings) and
        // past it (letters): the clock changes of three years either side are spelled out.
        let years = query.starts_at.year() - 3..=query.ends_at.year() + 3;
        let changes = years
            .flat_map(|y| [last_sunday(y, 3), last_sunday(y, 10)])
            .map(|d| format!("{d}T01:00:00+00:00"))
            .collect();
        Self { postgres, changes }
    }

    /// The UK local date of an instant.
    fn local(&self, x: &str) -> String {
        if self.postgres {
            return format!("(({x}) AT TIME ZONE 'Europe/London')::date");
        }
        let mut offset = String::from("CASE");
        for (i, at) in self.changes.iter().enumerate() {
            let hours = if i % 2 == 0 { 0 } else { 1 };
            offset.push_str(&format!(" WHEN {x} < '{at}' THEN '+{hours} hours'"));
        }
        format!("date({x}, {offset} ELSE '+0 hours' END)")
    }

    /// Whole days from date `b` to date `a`.
    fn days(&self, a: &str, b: &str) -> String {
        match self.postgres {
            true => format!("(({a}) - ({b}))"),
            false => format!("CAST(round(julianday({a}) - julianday({b})) AS INTEGER)"),
        }
    }

    /// The working days from date `a` to date `b` (`domain::measures::WorkingDays`): the
    /// weekdays after `a` up to `b` (counted from a Monday, 1 January 1900), less the bank
    /// holidays among them, plus one when `b` (after `a`) is not a working day itself.
    fn working_days(&self, a: &str, b: &str) -> String {
        let (day, weekday_ok, least) = match self.postgres {
            true => ("({x} - DATE '1900-01-01')", "EXTRACT(ISODOW FROM h.day) < 6", "LEAST"),
            false => (
                "CAST(julianday({x}) - 2415020.5 AS INTEGER)",
                "strftime('%w', h.day) NOT IN ('0', '6')",
                "MIN",
            ),
        };
        let n = |x: &str| day.replace("{x}", x);
        let weekdays = |x: &str| format!("(5 * ({n} / 7) + {least}({n} % 7 + 1, 5))", n = n(x));
        format!(
            "({wb} - {wa} - (SELECT COUNT(*) FROM bank_holidays h WHERE h.day > {a} \
             AND h.day <= {b} AND {weekday_ok}) + CASE WHEN {b} > {a} AND ({nb} % 7 >= 5 \
             OR EXISTS (SELECT 1 FROM bank_holidays h WHERE h.day = {b})) THEN 1 ELSE 0 END)",
            wb = weekdays(b),
            wa = weekdays(a),
            nb = n(b),
        )
    }

    /// Whole seconds from instant `a` to instant `b`.
    fn seconds(&self, a: &str, b: &str) -> String {
        match self.postgres {
            true => format!("FLOOR(EXTRACT(EPOCH FROM (({b}) - ({a}))))::bigint"),
            false => {
                format!("CAST(round((julianday({b}) - julianday({a})) * 86400, 3) AS INTEGER)")
            }
        }
    }

    /// The group of a case row `c` in session `s`.
    fn group(&self, group: TallyGroup) -> String {
        match (group, self.postgres) {
            (TallyGroup::Practice, _) => "c.gp_practice_code".to_string(),
            (TallyGroup::Month, true) => {
                "to_char(s.starts_at AT TIME ZONE 'Europe/London', 'YYYY-MM')".to_string()
            }
            (TallyGroup::Month, false) => format!("substr({}, 1, 7)", self.local("s.starts_at")),
        }
    }

    /// `sql` with its fragments spelled out.
    pub(super) fn spell(&self, sql: &str, group: TallyGroup) -> String {
        let mut out = sql
            .replace("{from_booking}", FROM_BOOKING)
            .replace("{from_referral}", FROM_REFERRAL)
            .replace("{live_seconds}", LIVE_SECONDS)
            .replace("{grp}", &self.group(group))
            .replace("{mon}", &self.group(TallyGroup::Month));
        while let Some(at) = out.find("{local(") {
            let end = closing(&out, at + 7);
            let inner = out[at + 7..end].to_string();
            out.replace_range(at..end + 2, &self.local(&inner));
        }
        for name in ["days", "seconds", "working_days"] {
            let open = format!("{{{name}(");
            while let Some(at) = out.find(&open) {
                let end = closing(&out, at + open.len());
                let inner = out[at + open.len()..end].to_string();
                let (a, b) = split_args(&inner);
                let spelled = match name {
                    "days" => self.days(a, b),
                    "seconds" => self.seconds(a, b),
                    _ => self.working_days(a, b),
                };
                out.replace_range(at..end + 2, &spelled);
            }
        }
        out
    }
}

/// The index of the `)` that closes the parenthesis opened just before `from`.
fn closing(s: &str, from: usize) -> usize {
    let mut depth = 0;
    for (i, ch) in s[from..].char_indices() {
        match ch {
            '(' => depth += 1,
            ')' if depth == 0 => return from + i,
            ')' => depth -= 1,
            _ => {}
        }
    }
    s.len()
}

/// Splits `a, b` at its top-level comma.
fn split_args(s: &str) -> (&str, &str) {
    let mut depth = 0;
    for (i, ch) in s.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => return (s[..i].trim(), s[i + 1..].trim()),
            _ => {}
        }
    }
    (s, s)
}

/// The last Sunday of a month (when UK clocks change, in March and October).
fn last_sunday(year: i32, month: u32) -> NaiveDate {
    let next = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    let last = NaiveDate::from_ymd_opt(next.0, next.1, 1)
        .and_then(|d| d.checked_sub_days(Days::new(1)))
        .unwrap_or_default();
    let back = last.weekday().num_days_from_sunday();
    last - Days::new(u64::from(back))
}

/// A tally as the statement returns it and the summary rows keep it: measure,
/// specialty, group, UK month, keys `k1`…`k7`, count.
#[derive(Serialize, Deserialize)]
struct RawTally(String, String, String, String, [Option<String>; 7], i64);

fn raw_tally(row: &Row) -> Result<RawTally, StoreError> {
    const KEYS: [&str; 7] = ["k1", "k2", "k3", "k4", "k5", "k6", "k7"];
    let mut keys: [Option<String>; 7] = Default::default();
    for (key, name) in keys.iter_mut().zip(KEYS) {
        *key = row.get(name)?;
    }
    Ok(RawTally(
        row.get("measure")?,
        row.get("specialty")?,
        row.get::<Option<String>>("grp")?.unwrap_or_default(),
        row.get::<Option<String>>("mon")?.unwrap_or_default(),
        keys,
        rows::count(row, "n")?,
    ))
}

/// A tally key its variant cannot hold.
fn bad<E>(_: E) -> StoreError {
    StoreError::corrupt("tally")
}

/// One tally, decoded into the domain's terms.
fn tally_row(raw: &RawTally) -> Result<TallyRow, StoreError> {
    let RawTally(measure, specialty, group, _, keys, n) = raw;
    let key = |i: usize| keys[i - 1].clone();
    let text = |i| key(i).ok_or_else(|| bad(()));
    let flag = |i| Ok::<_, StoreError>(text(i)? == "1");
    let int = |i| text(i)?.parse::<i64>().map_err(bad);
    let date = |i| NaiveDate::parse_from_str(&text(i)?, "%Y-%m-%d").map_err(bad);
    let opt_date =
        |i| key(i).map(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").map_err(bad)).transpose();
    let state = |i| CaseState::parse(&text(i)?).ok_or_else(|| bad(()));
    let class = || Ok::<_, StoreError>(CaseClass::classify(state(1)?, flag(2)?, flag(3)?));
    let urgency = |i| Urgency::parse(&text(i)?).map_err(bad);
    let session_state = || SessionState::parse(&text(1)?).ok_or_else(|| bad(()));
    let tally = match measure.as_str() {
        "cases" => Tally::Cases {
            class: class()?,
            follow_up: flag(4)?,
            urgency: urgency(5)?,
            moved: flag(6)?,
        },
        "from_booking" => Tally::FromBooking { class: class()?, days: int(4)? },
        "from_referral" => Tally::FromReferral {
            class: class()?,
            urgency: urgency(4)?,
            days: int(5)?,
            unreferred: flag(6)?,
        },
        "to_triage" => Tally::ToTriage {
            urgency: urgency(1)?,
            days: int(2)?,
            working: int(3)?,
            unreferred: flag(4)?,
        },
        "outcome" => Tally::Outcome {
            class: class()?,
            mix: MixFacts {
                discharged: flag(4)?,
                onward: key(5),
                investigations: key(6),
                re_discuss: flag(7)?,
            },
        },
        "timing" => Tally::Timing {
            class: class()?,
            seconds: int(4)?,
            allotted_minutes: u32::try_from(int(5)?).map_err(bad)?,
        },
        "clocks" => Tally::Clocks {
            signed_on: date(1)?,
            informed_on: opt_date(2)?,
            letter_on: opt_date(3)?,
        },
        "triage" => Tally::Triage { decision: text(1)?, reason: key(2), minutes: int(3)? },
        "sessions" => Tally::Sessions { state: session_state()?, quorate: flag(2)? },
        "attendees" => Tally::Attendees {
            state: session_state()?,
            people: u32::try_from(int(2)?).map_err(bad)?,
        },
        "roles" => {
            Tally::Roles { state: session_state()?, role: text(2)?.parse::<Role>().map_err(bad)? }
        }
        _ => return Err(bad(())),
    };
    Ok(TallyRow {
        specialty: Specialty::parse(specialty).map_err(bad)?,
        group: group.clone(),
        tally,
        n: u32::try_from(*n).map_err(bad)?,
    })
}

/// The summary rows of the months wholly inside [$1, $2) of the specialties in $3: each
/// month's generation, and its cached tallies for grouping $4 with the generation they
/// were computed at.
const SUMMARY_ROWS: &str = "\
SELECT m.specialty, m.starts_at, m.generation, c.generation AS cached_generation, c.tallies
FROM report_months m
LEFT JOIN report_cache c
  ON c.specialty = m.specialty AND c.starts_at = m.starts_at AND c.grouping = $4
WHERE m.starts_at >= $1 AND m.ends_at <= $2 AND m.specialty = ANY($3)";

/// Keeps a month's tallies, unless newer ones were kept meanwhile.
const KEEP_SUMMARY: &str = "\
INSERT INTO report_cache (specialty, starts_at, grouping, generation, tallies)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (specialty, starts_at, grouping) DO UPDATE
SET generation = excluded.generation, tallies = excluded.tallies
WHERE report_cache.generation < excluded.generation";

/// The tallies of `query`'s window and specialties, computed by the statement.
async fn computed(
    tx: &mut Tx, query: &ReportQuery, group: TallyGroup,
) -> Result<Vec<RawTally>, StoreError> {
    let dialect = Dialect::new(tx.is_postgres(), query);
    // The practices report uses neither the waits from booking, the live timings nor the
    // clocks, nor the triage turnaround: left out, its tallies stay few.
    let branches: Vec<&str> = CASE_TALLIES
        .iter()
        .filter(|(measure, _)| {
            group == TallyGroup::Month || !["from_booking", "timing", "clocks"].contains(measure)
        })
        .map(|(_, sql)| *sql)
        .collect();
    let mut sql = format!("WITH {FACTS}\n{}", branches.join("\nUNION ALL\n"));
    if group == TallyGroup::Practice {
        sql = sql.replace("{seconds(t.submitted_at, t.decided_at)} / 60", "0");
    } else {
        sql.push_str(SESSION_TALLIES);
    }
    let sql = dialect.spell(&sql, group);
    let specialties: Vec<String> =
        query.specialties.iter().map(|s| s.as_str().to_string()).collect();
    let found = tx.all(sql, args![query.starts_at, query.ends_at, specialties]).await?;
    found.iter().map(raw_tally).collect()
}

impl TallyGroup {
    fn as_str(self) -> &'static str {
        match self {
            TallyGroup::Month => "month",
            TallyGroup::Practice => "practice",
        }
    }
}

impl Store {
    /// The window's tallies for the reports, grouped by `group`: each whole UK month of
    /// the window from its summary rows while they are current (no write has touched the
    /// month since they were kept), the rest computed by one statement and the whole
    /// months among them kept for the next report.
    #[tracing::instrument(skip_all, fields(specialties = query.specialties.len()))]
    pub async fn report_tallies(
        &self, query: &ReportQuery, group: TallyGroup,
    ) -> Result<Vec<TallyRow>, StoreError> {
        let (months, edges) = whole_months(query.starts_at, query.ends_at);
        let specialties: Vec<String> =
            query.specialties.iter().map(|s| s.as_str().to_string()).collect();
        // Each month's row exists before the snapshot reads it, so that any write after
        // the snapshot bumps the generation the kept tallies are checked against.
        self.ensure_report_months(&specialties, &months).await?;
        let mut tx = self.db.snapshot().await?;
        let window = args![query.starts_at, query.ends_at, specialties.clone(), group.as_str()];
        let mut current: HashMap<(String, DateTime<Utc>), i64> = HashMap::new();
        let mut raw: Vec<RawTally> = Vec::new();
        for row in tx.all(SUMMARY_ROWS, window).await? {
            let key = (row.get::<String>("specialty")?, row.get::<DateTime<Utc>>("starts_at")?);
            if !months.iter().any(|(lo, _)| *lo == key.1) {
                continue; // not one of this window's whole months
            }
            let generation: i64 = rows::count(&row, "generation")?;
            let current_kept = row.get::<Option<i64>>("cached_generation")? == Some(generation);
            // Kept tallies another version wrote in another shape are computed again.
            let tallies = row.get::<Option<String>>("tallies")?.filter(|_| current_kept);
            match tallies.and_then(|json| serde_json::from_str::<Vec<RawTally>>(&json).ok()) {
                Some(kept) => raw.extend(kept),
                None => {
                    current.insert(key, generation);
                }
            }
        }
        // What the summary rows did not give: the stale months (one statement over their
        // span) and the window's partial months.
        let stale: Vec<Span> = months
            .iter()
            .filter(|(lo, _)| specialties.iter().any(|s| current.contains_key(&(s.clone(), *lo))))
            .copied()
            .collect();
        let mut fresh: HashMap<(String, String), Vec<RawTally>> = HashMap::new();
        for specialty in &query.specialties {
            // Each specialty's stale months, computed over their span.
            let own =
                |(lo, _): &&Span| current.contains_key(&(specialty.as_str().to_string(), *lo));
            let mine: Vec<&Span> = stale.iter().filter(own).collect();
            let (Some((lo, _)), Some((_, hi))) = (mine.first(), mine.last()) else { continue };
            let span =
                ReportQuery { starts_at: *lo, ends_at: *hi, specialties: vec![specialty.clone()] };
            for t in computed(&mut tx, &span, group).await? {
                fresh.entry((t.1.clone(), t.3.clone())).or_default().push(t);
            }
        }
        for (lo, hi) in edges {
            let part = ReportQuery { starts_at: lo, ends_at: hi, ..query.clone() };
            raw.extend(computed(&mut tx, &part, group).await?);
        }
        tx.commit().await?;
        // Keep each stale month's tallies (an empty month too) at the generation read.
        let mut keep = Vec::new();
        for (lo, _) in &stale {
            let month = Month::of(*lo).to_string();
            for specialty in &specialties {
                let Some(generation) = current.get(&(specialty.clone(), *lo)) else { continue };
                let tallies = fresh.remove(&(specialty.clone(), month.clone())).unwrap_or_default();
                let json = serde_json::to_string(&tallies)
                    .map_err(|e| StoreError::Database(sqlx::Error::Encode(e.into())))?;
                keep.push(args![specialty.clone(), *lo, group.as_str(), *generation, json]);
                raw.extend(tallies);
            }
        }
        // Rows of a stale month for a specialty whose summary was current stay unused.
        if !keep.is_empty() {
            let mut tx = self.db.write().await?;
            for values in keep {
                tx.run(KEEP_SUMMARY, values).await?;
            }
            tx.commit().await?;
        }
        raw.iter().map(tally_row).collect()
    }

    /// Makes sure each (specialty, month) has its summary row.
    async fn ensure_report_months(
        &self, specialties: &[String], months: &[Span],
    ) -> Result<(), StoreError> {
        let (Some((lo, _)), Some((_, hi))) = (months.first(), months.last()) else {
            return Ok(());
        };
        let sql = "SELECT specialty, starts_at FROM report_months \
                   WHERE starts_at >= $1 AND starts_at < $2 AND specialty = ANY($3)";
        let found = self.db.all(sql, args![*lo, *hi, specialties.to_vec()]).await?;
        let mut have = std::collections::HashSet::new();
        for row in &found {
            have.insert((row.get::<String>("specialty")?, row.get::<DateTime<Utc>>("starts_at")?));
        }
        let missing: Vec<(&String, &Span)> = specialties
            .iter()
            .flat_map(|s| months.iter().map(move |m| (s, m)))
            .filter(|(s, (lo, _))| !have.contains(&((*s).clone(), *lo)))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let mut tx = self.db.write().await?;
        for (specialty, (lo, hi)) in missing {
            let sql = "INSERT INTO report_months (specialty, starts_at, ends_at) \
                       VALUES ($1, $2, $3) ON CONFLICT (specialty, starts_at) DO NOTHING";
            tx.run(sql, args![specialty.clone(), *lo, *hi]).await?;
        }
        tx.commit().await
    }

    /// Every specialty's waiting-time targets (the defaults where none were set).
    #[tracing::instrument(skip_all)]
    pub async fn wait_targets(&self) -> Result<HashMap<Specialty, Vec<WaitTarget>>, StoreError> {
        let found = self.db.all("SELECT slug, wait_targets FROM specialties", args![]).await?;
        let mut out = HashMap::new();
        for row in &found {
            let targets = match row.get::<Option<String>>("wait_targets")? {
                Some(json) => serde_json::from_str(&json)
                    .map_err(|_| StoreError::corrupt("specialties.wait_targets"))?,
                None => default_targets(),
            };
            out.insert(rows::specialty(row, "slug")?, targets);
        }
        Ok(out)
    }

    /// Replaces a specialty's targets, audited in the same transaction.
    #[tracing::instrument(skip_all, fields(specialty = %specialty))]
    pub async fn set_wait_targets(
        &self, specialty: &Specialty, targets: &[WaitTarget], audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(targets)
            .map_err(|e| StoreError::Database(sqlx::Error::Encode(e.into())))?;
        let mut tx = self.db.write().await?;
        let sql = "UPDATE specialties SET wait_targets = $1 WHERE slug = $2";
        if tx.run(sql, args![json, specialty.as_str()]).await? == 0 {
            return Err(StoreError::NotFound("specialty"));
        }
        super::audit::append_audit_in(&mut tx, audit).await?;
        tx.commit().await
    }

    /// Every practice's list size.
    #[tracing::instrument(skip_all)]
    pub async fn list_sizes(&self) -> Result<Vec<(ListSize, DateTime<Utc>)>, StoreError> {
        let sql = "SELECT * FROM practice_list_sizes ORDER BY ods_code";
        let found = self.db.all(sql, args![]).await?;
        found
            .iter()
            .map(|r| {
                let ods_code = rows::parsed(r, "ods_code", OdsCode::parse)?;
                let size = ListSize { ods_code, list_size: rows::count(r, "list_size")? };
                Ok((size, r.get("imported_at")?))
            })
            .collect()
    }

    /// Stores (adds or replaces) list sizes, audited in the same transaction.
    #[tracing::instrument(skip_all, fields(rows = sizes.len()))]
    pub async fn import_list_sizes(
        &self, sizes: &[ListSize], by: crate::domain::UserId, audit: NewAuditEvent,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.write().await?;
        let sql =
            "INSERT INTO practice_list_sizes (ods_code, list_size, imported_at, imported_by) \
                   VALUES ($1, $2, $3, $4) ON CONFLICT (ods_code) DO UPDATE SET \
                   list_size = excluded.list_size, imported_at = excluded.imported_at, \
                   imported_by = excluded.imported_by";
        for s in sizes {
            tx.run(sql, args![s.ods_code.as_str(), s.list_size, now, by]).await?;
        }
        super::audit::append_audit_in(&mut tx, audit).await?;
        tx.commit().await
    }

    /// The names of the practices known by letters (issue 16), by ODS code.
    #[tracing::instrument(skip_all)]
    pub async fn practice_names(&self) -> Result<HashMap<String, String>, StoreError> {
        let found = self.db.all("SELECT ods_code, name FROM practices", args![]).await?;
        found.iter().map(|r| Ok((r.get("ods_code")?, r.get("name")?))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uk_clocks_change_on_the_last_sundays_of_march_and_october() {
        assert_eq!(last_sunday(2025, 3).to_string(), "2025-03-30");
        assert_eq!(last_sunday(2025, 10).to_string(), "2025-10-26");
        assert_eq!(last_sunday(2026, 3).to_string(), "2026-03-29");
        assert_eq!(last_sunday(2026, 10).to_string(), "2026-10-25");
    }

    #[test]
    fn fragments_are_spelled_for_each_backend() {
        let query = ReportQuery {
            starts_at: "2026-01-01T00:00:00Z".parse().unwrap(),
            ends_at: "2026-02-01T00:00:00Z".parse().unwrap(),
            specialties: vec![],
        };
        let pg = Dialect::new(true, &query);
        let spelled = pg.spell("{days({local(a)}, COALESCE(b, c))}", TallyGroup::Month);
        assert_eq!(spelled, "((((a) AT TIME ZONE 'Europe/London')::date) - (COALESCE(b, c)))");
        let lite = Dialect::new(false, &query);
        let spelled = lite.spell("{local(x)}", TallyGroup::Month);
        assert!(spelled
            .starts_with("date(x, CASE WHEN x < '2023-03-26T01:00:00+00:00' THEN '+0 hours'"));
        assert!(spelled.contains("WHEN x < '2023-10-29T01:00:00+00:00' THEN '+1 hours'"));
    }
}
