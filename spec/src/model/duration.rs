//! Go-style durations (`1m30s`, `500ms`, `1.5s`) as Compose reads and prints them.
//!
//! Invariant: a [`Duration`] is never negative and prints exactly as Go's
//! `time.Duration.String()` does, which is what `docker compose config` shows, so
//! parse → print → parse is the identity.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::flex;

const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// A non-negative span of time written in Go's duration syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub std::time::Duration);

/// Why a duration could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason}")]
pub struct DurationError {
    /// The text that was read.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Duration {
    /// Parses Go duration syntax: numbers with units `ns`, `us`, `µs`, `ms`, `s`, `m`, `h`.
    pub fn parse(input: &str) -> Result<Self, DurationError> {
        let fail = |reason| DurationError {
            input: input.to_string(),
            reason,
        };
        let text = input.trim();
        if text == "0" {
            return Ok(Self::default());
        }
        if text.is_empty() {
            return Err(fail("empty duration"));
        }
        if text.starts_with('-') {
            return Err(fail("negative durations are not allowed"));
        }
        let mut rest = text.strip_prefix('+').unwrap_or(text);
        let mut nanos: u128 = 0;
        while !rest.is_empty() {
            let (value, tail) = parse_term(rest).map_err(fail)?;
            nanos = nanos
                .checked_add(value)
                .ok_or_else(|| fail("duration is too long"))?;
            rest = tail;
        }
        Self::from_nanos(nanos).ok_or_else(|| fail("duration is too long"))
    }

    /// Builds a duration from a count of nanoseconds, if it fits.
    fn from_nanos(nanos: u128) -> Option<Self> {
        let secs = u64::try_from(nanos / NANOS_PER_SECOND).ok()?;
        let sub = (nanos % NANOS_PER_SECOND) as u32;
        Some(Self(std::time::Duration::new(secs, sub)))
    }

    /// Length in whole microseconds.
    pub fn as_micros(&self) -> u128 {
        self.0.as_micros()
    }
}

/// Reads one `<number><unit>` term, returning its nanoseconds and the remainder.
fn parse_term(s: &str) -> Result<(u128, &str), &'static str> {
    let number_len = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (number, rest) = s.split_at(number_len);
    let unit_len = rest
        .find(|c: char| c.is_ascii_digit() || c == '.')
        .unwrap_or(rest.len());
    let (unit, rest) = rest.split_at(unit_len);
    let scale = unit_nanos(unit)?;
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && frac.is_empty()) || frac.contains('.') {
        return Err("expected a number before each unit");
    }
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| "number is too large")?
    };
    let value = whole.checked_mul(scale).ok_or("duration is too long")?;
    Ok((value + fraction_nanos(frac, scale), rest))
}

/// Nanoseconds in one of a unit.
fn unit_nanos(unit: &str) -> Result<u128, &'static str> {
    Ok(match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => NANOS_PER_SECOND,
        "m" => 60 * NANOS_PER_SECOND,
        "h" => 3_600 * NANOS_PER_SECOND,
        "" => return Err("missing unit (one of ns, us, ms, s, m, h)"),
        _ => return Err("unknown unit (expected one of ns, us, ms, s, m, h)"),
    })
}

/// Nanoseconds in the fractional digits `frac` of a unit worth `scale`.
fn fraction_nanos(frac: &str, scale: u128) -> u128 {
    let digits = &frac[..frac.len().min(18)];
    let value: u128 = digits.parse().unwrap_or(0);
    value * scale / 10u128.pow(digits.len() as u32)
}

