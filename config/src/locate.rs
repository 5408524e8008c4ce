//! Names the key behind a byte offset of the document, and rewrites the deserializer's errors
//! into messages that start with that key.
//!
//! The TOML deserializer reports an error at the span of the value (or, for an unknown key, the
//! key) being read, but its message names no key. The span is looked up in the parsed document
//! to find the key path, rendered as [`KeyPath`]: `flows.udp_timeout`, `rule "dns": dst_cidr`,
//! or `rule[2].name` for a rule without a valid name (rule indexes are 0-based).

use std::borrow::Cow;
use std::fmt;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::de::is_rule_name;
use crate::error::Located;

/// A key of the configuration, as messages name it.
#[derive(Debug, Default)]
pub(crate) struct KeyPath {
    text: String,
    /// Whether the path starts with a rule, so names its table `rule "x"` rather than `[x]`.
    in_rule: bool,
    /// Whether the last segment is `rule "x"`, after which the next key follows `: `.
    after_named_rule: bool,
}

impl KeyPath {
    /// The rule at `index` of `[[rule]]`, named `name` when it has a valid one.
    pub(crate) fn rule(index: usize, name: Option<&str>) -> Self {
        match name {
            Some(name) => Self {
                text: format!("rule {name:?}"),
                in_rule: true,
                after_named_rule: true,
            },
            None => Self {
                text: format!("rule[{index}]"),
                in_rule: true,
                after_named_rule: false,
            },
        }
    }

    /// This path followed by `key`.
    pub(crate) fn key(mut self, key: &str) -> Self {
        if self.after_named_rule {
            self.text.push_str(": ");
        } else if !self.text.is_empty() {
            self.text.push('.');
        }
        self.text.push_str(key);
        self.after_named_rule = false;
        self
    }

    /// This path followed by the array index `index`.
    fn index(mut self, index: usize) -> Self {
        self.text.push_str(&format!("[{index}]"));
        self.after_named_rule = false;
        self
    }

    /// `message` prefixed by this path, unless this is the top level.
    pub(crate) fn message(&self, message: impl fmt::Display) -> String {
        if self.text.is_empty() {
            message.to_string()
        } else {
            format!("{self}: {message}")
        }
    }

    /// Where a key of this table is: `at the top level`, `in [dpdk]`, `in rule "dns"`.
    fn table_description(&self) -> String {
        if self.text.is_empty() {
            "at the top level".to_owned()
        } else if self.in_rule {
            format!("in {self}")
        } else {
            format!("in [{self}]")
        }
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The message for a deserialization `error` of `doc`.
pub(crate) fn explain(doc: &DeTable<'_>, error: &toml::de::Error) -> Located {
    let offset = error.span().map_or(0, |span| span.start);
    let found = find(doc, offset);
    let message = error.message();

    let text = if message.starts_with("unknown field `") {
        // The span is the unknown key's own, so the document tells which table it is in.
        match found.key.as_deref().and_then(<[_]>::split_last) {
            Some((Segment::Key(key), table)) => unknown_key(doc, table, key, message),
            _ => message.to_owned(),
        }
    } else if let Some(field) = message.strip_prefix("missing field `") {
        let field = field.strip_suffix('`').unwrap_or(field);
        render(doc, &found.any).message(format_args!("missing key {field:?}"))
    } else if message.starts_with("invalid type: sequence") {
        // The first table of `[[x]]` has the same span as the array: name the array.
        let path = found.array.as_deref().unwrap_or(&found.any);
        render(doc, path).message(in_toml_terms(message))
    } else {
        render(doc, &found.any).message(in_toml_terms(message))
    };
    Located::new(offset, text)
}

/// `unknown key "key" in [table]; expected one of: ...`, the list taken from serde's
/// `unknown field` message, where each allowed key is in backquotes.
fn unknown_key(doc: &DeTable<'_>, table: &[Segment<'_>], key: &str, message: &str) -> String {
    let mut text = format!(
        "unknown key {key:?} {}",
        render(doc, table).table_description()
    );
    if let Some((_, list)) = message.split_once(", expected ") {
        let allowed: Vec<&str> = list.split('`').skip(1).step_by(2).collect();
        text.push_str("; expected one of: ");
        text.push_str(&allowed.join(", "));
    }
    text
}

/// `message` with serde's names of TOML types replaced by TOML's: tables and arrays reach
/// serde as maps and sequences.
fn in_toml_terms(message: &str) -> Cow<'_, str> {
    for (serde, toml) in [("map", "table"), ("sequence", "array")] {
        if let Some(rest) = message
            .strip_prefix("invalid type: ")
            .and_then(|rest| rest.strip_prefix(serde))
            .filter(|rest| rest.starts_with(','))
        {
            return Cow::Owned(format!("invalid type: {toml}{rest}"));
        }
    }
    Cow::Borrowed(message)
}

