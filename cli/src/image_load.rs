//! `rcompose image load` and `image import`: offline images from files.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use anyhow::Context as _;
use rcompose_runtime::load::{self, ImportConfig};
use rcompose_runtime::store::{ImageRecord, Store};

/// Loads an OCI image layout directory or a `docker save` archive.
pub fn load(store: &Store, input: &Path, name: Option<&str>) -> anyhow::Result<Vec<ImageRecord>> {
    if input.is_dir() {
        return Ok(load::load_oci_layout(store, input, name)?);
    }
    let file = File::open(input).with_context(|| format!("failed to open {}", input.display()))?;
    Ok(load::load_docker_archive(
        store,
        BufReader::new(file),
        name,
    )?)
}

/// Imports a root filesystem tarball (`-` for stdin) as a one-layer image.
pub fn import(
    store: &Store,
    file: &Path,
    name: &str,
    cmd: &[String],
) -> anyhow::Result<ImageRecord> {
    let reader: Box<dyn Read> = if file == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        let opened =
            File::open(file).with_context(|| format!("failed to open {}", file.display()))?;
        Box::new(BufReader::new(opened))
    };
    let config = ImportConfig {
        cmd: parse_cmd(cmd)?,
        ..ImportConfig::default()
    };
    Ok(load::import_rootfs(store, reader, name, config)?)
}

/// `--cmd '["sh","-c","x"]'` (one JSON array) or `--cmd sh --cmd -c …` (words).
fn parse_cmd(words: &[String]) -> anyhow::Result<Option<Vec<String>>> {
    match words {
        [] => Ok(None),
        [one] if one.trim_start().starts_with('[') => Ok(Some(
            serde_json::from_str(one).context("--cmd is not a JSON array of strings")?,
        )),
        many => Ok(Some(many.to_vec())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmd_is_a_json_array_or_a_word_list() {
        assert_eq!(parse_cmd(&[]).unwrap(), None);
        let json = parse_cmd(&[r#"["sh","-c","echo"]"#.to_string()]).unwrap();
        assert_eq!(
            json,
            Some(vec!["sh".to_string(), "-c".into(), "echo".into()])
        );
        assert_eq!(
            parse_cmd(&["sh".to_string()]).unwrap(),
            Some(vec!["sh".to_string()])
        );
    }
}
