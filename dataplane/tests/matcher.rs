//! The rule matcher against a linear scan written from CONTRACT.md's rule semantics: random rule
//! sets with overlapping CIDRs of both families, port ranges, ICMP types and FQDN rules, and
//! random tuples biased toward the rules' boundaries.
//!
//! `cargo test --release -p dataplane --test matcher -- --nocapture` also prints the lookup cost
//! for 100, 1k and 10k random rules (informative, not checked). To profile one row, run
//! `lookup_cost` with `MATCHER_BENCH_ROW="specific 10000"` (workload and rule count) and, say,
//! `MATCHER_BENCH_LOOKUPS=20000000`.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use config::{Action, Cidr, DomainPattern, FqdnMatch, PortRange, Proto, Rule};
use dataplane::Side;
use dataplane::policy::matcher::{Matcher, Tuple};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// The reference: the contract's semantics, one rule at a time.

fn reference(rules: &[Rule], t: &Tuple, fqdn_ok: &[u32]) -> Option<u32> {
    (0_u32..)
        .zip(rules)
        .find(|(index, rule)| rule_matches(rule, *index, t, fqdn_ok))
        .map(|(index, _)| index)
}

fn rule_matches(rule: &Rule, index: u32, t: &Tuple, fqdn_ok: &[u32]) -> bool {
    let side = match rule.from {
        config::Side::Any => true,
        config::Side::Inside => t.side == Side::Inside,
        config::Side::Outside => t.side == Side::Outside,
    };
    let proto = match rule.proto {
        Proto::Tcp => t.proto == 6,
        Proto::Udp => t.proto == 17,
        Proto::Icmp => t.proto == 1 && t.src.is_ipv4(),
        Proto::Icmpv6 => t.proto == 58 && t.src.is_ipv6(),
        Proto::Any => true,
    };
    let cidr = |list: &[Cidr], ip: IpAddr| list.is_empty() || list.iter().any(|c| c.contains(ip));
    let port = |list: &[PortRange], p: u16| list.is_empty() || list.iter().any(|r| r.contains(p));
    side && proto
        && cidr(&rule.src_cidr, t.src)
        && cidr(&rule.dst_cidr, t.dst)
        && port(&rule.src_ports, t.sport)
        && port(&rule.dst_ports, t.dport)
        && (rule.icmp_types.is_empty() || rule.icmp_types.contains(&t.icmp_type))
        && (rule.dst_fqdn.is_empty() || fqdn_ok.binary_search(&index).is_ok())
}

// ---------------------------------------------------------------------------------------------
// Random rules and tuples.

/// splitmix64: small, deterministic, good enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n).expect("small n")).expect("below n")
    }

    fn percent(&mut self, p: usize) -> bool {
        self.below(100) < p
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    fn u8(&mut self) -> u8 {
        self.next().to_le_bytes()[0]
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.next().to_le_bytes()[..4].try_into().expect("4 bytes"))
    }

    fn u128(&mut self) -> u128 {
        u128::from(self.next()) << 64 | u128::from(self.next())
    }
}

const HOT_V4: [u32; 6] = [
    0x0a00_0000,
    0x0a01_0000,
    0xc0a8_0100,
    0xac10_0000,
    0,
    u32::MAX,
];
const HOT_V6: [u128; 6] = [
    0xfd00 << 112,
    0x2001_0db8 << 96,
    0x2001_0db8_0001 << 80,
    0,
    u128::MAX,
    0xffff_0a00_0000,
];
const HOT_PORTS: [u16; 8] = [0, 22, 53, 80, 443, 8080, 65535, 1024];
const HOT_TYPES: [u8; 10] = [0, 3, 8, 11, 128, 129, 133, 135, 136, 255];

/// An address near a hot base most of the time, anywhere otherwise.
fn v4(rng: &mut Rng) -> u32 {
    if rng.percent(70) {
        let near = rng.u32() & (u32::MAX >> (8 + rng.below(24)));
        rng.pick(&HOT_V4) ^ near
    } else {
        rng.u32()
    }
}

fn v6(rng: &mut Rng) -> u128 {
    if rng.percent(70) {
        let near = rng.u128() & (u128::MAX >> (64 + rng.below(64)));
        rng.pick(&HOT_V6) ^ near
    } else {
        rng.u128()
    }
}

