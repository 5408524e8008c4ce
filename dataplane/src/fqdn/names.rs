//! Which rules' `dst_fqdn` patterns a name matches, in O(labels).
//!
//! Every pattern of every rule is put in one trie of labels read from the right (`com`, then
//! `github`, ...). A node reached after `k` labels of a name holds the rules whose pattern is
//! exactly those `k` labels (`github.com`), exactly one more label (`*.github.com`), or one or
//! more (`**.github.com`). Looking a name up walks its labels once, collecting at each node what
//! the number of labels left allows.

use std::collections::HashMap;

use config::{DomainPattern, PatternKind};

type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Debug, Default)]
struct Node {
    /// Keyed by label bytes (valid UTF-8: patterns are).
    children: Map<Box<[u8]>, Node>,
    exact: Vec<u32>,
    one_more: Vec<u32>,
    any_more: Vec<u32>,
}

/// All `dst_fqdn` patterns of a policy, compiled.
#[derive(Debug, Default)]
pub struct NameMatcher {
    root: Node,
    patterns: usize,
}

impl NameMatcher {
    /// Compiles the patterns of `rules` (rule indices are positions in `rules`).
    pub fn new(rules: &[config::Rule]) -> Self {
        let mut m = NameMatcher::default();
        for (i, r) in rules.iter().enumerate() {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            for p in &r.dst_fqdn {
                m.add(p, i);
            }
        }
        m
    }

    fn add(&mut self, p: &DomainPattern, rule: u32) {
        let mut node = &mut self.root;
        for label in p.suffix().rsplit('.').filter(|l| !l.is_empty()) {
            node = node.children.entry(label.as_bytes().into()).or_default();
        }
        let list = match p.kind() {
            PatternKind::Exact => &mut node.exact,
            PatternKind::OneLabel => &mut node.one_more,
            PatternKind::AnyLabels => &mut node.any_more,
        };
        if list.last() != Some(&rule) {
            list.push(rule);
        }
        self.patterns += 1;
    }

    /// Whether there is no pattern at all.
    pub fn is_empty(&self) -> bool {
        self.patterns == 0
    }

    /// Calls `each` with the rule lists of the trie nodes `name` reaches that apply to it.
    ///
    /// Labels are found by scanning bytes back from the end (`.` is ASCII, so every cut is a
    /// character boundary): `str::rsplit` cost ten times as much per label. This runs for every
    /// name an answer brings that is not learned yet, floods of unique names included.
    #[inline]
    fn walk<'a>(&'a self, name: &str, mut each: impl FnMut(&'a [u32])) {
        let bytes = name.as_bytes();
        if bytes.is_empty() {
            return;
        }
        let total = bytes.iter().filter(|&&b| b == b'.').count() + 1;
        let mut node = &self.root;
        // The labels not consumed yet are `bytes[..end]`.
        let mut end = bytes.len();
        for consumed in 0..=total {
            let left = total - consumed;
            if left == 0 {
                each(&node.exact);
                break;
            }
            if left == 1 {
                each(&node.one_more);
            }
            each(&node.any_more);
            let head = bytes.get(..end).unwrap_or_default();
            let start = head
                .iter()
                .rposition(|&b| b == b'.')
                .map_or(0, |dot| dot + 1);
            let Some(next) = head.get(start..).and_then(|l| node.children.get(l)) else {
                break;
            };
            node = next;
            end = start.saturating_sub(1);
        }
    }

    /// Whether some pattern matches `name` (lowercase, no trailing dot).
    pub fn matches_any(&self, name: &str) -> bool {
        let mut any = false;
        self.walk(name, |rules| any |= !rules.is_empty());
        any
    }

    /// Appends to `out` the rules whose patterns match `name` (lowercase, no trailing dot), then
    /// sorts and deduplicates `out`.
    pub fn matches_into(&self, name: &str, out: &mut Vec<u32>) {
        let start = out.len();
        self.walk(name, |rules| out.extend_from_slice(rules));
        out[start..].sort_unstable();
        let mut kept = start;
        for i in start..out.len() {
            if i == start || out[i] != out[kept - 1] {
                out[kept] = out[i];
                kept += 1;
            }
        }
        out.truncate(kept);
    }

    /// The rules whose patterns match `name`, sorted.
    pub fn matches(&self, name: &str) -> Vec<u32> {
        let mut v = Vec::new();
        self.matches_into(name, &mut v);
        v
    }

