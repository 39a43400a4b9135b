//! Loading like docker compose: discovery, project name, environment, extends,
//! include, profiles, env_file. Each test builds its own project directory.

use std::path::Path;

use indexmap::IndexMap;
use rcompose_spec::{LoadError, LoadOptions, Loaded, load};
use serde_json::Value;

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn opts(dir: &Path) -> LoadOptions {
    LoadOptions {
        working_dir: dir.to_path_buf(),
        ..LoadOptions::default()
    }
}

fn env(pairs: &[(&str, &str)]) -> IndexMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn service(l: &Loaded, name: &str) -> Value {
    serde_json::to_value(&l.project.services[name]).unwrap()
}

fn errors(r: Result<Loaded, LoadError>) -> String {
    match r {
        Err(LoadError::Invalid(d)) => d.to_string(),
        Err(e) => panic!("unexpected error kind: {e}"),
        Ok(_) => panic!("loaded without error"),
    }
}

#[test]
fn discovery_prefers_compose_yaml_and_reads_its_override_file() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "compose.yaml", "services:\n  web: {image: a}\n");
    write(
        dir.path(),
        "compose.override.yaml",
        "services:\n  web: {image: b}\n",
    );
    write(
        dir.path(),
        "docker-compose.yml",
        "services:\n  other: {image: c}\n",
    );
    let l = load(&opts(dir.path())).unwrap();
    assert_eq!(service(&l, "web")["image"], "b");
    assert!(!l.project.services.contains_key("other"));
}

#[test]
fn no_stack_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = load(&opts(dir.path())).unwrap_err();
    assert!(err.to_string().contains("no stack file found"), "{err}");
}

#[test]
fn compose_file_lists_files_to_merge_in_order() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "a.yml",
        "services:\n  web: {image: a, environment: {X: '1'}}\n",
    );
    write(
        dir.path(),
        "b.yml",
        "services:\n  web: {environment: {Y: '2'}}\n",
    );
    let mut o = opts(dir.path());
    o.environment = env(&[("COMPOSE_FILE", "a.yml:b.yml")]);
    let web = service(&load(&o).unwrap(), "web");
    assert_eq!(web["environment"], serde_json::json!({"X": "1", "Y": "2"}));
}

#[test]
fn project_name_comes_from_flag_then_env_then_file_then_directory() {
    let dir = tempfile::tempdir().unwrap();
    let proj = dir.path().join("My.Project");
    write(&proj, "compose.yaml", "services:\n  web: {image: a}\n");
    let mut o = opts(&proj);
    assert_eq!(load(&o).unwrap().project.name.as_deref(), Some("myproject"));
    write(
        &proj,
        "compose.yaml",
        "name: fromfile\nservices:\n  web: {image: a}\n",
    );
    assert_eq!(load(&o).unwrap().project.name.as_deref(), Some("fromfile"));
    o.environment = env(&[("COMPOSE_PROJECT_NAME", "fromenv")]);
    assert_eq!(load(&o).unwrap().project.name.as_deref(), Some("fromenv"));
    o.project_name = Some("fromflag".into());
    let l = load(&o).unwrap();
    assert_eq!(l.project.name.as_deref(), Some("fromflag"));
    assert_eq!(
        l.project.networks["default"].name.as_deref(),
        Some("fromflag_default")
    );
}

#[test]
fn process_environment_wins_over_dotenv_and_env_files_replace_dotenv() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "compose.yaml",
        "services:\n  web: {image: \"${IMG}:${TAG:-latest}\"}\n",
    );
    write(dir.path(), ".env", "IMG=fromdotenv\nTAG=1\n");
    write(dir.path(), "other.env", "IMG=fromother\n");
    let mut o = opts(dir.path());
    assert_eq!(service(&load(&o).unwrap(), "web")["image"], "fromdotenv:1");
    o.environment = env(&[("IMG", "fromprocess")]);
    assert_eq!(service(&load(&o).unwrap(), "web")["image"], "fromprocess:1");
    o.environment = IndexMap::new();
    o.env_files = vec!["other.env".into()];
    assert_eq!(
        service(&load(&o).unwrap(), "web")["image"],
        "fromother:latest"
    );
}

#[test]
fn extends_resolves_chains_across_files_and_the_child_wins() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "common.yml",
        "services:\n  base:\n    image: base\n    environment: {A: base, B: base}\n  mid:\n    extends: base\n    environment: {B: mid}\n",
    );
    write(
        dir.path(),
        "compose.yaml",
        "services:\n  web:\n    extends: {file: common.yml, service: mid}\n    environment: {C: web}\n    command: [run]\n",
    );
    let web = service(&load(&opts(dir.path())).unwrap(), "web");
    assert_eq!(web["image"], "base");
    assert_eq!(
        web["environment"],
        serde_json::json!({"A": "base", "B": "mid", "C": "web"})
    );
    assert!(web.get("extends").is_none());
}

#[test]
fn include_brings_services_with_their_own_directory_and_dotenv() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "sub/compose.yaml",
        "services:\n  db:\n    image: \"db:${DB_TAG}\"\n    volumes: ['./data:/data']\n",
    );
    write(dir.path(), "sub/.env", "DB_TAG=15\n");
    write(
        dir.path(),
        "compose.yaml",
        "include:\n  - sub/compose.yaml\nservices:\n  web: {image: w, depends_on: [db]}\n",
    );
    let l = load(&opts(dir.path())).unwrap();
    let db = service(&l, "db");
    assert_eq!(db["image"], "db:15");
    let sub = dir.path().join("sub/data");
    assert_eq!(db["volumes"][0]["source"], sub.display().to_string());
}

