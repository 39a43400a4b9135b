//! Cgroup resource limits: memory and swap, CPU quota and shares, the pids
//! limit and the device rules, with Docker's defaults and validation
//! (swap defaults to twice the memory limit, the 6 MiB memory minimum,
//! shares clamped to 2..=262144, `cpus` as a quota over a 100 ms period).

use oci_spec::runtime::{LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};

use super::{SpecError, devices};
use crate::config::ContainerConfig;

/// CFS period Docker uses with `--cpus`: 100 ms in microseconds.
const CPU_PERIOD: u64 = 100_000;
/// Docker's smallest memory limit (`linuxMinMemory`): 6 MiB.
const MIN_MEMORY: i64 = 6 * 1024 * 1024;
/// Range the kernel accepts for cgroup v1 CPU shares.
const CPU_SHARES: std::ops::RangeInclusive<u64> = 2..=262_144;

/// The container's cgroup limits.
pub(crate) fn build(config: &ContainerConfig) -> Result<LinuxResources, SpecError> {
    let mut resources = LinuxResources::default();
    resources
        .set_devices(Some(devices::cgroup_rules(config.privileged)))
        .set_memory(memory(config)?)
        .set_cpu(cpu(config)?)
        .set_pids(pids(config));
    Ok(resources)
}

/// Memory limit and memory+swap limit (OCI's `swap` is the total, like
/// Docker's `--memory-swap`). A zero or negative limit means none.
fn memory(config: &ContainerConfig) -> Result<Option<LinuxMemory>, SpecError> {
    let limit = config.memory.filter(|&m| m > 0);
    let swap = config.memory_swap.filter(|&s| s != 0);
    let Some(limit) = limit else {
        return match swap {
            Some(s) if s > 0 => Err(SpecError::MemorySwapWithoutMemory),
            _ => Ok(None),
        };
    };
    if limit < MIN_MEMORY {
        return Err(SpecError::MemoryBelowMinimum(limit));
    }
    let swap = match swap {
        None => limit.saturating_mul(2),
        Some(-1) => -1,
        Some(s) if s < limit => {
            return Err(SpecError::MemorySwapBelowMemory {
                memory: limit,
                swap: s,
            });
        }
        Some(s) => s,
    };
    let mut memory = LinuxMemory::default();
    memory.set_limit(Some(limit)).set_swap(Some(swap));
    Ok(Some(memory))
}

fn cpu(config: &ContainerConfig) -> Result<Option<LinuxCpu>, SpecError> {
    let shares = config.cpu_shares.filter(|&s| s > 0);
    if config.cpus.is_none() && shares.is_none() {
        return Ok(None);
    }
    let mut cpu = LinuxCpu::default();
    if let Some(cpus) = config.cpus {
        if !cpus.is_finite() || cpus <= 0.0 {
            return Err(SpecError::InvalidCpus(cpus));
        }
        let quota = (cpus * CPU_PERIOD as f64).round() as i64;
        cpu.set_quota(Some(quota)).set_period(Some(CPU_PERIOD));
    }
    if let Some(shares) = shares {
        cpu.set_shares(Some(shares.clamp(*CPU_SHARES.start(), *CPU_SHARES.end())));
    }
    Ok(Some(cpu))
}

/// A positive limit, or unlimited (`-1`) for 0 and negative values as the
/// Docker API defines them.
fn pids(config: &ContainerConfig) -> Option<LinuxPids> {
    let limit = config.pids_limit?;
    let mut pids = LinuxPids::default();
    pids.set_limit(if limit > 0 { limit } else { -1 });
    Some(pids)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: i64 = 1024 * 1024;

    fn with(edit: impl FnOnce(&mut ContainerConfig)) -> ContainerConfig {
        let mut config = ContainerConfig::default();
        edit(&mut config);
        config
    }

    #[test]
    fn no_limits_configured_leaves_only_device_rules() {
        let resources = build(&ContainerConfig::default()).unwrap();
        assert!(resources.memory().is_none());
        assert!(resources.cpu().is_none());
        assert!(resources.pids().is_none());
        assert!(resources.devices().is_some());
    }

    #[test]
    fn memory_without_swap_allows_as_much_swap_again() {
        let memory = memory(&with(|c| c.memory = Some(256 * MIB)))
            .unwrap()
            .unwrap();
        assert_eq!(memory.limit(), Some(256 * MIB));
        assert_eq!(memory.swap(), Some(512 * MIB));
    }

    #[test]
    fn explicit_and_unlimited_swap_are_kept() {
        let config = with(|c| (c.memory, c.memory_swap) = (Some(256 * MIB), Some(-1)));
        assert_eq!(memory(&config).unwrap().unwrap().swap(), Some(-1));
        let config = with(|c| (c.memory, c.memory_swap) = (Some(256 * MIB), Some(300 * MIB)));
        assert_eq!(memory(&config).unwrap().unwrap().swap(), Some(300 * MIB));
    }

    #[test]
    fn invalid_memory_settings_are_rejected() {
        let low = with(|c| c.memory = Some(MIB));
        assert_eq!(
            memory(&low).unwrap_err(),
            SpecError::MemoryBelowMinimum(MIB)
        );
        let swap_only = with(|c| c.memory_swap = Some(512 * MIB));
        assert_eq!(
            memory(&swap_only).unwrap_err(),
            SpecError::MemorySwapWithoutMemory
        );
        let below = with(|c| (c.memory, c.memory_swap) = (Some(256 * MIB), Some(128 * MIB)));
        assert!(matches!(
            memory(&below),
            Err(SpecError::MemorySwapBelowMemory { .. })
        ));
    }

    #[test]
    fn cpus_become_a_quota_over_a_100ms_period() {
        let cpu = cpu(&with(|c| c.cpus = Some(1.5))).unwrap().unwrap();
        assert_eq!(cpu.quota(), Some(150_000));
        assert_eq!(cpu.period(), Some(100_000));
        assert!(matches!(cpu_err(0.0), SpecError::InvalidCpus(_)));
        assert!(matches!(cpu_err(f64::NAN), SpecError::InvalidCpus(_)));
    }

    fn cpu_err(cpus: f64) -> SpecError {
        cpu(&with(|c| c.cpus = Some(cpus))).unwrap_err()
    }

    #[test]
    fn cpu_shares_are_clamped_to_the_kernel_range() {
        let cpu = cpu(&with(|c| c.cpu_shares = Some(1))).unwrap().unwrap();
        assert_eq!(cpu.shares(), Some(2));
        assert_eq!(cpu.quota(), None);
        let config = with(|c| c.cpu_shares = Some(1 << 20));
        assert_eq!(
            super::cpu(&config).unwrap().unwrap().shares(),
            Some(262_144)
        );
    }

    #[test]
    fn pids_limit_zero_or_negative_means_unlimited() {
        assert_eq!(
            pids(&with(|c| c.pids_limit = Some(100))).unwrap().limit(),
            100
        );
        assert_eq!(pids(&with(|c| c.pids_limit = Some(0))).unwrap().limit(), -1);
        assert!(pids(&ContainerConfig::default()).is_none());
    }
}
