//! The speed of light of the established path: the least an established IPv4 TCP or UDP packet
//! can cost on this machine, as a measuring stick for the pipeline (issue 3's +60 cycles
//! target). It is not the firewall and decides nothing anywhere else.
//!
//! What it still does per packet, because a stateful firewall must: check the Ethernet type,
//! IPv4 version and header length, total length against the frame, that it is not a
//! fragment, the protocol; normalise the 5-tuple for both directions; a keyed hash; find the
//! flow (open addressing, one cache line per flow, prefetched a stage ahead across the burst);
//! check its policy generation, its TCP state and flags and its expiry; update its last-seen
//! time and packet and byte counts. What it leaves out: everything the general path handles
//! (VLANs, IPv6, options, DNS, new flows, TCP state changes: a packet it does not decide is
//! dropped here and counted), and per-rule counters (a design could add a flow's counts to its
//! rule's when it ends and when counters are read).

/// IP protocol numbers.
const TCP: u8 = 6;
const UDP: u8 = 17;
/// TCP flags the established path leaves to the general path.
const SYN_FIN_RST: u8 = 0x02 | 0x01 | 0x04;

/// One flow: a cache line.
#[derive(Debug, Clone, Copy, Default)]
#[repr(align(64))]
struct Slot {
    /// The normalised key: the lower (address << 16 | port) end...
    lo: u64,
    /// ...and the higher, with the protocol in bits 48-55 and bit 63 set (0: a free slot).
    hi: u64,
    last_seen: u64,
    packets: u64,
    bytes: u64,
    generation: u32,
    established: bool,
}

const USED: u64 = 1 << 63;

/// A compact IPv4 flow table with the fast path over it.
#[derive(Debug)]
pub struct SolTable {
    slots: Vec<Slot>,
    mask: usize,
    seeds: [u64; 2],
    generation: u32,
    timeout: u64,
    /// Packets the fast path did not decide.
    pub missed: u64,
}

/// What stage 1 found out about a packet.
#[derive(Debug, Clone, Copy, Default)]
struct Staged {
    lo: u64,
    hi: u64,
    home: usize,
    len: u64,
    flags: u8,
    ok: bool,
}

#[inline(always)]
fn folded_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    let lo = u64::try_from(p & u128::from(u64::MAX)).unwrap_or(0);
    let hi = u64::try_from(p >> 64).unwrap_or(0);
    lo ^ hi
}

/// The normalised key of an IPv4 TCP or UDP packet the fast path takes, with its TCP flags.
#[inline(always)]
fn read(b: &[u8]) -> Option<(u64, u64, u8)> {
    let h: &[u8; 54] = b.get(..54)?.try_into().ok()?;
    if h[12] != 0x08 || h[13] != 0 || h[14] != 0x45 {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([h[16], h[17]]));
    let proto = h[23];
    let min = if proto == TCP { 40 } else { 28 };
    if total < min || total + 14 > b.len() || u16::from_be_bytes([h[20], h[21]]) & 0x3fff != 0 {
        return None;
    }
    if proto != TCP && proto != UDP {
        return None;
    }
    let src = u64::from(u32::from_be_bytes([h[26], h[27], h[28], h[29]]));
    let dst = u64::from(u32::from_be_bytes([h[30], h[31], h[32], h[33]]));
    let sport = u64::from(u16::from_be_bytes([h[34], h[35]]));
    let dport = u64::from(u16::from_be_bytes([h[36], h[37]]));
    let (a, z) = ((src << 16) | sport, (dst << 16) | dport);
    let (lo, hi) = if a <= z { (a, z) } else { (z, a) };
    let flags = if proto == TCP { h[47] } else { 0 };
    Some((lo, hi | (u64::from(proto) << 48) | USED, flags))
}

impl SolTable {
    /// A table with room for `flows` flows (at most half full), flows idle longer than
    /// `timeout` ns expired.
    pub fn new(flows: usize, timeout: u64, seed: u64) -> Self {
        let n = (flows * 2).next_power_of_two().max(64);
        SolTable {
            slots: vec![Slot::default(); n],
            mask: n - 1,
            seeds: [seed | 1, seed.rotate_left(29) ^ 0x9e37_79b9_7f4a_7c15],
            generation: 1,
            timeout,
            missed: 0,
        }
    }

    #[inline(always)]
    fn home(&self, lo: u64, hi: u64) -> usize {
        let h = folded_mul(lo ^ self.seeds[0], hi ^ self.seeds[1]);
        usize::try_from(h).unwrap_or(0) & self.mask
    }

