//! The DNS message parser against tshark, the reference dissector, on every real capture of
//! ../shared/captures.
//!
//! Messages: every UDP datagram to or from port 53 (or 5353, 5355: mDNS and LLMNR, which tshark
//! also dissects as DNS) is one message; a TCP segment to or from those ports is one message when
//! it carries exactly one whole message (its 2-byte length prefix equals the rest of the
//! payload). Messages split over several segments, or several in one segment,
//! need reassembly (tested elsewhere) and are skipped here, counted by reason. With the captures
//! of suricata-verify 10a45e4b that is 3 segments, all of them parts of queries: no response
//! tshark decodes is skipped (141 responses over UDP and TCP port 53 and 2 over TCP port 5353
//! are compared, plus the one known refusal below).
//!
//! For every frame tshark decodes as a DNS response, the parser must read the same question
//! names, A and AAAA addresses, CNAME targets, HTTPS address hints and TTLs (every record but
//! OPT, whose TTL field is not a TTL), all in order over the three record sections. A message
//! tshark decodes and the parser refuses fails the test unless it is in [`KNOWN_REFUSALS`],
//! with its reason, so that every refusal is reviewed. No capture may make the parser panic:
//! every UDP and TCP payload of every frame, whatever its port, also goes through the fuzz
//! entry point, which checks the parser's invariants.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use dataplane::dns::message::{Message, RData, rtype};
use dataplane::dns::name::Name;
use dataplane::packet::{Frame, L4, proto};

/// Messages tshark decodes and the parser refuses, each genuinely malformed in a way tshark
/// tolerates: (capture path under the captures folder, frame number, why).
const KNOWN_REFUSALS: &[(&str, usize, &str)] = &[(
    "suricata-verify/dns/dns-corrupt-additionals/input.pcap",
    2,
    "dns-corrupt-additionals: the additional section's OPT record is cut short (its RDLENGTH \
     runs past the end of the datagram); tshark shows the question and answers, then \
     [Malformed Packet]; we refuse the message because its framing is broken",
)];

/// Ports whose payloads are DNS messages: DNS, and the two protocols tshark also dissects as DNS
/// because they share its wire format (multicast DNS, LLMNR).
const DNS_PORTS: [u16; 3] = [53, 5353, 5355];

/// What the test compares, for one response.
#[derive(Debug, Default, PartialEq, Eq)]
struct Answer {
    qnames: Vec<String>,
    a: Vec<String>,
    aaaa: Vec<String>,
    cname: Vec<String>,
    ttl: Vec<String>,
    ipv4hint: Vec<String>,
    ipv6hint: Vec<String>,
}

const FIELDS: [&str; 8] = [
    "frame.number",
    "dns.qry.name",
    "dns.a",
    "dns.aaaa",
    "dns.cname",
    "dns.resp.ttl",
    "dns.svcb.svcparam.ipv4hint.ip",
    "dns.svcb.svcparam.ipv6hint.ip",
];

/// tshark's view: frame number -> what it decoded from the DNS response in that frame.
fn tshark_responses(path: &Path) -> BTreeMap<usize, Answer> {
    let mut cmd = Command::new("tshark");
    cmd.args(["-n", "-r"]).arg(path).args([
        "-Y",
        "dns.flags.response == 1",
        "-T",
        "fields",
        "-E",
        "separator=/t",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
    ]);
    for f in FIELDS {
        cmd.args(["-e", f]);
    }
    let out = cmd
        .output()
        .expect("tshark (scripts/install-deps installs it)");
    assert!(
        out.status.success(),
        "tshark on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rows = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), FIELDS.len(), "{}: {line:?}", path.display());
        let list = |i: usize| -> Vec<String> {
            if cols[i].is_empty() {
                Vec::new()
            } else {
                cols[i].split(',').map(str::to_owned).collect()
            }
        };
        // tshark keeps the case of names and shows the root as "<Root>".
        let names = |i: usize| -> Vec<String> {
            list(i)
                .into_iter()
                .map(|n| {
                    if n == "<Root>" {
                        String::new()
                    } else {
                        n.to_ascii_lowercase()
                    }
                })
                .collect()
        };
        let frame: usize = cols[0].parse().expect("frame number");
        let answer = Answer {
            qnames: names(1),
            a: list(2),
            aaaa: list(3),
            cname: names(4),
            ttl: list(5),
            ipv4hint: list(6),
            ipv6hint: list(7),
        };
        assert!(
            rows.insert(frame, answer).is_none(),
            "{}: frame {frame} twice",
            path.display()
        );
    }
    rows
}

/// A name as tshark prints it (lowercased): the text form when it is unambiguous.
fn text(n: &Name) -> String {
    n.as_str().map_or_else(|| n.to_string(), str::to_owned)
}

