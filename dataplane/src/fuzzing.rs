//! Entry points of the fuzz targets (`fuzz/`), also replayed over the corpora by `make test`
//! (testkit/tests/fuzz_corpus.rs). Each panics only if an invariant of the packet path breaks.

use std::sync::Arc;

use crate::packet::{self, Frame};
use crate::pipeline::{Disposition, Effects, Pipeline, PipelineConfig, PipelineStats};
use crate::policy::Policy;
use crate::side::Side;
use crate::verdict::Verdict;

/// L2-L4 parsing: never panics; what it reports stays within the frame.
pub fn parse(data: &[u8]) {
    match packet::parse(data) {
        Ok(Frame::Ip(ip)) => {
            assert!(usize::from(ip.l3_offset) < data.len());
            assert!(usize::from(ip.ip_end) <= data.len());
            assert!(ip.l3_offset < ip.ip_end);
            assert_eq!(ip.src_ip().is_ipv4(), ip.dst_ip().is_ipv4());
            if ip.frag.is_none_or(|f| f.is_first()) {
                assert!(usize::from(ip.l4_offset) <= usize::from(ip.ip_end));
            }
            // An ICMP error's quote is read from the same bytes.
            let _ = packet::quoted(data, &ip);
        }
        Ok(Frame::Arp) | Err(_) => {}
    }
}

const POLICY: &str = r#"
[ports.inside]
device = "a"
[ports.outside]
device = "b"
[flows]
capacity = 256
fragment_capacity = 16
fragment_timeout = "1s"
udp_timeout = "2s"
tcp_transitory_timeout = "2s"
icmp_timeout = "2s"
reject_rate = 1000
[[rule]]
name = "web"
action = "allow"
from = "inside"
proto = "tcp"
dst_ports = ["80", "443", "8000-8080"]
[[rule]]
name = "refuse-v4"
action = "reject"
dst_cidr = ["192.0.2.0/24"]
[[rule]]
name = "refuse-v6"
action = "reject"
dst_cidr = ["2001:db8::/32"]
[[rule]]
name = "dns"
action = "allow"
proto = "udp"
dst_ports = ["53"]
[[rule]]
name = "ping"
action = "allow"
proto = "icmp"
icmp_types = [8]
[[rule]]
name = "ping6"
action = "allow"
proto = "icmpv6"
icmp_types = [128]
[default]
action = "allow"
"#;

/// The whole pipeline over a sequence of frames. The input is a list of records: two bytes of
/// length, one byte of control (bit 0: ingress side; bits 1-7: how many 100 ms pass before the
/// packet), then the frame. Checks that every packet gets exactly one fate and that the fate
/// agrees with the verdict.
pub fn pipeline(data: &[u8]) {
    // Compiled once per process: the policy is not what is being fuzzed.
    static COMPILED: std::sync::OnceLock<(config::Config, Arc<Policy>)> =
        std::sync::OnceLock::new();
    let (cfg, policy) = COMPILED.get_or_init(|| {
        let cfg = config::parse(POLICY, "fuzz.toml").expect("the fuzz policy is valid");
        let policy = Arc::new(Policy::compile(&cfg, 1, 1));
        (cfg, policy)
    });
    let stats = Arc::new(PipelineStats::default());
    let mut p: Pipeline<Vec<u8>> = Pipeline::new(
        PipelineConfig::from_config(cfg, 0, 7),
        Arc::clone(policy),
        stats,
    );
    let mut fx = Effects::default();
    let (mut now, mut rest, mut held, mut fed) = (0u64, data, 0usize, 0usize);
    let mut burst = Vec::new();
    while rest.len() >= 3 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let ctl = rest[2];
        let end = (3 + len).min(rest.len());
        let frame = rest[3..end].to_vec();
        rest = &rest[end..];
        let side = if ctl & 1 == 0 {
            Side::Inside
        } else {
            Side::Outside
        };
        now += u64::from(ctl >> 1) * 100_000_000;
        fed += 1;
        // Alternate the single-packet and burst entry points.
        if fed % 2 == 0 {
            let (d, dec) = p.process(frame, side, now, &mut fx);
            held += check(d, dec.verdict);
        } else {
            burst.push(frame);
            let mut n = 0;
            p.process_burst(burst.drain(..), side, now, &mut fx, |d, v| {
                n += check(d, v.verdict);
            });
            held += n;
        }
        p.maintain(now, &mut fx);
        held -= fx.released.len();
        for r in fx.released.drain(..) {
            assert!(
                r.decision.verdict != Verdict::Reject,
                "a held fragment is never answered"
            );
        }
        for g in fx.generated.drain(..) {
            // What ferrowall writes must itself be a valid frame.
            assert!(
                packet::parse(&g.frame).is_ok(),
                "generated frame does not parse"
            );
        }
    }
    p.maintain(u64::MAX, &mut fx);
    held -= fx.released.len();
    assert_eq!(held, 0, "every held packet is released in the end");
}

/// Checks one fate; returns 1 if the packet was held.
fn check(d: Disposition<Vec<u8>>, v: Verdict) -> usize {
    match d {
        Disposition::Pass(_) => {
            assert_eq!(v, Verdict::Allow);
            0
        }
        Disposition::Drop(_) => {
            assert_ne!(v, Verdict::Allow);
            0
        }
        Disposition::Held => 1,
    }
}
