//! IP networks in CIDR notation: `"10.0.0.0/8"`, `"fd00::/8"`, or a bare address for a single
//! host (`/32` or `/128`).
//!
//! Invariant: a [`Cidr`]'s prefix fits its family and its address has no bits set past the
//! prefix, so two equal networks compare equal and `Display` is canonical.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

/// An IPv4 or IPv6 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The network `addr/prefix`, or `None` when the prefix is longer than the address or
    /// `addr` has host bits set.
    #[must_use]
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Self> {
        (prefix <= max_prefix(addr) && network(addr, prefix) == addr)
            .then_some(Self { addr, prefix })
    }

    /// The network address (host bits zero).
    #[must_use]
    pub const fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length: 0..=32 for IPv4, 0..=128 for IPv6.
    #[must_use]
    pub const fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` is in this network; always false across address families.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                u32::from(ip) & mask_v4(self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                u128::from(ip) & mask_v6(self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

const fn max_prefix(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// `addr` with the bits past `prefix` cleared.
fn network(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask_v4(prefix))),
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask_v6(prefix))),
    }
}

/// The IPv4 netmask of `prefix` bits (all ones past 32).
fn mask_v4(prefix: u8) -> u32 {
    u32::MAX
        .checked_shl(32_u32.saturating_sub(u32::from(prefix)))
        .unwrap_or(0)
}

/// The IPv6 netmask of `prefix` bits (all ones past 128).
fn mask_v6(prefix: u8) -> u128 {
    u128::MAX
        .checked_shl(128_u32.saturating_sub(u32::from(prefix)))
        .unwrap_or(0)
}

/// Why a string is not a [`Cidr`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// The part before `/` is not an IP address.
    #[error("{input:?} is not a CIDR: {addr:?} is not an IP address")]
    Address {
        /// The whole input.
        input: String,
        /// The address part.
        addr: String,
    },
    /// The part after `/` is not a decimal number.
    #[error("{input:?} is not a CIDR: prefix length {prefix:?} is not a number")]
    PrefixSyntax {
        /// The whole input.
        input: String,
        /// The prefix part.
        prefix: String,
    },
    /// The prefix is longer than the address.
    #[error("{input:?} is not a CIDR: prefix length {prefix} exceeds {max}")]
    PrefixTooLong {
        /// The whole input.
        input: String,
        /// The prefix part, all digits.
        prefix: String,
        /// 32 or 128.
        max: u8,
    },
    /// The address has bits set past the prefix.
    #[error("{input:?} has host bits set; did you mean \"{network}\"?")]
    HostBits {
        /// The whole input.
        input: String,
        /// The network the input is probably meant to be.
        network: Cidr,
    },
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(input: &str) -> Result<Self, CidrError> {
        let (addr_text, prefix_text) = match input.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (input, None),
        };
        let addr: IpAddr = addr_text.parse().map_err(|_| CidrError::Address {
            input: input.to_owned(),
            addr: addr_text.to_owned(),
        })?;
        let max = max_prefix(addr);
        let prefix = match prefix_text {
            None => max,
            Some(text) => {
                if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(CidrError::PrefixSyntax {
                        input: input.to_owned(),
                        prefix: text.to_owned(),
                    });
                }
                match text.parse::<u8>() {
                    Ok(prefix) if prefix <= max => prefix,
                    _ => {
                        return Err(CidrError::PrefixTooLong {
                            input: input.to_owned(),
                            prefix: text.to_owned(),
                            max,
                        });
                    }
                }
            }
        };
        let network = network(addr, prefix);
        if network != addr {
            return Err(CidrError::HostBits {
                input: input.to_owned(),
                network: Self {
                    addr: network,
                    prefix,
                },
            });
        }
        Ok(Self { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::de::parse_str(
            deserializer,
            "a CIDR such as \"10.0.0.0/8\"",
            str::parse::<Self>,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(text: &str) -> Cidr {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn parses_networks_and_bare_addresses() {
        let net = cidr("10.0.0.0/8");
        assert_eq!((net.addr(), net.prefix()), (ip("10.0.0.0"), 8));
        let net = cidr("fd00::/8");
        assert_eq!((net.addr(), net.prefix()), (ip("fd00::"), 8));
        assert_eq!(cidr("192.0.2.53").prefix(), 32);
        assert_eq!(cidr("2001:db8::53").prefix(), 128);
        assert_eq!(cidr("0.0.0.0/0").prefix(), 0);
        assert_eq!(cidr("::/0").prefix(), 0);
        assert_eq!(cidr("10.0.0.0/08"), cidr("10.0.0.0/8"));
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "10.0.0.0/8",
            "192.0.2.53/32",
            "0.0.0.0/0",
            "fd00::/8",
            "2001:db8::53/128",
            "::/0",
        ] {
            assert_eq!(cidr(text).to_string(), text);
            assert_eq!(cidr(&cidr(text).to_string()), cidr(text));
        }
        assert_eq!(cidr("192.0.2.53").to_string(), "192.0.2.53/32");
        assert_eq!(cidr("2001:DB8:0::/32").to_string(), "2001:db8::/32");
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let message = |text: &str| text.parse::<Cidr>().unwrap_err().to_string();
        assert_eq!(
            message("10.0.0.1/33"),
            r#""10.0.0.1/33" is not a CIDR: prefix length 33 exceeds 32"#
        );
        assert_eq!(
            message("fd00::/129"),
            r#""fd00::/129" is not a CIDR: prefix length 129 exceeds 128"#
        );
        assert_eq!(
            message("10.0.0.0/999"),
            r#""10.0.0.0/999" is not a CIDR: prefix length 999 exceeds 32"#
        );
        assert_eq!(
            message("10.0.0.1/8"),
            r#""10.0.0.1/8" has host bits set; did you mean "10.0.0.0/8"?"#
        );
        assert_eq!(
            message("fd00::1/8"),
            r#""fd00::1/8" has host bits set; did you mean "fd00::/8"?"#
        );
        assert_eq!(
            message("10.0.0.256/8"),
            r#""10.0.0.256/8" is not a CIDR: "10.0.0.256" is not an IP address"#
        );
        assert_eq!(
            message("10.0.0.0/"),
            r#""10.0.0.0/" is not a CIDR: prefix length "" is not a number"#
        );
        assert_eq!(
            message("10.0.0.0/+8"),
            r#""10.0.0.0/+8" is not a CIDR: prefix length "+8" is not a number"#
        );
        assert!(message("").contains("is not an IP address"));
        assert!(message("10.0.0.0/8/8").contains("is not a number"));
    }

    #[test]
    fn contains_checks_the_prefix_bits() {
        let net = cidr("10.1.0.0/16");
        assert!(net.contains(ip("10.1.0.0")));
        assert!(net.contains(ip("10.1.255.255")));
        assert!(!net.contains(ip("10.2.0.0")));
        assert!(!net.contains(ip("10.0.255.255")));
        assert!(cidr("0.0.0.0/0").contains(ip("255.255.255.255")));
        assert!(cidr("192.0.2.53").contains(ip("192.0.2.53")));
        assert!(!cidr("192.0.2.53").contains(ip("192.0.2.54")));

        let net6 = cidr("fd00::/8");
        assert!(net6.contains(ip("fd12::1")));
        assert!(!net6.contains(ip("fe00::1")));
        assert!(cidr("::/0").contains(ip("2001:db8::1")));
    }

    #[test]
    fn contains_is_false_across_families() {
        assert!(!cidr("0.0.0.0/0").contains(ip("::1")));
        assert!(!cidr("::/0").contains(ip("10.0.0.1")));
        assert!(!cidr("::ffff:0:0/96").contains(ip("10.0.0.1")));
    }

    #[test]
    fn new_keeps_the_invariant() {
        assert_eq!(Cidr::new(ip("10.0.0.0"), 8), Some(cidr("10.0.0.0/8")));
        assert_eq!(Cidr::new(ip("10.0.0.1"), 8), None);
        assert_eq!(Cidr::new(ip("10.0.0.0"), 33), None);
        assert_eq!(Cidr::new(ip("::"), 128), Some(cidr("::/128")));
    }
}
