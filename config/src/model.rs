//! The validated configuration the rest of ferrowall reads, one struct per TOML section.
//!
//! A [`Config`] from [`crate::parse`] has passed every check: integers are in range, durations
//! that must be positive are, the two port devices differ, `dns.max_ttl >= dns.min_ttl`, rule
//! names are unique and each rule's fields fit its protocol. `Default`, on the sections that
//! have one, gives the documented defaults.
//!
//! Sections whose every constraint is on a single value ([`Dpdk`], [`Network`], [`Flows`],
//! [`L7`], [`DefaultPolicy`], [`Metrics`], [`Admin`]) deserialize directly; [`Ports`], [`Dns`]
//! and [`Rule`] have constraints across keys and are built by `crate::raw`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::cidr::Cidr;
use crate::de::{self, U32_MAX};
use crate::domain::DomainPattern;
use crate::keyword::{Action, Ech, FqdnMatch, Proto, Side};
use crate::port_range::PortRange;

/// A whole configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `[dpdk]`: EAL arguments and worker layout.
    pub dpdk: Dpdk,
    /// `[ports.inside]`, `[ports.outside]`: the two bridged ports.
    pub ports: Ports,
    /// `[network]`: addresses of the inside network.
    pub network: Network,
    /// `[flows]`: the flow table.
    pub flows: Flows,
    /// `[dns]`: learning addresses from DNS answers.
    pub dns: Dns,
    /// `[l7]`: reading names from TLS, QUIC and HTTP.
    pub l7: L7,
    /// `[[rule]]`, in file order: the first match decides.
    pub rules: Vec<Rule>,
    /// `[default]`: the verdict for flows no rule matches.
    pub default: DefaultPolicy,
    /// `[metrics]`: the Prometheus endpoint.
    pub metrics: Metrics,
    /// `[admin]`: the admin socket.
    pub admin: Admin,
}

impl Config {
    /// The rule called `name`.
    #[must_use]
    pub fn rule(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|rule| rule.name == name)
    }
}

/// `[dpdk]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
pub struct Dpdk {
    /// Arguments for `rte_eal_init` (default: none).
    #[serde(deserialize_with = "de::list")]
    pub eal_args: Vec<String>,
    /// Worker lcores, 1..=64 (default 1); each owns one RX and one TX queue on every port.
    #[serde(deserialize_with = "de::bounded::<_, _, 1, 64>")]
    pub workers: u16,
    /// Packets per RX/TX burst, 1..=256 (default 32).
    #[serde(deserialize_with = "de::bounded::<_, _, 1, 256>")]
    pub burst: u16,
    /// RX descriptors per queue, 64..=16384 (default 1024).
    #[serde(deserialize_with = "de::bounded::<_, _, 64, 16384>")]
    pub rx_desc: u16,
    /// TX descriptors per queue, 64..=16384 (default 1024).
    #[serde(deserialize_with = "de::bounded::<_, _, 64, 16384>")]
    pub tx_desc: u16,
    /// Mbufs per port's pool; 0 (the default) means computed from the other settings.
    #[serde(deserialize_with = "de::bounded::<_, _, 0, U32_MAX>")]
    pub mempool_size: u32,
}

impl Default for Dpdk {
    fn default() -> Self {
        Self {
            eal_args: Vec::new(),
            workers: 1,
            burst: 32,
            rx_desc: 1024,
            tx_desc: 1024,
            mempool_size: 0,
        }
    }
}

/// `[ports]`: both sections are required and their devices differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ports {
    /// `[ports.inside]`.
    pub inside: PortSpec,
    /// `[ports.outside]`.
    pub outside: PortSpec,
}

/// `[ports.inside]` or `[ports.outside]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    /// DPDK device name (`net_af_packet0`) or PCI address (`0000:3b:00.0`); never empty.
    pub device: String,
}

