//! DNS snooping on a worker: queries remembered per flow, answers paired with them, DNS over
//! TCP reassembled, and answers worth learning handed to the learner.
//!
//! An answer is handed over only if it matches a query seen on its flow (transaction id, name
//! and type), comes from a trusted server (when `trusted_servers` is set), and names something
//! a rule's patterns match. Everything else is counted by result and never learned.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::ops::Range;

use crate::dns::message::{DataText, Message};
use crate::dns::name::{Name, TextName, text_bytes, text_str};
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

/// What one worker's DNS-over-TCP streams may buffer together (bytes of buffer capacity): a
/// stream that would take more is given up and counted, so connections that never finish a
/// message can not take the worker's memory, however many there are.
pub const MAX_TCP_BUFFERED: usize = 8 << 20;

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
    /// More was buffered than one message can be, or than the worker's budget
    /// ([`MAX_TCP_BUFFERED`]) leaves.
    Overflow,
}

/// The length a DNS-over-TCP message's prefix gives, once `b` holds the prefix.
fn message_len(b: &[u8]) -> Option<usize> {
    b.get(..2)
        .map(|p| usize::from(u16::from_be_bytes([p[0], p[1]])))
}

impl Stream {
    /// Gives the stream up: nothing more is read from it.
    fn overflow(&mut self) -> StreamError {
        self.broken = true;
        self.buf = Vec::new();
        StreamError::Overflow
    }

