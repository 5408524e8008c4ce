//! The stateful L3/L4 pipeline through `ferrowall replay`, on captures the tests build: rules,
//! flows and their timeouts, TCP state, reject answers, VLANs, IPv6 extension headers,
//! fragments, ICMP errors, policy reloads, a full flow table.

use testkit::packet::{CLIENT_MAC, SERVER_MAC};
use testkit::replay::{SEC, T0, at_ms, replay, replay_with};
use testkit::{Ext, Pkt, tcp};

const C: &str = "10.0.0.2";
const S: &str = "192.0.2.10";

const INSIDE: &str = "[network]\ninside = [\"10.0.0.0/8\", \"fd00::/8\"]\n";

fn syn(src: &str, dst: &str, sport: u16, dport: u16) -> Vec<u8> {
    Pkt::new(src, dst)
        .tcp(sport, dport, tcp::SYN)
        .seq_ack(1000, 0)
        .build()
}

fn synack(src: &str, dst: &str, sport: u16, dport: u16) -> Vec<u8> {
    Pkt::new(src, dst)
        .tcp(sport, dport, tcp::SYN | tcp::ACK)
        .seq_ack(5000, 1001)
        .macs(SERVER_MAC, CLIENT_MAC)
        .build()
}

fn ack(src: &str, dst: &str, sport: u16, dport: u16) -> Vec<u8> {
    Pkt::new(src, dst)
        .tcp(sport, dport, tcp::ACK)
        .seq_ack(1001, 5001)
        .build()
}

fn udp(src: &str, dst: &str, sport: u16, dport: u16) -> Vec<u8> {
    Pkt::new(src, dst)
        .udp(sport, dport)
        .payload(b"data")
        .build()
}

const RULES: &str = r#"
[[rule]]
name = "web"
action = "allow"
from = "inside"
proto = "tcp"
dst_cidr = ["192.0.2.0/24", "2001:db8::/64"]
dst_ports = ["443", "8000-8080"]

[[rule]]
name = "blocked-net"
action = "drop"
dst_cidr = ["198.51.100.0/24"]

[[rule]]
name = "refused"
action = "reject"
dst_cidr = ["203.0.113.0/24"]

[[rule]]
name = "dns"
action = "allow"
from = "inside"
proto = "udp"
dst_ports = ["53"]

[[rule]]
name = "ping"
action = "allow"
proto = "icmp"
icmp_types = [8]

[[rule]]
name = "ssh-in"
action = "allow"
from = "outside"
proto = "tcp"
dst_cidr = ["10.0.0.0/24"]
dst_ports = ["22"]

[default]
action = "drop"
"#;

fn config() -> String {
    format!("{INSIDE}{RULES}")
}

#[test]
fn rules_by_cidr_port_range_protocol_and_side() {
    let frames = at_ms(vec![
        syn(C, S, 40000, 443),                                      // web
        syn(C, S, 40001, 8000),                                     // web, range start
        syn(C, S, 40002, 8080),                                     // web, range end
        syn(C, S, 40003, 8081),                                     // past the range: default
        syn(C, S, 40004, 7999),                                     // before the range: default
        syn(C, "192.0.3.1", 40005, 443),                            // outside the CIDR: default
        syn(C, "198.51.100.7", 40006, 80),                          // blocked-net
        udp(C, "198.51.100.7", 40007, 53),                          // blocked-net comes before dns
        udp(C, "192.0.2.53", 40008, 53),                            // dns
        Pkt::new(C, "192.0.2.53").tcp(40009, 53, tcp::SYN).build(), // dns is udp only
        syn("192.0.2.99", C, 40010, 22),                            // ssh-in, from outside
        syn("10.0.0.3", C, 40011, 22),                              // ssh-in is from outside only
        Pkt::new(C, S).echo_request(7, 1).build(),                  // ping
        Pkt::new(C, S).icmp(13, 0, [0; 4]).build(), // timestamp request: not in icmp_types
        syn("fd00::2", "2001:db8::10", 40012, 443), // web over IPv6
        syn("fd00::2", "2001:db8:1::10", 40013, 443), // outside the v6 CIDR
    ]);
    let r = replay("rules", &config(), &frames);
    let got: Vec<(String, Option<String>)> = (0..frames.len())
        .map(|i| {
            (
                format!("{}/{}", r.verdict(i), r.reason(i)),
                r.rule(i).map(str::to_owned),
            )
        })
        .collect();
    let want: Vec<(&str, Option<&str>)> = vec![
        ("allow/rule", Some("web")),
        ("allow/rule", Some("web")),
        ("allow/rule", Some("web")),
        ("drop/default", None),
        ("drop/default", None),
        ("drop/default", None),
        ("drop/rule", Some("blocked-net")),
        ("drop/rule", Some("blocked-net")),
        ("allow/rule", Some("dns")),
        ("drop/default", None),
        ("allow/rule", Some("ssh-in")),
        ("drop/default", None),
        ("allow/rule", Some("ping")),
        ("drop/default", None),
        ("allow/rule", Some("web")),
        ("drop/default", None),
    ];
    let want: Vec<(String, Option<String>)> = want
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b.map(str::to_owned)))
        .collect();
    assert_eq!(got, want);
    assert_eq!(r.log[10]["ingress"], "outside");
    assert_eq!(r.log[0]["ingress"], "inside");
    // What passes leaves unchanged, in order.
    let passed: Vec<&Vec<u8>> = [0, 1, 2, 8, 10, 12, 14]
        .iter()
        .map(|&i| &frames[i].1)
        .collect();
    assert_eq!(r.out.iter().collect::<Vec<_>>(), passed);
}

