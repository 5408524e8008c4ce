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
        p.maintain(now, || u64::MAX, &mut fx);
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
    p.maintain(u64::MAX, || u64::MAX, &mut fx);
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

/// DNS message parsing: never panics; every question and record is read to the end (or the
/// first error), and every name it yields is within the limits of RFC 1035. Names are also
/// read at the first offsets of the input, as if pointed at. Reading names as text (what the
/// learner does) gives what decoding them does, error for error.
pub fn dns(data: &[u8]) {
    use crate::dns::message::{DataText, Message, RData};
    use crate::dns::name::{MAX_LABEL_LEN, MAX_WIRE_LEN, Name, read_text};

    fn check(n: &Name) {
        assert!(n.wire_len() <= MAX_WIRE_LEN);
        assert_eq!(n.labels().count(), n.label_count());
        assert!(n.labels().all(|l| (1..=MAX_LABEL_LEN).contains(&l.len())));
        let text: usize = n.labels().map(<[u8]>::len).sum::<usize>() + n.label_count();
        assert_eq!(n.as_bytes().len() + 1, text.max(1));
        if let Some(s) = n.as_str() {
            assert_eq!(
                s.split('.').filter(|l| !l.is_empty()).count(),
                n.label_count()
            );
        }
        let _ = n.to_string();
    }

    let mut buf = Vec::new();
    let utf8 = |b: &[u8]| std::str::from_utf8(b).ok().map(str::to_owned);
    for at in 0..data.len().min(16) {
        let decoded = Name::read(data, at);
        if let Ok((n, used)) = &decoded {
            assert!(*used >= 1 && at + used <= data.len());
            check(n);
        }
        buf.clear();
        let as_text = read_text(data, at, &mut buf).map(|(used, r)| (used, r.map(|r| &buf[r])));
        assert_eq!(
            as_text.map(|(used, t)| (used, t.and_then(utf8))),
            decoded
                .as_ref()
                .map(|(n, used)| (*used, n.as_str().map(str::to_owned)))
                .map_err(|e| *e)
        );
        if let (Ok((_, Some(t))), Ok((n, _))) = (as_text, &decoded) {
            assert_eq!(t, n.as_bytes());
        }
    }
    let Ok(m) = Message::parse(data) else {
        return;
    };
    assert!(m.sections_end() <= data.len());
    assert_eq!(m.sections_end() + m.trailing_len(), data.len());
    let (qd, an, ns, ar) = m.counts();
    let mut questions = 0;
    for q in m.questions() {
        questions += 1;
        match q {
            Ok(q) => check(&q.name),
            Err(_) => break,
        }
    }
    assert!(questions <= usize::from(qd));
    assert_eq!(m.question().is_ok_and(|q| q.is_none()), qd == 0);
    let mut records = 0;
    for r in m.records() {
        records += 1;
        let Ok((_, r)) = r else { break };
        check(&r.name);
        match &r.data {
            crate::dns::message::RData::Cname(n) => check(n),
            crate::dns::message::RData::Svcb(s) => check(&s.target),
            _ => {}
        }
    }
    assert!(records <= usize::from(an) + usize::from(ns) + usize::from(ar));
    assert!(m.answers().count() <= usize::from(an));
    // The same records read as text, owners pointing at the question taken from it.
    buf.clear();
    let question = m.questions().next_text(&mut buf).and_then(Result::ok);
    let keep = question
        .as_ref()
        .and_then(|q| q.text.as_ref())
        .map_or(0, |t| t.end);
    let mut texts = m.records();
    for r in m.records() {
        buf.truncate(keep);
        let t = texts
            .next_text(&mut buf, question.as_ref())
            .expect("as many records");
        let (r, t) = match (r, t) {
            (Ok((sr, r)), Ok((st, t))) => {
                assert_eq!(sr, st);
                (r, t)
            }
            (Err(e), Err(f)) => {
                assert_eq!(e, f);
                break;
            }
            (r, t) => panic!("read {r:?}, as text {t:?}"),
        };
        let text = |x: Option<std::ops::Range<usize>>| x.and_then(|x| utf8(&buf[x]));
        let bytes = |x: &Option<std::ops::Range<usize>>| x.clone().map(|x| buf[x].to_vec());
        assert_eq!(text(t.owner.clone()).as_deref(), r.name.as_str());
        if t.owner.is_some() {
            assert_eq!(bytes(&t.owner).as_deref(), Some(r.name.as_bytes()));
        }
        assert_eq!((t.rtype, t.class, t.ttl), (r.rtype, r.class, r.ttl));
        match (&r.data, t.data) {
            (RData::A(a), DataText::A(b)) => assert_eq!(*a, b),
            (RData::Aaaa(a), DataText::Aaaa(b)) => assert_eq!(*a, b),
            (RData::Cname(n), DataText::Cname(x)) => {
                if x.is_some() {
                    assert_eq!(bytes(&x).as_deref(), Some(n.as_bytes()));
                }
                assert_eq!(n.as_str(), text(x).as_deref());
            }
            (RData::Svcb(s), DataText::Svcb(b)) => assert_eq!(*s, *b),
            (RData::Other { rtype, len }, DataText::Other { rtype: t, len: l }) => {
                assert_eq!((*rtype, *len), (t, l));
            }
            (d, t) => panic!("data {d:?}, as text {t:?}"),
        }
    }
    buf.clear();
    assert!(texts.next_text(&mut buf, None).is_none());
    let q = m.questions().next_text(&mut buf);
    assert_eq!(
        q.map(|q| q.map(|q| q.text.and_then(|r| utf8(&buf[r])))),
        m.questions()
            .next()
            .map(|q| q.map(|q| q.name.as_str().map(str::to_owned)))
    );
}

