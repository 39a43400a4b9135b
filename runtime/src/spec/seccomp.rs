//! Docker's default seccomp profile, as data: an allowlist with a default
//! action of `EPERM`, the capability-conditional groups (evaluated against
//! the container's final capability set, as Docker does), the kernel-gated
//! ptrace group, per-architecture extras and the `clone`/`clone3` handling.
//!
//! The syscall tables live in `seccomp_data`; this file only assembles them.
//! The profile is skipped entirely (by the caller) for privileged containers
//! and with `seccomp=unconfined`.

use oci_spec::runtime::{
    Arch, Capabilities, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg,
    LinuxSeccompArgBuilder, LinuxSeccompOperator, LinuxSyscall,
};

use super::seccomp_data::{
    ALLOWED, ARM_ONLY, CAPABILITY_GROUPS, CLONE_NAMESPACE_FLAGS, PERSONALITY_VALUES, PTRACE_GROUP,
    X86_ONLY,
};

/// `EPERM`: what every syscall outside the allowlist returns.
const DEFAULT_ERRNO: u32 = libc::EPERM as u32;

/// The first kernel where ptrace can no longer be used to bypass seccomp.
const PTRACE_SAFE_KERNEL: KernelVersion = KernelVersion { major: 4, minor: 8 };

/// A host kernel version, `major.minor`; decides kernel-gated seccomp rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KernelVersion {
    /// Major version (`6` in `6.8.0-45-generic`).
    pub major: u32,
    /// Minor version (`8` in `6.8.0-45-generic`).
    pub minor: u32,
}

impl KernelVersion {
    /// Parses a `uname -r` release string such as `6.8.0-45-generic`.
    pub fn parse(release: &str) -> Option<Self> {
        let mut parts = release.trim().split(|c: char| !c.is_ascii_digit());
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some(Self { major, minor })
    }
}

/// Which architecture-specific rules and seccomp architectures apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArchFamily {
    X86,
    Arm,
    Other,
}

fn native_family() -> ArchFamily {
    if cfg!(any(target_arch = "x86_64", target_arch = "x86")) {
        ArchFamily::X86
    } else if cfg!(any(target_arch = "aarch64", target_arch = "arm")) {
        ArchFamily::Arm
    } else {
        ArchFamily::Other
    }
}

/// The seccomp architectures a native binary's compat modes may use; empty
/// means native only.
fn architectures() -> Vec<Arch> {
    if cfg!(target_arch = "x86_64") {
        vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
    } else if cfg!(target_arch = "x86") {
        vec![Arch::ScmpArchX86]
    } else if cfg!(target_arch = "aarch64") {
        vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
    } else if cfg!(target_arch = "arm") {
        vec![Arch::ScmpArchArm]
    } else {
        Vec::new()
    }
}

/// Docker's default profile for a container holding `caps` on a host running
/// `kernel` (`None`: unknown, treated as too old for ptrace).
pub(crate) fn default_profile(caps: &Capabilities, kernel: Option<KernelVersion>) -> LinuxSeccomp {
    let mut seccomp = LinuxSeccomp::default();
    seccomp
        .set_default_action(LinuxSeccompAction::ScmpActErrno)
        .set_default_errno_ret(Some(DEFAULT_ERRNO))
        .set_architectures(Some(architectures()))
        .set_syscalls(Some(rules(caps, kernel, native_family())));
    seccomp
}

