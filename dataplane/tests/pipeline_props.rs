//! Properties of the packet path: no input makes it panic, and deciding a burst in stages is the
//! same as deciding its packets one by one.

use std::sync::Arc;

use dataplane::pipeline::{Disposition, Effects};
use dataplane::{Decision, Pipeline, PipelineConfig, PipelineStats, Policy, Side};
use proptest::prelude::*;

const CONFIG: &str = r#"
[ports.inside]
device = "a"
[ports.outside]
device = "b"
[flows]
capacity = 64
fragment_capacity = 8
[[rule]]
name = "web"
action = "allow"
proto = "tcp"
dst_ports = ["80", "443"]
[[rule]]
name = "refuse"
action = "reject"
dst_cidr = ["192.0.2.0/25", "2001:db8::/33"]
[[rule]]
name = "udp"
action = "allow"
proto = "udp"
[default]
action = "drop"
"#;

fn pipeline(seed: u64) -> Pipeline<Vec<u8>> {
    let cfg = config::parse(CONFIG, "props.toml").expect("valid");
    let policy = Arc::new(Policy::compile(&cfg, 1, 1));
    Pipeline::new(
        PipelineConfig::from_config(&cfg, 0, seed),
        policy,
        Arc::new(PipelineStats::default()),
    )
}

/// Frames that are mostly well-formed up to some layer, then anything: the interesting inputs.
fn frame() -> impl Strategy<Value = Vec<u8>> {
    let header = prop_oneof![
        // IPv4 with TCP/UDP/ICMP, maybe fragmented
        (
            any::<u8>(),
            0u8..4,
            any::<[u8; 4]>(),
            any::<u16>(),
            any::<u16>()
        )
            .prop_map(|(flags, p, dst, sport, dport)| {
                let proto = [6u8, 17, 1, 47][p as usize];
                let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
                f.extend_from_slice(&[
                    0x45,
                    0,
                    0,
                    60,
                    0,
                    1,
                    flags & 0x3f,
                    0,
                    64,
                    proto,
                    0,
                    0,
                    10,
                    0,
                    0,
                    2,
                ]);
                f.extend_from_slice(&dst);
                f.extend_from_slice(&sport.to_be_bytes());
                f.extend_from_slice(&dport.to_be_bytes());
                f
            }),
        // IPv6 with a random next header
        (any::<u8>(), any::<[u8; 16]>()).prop_map(|(nh, dst)| {
            let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xdd];
            f.extend_from_slice(&[0x60, 0, 0, 0, 0, 20, nh, 64]);
            f.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
            f.extend_from_slice(&dst);
            f
        }),
        // VLAN-tagged anything
        any::<[u8; 4]>().prop_map(|t| vec![
            2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x81, 0x00, t[0], t[1], t[2], t[3]
        ]),
        Just(Vec::new()),
    ];
    (header, proptest::collection::vec(any::<u8>(), 0..120)).prop_map(|(mut h, tail)| {
        h.extend_from_slice(&tail);
        h
    })
}

/// Frames close to the fast path's (untagged IPv4 or IPv6, TCP or UDP), with the fields it
/// checks (version and header length, fragment bits, lengths, TCP data offset, UDP length) right
/// or wrong by turns.
fn near_fast_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<bool>(),
        prop_oneof![3 => Just(6u8), 3 => Just(17), 1 => Just(1), 1 => any::<u8>()],
        prop_oneof![4 => Just(0x45u8), 1 => Just(0x46), 1 => Just(0x44), 1 => any::<u8>()],
        prop_oneof![4 => Just([0u8, 0]), 2 => Just([0x40, 0]), 1 => Just([0x20, 0]), 1 => any::<[u8; 2]>()],
        proptest::collection::vec(any::<u8>(), 0..48),
        prop_oneof![3 => Just(None), 1 => any::<u16>().prop_map(Some)],
        prop_oneof![2 => Just(5u8), 1 => 0u8..16],
        any::<u8>(),
        0usize..6,
    )
        .prop_map(|(v6, proto, vihl, frag, mut l4, length, doff, ulen, trailer)| {
            let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
            let l4_len = u16::try_from(l4.len()).expect("under 48 bytes");
            if l4.len() >= 13 {
                l4[12] = doff << 4;
            }
            if proto == 17 && l4.len() >= 6 {
                // The UDP length: the real one, or off by a little either way.
                let real = l4_len;
                let len = real.wrapping_add(u16::from(ulen % 5)).wrapping_sub(2);
                l4[4..6].copy_from_slice(&len.to_be_bytes());
            }
            if v6 {
                f.extend_from_slice(&[0x86, 0xdd]);
                let plen = length.unwrap_or(l4_len);
                f.extend_from_slice(&[0x60 | (vihl & 0x10), 0, 0, 0]);
                f.extend_from_slice(&plen.to_be_bytes());
                f.extend_from_slice(&[proto, 64]);
                f.extend_from_slice(&[0xfd; 16]);
                f.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]);
            } else {
                f.extend_from_slice(&[0x08, 0x00]);
                let total = length.unwrap_or(20 + l4_len);
                f.extend_from_slice(&[vihl, 0]);
                f.extend_from_slice(&total.to_be_bytes());
                f.extend_from_slice(&[0, 1, frag[0], frag[1], 64, proto, 0, 0]);
                f.extend_from_slice(&[10, 0, 0, 2, 192, 0, 2, 7]);
            }
            f.extend_from_slice(&l4);
            f.extend(std::iter::repeat_n(0xee, trailer));
            f
        })
}