/// How broad random rules are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Profile {
    /// Any field may be left out, prefixes of any length: catch-alls and deep overlaps.
    Mixed,
    /// Every rule names destinations, prefixes mostly /16 and longer (IPv6 /32 and longer), half
    /// of them anywhere, rarely `proto = "any"`: a large rule base, where a packet's match can be anywhere.
    Specific,
}

fn cidr(rng: &mut Rng, profile: Profile) -> Cidr {
    if rng.percent(55) {
        let prefix = match profile {
            Profile::Mixed if rng.percent(4) => 0,
            Profile::Mixed => 1 + rng.below(32),
            Profile::Specific if rng.percent(5) => 8 + rng.below(8),
            Profile::Specific => 16 + rng.below(17),
        };
        let mask = u32::MAX
            .checked_shl(u32::try_from(32 - prefix).expect("prefix"))
            .unwrap_or(0);
        let spread = profile == Profile::Specific && rng.percent(50);
        let addr = Ipv4Addr::from(if spread { rng.u32() } else { v4(rng) } & mask);
        Cidr::new(addr.into(), u8::try_from(prefix).expect("prefix")).expect("masked")
    } else {
        let prefix = match profile {
            Profile::Mixed if rng.percent(4) => 0,
            Profile::Mixed => 1 + rng.below(128),
            Profile::Specific => 32 + rng.below(97),
        };
        let mask = u128::MAX
            .checked_shl(u32::try_from(128 - prefix).expect("prefix"))
            .unwrap_or(0);
        let spread = profile == Profile::Specific && rng.percent(50);
        let addr = Ipv6Addr::from(if spread { rng.u128() } else { v6(rng) } & mask);
        Cidr::new(addr.into(), u8::try_from(prefix).expect("prefix")).expect("masked")
    }
}

fn port_range(rng: &mut Rng) -> PortRange {
    let lo = if rng.percent(50) {
        rng.pick(&HOT_PORTS)
    } else {
        rng.u16()
    };
    let span = match rng.below(4) {
        0 | 1 => 0,
        2 => rng.below(100),
        _ => rng.below(65536),
    };
    let hi = u16::try_from((usize::from(lo) + span).min(65535)).expect("clamped");
    PortRange::new(lo, hi).expect("lo <= hi")
}

fn some<T>(rng: &mut Rng, percent: usize, mut item: impl FnMut(&mut Rng) -> T) -> Vec<T> {
    if rng.percent(percent) {
        let n = 1 + rng.below(3);
        (0..n).map(|_| item(rng)).collect()
    } else {
        Vec::new()
    }
}

/// A valid rule (ports only with TCP and UDP, types only with ICMP): `config` guarantees that.
fn random_rule(rng: &mut Rng, index: usize, profile: Profile) -> Rule {
    let from = rng.pick(&[
        config::Side::Any,
        config::Side::Inside,
        config::Side::Outside,
    ]);
    let any = if profile == Profile::Mixed { 20 } else { 5 };
    let proto = match rng.below(100) {
        p if p < any => Proto::Any,
        p if p < any + (100 - any) * 4 / 9 => Proto::Tcp,
        p if p < any + (100 - any) * 7 / 9 => Proto::Udp,
        p if p < any + (100 - any) * 8 / 9 => Proto::Icmp,
        _ => Proto::Icmpv6,
    };
    let ports = matches!(proto, Proto::Tcp | Proto::Udp);
    let types = matches!(proto, Proto::Icmp | Proto::Icmpv6);
    let fqdn: DomainPattern = "example.com".parse().expect("pattern");
    let dst_percent = if profile == Profile::Mixed { 80 } else { 100 };
    Rule {
        name: format!("r{index}"),
        action: Action::Allow,
        from,
        proto,
        src_cidr: some(rng, 45, |r| cidr(r, profile)),
        dst_cidr: some(rng, dst_percent, |r| cidr(r, profile)),
        src_ports: if ports {
            some(rng, 15, port_range)
        } else {
            Vec::new()
        },
        dst_ports: if ports {
            some(rng, 70, port_range)
        } else {
            Vec::new()
        },
        icmp_types: if types {
            some(rng, 50, |r| {
                if r.percent(80) {
                    r.pick(&HOT_TYPES)
                } else {
                    r.u8()
                }
            })
        } else {
            Vec::new()
        },
        dst_fqdn: if rng.percent(10) {
            vec![fqdn]
        } else {
            Vec::new()
        },
        fqdn_match: FqdnMatch::Dns,
        line: index + 1,
    }
}

