//! Domain patterns of `dst_fqdn` (CONTRACT.md, "Domain patterns").
//!
//! `example.com` matches that name, `*.example.com` exactly one more label, `**.example.com` one
//! or more. Patterns are case-insensitive and a trailing dot is ignored: [`DomainPattern`] holds
//! the normalized form (lowercase, no trailing dot), which its `Display` prints. Names are in
//! A-label (punycode) form; non-ASCII is refused rather than converted.
//!
//! [`DomainPattern::matches`] is the reference semantics; the datapath builds its own matcher.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

/// Longest domain name, in characters, without the trailing dot.
const MAX_NAME_LEN: usize = 253;
/// Longest label, in characters.
const MAX_LABEL_LEN: usize = 63;

/// What a pattern's first label is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatternKind {
    /// No wildcard: the name itself.
    Exact,
    /// `*.suffix`: exactly one label before the suffix.
    OneLabel,
    /// `**.suffix`: one or more labels before the suffix.
    AnyLabels,
}

/// A validated, normalized domain pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DomainPattern {
    /// The normalized pattern, wildcard included.
    text: String,
    kind: PatternKind,
}

impl DomainPattern {
    /// Whether the pattern is exact or which wildcard it starts with.
    #[must_use]
    pub const fn kind(&self) -> PatternKind {
        self.kind
    }

    /// The name after the wildcard (`github.com` for `*.github.com`), or the whole name when
    /// the pattern is exact.
    #[must_use]
    pub fn suffix(&self) -> &str {
        let wildcard = match self.kind {
            PatternKind::Exact => 0,
            PatternKind::OneLabel => "*.".len(),
            PatternKind::AnyLabels => "**.".len(),
        };
        self.text.get(wildcard..).unwrap_or_default()
    }

    /// The normalized pattern, as `Display` prints it.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `name` matches. Like patterns, names compare case-insensitively and one
    /// trailing dot is ignored.
    #[must_use]
    pub fn matches(&self, name: &str) -> bool {
        let name = name.strip_suffix('.').unwrap_or(name).as_bytes();
        let suffix = self.suffix().as_bytes();
        if self.kind == PatternKind::Exact {
            return name.eq_ignore_ascii_case(suffix);
        }
        // name = head "." suffix, head non-empty
        let Some(head_len) = name.len().checked_sub(suffix.len() + 1) else {
            return false;
        };
        let (head, rest) = name.split_at(head_len);
        let one_label = !head.contains(&b'.');
        head_len > 0
            && rest.first() == Some(&b'.')
            && rest
                .get(1..)
                .is_some_and(|tail| tail.eq_ignore_ascii_case(suffix))
            && (self.kind == PatternKind::AnyLabels || one_label)
    }
}

/// Why a string is not a [`DomainPattern`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// Nothing but (at most) a dot.
    #[error("{0:?} is not a domain pattern: it is empty")]
    Empty(String),
    /// Non-ASCII characters: the name must be written in A-label form.
    #[error(
        "{0:?} is not a domain pattern: it has non-ASCII characters; write the name in its A-label (punycode) form, \"xn--...\""
    )]
    NonAscii(String),
    /// `*` or `**` alone.
    #[error(
        "{0:?} is not a domain pattern: a wildcard needs a domain after it, as in \"*.example.com\""
    )]
    WildcardOnly(String),
    /// `*` other than as the whole first label (`a.*.com`, `*a.com`, `***.com`).
    #[error(
        "{0:?} is not a domain pattern: \"*\" and \"**\" are allowed only as the whole first label"
    )]
    MisplacedWildcard(String),
    /// Two dots in a row, or a leading dot.
    #[error("{0:?} is not a domain pattern: it has an empty label")]
    EmptyLabel(String),
    /// A label longer than 63 characters.
    #[error("{input:?} is not a domain pattern: label {label:?} is longer than 63 characters")]
    LabelTooLong {
        /// The whole input.
        input: String,
        /// The label.
        label: String,
    },
    /// A label starting or ending with `-`.
    #[error("{input:?} is not a domain pattern: label {label:?} starts or ends with '-'")]
    Hyphen {
        /// The whole input.
        input: String,
        /// The label.
        label: String,
    },
    /// A character other than `a-z 0-9 - _`.
    #[error(
        "{input:?} is not a domain pattern: {character:?} is not allowed (use a-z, 0-9, '-', '_')"
    )]
    Character {
        /// The whole input.
        input: String,
        /// The first character not allowed.
        character: char,
    },
    /// More than 253 characters.
    #[error("{0:?} is not a domain pattern: it is longer than 253 characters")]
    TooLong(String),
}