#[test]
fn return_traffic_of_allowed_flows_passes_and_of_dropped_flows_does_not() {
    let frames = at_ms(vec![
        syn(C, S, 40000, 443),
        synack(S, C, 443, 40000),
        ack(C, S, 40000, 443),
        Pkt::new(S, C)
            .tcp(443, 40000, tcp::ACK | tcp::PSH)
            .payload(b"hello")
            .build(),
        syn(C, S, 40001, 25),    // default drop
        synack(S, C, 25, 40001), // its return: no flow
        udp(C, "192.0.2.53", 40002, 53),
        udp("192.0.2.53", C, 53, 40002), // the answer: same flow
        udp("192.0.2.53", C, 53, 40003), // another port: a new flow from outside, refused
    ]);
    let r = replay("return", &config(), &frames);
    assert_eq!(
        r.summary(),
        [
            "allow/rule",
            "allow/established",
            "allow/established",
            "allow/established",
            "drop/default",
            "drop/no-flow",
            "allow/rule",
            "allow/established",
            "drop/default"
        ]
    );
    assert_eq!(r.rule(3), Some("web"));
}

#[test]
fn tcp_without_syn_needs_a_flow_unless_midstream_is_allowed() {
    let frames = at_ms(vec![
        ack(C, S, 40000, 443),
        Pkt::new(C, S).tcp(40001, 443, tcp::FIN | tcp::ACK).build(),
        Pkt::new(C, S).tcp(40002, 443, tcp::RST).build(),
        synack(S, C, 443, 40003),
    ]);
    let r = replay("nosyn", &config(), &frames);
    assert_eq!(
        r.summary(),
        [
            "drop/no-flow",
            "drop/no-flow",
            "drop/no-flow",
            "drop/no-flow"
        ]
    );
    let r = replay(
        "midstream",
        &format!("{}[flows]\ntcp_midstream = true\n", config()),
        &frames,
    );
    assert_eq!(
        r.summary(),
        ["allow/rule", "allow/rule", "drop/no-flow", "drop/default"],
        "picked up mid-stream; a RST never opens a flow; the SYN-ACK opens one from outside"
    );
}

#[test]
fn tcp_state_machine_and_reopening_a_closed_flow() {
    let frames = at_ms(vec![
        syn(C, S, 40000, 443),
        synack(S, C, 443, 40000),
        ack(C, S, 40000, 443),
        Pkt::new(C, S).tcp(40000, 443, tcp::FIN | tcp::ACK).build(),
        Pkt::new(S, C).tcp(443, 40000, tcp::FIN | tcp::ACK).build(),
        ack(C, S, 40000, 443),
        syn(C, S, 40000, 443), // the same ports again: a new connection, decided afresh
        Pkt::new(S, C).tcp(443, 40000, tcp::RST | tcp::ACK).build(),
        ack(C, S, 40000, 443), // after the RST the flow lingers for the transitory timeout
    ]);
    let r = replay("tcpstate", &config(), &frames);
    assert_eq!(
        r.summary(),
        [
            "allow/rule",
            "allow/established",
            "allow/established",
            "allow/established",
            "allow/established",
            "allow/established",
            "allow/rule",
            "allow/established",
            "allow/established"
        ]
    );
}

