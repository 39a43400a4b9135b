//! `events`: a live stream of the project's container events, read by
//! polling the runtime's container list (there is no daemon to push them).
//!
//! [`diff`] turns two snapshots of the list into events, and is pure: the
//! actions are `create`, `start`, `restart` (a start by the restart policy),
//! `die` (with `exitCode` when known), `stop` (after a `die` the user asked
//! for), `pause`, `unpause`, `health_status: healthy|unhealthy` and
//! `destroy`. A run that both began and ended between two polls still gives
//! its `start` and `die`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::time::{Duration, SystemTime};

use rcompose_reconciler::backend::LABEL_SERVICE;
use rcompose_runtime::container::{ContainerInfo, Status};
use rcompose_runtime::health::HealthStatus;
use serde::Serialize;

use super::Session;

/// Time between two looks at the container list.
const POLL: Duration = Duration::from_millis(200);

/// What events compare of one container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// Its service.
    pub service: String,
    /// Its image reference.
    pub image: String,
    /// Lifecycle status.
    pub status: Status,
    /// Exit code of the last run.
    pub exit_code: Option<i32>,
    /// Healthcheck status, when it has one.
    pub health: Option<HealthStatus>,
    /// Restarts done by the restart policy.
    pub restart_count: u32,
    /// Start of the current or last run; a new value means a new run.
    pub started_at: Option<String>,
    /// Whether the user stopped it.
    pub stopped_by_user: bool,
}

/// The containers at one moment, by id.
pub type Snapshot = BTreeMap<String, Seen>;

/// One container event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Event {
    /// When it was seen, RFC 3339 in seconds.
    pub time: String,
    /// Always `container`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// What happened (`start`, `die`, `health_status: healthy`, …).
    pub action: String,
    /// Container id (its name).
    pub id: String,
    /// Its service.
    pub service: String,
    /// `name`, `image` and what the action adds (`exitCode`, `restartCount`).
    pub attributes: BTreeMap<String, String>,
}

/// The snapshot of `containers`.
pub fn snapshot(containers: &[ContainerInfo]) -> Snapshot {
    containers
        .iter()
        .map(|c| {
            let seen = Seen {
                service: c
                    .record
                    .config
                    .labels
                    .get(LABEL_SERVICE)
                    .cloned()
                    .unwrap_or_default(),
                image: c.record.image.reference.clone(),
                status: c.state.status,
                exit_code: c.state.exit_code,
                health: c.state.health.as_ref().map(|h| h.status),
                restart_count: c.state.restart_count,
                started_at: c.state.started_at.clone(),
                stopped_by_user: c.state.stopped_by_user,
            };
            (c.record.id.clone(), seen)
        })
        .collect()
}

/// The events that lead from `previous` to `current`, seen at `time`, in
/// container id order.
pub fn diff(previous: &Snapshot, current: &Snapshot, time: &str) -> Vec<Event> {
    let ids: std::collections::BTreeSet<&String> = previous.keys().chain(current.keys()).collect();
    let mut events = Vec::new();
    for id in ids {
        let actions = match (previous.get(id), current.get(id)) {
            (None, Some(now)) => {
                let mut actions = vec![("create".to_string(), Vec::new())];
                actions.extend(changes(&never_started(now), now));
                actions
            }
            (Some(_), None) => vec![("destroy".to_string(), Vec::new())],
            (Some(before), Some(now)) => changes(before, now),
            (None, None) => Vec::new(),
        };
        let seen = current.get(id).or(previous.get(id));
        for (action, extra) in actions {
            events.extend(seen.map(|s| event(time, id, s, action, extra)));
        }
    }
    events
}

