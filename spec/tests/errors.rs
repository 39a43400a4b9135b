//! Golden tests of the loader's error messages: every file in `tests/invalid/`
//! must fail to load, and what the user reads is pinned by a snapshot. Each
//! message must point into the file (`name.yml:line:col`).

use std::path::{Path, PathBuf};

use rcompose_spec::{LoadError, LoadOptions, load};

fn invalid_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/invalid")
}

fn errors_of(file: &Path) -> String {
    let dir = invalid_dir();
    let opts = LoadOptions {
        files: vec![file.to_path_buf()],
        working_dir: dir.clone(),
        ..LoadOptions::default()
    };
    match load(&opts) {
        Ok(_) => panic!("{} loaded without error", file.display()),
        Err(LoadError::Invalid(d)) => d.to_string().replace(&format!("{}/", dir.display()), ""),
        Err(other) => panic!("{}: not a stack-file error: {other}", file.display()),
    }
}

#[test]
fn every_invalid_file_is_rejected_with_file_line_col() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(invalid_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 30, "only {} invalid files", files.len());
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = errors_of(&file);
        assert!(
            text.lines()
                .next()
                .unwrap_or_default()
                .starts_with(&format!("{name}:")),
            "{name}: first error does not name the file:\n{text}"
        );
        insta::assert_snapshot!(name.trim_end_matches(".yml").to_string(), text);
    }
}