fn random_rules(count: usize, seed: u64, profile: Profile) -> Vec<Rule> {
    let mut rng = Rng(seed);
    (0..count)
        .map(|i| random_rule(&mut rng, i, profile))
        .collect()
}

/// An address or port, for values at and around range ends.
trait Scalar: Copy {
    /// A value in `lo..hi` (`lo` when they are equal).
    fn between(rng: &mut Rng, lo: Self, hi: Self) -> Self;
    /// The next value up or down, wrapping.
    fn step(self, up: bool) -> Self;
}

macro_rules! scalar {
    ($($t:ty => $random:ident),*) => {$(
        impl Scalar for $t {
            fn between(rng: &mut Rng, lo: Self, hi: Self) -> Self {
                lo + rng.$random() % (hi - lo).max(1)
            }

            fn step(self, up: bool) -> Self {
                if up { self.wrapping_add(1) } else { self.wrapping_sub(1) }
            }
        }
    )*};
}

scalar!(u16 => u16, u32 => u32, u128 => u128);

/// A value of one of `ranges` (inclusive): an end or a middle, or just outside 1 time in 5.
fn near<T: Scalar>(rng: &mut Rng, ranges: &[(T, T)]) -> T {
    let (lo, hi) = rng.pick(ranges);
    match rng.below(10) {
        0..3 => lo,
        3..6 => hi,
        6..8 => T::between(rng, lo, hi),
        8 => lo.step(false),
        _ => hi.step(true),
    }
}

fn v4_ranges(cidrs: &[Cidr]) -> Vec<(u32, u32)> {
    cidrs
        .iter()
        .filter_map(|c| match c.addr() {
            IpAddr::V4(a) => {
                let lo = u32::from(a);
                Some((
                    lo,
                    lo | u32::MAX.checked_shr(u32::from(c.prefix())).unwrap_or(0),
                ))
            }
            IpAddr::V6(_) => None,
        })
        .collect()
}

fn v6_ranges(cidrs: &[Cidr]) -> Vec<(u128, u128)> {
    cidrs
        .iter()
        .filter_map(|c| match c.addr() {
            IpAddr::V6(a) => {
                let lo = u128::from(a);
                Some((
                    lo,
                    lo | u128::MAX.checked_shr(u32::from(c.prefix())).unwrap_or(0),
                ))
            }
            IpAddr::V4(_) => None,
        })
        .collect()
}

/// Random tuples for a rule set: half aimed at one rule (its side and protocol, values at or
/// just past its range ends), half mixing every rule's boundaries.
struct Tuples<'a> {
    rules: &'a [Rule],
    v4: Vec<u32>,
    v6: Vec<u128>,
    ports: Vec<u16>,
    types: Vec<u8>,
    fqdn_rules: Vec<u32>,
}

