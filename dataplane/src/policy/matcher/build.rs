//! Compiling a rule list into a [`Matcher`]: rules into classes and groups, each group's
//! dimensions into deduplicated bit vectors by a sweep over the elementary intervals.

use std::collections::HashMap;
use std::net::IpAddr;

use config::{Cidr, PortRange, Proto, Rule};

use super::interval::{IntervalTable, Key, SLOTS};
use super::{CLASSES, Class, Dim, Family, Group, Kind, Matcher, Table, class_index};
use crate::side::Side;

/// What one field of a rule admits; addresses restricted to one family.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Admits<K> {
    /// The field is left out (or covers the whole key space).
    Everything,
    /// The field lists only addresses of the other family.
    Nothing,
    /// These inclusive ranges.
    Ranges(Vec<(K, K)>),
}

impl<K: Key> Admits<K> {
    fn is_ranges(&self) -> bool {
        matches!(self, Admits::Ranges(_))
    }

    /// Its ranges as half-open interval spans of `index`.
    fn spans(&self, index: &IntervalTable<K>) -> Vec<(usize, usize)> {
        match self {
            Admits::Everything => vec![(0, index.len())],
            Admits::Nothing => Vec::new(),
            Admits::Ranges(ranges) => ranges
                .iter()
                .map(|&(lo, hi)| (index.starting_at(lo), index.after(hi)))
                .collect(),
        }
    }

    /// Pushes the boundaries its ranges cut.
    fn push_bounds(&self, bounds: &mut Vec<K>) {
        if let Admits::Ranges(ranges) = self {
            for &(lo, hi) in ranges {
                bounds.push(lo);
                bounds.extend(hi.successor());
            }
        }
    }
}

/// A rule's fields as the matcher sees them.
#[derive(Debug)]
struct Shape {
    from: config::Side,
    proto: Proto,
    src_v4: Admits<u32>,
    dst_v4: Admits<u32>,
    src_v6: Admits<u128>,
    dst_v6: Admits<u128>,
    sport: Admits<u16>,
    dport: Admits<u16>,
    /// The listed types, or `None` for every type.
    icmp: Option<Vec<u8>>,
    fqdn: bool,
}

impl Shape {
    fn of(rule: &Rule) -> Shape {
        Shape {
            from: rule.from,
            proto: rule.proto,
            src_v4: v4_ranges(&rule.src_cidr),
            dst_v4: v4_ranges(&rule.dst_cidr),
            src_v6: v6_ranges(&rule.src_cidr),
            dst_v6: v6_ranges(&rule.dst_cidr),
            sport: port_ranges(&rule.src_ports),
            dport: port_ranges(&rule.dst_ports),
            icmp: (!rule.icmp_types.is_empty() && !covers_every_type(&rule.icmp_types))
                .then(|| rule.icmp_types.clone()),
            fqdn: !rule.dst_fqdn.is_empty(),
        }
    }

    /// Whether the rule can match some packet of this class.
    fn in_class(&self, side: Side, family: Family, kind: Kind) -> bool {
        let side_ok = match self.from {
            config::Side::Any => true,
            config::Side::Inside => side == Side::Inside,
            config::Side::Outside => side == Side::Outside,
        };
        let proto_ok = match self.proto {
            Proto::Any => true,
            Proto::Tcp => kind == Kind::Tcp,
            Proto::Udp => kind == Kind::Udp,
            Proto::Icmp => kind == Kind::Icmp && family == Family::V4,
            Proto::Icmpv6 => kind == Kind::Icmp && family == Family::V6,
        };
        let addresses_ok = match family {
            Family::V4 => self.src_v4 != Admits::Nothing && self.dst_v4 != Admits::Nothing,
            Family::V6 => self.src_v6 != Admits::Nothing && self.dst_v6 != Admits::Nothing,
        };
        side_ok && proto_ok && addresses_ok
    }

    /// Whether the rule constrains the source and the destination address of `family`.
    fn address_constraints(&self, family: Family) -> (bool, bool) {
        match family {
            Family::V4 => (self.src_v4.is_ranges(), self.dst_v4.is_ranges()),
            Family::V6 => (self.src_v6.is_ranges(), self.dst_v6.is_ranges()),
        }
    }
}