const LEARNER_POLICY: &str = r#"
[ports.inside]
device = "a"
[ports.outside]
device = "b"
[dns]
min_ttl = "0s"
max_ttl = "1h"
max_ips_per_name = 4
max_names = 64
max_ips = 128
max_cname_chain = 4
[[rule]]
name = "com"
action = "allow"
dst_fqdn = ["**.com", "example.org", "*.example.net"]
"#;

/// The DNS learner: answers in, table changes out. The input is a list of records (two bytes of
/// length, one byte of time step in seconds, then a DNS message) learned in order, with expiry
/// and publication to two workers between them. Checks that every published entry is whole:
/// names that match a pattern, within the bounds, and that both workers' copies agree with the
/// learner after every publication.
pub fn learner(data: &[u8]) {
    use crate::fqdn::{FqdnMap, Learner, LearnerStats, Limits};

    static COMPILED: std::sync::OnceLock<(config::Config, Arc<Policy>)> =
        std::sync::OnceLock::new();
    let (cfg, policy) = COMPILED.get_or_init(|| {
        let cfg = config::parse(LEARNER_POLICY, "fuzz.toml").expect("the fuzz policy is valid");
        let policy = Arc::new(Policy::compile(&cfg, 1, 2));
        (cfg, policy)
    });
    let limits = Limits::from_config(&cfg.dns);
    let (mut l, maps) = Learner::new(
        limits,
        Arc::clone(policy),
        2,
        Arc::new(LearnerStats::default()),
    );
    let mut workers: Vec<Box<FqdnMap>> = maps.into_iter().collect();
    let (mut rest, mut now) = (data, 0u64);
    while rest.len() >= 3 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        now += u64::from(rest[2]) * 1_000_000_000;
        let end = (3 + len).min(rest.len());
        l.learn(&rest[3..end], now);
        rest = &rest[end..];
        l.expire(now);
        let version = l.commit();
        for (w, table) in workers.iter_mut().enumerate() {
            if let Some(new) = l.publish(w) {
                assert_eq!(new.version(), version);
                let old = std::mem::replace(table, new);
                l.returned(w, old);
            }
            assert_eq!(
                table.len(),
                l.len(),
                "a published copy has every learned address"
            );
            for (_, e) in table.iter() {
                assert!(!e.names.is_empty() && e.names.len() <= 64);
                assert!(e.expires >= now, "an expired binding was published");
                for n in e.names.iter() {
                    assert!(
                        !policy.names.matches(n).is_empty(),
                        "{n} matches no pattern"
                    );
                }
            }
        }
        assert!(l.len() <= limits.max_ips);
    }
}
