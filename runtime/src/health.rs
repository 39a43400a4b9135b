//! Docker's healthcheck state machine: the [`HealthPolicy`] resolved from a
//! [`Healthcheck`], the [`HealthState`] a container carries, and the rules that
//! fold each [`ProbeResult`] into it.
//!
//! Pure: the monitor runs the probe (`HealthPolicy::argv`, killed after
//! `timeout`) and the clock; this module decides. Invariants of a
//! [`HealthState`] updated through [`HealthPolicy::record`]: at most
//! [`MAX_LOG_ENTRIES`] results kept, newest last, each output at most
//! [`MAX_OUTPUT_BYTES`] bytes; `Unhealthy` implies `failing_streak >= retries`.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::config::Healthcheck;

/// Probe results kept in [`HealthState::log`].
pub const MAX_LOG_ENTRIES: usize = 5;
/// Bytes of probe output kept per result.
pub const MAX_OUTPUT_BYTES: usize = 4096;
/// Exit code recorded for a probe that exceeded its timeout.
pub const TIMEOUT_EXIT_CODE: i32 = -1;

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: u32 = 3;
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);

/// Health of a container with a healthcheck.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// No successful probe yet and not (yet) enough failures.
    #[default]
    Starting,
    /// The last probe succeeded, or too few failed since.
    Healthy,
    /// At least `retries` consecutive counted failures.
    Unhealthy,
}

/// Outcome of one probe run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// When the probe started.
    #[serde(with = "rfc3339")]
    pub start: SystemTime,
    /// When it ended (or was killed).
    #[serde(with = "rfc3339")]
    pub end: SystemTime,
    /// Exit code; 0 is healthy, [`TIMEOUT_EXIT_CODE`] a timeout.
    pub exit_code: i32,
    /// Combined stdout and stderr, at most [`MAX_OUTPUT_BYTES`] bytes.
    pub output: String,
}

impl ProbeResult {
    /// A finished probe; `output` is raw process output, decoded lossily and truncated.
    pub fn new(start: SystemTime, end: SystemTime, exit_code: i32, output: &[u8]) -> Self {
        let cut = &output[..output.len().min(MAX_OUTPUT_BYTES)];
        let output = truncate_output(String::from_utf8_lossy(cut).into_owned());
        Self {
            start,
            end,
            exit_code,
            output,
        }
    }

    /// A probe killed after `timeout`, worded as Docker does.
    pub fn timed_out(start: SystemTime, end: SystemTime, timeout: Duration) -> Self {
        let output = format!("Health check exceeded timeout ({timeout:?})");
        Self::new(start, end, TIMEOUT_EXIT_CODE, output.as_bytes())
    }
}

/// Health a container carries, as `inspect` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthState {
    /// Current status.
    pub status: HealthStatus,
    /// Consecutive counted failures.
    pub failing_streak: u32,
    /// Most recent results, oldest first.
    pub log: Vec<ProbeResult>,
}

/// A healthcheck with Docker's defaults filled in (a zero value means default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthPolicy {
    /// Command the probe runs; never empty.
    argv: Vec<String>,
    /// Time between probes once started.
    pub interval: Duration,
    /// Time one probe may take before it is killed and counted as failed.
    pub timeout: Duration,
    /// Consecutive failures that make the container unhealthy (at least 1).
    pub retries: u32,
    /// Grace period after start during which failures do not count.
    pub start_period: Duration,
    /// Time between probes during the start period.
    pub start_interval: Duration,
}

impl HealthPolicy {
    /// Resolves `config`; `None` when it checks nothing (`NONE`, empty test,
    /// unknown kind or a command without arguments).
    pub fn from_config(config: &Healthcheck) -> Option<Self> {
        let (kind, args) = config.test.split_first()?;
        let argv = match kind.as_str() {
            _ if args.is_empty() => return None,
            "CMD" => args.to_vec(),
            "CMD-SHELL" => ["/bin/sh", "-c"]
                .map(String::from)
                .into_iter()
                .chain(args.iter().cloned())
                .collect(),
            _ => return None,
        };
        Some(Self {
            argv,
            interval: or_default(config.interval, DEFAULT_INTERVAL),
            timeout: or_default(config.timeout, DEFAULT_TIMEOUT),
            retries: config.retries.filter(|&r| r > 0).unwrap_or(DEFAULT_RETRIES),
            start_period: config.start_period.unwrap_or_default(),
            start_interval: or_default(config.start_interval, DEFAULT_START_INTERVAL),
        })
    }

    /// Command line of the probe, run inside the container.
    pub fn argv(&self) -> Vec<String> {
        self.argv.clone()
    }

    /// Folds `result` into `state` by Docker's rules: a success makes the
    /// container healthy; a failure counts unless the container is still
    /// starting and the probe began within the start period.
    pub fn record(
        &self,
        state: &mut HealthState,
        result: ProbeResult,
        container_started: SystemTime,
    ) {
        let in_start_period = self.in_start_period(result.start, container_started);
        let succeeded = result.exit_code == 0;
        push_result(&mut state.log, result);
        if succeeded {
            state.failing_streak = 0;
            state.status = HealthStatus::Healthy;
        } else if !(state.status == HealthStatus::Starting && in_start_period) {
            state.failing_streak = state.failing_streak.saturating_add(1);
            if state.failing_streak >= self.retries {
                state.status = HealthStatus::Unhealthy;
            }
        }
    }

