//! Time helpers: RFC 3339 formatting and parsing (UTC, nanoseconds) for
//! log lines and image configs, and `--since`/`--until` parsing, which also
//! takes unix seconds and Go-style durations.
//!
//! Invariant: formatting then parsing a time gives it back exactly, before
//! the epoch too (proleptic Gregorian calendar, no leap seconds).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SECS_PER_DAY: i64 = 86_400;

/// Formats `time` in UTC with nine fraction digits, as Docker's logs do
/// (`2026-11-26T01:02:03.123456789Z`).
pub fn format_rfc3339(time: SystemTime) -> String {
    let (secs, nanos) = to_unix(time);
    let (year, month, day) = civil_from_days(secs.div_euclid(SECS_PER_DAY));
    let clock = secs.rem_euclid(SECS_PER_DAY);
    let (hour, minute, second) = (clock / 3600, clock / 60 % 60, clock % 60);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{nanos:09}Z")
}

/// Parses an RFC 3339 time: `Z` or a `±HH:MM` offset, 0 to 9 (or more,
/// ignored past nanoseconds) fraction digits.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let s = text.trim();
    if !s.is_ascii() || s.len() < 20 || !matches!(s.as_bytes()[10], b'T' | b't') {
        return None;
    }
    let days = parse_date(&s[..10])?;
    let clock = parse_clock(&s[11..19])?;
    let (nanos, zone) = split_fraction(&s[19..])?;
    let offset = parse_zone(zone)?;
    from_unix(days * SECS_PER_DAY + clock - offset, nanos)
}

/// Parses `--since`/`--until`: RFC 3339, unix seconds (`1700000000.5`) or a
/// duration before `now` (`10m`, `1h30m`, `42s`, `1.5h`).
pub fn parse_since(text: &str, now: SystemTime) -> Option<SystemTime> {
    let text = text.trim();
    parse_rfc3339(text)
        .or_else(|| parse_unix(text))
        .or_else(|| now.checked_sub(parse_duration(text)?))
}

fn to_unix(time: SystemTime) -> (i64, u32) {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => (after.as_secs() as i64, after.subsec_nanos()),
        Err(e) => {
            let before = e.duration();
            let secs = -(before.as_secs() as i64);
            match before.subsec_nanos() {
                0 => (secs, 0),
                n => (secs - 1, 1_000_000_000 - n),
            }
        }
    }
}

fn from_unix(secs: i64, nanos: u32) -> Option<SystemTime> {
    let whole = Duration::from_secs(secs.unsigned_abs());
    let base = if secs >= 0 {
        UNIX_EPOCH.checked_add(whole)
    } else {
        UNIX_EPOCH.checked_sub(whole)
    };
    base?.checked_add(Duration::from_nanos(nanos.into()))
}

/// `YYYY-MM-DD` → days since 1970-01-01.
fn parse_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (year, month, day) = (number(&s[..4])?, number(&s[5..7])?, number(&s[8..])?);
    let valid = (1..=12).contains(&month) && (1..=days_in_month(year, month)).contains(&day);
    valid.then(|| days_from_civil(year, month, day))
}

/// `HH:MM:SS` → seconds into the day.
fn parse_clock(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b[2] != b':' || b[5] != b':' {
        return None;
    }
    let (hour, minute, second) = (number(&s[..2])?, number(&s[3..5])?, number(&s[6..])?);
    (hour < 24 && minute < 60 && second < 60).then_some(hour * 3600 + minute * 60 + second)
}

/// Splits an optional `.digits` fraction off the front of `rest`.
fn split_fraction(rest: &str) -> Option<(u32, &str)> {
    let Some(digits) = rest.strip_prefix('.') else {
        return Some((0, rest));
    };
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    Some((fraction_nanos(&digits[..end])?, &digits[end..]))
}

/// `Z` or `±HH:MM` → seconds east of UTC.
fn parse_zone(zone: &str) -> Option<i64> {
    if zone.eq_ignore_ascii_case("z") {
        return Some(0);
    }
    let sign = match zone.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let hhmm = &zone[1..];
    if hhmm.len() != 5 || hhmm.as_bytes()[2] != b':' {
        return None;
    }
    let (hour, minute) = (number(&hhmm[..2])?, number(&hhmm[3..])?);
    (hour < 24 && minute < 60).then_some(sign * (hour * 3600 + minute * 60))
}

/// Fraction digits (the part after the dot) → nanoseconds.
fn fraction_nanos(digits: &str) -> Option<u32> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let kept = &digits[..digits.len().min(9)];
    let value: u32 = kept.parse().ok()?;
    Some(value * 10u32.pow(9 - kept.len() as u32))
}

/// A non-empty run of ASCII digits as a number.
fn number(s: &str) -> Option<i64> {
    let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| s.parse().ok()).flatten()
}