/// The parser's view of a response; `Err` if it refuses the message.
fn ours(msg: &[u8]) -> Result<Answer, String> {
    let m = Message::parse(msg).map_err(|e| format!("parse: {}", e.as_str()))?;
    let mut answer = Answer::default();
    for q in m.questions() {
        let q = q.map_err(|e| format!("question: {}", e.as_str()))?;
        answer.qnames.push(text(&q.name));
    }
    for r in m.records() {
        let (_, r) = r.map_err(|e| format!("record: {}", e.as_str()))?;
        if r.rtype != rtype::OPT {
            answer.ttl.push(r.ttl.to_string());
        }
        match r.data {
            RData::A(a) => answer.a.push(a.to_string()),
            RData::Aaaa(a) => answer.aaaa.push(a.to_string()),
            RData::Cname(n) => answer.cname.push(text(&n)),
            RData::Svcb(s) => {
                answer
                    .ipv4hint
                    .extend(s.ipv4hint.iter().map(ToString::to_string));
                answer
                    .ipv6hint
                    .extend(s.ipv6hint.iter().map(ToString::to_string));
            }
            RData::Other { .. } => {}
        }
    }
    Ok(answer)
}

/// What a frame carries for this test.
enum Carried<'a> {
    /// No UDP or TCP payload.
    Nothing,
    /// A UDP or TCP payload not to or from a DNS port.
    OtherPort(&'a [u8]),
    /// A DNS message (UDP payload, or a TCP message without its length prefix).
    Message(&'a [u8]),
    /// TCP data to or from a DNS port that is not exactly one whole message.
    TcpPartial(&'a [u8]),
    /// A UDP datagram to or from a DNS port that is an IP fragment.
    Fragment,
}

fn carried(frame: &[u8]) -> Carried<'_> {
    let Ok(Frame::Ip(ip)) = dataplane::packet::parse(frame) else {
        return Carried::Nothing;
    };
    let (l4, end) = (usize::from(ip.l4_offset), usize::from(ip.ip_end));
    let dns_port = |s: u16, d: u16| DNS_PORTS.contains(&s) || DNS_PORTS.contains(&d);
    match ip.l4 {
        L4::Udp { sport, dport } if ip.proto == proto::UDP => {
            if ip.frag.is_some() {
                return if dns_port(sport, dport) {
                    Carried::Fragment
                } else {
                    Carried::Nothing
                };
            }
            let ulen = frame
                .get(l4 + 4..l4 + 6)
                .map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]])));
            let Some(payload) = frame.get(l4 + 8..(l4 + ulen).min(end)) else {
                return Carried::Nothing;
            };
            if dns_port(sport, dport) {
                Carried::Message(payload)
            } else {
                Carried::OtherPort(payload)
            }
        }
        L4::Tcp { sport, dport, .. } if ip.proto == proto::TCP => {
            let Some(&doff) = frame.get(l4 + 12) else {
                return Carried::Nothing;
            };
            let Some(payload) = frame.get(l4 + usize::from(doff >> 4) * 4..end) else {
                return Carried::Nothing;
            };
            if payload.is_empty() {
                Carried::Nothing
            } else if !dns_port(sport, dport) {
                Carried::OtherPort(payload)
            } else if payload.len() >= 2
                && usize::from(u16::from_be_bytes([payload[0], payload[1]])) == payload.len() - 2
            {
                Carried::Message(&payload[2..])
            } else {
                Carried::TcpPartial(payload)
            }
        }
        _ => Carried::Nothing,
    }
}

/// Counts over all captures.
#[derive(Debug, Default)]
struct Tally {
    files: usize,
    frames: usize,
    payloads_fuzzed: usize,
    messages: usize,
    responses: usize,
    tshark_responses: usize,
    compared: usize,
    records_compared: usize,
    known_refusals: Vec<String>,
    tcp_partial_segments: usize,
    skipped_tcp_partial: usize,
    skipped_fragment: usize,
    failures: Vec<String>,
}

