//! One test per class of error: the exact `FILE:LINE:COL: message`, the message naming the key
//! and quoting the value.

/// Two valid ports: the lines below start at line 5.
const PORTS: &str = r#"[ports.inside]
device = "in0"
[ports.outside]
device = "out0"
"#;

/// The error for `text` (with the ports prepended), as displayed.
fn error(text: &str) -> String {
    error_of(&format!("{PORTS}{text}"))
}

/// The error for `text` as is, as displayed.
fn error_of(text: &str) -> String {
    match config::parse(text, "ferrowall.toml") {
        Ok(config) => panic!("parsed: {config:?}"),
        Err(error) => error.to_string(),
    }
}

/// A rule named `a` with the given extra lines: those start at line 7.
fn rule(lines: &str) -> String {
    error(&format!("[[rule]]\nname = \"a\"\n{lines}"))
}

#[test]
fn accessors_match_the_display() {
    let error = config::parse(&format!("{PORTS}[dpdk]\nburst = 0\n"), "fw.toml").unwrap_err();
    assert_eq!(error.file(), "fw.toml");
    assert_eq!((error.line(), error.col()), (Some(6), Some(9)));
    assert_eq!(error.message(), "dpdk.burst: 0 is not between 1 and 256");
    assert_eq!(
        error.to_string(),
        "fw.toml:6:9: dpdk.burst: 0 is not between 1 and 256"
    );
}

#[test]
fn columns_count_characters() {
    // "ééé" is 6 bytes, 3 characters.
    assert_eq!(
        error_of(&format!(
            "dpdk = {{ eal_args = [\"ééé\"], workers = 0 }}\n{PORTS}"
        )),
        "ferrowall.toml:1:40: dpdk.workers: 0 is not between 1 and 64"
    );
}

#[test]
fn toml_syntax() {
    assert_eq!(
        error("[dpdk]\nworkers = \n"),
        "ferrowall.toml:6:11: TOML syntax: string values must be quoted, expected literal string"
    );
    assert_eq!(
        error("[dpdk]\nworkers = 1\nworkers = 2\n"),
        "ferrowall.toml:7:1: TOML syntax: duplicate key"
    );
    assert_eq!(
        error_of("[dpdk\n"),
        "ferrowall.toml:1:6: TOML syntax: unclosed table, expected `]`"
    );
    assert_eq!(
        error_of("# é\nné = 1\n"),
        "ferrowall.toml:2:2: TOML syntax: invalid unquoted key, expected letters, numbers, `-`, `_`"
    );
}

#[test]
fn unknown_key_at_top_level() {
    assert_eq!(
        error_of(&format!("wrokers = 1\n{PORTS}")),
        "ferrowall.toml:1:1: unknown key \"wrokers\" at the top level; expected one of: dpdk, ports, network, flows, dns, l7, rule, default, metrics, admin"
    );
    assert_eq!(
        error("[flow]\n"),
        "ferrowall.toml:5:2: unknown key \"flow\" at the top level; expected one of: dpdk, ports, network, flows, dns, l7, rule, default, metrics, admin"
    );
}

#[test]
fn unknown_key_in_a_table() {
    assert_eq!(
        error("[dpdk]\nworkers = 2\nwrokers = 1\n"),
        "ferrowall.toml:7:1: unknown key \"wrokers\" in [dpdk]; expected one of: eal_args, workers, burst, rx_desc, tx_desc, mempool_size"
    );
    assert_eq!(
        error("[dpdk.extra]\nx = 1\n"),
        "ferrowall.toml:5:7: unknown key \"extra\" in [dpdk]; expected one of: eal_args, workers, burst, rx_desc, tx_desc, mempool_size"
    );
    assert_eq!(
        error("[ports.dmz]\ndevice = \"x\"\n"),
        "ferrowall.toml:5:8: unknown key \"dmz\" in [ports]; expected one of: inside, outside"
    );
    assert_eq!(
        error_of("[ports.inside]\ndevice = \"a\"\nqueues = 2\n[ports.outside]\ndevice = \"b\"\n"),
        "ferrowall.toml:3:1: unknown key \"queues\" in [ports.inside]; expected one of: device"
    );
}