impl FromStr for DomainPattern {
    type Err = PatternError;

    fn from_str(input: &str) -> Result<Self, PatternError> {
        let owned = || input.to_owned();
        if !input.is_ascii() {
            return Err(PatternError::NonAscii(owned()));
        }
        let text = input
            .strip_suffix('.')
            .unwrap_or(input)
            .to_ascii_lowercase();
        if text.is_empty() {
            return Err(PatternError::Empty(owned()));
        }
        let (kind, suffix) = match text.split_once('.') {
            Some(("*", suffix)) => (PatternKind::OneLabel, suffix),
            Some(("**", suffix)) => (PatternKind::AnyLabels, suffix),
            None if text == "*" || text == "**" => {
                return Err(PatternError::WildcardOnly(owned()));
            }
            _ => (PatternKind::Exact, text.as_str()),
        };
        for label in suffix.split('.') {
            check_label(input, label)?;
        }
        if text.len() > MAX_NAME_LEN {
            return Err(PatternError::TooLong(owned()));
        }
        Ok(Self { text, kind })
    }
}

/// Checks one label after the wildcard, if any.
fn check_label(input: &str, label: &str) -> Result<(), PatternError> {
    if label.is_empty() {
        return Err(PatternError::EmptyLabel(input.to_owned()));
    }
    if label.contains('*') {
        return Err(PatternError::MisplacedWildcard(input.to_owned()));
    }
    if let Some(character) = label
        .chars()
        .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '-' | '_'))
    {
        return Err(PatternError::Character {
            input: input.to_owned(),
            character,
        });
    }
    if label.len() > MAX_LABEL_LEN {
        return Err(PatternError::LabelTooLong {
            input: input.to_owned(),
            label: label.to_owned(),
        });
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(PatternError::Hyphen {
            input: input.to_owned(),
            label: label.to_owned(),
        });
    }
    Ok(())
}

