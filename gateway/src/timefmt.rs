//! The two timestamp formats S3 speaks: HTTP dates in headers, ISO 8601 in XML and JSON.

/// `Last-Modified` style date (RFC 7231).
pub fn http_date(ms: u64) -> String {
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
}

/// XML timestamp as S3 writes it: `2009-10-12T17:50:30.000Z`.
pub fn iso8601(ms: u64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    at.format(&time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    ))
    .unwrap_or_default()
}

/// Milliseconds since the epoch of an RFC 3339 timestamp (`2030-01-01T00:00:00Z`,
/// fractions and offsets allowed), as S3 accepts them in headers and XML.
pub fn parse_iso8601(text: &str) -> Option<u64> {
    let at =
        time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339)
            .ok()?;
    u64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}
