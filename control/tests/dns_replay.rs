//! FQDN rules fed by snooped DNS, through `ferrowall replay` on captures the tests build:
//! learning, patterns at each boundary, CNAME chains, AAAA, HTTPS hints, the checks that keep
//! an answer from being learned, TTLs, eviction, DNS over TCP, fragmented answers, malformed
//! answers.

use std::net::{Ipv4Addr, Ipv6Addr};

use dataplane::dns::message::build::{RecordSpec, query, response};
use dataplane::dns::message::rtype;
use serde_json::Value;
use testkit::packet::{CLIENT_MAC, SERVER_MAC};
use testkit::replay::{SEC, T0, replay, replay_with};
use testkit::{Pkt, tcp};

const C: &str = "10.0.0.2";
const DNS: &str = "192.0.2.53";

fn config(extra_dns: &str) -> String {
    format!(
        r#"
[network]
inside = ["10.0.0.0/8", "fd00::/8"]
[dns]
trusted_servers = ["192.0.2.53", "2001:db8::53"]
min_ttl = "10s"
max_ttl = "1h"
{extra_dns}
[[rule]]
name = "dns"
action = "allow"
from = "inside"
dst_cidr = ["192.0.2.53/32", "2001:db8::53/128"]
dst_ports = ["53"]
proto = "udp"
[[rule]]
name = "dns-tcp"
action = "allow"
from = "inside"
dst_cidr = ["192.0.2.53/32"]
dst_ports = ["53"]
proto = "tcp"
[[rule]]
name = "github"
action = "allow"
from = "inside"
proto = "tcp"
dst_fqdn = ["github.com", "*.github.com"]
dst_ports = ["443"]
[[rule]]
name = "cdn"
action = "allow"
from = "inside"
proto = "tcp"
dst_fqdn = ["**.fastly.net"]
[default]
action = "drop"
"#
    )
}

fn q(id: u16, name: &str, qtype: u16, sport: u16) -> Vec<u8> {
    Pkt::new(C, DNS)
        .udp(sport, 53)
        .payload(&query(id, name, qtype))
        .build()
}

fn r(id: u16, name: &str, qtype: u16, sport: u16, answers: &[(&str, u32, RecordSpec)]) -> Vec<u8> {
    answer_from(DNS, id, name, qtype, sport, answers)
}

fn answer_from(
    server: &str,
    id: u16,
    name: &str,
    qtype: u16,
    sport: u16,
    answers: &[(&str, u32, RecordSpec)],
) -> Vec<u8> {
    Pkt::new(server, C)
        .udp(53, sport)
        .macs(SERVER_MAC, CLIENT_MAC)
        .payload(&response(id, name, qtype, answers))
        .build()
}

fn a(ip: &str) -> RecordSpec {
    RecordSpec::A(ip.parse().unwrap())
}

fn syn(dst: &str, sport: u16, dport: u16) -> Vec<u8> {
    let src = if dst.contains(':') { "fd00::2" } else { C };
    Pkt::new(src, dst).tcp(sport, dport, tcp::SYN).build()
}

/// Timestamps one millisecond apart.
fn at_ms(frames: Vec<Vec<u8>>) -> Vec<(u64, Vec<u8>)> {
    testkit::replay::at_ms(frames)
}

fn fqdn_of(log: &Value) -> Option<&str> {
    log["fqdn"].as_str()
}

#[test]
fn learn_then_allow_and_unlearned_addresses_are_denied() {
    let frames = at_ms(vec![
        syn("140.82.112.3", 40000, 443), // not learned yet
        q(1, "github.com", rtype::A, 5000),
        r(
            1,
            "github.com",
            rtype::A,
            5000,
            &[("github.com", 60, a("140.82.112.3"))],
        ),
        syn("140.82.112.3", 40001, 443),
        syn("140.82.112.4", 40002, 443), // never learned
        syn("140.82.112.3", 40003, 80),  // learned, but the rule is port 443 only
    ]);
    let r = replay("fqdn-learn", &config(""), &frames);
    assert_eq!(
        r.summary(),
        [
            "drop/default",
            "allow/rule",
            "allow/established",
            "allow/rule",
            "drop/default",
            "drop/default"
        ]
    );
    assert_eq!(r.rule(3), Some("github"));
    assert_eq!(fqdn_of(&r.log[3]), Some("github.com"));
    assert_eq!(fqdn_of(&r.log[1]), None);
    assert_eq!(
        r.out.len(),
        3,
        "the answer is forwarded (after its hold) and the allowed SYN"
    );
}