/// One step of a path into the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment<'a> {
    Key(&'a str),
    /// A table inside an array; elements that are not tables add no segment, so an error at
    /// `dst_cidr = ["x"]` names `dst_cidr`.
    Index(usize),
}

/// What contains an offset.
#[derive(Debug, Default)]
struct Found<'a> {
    /// The deepest key or value containing it.
    any: Vec<Segment<'a>>,
    /// The key whose name contains it, if any.
    key: Option<Vec<Segment<'a>>>,
    /// The deepest array containing it, if any.
    array: Option<Vec<Segment<'a>>>,
}

/// Finds what contains `offset`. Table headers make spans nest unevenly (the span of a table
/// opened by `[a.b]` is the header alone), so the whole document is searched.
fn find<'a>(doc: &'a DeTable<'a>, offset: usize) -> Found<'a> {
    let mut found = Found::default();
    search_table(doc, offset, &mut Vec::new(), &mut found);
    found
}

fn search_table<'a>(
    table: &'a DeTable<'a>,
    offset: usize,
    path: &mut Vec<Segment<'a>>,
    found: &mut Found<'a>,
) {
    for (key, value) in table {
        path.push(Segment::Key(key.get_ref()));
        if key.span().contains(&offset) {
            found.key = Some(path.clone());
        }
        search_value(value, offset, path, found);
        path.pop();
    }
}

fn search_value<'a>(
    value: &'a Spanned<DeValue<'a>>,
    offset: usize,
    path: &mut Vec<Segment<'a>>,
    found: &mut Found<'a>,
) {
    if value.span().contains(&offset) {
        if path.len() >= found.any.len() {
            found.any.clone_from(path);
        }
        if value.get_ref().is_array() {
            found.array = Some(path.clone());
        }
    }
    match value.get_ref() {
        DeValue::Table(table) => search_table(table, offset, path, found),
        DeValue::Array(array) => {
            for (index, item) in array.iter().enumerate() {
                if item.get_ref().is_table() {
                    path.push(Segment::Index(index));
                    search_value(item, offset, path, found);
                    path.pop();
                } else {
                    search_value(item, offset, path, found);
                }
            }
        }
        _ => {}
    }
}

/// The [`KeyPath`] of `segments`, naming rules by their `name` when it is valid.
fn render(doc: &DeTable<'_>, segments: &[Segment<'_>]) -> KeyPath {
    let (mut path, rest) = match segments {
        [Segment::Key("rule"), Segment::Index(index), rest @ ..] => {
            (KeyPath::rule(*index, rule_name(doc, *index)), rest)
        }
        _ => (KeyPath::default(), segments),
    };
    for segment in rest {
        path = match *segment {
            Segment::Key(key) => path.key(key),
            Segment::Index(index) => path.index(index),
        };
    }
    path
}

/// The valid `name` of rule `index` in `doc`.
fn rule_name<'a>(doc: &'a DeTable<'_>, index: usize) -> Option<&'a str> {
    let rule = doc.get("rule")?.get_ref().as_array()?.get(index)?;
    let name = rule.get_ref().as_table()?.get("name")?.get_ref().as_str()?;
    is_rule_name(name).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_render_like_the_messages() {
        assert_eq!(
            KeyPath::default()
                .key("flows")
                .key("udp_timeout")
                .to_string(),
            "flows.udp_timeout"
        );
        assert_eq!(
            KeyPath::rule(0, Some("dns")).key("dst_cidr").to_string(),
            "rule \"dns\": dst_cidr"
        );
        assert_eq!(
            KeyPath::rule(2, None).key("name").to_string(),
            "rule[2].name"
        );
        assert_eq!(KeyPath::default().message("m"), "m");
        assert_eq!(KeyPath::default().key("a").message("m"), "a: m");
        assert_eq!(KeyPath::rule(1, None).table_description(), "in rule[1]");
        assert_eq!(
            KeyPath::default()
                .key("ports")
                .key("inside")
                .table_description(),
            "in [ports.inside]"
        );
        assert_eq!(KeyPath::default().table_description(), "at the top level");
    }

    #[test]
    fn finds_keys_values_and_headers() {
        let text =
            "[ports.inside]\ndevice = \"x\"\n[[rule]]\nname = \"a\"\nports = [\"1\", \"2\"]\n";
        let doc = DeTable::parse(text).unwrap();
        let at = |needle: &str| {
            let offset = text.find(needle).unwrap();
            render(doc.get_ref(), &find(doc.get_ref(), offset).any).to_string()
        };
        assert_eq!(at("[ports.inside]"), "ports.inside");
        assert_eq!(at("\"x\""), "ports.inside.device");
        assert_eq!(at("[[rule]]"), "rule \"a\"");
        assert_eq!(at("\"2\""), "rule \"a\": ports");
        let offset = text.find("device").unwrap();
        let key = find(doc.get_ref(), offset).key.unwrap();
        assert_eq!(
            key,
            [
                Segment::Key("ports"),
                Segment::Key("inside"),
                Segment::Key("device")
            ]
        );
    }
}
