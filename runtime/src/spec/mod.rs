//! OCI runtime spec generation: [`build_spec`] turns a [`ContainerConfig`],
//! the image's config and a few host facts into the `config.json` a runtime
//! executes, with `docker run`'s defaults (namespaces, mounts, masked paths,
//! capabilities, seccomp, devices, cgroup limits, rlimits, sysctls).
//!
//! The module is pure: it reads nothing from the host. Whatever it needs to
//! know about the host (rootfs path, the image's /etc/passwd text, hard
//! rlimits, kernel version) comes in through [`SpecInput`]; the result is data
//! the caller writes to a bundle. Each concern has its own file and owns
//! its part of the spec; this file only assembles them.

mod devices;
mod error;
mod mounts;
mod process;
mod resources;
mod rlimits;
pub(crate) mod seccomp;
mod seccomp_data;
pub(crate) mod security;
mod signal;
mod sysctls;
mod users;

use std::path::{Path, PathBuf};

use oci_spec::image::Config as ImageConfig;
use oci_spec::runtime::{Capabilities, Linux, LinuxNamespace, LinuxNamespaceType, Root, Spec};

use crate::config::ContainerConfig;
pub use error::SpecError;
pub use rlimits::HardLimits;
pub use seccomp::KernelVersion;
use security::SecurityOpts;
pub use signal::{parse_signal, stop_signal};

/// Resolves `user[:group]` (names or ids) against an image's `/etc/passwd`
/// and `/etc/group` texts, as the container's process would get it: `(uid, gid)`.
pub fn resolve_user(
    user: &str,
    passwd: Option<&str>,
    group: Option<&str>,
) -> Result<(u32, u32), SpecError> {
    let resolved = users::resolve(Some(user), &[], passwd, group)?;
    Ok((resolved.uid, resolved.gid))
}

/// Length of the id prefix Docker uses as the default hostname.
const SHORT_ID_LEN: usize = 12;

/// Everything spec generation needs besides the [`ContainerConfig`].
pub struct SpecInput<'a> {
    /// Container id; its first 12 characters are the default hostname.
    pub id: &'a str,
    /// The container's settings.
    pub config: &'a ContainerConfig,
    /// The image's config (Entrypoint, Cmd, Env, WorkingDir, User, StopSignal).
    pub image: &'a ImageConfig,
    /// Absolute path of the (already mounted) root filesystem.
    pub rootfs: &'a Path,
    /// Contents of the image's /etc/passwd, if it has one.
    pub passwd: Option<&'a str>,
    /// Contents of the image's /etc/group, if it has one.
    pub group: Option<&'a str>,
    /// Cgroup path of the container, e.g. `/rcompose/<id>`.
    pub cgroups_path: String,
    /// Current hard limit of an rlimit by ulimit name (`nofile`); ulimits are
    /// clamped to it.
    pub hard_limits: HardLimits<'a>,
    /// Host kernel version (see [`KernelVersion::parse`]); `None` is treated
    /// as too old for the kernel-gated seccomp rules (ptrace).
    pub kernel: Option<KernelVersion>,
    /// The host's hostname: Docker's default hostname under `network_host`.
    pub host_hostname: Option<&'a str>,
    /// Mount points of the host's cgroup hierarchies (`/sys/fs/cgroup/memory`,
    /// …): the container sees them read-only, so it cannot raise its own limits.
    pub cgroup_mounts: &'a [String],
    /// The host's capability bounding set (`CapBnd` of /proc/self/status):
    /// `privileged` and `cap_add: ALL` grant no more than it holds.
    pub host_bounding: Option<u64>,
}

/// Builds the OCI runtime spec of a container.
pub fn build_spec(input: &SpecInput<'_>) -> Result<Spec, SpecError> {
    let config = input.config;
    let opts = SecurityOpts::parse(&config.security_opt)?;
    let caps = security::capabilities(config, input.host_bounding)?;
    let hostname = hostname(input);
    let process = process::build(input, &hostname, &caps, opts.no_new_privileges)?;
    let linux = linux(input, &caps, &opts)?;
    let mut spec = Spec::default();
    spec.set_root(Some(root(input)))
        .set_mounts(Some(mounts::plan(config)?))
        .set_process(Some(process))
        .set_hostname(Some(hostname))
        .set_domainname(config.domainname.clone())
        .set_annotations(Some(config.labels.clone().into_iter().collect()))
        .set_linux(Some(linux));
    Ok(spec)
}

