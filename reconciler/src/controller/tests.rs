//! Tests of the loop on paused tokio time, with a scripted reconciler that
//! records when each pass started and what triggered it.

use std::collections::VecDeque;
use std::future::{Future, pending};

use tokio::sync::mpsc::{self, Sender};
use tokio::time::sleep;

use super::*;

mod stack;

type Outcome = Result<PassReport, PassError>;

/// Passes recorded as (start, end, triggers); results taken from a script,
/// then `Ok`.
struct Scripted {
    origin: Instant,
    script: VecDeque<Outcome>,
    busy: Duration,
    passes: Vec<(Duration, Duration, Triggered)>,
}

impl Scripted {
    fn new(script: impl IntoIterator<Item = Outcome>) -> Self {
        Self {
            origin: Instant::now(),
            script: script.into_iter().collect(),
            busy: Duration::ZERO,
            passes: Vec::new(),
        }
    }

    /// Start of each pass, in milliseconds from the test's start.
    fn starts(&self) -> Vec<u128> {
        self.passes.iter().map(|p| p.0.as_millis()).collect()
    }

    fn triggers(&self, pass: usize) -> &Triggered {
        &self.passes[pass].2
    }
}

impl Reconciler for Scripted {
    async fn pass(&mut self, triggered: &Triggered) -> Outcome {
        let start = self.origin.elapsed();
        if !self.busy.is_zero() {
            sleep(self.busy).await;
        }
        let end = self.origin.elapsed();
        self.passes.push((start, end, triggered.clone()));
        self.script.pop_front().unwrap_or_else(|| Ok(ok("done")))
    }
}

fn ok(summary: &str) -> PassReport {
    PassReport {
        summary: summary.into(),
        changed: true,
        drift: Vec::new(),
    }
}

fn failed() -> Outcome {
    Err(PassError::Failed(
        "failed to start container shop-web-1".into(),
    ))
}

fn invalid() -> Outcome {
    Err(PassError::Invalid(
        "compose.yaml:3:1: services.web: expected a mapping".into(),
    ))
}

fn options() -> ControllerOptions {
    ControllerOptions {
        resync: None,
        ..ControllerOptions::default()
    }
}