#[test]
fn reject_answers_tcp_with_a_rst_and_udp_with_icmp() {
    let target = "203.0.113.5";
    let tcp_syn = Pkt::new(C, target)
        .tcp(40000, 80, tcp::SYN)
        .seq_ack(123_456, 0)
        .vlan(42)
        .build();
    let tcp_ack = Pkt::new(C, target)
        .tcp(40001, 80, tcp::ACK)
        .seq_ack(77, 9_999)
        .build();
    let udp_q = Pkt::new(C, target)
        .udp(40002, 5000)
        .payload(b"0123456789")
        .build();
    let v6 = Pkt::new("fd00::2", "2001:db8:ffff::1")
        .udp(40003, 5000)
        .payload(b"x")
        .build();
    let frames = at_ms(vec![tcp_syn.clone(), tcp_ack, udp_q.clone(), v6]);
    let cfg = format!(
        "{INSIDE}[flows]\ntcp_midstream = true\n[[rule]]\nname = \"refused\"\naction = \"reject\"\ndst_cidr = [\"203.0.113.0/24\", \"2001:db8:ffff::/48\"]\n"
    );
    let r = replay("reject", &cfg, &frames);
    assert_eq!(
        r.summary(),
        ["reject/rule", "reject/rule", "reject/rule", "reject/rule"]
    );
    assert_eq!(r.out.len(), 4, "four answers, nothing forwarded");

    // The RST to the SYN: from the target back to the client, same VLAN, seq 0, ack = ISN + 1.
    let rst = &r.out[0];
    assert_eq!(&rst[..6], &CLIENT_MAC);
    assert_eq!(&rst[12..16], &[0x81, 0x00, 0x00, 42]);
    let ip = &rst[18..];
    assert_eq!(&ip[12..16], &[203, 0, 113, 5]);
    assert_eq!(&ip[16..20], &[10, 0, 0, 2]);
    let t = &ip[20..40];
    assert_eq!(u16::from_be_bytes([t[0], t[1]]), 80);
    assert_eq!(u16::from_be_bytes([t[2], t[3]]), 40000);
    assert_eq!(u32::from_be_bytes([t[4], t[5], t[6], t[7]]), 0);
    assert_eq!(u32::from_be_bytes([t[8], t[9], t[10], t[11]]), 123_457);
    assert_eq!(t[13], tcp::RST | tcp::ACK);

    // The RST to a bare ACK: seq = its ack, no ACK flag.
    let t = &r.out[1][34..54];
    assert_eq!(u32::from_be_bytes([t[4], t[5], t[6], t[7]]), 9_999);
    assert_eq!(t[13], tcp::RST);

    // ICMP administratively prohibited, quoting the datagram.
    let icmp = &r.out[2][34..];
    assert_eq!((icmp[0], icmp[1]), (3, 13));
    assert_eq!(
        &icmp[8..8 + 38],
        &udp_q[14..14 + 38],
        "the quote starts with the original IP header"
    );
    let icmp6 = &r.out[3][54..];
    assert_eq!((icmp6[0], icmp6[1]), (1, 1));

    // tshark agrees the answers are well formed, checksums included.
    let dir = testkit::scratch_dir("reject-tshark");
    let p = dir.join("answers.pcap");
    testkit::capture::write_pcap(&p, &r.out, T0);
    let out = std::process::Command::new("tshark")
        .args(["-n", "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE", "-r"])
        .arg(&p)
        .args(["-Y", "_ws.malformed || _ws.expert.severity >= error || tcp.checksum.status == 0 || ip.checksum.status == 0 || icmp.checksum.status == 0 || icmpv6.checksum.status == 0", "-T", "fields", "-e", "frame.number", "-e", "_ws.expert.message"])
        .output()
        .expect("tshark");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "",
        "tshark finds no problem"
    );
}

#[test]
fn reject_answers_are_rate_limited() {
    let frames: Vec<(u64, Vec<u8>)> = (0..10u16)
        .map(|i| (T0 + u64::from(i), syn(C, "203.0.113.5", 40000 + i, 80)))
        .chain([(T0 + 2 * SEC, syn(C, "203.0.113.5", 41000, 80))])
        .collect();
    let r = replay(
        "reject-rate",
        &format!("{}[flows]\nreject_rate = 3\n", config()),
        &frames,
    );
    assert!(r.summary().iter().all(|s| s == "reject/rule"));
    assert_eq!(
        r.out.len(),
        4,
        "3 in the first burst, 1 more after the bucket refilled"
    );
}