fn root(input: &SpecInput<'_>) -> Root {
    let mut root = Root::default();
    root.set_path(input.rootfs.to_path_buf())
        .set_readonly(Some(input.config.read_only));
    root
}

/// The configured hostname; under host networking the host's (as Docker);
/// else the short container id.
fn hostname(input: &SpecInput<'_>) -> String {
    let config = input.config;
    let host = input.host_hostname.filter(|_| config.network_host);
    match config.hostname.as_deref().or(host) {
        Some(name) => name.to_string(),
        None => input.id.chars().take(SHORT_ID_LEN).collect(),
    }
}

fn linux(
    input: &SpecInput<'_>,
    caps: &Capabilities,
    opts: &SecurityOpts,
) -> Result<Linux, SpecError> {
    let config = input.config;
    let confined = !config.privileged && !opts.seccomp_unconfined;
    let seccomp = confined.then(|| seccomp::default_profile(caps, input.kernel));
    let mut linux = Linux::default();
    linux
        .set_namespaces(Some(namespaces(config)))
        .set_cgroups_path(Some(PathBuf::from(&input.cgroups_path)))
        .set_sysctl(Some(sysctls::check(config)?))
        .set_resources(Some(resources::build(config)?))
        .set_devices(Some(devices::default_devices()))
        .set_masked_paths(Some(security::masked_paths(config, opts)))
        .set_readonly_paths(Some(readonly_paths(input, opts)))
        .set_seccomp(seccomp);
    Ok(linux)
}

/// Docker's read-only paths plus the cgroup hierarchies (unless privileged).
fn readonly_paths(input: &SpecInput<'_>, opts: &SecurityOpts) -> Vec<String> {
    let mut paths = security::readonly_paths(input.config, opts);
    if !input.config.privileged {
        paths.push(CGROUP_ROOT.to_string());
        let under = input
            .cgroup_mounts
            .iter()
            .filter(|m| m.starts_with(&format!("{CGROUP_ROOT}/")));
        paths.extend(under.cloned());
    }
    paths
}

/// Where cgroup hierarchies are mounted, on the host and in containers.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// New pid, mount, ipc, uts and cgroup namespaces; the network namespace is
/// new, joined (`netns_path`) or the host's (`network_host`, no entry).
fn namespaces(config: &ContainerConfig) -> Vec<LinuxNamespace> {
    use LinuxNamespaceType as T;
    let mut list: Vec<LinuxNamespace> = [T::Pid, T::Mount, T::Ipc, T::Uts, T::Cgroup]
        .into_iter()
        .map(|typ| namespace(typ, None))
        .collect();
    if !config.network_host {
        list.push(namespace(T::Network, config.netns_path.clone()));
    }
    list
}

