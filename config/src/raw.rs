//! The TOML document as serde reads it, and the checks across keys that turn it into a
//! [`Config`].
//!
//! Single values are checked while deserializing (see [`crate::de`] and the value types), so
//! an error there is reported at the value. What depends on several keys (the port sections,
//! `dns.max_ttl >= dns.min_ttl`, rule names and rule fields against `proto`) is checked here,
//! on fields kept [`Spanned`] so the error still points at the right key.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use crate::cidr::Cidr;
use crate::de::{self, Bounded, List, Table, U32_MAX};
use crate::domain::DomainPattern;
use crate::duration::Duration;
use crate::error::{Located, position};
use crate::keyword::{Action, FqdnMatch, Proto, Side};
use crate::locate::KeyPath;
use crate::model::{
    Admin, Config, DefaultPolicy, Dns, Dpdk, Flows, L7, Metrics, Network, PortSpec, Ports, Rule,
};
use crate::port_range::PortRange;

/// The whole document.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawConfig {
    #[serde(default)]
    dpdk: Table<Dpdk>,
    #[serde(default)]
    ports: Table<RawPorts>,
    #[serde(default)]
    network: Table<Network>,
    #[serde(default)]
    flows: Table<Flows>,
    #[serde(default)]
    dns: Table<RawDns>,
    #[serde(default)]
    l7: Table<L7>,
    #[serde(default, deserialize_with = "de::list")]
    rule: Vec<RawRule>,
    #[serde(default)]
    default: Table<DefaultPolicy>,
    #[serde(default)]
    metrics: Table<Metrics>,
    #[serde(default)]
    admin: Table<Admin>,
}

/// `[ports]`: both sections are optional here so that a missing one gets its own message.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawPorts {
    inside: Option<Table<RawPort>>,
    outside: Option<Table<RawPort>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawPort {
    #[serde(deserialize_with = "de::device")]
    device: Spanned<String>,
}

/// `[dns]`: [`Dns`] with the TTLs spanned.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
struct RawDns {
    #[serde(deserialize_with = "de::ip_list")]
    trusted_servers: Vec<std::net::IpAddr>,
    min_ttl: Option<Spanned<Duration>>,
    max_ttl: Option<Spanned<Duration>>,
    #[serde(deserialize_with = "de::bounded::<_, _, 1, U32_MAX>")]
    max_ips_per_name: u32,
    #[serde(deserialize_with = "de::bounded::<_, _, 1, U32_MAX>")]
    max_names: u32,
    #[serde(deserialize_with = "de::bounded::<_, _, 1, U32_MAX>")]
    max_ips: u32,
    hold_responses: bool,
    #[serde(deserialize_with = "de::positive_duration")]
    hold_timeout: std::time::Duration,
    #[serde(deserialize_with = "de::optional_path")]
    cache_file: Option<PathBuf>,
    #[serde(deserialize_with = "de::positive_duration")]
    cache_interval: std::time::Duration,
    #[serde(deserialize_with = "de::bounded::<_, _, 1, 1024>")]
    max_queries_per_flow: u32,
    #[serde(deserialize_with = "de::bounded::<_, _, 0, 32>")]
    max_cname_chain: u32,
}

impl Default for RawDns {
    fn default() -> Self {
        let defaults = Dns::default();
        Self {
            trusted_servers: defaults.trusted_servers,
            min_ttl: None,
            max_ttl: None,
            max_ips_per_name: defaults.max_ips_per_name,
            max_names: defaults.max_names,
            max_ips: defaults.max_ips,
            hold_responses: defaults.hold_responses,
            hold_timeout: defaults.hold_timeout,
            cache_file: defaults.cache_file,
            cache_interval: defaults.cache_interval,
            max_queries_per_flow: defaults.max_queries_per_flow,
            max_cname_chain: defaults.max_cname_chain,
        }
    }
}