fn addr_ranges<K>(cidrs: &[Cidr], range: impl Fn(&Cidr) -> Option<(K, K)>) -> Admits<K> {
    if cidrs.is_empty() || cidrs.iter().any(|c| c.prefix() == 0 && range(c).is_some()) {
        return Admits::Everything;
    }
    let ranges: Vec<(K, K)> = cidrs.iter().filter_map(range).collect();
    if ranges.is_empty() {
        Admits::Nothing
    } else {
        Admits::Ranges(ranges)
    }
}

fn v4_ranges(cidrs: &[Cidr]) -> Admits<u32> {
    addr_ranges(cidrs, |c| match c.addr() {
        IpAddr::V4(a) => {
            let host = u32::MAX.checked_shr(u32::from(c.prefix())).unwrap_or(0);
            Some((u32::from(a), u32::from(a) | host))
        }
        IpAddr::V6(_) => None,
    })
}

fn v6_ranges(cidrs: &[Cidr]) -> Admits<u128> {
    addr_ranges(cidrs, |c| match c.addr() {
        IpAddr::V6(a) => {
            let host = u128::MAX.checked_shr(u32::from(c.prefix())).unwrap_or(0);
            Some((u128::from(a), u128::from(a) | host))
        }
        IpAddr::V4(_) => None,
    })
}

fn port_ranges(ports: &[PortRange]) -> Admits<u16> {
    if ports.is_empty() || ports.iter().any(|p| p.lo() == 0 && p.hi() == u16::MAX) {
        Admits::Everything
    } else {
        Admits::Ranges(ports.iter().map(|p| (p.lo(), p.hi())).collect())
    }
}

fn covers_every_type(types: &[u8]) -> bool {
    let mut seen = [false; 256];
    for &t in types {
        seen[usize::from(t)] = true;
    }
    seen.iter().all(|&s| s)
}

/// Compiles `rules`; see the module documentation.
pub(super) fn compile(rules: &[Rule]) -> Matcher {
    // Rule indices are u32 and u32::MAX means "none"; no real configuration comes close.
    let rules = &rules[..rules.len().min(super::NO_RULE as usize)];
    let shapes: Vec<Shape> = rules.iter().map(Shape::of).collect();
    let mut classes = vec![Class::default(); CLASSES];
    for side in Side::BOTH {
        for family in [Family::V4, Family::V6] {
            for kind in Kind::ALL {
                classes[class_index(side, family, kind)] = build_class(&shapes, side, family, kind);
            }
        }
    }
    Matcher {
        rule_count: rules.len(),
        classes,
    }
}

/// The table of a field over some rules, cut by their range ends.
fn table<K: Key>(shapes: &[&Shape], field: impl Fn(&Shape) -> &Admits<K>) -> IntervalTable<K> {
    let mut bounds = Vec::new();
    for shape in shapes {
        field(shape).push_bounds(&mut bounds);
    }
    IntervalTable::new(bounds)
}

fn build_class(shapes: &[Shape], side: Side, family: Family, kind: Kind) -> Class {
    // Members by (source constrained, destination constrained); that key is also the group's
    // slot in the class's rows.
    let mut members: [Vec<usize>; SLOTS] = Default::default();
    for (i, shape) in shapes.iter().enumerate() {
        if shape.in_class(side, family, kind) {
            let (src, dst) = shape.address_constraints(family);
            members[usize::from(src) * 2 + usize::from(dst)].push(i);
        }
    }
    let all: Vec<&Shape> = members.iter().flatten().map(|&i| &shapes[i]).collect();
    let mut class = Class::default();
    if all.is_empty() {
        return class;
    }
    match family {
        Family::V4 => {
            class.src_v4 = table(&all, |s| &s.src_v4);
            class.dst_v4 = table(&all, |s| &s.dst_v4);
        }
        Family::V6 => {
            class.src_v6 = table(&all, |s| &s.src_v6);
            class.dst_v6 = table(&all, |s| &s.dst_v6);
        }
    }
    class.src_ports = table(&all, |s| &s.sport);
    class.dst_ports = table(&all, |s| &s.dport);
    for (slot, members) in members.iter().enumerate() {
        if !members.is_empty() {
            let group = build_group(shapes, members, &mut class, family, slot);
            class.groups.push(group);
        }
    }
    class.groups.sort_by_key(|g| g.rules.first().copied());
    class.uses = class
        .groups
        .iter()
        .flat_map(|g| &g.dims)
        .fold(0, |acc, d| acc | d.table.bit());
    // Tables no group looks up are dropped.
    let used = |table: Table| class.uses & table.bit() != 0;
    if !used(Table::Src) {
        class.src_v4 = IntervalTable::default();
        class.src_v6 = IntervalTable::default();
    }
    if !used(Table::Dst) {
        class.dst_v4 = IntervalTable::default();
        class.dst_v6 = IntervalTable::default();
    }
    if !used(Table::SrcPort) {
        class.src_ports = IntervalTable::default();
    }
    if !used(Table::DstPort) {
        class.dst_ports = IntervalTable::default();
    }
    class
}

