//! Serde helpers shared by the configuration types: values parsed from TOML strings, integers
//! in a range, arrays, durations, paths and socket addresses.
//!
//! Errors returned here carry no position and no key: the TOML deserializer attaches the span
//! of the value being read, and `crate::locate` turns that span into the key path that
//! prefixes the message. So every message here starts with the offending value, quoted.

use std::fmt;
use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use toml::Spanned;

use crate::duration::Duration;

/// `u32::MAX` as the upper bound of a [`Bounded`] integer.
pub(crate) const U32_MAX: u64 = u32::MAX as u64;

/// Deserializes a TOML string with `parse`; any other TOML type is an "invalid type" error
/// that names `expecting`.
pub(crate) fn parse_str<'de, D, T, E>(
    deserializer: D,
    expecting: impl fmt::Display,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    E: fmt::Display,
{
    struct StrVisitor<X, F> {
        expecting: X,
        parse: F,
    }

    impl<'de, X, F, T, E> Visitor<'de> for StrVisitor<X, F>
    where
        X: fmt::Display,
        F: FnOnce(&str) -> Result<T, E>,
        E: fmt::Display,
    {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.expecting.fmt(f)
        }

        fn visit_str<Er: de::Error>(self, value: &str) -> Result<T, Er> {
            (self.parse)(value).map_err(Er::custom)
        }
    }

    deserializer.deserialize_str(StrVisitor { expecting, parse })
}

/// An integer in `MIN..=MAX`, converted to `T`.
#[derive(Debug)]
pub(crate) struct Bounded<T, const MIN: u64, const MAX: u64>(pub T);

impl<'de, T, const MIN: u64, const MAX: u64> Deserialize<'de> for Bounded<T, MIN, MAX>
where
    T: TryFrom<u64>,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BoundedVisitor<T, const MIN: u64, const MAX: u64>(PhantomData<T>);

        impl<T, const MIN: u64, const MAX: u64> BoundedVisitor<T, MIN, MAX> {
            fn out_of_range<E: de::Error>(value: impl fmt::Display) -> E {
                E::custom(format_args!("{value} is not between {MIN} and {MAX}"))
            }
        }

        impl<T, const MIN: u64, const MAX: u64> Visitor<'_> for BoundedVisitor<T, MIN, MAX>
        where
            T: TryFrom<u64>,
        {
            type Value = Bounded<T, MIN, MAX>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "an integer from {MIN} to {MAX}")
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
                if !(MIN..=MAX).contains(&value) {
                    return Err(Self::out_of_range(value));
                }
                T::try_from(value)
                    .map(Bounded)
                    .map_err(|_| Self::out_of_range(value))
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
                match u64::try_from(value) {
                    Ok(value) => self.visit_u64(value),
                    Err(_) => Err(Self::out_of_range(value)),
                }
            }

            fn visit_i128<E: de::Error>(self, value: i128) -> Result<Self::Value, E> {
                Err(Self::out_of_range(value))
            }

            fn visit_u128<E: de::Error>(self, value: u128) -> Result<Self::Value, E> {
                Err(Self::out_of_range(value))
            }
        }

        deserializer.deserialize_u64(BoundedVisitor::<T, MIN, MAX>(PhantomData))
    }
}

/// `deserialize_with` form of [`Bounded`].
pub(crate) fn bounded<'de, D, T, const MIN: u64, const MAX: u64>(
    deserializer: D,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    Bounded::<T, MIN, MAX>::deserialize(deserializer).map(|bounded| bounded.0)
}

/// A TOML table deserialized as `T`. Derived struct impls also accept an array of the field
/// values in order, which would turn `[[dpdk]]` into a confusing message about `eal_args`.
#[derive(Debug, Default)]
pub(crate) struct Table<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Table<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TableVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for TableVisitor<T> {
            type Value = Table<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(Table)
            }
        }

        deserializer.deserialize_map(TableVisitor(PhantomData))
    }
}

/// A TOML array. Serde's own `Vec` would call it "a sequence" in messages.
#[derive(Debug)]
pub(crate) struct List<T>(pub Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ListVisitor<T> {
            type Value = List<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(List(items))
            }
        }

        deserializer.deserialize_seq(ListVisitor(PhantomData))
    }
}

/// `deserialize_with` form of [`List`].
pub(crate) fn list<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    List::deserialize(deserializer).map(|list| list.0)
}

/// An array of IP addresses, each quoted in its error message.
pub(crate) fn ip_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<IpAddr>, D::Error> {
    struct Ip(IpAddr);

    impl<'de> Deserialize<'de> for Ip {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            parse_str(
                deserializer,
                "an IP address such as \"192.0.2.53\"",
                |text| {
                    text.parse()
                        .map(Ip)
                        .map_err(|_| format!("{text:?} is not an IP address"))
                },
            )
        }
    }

    let ips: Vec<Ip> = list(deserializer)?;
    Ok(ips.into_iter().map(|ip| ip.0).collect())
}

/// A socket address such as `127.0.0.1:9469` or `[::1]:9469`.
pub(crate) fn socket_addr<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<SocketAddr, D::Error> {
    const EXAMPLES: &str = r#"such as "127.0.0.1:9469" or "[::1]:9469""#;
    parse_str(
        deserializer,
        "an address such as \"127.0.0.1:9469\"",
        |text| {
            text.parse()
                .map_err(|_| format!("{text:?} is not an IP address and port ({EXAMPLES})"))
        },
    )
}

/// A non-empty path.
pub(crate) fn path<'de, D: Deserializer<'de>>(deserializer: D) -> Result<PathBuf, D::Error> {
    parse_str(deserializer, "a path", |text| {
        if text.is_empty() {
            Err("empty string; expected a path")
        } else {
            Ok(PathBuf::from(text))
        }
    })
}

/// A path, or the empty string for none.
pub(crate) fn optional_path<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<PathBuf>, D::Error> {
    parse_str(deserializer, "a path, or \"\" for none", |text| {
        Ok::<_, String>((!text.is_empty()).then(|| PathBuf::from(text)))
    })
}

/// A DPDK device name or PCI address: any non-empty string (DPDK checks it when probing).
pub(crate) fn device<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Spanned<String>, D::Error> {
    let device = Spanned::<String>::deserialize(deserializer)?;
    if device.get_ref().is_empty() {
        return Err(de::Error::custom(
            "empty string; expected a DPDK device name or PCI address",
        ));
    }
    Ok(device)
}

/// A duration greater than zero.
pub(crate) fn positive_duration<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<std::time::Duration, D::Error> {
    parse_str(deserializer, Duration::EXPECTING, |text| {
        let duration: Duration = text.parse().map_err(|error| format!("{error}"))?;
        if duration.is_zero() {
            return Err(format!("{text:?} must be greater than zero"));
        }
        Ok(duration.into())
    })
}

/// Whether `name` is a valid rule name: 1 to 64 characters of `A-Z a-z 0-9 _ . -`.
pub(crate) fn is_rule_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// A rule name (see [`is_rule_name`]), with its span for duplicate detection.
pub(crate) fn rule_name<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Spanned<String>, D::Error> {
    let name = Spanned::<String>::deserialize(deserializer)?;
    if !is_rule_name(name.get_ref()) {
        return Err(de::Error::custom(format_args!(
            "{:?} is not a valid rule name (use 1 to 64 characters of A-Z, a-z, 0-9, '_', '.', '-')",
            name.get_ref()
        )));
    }
    Ok(name)
}