impl fmt::Display for DomainPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for DomainPattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::de::parse_str(
            deserializer,
            "a domain pattern such as \"*.example.com\"",
            str::parse::<Self>,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> DomainPattern {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn parses_the_three_kinds() {
        let p = pattern("github.com");
        assert_eq!((p.kind(), p.suffix()), (PatternKind::Exact, "github.com"));
        let p = pattern("*.github.com");
        assert_eq!(
            (p.kind(), p.suffix()),
            (PatternKind::OneLabel, "github.com")
        );
        let p = pattern("**.githubusercontent.com");
        assert_eq!(
            (p.kind(), p.suffix()),
            (PatternKind::AnyLabels, "githubusercontent.com")
        );
        assert_eq!(pattern("com").suffix(), "com");
        assert_eq!(pattern("*.com").suffix(), "com");
        assert_eq!(pattern("_dmarc.example.com").suffix(), "_dmarc.example.com");
        assert_eq!(pattern("xn--bcher-kva.de").suffix(), "xn--bcher-kva.de");
    }

    #[test]
    fn normalizes_case_and_one_trailing_dot() {
        assert_eq!(pattern("GitHub.COM."), pattern("github.com"));
        assert_eq!(pattern("*.Example.Com.").to_string(), "*.example.com");
        assert!(matches!(
            "example.com..".parse::<DomainPattern>(),
            Err(PatternError::EmptyLabel(_))
        ));
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "example.com",
            "*.example.com",
            "**.a-b.example.co.uk",
            "a_b.c",
        ] {
            assert_eq!(pattern(text).to_string(), text);
            assert_eq!(pattern(&pattern(text).to_string()), pattern(text));
            assert_eq!(pattern(text).as_str(), text);
        }
    }

    /// The variant of `error`, to compare in tables.
    fn variant(error: &PatternError) -> &'static str {
        match error {
            PatternError::Empty(_) => "Empty",
            PatternError::NonAscii(_) => "NonAscii",
            PatternError::WildcardOnly(_) => "WildcardOnly",
            PatternError::MisplacedWildcard(_) => "MisplacedWildcard",
            PatternError::EmptyLabel(_) => "EmptyLabel",
            PatternError::LabelTooLong { .. } => "LabelTooLong",
            PatternError::Hyphen { .. } => "Hyphen",
            PatternError::Character { .. } => "Character",
            PatternError::TooLong(_) => "TooLong",
        }
    }

    #[test]
    fn rejects_each_invalid_form() {
        let ok_label = "a".repeat(63);
        let too_long = [ok_label.as_str(); 4].join(".");
        let cases = [
            ("a.*.com".to_owned(), "MisplacedWildcard"),
            ("*a.com".to_owned(), "MisplacedWildcard"),
            ("***.com".to_owned(), "MisplacedWildcard"),
            ("*.*.com".to_owned(), "MisplacedWildcard"),
            ("**.**.com".to_owned(), "MisplacedWildcard"),
            ("a.com.*".to_owned(), "MisplacedWildcard"),
            ("*".to_owned(), "WildcardOnly"),
            ("**".to_owned(), "WildcardOnly"),
            ("*.".to_owned(), "WildcardOnly"),
            ("bücher.de".to_owned(), "NonAscii"),
            (format!("{ok_label}a.com"), "LabelTooLong"),
            ("a..com".to_owned(), "EmptyLabel"),
            (".a.com".to_owned(), "EmptyLabel"),
            ("*..com".to_owned(), "EmptyLabel"),
            ("-a.com".to_owned(), "Hyphen"),
            ("a-.com".to_owned(), "Hyphen"),
            ("a b.com".to_owned(), "Character"),
            ("a/b.com".to_owned(), "Character"),
            ("".to_owned(), "Empty"),
            (".".to_owned(), "Empty"),
            (too_long.clone(), "TooLong"),
        ];
        for (text, expected) in cases {
            let error = text.parse::<DomainPattern>().unwrap_err();
            assert_eq!(variant(&error), expected, "{text:?}: {error}");
            assert!(
                error
                    .to_string()
                    .starts_with(&format!("{text:?} is not a domain pattern"))
            );
        }
        // 253 characters is the limit, not an error; 63-character labels are fine.
        assert_eq!(too_long.len(), 255);
        assert!(too_long[2..].parse::<DomainPattern>().is_ok());
        assert!(format!("{ok_label}.com").parse::<DomainPattern>().is_ok());
    }

    #[test]
    fn messages_tell_how_to_fix() {
        let message = |text: &str| text.parse::<DomainPattern>().unwrap_err().to_string();
        assert_eq!(
            message("a.*.com"),
            r#""a.*.com" is not a domain pattern: "*" and "**" are allowed only as the whole first label"#
        );
        assert!(message("bücher.de").contains("A-label (punycode)"));
        assert!(message("*").contains("needs a domain after it"));
    }

    #[test]
    fn exact_matches_only_the_name() {
        let p = pattern("example.com");
        assert!(p.matches("example.com"));
        assert!(p.matches("Example.COM."));
        assert!(!p.matches("a.example.com"));
        assert!(!p.matches("xexample.com"));
        assert!(!p.matches("example.co"));
        assert!(!p.matches(""));
    }

    #[test]
    fn one_label_wildcard_matches_exactly_one_more_label() {
        let p = pattern("*.example.com");
        assert!(!p.matches("example.com"));
        assert!(p.matches("a.example.com"));
        assert!(p.matches("A.Example.Com."));
        assert!(!p.matches("a.b.example.com"));
        assert!(!p.matches(".example.com"));
        assert!(!p.matches("aexample.com"));
        assert!(!p.matches("a.example.org"));
        assert!(!p.matches("com"));
    }

    #[test]
    fn any_labels_wildcard_matches_one_or_more_labels() {
        let p = pattern("**.example.com");
        assert!(!p.matches("example.com"));
        assert!(p.matches("a.example.com"));
        assert!(p.matches("a.b.example.com"));
        assert!(p.matches("x.y.z.EXAMPLE.com."));
        assert!(!p.matches(".example.com"));
        assert!(!p.matches("aexample.com"));
        assert!(!p.matches("a.example.com.evil"));
    }
}