    /// Learns the flow of `frame` as established at `now` (set-up, off the fast path).
    pub fn insert(&mut self, frame: &[u8], now: u64) -> bool {
        let Some((lo, hi, _)) = read(frame) else {
            return false;
        };
        let mut i = self.home(lo, hi);
        for _ in 0..self.slots.len() {
            let s = &mut self.slots[i];
            if s.hi == 0 || (s.lo == lo && s.hi == hi) {
                *s = Slot {
                    lo,
                    hi,
                    last_seen: now,
                    generation: self.generation,
                    established: true,
                    ..Slot::default()
                };
                return true;
            }
            i = (i + 1) & self.mask;
        }
        false
    }

    /// Decides a burst (at most 64 packets) at `now`: bit `i` of the result is set when
    /// packet `i` passes.
    #[inline(never)]
    pub fn burst<H: AsRef<[u8]>>(&mut self, pkts: &[H], now: u64) -> u64 {
        let mut staged = [Staged::default(); 64];
        let n = pkts.len().min(64);
        for (p, s) in pkts[..n].iter().zip(staged.iter_mut()) {
            let b = p.as_ref();
            if let Some((lo, hi, flags)) = read(b) {
                let home = self.home(lo, hi);
                cpu::prefetch(&self.slots[home]);
                *s = Staged {
                    lo,
                    hi,
                    home,
                    len: b.len() as u64,
                    flags,
                    ok: true,
                };
            }
        }
        let mut pass = 0u64;
        for (i, s) in staged[..n].iter().enumerate() {
            if s.ok && self.established(s, now) {
                pass |= 1 << i;
            } else {
                self.missed += 1;
            }
        }
        pass
    }

    #[inline(always)]
    fn established(&mut self, s: &Staged, now: u64) -> bool {
        let mut i = s.home;
        loop {
            let slot = &mut self.slots[i];
            if slot.hi == s.hi && slot.lo == s.lo {
                let tcp = (s.hi >> 48) & 0xff == u64::from(TCP);
                if slot.generation != self.generation
                    || now.saturating_sub(slot.last_seen) > self.timeout
                    || (tcp && (s.flags & SYN_FIN_RST != 0 || !slot.established))
                {
                    return false;
                }
                slot.last_seen = now;
                slot.packets += 1;
                slot.bytes += s.len;
                return true;
            }
            if slot.hi == 0 {
                return false;
            }
            i = (i + 1) & self.mask;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Feeder;

    fn frame(feeder: &mut Feeder) -> Vec<u8> {
        let mut f = vec![0u8; 60];
        feeder.write(&mut f);
        f
    }

    #[test]
    fn passes_known_flows_only_and_counts_them() {
        let mut t = SolTable::new(100, 1_000, 7);
        let mut feeder = Feeder::new(100);
        for _ in 0..100 {
            assert!(t.insert(&frame(&mut feeder), 0));
        }
        let known: Vec<Vec<u8>> = (0..32).map(|_| frame(&mut feeder)).collect();
        assert_eq!(t.burst(&known, 10), u64::from(u32::MAX));
        // Flows 100.. were never learned.
        let mut other = Feeder::new(200);
        let unknown: Vec<Vec<u8>> = (0..132).map(|_| frame(&mut other)).collect();
        assert_eq!(t.burst(&unknown[100..], 20), 0);
        assert_eq!(t.missed, 32);
        // Expired after the timeout; a SYN or a frame cut short is not decided.
        assert_eq!(t.burst(&known[..1], 1_021), 0);
        let mut syn = known[1].clone();
        syn[47] = 0x02;
        let mut short = known[2].clone();
        short[16..18].copy_from_slice(&100u16.to_be_bytes());
        assert_eq!(t.burst(&[syn, short], 30), 0);
        // The reply direction is the same flow.
        let mut reply = known[3].clone();
        let (src, dst) = (reply[26..30].to_vec(), reply[30..34].to_vec());
        reply[26..30].copy_from_slice(&dst);
        reply[30..34].copy_from_slice(&src);
        let (sport, dport) = (reply[34..36].to_vec(), reply[36..38].to_vec());
        reply[34..36].copy_from_slice(&dport);
        reply[36..38].copy_from_slice(&sport);
        assert_eq!(t.burst(&[reply], 40), 1);
        let total: u64 = t.slots.iter().map(|s| s.packets).sum();
        assert_eq!(total, 33);
    }
}