#[test]
fn frames_to_a_group_mac_or_icmpv6_errors_are_never_answered() {
    // A directed broadcast (its IP address looks unicast, its MAC is the broadcast one), and
    // an ICMPv6 error of a type only RFC 4443's "below 128" rule names, both refused.
    let broadcast = Pkt::new(C, "203.0.113.255")
        .udp(137, 137)
        .payload(b"netbios")
        .macs(CLIENT_MAC, [0xff; 6])
        .build();
    let private_error = Pkt::new("fd00::2", "2001:db8::7")
        .icmp(100, 0, [0; 4])
        .payload(&[0; 48])
        .build();
    let cfg = format!(
        "{}[[rule]]\nname = \"refuse-v6\"\naction = \"reject\"\ndst_cidr = [\"2001:db8::7/128\"]\n",
        config().replace("[default]\naction = \"drop\"\n", "")
    );
    let r = replay(
        "no-answers",
        &format!("{cfg}[default]\naction = \"drop\"\n"),
        &at_ms(vec![broadcast, private_error]),
    );
    assert_eq!(r.summary(), ["reject/rule", "drop/icmp-error-no-flow"]);
    assert!(r.out.is_empty(), "nothing was answered");
}

#[test]
fn vlan_and_qinq_frames_are_classified_and_forwarded_unchanged() {
    let frames = at_ms(vec![
        Pkt::new(C, S).tcp(40000, 443, tcp::SYN).vlan(100).build(),
        Pkt::new(S, C)
            .tcp(443, 40000, tcp::SYN | tcp::ACK)
            .vlan(100)
            .build(),
        Pkt::new(C, S)
            .tcp(40001, 443, tcp::SYN)
            .qinq(10, 20)
            .build(),
        Pkt::new(C, "198.51.100.1")
            .tcp(40002, 443, tcp::SYN)
            .qinq(10, 20)
            .build(),
    ]);
    let r = replay("vlan", &config(), &frames);
    assert_eq!(
        r.summary(),
        ["allow/rule", "allow/established", "allow/rule", "drop/rule"]
    );
    assert_eq!(
        r.out,
        vec![
            frames[0].1.clone(),
            frames[1].1.clone(),
            frames[2].1.clone()
        ]
    );
}

#[test]
fn ipv6_extension_headers_are_walked_to_the_transport_header() {
    let frames = at_ms(vec![
        Pkt::new("fd00::2", "2001:db8::10")
            .tcp(40000, 443, tcp::SYN)
            .ext(Ext::HopByHop(0))
            .ext(Ext::DestOpts(1))
            .ext(Ext::Routing)
            .build(),
        Pkt::new("fd00::2", "2001:db8::10")
            .tcp(40001, 25, tcp::SYN)
            .ext(Ext::DestOpts(0))
            .ext(Ext::Ah)
            .build(),
        // Hop-by-hop after another header is malformed.
        Pkt::new("fd00::2", "2001:db8::10")
            .tcp(40002, 443, tcp::SYN)
            .ext(Ext::DestOpts(0))
            .ext(Ext::HopByHop(0))
            .build(),
    ]);
    let r = replay("ipv6ext", &config(), &frames);
    assert_eq!(
        r.summary(),
        ["allow/rule", "drop/default", "drop/malformed"]
    );
    assert_eq!(r.log[2]["detail"], "ipv6-ext-header");
}

