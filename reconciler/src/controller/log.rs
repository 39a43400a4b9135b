//! The record of one pass: a JSON line for `watch --format json` and a
//! one-line text form for people.
//!
//! JSON shape (durations in whole milliseconds):
//!
//! ```text
//! {"number":2,"time":"2026-11-22T10:00:00Z","trigger":"files: compose.yaml",
//!  "triggers":[{"files":["compose.yaml"]}],"result":"failed","message":"…",
//!  "changed":false,"drift":[],"duration_ms":120,"next_retry_ms":2000}
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{PassError, PassReport, Trigger, Triggered};

/// How a pass ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PassResult {
    /// The host matches the stack file.
    Ok,
    /// Observing or applying failed; retried after `next_retry`.
    Failed,
    /// The stack file is broken; the host was left alone.
    Invalid,
}

/// What one pass did, logged after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassLog {
    /// Pass number, from 1.
    pub number: u64,
    /// When it started, RFC 3339 in UTC.
    pub time: String,
    /// Its triggers, for people ([`Triggered::summary`]).
    pub trigger: String,
    /// Its triggers, merged.
    pub triggers: Vec<Trigger>,
    /// How it ended.
    pub result: PassResult,
    /// The report's summary, or the error.
    pub message: String,
    /// Whether the host was changed.
    pub changed: bool,
    /// Resources found away from the stack file.
    pub drift: Vec<String>,
    /// How long it took.
    #[serde(rename = "duration_ms", with = "millis")]
    pub duration: Duration,
    /// Delay before it is retried (failed passes only).
    #[serde(rename = "next_retry_ms", with = "optional_millis")]
    pub next_retry: Option<Duration>,
}

impl PassLog {
    /// The log of pass `number`, started at `time`, that ran for
    /// `triggered` and ended with `result` after `duration`.
    pub fn new(
        number: u64,
        time: String,
        triggered: Triggered,
        result: Result<PassReport, PassError>,
        duration: Duration,
        next_retry: Option<Duration>,
    ) -> Self {
        let trigger = triggered.summary();
        let (result, message, report) = match result {
            Ok(report) => (PassResult::Ok, report.summary.clone(), report),
            Err(PassError::Failed(e)) => (PassResult::Failed, e, PassReport::default()),
            Err(PassError::Invalid(e)) => (PassResult::Invalid, e, PassReport::default()),
        };
        Self {
            number,
            time,
            trigger,
            triggers: triggered.triggers,
            result,
            message,
            changed: report.changed,
            drift: report.drift,
            duration,
            next_retry,
        }
    }

    /// One line: `pass 3 failed in 120ms (requeue): <error>; retrying in 4s`.
    /// A message of several lines is joined with `; `.
    pub fn render_text(&self) -> String {
        let result = match self.result {
            PassResult::Ok => "ok",
            PassResult::Failed => "failed",
            PassResult::Invalid => "invalid",
        };
        let message: Vec<&str> = self
            .message
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let mut line = format!(
            "pass {} {result} in {} ({}): {}",
            self.number,
            human(self.duration),
            self.trigger,
            message.join("; ")
        );
        if !self.drift.is_empty() {
            line.push_str(&format!("; drift: {}", self.drift.join(", ")));
        }
        if let Some(retry) = self.next_retry {
            line.push_str(&format!("; retrying in {}", human(retry)));
        } else if self.result == PassResult::Invalid {
            line.push_str("; waiting for the next change");
        }
        line
    }
}

/// `250ms`, `2s`, `1.5s`, `1m`, `2m30s`.
fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 && ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        let (minutes, seconds) = (d.as_secs() / 60, d.as_secs() % 60);
        if seconds == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{seconds}s")
        }
    }
}

/// A duration as whole milliseconds.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// An optional duration as whole milliseconds or `null`.
mod optional_millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::millis::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|ms| ms.map(Duration::from_millis))
    }
}