/// Builds the group of `members` (rule indices) at `slot`, filling its column of the class's
/// rows. Its source / destination dimensions are those of the slot: 2 = source, 1 = destination.
fn build_group(
    shapes: &[Shape],
    members: &[usize],
    class: &mut Class,
    family: Family,
    slot: usize,
) -> Group {
    let shapes: Vec<&Shape> = members.iter().map(|&i| &shapes[i]).collect();
    let mut vectors = Interner::new(members.len());
    let mut dims = Vec::new();
    let slot_id = u8::try_from(slot).unwrap_or(0);
    let dim = |table: Table| Dim {
        table,
        slot: slot_id,
    };
    let (src, dst) = (slot & 2 != 0, slot & 1 != 0);
    if src {
        match family {
            Family::V4 => {
                let spans: Vec<_> = shapes
                    .iter()
                    .map(|s| s.src_v4.spans(&class.src_v4))
                    .collect();
                let column = vectors.sweep(class.src_v4.len(), &spans);
                class.src_v4.set_column(slot, &column);
            }
            Family::V6 => {
                let spans: Vec<_> = shapes
                    .iter()
                    .map(|s| s.src_v6.spans(&class.src_v6))
                    .collect();
                let column = vectors.sweep(class.src_v6.len(), &spans);
                class.src_v6.set_column(slot, &column);
            }
        }
        dims.push(dim(Table::Src));
    }
    if dst {
        match family {
            Family::V4 => {
                let spans: Vec<_> = shapes
                    .iter()
                    .map(|s| s.dst_v4.spans(&class.dst_v4))
                    .collect();
                let column = vectors.sweep(class.dst_v4.len(), &spans);
                class.dst_v4.set_column(slot, &column);
            }
            Family::V6 => {
                let spans: Vec<_> = shapes
                    .iter()
                    .map(|s| s.dst_v6.spans(&class.dst_v6))
                    .collect();
                let column = vectors.sweep(class.dst_v6.len(), &spans);
                class.dst_v6.set_column(slot, &column);
            }
        }
        dims.push(dim(Table::Dst));
    }
    if shapes.iter().any(|s| s.sport.is_ranges()) {
        let spans: Vec<_> = shapes
            .iter()
            .map(|s| s.sport.spans(&class.src_ports))
            .collect();
        let column = vectors.sweep(class.src_ports.len(), &spans);
        class.src_ports.set_column(slot, &column);
        dims.push(dim(Table::SrcPort));
    }
    if shapes.iter().any(|s| s.dport.is_ranges()) {
        let spans: Vec<_> = shapes
            .iter()
            .map(|s| s.dport.spans(&class.dst_ports))
            .collect();
        let column = vectors.sweep(class.dst_ports.len(), &spans);
        class.dst_ports.set_column(slot, &column);
        dims.push(dim(Table::DstPort));
    }
    if shapes.iter().any(|s| s.icmp.is_some()) {
        let spans: Vec<_> = shapes
            .iter()
            .map(|s| match &s.icmp {
                None => vec![(0, 256)],
                Some(types) => types
                    .iter()
                    .map(|&t| (usize::from(t), usize::from(t) + 1))
                    .collect(),
            })
            .collect();
        let column = vectors.sweep(256, &spans);
        class.icmp_types.resize(256, [0; SLOTS]);
        for (row, &offset) in class.icmp_types.iter_mut().zip(&column) {
            row[slot] = offset;
        }
        dims.push(dim(Table::IcmpType));
    }
    if dims.is_empty() {
        let column = vectors.sweep(1, &vec![vec![(0, 1)]; shapes.len()]);
        class.all[slot] = column.first().copied().unwrap_or(0);
        dims.push(dim(Table::All));
    }
    let mut fqdn = vec![0_u64; members.len().div_ceil(64)];
    for (local, shape) in shapes.iter().enumerate() {
        if shape.fqdn {
            fqdn[local / 64] |= 1 << (local % 64);
        }
    }
    if fqdn.iter().all(|&w| w == 0) {
        fqdn = Vec::new();
    }
    let mut arena = vectors.arena;
    arena.shrink_to_fit();
    Group {
        dims,
        summary_words: vectors.summary_words,
        vectors: arena,
        rules: members.iter().map(|&i| rule_index(i)).collect(),
        fqdn,
    }
}