#[test]
fn unknown_key_in_a_rule() {
    let expected = "expected one of: name, action, from, proto, src_cidr, dst_cidr, src_ports, dst_ports, icmp_types, dst_fqdn, fqdn_match";
    assert_eq!(
        rule("action = \"drop\"\ndst_port = [\"53\"]\n"),
        format!("ferrowall.toml:8:1: unknown key \"dst_port\" in rule \"a\"; {expected}")
    );
    assert_eq!(
        error("[[rule]]\naction = \"drop\"\nport = 1\n"),
        format!("ferrowall.toml:7:1: unknown key \"port\" in rule[0]; {expected}")
    );
}

#[test]
fn wrong_type() {
    assert_eq!(
        error("[dpdk]\nworkers = \"4\"\n"),
        "ferrowall.toml:6:11: dpdk.workers: invalid type: string \"4\", expected an integer from 1 to 64"
    );
    assert_eq!(
        error("[dpdk]\neal_args = \"-l 0\"\n"),
        "ferrowall.toml:6:12: dpdk.eal_args: invalid type: string \"-l 0\", expected an array"
    );
    assert_eq!(
        error("[rule]\nname = \"a\"\n"),
        "ferrowall.toml:5:1: rule: invalid type: table, expected an array"
    );
    assert_eq!(
        error("[[dpdk]]\nworkers = 2\n"),
        "ferrowall.toml:5:1: dpdk: invalid type: array, expected a table"
    );
    assert_eq!(
        error("[flows]\ntcp_midstream = \"yes\"\n"),
        "ferrowall.toml:6:17: flows.tcp_midstream: invalid type: string \"yes\", expected a boolean"
    );
    assert_eq!(
        error_of(&format!("dns = \"8.8.8.8\"\n{PORTS}")),
        "ferrowall.toml:1:7: dns: invalid type: string \"8.8.8.8\", expected a table"
    );
}

#[test]
fn integer_out_of_range() {
    assert_eq!(
        error("[dpdk]\nworkers = 65\n"),
        "ferrowall.toml:6:11: dpdk.workers: 65 is not between 1 and 64"
    );
    assert_eq!(
        error("[flows]\ncapacity = 67108865\n"),
        "ferrowall.toml:6:12: flows.capacity: 67108865 is not between 1 and 67108864"
    );
    assert_eq!(
        error("[dns]\nmax_names = -1\n"),
        "ferrowall.toml:6:13: dns.max_names: -1 is not between 1 and 4294967295"
    );
    assert_eq!(
        error("[l7]\nmax_hello_bytes = 99999999999999999999\n"),
        "ferrowall.toml:6:19: l7.max_hello_bytes: 99999999999999999999 is not between 512 and 65536"
    );
}

#[test]
fn bad_cidr() {
    assert_eq!(
        rule("action = \"allow\"\ndst_cidr = [\"10.0.0.0/8\", \"10.0.0.1/33\"]\n"),
        "ferrowall.toml:8:27: rule \"a\": dst_cidr: \"10.0.0.1/33\" is not a CIDR: prefix length 33 exceeds 32"
    );
    assert_eq!(
        rule("action = \"allow\"\nsrc_cidr = [\"10.0.0.256/8\"]\n"),
        "ferrowall.toml:8:13: rule \"a\": src_cidr: \"10.0.0.256/8\" is not a CIDR: \"10.0.0.256\" is not an IP address"
    );
    assert_eq!(
        error("[network]\ninside = [\"10.0.0.1/8\"]\n"),
        "ferrowall.toml:6:11: network.inside: \"10.0.0.1/8\" has host bits set; did you mean \"10.0.0.0/8\"?"
    );
    // Without a (valid) name, the rule is named by its 0-based index.
    assert_eq!(
        error("[[rule]]\naction = \"allow\"\ndst_cidr = [\"fd00::/200\"]\n"),
        "ferrowall.toml:7:13: rule[0].dst_cidr: \"fd00::/200\" is not a CIDR: prefix length 200 exceeds 128"
    );
}

