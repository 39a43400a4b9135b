//! Pulls from a real registry server on 127.0.0.1 (Debian's docker-registry),
//! with and without basic auth, into a fresh store.

use std::sync::{Arc, Mutex};

use rcompose_runtime::reference::Reference;
use rcompose_runtime::registry::{self, PullOptions, PullProgress};
use rcompose_runtime::store::Store;
use rcompose_runtime::testing::{self, TestRegistry};

async fn push_busybox(registry: &TestRegistry, repo_tag: &str) {
    let layer = testing::busybox_layer(&[]).unwrap();
    let config = testing::image_config(serde_json::json!({ "Cmd": ["sh"] }));
    registry.push(repo_tag, &[layer], config).await.unwrap();
}

#[tokio::test]
async fn an_image_pulled_from_a_loopback_registry_is_unpacked_and_tagged() {
    let registry = TestRegistry::start(false).unwrap();
    push_busybox(&registry, "test/busybox:1").await;
    let (_tmp, root) = testing::state_root().unwrap();
    let store = Store::open(&root).unwrap();
    let reference = Reference::parse(&format!("{}/test/busybox:1", registry.addr)).unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let opts = PullOptions {
        progress: Some(Arc::new(move |e| sink.lock().unwrap().push(e))),
        ..PullOptions::default()
    };
    let record = registry::pull(&store, &reference, &opts).await.unwrap();
    assert_eq!(record.layers.len(), 1);
    let layer = store.layer_path(&record.layers[0]).unwrap();
    assert!(layer.join("bin/busybox").is_file());
    assert_eq!(
        std::fs::read_link(layer.join("bin/sh")).unwrap().to_str(),
        Some("busybox")
    );
    let stored = store.get(&reference.to_string()).unwrap();
    assert_eq!(stored, record);
    let config = store.config(&stored).unwrap();
    assert_eq!(
        config.config().as_ref().unwrap().cmd().as_deref(),
        Some(&["sh".to_string()][..])
    );
    let events = events.lock().unwrap();
    assert!(matches!(events.first(), Some(PullProgress::Layers(l)) if l.len() == 1));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, PullProgress::LayerDone(_)))
    );
}

#[tokio::test]
async fn a_second_pull_reuses_the_unpacked_layer() {
    let registry = TestRegistry::start(false).unwrap();
    push_busybox(&registry, "test/busybox:1").await;
    push_busybox(&registry, "test/other:2").await;
    let (_tmp, root) = testing::state_root().unwrap();
    let store = Store::open(&root).unwrap();
    let opts = PullOptions::default();
    let a = Reference::parse(&format!("{}/test/busybox:1", registry.addr)).unwrap();
    let b = Reference::parse(&format!("{}/test/other:2", registry.addr)).unwrap();
    let first = registry::pull(&store, &a, &opts).await.unwrap();
    let marker = store.layer_path(&first.layers[0]).unwrap().join("marker");
    std::fs::write(&marker, "kept").unwrap();
    let second = registry::pull(&store, &b, &opts).await.unwrap();
    assert_eq!(first.layers, second.layers);
    assert!(marker.exists(), "the shared layer was unpacked again");
    assert_eq!(store.list().unwrap().len(), 2);
}

#[tokio::test]
async fn a_registry_with_basic_auth_needs_the_credentials_from_the_auth_file() {
    let registry = TestRegistry::start(true).unwrap();
    push_busybox(&registry, "private/busybox:1").await;
    let (tmp, root) = testing::state_root().unwrap();
    let store = Store::open(&root).unwrap();
    let reference = Reference::parse(&format!("{}/private/busybox:1", registry.addr)).unwrap();
    let refused = registry::pull(&store, &reference, &PullOptions::default()).await;
    let message = format!(
        "{:?}",
        refused.expect_err("an anonymous pull must be refused")
    );
    assert!(
        message.contains("401") || message.to_lowercase().contains("unauthorized"),
        "{message}"
    );
    let auth_file = tmp.path().join("auth.json");
    registry.write_auth_file(&auth_file).unwrap();
    let opts = PullOptions {
        auth_files: vec![auth_file],
        ..PullOptions::default()
    };
    let record = registry::pull(&store, &reference, &opts).await.unwrap();
    assert!(
        store
            .layer_path(&record.layers[0])
            .unwrap()
            .join("bin/busybox")
            .is_file()
    );
}

#[tokio::test]
async fn an_image_index_resolves_to_the_manifest_of_the_host_platform() {
    let registry = TestRegistry::start(false).unwrap();
    let config = || testing::image_config(serde_json::json!({ "Cmd": ["sh"] }));
    for arch in ["amd64", "arm64"] {
        let marker = vec![("marker".to_string(), arch.as_bytes().to_vec(), 0o644)];
        let layer = testing::busybox_layer(&marker).unwrap();
        registry
            .push(&format!("multi/img:{arch}"), &[layer], config())
            .await
            .unwrap();
    }
    // The host's entry comes second, so taking the first would be wrong.
    let host = if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "amd64"
    };
    let other = if host == "amd64" { "arm64" } else { "amd64" };
    let entries = [
        (other, format!("multi/img:{other}")),
        (host, format!("multi/img:{host}")),
    ];
    let entries: Vec<(&str, &str)> = entries.iter().map(|(a, t)| (*a, t.as_str())).collect();
    registry
        .push_index("multi/img:latest", &entries)
        .await
        .unwrap();
    let (_tmp, root) = testing::state_root().unwrap();
    let store = Store::open(&root).unwrap();
    let reference = Reference::parse(&format!("{}/multi/img", registry.addr)).unwrap();
    let record = registry::pull(&store, &reference, &PullOptions::default())
        .await
        .unwrap();
    let layer = store.layer_path(&record.layers[0]).unwrap();
    assert_eq!(std::fs::read_to_string(layer.join("marker")).unwrap(), host);
    assert_ne!(
        record.repo_digest.as_deref(),
        Some(record.manifest_digest.as_str()),
        "the repo digest is the index's"
    );
}
