//! ferrowall's configuration: parses and validates the TOML file described in CONTRACT.md
//! ("Configuration (TOML)") into the typed [`Config`] the rest of ferrowall reads.
//!
//! [`load`] reads a file, [`parse`] a string. Either returns a [`ConfigError`] that displays as
//! `FILE:LINE:COL: message`, the message naming the key (`flows.udp_timeout`,
//! `rule "dns": dst_cidr`) and quoting the bad value. Every table refuses unknown keys.
//!
//! Parsing goes in three steps: the TOML syntax (`toml::de::DeTable`); serde into the `raw`
//! mirror of the document, checking each value on its own; then `RawConfig::validate` for what
//! spans several keys. The deserializer reports errors at the span of the value, which `locate`
//! turns back into a key path.
//!
//! The value types ([`Duration`], [`Cidr`], [`PortRange`], [`DomainPattern`] and the keyword
//! enums) implement `FromStr`, a `Display` that parses back to the same value, and
//! `Deserialize`.

mod cidr;
mod de;
mod domain;
mod duration;
mod error;
mod keyword;
mod locate;
mod model;
mod port_range;
mod raw;

use std::path::Path;

use serde::Deserialize;

pub use cidr::{Cidr, CidrError};
pub use domain::{DomainPattern, PatternError, PatternKind};
pub use duration::{Duration, DurationError};
pub use error::ConfigError;
pub use keyword::{Action, Ech, FqdnMatch, KeywordError, Proto, Side};
pub use model::{
    Admin, Config, DefaultPolicy, Dns, Dpdk, Flows, L7, Metrics, Network, PortSpec, Ports, Rule,
};
pub use port_range::{PortRange, PortRangeError};

use error::Located;

/// Reads and validates the configuration file at `path`.
///
/// # Errors
///
/// [`ConfigError::Read`] when the file cannot be read, [`ConfigError::Invalid`] when it is not
/// a valid configuration.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let origin = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, &origin),
        Err(error) => Err(ConfigError::Read {
            file: origin,
            error,
        }),
    }
}

/// Parses and validates configuration `text`; `origin` is the file name used in messages.
///
/// # Errors
///
/// [`ConfigError::Invalid`] at the first problem found.
pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
    let invalid = |located| ConfigError::invalid(origin, text, located);
    let doc = toml::de::DeTable::parse(text).map_err(|error| {
        invalid(Located::new(
            error.span().map_or(0, |span| span.start),
            format!("TOML syntax: {}", error.message()),
        ))
    })?;
    let raw = raw::RawConfig::deserialize(toml::de::Deserializer::from(doc.clone()))
        .map_err(|error| invalid(locate::explain(doc.get_ref(), &error)))?;
    raw.validate(text).map_err(invalid)
}
