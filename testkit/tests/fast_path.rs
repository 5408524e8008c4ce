//! The established fast path of `Pipeline::process_burst` (IPv4 read from fixed offsets, its
//! own expiry check) decides every packet as `Pipeline::process` does one at a time, across
//! idle timeouts and policy reloads, for TCP and UDP over IPv4 and IPv6.

use std::sync::Arc;

use dataplane::pipeline::{Disposition, Effects};
use dataplane::{Decision, Pipeline, PipelineConfig, PipelineStats, Policy, Reason, Side};
use proptest::prelude::*;
use testkit::{Pkt, tcp};

const CONFIG: &str = r#"
[ports.inside]
device = "a"
[ports.outside]
device = "b"
[flows]
capacity = 64
tcp_established_timeout = "5s"
tcp_transitory_timeout = "2s"
udp_timeout = "3s"
[[rule]]
name = "web"
action = "allow"
proto = "tcp"
dst_ports = ["443"]
[[rule]]
name = "udp"
action = "allow"
proto = "udp"
"#;

const SECOND: u64 = 1_000_000_000;

fn policy(generation: u64) -> Arc<Policy> {
    let cfg = config::parse(CONFIG, "fast.toml").expect("valid");
    Arc::new(Policy::compile(&cfg, generation, 1))
}

fn pipeline() -> Pipeline<Vec<u8>> {
    let cfg = config::parse(CONFIG, "fast.toml").expect("valid");
    Pipeline::new(
        PipelineConfig::from_config(&cfg, 0, 11),
        policy(1),
        Arc::new(PipelineStats::default()),
    )
}

/// One packet of one of four flows (TCP and UDP, over IPv4 and IPv6), either direction.
#[derive(Debug, Clone, Copy)]
struct Step {
    flow: usize,
    reply: bool,
    flags: u8,
}

fn frame(s: Step) -> (Vec<u8>, Side) {
    let (client, server) = if s.flow % 2 == 0 {
        ("10.0.0.2", "192.0.2.10")
    } else {
        ("fd00::2", "2001:db8::10")
    };
    let (src, dst, side) = if s.reply {
        (server, client, Side::Outside)
    } else {
        (client, server, Side::Inside)
    };
    let (sport, dport) = if s.reply { (443, 40000) } else { (40000, 443) };
    let p = Pkt::new(src, dst);
    let p = if s.flow < 2 {
        p.tcp(sport, dport, s.flags)
    } else {
        p.udp(sport, dport)
    };
    (p.build(), side)
}

fn step() -> impl Strategy<Value = Step> {
    let flags = prop_oneof![
        6 => Just(tcp::ACK),
        1 => Just(tcp::SYN),
        1 => Just(tcp::SYN | tcp::ACK),
        1 => Just(tcp::FIN | tcp::ACK),
        1 => Just(tcp::RST),
    ];
    (0usize..4, any::<bool>(), flags).prop_map(|(flow, reply, flags)| Step { flow, reply, flags })
}

/// A burst: its packets, how long before it (ms) and whether a reload comes first.
fn bursts() -> impl Strategy<Value = Vec<(Vec<Step>, u64, bool)>> {
    let gap = prop_oneof![4 => 0u64..1_000, 1 => 1_000u64..8_000];
    proptest::collection::vec(
        (
            proptest::collection::vec(step(), 1..12),
            gap,
            proptest::bool::weighted(0.1),
        ),
        1..30,
    )
}

/// Every flow opened properly first, so that most later packets are established ones.
fn handshakes() -> Vec<Step> {
    let mut v = Vec::new();
    for flow in 0..4 {
        v.push(Step {
            flow,
            reply: false,
            flags: tcp::SYN,
        });
        v.push(Step {
            flow,
            reply: true,
            flags: tcp::SYN | tcp::ACK,
        });
        v.push(Step {
            flow,
            reply: false,
            flags: tcp::ACK,
        });
    }
    v
}

/// Runs the bursts through a pipeline, one `process_burst` per side change within a burst
/// (`staged`) or one `process` per packet; returns each packet's (passed, decision).
fn run(script: &[(Vec<Step>, u64, bool)], staged: bool) -> Vec<(bool, Decision)> {
    let mut p = pipeline();
    let mut fx = Effects::default();
    let (mut now, mut generation, mut out) = (SECOND, 1, Vec::new());
    let all = std::iter::once((handshakes(), 0, false)).chain(script.iter().cloned());
    for (steps, gap_ms, reload) in all {
        now += gap_ms * 1_000_000;
        if reload {
            generation += 1;
            p.set_policy(policy(generation));
        }
        let frames: Vec<(Vec<u8>, Side)> = steps.iter().map(|&s| frame(s)).collect();
        if staged {
            for run in frames.chunk_by(|a, b| a.1 == b.1) {
                let side = run[0].1;
                let pkts = run.iter().map(|(f, _)| f.clone());
                p.process_burst(pkts, side, now, &mut fx, |d, dec| {
                    out.push((matches!(d, Disposition::Pass(_)), dec));
                });
            }
        } else {
            for (f, side) in frames {
                let (d, dec) = p.process(f, side, now, &mut fx);
                out.push((matches!(d, Disposition::Pass(_)), dec));
            }
        }
        p.maintain(now, || u64::MAX, &mut fx);
    }
    out
}

proptest! {
    #[test]
    fn bursts_decide_like_packets_one_by_one(script in bursts()) {
        prop_assert_eq!(run(&script, true), run(&script, false));
    }
}

/// The property is not vacuous: its scripts reach the fast path often, and flows time out on
/// it (an expired established flow's next ACK is refused as no flow).
#[test]
fn the_scripts_use_the_fast_path_and_its_expiry() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut established, mut no_flow) = (0, 0);
    for _ in 0..50 {
        let script = bursts().new_tree(&mut runner).expect("a script").current();
        for (_, d) in run(&script, true) {
            established += usize::from(d.reason == Reason::Established);
            no_flow += usize::from(d.reason == Reason::Dropped(dataplane::DropReason::NoFlow));
        }
    }
    assert!(established > 200, "{established} established");
    assert!(no_flow > 10, "{no_flow} refused as no flow");
}

/// An established IPv4 flow idle past its timeout is gone on the fast path as on the other.
#[test]
fn an_idle_ipv4_flow_expires_on_the_fast_path() {
    let ack = |reply| Step {
        flow: 0,
        reply,
        flags: tcp::ACK,
    };
    let script = vec![
        (vec![ack(false), ack(true)], 4_900, false),
        (vec![ack(false)], 5_100, false),
    ];
    let got = run(&script, true);
    assert_eq!(got, run(&script, false));
    let reasons: Vec<Reason> = got.iter().map(|(_, d)| d.reason).collect();
    assert_eq!(
        &reasons[12..14],
        &[Reason::Established, Reason::Established]
    );
    assert_eq!(reasons[14], Reason::Dropped(dataplane::DropReason::NoFlow));
}
