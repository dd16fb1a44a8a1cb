//! Times as people and scripts write them in filters (`--since`, `?since=`, the console's date
//! fields): an RFC 3339 timestamp, or a date meaning midnight UTC that day.

/// Seconds since the epoch of `v`, or `None` when it is neither form.
pub fn parse(v: &str) -> Option<i64> {
    let v = v.trim();
    if let Ok(t) = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339) {
        return Some(t.unix_timestamp());
    }
    time::Date::parse(v, time::macros::format_description!("[year]-[month]-[day]"))
        .ok()
        .map(|d| d.midnight().assume_utc().unix_timestamp())
}

/// What [`parse`] takes, for refusals.
pub const FORMS: &str =
    "a date (YYYY-MM-DD, midnight UTC) or an RFC 3339 time (2026-12-07T10:00:00Z)";

#[cfg(test)]
mod tests {
    #[test]
    fn dates_and_timestamps() {
        assert_eq!(super::parse("1970-01-02"), Some(86_400));
        assert_eq!(super::parse("1970-01-01T00:01:00Z"), Some(60));
        assert_eq!(super::parse("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(super::parse("yesterday"), None);
        assert_eq!(super::parse("1970-13-01"), None);
    }
}