    /// Adds a segment's payload; calls `each` with every DNS message it completes (read in the
    /// segment itself when it holds them whole). Only an incomplete message is buffered, in
    /// no more than `room` bytes of capacity (one that does not fit breaks the stream), and
    /// nothing once it completes.
    fn push(
        &mut self,
        seq: u32,
        payload: &[u8],
        room: usize,
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
        self.next = self
            .next
            .wrapping_add(u32::try_from(data.len()).unwrap_or(u32::MAX));
        let limit = room.min(MAX_TCP_MESSAGE);
        let mut data = data;
        // First the message held (its length prefix, then its bytes), as far as this segment
        // carries it.
        while !self.buf.is_empty() && !data.is_empty() {
            let target = message_len(&self.buf).map_or(2, |len| 2 + len);
            let take = (target - self.buf.len()).min(data.len());
            if self.buf.len() + take > limit {
                return Err(self.overflow());
            }
            if target > self.buf.capacity() {
                // The whole message's room at once, never more than the limit.
                self.buf.reserve_exact(target.min(limit) - self.buf.len());
            }
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if message_len(&self.buf).is_some_and(|len| self.buf.len() == 2 + len) {
                each(&self.buf[2..]);
                // Nothing incomplete left: give the buffer back.
                self.buf = Vec::new();
            }
        }
        // Then the whole messages the segment carries, read where they lie.
        while let Some(len) = message_len(data) {
            let Some(msg) = data.get(2..2 + len) else {
                break;
            };
            each(msg);
            data = &data[2 + len..];
        }
        // What is left begins a message: only that is buffered.
        if !data.is_empty() {
            let target = message_len(data).map_or(2, |len| 2 + len);
            if data.len() > limit {
                return Err(self.overflow());
            }
            self.buf.reserve_exact(target.min(limit).max(data.len()));
            self.buf.extend_from_slice(data);
        }
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

/// FNV-1a's offset basis: where a question's key starts.
const FNV_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
/// Where the key of a name without a text form starts instead (so that no such name keys the
/// same as one with a text form: the labels `a.b`, `com` are not the name `a.b.com`).
const FNV_BASIS_LABELLED: u64 = FNV_BASIS ^ 0x5a5a_5a5a_5a5a_5a5a;

/// FNV-1a over `bytes` from state `h`: stable, and collisions only ever pair an answer with a
/// query for a different name of the same flow and transaction id.
fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// The key of a question: a hash of its name's text (as the parser normalises it, lowercase)
/// and its type.
pub fn question_key(name: &[u8], qtype: u16) -> u64 {
    fnv(fnv(FNV_BASIS, name), &qtype.to_be_bytes())
}

impl FlowDns {
    /// The outstanding queries.
    pub fn queries(&mut self) -> &mut Queries {
        &mut self.queries
    }

    /// Feeds TCP payload of one direction (`to_server`), calling `each` with the queries and
    /// every message the segment completes, read in place in the stream's buffer. `room`: the
    /// buffer capacity both directions may hold together (what the worker's budget leaves).
    pub fn tcp(
        &mut self,
        to_server: bool,
        seq: u32,
        payload: &[u8],
        room: usize,
        mut each: impl FnMut(&mut Queries, &[u8]),
    ) -> Result<(), StreamError> {
        let FlowDns { queries, streams } = self;
        let [to, from] = streams;
        let (stream, other) = if to_server { (to, from) } else { (from, to) };
        let room = room.saturating_sub(other.buf.capacity());
        stream.push(seq, payload, room, |m| each(queries, m))
    }

    /// Bytes of buffer capacity its streams hold.
    pub fn buffered(&self) -> usize {
        self.streams.iter().map(|s| s.buf.capacity()).sum()
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
/// Names are read as text into `text` (the caller's scratch buffer); only a question without
/// a text form (a label holds a `.`) is decoded, for its key.
pub fn screen(
    dns: &mut Queries,
    policy: &DnsPolicy,
    names: &NameMatcher,
    msg: &[u8],
    to_server: bool,
    src: IpAddr,
    text: &mut Vec<u8>,
) -> Screened {
    text.clear();
    let unreadable = if to_server {
        Screened::Ignored
    } else {
        Screened::Malformed
    };
    let Ok(m) = Message::parse(msg) else {
        return unreadable;
    };
    let question = match m.questions().next_text(text) {
        Some(Ok(q)) => q,
        None => return Screened::Ignored,
        Some(Err(_)) => return unreadable,
    };
    let Some(key) = key_of(&m, &question, text) else {
        return unreadable;
    };
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
            } else if names_something(&m, &question, names, text) {
                Screened::Learnable
            } else {
                Screened::NoMatch
            }
        }
        _ => Screened::Ignored,
    }
}

/// The key of the question read as `q` (its text in `text`): [`question_key`]. A name without
/// an unambiguous text form (a label holds a `.`) is decoded and keyed by its labels, each
/// after its length, from another starting state.
fn key_of(m: &Message<'_>, q: &TextName, text: &[u8]) -> Option<u64> {
    let at = q.at + q.used;
    let qtype = u16::from_be_bytes([*m.bytes().get(at)?, *m.bytes().get(at + 1)?]);
    match text_bytes(text, &q.text) {
        Some(name) => Some(question_key(name, qtype)),
        None => {
            let (name, _) = Name::read(m.bytes(), q.at).ok()?;
            let h = name.labels().fold(FNV_BASIS_LABELLED, |h, label| {
                let len = u8::try_from(label.len()).unwrap_or(u8::MAX);
                fnv(fnv(h, &[len]), label)
            });
            Some(fnv(h, &qtype.to_be_bytes()))
        }
    }
}

/// Whether the question or some answer (owner or CNAME target) names something a pattern
/// matches. Cheap and conservative: the learner decides exactly what is bound. Names without
/// a text form (not UTF-8, or a label holds a `.`) match nothing, as in the learner.
fn names_something(
    m: &Message<'_>,
    question: &TextName,
    names: &NameMatcher,
    text: &mut Vec<u8>,
) -> bool {
    if names.is_empty() {
        return false;
    }
    let hit = |text: &[u8], name: &Option<Range<usize>>| {
        text_str(text, name).is_some_and(|s| names.matches_any(s))
    };
    if hit(text, &question.text) {
        return true;
    }
    // Only the question's text is kept: each record's names are dropped once looked at, so
    // the buffer holds at most a question and one record's names, however long the message.
    let mark = text.len();
    let mut answers = m.answers();
    while let Some(Ok(r)) = answers.next_text(text, Some(question)) {
        if hit(text, &r.owner) || matches!(&r.data, DataText::Cname(t) if hit(text, t)) {
            return true;
        }
        text.truncate(mark);
    }
    false
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
        let r = s.push(seq, data, MAX_TCP_BUFFERED, |m| out.push(m.to_vec()));
        (out, r)
    }

