//! Waiting for containers to reach a state: a dependency's `depends_on`
//! condition before its dependents go on, and every service ready for
//! `up --wait`.
//!
//! Invariants: a state that cannot turn into the one awaited (an exit, a
//! failed healthcheck) fails at once, naming the container, instead of
//! running into the timeout; a container found ready is not asked again;
//! the timeout error lists every container still not ready.

use std::time::{Duration, Instant};

use crate::backend::{
    BackendError, ContainerBackend, ContainerStatus, Health, LABEL_SERVICE, ObservedContainer,
    project_selector,
};
use crate::desired::{Condition, Desired};

/// Why a wait failed.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// A name given is not a service of the stack file.
    #[error("service {service} is not in the stack file")]
    UnknownService {
        /// The name given.
        service: String,
    },
    /// The service has no container to wait for.
    #[error("service {service} has no containers")]
    NoContainers {
        /// The service.
        service: String,
    },
    /// Listing the containers of a service failed.
    #[error("failed to list the containers of service {service}")]
    List {
        /// The service.
        service: String,
        /// Cause.
        #[source]
        source: BackendError,
    },
    /// Inspecting a container failed.
    #[error("failed to inspect container {container}")]
    Inspect {
        /// Container name.
        container: String,
        /// Cause.
        #[source]
        source: BackendError,
    },
    /// A container that should run has exited.
    #[error("container {container} exited ({})", exit_text(*.code))]
    Exited {
        /// Container name.
        container: String,
        /// Its exit code, when known.
        code: Option<i32>,
    },
    /// A container of a job (or awaited with `service_completed_successfully`)
    /// exited with a code other than 0.
    #[error(
        "service {service} didn't complete successfully: exit {} (container {container})",
        code.map_or_else(|| "unknown".to_string(), |c| c.to_string())
    )]
    NotCompleted {
        /// The service.
        service: String,
        /// Container name.
        container: String,
        /// Its exit code, when known.
        code: Option<i32>,
    },
    /// A container's healthcheck failed.
    #[error("container {container} is unhealthy")]
    Unhealthy {
        /// Container name.
        container: String,
    },
    /// Health was awaited from a running container that has no healthcheck.
    #[error("container {container} has no healthcheck to wait for")]
    NoHealthcheck {
        /// Container name.
        container: String,
    },
    /// The timeout ran out first.
    #[error("timed out after {} waiting for {}", show_duration(*.waited), .containers.join(", "))]
    Timeout {
        /// The timeout.
        waited: Duration,
        /// The containers not ready then.
        containers: Vec<String>,
    },
}

fn exit_text(code: Option<i32>) -> String {
    code.map_or_else(|| "no exit status".to_string(), |c| format!("code {c}"))
}

/// `5s`, `1500ms`.
fn show_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// What a container must reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// A `depends_on` condition.
    Condition(Condition),
    /// Ready for `up --wait`.
    Ready {
        /// The service is a job: ready is exited with code 0.
        job: bool,
        /// The file gives it a healthcheck: ready needs healthy.
        healthcheck: bool,
    },
}

/// One container to watch.
#[derive(Debug, Clone)]
struct Target {
    container: String,
    service: String,
    want: Want,
}

/// What one look at a container says.
enum Verdict {
    Ready,
    Pending,
    Failed(WaitError),
}

/// Waits until every container of `dependency` in `project` satisfies
/// `condition`: running (or exited 0) for `service_started`, healthy for
/// `service_healthy`, exited 0 for `service_completed_successfully`.
pub(super) fn for_dependency<H: ContainerBackend + ?Sized>(
    host: &H,
    project: &str,
    dependency: &str,
    condition: Condition,
    timeout: Option<Duration>,
    poll: Duration,
) -> Result<(), WaitError> {
    let mut selector = project_selector(project);
    selector.insert(LABEL_SERVICE.to_string(), dependency.to_string());
    let listed = host
        .list_containers(&selector)
        .map_err(|source| WaitError::List {
            service: dependency.to_string(),
            source,
        })?;
    let mut targets: Vec<Target> = listed
        .into_iter()
        .map(|c| Target {
            container: c.name,
            service: dependency.to_string(),
            want: Want::Condition(condition),
        })
        .collect();
    if targets.is_empty() {
        return Err(WaitError::NoContainers {
            service: dependency.to_string(),
        });
    }
    targets.sort_by(|a, b| a.container.cmp(&b.container));
    poll_until(host, targets, timeout, poll)
}