#[test]
fn bad_ip_and_socket_address() {
    assert_eq!(
        error("[dns]\ntrusted_servers = [\"192.0.2.53\", \"dns.google\"]\n"),
        "ferrowall.toml:6:34: dns.trusted_servers: \"dns.google\" is not an IP address"
    );
    assert_eq!(
        error("[metrics]\nlisten = \"localhost:9469\"\n"),
        "ferrowall.toml:6:10: metrics.listen: \"localhost:9469\" is not an IP address and port (such as \"127.0.0.1:9469\" or \"[::1]:9469\")"
    );
}

#[test]
fn bad_duration() {
    assert_eq!(
        error("[flows]\nudp_timeout = \"60 sec\"\n"),
        "ferrowall.toml:6:15: flows.udp_timeout: \"60 sec\" is not a duration (use a number and a unit: ms, s, m, h, d, e.g. \"30s\", \"2h\")"
    );
    assert_eq!(
        error("[flows]\nicmp_timeout = 30\n"),
        "ferrowall.toml:6:16: flows.icmp_timeout: invalid type: integer `30`, expected a duration such as \"30s\" or \"2h\""
    );
    assert_eq!(
        error("[dns]\nhold_timeout = \"0ms\"\n"),
        "ferrowall.toml:6:16: dns.hold_timeout: \"0ms\" must be greater than zero"
    );
    assert_eq!(
        error("[dns]\nmin_ttl = \"999999999999d\"\n"),
        "ferrowall.toml:6:11: dns.min_ttl: \"999999999999d\" is too long a duration"
    );
}

#[test]
fn max_ttl_below_min_ttl() {
    assert_eq!(
        error("[dns]\nmin_ttl = \"1h\"\nmax_ttl = \"30m\"\n"),
        "ferrowall.toml:7:11: dns.max_ttl: \"30m\" is less than min_ttl \"1h\""
    );
    assert_eq!(
        error("[dns]\nmax_ttl = \"10s\"\n"),
        "ferrowall.toml:6:11: dns.max_ttl: \"10s\" is less than min_ttl \"30s\""
    );
    assert_eq!(
        error("[dns]\nmin_ttl = \"2d\"\n"),
        "ferrowall.toml:6:11: dns.min_ttl: \"2d\" is greater than max_ttl \"1d\" (its default)"
    );
    assert_eq!(
        error("[dns]\nmin_ttl = \"0s\"\nmax_ttl = \"0s\"\n"),
        "ferrowall.toml:7:11: dns.max_ttl: \"0s\" must be greater than zero"
    );
}

#[test]
fn bad_domain_pattern() {
    let cases = [
        (
            "a.*.com",
            "\"*\" and \"**\" are allowed only as the whole first label",
        ),
        (
            "*a.com",
            "\"*\" and \"**\" are allowed only as the whole first label",
        ),
        (
            "***.com",
            "\"*\" and \"**\" are allowed only as the whole first label",
        ),
        (
            "*",
            "a wildcard needs a domain after it, as in \"*.example.com\"",
        ),
        (
            "**",
            "a wildcard needs a domain after it, as in \"*.example.com\"",
        ),
        (
            "bücher.de",
            "it has non-ASCII characters; write the name in its A-label (punycode) form, \"xn--...\"",
        ),
        ("a..com", "it has an empty label"),
        ("-a.com", "label \"-a\" starts or ends with '-'"),
    ];
    for (pattern, reason) in cases {
        assert_eq!(
            rule(&format!("action = \"allow\"\ndst_fqdn = [\"{pattern}\"]\n")),
            format!(
                "ferrowall.toml:8:13: rule \"a\": dst_fqdn: \"{pattern}\" is not a domain pattern: {reason}"
            )
        );
    }
    let long = "a".repeat(64);
    assert_eq!(
        rule(&format!(
            "action = \"allow\"\ndst_fqdn = [\"ok.com\", \"{long}.com\"]\n"
        )),
        format!(
            "ferrowall.toml:8:23: rule \"a\": dst_fqdn: \"{long}.com\" is not a domain pattern: label \"{long}\" is longer than 63 characters"
        )
    );
}

