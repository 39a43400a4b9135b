//! Golden scenarios of configs and secrets whose content changes while
//! their names stay: the caller's per-service digest, carried in a label,
//! recreates exactly the containers that use them. Each is applied with
//! the real executor on the fake host and checked for convergence.

use std::collections::BTreeMap;

use super::*;
use crate::backend::LABEL_FILES_DIGEST;

/// `web` reads a config and a secret; `db` reads neither.
const FILES: &str = "
services:
  db:
    image: postgres:16
  web:
    image: nginx:1.25
    configs: [site]
    secrets: [token]
configs:
  site:
    content: hello
secrets:
  token:
    environment: TOKEN
";

const OLD: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const NEW: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

/// `(service, digest)` pairs as the caller passes them.
fn digests(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(s, d)| (s.to_string(), d.to_string()))
        .collect()
}

/// The plan for `yaml` with the files digests `files` on `host`.
fn plan_with(host: &FakeHost, yaml: &str, files: &[(&str, &str)]) -> Plan {
    let desired = load(yaml).with_file_digests(digests(files));
    let observed = observe(host, &desired.project, &desired.images()).expect("observe");
    plan(&desired, &observed, &defaults())
}

/// Plans and applies `yaml` with `files`, then checks convergence: a fresh
/// plan is empty and applying it makes no mutating call.
fn up_with(host: &FakeHost, yaml: &str, files: &[(&str, &str)]) -> Plan {
    let plan = plan_with(host, yaml, files);
    let report = run(host, &plan);
    assert!(report.ok(), "{}", report.render_text());
    let again = plan_with(host, yaml, files);
    assert!(again.is_empty(), "not converged:\n{}", again.render_text());
    let before = host.mutating_calls();
    assert!(run(host, &again).ok());
    assert_eq!(host.mutating_calls(), before);
    plan
}

#[test]
fn a_container_is_created_with_the_files_digest_of_its_service_in_a_label() {
    let host = host();
    up_with(&host, FILES, &[("web", OLD)]);
    let web = host.container("shop-web-1").expect("web");
    assert_eq!(web.labels[LABEL_FILES_DIGEST], OLD);
    assert_eq!(web.files_digest(), Some(OLD));
    let db = host.container("shop-db-1").expect("db");
    assert_eq!(db.files_digest(), None);
}

#[test]
fn a_changed_config_or_secret_content_recreates_only_the_containers_that_use_it() {
    let host = host();
    up_with(&host, FILES, &[("web", OLD)]);
    let plan = up_with(&host, FILES, &[("web", NEW)]);
    insta::assert_snapshot!(plan.render_text());
    assert!(plan.ops.iter().all(|op| op.id.starts_with("service:web")));
    let web = host.container("shop-web-1").expect("web");
    assert_eq!(web.files_digest(), Some(NEW));
}

#[test]
fn a_container_without_the_label_and_a_service_without_a_digest_never_differ() {
    let host = host();
    // Made before digests existed: no label.
    up_with(&host, FILES, &[]);
    assert!(plan_with(&host, FILES, &[("web", NEW)]).is_empty());
    // Labelled, but the caller could not compute a digest this time.
    up_with(&host, FILES, &[("web", OLD)]);
    let plan = plan_with(&host, FILES, &[]);
    assert!(plan.is_empty(), "{}", plan.render_text());
}

#[test]
fn a_config_change_of_the_file_wins_over_a_content_change_as_the_cause() {
    let host = host();
    up_with(&host, FILES, &[("web", OLD)]);
    let renamed = FILES.replace(
        "    configs: [site]\n",
        "    configs: [site]\n    user: www\n",
    );
    let plan = plan_with(&host, &renamed, &[("web", NEW)]);
    let causes: Vec<String> = plan
        .ops
        .iter()
        .flat_map(|op| &op.cause)
        .map(Change::to_string)
        .collect();
    assert_eq!(causes, ["user: (unset) → www"]);
}
