//! Sample times as text: `2023-11-14 22:13:20 UTC` (proleptic Gregorian calendar, no time zone database).

/// `YYYY-MM-DD hh:mm:ss UTC` for milliseconds since the Unix epoch; `time unknown` for 0 (the snapshot model's
/// "not known").
pub fn utc_text(unix_ms: i64) -> String {
    if unix_ms == 0 {
        return "time unknown".into();
    }
    let seconds = unix_ms.div_euclid(1000);
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// Year, month (1–12) and day (1–31) of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        // 1 700 000 000 s after the epoch is 2023-11-14 22:13:20 UTC.
        assert_eq!(utc_text(1_700_000_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc_text(1), "1970-01-01 00:00:00 UTC");
        // 2000-02-29 12:00:00 UTC = 951 825 600 s.
        assert_eq!(utc_text(951_825_600_999), "2000-02-29 12:00:00 UTC");
        // One second before the epoch.
        assert_eq!(utc_text(-1000), "1969-12-31 23:59:59 UTC");
        assert_eq!(utc_text(0), "time unknown");
    }
}
