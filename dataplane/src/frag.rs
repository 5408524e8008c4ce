//! IP fragments follow the verdict of their datagram's first fragment.
//!
//! The first fragment carries the transport header and is classified like any packet; its
//! decision is remembered here by (source, destination, protocol, identification) for
//! `fragment_timeout`. Later fragments take that decision. A later fragment that arrives before
//! the first is held (bounded) until the first arrives, then released with its decision; if the
//! first does not come within the timeout, the held fragments are dropped (`fragment_no_first`).
//! Nothing is reassembled.

use std::collections::VecDeque;

use std::collections::HashMap;

use crate::flow::FlowRef;

/// Most later fragments held for one datagram while its first fragment is missing.
pub const MAX_HELD_PER_DATAGRAM: usize = 64;
/// Most later fragments held at once by one worker.
pub const MAX_HELD_TOTAL: usize = 1024;

/// A datagram's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DatagramKey {
    src: u128,
    dst: u128,
    ident: u32,
    proto: u8,
}

impl DatagramKey {
    /// The key of a fragment, addresses in their 128-bit form ([`crate::flow::addr_bits`]).
    pub fn new(src: u128, dst: u128, proto: u8, ident: u32) -> Self {
        DatagramKey {
            src,
            dst,
            ident,
            proto,
        }
    }
}

/// What the first fragment decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirstVerdict<D> {
    /// The decision later fragments follow.
    pub decision: D,
    /// The flow the datagram belongs to, when it was allowed.
    pub flow: Option<FlowRef>,
}

#[derive(Debug)]
struct Entry<H, D> {
    verdict: Option<FirstVerdict<D>>,
    held: Vec<H>,
}

/// What happened to a later fragment.
#[derive(Debug, PartialEq, Eq)]
pub enum Later<H, D> {
    /// The first fragment was seen: follow its verdict.
    Follow(H, FirstVerdict<D>),
    /// Held until the first fragment arrives or the timeout passes.
    Held,
    /// No room to hold it: drop.
    TableFull(H),
}

/// Fragments a worker is tracking, generic over the held packet type `H` and decision `D`.
#[derive(Debug)]
pub struct FragTable<H, D> {
    entries: HashMap<DatagramKey, Entry<H, D>, foldhash::quality::FixedState>,
    /// Keys with their creation time, in order of creation: with one timeout for all, they
    /// expire in this order.
    order: VecDeque<(u64, DatagramKey)>,
    capacity: usize,
    held: usize,
}

impl<H, D: Copy> FragTable<H, D> {
    /// A table of at most `capacity` datagrams.
    pub fn new(capacity: usize, seed: u64) -> Self {
        let capacity = capacity.max(1);
        FragTable {
            entries: HashMap::with_capacity_and_hasher(
                capacity,
                foldhash::quality::FixedState::with_seed(seed),
            ),
            order: VecDeque::with_capacity(capacity),
            capacity,
            held: 0,
        }
    }

    /// Datagrams tracked.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Later fragments currently held.
    pub fn held(&self) -> usize {
        self.held
    }

    fn has_room(&self) -> bool {
        self.entries.len() < self.capacity
    }

    /// Records the first fragment's verdict. Returns the later fragments that were waiting for
    /// it, in arrival order. `false` in the second value: no room to remember the verdict.
    pub fn first(
        &mut self,
        key: DatagramKey,
        verdict: FirstVerdict<D>,
        now: u64,
    ) -> (Vec<H>, bool) {
        if let Some(e) = self.entries.get_mut(&key) {
            e.verdict = Some(verdict);
            let held = std::mem::take(&mut e.held);
            self.held -= held.len();
            return (held, true);
        }
        if !self.has_room() {
            return (Vec::new(), false);
        }
        self.entries.insert(
            key,
            Entry {
                verdict: Some(verdict),
                held: Vec::new(),
            },
        );
        self.order.push_back((now, key));
        (Vec::new(), true)
    }

