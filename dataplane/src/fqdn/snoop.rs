//! DNS snooping on a worker: queries remembered per flow, answers paired with them, DNS over
//! TCP reassembled, and answers worth learning handed to the learner.
//!
//! An answer is handed over only if it matches a query seen on its flow (transaction id, name
//! and type), comes from a trusted server (when `trusted_servers` is set), and names something
//! a rule's patterns match. Everything else is counted by result and never learned.

use std::collections::VecDeque;
use std::net::IpAddr;

use crate::dns::message::Message;
use crate::dns::name::Name;
use crate::fqdn::NameMatcher;
use crate::fqdn::table::IpKey;

/// The `[dns]` settings the workers apply (they change on reload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsPolicy {
    /// Servers answers are learned from, sorted; empty: any.
    pub trusted: Vec<IpKey>,
    /// Queries remembered per flow.
    pub max_queries: usize,
    /// Hold an answer that teaches addresses until every worker's table has them.
    pub hold: bool,
    /// How long at most (ns).
    pub hold_timeout: u64,
}

impl DnsPolicy {
    /// From the `[dns]` section.
    pub fn from_config(d: &config::Dns) -> Self {
        let mut trusted: Vec<IpKey> = d.trusted_servers.iter().map(|ip| IpKey::new(*ip)).collect();
        trusted.sort_unstable();
        trusted.dedup();
        DnsPolicy {
            trusted,
            max_queries: d.max_queries_per_flow as usize,
            hold: d.hold_responses,
            hold_timeout: u64::try_from(d.hold_timeout.as_nanos()).unwrap_or(u64::MAX),
        }
    }

    /// Whether answers from `server` may be learned.
    pub fn trusts(&self, server: IpKey) -> bool {
        self.trusted.is_empty() || self.trusted.binary_search(&server).is_ok()
    }
}

/// The largest DNS message over TCP, with its length prefix.
pub const MAX_TCP_MESSAGE: usize = 2 + 65535;

/// One direction of a DNS-over-TCP stream being reassembled.
#[derive(Debug, Clone, Default)]
struct Stream {
    /// The sequence number the next in-order byte carries.
    next: u32,
    buf: Vec<u8>,
    started: bool,
    /// A gap or an oversized message: nothing more is read from this direction.
    broken: bool,
}

/// Why TCP data could not be reassembled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamError {
    /// A segment arrived after missing data.
    Gap,
    /// More was buffered than one message can be.
    Overflow,
}

impl Stream {
    /// Adds a segment's payload; calls `each` with every DNS message it completes.
    fn push(
        &mut self,
        seq: u32,
        payload: &[u8],
        mut each: impl FnMut(&[u8]),
    ) -> Result<(), StreamError> {
        if self.broken || payload.is_empty() {
            return Ok(());
        }
        if !self.started {
            self.started = true;
            self.next = seq;
        }
        let ahead = seq.wrapping_sub(self.next);
        let data = if ahead == 0 {
            payload
        } else if ahead > u32::MAX / 2 {
            // Starts before `next`: a retransmission, maybe with new bytes at its end.
            let overlap = self.next.wrapping_sub(seq) as usize;
            match payload.get(overlap..) {
                Some(rest) if !rest.is_empty() => rest,
                _ => return Ok(()),
            }
        } else {
            self.broken = true;
            self.buf = Vec::new();
            return Err(StreamError::Gap);
        };
        if self.buf.len() + data.len() > 2 * MAX_TCP_MESSAGE {
            self.broken = true;
            self.buf = Vec::new();
            return Err(StreamError::Overflow);
        }
        self.buf.extend_from_slice(data);
        self.next = self
            .next
            .wrapping_add(u32::try_from(data.len()).unwrap_or(u32::MAX));
        let mut at = 0;
        while let Some(len) = self
            .buf
            .get(at..at + 2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        {
            let Some(msg) = self.buf.get(at + 2..at + 2 + len) else {
                break;
            };
            each(msg);
            at += 2 + len;
        }
        self.buf.drain(..at);
        Ok(())
    }
}

/// A flow's DNS state: outstanding queries and, over TCP, the two reassembly streams.
#[derive(Debug, Clone, Default)]
pub struct FlowDns {
    queries: Queries,
    /// Client to server, server to client.
    streams: [Stream; 2],
}

/// A flow's outstanding queries: (transaction id, question key), oldest first.
#[derive(Debug, Clone, Default)]
pub struct Queries(VecDeque<(u16, u64)>);

impl Queries {
    /// Remembers a query; the oldest is forgotten beyond `max`. Returns whether one was
    /// forgotten.
    pub fn remember(&mut self, id: u16, key: u64, max: usize) -> bool {
        let forgot = self.0.len() >= max.max(1);
        if forgot {
            self.0.pop_front();
        }
        self.0.push_back((id, key));
        forgot
    }

    /// Takes the query an answer answers, if it was seen.
    pub fn answered(&mut self, id: u16, key: u64) -> bool {
        match self.0.iter().position(|&q| q == (id, key)) {
            Some(i) => {
                self.0.remove(i);
                true
            }
            None => false,
        }
    }

