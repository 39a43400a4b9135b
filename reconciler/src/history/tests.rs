use std::time::Duration;

use serde_json::json;

use super::*;

fn file_source() -> Source {
    Source::File {
        path: "compose.yaml".into(),
    }
}

/// A revision of a project whose `web` service runs `image`.
fn new_revision(trigger: &str, image: &str) -> NewRevision {
    NewRevision {
        trigger: trigger.into(),
        source: file_source(),
        project: json!({"name": "shop", "services": {"web": {"image": image}}}),
        images: BTreeMap::from([(image.to_string(), Some(format!("sha256:{image}")))]),
        inputs: BTreeMap::from([("compose.yaml".to_string(), "sha256:aa".to_string())]),
    }
}

fn history() -> (tempfile::TempDir, History) {
    let root = tempfile::tempdir().unwrap();
    let history = History::new(root.path(), "shop");
    (root, history)
}

fn file_names(history: &History) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(history.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn revisions_are_numbered_from_one_in_files_under_the_project_directory() {
    let (root, history) = history();
    let first = history.record(new_revision("start", "nginx:1.25")).unwrap();
    let second = history
        .record(new_revision("files: compose.yaml", "nginx:1.27"))
        .unwrap();
    assert_eq!((first.number, second.number), (1, 2));
    assert_eq!(
        history.dir(),
        root.path().join("projects").join("shop").join("history")
    );
    assert_eq!(
        file_names(&history),
        [".lock", "000001.json", "000002.json"]
    );
    assert_eq!(history.get(2).unwrap(), Some(second.clone()));
    assert_eq!(history.latest().unwrap(), Some(second));
}

#[test]
fn a_revision_file_holds_the_whole_revision_as_json() {
    let (_root, history) = history();
    let rev = history.record(new_revision("start", "nginx:1.25")).unwrap();
    let text = std::fs::read_to_string(history.dir().join("000001.json")).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["number"], 1);
    assert_eq!(value["trigger"], "start");
    assert_eq!(
        value["source"],
        json!({"kind": "file", "path": "compose.yaml"})
    );
    assert_eq!(value["project"]["services"]["web"]["image"], "nginx:1.25");
    assert_eq!(value["images"]["nginx:1.25"], "sha256:nginx:1.25");
    assert_eq!(value["inputs"]["compose.yaml"], "sha256:aa");
    assert_eq!(value["time"], rev.time.as_str());
}

#[test]
fn an_empty_history_lists_nothing_and_has_no_latest() {
    let (_root, history) = history();
    assert!(history.list().unwrap().is_empty());
    assert_eq!(history.latest().unwrap(), None);
    assert_eq!(history.get(1).unwrap(), None);
    assert_eq!(history.keep(3).unwrap(), 0);
    assert!(!history.dir().exists(), "reading creates nothing");
}

#[test]
fn a_pass_that_changes_nothing_records_no_new_revision() {
    let (_root, history) = history();
    let first = history.record(new_revision("start", "nginx:1.25")).unwrap();
    let mut again = new_revision("resync", "nginx:1.25");
    again
        .inputs
        .insert("compose.yaml".into(), "sha256:bb".into());
    let same = history.record(again).unwrap();
    assert_eq!(same, first, "the latest revision comes back unchanged");
    assert_eq!(history.list().unwrap().len(), 1);
}

#[test]
fn a_new_image_digest_or_source_is_a_new_revision() {
    let (_root, history) = history();
    history.record(new_revision("start", "nginx:1.25")).unwrap();
    let mut pulled = new_revision("resync", "nginx:1.25");
    pulled
        .images
        .insert("nginx:1.25".into(), Some("sha256:newer".into()));
    assert_eq!(history.record(pulled.clone()).unwrap().number, 2);
    pulled.source = Source::Git {
        repo: "https://git.example.invalid/stacks.git".into(),
        reference: "main".into(),
        commit: "0123456789abcdef0123".into(),
        path: "shop/compose.yaml".into(),
    };
    assert_eq!(history.record(pulled).unwrap().number, 3);
}

