//! Timestamps in the application's columns: read in whatever text form the database gives back,
//! written in the form the application uses.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::Deserialize;

/// How a timestamp column (`updated_at_column`, `expiry_column`) is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeFormat {
    /// SQL text, `2026-12-01 07:03:06.123` in UTC (with `+00:00` on PostgreSQL, where the value
    /// is cast to the column's own type): what SQLAlchemy, TypeORM and Django write.
    #[default]
    Sql,
    /// RFC 3339 text, `2026-12-01T07:03:06.123Z`.
    Rfc3339,
    /// Seconds since the Unix epoch, an integer.
    UnixS,
    /// Milliseconds since the Unix epoch, an integer.
    UnixMs,
}

impl TimeFormat {
    /// `at` as this column's text, for a backend that casts (`postgres`) or stores as given.
    pub(crate) fn format(self, at: DateTime<Utc>, postgres: bool) -> String {
        match self {
            TimeFormat::Sql if postgres => at.format("%Y-%m-%d %H:%M:%S%.3f+00:00").to_string(),
            TimeFormat::Sql => at.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
            TimeFormat::Rfc3339 => at.to_rfc3339_opts(SecondsFormat::Millis, true),
            TimeFormat::UnixS => at.timestamp().to_string(),
            TimeFormat::UnixMs => at.timestamp_millis().to_string(),
        }
    }

    /// A column's text (as `CAST(col AS TEXT)` returns it) as an instant.
    pub(crate) fn parse(self, text: &str) -> Option<DateTime<Utc>> {
        let text = text.trim();
        match self {
            TimeFormat::Sql | TimeFormat::Rfc3339 => parse_text_timestamp(text),
            TimeFormat::UnixS => text
                .parse::<f64>()
                .ok()
                .and_then(|s| unix_millis((s * 1000.0).round())),
            TimeFormat::UnixMs => text
                .parse::<f64>()
                .ok()
                .and_then(|ms| unix_millis(ms.round())),
        }
    }
}

/// Milliseconds since the epoch (as a float that holds an integer) as an instant.
pub(crate) fn unix_millis(ms: f64) -> Option<DateTime<Utc>> {
    if !ms.is_finite() || ms.abs() > 1e16 {
        return None;
    }
    // In range after the check above: at most 1e16, well within i64.
    #[allow(clippy::cast_possible_truncation)]
    DateTime::from_timestamp_millis(ms as i64)
}

/// RFC 3339 or SQL text (`2026-12-01 07:03:06.123+00`, `2026-12-01 07:03:06`, with `T` or a
/// space); a value without an offset is UTC.
pub(crate) fn parse_text_timestamp(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    let spaced = text.replacen('T', " ", 1);
    for format in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%:z"] {
        if let Ok(t) = DateTime::parse_from_str(&spaced, format) {
            return Some(t.with_timezone(&Utc));
        }
    }
    let naive = spaced.trim_end_matches('Z');
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(naive, format) {
            return Some(t.and_utc());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_text_forms_parse_as_utc() {
        let want: DateTime<Utc> = "2026-12-01T07:03:06.123Z".parse().unwrap();
        for text in [
            "2026-12-01T07:03:06.123Z",
            "2026-12-01 07:03:06.123+00",
            "2026-12-01 07:03:06.123+00:00",
            "2026-12-01 09:03:06.123+02",
            "2026-12-01 07:03:06.123",
            "2026-12-01T07:03:06.123",
        ] {
            assert_eq!(TimeFormat::Sql.parse(text), Some(want), "{text}");
        }
        let whole: DateTime<Utc> = "2026-12-01T07:03:06Z".parse().unwrap();
        for text in [
            "2026-12-01 07:03:06+00",
            "2026-12-01 07:03:06",
            "2026-12-01T07:03:06",
        ] {
            assert_eq!(TimeFormat::Sql.parse(text), Some(whole), "{text}");
        }
        assert_eq!(TimeFormat::Sql.parse("yesterday"), None);
    }

    #[test]
    fn unix_forms_round_trip() {
        let at: DateTime<Utc> = "2026-12-01T07:03:06Z".parse().unwrap();
        for f in [
            TimeFormat::UnixS,
            TimeFormat::UnixMs,
            TimeFormat::Rfc3339,
            TimeFormat::Sql,
        ] {
            assert_eq!(f.parse(&f.format(at, false)), Some(at), "{f:?}");
            assert_eq!(f.parse(&f.format(at, true)), Some(at), "{f:?}");
        }
        assert_eq!(TimeFormat::UnixMs.parse("not a number"), None);
    }
}