    #[test]
    fn a_stream_holds_only_an_incomplete_message_within_its_room() {
        let bytes = framed(&[b"first", b"second"]);
        let mut s = Stream::default();
        // Complete messages leave nothing buffered.
        let (m, _) = collect(&mut s, 0, &bytes[..7]);
        assert_eq!(m, vec![b"first".to_vec()]);
        assert_eq!(s.buf.capacity(), 0);
        // An incomplete one is held, in no more capacity than the room.
        let mut out = Vec::new();
        let r = s.push(7, &bytes[7..10], 5, |m| out.push(m.to_vec()));
        assert!(r.is_ok() && out.is_empty());
        assert!(s.buf.capacity() <= 5, "{}", s.buf.capacity());
        // More than the room breaks the stream and frees its buffer.
        let r = s.push(10, &bytes[10..], 5, |m| out.push(m.to_vec()));
        assert_eq!(r, Err(StreamError::Overflow));
        assert_eq!(s.buf.capacity(), 0);
        assert!(out.is_empty());
    }

    #[test]
    fn both_directions_share_the_flows_room() {
        let mut dns = FlowDns::default();
        let half = framed(&[&[7u8; 100]]);
        let r = dns.tcp(true, 0, &half[..60], 100, |_, _| {});
        assert!(r.is_ok());
        let held = dns.buffered();
        assert!((60..=100).contains(&held), "{held}");
        // The other direction gets only what is left.
        let r = dns.tcp(false, 0, &half[..60], 100, |_, _| {});
        assert_eq!(r, Err(StreamError::Overflow));
        assert_eq!(dns.buffered(), held);
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

    /// A message with one question `labels`/A (and no records): a query, or its answer.
    fn message(id: u16, answer: bool, labels: &[&[u8]]) -> Vec<u8> {
        let flags: u16 = if answer { 0x8180 } else { 0x0100 };
        let mut m = Vec::new();
        m.extend_from_slice(&id.to_be_bytes());
        m.extend_from_slice(&flags.to_be_bytes());
        m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        for l in labels {
            m.push(u8::try_from(l.len()).unwrap());
            m.extend_from_slice(l);
        }
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        m
    }

    #[test]
    fn answers_pair_with_queries_by_name_and_type_whatever_the_case_or_the_labels() {
        let policy = DnsPolicy {
            trusted: Vec::new(),
            max_queries: 8,
            hold: false,
            hold_timeout: 0,
        };
        let names = NameMatcher::default();
        let server: IpAddr = "192.0.2.53".parse().unwrap();
        let client: IpAddr = "10.0.0.2".parse().unwrap();
        let mut text = Vec::new();
        let mut q = Queries::default();
        let mut screen = |q: &mut Queries, m: &[u8], to_server: bool| {
            let src = if to_server { client } else { server };
            screen(q, &policy, &names, m, to_server, src, &mut text)
        };
        // Plain names, matched case-insensitively; a label holding a dot (no text form) is
        // keyed by its decoded form, and still pairs with its own query only.
        for (query, answer) in [
            (&[&b"GitHub"[..], b"com"][..], &[&b"github"[..], b"COM"][..]),
            (&[&b"a.b"[..], b"com"][..], &[&b"A.b"[..], b"com"][..]),
        ] {
            assert_eq!(
                screen(&mut q, &message(7, false, query), true),
                Screened::Query
            );
            assert_eq!(
                screen(&mut q, &message(7, true, &[b"a", b"b", b"com"]), false),
                Screened::NoQuery,
                "another name"
            );
            assert_eq!(
                screen(&mut q, &message(7, true, answer), false),
                Screened::NoMatch
            );
            assert_eq!(
                screen(&mut q, &message(7, true, answer), false),
                Screened::NoQuery,
                "a query is answered once"
            );
        }
        assert!(q.is_empty());
        // Cut inside the question: malformed from the server, ignored towards it.
        let cut = message(1, true, &[b"example", b"com"]);
        assert_eq!(
            screen(&mut q, &cut[..cut.len() - 3], false),
            Screened::Malformed
        );
        assert_eq!(
            screen(&mut q, &cut[..cut.len() - 3], true),
            Screened::Ignored
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
