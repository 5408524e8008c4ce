//! The FQDN benchmarks' workload: a policy with one `**.bench.test` rule and DNS answers for
//! its names, shared by the `perf` binary and the instruction-count example.

use std::net::Ipv4Addr;
use std::sync::Arc;

use anyhow::Result;
use dataplane::Policy;
use dataplane::dns::message::build::{RecordSpec, response};
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