    /// Wait before the next probe, `since_start` after the container started.
    pub fn next_delay(&self, state: &HealthState, since_start: Duration) -> Duration {
        if state.status == HealthStatus::Starting && since_start < self.start_period {
            self.start_interval
        } else {
            self.interval
        }
    }

    fn in_start_period(&self, probe_start: SystemTime, container_started: SystemTime) -> bool {
        let since = probe_start
            .duration_since(container_started)
            .unwrap_or_default();
        since < self.start_period
    }
}

fn or_default(value: Option<Duration>, default: Duration) -> Duration {
    value.filter(|d| !d.is_zero()).unwrap_or(default)
}

fn push_result(log: &mut Vec<ProbeResult>, mut result: ProbeResult) {
    result.output = truncate_output(std::mem::take(&mut result.output));
    log.push(result);
    let excess = log.len().saturating_sub(MAX_LOG_ENTRIES);
    log.drain(..excess);
}

/// Cuts `text` to at most [`MAX_OUTPUT_BYTES`] bytes on a character boundary.
fn truncate_output(mut text: String) -> String {
    if text.len() > MAX_OUTPUT_BYTES {
        let cut = text.floor_char_boundary(MAX_OUTPUT_BYTES);
        text.truncate(cut);
    }
    text
}

/// Probe times as RFC 3339 strings, the form `inspect` shows.
mod rfc3339 {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    use crate::logs::{format_rfc3339, parse_rfc3339};

