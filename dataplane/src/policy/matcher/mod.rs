//! The rule matcher: which rule, in file order, is the first to match a new flow's first packet.
//!
//! # Data structure
//!
//! Bit-vector classification (Lakshman and Stiliadis) with aggregated bit vectors (Baboescu and
//! Varghese), partitioned so that wildcards do not defeat the aggregation:
//!
//! - **Classes.** The side, the address family and the protocol kind (TCP, UDP, the family's
//!   ICMP, anything else) split packets into 16 classes. Each class keeps only the rules that can
//!   match it: right `from`, right `proto`, and a CIDR of the family in `src_cidr` / `dst_cidr`
//!   when those are set. Side and protocol are thus decided by indexing, not by a bit vector.
//! - **Groups.** Within a class, rules are split by whether they constrain the source and the
//!   destination address (a `/0` counts as no constraint): at most four groups, each a
//!   subsequence of the rule list. A group's bit vectors cover only its own rules (bit `i` is
//!   group-local rule `i`), and a group looks up only the dimensions some of its rules
//!   constrain: the addresses its kind names, ports and ICMP types when a rule sets them. A
//!   dimension that all rules of a group leave open would be all ones and is left out; a group
//!   whose rules constrain nothing has a single all-ones dimension.
//! - **Tables.** Per class, each key space it needs (source and destination address of its
//!   family, source and destination port) is cut into elementary intervals by the range ends of
//!   the class's rules ([`interval::IntervalTable`]); ICMP types are their own 256 intervals.
//!   Each interval's entry holds, next to its start, a row: per group (slot) that looks the key
//!   space up, the offset of the vector of the group's rules that match that interval. The search
//!   that finds the interval thus also reads the row, for all groups at once.
//! - **Bit vectors.** A group stores each distinct vector once (deduplicated while sweeping the
//!   intervals in order) in an arena of u64, packed: `summary_words` summary words (bit `w` set
//!   iff word `w` of the vector is non-zero) followed by only the non-zero words, in order; word
//!   `w` is found by counting the summary bits below `w`. Rules with `dst_fqdn` are marked in
//!   one more (unpacked) vector per group.
//!
//! # Lookup
//!
//! One interval search per key space the class needs (a bucket table read, then a binary search
//! over the few entries of that bucket). Then the first summary word of every group's vectors
//! is read, all before any is used so that their cache misses overlap. Then, per group in order
//! of its first rule, the AND of its dimensions' summaries gives the candidate words; for each,
//! the AND of the real words, filtered by `fqdn_ok` for FQDN rules, gives the group's first
//! match at its lowest set bit. A group stops at the first word whose first rule is not before
//! the best match so far, and groups whose first rule is not before it are skipped; the answer
//! is the lowest rule index over the groups. Nothing is allocated.
//!
//! Cost: `O(log b)` for the interval searches, `b` the entries in one bucket (a few when the
//! boundaries are spread), plus per group `O(s + c)` word reads per dimension, `s` summary
//! words (one per 4096 rules of the group) and `c` the candidate words examined. `c` is 1 when
//! the first candidate word matches; it is larger only when every dimension has rules in a word
//! but no rule in all of them, which the grouping makes rare (a rule that leaves an address open
//! is not in a group that looks that address up) but not impossible: rules that set only a
//! source port interleaved with rules that set only a destination port, say, for a packet that
//! matches neither, cost a scan of the group's words. For large rule sets the cost is dominated
//! by the chain of dependent cache misses: bucket table (small, usually cached), table entry,
//! vector summary, vector word (often on the summary's cache line).
//!
//! # Memory and compile time
//!
//! Per class and key space, one entry (start and four u32 offsets: 20 bytes for IPv4 and ports,
//! 32 for IPv6) per elementary interval; per group and dimension, per distinct vector its
//! summary plus its non-zero words. At most one distinct vector per interval: `O(n^2 / 64)`
//! words for `n` rules that all overlap in the worst case, `O(n)` for rules that overlap little.
//! A rule sits in every class it can match (all 16 for `from = "any"`, `proto = "any"`, no
//! addresses). Compiling is one sweep per group and dimension over the intervals, a multiset of
//! rules updated at range ends, with an incrementally updated (Zobrist) hash of the current
//! vector to deduplicate: `O(intervals + events log events + distinct vectors * words)`.
//!
//! # Invariants
//!
//! - Bit `i` of every vector of a group is group-local rule `i`; bits past the group's rule
//!   count are zero, and `rules` (local to global index) is strictly increasing.
//! - A packed vector's summary bit is set iff its word is non-zero, and exactly those words
//!   follow the summary, in order.
//! - A class's groups are sorted by their first rule; each group's slot in the rows is fixed by
//!   its kind (bit 1: source constrained, bit 0: destination constrained).
//! - The semantics are exactly those of the rules' fields (CONTRACT.md): the matcher never needs
//!   `config`'s validation to be right, only to be fast (a port constraint on a rule of another
//!   protocol is still evaluated, against port 0).

