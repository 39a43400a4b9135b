//! Security settings of the process: `security_opt` parsing, the capability
//! set (Docker's default 14, tweaked by `cap_add`/`cap_drop` with Docker's
//! rules, everything when privileged) and the masked / read-only /proc and
//! /sys paths.
//!
//! Invariant: the capability set computed here is the one the seccomp
//! profile's capability-conditional rules are evaluated against.

use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

use super::SpecError;
use crate::config::ContainerConfig;

/// Docker's default capability set for a non-privileged container.
pub(crate) const DEFAULT_CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Every capability oci-spec knows; what `privileged` and `cap_add: ALL` grant.
pub(crate) const ALL_CAPABILITIES: [Capability; 41] = [
    Capability::AuditControl,
    Capability::AuditRead,
    Capability::AuditWrite,
    Capability::BlockSuspend,
    Capability::Bpf,
    Capability::CheckpointRestore,
    Capability::Chown,
    Capability::DacOverride,
    Capability::DacReadSearch,
    Capability::Fowner,
    Capability::Fsetid,
    Capability::IpcLock,
    Capability::IpcOwner,
    Capability::Kill,
    Capability::Lease,
    Capability::LinuxImmutable,
    Capability::MacAdmin,
    Capability::MacOverride,
    Capability::Mknod,
    Capability::NetAdmin,
    Capability::NetBindService,
    Capability::NetBroadcast,
    Capability::NetRaw,
    Capability::Perfmon,
    Capability::Setgid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::Setuid,
    Capability::SysAdmin,
    Capability::SysBoot,
    Capability::SysChroot,
    Capability::SysModule,
    Capability::SysNice,
    Capability::SysPacct,
    Capability::SysPtrace,
    Capability::SysRawio,
    Capability::SysResource,
    Capability::SysTime,
    Capability::SysTtyConfig,
    Capability::Syslog,
    Capability::WakeAlarm,
];

const MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// What the `security_opt` entries ask for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SecurityOpts {
    pub no_new_privileges: bool,
    pub seccomp_unconfined: bool,
    pub systempaths_unconfined: bool,
}

impl SecurityOpts {
    /// Parses entries in Docker's `key=value` (or legacy `key:value`) form.
    /// AppArmor and SELinux options are accepted and ignored: rcompose
    /// applies neither, as Docker does on a host without them.
    pub(crate) fn parse(entries: &[String]) -> Result<Self, SpecError> {
        let mut opts = Self::default();
        for entry in entries {
            opts.apply(entry.trim())?;
        }
        Ok(opts)
    }

    fn apply(&mut self, entry: &str) -> Result<(), SpecError> {
        let (key, value) = match entry.split_once(['=', ':']) {
            Some((k, v)) => (k, Some(v)),
            None => (entry, None),
        };
        let unknown = || SpecError::UnknownSecurityOpt(entry.to_string());
        match (key, value) {
            ("no-new-privileges", None) => self.no_new_privileges = true,
            ("no-new-privileges", Some(v)) => {
                self.no_new_privileges = v.parse().map_err(|_| unknown())?;
            }
            ("seccomp", Some("unconfined")) => self.seccomp_unconfined = true,
            ("seccomp", Some("builtin" | "default")) => self.seccomp_unconfined = false,
            ("seccomp", Some(profile)) => {
                return Err(SpecError::UnsupportedSeccompProfile(profile.to_string()));
            }
            ("systempaths", Some("unconfined")) => self.systempaths_unconfined = true,
            ("apparmor" | "label", Some(_)) => {}
            _ => return Err(unknown()),
        }
        Ok(())
    }
}

/// A parsed `cap_add` / `cap_drop` list: named capabilities and whether `ALL`
/// was among them.
#[derive(Default)]
struct CapList {
    all: bool,
    caps: Capabilities,
}

fn parse_cap_list(names: &[String]) -> Result<CapList, SpecError> {
    let mut list = CapList::default();
    for name in names {
        let upper = name.trim().to_ascii_uppercase();
        let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
        if bare == "ALL" {
            list.all = true;
            continue;
        }
        let cap = bare
            .parse::<Capability>()
            .map_err(|_| SpecError::InvalidCapability(name.clone()))?;
        list.caps.insert(cap);
    }
    Ok(list)
}

/// The container's capability set, following moby's `TweakCapabilities`:
/// `cap_add: ALL` grants everything but `cap_drop`; `cap_drop: ALL` keeps only
/// `cap_add`; otherwise defaults minus drops plus adds. "Everything" is what
/// the host's bounding set (`host_bounding`, a bit mask) allows, as Docker
/// grants a privileged container the daemon's own capabilities.
pub(crate) fn capabilities(
    config: &ContainerConfig,
    host_bounding: Option<u64>,
) -> Result<Capabilities, SpecError> {
    let adds = parse_cap_list(&config.cap_add)?;
    let drops = parse_cap_list(&config.cap_drop)?;
    let everything = ALL_CAPABILITIES
        .into_iter()
        .filter(move |c| host_bounding.is_none_or(|mask| mask & (1 << capability_bit(*c)) != 0));
    if config.privileged {
        return Ok(everything.collect());
    }
    if adds.all {
        return Ok(everything.filter(|c| !drops.caps.contains(c)).collect());
    }
    let mut caps: Capabilities = if drops.all {
        Capabilities::new()
    } else {
        let kept = DEFAULT_CAPABILITIES.into_iter();
        kept.filter(|c| !drops.caps.contains(c)).collect()
    };
    caps.extend(adds.caps);
    Ok(caps)
}