#[test]
fn include_conflicting_with_the_project_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "sub.yml", "services:\n  web: {image: a}\n");
    write(
        dir.path(),
        "compose.yaml",
        "include: [sub.yml]\nservices:\n  web: {image: b}\n",
    );
    assert!(errors(load(&opts(dir.path()))).contains("services.web is defined both"));
}

#[test]
fn compose_profiles_and_flags_both_enable_profiles() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "compose.yaml",
        "services:\n  a: {image: a}\n  b: {image: b, profiles: [x]}\n  c: {image: c, profiles: [y]}\n",
    );
    let mut o = opts(dir.path());
    o.environment = env(&[("COMPOSE_PROFILES", "x")]);
    o.profiles = vec!["y".into()];
    let l = load(&o).unwrap();
    assert_eq!(
        l.project.services.keys().collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
    assert_eq!(l.all_profiles, ["x", "y"]);
}

#[test]
fn env_files_fold_into_environment_and_optional_ones_may_be_missing() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "web.env", "A=file\nB=file\n");
    write(
        dir.path(),
        "compose.yaml",
        "services:\n  web:\n    image: a\n    env_file: [web.env, {path: missing.env, required: false}]\n    environment: {B: explicit, HOME_DIR: null}\n",
    );
    let mut o = opts(dir.path());
    o.environment = env(&[("HOME_DIR", "/home/x")]);
    let web = service(&load(&o).unwrap(), "web");
    assert_eq!(
        web["environment"],
        serde_json::json!({"A": "file", "B": "explicit", "HOME_DIR": "/home/x"})
    );
    write(
        dir.path(),
        "compose.yaml",
        "services:\n  web:\n    image: a\n    env_file: missing.env\n",
    );
    assert!(errors(load(&o)).contains("failed to read env file"));
}

#[test]
fn the_obsolete_version_key_loads_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "compose.yaml",
        "version: '3.8'\nservices:\n  web: {image: a}\n",
    );
    let l = load(&opts(dir.path())).unwrap();
    assert!(
        l.warnings
            .iter()
            .any(|w| w.contains("`version` is obsolete")),
        "{:?}",
        l.warnings
    );
}

#[test]
fn reset_in_an_override_file_removes_the_inherited_value() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "compose.yaml",
        "services:\n  web: {image: a, ports: ['8080:80']}\n",
    );
    write(
        dir.path(),
        "compose.override.yaml",
        "services:\n  web: {ports: !reset []}\n",
    );
    let web = service(&load(&opts(dir.path())).unwrap(), "web");
    assert!(
        web.get("ports")
            .is_none_or(|p| p.as_array().unwrap().is_empty()),
        "{web}"
    );
}

#[test]
fn errors_in_several_files_are_all_reported_with_their_file() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "compose.yaml",
        "services:\n  web: {image: \"${A:?need A}\"}\n",
    );
    write(
        dir.path(),
        "compose.override.yaml",
        "services:\n  web: {command: \"${B:?need B}\"}\n",
    );
    let text = errors(load(&opts(dir.path())));
    assert!(text.contains("compose.yaml:2:16"), "{text}");
    assert!(text.contains("compose.override.yaml:2:18"), "{text}");
}

#[test]
fn config_hash_ignores_replicas_but_not_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let hash = |text: &str| {
        write(dir.path(), "compose.yaml", text);
        let l = load(&opts(dir.path())).unwrap();
        rcompose_spec::config_hash(&l.project.services["web"])
    };
    let base = hash("services:\n  web: {image: a}\n");
    assert_eq!(
        base,
        hash("services:\n  web: {image: a, deploy: {replicas: 3}}\n")
    );
    assert_eq!(base, hash("services:\n  web: {image: a, profiles: []}\n"));
    assert_ne!(base, hash("services:\n  web: {image: b}\n"));
}

#[test]
fn relative_paths_of_a_service_extended_from_another_file_resolve_against_that_file() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "lib/common.yml",
        "services:\n  base:\n    image: a\n    volumes: ['./conf:/etc/app']\n    env_file: [base.env]\n",
    );
    write(dir.path(), "lib/base.env", "FROM_BASE=1\n");
    write(
        dir.path(),
        "compose.yaml",
        "services:\n  web:\n    extends: {file: lib/common.yml, service: base}\n    volumes: ['./data:/data']\n",
    );
    let web = service(&load(&opts(dir.path())).unwrap(), "web");
    let lib = dir.path().join("lib");
    assert_eq!(
        web["volumes"][0]["source"],
        lib.join("conf").display().to_string()
    );
    assert_eq!(
        web["volumes"][1]["source"],
        dir.path().join("data").display().to_string()
    );
    assert_eq!(web["environment"]["FROM_BASE"], "1");
}

#[test]
fn the_schema_cache_remembers_only_documents_that_passed_and_still_reports_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let entries = || {
        std::fs::read_dir(&cache)
            .map(|d| d.count())
            .unwrap_or_default()
    };
    let cached = LoadOptions {
        schema_cache: Some(cache.clone()),
        ..opts(dir.path())
    };
    write(
        dir.path(),
        "compose.yaml",
        "services:\n  web:\n    image: nginx\n",
    );
    load(&cached).unwrap();
    assert_eq!(entries(), 1);
    // The same document again: loaded, nothing new remembered.
    let again = load(&cached).unwrap();
    assert_eq!(service(&again, "web")["image"], "nginx");
    assert_eq!(entries(), 1);
    // A document the schema refuses is reported as without the cache, and
    // not remembered.
    write(
        dir.path(),
        "compose.yaml",
        "services:\n  web:\n    image: nginx\n    restrat: always\n",
    );
    let with = errors(load(&cached));
    assert_eq!(with, errors(load(&opts(dir.path()))));
    assert!(with.contains("compose.yaml:4:5"), "{with}");
    assert_eq!(entries(), 1);
}
