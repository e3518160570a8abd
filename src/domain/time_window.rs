//! Time windows used by list filters and reports (`from`/`to`, RFC 3339).

use chrono::{DateTime, Utc};

use super::ParseError;

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
                return Err(ParseError::new(
                    "invalid_time_window",
                    "to",
                    "must be after from",
                ));
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
        let w = TimeWindow::parse(
            Some("2026-01-01T00:00:00Z"),
            Some("2026-02-01T00:00:00+01:00"),
        )
        .unwrap();
        assert!(w.contains("2026-01-15T12:00:00Z".parse().unwrap()));
        assert!(!w.contains("2026-01-31T23:00:00Z".parse().unwrap()));
        assert_eq!(
            TimeWindow::parse(Some("yesterday"), None).unwrap_err().code,
            "invalid_time"
        );
        assert_eq!(
            TimeWindow::parse(Some("2026-02-01T00:00:00Z"), Some("2026-01-01T00:00:00Z"))
                .unwrap_err()
                .code,
            "invalid_time_window"
        );
        assert_eq!(
            TimeWindow::parse(None, None).unwrap(),
            TimeWindow::default()
        );
    }
}
