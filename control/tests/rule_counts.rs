//! A rule counts every packet and byte of the flows it decided: the later fragments of a
//! datagram included, which follow their first fragment's verdict.

use dataplane::Side;
use dataplane::pipeline::{Disposition, Effects};
use testkit::Pkt;

const CONFIG: &str = r#"
[[rule]]
name = "udp"
action = "allow"
proto = "udp"
[default]
action = "drop"
"#;

#[test]
fn later_fragments_count_for_the_rule_of_their_first() {
    let (mut p, policy, _) = testkit::pipeline(CONFIG);
    let frags = Pkt::new("10.0.0.2", "192.0.2.9")
        .udp(40000, 9999)
        .payload(&[1u8; 1200])
        .ip_id(5)
        .fragments(400);
    assert!(frags.len() >= 3);
    let bytes: usize = frags.iter().map(Vec::len).sum();
    let mut fx = Effects::default();
    for f in frags.iter().cloned() {
        let (d, decision) = p.process(f, Side::Inside, 1, &mut fx);
        assert!(matches!(d, Disposition::Pass(_)), "{decision:?}");
    }
    assert_eq!(
        policy.counters[0].get(0),
        (frags.len() as u64, bytes as u64),
        "every fragment counted for rule 0"
    );
    // A datagram whose first fragment no rule decided (a TCP packet of no flow) counts for
    // none, the default action included.
    let orphan = Pkt::new("10.0.0.2", "192.0.2.9")
        .tcp(40000, 80, testkit::tcp::ACK)
        .payload(&[1u8; 1200])
        .ip_id(6)
        .fragments(400);
    for f in orphan {
        let (d, decision) = p.process(f, Side::Inside, 2, &mut fx);
        assert!(matches!(d, Disposition::Drop(_)), "{decision:?}");
    }
    assert_eq!(
        policy.counters[0].get(1),
        (0, 0),
        "the default counted nothing"
    );
}
