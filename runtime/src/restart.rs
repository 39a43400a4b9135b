//! Restart decisions of the per-container monitor: whether an exited container
//! comes back ([`should_restart`]) and how long to wait first ([`Backoff`]).
//!
//! Pure: the monitor supplies the exit, the restart count and the clock; this
//! module only applies Docker's rules. Invariant of [`Backoff`]: a delay is
//! never below [`INITIAL_DELAY`] nor above [`MAX_DELAY`].

use std::time::Duration;

use crate::config::RestartPolicy;

/// First delay before a restart, and the delay after a reset.
pub const INITIAL_DELAY: Duration = Duration::from_millis(100);
/// Upper bound of the restart delay.
pub const MAX_DELAY: Duration = Duration::from_secs(60);
/// A container that ran at least this long resets the backoff.
pub const RESET_AFTER: Duration = Duration::from_secs(10);

/// How a container's main process ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitInfo {
    /// Exit code (Docker reports `128 + signal` for a signal death).
    pub code: i32,
    /// Signal that killed the process, if any.
    pub signal: Option<i32>,
    /// Whether the kernel's OOM killer ended it.
    pub oom_killed: bool,
}

impl ExitInfo {
    /// Whether the exit counts as a failure: non-zero code, signal or OOM kill.
    pub fn failed(&self) -> bool {
        self.code != 0 || self.signal.is_some() || self.oom_killed
    }
}

/// Whether the monitor restarts a container that just exited.
///
/// `restarts_so_far` counts the restarts already done under this policy. As in
/// Docker, `on-failure` with a limit of 0 means no limit, and a user stop
/// wins over every policy.
pub fn should_restart(
    policy: &RestartPolicy,
    exit: &ExitInfo,
    restarts_so_far: u32,
    stopped_by_user: bool,
) -> bool {
    if stopped_by_user {
        return false;
    }
    match policy {
        RestartPolicy::No => false,
        RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
        RestartPolicy::OnFailure { max_retries } => {
            let within_limit = match max_retries {
                None | Some(0) => true,
                Some(max) => restarts_so_far < *max,
            };
            exit.failed() && within_limit
        }
    }
}

/// Docker's restart delay: 100 ms, doubling per restart, capped at one
/// minute, back to 100 ms after a run of at least ten seconds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Backoff {
    /// Delay handed out last; `None` until the first restart or after a reset.
    last: Option<Duration>,
}

impl Backoff {
    /// A backoff whose next delay is [`INITIAL_DELAY`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A backoff that handed out `last` before (carried across an exec).
    pub fn after(last: Duration) -> Self {
        Self { last: Some(last) }
    }

    /// The delay handed out last, if any.
    pub fn last(&self) -> Option<Duration> {
        self.last
    }

    /// Delay before the next restart of a container that ran for `ran_for`.
    pub fn next_delay(&mut self, ran_for: Duration) -> Duration {
        if ran_for >= RESET_AFTER {
            self.last = None;
        }
        let next = match self.last {
            None => INITIAL_DELAY,
            Some(last) => last.saturating_mul(2).min(MAX_DELAY),
        };
        self.last = Some(next);
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAILED: ExitInfo = ExitInfo {
        code: 1,
        signal: None,
        oom_killed: false,
    };
    const CLEAN: ExitInfo = ExitInfo {
        code: 0,
        signal: None,
        oom_killed: false,
    };
    const SHORT_RUN: Duration = Duration::from_secs(1);

    fn on_failure(max_retries: Option<u32>) -> RestartPolicy {
        RestartPolicy::OnFailure { max_retries }
    }

    #[test]
    fn on_failure_3_allows_exactly_three_restarts() {
        let policy = on_failure(Some(3));
        let allowed: Vec<bool> = (0..5)
            .map(|n| should_restart(&policy, &FAILED, n, false))
            .collect();
        assert_eq!(allowed, [true, true, true, false, false]);
    }

    #[test]
    fn on_failure_does_not_restart_after_a_clean_exit() {
        assert!(!should_restart(&on_failure(Some(3)), &CLEAN, 0, false));
        assert!(!should_restart(&on_failure(None), &CLEAN, 0, false));
    }

    #[test]
    fn on_failure_without_a_limit_restarts_forever() {
        assert!(should_restart(&on_failure(None), &FAILED, 10_000, false));
    }

    #[test]
    fn on_failure_0_means_no_limit_as_in_docker() {
        assert!(should_restart(&on_failure(Some(0)), &FAILED, 10_000, false));
    }

    #[test]
    fn a_signal_death_counts_as_failure_even_with_exit_code_zero() {
        let killed = ExitInfo {
            signal: Some(9),
            ..CLEAN
        };
        assert!(killed.failed());
        assert!(should_restart(&on_failure(Some(1)), &killed, 0, false));
    }

    #[test]
    fn an_oom_kill_counts_as_failure() {
        let oom = ExitInfo {
            oom_killed: true,
            ..CLEAN
        };
        assert!(should_restart(&on_failure(None), &oom, 0, false));
    }

    #[test]
    fn policy_no_never_restarts() {
        assert!(!should_restart(&RestartPolicy::No, &FAILED, 0, false));
        assert!(!should_restart(&RestartPolicy::No, &CLEAN, 0, false));
    }

    #[test]
    fn always_and_unless_stopped_restart_after_any_exit() {
        for policy in [RestartPolicy::Always, RestartPolicy::UnlessStopped] {
            assert!(should_restart(&policy, &CLEAN, 0, false));
            assert!(should_restart(&policy, &FAILED, 1_000, false));
        }
    }

    #[test]
    fn a_user_stop_prevents_restart_under_every_policy() {
        for policy in [
            RestartPolicy::Always,
            RestartPolicy::UnlessStopped,
            on_failure(None),
        ] {
            assert!(!should_restart(&policy, &FAILED, 0, true));
        }
    }

    #[test]
    fn backoff_starts_at_100ms_and_doubles() {
        let mut backoff = Backoff::new();
        let delays: Vec<u128> = (0..4)
            .map(|_| backoff.next_delay(SHORT_RUN).as_millis())
            .collect();
        assert_eq!(delays, [100, 200, 400, 800]);
    }

    #[test]
    fn backoff_is_capped_at_one_minute() {
        let mut backoff = Backoff::new();
        let last = (0..20).map(|_| backoff.next_delay(SHORT_RUN)).last();
        assert_eq!(last, Some(MAX_DELAY));
    }

    #[test]
    fn backoff_resets_after_a_run_of_ten_seconds() {
        let mut backoff = Backoff::new();
        for _ in 0..5 {
            backoff.next_delay(SHORT_RUN);
        }
        assert_eq!(backoff.next_delay(Duration::from_secs(10)), INITIAL_DELAY);
        assert_eq!(backoff.next_delay(SHORT_RUN), INITIAL_DELAY * 2);
    }

    #[test]
    fn backoff_keeps_growing_after_runs_shorter_than_ten_seconds() {
        let mut backoff = Backoff::new();
        backoff.next_delay(Duration::from_millis(9_999));
        assert_eq!(
            backoff.next_delay(Duration::from_millis(9_999)),
            INITIAL_DELAY * 2
        );
    }
}