#[test]
fn ipv6_fragments_with_a_header_after_the_fragment_header() {
    // Destination options ride in the fragmentable part: the first fragment holds them and
    // the UDP header, later ones only data (their Fragment header names destination options
    // as the next header, not UDP). Both follow the datagram's verdict.
    let whole = Pkt::new("fd00::2", "2001:db8::53")
        .udp(40000, 53)
        .payload(&[7; 1200])
        .ext(Ext::DestOpts(0))
        .build();
    let (eth, ip) = whole.split_at(14);
    let (header, fragmentable) = ip.split_at(40);
    let mut frames = Vec::new();
    for (i, chunk) in fragmentable.chunks(608).enumerate() {
        let more = (i + 1) * 608 < fragmentable.len();
        let mut f = eth.to_vec();
        let mut h = header.to_vec();
        h[4..6].copy_from_slice(&u16::try_from(8 + chunk.len()).unwrap().to_be_bytes());
        h[6] = 44;
        f.extend(h);
        let offset = u16::try_from(i * 608 / 8).unwrap() << 3 | u16::from(more);
        f.extend([60, 0]);
        f.extend(offset.to_be_bytes());
        f.extend(31u32.to_be_bytes());
        f.extend(chunk);
        frames.push(f);
    }
    assert_eq!(frames.len(), 2);
    let r = replay("v6-frag-destopts", &config(), &at_ms(frames));
    assert_eq!(r.summary(), ["allow/rule", "allow/fragment"]);
    assert_eq!(r.rule(1), Some("dns"));
}

fn datagram(dst: &str, id: u32) -> Vec<Vec<u8>> {
    Pkt::new(C, dst)
        .udp(40000, 53)
        .payload(&[0xab; 2500])
        .ip_id(id)
        .fragments(1000)
}

#[test]
fn fragments_in_order_follow_the_first() {
    let mut frames = datagram("192.0.2.53", 1);
    frames.extend(datagram("198.51.100.1", 2));
    let r = replay("frag-in-order", &config(), &at_ms(frames.clone()));
    assert_eq!(
        r.summary(),
        [
            "allow/rule",
            "allow/fragment",
            "allow/fragment",
            "drop/rule",
            "drop/fragment",
            "drop/fragment"
        ]
    );
    assert_eq!(r.rule(1), Some("dns"));
    assert_eq!(r.out, frames[..3].to_vec());
}

#[test]
fn fragments_out_of_order_wait_for_the_first() {
    let d = datagram("192.0.2.53", 9);
    let v6 = Pkt::new("fd00::2", "2001:db8::53")
        .udp(40001, 53)
        .payload(&[1; 2500])
        .ip_id(77)
        .fragments(1000);
    let frames = vec![
        d[2].clone(),
        d[1].clone(),
        d[0].clone(),
        v6[1].clone(),
        v6[2].clone(),
        v6[0].clone(),
    ];
    let r = replay("frag-out-of-order", &config(), &at_ms(frames.clone()));
    assert_eq!(
        r.summary(),
        [
            "allow/fragment",
            "allow/fragment",
            "allow/rule",
            "allow/fragment",
            "allow/fragment",
            "allow/rule"
        ]
    );
    // The held fragments leave right after the first fragment that released them.
    assert_eq!(
        r.out,
        vec![
            d[0].clone(),
            d[2].clone(),
            d[1].clone(),
            v6[0].clone(),
            v6[1].clone(),
            v6[2].clone()
        ]
    );
}

#[test]
fn fragments_whose_first_never_comes_are_dropped_after_the_timeout() {
    let d = datagram("192.0.2.53", 3);
    let frames = vec![
        (T0, d[1].clone()),
        (T0 + 1000, d[2].clone()),
        // Past the 5 s fragment timeout: the first fragment starts a new datagram.
        (T0 + 6 * SEC, d[0].clone()),
    ];
    let r = replay("frag-timeout", &config(), &frames);
    assert_eq!(
        r.summary(),
        [
            "drop/fragment-no-first",
            "drop/fragment-no-first",
            "allow/rule"
        ]
    );
    assert_eq!(r.out, vec![d[0].clone()]);
    // Tiny first fragments (RFC 1858) are malformed.
    let tiny = Pkt::new(C, S)
        .tcp(40000, 443, tcp::SYN)
        .payload(&[0; 40])
        .fragments(8);
    let r = replay("frag-tiny", &config(), &at_ms(tiny));
    assert_eq!(r.log[0]["detail"], "fragment-too-small");
    assert_eq!(r.log[1]["detail"], "fragment-too-small");
}

