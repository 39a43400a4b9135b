//! Stop signals: which signal `stop` sends (configuration, then the image's
//! StopSignal, then SIGTERM) and parsing signal names the way Docker does
//! (`SIGTERM`, `TERM`, `term` or `15`).

use nix::sys::signal::Signal;
use oci_spec::image::Config as ImageConfig;

use super::SpecError;
use crate::config::ContainerConfig;

/// The stop signal's name as configured: `config.stop_signal`, else the
/// image's StopSignal, else `SIGTERM`. Parse it with [`parse_signal`].
pub fn stop_signal(config: &ContainerConfig, image: &ImageConfig) -> String {
    config
        .stop_signal
        .as_deref()
        .or(image.stop_signal().as_deref())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or("SIGTERM")
        .to_string()
}

/// Parses a signal name with or without its `SIG` prefix, in any case, or its
/// number.
pub fn parse_signal(name: &str) -> Result<Signal, SpecError> {
    let invalid = || SpecError::InvalidSignal(name.to_string());
    let trimmed = name.trim();
    if let Ok(number) = trimmed.parse::<i32>() {
        return Signal::try_from(number).map_err(|_| invalid());
    }
    let upper = trimmed.to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    full.parse().map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_by_full_name_short_name_or_number() {
        for name in ["SIGTERM", "TERM", "term", "15", " SIGTERM "] {
            assert_eq!(parse_signal(name).unwrap(), Signal::SIGTERM, "{name}");
        }
        assert_eq!(parse_signal("quit").unwrap(), Signal::SIGQUIT);
    }

    #[test]
    fn unknown_signals_are_rejected() {
        for name in ["SIGFOO", "0", "99", ""] {
            assert_eq!(
                parse_signal(name),
                Err(SpecError::InvalidSignal(name.to_string()))
            );
        }
    }

    #[test]
    fn stop_signal_prefers_config_then_image_then_sigterm() {
        let mut image = ImageConfig::default();
        let mut config = ContainerConfig::default();
        assert_eq!(stop_signal(&config, &image), "SIGTERM");
        image.set_stop_signal(Some("SIGQUIT".to_string()));
        assert_eq!(stop_signal(&config, &image), "SIGQUIT");
        config.stop_signal = Some("SIGINT".to_string());
        assert_eq!(stop_signal(&config, &image), "SIGINT");
    }
}
