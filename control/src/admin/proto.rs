//! The admin socket's protocol, shared by the server and the command line.
//!
//! The client sends one request, a JSON object on one line (at most [`MAX_REQUEST`] bytes):
//!
//! ```text
//! {"cmd":"flows","fqdn":"*.github.com"}   {"cmd":"fqdn","pattern":"**.example.com"}
//! {"cmd":"stats"}   {"cmd":"rules"}   {"cmd":"reload"}
//! ```
//!
//! The server answers with a status line, `{"ok":true}` or `{"ok":false,"error":"..."}`, then
//! (on success) the result as JSON lines: one row per line for `flows`, `fqdn` and `rules`, one
//! object for `stats` and for `reload` (`{"generation":N}`), then a status line again that
//! ends the answer (`{"ok":true}`, or `{"ok":false,...}` when the answer failed half-way, a
//! worker not answering a listing, say), and closes the connection. An answer without that
//! last line was cut short. Rows are streamed, so a listing of millions of flows needs no
//! buffer of that size on either side. While a listing works with nothing to send (most flows
//! filtered out, or `fqdn` counting flows before its first row), the server sends a progress
//! line, `{"progress":N}` (flows examined so far), whenever the client has heard nothing for a
//! second (a client waiting for another's listing to finish hears them too); clients skip it,
//! and give up on an answer only after 30 s without any line. (A client older than progress
//! lines would take one for a row.) A listing's status line comes before its work, so one that
//! fails at once (a worker not answering) ends with the failing status line right after it; the
//! CLI then prints nothing but the error.

use serde::{Deserialize, Serialize};

/// The longest request line accepted.
pub const MAX_REQUEST: u64 = 4096;

/// A request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase", deny_unknown_fields)]
pub enum Request {
    /// Every flow of every worker; `fqdn` keeps flows whose attributed name matches.
    Flows {
        /// A domain pattern.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fqdn: Option<String>,
    },
    /// The FQDN table; `pattern` keeps addresses with a matching name.
    Fqdn {
        /// A domain pattern.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pattern: Option<String>,
    },
    /// Counters of ports, workers, drops, DNS learning.
    Stats {},
    /// Rules with their counters.
    Rules {},
    /// Re-read the configuration file.
    Reload {},
}

/// The status line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Whether a result follows.
    pub ok: bool,
    /// What went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A line a long answer sends while it works and has nothing else to send (so that the client
/// can tell a server at work from a stuck one); clients skip it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgressLine {
    /// Flows examined so far.
    pub progress: u64,
}

/// One flow (CONTRACT.md: `flows --json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowJson {
    /// The worker that owns it.
    pub worker: usize,
    /// `tcp`, `udp`, `icmp`, `icmpv6`, or the protocol number.
    pub proto: String,
    /// The initiator, `ADDR:PORT` (`[ADDR]:PORT` for IPv6; ICMP: the echo identifier).
    pub src: String,
    /// The responder.
    pub dst: String,
    /// The port the initiator's first packet came in on.
    pub side: String,
    /// The flow's state.
    pub state: String,
    /// Always `allow`: only allowed flows are kept.
    pub verdict: String,
    /// The deciding rule (`null`: the default action).
    pub rule: Option<String>,
    /// The name an FQDN rule matched.
    pub fqdn: Option<String>,
    /// Packets in both directions.
    pub packets: u64,
    /// Bytes in both directions.
    pub bytes: u64,
    /// Seconds since its first packet.
    pub age_s: f64,
    /// Seconds since its last packet.
    pub idle_s: f64,
}

