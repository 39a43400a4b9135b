//! The DNS daemon process: its command line, shared by the spawner and the
//! daemon so that both agree on it, and the blocking entry point the
//! daemon runs.
//!
//! One daemon serves one network, listening on the bridge's gateway
//! address; it runs until SIGTERM (or SIGINT, for a daemon started by
//! hand). Invariant: `from_args(to_args(x)) == x`.

use std::ffi::OsString;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use thiserror::Error;
use tokio::signal::unix::{SignalKind, signal};

use super::server::{Listeners, ServerError, ServerOptions, run};

/// The hidden subcommand of the `rcompose` binary that runs a DNS daemon.
pub const DAEMON_SUBCOMMAND: &str = "__dns";

const LISTEN: &str = "--listen";
const TABLE: &str = "--table";
const UPSTREAM: &str = "--upstream";

/// Failures while parsing the daemon's command line or running it.
#[derive(Debug, Error)]
pub enum DaemonError {
    /// An argument is not one of ours.
    #[error("failed to parse dns daemon arguments: unexpected {argument:?}")]
    UnexpectedArgument {
        /// The argument as given.
        argument: OsString,
    },
    /// A flag came last, without its value.
    #[error("failed to parse dns daemon arguments: {flag} needs a value")]
    MissingValue {
        /// The flag.
        flag: &'static str,
    },
    /// A socket address did not parse.
    #[error("failed to parse dns daemon arguments: {flag} {value:?}")]
    InvalidAddress {
        /// The flag.
        flag: &'static str,
        /// The value as given.
        value: OsString,
        /// Why it did not parse.
        #[source]
        source: std::net::AddrParseError,
    },
    /// `--table` was not given.
    #[error("failed to parse dns daemon arguments: --table is required")]
    MissingTable,
    /// No `--listen` was given.
    #[error("failed to parse dns daemon arguments: at least one --listen is required")]
    MissingListen,
    /// The tokio runtime could not be built.
    #[error("failed to start the dns daemon runtime")]
    Runtime {
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The SIGTERM handler could not be installed.
    #[error("failed to install the dns daemon signal handler")]
    Signal {
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The server failed.
    #[error("failed to run the dns daemon")]
    Server {
        /// The server's error.
        #[source]
        source: ServerError,
    },
}

/// The daemon's command line (after the subcommand).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsDaemonArgs {
    /// Addresses to serve on, UDP and TCP (normally `<gateway>:53`).
    pub listen: Vec<SocketAddr>,
    /// The JSON table file.
    pub table: PathBuf,
    /// The host's resolvers, tried in order.
    pub upstreams: Vec<SocketAddr>,
}

impl DnsDaemonArgs {
    /// The arguments that [`DnsDaemonArgs::from_args`] reads back.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut args = Vec::new();
        for addr in &self.listen {
            args.extend([LISTEN.into(), addr.to_string().into()]);
        }
        args.extend([TABLE.into(), self.table.clone().into_os_string()]);
        for addr in &self.upstreams {
            args.extend([UPSTREAM.into(), addr.to_string().into()]);
        }
        args
    }

    /// Parses `--listen ADDR… --table PATH --upstream ADDR…` in any order.
    pub fn from_args(
        args: impl IntoIterator<Item = OsString>,
    ) -> Result<DnsDaemonArgs, DaemonError> {
        let (mut listen, mut table, mut upstreams) = (Vec::new(), None, Vec::new());
        let mut args = args.into_iter();
        while let Some(argument) = args.next() {
            let mut value = |flag| args.next().ok_or(DaemonError::MissingValue { flag });
            match argument.to_str() {
                Some(LISTEN) => listen.push(parse_addr(LISTEN, value(LISTEN)?)?),
                Some(TABLE) => table = Some(PathBuf::from(value(TABLE)?)),
                Some(UPSTREAM) => upstreams.push(parse_addr(UPSTREAM, value(UPSTREAM)?)?),
                _ => return Err(DaemonError::UnexpectedArgument { argument }),
            }
        }
        if listen.is_empty() {
            return Err(DaemonError::MissingListen);
        }
        let table = table.ok_or(DaemonError::MissingTable)?;
        Ok(DnsDaemonArgs {
            listen,
            table,
            upstreams,
        })
    }
}

fn parse_addr(flag: &'static str, value: OsString) -> Result<SocketAddr, DaemonError> {
    let parsed = value.to_string_lossy().parse();
    parsed.map_err(|source| DaemonError::InvalidAddress {
        flag,
        value,
        source,
    })
}

/// Runs the daemon in the calling thread: binds `config.listen` (UDP and
/// TCP) and serves until SIGTERM or SIGINT.
pub fn serve(config: &DnsDaemonArgs) -> Result<(), DaemonError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| DaemonError::Runtime { source })?;
    runtime.block_on(serve_until_signalled(config))
}

async fn serve_until_signalled(config: &DnsDaemonArgs) -> Result<(), DaemonError> {
    let mut terminate =
        signal(SignalKind::terminate()).map_err(|source| DaemonError::Signal { source })?;
    let mut interrupt =
        signal(SignalKind::interrupt()).map_err(|source| DaemonError::Signal { source })?;
    let listeners = Listeners::bind(&config.listen)
        .await
        .map_err(|source| DaemonError::Server { source })?;
    let options = ServerOptions::new(config.table.clone(), config.upstreams.clone());
    let shutdown = async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    };
    run(listeners, options, shutdown)
        .await
        .map_err(|source| DaemonError::Server { source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    fn example() -> DnsDaemonArgs {
        DnsDaemonArgs {
            listen: vec![
                "172.18.0.1:53".parse().unwrap(),
                "[fd00::1]:53".parse().unwrap(),
            ],
            table: PathBuf::from("/var/lib/rcompose/networks/dns.json"),
            upstreams: vec!["192.0.2.53:53".parse().unwrap()],
        }
    }

    #[test]
    fn daemon_args_survive_a_round_trip_through_the_command_line() {
        let config = example();
        assert_eq!(DnsDaemonArgs::from_args(config.to_args()).unwrap(), config);
    }

    #[test]
    fn daemon_command_line_is_flag_value_pairs() {
        let rendered: Vec<String> = example()
            .to_args()
            .into_iter()
            .map(|arg| arg.into_string().unwrap())
            .collect();
        insta::assert_snapshot!(rendered.join(" "), @"--listen 172.18.0.1:53 --listen [fd00::1]:53 --table /var/lib/rcompose/networks/dns.json --upstream 192.0.2.53:53");
    }

    #[test]
    fn daemon_args_without_upstreams_are_valid() {
        let parsed =
            DnsDaemonArgs::from_args(args(&["--table", "/t.json", "--listen", "127.0.0.1:53"]));
        assert!(parsed.unwrap().upstreams.is_empty());
    }

    #[test]
    fn daemon_args_report_what_is_wrong() {
        let error = |words: &[&str]| {
            DnsDaemonArgs::from_args(args(words))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            error(&["--listen", "127.0.0.1:53"]),
            "failed to parse dns daemon arguments: --table is required"
        );
        assert_eq!(
            error(&["--table", "/t.json"]),
            "failed to parse dns daemon arguments: at least one --listen is required"
        );
        assert_eq!(
            error(&["--table"]),
            "failed to parse dns daemon arguments: --table needs a value"
        );
        assert_eq!(
            error(&["--listen", "nowhere"]),
            "failed to parse dns daemon arguments: --listen \"nowhere\""
        );
        assert_eq!(
            error(&["--verbose"]),
            "failed to parse dns daemon arguments: unexpected \"--verbose\""
        );
    }
}
