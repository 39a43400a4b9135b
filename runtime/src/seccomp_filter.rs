//! A container's seccomp profile, compiled once per distinct profile and
//! loaded by rcompose's own executor just before the workload's `exec`.
//!
//! libcontainer compiles a spec's profile with libseccomp inside every
//! container's init: for Docker's default profile (three architectures,
//! some 400 rules) that is 10–15 ms of CPU per container start, the largest
//! single cost of a cold `up`. A profile is a pure value, so its compiled
//! form (classic BPF, what the kernel takes) can be kept:
//!
//! 1. [`prepare`] compiles the profile, or finds it compiled under
//!    `<state root>/seccomp/`, links the program into the bundle as
//!    `seccomp.bpf`, and hands libcontainer a spec without the profile: an
//!    annotation ([`ANNOTATION`]) names the program's digest and the
//!    capabilities added so that the executor may load it (`CAP_SYS_ADMIN`,
//!    which loading a filter needs without `no_new_privileges`, and
//!    `CAP_SETPCAP`, which dropping it from the bounding set needs).
//! 2. [`Filter::for_bundle`] reads the program back before the fork.
//! 3. In the container, after libcontainer has set the capabilities,
//!    [`Filter::install`] drops the added capabilities from the bounding set,
//!    loads the program and then drops them from the effective and permitted
//!    sets (`capset`, which Docker's profile allows), so the workload gets
//!    exactly the spec's sets, under its filter, as libcontainer would have
//!    left it.
//!
//! It fails closed: a spec carrying the annotation without the program, or
//! with a program of another digest, does not run.

use std::collections::BTreeSet;
use std::io::{Read as _, Seek as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use libcontainer::capabilities::CapabilityExt as _;
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    Capabilities, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator, Spec,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The spec annotation that says the profile was taken out and how.
pub const ANNOTATION: &str = "io.rcompose.seccomp-filter";

/// The program's file in a bundle.
pub const BUNDLE_FILE: &str = "seccomp.bpf";

/// The size of one classic BPF instruction (`struct sock_filter`).
const INSTRUCTION: usize = 8;

/// The kernel's limit on a filter's length (`BPF_MAXINSNS`).
const MAX_INSTRUCTIONS: usize = 4096;

/// What the annotation records.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handoff {
    /// sha256 of the program, hex.
    pub sha256: String,
    /// Capabilities added to the bounding set only for the load.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bounding: Vec<Capability>,
    /// Capabilities added to the effective set only for the load.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub effective: Vec<Capability>,
    /// Capabilities added to the permitted set only for the load.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permitted: Vec<Capability>,
}