mod build;
mod interval;
#[cfg(test)]
mod tests;

use std::fmt;
use std::mem::size_of;
use std::net::IpAddr;

use crate::side::Side;
use interval::{IntervalTable, SLOTS};

/// What a new flow's first packet looks like to the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuple {
    /// The port the flow's first packet entered on.
    pub side: Side,
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, anything else).
    pub proto: u8,
    /// Source address.
    pub src: IpAddr,
    /// Destination address, of the same family as `src` (a tuple mixing families matches no
    /// rule).
    pub dst: IpAddr,
    /// Source port for TCP and UDP, 0 otherwise.
    pub sport: u16,
    /// Destination port for TCP and UDP, 0 otherwise.
    pub dport: u16,
    /// ICMP or ICMPv6 type, 0 otherwise.
    pub icmp_type: u8,
}

/// The compiled rule list: answers "which rule matches first" without scanning the rules.
pub struct Matcher {
    rule_count: usize,
    /// Indexed by [`class_index`].
    classes: Vec<Class>,
}

impl Matcher {
    /// Compiles `rules` (validated by `config`; any rule list is matched correctly).
    #[must_use]
    pub fn new(rules: &[config::Rule]) -> Matcher {
        build::compile(rules)
    }

    /// Index (into the rules slice) of the first rule that matches, in file order.
    ///
    /// `fqdn_ok` is a sorted slice of rule indices whose `dst_fqdn` is satisfied for this
    /// packet: a rule with a non-empty `dst_fqdn` matches only if its index is in `fqdn_ok` (and
    /// every other field matches).
    #[must_use]
    pub fn first_match(&self, t: &Tuple, fqdn_ok: &[u32]) -> Option<u32> {
        let family = match (t.src, t.dst) {
            (IpAddr::V4(_), IpAddr::V4(_)) => Family::V4,
            (IpAddr::V6(_), IpAddr::V6(_)) => Family::V6,
            _ => return None,
        };
        let class = &self.classes[class_index(t.side, family, Kind::of(t.proto, family))];
        let rows = class.rows(t);
        // Every group's first summary words are read before any is used, so that their cache
        // misses overlap instead of queueing behind each other's.
        let mut probes = [Probe::default(); SLOTS];
        for (probe, group) in probes.iter_mut().zip(&class.groups) {
            *probe = group.probe(&rows);
        }
        let mut best = NO_RULE;
        for (group, probe) in class.groups.iter().zip(&probes) {
            if group.rules.first().is_none_or(|&first| first >= best) {
                // Groups are in order of their first rule: no later one can do better.
                break;
            }
            if let Some(rule) = group.first_match(probe, best, fqdn_ok) {
                best = rule;
            }
        }
        (best != NO_RULE).then_some(best)
    }

    /// The number of rules compiled.
    #[must_use]
    pub fn rule_count(&self) -> usize {
        self.rule_count
    }

    /// Approximate heap use in bytes, for logs.
    #[must_use]
    pub fn memory_bytes(&self) -> usize {
        let classes: usize = self.classes.iter().map(Class::memory_bytes).sum();
        classes + self.classes.capacity() * size_of::<Class>()
    }
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let groups: usize = self.classes.iter().map(|c| c.groups.len()).sum();
        f.debug_struct("Matcher")
            .field("rule_count", &self.rule_count)
            .field("groups", &groups)
            .field("memory_bytes", &self.memory_bytes())
            .finish_non_exhaustive()
    }
}

