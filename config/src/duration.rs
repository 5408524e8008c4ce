//! Durations as the configuration writes them: `"100ms"`, `"30s"`, `"2h"`, `"1h30m"`.
//!
//! Grammar: one or more `<digits><unit>` segments with no spaces, units `ms`, `s`, `m`, `h`, `d`;
//! the segments add up (`"1h30m"` is 90 minutes). A bare number is an error, so is a total
//! beyond 2^64 milliseconds. Values are whole milliseconds, which is what makes [`Duration`]'s
//! `Display` exact: it prints the largest units first and parses back to the same value.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

/// Units from the largest down, with their length in milliseconds.
const UNITS: [(&str, u64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// A duration written in the configuration: a whole number of milliseconds.
///
/// Sections store `std::time::Duration`; this type is the parser and printer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration {
    millis: u64,
}

impl Duration {
    /// What a duration looks like, for "invalid type" messages.
    pub(crate) const EXPECTING: &'static str = "a duration such as \"30s\" or \"2h\"";

    /// A duration of `millis` milliseconds.
    #[must_use]
    pub const fn from_millis(millis: u64) -> Self {
        Self { millis }
    }

    /// The length in milliseconds.
    #[must_use]
    pub const fn as_millis(self) -> u64 {
        self.millis
    }

    /// Whether this is zero.
    #[must_use]
    pub const fn is_zero(self) -> bool {
        self.millis == 0
    }
}

impl From<Duration> for std::time::Duration {
    fn from(duration: Duration) -> Self {
        Self::from_millis(duration.millis)
    }
}

/// Why a string is not a [`Duration`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not a sequence of `<digits><unit>` segments.
    #[error(
        "{0:?} is not a duration (use a number and a unit: ms, s, m, h, d, e.g. \"30s\", \"2h\")"
    )]
    Syntax(String),
    /// The total exceeds 2^64 milliseconds.
    #[error("{0:?} is too long a duration")]
    Overflow(String),
}

impl FromStr for Duration {
    type Err = DurationError;

    fn from_str(text: &str) -> Result<Self, DurationError> {
        let syntax = || DurationError::Syntax(text.to_owned());
        let overflow = || DurationError::Overflow(text.to_owned());
        if text.is_empty() {
            return Err(syntax());
        }
        let mut millis: u64 = 0;
        let mut rest = text;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            let (number, after) = rest.split_at(digits);
            let letters = after
                .find(|c: char| !c.is_ascii_alphabetic())
                .unwrap_or(after.len());
            let (unit, after) = after.split_at(letters);
            let unit_millis = UNITS
                .iter()
                .find(|(name, _)| *name == unit)
                .map(|(_, unit_millis)| *unit_millis)
                .ok_or_else(syntax)?;
            if number.is_empty() {
                return Err(syntax());
            }
            // `number` is all digits, so parsing fails only on overflow.
            let count: u64 = number.parse().map_err(|_| overflow())?;
            millis = count
                .checked_mul(unit_millis)
                .and_then(|segment| millis.checked_add(segment))
                .ok_or_else(overflow)?;
            rest = after;
        }
        Ok(Self { millis })
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.millis == 0 {
            return f.write_str("0s");
        }
        let mut rest = self.millis;
        for (unit, unit_millis) in UNITS {
            let count = rest / unit_millis;
            if count > 0 {
                write!(f, "{count}{unit}")?;
                rest %= unit_millis;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::de::parse_str(deserializer, Self::EXPECTING, str::parse::<Self>)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<u64, DurationError> {
        text.parse::<Duration>().map(Duration::as_millis)
    }

    #[test]
    fn parses_each_unit_and_sums_segments() {
        assert_eq!(parse("100ms"), Ok(100));
        assert_eq!(parse("30s"), Ok(30_000));
        assert_eq!(parse("2m"), Ok(120_000));
        assert_eq!(parse("2h"), Ok(7_200_000));
        assert_eq!(parse("1d"), Ok(86_400_000));
        assert_eq!(parse("1h30m"), Ok(5_400_000));
        assert_eq!(parse("1s500ms"), Ok(1_500));
        assert_eq!(parse("0s"), Ok(0));
        assert_eq!(parse("007s"), Ok(7_000));
    }

    #[test]
    fn rejects_everything_else() {
        for text in [
            "", "60", "s", "60 sec", "60sec", " 60s", "60s ", "1h 30m", "-5s", "+5s", "1.5s", "5S",
            "5us", "1h30", "h1",
        ] {
            assert_eq!(
                parse(text),
                Err(DurationError::Syntax(text.to_owned())),
                "{text:?}"
            );
        }
    }

    #[test]
    fn overflow_is_an_error() {
        let max = u64::MAX;
        assert_eq!(parse(&format!("{max}ms")), Ok(max));
        for text in [
            format!("{max}s"),
            format!("{max}ms1ms"),
            "99999999999999999999999ms".to_owned(),
        ] {
            assert_eq!(parse(&text), Err(DurationError::Overflow(text.clone())));
        }
    }

    #[test]
    fn display_prints_largest_units_first_and_round_trips() {
        for (millis, text) in [
            (0, "0s"),
            (100, "100ms"),
            (60_000, "1m"),
            (5_400_000, "1h30m"),
            (90_061_001, "1d1h1m1s1ms"),
            (86_400_000 * 365, "365d"),
        ] {
            let duration = Duration::from_millis(millis);
            assert_eq!(duration.to_string(), text);
            assert_eq!(text.parse(), Ok(duration));
        }
        assert_eq!(
            "90m".parse::<Duration>().map(|d| d.to_string()),
            Ok("1h30m".to_owned())
        );
    }

    #[test]
    fn messages_quote_the_input() {
        assert_eq!(
            DurationError::Syntax("60 sec".to_owned()).to_string(),
            r#""60 sec" is not a duration (use a number and a unit: ms, s, m, h, d, e.g. "30s", "2h")"#
        );
    }

    #[test]
    fn converts_to_std() {
        let std: std::time::Duration = Duration::from_millis(1_500).into();
        assert_eq!(std, std::time::Duration::from_millis(1_500));
    }
}
