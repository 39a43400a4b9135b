//! Byte sizes (`512m`, `1g`, `1.5gb`, `1024`) as Compose reads them.
//!
//! Units are binary (`k` = 1024), as in Docker's `RAMInBytes`. A [`ByteSize`]
//! serializes as its integer number of bytes, which is how `docker compose config`
//! prints memory limits and `shm_size`.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::flex;

/// A number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct ByteSize(pub u64);

/// Why a byte size could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid size {input:?}: {reason}")]
pub struct ByteSizeError {
    /// The text that was read.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl ByteSize {
    /// Parses `<number>[ ][k|m|g|t|p][i][b]`, case-insensitive, with a decimal number.
    pub fn parse(input: &str) -> Result<Self, ByteSizeError> {
        let fail = |reason| ByteSizeError {
            input: input.to_string(),
            reason,
        };
        let text = input.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(text.len());
        let (number, suffix) = text.split_at(split);
        if number.is_empty() {
            return Err(fail("expected a number of bytes"));
        }
        let multiplier = suffix_multiplier(suffix)
            .ok_or_else(|| fail("unknown unit (expected b, k, m, g, t or p)"))?;
        scale(number, multiplier)
            .map(Self)
            .ok_or_else(|| fail("not a valid number"))
    }
}

/// Multiplier of a unit suffix such as `m`, `MiB`, `gb` or ` k`.
fn suffix_multiplier(suffix: &str) -> Option<u64> {
    let lower = suffix
        .strip_prefix(' ')
        .unwrap_or(suffix)
        .to_ascii_lowercase();
    let unit = lower.strip_suffix('b').unwrap_or(&lower);
    let unit = match unit.strip_suffix('i') {
        Some(u) if !u.is_empty() => u,
        _ => unit,
    };
    let power = match unit {
        "" => 0,
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        "p" => 5,
        _ => return None,
    };
    Some(1024u64.pow(power))
}

/// `number * multiplier`, exact for integers and truncated for decimals.
fn scale(number: &str, multiplier: u64) -> Option<u64> {
    if let Ok(whole) = number.parse::<u64>() {
        return whole.checked_mul(multiplier);
    }
    let value: f64 = number.parse().ok()?;
    let bytes = value * multiplier as f64;
    (bytes.is_finite() && bytes < u64::MAX as f64).then_some(bytes as u64)
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for ByteSize {
    type Err = ByteSizeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Reads a byte size from a number or a string.
fn to_byte_size(v: Value) -> Result<ByteSize, String> {
    match v {
        Value::String(s) => ByteSize::parse(&s).map_err(|e| e.to_string()),
        Value::Number(n) if n.is_f64() => Err(format!(
            "invalid size {n}: a number of bytes must be a whole number"
        )),
        other => flex::to_u64(other).map(ByteSize),
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        flex::via(d, to_byte_size)
    }
}

impl JsonSchema for ByteSize {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "ByteSize".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": ["integer", "string"]})
    }
}

/// Reads a size that may also be `-1` meaning unlimited (`memswap_limit`).
pub(crate) fn opt_signed_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    flex::via(d, |v| flex::nullable(v, to_signed_size))
}

/// Converts `-1` (number or string) or a byte size to a signed count of bytes.
fn to_signed_size(v: Value) -> Result<i64, String> {
    if v.as_i64() == Some(-1) || v.as_str().map(str::trim) == Some("-1") {
        return Ok(-1);
    }
    let size = to_byte_size(v)?;
    i64::try_from(size.0).map_err(|_| "size is too large".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes_with_binary_units_are_read_as_bytes() {
        let parse = |s: &str| ByteSize::parse(s).unwrap().0;
        assert_eq!(parse("512m"), 512 * 1024 * 1024);
        assert_eq!(parse("1g"), 1 << 30);
        assert_eq!(parse("1024"), 1024);
        assert_eq!(parse("1.5gb"), 3 << 29);
        assert_eq!(parse("100k"), 102_400);
        assert_eq!(parse("2MiB"), 2 << 20);
        assert_eq!(parse("64 MB"), 64 << 20);
        assert_eq!(parse("10b"), 10);
    }

    #[test]
    fn invalid_sizes_say_what_is_wrong() {
        assert_eq!(
            ByteSize::parse("12q").unwrap_err().to_string(),
            "invalid size \"12q\": unknown unit (expected b, k, m, g, t or p)"
        );
        assert!(
            ByteSize::parse("m")
                .unwrap_err()
                .to_string()
                .contains("expected a number")
        );
        assert!(ByteSize::parse("1..2m").is_err());
    }

    #[test]
    fn sizes_serialize_as_integers_and_read_back() {
        let size: ByteSize = serde_json::from_value(json!("1g")).unwrap();
        let text = serde_json::to_string(&size).unwrap();
        assert_eq!(text, "1073741824");
        assert_eq!(serde_json::from_str::<ByteSize>(&text).unwrap(), size);
    }

    #[test]
    fn swap_limit_accepts_minus_one_as_unlimited() {
        assert_eq!(to_signed_size(json!(-1)), Ok(-1));
        assert_eq!(to_signed_size(json!("-1")), Ok(-1));
        assert_eq!(to_signed_size(json!("1k")), Ok(1024));
    }
}
