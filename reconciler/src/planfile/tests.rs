//! Save/load round trips, version refusal and the stale-plan checks.

use std::time::Duration;

use super::*;
use crate::backend::{ContainerBackend, Health, observe};
use crate::plan::PlanOptions;
use crate::test_support::{STACK, host, plan_for, up};

fn sample() -> PlanFile {
    let (_, plan) = plan_for(&host(), STACK, &PlanOptions::default());
    let fingerprint = Fingerprint {
        observed: "o".repeat(64),
        inputs: "i".repeat(64),
    };
    PlanFile::new(
        "shop",
        fingerprint,
        serde_json::json!({"pull": "missing"}),
        plan,
    )
}

#[test]
fn a_saved_plan_file_loads_back_equal_and_leaves_no_temp_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("plan.json");
    let file = sample();
    file.save(&path).expect("save");
    assert_eq!(PlanFile::load(&path).expect("load"), file);
    assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1);
}

#[test]
fn a_plan_file_of_another_schema_version_is_refused_with_both_versions_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("plan.json");
    let mut value = serde_json::to_value(sample()).expect("json");
    value["schema_version"] = 2.into();
    std::fs::write(&path, value.to_string()).expect("write");
    let err = PlanFile::load(&path).expect_err("version 2");
    assert!(matches!(err, PlanFileError::Version { found: 2, .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "plan file {} has schema version 2, this rcompose reads version 1; make the plan again with this rcompose",
            path.display()
        )
    );
}

#[test]
fn a_file_that_is_not_a_plan_file_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("compose.yaml");
    std::fs::write(&path, "services: {}\n").expect("write");
    assert!(matches!(
        PlanFile::load(&path),
        Err(PlanFileError::Parse { .. })
    ));
    std::fs::write(&path, "{\"ops\": []}").expect("write");
    let err = PlanFile::load(&path).expect_err("no version");
    assert!(
        err.to_string()
            .ends_with("is not a plan file (it has no schema_version)")
    );
    assert!(matches!(
        PlanFile::load(&dir.path().join("missing.json")),
        Err(PlanFileError::Read { .. })
    ));
}

#[test]
fn check_names_the_project_the_stack_files_or_the_host_that_changed() {
    let file = sample();
    let (observed, inputs) = (
        file.fingerprint.observed.clone(),
        file.fingerprint.inputs.clone(),
    );
    assert_eq!(file.check("shop", &observed, &inputs), Ok(()));
    let err = file.check("blog", &observed, &inputs).expect_err("project");
    assert_eq!(err.to_string(), "the plan is for project shop, not blog");
    let err = file
        .check("shop", &observed, "changed")
        .expect_err("inputs");
    assert_eq!(
        err.to_string(),
        "the stack files changed since the plan was made; make a new plan"
    );
    let err = file.check("shop", "changed", &inputs).expect_err("host");
    assert_eq!(
        err.to_string(),
        "the host changed since the plan was made; make a new plan"
    );
}

#[test]
fn the_observed_fingerprint_changes_with_the_host_but_not_with_health() {
    let host = host();
    up(&host, STACK, &PlanOptions::default());
    let images = ["nginx:1.25".to_string(), "postgres:16".to_string()];
    let before = fingerprint_observed(&observe(&host, "shop", &images).expect("observe"));
    let again = fingerprint_observed(&observe(&host, "shop", &images).expect("observe"));
    assert_eq!(before, again);
    assert_eq!(before.len(), 64);

    let mut web = host.container("shop-web-1").expect("web");
    web.health = Some(Health::Healthy);
    host.add_container(web);
    let healthy = fingerprint_observed(&observe(&host, "shop", &images).expect("observe"));
    assert_eq!(before, healthy);

    host.stop_container("shop-web-1", Some(Duration::from_secs(1)))
        .expect("stop");
    let stopped = fingerprint_observed(&observe(&host, "shop", &images).expect("observe"));
    assert_ne!(before, stopped);
}

#[test]
fn the_inputs_fingerprint_covers_paths_contents_and_order() {
    let file = |p: &str, c: &str| (PathBuf::from(p), c.as_bytes().to_vec());
    let base = fingerprint_inputs(&[file("a.yml", "x"), file("b.yml", "y")]);
    assert_eq!(
        base,
        fingerprint_inputs(&[file("a.yml", "x"), file("b.yml", "y")])
    );
    for other in [
        vec![file("a.yml", "x"), file("b.yml", "z")],
        vec![file("a.yml", "x"), file("c.yml", "y")],
        vec![file("b.yml", "y"), file("a.yml", "x")],
        vec![file("a.ym", "lx"), file("b.yml", "y")],
        vec![file("a.yml", "x")],
    ] {
        assert_ne!(base, fingerprint_inputs(&other), "{other:?}");
    }
}

#[test]
fn created_is_rfc3339_in_utc() {
    let at = |secs: u64| rfc3339(UNIX_EPOCH + Duration::from_secs(secs));
    assert_eq!(at(0), "1970-01-01T00:00:00Z");
    assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(at(1_709_251_199), "2024-02-29T23:59:59Z");
    assert_eq!(at(1_798_761_600), "2027-01-01T00:00:00Z");
    assert_eq!(at(4_107_542_399), "2100-02-28T23:59:59Z");
    assert_eq!(sample().created.len(), "1970-01-01T00:00:00Z".len());
}
