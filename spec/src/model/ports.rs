//! Published ports: the short syntax `[[IP:]HOST:]CONTAINER[/PROTO]` and the long form.
//!
//! Invariant: a [`PortMapping`] names exactly one container port; a short-syntax
//! range (`9090-9091:8080-8081`) expands to one mapping per port, as
//! `docker compose config` does. `published` stays text because a single container
//! port may be published on a host range (`8000-8010:80`).

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::flex::{self, Extensions, IntOrString};

/// One container port and how it is published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(extend("additionalProperties" = false, "patternProperties" = {"^x-": {}}))]
pub struct PortMapping {
    /// Human-readable name of the mapping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `ingress` (default) or `host`.
    #[serde(default = "default_mode")]
    pub mode: String,
    /// Host address to bind, all addresses when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    /// Port inside the container.
    #[serde(deserialize_with = "target_port")]
    #[schemars(with = "IntOrString")]
    pub target: u16,
    /// Host port or host port range; an ephemeral port when absent.
    #[serde(
        default,
        deserialize_with = "flex::opt_text",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<IntOrString>")]
    pub published: Option<String>,
    /// `tcp` (default), `udp` or `sctp`.
    #[serde(default = "default_protocol")]
    pub protocol: String,
    /// Application protocol hint (`http`, `grpc`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
    /// `x-*` extension fields.
    #[serde(flatten, deserialize_with = "flex::extensions")]
    #[schemars(skip)]
    pub extensions: Extensions,
}

/// Why a short-syntax port could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid port {spec:?}: {reason}")]
pub struct PortError {
    /// The port as written.
    pub spec: String,
    /// What is wrong with it.
    pub reason: String,
}

fn default_mode() -> String {
    "ingress".to_string()
}

fn default_protocol() -> String {
    "tcp".to_string()
}

impl PortMapping {
    /// A TCP ingress mapping of `target`, unpublished.
    pub fn new(target: u16) -> Self {
        Self {
            name: None,
            mode: default_mode(),
            host_ip: None,
            target,
            published: None,
            protocol: default_protocol(),
            app_protocol: None,
            extensions: Extensions::new(),
        }
    }
}

/// An inclusive range of ports as written, with its text.
struct PortRange<'a> {
    text: &'a str,
    start: u16,
    end: u16,
}

impl PortRange<'_> {
    fn len(&self) -> u32 {
        u32::from(self.end - self.start) + 1
    }
}

/// Parses one short-syntax port, expanding ranges into one mapping per port.
pub fn parse_port(spec: &str) -> Result<Vec<PortMapping>, PortError> {
    let fail = |reason: String| PortError {
        spec: spec.to_string(),
        reason,
    };
    let (addr, protocol) = split_protocol(spec).map_err(fail)?;
    let (host_ip, host, container) = split_address(addr).map_err(fail)?;
    let container = parse_range(container, "container").map_err(fail)?;
    if container.start == 0 {
        return Err(fail("container port 0 is out of range".to_string()));
    }
    let host = host
        .map(|h| parse_range(h, "host"))
        .transpose()
        .map_err(fail)?;
    let published = published_ports(host.as_ref(), &container).map_err(fail)?;
    let mappings = (0..container.len())
        .zip(published)
        .map(|(i, published)| PortMapping {
            host_ip: host_ip.map(str::to_string),
            published,
            protocol: protocol.to_string(),
            ..PortMapping::new(container.start + i as u16)
        });
    Ok(mappings.collect())
}

/// Splits off `/proto`, defaulting to tcp.
fn split_protocol(spec: &str) -> Result<(&str, &str), String> {
    match spec.rsplit_once('/') {
        None => Ok((spec, "tcp")),
        Some((addr, proto @ ("tcp" | "udp" | "sctp"))) => Ok((addr, proto)),
        Some((_, proto)) => Err(format!(
            "unknown protocol {proto:?} (expected tcp, udp or sctp)"
        )),
    }
}

/// Host address, host port part and container port part.
type Address<'a> = (Option<&'a str>, Option<&'a str>, &'a str);