/// The kernel's number of a capability (its bit in `CapBnd` and friends).
pub(crate) fn capability_bit(cap: Capability) -> u32 {
    use Capability as C;
    match cap {
        C::Chown => 0,
        C::DacOverride => 1,
        C::DacReadSearch => 2,
        C::Fowner => 3,
        C::Fsetid => 4,
        C::Kill => 5,
        C::Setgid => 6,
        C::Setuid => 7,
        C::Setpcap => 8,
        C::LinuxImmutable => 9,
        C::NetBindService => 10,
        C::NetBroadcast => 11,
        C::NetAdmin => 12,
        C::NetRaw => 13,
        C::IpcLock => 14,
        C::IpcOwner => 15,
        C::SysModule => 16,
        C::SysRawio => 17,
        C::SysChroot => 18,
        C::SysPtrace => 19,
        C::SysPacct => 20,
        C::SysAdmin => 21,
        C::SysBoot => 22,
        C::SysNice => 23,
        C::SysResource => 24,
        C::SysTime => 25,
        C::SysTtyConfig => 26,
        C::Mknod => 27,
        C::Lease => 28,
        C::AuditWrite => 29,
        C::AuditControl => 30,
        C::Setfcap => 31,
        C::MacOverride => 32,
        C::MacAdmin => 33,
        C::Syslog => 34,
        C::WakeAlarm => 35,
        C::BlockSuspend => 36,
        C::AuditRead => 37,
        C::Perfmon => 38,
        C::Bpf => 39,
        C::CheckpointRestore => 40,
    }
}

/// The OCI form of a capability set. Inheritable and ambient stay empty like
/// Docker does (CVE-2022-24769): capabilities never cross an `execve` of a
/// non-root program by accident.
pub(crate) fn linux_capabilities(caps: &Capabilities) -> LinuxCapabilities {
    let mut linux = LinuxCapabilities::default();
    linux
        .set_bounding(Some(caps.clone()))
        .set_effective(Some(caps.clone()))
        .set_permitted(Some(caps.clone()))
        .set_inheritable(Some(Capabilities::new()))
        .set_ambient(Some(Capabilities::new()));
    linux
}

/// Whether /proc and /sys keep Docker's masks: not for privileged containers
/// nor with `systempaths=unconfined`.
fn paths_confined(config: &ContainerConfig, opts: &SecurityOpts) -> bool {
    !config.privileged && !opts.systempaths_unconfined
}

/// Paths hidden from the container (bind-mounted over with /dev/null or an
/// empty tmpfs by the runtime).
pub(crate) fn masked_paths(config: &ContainerConfig, opts: &SecurityOpts) -> Vec<String> {
    if !paths_confined(config, opts) {
        return Vec::new();
    }
    MASKED_PATHS.iter().map(|p| p.to_string()).collect()
}

