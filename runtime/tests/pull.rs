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