/// Splits `[IP:][HOST:]CONTAINER`, with IPv6 addresses in brackets.
fn split_address(addr: &str) -> Result<Address<'_>, String> {
    if let Some(bracketed) = addr.strip_prefix('[') {
        let (ip, rest) = bracketed
            .split_once(']')
            .ok_or("missing \"]\" after the ipv6 address")?;
        let rest = rest
            .strip_prefix(':')
            .ok_or("expected \":\" after the ipv6 address")?;
        let (host, container) = rest
            .split_once(':')
            .ok_or("expected HOST:CONTAINER after the ip address")?;
        return Ok((Some(ip), non_empty(host), container));
    }
    let parts: Vec<&str> = addr.split(':').collect();
    match parts[..] {
        [container] => Ok((None, None, container)),
        [host, container] => Ok((None, non_empty(host), container)),
        [ip, host, container] => Ok((non_empty(ip), non_empty(host), container)),
        _ => Err("too many colons".to_string()),
    }
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// Parses `N` or `N-M`.
fn parse_range<'a>(text: &'a str, what: &str) -> Result<PortRange<'a>, String> {
    if text.is_empty() {
        return Err(format!("missing {what} port"));
    }
    let (start, end) = text.split_once('-').unwrap_or((text, text));
    let (start, end) = (port_number(start)?, port_number(end)?);
    if end < start {
        return Err(format!("{what} range end {end} is before start {start}"));
    }
    Ok(PortRange { text, start, end })
}

/// Parses a single port number.
fn port_number(s: &str) -> Result<u16, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{s:?} is not a port number"));
    }
    s.parse()
        .map_err(|_| format!("port {s} is out of range (0-65535)"))
}

/// The published text of each container port.
fn published_ports(
    host: Option<&PortRange<'_>>,
    container: &PortRange<'_>,
) -> Result<Vec<Option<String>>, String> {
    let n = container.len();
    match host {
        None => Ok(vec![None; n as usize]),
        Some(h) if h.len() == n => Ok((0..n)
            .map(|i| Some((u32::from(h.start) + i).to_string()))
            .collect()),
        Some(h) if n == 1 => Ok(vec![Some(h.text.to_string())]),
        Some(h) => Err(format!(
            "host range has {} ports but container range has {n}",
            h.len()
        )),
    }
}

/// Reads the long form's `target`, a number or a numeric string.
fn target_port<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    flex::via(d, |v| {
        let text = flex::scalar_text(&v)?;
        port_number(&text).map_err(|reason| format!("invalid target port: {reason}"))
    })
}

/// Reads one item of `ports:`, short or long.
fn to_port_mappings(v: Value) -> Result<Vec<PortMapping>, String> {
    match v {
        Value::Number(n) => parse_port(&n.to_string()).map_err(|e| e.to_string()),
        Value::String(s) => parse_port(&s).map_err(|e| e.to_string()),
        v @ Value::Object(_) => flex::long_form(v).map(|p| vec![p]),
        other => Err(format!(
            "invalid port: expected a number, a string or a mapping, found {}",
            flex::kind(&other)
        )),
    }
}

/// Reads `ports:`, expanding ranges.
pub(crate) fn ports<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PortMapping>, D::Error> {
    flex::via(d, |v| match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => {
            let lists: Result<Vec<_>, _> = items.into_iter().map(to_port_mappings).collect();
            Ok(lists?.into_iter().flatten().collect())
        }
        other => Err(format!(
            "expected a list of ports, found {}",
            flex::kind(&other)
        )),
    })
}

/// Schema of `ports:`: numbers, short-syntax strings or long-form objects.
pub(crate) struct PortsSchema;

impl JsonSchema for PortsSchema {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Ports".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let long = generator.subschema_for::<PortMapping>();
        json_schema!({"type": "array", "items": {"oneOf": [{"type": "number"}, {"type": "string"}, long]}})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(spec: &str) -> PortMapping {
        let mut all = parse_port(spec).unwrap();
        assert_eq!(all.len(), 1, "{spec}");
        all.remove(0)
    }