/// Why a profile could not be compiled, kept or loaded.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// libseccomp refused the profile.
    #[error("failed to compile the seccomp profile: {0}")]
    Compile(String),
    /// A file of the cache or the bundle.
    #[error("seccomp filter {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The annotation, the program or the process's state do not agree.
    #[error("seccomp filter: {0}")]
    Invalid(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> FilterError + '_ {
    move |source| FilterError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Whether the profile can be loaded by the executor: what libcontainer
/// would do with it is plain filtering (no flags, no notify listener), and the
/// process's capability sets are all given.
fn can_hand_over(spec: &Spec) -> bool {
    let Some(profile) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else {
        return false;
    };
    let notify = |action: LinuxSeccompAction| action == LinuxSeccompAction::ScmpActNotify;
    let plain = profile.flags().as_ref().is_none_or(|f| f.is_empty())
        && profile.listener_path().is_none()
        && !notify(profile.default_action())
        && !profile
            .syscalls()
            .iter()
            .flatten()
            .any(|rule| notify(rule.action()));
    let caps = spec
        .process()
        .as_ref()
        .and_then(|p| p.capabilities().as_ref());
    let complete = caps.is_some_and(|c| {
        c.bounding().is_some() && c.effective().is_some() && c.permitted().is_some()
    });
    plain && complete
}

/// Takes the profile out of `spec` for a program of digest `sha256`: adds the
/// capabilities loading it needs and records them in the annotation.
/// Returns the profile, or `None` (spec unchanged) when it stays
/// libcontainer's to load.
pub fn hand_over(spec: &mut Spec, sha256: &str) -> Option<LinuxSeccomp> {
    if !can_hand_over(spec) {
        return None;
    }
    let mut process = spec.process().clone()?;
    let mut caps = process.capabilities().clone()?;
    let mut handoff = Handoff {
        sha256: sha256.to_string(),
        ..Handoff::default()
    };
    let mut needed = vec![Capability::Setpcap];
    if process.no_new_privileges() != Some(true) {
        needed.push(Capability::SysAdmin);
    }
    let add = |set: Option<Capabilities>, added: &mut Vec<Capability>| {
        let mut set = set.unwrap_or_default();
        for cap in &needed {
            if set.insert(*cap) {
                added.push(*cap);
            }
        }
        Some(set)
    };
    let bounding = add(caps.bounding().clone(), &mut handoff.bounding);
    let effective = add(caps.effective().clone(), &mut handoff.effective);
    let permitted = add(caps.permitted().clone(), &mut handoff.permitted);
    caps.set_bounding(bounding)
        .set_effective(effective)
        .set_permitted(permitted);
    process.set_capabilities(Some(caps));
    spec.set_process(Some(process));
    let mut annotations = spec.annotations().clone().unwrap_or_default();
    let value = serde_json::to_string(&handoff).expect("a handoff serializes");
    annotations.insert(ANNOTATION.to_string(), value);
    spec.set_annotations(Some(annotations));
    let mut linux = spec.linux().clone()?;
    let profile = linux.seccomp().clone();
    linux.set_seccomp(None);
    spec.set_linux(Some(linux));
    profile
}

/// The annotation of a spec, if it has one.
pub fn handoff_of(spec: &Spec) -> Result<Option<Handoff>, FilterError> {
    let Some(value) = spec.annotations().as_ref().and_then(|a| a.get(ANNOTATION)) else {
        return Ok(None);
    };
    serde_json::from_str(value)
        .map(Some)
        .map_err(|e| FilterError::Invalid(format!("annotation {ANNOTATION}: {e}")))
}

fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Compiles a profile to classic BPF for this machine, as libcontainer and
/// runc read a profile: a rule whose action is the default one is left out,
/// a syscall this libseccomp does not know is skipped, and the comparisons
/// of a rule that names one argument twice become one rule each. A masked
/// comparison reads `value` as the mask and `valueTwo` as the datum (runc's
/// reading; Docker's `clone` rule).
pub fn compile(profile: &LinuxSeccomp) -> Result<Vec<u8>, FilterError> {
    let fail = |what: &str, e: libseccomp::error::SeccompError| {
        FilterError::Compile(format!("{what}: {e}"))
    };
    let default = action(profile.default_action(), profile.default_errno_ret())?;
    let mut ctx = ScmpFilterContext::new(default).map_err(|e| fail("new filter", e))?;
    for arch in profile.architectures().iter().flatten() {
        let name = serde_json::to_value(arch)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let arch: ScmpArch = name.parse().map_err(|e| fail(&name, e))?;
        ctx.add_arch(arch).map_err(|e| fail("architecture", e))?;
    }
    ctx.set_ctl_nnp(false)
        .map_err(|e| fail("no_new_privs", e))?;
    for rule in profile.syscalls().iter().flatten() {
        let act = action(rule.action(), rule.errno_ret())?;
        if act == default {
            continue;
        }
        let comparisons: Vec<ScmpArgCompare> = rule
            .args()
            .iter()
            .flatten()
            .map(|a| ScmpArgCompare::new(a.index() as u32, compare(a.op(), a.value()), datum(a)))
            .collect();
        let indexes: BTreeSet<usize> = rule.args().iter().flatten().map(|a| a.index()).collect();
        let separately = indexes.len() < comparisons.len();
        for name in rule.names() {
            let Ok(syscall) = ScmpSyscall::from_name(name) else {
                continue;
            };
            let added = if comparisons.is_empty() {
                ctx.add_rule(act, syscall)
            } else if separately {
                comparisons.iter().try_fold(&mut ctx, |ctx, c| {
                    ctx.add_rule_conditional(act, syscall, std::slice::from_ref(c))?;
                    Ok(ctx)
                })
            } else {
                ctx.add_rule_conditional(act, syscall, &comparisons)
            };
            added.map_err(|e| fail(name, e))?;
        }
    }
    let memfd = rustix::fs::memfd_create("rcompose-seccomp", rustix::fs::MemfdFlags::CLOEXEC)
        .map_err(|e| FilterError::Compile(format!("memfd: {e}")))?;
    ctx.export_bpf(&memfd).map_err(|e| fail("export", e))?;
    let mut file = std::fs::File::from(memfd);
    let mut program = Vec::new();
    file.seek(std::io::SeekFrom::Start(0))
        .and_then(|_| file.read_to_end(&mut program))
        .map_err(|e| FilterError::Compile(format!("reading the program back: {e}")))?;
    check_program(&program)?;
    Ok(program)
}

fn action(action: LinuxSeccompAction, errno: Option<u32>) -> Result<ScmpAction, FilterError> {
    let errno = errno.map_or(libc::EPERM, |e| e as i32);
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(
            u16::try_from(errno)
                .map_err(|_| FilterError::Compile(format!("trace value {errno}")))?,
        ),
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(FilterError::Compile("notify is not handed over".into()));
        }
    })
}

