//! Pseudo-terminals for `exec -t`: the console socket through which
//! libcontainer hands over the pty master it made inside the container, the
//! local terminal's raw mode, window-size propagation, and the relay that
//! copies bytes between this process's stdio and the master.
//!
//! Invariants: the console socket lives alone in a fresh 0700 directory and is
//! itself 0600; both are removed when the [`ConsoleSocket`] drops. A
//! [`RawMode`] restores the saved terminal settings when it drops, and is only
//! ever taken on a descriptor that is a terminal.

use std::fs::{self, DirBuilder, Permissions};
use std::io::{self, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::io::Errno;
use rustix::termios::{self, OptionalActions, Termios};

/// How long libcontainer may take to send the master once `exec` returned
/// (it is sent before the process execs, so it is normally already queued).
const MASTER_TIMEOUT: Timespec = Timespec {
    tv_sec: 10,
    tv_nsec: 0,
};
/// How long the relay keeps draining the master after the process exited
/// while the master stays quiet (a background child may still hold the pty).
const DRAIN_IDLE: Timespec = Timespec {
    tv_sec: 0,
    tv_nsec: 100_000_000,
};
/// What a terminal in canonical mode reads as end of input (`^D`), sent to the
/// master when forwarded input ends.
const VEOF: u8 = 0x04;
/// The socket's name inside its private directory.
const SOCKET_NAME: &str = "console.sock";

/// Why a terminal session failed.
#[derive(Debug, thiserror::Error)]
pub enum TtyError {
    /// The console socket or its directory could not be made.
    #[error("failed to create console socket {path}")]
    Socket {
        /// The socket or directory.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// Nothing, or no descriptor, arrived on the console socket.
    #[error("failed to receive the pty master")]
    Receive(#[source] io::Error),
    /// The local terminal could not be put in raw mode.
    #[error("failed to put the terminal in raw mode")]
    RawMode(#[source] io::Error),
    /// Copying between stdio and the master failed.
    #[error("failed to relay terminal i/o")]
    Relay(#[source] io::Error),
}

/// A listening unix socket that receives one pty master (`SCM_RIGHTS`).
#[derive(Debug)]
pub struct ConsoleSocket {
    listener: UnixListener,
    dir: PathBuf,
    path: PathBuf,
}

impl ConsoleSocket {
    /// Listens on a new socket in a fresh private directory under `parent`.
    pub fn bind(parent: &Path) -> Result<ConsoleSocket, TtyError> {
        let socket_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| TtyError::Socket { path, source }
        };
        // libcontainer links to the socket from another directory.
        let parent = &std::path::absolute(parent).map_err(socket_err(parent))?;
        fs::create_dir_all(parent).map_err(socket_err(parent))?;
        let dir = private_dir(parent).map_err(socket_err(parent))?;
        let path = dir.join(SOCKET_NAME);
        let bound = UnixListener::bind(&path).and_then(|listener| {
            fs::set_permissions(&path, Permissions::from_mode(0o600))?;
            Ok(listener)
        });
        match bound {
            Ok(listener) => Ok(ConsoleSocket {
                listener,
                dir,
                path,
            }),
            Err(source) => {
                let _ = fs::remove_dir_all(&dir);
                Err(socket_err(&path)(source))
            }
        }
    }

    /// The socket's absolute path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts the one connection and returns the descriptor sent on it.
    pub fn receive_master(&self) -> Result<OwnedFd, TtyError> {
        wait_readable(self.listener.as_fd(), &MASTER_TIMEOUT).map_err(TtyError::Receive)?;
        let (stream, _) = self.listener.accept().map_err(TtyError::Receive)?;
        wait_readable(stream.as_fd(), &MASTER_TIMEOUT).map_err(TtyError::Receive)?;
        receive_fd(stream.as_fd()).map_err(TtyError::Receive)
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Creates `parent/tty-<pid>-<n>` with mode 0700 for the first free `n`.
fn private_dir(parent: &Path) -> io::Result<PathBuf> {
    let pid = std::process::id();
    for n in 0..1000 {
        let dir = parent.join(format!("tty-{pid}-{n}"));
        match DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::ErrorKind::AlreadyExists.into())
}

/// Fails with `TimedOut` unless `fd` becomes readable within `timeout`.
fn wait_readable(fd: BorrowedFd<'_>, timeout: &Timespec) -> io::Result<()> {
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    loop {
        match poll(&mut fds, Some(timeout)) {
            Ok(0) => return Err(io::ErrorKind::TimedOut.into()),
            Ok(_) => return Ok(()),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Reads one message from `socket` and returns the first descriptor it carried.
fn receive_fd(socket: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let mut buf = [0u8; 64];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 4]);
    let msg = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut fds = Vec::new();
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(raw) = cmsg {
            fds.extend(raw.into_iter().map(own_received));
        }
    }
    // Extra descriptors, if any, close as `fds` drops.
    fds.into_iter()
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "message carried no descriptor"))
}

#[allow(unsafe_code)]
fn own_received(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was just installed in this process's table by SCM_RIGHTS;
    // nothing else refers to it, so it gets exactly one owner here.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// The local terminal in raw mode; its saved settings come back on drop.
pub struct RawMode<'a> {
    fd: BorrowedFd<'a>,
    saved: Termios,
}

impl<'a> RawMode<'a> {
    /// Puts `fd` in raw mode when it is a terminal; `None` when it is not.
    pub fn enable(fd: BorrowedFd<'a>) -> Result<Option<RawMode<'a>>, TtyError> {
        if !termios::isatty(fd) {
            return Ok(None);
        }
        let saved = termios::tcgetattr(fd).map_err(|e| TtyError::RawMode(e.into()))?;
        let mut raw = saved.clone();
        raw.make_raw();
        termios::tcsetattr(fd, OptionalActions::Now, &raw)
            .map_err(|e| TtyError::RawMode(e.into()))?;
        Ok(Some(RawMode { fd, saved }))
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.fd, OptionalActions::Now, &self.saved);
    }
}

/// Gives `master` the window size of the local terminal `local`.
pub fn follow_size(local: BorrowedFd<'_>, master: BorrowedFd<'_>) {
    // Best effort: a size that cannot be copied leaves the pty at 0x0, which
    // programs treat as "unknown".
    if let Ok(size) = termios::tcgetwinsize(local) {
        let _ = termios::tcsetwinsize(master, size);
    }
}

/// SIGWINCH as a readable descriptor, for this thread, while it lives.
struct WinchWatch {
    fd: SignalFd,
    old_mask: SigSet,
}

impl WinchWatch {
    fn new() -> nix::Result<WinchWatch> {
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGWINCH);
        let old_mask = mask.thread_swap_mask(SigmaskHow::SIG_BLOCK)?;
        match SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC) {
            Ok(fd) => Ok(WinchWatch { fd, old_mask }),
            Err(e) => {
                let _ = old_mask.thread_set_mask();
                Err(e)
            }
        }
    }
}

impl Drop for WinchWatch {
    fn drop(&mut self) {
        let _ = self.old_mask.thread_set_mask();
    }
}

/// Relays between this process's stdio and `master` until process `pid` is
/// done with its terminal. Stdin is forwarded only when `interactive`, and is
/// then put in raw mode if it is a terminal; the master follows the local
/// window size when stdin or stdout is a terminal.
pub fn attach(master: BorrowedFd<'_>, pid: i32, interactive: bool) -> Result<(), TtyError> {
    let (stdin_handle, stdout_handle) = (io::stdin(), io::stdout());
    let (stdin, stdout) = (stdin_handle.as_fd(), stdout_handle.as_fd());
    let local = [stdin, stdout].into_iter().find(|fd| termios::isatty(fd));
    if let Some(local) = local {
        follow_size(local, master);
    }
    let _raw = match interactive {
        true => RawMode::enable(stdin)?,
        false => None,
    };
    let winch = local.and_then(|_| WinchWatch::new().ok());
    let exited = rustix::process::Pid::from_raw(pid).and_then(|pid| {
        rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
    });
    let relay = Relay {
        master,
        input: interactive.then_some(stdin),
        output: stdout,
        exited: exited.as_ref().map(AsFd::as_fd),
        resize: winch.as_ref().zip(local).map(|(w, l)| (w.fd.as_fd(), l)),
    };
    relay.run().map_err(TtyError::Relay)
}

/// The descriptors the relay moves bytes between.
pub struct Relay<'a> {
    /// The pty master: its output goes to `output`; EOF or EIO ends the relay.
    pub master: BorrowedFd<'a>,
    /// Forwarded to the master when set; its end is sent on as `^D`.
    pub input: Option<BorrowedFd<'a>>,
    /// Where the master's output goes.
    pub output: BorrowedFd<'a>,
    /// Readable once the process exited (a pidfd): the relay then drains the
    /// master and stops, even if a background child still holds the pty.
    pub exited: Option<BorrowedFd<'a>>,
    /// A SIGWINCH signalfd and the local terminal whose size the master follows.
    pub resize: Option<(BorrowedFd<'a>, BorrowedFd<'a>)>,
}

/// Which of the relay's descriptors are ready.
#[derive(Debug, Default)]
struct Ready {
    master: bool,
    input: bool,
    exited: bool,
    resize: bool,
}

/// What one read got.
enum Got {
    Data(usize),
    End,
    NothingYet,
}

impl Relay<'_> {
    /// Copies until the master ends, or the process exited and the master went quiet.
    pub fn run(mut self) -> io::Result<()> {
        let mut buf = [0u8; 8192];
        loop {
            let ready = self.wait()?;
            if ready.resize {
                self.resize();
            }
            if ready.input {
                self.forward_input(&mut buf)?;
            }
            if ready.master && !self.pump_master(&mut buf)? {
                return Ok(());
            }
            if ready.exited {
                return self.drain(&mut buf);
            }
        }
    }

    fn wait(&self) -> io::Result<Ready> {
        let slots = [
            Some(self.master),
            self.input,
            self.exited,
            self.resize.map(|(signals, _)| signals),
        ];
        let mut fds: Vec<PollFd<'_>> = slots
            .iter()
            .flatten()
            .map(|fd| PollFd::new(fd, PollFlags::IN))
            .collect();
        loop {
            match poll(&mut fds, None) {
                Ok(_) => break,
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        let mut revents = fds.iter().map(|fd| !fd.revents().is_empty());
        let mut ready =
            |slot: &Option<BorrowedFd<'_>>| slot.is_some() && revents.next() == Some(true);
        Ok(Ready {
            master: ready(&slots[0]),
            input: ready(&slots[1]),
            exited: ready(&slots[2]),
            resize: ready(&slots[3]),
        })
    }

    /// Copies one read of master output; `false` once the master has ended.
    fn pump_master(&self, buf: &mut [u8]) -> io::Result<bool> {
        match read(self.master, buf)? {
            Got::Data(n) => write_all(self.output, &buf[..n]).map(|()| true),
            Got::End => Ok(false),
            Got::NothingYet => Ok(true),
        }
    }

    fn forward_input(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let Some(input) = self.input else {
            return Ok(());
        };
        match read(input, buf)? {
            Got::Data(n) => write_all(self.master, &buf[..n]),
            Got::End => {
                self.input = None;
                write_all(self.master, &[VEOF])
            }
            Got::NothingYet => Ok(()),
        }
    }

    fn resize(&self) {
        let Some((signals, local)) = self.resize else {
            return;
        };
        let mut info = [0u8; 128];
        while matches!(rustix::io::read(signals, &mut info), Ok(n) if n > 0) {}
        follow_size(local, self.master);
    }

    /// Copies what the master still has, until it ends or stays quiet a moment.
    fn drain(&self, buf: &mut [u8]) -> io::Result<()> {
        while wait_readable(self.master, &DRAIN_IDLE).is_ok() {
            if !self.pump_master(buf)? {
                break;
            }
        }
        Ok(())
    }
}

/// One read; a pty master whose other side is gone reads as EIO, taken as the end.
fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Got> {
    match rustix::io::read(fd, buf) {
        Ok(0) | Err(Errno::IO) => Ok(Got::End),
        Ok(n) => Ok(Got::Data(n)),
        Err(Errno::INTR | Errno::AGAIN) => Ok(Got::NothingYet),
        Err(e) => Err(e.into()),
    }
}

fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match rustix::io::write(fd, bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => {
                let mut fds = [PollFd::new(&fd, PollFlags::OUT)];
                let _ = poll(&mut fds, None);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::{IoSlice, Read as _, Write as _};
    use std::os::unix::fs::MetadataExt as _;
    use std::os::unix::net::UnixStream;

    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};

    use super::*;

    fn pipe() -> (fs::File, fs::File) {
        let (read, write) = rustix::pipe::pipe().unwrap();
        (read.into(), write.into())
    }

    #[test]
    fn a_console_socket_is_private_and_hands_over_the_descriptor_sent_to_it() {
        let parent = tempfile::tempdir().unwrap();
        let socket = ConsoleSocket::bind(&parent.path().join("run")).unwrap();
        assert_eq!(fs::metadata(socket.path()).unwrap().mode() & 0o777, 0o600);
        let dir = socket.path().parent().unwrap().to_path_buf();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);

        let (mut read_end, write_end) = pipe();
        let sender = UnixStream::connect(socket.path()).unwrap();
        let fds = [write_end.as_raw_fd()];
        let iov = [IoSlice::new(b"/dev/ptmx")];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        sendmsg::<()>(sender.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None).unwrap();
        drop(write_end);

        let received = socket.receive_master().unwrap();
        fs::File::from(received).write_all(b"through").unwrap();
        let mut got = String::new();
        read_end.read_to_string(&mut got).unwrap();
        assert_eq!(got, "through");

        drop(socket);
        assert!(!dir.exists());
    }

    #[test]
    fn a_message_without_a_descriptor_is_an_error() {
        let parent = tempfile::tempdir().unwrap();
        let socket = ConsoleSocket::bind(parent.path()).unwrap();
        let mut sender = UnixStream::connect(socket.path()).unwrap();
        sender.write_all(b"no fd").unwrap();
        assert!(matches!(socket.receive_master(), Err(TtyError::Receive(_))));
    }

    #[test]
    fn the_relay_copies_pty_output_until_the_other_side_closes() {
        let pty = nix::pty::openpty(None, None).unwrap();
        let (mut out_read, out_write) = pipe();
        fs::File::from(pty.slave).write_all(b"hello\n").unwrap();
        let relay = Relay {
            master: pty.master.as_fd(),
            input: None,
            output: out_write.as_fd(),
            exited: None,
            resize: None,
        };
        relay.run().unwrap();
        drop(out_write);
        let mut got = String::new();
        out_read.read_to_string(&mut got).unwrap();
        assert_eq!(got, "hello\r\n");
    }

    #[test]
    fn the_relay_forwards_input_and_ends_it_with_an_eof_character() {
        let pty = nix::pty::openpty(None, None).unwrap();
        let mut raw = termios::tcgetattr(&pty.slave).unwrap();
        raw.local_modes.remove(termios::LocalModes::ECHO);
        termios::tcsetattr(&pty.slave, OptionalActions::Now, &raw).unwrap();
        let (in_read, mut in_write) = pipe();
        let (_out_read, out_write) = pipe();
        in_write.write_all(b"abc").unwrap();
        drop(in_write);
        std::thread::scope(|scope| {
            let relay = Relay {
                master: pty.master.as_fd(),
                input: Some(in_read.as_fd()),
                output: out_write.as_fd(),
                exited: None,
                resize: None,
            };
            let running = scope.spawn(move || relay.run());
            let mut slave = fs::File::from(pty.slave);
            let mut line = [0u8; 16];
            // Canonical mode: ^D ends the line without a newline.
            let n = slave.read(&mut line).unwrap();
            assert_eq!(&line[..n], b"abc");
            drop(slave);
            running.join().unwrap().unwrap();
        });
    }

    #[test]
    fn the_relay_stops_once_the_process_exited_though_the_pty_stays_open() {
        let pty = nix::pty::openpty(None, None).unwrap();
        let (_out_read, out_write) = pipe();
        let (exited_read, exited_write) = pipe();
        drop(exited_write);
        let relay = Relay {
            master: pty.master.as_fd(),
            input: None,
            output: out_write.as_fd(),
            exited: Some(exited_read.as_fd()),
            resize: None,
        };
        relay.run().unwrap();
        drop(pty.slave);
    }

    #[test]
    fn raw_mode_is_not_taken_on_something_that_is_not_a_terminal() {
        let (read_end, _write_end) = pipe();
        assert!(RawMode::enable(read_end.as_fd()).unwrap().is_none());
    }

    #[test]
    fn raw_mode_is_restored_on_drop() {
        let pty = nix::pty::openpty(None, None).unwrap();
        let before = termios::tcgetattr(&pty.slave).unwrap();
        let raw = RawMode::enable(pty.slave.as_fd()).unwrap().unwrap();
        let during = termios::tcgetattr(&pty.slave).unwrap();
        assert!(!during.local_modes.contains(termios::LocalModes::ICANON));
        drop(raw);
        let after = termios::tcgetattr(&pty.slave).unwrap();
        assert_eq!(after.local_modes, before.local_modes);
        assert!(after.local_modes.contains(termios::LocalModes::ICANON));
    }
}