/// One rule (`rules --json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleJson {
    /// Position in the file (0-based); `null` for the default action.
    pub index: Option<usize>,
    /// The rule's name; `null` for the default action.
    pub name: Option<String>,
    /// `allow`, `drop` or `reject`.
    pub action: String,
    /// Whether this row is the default action.
    pub default: bool,
    /// Packets of the flows it decided, since start (summed over reloads by rule name).
    pub packets: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// One port (`stats --json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortJson {
    /// `inside` or `outside`.
    pub port: String,
    /// The DPDK device.
    pub device: String,
    /// Packets received.
    pub rx_packets: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets the NIC dropped (receive queues full).
    pub imissed: u64,
    /// Receives that failed for lack of mbufs.
    pub rx_nombuf: u64,
    /// Receive errors.
    pub ierrors: u64,
    /// Transmit errors.
    pub oerrors: u64,
}

/// One worker (`stats --json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerJson {
    /// The worker's index.
    pub worker: usize,
    /// Packets received (both ports).
    pub packets: u64,
    /// Packets sent (both ports).
    pub tx_packets: u64,
    /// Packets the TX rings refused (freed).
    pub tx_refused: u64,
    /// Polls that received packets.
    pub busy_polls: u64,
    /// Polls that received nothing.
    pub idle_polls: u64,
    /// Average TSC cycles per received packet.
    pub cycles_per_packet: f64,
    /// Live flows.
    pub flows: u64,
    /// Flows created.
    pub flows_created: u64,
    /// The policy generation it applies.
    pub generation: u64,
    /// Drops by reason (only reasons that occurred).
    pub drops: std::collections::BTreeMap<String, u64>,
}

/// DNS learning (`stats --json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DnsJson {
    /// Queries seen.
    pub queries: u64,
    /// Answers by result (`learned`, `no_query`, `untrusted`, `malformed`, `no_match`).
    pub answers: std::collections::BTreeMap<String, u64>,
    /// Answers held now.
    pub held: u64,
    /// Held answers released by `hold_timeout`.
    pub hold_timeouts: u64,
    /// Answers not learned because the control thread's ring was full.
    pub handoff_full: u64,
    /// Addresses in the FQDN table.
    pub fqdn_entries: u64,
    /// Names in the FQDN table.
    pub fqdn_names: u64,
    /// Bindings evicted or refused, by reason.
    pub evictions: std::collections::BTreeMap<String, u64>,
    /// Flows allowed by FQDN rules.
    pub fqdn_flows: u64,
}

/// `stats --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsJson {
    /// The build.
    pub version: String,
    /// The generation of the policy in force.
    pub generation: u64,
    /// Reload outcomes: `ok`, `error`.
    pub reloads: std::collections::BTreeMap<String, u64>,
    /// Ports (counters at most 250 ms old).
    pub ports: Vec<PortJson>,
    /// Workers.
    pub workers: Vec<WorkerJson>,
    /// Drops by reason, all workers.
    pub drops: std::collections::BTreeMap<String, u64>,
    /// DNS learning.
    pub dns: DnsJson,
}

/// `reload`'s result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reloaded {
    /// The new policy generation.
    pub generation: u64,
}

/// An IP protocol's name in listings.
pub fn proto_name(proto: u8) -> String {
    match proto {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        58 => "icmpv6".into(),
        n => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_read_as_documented() {
        let r: Request = serde_json::from_str(r#"{"cmd":"flows","fqdn":"*.github.com"}"#).unwrap();
        assert_eq!(
            r,
            Request::Flows {
                fqdn: Some("*.github.com".into())
            }
        );
        let r: Request = serde_json::from_str(r#"{"cmd":"stats"}"#).unwrap();
        assert_eq!(r, Request::Stats {});
        assert_eq!(
            serde_json::to_string(&Request::Fqdn { pattern: None }).unwrap(),
            r#"{"cmd":"fqdn"}"#
        );
        for bad in [
            r#"{"cmd":"nope"}"#,
            r#"{"cmd":"stats","x":1}"#,
            r#"{"fqdn":"a"}"#,
            "[]",
            "{",
        ] {
            assert!(serde_json::from_str::<Request>(bad).is_err(), "{bad}");
        }
    }
}