/// "No match yet": above every rule index.
const NO_RULE: u32 = u32::MAX;

/// A key space a group can look up; the discriminant indexes a class's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    /// Source address of the class's family.
    Src = 0,
    /// Destination address of the class's family.
    Dst = 1,
    SrcPort = 2,
    DstPort = 3,
    /// Direct: the type is the interval.
    IcmpType = 4,
    /// For groups whose rules constrain nothing: one interval.
    All = 5,
}

impl Table {
    /// This table's bit in [`Class::uses`].
    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

const TABLES: usize = 6;
/// Dimensions of a group: source, destination, two ports, ICMP type; or `All` alone.
const MAX_DIMS: usize = 5;
/// The row of a table a class does not use.
const NO_ROW: [u32; SLOTS] = [0; SLOTS];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    V4 = 0,
    V6 = 1,
}

/// How the protocol decides which rules can match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tcp = 0,
    Udp = 1,
    /// ICMP on IPv4, ICMPv6 on IPv6.
    Icmp = 2,
    /// Anything else, which only `proto = "any"` matches.
    Other = 3,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Tcp, Kind::Udp, Kind::Icmp, Kind::Other];

    #[inline]
    fn of(proto: u8, family: Family) -> Kind {
        match (proto, family) {
            (6, _) => Kind::Tcp,
            (17, _) => Kind::Udp,
            (1, Family::V4) | (58, Family::V6) => Kind::Icmp,
            _ => Kind::Other,
        }
    }
}

const CLASSES: usize = 16;

#[inline]
fn class_index(side: Side, family: Family, kind: Kind) -> usize {
    side.index() * 8 + family as usize * 4 + kind as usize
}

/// The rules that can match one side x family x kind, in groups, and the tables they look up.
#[derive(Debug, Clone, Default)]
struct Class {
    /// In order of their first rule.
    groups: Vec<Group>,
    /// [`Table::bit`]s of the tables some group looks up.
    uses: u8,
    /// Cut by the class's rules only; the family's pair is used, the other stays empty.
    src_v4: IntervalTable<u32>,
    dst_v4: IntervalTable<u32>,
    src_v6: IntervalTable<u128>,
    dst_v6: IntervalTable<u128>,
    src_ports: IntervalTable<u16>,
    dst_ports: IntervalTable<u16>,
    /// One row per ICMP type, or empty.
    icmp_types: Vec<[u32; SLOTS]>,
    /// The row of [`Table::All`].
    all: [u32; SLOTS],
}

impl Class {
    /// The row of `t`'s interval in each table the class uses.
    #[inline]
    fn rows(&self, t: &Tuple) -> [&[u32; SLOTS]; TABLES] {
        let mut rows = [&NO_ROW; TABLES];
        let used = |table: Table| self.uses & table.bit() != 0;
        if used(Table::Src) {
            rows[Table::Src as usize] = match t.src {
                IpAddr::V4(a) => self.src_v4.find(u32::from(a)),
                IpAddr::V6(a) => self.src_v6.find(u128::from(a)),
            };
        }
        if used(Table::Dst) {
            rows[Table::Dst as usize] = match t.dst {
                IpAddr::V4(a) => self.dst_v4.find(u32::from(a)),
                IpAddr::V6(a) => self.dst_v6.find(u128::from(a)),
            };
        }
        if used(Table::SrcPort) {
            rows[Table::SrcPort as usize] = self.src_ports.find(t.sport);
        }
        if used(Table::DstPort) {
            rows[Table::DstPort as usize] = self.dst_ports.find(t.dport);
        }
        if used(Table::IcmpType) {
            rows[Table::IcmpType as usize] = self
                .icmp_types
                .get(usize::from(t.icmp_type))
                .unwrap_or(&NO_ROW);
        }
        rows[Table::All as usize] = &self.all;
        rows
    }

    fn memory_bytes(&self) -> usize {
        self.groups.iter().map(Group::memory_bytes).sum::<usize>()
            + self.groups.capacity() * size_of::<Group>()
            + self.src_v4.memory_bytes()
            + self.dst_v4.memory_bytes()
            + self.src_v6.memory_bytes()
            + self.dst_v6.memory_bytes()
            + self.src_ports.memory_bytes()
            + self.dst_ports.memory_bytes()
            + self.icmp_types.capacity() * size_of::<[u32; SLOTS]>()
    }
}