/// `[network]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
pub struct Network {
    /// The inside network (default: 10.0.0.0/8 and fd00::/8, as CONTRACT.md shows). `replay`
    /// uses it to tell on which port a packet entered: a packet whose source is here came in
    /// on `inside`.
    #[serde(deserialize_with = "de::list")]
    pub inside: Vec<Cidr>,
}

impl Default for Network {
    fn default() -> Self {
        let v4 = Cidr::new(IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 0)), 8);
        let v6 = Cidr::new(
            IpAddr::V6(std::net::Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0)),
            8,
        );
        Network {
            inside: [v4, v6].into_iter().flatten().collect(),
        }
    }
}

/// `[flows]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
pub struct Flows {
    /// Flows per worker, 1..=2^26 (default 1048576).
    #[serde(deserialize_with = "de::bounded::<_, _, 1, { 1 << 26 }>")]
    pub capacity: u32,
    /// Idle timeout of an established TCP flow (default 2h).
    #[serde(deserialize_with = "de::positive_duration")]
    pub tcp_established_timeout: Duration,
    /// Idle timeout of a TCP flow opening or closing (default 2m).
    #[serde(deserialize_with = "de::positive_duration")]
    pub tcp_transitory_timeout: Duration,
    /// Idle timeout of a UDP flow (default 60s).
    #[serde(deserialize_with = "de::positive_duration")]
    pub udp_timeout: Duration,
    /// Idle timeout of an ICMP flow (default 30s).
    #[serde(deserialize_with = "de::positive_duration")]
    pub icmp_timeout: Duration,
    /// Whether a TCP packet without SYN may create a flow, e.g. for connections that were open
    /// before a restart (default false).
    pub tcp_midstream: bool,
    /// Fragmented datagrams being reassembled per worker, 1..=1048576 (default 4096).
    #[serde(deserialize_with = "de::bounded::<_, _, 1, 1_048_576>")]
    pub fragment_capacity: u32,
    /// How long to wait for the rest of a fragmented datagram (default 5s).
    #[serde(deserialize_with = "de::positive_duration")]
    pub fragment_timeout: Duration,
    /// Rejected packets answered (TCP RST, ICMP unreachable) per second per worker; beyond
    /// that, rejected packets are dropped silently. 0 never answers (default 100).
    #[serde(deserialize_with = "de::bounded::<_, _, 0, U32_MAX>")]
    pub reject_rate: u32,
}

impl Default for Flows {
    fn default() -> Self {
        Self {
            capacity: 1 << 20,
            tcp_established_timeout: Duration::from_secs(2 * 3600),
            tcp_transitory_timeout: Duration::from_secs(2 * 60),
            udp_timeout: Duration::from_secs(60),
            icmp_timeout: Duration::from_secs(30),
            tcp_midstream: false,
            fragment_capacity: 4096,
            fragment_timeout: Duration::from_secs(5),
            reject_rate: 100,
        }
    }
}

/// `[dns]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dns {
    /// Learn only from answers of these servers; empty (the default) means any server.
    pub trusted_servers: Vec<IpAddr>,
    /// Learned TTLs are raised to at least this (default 30s).
    pub min_ttl: Duration,
    /// Learned TTLs are lowered to at most this (default 1d); positive and `>= min_ttl`.
    pub max_ttl: Duration,
    /// Addresses kept per name, the oldest evicted beyond this (default 256, at least 1).
    pub max_ips_per_name: u32,
    /// Names kept (default 100000, at least 1).
    pub max_names: u32,
    /// Addresses kept over all names (default 1000000, at least 1).
    pub max_ips: u32,
    /// Hold a DNS answer that teaches new addresses until every worker has them (default true).
    pub hold_responses: bool,
    /// Forward a held answer anyway after this long (default 100ms, positive).
    pub hold_timeout: Duration,
    /// Where the learned table is saved and restored; `None` (written `""`) disables it
    /// (default `/var/lib/ferrowall/fqdn-cache.json`).
    pub cache_file: Option<PathBuf>,
    /// How often the table is saved (default 60s, positive).
    pub cache_interval: Duration,
    /// DNS queries remembered per client flow, to pair answers with queries, 1..=1024
    /// (default 16).
    pub max_queries_per_flow: u32,
    /// CNAMEs followed from the queried name to the addresses, 0..=32 (default 8).
    pub max_cname_chain: u32,
}

