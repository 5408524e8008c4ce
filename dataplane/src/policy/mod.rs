//! The compiled policy: the rules in a [`matcher::Matcher`], the default action, the flow
//! settings that may change on reload, and a generation number.
//!
//! A `Policy` is immutable once built. The control thread publishes a new one by sending an
//! `Arc<Policy>` to every worker, which swaps it in at its loop boundary and hands the old one
//! back (see `crate::worker`); a flow decided under an older generation is decided again on its
//! next packet.

pub mod matcher;

use std::sync::Arc;

use crate::counter::Counter;
use crate::flow::{DecidedBy, Timeouts};
use crate::fqdn::NameMatcher;
use crate::fqdn::snoop::DnsPolicy;
use crate::verdict::Verdict;

pub use matcher::{Matcher, Tuple};

/// What the pipeline needs of one rule besides its match fields.
#[derive(Debug, Clone)]
pub struct RuleInfo {
    /// The rule's name.
    pub name: Arc<str>,
    /// Its action.
    pub action: Verdict,
    /// Whether it has `dst_fqdn` patterns.
    pub has_fqdn: bool,
    /// How they are matched.
    pub fqdn_match: config::FqdnMatch,
}

/// Packets and bytes one worker counted for each rule (the last slot: the default action).
/// Written by that worker only.
#[derive(Debug)]
pub struct RuleCounters {
    /// By rule index; the last slot counts the default action. A rule's two counters share a
    /// cache line.
    counts: Box<[RuleCount]>,
}

/// One rule's counters.
#[derive(Debug, Default)]
struct RuleCount {
    packets: Counter,
    bytes: Counter,
}

impl RuleCounters {
    fn new(rules: usize) -> Self {
        RuleCounters {
            counts: (0..=rules).map(|_| RuleCount::default()).collect(),
        }
    }

    /// Counts one packet of `len` bytes for `by`.
    #[inline]
    pub fn count(&self, by: DecidedBy, len: u64) {
        let i = match by {
            DecidedBy::Rule(i) => i as usize,
            DecidedBy::Default => self.counts.len() - 1,
        };
        if let Some(c) = self.counts.get(i) {
            c.packets.inc();
            c.bytes.add(len);
        }
    }

    /// Packets and bytes counted for rule `i` (the default action: the number of rules); 0
    /// for an index out of range.
    pub fn get(&self, i: usize) -> (u64, u64) {
        self.counts
            .get(i)
            .map_or((0, 0), |c| (c.packets.get(), c.bytes.get()))
    }
}

/// An immutable, compiled policy.
#[derive(Debug)]
pub struct Policy {
    /// Increases with every reload.
    pub generation: u64,
    /// The rules in file order (shared, so that a worker can keep naming the rules of a
    /// policy it retired).
    pub rules: Arc<[RuleInfo]>,
    /// The classifier over the rules' match fields.
    pub matcher: Matcher,
    /// The rules' `dst_fqdn` patterns.
    pub names: NameMatcher,
    /// The verdict when no rule matches.
    pub default: Verdict,
    /// Flow idle timeouts.
    pub timeouts: Timeouts,
    /// Whether a TCP packet without SYN may open a flow (`[flows].tcp_midstream`).
    pub tcp_midstream: bool,
    /// Rejects answered per second per worker.
    pub reject_rate: u32,
    /// Per-worker rule counters, indexed by worker.
    pub counters: Vec<RuleCounters>,
    /// DNS snooping settings.
    pub dns: DnsPolicy,
}

impl Policy {
    /// Compiles `cfg` as generation `generation` for `workers` workers.
    pub fn compile(cfg: &config::Config, generation: u64, workers: usize) -> Policy {
        let rules = cfg
            .rules
            .iter()
            .map(|r| RuleInfo {
                name: Arc::from(r.name.as_str()),
                action: Verdict::of(r.action),
                has_fqdn: !r.dst_fqdn.is_empty(),
                fqdn_match: r.fqdn_match,
            })
            .collect::<Vec<_>>();
        Policy {
            generation,
            matcher: Matcher::new(&cfg.rules),
            names: NameMatcher::new(&cfg.rules),
            default: Verdict::of(cfg.default.action),
            timeouts: Timeouts::from_config(&cfg.flows),
            tcp_midstream: cfg.flows.tcp_midstream,
            reject_rate: cfg.flows.reject_rate,
            dns: DnsPolicy::from_config(&cfg.dns),
            counters: (0..workers.max(1))
                .map(|_| RuleCounters::new(rules.len()))
                .collect(),
            rules: Arc::from(rules),
        }
    }

    /// The name of what `by` designates: a rule's name, or `None` for the default action.
    pub fn rule_name(&self, by: DecidedBy) -> Option<&str> {
        match by {
            DecidedBy::Rule(i) => self.rules.get(i as usize).map(|r| &*r.name),
            DecidedBy::Default => None,
        }
    }
}
