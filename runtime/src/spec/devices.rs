//! Device nodes and the device cgroup: the six nodes every container gets
//! in its /dev, and runc/Docker's allowlist (deny everything, then allow
//! `mknod` of any node plus the default nodes, the console, ptmx and ptys).
//! A privileged container may use every device.

use std::path::PathBuf;

use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};

/// A character device node: path, major, minor.
type CharDevice = (&'static str, i64, i64);

/// The nodes created in every container's /dev, as runc does.
const DEFAULT_NODES: [CharDevice; 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// Further character devices the cgroup lets through: /dev/console, /dev/ptmx
/// and every pty (`136:*`, minor `None`).
const EXTRA_ALLOWED: [(i64, Option<i64>); 3] = [(5, Some(1)), (5, Some(2)), (136, None)];

/// The device nodes to create, world read-writable and owned by root.
pub(crate) fn default_devices() -> Vec<LinuxDevice> {
    DEFAULT_NODES
        .iter()
        .map(|&(path, major, minor)| {
            let mut device = LinuxDevice::default();
            device
                .set_path(PathBuf::from(path))
                .set_typ(LinuxDeviceType::C)
                .set_major(major)
                .set_minor(minor)
                .set_file_mode(Some(0o666))
                .set_uid(Some(0))
                .set_gid(Some(0));
            device
        })
        .collect()
}

/// The device cgroup rules, applied in order (later rules win).
pub(crate) fn cgroup_rules(privileged: bool) -> Vec<LinuxDeviceCgroup> {
    if privileged {
        return vec![rule(true, None, None, None, "rwm")];
    }
    let c = Some(LinuxDeviceType::C);
    let mut rules = vec![
        rule(false, None, None, None, "rwm"),
        rule(true, c, None, None, "m"),
        rule(true, Some(LinuxDeviceType::B), None, None, "m"),
    ];
    let nodes = DEFAULT_NODES
        .iter()
        .map(|&(_, major, minor)| (major, Some(minor)));
    for (major, minor) in nodes.chain(EXTRA_ALLOWED) {
        rules.push(rule(true, c, Some(major), minor, "rwm"));
    }
    rules
}

fn rule(
    allow: bool,
    typ: Option<LinuxDeviceType>,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut rule = LinuxDeviceCgroup::default();
    rule.set_allow(allow)
        .set_typ(typ)
        .set_major(major)
        .set_minor(minor)
        .set_access(Some(access.to_string()));
    rule
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_nodes_have_their_kernel_numbers_and_mode_0666() {
        let devices = default_devices();
        assert_eq!(devices.len(), 6);
        let urandom = devices
            .iter()
            .find(|d| d.path() == &PathBuf::from("/dev/urandom"))
            .unwrap();
        assert_eq!((urandom.major(), urandom.minor()), (1, 9));
        assert_eq!(urandom.file_mode(), Some(0o666));
        assert!(devices.iter().all(|d| d.typ() == LinuxDeviceType::C));
    }

    #[test]
    fn cgroup_denies_everything_then_allows_the_usual_devices() {
        let rules: Vec<String> = cgroup_rules(false).iter().map(|r| r.to_string()).collect();
        assert_eq!(rules[0], "a *:* rwm");
        assert!(!cgroup_rules(false)[0].allow());
        for expected in [
            "c *:* m",
            "b *:* m",
            "c 1:3 rwm",
            "c 5:0 rwm",
            "c 5:2 rwm",
            "c 136:* rwm",
        ] {
            assert!(rules.contains(&expected.to_string()), "missing {expected}");
        }
        assert_eq!(rules.len(), 12);
    }

    #[test]
    fn privileged_cgroup_allows_every_device() {
        let rules = cgroup_rules(true);
        assert_eq!(rules.len(), 1);
        assert!(rules[0].allow());
        assert_eq!(rules[0].to_string(), "a *:* rwm");
    }
}
