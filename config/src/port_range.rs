//! Port ranges as rules write them: `"443"`, `"8000-8080"`, or the TOML integer `443`.
//!
//! Invariant: `lo <= hi`. Port 0 is accepted (a rule may well want to match it).

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// An inclusive range of TCP or UDP ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    lo: u16,
    hi: u16,
}

impl PortRange {
    /// The ports `lo..=hi`, or `None` when `lo > hi`.
    #[must_use]
    pub const fn new(lo: u16, hi: u16) -> Option<Self> {
        if lo <= hi {
            Some(Self { lo, hi })
        } else {
            None
        }
    }

    /// The single port `port`.
    #[must_use]
    pub const fn single(port: u16) -> Self {
        Self { lo: port, hi: port }
    }

    /// The first port of the range.
    #[must_use]
    pub const fn lo(&self) -> u16 {
        self.lo
    }

    /// The last port of the range (inclusive).
    #[must_use]
    pub const fn hi(&self) -> u16 {
        self.hi
    }

    /// Whether `port` is in the range.
    #[must_use]
    pub const fn contains(&self, port: u16) -> bool {
        self.lo <= port && port <= self.hi
    }
}

/// Why a string is not a [`PortRange`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortRangeError {
    /// Not `N` or `N-M` with decimal numbers.
    #[error("{0:?} is not a port or port range (use \"443\" or \"8000-8080\")")]
    Syntax(String),
    /// A number above 65535.
    #[error("{input:?} is not a port range: {port} exceeds 65535")]
    TooLarge {
        /// The whole input.
        input: String,
        /// The number that is too large.
        port: String,
    },
    /// `lo-hi` with `lo > hi`.
    #[error("{input:?} is not a port range: {lo} is greater than {hi}")]
    Reversed {
        /// The whole input.
        input: String,
        /// The first number.
        lo: u16,
        /// The second number.
        hi: u16,
    },
}

impl FromStr for PortRange {
    type Err = PortRangeError;

    fn from_str(input: &str) -> Result<Self, PortRangeError> {
        let port = |text: &str| -> Result<u16, PortRangeError> {
            if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(PortRangeError::Syntax(input.to_owned()));
            }
            text.parse().map_err(|_| PortRangeError::TooLarge {
                input: input.to_owned(),
                port: text.to_owned(),
            })
        };
        match input.split_once('-') {
            None => port(input).map(Self::single),
            Some((lo, hi)) => {
                let (lo, hi) = (port(lo)?, port(hi)?);
                Self::new(lo, hi).ok_or_else(|| PortRangeError::Reversed {
                    input: input.to_owned(),
                    lo,
                    hi,
                })
            }
        }
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PortRangeVisitor;

        impl Visitor<'_> for PortRangeVisitor {
            type Value = PortRange;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port or port range such as \"443\" or \"8000-8080\"")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<PortRange, E> {
                value.parse().map_err(E::custom)
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<PortRange, E> {
                u16::try_from(value)
                    .map(PortRange::single)
                    .map_err(|_| E::custom(format_args!("{value} is not a port (0 to 65535)")))
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<PortRange, E> {
                u16::try_from(value)
                    .map(PortRange::single)
                    .map_err(|_| E::custom(format_args!("{value} is not a port (0 to 65535)")))
            }
        }

        deserializer.deserialize_any(PortRangeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(text: &str) -> PortRange {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn parses_single_ports_and_ranges() {
        assert_eq!(range("443"), PortRange::single(443));
        assert_eq!(range("8000-8080"), PortRange::new(8000, 8080).unwrap());
        assert_eq!(range("0"), PortRange::single(0));
        assert_eq!(range("0-65535"), PortRange::new(0, 65535).unwrap());
        assert_eq!(range("80-80"), PortRange::single(80));
    }

    #[test]
    fn display_round_trips() {
        for text in ["443", "8000-8080", "0-65535", "0"] {
            assert_eq!(range(text).to_string(), text);
        }
        assert_eq!(range("80-80").to_string(), "80");
        assert_eq!(range("0443").to_string(), "443");
    }

    #[test]
    fn rejects_bad_ranges() {
        let message = |text: &str| text.parse::<PortRange>().unwrap_err().to_string();
        assert_eq!(
            message("90-80"),
            r#""90-80" is not a port range: 90 is greater than 80"#
        );
        assert_eq!(
            message("70000"),
            r#""70000" is not a port range: 70000 exceeds 65535"#
        );
        assert_eq!(
            message("1-99999999999999999999"),
            r#""1-99999999999999999999" is not a port range: 99999999999999999999 exceeds 65535"#
        );
        for text in [
            "", "http", "-80", "80-", "1-2-3", " 80", "80 - 90", "+80", "80.5",
        ] {
            assert_eq!(
                text.parse::<PortRange>(),
                Err(PortRangeError::Syntax(text.to_owned())),
                "{text:?}"
            );
        }
        assert_eq!(PortRange::new(2, 1), None);
    }

    #[test]
    fn contains_is_inclusive() {
        let r = range("8000-8080");
        assert!(r.contains(8000));
        assert!(r.contains(8080));
        assert!(r.contains(8042));
        assert!(!r.contains(7999));
        assert!(!r.contains(8081));
        assert!(range("443").contains(443));
        assert!(!range("443").contains(444));
    }
}