#[test]
fn a_reload_changes_the_fragment_timeout() {
    let dir = testkit::scratch_dir("reload-frag");
    let g2 = dir.join("g2.toml");
    std::fs::write(
        &g2,
        format!("[ports.inside]\ndevice = \"in\"\n[ports.outside]\ndevice = \"out\"\n{INSIDE}{RULES}[flows]\nfragment_timeout = \"1s\"\n"),
    )
    .unwrap();
    // A later fragment waits for its first one 2 s: within the 5 s default, past the 1 s the
    // reload before it sets.
    let d = datagram("192.0.2.53", 4);
    let frames = vec![(T0, d[1].clone()), (T0 + 2 * SEC, d[0].clone())];
    let r = replay("frag-before-reload", &config(), &frames);
    assert_eq!(r.summary(), ["allow/fragment", "allow/rule"]);
    let r = replay_with(
        "frag-reload",
        &config(),
        &frames,
        &["--reload-at".into(), format!("0:{}", g2.display())],
    );
    assert_eq!(r.summary(), ["drop/fragment-no-first", "allow/rule"]);
}

#[test]
fn icmp_errors_pass_for_known_flows_only() {
    let q = udp(C, "192.0.2.53", 40000, 53);
    let unreachable = |quoted: &[u8]| {
        Pkt::new("192.0.2.53", C)
            .icmp(3, 3, [0; 4])
            .payload(&quoted[14..14 + 28])
            .build()
    };
    let v6q = Pkt::new("fd00::2", "2001:db8::53")
        .udp(40001, 53)
        .payload(b"q")
        .build();
    let too_big = Pkt::new("2001:db8::1", "fd00::2")
        .icmp(2, 0, [0, 0, 5, 0])
        .payload(&v6q[14..14 + 48])
        .build();
    let frames = at_ms(vec![
        q.clone(),
        unreachable(&q),
        unreachable(&udp(C, "192.0.2.53", 40099, 53)), // quotes a flow that does not exist
        v6q.clone(),
        too_big,
        Pkt::new("192.0.2.53", C)
            .icmp(3, 3, [0; 4])
            .payload(&[0x45, 0])
            .build(), // quote too short
        // Quotes the live flow, but is addressed to another inside host than its sender.
        Pkt::new("192.0.2.53", "10.0.0.99")
            .icmp(3, 3, [0; 4])
            .payload(&q[14..14 + 28])
            .build(),
    ]);
    let r = replay("icmp-errors", &config(), &frames);
    assert_eq!(
        r.summary(),
        [
            "allow/rule",
            "allow/related",
            "drop/icmp-error-no-flow",
            "allow/rule",
            "allow/related",
            "drop/icmp-error-no-flow",
            "drop/icmp-error-no-flow"
        ]
    );
}

#[test]
fn reloads_given_out_of_order_name_their_own_rules() {
    let dir = testkit::scratch_dir("reload-order");
    let policy = |name: &str| {
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!("[ports.inside]\ndevice = \"in\"\n[ports.outside]\ndevice = \"out\"\n{INSIDE}[[rule]]\nname = \"{name}\"\naction = \"allow\"\nproto = \"tcp\"\n"),
        )
        .unwrap();
        path
    };
    let (two, three) = (policy("two"), policy("three"));
    let frames = at_ms(vec![
        syn(C, S, 40000, 443),
        ack(C, S, 40000, 443),
        ack(C, S, 40000, 443),
    ]);
    let r = replay_with(
        "reload-order",
        &config(),
        &frames,
        &[
            "--reload-at".into(),
            format!("2:{}", three.display()),
            "--reload-at".into(),
            format!("1:{}", two.display()),
        ],
    );
    assert_eq!(
        (r.rule(0), r.rule(1), r.rule(2)),
        (Some("web"), Some("two"), Some("three"))
    );
}

#[test]
fn an_icmp_error_after_a_reload_is_decided_under_the_new_policy() {
    let dir = testkit::scratch_dir("reload-icmp");
    // Generation 2 drops the range the flow is in.
    let g2 = dir.join("g2.toml");
    std::fs::write(
        &g2,
        format!(
            "[ports.inside]\ndevice = \"in\"\n[ports.outside]\ndevice = \"out\"\n{INSIDE}[[rule]]\nname = \"no-web-range\"\naction = \"drop\"\nproto = \"tcp\"\ndst_ports = [\"8000-8080\"]\n[default]\naction = \"allow\"\n"
        ),
    )
    .unwrap();
    let opening = syn(C, S, 40001, 8000);
    let error = Pkt::new(S, C)
        .icmp(3, 4, [0, 0, 5, 0])
        .payload(&opening[14..14 + 28])
        .build();
    let frames = at_ms(vec![
        opening.clone(),           // 0: web
        synack(S, C, 8000, 40001), // 1: established (gen 1)
        error,                     // 2: gen 2 refuses the flow it quotes: dropped with it
        ack(C, S, 40001, 8000),    // 3: the flow is gone
    ]);
    let r = replay_with(
        "reload-icmp",
        &config(),
        &frames,
        &["--reload-at".into(), format!("2:{}", g2.display())],
    );
    assert_eq!(
        r.summary(),
        [
            "allow/rule",
            "allow/established",
            "drop/rule",
            "drop/no-flow"
        ]
    );
    assert_eq!(r.rule(2), Some("no-web-range"));
}

