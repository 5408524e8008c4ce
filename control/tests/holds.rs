//! A DNS answer held until every worker has its addresses is never lost: when the worker
//! stops, whatever it still holds is released.

use dataplane::dns::message::build::{RecordSpec, query, response};
use dataplane::dns::message::rtype;
use dataplane::pipeline::{Disposition, Effects};
use dataplane::{Side, Verdict};
use testkit::Pkt;

const CONFIG: &str = r#"
[network]
inside = ["10.0.0.0/8"]
[dns]
hold_responses = true
[[rule]]
name = "dns"
action = "allow"
proto = "udp"
dst_ports = ["53"]
[[rule]]
name = "gh"
action = "allow"
dst_fqdn = ["github.com"]
"#;

#[test]
fn held_answers_are_released_when_the_worker_stops() {
    let (mut p, _, stats) = testkit::pipeline(CONFIG);
    let mut fx = Effects::default();
    let q = Pkt::new("10.0.0.2", "192.0.2.53")
        .udp(5000, 53)
        .payload(&query(1, "github.com", rtype::A))
        .build();
    let (d, _) = p.process(q, Side::Inside, 1, &mut fx);
    assert!(matches!(d, Disposition::Pass(_)));
    let answer = Pkt::new("192.0.2.53", "10.0.0.2")
        .udp(53, 5000)
        .payload(&response(
            1,
            "github.com",
            rtype::A,
            &[(
                "github.com",
                60,
                RecordSpec::A("140.82.112.3".parse().unwrap()),
            )],
        ))
        .build();
    let (d, _) = p.process(answer.clone(), Side::Outside, 2, &mut fx);
    assert!(matches!(d, Disposition::Held));
    assert_eq!(fx.dns.len(), 1, "handed to the learner");
    assert_eq!(stats.dns_held.get(), 1);
    p.release_all_holds(&mut fx);
    assert_eq!(fx.released.len(), 1);
    let r = &fx.released[0];
    assert_eq!(
        (&r.packet, r.side, r.decision.verdict),
        (&answer, Side::Outside, Verdict::Allow)
    );
    assert_eq!(stats.dns_held.get(), 0);
}
