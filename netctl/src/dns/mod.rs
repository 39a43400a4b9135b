//! The embedded DNS of a stack: containers resolve each other by container
//! name, service name, alias and hostname, but only on networks they share;
//! other names go to the host's (or the container's own) resolvers.
//!
//! Layers, pure first:
//! - [`table`]: the table and the lookup rules (who sees what);
//! - [`files`]: the `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`
//!   a container sees, and the parser of the host's `resolv.conf`;
//! - [`table_file`]: the table's JSON file, saved atomically and reloaded
//!   by the server when replaced;
//! - [`server`]: the thin DNS server over UDP and TCP;
//! - [`daemon`]: the per-network daemon process and its command line.

pub mod daemon;
pub mod files;
pub mod server;
pub mod table;
pub mod table_file;

pub use daemon::{DAEMON_SUBCOMMAND, DaemonError, DnsDaemonArgs, serve};
pub use files::{ExtraHost, FilesError, HostsFile, ResolvConf, render_hostname};
pub use server::{DnsHandler, Listeners, ServerError, ServerOptions, run};
pub use table::{DnsEndpoint, DnsNetwork, DnsTable, Lookup, RecordKind, Upstreams};
pub use table_file::{TableFile, TableFileError, load_table, save_table};