/// Paths remounted read-only inside the container.
pub(crate) fn readonly_paths(config: &ContainerConfig, opts: &SecurityOpts) -> Vec<String> {
    if !paths_confined(config, opts) {
        return Vec::new();
    }
    READONLY_PATHS.iter().map(|p| p.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_with_caps(add: &[&str], drop: &[&str]) -> ContainerConfig {
        ContainerConfig {
            cap_add: add.iter().map(|s| s.to_string()).collect(),
            cap_drop: drop.iter().map(|s| s.to_string()).collect(),
            ..ContainerConfig::default()
        }
    }

    fn opts(entries: &[&str]) -> Result<SecurityOpts, SpecError> {
        let entries: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        SecurityOpts::parse(&entries)
    }

    #[test]
    fn default_set_is_dockers_fourteen_capabilities() {
        let caps = capabilities(&ContainerConfig::default(), None).unwrap();
        assert_eq!(caps.len(), 14);
        assert!(caps.contains(&Capability::NetBindService));
        assert!(!caps.contains(&Capability::SysAdmin));
    }

    #[test]
    fn every_capability_name_round_trips_through_its_string_form() {
        for cap in ALL_CAPABILITIES {
            assert_eq!(cap.to_string().parse::<Capability>().unwrap(), cap);
        }
    }

    #[test]
    fn cap_add_accepts_prefix_and_any_case() {
        let caps = capabilities(
            &config_with_caps(&["cap_sys_admin", "Net_Admin"], &[]),
            None,
        )
        .unwrap();
        assert!(caps.contains(&Capability::SysAdmin));
        assert!(caps.contains(&Capability::NetAdmin));
        assert_eq!(caps.len(), 16);
    }

    #[test]
    fn cap_drop_removes_from_the_default_set() {
        let caps = capabilities(&config_with_caps(&[], &["CAP_NET_RAW", "mknod"]), None).unwrap();
        assert_eq!(caps.len(), 12);
        assert!(!caps.contains(&Capability::NetRaw));
    }

    #[test]
    fn drop_all_then_add_net_admin_gives_just_net_admin() {
        let caps = capabilities(&config_with_caps(&["NET_ADMIN"], &["ALL"]), None).unwrap();
        assert_eq!(caps, Capabilities::from([Capability::NetAdmin]));
    }

    #[test]
    fn add_all_grants_everything_except_drops() {
        let caps = capabilities(&config_with_caps(&["all"], &["SYS_MODULE"]), None).unwrap();
        assert_eq!(caps.len(), ALL_CAPABILITIES.len() - 1);
        assert!(!caps.contains(&Capability::SysModule));
    }

    #[test]
    fn privileged_grants_only_what_the_hosts_bounding_set_holds() {
        let config = ContainerConfig {
            privileged: true,
            ..ContainerConfig::default()
        };
        let without_sys_resource = !(1u64 << 24) & ((1u64 << 41) - 1);
        let caps = capabilities(&config, Some(without_sys_resource)).unwrap();
        assert_eq!(caps.len(), 40);
        assert!(!caps.contains(&Capability::SysResource));
        let all = capabilities(&config, None).unwrap();
        assert_eq!(all.len(), 41);
    }

    #[test]
    fn capability_numbers_are_the_kernels() {
        assert_eq!(capability_bit(Capability::Chown), 0);
        assert_eq!(capability_bit(Capability::SysAdmin), 21);
        assert_eq!(capability_bit(Capability::CheckpointRestore), 40);
        let bits: std::collections::BTreeSet<u32> = ALL_CAPABILITIES
            .iter()
            .map(|c| capability_bit(*c))
            .collect();
        assert_eq!(bits.len(), 41, "two capabilities share a number");
    }

    #[test]
    fn privileged_grants_every_capability() {
        let config = ContainerConfig {
            privileged: true,
            cap_drop: vec!["ALL".into()],
            ..ContainerConfig::default()
        };
        assert_eq!(capabilities(&config, None).unwrap().len(), 41);
    }

    #[test]
    fn an_unknown_capability_name_is_rejected() {
        let err = capabilities(&config_with_caps(&["CAP_FLY"], &[]), None).unwrap_err();
        assert_eq!(err, SpecError::InvalidCapability("CAP_FLY".into()));
    }

    #[test]
    fn oci_capabilities_leave_inheritable_and_ambient_empty() {
        let caps = capabilities(&ContainerConfig::default(), None).unwrap();
        let linux = linux_capabilities(&caps);
        assert_eq!(linux.bounding().as_ref(), Some(&caps));
        assert_eq!(linux.permitted().as_ref(), Some(&caps));
        assert_eq!(linux.inheritable().as_ref().map(|c| c.len()), Some(0));
        assert_eq!(linux.ambient().as_ref().map(|c| c.len()), Some(0));
    }

    #[test]
    fn no_new_privileges_accepts_bare_and_boolean_forms() {
        assert!(opts(&["no-new-privileges"]).unwrap().no_new_privileges);
        assert!(opts(&["no-new-privileges:true"]).unwrap().no_new_privileges);
        assert!(
            !opts(&["no-new-privileges=false"])
                .unwrap()
                .no_new_privileges
        );
        assert!(opts(&["no-new-privileges=maybe"]).is_err());
    }

    #[test]
    fn seccomp_unconfined_is_recognised_and_profiles_are_refused() {
        assert!(opts(&["seccomp=unconfined"]).unwrap().seccomp_unconfined);
        assert!(opts(&["seccomp:unconfined"]).unwrap().seccomp_unconfined);
        let err = opts(&["seccomp=/etc/profile.json"]).unwrap_err();
        assert!(matches!(err, SpecError::UnsupportedSeccompProfile(_)));
    }

    #[test]
    fn unknown_security_options_are_rejected_and_apparmor_is_ignored() {
        assert!(opts(&["apparmor=docker-default", "label=disable"]).is_ok());
        let err = opts(&["turbo=on"]).unwrap_err();
        assert_eq!(err, SpecError::UnknownSecurityOpt("turbo=on".into()));
    }

    #[test]
    fn privileged_and_systempaths_unconfined_unmask_proc() {
        let default = ContainerConfig::default();
        let confined = SecurityOpts::default();
        assert!(masked_paths(&default, &confined).contains(&"/proc/kcore".to_string()));
        assert_eq!(readonly_paths(&default, &confined).len(), 5);
        let privileged = ContainerConfig {
            privileged: true,
            ..ContainerConfig::default()
        };
        assert!(masked_paths(&privileged, &confined).is_empty());
        let unconfined = opts(&["systempaths=unconfined"]).unwrap();
        assert!(readonly_paths(&default, &unconfined).is_empty());
    }
}
