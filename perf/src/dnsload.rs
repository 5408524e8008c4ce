//! The FQDN benchmarks' workload: a policy with one `**.bench.test` rule and DNS answers for
//! its names, shared by the `perf` binary and the instruction-count example.

use std::net::Ipv4Addr;
use std::sync::Arc;

use anyhow::Result;
use dataplane::Policy;
use dataplane::dns::message::build::{RecordSpec, query, response};
use dataplane::dns::message::rtype;
use dataplane::fqdn::{FqdnMap, Learner, LearnerStats, Limits};

/// Two net_null ports, one FQDN rule (`**.bench.test`), DNS bounds sized for the benchmarks.
pub const POLICY: &str = r#"
[ports.inside]
device = "net_null0"
[ports.outside]
device = "net_null1"
[flows]
capacity = 200000
tcp_midstream = true
[dns]
min_ttl = "1h"
max_ttl = "1h"
max_names = 200000
max_ips = 1000000
max_ips_per_name = 64
[[rule]]
name = "dns"
action = "allow"
proto = "udp"
dst_cidr = ["192.0.2.53/32"]
dst_ports = ["53"]
[[rule]]
name = "feed"
action = "allow"
proto = "tcp"
dst_cidr = ["192.0.2.10/32"]
[[rule]]
name = "bench"
action = "allow"
proto = "tcp"
dst_fqdn = ["**.bench.test"]
dst_ports = ["443"]
"#;

/// [`POLICY`], parsed and compiled.
pub fn compiled() -> Result<(config::Config, Arc<Policy>)> {
    let cfg = config::parse(POLICY, "fqdn-bench.toml")?;
    let policy = Arc::new(Policy::compile(&cfg, 1, 1));
    Ok((cfg, policy))
}

/// A DNS response for name `n`: one or two A records.
pub fn answer(id: u16, n: u32, ip: u32) -> Vec<u8> {
    let name = format!("n{n}.bench.test");
    let mut answers = vec![(name.as_str(), 3600, RecordSpec::A(Ipv4Addr::from(ip)))];
    if n % 2 == 0 {
        answers.push((
            name.as_str(),
            3600,
            RecordSpec::A(Ipv4Addr::from(ip ^ 0x0080_0000)),
        ));
    }
    response(id, &name, rtype::A, &answers)
}

/// A DNS query for name `n` (`answer_too`: false) or its answer ([`answer`]), as an Ethernet
/// frame between the client 10.0.0.2:`sport` and the server 192.0.2.53:53.
pub fn dns_frame(sport: u16, n: u32, answer_too: bool) -> Vec<u8> {
    let (payload, src, dst, ports) = if answer_too {
        (
            answer(sport, n, ip_of(n)),
            [192, 0, 2, 53],
            [10, 0, 0, 2],
            (53, sport),
        )
    } else {
        (
            query(sport, &format!("n{n}.bench.test"), rtype::A),
            [10, 0, 0, 2],
            [192, 0, 2, 53],
            (sport, 53),
        )
    };
    let mut d = vec![0u8; 14 + 20 + 8 + payload.len()];
    d[..12].copy_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
    d[12..14].copy_from_slice(&[0x08, 0x00]);
    let total = u16::try_from(20 + 8 + payload.len()).unwrap_or(0);
    d[14..18].copy_from_slice(&[0x45, 0, total.to_be_bytes()[0], total.to_be_bytes()[1]]);
    d[18..26].copy_from_slice(&[0, 1, 0x40, 0, 64, 17, 0, 0]);
    d[26..30].copy_from_slice(&src);
    d[30..34].copy_from_slice(&dst);
    let ulen = u16::try_from(8 + payload.len()).unwrap_or(0);
    d[34..36].copy_from_slice(&ports.0.to_be_bytes());
    d[36..38].copy_from_slice(&ports.1.to_be_bytes());
    d[38..40].copy_from_slice(&ulen.to_be_bytes());
    d[42..].copy_from_slice(&payload);
    d
}

/// A pseudo-random address in 100.64.0.0/10, from `i`.
pub fn ip_of(i: u32) -> u32 {
    0x6440_0000 | (i.wrapping_mul(2_654_435_761) & 0x003f_ffff)
}

/// `count` answers for `distinct` names in turn, answer `i` for name `i % distinct`; with
/// `fresh`, every answer brings new addresses, otherwise a name's answers repeat its addresses.
pub fn answers(count: u32, distinct: u32, fresh: bool) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            let n = i % distinct.max(1);
            answer(
                u16::try_from(i & 0xffff).unwrap_or(0),
                n,
                ip_of(if fresh { i } else { n }),
            )
        })
        .collect()
}

/// A learner for one worker under [`POLICY`], with the worker's table.
pub fn learner() -> Result<(Learner, Box<FqdnMap>)> {
    let (cfg, policy) = compiled()?;
    Ok(learner_for(&cfg, &policy))
}

/// A learner for one worker under `cfg` and `policy`, with the worker's table.
pub fn learner_for(cfg: &config::Config, policy: &Arc<Policy>) -> (Learner, Box<FqdnMap>) {
    let (l, maps) = Learner::new(
        Limits::from_config(&cfg.dns),
        Arc::clone(policy),
        1,
        Arc::new(LearnerStats::default()),
    );
    (l, maps.into_iter().next().unwrap_or_default())
}

/// Learns `messages` at the times `clock` gives, committing and publishing to the worker (who
/// hands its previous table straight back) every 64 answers and after the last. Never inlined:
/// `make icount` counts the instructions inside it.
#[inline(never)]
pub fn learn_all(
    l: &mut Learner,
    table: &mut Box<FqdnMap>,
    messages: &[Vec<u8>],
    mut clock: impl FnMut() -> u64,
) {
    let mut publish = |l: &mut Learner| {
        l.commit();
        if let Some(t) = l.publish(0) {
            let old = std::mem::replace(table, t);
            l.returned(0, old);
        }
    };
    for (i, m) in messages.iter().enumerate() {
        l.learn(m, clock());
        if i % 64 == 63 {
            publish(l);
        }
    }
    publish(l);
}
