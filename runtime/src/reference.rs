//! Image references: `[registry[:port]/]repository[:tag][@digest]`, normalized
//! the way Docker does it.
//!
//! Invariants of a parsed [`Reference`]: the registry is never empty
//! (`docker.io` by default), a one-component Docker Hub repository gets the
//! `library/` prefix, and a reference without tag and digest gets tag `latest`.
//! Repository components are lowercase; tags and digests are checked for form.

use std::fmt;

/// Registry used when a reference names none.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// Tag used when a reference has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";

/// A normalized image reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Registry host, with port when given (`127.0.0.1:5000`).
    pub registry: String,
    /// Repository path (`library/busybox`).
    pub repository: String,
    /// Tag, when given (or defaulted).
    pub tag: Option<String>,
    /// Content digest (`sha256:…`), when given.
    pub digest: Option<String>,
}

/// Why a reference is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// Nothing to parse.
    #[error("empty image reference")]
    Empty,
    /// A repository path component breaks the naming rules.
    #[error(
        "invalid image reference {reference:?}: repository component {component:?} must be lowercase letters, digits and separators (. _ __ -)"
    )]
    Repository {
        /// The whole reference.
        reference: String,
        /// The offending component.
        component: String,
    },
    /// The tag breaks the tag rules.
    #[error(
        "invalid image reference {reference:?}: tag {tag:?} must be 1-128 of [A-Za-z0-9_.-], not starting with . or -"
    )]
    Tag {
        /// The whole reference.
        reference: String,
        /// The offending tag.
        tag: String,
    },
    /// The digest is not `algorithm:hex`.
    #[error(
        "invalid image reference {reference:?}: digest {digest:?} must be algorithm:hex (sha256 with 64 hex digits)"
    )]
    Digest {
        /// The whole reference.
        reference: String,
        /// The offending digest.
        digest: String,
    },
}

impl Reference {
    /// Parse and normalize `text`.
    pub fn parse(text: &str) -> Result<Reference, ReferenceError> {
        if text.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let (rest, digest) = match text.split_once('@') {
            Some((r, d)) => (r, Some(check_digest(text, d)?)),
            None => (text, None),
        };
        let (name, tag) = split_tag(rest);
        if let Some(t) = tag {
            check_tag(text, t)?;
        }
        let (registry, repository) = split_registry(name);
        for component in repository.split('/') {
            check_component(text, component)?;
        }
        let repository = match (registry.as_str(), repository.contains('/')) {
            (DEFAULT_REGISTRY, false) => format!("library/{repository}"),
            _ => repository.to_string(),
        };
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, None) => Some(DEFAULT_TAG.to_string()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// What to ask the registry for: the digest when pinned, else the tag.
    pub fn object(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or(DEFAULT_TAG)
    }

    /// Whether the registry is on the loopback interface (served over plain HTTP).
    pub fn is_loopback_registry(&self) -> bool {
        let host = self
            .registry
            .rsplit_once(':')
            .map_or(self.registry.as_str(), |(h, _)| h);
        host == "localhost" || host.starts_with("127.") || host == "[::1]"
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// `name[:tag]`, where a colon before the last `/` belongs to a registry port.
fn split_tag(rest: &str) -> (&str, Option<&str>) {
    match rest.rfind(':') {
        Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    }
}

/// The first component is a registry when it has a `.` or `:` or is `localhost`.
fn split_registry(name: &str) -> (String, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            let registry = if first == "index.docker.io" {
                DEFAULT_REGISTRY
            } else {
                first
            };
            (registry.to_string(), rest)
        }
        _ => (DEFAULT_REGISTRY.to_string(), name),
    }
}

fn check_component(reference: &str, component: &str) -> Result<(), ReferenceError> {
    let err = || ReferenceError::Repository {
        reference: reference.to_string(),
        component: component.to_string(),
    };
    let bytes = component.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(&bytes[0]) || !alnum(&bytes[bytes.len() - 1]) {
        return Err(err());
    }
    // Separators: one `.`, one or two `_`, or any number of `-`, between alphanumerics.
    for sep in component.split(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        let ok = sep.is_empty()
            || sep == "."
            || sep == "_"
            || sep == "__"
            || sep.bytes().all(|b| b == b'-');
        if !ok {
            return Err(err());
        }
    }
    Ok(())
}

fn check_tag(reference: &str, tag: &str) -> Result<(), ReferenceError> {
    let valid = (1..=128).contains(&tag.len())
        && !tag.starts_with(['.', '-'])
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(ReferenceError::Tag {
            reference: reference.to_string(),
            tag: tag.to_string(),
        })
    }
}

fn check_digest(reference: &str, digest: &str) -> Result<String, ReferenceError> {
    let err = || ReferenceError::Digest {
        reference: reference.to_string(),
        digest: digest.to_string(),
    };
    let (algo, hex) = digest.split_once(':').ok_or_else(err)?;
    let algo_ok = !algo.is_empty()
        && algo
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b));
    let hex_ok = hex.len() >= 32
        && hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    let sha_ok = algo != "sha256" || hex.len() == 64;
    if algo_ok && hex_ok && sha_ok {
        Ok(digest.to_string())
    } else {
        Err(err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn docker_hub_short_names_get_the_registry_library_and_latest() {
        assert_eq!(norm("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("nginx:1.27"), "docker.io/library/nginx:1.27");
        assert_eq!(norm("bitnami/redis"), "docker.io/bitnami/redis:latest");
        assert_eq!(
            norm("index.docker.io/library/alpine:3"),
            "docker.io/library/alpine:3"
        );
    }

    #[test]
    fn a_registry_port_is_not_mistaken_for_a_tag() {
        let r = Reference::parse("127.0.0.1:5000/rcompose/busybox").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "rcompose/busybox");
        assert_eq!(r.tag.as_deref(), Some("latest"));
        assert!(r.is_loopback_registry());
        assert_eq!(norm("localhost:5000/app:v2"), "localhost:5000/app:v2");
        assert_eq!(norm("localhost/app"), "localhost/app:latest");
    }

    #[test]
    fn a_digest_pins_the_image_and_suppresses_the_default_tag() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("busybox@{d}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.object(), d);
        let r = Reference::parse(&format!("busybox:1.36@{d}")).unwrap();
        assert_eq!(r.tag.as_deref(), Some("1.36"));
        assert_eq!(r.object(), d);
    }

    #[test]
    fn invalid_references_say_what_is_wrong() {
        assert_eq!(Reference::parse(""), Err(ReferenceError::Empty));
        let e = Reference::parse("Busybox").unwrap_err().to_string();
        assert!(e.contains("repository component \"Busybox\""), "{e}");
        let e = Reference::parse("busybox:-x").unwrap_err().to_string();
        assert!(e.contains("tag \"-x\""), "{e}");
        let e = Reference::parse("busybox@sha256:abc")
            .unwrap_err()
            .to_string();
        assert!(e.contains("digest \"sha256:abc\""), "{e}");
        assert!(Reference::parse("a..b").is_err());
        assert!(Reference::parse("a___b").is_err());
        assert!(Reference::parse("a__b-c--d").is_ok());
    }

    #[test]
    fn public_registries_are_not_loopback() {
        assert!(
            !Reference::parse("ghcr.io/o/app")
                .unwrap()
                .is_loopback_registry()
        );
        assert!(!Reference::parse("busybox").unwrap().is_loopback_registry());
    }
}
