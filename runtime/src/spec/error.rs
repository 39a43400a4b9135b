//! [`SpecError`]: every way turning a container's settings into an OCI spec
//! can fail, one variant per failure site. Messages are lowercase and say
//! what was being done, so a caller can show them as they are.

/// Why an OCI runtime spec could not be built for a container.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    /// Neither the configuration nor the image gives a command to run.
    #[error("no command: image has neither Entrypoint nor Cmd and none was given")]
    NoCommand,
    /// A user name is not in the image's /etc/passwd.
    #[error("resolving the container user: unknown user {0:?} in image /etc/passwd")]
    UnknownUser(String),
    /// A group name (from `user` or `group_add`) is not in the image's /etc/group.
    #[error("resolving the container user: unknown group {0:?} in image /etc/group")]
    UnknownGroup(String),
    /// A numeric uid or gid is outside 0..=2147483647.
    #[error("resolving the container user: id {0:?} is out of range 0-2147483647")]
    IdOutOfRange(String),
    /// A `cap_add` / `cap_drop` entry names no Linux capability.
    #[error("computing capabilities: invalid capability name {0:?}")]
    InvalidCapability(String),
    /// A `security_opt` entry is not one rcompose understands.
    #[error("reading security options: unknown security option {0:?}")]
    UnknownSecurityOpt(String),
    /// `seccomp=<profile>` other than `unconfined`: custom profiles are not supported.
    #[error("reading security options: custom seccomp profile {0:?} is not supported")]
    UnsupportedSeccompProfile(String),
    /// A sysctl outside the namespaced set Docker allows.
    #[error("checking sysctls: non-namespaced sysctl {0:?} is not allowed")]
    NonNamespacedSysctl(String),
    /// A `net.*` sysctl while the container shares the host's network namespace.
    #[error("checking sysctls: {0:?} would change the host network namespace (network_host)")]
    HostNetworkSysctl(String),
    /// `kernel.hostname` / `kernel.domainname`, which have their own settings.
    #[error("checking sysctls: {0:?} is not allowed, use hostname/domainname instead")]
    UtsSysctl(String),
    /// A ulimit name that is not a known resource limit.
    #[error("building rlimits: unknown ulimit {0:?}")]
    UnknownUlimit(String),
    /// A ulimit whose soft value exceeds its hard value.
    #[error("building rlimits: ulimit {name:?} soft limit {soft} is above its hard limit {hard}")]
    UlimitSoftAboveHard {
        /// Ulimit name (`nofile`).
        name: String,
        /// Requested soft limit.
        soft: u64,
        /// Requested hard limit.
        hard: u64,
    },
    /// `cpus` is not a positive finite number.
    #[error("building cpu limits: cpus must be a positive number, got {0}")]
    InvalidCpus(f64),
    /// A memory limit below Docker's 6 MiB minimum.
    #[error("building memory limits: memory limit {0} is below the 6 MiB minimum")]
    MemoryBelowMinimum(i64),
    /// `memory_swap` without `memory`.
    #[error("building memory limits: memory_swap needs a memory limit as well")]
    MemorySwapWithoutMemory,
    /// `memory_swap` smaller than `memory` (and not -1, unlimited).
    #[error("building memory limits: memory_swap {swap} is below the memory limit {memory}")]
    MemorySwapBelowMemory {
        /// Requested memory limit.
        memory: i64,
        /// Requested memory + swap limit.
        swap: i64,
    },
    /// A working directory that is not an absolute path.
    #[error("setting the working directory: {0:?} is not an absolute path")]
    RelativeWorkingDir(String),
    /// A mount target that is not an absolute path.
    #[error("planning mounts: mount target {0:?} is not an absolute path")]
    RelativeMountTarget(String),
    /// A signal name or number nix does not know.
    #[error("parsing a signal: unknown signal {0:?}")]
    InvalidSignal(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_lowercase_and_name_what_was_being_done() {
        let errors = [
            SpecError::NoCommand,
            SpecError::UnknownUser("x".into()),
            SpecError::InvalidCapability("CAP_FLY".into()),
            SpecError::NonNamespacedSysctl("vm.swappiness".into()),
            SpecError::MemorySwapWithoutMemory,
            SpecError::InvalidSignal("SIGFOO".into()),
        ];
        for error in errors {
            let message = error.to_string();
            assert!(
                message.starts_with(|c: char| c.is_ascii_lowercase()),
                "{message}"
            );
        }
        let user = SpecError::UnknownUser("x".into()).to_string();
        assert!(user.contains(r#"unknown user "x" in image /etc/passwd"#));
    }
}
