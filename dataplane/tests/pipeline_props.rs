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