#[test]
fn a_fin_on_the_handshakes_last_ack_closes_the_flow() {
    let cfg = format!(
        "{}[flows]\ntcp_established_timeout = \"10s\"\ntcp_transitory_timeout = \"3s\"\n",
        config()
    );
    // Data and FIN on the ACK that completes the handshake: the flow is closing (3 s), not
    // established (10 s), so the server's ACK 5 s later finds no flow.
    let frames = vec![
        (T0, syn(C, S, 43000, 443)),
        (T0 + 1, synack(S, C, 443, 43000)),
        (
            T0 + 2,
            Pkt::new(C, S)
                .tcp(43000, 443, tcp::ACK | tcp::PSH | tcp::FIN)
                .seq_ack(1001, 5001)
                .payload(b"GET / HTTP/1.0\r\n\r\n")
                .build(),
        ),
        (T0 + 5 * SEC + 3, ack(S, C, 443, 43000)),
    ];
    let r = replay("fin-on-ack", &cfg, &frames);
    assert_eq!(
        r.summary(),
        [
            "allow/rule",
            "allow/established",
            "allow/established",
            "drop/no-flow"
        ]
    );
}

#[test]
fn arp_and_neighbour_discovery_always_pass_other_non_ip_does_not() {
    let ns = Pkt::new("fd00::2", "ff02::1:ff00:10")
        .icmp(135, 0, [0; 4])
        .payload(&[0; 16])
        .build();
    let frames = at_ms(vec![
        testkit::packet::arp_request([10, 0, 0, 2], [10, 0, 0, 1]),
        ns,
        testkit::packet::non_ip_frame(),
    ]);
    let r = replay("bridge", &config(), &frames);
    assert_eq!(r.summary(), ["allow/bridge", "allow/bridge", "drop/non-ip"]);
}

#[test]
fn each_timeout_is_driven_by_capture_time() {
    let cfg = format!(
        "{}[flows]\ntcp_established_timeout = \"10s\"\ntcp_transitory_timeout = \"3s\"\nudp_timeout = \"5s\"\nicmp_timeout = \"2s\"\n",
        config()
    );
    let frames = vec![
        // UDP: an answer within the timeout passes, one after it is a new flow from outside.
        (T0, udp(C, "192.0.2.53", 40000, 53)),
        (T0 + 5 * SEC, udp("192.0.2.53", C, 53, 40000)),
        (T0 + 10 * SEC + 1, udp("192.0.2.53", C, 53, 40000)),
        // TCP transitory: a SYN-ACK later than 3 s after the SYN finds no flow.
        (T0 + 11 * SEC, syn(C, S, 41000, 443)),
        (T0 + 14 * SEC + 1, synack(S, C, 443, 41000)),
        // TCP established: idle for 10 s is fine, idle for more is not.
        (T0 + 20 * SEC, syn(C, S, 42000, 443)),
        (T0 + 20 * SEC + 1, synack(S, C, 443, 42000)),
        (T0 + 20 * SEC + 2, ack(C, S, 42000, 443)),
        (T0 + 30 * SEC + 2, ack(C, S, 42000, 443)),
        (T0 + 40 * SEC + 3, ack(C, S, 42000, 443)),
        // ICMP echo: the reply must come within 2 s.
        (T0 + 50 * SEC, Pkt::new(C, S).echo_request(9, 1).build()),
        (T0 + 51 * SEC, Pkt::new(S, C).echo_reply(9, 1).build()),
        (T0 + 53 * SEC + 1, Pkt::new(S, C).echo_reply(9, 1).build()),
    ];
    let r = replay("timeouts", &cfg, &frames);
    assert_eq!(
        r.summary(),
        [
            "allow/rule",
            "allow/established",
            "drop/default",
            "allow/rule",
            "drop/no-flow",
            "allow/rule",
            "allow/established",
            "allow/established",
            "allow/established",
            "drop/no-flow",
            "allow/rule",
            "allow/established",
            "drop/no-flow"
        ]
    );
}

