//! Property tests: `config` output loaded again gives the same project, and no
//! input bytes make the loader panic or hang.

use std::path::Path;

use proptest::prelude::*;
use rcompose_spec::{LoadOptions, config_json, emit, load};
use serde_json::{Value, json};

fn load_text(dir: &Path, text: &str) -> Result<rcompose_spec::Loaded, rcompose_spec::LoadError> {
    let file = dir.join("compose.yaml");
    std::fs::write(&file, text).unwrap();
    load(&LoadOptions {
        files: vec![file],
        working_dir: dir.to_path_buf(),
        ..LoadOptions::default()
    })
}

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9]{0,7}"
}

fn service() -> impl Strategy<Value = Value> {
    (
        "[a-z]{1,8}(:[0-9]{1,2})?",
        prop::collection::vec((1u16..60000, 1u16..60000, prop::bool::ANY), 0..3),
        prop::collection::btree_map("[A-Z][A-Z_]{0,6}", "[ -~]{0,12}", 0..4),
        prop::option::of("[a-z ]{1,20}"),
        prop::collection::vec(("[a-z]{1,6}", "/[a-z]{1,6}", prop::bool::ANY), 0..2),
        prop::option::of(1u32..5),
    )
        .prop_map(|(image, ports, env, command, vols, replicas)| {
            let ports: Vec<Value> = ports
                .into_iter()
                .enumerate()
                .map(|(i, (p, t, udp))| {
                    let proto = if udp { "/udp" } else { "" };
                    json!(format!("127.0.0.{}:{}:{t}{proto}", i + 1, p))
                })
                .collect();
            // A literal `$` in a stack file is written `$$`.
            let env: std::collections::BTreeMap<String, String> = env
                .into_iter()
                .map(|(k, v)| (k, v.replace('$', "$$")))
                .collect();
            let mut s = json!({"image": image, "ports": ports, "environment": env});
            if let Some(c) = command {
                s["command"] = json!(c);
            }
            let vols: Vec<Value> = vols
                .into_iter()
                .map(|(src, dst, ro)| json!(format!("{src}:{dst}{}", if ro { ":ro" } else { "" })))
                .collect();
            if !vols.is_empty() {
                s["volumes"] = json!(vols);
            }
            if let Some(r) = replicas {
                s["deploy"] = json!({"replicas": r});
            }
            s
        })
}

fn project() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(name(), service(), 1..4).prop_map(|services| {
        let mut volumes = serde_json::Map::new();
        let mut services_json = serde_json::Map::new();
        for (i, (n, mut s)) in services.into_iter().enumerate() {
            // Keep published ports unique across services: vary the host IP per service.
            if let Some(ports) = s["ports"].as_array_mut() {
                for p in ports.iter_mut() {
                    let text =
                        p.as_str()
                            .unwrap()
                            .replacen("127.0.0.", &format!("127.0.{}.", i + 1), 1);
                    *p = json!(text);
                }
            }
            for v in s["volumes"].as_array().cloned().unwrap_or_default() {
                let src = v.as_str().unwrap().split(':').next().unwrap().to_string();
                volumes.insert(src, Value::Null);
            }
            services_json.insert(n, s);
        }
        json!({"name": "prop", "services": services_json, "volumes": volumes})
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn config_output_loads_back_to_the_same_project(doc in project()) {
        let dir = tempfile::tempdir().unwrap();
        let first = load_text(dir.path(), &emit::to_yaml(&doc))
            .unwrap_or_else(|e| panic!("generated stack does not load:\n{e}\n{}", emit::to_yaml(&doc)));
        let output = emit::to_yaml(&config_json(&first.project));
        let second = load_text(dir.path(), &output)
            .unwrap_or_else(|e| panic!("config output does not load:\n{e}\n{output}"));
        prop_assert_eq!(&first.project, &second.project);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_loader(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let dir = tempfile::tempdir().unwrap();
        let text = String::from_utf8_lossy(&bytes);
        let _ = load_text(dir.path(), &text);
    }

    #[test]
    fn yaml_shaped_noise_never_panics_the_loader(
        text in r"(services:\n  [a-z]{1,3}:\n    [a-z_]{1,10}: [\[\]{}&*!<:a-z0-9 ,'$-]{0,20}\n){1,4}"
    ) {
        let dir = tempfile::tempdir().unwrap();
        let _ = load_text(dir.path(), &text);
    }
}