#[test]
fn one_label_and_any_labels_patterns_at_each_boundary() {
    let names = [
        ("github.com", "192.0.2.101", true, "github"),
        ("api.github.com", "192.0.2.102", true, "github"),
        ("a.b.github.com", "192.0.2.103", false, ""),
        ("notgithub.com", "192.0.2.104", false, ""),
        ("x.fastly.net", "192.0.2.105", true, "cdn"),
        ("x.y.fastly.net", "192.0.2.106", true, "cdn"),
        ("fastly.net", "192.0.2.107", false, ""),
    ];
    let mut frames = Vec::new();
    for (i, (name, ip, _, _)) in names.iter().enumerate() {
        let id = u16::try_from(i).unwrap() + 10;
        frames.push(q(id, name, rtype::A, 6000 + id));
        frames.push(r(id, name, rtype::A, 6000 + id, &[(name, 60, a(ip))]));
        frames.push(syn(ip, 41000 + id, 443));
    }
    let r = replay("fqdn-boundaries", &config(""), &at_ms(frames));
    for (i, (name, _, allowed, rule)) in names.iter().enumerate() {
        let k = i * 3 + 2;
        if *allowed {
            assert_eq!((r.verdict(k), r.rule(k)), ("allow", Some(*rule)), "{name}");
            assert_eq!(fqdn_of(&r.log[k]), Some(*name));
        } else {
            assert_eq!(r.verdict(k), "drop", "{name}");
        }
    }
}

#[test]
fn a_cname_chain_aaaa_and_https_hints() {
    let frames = at_ms(vec![
        q(1, "www.github.com", rtype::A, 5001),
        r(
            1,
            "www.github.com",
            rtype::A,
            5001,
            &[
                (
                    "www.github.com",
                    300,
                    RecordSpec::Cname("github.com".into()),
                ),
                ("github.com", 60, a("140.82.112.10")),
            ],
        ),
        syn("140.82.112.10", 40000, 443),
        q(2, "api.github.com", rtype::AAAA, 5002),
        r(
            2,
            "api.github.com",
            rtype::AAAA,
            5002,
            &[(
                "api.github.com",
                60,
                RecordSpec::Aaaa("2001:db8:1::10".parse::<Ipv6Addr>().unwrap()),
            )],
        ),
        syn("2001:db8:1::10", 40001, 443),
        q(3, "github.com", rtype::HTTPS, 5003),
        r(
            3,
            "github.com",
            rtype::HTTPS,
            5003,
            &[(
                "github.com",
                60,
                RecordSpec::Https {
                    target: ".".into(),
                    ipv4hint: vec![Ipv4Addr::new(140, 82, 112, 20)],
                    ipv6hint: vec!["2001:db8:1::20".parse().unwrap()],
                },
            )],
        ),
        syn("140.82.112.20", 40002, 443),
        syn("2001:db8:1::20", 40003, 443),
    ]);
    let r = replay("fqdn-cname", &config(""), &frames);
    assert_eq!(
        (r.verdict(2), fqdn_of(&r.log[2])),
        ("allow", Some("www.github.com")),
        "the question name is bound first"
    );
    assert_eq!(
        (r.verdict(5), fqdn_of(&r.log[5])),
        ("allow", Some("api.github.com"))
    );
    assert_eq!(r.verdict(8), "allow");
    assert_eq!(r.verdict(9), "allow");
}