fn files(names: &[&str]) -> Trigger {
    Trigger::Files(names.iter().map(PathBuf::from).collect())
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Runs the loop on `reconciler` while `driver` sends triggers; the loop
/// ends when the driver returns (dropping the sender). Returns the logs.
async fn drive<R, D, F>(reconciler: &mut R, options: &ControllerOptions, driver: D) -> Vec<PassLog>
where
    R: Reconciler,
    D: FnOnce(Sender<Trigger>) -> F,
    F: Future<Output = ()>,
{
    let (tx, rx) = mpsc::channel(64);
    let mut logs = Vec::new();
    let mut record = |log: &PassLog| logs.push(log.clone());
    tokio::join!(
        run(reconciler, rx, options, &mut record, pending()),
        driver(tx)
    );
    logs
}

/// A driver that sends `trigger` at each of `times` (from the start) and
/// then waits until `end`.
fn at(
    times: Vec<Duration>,
    trigger: Trigger,
    end: Duration,
) -> impl FnOnce(Sender<Trigger>) -> std::pin::Pin<Box<dyn Future<Output = ()>>> {
    move |tx| {
        Box::pin(async move {
            let origin = Instant::now();
            for t in times {
                sleep_until(origin + t).await;
                tx.send(trigger.clone()).await.unwrap();
            }
            sleep_until(origin + end).await;
        })
    }
}

#[tokio::test(start_paused = true)]
async fn the_first_pass_runs_at_once_with_the_start_trigger() {
    let mut rec = Scripted::new([]);
    let logs = drive(&mut rec, &options(), at(vec![], Trigger::Start, secs(10))).await;
    assert_eq!(rec.starts(), [0]);
    assert_eq!(rec.triggers(0).triggers, [Trigger::Start]);
    assert_eq!(logs[0].number, 1);
    assert_eq!(logs[0].result, PassResult::Ok);
}

#[tokio::test(start_paused = true)]
async fn a_file_change_runs_exactly_one_pass_after_the_debounce() {
    let mut rec = Scripted::new([]);
    let driver = at(vec![secs(10)], files(&["compose.yaml"]), secs(60));
    drive(&mut rec, &options(), driver).await;
    assert_eq!(rec.starts(), [0, 10_500]);
    assert_eq!(rec.triggers(1).summary(), "files: compose.yaml");
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_changes_runs_one_pass_after_the_last_of_them() {
    let mut rec = Scripted::new([]);
    let times = (0..20).map(|i| secs(1) + ms(50 * i)).collect();
    drive(
        &mut rec,
        &options(),
        at(times, files(&["compose.yaml"]), secs(30)),
    )
    .await;
    assert_eq!(rec.starts(), [0, 1_950 + 500]);
    assert_eq!(rec.triggers(1).triggers, [files(&["compose.yaml"])]);
}

#[tokio::test(start_paused = true)]
async fn a_constant_stream_of_changes_still_gets_a_pass_every_ten_debounces() {
    let mut rec = Scripted::new([]);
    let times = (0..200).map(|i| secs(1) + ms(100 * i)).collect();
    drive(
        &mut rec,
        &options(),
        at(times, files(&["compose.yaml"]), secs(30)),
    )
    .await;
    let starts = rec.starts();
    assert_eq!(starts[1], 6_000, "5 s after the first change: {starts:?}");
    for pair in starts[1..].windows(2) {
        assert!(pair[1] - pair[0] <= 5_000, "{starts:?}");
    }
    assert_eq!(starts.len(), 5, "{starts:?}");
    assert!(*starts.last().unwrap() <= 20_900 + 500, "{starts:?}");
}

#[tokio::test(start_paused = true)]
async fn triggers_from_several_sources_are_merged_into_one_pass() {
    let mut rec = Scripted::new([]);
    let driver = |tx: Sender<Trigger>| async move {
        sleep(secs(5)).await;
        tx.send(files(&["compose.yaml"])).await.unwrap();
        sleep(ms(100)).await;
        let died = Trigger::Container {
            name: "shop-web-1".into(),
            what: "died".into(),
        };
        tx.send(died.clone()).await.unwrap();
        tx.send(files(&[".env", "compose.yaml"])).await.unwrap();
        tx.send(died).await.unwrap();
        sleep(secs(10)).await;
    };
    let logs = drive(&mut rec, &options(), driver).await;
    assert_eq!(rec.starts(), [0, 5_600]);
    assert_eq!(
        logs[1].trigger,
        "files: compose.yaml, .env; container: shop-web-1 died"
    );
}

#[tokio::test(start_paused = true)]
async fn triggers_that_arrive_during_a_pass_wait_for_the_next_one() {
    let mut rec = Scripted::new([]);
    rec.busy = secs(2);
    let times = vec![ms(500), secs(1)];
    drive(
        &mut rec,
        &options(),
        at(times, files(&["compose.yaml"]), secs(30)),
    )
    .await;
    let spans: Vec<(u128, u128)> = rec
        .passes
        .iter()
        .map(|p| (p.0.as_millis(), p.1.as_millis()))
        .collect();
    assert_eq!(spans, [(0, 2_000), (2_000, 4_000)], "one pass at a time");
    assert_eq!(rec.triggers(1).summary(), "files: compose.yaml");
}

#[tokio::test(start_paused = true)]
async fn a_failed_apply_is_retried_with_doubling_backoff_up_to_the_cap() {
    let mut rec = Scripted::new(std::iter::repeat_with(failed).take(9));
    let logs = drive(&mut rec, &options(), at(vec![], Trigger::Start, secs(200))).await;
    assert_eq!(
        rec.starts(),
        [
            0, 1_000, 3_000, 7_000, 15_000, 31_000, 63_000, 123_000, 183_000
        ]
    );
    let retries: Vec<u64> = logs
        .iter()
        .map(|l| l.next_retry.unwrap().as_secs())
        .collect();
    assert_eq!(retries, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    assert_eq!(rec.triggers(1).triggers, [Trigger::Requeue]);
    assert!(logs.iter().all(|l| l.result == PassResult::Failed));
}

#[tokio::test(start_paused = true)]
async fn a_success_resets_the_backoff() {
    let script = [failed(), failed(), failed(), Ok(ok("converged")), failed()];
    let mut rec = Scripted::new(script);
    let driver = at(vec![secs(20)], files(&["compose.yaml"]), secs(60));
    let logs = drive(&mut rec, &options(), driver).await;
    assert_eq!(rec.starts(), [0, 1_000, 3_000, 7_000, 20_500, 21_500]);
    assert_eq!(logs[4].next_retry, Some(secs(1)), "back to the base delay");
    assert_eq!(logs[5].result, PassResult::Ok);
}

#[tokio::test(start_paused = true)]
async fn a_new_trigger_during_a_backoff_runs_a_pass_without_waiting_for_the_retry() {
    let mut rec = Scripted::new(std::iter::repeat_with(failed).take(5));
    let driver = at(vec![secs(8)], files(&["compose.yaml"]), secs(40));
    drive(&mut rec, &options(), driver).await;
    // Failures at 0, 1, 3 and 7 s; the retry due at 15 s is replaced by
    // the change at 8 s, which fails too and so waits 16 s.
    assert_eq!(rec.starts(), [0, 1_000, 3_000, 7_000, 8_500, 24_500]);
}

#[tokio::test(start_paused = true)]
async fn an_invalid_stack_is_not_retried_until_a_new_trigger() {
    let mut rec = Scripted::new([invalid()]);
    let driver = at(vec![secs(50)], files(&["compose.yaml"]), secs(120));
    let logs = drive(&mut rec, &options(), driver).await;
    assert_eq!(rec.starts(), [0, 50_500]);
    assert_eq!(logs[0].result, PassResult::Invalid);
    assert_eq!(logs[0].next_retry, None);
}

#[tokio::test(start_paused = true)]
async fn an_invalid_stack_is_still_resynced() {
    let mut rec = Scripted::new([invalid()]);
    let options = ControllerOptions::default();
    drive(&mut rec, &options, at(vec![], Trigger::Start, secs(45))).await;
    assert_eq!(rec.starts(), [0, 30_000]);
    assert_eq!(rec.triggers(1).triggers, [Trigger::Resync]);
}

#[tokio::test(start_paused = true)]
async fn resync_runs_every_interval_without_other_triggers() {
    let mut rec = Scripted::new([]);
    let options = ControllerOptions::default();
    drive(&mut rec, &options, at(vec![], Trigger::Start, secs(95))).await;
    assert_eq!(rec.starts(), [0, 30_000, 60_000, 90_000]);
    assert!(
        rec.passes[1..]
            .iter()
            .all(|p| p.2.triggers == [Trigger::Resync])
    );
}

#[tokio::test(start_paused = true)]
async fn a_pass_for_any_trigger_postpones_the_resync() {
    let mut rec = Scripted::new([]);
    let options = ControllerOptions::default();
    let driver = at(vec![secs(20)], files(&["compose.yaml"]), secs(55));
    drive(&mut rec, &options, driver).await;
    assert_eq!(rec.starts(), [0, 20_500, 50_500]);
}

#[tokio::test(start_paused = true)]
async fn a_timer_inside_a_debounce_window_joins_its_pass() {
    let mut rec = Scripted::new([]);
    let options = ControllerOptions {
        resync: Some(secs(10)),
        ..ControllerOptions::default()
    };
    let driver = at(vec![ms(9_800)], files(&["compose.yaml"]), secs(15));
    drive(&mut rec, &options, driver).await;
    assert_eq!(rec.starts(), [0, 10_300]);
    assert_eq!(rec.triggers(1).summary(), "files: compose.yaml; resync");
}

#[tokio::test(start_paused = true)]
async fn shutdown_ends_the_loop_after_the_current_pass() {
    let mut rec = Scripted::new([]);
    rec.busy = secs(5);
    let (tx, rx) = mpsc::channel(8);
    let mut count = 0;
    let mut on_pass = |_: &PassLog| count += 1;
    let origin = Instant::now();
    run(&mut rec, rx, &options(), &mut on_pass, sleep(secs(2))).await;
    assert_eq!(origin.elapsed(), secs(5), "the pass in progress finished");
    assert_eq!(count, 1, "and was logged");
    drop(tx);
}

#[tokio::test(start_paused = true)]
async fn shutdown_between_passes_ends_the_loop_at_once() {
    let mut rec = Scripted::new([]);
    let (tx, rx) = mpsc::channel(8);
    let origin = Instant::now();
    run(&mut rec, rx, &options(), &mut |_| {}, sleep(secs(7))).await;
    assert_eq!(origin.elapsed(), secs(7));
    assert_eq!(rec.starts(), [0]);
    drop(tx);
}

#[tokio::test(start_paused = true)]
async fn closing_the_trigger_channel_ends_the_loop() {
    let mut rec = Scripted::new([]);
    let options = ControllerOptions::default();
    let (tx, rx) = mpsc::channel(8);
    drop(tx);
    let origin = Instant::now();
    run(&mut rec, rx, &options, &mut |_| {}, pending()).await;
    assert_eq!(origin.elapsed(), Duration::ZERO);
    assert_eq!(rec.starts(), [0]);
}

#[test]
fn triggers_merge_files_and_drop_repeats() {
    let died = Trigger::Container {
        name: "shop-db-1".into(),
        what: "died".into(),
    };
    let merged: Triggered = [
        files(&["compose.yaml"]),
        Trigger::Resync,
        died.clone(),
        files(&["compose.yaml", ".env"]),
        Trigger::Resync,
        died,
    ]
    .into_iter()
    .collect();
    assert_eq!(
        merged.summary(),
        "files: compose.yaml, .env; resync; container: shop-db-1 died"
    );
    assert_eq!(
        merged.files(),
        [Path::new("compose.yaml"), Path::new(".env")]
    );
    assert!(merged.contains(&Trigger::Resync));
    assert!(!merged.contains(&Trigger::Requeue));
}

#[test]
fn backoff_doubles_from_the_base_and_stops_at_the_cap() {
    let options = ControllerOptions::default();
    let delays: Vec<u64> = (1..=9).map(|k| options.backoff(k).as_secs()).collect();
    assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    assert_eq!(options.backoff(200), secs(60), "no overflow");
}

fn log(result: Outcome, next_retry: Option<Duration>) -> PassLog {
    let triggered: Triggered = [files(&["compose.yaml"])].into_iter().collect();
    PassLog::new(
        4,
        "2026-11-22T10:00:00Z".into(),
        triggered,
        result,
        ms(1_500),
        next_retry,
    )
}

#[test]
fn a_pass_log_is_one_json_line_with_durations_in_milliseconds() {
    let line = serde_json::to_string(&log(failed(), Some(secs(4)))).unwrap();
    assert_eq!(
        line,
        r#"{"number":4,"time":"2026-11-22T10:00:00Z","trigger":"files: compose.yaml","triggers":[{"files":["compose.yaml"]}],"result":"failed","message":"failed to start container shop-web-1","changed":false,"drift":[],"duration_ms":1500,"next_retry_ms":4000}"#
    );
    let back: PassLog = serde_json::from_str(&line).unwrap();
    assert_eq!(back, log(failed(), Some(secs(4))));
}

#[test]
fn a_pass_log_renders_as_one_line_of_text() {
    let mut report = ok("2 operations applied");
    report.drift = vec!["service:web:1".into()];
    assert_eq!(
        log(Ok(report), None).render_text(),
        "pass 4 ok in 1.5s (files: compose.yaml): 2 operations applied; drift: service:web:1"
    );
    assert_eq!(
        log(failed(), Some(secs(90))).render_text(),
        "pass 4 failed in 1.5s (files: compose.yaml): failed to start container shop-web-1; retrying in 1m30s"
    );
    let broken = Err(PassError::Invalid(
        "compose.yaml:3:1: bad\n   3 | web: [\n".into(),
    ));
    assert_eq!(
        log(broken, None).render_text(),
        "pass 4 invalid in 1.5s (files: compose.yaml): compose.yaml:3:1: bad; 3 | web: [; waiting for the next change"
    );
}