#[test]
fn a_reload_decides_live_flows_again() {
    let dir = testkit::scratch_dir("reload-files");
    // Generation 2 drops the web range and allows port 25; generation 3 allows everything.
    let g2 = dir.join("g2.toml");
    std::fs::write(
        &g2,
        format!(
            "[ports.inside]\ndevice = \"in\"\n[ports.outside]\ndevice = \"out\"\n{INSIDE}[[rule]]\nname = \"mail\"\naction = \"allow\"\nproto = \"tcp\"\ndst_ports = [\"25\", \"443\"]\n[[rule]]\nname = \"no-web-range\"\naction = \"drop\"\nproto = \"tcp\"\ndst_ports = [\"8000-8080\"]\n"
        ),
    )
    .unwrap();
    let frames = at_ms(vec![
        syn(C, S, 40000, 443),  // 0: web
        syn(C, S, 40001, 8000), // 1: web
        ack(C, S, 40000, 443),  // 2: established (gen 1)
        ack(C, S, 40000, 443),  // 3: re-decided under gen 2: allowed by "mail"
        ack(C, S, 40001, 8000), // 4: re-decided under gen 2: dropped by "no-web-range"
        ack(C, S, 40001, 8000), // 5: the flow is gone
        ack(C, S, 40000, 443),  // 6: established under gen 2
    ]);
    let r = replay_with(
        "reload",
        &config(),
        &frames,
        &["--reload-at".into(), format!("3:{}", g2.display())],
    );
    assert_eq!(
        r.summary(),
        [
            "allow/rule",
            "allow/rule",
            "allow/established",
            "allow/rule",
            "drop/rule",
            "drop/no-flow",
            "allow/established"
        ]
    );
    assert_eq!(r.rule(2), Some("web"));
    assert_eq!(r.rule(3), Some("mail"));
    assert_eq!(r.rule(4), Some("no-web-range"));
}

#[test]
fn a_full_flow_table_refuses_new_flows() {
    let frames = at_ms(vec![
        syn(C, S, 40000, 443),
        syn(C, S, 40001, 443),
        syn(C, S, 40002, 443),
        ack(C, S, 40000, 443),
    ]);
    let r = replay(
        "full",
        &format!("{}[flows]\ncapacity = 2\n", config()),
        &frames,
    );
    assert_eq!(
        r.summary(),
        [
            "allow/rule",
            "allow/rule",
            "drop/flow-table-full",
            "allow/established"
        ]
    );
}

#[test]
fn malformed_packets_are_dropped_with_a_detail() {
    let mut bad_ihl = udp(C, S, 1, 2);
    bad_ihl[14] = 0x44;
    let mut short_total = udp(C, S, 1, 2);
    short_total[17] = 10;
    let mut bad_doff = syn(C, S, 1, 443);
    bad_doff[14 + 20 + 12] = 0x30;
    let mut bad_udp_len = udp(C, S, 1, 2);
    bad_udp_len[14 + 20 + 5] = 200;
    let mut three_tags = Pkt::new(C, S).udp(1, 2).qinq(1, 2).vlan(3).build();
    three_tags.truncate(60);
    let frames = at_ms(vec![
        bad_ihl,
        short_total,
        bad_doff,
        bad_udp_len,
        three_tags,
        vec![0u8; 10],
    ]);
    let r = replay("malformed", &config(), &frames);
    let details: Vec<&str> = r
        .log
        .iter()
        .map(|l| l["detail"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(
        details,
        [
            "ipv4-header",
            "ipv4-length",
            "tcp-header",
            "udp-length",
            "vlan-depth",
            "truncated"
        ]
    );
    assert!(r.out.is_empty());
}

#[test]
fn same_input_gives_byte_identical_output() {
    let mut frames = testkit::capture::mixed_frames(500, 11);
    frames.extend(datagram("192.0.2.53", 5).into_iter().rev());
    let frames = at_ms(frames);
    let a = replay("det-a", &config(), &frames);
    let b = replay("det-b", &config(), &frames);
    assert_eq!(a.log, b.log);
    assert_eq!(a.out, b.out);
}