/// Writes `v / 10^prec` with its fraction trimmed of trailing zeros.
fn write_fraction(f: &mut fmt::Formatter<'_>, v: u128, prec: u32) -> fmt::Result {
    let unit = 10u128.pow(prec);
    let (whole, rem) = (v / unit, v % unit);
    if rem == 0 {
        return write!(f, "{whole}");
    }
    let digits = format!("{rem:0width$}", width = prec as usize);
    write!(f, "{whole}.{}", digits.trim_end_matches('0'))
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        match nanos {
            0 => f.write_str("0s"),
            n if n < 1_000 => write!(f, "{n}ns"),
            n if n < 1_000_000 => write_fraction(f, n, 3).and_then(|_| f.write_str("µs")),
            n if n < NANOS_PER_SECOND => write_fraction(f, n, 6).and_then(|_| f.write_str("ms")),
            n => {
                let minutes = n / (60 * NANOS_PER_SECOND);
                let (hours, minutes) = (minutes / 60, minutes % 60);
                if hours > 0 {
                    write!(f, "{hours}h{minutes}m")?;
                } else if minutes > 0 {
                    write!(f, "{minutes}m")?;
                }
                write_fraction(f, n % (60 * NANOS_PER_SECOND), 9)?;
                f.write_str("s")
            }
        }
    }
}

impl FromStr for Duration {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl From<std::time::Duration> for Duration {
    fn from(d: std::time::Duration) -> Self {
        Self(d)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        flex::via(d, |v| match v {
            Value::String(s) => Self::parse(&s).map_err(|e| e.to_string()),
            other => Err(format!(
                "expected a duration like \"1m30s\", found {}",
                flex::kind(&other)
            )),
        })
    }
}

impl JsonSchema for Duration {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string"})
    }
}

/// Microseconds given as an integer or as a duration string (`cpu_rt_period`).
pub(crate) fn opt_micros<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    flex::via(d, |v| flex::nullable(v, to_micros))
}

/// Converts an integer or a duration string to microseconds.
fn to_micros(v: Value) -> Result<i64, String> {
    if let Value::String(s) = &v
        && s.trim().parse::<i64>().is_err()
    {
        let d = Duration::parse(s).map_err(|e| e.to_string())?;
        return i64::try_from(d.as_micros()).map_err(|_| "duration is too long".to_string());
    }
    flex::to_i64(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(s: &str) -> String {
        Duration::parse(s).unwrap().to_string()
    }

    #[test]
    fn durations_parse_and_print_like_go() {
        assert_eq!(round("1m30s"), "1m30s");
        assert_eq!(round("90s"), "1m30s");
        assert_eq!(round("10s"), "10s");
        assert_eq!(round("500ms"), "500ms");
        assert_eq!(round("1h"), "1h0m0s");
        assert_eq!(round("1.5s"), "1.5s");
        assert_eq!(round("1us"), "1µs");
        assert_eq!(round("1.5ms"), "1.5ms");
        assert_eq!(round("0"), "0s");
        assert_eq!(round("2h45m0.5s"), "2h45m0.5s");
        assert_eq!(round("100ns"), "100ns");
    }

    #[test]
    fn durations_know_their_length() {
        let d = Duration::parse("1m30s").unwrap();
        assert_eq!(d.0, std::time::Duration::from_secs(90));
    }

    #[test]
    fn invalid_durations_say_what_is_wrong() {
        let err = Duration::parse("10").unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid duration \"10\": missing unit (one of ns, us, ms, s, m, h)"
        );
        assert!(
            Duration::parse("10x")
                .unwrap_err()
                .to_string()
                .contains("unknown unit")
        );
        assert!(
            Duration::parse("-1s")
                .unwrap_err()
                .to_string()
                .contains("negative")
        );
        assert!(
            Duration::parse("")
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
        assert!(
            Duration::parse("s")
                .unwrap_err()
                .to_string()
                .contains("expected a number")
        );
    }

    #[test]
    fn durations_serialize_as_go_text() {
        let d: Duration = serde_json::from_str("\"1.5s\"").unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"1.5s\"");
        assert!(serde_json::from_str::<Duration>("5").is_err());
    }

    #[test]
    fn realtime_periods_accept_integers_and_durations() {
        assert_eq!(to_micros(serde_json::json!(1000)), Ok(1000));
        assert_eq!(to_micros(serde_json::json!("1000")), Ok(1000));
        assert_eq!(to_micros(serde_json::json!("1ms")), Ok(1000));
    }
}