fn namespace(typ: LinuxNamespaceType, path: Option<PathBuf>) -> LinuxNamespace {
    let mut namespace = LinuxNamespace::default();
    namespace.set_typ(typ).set_path(path);
    namespace
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::{Capability, LinuxSeccompAction, PosixRlimitType, Process};

    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                          nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
    const ID: &str = "0123456789abcdef0123";

    fn host_limits(name: &str) -> Option<u64> {
        (name == "nofile").then_some(524_288)
    }

    fn try_build(config: &ContainerConfig) -> Result<Spec, SpecError> {
        try_build_with(config, &[])
    }

    fn try_build_with(
        config: &ContainerConfig,
        cgroup_mounts: &[String],
    ) -> Result<Spec, SpecError> {
        let mut image = ImageConfig::default();
        image.set_cmd(Some(vec!["sh".to_string()]));
        let input = SpecInput {
            id: ID,
            config,
            image: &image,
            rootfs: Path::new("/var/lib/rcompose/containers/c1/rootfs"),
            passwd: Some(PASSWD),
            group: None,
            cgroups_path: "/rcompose/c1".to_string(),
            hard_limits: &host_limits,
            kernel: Some(KernelVersion { major: 6, minor: 8 }),
            host_hostname: Some("buildhost"),
            cgroup_mounts,
            host_bounding: None,
        };
        build_spec(&input)
    }

    fn build(config: &ContainerConfig) -> Spec {
        try_build(config).unwrap()
    }

    fn process(spec: &Spec) -> &Process {
        spec.process().as_ref().unwrap()
    }

    fn linux(spec: &Spec) -> &Linux {
        spec.linux().as_ref().unwrap()
    }

    fn bounding(spec: &Spec) -> Capabilities {
        let caps = process(spec).capabilities().as_ref().unwrap();
        caps.bounding().clone().unwrap()
    }

    fn namespace_types(spec: &Spec) -> Vec<LinuxNamespaceType> {
        let namespaces = linux(spec).namespaces().iter().flatten();
        namespaces.map(|n| n.typ()).collect()
    }

    #[test]
    fn a_default_spec_masks_proc_kcore_and_has_dockers_14_capabilities() {
        let spec = build(&ContainerConfig::default());
        let masked = linux(&spec).masked_paths().clone().unwrap();
        assert!(masked.contains(&"/proc/kcore".to_string()));
        assert_eq!(masked.len(), 11);
        assert_eq!(bounding(&spec).len(), 14);
        let seccomp = linux(&spec).seccomp().as_ref().unwrap();
        assert_eq!(seccomp.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(process(&spec).no_new_privileges(), None);
    }

    #[test]
    fn an_exec_user_resolves_by_name_and_by_id() {
        assert_eq!(
            resolve_user("nobody", Some(PASSWD), None).unwrap(),
            (65534, 65534)
        );
        assert_eq!(
            resolve_user("1234:5", Some(PASSWD), None).unwrap(),
            (1234, 5)
        );
        assert!(resolve_user("ghost", Some(PASSWD), None).is_err());
    }

    #[test]
    fn cgroup_hierarchies_are_read_only_unless_privileged() {
        let mounts = vec!["/sys/fs/cgroup/memory".to_string(), "/proc/x".to_string()];
        let config = ContainerConfig::default();
        let spec = try_build_with(&config, &mounts).unwrap();
        let ro = linux(&spec).readonly_paths().clone().unwrap();
        assert!(ro.contains(&"/sys/fs/cgroup".to_string()));
        assert!(ro.contains(&"/sys/fs/cgroup/memory".to_string()));
        assert!(!ro.contains(&"/proc/x".to_string()));
    }

    #[test]
    fn a_privileged_spec_has_no_masked_paths_no_seccomp_and_every_capability() {
        let config = ContainerConfig {
            privileged: true,
            ..ContainerConfig::default()
        };
        let spec = build(&config);
        assert_eq!(linux(&spec).masked_paths().as_deref(), Some(&[][..]));
        assert_eq!(linux(&spec).readonly_paths().as_deref(), Some(&[][..]));
        assert!(linux(&spec).seccomp().is_none());
        assert_eq!(bounding(&spec).len(), 41);
        let devices = linux(&spec).resources().as_ref().unwrap().devices().clone();
        assert_eq!(devices.unwrap().len(), 1);
    }

    #[test]
    fn seccomp_unconfined_drops_only_the_seccomp_profile() {
        let config = ContainerConfig {
            security_opt: vec!["seccomp=unconfined".into(), "no-new-privileges".into()],
            ..ContainerConfig::default()
        };
        let spec = build(&config);
        assert!(linux(&spec).seccomp().is_none());
        assert_eq!(bounding(&spec).len(), 14);
        assert_eq!(process(&spec).no_new_privileges(), Some(true));
    }

    #[test]
    fn cap_sys_admin_reaches_both_capabilities_and_seccomp() {
        let config = ContainerConfig {
            cap_add: vec!["SYS_ADMIN".into()],
            ..ContainerConfig::default()
        };
        let spec = build(&config);
        assert!(bounding(&spec).contains(&Capability::SysAdmin));
        let rules = linux(&spec)
            .seccomp()
            .as_ref()
            .unwrap()
            .syscalls()
            .clone()
            .unwrap();
        assert!(
            rules
                .iter()
                .any(|r| r.args().is_none() && r.names().contains(&"mount".into()))
        );
    }

    #[test]
    fn read_only_sets_root_readonly_at_the_rootfs_path() {
        let config = ContainerConfig {
            read_only: true,
            ..ContainerConfig::default()
        };
        let spec = build(&config);
        let root = spec.root().as_ref().unwrap();
        assert_eq!(root.readonly(), Some(true));
        assert_eq!(
            root.path(),
            Path::new("/var/lib/rcompose/containers/c1/rootfs")
        );
        let writable = build(&ContainerConfig::default());
        assert_eq!(writable.root().as_ref().unwrap().readonly(), Some(false));
    }

    #[test]
    fn hostname_defaults_to_the_short_id_and_is_in_the_environment() {
        let spec = build(&ContainerConfig::default());
        assert_eq!(spec.hostname().as_deref(), Some("0123456789ab"));
        let env = process(&spec).env().clone().unwrap();
        assert!(env.contains(&"HOSTNAME=0123456789ab".to_string()));
        assert!(env.contains(&"HOME=/root".to_string()));
    }

    #[test]
    fn host_networking_shares_the_host_netns_and_hostname() {
        let config = ContainerConfig {
            network_host: true,
            ..ContainerConfig::default()
        };
        let spec = build(&config);
        assert!(!namespace_types(&spec).contains(&LinuxNamespaceType::Network));
        assert!(namespace_types(&spec).contains(&LinuxNamespaceType::Uts));
        assert_eq!(spec.hostname().as_deref(), Some("buildhost"));
    }

    #[test]
    fn network_namespace_is_new_or_joined_by_path() {
        let spec = build(&ContainerConfig::default());
        let types = namespace_types(&spec);
        assert_eq!(types.len(), 6);
        assert!(types.contains(&LinuxNamespaceType::Network));
        let config = ContainerConfig {
            netns_path: Some("/run/netns/front".into()),
            ..ContainerConfig::default()
        };
        let spec = build(&config);
        let namespaces = linux(&spec).namespaces().clone().unwrap();
        let net = namespaces
            .iter()
            .find(|n| n.typ() == LinuxNamespaceType::Network);
        assert_eq!(
            net.unwrap().path().as_deref(),
            Some(Path::new("/run/netns/front"))
        );
    }

    #[test]
    fn identity_settings_reach_the_spec() {
        let mut config = ContainerConfig {
            user: Some("nobody".into()),
            hostname: Some("web".into()),
            domainname: Some("example.org".into()),
            tty: true,
            ..ContainerConfig::default()
        };
        config
            .labels
            .insert("io.rcompose.service".into(), "web".into());
        let spec = build(&config);
        let user = process(&spec).user();
        assert_eq!((user.uid(), user.gid()), (65534, 65534));
        assert_eq!(spec.hostname().as_deref(), Some("web"));
        assert_eq!(spec.domainname().as_deref(), Some("example.org"));
        assert_eq!(process(&spec).terminal(), Some(true));
        let annotations = spec.annotations().clone().unwrap();
        assert_eq!(annotations["io.rcompose.service"], "web");
        let cgroups = linux(&spec).cgroups_path().clone();
        assert_eq!(cgroups, Some(PathBuf::from("/rcompose/c1")));
        // The monitor tears a run down without libcontainer's delete, which
        // would be needed to run poststop hooks.
        assert!(spec.hooks().is_none());
    }

    #[test]
    fn ulimits_are_clamped_and_only_configured_ones_are_set() {
        assert!(
            process(&build(&ContainerConfig::default()))
                .rlimits()
                .is_none()
        );
        let mut config = ContainerConfig::default();
        config.ulimits.insert("nofile".into(), (1 << 20, 1 << 20));
        let spec = build(&config);
        let rlimits = process(&spec).rlimits().clone().unwrap();
        assert_eq!(rlimits[0].typ(), PosixRlimitType::RlimitNofile);
        assert_eq!(rlimits[0].hard(), 524_288);
    }

    #[test]
    fn a_non_namespaced_sysctl_fails_the_spec() {
        let mut config = ContainerConfig::default();
        config.sysctls.insert("kernel.panic".into(), "1".into());
        let err = try_build(&config).unwrap_err();
        assert_eq!(err, SpecError::NonNamespacedSysctl("kernel.panic".into()));
    }

    #[test]
    fn the_spec_serializes_to_json() {
        let spec = build(&ContainerConfig::default());
        let json = serde_json::to_string(&spec).unwrap();
        assert!(json.contains("\"SCMP_ACT_ERRNO\""));
        assert!(json.contains("\"/proc/kcore\""));
        let back: Spec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, spec);
    }
}
