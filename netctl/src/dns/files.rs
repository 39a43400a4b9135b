//! The name-resolution files a container sees — `/etc/hosts`,
//! `/etc/hostname`, `/etc/resolv.conf` — rendered as text, and the parser of
//! the host's `resolv.conf` that supplies upstreams and defaults.
//!
//! Everything here is pure: callers read and write the files. Renders end
//! with a newline and list entries in the order given, so the same inputs
//! always produce the same bytes (and a container restart does not rewrite
//! an unchanged file).

use std::fmt::Write as _;
use std::net::IpAddr;

use thiserror::Error;

/// Lines every `/etc/hosts` starts with, as docker writes them.
const HOSTS_PREAMBLE: &str = "127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
";

/// The special `extra_hosts` target that stands for the host's address as
/// seen from the container.
pub const HOST_GATEWAY: &str = "host-gateway";

/// Failures while preparing the files.
#[derive(Debug, Error)]
pub enum FilesError {
    /// An `extra_hosts` entry is not `host:ip` or `host=ip`.
    #[error("failed to parse extra host {entry:?}: expected host:ip")]
    ExtraHostSyntax {
        /// The entry as written.
        entry: String,
    },
    /// The address part of an `extra_hosts` entry is not an IP address.
    #[error("failed to parse the address of extra host {entry:?}")]
    ExtraHostAddress {
        /// The entry as written.
        entry: String,
        /// Why the address did not parse.
        #[source]
        source: std::net::AddrParseError,
    },
    /// `host-gateway` was used but the caller has no gateway address.
    #[error("failed to resolve host-gateway for extra host {entry:?}: no gateway address known")]
    NoHostGateway {
        /// The entry as written.
        entry: String,
    },
}

/// One `extra_hosts` line: a name pinned to an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraHost {
    /// The name.
    pub host: String,
    /// Its address.
    pub ip: IpAddr,
}

impl ExtraHost {
    /// Parses `host:ip` or `host=ip` (IPv6 may be bracketed); `host-gateway`
    /// becomes `host_gateway`, which the caller resolves.
    pub fn parse(entry: &str, host_gateway: Option<IpAddr>) -> Result<ExtraHost, FilesError> {
        let (host, target) = entry
            .split_once('=')
            .or_else(|| entry.split_once(':'))
            .filter(|(host, target)| !host.trim().is_empty() && !target.trim().is_empty())
            .ok_or_else(|| FilesError::ExtraHostSyntax {
                entry: entry.to_owned(),
            })?;
        let target = target.trim();
        let ip = if target == HOST_GATEWAY {
            host_gateway.ok_or_else(|| FilesError::NoHostGateway {
                entry: entry.to_owned(),
            })?
        } else {
            parse_bracketed(target).map_err(|source| FilesError::ExtraHostAddress {
                entry: entry.to_owned(),
                source,
            })?
        };
        Ok(ExtraHost {
            host: host.trim().to_owned(),
            ip,
        })
    }
}

/// An address, with the brackets some users put around IPv6 tolerated.
fn parse_bracketed(text: &str) -> Result<IpAddr, std::net::AddrParseError> {
    let inner = text
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(text);
    inner.parse()
}

/// What goes into a container's `/etc/hosts`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostsFile {
    /// The container's hostname.
    pub hostname: String,
    /// The container's domain name, if set.
    pub domainname: Option<String>,
    /// The container's own addresses, one line each.
    pub addresses: Vec<IpAddr>,
    /// `extra_hosts`, already resolved.
    pub extra_hosts: Vec<ExtraHost>,
}

impl HostsFile {
    /// The file's text: docker's fixed preamble, the container's own
    /// addresses, then `extra_hosts`.
    pub fn render(&self) -> String {
        let mut text = String::from(HOSTS_PREAMBLE);
        let names = self.own_names();
        for address in &self.addresses {
            let _ = writeln!(text, "{address}\t{names}");
        }
        for extra in &self.extra_hosts {
            let _ = writeln!(text, "{}\t{}", extra.ip, extra.host);
        }
        text
    }

    /// `hostname.domain hostname` when a domain is set (the fully qualified
    /// name first, as the canonical one), else `hostname`.
    fn own_names(&self) -> String {
        match self
            .domainname
            .as_deref()
            .filter(|domain| !domain.is_empty())
        {
            Some(domain) => format!("{0}.{domain} {0}", self.hostname),
            None => self.hostname.clone(),
        }
    }
}

/// The text of a container's `/etc/hostname`.
pub fn render_hostname(hostname: &str) -> String {
    format!("{hostname}\n")
}

/// The settings of a `resolv.conf` that matter to a container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvConf {
    /// `nameserver` lines, in order.
    pub nameservers: Vec<IpAddr>,
    /// The search list.
    pub search: Vec<String>,
    /// `options` tokens, e.g. `ndots:2`.
    pub options: Vec<String>,
}

