//! Time windows used by list filters and reports (`from`/`to`, RFC 3339), and the one
//! parser of calendar dates (`YYYY-MM-DD`) that every date field goes through.

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use super::parse::ParseError;

/// A half-open window `[from, to)`; either end may be open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TimeWindow {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

impl TimeWindow {
    pub fn parse(from: Option<&str>, to: Option<&str>) -> Result<Self, ParseError> {
        let instant = |raw: &str, field: &'static str| {
            DateTime::parse_from_rfc3339(raw.trim())
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| ParseError::new("invalid_time", field, "must be an RFC 3339 time"))
        };
        let window = Self {
            from: from.map(|f| instant(f, "from")).transpose()?,
            to: to.map(|t| instant(t, "to")).transpose()?,
        };
        if let (Some(f), Some(t)) = (window.from, window.to) {
            if f >= t {
                return Err(ParseError::new("invalid_time_window", "to", "must be after from"));
            }
        }
        Ok(window)
    }

    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.from.is_none_or(|f| t >= f) && self.to.is_none_or(|to| t < to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        let w = TimeWindow::parse(Some("2026-01-01T00:00:00Z"), Some("2026-02-01T00:00:00+01:00"))
            .unwrap();
        assert!(w.contains("2026-01-15T12:00:00Z".parse().unwrap()));
        assert!(!w.contains("2026-01-31T23:00:00Z".parse().unwrap()));
        assert_eq!(TimeWindow::parse(Some("yesterday"), None).unwrap_err().code, "invalid_time");
        assert_eq!(
            TimeWindow::parse(Some("2026-02-01T00:00:00Z"), Some("2026-01-01T00:00:00Z"))
                .unwrap_err()
                .code,
            "invalid_time_window"
        );
        assert_eq!(TimeWindow::parse(None, None).unwrap(), TimeWindow::default());
    }
}

/// The years a clinical record's dates may fall in. Both databases store these; a date
/// outside them is a typing error, not a date (PostgreSQL refuses years before 4713 BC
/// and SQLite would sort a negative year wrongly).
const YEARS: std::ops::RangeInclusive<i32> = 1900..=2200;

/// A calendar date written exactly as `YYYY-MM-DD`, in 1900–2200: `422 invalid_date`
/// otherwise.
pub fn parse_calendar_date(raw: &str, field: &'static str) -> Result<NaiveDate, ParseError> {
    parse_iso_date(raw).filter(|d| YEARS.contains(&d.year())).ok_or_else(|| {
        ParseError::new(
            "invalid_date",
            field,
            "must be a date as YYYY-MM-DD, between 1900 and 2200",
        )
    })
}

/// A real date written exactly as `YYYY-MM-DD` (four-digit year, no sign), whatever the
/// year; callers with limits of their own (a date of birth) check them.
pub fn parse_iso_date(raw: &str) -> Option<NaiveDate> {
    let raw = raw.trim();
    let shaped = raw.len() == 10
        && raw.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    shaped.then(|| NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok()).flatten()
}

#[cfg(test)]
mod date_tests {
    use super::*;

    #[test]
    fn calendar_dates_are_strict() {
        assert_eq!(
            parse_calendar_date(" 2026-04-01 ", "from").unwrap(),
            NaiveDate::from_ymd_opt(2026, 4, 1).unwrap()
        );
        for bad in [
            "-5000-01-01",
            "+2026-04-01",
            "2026-4-1",
            "12026-04-01",
            "1899-12-31",
            "2201-01-01",
            "2026-02-30",
            "",
            "2026/04/01",
        ] {
            assert_eq!(parse_calendar_date(bad, "from").unwrap_err().code, "invalid_date", "{bad}");
        }
    }
}