fn compare(op: LinuxSeccompOperator, value: u64) -> ScmpCompareOp {
    match op {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        LinuxSeccompOperator::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(value),
    }
}

/// What an argument is compared with: `valueTwo` for a masked comparison
/// (`value` is the mask), `value` otherwise.
fn datum(arg: &oci_spec::runtime::LinuxSeccompArg) -> u64 {
    match arg.op() {
        LinuxSeccompOperator::ScmpCmpMaskedEq => arg.value_two().unwrap_or(0),
        _ => arg.value(),
    }
}

fn check_program(program: &[u8]) -> Result<(), FilterError> {
    let count = program.len() / INSTRUCTION;
    if program.is_empty() || !program.len().is_multiple_of(INSTRUCTION) || count > MAX_INSTRUCTIONS
    {
        return Err(FilterError::Invalid(format!(
            "a program of {} bytes is not a filter",
            program.len()
        )));
    }
    Ok(())
}

/// The cache key of a profile: its JSON, this libseccomp and this rcompose.
fn cache_key(profile: &LinuxSeccomp) -> String {
    let version = libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_default();
    let json = serde_json::to_vec(profile).expect("a profile serializes");
    let mut hash = Sha256::new();
    hash.update(format!("{} {version}\n", env!("CARGO_PKG_VERSION")));
    hash.update(&json);
    hex::encode(hash.finalize())
}

/// The compiled program of `profile`, from `cache_dir` or compiled (and kept
/// there). A cached file ends with the sha256 of the program; one that does
/// not (a write cut short) is compiled again. Returns the cached file and
/// the program's digest.
pub fn cached(cache_dir: &Path, profile: &LinuxSeccomp) -> Result<(PathBuf, String), FilterError> {
    let path = cache_dir.join(format!("{}.bpf", cache_key(profile)));
    if let Ok(bytes) = std::fs::read(&path)
        && let Ok(program) = verified(&bytes)
    {
        return Ok((path, hex_sha256(program)));
    }
    let program = compile(profile)?;
    let sha = hex_sha256(&program);
    let mut bytes = program;
    bytes.extend_from_slice(&Sha256::digest(&bytes));
    std::fs::create_dir_all(cache_dir).map_err(io_err(cache_dir))?;
    crate::fsutil::write_atomic_unsynced(&path, &bytes).map_err(io_err(&path))?;
    Ok((path, sha))
}

/// The program in the bytes of a cached file, if its trailing digest holds.
fn verified(bytes: &[u8]) -> Result<&[u8], FilterError> {
    let split = bytes.len().checked_sub(32).ok_or_else(|| {
        FilterError::Invalid(format!("a file of {} bytes has no digest", bytes.len()))
    })?;
    let (program, digest) = bytes.split_at(split);
    if Sha256::digest(program).as_slice() != digest {
        return Err(FilterError::Invalid(
            "the program does not match its digest".into(),
        ));
    }
    check_program(program)?;
    Ok(program)
}