impl Default for Dns {
    fn default() -> Self {
        Self {
            trusted_servers: Vec::new(),
            min_ttl: Duration::from_secs(30),
            max_ttl: Duration::from_secs(24 * 3600),
            max_ips_per_name: 256,
            max_names: 100_000,
            max_ips: 1_000_000,
            hold_responses: true,
            hold_timeout: Duration::from_millis(100),
            cache_file: Some(PathBuf::from("/var/lib/ferrowall/fqdn-cache.json")),
            cache_interval: Duration::from_secs(60),
            max_queries_per_flow: 16,
            max_cname_chain: 8,
        }
    }
}

/// `[l7]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
pub struct L7 {
    /// Read the server name of TLS ClientHellos (default true).
    pub tls_sni: bool,
    /// Read the Host of HTTP/1 requests (default true).
    pub http_host: bool,
    /// Read the server name of QUIC Initial packets (default true).
    pub quic_sni: bool,
    /// What to do with ClientHellos that carry `encrypted_client_hello` (default allow).
    pub ech: Ech,
    /// Bytes reassembled to find a ClientHello or a request head, 512..=65536 (default 16384).
    #[serde(deserialize_with = "de::bounded::<_, _, 512, 65536>")]
    pub max_hello_bytes: u32,
}

impl Default for L7 {
    fn default() -> Self {
        Self {
            tls_sni: true,
            http_host: true,
            quic_sni: true,
            ech: Ech::Allow,
            max_hello_bytes: 16384,
        }
    }
}

/// One `[[rule]]`. A field left out of the file is an empty `Vec` here, meaning "any".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Unique name: 1 to 64 characters of `A-Z a-z 0-9 _ . -`.
    pub name: String,
    /// What to do with a matching flow.
    pub action: Action,
    /// The side that opens the flow.
    pub from: Side,
    /// The protocol.
    pub proto: Proto,
    /// Source networks.
    pub src_cidr: Vec<Cidr>,
    /// Destination networks.
    pub dst_cidr: Vec<Cidr>,
    /// Source ports; only with `proto` tcp or udp.
    pub src_ports: Vec<PortRange>,
    /// Destination ports; only with `proto` tcp or udp.
    pub dst_ports: Vec<PortRange>,
    /// ICMP or ICMPv6 types; only with `proto` icmp or icmpv6.
    pub icmp_types: Vec<u8>,
    /// Destination name patterns.
    pub dst_fqdn: Vec<DomainPattern>,
    /// How `dst_fqdn` is matched; only meaningful when `dst_fqdn` is set.
    pub fqdn_match: FqdnMatch,
    /// The 1-based line of the rule's `name`, for messages.
    pub line: usize,
}

/// `[default]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
pub struct DefaultPolicy {
    /// The verdict for new flows that match no rule (default drop).
    pub action: Action,
}

impl Default for DefaultPolicy {
    fn default() -> Self {
        Self {
            action: Action::Drop,
        }
    }
}

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
pub struct Metrics {
    /// Address of the HTTP listener serving `GET /metrics` (default `127.0.0.1:9469`).
    #[serde(deserialize_with = "de::socket_addr")]
    pub listen: SocketAddr,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9469),
        }
    }
}

/// `[admin]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
pub struct Admin {
    /// Path of the admin Unix socket (default `/run/ferrowall/admin.sock`).
    #[serde(deserialize_with = "de::path")]
    pub socket: PathBuf,
}

impl Default for Admin {
    fn default() -> Self {
        Self {
            socket: PathBuf::from("/run/ferrowall/admin.sock"),
        }
    }
}