/// One `[[rule]]`. Match fields are `None` when absent; present but empty is an error.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawRule {
    #[serde(deserialize_with = "de::rule_name")]
    name: Spanned<String>,
    action: Action,
    #[serde(default)]
    from: Side,
    #[serde(default)]
    proto: Proto,
    src_cidr: Option<Spanned<List<Cidr>>>,
    dst_cidr: Option<Spanned<List<Cidr>>>,
    src_ports: Option<Spanned<List<PortRange>>>,
    dst_ports: Option<Spanned<List<PortRange>>>,
    icmp_types: Option<Spanned<List<Bounded<u8, 0, 255>>>>,
    dst_fqdn: Option<Spanned<List<DomainPattern>>>,
    fqdn_match: Option<Spanned<FqdnMatch>>,
}

impl RawConfig {
    /// Checks what spans several keys; `text` is the document, for rule line numbers.
    pub(crate) fn validate(self, text: &str) -> Result<Config, Located> {
        Ok(Config {
            ports: validate_ports(self.ports.0)?,
            dns: self.dns.0.validate()?,
            rules: validate_rules(self.rule, text)?,
            dpdk: self.dpdk.0,
            network: self.network.0,
            flows: self.flows.0,
            l7: self.l7.0,
            default: self.default.0,
            metrics: self.metrics.0,
            admin: self.admin.0,
        })
    }
}

/// Both port sections are present and name different devices.
fn validate_ports(ports: RawPorts) -> Result<Ports, Located> {
    let inside = ports.inside.map(|table| table.0).ok_or_else(|| {
        Located::new(
            0,
            "missing [ports.inside] (the inside port's device is required)",
        )
    })?;
    let outside = ports.outside.map(|table| table.0).ok_or_else(|| {
        Located::new(
            0,
            "missing [ports.outside] (the outside port's device is required)",
        )
    })?;
    if inside.device.get_ref() == outside.device.get_ref() {
        return Err(Located::new(
            outside.device.span().start,
            format!(
                "ports.outside.device: {:?} is also the inside port's device; the two ports must differ",
                outside.device.get_ref()
            ),
        ));
    }
    Ok(Ports {
        inside: PortSpec {
            device: inside.device.into_inner(),
        },
        outside: PortSpec {
            device: outside.device.into_inner(),
        },
    })
}

impl RawDns {
    /// `max_ttl` is positive and at least `min_ttl`.
    fn validate(self) -> Result<Dns, Located> {
        let defaults = Dns::default();
        let ttl = |written: &Option<Spanned<Duration>>, default| {
            written
                .as_ref()
                .map_or(default, |ttl| std::time::Duration::from(*ttl.get_ref()))
        };
        let min_ttl = ttl(&self.min_ttl, defaults.min_ttl);
        let max_ttl = ttl(&self.max_ttl, defaults.max_ttl);
        if let Some(max) = self.max_ttl.as_ref().filter(|max| max.get_ref().is_zero()) {
            return Err(Located::new(
                max.span().start,
                format!(
                    "dns.max_ttl: \"{}\" must be greater than zero",
                    max.get_ref()
                ),
            ));
        }
        if max_ttl < min_ttl {
            let (min, max) = (show(min_ttl), show(max_ttl));
            // The defaults are in order, so at least one of the two is written.
            return Err(match (&self.max_ttl, &self.min_ttl) {
                (Some(written), _) => Located::new(
                    written.span().start,
                    format!("dns.max_ttl: \"{max}\" is less than min_ttl \"{min}\""),
                ),
                (None, written) => Located::new(
                    written.as_ref().map_or(0, |written| written.span().start),
                    format!(
                        "dns.min_ttl: \"{min}\" is greater than max_ttl \"{max}\" (its default)"
                    ),
                ),
            });
        }
        Ok(Dns {
            trusted_servers: self.trusted_servers,
            min_ttl,
            max_ttl,
            max_ips_per_name: self.max_ips_per_name,
            max_names: self.max_names,
            max_ips: self.max_ips,
            hold_responses: self.hold_responses,
            hold_timeout: self.hold_timeout,
            cache_file: self.cache_file,
            cache_interval: self.cache_interval,
            max_queries_per_flow: self.max_queries_per_flow,
            max_cname_chain: self.max_cname_chain,
        })
    }
}

