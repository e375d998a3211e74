//! The gateway's one clock and the one way it writes an instant. Every time the server stores
//! or shows (versions, audit entries, telemetry, tokens) comes from [`now`], so an answer
//! written from memory and one read back from the database show the same instant.

use time::OffsetDateTime;

/// The current time, truncated to the millisecond that is stored.
pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(now)
}

/// RFC 3339 in UTC with milliseconds, as every answer shows times: the audit log's own form
/// (`promptgate_audit::entry::format_timestamp`), so a time reads the same in an answer and in a
/// hashed entry.
pub fn rfc3339(t: OffsetDateTime) -> String {
    promptgate_audit::entry::format_timestamp(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_whole_milliseconds_and_rfc3339_shows_them() {
        let t = now();
        assert_eq!(t.nanosecond() % 1_000_000, 0);
        let at = time::macros::datetime!(2026-12-07 05:43:47.123456 UTC);
        assert_eq!(rfc3339(at), "2026-12-07T05:43:47.123Z");
    }
}
