//! Reassembly of DNS answers that arrive as IP fragments (large UDP answers: DNSSEC, many
//! addresses). Only datagrams whose first fragment is a UDP answer from port 53 on an allowed
//! flow are collected; the fragments themselves are forwarded as usual (the one completing the
//! datagram may be held like any learning answer). Bounded in datagrams and bytes; what can not
//! be reassembled is counted, not learned.

use std::collections::HashMap;

use crate::flow::FlowRef;
use crate::frag::DatagramKey;

/// Datagrams collected at once per worker.
pub const MAX_DATAGRAMS: usize = 64;
/// Bytes collected at once per worker.
pub const MAX_BYTES: usize = 2 << 20;
/// The largest datagram payload (IP total length minus the smallest header).
pub const MAX_DATAGRAM: usize = 65535;

#[derive(Debug)]
struct Partial {
    flow: FlowRef,
    parts: Vec<(usize, Vec<u8>)>,
    /// Known once the last fragment (more-fragments clear) arrived.
    end: Option<usize>,
    bytes: usize,
    since: u64,
}

/// Why a datagram was given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasmError {
    /// No room (too many datagrams or bytes at once).
    Full,
    /// Fragments disagree (overlap with different bytes, data past the end, too large).
    Inconsistent,
}

/// The DNS datagrams being reassembled by one worker.
#[derive(Debug, Default)]
pub struct DnsReassembly {
    map: HashMap<DatagramKey, Partial>,
    bytes: usize,
}

impl DnsReassembly {
    /// Whether fragments of `key` are collected.
    pub fn tracks(&self, key: &DatagramKey) -> bool {
        self.map.contains_key(key)
    }

    /// Starts collecting datagram `key` of DNS flow `flow`.
    pub fn start(&mut self, key: DatagramKey, flow: FlowRef, now: u64) -> Result<(), ReasmError> {
        if self.map.len() >= MAX_DATAGRAMS {
            return Err(ReasmError::Full);
        }
        self.map.entry(key).or_insert(Partial {
            flow,
            parts: Vec::new(),
            end: None,
            bytes: 0,
            since: now,
        });
        Ok(())
    }

    /// Adds the IP payload `data` of a fragment at byte `offset` (`more`: more fragments
    /// follow). Returns the whole datagram payload and its flow once complete.
    pub fn add(
        &mut self,
        key: &DatagramKey,
        offset: usize,
        more: bool,
        data: &[u8],
    ) -> Result<Option<(FlowRef, Vec<u8>)>, ReasmError> {
        let Some(p) = self.map.get_mut(key) else {
            return Ok(None);
        };
        let fail = |this: &mut Self, e| {
            if let Some(p) = this.map.remove(key) {
                this.bytes -= p.bytes;
            }
            Err(e)
        };
        let end = offset + data.len();
        // Bytes two fragments both carry must agree: what is learned is what the client gets.
        let disagree = p.parts.iter().any(|(o, d)| {
            let (lo, hi) = (offset.max(*o), end.min(o + d.len()));
            lo < hi && d.get(lo - o..hi - o) != data.get(lo - offset..hi - offset)
        });
        if end > MAX_DATAGRAM
            || p.end.is_some_and(|e| end > e)
            || (!more && p.parts.iter().any(|(o, d)| o + d.len() > end))
            || disagree
        {
            return fail(self, ReasmError::Inconsistent);
        }
        if self.bytes + data.len() > MAX_BYTES {
            return fail(self, ReasmError::Full);
        }
        if !more {
            p.end = Some(end);
        }
        p.parts.push((offset, data.to_vec()));
        p.bytes += data.len();
        self.bytes += data.len();
        let Some(total) = p.end else { return Ok(None) };
        // Complete when the parts cover 0..total without a hole.
        p.parts.sort_by_key(|(o, _)| *o);
        let mut covered = 0;
        for (o, d) in &p.parts {
            if *o > covered {
                return Ok(None);
            }
            covered = covered.max(o + d.len());
        }
        if covered < total {
            return Ok(None);
        }
        let Some(p) = self.map.remove(key) else {
            return Ok(None);
        };
        self.bytes -= p.bytes;
        let mut whole = vec![0u8; total];
        for (o, d) in &p.parts {
            whole[*o..o + d.len()].copy_from_slice(d);
        }
        Ok(Some((p.flow, whole)))
    }

    /// Gives up datagrams started more than `timeout` ns before `now`; returns how many.
    pub fn expire(&mut self, now: u64, timeout: u64) -> usize {
        let before = self.map.len();
        let bytes = &mut self.bytes;
        self.map.retain(|_, p| {
            let keep = now.saturating_sub(p.since) < timeout;
            if !keep {
                *bytes -= p.bytes;
            }
            keep
        });
        before - self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DatagramKey {
        DatagramKey::new(1, 2, 17, 7)
    }

    #[test]
    fn in_and_out_of_order() {
        let data: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        for order in [[0usize, 1, 2], [2, 0, 1], [1, 2, 0]] {
            let mut r = DnsReassembly::default();
            r.start(key(), FlowRef::of_slot(5), 0).unwrap();
            let mut done = None;
            for i in order {
                let (o, e) = (i * 1200, ((i + 1) * 1200).min(3000));
                if let Some(x) = r.add(&key(), o, e < 3000, &data[o..e]).unwrap() {
                    done = Some(x);
                }
            }
            assert_eq!(
                done,
                Some((FlowRef::of_slot(5), data.clone())),
                "order {order:?}"
            );
            assert!(!r.tracks(&key()));
            assert_eq!(r.bytes, 0);
        }
    }

    #[test]
    fn overlaps_must_agree() {
        let mut r = DnsReassembly::default();
        r.start(key(), FlowRef::of_slot(1), 0).unwrap();
        r.add(&key(), 0, true, &[1; 16]).unwrap();
        // The same bytes again (a retransmission, partly overlapping): fine.
        r.add(&key(), 8, true, &[1; 16]).unwrap();
        // Different bytes where they overlap: given up.
        assert_eq!(
            r.add(&key(), 20, false, &[2; 8]),
            Err(ReasmError::Inconsistent)
        );
        assert!(!r.tracks(&key()));
        assert_eq!(r.bytes, 0);
    }

    #[test]
    fn bounds_and_expiry() {
        let mut r = DnsReassembly::default();
        r.start(key(), FlowRef::of_slot(1), 0).unwrap();
        assert_eq!(
            r.add(&key(), 65000, true, &[0; 600]),
            Err(ReasmError::Inconsistent)
        );
        assert!(!r.tracks(&key()));
        r.start(key(), FlowRef::of_slot(1), 0).unwrap();
        r.add(&key(), 0, true, &[0; 100]).unwrap();
        assert_eq!(r.expire(10, 5), 1);
        assert_eq!(r.bytes, 0);
        for i in 0..MAX_DATAGRAMS {
            r.start(
                DatagramKey::new(1, 2, 17, u32::try_from(i).unwrap()),
                FlowRef::of_slot(1),
                0,
            )
            .unwrap();
        }
        assert_eq!(
            r.start(DatagramKey::new(9, 9, 17, 9), FlowRef::of_slot(1), 0),
            Err(ReasmError::Full)
        );
        assert_eq!(
            r.add(&DatagramKey::new(9, 9, 17, 9), 0, false, &[1]),
            Ok(None),
            "not tracked"
        );
    }
}