    fn reason(spec: &str) -> String {
        parse_port(spec).unwrap_err().to_string()
    }

    #[test]
    fn a_bare_container_port_is_unpublished_tcp() {
        let p = one("80");
        assert_eq!(
            (p.target, p.published, p.protocol.as_str(), p.mode.as_str()),
            (80, None, "tcp", "ingress")
        );
    }

    #[test]
    fn host_ip_host_port_and_protocol_are_read() {
        let p = one("127.0.0.1:8080:80/udp");
        assert_eq!(p.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(p.published.as_deref(), Some("8080"));
        assert_eq!((p.target, p.protocol.as_str()), (80, "udp"));
        assert_eq!(one("8080:80").published.as_deref(), Some("8080"));
        assert_eq!(one("127.0.0.1::80").published, None);
    }

    #[test]
    fn bracketed_ipv6_host_addresses_are_read() {
        let p = one("[::1]:8080:80");
        assert_eq!(p.host_ip.as_deref(), Some("::1"));
        assert_eq!((p.published.as_deref(), p.target), (Some("8080"), 80));
    }

    #[test]
    fn ranges_expand_to_one_mapping_per_port() {
        let targets: Vec<u16> = parse_port("3000-3005")
            .unwrap()
            .iter()
            .map(|p| p.target)
            .collect();
        assert_eq!(targets, [3000, 3001, 3002, 3003, 3004, 3005]);
        let pairs: Vec<_> = parse_port("9090-9091:8080-8081")
            .unwrap()
            .into_iter()
            .map(|p| (p.published.unwrap(), p.target))
            .collect();
        assert_eq!(
            pairs,
            [("9090".to_string(), 8080), ("9091".to_string(), 8081)]
        );
        assert_eq!(one("8000-8010:80").published.as_deref(), Some("8000-8010"));
    }

    #[test]
    fn invalid_ports_say_exactly_what_is_wrong() {
        assert_eq!(
            reason("80:80:80:80"),
            r#"invalid port "80:80:80:80": too many colons"#
        );
        assert_eq!(
            reason("abc"),
            r#"invalid port "abc": "abc" is not a port number"#
        );
        assert_eq!(
            reason("3005-3000"),
            r#"invalid port "3005-3000": container range end 3000 is before start 3005"#
        );
        assert_eq!(
            reason("9090-9092:8080-8081"),
            r#"invalid port "9090-9092:8080-8081": host range has 3 ports but container range has 2"#
        );
        assert_eq!(
            reason("80/xyz"),
            r#"invalid port "80/xyz": unknown protocol "xyz" (expected tcp, udp or sctp)"#
        );
        assert_eq!(
            reason("70000"),
            r#"invalid port "70000": port 70000 is out of range (0-65535)"#
        );
        assert_eq!(
            reason("8080:"),
            r#"invalid port "8080:": missing container port"#
        );
    }

    #[derive(Debug, Deserialize)]
    struct Holder {
        #[serde(deserialize_with = "ports")]
        ports: Vec<PortMapping>,
    }

    #[test]
    fn the_ports_list_mixes_integers_strings_and_long_forms() {
        let input = json!({"ports": [80, "8080:81", {"target": "82", "published": 8082, "x-note": 1, "unknown": 2}]});
        let h: Holder = serde_json::from_value(input).unwrap();
        assert_eq!(h.ports.len(), 3);
        assert_eq!(h.ports[2].published.as_deref(), Some("8082"));
        assert_eq!(h.ports[2].extensions.keys().collect::<Vec<_>>(), ["x-note"]);
        let err = serde_json::from_value::<Holder>(json!({"ports": ["80:80:80:80"]})).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid port "80:80:80:80": too many colons"#
        );
    }

    #[test]
    fn port_mappings_serialize_like_compose_config() {
        let text = serde_json::to_value(one("127.0.0.1:8080:80")).unwrap();
        let want = json!({"mode": "ingress", "host_ip": "127.0.0.1", "target": 80, "published": "8080", "protocol": "tcp"});
        assert_eq!(text, want);
    }
}
