//! The container's init process: arguments (Docker's Entrypoint/Cmd merge),
//! environment, working directory, user, terminal, capabilities, rlimits and
//! `no_new_privileges`.
//!
//! Entrypoint/Cmd follow the daemon's merge: a non-empty configured
//! entrypoint replaces the image's and drops the image's Cmd (unless a
//! command is configured too); an empty one (`entrypoint: []` or `[""]`)
//! clears the image's Entrypoint but keeps its Cmd; a configured command
//! always replaces the image's Cmd.

use oci_spec::image::Config as ImageConfig;
use oci_spec::runtime::{Capabilities, Process, User};

use super::users::{self, ResolvedUser};
use super::{SpecError, SpecInput, rlimits, security};
use crate::config::ContainerConfig;

/// PATH when neither the image nor the configuration sets one (Docker's).
pub(crate) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The process of the container, for the given hostname and capability set.
pub(crate) fn build(
    input: &SpecInput<'_>,
    hostname: &str,
    caps: &Capabilities,
    no_new_privileges: bool,
) -> Result<Process, SpecError> {
    let config = input.config;
    let image_user = input.image.user().as_deref();
    let user_spec = config.user.as_deref().or(image_user);
    let user = users::resolve(user_spec, &config.group_add, input.passwd, input.group)?;
    let rlimits = rlimits::build(&config.ulimits, input.hard_limits)?;
    let mut process = Process::default();
    process
        .set_terminal(Some(config.tty))
        .set_args(Some(args(config, input.image)?))
        .set_env(Some(env(config, input.image, hostname, &user.home)))
        .set_cwd(cwd(config, input.image)?.into())
        .set_capabilities(Some(security::linux_capabilities(caps)))
        .set_rlimits(Some(rlimits).filter(|r| !r.is_empty()))
        // Absent rather than `false`: the runtime layer loads seccomp before
        // dropping capabilities only when the field is absent.
        .set_no_new_privileges(no_new_privileges.then_some(true))
        .set_user(oci_user(&user));
    Ok(process)
}

fn oci_user(resolved: &ResolvedUser) -> User {
    let mut user = User::default();
    user.set_uid(resolved.uid).set_gid(resolved.gid);
    if !resolved.additional_gids.is_empty() {
        user.set_additional_gids(Some(resolved.additional_gids.clone()));
    }
    user
}

/// Entrypoint followed by Cmd; an error when both end up empty.
pub(crate) fn args(
    config: &ContainerConfig,
    image: &ImageConfig,
) -> Result<Vec<String>, SpecError> {
    let configured = config.entrypoint.as_ref().filter(|e| !is_cleared(e));
    let entrypoint = match (&config.entrypoint, configured) {
        (_, Some(entrypoint)) => entrypoint.clone(),
        (Some(_), None) => Vec::new(),
        (None, None) => image.entrypoint().clone().unwrap_or_default(),
    };
    let cmd = match (&config.command, configured) {
        (Some(command), _) => command.clone(),
        (None, Some(_)) => Vec::new(),
        (None, None) => image.cmd().clone().unwrap_or_default(),
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(SpecError::NoCommand);
    }
    Ok(args)
}

/// `[]` and the CLI's `--entrypoint ""` (`[""]`) both mean "no entrypoint".
fn is_cleared(entrypoint: &[String]) -> bool {
    entrypoint.iter().all(String::is_empty)
}

/// The environment as Docker builds it: PATH, HOSTNAME and (with a tty)
/// TERM first, then the image's Env, then the configured env, each
/// overriding by key; HOME from the user's passwd entry unless set.
pub(crate) fn env(
    config: &ContainerConfig,
    image: &ImageConfig,
    hostname: &str,
    home: &str,
) -> Vec<String> {
    let mut env = Env::default();
    env.set("PATH", DEFAULT_PATH);
    env.set("HOSTNAME", hostname);
    if config.tty {
        env.set("TERM", "xterm");
    }
    for entry in image.env().iter().flatten() {
        env.apply(entry);
    }
    for (key, value) in &config.env {
        env.set(key, value);
    }
    if !env.contains("HOME") {
        env.set("HOME", home);
    }
    env.0
}

/// `KEY=VALUE` entries in first-set order.
#[derive(Default)]
struct Env(Vec<String>);

