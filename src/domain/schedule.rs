//! Sessions (one MDT meeting) and weekly series, with the pure rule that turns a series
//! into session start times in clinic local time (Europe/London, across DST changes).

use chrono::{DateTime, Days, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use uuid::Uuid;

use super::parse::ParseError;
use super::specialty::Specialty;
use super::user::UserId;

/// Clinics keep UK local time; series are defined in it.
pub const CLINIC_TZ: Tz = chrono_tz::Europe::London;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    Scheduled,
    Published,
    Live,
    Closed,
    Cancelled,
}

impl SessionState {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Scheduled => "scheduled",
            SessionState::Published => "published",
            SessionState::Live => "live",
            SessionState::Closed => "closed",
            SessionState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            SessionState::Scheduled,
            SessionState::Published,
            SessionState::Live,
            SessionState::Closed,
            SessionState::Cancelled,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// The shape shared by a series and each of its sessions.
#[derive(Clone, Debug, Serialize)]
pub struct SessionPlan {
    pub specialty: Specialty,
    pub title: String,
    pub duration_minutes: u32,
    pub case_capacity: u32,
    pub minutes_per_case: u32,
    pub booking_cutoff_hours: u32,
    pub chair_id: UserId,
    pub teaching: bool,
}

impl SessionPlan {
    /// Checks the numbers make a meeting that can happen.
    pub fn check(&self) -> Result<(), ParseError> {
        let bad = |field, msg: &str| Err(ParseError::new("invalid_value", field, msg));
        if !(15..=480).contains(&self.duration_minutes) {
            return bad("duration_minutes", "must be between 15 and 480");
        }
        if !(1..=50).contains(&self.case_capacity) {
            return bad("case_capacity", "must be between 1 and 50");
        }
        if !(1..=120).contains(&self.minutes_per_case) {
            return bad("minutes_per_case", "must be between 1 and 120");
        }
        if self.booking_cutoff_hours > 24 * 28 {
            return bad("booking_cutoff_hours", "must be at most 672");
        }
        Ok(())
    }
}

/// A weekly series: `weeks` sessions starting on `first_date` at `local_time`.
#[derive(Clone, Debug)]
pub struct NewSeries {
    pub plan: SessionPlan,
    pub first_date: NaiveDate,
    pub local_time: NaiveTime,
    pub weeks: u32,
}

impl NewSeries {
    /// The UTC start of each weekly session. A local time that does not exist on a day
    /// (inside the spring-forward gap) moves one hour later; an ambiguous one takes the
    /// earlier instant.
    pub fn occurrences(&self) -> Vec<DateTime<Utc>> {
        (0..self.weeks)
            .filter_map(|week| self.first_date.checked_add_days(Days::new(7 * u64::from(week))))
            .filter_map(|date| {
                let local = date.and_time(self.local_time);
                CLINIC_TZ
                    .from_local_datetime(&local)
                    .earliest()
                    .or_else(|| {
                        CLINIC_TZ
                            .from_local_datetime(&(local + chrono::Duration::hours(1)))
                            .earliest()
                    })
                    .map(|t| t.with_timezone(&Utc))
            })
            .collect()
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Series {
    pub id: Uuid,
    #[serde(flatten)]
    pub plan: SessionPlan,
    pub first_date: NaiveDate,
    pub local_time: NaiveTime,
    pub weeks: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct Session {
    pub id: Uuid,
    pub series_id: Option<Uuid>,
    #[serde(flatten)]
    pub plan: SessionPlan,
    pub starts_at: DateTime<Utc>,
    pub booked: u32,
    pub state: SessionState,
}

#[cfg(test)]
impl Session {
    /// A spinal session for unit tests: `capacity` places, `booked` taken, starting at
    /// `starts_at`.
    pub(crate) fn example(
        chair: UserId, starts_at: DateTime<Utc>, capacity: u32, booked: u32, state: SessionState,
    ) -> Session {
        Session {
            id: Uuid::new_v4(),
            series_id: None,
            plan: SessionPlan {
                specialty: Specialty::parse("spinal").expect("a specialty"),
                title: "Spinal MDT".into(),
                duration_minutes: 90,
                case_capacity: capacity,
                minutes_per_case: 10,
                booking_cutoff_hours: 24,
                chair_id: chair,
                teaching: false,
            },
            starts_at,
            booked,
            state,
        }
    }
}

impl Session {
    /// Bookings close this long before the start.
    pub fn booking_closes_at(&self) -> DateTime<Utc> {
        self.starts_at - chrono::Duration::hours(i64::from(self.plan.booking_cutoff_hours))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(first: &str, weeks: u32) -> NewSeries {
        NewSeries {
            plan: SessionPlan {
                specialty: Specialty::parse("rheumatology").unwrap(),
                title: "Rheumatology MDT".into(),
                duration_minutes: 90,
                case_capacity: 8,
                minutes_per_case: 10,
                booking_cutoff_hours: 48,
                chair_id: UserId::new(),
                teaching: false,
            },
            first_date: first.parse().unwrap(),
            local_time: NaiveTime::from_hms_opt(12, 30, 0).unwrap(),
            weeks,
        }
    }

    #[test]
    fn weekly_sessions_keep_local_time_across_dst() {
        // Tuesdays from 2026-10-20; clocks go back on Sunday 2026-10-25.
        let starts = series("2026-10-20", 2).occurrences();
        assert_eq!(starts[0].to_rfc3339(), "2026-10-20T11:30:00+00:00");
        assert_eq!(starts[1].to_rfc3339(), "2026-10-27T12:30:00+00:00");
    }

    #[test]
    fn plan_limits() {
        let mut s = series("2026-10-20", 1);
        assert!(s.plan.check().is_ok());
        s.plan.case_capacity = 0;
        assert_eq!(s.plan.check().unwrap_err().field, "case_capacity");
    }
}

/// A session as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionView {
    pub id: Uuid,
    series_id: Option<Uuid>,
    #[schema(value_type = String)]
    specialty: Specialty,
    title: String,
    starts_at: DateTime<Utc>,
    duration_minutes: u32,
    capacity: u32,
    booked: u32,
    minutes_per_case: u32,
    booking_cutoff_hours: u32,
    booking_closes_at: DateTime<Utc>,
    #[schema(value_type = Uuid)]
    chair_id: UserId,
    teaching: bool,
    state: SessionState,
}

impl From<&Session> for SessionView {
    fn from(s: &Session) -> Self {
        Self {
            id: s.id,
            series_id: s.series_id,
            specialty: s.plan.specialty.clone(),
            title: s.plan.title.clone(),
            starts_at: s.starts_at,
            duration_minutes: s.plan.duration_minutes,
            capacity: s.plan.case_capacity,
            booked: s.booked,
            minutes_per_case: s.plan.minutes_per_case,
            booking_cutoff_hours: s.plan.booking_cutoff_hours,
            booking_closes_at: s.booking_closes_at(),
            chair_id: s.plan.chair_id,
            teaching: s.plan.teaching,
            state: s.state,
        }
    }
}