fn check_file(root: &Path, path: &Path, tally: &mut Tally) {
    let rel = path
        .strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string();
    let frames = testkit::seeds::ethernet_frames(path);
    let mut truth = tshark_responses(path);
    tally.files += 1;
    tally.frames += frames.len();
    tally.tshark_responses += truth.len();
    for (i, frame) in frames.iter().enumerate() {
        let number = i + 1;
        let c = carried(frame);
        // No crash, whatever the port: every payload, and a TCP payload less a length prefix.
        if let Carried::OtherPort(p) | Carried::Message(p) | Carried::TcpPartial(p) = c {
            dataplane::fuzzing::dns(p);
            dataplane::fuzzing::dns(p.get(2..).unwrap_or_default());
            tally.payloads_fuzzed += 1;
        }
        let expected = truth.remove(&number);
        tally.tcp_partial_segments += usize::from(matches!(c, Carried::TcpPartial(_)));
        let msg = match c {
            Carried::Message(m) => m,
            Carried::TcpPartial(_) if expected.is_some() => {
                tally.skipped_tcp_partial += 1;
                continue;
            }
            Carried::Fragment if expected.is_some() => {
                tally.skipped_fragment += 1;
                continue;
            }
            _ => {
                if expected.is_some() {
                    tally.failures.push(format!(
                        "{rel} frame {number}: tshark decodes a DNS response the test does not \
                         see as one"
                    ));
                }
                continue;
            }
        };
        tally.messages += 1;
        let is_response = Message::parse(msg).is_ok_and(|m| m.is_response());
        tally.responses += usize::from(is_response);
        let Some(expected) = expected else {
            if is_response {
                tally.failures.push(format!(
                    "{rel} frame {number}: a response tshark does not decode as one"
                ));
            }
            continue;
        };
        match ours(msg) {
            Ok(got) => {
                tally.compared += 1;
                tally.records_compared += got.ttl.len();
                if got != expected {
                    tally.failures.push(format!(
                        "{rel} frame {number}:\n  tshark {expected:?}\n  ours   {got:?}"
                    ));
                }
            }
            Err(why) => {
                if let Some((_, _, reason)) = KNOWN_REFUSALS
                    .iter()
                    .find(|(file, frame, _)| *file == rel && *frame == number)
                {
                    tally
                        .known_refusals
                        .push(format!("{rel} frame {number} ({why}): {reason}"));
                } else {
                    tally.failures.push(format!(
                        "{rel} frame {number}: we refuse ({why}) what tshark decodes: \
                         {expected:?}"
                    ));
                }
            }
        }
    }
    for number in truth.keys() {
        tally.failures.push(format!(
            "{rel} frame {number}: tshark decodes a response in a frame the capture reader \
             does not have"
        ));
    }
}

#[test]
fn dns_responses_agree_with_tshark() {
    let root = testkit::shared_captures();
    let files: Vec<PathBuf> = testkit::seeds::capture_files(&root);
    assert!(
        files.len() > 50,
        "{} captures under {}",
        files.len(),
        root.display()
    );
    // tshark starts slowly: two files at a time.
    let tallies: Vec<Tally> = std::thread::scope(|s| {
        let workers: Vec<_> = files
            .chunks(files.len().div_ceil(2))
            .map(|chunk| {
                let root = &root;
                s.spawn(move || {
                    let mut t = Tally::default();
                    for f in chunk {
                        check_file(root, f, &mut t);
                    }
                    t
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("no panic"))
            .collect()
    });
    let mut t = Tally::default();
    for x in tallies {
        t.files += x.files;
        t.frames += x.frames;
        t.payloads_fuzzed += x.payloads_fuzzed;
        t.messages += x.messages;
        t.responses += x.responses;
        t.tshark_responses += x.tshark_responses;
        t.compared += x.compared;
        t.records_compared += x.records_compared;
        t.known_refusals.extend(x.known_refusals);
        t.tcp_partial_segments += x.tcp_partial_segments;
        t.skipped_tcp_partial += x.skipped_tcp_partial;
        t.skipped_fragment += x.skipped_fragment;
        t.failures.extend(x.failures);
    }
    eprintln!(
        "dns vs tshark: {} captures, {} frames, {} payloads through the fuzz entry point, \
         {} DNS messages on DNS ports ({} responses); tshark decodes {} responses: {} compared \
         ({} records), {} known refusals, skipped {} multi-segment or multi-message TCP and {} \
         IP-fragmented (of {} TCP segments on DNS ports that are not one whole message)",
        t.files,
        t.frames,
        t.payloads_fuzzed,
        t.messages,
        t.responses,
        t.tshark_responses,
        t.compared,
        t.records_compared,
        t.known_refusals.len(),
        t.skipped_tcp_partial,
        t.skipped_fragment,
        t.tcp_partial_segments,
    );
    for k in &t.known_refusals {
        eprintln!("  known refusal: {k}");
    }
    assert!(
        t.failures.is_empty(),
        "{} disagreements:\n{}",
        t.failures.len(),
        t.failures.join("\n")
    );
    // Every listed refusal still happens: the list is reviewed, never stale.
    assert_eq!(
        t.known_refusals.len(),
        KNOWN_REFUSALS.len(),
        "{:?}",
        t.known_refusals
    );
    assert!(t.compared >= 80, "only {} responses compared", t.compared);
}