impl Env {
    fn position(&self, key: &str) -> Option<usize> {
        self.0
            .iter()
            .position(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
    }

    fn contains(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    fn set(&mut self, key: &str, value: &str) {
        let entry = format!("{key}={value}");
        match self.position(key) {
            Some(i) => self.0[i] = entry,
            None => self.0.push(entry),
        }
    }

    /// Applies an image entry; a bare `KEY` (no `=`) unsets it, as Docker does.
    fn apply(&mut self, entry: &str) {
        match entry.split_once('=') {
            Some((key, value)) => self.set(key, value),
            None => {
                if let Some(i) = self.position(entry) {
                    self.0.remove(i);
                }
            }
        }
    }
}

/// The configured working directory, else the image's, else `/`; it must be
/// absolute, as Docker requires.
pub(crate) fn cwd(config: &ContainerConfig, image: &ImageConfig) -> Result<String, SpecError> {
    let configured = config.working_dir.as_deref().filter(|d| !d.is_empty());
    let image_dir = image.working_dir().as_deref().filter(|d| !d.is_empty());
    let dir = configured.or(image_dir).unwrap_or("/");
    if !dir.starts_with('/') {
        return Err(SpecError::RelativeWorkingDir(dir.to_string()));
    }
    Ok(dir.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn image(entrypoint: Option<&[&str]>, cmd: Option<&[&str]>) -> ImageConfig {
        let mut image = ImageConfig::default();
        image.set_entrypoint(entrypoint.map(strings));
        image.set_cmd(cmd.map(strings));
        image
    }

    fn nginx() -> ImageConfig {
        image(
            Some(&["/docker-entrypoint.sh"]),
            Some(&["nginx", "-g", "daemon off;"]),
        )
    }

    #[test]
    fn image_entrypoint_and_cmd_are_joined() {
        let args = args(&ContainerConfig::default(), &nginx()).unwrap();
        assert_eq!(
            args,
            strings(&["/docker-entrypoint.sh", "nginx", "-g", "daemon off;"])
        );
    }

    #[test]
    fn command_replaces_only_the_image_cmd() {
        let config = ContainerConfig {
            command: Some(strings(&["nginx", "-T"])),
            ..ContainerConfig::default()
        };
        let args = args(&config, &nginx()).unwrap();
        assert_eq!(args, strings(&["/docker-entrypoint.sh", "nginx", "-T"]));
    }

    #[test]
    fn entrypoint_override_drops_the_image_cmd() {
        let config = ContainerConfig {
            entrypoint: Some(strings(&["sh"])),
            ..ContainerConfig::default()
        };
        assert_eq!(args(&config, &nginx()).unwrap(), strings(&["sh"]));
    }

    #[test]
    fn entrypoint_and_command_overrides_combine() {
        let config = ContainerConfig {
            entrypoint: Some(strings(&["sh", "-c"])),
            command: Some(strings(&["echo hi"])),
            ..ContainerConfig::default()
        };
        assert_eq!(
            args(&config, &nginx()).unwrap(),
            strings(&["sh", "-c", "echo hi"])
        );
    }

    #[test]
    fn cleared_entrypoint_runs_the_image_cmd() {
        for cleared in [vec![], strings(&[""])] {
            let config = ContainerConfig {
                entrypoint: Some(cleared),
                ..ContainerConfig::default()
            };
            assert_eq!(
                args(&config, &nginx()).unwrap(),
                strings(&["nginx", "-g", "daemon off;"])
            );
        }
    }

    #[test]
    fn no_entrypoint_and_no_cmd_is_an_error() {
        let err = args(&ContainerConfig::default(), &image(None, None)).unwrap_err();
        assert_eq!(err, SpecError::NoCommand);
        assert!(err.to_string().starts_with("no command"));
    }

    #[test]
    fn env_starts_with_docker_defaults_and_sets_home() {
        let env = env(
            &ContainerConfig::default(),
            &ImageConfig::default(),
            "abc",
            "/root",
        );
        let expected = [
            format!("PATH={DEFAULT_PATH}"),
            "HOSTNAME=abc".into(),
            "HOME=/root".into(),
        ];
        assert_eq!(env, expected);
    }

    #[test]
    fn config_env_overrides_image_env_by_key() {
        let mut image = ImageConfig::default();
        image.set_env(Some(strings(&["PATH=/opt/bin", "LANG=C", "HOME=/srv"])));
        let mut config = ContainerConfig {
            tty: true,
            ..ContainerConfig::default()
        };
        config.env.insert("LANG".into(), "C.UTF-8".into());
        let env = env(&config, &image, "h", "/root");
        let expected = strings(&[
            "PATH=/opt/bin",
            "HOSTNAME=h",
            "TERM=xterm",
            "LANG=C.UTF-8",
            "HOME=/srv",
        ]);
        assert_eq!(env, expected);
    }

    #[test]
    fn a_bare_image_env_key_unsets_it() {
        let mut image = ImageConfig::default();
        image.set_env(Some(strings(&["HOSTNAME"])));
        let env = env(&ContainerConfig::default(), &image, "h", "/");
        assert!(!env.iter().any(|e| e.starts_with("HOSTNAME=")));
    }

    #[test]
    fn cwd_prefers_config_then_image_then_root() {
        let mut image = ImageConfig::default();
        assert_eq!(cwd(&ContainerConfig::default(), &image).unwrap(), "/");
        image.set_working_dir(Some("/app".into()));
        assert_eq!(cwd(&ContainerConfig::default(), &image).unwrap(), "/app");
        let config = ContainerConfig {
            working_dir: Some("/work".into()),
            ..ContainerConfig::default()
        };
        assert_eq!(cwd(&config, &image).unwrap(), "/work");
    }

    #[test]
    fn a_relative_working_dir_is_rejected() {
        let config = ContainerConfig {
            working_dir: Some("app".into()),
            ..ContainerConfig::default()
        };
        let err = cwd(&config, &ImageConfig::default()).unwrap_err();
        assert_eq!(err, SpecError::RelativeWorkingDir("app".into()));
    }
}