#[test]
fn the_list_has_summaries_oldest_first() {
    let (_root, history) = history();
    history.record(new_revision("start", "nginx:1.25")).unwrap();
    history
        .record(new_revision("files: compose.yaml", "nginx:1.27"))
        .unwrap();
    let list = history.list().unwrap();
    let seen: Vec<(u64, &str)> = list
        .iter()
        .map(|s| (s.number, s.trigger.as_str()))
        .collect();
    assert_eq!(seen, [(1, "start"), (2, "files: compose.yaml")]);
    assert_eq!(list[1].source, file_source());
}

#[test]
fn recording_keeps_only_the_last_revisions_and_never_reuses_a_number() {
    let (_root, history) = history();
    let history = history.keeping(3);
    for i in 0..5 {
        history
            .record(new_revision("files", &format!("nginx:1.{i}")))
            .unwrap();
    }
    let numbers: Vec<u64> = history.list().unwrap().iter().map(|s| s.number).collect();
    assert_eq!(numbers, [3, 4, 5]);
    assert_eq!(history.get(1).unwrap(), None);
    assert_eq!(history.keep(0).unwrap(), 2, "the latest one stays");
    let next = history.record(new_revision("files", "redis:7")).unwrap();
    assert_eq!(next.number, 6);
}

#[test]
fn the_default_keeps_fifty_revisions() {
    let (_root, history) = history();
    for i in 0..52 {
        history
            .record(new_revision("files", &format!("nginx:{i}")))
            .unwrap();
    }
    let list = history.list().unwrap();
    assert_eq!(list.len(), DEFAULT_KEEP);
    assert_eq!(list[0].number, 3);
}

#[test]
fn stray_files_in_the_directory_are_ignored() {
    let (_root, history) = history();
    history.record(new_revision("start", "nginx:1.25")).unwrap();
    for stray in [".000002.json.tmp-42", "notes.json", "12.json", "000003.txt"] {
        std::fs::write(history.dir().join(stray), b"{").unwrap();
    }
    assert_eq!(history.list().unwrap().len(), 1);
    assert_eq!(history.latest().unwrap().unwrap().number, 1);
}

#[test]
fn a_corrupt_revision_file_is_an_error_naming_it() {
    let (_root, history) = history();
    history.record(new_revision("start", "nginx:1.25")).unwrap();
    std::fs::write(history.dir().join("000001.json"), b"{ not json").unwrap();
    let error = history.latest().unwrap_err();
    assert!(error.to_string().contains("000001.json"), "{error}");
}

#[test]
fn input_digests_map_each_path_to_the_sha256_of_its_content() {
    let digests = input_digests(&[
        (PathBuf::from("compose.yaml"), b"abc".to_vec()),
        (PathBuf::from(".env"), Vec::new()),
    ]);
    assert_eq!(
        digests["compose.yaml"],
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        digests[".env"],
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[test]
fn times_are_rfc3339_in_utc() {
    let at = |secs: u64| rfc3339(UNIX_EPOCH + Duration::from_secs(secs));
    assert_eq!(at(0), "1970-01-01T00:00:00Z");
    assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(at(1_709_251_199), "2024-02-29T23:59:59Z");
    assert_eq!(at(1_798_761_599), "2026-12-31T23:59:59Z");
    assert_eq!(at(4_107_542_400), "2100-03-01T00:00:00Z");
}

#[test]
fn a_git_source_shows_repository_reference_short_commit_and_path() {
    let source = Source::Git {
        repo: "https://git.example.invalid/stacks.git".into(),
        reference: "main".into(),
        commit: "0123456789abcdef0123".into(),
        path: "shop/compose.yaml".into(),
    };
    assert_eq!(
        source.to_string(),
        "https://git.example.invalid/stacks.git@main (0123456789ab) shop/compose.yaml"
    );
    assert_eq!(file_source().to_string(), "compose.yaml");
}
