//! The configuration's keyword values: actions, sides, protocols, `fqdn_match` modes and the
//! ECH policy. Each is a lowercase word matched exactly; anything else is an error listing the
//! allowed words.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

/// A string that is none of a keyword type's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not {}", OneOf(self.expected))]
pub struct KeywordError {
    value: String,
    expected: &'static [&'static str],
}

impl KeywordError {
    /// The string that was given.
    #[must_use]
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The values allowed.
    #[must_use]
    pub const fn expected(&self) -> &'static [&'static str] {
        self.expected
    }
}

/// Displays as `one of: a, b, c`.
struct OneOf(&'static [&'static str]);

impl fmt::Display for OneOf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "one of: {}", self.0.join(", "))
    }
}

/// Defines a keyword enum with `as_str`, `FromStr`, `Display` and `Deserialize`.
macro_rules! keyword {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$variant_meta])* $variant, )+
        }

        impl $name {
            /// Every keyword, in documentation order.
            pub const KEYWORDS: &'static [&'static str] = &[$($text),+];

            /// The keyword as the configuration writes it.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $text, )+
                }
            }
        }

        impl FromStr for $name {
            type Err = KeywordError;

            fn from_str(value: &str) -> Result<Self, KeywordError> {
                match value {
                    $( $text => Ok(Self::$variant), )+
                    _ => Err(KeywordError { value: value.to_owned(), expected: Self::KEYWORDS }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                crate::de::parse_str(deserializer, OneOf(Self::KEYWORDS), str::parse::<Self>)
            }
        }
    };
}

keyword! {
    /// What a rule, or the default policy, does with a new flow.
    pub enum Action {
        /// Let the flow through.
        Allow => "allow",
        /// Drop it silently.
        Drop => "drop",
        /// Drop it and answer with a TCP RST or an ICMP unreachable.
        Reject => "reject",
    }
}

keyword! {
    /// The port on which a flow is opened (its first packet arrives).
    #[derive(Default)]
    pub enum Side {
        /// The inside port.
        Inside => "inside",
        /// The outside port.
        Outside => "outside",
        /// Either port (the default).
        #[default]
        Any => "any",
    }
}

keyword! {
    /// The IP protocol a rule matches.
    #[derive(Default)]
    pub enum Proto {
        /// TCP.
        Tcp => "tcp",
        /// UDP.
        Udp => "udp",
        /// ICMP (IPv4).
        Icmp => "icmp",
        /// ICMPv6.
        Icmpv6 => "icmpv6",
        /// Any protocol (the default).
        #[default]
        Any => "any",
    }
}

keyword! {
    /// How a rule's `dst_fqdn` patterns are matched (CONTRACT.md, "`fqdn_match`").
    #[derive(Default)]
    pub enum FqdnMatch {
        /// The destination IP was learned from a DNS answer for a matching name (the default).
        #[default]
        Dns => "dns",
        /// The name the client sends (TLS or QUIC SNI, HTTP Host) matches.
        Sni => "sni",
        /// Both.
        DnsSni => "dns+sni",
    }
}

keyword! {
    /// What to do with ClientHellos that carry `encrypted_client_hello`.
    #[derive(Default)]
    pub enum Ech {
        /// Treat them like any other (the default).
        #[default]
        Allow => "allow",
        /// Drop the flow.
        Drop => "drop",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_keyword_round_trips() {
        for text in Action::KEYWORDS {
            assert_eq!(text.parse::<Action>().map(Action::as_str), Ok(*text));
        }
        for text in Side::KEYWORDS {
            assert_eq!(
                text.parse::<Side>().map(|v| v.to_string()),
                Ok((*text).to_owned())
            );
        }
        for text in Proto::KEYWORDS {
            assert_eq!(text.parse::<Proto>().map(Proto::as_str), Ok(*text));
        }
        for text in FqdnMatch::KEYWORDS {
            assert_eq!(text.parse::<FqdnMatch>().map(FqdnMatch::as_str), Ok(*text));
        }
        for text in Ech::KEYWORDS {
            assert_eq!(text.parse::<Ech>().map(Ech::as_str), Ok(*text));
        }
        assert_eq!(FqdnMatch::DnsSni.as_str(), "dns+sni");
        assert_eq!(Proto::Icmpv6.to_string(), "icmpv6");
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        assert_eq!(Side::default(), Side::Any);
        assert_eq!(Proto::default(), Proto::Any);
        assert_eq!(FqdnMatch::default(), FqdnMatch::Dns);
        assert_eq!(Ech::default(), Ech::Allow);
    }

    #[test]
    fn anything_else_is_an_error_listing_the_values() {
        let error = "Allow".parse::<Action>().unwrap_err();
        assert_eq!(error.value(), "Allow");
        assert_eq!(error.expected(), ["allow", "drop", "reject"]);
        assert_eq!(
            error.to_string(),
            r#""Allow" is not one of: allow, drop, reject"#
        );
        assert!("dns sni".parse::<FqdnMatch>().is_err());
        assert!("".parse::<Proto>().is_err());
    }
}