#[test]
fn answers_without_their_query_or_from_untrusted_servers_are_not_learned() {
    let frames = at_ms(vec![
        // No query at all.
        r(
            1,
            "github.com",
            rtype::A,
            5000,
            &[("github.com", 60, a("140.82.112.31"))],
        ),
        syn("140.82.112.31", 40000, 443),
        // A query, then an answer with the wrong transaction id.
        q(2, "github.com", rtype::A, 5001),
        r(
            3,
            "github.com",
            rtype::A,
            5001,
            &[("github.com", 60, a("140.82.112.32"))],
        ),
        syn("140.82.112.32", 40001, 443),
        // A query for another name.
        q(4, "example.org", rtype::A, 5002),
        r(
            4,
            "github.com",
            rtype::A,
            5002,
            &[("github.com", 60, a("140.82.112.33"))],
        ),
        syn("140.82.112.33", 40002, 443),
        // A query to an untrusted server that the rules let through.
        Pkt::new(C, "192.0.2.54")
            .udp(5003, 53)
            .payload(&query(5, "github.com", rtype::A))
            .build(),
        answer_from(
            "192.0.2.54",
            5,
            "github.com",
            rtype::A,
            5003,
            &[("github.com", 60, a("140.82.112.34"))],
        ),
        syn("140.82.112.34", 40003, 443),
    ]);
    // The rules let DNS to 192.0.2.54 through; only learning from it is refused.
    let cfg = config("").replace(
        "dst_cidr = [\"192.0.2.53/32\", \"2001:db8::53/128\"]",
        "dst_cidr = [\"192.0.2.53/32\", \"192.0.2.54/32\", \"2001:db8::53/128\"]",
    );
    let out = replay_with(
        "fqdn-checks",
        &cfg,
        &frames,
        &["--fqdn-out".into(), "/dev/stdout".into()],
    );
    for i in [1, 4, 7, 10] {
        assert_eq!(out.verdict(i), "drop", "packet {i}: {}", out.log[i]);
    }
    // The answers pass with their flows; those that pair with no query say so.
    let reasons: Vec<&str> = [3, 6, 9]
        .iter()
        .map(|&i| out.log[i]["reason"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(reasons, ["no-query", "no-query", "established"]);
    assert_eq!(out.verdict(3), "allow");
    assert!(
        out.stderr.contains("0 DNS answers learned"),
        "{}",
        out.stderr
    );
}

#[test]
fn ttl_expiry_denies_new_flows_while_an_established_flow_keeps_working() {
    let ip = "140.82.112.40";
    let est = |sport| Pkt::new(C, ip).tcp(sport, 443, tcp::ACK).build();
    let frames = vec![
        (T0, q(1, "github.com", rtype::A, 5000)),
        (
            T0 + 1,
            r(1, "github.com", rtype::A, 5000, &[("github.com", 5, a(ip))]),
        ),
        (T0 + 2, syn(ip, 40000, 443)),
        (
            T0 + 3,
            Pkt::new(ip, C).tcp(443, 40000, tcp::SYN | tcp::ACK).build(),
        ),
        (T0 + 4, est(40000)),
        // The 5 s TTL was raised to min_ttl = 10 s: still valid after 9 s...
        (T0 + 9 * SEC, syn(ip, 40001, 443)),
        // ...gone after 10 s for new flows, while the established flow goes on.
        (T0 + 10 * SEC + 5, syn(ip, 40002, 443)),
        (T0 + 10 * SEC + 6, est(40000)),
    ];
    let r = replay("fqdn-ttl", &config(""), &frames);
    assert_eq!(
        r.summary()[5..],
        ["allow/rule", "drop/default", "allow/established"]
    );
    assert_eq!(
        fqdn_of(&r.log[7]),
        Some("github.com"),
        "the flow keeps its attribution"
    );
}

#[test]
fn per_name_eviction_keeps_the_newest_addresses() {
    let mut frames = Vec::new();
    for i in 0..3u16 {
        frames.push(q(i, "github.com", rtype::A, 5000 + i));
        frames.push(r(
            i,
            "github.com",
            rtype::A,
            5000 + i,
            &[("github.com", 60, a(&format!("140.82.112.{}", 50 + i)))],
        ));
    }
    frames.push(syn("140.82.112.50", 40000, 443));
    frames.push(syn("140.82.112.52", 40001, 443));
    let r = replay(
        "fqdn-evict",
        &config("max_ips_per_name = 2"),
        &at_ms(frames),
    );
    assert_eq!(r.verdict(6), "drop", "the oldest address was evicted");
    assert_eq!(r.verdict(7), "allow");
}

/// TCP segments for a DNS exchange over TCP, after its handshake: the query in one segment,
/// the answer split in two.
fn tcp_dns_exchange(id: u16, name: &str, answers: &[(&str, u32, RecordSpec)]) -> Vec<Vec<u8>> {
    let sport = 45000;
    let mut qbytes = u16::try_from(query(id, name, rtype::A).len())
        .unwrap()
        .to_be_bytes()
        .to_vec();
    qbytes.extend(query(id, name, rtype::A));
    let resp = response(id, name, rtype::A, answers);
    let mut rbytes = u16::try_from(resp.len()).unwrap().to_be_bytes().to_vec();
    rbytes.extend(resp);
    let cut = 7;
    let (cs, ss) = (1000u32, 9000u32);
    vec![
        Pkt::new(C, DNS)
            .tcp(sport, 53, tcp::SYN)
            .seq_ack(cs, 0)
            .build(),
        Pkt::new(DNS, C)
            .tcp(53, sport, tcp::SYN | tcp::ACK)
            .seq_ack(ss, cs + 1)
            .build(),
        Pkt::new(C, DNS)
            .tcp(sport, 53, tcp::ACK)
            .seq_ack(cs + 1, ss + 1)
            .build(),
        Pkt::new(C, DNS)
            .tcp(sport, 53, tcp::ACK | tcp::PSH)
            .seq_ack(cs + 1, ss + 1)
            .payload(&qbytes)
            .build(),
        Pkt::new(DNS, C)
            .tcp(53, sport, tcp::ACK)
            .seq_ack(ss + 1, cs + 1)
            .payload(&rbytes[..cut])
            .build(),
        Pkt::new(DNS, C)
            .tcp(53, sport, tcp::ACK | tcp::PSH)
            .seq_ack(ss + 1 + u32::try_from(cut).unwrap(), cs + 1)
            .payload(&rbytes[cut..])
            .build(),
    ]
}

#[test]
fn dns_over_tcp_split_over_segments() {
    let mut frames = tcp_dns_exchange(7, "github.com", &[("github.com", 60, a("140.82.112.60"))]);
    frames.push(syn("140.82.112.60", 40000, 443));
    let r = replay("fqdn-tcp", &config(""), &at_ms(frames));
    assert_eq!(r.rule(0), Some("dns-tcp"));
    assert_eq!(
        (r.verdict(6), fqdn_of(&r.log[6])),
        ("allow", Some("github.com"))
    );
}

#[test]
fn a_resolver_querying_from_port_53_learns() {
    // Both ends on port 53: the flow's opener is the client.
    let frames = at_ms(vec![
        q(11, "github.com", rtype::A, 53),
        r(
            11,
            "github.com",
            rtype::A,
            53,
            &[("github.com", 60, a("140.82.112.70"))],
        ),
        syn("140.82.112.70", 40000, 443),
    ]);
    let r = replay("fqdn-port53", &config(""), &frames);
    assert_eq!(
        (r.verdict(2), fqdn_of(&r.log[2])),
        ("allow", Some("github.com"))
    );
}

#[test]
fn dns_over_tcp_with_the_query_in_the_syn() {
    // TCP Fast Open: the query rides on the SYN, its bytes numbered from the SYN's sequence
    // number plus one; the answer is learned, and later queries on the connection are read.
    let mut frames = tcp_dns_exchange(7, "github.com", &[("github.com", 60, a("140.82.112.60"))]);
    frames.remove(3);
    let q = query(7, "github.com", rtype::A);
    let mut framed = u16::try_from(q.len()).unwrap().to_be_bytes().to_vec();
    framed.extend(q);
    frames[0] = Pkt::new(C, DNS)
        .tcp(45000, 53, tcp::SYN)
        .seq_ack(1000, 0)
        .payload(&framed)
        .build();
    // A second query on the connection, right after the first one's bytes, and its answer
    // right after the first answer's.
    let first_answer: usize = frames[3..5].iter().map(|f| f.len() - 54).sum();
    let q2 = query(8, "api.github.com", rtype::A);
    let mut framed2 = u16::try_from(q2.len()).unwrap().to_be_bytes().to_vec();
    framed2.extend(q2);
    let r2 = response(
        8,
        "api.github.com",
        rtype::A,
        &[("api.github.com", 60, a("140.82.112.61"))],
    );
    let mut rframed2 = u16::try_from(r2.len()).unwrap().to_be_bytes().to_vec();
    rframed2.extend(r2);
    let (cs, ss) = (
        1001 + u32::try_from(framed.len()).unwrap(),
        9001 + u32::try_from(first_answer).unwrap(),
    );
    frames.push(
        Pkt::new(C, DNS)
            .tcp(45000, 53, tcp::ACK | tcp::PSH)
            .seq_ack(cs, ss)
            .payload(&framed2)
            .build(),
    );
    frames.push(
        Pkt::new(DNS, C)
            .tcp(53, 45000, tcp::ACK | tcp::PSH)
            .seq_ack(ss, cs + u32::try_from(framed2.len()).unwrap())
            .payload(&rframed2)
            .build(),
    );
    frames.push(syn("140.82.112.60", 40000, 443));
    frames.push(syn("140.82.112.61", 40001, 443));
    let r = replay("fqdn-tfo", &config(""), &at_ms(frames));
    assert_eq!(
        (r.verdict(7), fqdn_of(&r.log[7])),
        ("allow", Some("github.com"))
    );
    assert_eq!(
        (r.verdict(8), fqdn_of(&r.log[8])),
        ("allow", Some("api.github.com"))
    );
}

#[test]
fn a_fragmented_udp_answer_in_and_out_of_order() {
    // 100 addresses make the answer larger than 1000 bytes: three 504-byte fragments.
    let answers: Vec<(String, RecordSpec)> = (0..100)
        .map(|i| ("github.com".to_owned(), a(&format!("140.82.113.{i}"))))
        .collect();
    let specs: Vec<(&str, u32, RecordSpec)> = answers
        .iter()
        .map(|(n, s)| (n.as_str(), 60, s.clone()))
        .collect();
    let big = response(9, "github.com", rtype::A, &specs);
    assert!(big.len() > 1000);
    let frags = Pkt::new(DNS, C)
        .udp(53, 5009)
        .macs(SERVER_MAC, CLIENT_MAC)
        .payload(&big)
        .ip_id(77)
        .fragments(504);
    assert!(frags.len() >= 2);
    for (name, order) in [
        ("in-order", (0..frags.len()).collect::<Vec<_>>()),
        ("reversed", (0..frags.len()).rev().collect()),
    ] {
        let mut frames = vec![q(9, "github.com", rtype::A, 5009)];
        frames.extend(order.iter().map(|&i| frags[i].clone()));
        frames.push(syn("140.82.113.0", 40000, 443));
        frames.push(syn("140.82.113.99", 40001, 443));
        let n = frames.len();
        let r = replay(&format!("fqdn-frag-{name}"), &config(""), &at_ms(frames));
        assert_eq!(
            (r.verdict(n - 2), r.verdict(n - 1)),
            ("allow", "allow"),
            "{name}: {:?}",
            r.summary()
        );
        // After a query with another id: the fragment that completes the answer says
        // `no-query`, and nothing is learned.
        let mut frames = vec![q(8, "github.com", rtype::A, 5009)];
        frames.extend(order.iter().map(|&i| frags[i].clone()));
        frames.push(syn("140.82.113.0", 40000, 443));
        let n = frames.len();
        let r = replay(
            &format!("fqdn-frag-noq-{name}"),
            &config(""),
            &at_ms(frames),
        );
        let no_query = r.log.iter().filter(|l| l["reason"] == "no-query").count();
        assert_eq!(no_query, 1, "{name}: {:?}", r.summary());
        assert_eq!(r.verdict(n - 1), "drop");
    }
}

#[test]
fn malformed_answers_are_counted_and_teach_nothing() {
    let mut good = response(
        1,
        "github.com",
        rtype::A,
        &[("github.com", 60, a("140.82.112.70"))],
    );
    // The answer's owner name is a pointer (0xc00c) to the question: make it point forward.
    let at = good
        .iter()
        .position(|&b| b == 0xc0)
        .expect("a compression pointer");
    let mut forward = good.clone();
    forward[at + 1] = u8::try_from(good.len() - 2).unwrap();
    // A pointer to itself.
    let mut looping = good.clone();
    looping[at + 1] = u8::try_from(at).unwrap();
    // A label longer than 63 bytes in the question.
    good[12] = 64;
    let frames = at_ms(vec![
        q(1, "github.com", rtype::A, 5000),
        Pkt::new(DNS, C).udp(53, 5000).payload(&forward).build(),
        q(1, "github.com", rtype::A, 5001),
        Pkt::new(DNS, C).udp(53, 5001).payload(&looping).build(),
        q(1, "github.com", rtype::A, 5002),
        Pkt::new(DNS, C).udp(53, 5002).payload(&good).build(),
        syn("140.82.112.70", 40000, 443),
    ]);
    let r = replay("fqdn-malformed", &config(""), &frames);
    assert_eq!(r.verdict(6), "drop", "nothing was learned");
    assert!(r.stderr.contains("0 DNS answers learned"), "{}", r.stderr);
    // The answers themselves still pass: a firewall does not police DNS content.
    assert_eq!(r.verdict(1), "allow");
}

#[test]
fn fqdn_out_lists_the_table() {
    let frames = at_ms(vec![
        q(1, "github.com", rtype::A, 5000),
        r(
            1,
            "github.com",
            rtype::A,
            5000,
            &[("github.com", 60, a("140.82.112.3"))],
        ),
        syn("140.82.112.3", 40001, 443),
    ]);
    let dir = testkit::scratch_dir("fqdn-out");
    let path = dir.join("fqdn.json");
    replay_with(
        "fqdn-out-run",
        &config(""),
        &frames,
        &["--fqdn-out".into(), path.display().to_string()],
    );
    let rows: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["ip"], "140.82.112.3");
    assert_eq!(rows[0]["names"], serde_json::json!(["github.com"]));
    assert_eq!(rows[0]["rules"], serde_json::json!(["github"]));
    assert_eq!(rows[0]["flows"], 1);
    let left = rows[0]["expires_in_s"].as_f64().unwrap();
    assert!((59.0..=60.0).contains(&left), "{left}");
}
