//! Helpers shared by the scenario tests of several modules: a fake host
//! whose registry offers the test images, plan from YAML, and apply with
//! the real executor.

use crate::apply::ApplyOptions;
use crate::backend::observe;
use crate::desired::Desired;
use crate::desired::tests::load;
use crate::fake::FakeHost;
use crate::plan::{Plan, PlanOptions, plan};

/// A two-service stack: `web` depends on `db`, with a network and a volume.
pub(crate) const STACK: &str = "
services:
  db:
    image: postgres:16
    volumes: [data:/var/lib/postgresql/data]
  web:
    image: nginx:1.25
    environment:
      FOO: a
    depends_on: [db]
    networks: [front, default]
networks:
  front: {}
volumes:
  data: {}
";

/// A host whose registry offers every image the tests use.
pub(crate) fn host() -> FakeHost {
    let host = FakeHost::new();
    for (reference, digest) in [
        ("postgres:16", "sha256:pg16"),
        ("nginx:1.25", "sha256:ng125"),
        ("nginx:1.27", "sha256:ng127"),
        ("redis:7", "sha256:redis7"),
    ] {
        host.publish(reference, digest);
    }
    host
}

/// The desired state of `yaml` (project `shop`) and the plan for `host`.
pub(crate) fn plan_for(host: &FakeHost, yaml: &str, options: &PlanOptions) -> (Desired, Plan) {
    let desired = load(yaml);
    let observed = observe(host, &desired.project, &desired.images()).expect("observe");
    let plan = plan(&desired, &observed, options);
    (desired, plan)
}

/// Applies `plan` with the real executor; `Err` with its report when any
/// operation failed or was not run.
pub(crate) fn apply(host: &FakeHost, plan: &Plan) -> Result<(), String> {
    let report = crate::apply::apply(host, plan, &ApplyOptions::default(), &|_| {});
    if report.ok() {
        Ok(())
    } else {
        Err(report.render_text())
    }
}

/// Plans and applies `yaml` on `host`; returns the plan applied.
pub(crate) fn up(host: &FakeHost, yaml: &str, options: &PlanOptions) -> Plan {
    let (_, plan) = plan_for(host, yaml, options);
    apply(host, &plan).expect("apply");
    plan
}
