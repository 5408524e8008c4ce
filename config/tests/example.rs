//! The example of CONTRACT.md parses to exactly what it says, and a file with nothing but the
//! two ports gets every documented default.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{
    Action, Cidr, Config, ConfigError, DomainPattern, Ech, FqdnMatch, PortRange, Proto, Side,
};

const MINIMAL: &str = r#"
[ports.inside]
device = "net_af_packet0"
[ports.outside]
device = "0000:3b:00.0"
"#;

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/contract-example.toml")
}

fn cidrs(texts: &[&str]) -> Vec<Cidr> {
    texts.iter().map(|text| text.parse().unwrap()).collect()
}

fn ports(texts: &[&str]) -> Vec<PortRange> {
    texts.iter().map(|text| text.parse().unwrap()).collect()
}

fn patterns(texts: &[&str]) -> Vec<DomainPattern> {
    texts.iter().map(|text| text.parse().unwrap()).collect()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn contract_example_parses_with_every_value() {
    let config = config::load(&example_path()).unwrap();

    let dpdk = &config.dpdk;
    assert_eq!(
        dpdk.eal_args,
        [
            "-l",
            "0-1",
            "--no-huge",
            "-m",
            "512",
            "--no-pci",
            "--no-shconf",
            "--vdev=net_af_packet0,iface=fw-in",
            "--vdev=net_af_packet1,iface=fw-out",
        ]
    );
    assert_eq!((dpdk.workers, dpdk.burst), (1, 32));
    assert_eq!(
        (dpdk.rx_desc, dpdk.tx_desc, dpdk.mempool_size),
        (1024, 1024, 0)
    );

    assert_eq!(config.ports.inside.device, "net_af_packet0");
    assert_eq!(config.ports.outside.device, "net_af_packet1");
    assert_eq!(config.network.inside, cidrs(&["10.0.0.0/8", "fd00::/8"]));

    let flows = &config.flows;
    assert_eq!(flows.capacity, 1_048_576);
    assert_eq!(flows.tcp_established_timeout, Duration::from_secs(7200));
    assert_eq!(flows.tcp_transitory_timeout, Duration::from_secs(120));
    assert_eq!(flows.udp_timeout, Duration::from_secs(60));
    assert_eq!(flows.icmp_timeout, Duration::from_secs(30));

    let dns = &config.dns;
    assert_eq!(dns.trusted_servers, [ip("192.0.2.53"), ip("2001:db8::53")]);
    assert_eq!(dns.min_ttl, Duration::from_secs(30));
    assert_eq!(dns.max_ttl, Duration::from_secs(86_400));
    assert_eq!((dns.max_ips_per_name, dns.max_names), (256, 100_000));
    assert!(dns.hold_responses);
    assert_eq!(dns.hold_timeout, Duration::from_millis(100));
    assert_eq!(
        dns.cache_file.as_deref(),
        Some(Path::new("/var/lib/ferrowall/fqdn-cache.json"))
    );

    let l7 = &config.l7;
    assert!(l7.tls_sni && l7.http_host && l7.quic_sni);
    assert_eq!(l7.ech, Ech::Allow);
    assert_eq!(l7.max_hello_bytes, 16384);

    assert_eq!(config.rules.len(), 2);
    let dns_rule = config.rule("dns").unwrap();
    assert_eq!(dns_rule.name, "dns");
    assert_eq!(dns_rule.line, 40);
    assert_eq!(dns_rule.action, Action::Allow);
    assert_eq!(dns_rule.from, Side::Inside);
    assert_eq!(dns_rule.proto, Proto::Udp);
    assert_eq!(dns_rule.dst_cidr, cidrs(&["192.0.2.53/32"]));
    assert_eq!(dns_rule.dst_ports, ports(&["53"]));
    assert!(dns_rule.src_cidr.is_empty() && dns_rule.src_ports.is_empty());
    assert!(dns_rule.icmp_types.is_empty() && dns_rule.dst_fqdn.is_empty());
    assert_eq!(dns_rule.fqdn_match, FqdnMatch::Dns);

    let github = config.rule("github").unwrap();
    assert_eq!(github.line, 49);
    assert_eq!(
        (github.action, github.from, github.proto),
        (Action::Allow, Side::Inside, Proto::Tcp)
    );
    assert_eq!(
        github.dst_fqdn,
        patterns(&["github.com", "*.github.com", "**.githubusercontent.com"])
    );
    assert_eq!(github.dst_ports, ports(&["443"]));
    assert_eq!(github.fqdn_match, FqdnMatch::Dns);
    assert!(github.dst_cidr.is_empty());
    assert_eq!(config.rules[0], *dns_rule);
    assert_eq!(config.rules[1], *github);
    assert!(config.rule("nope").is_none());

    assert_eq!(config.default.action, Action::Drop);
    assert_eq!(
        config.metrics.listen,
        "127.0.0.1:9469".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(config.admin.socket, Path::new("/run/ferrowall/admin.sock"));
}

#[test]
fn contract_example_leaves_the_other_values_at_their_defaults() {
    let example = config::load(&example_path()).unwrap();
    let minimal = config::parse(MINIMAL, "minimal.toml").unwrap();
    assert_eq!(example.flows, minimal.flows);
    assert_eq!(example.l7, minimal.l7);
    assert_eq!(example.default, minimal.default);
    assert_eq!(example.metrics, minimal.metrics);
    assert_eq!(example.admin, minimal.admin);
    assert_eq!(
        config::Dns {
            trusted_servers: minimal.dns.trusted_servers.clone(),
            ..example.dns.clone()
        },
        minimal.dns
    );
}

#[test]
fn minimal_file_gets_every_default() {
    let config: Config = config::parse(MINIMAL, "minimal.toml").unwrap();
    assert_eq!(config.ports.inside.device, "net_af_packet0");
    assert_eq!(config.ports.outside.device, "0000:3b:00.0");

    let dpdk = &config.dpdk;
    assert!(dpdk.eal_args.is_empty());
    assert_eq!((dpdk.workers, dpdk.burst), (1, 32));
    assert_eq!(
        (dpdk.rx_desc, dpdk.tx_desc, dpdk.mempool_size),
        (1024, 1024, 0)
    );

    assert_eq!(config.network.inside, cidrs(&["10.0.0.0/8", "fd00::/8"]));

    let flows = &config.flows;
    assert_eq!(flows.capacity, 1_048_576);
    assert_eq!(flows.tcp_established_timeout, Duration::from_secs(2 * 3600));
    assert_eq!(flows.tcp_transitory_timeout, Duration::from_secs(2 * 60));
    assert_eq!(flows.udp_timeout, Duration::from_secs(60));
    assert_eq!(flows.icmp_timeout, Duration::from_secs(30));
    assert!(!flows.tcp_midstream);
    assert_eq!(flows.fragment_capacity, 4096);
    assert_eq!(flows.fragment_timeout, Duration::from_secs(5));
    assert_eq!(flows.reject_rate, 100);

    let dns = &config.dns;
    assert!(dns.trusted_servers.is_empty());
    assert_eq!(dns.min_ttl, Duration::from_secs(30));
    assert_eq!(dns.max_ttl, Duration::from_secs(24 * 3600));
    assert_eq!(dns.max_ips_per_name, 256);
    assert_eq!(dns.max_names, 100_000);
    assert_eq!(dns.max_ips, 1_000_000);
    assert!(dns.hold_responses);
    assert_eq!(dns.hold_timeout, Duration::from_millis(100));
    assert_eq!(
        dns.cache_file.as_deref(),
        Some(Path::new("/var/lib/ferrowall/fqdn-cache.json"))
    );
    assert_eq!(dns.cache_interval, Duration::from_secs(60));
    assert_eq!(dns.max_queries_per_flow, 16);
    assert_eq!(dns.max_cname_chain, 8);

    let l7 = &config.l7;
    assert!(l7.tls_sni && l7.http_host && l7.quic_sni);
    assert_eq!(l7.ech, Ech::Allow);
    assert_eq!(l7.max_hello_bytes, 16384);

    assert!(config.rules.is_empty());
    assert_eq!(config.default.action, Action::Drop);
    assert_eq!(config.metrics.listen, "127.0.0.1:9469".parse().unwrap());
    assert_eq!(config.admin.socket, Path::new("/run/ferrowall/admin.sock"));
}

#[test]
fn every_other_key_is_read() {
    let text = format!(
        "{MINIMAL}{}",
        r#"
[dpdk]
rx_desc = 512
tx_desc = 2048
mempool_size = 65535

[flows]
tcp_midstream = true
fragment_capacity = 1
fragment_timeout = "1s500ms"
reject_rate = 0

[dns]
max_ips = 5
cache_file = ""
cache_interval = "5m"
max_queries_per_flow = 1
max_cname_chain = 0
hold_responses = false

[l7]
ech = "drop"
tls_sni = false

[[rule]]
name = "ping-6"
action = "reject"
from = "outside"
proto = "icmpv6"
src_cidr = ["2001:db8::/32", "192.0.2.0/24"]
icmp_types = [128, 0, 255]

[[rule]]
name = "Web.Proxy_1"
action = "drop"
proto = "tcp"
src_ports = [1024, "2000-2999"]
dst_fqdn = ["Example.COM."]
fqdn_match = "dns+sni"

[default]
action = "reject"

[metrics]
listen = "[::1]:9000"

[admin]
socket = "/tmp/fw.sock"
"#
    );
    let config = config::parse(&text, "all.toml").unwrap();
    assert_eq!((config.dpdk.rx_desc, config.dpdk.tx_desc), (512, 2048));
    assert_eq!(config.dpdk.mempool_size, 65535);
    assert!(config.flows.tcp_midstream);
    assert_eq!(config.flows.fragment_capacity, 1);
    assert_eq!(config.flows.fragment_timeout, Duration::from_millis(1500));
    assert_eq!(config.flows.reject_rate, 0);
    assert_eq!(config.dns.max_ips, 5);
    assert_eq!(config.dns.cache_file, None);
    assert_eq!(config.dns.cache_interval, Duration::from_secs(300));
    assert_eq!(config.dns.max_queries_per_flow, 1);
    assert_eq!(config.dns.max_cname_chain, 0);
    assert!(!config.dns.hold_responses);
    assert_eq!(config.l7.ech, Ech::Drop);
    assert!(!config.l7.tls_sni && config.l7.http_host);

    let ping = config.rule("ping-6").unwrap();
    assert_eq!(
        (ping.action, ping.from, ping.proto),
        (Action::Reject, Side::Outside, Proto::Icmpv6)
    );
    assert_eq!(ping.src_cidr, cidrs(&["2001:db8::/32", "192.0.2.0/24"]));
    assert_eq!(ping.icmp_types, [128, 0, 255]);
    assert_eq!(ping.fqdn_match, FqdnMatch::Dns);

    let proxy = config.rule("Web.Proxy_1").unwrap();
    assert_eq!(proxy.from, Side::Any);
    assert_eq!(proxy.src_ports, ports(&["1024", "2000-2999"]));
    assert_eq!(proxy.dst_fqdn, patterns(&["example.com"]));
    assert_eq!(proxy.fqdn_match, FqdnMatch::DnsSni);

    assert_eq!(config.default.action, Action::Reject);
    assert_eq!(config.metrics.listen, "[::1]:9000".parse().unwrap());
    assert_eq!(config.admin.socket, Path::new("/tmp/fw.sock"));
}

#[test]
fn rules_may_be_inline_tables() {
    let text = format!(
        "rule = [{{ name = \"a\", action = \"allow\" }}, {{ name = \"b\", action = \"drop\", proto = \"any\" }}]\n{MINIMAL}"
    );
    let config = config::parse(&text, "inline.toml").unwrap();
    let names: Vec<&str> = config.rules.iter().map(|rule| rule.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(config.rules[1].line, 1);
}

#[test]
fn unreadable_file_is_a_read_error() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/no-such-file.toml");
    let error = config::load(&path).unwrap_err();
    assert!(matches!(error, ConfigError::Read { .. }));
    let file = path.display().to_string();
    assert_eq!(error.file(), file);
    assert_eq!((error.line(), error.col()), (None, None));
    assert!(
        error
            .to_string()
            .starts_with(&format!("{file}: cannot read: "))
    );
    assert!(error.message().starts_with("cannot read: "));
}