impl<'a> Tuples<'a> {
    fn new(rules: &'a [Rule]) -> Tuples<'a> {
        let mut b = Tuples {
            rules,
            v4: Vec::new(),
            v6: Vec::new(),
            ports: Vec::new(),
            types: Vec::new(),
            fqdn_rules: Vec::new(),
        };
        for (index, rule) in (0_u32..).zip(rules) {
            for list in [&rule.src_cidr, &rule.dst_cidr] {
                for (lo, hi) in v4_ranges(list) {
                    b.v4.extend([lo, hi, lo.wrapping_sub(1), hi.wrapping_add(1)]);
                }
                for (lo, hi) in v6_ranges(list) {
                    b.v6.extend([lo, hi, lo.wrapping_sub(1), hi.wrapping_add(1)]);
                }
            }
            for p in rule.src_ports.iter().chain(&rule.dst_ports) {
                b.ports.extend([
                    p.lo(),
                    p.hi(),
                    p.lo().wrapping_sub(1),
                    p.hi().wrapping_add(1),
                ]);
            }
            b.types.extend(&rule.icmp_types);
            if !rule.dst_fqdn.is_empty() {
                b.fqdn_rules.push(index);
            }
        }
        b
    }

    fn v4(&self, rng: &mut Rng) -> u32 {
        if !self.v4.is_empty() && rng.percent(70) {
            rng.pick(&self.v4)
        } else {
            v4(rng)
        }
    }

    fn v6(&self, rng: &mut Rng) -> u128 {
        if !self.v6.is_empty() && rng.percent(70) {
            rng.pick(&self.v6)
        } else {
            v6(rng)
        }
    }

    fn port(&self, rng: &mut Rng) -> u16 {
        if !self.ports.is_empty() && rng.percent(70) {
            rng.pick(&self.ports)
        } else {
            rng.u16()
        }
    }

    fn icmp_type(&self, rng: &mut Rng) -> u8 {
        if !self.types.is_empty() && rng.percent(70) {
            rng.pick(&self.types)
        } else {
            rng.u8()
        }
    }

    /// A tuple as the dataplane builds them: ports only for TCP and UDP, a type only for ICMP.
    fn tuple(&self, rng: &mut Rng) -> Tuple {
        if !self.rules.is_empty() && rng.percent(50) {
            return self.aimed(rng);
        }
        let is_v4 = rng.percent(55);
        let proto = match rng.below(100) {
            0..35 => 6,
            35..60 => 17,
            60..75 => {
                if is_v4 {
                    1
                } else {
                    58
                }
            }
            75..80 => {
                if is_v4 {
                    58
                } else {
                    1
                }
            }
            80..90 => 47,
            _ => rng.u8(),
        };
        let (src, dst) = if is_v4 {
            (
                IpAddr::V4(self.v4(rng).into()),
                IpAddr::V4(self.v4(rng).into()),
            )
        } else {
            (
                IpAddr::V6(self.v6(rng).into()),
                IpAddr::V6(self.v6(rng).into()),
            )
        };
        let side = if rng.percent(50) {
            Side::Inside
        } else {
            Side::Outside
        };
        self.finish(rng, side, proto, src, dst)
    }

    /// A tuple at the edges of one rule's fields, matching it more often than not.
    fn aimed(&self, rng: &mut Rng) -> Tuple {
        let rule = &self.rules[rng.below(self.rules.len())];
        let side = match rule.from {
            config::Side::Inside => Side::Inside,
            config::Side::Outside => Side::Outside,
            config::Side::Any => {
                if rng.percent(50) {
                    Side::Inside
                } else {
                    Side::Outside
                }
            }
        };
        let first_family = rule
            .dst_cidr
            .iter()
            .chain(&rule.src_cidr)
            .next()
            .map(|c| c.addr().is_ipv4());
        let is_v4 = match rule.proto {
            Proto::Icmp => true,
            Proto::Icmpv6 => false,
            _ => first_family.unwrap_or_else(|| rng.percent(55)),
        };
        let proto = match rule.proto {
            Proto::Tcp => 6,
            Proto::Udp => 17,
            Proto::Icmp => 1,
            Proto::Icmpv6 => 58,
            Proto::Any => rng.pick(&[6, 17, 47, if is_v4 { 1 } else { 58 }]),
        };
        let address = |rng: &mut Rng, list: &[Cidr]| {
            if is_v4 {
                let ranges = v4_ranges(list);
                let a = if ranges.is_empty() {
                    self.v4(rng)
                } else {
                    near(rng, &ranges)
                };
                IpAddr::V4(a.into())
            } else {
                let ranges = v6_ranges(list);
                let a = if ranges.is_empty() {
                    self.v6(rng)
                } else {
                    near(rng, &ranges)
                };
                IpAddr::V6(a.into())
            }
        };
        let src = address(rng, &rule.src_cidr);
        let dst = address(rng, &rule.dst_cidr);
        let mut t = self.finish(rng, side, proto, src, dst);
        let port = |rng: &mut Rng, list: &[PortRange], fallback: u16| {
            if list.is_empty() {
                return fallback;
            }
            let ranges: Vec<(u16, u16)> = list.iter().map(|p| (p.lo(), p.hi())).collect();
            near(rng, &ranges)
        };
        if proto == 6 || proto == 17 {
            t.sport = port(rng, &rule.src_ports, t.sport);
            t.dport = port(rng, &rule.dst_ports, t.dport);
        }
        if !rule.icmp_types.is_empty() && rng.percent(85) {
            t.icmp_type = rng.pick(&rule.icmp_types);
        }
        t
    }

    fn finish(&self, rng: &mut Rng, side: Side, proto: u8, src: IpAddr, dst: IpAddr) -> Tuple {
        let ports = proto == 6 || proto == 17;
        let icmp = (proto == 1 && src.is_ipv4()) || (proto == 58 && src.is_ipv6());
        Tuple {
            side,
            proto,
            src,
            dst,
            sport: if ports { self.port(rng) } else { 0 },
            dport: if ports { self.port(rng) } else { 0 },
            icmp_type: if icmp { self.icmp_type(rng) } else { 0 },
        }
    }

    /// A random subset of the FQDN rules, sorted.
    fn fqdn_ok(&self, rng: &mut Rng) -> Vec<u32> {
        self.fqdn_rules
            .iter()
            .copied()
            .filter(|_| rng.percent(50))
            .collect()
    }

    /// Up to three FQDN rules, sorted: what one destination satisfies in practice.
    fn few_fqdn_ok(&self, rng: &mut Rng) -> Vec<u32> {
        if self.fqdn_rules.is_empty() {
            return Vec::new();
        }
        let mut ok: Vec<u32> = (0..rng.below(4))
            .map(|_| rng.pick(&self.fqdn_rules))
            .collect();
        ok.sort_unstable();
        ok.dedup();
        ok
    }
}

/// Checks `tuples` random tuples against the reference; returns the matches' rule indices.
fn check_against_reference(rules: &[Rule], tuples: usize, seed: u64) -> Vec<u32> {
    let matcher = Matcher::new(rules);
    assert_eq!(matcher.rule_count(), rules.len());
    let generator = Tuples::new(rules);
    let mut rng = Rng(seed);
    let mut matched = Vec::new();
    for _ in 0..tuples {
        let t = generator.tuple(&mut rng);
        let fqdn_ok = generator.fqdn_ok(&mut rng);
        let expected = reference(rules, &t, &fqdn_ok);
        assert_eq!(
            matcher.first_match(&t, &fqdn_ok),
            expected,
            "{t:?} fqdn_ok {fqdn_ok:?}"
        );
        matched.extend(expected);
    }
    matched
}

proptest! {
    // No regression file: a failure prints its minimal input, to be turned into a unit test.
    #![proptest_config(ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Each rule comes from its own seed, so shrinking drops rules and simplifies the others.
    #[test]
    fn first_match_equals_a_linear_scan(
        seeds in prop::collection::vec(any::<u64>(), 0..200),
        specific in any::<bool>(),
        tuple_seed in any::<u64>(),
    ) {
        let profile = if specific { Profile::Specific } else { Profile::Mixed };
        let rules: Vec<Rule> = seeds
            .iter()
            .enumerate()
            .map(|(i, &seed)| random_rule(&mut Rng(seed), i, profile))
            .collect();
        check_against_reference(&rules, 200, tuple_seed);
    }
}

#[test]
fn ten_thousand_rules_agree_with_a_linear_scan() {
    let rules = random_rules(10_000, 7, Profile::Specific);
    let matched = check_against_reference(&rules, 20_000, 8);
    // Both outcomes, and matches all over the rule list, are exercised.
    assert!(
        matched.len() > 2_000 && matched.len() < 18_000,
        "{} of 20000 matched",
        matched.len()
    );
    let late = matched.iter().filter(|&&rule| rule >= 5_000).count();
    assert!(
        late > matched.len() / 10,
        "{late} of {} matches past rule 5000",
        matched.len()
    );
}

/// Rules that all fall in one class (inside, IPv4, TCP) and one group (source and destination
/// constrained), so that the group's vectors span several summary words (4096 rules each) and
/// every dimension is looked up; half the rules set a source port range, half a destination
/// port range, independently, so that a packet's dimensions often have rules in a word with no
/// rule in all of them (the candidate-word scan).
#[test]
fn a_group_of_thousands_of_rules_on_every_field_agrees_with_a_linear_scan() {
    let mut rng = Rng(11);
    let v4_cidr = |rng: &mut Rng| loop {
        let c = cidr(rng, Profile::Specific);
        if c.addr().is_ipv4() {
            break c;
        }
    };
    let rules: Vec<Rule> = (0..9_000)
        .map(|i| {
            let mut rule = random_rule(&mut rng, i, Profile::Specific);
            rule.from = config::Side::Inside;
            rule.proto = Proto::Tcp;
            rule.src_cidr = vec![v4_cidr(&mut rng)];
            rule.dst_cidr = vec![v4_cidr(&mut rng)];
            rule.src_ports = some(&mut rng, 50, port_range);
            rule.dst_ports = some(&mut rng, 50, port_range);
            rule.icmp_types = Vec::new();
            rule
        })
        .collect();
    let matched = check_against_reference(&rules, 15_000, 12);
    let past_first_word = matched.iter().filter(|&&r| r >= 4096).count();
    let past_second_word = matched.iter().filter(|&&r| r >= 8192).count();
    assert!(
        matched.len() > 1_000 && past_first_word > 500 && past_second_word > 50,
        "{} of 15000 matched, {past_first_word} past rule 4096, {past_second_word} past 8192",
        matched.len()
    );
}

/// Rules that each name one destination host, and packets that match none of them: the case
/// where a linear scan costs the most.
fn host_rules(count: usize) -> Vec<Rule> {
    (0..count)
        .map(|i| {
            let host = 0x0a00_0000 + u32::try_from(i).expect("count") * 7;
            let mut rule = random_rule(&mut Rng(0), i, Profile::Specific);
            rule.from = config::Side::Any;
            rule.proto = Proto::Tcp;
            rule.src_cidr = Vec::new();
            rule.dst_cidr = vec![Cidr::new(IpAddr::V4(host.into()), 32).expect("host")];
            rule.src_ports = Vec::new();
            rule.dst_ports = vec![PortRange::single(443)];
            rule.icmp_types = Vec::new();
            rule.dst_fqdn = Vec::new();
            rule
        })
        .collect()
}

#[test]
fn lookup_cost() {
    let lookups = if cfg!(debug_assertions) {
        20_000
    } else {
        1_000_000
    };
    let lookups = std::env::var("MATCHER_BENCH_LOOKUPS")
        .ok()
        .and_then(|l| l.parse().ok())
        .unwrap_or(lookups);
    let only = std::env::var("MATCHER_BENCH_ROW").ok();
    println!(
        "matcher lookup cost ({lookups} lookups per row; release numbers are the meaningful ones):"
    );
    for (workload, count) in [
        ("mixed", 100),
        ("mixed", 1_000),
        ("mixed", 10_000),
        ("specific", 100),
        ("specific", 1_000),
        ("specific", 10_000),
        ("hosts, no match", 100),
        ("hosts, no match", 1_000),
        ("hosts, no match", 10_000),
    ] {
        if only
            .as_ref()
            .is_some_and(|o| *o != format!("{workload} {count}"))
        {
            continue;
        }
        let rules = match workload {
            "mixed" => random_rules(count, 42, Profile::Mixed),
            "specific" => random_rules(count, 42, Profile::Specific),
            _ => host_rules(count),
        };
        let started = Instant::now();
        let matcher = Matcher::new(&rules);
        let compile = started.elapsed();
        let generator = Tuples::new(&rules);
        let mut rng = Rng(43);
        let mut tuples: Vec<(Tuple, Vec<u32>)> = (0..4096)
            .map(|_| (generator.tuple(&mut rng), generator.few_fqdn_ok(&mut rng)))
            .collect();
        if workload.starts_with("hosts") {
            for (t, _) in &mut tuples {
                t.proto = 6;
                t.src = IpAddr::V4(rng.u32().into());
                t.dst = IpAddr::V4((0x0a00_0001 + rng.u32() % 70_000 * 7).into());
                t.dport = 443;
            }
        }
        let answers: Vec<Option<u32>> = tuples
            .iter()
            .map(|(t, ok)| matcher.first_match(t, ok))
            .collect();
        let matched = answers.iter().flatten().count();
        let mean_rule = if matched == 0 {
            "-".to_owned()
        } else {
            let sum: f64 = answers.iter().flatten().map(|&r| f64::from(r)).sum();
            format!(
                "{:.0}",
                sum / f64::from(u32::try_from(matched).expect("small"))
            )
        };
        // The best of five rounds: the machine may be shared.
        let mut best = f64::INFINITY;
        for _ in 0..5 {
            let started = Instant::now();
            let mut found = 0_u64;
            for i in 0..lookups {
                let (t, ok) = &tuples[i % tuples.len()];
                found += u64::from(black_box(&matcher).first_match(black_box(t), ok).is_some());
            }
            black_box(found);
            best = best.min(started.elapsed().as_secs_f64());
        }
        println!(
            "  {workload:>15} {count:>6} rules: {:>6.1} ns/lookup; {:>5.1}% matched, mean matching rule {:>6}; compile {:>7.1} ms; {:>6.2} MB",
            best * 1e9 / f64::from(u32::try_from(lookups).expect("lookups")),
            f64::from(u32::try_from(matched * 100).expect("small")) / 4096.0,
            mean_rule,
            compile.as_secs_f64() * 1e3,
            f64::from(u32::try_from(matcher.memory_bytes() / 1024).expect("small")) / 1024.0,
        );
    }
}