    pub fn serialize<S: Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_rfc3339(*time))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        parse_rfc3339(&text).ok_or_else(|| D::Error::custom(format!("invalid time {text:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: SystemTime = SystemTime::UNIX_EPOCH;

    fn check(test: &[&str]) -> Healthcheck {
        Healthcheck {
            test: test.iter().map(|s| s.to_string()).collect(),
            ..Healthcheck::default()
        }
    }

    fn policy(start_period: u64) -> HealthPolicy {
        let config = Healthcheck {
            start_period: Some(Duration::from_secs(start_period)),
            ..check(&["CMD", "true"])
        };
        HealthPolicy::from_config(&config).unwrap()
    }

    fn probe_at(secs: u64, exit_code: i32) -> ProbeResult {
        let start = T0 + Duration::from_secs(secs);
        ProbeResult::new(start, start + Duration::from_millis(5), exit_code, b"out")
    }

    fn run(policy: &HealthPolicy, probes: &[(u64, i32)]) -> HealthState {
        let mut state = HealthState::default();
        for &(secs, code) in probes {
            policy.record(&mut state, probe_at(secs, code), T0);
        }
        state
    }

    #[test]
    fn from_config_fills_in_docker_defaults() {
        let p = HealthPolicy::from_config(&check(&["CMD", "true"])).unwrap();
        assert_eq!(p.interval, Duration::from_secs(30));
        assert_eq!(p.timeout, Duration::from_secs(30));
        assert_eq!(p.retries, 3);
        assert_eq!(p.start_period, Duration::ZERO);
        assert_eq!(p.start_interval, Duration::from_secs(5));
    }

    #[test]
    fn from_config_treats_zero_values_as_unset() {
        let config = Healthcheck {
            interval: Some(Duration::ZERO),
            retries: Some(0),
            ..check(&["CMD", "true"])
        };
        let p = HealthPolicy::from_config(&config).unwrap();
        assert_eq!((p.interval, p.retries), (Duration::from_secs(30), 3));
    }

    #[test]
    fn from_config_keeps_explicit_values() {
        let config = Healthcheck {
            interval: Some(Duration::from_secs(2)),
            timeout: Some(Duration::from_secs(1)),
            retries: Some(7),
            start_interval: Some(Duration::from_millis(500)),
            ..check(&["CMD", "true"])
        };
        let p = HealthPolicy::from_config(&config).unwrap();
        assert_eq!(p.interval, Duration::from_secs(2));
        assert_eq!(p.timeout, Duration::from_secs(1));
        assert_eq!(p.retries, 7);
        assert_eq!(p.start_interval, Duration::from_millis(500));
    }

    #[test]
    fn from_config_is_none_when_nothing_is_checked() {
        for test in [&[][..], &["NONE"], &["CMD"], &["CMD-SHELL"], &["EXEC", "x"]] {
            assert_eq!(HealthPolicy::from_config(&check(test)), None, "{test:?}");
        }
    }

    #[test]
    fn argv_of_cmd_is_its_arguments() {
        let p = HealthPolicy::from_config(&check(&["CMD", "curl", "-f", "http://x"])).unwrap();
        assert_eq!(p.argv(), ["curl", "-f", "http://x"]);
    }

    #[test]
    fn argv_of_cmd_shell_runs_through_bin_sh() {
        let p = HealthPolicy::from_config(&check(&["CMD-SHELL", "curl -f x || exit 1"])).unwrap();
        assert_eq!(p.argv(), ["/bin/sh", "-c", "curl -f x || exit 1"]);
    }

    #[test]
    fn a_success_makes_the_container_healthy_and_resets_the_streak() {
        let state = run(&policy(0), &[(1, 1), (2, 1), (3, 0)]);
        assert_eq!(state.status, HealthStatus::Healthy);
        assert_eq!(state.failing_streak, 0);
    }

    #[test]
    fn failures_below_retries_keep_a_starting_container_starting() {
        let state = run(&policy(0), &[(1, 1), (2, 1)]);
        assert_eq!(state.status, HealthStatus::Starting);
        assert_eq!(state.failing_streak, 2);
    }

    #[test]
    fn the_container_becomes_unhealthy_when_the_streak_reaches_retries() {
        let state = run(&policy(0), &[(1, 1), (2, 1), (3, 1)]);
        assert_eq!(state.status, HealthStatus::Unhealthy);
        assert_eq!(state.failing_streak, 3);
    }

    #[test]
    fn a_healthy_container_stays_healthy_until_retries_failures() {
        let state = run(&policy(0), &[(1, 0), (2, 1), (3, 1)]);
        assert_eq!(state.status, HealthStatus::Healthy);
        let state = run(&policy(0), &[(1, 0), (2, 1), (3, 1), (4, 1)]);
        assert_eq!(state.status, HealthStatus::Unhealthy);
    }

    #[test]
    fn failures_within_the_start_period_do_not_count_while_starting() {
        let state = run(&policy(60), &[(1, 1), (2, 1), (3, 1), (4, 1)]);
        assert_eq!(state.status, HealthStatus::Starting);
        assert_eq!(state.failing_streak, 0);
    }

    #[test]
    fn failures_count_once_the_start_period_is_over() {
        let state = run(&policy(60), &[(10, 1), (60, 1), (61, 1), (62, 1)]);
        assert_eq!(state.status, HealthStatus::Unhealthy);
        assert_eq!(state.failing_streak, 3);
    }

    #[test]
    fn a_success_within_the_start_period_makes_the_container_healthy() {
        let state = run(&policy(60), &[(1, 1), (2, 0)]);
        assert_eq!(state.status, HealthStatus::Healthy);
    }

    #[test]
    fn failures_within_the_start_period_count_once_healthy() {
        let state = run(&policy(60), &[(1, 0), (2, 1), (3, 1), (4, 1)]);
        assert_eq!(state.status, HealthStatus::Unhealthy);
    }

    #[test]
    fn a_timeout_counts_as_a_failure_with_exit_code_minus_one() {
        let p = policy(0);
        let mut state = HealthState::default();
        let start = T0 + Duration::from_secs(1);
        let result = ProbeResult::timed_out(start, start + p.timeout, p.timeout);
        p.record(&mut state, result, T0);
        assert_eq!(state.failing_streak, 1);
        assert_eq!(state.log[0].exit_code, TIMEOUT_EXIT_CODE);
        assert_eq!(state.log[0].output, "Health check exceeded timeout (30s)");
    }

    #[test]
    fn the_log_keeps_the_last_five_results() {
        let probes: Vec<(u64, i32)> = (0..8).map(|i| (i, i as i32)).collect();
        let state = run(&policy(0), &probes);
        let codes: Vec<i32> = state.log.iter().map(|r| r.exit_code).collect();
        assert_eq!(codes, [3, 4, 5, 6, 7]);
    }

    #[test]
    fn probe_output_is_truncated_to_4096_bytes_on_a_char_boundary() {
        let result = ProbeResult::new(T0, T0, 0, "é".repeat(3000).as_bytes());
        assert_eq!(result.output.len(), 4096);
        let mut state = HealthState::default();
        let long = ProbeResult {
            output: "ab€".repeat(2000),
            ..probe_at(1, 0)
        };
        policy(0).record(&mut state, long, T0);
        assert!(state.log[0].output.len() <= MAX_OUTPUT_BYTES);
        assert!(state.log[0].output.len() > MAX_OUTPUT_BYTES - 4);
    }

    #[test]
    fn next_delay_uses_start_interval_while_starting_in_the_start_period() {
        let p = policy(60);
        let state = HealthState::default();
        assert_eq!(
            p.next_delay(&state, Duration::from_secs(10)),
            p.start_interval
        );
        assert_eq!(p.next_delay(&state, Duration::from_secs(60)), p.interval);
    }

    #[test]
    fn next_delay_uses_interval_once_healthy() {
        let p = policy(60);
        let state = run(&p, &[(1, 0)]);
        assert_eq!(p.next_delay(&state, Duration::from_secs(10)), p.interval);
    }

    #[test]
    fn health_state_serializes_with_lowercase_status_and_rfc3339_times() {
        let state = run(&policy(0), &[(1, 0)]);
        let json = serde_json::to_value(&state).unwrap();
        assert_eq!(json["status"], "healthy");
        assert_eq!(json["log"][0]["start"], "1970-01-01T00:00:01.000000000Z");
        let back: HealthState = serde_json::from_value(json).unwrap();
        assert_eq!(back, state);
    }
}
