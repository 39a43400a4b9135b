//! Registry credentials, read the way `docker login` and podman store them.
//!
//! Sources, first match wins: the file named by `REGISTRY_AUTH_FILE`, then
//! `$DOCKER_CONFIG/config.json`, then `~/.docker/config.json`. Entries are
//! `auths.<registry>.auth` (base64 of `user:password`) or separate
//! `username`/`password` fields. Docker Hub is stored under
//! `https://index.docker.io/v1/`; keys may carry a scheme or a path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

/// A user name and password for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ***)", self.username)
    }
}

#[derive(Deserialize, Default)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// Files consulted for credentials, in order.
pub fn auth_files(env: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(path) = env("REGISTRY_AUTH_FILE") {
        files.push(PathBuf::from(path));
    }
    if let Some(dir) = env("DOCKER_CONFIG") {
        files.push(Path::new(&dir).join("config.json"));
    }
    if let Some(home) = env("HOME") {
        files.push(Path::new(&home).join(".docker/config.json"));
    }
    files
}

/// Credentials for `registry` from the first file that has them.
pub fn lookup(registry: &str, files: &[PathBuf]) -> Option<Credentials> {
    files.iter().find_map(|path| {
        let text = std::fs::read_to_string(path).ok()?;
        find_in(&text, registry)
    })
}

/// Credentials for `registry` in the text of one auth file.
pub fn find_in(text: &str, registry: &str) -> Option<Credentials> {
    let file: AuthFile = serde_json::from_str(text).ok()?;
    let wanted = normalize_key(registry);
    file.auths
        .iter()
        .find(|(key, _)| normalize_key(key) == wanted)
        .and_then(|(_, entry)| decode(entry))
}

fn normalize_key(key: &str) -> String {
    let key = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = key.split('/').next().unwrap_or(key);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".into(),
        other => other.to_string(),
    }
}

fn decode(entry: &AuthEntry) -> Option<Credentials> {
    if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
        return Some(Credentials {
            username: username.clone(),
            password: password.clone(),
        });
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(entry.auth.as_ref()?.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (username, password) = text.split_once(':')?;
    Some(Credentials {
        username: username.into(),
        password: password.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_credentials_are_found_under_their_legacy_key() {
        let text = r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"}}}"#;
        let creds = find_in(text, "docker.io").unwrap();
        assert_eq!(
            (creds.username.as_str(), creds.password.as_str()),
            ("u", "p")
        );
    }

    #[test]
    fn a_registry_with_a_port_matches_exactly_and_username_fields_work() {
        let text = r#"{"auths":{"127.0.0.1:5000":{"username":"a","password":"b:c"}}}"#;
        assert_eq!(find_in(text, "127.0.0.1:5000").unwrap().password, "b:c");
        assert!(find_in(text, "127.0.0.1:5001").is_none());
    }

    #[test]
    fn the_auth_file_variable_comes_before_the_docker_config() {
        let env = |k: &str| match k {
            "REGISTRY_AUTH_FILE" => Some("/a.json".to_string()),
            "HOME" => Some("/root".to_string()),
            _ => None,
        };
        let files = auth_files(&env);
        assert_eq!(
            files,
            vec![
                PathBuf::from("/a.json"),
                PathBuf::from("/root/.docker/config.json")
            ]
        );
    }

    #[test]
    fn credentials_never_print_the_password() {
        let creds = Credentials {
            username: "u".into(),
            password: "secret".into(),
        };
        assert!(!format!("{creds:?}").contains("secret"));
    }
}
