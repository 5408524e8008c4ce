//! One test per field's semantics and boundary; the property test against a linear scan is in
//! `dataplane/tests/matcher.rs`.

use std::net::IpAddr;

use config::{Action, Cidr, DomainPattern, FqdnMatch, PortRange, Proto, Rule};

use super::{Matcher, Tuple};
use crate::side::Side;

fn rule() -> Rule {
    Rule {
        name: "r".to_owned(),
        action: Action::Allow,
        from: config::Side::Any,
        proto: Proto::Any,
        src_cidr: Vec::new(),
        dst_cidr: Vec::new(),
        src_ports: Vec::new(),
        dst_ports: Vec::new(),
        icmp_types: Vec::new(),
        dst_fqdn: Vec::new(),
        fqdn_match: FqdnMatch::Dns,
        line: 1,
    }
}

fn cidrs(list: &[&str]) -> Vec<Cidr> {
    list.iter().map(|c| c.parse().expect("test CIDR")).collect()
}

fn ports(list: &[&str]) -> Vec<PortRange> {
    list.iter()
        .map(|p| p.parse().expect("test ports"))
        .collect()
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

/// A TCP packet from the inside, 10.0.0.1:40000 to 192.0.2.1:443.
fn tcp(src: &str, dst: &str) -> Tuple {
    Tuple {
        side: Side::Inside,
        proto: 6,
        src: ip(src),
        dst: ip(dst),
        sport: 40000,
        dport: 443,
        icmp_type: 0,
    }
}

fn packet() -> Tuple {
    tcp("10.0.0.1", "192.0.2.1")
}

fn v6_packet() -> Tuple {
    tcp("fd00::1", "2001:db8::1")
}

fn icmp(src: &str, dst: &str, icmp_type: u8) -> Tuple {
    let proto = if ip(src).is_ipv4() { 1 } else { 58 };
    Tuple {
        proto,
        sport: 0,
        dport: 0,
        icmp_type,
        ..tcp(src, dst)
    }
}

/// Whether the single rule `r` matches `t` (no FQDN satisfied).
fn matches(r: Rule, t: Tuple) -> bool {
    let matcher = Matcher::new(&[r]);
    matcher.first_match(&t, &[]) == Some(0)
}

#[test]
fn no_rules_match_nothing() {
    let matcher = Matcher::new(&[]);
    assert_eq!(matcher.rule_count(), 0);
    assert_eq!(matcher.first_match(&packet(), &[]), None);
    assert_eq!(matcher.first_match(&v6_packet(), &[]), None);
}

#[test]
fn a_rule_without_fields_matches_everything() {
    for t in [
        packet(),
        v6_packet(),
        icmp("10.0.0.1", "10.0.0.2", 8),
        icmp("fd00::1", "fd00::2", 128),
        Tuple {
            proto: 47,
            sport: 0,
            dport: 0,
            ..packet()
        },
        Tuple {
            side: Side::Outside,
            ..packet()
        },
    ] {
        assert!(matches(rule(), t), "{t:?}");
    }
}

#[test]
fn from_matches_the_side() {
    let inside = Tuple {
        side: Side::Inside,
        ..packet()
    };
    let outside = Tuple {
        side: Side::Outside,
        ..packet()
    };
    let from = |side| Rule {
        from: side,
        ..rule()
    };
    assert!(matches(from(config::Side::Inside), inside));
    assert!(!matches(from(config::Side::Inside), outside));
    assert!(!matches(from(config::Side::Outside), inside));
    assert!(matches(from(config::Side::Outside), outside));
    assert!(matches(from(config::Side::Any), inside));
    assert!(matches(from(config::Side::Any), outside));
}

#[test]
fn proto_matches_the_protocol_number_and_icmp_its_family() {
    let proto = |proto| Rule { proto, ..rule() };
    let udp = Tuple {
        proto: 17,
        ..packet()
    };
    let gre = Tuple {
        proto: 47,
        sport: 0,
        dport: 0,
        ..packet()
    };
    let icmp4 = icmp("10.0.0.1", "10.0.0.2", 8);
    let icmp6 = icmp("fd00::1", "fd00::2", 128);
    let v4_proto_58 = Tuple { proto: 58, ..icmp4 };
    let v6_proto_1 = Tuple { proto: 1, ..icmp6 };

    assert!(matches(proto(Proto::Tcp), packet()));
    assert!(matches(proto(Proto::Tcp), v6_packet()));
    assert!(!matches(proto(Proto::Tcp), udp));
    assert!(matches(proto(Proto::Udp), udp));
    assert!(!matches(proto(Proto::Udp), packet()));

    assert!(matches(proto(Proto::Icmp), icmp4));
    assert!(
        !matches(proto(Proto::Icmp), v6_proto_1),
        "icmp is IPv4 only"
    );
    assert!(!matches(proto(Proto::Icmp), icmp6));
    assert!(matches(proto(Proto::Icmpv6), icmp6));
    assert!(
        !matches(proto(Proto::Icmpv6), v4_proto_58),
        "icmpv6 is IPv6 only"
    );
    assert!(!matches(proto(Proto::Icmpv6), icmp4));
    assert!(
        !matches(proto(Proto::Icmp), v4_proto_58),
        "protocol 58 is not ICMP"
    );
    assert!(
        !matches(proto(Proto::Icmpv6), v6_proto_1),
        "protocol 1 is not ICMPv6"
    );

    for t in [packet(), udp, gre, icmp4, icmp6, v4_proto_58, v6_proto_1] {
        assert!(matches(proto(Proto::Any), t), "{t:?}");
        assert!(!matches(proto(Proto::Tcp), t) || t.proto == 6);
    }
}

#[test]
fn cidr_ends_are_inside_and_their_neighbours_outside() {
    for (field_is_src, place) in [(true, "src"), (false, "dst")] {
        let with = |list: &[&str]| {
            if field_is_src {
                Rule {
                    src_cidr: cidrs(list),
                    ..rule()
                }
            } else {
                Rule {
                    dst_cidr: cidrs(list),
                    ..rule()
                }
            }
        };
        let at = |addr: &str| {
            let other = if ip(addr).is_ipv4() {
                "192.0.2.77"
            } else {
                "2001:db8::77"
            };
            if field_is_src {
                tcp(addr, other)
            } else {
                tcp(other, addr)
            }
        };
        let net = with(&["10.1.2.0/24"]);
        assert!(
            matches(net.clone(), at("10.1.2.0")),
            "{place}: first address"
        );
        assert!(
            matches(net.clone(), at("10.1.2.255")),
            "{place}: last address"
        );
        assert!(matches(net.clone(), at("10.1.2.77")), "{place}");
        assert!(
            !matches(net.clone(), at("10.1.1.255")),
            "{place}: just below"
        );
        assert!(!matches(net.clone(), at("10.1.3.0")), "{place}: just above");
        assert!(
            !matches(net.clone(), at("::ffff:10.1.2.3")),
            "{place}: mapped v6"
        );

        let host = with(&["10.1.2.3/32"]);
        assert!(matches(host.clone(), at("10.1.2.3")), "{place}: /32");
        assert!(!matches(host.clone(), at("10.1.2.2")), "{place}: /32");
        assert!(!matches(host, at("10.1.2.4")), "{place}: /32");

        let top = with(&["255.255.255.255/32", "0.0.0.0/32"]);
        assert!(
            matches(top.clone(), at("255.255.255.255")),
            "{place}: top of v4"
        );
        assert!(matches(top.clone(), at("0.0.0.0")), "{place}: bottom of v4");
        assert!(!matches(top.clone(), at("255.255.255.254")), "{place}");
        assert!(!matches(top, at("0.0.0.1")), "{place}");

        let all_v4 = with(&["0.0.0.0/0"]);
        assert!(matches(all_v4.clone(), at("0.0.0.0")), "{place}: /0");
        assert!(
            matches(all_v4.clone(), at("255.255.255.255")),
            "{place}: /0"
        );
        assert!(!matches(all_v4, at("::")), "{place}: v4 /0 on v6");

        let all_v6 = with(&["::/0"]);
        assert!(matches(all_v6.clone(), at("::")), "{place}: ::/0");
        assert!(matches(
            all_v6.clone(),
            at("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
        ));
        assert!(!matches(all_v6, at("10.0.0.1")), "{place}: v6 /0 on v4");

        let v6_net = with(&["2001:db8:1::/48"]);
        assert!(
            matches(v6_net.clone(), at("2001:db8:1::")),
            "{place}: v6 first"
        );
        assert!(matches(
            v6_net.clone(),
            at("2001:db8:1:ffff:ffff:ffff:ffff:ffff")
        ));
        assert!(!matches(
            v6_net.clone(),
            at("2001:db8:0:ffff:ffff:ffff:ffff:ffff")
        ));
        assert!(
            !matches(v6_net.clone(), at("2001:db8:2::")),
            "{place}: v6 above"
        );
        assert!(
            !matches(v6_net, at("10.0.0.1")),
            "{place}: v6 rule, v4 packet"
        );

        let v6_host = with(&[
            "2001:db8::5/128",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
        ]);
        assert!(matches(v6_host.clone(), at("2001:db8::5")), "{place}: /128");
        assert!(
            !matches(v6_host.clone(), at("2001:db8::4")),
            "{place}: /128"
        );
        assert!(
            !matches(v6_host.clone(), at("2001:db8::6")),
            "{place}: /128"
        );
        assert!(matches(
            v6_host,
            at("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
        ));

        let v4_only = with(&["10.0.0.0/8"]);
        assert!(
            !matches(v4_only, at("fd00::1")),
            "{place}: v4 rule, v6 packet"
        );

        let mixed = with(&["10.0.0.0/8", "fd00::/8", "192.168.0.0/16"]);
        assert!(
            matches(mixed.clone(), at("10.9.9.9")),
            "{place}: any of the list"
        );
        assert!(
            matches(mixed.clone(), at("192.168.3.4")),
            "{place}: any of the list"
        );
        assert!(
            matches(mixed.clone(), at("fd12::1")),
            "{place}: either family"
        );
        assert!(!matches(mixed.clone(), at("11.0.0.0")), "{place}");
        assert!(!matches(mixed, at("fe00::")), "{place}");
    }
}

#[test]
fn port_range_ends_are_inside() {
    let at = |sport, dport| Tuple {
        sport,
        dport,
        ..packet()
    };
    let dst = Rule {
        proto: Proto::Tcp,
        dst_ports: ports(&["8000-8080", "443"]),
        ..rule()
    };
    assert!(matches(dst.clone(), at(1, 8000)));
    assert!(matches(dst.clone(), at(1, 8080)));
    assert!(matches(dst.clone(), at(1, 443)));
    assert!(!matches(dst.clone(), at(1, 7999)));
    assert!(!matches(dst.clone(), at(1, 8081)));
    assert!(!matches(dst.clone(), at(1, 442)));
    assert!(
        !matches(dst.clone(), at(8000, 444)),
        "the source port is not the destination"
    );

    let src = Rule {
        proto: Proto::Udp,
        src_ports: ports(&["0", "65535"]),
        ..rule()
    };
    let udp = |sport| Tuple {
        proto: 17,
        sport,
        ..packet()
    };
    assert!(matches(src.clone(), udp(0)));
    assert!(matches(src.clone(), udp(65535)));
    assert!(!matches(src.clone(), udp(1)));
    assert!(!matches(src.clone(), udp(65534)));
    assert!(
        !matches(src, Tuple { proto: 6, ..udp(0) }),
        "udp rule, tcp packet"
    );

    let everything = Rule {
        proto: Proto::Tcp,
        dst_ports: ports(&["0-65535"]),
        ..rule()
    };
    assert!(matches(everything.clone(), at(0, 0)));
    assert!(matches(everything, at(0, 65535)));

    let both = Rule {
        proto: Proto::Tcp,
        src_ports: ports(&["1024-65535"]),
        dst_ports: ports(&["22"]),
        ..rule()
    };
    assert!(matches(both.clone(), at(1024, 22)));
    assert!(!matches(both.clone(), at(1023, 22)));
    assert!(!matches(both, at(1024, 23)));
}

#[test]
fn icmp_types_are_listed_values() {
    let echo = Rule {
        proto: Proto::Icmp,
        icmp_types: vec![8, 0],
        ..rule()
    };
    assert!(matches(echo.clone(), icmp("10.0.0.1", "10.0.0.2", 8)));
    assert!(matches(echo.clone(), icmp("10.0.0.1", "10.0.0.2", 0)));
    assert!(!matches(echo.clone(), icmp("10.0.0.1", "10.0.0.2", 3)));
    assert!(
        !matches(echo, icmp("fd00::1", "fd00::2", 8)),
        "icmp rule, icmpv6 packet"
    );

    let v6 = Rule {
        proto: Proto::Icmpv6,
        icmp_types: vec![128, 255],
        ..rule()
    };
    assert!(matches(v6.clone(), icmp("fd00::1", "fd00::2", 128)));
    assert!(matches(v6.clone(), icmp("fd00::1", "fd00::2", 255)));
    assert!(!matches(v6.clone(), icmp("fd00::1", "fd00::2", 129)));
    assert!(!matches(v6, icmp("fd00::1", "fd00::2", 0)));
}

#[test]
fn fqdn_rules_match_only_when_listed_in_fqdn_ok() {
    let github: DomainPattern = "github.com".parse().expect("test pattern");
    let rules = [
        Rule {
            dst_fqdn: vec![github.clone()],
            ..rule()
        },
        Rule {
            dst_fqdn: vec![github.clone()],
            dst_cidr: cidrs(&["192.0.2.0/24"]),
            ..rule()
        },
        Rule {
            dst_fqdn: vec![github],
            dst_cidr: cidrs(&["198.51.100.0/24"]),
            ..rule()
        },
        Rule {
            proto: Proto::Udp,
            ..rule()
        },
    ];
    let matcher = Matcher::new(&rules);
    let t = packet();
    assert_eq!(matcher.first_match(&t, &[]), None);
    assert_eq!(matcher.first_match(&t, &[0]), Some(0));
    assert_eq!(matcher.first_match(&t, &[1]), Some(1));
    assert_eq!(matcher.first_match(&t, &[0, 1]), Some(0));
    assert_eq!(
        matcher.first_match(&t, &[2]),
        None,
        "the CIDR must match too"
    );
    assert_eq!(
        matcher.first_match(&t, &[2, 3, 7]),
        None,
        "rule 3 is not an FQDN rule"
    );
    assert_eq!(matcher.first_match(&t, &[1, 2, 3]), Some(1));
    let udp = Tuple { proto: 17, ..t };
    assert_eq!(matcher.first_match(&udp, &[]), Some(3));
    assert_eq!(matcher.first_match(&udp, &[1]), Some(1));
}

#[test]
fn the_first_match_in_file_order_wins() {
    let rules = [
        Rule {
            proto: Proto::Udp,
            ..rule()
        },
        Rule {
            dst_cidr: cidrs(&["192.0.2.0/24"]),
            dst_ports: ports(&["443"]),
            proto: Proto::Tcp,
            ..rule()
        },
        Rule {
            src_cidr: cidrs(&["10.0.0.0/8"]),
            ..rule()
        },
        Rule {
            dst_cidr: cidrs(&["192.0.2.1/32"]),
            ..rule()
        },
        rule(),
    ];
    let matcher = Matcher::new(&rules);
    assert_eq!(matcher.first_match(&packet(), &[]), Some(1));
    assert_eq!(
        matcher.first_match(
            &Tuple {
                dport: 80,
                ..packet()
            },
            &[]
        ),
        Some(2)
    );
    assert_eq!(
        matcher.first_match(&tcp("11.0.0.1", "192.0.2.1"), &[]),
        Some(1)
    );
    let elsewhere = Tuple {
        dport: 80,
        ..tcp("11.0.0.1", "192.0.2.1")
    };
    assert_eq!(matcher.first_match(&elsewhere, &[]), Some(3));
    assert_eq!(
        matcher.first_match(&tcp("11.0.0.1", "192.0.2.2"), &[]),
        Some(1)
    );
    let nothing_specific = Tuple {
        dport: 80,
        ..tcp("11.0.0.1", "192.0.2.2")
    };
    assert_eq!(matcher.first_match(&nothing_specific, &[]), Some(4));
    assert_eq!(
        matcher.first_match(
            &Tuple {
                proto: 17,
                ..packet()
            },
            &[]
        ),
        Some(0)
    );

    // A broad rule after many specific ones, and a specific one after a broad one.
    let mut many: Vec<Rule> = (0..5000_u32)
        .map(|i| {
            let net = format!("172.16.{}.{}/32", i / 256, i % 256);
            Rule {
                dst_cidr: cidrs(&[net.as_str()]),
                ..rule()
            }
        })
        .collect();
    many.push(Rule {
        src_cidr: cidrs(&["10.0.0.0/8"]),
        ..rule()
    });
    many.push(Rule {
        dst_cidr: cidrs(&["192.0.2.1/32"]),
        ..rule()
    });
    let matcher = Matcher::new(&many);
    assert_eq!(matcher.rule_count(), 5002);
    assert_eq!(matcher.first_match(&packet(), &[]), Some(5000));
    assert_eq!(
        matcher.first_match(&tcp("11.0.0.1", "192.0.2.1"), &[]),
        Some(5001)
    );
    assert_eq!(
        matcher.first_match(&tcp("10.0.0.1", "172.16.19.135"), &[]),
        Some(19 * 256 + 135)
    );
    assert_eq!(
        matcher.first_match(&tcp("11.0.0.1", "172.16.19.135"), &[]),
        Some(19 * 256 + 135)
    );
    assert_eq!(
        matcher.first_match(&tcp("11.0.0.1", "172.16.20.0"), &[]),
        None
    );
    assert!(matcher.memory_bytes() > 0);
}

#[test]
fn rules_are_matched_in_file_order_across_kinds_of_rules() {
    // Rules constraining no address, the source, the destination or both are compiled apart;
    // the answer must not depend on which kind is looked at first.
    let rules = [
        Rule {
            proto: Proto::Tcp,
            dst_ports: ports(&["22"]),
            ..rule()
        },
        Rule {
            src_cidr: cidrs(&["10.0.0.0/8"]),
            ..rule()
        },
        Rule {
            src_cidr: cidrs(&["10.0.0.0/8"]),
            dst_cidr: cidrs(&["192.0.2.0/24"]),
            ..rule()
        },
        Rule {
            proto: Proto::Tcp,
            ..rule()
        },
        Rule {
            dst_cidr: cidrs(&["192.0.2.1/32"]),
            ..rule()
        },
        Rule {
            dst_cidr: cidrs(&["198.51.100.0/24"]),
            ..rule()
        },
    ];
    let matcher = Matcher::new(&rules);
    assert_eq!(matcher.first_match(&packet(), &[]), Some(1));
    assert_eq!(
        matcher.first_match(&tcp("11.0.0.1", "192.0.2.1"), &[]),
        Some(3)
    );
    assert_eq!(
        matcher.first_match(
            &Tuple {
                dport: 22,
                ..packet()
            },
            &[]
        ),
        Some(0)
    );
    let udp = |src, dst| Tuple {
        proto: 17,
        ..tcp(src, dst)
    };
    assert_eq!(
        matcher.first_match(&udp("11.0.0.1", "192.0.2.1"), &[]),
        Some(4)
    );
    assert_eq!(
        matcher.first_match(&udp("10.0.0.1", "192.0.2.1"), &[]),
        Some(1)
    );
    assert_eq!(
        matcher.first_match(&udp("11.0.0.1", "198.51.100.9"), &[]),
        Some(5)
    );
    assert_eq!(
        matcher.first_match(&udp("11.0.0.1", "192.0.2.2"), &[]),
        None
    );
}

#[test]
fn a_tuple_mixing_families_matches_nothing() {
    let t = Tuple {
        dst: ip("2001:db8::1"),
        ..packet()
    };
    assert_eq!(Matcher::new(&[rule()]).first_match(&t, &[]), None);
}