    /// Whether some pattern of `rule` matches `name`.
    pub fn rule_matches(&self, name: &str, rule: u32) -> bool {
        self.matches(name).binary_search(&rule).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(patterns: &[&[&str]]) -> NameMatcher {
        let mut text =
            String::from("[ports.inside]\ndevice = \"a\"\n[ports.outside]\ndevice = \"b\"\n");
        for (i, ps) in patterns.iter().enumerate() {
            let list: Vec<String> = ps.iter().map(|p| format!("\"{p}\"")).collect();
            text.push_str(&format!(
                "[[rule]]\nname = \"r{i}\"\naction = \"allow\"\ndst_fqdn = [{}]\n",
                list.join(", ")
            ));
        }
        let cfg = config::parse(&text, "t.toml").expect("valid");
        NameMatcher::new(&cfg.rules)
    }

    #[test]
    fn exact_one_label_and_any_labels_at_each_boundary() {
        let m = matcher(&[&["example.com"], &["*.example.com"], &["**.example.com"]]);
        assert_eq!(m.matches("example.com"), [0]);
        assert_eq!(m.matches("a.example.com"), [1, 2]);
        assert_eq!(m.matches("a.b.example.com"), [2]);
        assert_eq!(m.matches("x.a.b.example.com"), [2]);
        assert!(m.matches("com").is_empty());
        assert!(m.matches("badexample.com").is_empty());
        assert!(m.matches("example.org").is_empty());
        assert!(m.matches("").is_empty());
    }

    #[test]
    fn overlapping_patterns_and_rules() {
        let m = matcher(&[
            &["github.com", "*.github.com"],
            &["**.com"],
            &["api.github.com"],
        ]);
        assert_eq!(m.matches("github.com"), [0, 1]);
        assert_eq!(m.matches("api.github.com"), [0, 1, 2]);
        assert_eq!(m.matches("x.y.github.com"), [1]);
        assert!(m.rule_matches("api.github.com", 2));
        assert!(!m.rule_matches("www.github.com", 2));
        assert!(matcher(&[]).is_empty());
    }

    #[test]
    fn agrees_with_the_reference_pattern_matching() {
        let pats: &[&[&str]] = &[
            &["a.b"],
            &["*.a.b"],
            &["**.a.b"],
            &["**.b"],
            &["*.b"],
            &["c.a.b", "*.c.a.b"],
        ];
        let m = matcher(pats);
        let cfg_patterns: Vec<Vec<DomainPattern>> = pats
            .iter()
            .map(|ps| ps.iter().map(|p| p.parse().unwrap()).collect())
            .collect();
        for name in [
            "b",
            "a.b",
            "c.a.b",
            "d.c.a.b",
            "x.b",
            "x.y.b",
            "a.c",
            "e.d.c.a.b",
        ] {
            let want: Vec<u32> = cfg_patterns
                .iter()
                .enumerate()
                .filter(|(_, ps)| ps.iter().any(|p| p.matches(name)))
                .map(|(i, _)| u32::try_from(i).unwrap())
                .collect();
            assert_eq!(m.matches(name), want, "{name}");
        }
    }

    proptest::proptest! {
        /// Any name of labels from a small alphabet (labels that are suffixes and prefixes of
        /// each other, so that label boundaries are exercised), against each pattern's own
        /// matching. Names as the learner has them: no empty label (a name read from DNS has
        /// none; one whose label holds a dot has no text and never gets here).
        #[test]
        #[cfg_attr(miri, ignore)]
        fn any_name_agrees_with_the_reference(
            labels in proptest::collection::vec(
                proptest::sample::select(vec!["a", "b", "c", "x", "ba", "ab"]), 1..7),
        ) {
            let pats: &[&[&str]] = &[
                &["a.b"],
                &["*.a.b"],
                &["**.a.b"],
                &["**.b"],
                &["*.b", "c"],
                &["c.a.b", "*.c.a.b"],
                &["**.ab", "x.x"],
            ];
            let m = matcher(pats);
            let name = labels.join(".");
            let want: Vec<u32> = pats
                .iter()
                .enumerate()
                .filter(|(_, ps)| {
                    ps.iter()
                        .any(|p| p.parse::<DomainPattern>().unwrap().matches(&name))
                })
                .map(|(i, _)| u32::try_from(i).unwrap())
                .collect();
            proptest::prop_assert_eq!(m.matches(&name), want.clone(), "{}", name);
            proptest::prop_assert_eq!(m.matches_any(&name), !want.is_empty());
        }
    }
}