fn parse_unix(text: &str) -> Option<SystemTime> {
    let (secs, nanos) = match text.split_once('.') {
        Some((secs, fraction)) => (secs, fraction_nanos(fraction)?),
        None => (text, 0),
    };
    from_unix(number(secs)?, nanos)
}

/// A Go-style duration: one or more `<number><unit>` terms, unit one of
/// `ns us µs ms s m h`, number possibly fractional.
fn parse_duration(text: &str) -> Option<Duration> {
    if text.is_empty() {
        return None;
    }
    let (mut rest, mut total) = (text, 0u128);
    while !rest.is_empty() {
        let (nanos, tail) = duration_term(rest)?;
        total = total.checked_add(nanos)?;
        rest = tail;
    }
    Some(Duration::from_nanos(u64::try_from(total).ok()?))
}

fn duration_term(s: &str) -> Option<(u128, &str)> {
    let is_numeric = |c: char| c.is_ascii_digit() || c == '.';
    let (number_part, rest) = s.split_at(s.find(|c| !is_numeric(c)).unwrap_or(s.len()));
    let (unit, tail) = rest.split_at(rest.find(is_numeric).unwrap_or(rest.len()));
    let scale: u128 = match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    };
    let (whole, fraction) = number_part.split_once('.').unwrap_or((number_part, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let whole = if whole.is_empty() { 0 } else { number(whole)? };
    let fraction = match fraction {
        "" => 0,
        digits => u128::from(fraction_nanos(digits)?) * scale / 1_000_000_000,
    };
    Some((u128::try_from(whole).ok()? * scale + fraction, tail))
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian
/// (Howard Hinnant's civil-from-days).
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

/// (year, month, day) → days since 1970-01-01; inverse of [`civil_from_days`].
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::tests::at;

    #[test]
    fn format_rfc3339_prints_utc_with_nine_fraction_digits() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        assert_eq!(format_rfc3339(t), "2023-11-14T22:13:20.123456789Z");
        assert_eq!(format_rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
    }

    #[test]
    fn format_rfc3339_handles_times_before_the_epoch() {
        let t = UNIX_EPOCH - Duration::from_nanos(1);
        assert_eq!(format_rfc3339(t), "1969-12-31T23:59:59.999999999Z");
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59.999999999Z"), Some(t));
    }

    #[test]
    fn rfc3339_round_trips_across_leap_days_and_centuries() {
        for text in [
            "2024-02-29T12:00:00.000000001Z",
            "2000-02-29T00:00:00.500000000Z",
            "2100-03-01T23:59:59.999999999Z",
            "1999-12-31T23:59:59.000000000Z",
            "2026-11-26T01:02:03.123456789Z",
        ] {
            assert_eq!(format_rfc3339(parse_rfc3339(text).unwrap()), text);
        }
    }

    #[test]
    fn parse_rfc3339_accepts_offsets_and_short_fractions() {
        let expected = UNIX_EPOCH + Duration::new(1_700_000_000, 500_000_000);
        assert_eq!(parse_rfc3339("2023-11-14T23:13:20.5+01:00"), Some(expected));
        assert_eq!(parse_rfc3339("2023-11-14T20:43:20.5-01:30"), Some(expected));
        assert_eq!(parse_rfc3339("2023-11-14t22:13:20.5z"), Some(expected));
        let whole = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20Z"), Some(whole));
    }

    #[test]
    fn parse_rfc3339_rejects_malformed_times() {
        for text in [
            "",
            "2023-11-14T22:13:20",
            "2023-02-29T00:00:00Z",
            "2023-13-01T00:00:00Z",
            "2023-11-14T24:00:00Z",
            "2023-11-14T22:13:20.Z",
            "2023-11-14T22:13:20+0100",
            "2023-11-14 22:13:20Z",
            "2023-11-14T22:13:2éZ",
        ] {
            assert_eq!(parse_rfc3339(text), None, "{text:?}");
        }
    }

    #[test]
    fn parse_since_accepts_rfc3339_unix_seconds_and_durations() {
        let now = at(1_700_000_000);
        let since = |text| parse_since(text, now);
        assert_eq!(since("2023-11-14T22:13:20Z"), Some(now));
        assert_eq!(since("1700000000"), Some(now));
        assert_eq!(
            since("1700000000.5"),
            Some(now + Duration::from_millis(500))
        );
        assert_eq!(since("10m"), Some(at(1_700_000_000 - 600)));
        assert_eq!(since("1h30m"), Some(at(1_700_000_000 - 5400)));
        assert_eq!(since("42s"), Some(at(1_700_000_000 - 42)));
        assert_eq!(since("1.5h"), Some(at(1_700_000_000 - 5400)));
        assert_eq!(since("250ms"), Some(now - Duration::from_millis(250)));
    }

    #[test]
    fn parse_since_rejects_garbage() {
        for text in ["", "yesterday", "10x", "h", ".s", "1..5", "-5m"] {
            assert_eq!(parse_since(text, at(100)), None, "{text:?}");
        }
    }
}