/// Hands the profile of `spec` over to the executor: the compiled program
/// (from the cache under `cache_dir`) linked into `bundle`, the spec changed
/// as [`hand_over`] says. A spec whose profile stays libcontainer's is left
/// as it is.
pub fn prepare(spec: &mut Spec, cache_dir: &Path, bundle: &Path) -> Result<(), FilterError> {
    let profile = spec.linux().as_ref().and_then(|l| l.seccomp().clone());
    let Some(profile) = profile.filter(|_| can_hand_over(spec)) else {
        return Ok(());
    };
    let (cached, sha) = cached(cache_dir, &profile)?;
    let target = bundle.join(BUNDLE_FILE);
    match std::fs::remove_file(&target) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_err(&target)(e)),
        _ => {}
    }
    // A link, not a copy: no new inode per container.
    std::fs::hard_link(&cached, &target)
        .or_else(|_| std::fs::copy(&cached, &target).map(drop))
        .map_err(io_err(&target))?;
    hand_over(spec, &sha);
    Ok(())
}

/// A program read back from a bundle, with the annotation that asked for it.
#[derive(Clone, Debug)]
pub struct Filter {
    program: Arc<[u8]>,
    handoff: Handoff,
}

impl Filter {
    /// The program the bundle's spec asks its executor to load, if any.
    pub fn for_bundle(bundle: &Path) -> Result<Option<Filter>, FilterError> {
        Filter::for_spec(&Filter::spec_of(bundle)?, bundle)
    }

    /// The spec of a bundle.
    pub fn spec_of(bundle: &Path) -> Result<Spec, FilterError> {
        let config = bundle.join("config.json");
        Spec::load(&config)
            .map_err(|e| FilterError::Invalid(format!("reading {}: {e}", config.display())))
    }

    /// The program `spec`, the spec of `bundle`, asks its executor to load, if any.
    pub fn for_spec(spec: &Spec, bundle: &Path) -> Result<Option<Filter>, FilterError> {
        let Some(handoff) = handoff_of(spec)? else {
            return Ok(None);
        };
        let path = bundle.join(BUNDLE_FILE);
        let bytes = std::fs::read(&path).map_err(io_err(&path))?;
        let program = verified(&bytes)?;
        if hex_sha256(program) != handoff.sha256 {
            return Err(FilterError::Invalid(format!(
                "{} is not the program of the spec",
                path.display()
            )));
        }
        Ok(Some(Filter {
            program: program.into(),
            handoff,
        }))
    }

    /// Checks that `filter` is the one `spec` asks for (none when it asks
    /// for none).
    pub fn check(spec: &Spec, filter: Option<&Filter>) -> Result<(), FilterError> {
        match (handoff_of(spec)?, filter) {
            (None, None) => Ok(()),
            (Some(wanted), Some(f)) if wanted == f.handoff => Ok(()),
            (Some(_), _) => Err(FilterError::Invalid(
                "the spec's filter was not read from its bundle".into(),
            )),
            (None, Some(_)) => Err(FilterError::Invalid(
                "a filter was read for a spec that names none".into(),
            )),
        }
    }

    /// In the container, right before exec: drops the bounding capabilities
    /// added for the load, loads the program, then drops the added effective
    /// and permitted ones.
    pub fn install(&self) -> Result<(), FilterError> {
        use caps::CapSet;
        let os =
            |what: &str, e: caps::errors::CapsError| FilterError::Invalid(format!("{what}: {e}"));
        for cap in &self.handoff.bounding {
            caps::drop(None, CapSet::Bounding, cap.to_cap()).map_err(|e| os("bounding set", e))?;
        }
        self.load()?;
        for (set, added) in [
            (CapSet::Effective, &self.handoff.effective),
            (CapSet::Permitted, &self.handoff.permitted),
        ] {
            if added.is_empty() {
                continue;
            }
            let mut now = caps::read(None, set).map_err(|e| os("capabilities", e))?;
            for cap in added {
                now.remove(&cap.to_cap());
            }
            caps::set(None, set, &now).map_err(|e| os("capabilities", e))?;
        }
        Ok(())
    }