fn rules(
    caps: &Capabilities,
    kernel: Option<KernelVersion>,
    family: ArchFamily,
) -> Vec<LinuxSyscall> {
    let mut rules = vec![allow(ALLOWED)];
    rules.extend(PERSONALITY_VALUES.iter().map(|&v| personality(v)));
    // With CAP_SYS_PTRACE the same group comes back through CAPABILITY_GROUPS.
    if kernel.is_some_and(|k| k >= PTRACE_SAFE_KERNEL) {
        rules.push(allow(PTRACE_GROUP));
    }
    match family {
        ArchFamily::X86 => rules.push(allow(X86_ONLY)),
        ArchFamily::Arm => rules.push(allow(ARM_ONLY)),
        ArchFamily::Other => {}
    }
    for (cap, names) in CAPABILITY_GROUPS {
        if caps.contains(cap) {
            rules.push(allow(names));
        }
    }
    if !caps.contains(&Capability::SysAdmin) {
        rules.extend(clone_without_namespaces());
        rules.push(clone3_enosys());
    }
    rules
}

fn allow(names: &[&str]) -> LinuxSyscall {
    let mut rule = LinuxSyscall::default();
    rule.set_names(names.iter().map(|n| n.to_string()).collect())
        .set_action(LinuxSeccompAction::ScmpActAllow);
    rule
}

fn with_arg(names: &[&str], arg: LinuxSeccompArg) -> LinuxSyscall {
    let mut rule = allow(names);
    rule.set_args(Some(vec![arg]));
    rule
}

fn arg(
    index: usize,
    op: LinuxSeccompOperator,
    value: u64,
    value_two: Option<u64>,
) -> LinuxSeccompArg {
    let builder = LinuxSeccompArgBuilder::default()
        .index(index)
        .op(op)
        .value(value);
    let builder = match value_two {
        Some(two) => builder.value_two(two),
        None => builder,
    };
    // The type has no setters; its builder cannot fail (all fields default,
    // no validator).
    builder
        .build()
        .expect("LinuxSeccompArg has no required field")
}

fn personality(value: u64) -> LinuxSyscall {
    with_arg(
        &["personality"],
        arg(0, LinuxSeccompOperator::ScmpCmpEq, value, None),
    )
}

/// `clone` is allowed when its flags hold no `CLONE_NEW*` bit:
/// `flags & CLONE_NAMESPACE_FLAGS == 0`.
///
/// runc reads a masked comparison as `value` = mask, `valueTwo` = datum (that
/// is Docker's rule); libcontainer 0.7 (youki) reads them the other way
/// round. The second, operand-swapped copy keeps the rule right under both
/// readings: in each, one copy means "no namespace flag" and the other
/// compares `flags & 0` with a non-zero value, which never matches.
fn clone_without_namespaces() -> [LinuxSyscall; 2] {
    let masked = LinuxSeccompOperator::ScmpCmpMaskedEq;
    [
        with_arg(&["clone"], arg(0, masked, CLONE_NAMESPACE_FLAGS, Some(0))),
        with_arg(&["clone"], arg(0, masked, 0, Some(CLONE_NAMESPACE_FLAGS))),
    ]
}