/// An action and the attributes it adds.
type Action = (String, Vec<(&'static str, String)>);

/// `now` before its first start: what a new container is compared with.
fn never_started(now: &Seen) -> Seen {
    Seen {
        status: Status::Created,
        exit_code: None,
        health: None,
        restart_count: 0,
        started_at: None,
        stopped_by_user: false,
        ..now.clone()
    }
}

fn changes(before: &Seen, now: &Seen) -> Vec<Action> {
    let mut actions = run_changes(before, now);
    if now.health != before.health {
        match now.health {
            Some(HealthStatus::Healthy) => actions.push(health("healthy")),
            Some(HealthStatus::Unhealthy) => actions.push(health("unhealthy")),
            Some(HealthStatus::Starting) | None => {}
        }
    }
    actions
}

fn health(status: &str) -> Action {
    (format!("health_status: {status}"), Vec::new())
}

/// Starts, deaths, stops, pauses and unpauses between two snapshots.
fn run_changes(before: &Seen, now: &Seen) -> Vec<Action> {
    let live = |s: &Seen| matches!(s.status, Status::Running | Status::Paused);
    let new_run = now.started_at.is_some() && now.started_at != before.started_at;
    let died = |code: Option<i32>| {
        let attrs = code.map(|c| ("exitCode", c.to_string()));
        ("die".to_string(), attrs.into_iter().collect::<Vec<_>>())
    };
    let mut actions = Vec::new();
    if live(before) && (new_run || !live(now)) {
        // A run replaced by a new one has lost its exit code.
        actions.push(died(now.exit_code.filter(|_| !live(now))));
    }
    if new_run {
        actions.push(match now.restart_count > before.restart_count {
            true => (
                "restart".to_string(),
                vec![("restartCount", now.restart_count.to_string())],
            ),
            false => ("start".to_string(), Vec::new()),
        });
        if !live(now) {
            actions.push(died(now.exit_code));
        }
    }
    let paused_before = before.status == Status::Paused && !new_run;
    match (paused_before, now.status) {
        (false, Status::Paused) => actions.push(("pause".to_string(), Vec::new())),
        (true, Status::Running) => actions.push(("unpause".to_string(), Vec::new())),
        _ => {}
    }
    let stopped = |s: &Seen| s.status == Status::Exited && s.stopped_by_user;
    if stopped(now) && (new_run || !stopped(before)) {
        actions.push(("stop".to_string(), Vec::new()));
    }
    actions
}

fn event(
    time: &str,
    id: &str,
    seen: &Seen,
    action: String,
    extra: Vec<(&'static str, String)>,
) -> Event {
    let mut attributes = BTreeMap::from([
        ("name".to_string(), id.to_string()),
        ("image".to_string(), seen.image.clone()),
    ]);
    attributes.extend(extra.into_iter().map(|(k, v)| (k.to_string(), v)));
    Event {
        time: time.to_string(),
        kind: "container",
        action,
        id: id.to_string(),
        service: seen.service.clone(),
        attributes,
    }
}

/// One line of text: `<time> container <action> <id> (service=…, exitCode=…)`.
pub fn render_text(event: &Event) -> String {
    let mut attrs = vec![format!("service={}", event.service)];
    attrs.extend(
        event
            .attributes
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "name" | "image"))
            .map(|(k, v)| format!("{k}={v}")),
    );
    format!(
        "{} {} {} {} ({})",
        event.time,
        event.kind,
        event.action,
        event.id,
        attrs.join(", ")
    )
}

/// `time` as RFC 3339 in whole seconds (`2026-11-26T08:00:00Z`).
pub fn event_time(time: SystemTime) -> String {
    let full = rcompose_runtime::logs::format_rfc3339(time);
    format!("{}Z", &full[..19])
}

/// Prints the events of the project's containers (of `services`, all when
/// empty) as they happen, one line each (JSON with `json`), until interrupted.
pub fn stream(session: &Session, services: &[String], json: bool) -> anyhow::Result<()> {
    let mut previous = snapshot(&super::services::containers(session, services)?);
    let mut out = std::io::stdout().lock();
    loop {
        std::thread::sleep(POLL);
        let current = match super::services::containers(session, services) {
            Ok(list) => snapshot(&list),
            Err(e) => {
                tracing::warn!("failed to list the containers: {e:#}");
                continue;
            }
        };
        for event in diff(&previous, &current, &event_time(SystemTime::now())) {
            let line = match json {
                true => serde_json::to_string(&event)?,
                false => render_text(&event),
            };
            // The reader went away (`| head`): that ends the stream.
            if writeln!(out, "{line}").is_err() {
                return Ok(());
            }
        }
        if out.flush().is_err() {
            return Ok(());
        }
        previous = current;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "2026-11-26T08:00:00Z";

    fn seen(status: Status, started_at: Option<&str>) -> Seen {
        Seen {
            service: "web".into(),
            image: "docker.io/library/nginx:1".into(),
            status,
            exit_code: None,
            health: None,
            restart_count: 0,
            started_at: started_at.map(String::from),
            stopped_by_user: false,
        }
    }

    fn snap(entries: &[(&str, Seen)]) -> Snapshot {
        entries
            .iter()
            .map(|(id, s)| (id.to_string(), s.clone()))
            .collect()
    }

    fn actions(before: &Snapshot, now: &Snapshot) -> Vec<String> {
        diff(before, now, T)
            .into_iter()
            .map(|e| format!("{} {}", e.action, e.id))
            .collect()
    }

    #[test]
    fn nothing_changed_gives_no_event() {
        let s = snap(&[("p-web-1", seen(Status::Running, Some("t1")))]);
        assert!(diff(&s, &s, T).is_empty());
    }

    #[test]
    fn a_new_container_is_created_then_started() {
        let before = Snapshot::new();
        let created = snap(&[("p-web-1", seen(Status::Created, None))]);
        assert_eq!(actions(&before, &created), ["create p-web-1"]);
        let running = snap(&[("p-web-1", seen(Status::Running, Some("t1")))]);
        assert_eq!(actions(&created, &running), ["start p-web-1"]);
        assert_eq!(
            actions(&before, &running),
            ["create p-web-1", "start p-web-1"]
        );
    }

    #[test]
    fn an_exit_is_a_die_with_its_exit_code() {
        let before = snap(&[("p-web-1", seen(Status::Running, Some("t1")))]);
        let mut exited = seen(Status::Exited, Some("t1"));
        exited.exit_code = Some(3);
        let events = diff(&before, &snap(&[("p-web-1", exited)]), T);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].action, "die");
        assert_eq!(events[0].attributes["exitCode"], "3");
    }

    #[test]
    fn a_stop_by_the_user_is_a_die_then_a_stop() {
        let before = snap(&[("p-web-1", seen(Status::Running, Some("t1")))]);
        let mut stopped = seen(Status::Exited, Some("t1"));
        stopped.exit_code = Some(143);
        stopped.stopped_by_user = true;
        let now = snap(&[("p-web-1", stopped)]);
        assert_eq!(actions(&before, &now), ["die p-web-1", "stop p-web-1"]);
        assert!(diff(&now, &now, T).is_empty());
    }

    #[test]
    fn pause_and_unpause_are_reported_and_a_paused_death_is_a_die() {
        let running = snap(&[("p-web-1", seen(Status::Running, Some("t1")))]);
        let paused = snap(&[("p-web-1", seen(Status::Paused, Some("t1")))]);
        assert_eq!(actions(&running, &paused), ["pause p-web-1"]);
        assert_eq!(actions(&paused, &running), ["unpause p-web-1"]);
        let dead = snap(&[("p-web-1", seen(Status::Dead, Some("t1")))]);
        assert_eq!(actions(&paused, &dead), ["die p-web-1"]);
    }

    #[test]
    fn a_restart_by_policy_is_a_die_then_a_restart() {
        let running = snap(&[("p-web-1", seen(Status::Running, Some("t1")))]);
        let mut waiting = seen(Status::Restarting, Some("t1"));
        waiting.exit_code = Some(1);
        let waiting = snap(&[("p-web-1", waiting)]);
        let mut again = seen(Status::Running, Some("t2"));
        again.restart_count = 1;
        let again = snap(&[("p-web-1", again)]);
        assert_eq!(actions(&running, &waiting), ["die p-web-1"]);
        let events = diff(&waiting, &again, T);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].action, "restart");
        assert_eq!(events[0].attributes["restartCount"], "1");
        // Both within one poll: the death is still reported, without its code.
        let missed = diff(&running, &again, T);
        let names: Vec<&str> = missed.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(names, ["die", "restart"]);
        assert!(!missed[0].attributes.contains_key("exitCode"));
    }

    #[test]
    fn a_run_that_began_and_ended_between_polls_is_a_start_and_a_die() {
        let created = snap(&[("p-job-1", seen(Status::Created, None))]);
        let mut done = seen(Status::Exited, Some("t1"));
        done.exit_code = Some(0);
        let events = diff(&created, &snap(&[("p-job-1", done)]), T);
        let names: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(names, ["start", "die"]);
        assert_eq!(events[1].attributes["exitCode"], "0");
    }

    #[test]
    fn health_changes_to_healthy_or_unhealthy_are_events() {
        let mut starting = seen(Status::Running, Some("t1"));
        starting.health = Some(HealthStatus::Starting);
        let mut healthy = starting.clone();
        healthy.health = Some(HealthStatus::Healthy);
        let mut sick = starting.clone();
        sick.health = Some(HealthStatus::Unhealthy);
        let [starting, healthy, sick] = [starting, healthy, sick].map(|s| snap(&[("p-web-1", s)]));
        assert_eq!(
            actions(&starting, &healthy),
            ["health_status: healthy p-web-1"]
        );
        assert_eq!(
            actions(&healthy, &sick),
            ["health_status: unhealthy p-web-1"]
        );
        assert!(actions(&sick, &starting).is_empty());
    }

    #[test]
    fn a_vanished_container_is_destroyed_and_events_come_in_id_order() {
        let before = snap(&[
            ("p-db-1", seen(Status::Exited, Some("t1"))),
            ("p-web-1", seen(Status::Running, Some("t1"))),
        ]);
        let now = snap(&[
            ("p-web-1", seen(Status::Paused, Some("t1"))),
            ("p-web-2", seen(Status::Created, None)),
        ]);
        assert_eq!(
            actions(&before, &now),
            ["destroy p-db-1", "pause p-web-1", "create p-web-2"]
        );
    }

    #[test]
    fn text_lines_name_the_service_and_json_lines_carry_every_attribute() {
        let mut exited = seen(Status::Exited, Some("t1"));
        exited.exit_code = Some(137);
        let before = snap(&[("shop-web-1", seen(Status::Running, Some("t1")))]);
        let event = diff(&before, &snap(&[("shop-web-1", exited)]), T).remove(0);
        assert_eq!(
            render_text(&event),
            "2026-11-26T08:00:00Z container die shop-web-1 (service=web, exitCode=137)"
        );
        let json: serde_json::Value = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "time": T,
                "type": "container",
                "action": "die",
                "id": "shop-web-1",
                "service": "web",
                "attributes": {
                    "name": "shop-web-1",
                    "image": "docker.io/library/nginx:1",
                    "exitCode": "137",
                },
            })
        );
    }

    #[test]
    fn event_times_are_whole_seconds_in_utc() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_680_000_250);
        assert_eq!(event_time(t), "2026-11-26T08:00:00Z");
    }
}