#[test]
fn bad_rule_name() {
    assert_eq!(
        error("[[rule]]\nname = \"my rule\"\naction = \"drop\"\n"),
        "ferrowall.toml:6:8: rule[0].name: \"my rule\" is not a valid rule name (use 1 to 64 characters of A-Z, a-z, 0-9, '_', '.', '-')"
    );
    assert!(
        error(&format!(
            "[[rule]]\nname = \"{}\"\naction = \"drop\"\n",
            "a".repeat(65)
        ))
        .contains("is not a valid rule name")
    );
}

#[test]
fn duplicate_rule_name() {
    assert_eq!(
        error(
            "[[rule]]\nname = \"github\"\naction = \"allow\"\n\n[[rule]]\nname = \"github\"\naction = \"drop\"\n"
        ),
        "ferrowall.toml:10:8: rule \"github\": duplicate rule name (first defined at line 6)"
    );
}

#[test]
fn missing_key() {
    assert_eq!(
        error("[[rule]]\nname = \"a\"\n"),
        "ferrowall.toml:5:1: rule \"a\": missing key \"action\""
    );
    assert_eq!(
        error("[[rule]]\naction = \"drop\"\n"),
        "ferrowall.toml:5:1: rule[0]: missing key \"name\""
    );
    assert_eq!(
        error_of("[ports.outside]\ndevice = \"b\"\n[ports.inside]\n"),
        "ferrowall.toml:3:1: ports.inside: missing key \"device\""
    );
}

#[test]
fn missing_port_section() {
    assert_eq!(
        error_of("[ports.inside]\ndevice = \"a\"\n"),
        "ferrowall.toml:1:1: missing [ports.outside] (the outside port's device is required)"
    );
    assert_eq!(
        error_of("[dpdk]\n[ports.outside]\ndevice = \"a\"\n"),
        "ferrowall.toml:1:1: missing [ports.inside] (the inside port's device is required)"
    );
    assert_eq!(
        error_of(""),
        "ferrowall.toml:1:1: missing [ports.inside] (the inside port's device is required)"
    );
}

#[test]
fn bad_port_device() {
    assert_eq!(
        error_of("[ports.inside]\ndevice = \"x\"\n[ports.outside]\ndevice = \"x\"\n"),
        "ferrowall.toml:4:10: ports.outside.device: \"x\" is also the inside port's device; the two ports must differ"
    );
    assert_eq!(
        error_of("[ports.inside]\ndevice = \"\"\n[ports.outside]\ndevice = \"x\"\n"),
        "ferrowall.toml:2:10: ports.inside.device: empty string; expected a DPDK device name or PCI address"
    );
}

#[test]
fn bad_port_range() {
    assert_eq!(
        rule("action = \"allow\"\nproto = \"tcp\"\ndst_ports = [\"90-80\"]\n"),
        "ferrowall.toml:9:14: rule \"a\": dst_ports: \"90-80\" is not a port range: 90 is greater than 80"
    );
    assert_eq!(
        rule("action = \"allow\"\nproto = \"tcp\"\ndst_ports = [\"70000\"]\n"),
        "ferrowall.toml:9:14: rule \"a\": dst_ports: \"70000\" is not a port range: 70000 exceeds 65535"
    );
    assert_eq!(
        rule("action = \"allow\"\nproto = \"udp\"\nsrc_ports = [443, 70000]\n"),
        "ferrowall.toml:9:19: rule \"a\": src_ports: 70000 is not a port (0 to 65535)"
    );
    assert_eq!(
        rule("action = \"allow\"\nproto = \"udp\"\nsrc_ports = [\"https\"]\n"),
        "ferrowall.toml:9:14: rule \"a\": src_ports: \"https\" is not a port or port range (use \"443\" or \"8000-8080\")"
    );
}