    #[allow(unsafe_code)]
    fn load(&self) -> Result<(), FilterError> {
        let instructions: Vec<libc::sock_filter> = self
            .program
            .chunks_exact(INSTRUCTION)
            .map(|i| libc::sock_filter {
                code: u16::from_ne_bytes([i[0], i[1]]),
                jt: i[2],
                jf: i[3],
                k: u32::from_ne_bytes([i[4], i[5], i[6], i[7]]),
            })
            .collect();
        let program = libc::sock_fprog {
            len: instructions.len() as u16,
            filter: instructions.as_ptr().cast_mut(),
        };
        // SAFETY: `program` points at `instructions`, alive across the call;
        // the kernel copies the filter.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &program as *const libc::sock_fprog,
            )
        };
        if r != 0 {
            let e = std::io::Error::last_os_error();
            return Err(FilterError::Invalid(format!("loading the filter: {e}")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::{LinuxCapabilities, LinuxSeccompFilterFlag};

    use super::*;
    use crate::spec::security::DEFAULT_CAPABILITIES;

    fn default_caps() -> Capabilities {
        DEFAULT_CAPABILITIES.into_iter().collect()
    }

    /// A spec as rcompose makes it: Docker's capabilities and profile.
    fn spec() -> Spec {
        let mut spec = Spec::default();
        let caps = default_caps();
        let mut sets = LinuxCapabilities::default();
        sets.set_bounding(Some(caps.clone()))
            .set_effective(Some(caps.clone()))
            .set_permitted(Some(caps.clone()))
            .set_inheritable(None)
            .set_ambient(None);
        let mut process = spec.process().clone().unwrap();
        process
            .set_capabilities(Some(sets))
            .set_no_new_privileges(None);
        spec.set_process(Some(process));
        let profile = crate::spec::seccomp::default_profile(&caps, None);
        let mut linux = spec.linux().clone().unwrap();
        linux.set_seccomp(Some(profile));
        spec.set_linux(Some(linux));
        spec
    }

    fn sets(spec: &Spec) -> LinuxCapabilities {
        spec.process()
            .as_ref()
            .and_then(|p| p.capabilities().clone())
            .unwrap()
    }

    #[test]
    fn a_handed_over_profile_leaves_the_spec_with_the_load_capabilities_and_a_record_of_them() {
        let mut spec = spec();
        let profile = hand_over(&mut spec, "abc").expect("handed over");
        assert_eq!(profile.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert!(spec.linux().as_ref().unwrap().seccomp().is_none());
        let handoff = handoff_of(&spec).unwrap().unwrap();
        // Docker's default set has SETPCAP but not SYS_ADMIN.
        let only_admin = vec![Capability::SysAdmin];
        assert_eq!(
            handoff,
            Handoff {
                sha256: "abc".into(),
                bounding: only_admin.clone(),
                effective: only_admin.clone(),
                permitted: only_admin,
            }
        );
        let caps = sets(&spec);
        let mut wanted = default_caps();
        wanted.insert(Capability::SysAdmin);
        assert_eq!(caps.bounding().as_ref(), Some(&wanted));
        assert_eq!(caps.effective().as_ref(), Some(&wanted));
        assert_eq!(caps.permitted().as_ref(), Some(&wanted));
        assert_eq!(caps.inheritable(), &None);
    }

    #[test]
    fn with_no_new_privileges_and_without_setpcap_only_setpcap_is_added() {
        let mut spec = spec();
        let mut process = spec.process().clone().unwrap();
        let mut caps = sets(&spec);
        let mut fewer = default_caps();
        fewer.remove(&Capability::Setpcap);
        caps.set_bounding(Some(fewer.clone()))
            .set_effective(Some(fewer.clone()))
            .set_permitted(Some(fewer));
        process
            .set_capabilities(Some(caps))
            .set_no_new_privileges(Some(true));
        spec.set_process(Some(process));
        hand_over(&mut spec, "abc").unwrap();
        let handoff = handoff_of(&spec).unwrap().unwrap();
        assert_eq!(handoff.bounding, vec![Capability::Setpcap]);
        assert_eq!(handoff.effective, vec![Capability::Setpcap]);
        assert_eq!(handoff.permitted, vec![Capability::Setpcap]);
    }

    #[test]
    fn a_profile_with_flags_or_a_listener_or_partial_capabilities_stays_libcontainers() {
        let mut flagged = spec();
        let mut linux = flagged.linux().clone().unwrap();
        let mut profile = linux.seccomp().clone().unwrap();
        profile.set_flags(Some(vec![LinuxSeccompFilterFlag::SeccompFilterFlagLog]));
        linux.set_seccomp(Some(profile.clone()));
        flagged.set_linux(Some(linux.clone()));
        let before = flagged.clone();
        assert!(hand_over(&mut flagged, "abc").is_none());
        assert_eq!(flagged, before);

        let mut listener = spec();
        profile
            .set_flags(None)
            .set_listener_path(Some("/run/x.sock".into()));
        linux.set_seccomp(Some(profile));
        listener.set_linux(Some(linux));
        assert!(hand_over(&mut listener, "abc").is_none());

        let mut partial = spec();
        let mut process = partial.process().clone().unwrap();
        let mut caps = sets(&partial);
        caps.set_effective(None);
        process.set_capabilities(Some(caps));
        partial.set_process(Some(process));
        assert!(hand_over(&mut partial, "abc").is_none());

        let mut none = spec();
        let mut linux = none.linux().clone().unwrap();
        linux.set_seccomp(None);
        none.set_linux(Some(linux));
        assert!(hand_over(&mut none, "abc").is_none());
        assert_eq!(handoff_of(&none).unwrap(), None);
    }

    #[test]
    fn dockers_profile_compiles_to_a_program_the_kernel_takes_and_the_cache_keeps_it() {
        let profile = crate::spec::seccomp::default_profile(&default_caps(), None);
        let program = compile(&profile).unwrap();
        assert!(program.len().is_multiple_of(INSTRUCTION));
        assert!(program.len() / INSTRUCTION > 100, "{} bytes", program.len());
        // The same profile, the same program.
        assert_eq!(compile(&profile).unwrap(), program);

        let dir = tempfile::tempdir().unwrap();
        let (path, sha) = cached(dir.path(), &profile).unwrap();
        assert_eq!(sha, hex_sha256(&program));
        assert_eq!(verified(&std::fs::read(&path).unwrap()).unwrap(), program);
        // A second look finds it; another profile gets another file.
        assert_eq!(cached(dir.path(), &profile).unwrap(), (path.clone(), sha));
        let mut more = default_caps();
        more.insert(Capability::SysAdmin);
        let other = crate::spec::seccomp::default_profile(&more, None);
        let (other_path, other_sha) = cached(dir.path(), &other).unwrap();
        assert_ne!(other_path, path);
        assert_ne!(other_sha, hex_sha256(&program));
        // A file cut short is compiled again.
        std::fs::write(&path, &program[..64]).unwrap();
        let (again, again_sha) = cached(dir.path(), &profile).unwrap();
        assert_eq!(again, path);
        assert_eq!(again_sha, hex_sha256(&program));
        assert!(verified(&std::fs::read(&path).unwrap()).is_ok());
    }

    #[test]
    fn a_bundle_gets_its_program_linked_and_the_executor_side_reads_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("bundle");
        std::fs::create_dir(&bundle).unwrap();
        let cache = dir.path().join("seccomp");
        let mut spec = spec();
        prepare(&mut spec, &cache, &bundle).unwrap();
        spec.save(bundle.join("config.json")).unwrap();
        let filter = Filter::for_bundle(&bundle).unwrap().expect("a filter");
        Filter::check(&spec, Some(&filter)).unwrap();
        assert!(Filter::check(&spec, None).is_err(), "fails closed");
        // Prepared again (a restart), the link is made again.
        let mut again = self::spec();
        prepare(&mut again, &cache, &bundle).unwrap();
        assert_eq!(again, spec);
        // A program that is not the spec's is refused.
        let mut other = self::spec();
        hand_over(&mut other, &"0".repeat(64));
        other.save(bundle.join("config.json")).unwrap();
        let err = Filter::for_bundle(&bundle).unwrap_err();
        assert!(err.to_string().contains("not the program"), "{err}");
        // A bundle whose spec hands nothing over has no filter.
        self::spec().save(bundle.join("config.json")).unwrap();
        assert!(Filter::for_bundle(&bundle).unwrap().is_none());
        assert!(Filter::check(&self::spec(), Some(&filter)).is_err());
    }
}