/// A whole-millisecond `std` duration in the configuration's notation.
fn show(duration: std::time::Duration) -> Duration {
    Duration::from_millis(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}

/// Validates each rule, then that names are unique.
fn validate_rules(raw: Vec<RawRule>, text: &str) -> Result<Vec<Rule>, Located> {
    let mut first_line: HashMap<String, usize> = HashMap::new();
    let mut rules = Vec::with_capacity(raw.len());
    for (index, raw) in raw.into_iter().enumerate() {
        let name_offset = raw.name.span().start;
        let rule = raw.validate(index, position(text, name_offset).0)?;
        if let Some(first) = first_line.get(&rule.name) {
            return Err(Located::new(
                name_offset,
                KeyPath::rule(index, Some(&rule.name)).message(format_args!(
                    "duplicate rule name (first defined at line {first})"
                )),
            ));
        }
        first_line.insert(rule.name.clone(), rule.line);
        rules.push(rule);
    }
    Ok(rules)
}

impl RawRule {
    /// Match fields are non-empty and fit `proto`; `fqdn_match` comes with `dst_fqdn`.
    fn validate(self, index: usize, line: usize) -> Result<Rule, Located> {
        let name = self.name.into_inner();
        let key = |key: &str| KeyPath::rule(index, Some(&name)).key(key);
        let proto = self.proto;

        if !matches!(proto, Proto::Tcp | Proto::Udp) {
            for (field, ports) in [
                ("src_ports", &self.src_ports),
                ("dst_ports", &self.dst_ports),
            ] {
                if let Some(ports) = ports {
                    return Err(Located::new(
                        ports.span().start,
                        key(field).message(format_args!(
                            "port matching needs proto \"tcp\" or \"udp\", not \"{proto}\""
                        )),
                    ));
                }
            }
        }
        if let Some(types) = &self.icmp_types {
            if !matches!(proto, Proto::Icmp | Proto::Icmpv6) {
                return Err(Located::new(
                    types.span().start,
                    key("icmp_types").message(format_args!(
                        "ICMP type matching needs proto \"icmp\" or \"icmpv6\", not \"{proto}\""
                    )),
                ));
            }
        }
        if let (Some(mode), None) = (&self.fqdn_match, &self.dst_fqdn) {
            return Err(Located::new(
                mode.span().start,
                key("fqdn_match").message(format_args!(
                    "\"{}\" is set but dst_fqdn is not; add dst_fqdn or remove fqdn_match",
                    mode.get_ref()
                )),
            ));
        }

        Ok(Rule {
            src_cidr: match_values(self.src_cidr, || key("src_cidr"))?,
            dst_cidr: match_values(self.dst_cidr, || key("dst_cidr"))?,
            src_ports: match_values(self.src_ports, || key("src_ports"))?,
            dst_ports: match_values(self.dst_ports, || key("dst_ports"))?,
            icmp_types: match_values(self.icmp_types, || key("icmp_types"))?
                .into_iter()
                .map(|icmp_type| icmp_type.0)
                .collect(),
            dst_fqdn: match_values(self.dst_fqdn, || key("dst_fqdn"))?,
            fqdn_match: self.fqdn_match.map(Spanned::into_inner).unwrap_or_default(),
            action: self.action,
            from: self.from,
            proto,
            line,
            name,
        })
    }
}

/// The values of an optional match field: none when absent; an empty array is an error.
fn match_values<T>(
    field: Option<Spanned<List<T>>>,
    key: impl FnOnce() -> KeyPath,
) -> Result<Vec<T>, Located> {
    let Some(field) = field else {
        return Ok(Vec::new());
    };
    if field.get_ref().0.is_empty() {
        return Err(Located::new(
            field.span().start,
            key().message("[] matches nothing; remove the key to match any"),
        ));
    }
    Ok(field.into_inner().0)
}