/// A subsequence of the rules, with bit vectors over it.
#[derive(Debug, Clone)]
struct Group {
    dims: Vec<Dim>,
    /// Summary words per vector: one per 4096 rules.
    summary_words: usize,
    /// Packed vectors, at the offsets the rows hold.
    vectors: Vec<u64>,
    /// Global rule index of each local rule, increasing.
    rules: Vec<u32>,
    /// Rules with `dst_fqdn`, one bit per rule (not packed); empty when the group has none.
    fqdn: Vec<u64>,
}

/// One looked-up key space of a group.
#[derive(Debug, Clone, Copy)]
struct Dim {
    table: Table,
    /// The group's position in the class's rows, below [`SLOTS`].
    slot: u8,
}

/// Where a group's vectors for one packet are, and their first summary word.
#[derive(Debug, Clone, Copy, Default)]
struct Probe {
    /// Per dimension: the offset of its vector.
    vectors: [usize; MAX_DIMS],
    /// Per dimension: its first summary word.
    first: [u64; MAX_DIMS],
}

impl Group {
    /// Locates the group's vectors for a packet's rows.
    #[inline]
    fn probe(&self, rows: &[&[u32; SLOTS]; TABLES]) -> Probe {
        let mut probe = Probe::default();
        for (i, dim) in self.dims.iter().take(MAX_DIMS).enumerate() {
            let offset = rows[dim.table as usize][usize::from(dim.slot)] as usize;
            probe.vectors[i] = offset;
            probe.first[i] = self.vectors.get(offset).copied().unwrap_or(0);
        }
        probe
    }

    /// The group's first matching rule if it is before `best`.
    #[inline]
    fn first_match(&self, probe: &Probe, best: u32, fqdn_ok: &[u32]) -> Option<u32> {
        let count = self.dims.len().min(MAX_DIMS);
        // Per dimension: where the packed words of the current summary word start.
        let mut packed = probe.vectors;
        for start in &mut packed {
            *start += self.summary_words;
        }
        let mut present = probe.first;
        for sw in 0..self.summary_words {
            if sw > 0 {
                for i in 0..count {
                    packed[i] += present[i].count_ones() as usize;
                    present[i] = self.vectors[probe.vectors[i] + sw];
                }
            }
            let mut candidates = present[..count].iter().fold(u64::MAX, |acc, p| acc & p);
            while candidates != 0 {
                let bit = candidates.trailing_zeros();
                let w = sw * 64 + bit as usize;
                let base = w * 64;
                if self.rules[base] >= best {
                    return None;
                }
                let below = (1_u64 << bit) - 1;
                let mut hits = u64::MAX;
                for i in 0..count {
                    hits &= self.vectors[packed[i] + (present[i] & below).count_ones() as usize];
                }
                if let Some(b) = self.first_allowed(hits, w, fqdn_ok) {
                    let rule = self.rules[base + b];
                    return (rule < best).then_some(rule);
                }
                candidates &= candidates - 1;
            }
        }
        None
    }

    /// The lowest bit of `hits` (rules of word `w`) whose rule has no `dst_fqdn` or is in
    /// `fqdn_ok`.
    #[inline]
    fn first_allowed(&self, mut hits: u64, w: usize, fqdn_ok: &[u32]) -> Option<usize> {
        let fqdn = self.fqdn.get(w).copied().unwrap_or(0);
        while hits != 0 {
            let bit = hits.trailing_zeros() as usize;
            if (fqdn >> bit) & 1 == 0 || fqdn_ok.binary_search(&self.rules[w * 64 + bit]).is_ok() {
                return Some(bit);
            }
            hits &= hits - 1;
        }
        None
    }

    fn memory_bytes(&self) -> usize {
        self.dims.capacity() * size_of::<Dim>()
            + (self.vectors.capacity() + self.fqdn.capacity()) * size_of::<u64>()
            + self.rules.capacity() * size_of::<u32>()
    }
}
