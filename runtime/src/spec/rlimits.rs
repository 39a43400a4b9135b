//! Process resource limits from `ulimits`. Docker sets none of its own: the
//! container inherits the runtime's limits except for the ones configured.
//!
//! Invariant: no limit exceeds the host's current hard limit for it; a value
//! above is clamped (with a warning), not refused, because an unprivileged
//! caller could not raise it anyway.

use std::collections::BTreeMap;

use oci_spec::runtime::{PosixRlimit, PosixRlimitBuilder, PosixRlimitType};

use super::SpecError;

/// The host's current hard limit of a resource by ulimit name (`nofile`),
/// `None` when unknown or unlimited.
pub type HardLimits<'a> = &'a dyn Fn(&str) -> Option<u64>;

/// The configured ulimits as OCI rlimits, in name order.
pub(crate) fn build(
    ulimits: &BTreeMap<String, (u64, u64)>,
    hard_limits: HardLimits<'_>,
) -> Result<Vec<PosixRlimit>, SpecError> {
    ulimits
        .iter()
        .map(|(name, &(soft, hard))| rlimit(name, soft, hard, hard_limits))
        .collect()
}

fn rlimit(
    name: &str,
    soft: u64,
    hard: u64,
    hard_limits: HardLimits<'_>,
) -> Result<PosixRlimit, SpecError> {
    let typ = rlimit_type(name).ok_or_else(|| SpecError::UnknownUlimit(name.to_string()))?;
    if soft > hard {
        let name = name.to_string();
        return Err(SpecError::UlimitSoftAboveHard { name, soft, hard });
    }
    let ceiling = hard_limits(name).unwrap_or(u64::MAX);
    if hard > ceiling {
        tracing::warn!(
            ulimit = name,
            hard,
            ceiling,
            "ulimit above the host hard limit, clamped"
        );
    }
    // The type has no setters; its builder cannot fail (all fields default,
    // no validator).
    let rlimit = PosixRlimitBuilder::default()
        .typ(typ)
        .hard(hard.min(ceiling))
        .soft(soft.min(ceiling))
        .build()
        .expect("PosixRlimit has no required field");
    Ok(rlimit)
}

/// Docker's ulimit names (`ulimit -a` without the `RLIMIT_` prefix).
fn rlimit_type(name: &str) -> Option<PosixRlimitType> {
    use PosixRlimitType as T;
    let typ = match name.to_ascii_lowercase().as_str() {
        "as" => T::RlimitAs,
        "core" => T::RlimitCore,
        "cpu" => T::RlimitCpu,
        "data" => T::RlimitData,
        "fsize" => T::RlimitFsize,
        "locks" => T::RlimitLocks,
        "memlock" => T::RlimitMemlock,
        "msgqueue" => T::RlimitMsgqueue,
        "nice" => T::RlimitNice,
        "nofile" => T::RlimitNofile,
        "nproc" => T::RlimitNproc,
        "rss" => T::RlimitRss,
        "rtprio" => T::RlimitRtprio,
        "rttime" => T::RlimitRttime,
        "sigpending" => T::RlimitSigpending,
        "stack" => T::RlimitStack,
        _ => return None,
    };
    Some(typ)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str) -> Option<u64> {
        (name == "nofile").then_some(1_048_576)
    }

    fn ulimits(entries: &[(&str, u64, u64)]) -> BTreeMap<String, (u64, u64)> {
        entries
            .iter()
            .map(|&(n, s, h)| (n.to_string(), (s, h)))
            .collect()
    }

    #[test]
    fn configured_ulimits_become_rlimits_in_name_order() {
        let limits = build(&ulimits(&[("nproc", 64, 128), ("core", 0, 0)]), &host).unwrap();
        assert_eq!(limits.len(), 2);
        assert_eq!(limits[0].typ(), PosixRlimitType::RlimitCore);
        assert_eq!((limits[1].soft(), limits[1].hard()), (64, 128));
    }

    #[test]
    fn ulimit_above_the_hard_limit_is_clamped() {
        let limits = build(&ulimits(&[("nofile", 2_000_000, 4_000_000)]), &host).unwrap();
        assert_eq!(limits[0].typ(), PosixRlimitType::RlimitNofile);
        assert_eq!(limits[0].hard(), 1_048_576);
        assert_eq!(limits[0].soft(), 1_048_576);
    }

    #[test]
    fn soft_limit_below_the_ceiling_is_kept_when_the_hard_one_is_clamped() {
        let limits = build(&ulimits(&[("nofile", 1024, 4_000_000)]), &host).unwrap();
        assert_eq!((limits[0].soft(), limits[0].hard()), (1024, 1_048_576));
    }

    #[test]
    fn unknown_ulimit_names_are_rejected() {
        let err = build(&ulimits(&[("files", 1, 1)]), &host).unwrap_err();
        assert_eq!(err, SpecError::UnknownUlimit("files".into()));
    }

    #[test]
    fn soft_above_hard_is_rejected() {
        let err = build(&ulimits(&[("nofile", 10, 5)]), &host).unwrap_err();
        assert!(matches!(
            err,
            SpecError::UlimitSoftAboveHard {
                soft: 10,
                hard: 5,
                ..
            }
        ));
    }
}
