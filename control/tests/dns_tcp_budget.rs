//! DNS over TCP can not take a worker's memory: connections that never finish a message hold
//! at most `MAX_TCP_BUFFERED` bytes of buffers together, the rest are given up and counted,
//! and a finished message gives its buffer back.

use dataplane::dns::message::build::query;
use dataplane::dns::message::rtype;
use dataplane::fqdn::snoop::MAX_TCP_BUFFERED;
use dataplane::pipeline::{Disposition, Effects};
use dataplane::{Pipeline, Side};
use testkit::{Pkt, tcp};

const CONFIG: &str = r#"
[flows]
capacity = 4096
[[rule]]
name = "dns-tcp"
action = "allow"
proto = "tcp"
dst_ports = ["53"]
[default]
action = "drop"
"#;

const SERVER: &str = "192.0.2.53";

fn client(i: usize) -> String {
    format!("10.0.{}.{}", i / 250, i % 250 + 1)
}

/// The SYN of client `c`'s connection to the server's port 53.
fn syn(c: &str) -> Vec<u8> {
    Pkt::new(c, SERVER)
        .tcp(40000, 53, tcp::SYN)
        .seq_ack(100, 0)
        .build()
}

/// A segment of client `c`'s connection carrying `payload` at sequence number `seq`.
fn data(c: &str, seq: u32, payload: &[u8]) -> Vec<u8> {
    Pkt::new(c, SERVER)
        .tcp(40000, 53, tcp::ACK | tcp::PSH)
        .seq_ack(seq, 1)
        .payload(payload)
        .build()
}

fn pass(p: &mut Pipeline<Vec<u8>>, frame: Vec<u8>, now: u64) {
    let mut fx = Effects::default();
    let (d, decision) = p.process(frame, Side::Inside, now, &mut fx);
    assert!(matches!(d, Disposition::Pass(_)), "{decision:?}");
}

#[test]
fn unfinished_messages_share_a_bounded_budget() {
    let (mut p, _, stats) = testkit::pipeline(CONFIG);
    // Each connection announces a 65535-byte message and sends 60000 bytes of it.
    let mut partial = vec![0xff, 0xff];
    partial.extend(std::iter::repeat_n(0u8, 60_000));
    let flows = 2 * MAX_TCP_BUFFERED / partial.len();
    for i in 0..flows {
        let c = client(i);
        pass(&mut p, syn(&c), 1);
        let seg = data(&c, 101, &partial);
        pass(&mut p, seg, 2);
        assert!(p.flows().dns_buffered() <= MAX_TCP_BUFFERED);
    }
    // About half the connections fit; the others were given up and counted.
    let broken = stats.dns_tcp_broken.get();
    let flows = flows as u64;
    assert!(broken >= flows / 3 && broken < flows, "{broken} of {flows}");
    // The last connection that fitted took what was left: the budget is spent...
    let full = p.flows().dns_buffered();
    assert_eq!(full, MAX_TCP_BUFFERED);
    // ...and yet a message a segment carries whole is still read, in place.
    let c = client(usize::try_from(flows).unwrap() + 1);
    pass(&mut p, syn(&c), 2);
    let q = query(7, "github.com", rtype::A);
    let mut framed = u16::try_from(q.len()).unwrap().to_be_bytes().to_vec();
    framed.extend(q);
    let queries = stats.dns_queries.get();
    pass(&mut p, data(&c, 101, &framed), 2);
    assert_eq!(stats.dns_queries.get(), queries + 1);
    assert_eq!(stats.dns_tcp_broken.get(), broken);
    // Finishing the first connection's message gives its buffer back.
    let rest = vec![0u8; 65535 - 60_000];
    pass(&mut p, data(&client(0), 101 + 60_002, &rest), 3);
    assert!(p.flows().dns_buffered() < full);
    assert_eq!(stats.dns_tcp_broken.get(), broken);
}