fn sides() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Inside), Just(Side::Outside)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = dataplane::packet::parse(&bytes);
        let mut p = pipeline(1);
        let mut fx = Effects::default();
        let _ = p.process(bytes, Side::Outside, 5, &mut fx);
    }

    #[test]
    fn structured_garbage_never_panics(frames in proptest::collection::vec((frame(), sides()), 1..40)) {
        let mut p = pipeline(2);
        let mut fx = Effects::default();
        for (i, (f, side)) in frames.into_iter().enumerate() {
            let _ = p.process(f, side, i as u64 * 1_000_000_000, &mut fx);
            p.maintain(i as u64 * 1_000_000_000, || u64::MAX, &mut fx);
            fx.released.clear();
            fx.generated.clear();
        }
    }

    #[test]
    fn the_fast_reader_reads_what_the_parser_reads(frame in near_fast_frame()) {
        if let Some(ip) = dataplane::packet::parse_fast(&frame) {
            prop_assert_eq!(dataplane::packet::parse(&frame), Ok(dataplane::packet::Frame::Ip(ip)));
        }
    }

    #[test]
    fn the_ipv4_reader_reads_what_the_fast_reader_reads_as_ipv4(frame in near_fast_frame()) {
        use dataplane::flow::v4_bits;
        use dataplane::packet::{L4, parse_fast, read_v4};
        let fast = parse_fast(&frame).filter(|ip| !ip.v6);
        let summary = fast.and_then(|ip| match ip.l4 {
            L4::Tcp { sport, dport, flags, .. } => Some((ip, sport, dport, flags)),
            L4::Udp { sport, dport } => Some((ip, sport, dport, 0)),
            _ => None,
        });
        match (read_v4(&frame), summary) {
            (Some(v), Some((ip, sport, dport, flags))) => {
                prop_assert_eq!(
                    (v4_bits(v.src), v4_bits(v.dst), v.proto, v.sport, v.dport, v.tcp_flags),
                    (ip.src, ip.dst, ip.proto, sport, dport, flags)
                );
            }
            // Neither reads it: the general path does.
            (None, None) => {}
            (v, s) => prop_assert!(false, "IPv4 reader {:?}, fast reader {:?}", v, s),
        }
    }

    #[test]
    fn ipv4_keys_and_hashes_are_the_general_ones(
        src in any::<u32>(),
        dst in any::<u32>(),
        same_address in any::<bool>(),
        sport in any::<u16>(),
        dport in any::<u16>(),
        tcp in any::<bool>(),
        seed in any::<u64>(),
    ) {
        use dataplane::flow::{FlowKey, FlowTable, v4_bits};
        // The same address at both ends leaves the ports to order them.
        let dst = if same_address { src } else { dst };
        let proto = if tcp { 6 } else { 17 };
        let (key, fwd) = FlowKey::from_v4(src, dst, sport, dport, proto);
        prop_assert_eq!(
            (key, fwd),
            FlowKey::from_bits(v4_bits(src), v4_bits(dst), false, sport, dport, proto)
        );
        let table = FlowTable::new(16, seed);
        prop_assert_eq!(table.hash_v4(&key), table.hash(&key));
    }

    #[test]
    fn a_burst_decides_like_packets_one_by_one(
        bursts in proptest::collection::vec(proptest::collection::vec(frame(), 1..32), 1..6),
        side in sides(),
    ) {
        let mut one = pipeline(3);
        let mut staged = pipeline(3);
        let (mut fx1, mut fx2) = (Effects::default(), Effects::default());
        for (t, burst) in bursts.into_iter().enumerate() {
            let now = t as u64 * 10_000_000;
            let expected: Vec<(bool, Decision)> = burst
                .iter()
                .map(|f| {
                    let (d, dec) = one.process(f.clone(), side, now, &mut fx1);
                    (matches!(d, Disposition::Pass(_)), dec)
                })
                .collect();
            let mut got = Vec::new();
            staged.process_burst(burst, side, now, &mut fx2, |d, dec| got.push((matches!(d, Disposition::Pass(_)), dec)));
            prop_assert_eq!(got, expected);
            prop_assert_eq!(&fx1.generated, &fx2.generated);
            fx1.generated.clear();
            fx2.generated.clear();
        }
    }
}

/// The property above is not vacuous: the frames it draws reach the fast reader often, and
/// are refused by it often.
#[test]
fn near_fast_frames_are_read_by_the_fast_reader_often_and_not_always() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = near_fast_frame();
    let read = (0..1000)
        .filter(|_| {
            let frame = strategy.new_tree(&mut runner).expect("a frame").current();
            dataplane::packet::parse_fast(&frame).is_some()
        })
        .count();
    assert!((100..900).contains(&read), "{read} of 1000 read");
    // And the IPv4 reader, for the IPv4 property.
    let read = (0..1000)
        .filter(|_| {
            let frame = strategy.new_tree(&mut runner).expect("a frame").current();
            dataplane::packet::read_v4(&frame).is_some()
        })
        .count();
    assert!((50..900).contains(&read), "{read} of 1000 read as IPv4");
}