/// `index` as a rule number; `compile` keeps the list below `u32::MAX` rules.
fn rule_index(index: usize) -> u32 {
    u32::try_from(index).unwrap_or(super::NO_RULE)
}

/// A group's distinct bit vectors, packed, as they are found.
struct Interner {
    /// u64 words per (unpacked) vector.
    words: usize,
    summary_words: usize,
    /// Bits past the members are never set.
    members: usize,
    /// Packed vectors: summary words, then the non-zero words.
    arena: Vec<u64>,
    /// Hash of a vector's set bits to the offset of the first vector with that hash.
    seen: HashMap<u64, u32>,
    /// The vector being interned, packed.
    scratch: Vec<u64>,
}

impl Interner {
    fn new(members: usize) -> Interner {
        let words = members.div_ceil(64);
        Interner {
            words,
            summary_words: words.div_ceil(64),
            members,
            arena: Vec::new(),
            seen: HashMap::new(),
            scratch: Vec::new(),
        }
    }

    /// The vector offset of each of `intervals` intervals, `spans[m]` being the half-open
    /// interval ranges that member `m` matches (possibly overlapping).
    fn sweep(&mut self, intervals: usize, spans: &[Vec<(usize, usize)>]) -> Vec<u32> {
        debug_assert_eq!(spans.len(), self.members);
        // (interval, member, start or end)
        let mut events: Vec<(usize, usize, bool)> = Vec::new();
        for (member, list) in spans.iter().enumerate() {
            for &(start, end) in list {
                events.push((start, member, true));
                if end < intervals {
                    events.push((end, member, false));
                }
            }
        }
        events.sort_unstable_by_key(|&(at, _, _)| at);
        let mut depth = vec![0_u32; self.members];
        let mut current = vec![0_u64; self.words];
        let mut hash = 0_u64;
        let mut offsets = Vec::with_capacity(intervals);
        let mut next = 0;
        let mut offset = 0;
        for interval in 0..intervals {
            let mut changed = interval == 0;
            while let Some(&(at, member, start)) = events.get(next) {
                if at != interval {
                    break;
                }
                next += 1;
                let d = &mut depth[member];
                let flips = if start {
                    *d += 1;
                    *d == 1
                } else {
                    *d -= 1;
                    *d == 0
                };
                if flips {
                    current[member / 64] ^= 1 << (member % 64);
                    hash ^= zobrist(member);
                    changed = true;
                }
            }
            if changed {
                offset = self.intern(&current, hash);
            }
            offsets.push(offset);
        }
        offsets
    }

    /// The offset of `vector` (unpacked) in the arena, packed, added if new.
    fn intern(&mut self, vector: &[u64], hash: u64) -> u32 {
        self.scratch.clear();
        self.scratch.resize(self.summary_words, 0);
        for (w, &word) in vector.iter().enumerate() {
            if word != 0 {
                self.scratch[w / 64] |= 1 << (w % 64);
                self.scratch.push(word);
            }
        }
        if let Some(&offset) = self.seen.get(&hash) {
            let start = offset as usize;
            if self.arena.get(start..start + self.scratch.len()) == Some(&self.scratch[..]) {
                return offset;
            }
            // A hash collision: store the vector again, which is correct, merely not shared.
        }
        let offset = u32::try_from(self.arena.len()).unwrap_or(u32::MAX);
        self.arena.extend_from_slice(&self.scratch);
        self.seen.entry(hash).or_insert(offset);
        offset
    }
}

/// A fixed pseudo-random 64-bit value per member (splitmix64): a vector's hash is the XOR of its
/// members' values, updated in O(1) per flipped bit.
fn zobrist(member: usize) -> u64 {
    let mut z = (member as u64)
        .wrapping_add(1)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
