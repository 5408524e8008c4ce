//! Properties: `parse` never panics and reports positions inside the text; the value types'
//! `Display` parses back to the same value.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use config::{Cidr, CidrError, DomainPattern, Duration, PatternKind, PortRange};
use proptest::prelude::*;

/// Lines that look like ferrowall configuration, valid or not.
fn config_line() -> impl Strategy<Value = String> {
    let header = prop::sample::select(vec![
        "[dpdk]",
        "[ports.inside]",
        "[ports.outside]",
        "[ports.dmz]",
        "[network]",
        "[flows]",
        "[dns]",
        "[l7]",
        "[[rule]]",
        "[rule]",
        "[default]",
        "[metrics]",
        "[admin]",
        "[[dpdk]]",
    ])
    .prop_map(str::to_owned);
    let key = prop::sample::select(vec![
        "device",
        "workers",
        "burst",
        "inside",
        "capacity",
        "udp_timeout",
        "min_ttl",
        "max_ttl",
        "cache_file",
        "ech",
        "name",
        "action",
        "proto",
        "from",
        "dst_cidr",
        "src_ports",
        "dst_ports",
        "icmp_types",
        "dst_fqdn",
        "fqdn_match",
        "listen",
        "socket",
        "x.y",
    ]);
    let value = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        "[a-z0-9*.:/ -]{0,12}".prop_map(|s| format!("{s:?}")),
        prop::collection::vec("[a-z0-9*.:/-]{0,10}", 0..3).prop_map(|items| format!("{items:?}")),
        prop::collection::vec(0_u32..70_000, 0..3).prop_map(|items| format!("{items:?}")),
        Just("true".to_owned()),
        Just("{ a = 1 }".to_owned()),
        Just("\"é\"".to_owned()),
    ];
    prop_oneof![
        header,
        (key, value).prop_map(|(key, value)| format!("{key} = {value}")),
        "[ -~]{0,20}",
    ]
}

proptest! {
    #[test]
    fn parse_never_panics_on_arbitrary_text(text in any::<String>()) {
        let _ = config::parse(&text, "fuzz.toml");
    }

    #[test]
    fn errors_point_inside_the_text(lines in prop::collection::vec(config_line(), 0..16)) {
        let text = lines.join("\n");
        if let Err(error) = config::parse(&text, "fuzz.toml") {
            let line = error.line().unwrap();
            let col = error.col().unwrap();
            prop_assert!(line >= 1 && line <= lines.len().max(1), "{error}");
            let width = text.lines().nth(line - 1).map_or(0, |l| l.chars().count());
            prop_assert!(col >= 1 && col <= width + 1, "{error}");
            let prefix = format!("fuzz.toml:{line}:{col}: ");
            prop_assert!(error.to_string().starts_with(&prefix), "{}", error);
        }
    }

    #[test]
    fn duration_display_round_trips(millis in any::<u64>()) {
        let duration = Duration::from_millis(millis);
        prop_assert_eq!(duration.to_string().parse::<Duration>(), Ok(duration));
    }

    #[test]
    fn cidr_display_round_trips(v4 in any::<u32>(), v6 in any::<u128>(), prefix in 0_u8..=128) {
        let candidates = [
            (IpAddr::V4(Ipv4Addr::from(v4)), prefix % 33),
            (IpAddr::V6(Ipv6Addr::from(v6)), prefix),
        ];
        for (addr, prefix) in candidates {
            // Either the text is already a network, or the error says which one it meant.
            let cidr = match format!("{addr}/{prefix}").parse::<Cidr>() {
                Ok(cidr) => cidr,
                Err(CidrError::HostBits { network, .. }) => network,
                Err(error) => return Err(TestCaseError::fail(error.to_string())),
            };
            prop_assert_eq!(cidr.prefix(), prefix);
            prop_assert!(cidr.contains(addr));
            prop_assert_eq!(cidr.to_string().parse::<Cidr>(), Ok(cidr));
        }
    }

    #[test]
    fn port_range_display_round_trips(a in any::<u16>(), b in any::<u16>()) {
        let range = PortRange::new(a.min(b), a.max(b)).unwrap();
        prop_assert_eq!(range.to_string().parse::<PortRange>(), Ok(range));
    }

    #[test]
    fn domain_pattern_display_round_trips(
        wildcard in prop::sample::select(vec!["", "*.", "**."]),
        labels in prop::collection::vec("[a-zA-Z0-9_]([a-zA-Z0-9_-]{0,8}[a-zA-Z0-9_])?", 1..5),
        trailing_dot in any::<bool>(),
    ) {
        let text = format!("{wildcard}{}{}", labels.join("."), if trailing_dot { "." } else { "" });
        let pattern: DomainPattern = text.parse().map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(pattern.to_string().parse::<DomainPattern>(), Ok(pattern.clone()));
        prop_assert_eq!(pattern.suffix(), labels.join(".").to_ascii_lowercase());
    }

    #[test]
    fn domain_pattern_matches_by_label_count(
        labels in prop::collection::vec("[a-z0-9]{1,6}", 1..4),
        extra in prop::collection::vec("[a-z0-9]{1,6}", 1..4),
    ) {
        let suffix = labels.join(".");
        let name = format!("{}.{suffix}", extra.join("."));
        let exact: DomainPattern = suffix.parse().unwrap();
        let one: DomainPattern = format!("*.{suffix}").parse().unwrap();
        let any: DomainPattern = format!("**.{suffix}").parse().unwrap();
        prop_assert_eq!(one.kind(), PatternKind::OneLabel);
        prop_assert!(exact.matches(&suffix) && !one.matches(&suffix) && !any.matches(&suffix));
        prop_assert!(!exact.matches(&name));
        prop_assert_eq!(one.matches(&name), extra.len() == 1);
        prop_assert!(any.matches(&name));
    }
}
