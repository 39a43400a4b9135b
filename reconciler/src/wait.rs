//! Waiting for something the kernel tells about late or not at all: a
//! doubling pause between looks ([`Backoff`]), and the end of a process
//! that is not our child ([`ProcessExit`]).

use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::process::{Pid, PidfdFlags};

/// Pauses between two looks at something that is usually ready within a
/// few milliseconds: 1 ms, then twice as long each time, up to 20 ms.
#[derive(Debug)]
pub struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Backoff(Duration::from_millis(1))
    }
}

impl Backoff {
    /// The longest pause.
    pub const MAX: Duration = Duration::from_millis(20);

    /// The next pause.
    pub fn next_pause(&mut self) -> Duration {
        let pause = self.0;
        self.0 = (pause * 2).min(Self::MAX);
        pause
    }

    /// Sleeps the next pause.
    pub fn sleep(&mut self) {
        std::thread::sleep(self.next_pause());
    }
}

/// Waits for a process that is not our child to end: poll on its pidfd,
/// which wakes at its exit; where the kernel gives none, a [`Backoff`]
/// pause.
#[derive(Debug)]
pub struct ProcessExit(Option<OwnedFd>);

impl ProcessExit {
    /// Opened before the process is signalled, so that its end is not missed.
    pub fn watch(pid: i32) -> Self {
        let fd = Pid::from_raw(pid).and_then(|pid| pidfd_open(pid).ok());
        ProcessExit(fd)
    }

    /// Returns when the process has ended, or after at most a pause (the
    /// caller looks again either way: a pid can be reused). Once the
    /// process has ended, a dead one not yet reaped may still look alive
    /// for a moment: from then on, pauses.
    pub fn wait(&mut self, backoff: &mut Backoff) {
        let Some(fd) = &self.0 else {
            return backoff.sleep();
        };
        let timeout = Timespec::try_from(Backoff::MAX * 5).unwrap_or_default();
        let mut fds = [PollFd::new(fd, PollFlags::IN)];
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(0) => {}
            Ok(_) => self.0 = None,
            Err(_) => backoff.sleep(),
        }
    }
}

fn pidfd_open(pid: Pid) -> rustix::io::Result<OwnedFd> {
    rustix::process::pidfd_open(pid, PidfdFlags::empty())
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn backoff_doubles_from_one_millisecond_up_to_twenty() {
        let mut b = Backoff::default();
        let ms: Vec<u128> = (0..7).map(|_| b.next_pause().as_millis()).collect();
        assert_eq!(ms, [1, 2, 4, 8, 16, 20, 20]);
    }

    #[test]
    fn the_wait_for_a_process_returns_once_it_has_ended() {
        let mut child = std::process::Command::new("sleep")
            .arg("0.2")
            .spawn()
            .expect("sleep runs");
        let mut exit = ProcessExit::watch(child.id() as i32);
        assert!(exit.0.is_some(), "this kernel gives pidfds");
        let mut backoff = Backoff::default();
        let deadline = Instant::now() + Duration::from_secs(10);
        while exit.0.is_some() && Instant::now() < deadline {
            exit.wait(&mut backoff);
        }
        assert!(exit.0.is_none(), "the pidfd woke at the exit");
        // It has ended: reaping it does not block.
        assert_eq!(
            child.try_wait().expect("wait").map(|s| s.success()),
            Some(true)
        );
    }
}