    /// A later fragment: follows the first's verdict, or is held until it comes.
    pub fn later(&mut self, key: DatagramKey, pkt: H, now: u64) -> Later<H, D> {
        if let Some(e) = self.entries.get_mut(&key) {
            if let Some(v) = e.verdict {
                return Later::Follow(pkt, v);
            }
            if e.held.len() >= MAX_HELD_PER_DATAGRAM || self.held >= MAX_HELD_TOTAL {
                return Later::TableFull(pkt);
            }
            e.held.push(pkt);
            self.held += 1;
            return Later::Held;
        }
        if !self.has_room() || self.held >= MAX_HELD_TOTAL {
            return Later::TableFull(pkt);
        }
        self.entries.insert(
            key,
            Entry {
                verdict: None,
                held: vec![pkt],
            },
        );
        self.held += 1;
        self.order.push_back((now, key));
        Later::Held
    }

    /// Forgets datagrams tracked for `timeout` ns or longer (the timeout in force: a reload
    /// that changes it applies to the datagrams already there too); the fragments still held
    /// for them (their first fragment never came) are appended to `timed_out`, oldest datagram
    /// first.
    pub fn expire(&mut self, now: u64, timeout: u64, timed_out: &mut Vec<H>) {
        while let Some(&(since, key)) = self.order.front() {
            if now.saturating_sub(since) < timeout {
                break;
            }
            self.order.pop_front();
            if let Some(e) = self.entries.remove(&key) {
                self.held -= e.held.len();
                timed_out.extend(e.held);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u32) -> DatagramKey {
        DatagramKey::new(1, 2, 17, id)
    }

    fn v(d: u8) -> FirstVerdict<u8> {
        FirstVerdict {
            decision: d,
            flow: None,
        }
    }

    #[test]
    fn first_then_later_follow() {
        let mut t: FragTable<&str, u8> = FragTable::new(4, 0);
        assert_eq!(t.first(key(1), v(7), 0), (vec![], true));
        assert_eq!(t.later(key(1), "b", 10), Later::Follow("b", v(7)));
    }

    #[test]
    fn later_before_first_is_held_then_released_in_order() {
        let mut t: FragTable<&str, u8> = FragTable::new(4, 0);
        assert_eq!(t.later(key(1), "c", 0), Later::Held);
        assert_eq!(t.later(key(1), "b", 1), Later::Held);
        assert_eq!(t.held(), 2);
        assert_eq!(t.first(key(1), v(3), 2), (vec!["c", "b"], true));
        assert_eq!(t.held(), 0);
        assert_eq!(t.later(key(1), "d", 3), Later::Follow("d", v(3)));
    }

    #[test]
    fn missing_first_times_out() {
        let mut t: FragTable<&str, u8> = FragTable::new(4, 0);
        assert_eq!(t.later(key(1), "x", 0), Later::Held);
        assert_eq!(t.later(key(2), "y", 50), Later::Held);
        let mut out = Vec::new();
        t.expire(99, 100, &mut out);
        assert!(out.is_empty());
        t.expire(100, 100, &mut out);
        assert_eq!(out, vec!["x"]);
        t.expire(200, 100, &mut out);
        assert_eq!(out, vec!["x", "y"]);
        assert!(t.is_empty());
        assert_eq!(t.held(), 0);
        // After the timeout, a late first fragment starts afresh.
        assert_eq!(t.first(key(1), v(1), 300), (vec![], true));
    }

    #[test]
    fn a_shorter_timeout_applies_to_datagrams_already_tracked() {
        let mut t: FragTable<&str, u8> = FragTable::new(4, 0);
        assert_eq!(t.later(key(1), "old", 0), Later::Held);
        assert_eq!(t.later(key(2), "new", 10), Later::Held);
        let mut out = Vec::new();
        t.expire(15, 60, &mut out);
        assert!(out.is_empty());
        // The timeout shortened (a reload): neither waits for the old one.
        t.expire(15, 5, &mut out);
        assert_eq!(out, vec!["old", "new"]);
        assert!(t.is_empty());
    }

    #[test]
    fn bounded() {
        let mut t: FragTable<u32, u8> = FragTable::new(2, 0);
        assert_eq!(t.later(key(1), 1, 0), Later::Held);
        assert_eq!(t.later(key(2), 2, 0), Later::Held);
        assert_eq!(t.later(key(3), 3, 0), Later::TableFull(3));
        assert_eq!(t.first(key(4), v(0), 0), (vec![], false));
        for i in 1..MAX_HELD_PER_DATAGRAM {
            assert_eq!(
                t.later(key(1), 10 + u32::try_from(i).unwrap(), 0),
                Later::Held
            );
        }
        assert_eq!(t.later(key(1), 999, 0), Later::TableFull(999));
    }
}