impl ResolvConf {
    /// Reads a `resolv.conf` the way the C library does: unknown keywords
    /// and unparsable nameservers are skipped, the last `search`/`domain`
    /// line wins, `options` lines accumulate.
    pub fn parse(text: &str) -> ResolvConf {
        let mut conf = ResolvConf::default();
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or_default();
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => conf.add_nameserver(words.next()),
                Some("search") => conf.search = words.map(str::to_owned).collect(),
                Some("domain") => conf.search = words.take(1).map(str::to_owned).collect(),
                Some("options") => conf.options.extend(words.map(str::to_owned)),
                _ => {}
            }
        }
        conf
    }

    /// Keeps a nameserver line's address; a scoped IPv6 address
    /// (`fe80::1%eth0`) is dropped, since the interface means nothing
    /// inside a container.
    fn add_nameserver(&mut self, word: Option<&str>) {
        if let Some(ip) = word.and_then(|word| word.parse().ok()) {
            self.nameservers.push(ip);
        }
    }

    /// The file's text; `search` and `options` lines only when non-empty.
    pub fn render(&self) -> String {
        let mut text = String::new();
        for server in &self.nameservers {
            let _ = writeln!(text, "nameserver {server}");
        }
        if !self.search.is_empty() {
            let _ = writeln!(text, "search {}", self.search.join(" "));
        }
        if !self.options.is_empty() {
            let _ = writeln!(text, "options {}", self.options.join(" "));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn extra(host: &str, address: &str) -> ExtraHost {
        ExtraHost {
            host: host.to_owned(),
            ip: ip(address),
        }
    }

    #[test]
    fn hosts_for_a_plain_container_lists_its_address_after_the_preamble() {
        let hosts = HostsFile {
            hostname: "3f2a9c1d0b7e".to_owned(),
            domainname: None,
            addresses: vec![ip("172.18.0.3")],
            extra_hosts: Vec::new(),
        };
        insta::assert_snapshot!(hosts.render());
    }

    #[test]
    fn hosts_with_domain_two_networks_and_extra_hosts() {
        let hosts = HostsFile {
            hostname: "web".to_owned(),
            domainname: Some("shop.test".to_owned()),
            addresses: vec![ip("172.18.0.3"), ip("172.19.0.3"), ip("fd00::3")],
            extra_hosts: vec![
                extra("host.docker.internal", "172.18.0.1"),
                extra("legacy", "fd00::99"),
            ],
        };
        insta::assert_snapshot!(hosts.render());
    }

    #[test]
    fn hostname_file_is_the_name_and_a_newline() {
        assert_eq!(render_hostname("web"), "web\n");
    }

    #[test]
    fn resolv_conf_points_at_the_embedded_server_with_search_and_options() {
        let conf = ResolvConf {
            nameservers: vec![ip("172.18.0.1")],
            search: vec!["shop.test".to_owned(), "test".to_owned()],
            options: vec!["ndots:0".to_owned(), "timeout:1".to_owned()],
        };
        insta::assert_snapshot!(conf.render());
    }

    #[test]
    fn resolv_conf_without_search_or_options_has_only_nameservers() {
        let conf = ResolvConf {
            nameservers: vec![ip("192.0.2.53"), ip("2001:db8::53")],
            ..ResolvConf::default()
        };
        insta::assert_snapshot!(conf.render());
    }

    #[test]
    fn parser_reads_nameservers_search_and_options_and_ignores_comments() {
        let text = "# generated\n; also a comment\nnameserver 192.0.2.1\n\
                    nameserver 2001:db8::1 # trailing\nsearch a.test b.test\n\
                    options ndots:2 timeout:1\noptions rotate\nsortlist 10.0.0.0\n";
        let conf = ResolvConf::parse(text);
        assert_eq!(conf.nameservers, vec![ip("192.0.2.1"), ip("2001:db8::1")]);
        assert_eq!(conf.search, vec!["a.test", "b.test"]);
        assert_eq!(conf.options, vec!["ndots:2", "timeout:1", "rotate"]);
    }

    #[test]
    fn parser_lets_the_last_search_or_domain_line_win() {
        let conf = ResolvConf::parse("search a.test b.test\ndomain c.test\n");
        assert_eq!(conf.search, vec!["c.test"]);
        let conf = ResolvConf::parse("domain c.test\nsearch a.test\n");
        assert_eq!(conf.search, vec!["a.test"]);
    }

    #[test]
    fn parser_skips_scoped_and_malformed_nameservers() {
        let conf = ResolvConf::parse("nameserver fe80::1%eth0\nnameserver bogus\nnameserver\n");
        assert!(conf.nameservers.is_empty());
    }

    #[test]
    fn parser_of_an_empty_file_is_empty() {
        assert_eq!(ResolvConf::parse(""), ResolvConf::default());
    }

    #[test]
    fn parsed_and_rendered_conf_reads_back_the_same() {
        let conf = ResolvConf::parse("nameserver 192.0.2.1\nsearch a.test\noptions ndots:2\n");
        assert_eq!(ResolvConf::parse(&conf.render()), conf);
    }

    #[test]
    fn extra_host_accepts_colon_equals_and_ipv6_forms() {
        let parse = |entry| ExtraHost::parse(entry, None).unwrap();
        assert_eq!(parse("db:10.0.0.5"), extra("db", "10.0.0.5"));
        assert_eq!(parse("db=10.0.0.5"), extra("db", "10.0.0.5"));
        assert_eq!(parse("v6:::1"), extra("v6", "::1"));
        assert_eq!(parse("v6=[2001:db8::1]"), extra("v6", "2001:db8::1"));
    }

    #[test]
    fn extra_host_gateway_takes_the_address_the_caller_resolved() {
        let gateway = Some(ip("172.18.0.1"));
        let parsed = ExtraHost::parse("host.docker.internal:host-gateway", gateway).unwrap();
        assert_eq!(parsed, extra("host.docker.internal", "172.18.0.1"));
        let missing = ExtraHost::parse("h:host-gateway", None).unwrap_err();
        assert!(matches!(missing, FilesError::NoHostGateway { .. }));
    }

    #[test]
    fn extra_host_rejects_entries_without_a_name_or_address() {
        for entry in ["justaname", ":10.0.0.1", "name:", "name:not-an-ip"] {
            assert!(ExtraHost::parse(entry, None).is_err(), "{entry}");
        }
    }

    #[test]
    fn extra_host_errors_say_what_was_being_done() {
        let error = ExtraHost::parse("db:nope", None).unwrap_err();
        insta::assert_snapshot!(error.to_string(), @r#"failed to parse the address of extra host "db:nope""#);
    }
}