/// Waits until every replica of each of `services` (all when empty) is
/// ready, for `up --wait`: running, and healthy when its file gives it a
/// healthcheck or it reports health; for a job, exited with code 0. An
/// exited container that is not a job, a job that exited with another
/// code, or an unhealthy container fails at once; `timeout` (`None`:
/// none) fails listing the containers not ready.
pub fn wait_ready<H: ContainerBackend + ?Sized>(
    host: &H,
    desired: &Desired,
    services: &[String],
    timeout: Option<Duration>,
    poll: Duration,
) -> Result<(), WaitError> {
    for name in services {
        if desired.service(name).is_none() {
            return Err(WaitError::UnknownService {
                service: name.clone(),
            });
        }
    }
    let targets = desired
        .services
        .iter()
        .filter(|s| services.is_empty() || services.contains(&s.name))
        .flat_map(|s| {
            s.replicas.iter().map(|r| Target {
                container: r.name.clone(),
                service: s.name.clone(),
                want: Want::Ready {
                    job: s.job,
                    healthcheck: s.has_healthcheck,
                },
            })
        })
        .collect();
    poll_until(host, targets, timeout, poll)
}

/// Inspects the targets every `poll` until all are ready, one fails, or
/// `timeout` runs out.
fn poll_until<H: ContainerBackend + ?Sized>(
    host: &H,
    mut targets: Vec<Target>,
    timeout: Option<Duration>,
    poll: Duration,
) -> Result<(), WaitError> {
    let started = Instant::now();
    loop {
        let mut waiting = Vec::new();
        for t in targets {
            let seen =
                host.inspect_container(&t.container)
                    .map_err(|source| WaitError::Inspect {
                        container: t.container.clone(),
                        source,
                    })?;
            match judge(&t, &seen) {
                Verdict::Ready => {}
                Verdict::Pending => waiting.push(t),
                Verdict::Failed(e) => return Err(e),
            }
        }
        if waiting.is_empty() {
            return Ok(());
        }
        if let Some(limit) = timeout
            && started.elapsed() >= limit
        {
            return Err(WaitError::Timeout {
                waited: limit,
                containers: waiting.into_iter().map(|t| t.container).collect(),
            });
        }
        targets = waiting;
        std::thread::sleep(poll);
    }
}

/// Whether `c` is what `t` waits for, may still become it, or never will.
fn judge(t: &Target, c: &ObservedContainer) -> Verdict {
    use ContainerStatus::{Dead, Exited, Paused, Running};
    let exited = || {
        let code = if c.status == Dead { None } else { c.exit_code };
        Verdict::Failed(WaitError::Exited {
            container: c.name.clone(),
            code,
        })
    };
    let unhealthy = || {
        Verdict::Failed(WaitError::Unhealthy {
            container: c.name.clone(),
        })
    };
    match t.want {
        Want::Condition(Condition::Started) => match c.status {
            Running | Paused => Verdict::Ready,
            Exited if c.exit_code == Some(0) => Verdict::Ready,
            Exited | Dead => exited(),
            _ => Verdict::Pending,
        },
        Want::Condition(Condition::Healthy) => match (c.status, c.health) {
            (Exited | Dead, _) => exited(),
            (_, Some(Health::Unhealthy)) => unhealthy(),
            (_, Some(Health::Healthy)) => Verdict::Ready,
            (Running, None) => Verdict::Failed(WaitError::NoHealthcheck {
                container: c.name.clone(),
            }),
            _ => Verdict::Pending,
        },
        Want::Condition(Condition::CompletedSuccessfully) | Want::Ready { job: true, .. } => {
            completed(t, c)
        }
        Want::Ready { healthcheck, .. } => match (c.status, c.health) {
            (Exited | Dead, _) => exited(),
            (_, Some(Health::Unhealthy)) => unhealthy(),
            (Running, Some(Health::Healthy)) => Verdict::Ready,
            (Running, None) if !healthcheck => Verdict::Ready,
            _ => Verdict::Pending,
        },
    }
}

/// Exited with code 0 is ready; any other end fails.
fn completed(t: &Target, c: &ObservedContainer) -> Verdict {
    let code = match c.status {
        ContainerStatus::Exited if c.exit_code == Some(0) => return Verdict::Ready,
        ContainerStatus::Exited => c.exit_code,
        ContainerStatus::Dead => None,
        _ => return Verdict::Pending,
    };
    Verdict::Failed(WaitError::NotCompleted {
        service: t.service.clone(),
        container: c.name.clone(),
        code,
    })
}
