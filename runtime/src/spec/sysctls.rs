//! Sysctl validation: only the settings the kernel namespaces per container
//! may be set, as Docker allows them — `net.*` (own network namespace only),
//! the IPC ones (`kernel.shm*`, `kernel.msg*`, `kernel.sem`,
//! `fs.mqueue.*`). `kernel.hostname` / `kernel.domainname` have their own
//! settings and are refused here.

use std::collections::{BTreeMap, HashMap};

use super::SpecError;
use crate::config::ContainerConfig;

/// The configured sysctls, once every key is known to be namespaced.
pub(crate) fn check(config: &ContainerConfig) -> Result<HashMap<String, String>, SpecError> {
    check_all(&config.sysctls, config.network_host)?;
    Ok(config
        .sysctls
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect())
}

fn check_all(sysctls: &BTreeMap<String, String>, network_host: bool) -> Result<(), SpecError> {
    sysctls
        .keys()
        .try_for_each(|key| check_one(key, network_host))
}

fn check_one(key: &str, network_host: bool) -> Result<(), SpecError> {
    if key == "kernel.hostname" || key == "kernel.domainname" {
        return Err(SpecError::UtsSysctl(key.to_string()));
    }
    if key.starts_with("net.") {
        if network_host {
            return Err(SpecError::HostNetworkSysctl(key.to_string()));
        }
        return Ok(());
    }
    let ipc = key.starts_with("kernel.shm")
        || key.starts_with("kernel.msg")
        || key == "kernel.sem"
        || key.starts_with("fs.mqueue.");
    if ipc {
        Ok(())
    } else {
        Err(SpecError::NonNamespacedSysctl(key.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(keys: &[&str], network_host: bool) -> ContainerConfig {
        ContainerConfig {
            sysctls: keys
                .iter()
                .map(|k| (k.to_string(), "1".to_string()))
                .collect(),
            network_host,
            ..ContainerConfig::default()
        }
    }

    #[test]
    fn namespaced_sysctls_are_passed_through() {
        let keys = [
            "net.ipv4.ip_forward",
            "kernel.shmmax",
            "kernel.msgmnb",
            "kernel.sem",
            "fs.mqueue.msg_max",
        ];
        let sysctls = check(&config(&keys, false)).unwrap();
        assert_eq!(sysctls.len(), 5);
        assert_eq!(sysctls["kernel.sem"], "1");
    }

    #[test]
    fn a_non_namespaced_sysctl_is_rejected() {
        let err = check(&config(&["vm.swappiness"], false)).unwrap_err();
        assert_eq!(err, SpecError::NonNamespacedSysctl("vm.swappiness".into()));
        assert!(check(&config(&["kernel.pid_max"], false)).is_err());
    }

    #[test]
    fn net_sysctls_are_rejected_with_host_networking() {
        let err = check(&config(&["net.core.somaxconn"], true)).unwrap_err();
        assert_eq!(
            err,
            SpecError::HostNetworkSysctl("net.core.somaxconn".into())
        );
    }

    #[test]
    fn uts_sysctls_point_to_the_hostname_settings() {
        let err = check(&config(&["kernel.hostname"], false)).unwrap_err();
        assert!(err.to_string().contains("use hostname/domainname"));
    }
}