/// `clone3` passes its flags in memory, out of seccomp's reach: answer
/// `ENOSYS` so libc falls back to `clone`, which the rule above can inspect.
fn clone3_enosys() -> LinuxSyscall {
    let mut rule = LinuxSyscall::default();
    rule.set_names(vec!["clone3".to_string()])
        .set_action(LinuxSeccompAction::ScmpActErrno)
        .set_errno_ret(Some(libc::ENOSYS as u32));
    rule
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::security::DEFAULT_CAPABILITIES;

    const MODERN: Option<KernelVersion> = Some(KernelVersion { major: 6, minor: 8 });

    fn default_caps() -> Capabilities {
        DEFAULT_CAPABILITIES.into_iter().collect()
    }

    /// Whether `name` is allowed unconditionally (no argument filter).
    fn allows(profile: &LinuxSeccomp, name: &str) -> bool {
        profile.syscalls().iter().flatten().any(|rule| {
            rule.action() == LinuxSeccompAction::ScmpActAllow
                && rule.args().is_none()
                && rule.names().iter().any(|n| n == name)
        })
    }

    #[test]
    fn default_action_is_eperm() {
        let profile = default_profile(&default_caps(), MODERN);
        assert_eq!(profile.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(profile.default_errno_ret(), Some(1));
    }

    #[test]
    fn read_and_write_are_allowed_and_keyctl_is_not() {
        let profile = default_profile(&default_caps(), MODERN);
        assert!(allows(&profile, "read"));
        assert!(allows(&profile, "write"));
        for blocked in [
            "keyctl",
            "add_key",
            "request_key",
            "unshare",
            "mount",
            "reboot",
        ] {
            assert!(!allows(&profile, blocked), "{blocked} must be blocked");
        }
        for blocked in [
            "kexec_load",
            "bpf",
            "init_module",
            "open_by_handle_at",
            "setns",
        ] {
            assert!(!allows(&profile, blocked), "{blocked} must be blocked");
        }
    }

    #[test]
    fn adding_cap_sys_admin_allows_mount_and_unshare() {
        let mut caps = default_caps();
        caps.insert(Capability::SysAdmin);
        let profile = default_profile(&caps, MODERN);
        assert!(allows(&profile, "mount"));
        assert!(allows(&profile, "unshare"));
        assert!(allows(&profile, "clone"));
        assert!(!allows(&profile, "kexec_load"));
    }

    #[test]
    fn ptrace_needs_a_kernel_of_at_least_4_8_or_cap_sys_ptrace() {
        assert!(!allows(&default_profile(&default_caps(), None), "ptrace"));
        let old = Some(KernelVersion { major: 4, minor: 4 });
        assert!(!allows(&default_profile(&default_caps(), old), "ptrace"));
        assert!(allows(&default_profile(&default_caps(), MODERN), "ptrace"));
        let mut caps = default_caps();
        caps.insert(Capability::SysPtrace);
        assert!(allows(&default_profile(&caps, old), "ptrace"));
    }

    #[test]
    fn default_capabilities_allow_chroot_but_not_time_setting() {
        let profile = default_profile(&default_caps(), MODERN);
        assert!(allows(&profile, "chroot"));
        assert!(!allows(&profile, "settimeofday"));
    }

    #[test]
    fn clone_is_allowed_only_without_namespace_flags_and_clone3_gets_enosys() {
        let profile = default_profile(&default_caps(), MODERN);
        assert!(!allows(&profile, "clone"));
        let rules = profile.syscalls().clone().unwrap();
        let clone: Vec<_> = rules.iter().filter(|r| r.names() == &["clone"]).collect();
        assert_eq!(clone.len(), 2);
        let first = clone[0].args().clone().unwrap()[0];
        assert_eq!(first.value(), 0x7E02_0000);
        assert_eq!(first.op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
        let clone3 = rules.iter().find(|r| r.names() == &["clone3"]).unwrap();
        assert_eq!(clone3.errno_ret(), Some(38));
    }

    #[test]
    fn personality_is_allowed_only_for_dockers_values() {
        let profile = default_profile(&default_caps(), MODERN);
        assert!(!allows(&profile, "personality"));
        let count = profile.syscalls().iter().flatten();
        assert_eq!(count.filter(|r| r.names() == &["personality"]).count(), 5);
    }

    #[test]
    fn native_architectures_include_the_compat_ones() {
        let archs = architectures();
        if cfg!(target_arch = "x86_64") {
            assert_eq!(archs.len(), 3);
        }
        if cfg!(target_arch = "aarch64") {
            assert_eq!(archs, vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]);
        }
    }

    #[test]
    fn kernel_release_strings_parse_to_major_and_minor() {
        let version = KernelVersion::parse("6.8.0-45-generic").unwrap();
        assert_eq!(version, KernelVersion { major: 6, minor: 8 });
        assert_eq!(
            KernelVersion::parse("4.19"),
            Some(KernelVersion {
                major: 4,
                minor: 19
            })
        );
        assert_eq!(KernelVersion::parse("garbage"), None);
    }
}