    /// Queries waiting for their answer.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The key of a question: a hash of its name and type (names compared as the parser
/// normalised them, lowercase).
pub fn question_key(name: &Name, qtype: u16) -> u64 {
    // FNV-1a: stable, and collisions only ever pair an answer with a query for a different
    // name of the same flow and transaction id.
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &b in name.as_bytes().iter().chain(&qtype.to_be_bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    h
}

impl FlowDns {
    /// The outstanding queries.
    pub fn queries(&mut self) -> &mut Queries {
        &mut self.queries
    }

    /// Feeds TCP payload of one direction (`to_server`), calling `each` with the queries and
    /// every message the segment completes, read in place in the stream's buffer.
    pub fn tcp(
        &mut self,
        to_server: bool,
        seq: u32,
        payload: &[u8],
        mut each: impl FnMut(&mut Queries, &[u8]),
    ) -> Result<(), StreamError> {
        let FlowDns { queries, streams } = self;
        streams[usize::from(!to_server)].push(seq, payload, |m| each(queries, m))
    }
}

/// How a worker classified one DNS message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screened {
    /// A query, remembered.
    Query,
    /// An answer to learn from: hand it to the learner.
    Learnable,
    /// An answer without a matching query.
    NoQuery,
    /// An answer from a server not trusted.
    Untrusted,
    /// Not a DNS message that can be read.
    Malformed,
    /// An answer naming nothing the patterns match.
    NoMatch,
    /// Something else (a query towards the client, a response towards the server).
    Ignored,
}

/// Screens one DNS message seen on a flow, `to_server` telling its direction, from `src`.
pub fn screen(
    dns: &mut Queries,
    policy: &DnsPolicy,
    names: &NameMatcher,
    msg: &[u8],
    to_server: bool,
    src: IpAddr,
) -> Screened {
    let Ok(m) = Message::parse(msg) else {
        return if to_server {
            Screened::Ignored
        } else {
            Screened::Malformed
        };
    };
    let question = match m.question() {
        Ok(Some(q)) => q,
        Ok(None) => return Screened::Ignored,
        Err(_) => {
            return if to_server {
                Screened::Ignored
            } else {
                Screened::Malformed
            };
        }
    };
    let key = question_key(&question.name, question.qtype);
    match (m.is_response(), to_server) {
        (false, true) => {
            dns.remember(m.id(), key, policy.max_queries);
            Screened::Query
        }
        (true, false) => {
            if !dns.answered(m.id(), key) {
                Screened::NoQuery
            } else if !policy.trusts(IpKey::new(src)) {
                Screened::Untrusted
            } else if names_something(&m, &question.name, names) {
                Screened::Learnable
            } else {
                Screened::NoMatch
            }
        }
        _ => Screened::Ignored,
    }
}

/// Whether the question or some answer (owner or CNAME target) names something a pattern
/// matches. Cheap and conservative: the learner decides exactly what is bound.
fn names_something(m: &Message<'_>, question: &Name, names: &NameMatcher) -> bool {
    if names.is_empty() {
        return false;
    }
    let hit = |n: &Name| n.as_str().is_some_and(|s| names.matches_any(s));
    if hit(question) {
        return true;
    }
    m.answers()
        .flatten()
        .any(|r| hit(&r.name) || matches!(&r.data, crate::dns::message::RData::Cname(t) if hit(t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(msgs: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for m in msgs {
            v.extend_from_slice(&u16::try_from(m.len()).unwrap().to_be_bytes());
            v.extend_from_slice(m);
        }
        v
    }

    fn collect(s: &mut Stream, seq: u32, data: &[u8]) -> (Vec<Vec<u8>>, Result<(), StreamError>) {
        let mut out = Vec::new();
        let r = s.push(seq, data, |m| out.push(m.to_vec()));
        (out, r)
    }

    #[test]
    fn tcp_messages_split_and_joined() {
        let bytes = framed(&[b"first", b"second message", b"3"]);
        let mut s = Stream::default();
        let (a, _) = collect(&mut s, 1000, &bytes[..4]);
        assert!(a.is_empty());
        let (b, _) = collect(&mut s, 1004, &bytes[4..12]);
        assert_eq!(b, vec![b"first".to_vec()]);
        let (c, _) = collect(&mut s, 1012, &bytes[12..]);
        assert_eq!(c, vec![b"second message".to_vec(), b"3".to_vec()]);
    }

    #[test]
    fn retransmissions_are_skipped_and_gaps_break_the_stream() {
        let bytes = framed(&[b"hello", b"world"]);
        let mut s = Stream::default();
        let (m, r) = collect(&mut s, u32::MAX - 3, &bytes[..5]);
        assert!(m.is_empty() && r.is_ok());
        // Sequence numbers wrap; an overlapping retransmission brings 3 new bytes.
        let (m, _) = collect(&mut s, u32::MAX - 1, &bytes[2..8]);
        assert_eq!(m, vec![b"hello".to_vec()]);
        let (m, r) = collect(&mut s, 100, &bytes[9..]);
        assert!(m.is_empty());
        assert_eq!(r, Err(StreamError::Gap));
        let (m, r) = collect(&mut s, 3, &bytes[8..]);
        assert!(
            m.is_empty() && r.is_ok(),
            "a broken stream reads nothing more"
        );
    }

    #[test]
    fn queries_are_bounded_and_paired_once() {
        let mut d = Queries::default();
        assert!(!d.remember(1, 11, 2));
        assert!(!d.remember(2, 22, 2));
        assert!(d.remember(3, 33, 2), "the oldest goes");
        assert!(!d.answered(1, 11));
        assert!(d.answered(2, 22));
        assert!(!d.answered(2, 22), "an answer consumes its query");
        assert!(!d.answered(3, 34), "the question must match too");
        assert_eq!(d.len(), 1);
    }
}
