//! Model-wide tests: coverage of the Compose Specification's keys, schema
//! precision, and round trips of whole projects.

use serde_json::{Value, json};

use super::*;

fn compose_spec() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/compose-cases/compose-spec.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    serde_json::from_str(&text).expect("compose-spec.json is valid json")
}

fn our_schema() -> Value {
    stack_file_schema().to_value()
}

/// Property names of an object schema node.
fn property_names(node: &Value) -> Vec<String> {
    node["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// Asserts every property of `theirs` is a property of our definition `ours`.
fn assert_covers(ours: &Value, ours_name: &str, theirs: &Value, theirs_name: &str) {
    let have = property_names(&ours["definitions"][ours_name]);
    let want = property_names(theirs);
    assert!(!want.is_empty(), "{theirs_name} has no properties");
    let missing: Vec<_> = want.iter().filter(|k| !have.contains(k)).collect();
    assert!(
        missing.is_empty(),
        "{ours_name} lacks {theirs_name} properties {missing:?}"
    );
}

#[test]
fn every_compose_service_property_is_a_property_of_our_service_schema() {
    let spec = compose_spec();
    let service = &spec["definitions"]["service"];
    assert_eq!(property_names(service).len(), 92);
    assert_covers(&our_schema(), "Service", service, "service");
}

#[test]
fn every_compose_top_level_property_is_a_property_of_our_schema() {
    let (spec, ours) = (compose_spec(), our_schema());
    let missing: Vec<_> = property_names(&spec)
        .into_iter()
        .filter(|k| !property_names(&ours).contains(k))
        .collect();
    assert!(missing.is_empty(), "top level lacks {missing:?}");
}

#[test]
fn every_compose_resource_property_is_a_property_of_our_resource_schemas() {
    let (spec, ours) = (compose_spec(), our_schema());
    let defs = &spec["definitions"];
    let pairs = [
        ("Network", "network"),
        ("Volume", "volume"),
        ("Config", "config"),
        ("Secret", "secret"),
        ("Model", "model"),
        ("Healthcheck", "healthcheck"),
        ("Deploy", "deployment"),
        ("Develop", "development"),
        ("ServiceHook", "service_hook"),
    ];
    for (our_name, their_name) in pairs {
        assert_covers(&ours, our_name, &defs[their_name], their_name);
    }
}

#[test]
fn every_compose_nested_service_property_is_covered() {
    let (spec, ours) = (compose_spec(), our_schema());
    let sp = &spec["definitions"]["service"]["properties"];
    let deploy = &spec["definitions"]["deployment"]["properties"];
    let nested = [
        ("Build", &sp["build"]["oneOf"][1], "build"),
        ("PortMapping", &sp["ports"]["items"]["oneOf"][2], "ports"),
        (
            "ServiceVolume",
            &sp["volumes"]["items"]["oneOf"][1],
            "volumes",
        ),
        (
            "BindOptions",
            &sp["volumes"]["items"]["oneOf"][1]["properties"]["bind"],
            "volumes.bind",
        ),
        (
            "VolumeOptions",
            &sp["volumes"]["items"]["oneOf"][1]["properties"]["volume"],
            "volumes.volume",
        ),
        (
            "TmpfsOptions",
            &sp["volumes"]["items"]["oneOf"][1]["properties"]["tmpfs"],
            "volumes.tmpfs",
        ),
        ("BlkioConfig", &sp["blkio_config"], "blkio_config"),
        ("Logging", &sp["logging"], "logging"),
        ("CredentialSpec", &sp["credential_spec"], "credential_spec"),
        ("Provider", &sp["provider"], "provider"),
        (
            "ServiceNetwork",
            &sp["networks"]["oneOf"][1]["patternProperties"]["^[a-zA-Z0-9._-]+$"]["oneOf"][0],
            "networks",
        ),
        (
            "DependsOn",
            &sp["depends_on"]["oneOf"][1]["patternProperties"]["^[a-zA-Z0-9._-]+$"],
            "depends_on",
        ),
        ("Resources", &deploy["resources"], "deploy.resources"),
        (
            "ResourceLimits",
            &deploy["resources"]["properties"]["limits"],
            "deploy.resources.limits",
        ),
        (
            "ResourceReservations",
            &deploy["resources"]["properties"]["reservations"],
            "deploy.resources.reservations",
        ),
        (
            "UpdateConfig",
            &deploy["update_config"],
            "deploy.update_config",
        ),
        (
            "RestartPolicy",
            &deploy["restart_policy"],
            "deploy.restart_policy",
        ),
        ("Placement", &deploy["placement"], "deploy.placement"),
        (
            "DeviceRequest",
            &spec["definitions"]["devices"]["items"],
            "devices",
        ),
        (
            "Include",
            &spec["definitions"]["include"]["oneOf"][1],
            "include",
        ),
    ];
    for (our_name, theirs, their_name) in nested {
        assert_covers(&ours, our_name, theirs, their_name);
    }
}

#[test]
fn the_schema_is_draft07_and_titled() {
    let schema = our_schema();
    assert_eq!(schema["title"], "rcompose stack file");
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    assert!(schema["definitions"]["Service"].is_object());
}

fn is_valid(doc: &Value) -> bool {
    let validator = jsonschema::validator_for(&our_schema()).expect("our schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    if !errors.is_empty() {
        eprintln!("schema errors: {errors:#?}");
    }
    errors.is_empty()
}

fn service_doc(service: Value) -> Value {
    json!({"services": {"web": service}})
}

#[test]
fn the_schema_accepts_extensions_but_rejects_unknown_keys() {
    assert!(is_valid(
        &json!({"version": "3.8", "x-common": {"a": 1}, "services": {"web": {"image": "nginx", "x-note": 1}}})
    ));
    assert!(!is_valid(&json!({"servics": {}})));
    assert!(!is_valid(&service_doc(json!({"imag": "nginx"}))));
    assert!(!is_valid(&service_doc(
        json!({"ports": [{"target": 80, "bogus": 1}]})
    )));
    assert!(!is_valid(&service_doc(
        json!({"volumes": [{"type": "bind", "source": "/a", "target": "/b", "bind": {"nope": 1}}]})
    )));
    assert!(!is_valid(
        &json!({"networks": {"front": {"drivr": "bridge"}}})
    ));
}

#[test]
fn the_schema_accepts_every_short_syntax() {
    let service = json!({
        "image": "nginx",
        "ports": [80, "8080:80", {"target": "81", "published": 8081, "x-a": 1}],
        "volumes": ["data:/x:ro", {"type": "tmpfs", "target": "/t", "tmpfs": {"size": "64m"}}],
        "environment": ["A=1", "B"],
        "labels": {"a": 1, "b": true, "c": null},
        "command": "echo hi",
        "entrypoint": null,
        "depends_on": ["db"],
        "networks": {"front": null, "back": {"aliases": ["w"]}},
        "secrets": ["s", {"source": "t", "mode": 288}],
        "env_file": [".env", {"path": "b.env", "required": false}],
        "ulimits": {"nofile": 1024, "nproc": {"soft": 1, "hard": 2}},
        "healthcheck": {"test": "true", "interval": "10s", "retries": "3"},
        "build": "./dir",
        "extends": "base",
        "gpus": "all",
        "extra_hosts": ["a:1.2.3.4"],
        "mem_limit": "512m",
        "cpus": "0.5",
        "tty": "true",
        "deploy": {"replicas": "2", "resources": {"limits": {"memory": "1g"}}}
    });
    assert!(is_valid(&service_doc(service)));
    assert!(is_valid(
        &json!({"networks": {"front": null}, "volumes": {"data": null}, "include": ["other.yml"]})
    ));
}

fn rich_project() -> Value {
    json!({
        "name": "demo",
        "version": "3.9",
        "x-defaults": {"restart": "always"},
        "services": {
            "web": {
                "image": "nginx:1.27",
                "build": {"context": ".", "args": {"A": 1}, "ssh": ["default"], "x-b": true},
                "command": "nginx -g 'daemon off;'",
                "entrypoint": ["/docker-entrypoint.sh"],
                "environment": ["A=1", "B"],
                "env_file": ".env",
                "labels": {"tier": "front", "n": 2},
                "ports": ["127.0.0.1:8080:80/tcp", "9090-9091:8080-8081", 443],
                "volumes": ["data:/data:ro", "./src:/app:rw,z", "/anon", {"type": "tmpfs", "target": "/tmp", "tmpfs": {"size": "64m", "mode": 1023}}],
                "depends_on": {"db": {"condition": "service_healthy", "restart": true}},
                "networks": ["front"],
                "secrets": ["token", {"source": "key", "target": "/run/key", "mode": "0400"}],
                "configs": ["cfg"],
                "healthcheck": {"test": "curl -f localhost", "interval": "1m30s", "timeout": "10s", "retries": 3, "start_period": "1.5s"},
                "stop_grace_period": "500ms",
                "mem_limit": "512m",
                "shm_size": "1g",
                "memswap_limit": -1,
                "cpus": "0.5",
                "ulimits": {"nofile": {"soft": 1024, "hard": 2048}, "nproc": 65535},
                "extra_hosts": {"db": "10.0.0.2"},
                "devices": ["/dev/fuse"],
                "gpus": "all",
                "deploy": {"replicas": "2", "resources": {"limits": {"cpus": "1", "memory": "1g"}},
                           "restart_policy": {"condition": "on-failure", "delay": "5s"}},
                "develop": {"watch": [{"path": "./src", "action": "sync", "target": "/app"}]},
                "post_start": [{"command": "echo started"}],
                "logging": {"driver": "json-file", "options": {"max-size": "10m", "max-file": 3}},
                "extends": {"service": "base", "file": "base.yml"},
                "provider": {"type": "model", "options": {"model": "ai/x"}},
                "models": ["llm"],
                "tty": "true",
                "init": true,
                "x-custom": {"k": "v"}
            },
            "db": {"image": "postgres", "networks": {"back": {"aliases": ["database"], "ipv4_address": "10.0.0.2"}}}
        },
        "networks": {"front": null, "back": {"driver": "bridge", "ipam": {"config": [{"subnet": "10.0.0.0/24"}]}}},
        "volumes": {"data": null, "ext": {"external": {"name": "legacy"}}},
        "secrets": {"token": {"file": "./token"}, "key": {"environment": "KEY"}},
        "configs": {"cfg": {"content": "hello"}},
        "models": {"llm": {"model": "ai/smollm2"}}
    })
}

#[test]
fn a_rich_project_round_trips_through_json() {
    let project: Project = serde_json::from_value(rich_project()).unwrap();
    let text = serde_json::to_value(&project).unwrap();
    let again: Project = serde_json::from_value(text.clone()).unwrap();
    assert_eq!(again, project);
    assert_eq!(serde_json::to_value(&again).unwrap(), text);
    assert!(is_valid(&rich_project()), "the input validates");
    assert!(is_valid(&text), "the normalized output validates");
}

#[test]
fn a_rich_service_is_normalized_to_long_forms() {
    let project: Project = serde_json::from_value(rich_project()).unwrap();
    let web = &project.services["web"];
    assert_eq!(
        web.command.as_deref().unwrap(),
        ["nginx", "-g", "daemon off;"]
    );
    assert_eq!(web.environment["B"], None);
    assert_eq!(web.labels["n"].as_deref(), Some("2"));
    assert_eq!(web.ports.len(), 4);
    assert_eq!(web.volumes[2].source, None);
    assert_eq!(
        web.depends_on["db"].condition,
        DependencyCondition::ServiceHealthy
    );
    assert_eq!(web.networks["front"], None);
    assert_eq!(web.secrets[1].mode, Some(0o400));
    assert_eq!(
        web.healthcheck.as_ref().unwrap().test,
        ["CMD-SHELL", "curl -f localhost"]
    );
    assert_eq!(web.mem_limit, Some(ByteSize(512 << 20)));
    assert_eq!(web.memswap_limit, Some(-1));
    assert_eq!(
        web.ulimits["nproc"],
        Ulimit {
            soft: 65535,
            hard: 65535
        }
    );
    assert_eq!(web.deploy.as_ref().unwrap().replicas, Some(2));
    assert!(web.tty);
    assert_eq!(web.post_start[0].command, ["echo", "started"]);
}

#[test]
fn a_normalized_service_serializes_like_compose_config() {
    let project: Project = serde_json::from_value(rich_project()).unwrap();
    let web = serde_json::to_value(&project.services["web"]).unwrap();
    assert_eq!(
        web["ports"][0],
        json!({"mode": "ingress", "host_ip": "127.0.0.1", "target": 80, "published": "8080", "protocol": "tcp"})
    );
    assert_eq!(web["environment"], json!({"A": "1", "B": null}));
    assert_eq!(web["mem_limit"], json!(536_870_912));
    assert_eq!(web["healthcheck"]["interval"], "1m30s");
    assert_eq!(web["stop_grace_period"], "500ms");
    assert_eq!(
        web["volumes"][0],
        json!({"type": "volume", "source": "data", "target": "/data", "read_only": true, "volume": {}})
    );
    assert_eq!(
        web["depends_on"]["db"],
        json!({"condition": "service_healthy", "restart": true, "required": true})
    );
    assert_eq!(web["x-custom"], json!({"k": "v"}));
    assert!(web.get("privileged").is_none(), "false flags are omitted");
}

#[test]
fn null_resources_become_defaults_and_version_is_dropped() {
    let project: Project = serde_json::from_value(rich_project()).unwrap();
    assert_eq!(project.networks["front"], Network::default());
    assert_eq!(project.volumes["data"], Volume::default());
    assert_eq!(
        project.extensions.keys().collect::<Vec<_>>(),
        ["x-defaults"]
    );
    assert!(
        serde_json::to_value(&project)
            .unwrap()
            .get("version")
            .is_none()
    );
}

#[test]
fn a_legacy_external_name_becomes_the_resource_name() {
    let project: Project = serde_json::from_value(rich_project()).unwrap();
    let ext = &project.volumes["ext"];
    assert!(ext.external);
    assert_eq!(ext.name.as_deref(), Some("legacy"));
}

#[test]
fn an_invalid_port_fails_the_whole_project_with_its_message() {
    let doc = service_doc(json!({"image": "x", "ports": ["80:80:80:80"]}));
    let err = serde_json::from_value::<Project>(doc)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(r#"invalid port "80:80:80:80": too many colons"#),
        "{err}"
    );
}

#[test]
fn commands_keep_the_difference_between_null_empty_and_absent() {
    let doc = json!({"services": {
        "a": {"command": null, "entrypoint": []},
        "b": {"command": "sh -c \"echo $$HOME\""}
    }});
    let project: Project = serde_json::from_value(doc).unwrap();
    let (a, b) = (&project.services["a"], &project.services["b"]);
    assert_eq!(
        (a.command.clone(), a.entrypoint.clone()),
        (None, Some(vec![]))
    );
    assert_eq!(b.command.as_deref().unwrap(), ["sh", "-c", "echo $$HOME"]);
}
