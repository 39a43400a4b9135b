//! The built-in init (`init: true`): PID 1 of the container forks the real
//! command, forwards every signal it receives to it, reaps every zombie that
//! gets reparented to it, and exits with the command's status (128 + signal
//! number when the command was killed by a signal), as tini does.
//!
//! It runs inside the container after isolation and seccomp are in place, so
//! it needs no binary in the image. Signals are blocked and taken with
//! `sigwait`: blocked signals reach a namespace's PID 1 even without a
//! handler, which is what lets `stop` end the container at once.

use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid};
use oci_spec::runtime::Spec;

use libcontainer::workload::ExecutorError;

/// Becomes the init of the container and runs the spec's process as its child.
pub fn run_as_init(spec: &Spec) -> Result<(), ExecutorError> {
    let all = SigSet::all();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), None)
        .map_err(|e| ExecutorError::Other(format!("init: failed to block signals: {e}")))?;
    match fork_child()? {
        ForkResult::Child => {
            let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
            libcontainer::workload::default::get_executor().exec(spec)
        }
        ForkResult::Parent { child } => {
            hide_command_line();
            give_back_free_memory();
            std::process::exit(supervise(child, &all))
        }
    }
}

/// What PID 1 shows as its command line inside the container.
const INIT_NAME: &[u8] = b"rcompose-init";

/// The init is a clone of the monitor: its argv names host paths (state root,
/// run directory). Overwrite that block so the container sees only a name.
fn hide_command_line() {
    let _ = rustix::thread::set_name(c"rcompose-init");
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    if let Some((start, end)) = arg_region(&stat) {
        overwrite_args(start, end);
    }
}

/// `arg_start` and `arg_end` (fields 48 and 49) of a /proc/<pid>/stat text.
pub fn arg_region(stat: &str) -> Option<(usize, usize)> {
    let mut fields = crate::container::stat_fields(stat)?.skip(45);
    let start = fields.next()?.parse().ok()?;
    let end: usize = fields.next()?.parse().ok()?;
    (end > start).then_some((start, end))
}

#[allow(unsafe_code)]
fn overwrite_args(start: usize, end: usize) {
    let len = end - start;
    let mut text = INIT_NAME[..INIT_NAME.len().min(len - 1)].to_vec();
    text.resize(len, 0);
    // SAFETY: [arg_start, arg_end) is this process's own argv block on its
    // stack, mapped writable for the life of the process, as the kernel
    // reports it; the process is single-threaded here and nothing reads
    // argv through another pointer afterwards.
    unsafe { std::ptr::copy_nonoverlapping(text.as_ptr(), start as *mut u8, len) };
}

/// Hands the heap that setting up the container used and freed (the spec,
/// the seccomp filter's compilation) back to the kernel: PID 1 lives as long
/// as the container and needs almost none of it.
#[allow(unsafe_code)]
fn give_back_free_memory() {
    // SAFETY: malloc_trim only releases free memory of the allocator; the
    // process is single-threaded here.
    unsafe { libc::malloc_trim(0) };
}

#[allow(unsafe_code)]
fn fork_child() -> Result<ForkResult, ExecutorError> {
    // SAFETY: the container's init process is single-threaded at this point
    // (libcontainer runs the executor in the process it cloned), so the child
    // may run arbitrary code before exec.
    unsafe { nix::unistd::fork() }
        .map_err(|e| ExecutorError::Other(format!("init: failed to fork the command: {e}")))
}

/// Forwards signals and reaps until `child` exits; returns the exit code.
fn supervise(child: Pid, all: &SigSet) -> i32 {
    loop {
        let signal = match all.wait() {
            Ok(signal) => signal,
            Err(_) => continue,
        };
        if signal == Signal::SIGCHLD {
            if let Some(code) = reap(child) {
                return code;
            }
        } else {
            let _ = kill(child, signal);
        }
    }
}

/// Reaps every exited process; the main child's exit code once it is gone.
fn reap(child: Pid) -> Option<i32> {
    let mut result = None;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == child => result = Some(code),
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == child => {
                result = Some(128 + signal as i32);
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return result,
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_argv_block_is_read_from_proc_stat() {
        let own = std::fs::read_to_string("/proc/self/stat").unwrap();
        let (start, end) = arg_region(&own).unwrap();
        assert!(end > start);
        let mut fields: Vec<String> = (1..=52).map(|n| n.to_string()).collect();
        fields[1] = "(a b) c)".to_string();
        let line = fields.join(" ");
        assert_eq!(arg_region(&line), Some((48, 49)));
    }
}
