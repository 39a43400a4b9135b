//! Load + normalize a 500-service stack (goal: under 50 ms on 2 cores).

use criterion::{Criterion, criterion_group, criterion_main};
use rcompose_spec::{LoadOptions, load};

/// A stack of `n` services using most common keys, anchors and interpolation.
fn big_stack(n: usize) -> String {
    let mut s = String::from(
        "name: bench\nx-common: &common\n  restart: unless-stopped\n  logging:\n    driver: json-file\n    options: {max-size: 10m}\nservices:\n",
    );
    for i in 0..n {
        s.push_str(&format!(
            "  svc{i}:\n    <<: *common\n    image: registry.local/app/svc{i}:${{TAG:-1.0}}\n    command: [\"serve\", \"--port\", \"8080\"]\n    ports: [\"127.0.0.1:{}:8080\"]\n    environment:\n      ID: \"{i}\"\n      MODE: ${{MODE:-prod}}\n    volumes: [\"data{i}:/data\", \"./conf:/etc/app:ro\"]\n    networks: [front, back]\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n      interval: 30s\n    deploy:\n      resources:\n        limits: {{memory: 256m, cpus: \"0.5\"}}\n",
            20000 + i
        ));
        if i > 0 {
            s.push_str(&format!("    depends_on: [svc{}]\n", i - 1));
        }
    }
    s.push_str("networks:\n  front:\n  back:\nvolumes:\n");
    for i in 0..n {
        s.push_str(&format!("  data{i}:\n"));
    }
    s
}

fn bench_load(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("compose.yaml");
    std::fs::write(&file, big_stack(500)).unwrap();
    let opts = LoadOptions {
        files: vec![file],
        working_dir: dir.path().to_path_buf(),
        ..LoadOptions::default()
    };
    load(&opts).expect("the benchmark stack loads");
    c.bench_function("load_normalize_500_services", |b| {
        b.iter(|| load(&opts).unwrap())
    });
}

criterion_group!(benches, bench_load);
criterion_main!(benches);