#[test]
fn bad_keyword() {
    assert_eq!(
        rule("action = \"alow\"\n"),
        "ferrowall.toml:7:10: rule \"a\": action: \"alow\" is not one of: allow, drop, reject"
    );
    assert_eq!(
        rule("action = \"drop\"\nproto = \"TCP\"\n"),
        "ferrowall.toml:8:9: rule \"a\": proto: \"TCP\" is not one of: tcp, udp, icmp, icmpv6, any"
    );
    assert_eq!(
        rule("action = \"drop\"\nfrom = \"lan\"\n"),
        "ferrowall.toml:8:8: rule \"a\": from: \"lan\" is not one of: inside, outside, any"
    );
    assert_eq!(
        rule("action = \"drop\"\ndst_fqdn = [\"a.com\"]\nfqdn_match = \"both\"\n"),
        "ferrowall.toml:9:14: rule \"a\": fqdn_match: \"both\" is not one of: dns, sni, dns+sni"
    );
    assert_eq!(
        error("[l7]\nech = \"block\"\n"),
        "ferrowall.toml:6:7: l7.ech: \"block\" is not one of: allow, drop"
    );
    assert_eq!(
        error("[default]\naction = \"accept\"\n"),
        "ferrowall.toml:6:10: default.action: \"accept\" is not one of: allow, drop, reject"
    );
}

#[test]
fn ports_need_tcp_or_udp() {
    assert_eq!(
        rule("action = \"allow\"\nproto = \"icmp\"\ndst_ports = [\"53\"]\n"),
        "ferrowall.toml:9:13: rule \"a\": dst_ports: port matching needs proto \"tcp\" or \"udp\", not \"icmp\""
    );
    assert_eq!(
        rule("action = \"allow\"\nsrc_ports = [\"53\"]\n"),
        "ferrowall.toml:8:13: rule \"a\": src_ports: port matching needs proto \"tcp\" or \"udp\", not \"any\""
    );
}

#[test]
fn icmp_types_need_icmp() {
    assert_eq!(
        rule("action = \"allow\"\nproto = \"udp\"\nicmp_types = [8]\n"),
        "ferrowall.toml:9:14: rule \"a\": icmp_types: ICMP type matching needs proto \"icmp\" or \"icmpv6\", not \"udp\""
    );
    assert_eq!(
        rule("action = \"allow\"\nproto = \"icmp\"\nicmp_types = [8, 256]\n"),
        "ferrowall.toml:9:18: rule \"a\": icmp_types: 256 is not between 0 and 255"
    );
}

#[test]
fn fqdn_match_needs_dst_fqdn() {
    assert_eq!(
        rule("action = \"allow\"\nfqdn_match = \"sni\"\n"),
        "ferrowall.toml:8:14: rule \"a\": fqdn_match: \"sni\" is set but dst_fqdn is not; add dst_fqdn or remove fqdn_match"
    );
}

#[test]
fn empty_match_array() {
    for key in ["src_cidr", "dst_cidr", "src_ports", "dst_ports", "dst_fqdn"] {
        assert_eq!(
            rule(&format!(
                "action = \"allow\"\nproto = \"tcp\"\n{key} = []\n"
            )),
            format!(
                "ferrowall.toml:9:{}: rule \"a\": {key}: [] matches nothing; remove the key to match any",
                key.len() + 4
            )
        );
    }
    assert_eq!(
        rule("action = \"allow\"\nproto = \"icmp\"\nicmp_types = []\n"),
        "ferrowall.toml:9:14: rule \"a\": icmp_types: [] matches nothing; remove the key to match any"
    );
}

#[test]
fn errors_in_inline_rules_name_the_rule() {
    assert_eq!(
        error_of(&format!(
            "rule = [{{ name = \"a\", action = \"drop\" }}, {{ name = \"b\", action = \"x\" }}]\n{PORTS}"
        )),
        "ferrowall.toml:1:65: rule \"b\": action: \"x\" is not one of: allow, drop, reject"
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let text = format!(
        "{PORTS}[network]\ninside = {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let error = error_of(&text);
    assert!(error.starts_with("ferrowall.toml:6:"), "{error}");
    assert!(error.contains(": TOML syntax: "), "{error}");
}
