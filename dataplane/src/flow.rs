//! A worker's flow table: preallocated, written by its worker alone.
//!
//! Flows live in a slab of `capacity` slots allocated (and touched) at start; a `HashTable` of
//! slot indices finds them by key. The key is normalised so that both directions of a flow find
//! the same slot. Expiry is lazy and amortised: a lookup treats an idle-too-long flow as absent,
//! and every burst sweeps a few slots (no stop-the-world scan). When every slot is taken, new
//! flows are refused (`flow_table_full`), never evicting a live one.

use std::hash::Hash;
use std::net::IpAddr;

use crate::fqdn::Attribution;
use crate::fqdn::snoop::{FlowDns, MAX_TCP_BUFFERED, Queries, StreamError};
use crate::side::Side;

/// A flow's identity, the same for both directions.
#[derive(Clone, Copy, Eq, Default)]
pub struct FlowKey {
    /// The lower (address, port) end, as an IPv6 or IPv4-mapped address.
    pub a: u128,
    /// The higher end.
    pub b: u128,
    /// The rest, packed into one word (one compare, and the hash's third input as it is):
    /// `a`'s port (or ICMP echo identifier) in bits 0-15, `b`'s in 16-31, the IP protocol in
    /// 32-39, IPv6 in bit 40 (distinguishing real IPv4-mapped IPv6 addresses from IPv4).
    tail: u64,
}

/// Maps an address to the 128-bit form keys use (IPv4 as `::ffff:a.b.c.d`).
#[inline]
pub fn addr_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => v4_bits(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The 128-bit form of an IPv4 address given as a number.
#[inline(always)]
pub fn v4_bits(v4: u32) -> u128 {
    (0xffff_u128 << 32) | u128::from(v4)
}

/// Back from a key's 128-bit form.
#[inline]
pub fn addr_from_bits(bits: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(std::net::Ipv6Addr::from(bits))
    } else {
        IpAddr::V4(std::net::Ipv4Addr::from(
            u32::try_from(bits & 0xffff_ffff).unwrap_or(0),
        ))
    }
}

impl FlowKey {
    /// The key of a packet `src:sport -> dst:dport`, and whether the packet's source is the
    /// key's `a` end.
    #[inline]
    pub fn new(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, proto: u8) -> (FlowKey, bool) {
        Self::from_bits(
            addr_bits(src),
            addr_bits(dst),
            src.is_ipv6(),
            sport,
            dport,
            proto,
        )
    }

    /// [`FlowKey::new`] from addresses in their 128-bit form.
    #[inline(always)]
    pub fn from_bits(
        s: u128,
        d: u128,
        v6: bool,
        sport: u16,
        dport: u16,
        proto: u8,
    ) -> (FlowKey, bool) {
        let rest = (u64::from(proto) << 32) | (u64::from(v6) << 40);
        if (s, sport) <= (d, dport) {
            let tail = rest | u64::from(sport) | (u64::from(dport) << 16);
            (FlowKey { a: s, b: d, tail }, true)
        } else {
            let tail = rest | u64::from(dport) | (u64::from(sport) << 16);
            (FlowKey { a: d, b: s, tail }, false)
        }
    }

    /// [`FlowKey::new`] of an IPv4 packet, from its addresses as numbers: the same key, with
    /// the ends ordered by one 64-bit compare instead of two 128-bit ones.
    #[inline(always)]
    pub fn from_v4(src: u32, dst: u32, sport: u16, dport: u16, proto: u8) -> (FlowKey, bool) {
        // (address, port) as one number orders like the pair; no branch on the direction.
        let s = (u64::from(src) << 16) | u64::from(sport);
        let d = (u64::from(dst) << 16) | u64::from(dport);
        let fwd = s <= d;
        let (lo, hi) = if fwd { (s, d) } else { (d, s) };
        let addr = |end: u64| v4_bits(u32::try_from(end >> 16).unwrap_or(0));
        let tail = (u64::from(proto) << 32) | (lo & 0xffff) | ((hi & 0xffff) << 16);
        (
            FlowKey {
                a: addr(lo),
                b: addr(hi),
                tail,
            },
            fwd,
        )
    }

    /// The `a` end's port (or ICMP echo identifier).
    #[inline]
    pub fn pa(&self) -> u16 {
        let t = self.tail.to_le_bytes();
        u16::from_le_bytes([t[0], t[1]])
    }

    /// The `b` end's port (or ICMP echo identifier).
    #[inline]
    pub fn pb(&self) -> u16 {
        let t = self.tail.to_le_bytes();
        u16::from_le_bytes([t[2], t[3]])
    }

    /// The IP protocol.
    #[inline]
    pub fn proto(&self) -> u8 {
        self.tail.to_le_bytes()[4]
    }

    /// Whether the flow is IPv6.
    #[inline]
    pub fn v6(&self) -> bool {
        self.tail & (1 << 40) != 0
    }

    /// The `a` end's address.
    pub fn addr_a(&self) -> IpAddr {
        addr_from_bits(self.a, self.v6())
    }

    /// The `b` end's address.
    pub fn addr_b(&self) -> IpAddr {
        addr_from_bits(self.b, self.v6())
    }
}

impl PartialEq for FlowKey {
    /// Every bit equal, as the derived comparison, but without a branch per field: flows
    /// found by hash almost always match, so the compare is all the work.
    #[inline(always)]
    fn eq(&self, other: &FlowKey) -> bool {
        ((self.a ^ other.a) | (self.b ^ other.b) | u128::from(self.tail ^ other.tail)) == 0
    }
}

impl Hash for FlowKey {
    fn hash<S: std::hash::Hasher>(&self, state: &mut S) {
        (self.a, self.b, self.tail).hash(state);
    }
}

impl std::fmt::Debug for FlowKey {
    /// The fields as they were before they were packed (for test failures and logs).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowKey")
            .field("a", &self.addr_a())
            .field("b", &self.addr_b())
            .field("pa", &self.pa())
            .field("pb", &self.pb())
            .field("proto", &self.proto())
            .field("v6", &self.v6())
            .finish()
    }
}

/// Where a flow is in its life. Only TCP flows move between states; others stay `Active`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowState {
    /// TCP: the initiator's SYN was seen.
    SynSent,
    /// TCP: the responder's SYN-ACK was seen.
    SynReceived,
    /// TCP: the handshake completed (or the flow was picked up mid-stream).
    Established,
    /// TCP: one side sent FIN.
    Closing,
    /// TCP: both sides sent FIN.
    TimeWait,
    /// TCP: a RST was seen.
    Closed,
    /// UDP, ICMP and other protocols.
    Active,
}

impl FlowState {
    /// Name shown in flow listings.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowState::SynSent => "syn_sent",
            FlowState::SynReceived => "syn_received",
            FlowState::Established => "established",
            FlowState::Closing => "closing",
            FlowState::TimeWait => "time_wait",
            FlowState::Closed => "closed",
            FlowState::Active => "active",
        }
    }
}

/// How long a flow may stay idle, by protocol and state (nanoseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP established.
    pub tcp_established: u64,
    /// TCP opening and closing.
    pub tcp_transitory: u64,
    /// UDP and protocols without state.
    pub udp: u64,
    /// ICMP echo.
    pub icmp: u64,
    /// How long a fragment waits for the rest of its datagram.
    pub fragment: u64,
}

impl Timeouts {
    /// From the `[flows]` section.
    pub fn from_config(f: &config::Flows) -> Self {
        let ns = |d: std::time::Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Timeouts {
            tcp_established: ns(f.tcp_established_timeout),
            tcp_transitory: ns(f.tcp_transitory_timeout),
            udp: ns(f.udp_timeout),
            icmp: ns(f.icmp_timeout),
            fragment: ns(f.fragment_timeout),
        }
    }

    /// [`Timeouts::of`] for the only flows the established fast path decides: an established
    /// TCP flow (`tcp`) or a UDP one, without `of`'s match on every protocol.
    #[inline(always)]
    pub fn of_fast(&self, tcp: bool) -> u64 {
        if tcp { self.tcp_established } else { self.udp }
    }

    /// The idle timeout of a flow in `state` with protocol `proto`.
    #[inline]
    pub fn of(&self, proto: u8, state: FlowState) -> u64 {
        match (proto, state) {
            (crate::packet::proto::TCP, FlowState::Established) => self.tcp_established,
            (crate::packet::proto::TCP, _) => self.tcp_transitory,
            (crate::packet::proto::ICMP | crate::packet::proto::ICMPV6, _) => self.icmp,
            _ => self.udp,
        }
    }
}

/// The rule (or default) that decided a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecidedBy {
    /// The rule at this index of the policy.
    Rule(u32),
    /// No rule matched; the default action.
    Default,
}

impl DecidedBy {
    /// The index of the deciding rule (`None`: the default action).
    #[inline]
    pub fn rule(self) -> Option<u32> {
        match self {
            DecidedBy::Rule(i) => Some(i),
            DecidedBy::Default => None,
        }
    }
}

/// One flow. Its fields are written by the owning worker only. The fields an established
/// packet touches come first, in the slot's first cache line.
#[derive(Debug, Clone)]
#[repr(C, align(64))]
pub struct Flow {
    /// Identity.
    pub key: FlowKey,
    /// Last packet time (ns).
    pub last_seen: u64,
    /// Packets in both directions.
    pub packets: u64,
    /// Bytes in both directions (frame lengths).
    pub bytes: u64,
    /// Policy generation of the decision.
    pub generation: u64,
    /// What decided it.
    pub decided_by: DecidedBy,
    /// State.
    pub state: FlowState,
    /// FIN seen from `a` (bit 0) and from `b` (bit 1).
    pub fins: u8,
    /// Whether the initiator is the key's `a` end.
    pub init_is_a: bool,
    /// The port the initiator's first packet entered on.
    pub init_side: Side,
    /// ICMP type of the first packet (for re-deciding ICMP flows).
    pub icmp_type: u8,
    in_use: bool,
    /// First packet time (ns).
    pub created: u64,
    /// The name that let an FQDN rule allow the flow.
    pub fqdn: Option<Attribution>,
    /// DNS snooping state, on DNS flows.
    pub dns: Option<Box<FlowDns>>,
}

impl Flow {
    fn vacant() -> Flow {
        Flow {
            key: FlowKey::default(),
            init_is_a: true,
            init_side: Side::Inside,
            icmp_type: 0,
            state: FlowState::Active,
            fins: 0,
            decided_by: DecidedBy::Default,
            generation: 0,
            created: 0,
            last_seen: 0,
            packets: 0,
            bytes: 0,
            in_use: false,
            fqdn: None,
            dns: None,
        }
    }

    /// The initiator's (source) address and port.
    pub fn initiator(&self) -> (IpAddr, u16) {
        if self.init_is_a {
            (self.key.addr_a(), self.key.pa())
        } else {
            (self.key.addr_b(), self.key.pb())
        }
    }

    /// The responder's (destination) address and port.
    pub fn responder(&self) -> (IpAddr, u16) {
        if self.init_is_a {
            (self.key.addr_b(), self.key.pb())
        } else {
            (self.key.addr_a(), self.key.pa())
        }
    }

    /// Whether the flow has been idle longer than its timeout at `now`.
    #[inline]
    pub fn expired(&self, now: u64, t: &Timeouts) -> bool {
        now.saturating_sub(self.last_seen) > t.of(self.key.proto(), self.state)
    }
}

/// Index of a flow's slot.
pub type FlowId = u32;

#[inline(always)]
fn lo64(x: u128) -> u64 {
    u64::try_from(x & u128::from(u64::MAX)).unwrap_or(0)
}

#[inline(always)]
fn hi64(x: u128) -> u64 {
    u64::try_from(x >> 64).unwrap_or(0)
}

/// The folded multiply of wyhash and foldhash: the 128-bit product's halves xored.
#[inline(always)]
fn folded_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    lo64(p) ^ hi64(p)
}

/// A keyed hash of flow keys: three folded multiplies over the key's five words, with secret
/// per-table seeds so that an attacker can not choose flows that collide.
#[derive(Debug, Clone, Copy)]
struct KeyHasher {
    seeds: [u64; 4],
    /// The second multiply's operand for IPv4 keys, whose addresses' high halves are 0: the
    /// first multiply over them is the same for every such key.
    v4_y: u64,
}

impl KeyHasher {
    fn new(seed: u64) -> Self {
        // splitmix64: four well-mixed seeds from one.
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let seeds = [next(), next(), next(), next()];
        KeyHasher {
            seeds,
            v4_y: folded_mul(seeds[2], seeds[3]) ^ seeds[0].rotate_left(23),
        }
    }

    /// [`KeyHasher::hash`] of an IPv4 key (both addresses IPv4-mapped, so their high 64 bits
    /// are 0): the same value, with one multiply fewer.
    #[inline(always)]
    fn hash_v4(&self, k: &FlowKey) -> u64 {
        let [s0, s1, ..] = self.seeds;
        let x = folded_mul(lo64(k.a) ^ s0, lo64(k.b) ^ s1);
        folded_mul(x ^ k.tail, self.v4_y)
    }

    #[inline(always)]
    fn hash(&self, k: &FlowKey) -> u64 {
        let [s0, s1, s2, s3] = self.seeds;
        let meta = k.tail;
        let x = folded_mul(lo64(k.a) ^ s0, lo64(k.b) ^ s1);
        let y = folded_mul(hi64(k.a) ^ s2, hi64(k.b) ^ s3);
        folded_mul(x ^ meta, y ^ s0.rotate_left(23))
    }
}

/// Entries per index bucket: one 64-byte cache line of signatures and slot ids.
const BUCKET_ENTRIES: usize = 8;
/// A signature of 0 marks a free entry.
const EMPTY: u32 = 0;

/// One cache line of the index: signatures (high hash bits, never 0) and the slots they name.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(64))]
struct Bucket {
    sig: [u32; BUCKET_ENTRIES],
    id: [FlowId; BUCKET_ENTRIES],
}

/// The flow table.
///
/// The index is an array of buckets sized for at most 50% load. A key lives in its home bucket
/// (`hash & mask`) or, if that was full when it was inserted, in a following one; every bucket
/// it passed counts it as displaced (a byte per bucket beside the index), so lookups know to
/// continue, and stop continuing once the entries that passed are gone. Lookups read only a
/// bit per bucket (set while its count is not zero): a bit array small enough to stay in
/// cache, where the counts, touched only when an entry is displaced or removed, would not.
/// At 50% load overflow is rare, so a lookup reads one index line and one flow slot, both of
/// which [`FlowTable::prefetch`] can bring in ahead of time.
pub struct FlowTable {
    slots: Vec<Flow>,
    free: Vec<FlowId>,
    buckets: Vec<Bucket>,
    /// Per bucket: entries living past it whose home is at or before it (saturated at
    /// `u8::MAX`, which then stays: lookups always continue past that bucket).
    displaced: Vec<u8>,
    /// Per bucket, a bit: its `displaced` count is not zero.
    overflowed: Vec<u64>,
    mask: usize,
    hasher: KeyHasher,
    sweep_cursor: usize,
    len: usize,
    /// Buffer capacity the flows' DNS-over-TCP streams hold together (bounded by
    /// [`crate::fqdn::snoop::MAX_TCP_BUFFERED`]).
    dns_buffered: usize,
}

impl std::fmt::Debug for FlowTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowTable")
            .field("len", &self.len)
            .field("capacity", &self.slots.len())
            .finish()
    }
}

/// A flow named by its slot and key, for tables that may outlive it ([`FlowTable::flow_ref`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowRef {
    id: FlowId,
    key: FlowKey,
}

#[cfg(test)]
impl FlowRef {
    /// A reference to slot `id` with an empty key (for tables' own tests).
    pub(crate) fn of_slot(id: FlowId) -> FlowRef {
        FlowRef {
            id,
            key: FlowKey::default(),
        }
    }
}

/// Why a flow could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableFull;

/// One bit per entry of `sigs` equal to `sig` (one vector compare).
#[inline(always)]
fn sig_hits(sigs: &[u32; BUCKET_ENTRIES], sig: u32) -> u32 {
    cpu::eq_mask_u32x8(sigs, sig)
}

#[inline]
fn signature(hash: u64) -> u32 {
    // The high half, never EMPTY.
    u32::try_from(hash >> 32).unwrap_or(u32::MAX) | 1
}

impl FlowTable {
    /// A table of `capacity` flows, all memory allocated and touched now. `seed` keys the hash
    /// (random in the appliance so that flows an attacker chooses do not collide on purpose;
    /// fixed in replay for reproducibility).
    pub fn new(capacity: usize, seed: u64) -> FlowTable {
        let capacity = capacity.clamp(1, 1 << 26);
        let slots = vec![Flow::vacant(); capacity];
        // Slots are handed out from the front: pop() takes the lowest free index.
        let free: Vec<FlowId> = (0..capacity)
            .rev()
            .map(|i| FlowId::try_from(i).unwrap_or(FlowId::MAX))
            .collect();
        let nbuckets = (capacity * 2).div_ceil(BUCKET_ENTRIES).next_power_of_two();
        FlowTable {
            slots,
            free,
            buckets: vec![Bucket::default(); nbuckets],
            displaced: vec![0; nbuckets],
            overflowed: vec![0; nbuckets.div_ceil(64)],
            mask: nbuckets - 1,
            hasher: KeyHasher::new(seed),
            sweep_cursor: 0,
            len: 0,
            dns_buffered: 0,
        }
    }

    /// Bytes the table holds (slots, index, free list), all allocated at creation.
    pub fn memory_bytes(&self) -> usize {
        self.slots.len() * std::mem::size_of::<Flow>()
            + self.free.capacity() * std::mem::size_of::<FlowId>()
            + self.buckets.len() * std::mem::size_of::<Bucket>()
            + self.displaced.len()
            + self.overflowed.len() * 8
    }

    /// Flows in the table (expired ones not yet swept included).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is no flow.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The most flows the table holds.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// The hash of a key (seeded).
    #[inline]
    pub fn hash(&self, key: &FlowKey) -> u64 {
        self.hasher.hash(key)
    }

    #[inline]
    fn home(&self, hash: u64) -> usize {
        // The low bits pick the bucket (the signature uses the high ones).
        usize::try_from(hash).unwrap_or(usize::MAX) & self.mask
    }

    #[inline]
    fn is_overflowed(&self, b: usize) -> bool {
        self.overflowed[b / 64] & (1 << (b % 64)) != 0
    }

    /// [`FlowTable::hash`] of a key made by [`FlowKey::from_v4`] (the same value, cheaper).
    #[inline(always)]
    pub fn hash_v4(&self, key: &FlowKey) -> u64 {
        debug_assert!(!key.v6() && hi64(key.a) == 0 && hi64(key.b) == 0);
        self.hasher.hash_v4(key)
    }

    /// First stage of a burst lookup: bring the key's index line into the cache.
    #[inline]
    pub fn prefetch_index(&self, hash: u64) {
        cpu::prefetch(&self.buckets[self.home(hash)]);
    }

    /// Second stage: bring in the flow slot the index names for this hash, or, when the index
    /// names none (a new flow, most likely), the free slot it would get: the `new`-th next one.
    /// Returns the slot the index names (a hint for [`FlowTable::lookup_hinted`]) and whether
    /// it predicted a new flow.
    #[inline]
    pub fn prefetch_flow(&self, hash: u64, new: usize) -> (Option<FlowId>, bool) {
        let b = &self.buckets[self.home(hash)];
        let sig = signature(hash);
        let hits = sig_hits(&b.sig, sig);
        let (slot, hint) = if hits != 0 {
            let id = b.id[hits.trailing_zeros() as usize];
            (id, Some(id))
        } else {
            match self.free.len().checked_sub(new + 1) {
                Some(i) => (self.free[i], None),
                None => return (None, true),
            }
        };
        let Some(slot) = self.slots.get(slot as usize) else {
            return (None, hint.is_none());
        };
        cpu::prefetch(slot);
        cpu::prefetch(&slot.bytes);
        (hint, hint.is_none())
    }

    /// Where `key` (with `hash`) is: (bucket, entry).
    #[inline(always)]
    fn find(&self, key: &FlowKey, hash: u64) -> Option<(usize, usize)> {
        let sig = signature(hash);
        let mut b = self.home(hash);
        for _ in 0..self.buckets.len() {
            let bucket = &self.buckets[b];
            let mut hits = sig_hits(&bucket.sig, sig);
            while hits != 0 {
                let e = hits.trailing_zeros() as usize;
                hits &= hits - 1;
                if self.slots[bucket.id[e] as usize].key == *key {
                    return Some((b, e));
                }
            }
            if !self.is_overflowed(b) {
                return None;
            }
            b = (b + 1) & self.mask;
        }
        None
    }

    /// The live flow with this key, if any (an expired one is removed and reported absent).
    #[inline]
    pub fn lookup(&mut self, key: &FlowKey, now: u64, t: &Timeouts) -> Option<FlowId> {
        let hash = self.hash(key);
        self.lookup_hashed(key, hash, now, t)
    }

    /// [`FlowTable::lookup`] with the key's hash already computed.
    #[inline(always)]
    pub fn lookup_hashed(
        &mut self,
        key: &FlowKey,
        hash: u64,
        now: u64,
        t: &Timeouts,
    ) -> Option<FlowId> {
        let (b, e) = self.find(key, hash)?;
        self.unless_expired(self.buckets[b].id[e], now, t)
    }

    /// `Some(id)`, or `None` when the flow in slot `id` has been idle too long (it is removed):
    /// what [`FlowTable::lookup`] would have answered for its key.
    #[inline(always)]
    pub fn unless_expired(&mut self, id: FlowId, now: u64, t: &Timeouts) -> Option<FlowId> {
        if self.slots[id as usize].expired(now, t) {
            self.remove(id);
            return None;
        }
        Some(id)
    }

    /// [`FlowTable::lookup_hashed`], trying first the slot `hint` that the index named for the
    /// hash a moment ago ([`FlowTable::prefetch_flow`]): when that slot holds the key, the
    /// index is not searched again. A stale hint (the slot since freed or reused) only costs
    /// the search.
    #[inline(always)]
    pub fn lookup_hinted(
        &mut self,
        key: &FlowKey,
        hash: u64,
        hint: Option<FlowId>,
        now: u64,
        t: &Timeouts,
    ) -> Option<FlowId> {
        match hint {
            Some(id) if self.holds(id, key) => self.unless_expired(id, now, t),
            _ => self.lookup_hashed(key, hash, now, t),
        }
    }

    /// The slot holding `key` (with `hash`), trying slot `hint` first (any value: one out of
    /// range is simply not it), whether or not the flow has expired: for the established fast
    /// path, which checks expiry with the timeout it already knows applies
    /// ([`FlowTable::lookup_hinted`] is the lookup that treats expired flows as absent).
    #[inline(always)]
    pub fn find_hinted(&self, key: &FlowKey, hash: u64, hint: FlowId) -> Option<FlowId> {
        if self.holds(hint, key) {
            return Some(hint);
        }
        self.find(key, hash).map(|(b, e)| self.buckets[b].id[e])
    }

    /// The flow in slot `id`.
    #[inline]
    pub fn get(&self, id: FlowId) -> &Flow {
        &self.slots[id as usize]
    }

    /// The flow in slot `id`, writable.
    #[inline]
    pub fn get_mut(&mut self, id: FlowId) -> &mut Flow {
        &mut self.slots[id as usize]
    }

    /// Feeds DNS-over-TCP payload to flow `id`'s streams ([`FlowDns::tcp`]) within what the
    /// worker's budget ([`MAX_TCP_BUFFERED`]) leaves, and keeps count of what they buffer.
    pub fn dns_tcp(
        &mut self,
        id: FlowId,
        to_server: bool,
        seq: u32,
        payload: &[u8],
        each: impl FnMut(&mut Queries, &[u8]),
    ) -> Result<(), StreamError> {
        let dns = self.slots[id as usize].dns.get_or_insert_with(Box::default);
        let before = dns.buffered();
        let others = self.dns_buffered.saturating_sub(before);
        let r = dns.tcp(
            to_server,
            seq,
            payload,
            MAX_TCP_BUFFERED.saturating_sub(others),
            each,
        );
        self.dns_buffered = others + dns.buffered();
        r
    }

    /// Buffer capacity the flows' DNS-over-TCP streams hold together.
    pub fn dns_buffered(&self) -> usize {
        self.dns_buffered
    }

    /// The flow in slot `id`, named so that it can be found again later only if it still
    /// lives (its slot may be given to another flow once it ends).
    pub fn flow_ref(&self, id: FlowId) -> FlowRef {
        FlowRef {
            id,
            key: self.slots[id as usize].key,
        }
    }

    /// The slot of the flow `r` names, if that flow still lives.
    pub fn resolve(&self, r: FlowRef) -> Option<FlowId> {
        self.holds(r.id, &r.key).then_some(r.id)
    }

    /// Whether slot `id` holds a live flow with `key`.
    #[inline(always)]
    fn holds(&self, id: FlowId, key: &FlowKey) -> bool {
        self.slots
            .get(id as usize)
            .is_some_and(|s| s.in_use && s.key == *key)
    }

    /// Creates a flow for `key` (which must not be in the table).
    pub fn insert(
        &mut self,
        key: FlowKey,
        init_is_a: bool,
        init_side: Side,
        state: FlowState,
        now: u64,
    ) -> Result<FlowId, TableFull> {
        let hash = self.hash(&key);
        self.insert_hashed(key, hash, init_is_a, init_side, state, now)
    }

    /// [`FlowTable::insert`] with the key's hash already computed.
    #[inline]
    pub fn insert_hashed(
        &mut self,
        key: FlowKey,
        hash: u64,
        init_is_a: bool,
        init_side: Side,
        state: FlowState,
        now: u64,
    ) -> Result<FlowId, TableFull> {
        let Some(&id) = self.free.last() else {
            return Err(TableFull);
        };
        let sig = signature(hash);
        let mut b = self.home(hash);
        // There is always a free entry: the index has room for twice the slots.
        let e = loop {
            let free = sig_hits(&self.buckets[b].sig, EMPTY);
            if free != 0 {
                break free.trailing_zeros() as usize;
            }
            let d = &mut self.displaced[b];
            *d = d.saturating_add(1);
            self.overflowed[b / 64] |= 1 << (b % 64);
            b = (b + 1) & self.mask;
        };
        self.free.pop();
        self.buckets[b].sig[e] = sig;
        self.buckets[b].id[e] = id;
        self.slots[id as usize] = Flow {
            key,
            init_is_a,
            init_side,
            state,
            created: now,
            last_seen: now,
            in_use: true,
            ..Flow::vacant()
        };
        self.len += 1;
        Ok(id)
    }

    /// Removes the flow in slot `id`.
    pub fn remove(&mut self, id: FlowId) {
        let slot = &self.slots[id as usize];
        if !slot.in_use {
            return;
        }
        // The hash is computed again rather than kept in the slot: 8 bytes more would make
        // every slot three cache lines instead of two.
        let key = slot.key;
        let hash = self.hash(&key);
        if let Some((b, e)) = self.find(&key, hash) {
            self.buckets[b].sig[e] = EMPTY;
            // The buckets it passed no longer have it past them.
            let mut p = self.home(hash);
            while p != b {
                let d = &mut self.displaced[p];
                if *d != u8::MAX {
                    *d -= 1;
                    if *d == 0 {
                        self.overflowed[p / 64] &= !(1 << (p % 64));
                    }
                }
                p = (p + 1) & self.mask;
            }
        }
        let slot = &mut self.slots[id as usize];
        slot.in_use = false;
        // What the flow held goes with it (an FQDN entry it kept alive, DNS buffers).
        slot.fqdn = None;
        if let Some(dns) = slot.dns.take() {
            self.dns_buffered = self.dns_buffered.saturating_sub(dns.buffered());
        }
        self.free.push(id);
        self.len -= 1;
    }

    /// Examines up to `budget` slots from where the last sweep stopped and removes expired
    /// flows; returns how many it removed. Called once per burst, it bounds the work per burst
    /// while eventually visiting every slot.
    pub fn sweep(&mut self, now: u64, t: &Timeouts, budget: usize) -> usize {
        let n = self.slots.len();
        let mut removed = 0;
        for _ in 0..budget.min(n) {
            let i = self.sweep_cursor;
            self.sweep_cursor = if i + 1 == n { 0 } else { i + 1 };
            let s = &self.slots[i];
            if s.in_use && s.expired(now, t) {
                self.remove(FlowId::try_from(i).unwrap_or(FlowId::MAX));
                removed += 1;
            }
        }
        removed
    }

    /// Live flows among slots `from..`, at most `max` of them, with the slot to continue from
    /// (`None` at the end): bounded chunks for listings.
    pub fn chunk(&self, from: usize, max: usize) -> (Vec<(FlowId, &Flow)>, Option<usize>) {
        self.chunk_bounded(from, max, usize::MAX)
    }

    /// [`FlowTable::chunk`] examining at most `max_slots` slots (a sparse table must not make
    /// one chunk long).
    pub fn chunk_bounded(
        &self,
        from: usize,
        max: usize,
        max_slots: usize,
    ) -> (Vec<(FlowId, &Flow)>, Option<usize>) {
        let mut out = Vec::with_capacity(max.min(self.len));
        let mut i = from;
        let stop = from.saturating_add(max_slots).min(self.slots.len());
        while i < stop && out.len() < max {
            if self.slots[i].in_use {
                out.push((FlowId::try_from(i).unwrap_or(FlowId::MAX), &self.slots[i]));
            }
            i += 1;
        }
        (out, (i < self.slots.len()).then_some(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timeouts = Timeouts {
        tcp_established: 100,
        tcp_transitory: 10,
        udp: 50,
        icmp: 20,
        fragment: 5,
    };

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_fast_paths_timeouts_are_those_of_its_flows() {
        use crate::packet::proto::{TCP, UDP};
        assert_eq!(T.of_fast(true), T.of(TCP, FlowState::Established));
        assert_eq!(T.of_fast(false), T.of(UDP, FlowState::Active));
    }

    #[test]
    fn keys_differing_in_any_bit_differ() {
        let (k, _) = FlowKey::new(ip("2001:db8::9"), ip("2001:db8::1"), 65535, 53, 17);
        assert_eq!(k, k.clone());
        for bit in 0..128 {
            let flip = 1u128 << bit;
            assert_ne!(k, FlowKey { a: k.a ^ flip, ..k }, "a bit {bit}");
            assert_ne!(k, FlowKey { b: k.b ^ flip, ..k }, "b bit {bit}");
        }
        for bit in 0..64 {
            let tail = k.tail ^ (1 << bit);
            assert_ne!(k, FlowKey { tail, ..k }, "tail bit {bit}");
        }
    }

    #[test]
    fn both_directions_share_a_key() {
        let (k1, fwd) = FlowKey::new(ip("10.0.0.2"), ip("192.0.2.10"), 5000, 443, 6);
        let (k2, rev) = FlowKey::new(ip("192.0.2.10"), ip("10.0.0.2"), 443, 5000, 6);
        assert_eq!(k1, k2);
        assert_ne!(fwd, rev);
        assert_eq!(k1.addr_a(), ip("10.0.0.2"));
        let (k6, _) = FlowKey::new(ip("::ffff:10.0.0.2"), ip("::ffff:192.0.2.10"), 5000, 443, 6);
        assert_ne!(k1, k6, "IPv6 with mapped addresses is not IPv4");
        assert_eq!(k6.addr_a(), ip("::ffff:10.0.0.2"));
        // The packed fields read back (ports in key order, the lower end first).
        assert_eq!(
            (k1.pa(), k1.pb(), k1.proto(), k1.v6()),
            (5000, 443, 6, false)
        );
        let (k3, fwd) = FlowKey::new(ip("2001:db8::9"), ip("2001:db8::1"), 65535, 53, 17);
        assert!(!fwd);
        assert_eq!(
            (k3.pa(), k3.pb(), k3.proto(), k3.v6()),
            (53, 65535, 17, true)
        );
        assert_eq!(
            (k3.addr_a(), k3.addr_b()),
            (ip("2001:db8::1"), ip("2001:db8::9"))
        );
        assert_eq!(
            format!("{k1:?}"),
            "FlowKey { a: 10.0.0.2, b: 192.0.2.10, pa: 5000, pb: 443, proto: 6, v6: false }"
        );
    }

    #[test]
    fn displaced_entries_stop_lookups_going_on_once_removed() {
        let mut t = FlowTable::new(64, 3);
        // Twenty keys with the same home bucket: twelve of them live past it.
        let home = |t: &FlowTable, k: &FlowKey| t.home(t.hash(k));
        let (k0, _) = FlowKey::new(ip("10.0.0.1"), ip("192.0.2.1"), 1, 1, 17);
        let target = home(&t, &k0);
        let keys: Vec<FlowKey> = (0..u16::MAX)
            .map(|p| FlowKey::new(ip("10.0.0.1"), ip("192.0.2.1"), p, 1, 17).0)
            .filter(|k| home(&t, k) == target)
            .take(20)
            .collect();
        assert_eq!(keys.len(), 20);
        let ids: Vec<FlowId> = keys
            .iter()
            .map(|k| {
                t.insert(*k, true, Side::Inside, FlowState::Active, 0)
                    .unwrap()
            })
            .collect();
        assert!(t.displaced.iter().any(|&d| d > 0));
        // Removing one from the home bucket keeps every displaced key reachable.
        t.remove(ids[0]);
        for (k, id) in keys.iter().zip(&ids).skip(1) {
            assert_eq!(t.lookup(k, 1, &T), Some(*id));
        }
        for id in &ids[1..] {
            t.remove(*id);
        }
        assert!(t.is_empty());
        assert!(
            t.displaced.iter().all(|&d| d == 0) && t.overflowed.iter().all(|&w| w == 0),
            "an empty table has nothing displaced"
        );
    }

    #[test]
    fn a_flow_ref_finds_its_flow_and_not_the_next_in_its_slot() {
        let mut t = FlowTable::new(4, 1);
        let (k, a) = FlowKey::new(ip("10.0.0.2"), ip("192.0.2.10"), 5000, 53, 17);
        let id = t.insert(k, a, Side::Inside, FlowState::Active, 0).unwrap();
        let r = t.flow_ref(id);
        assert_eq!(t.resolve(r), Some(id));
        t.remove(id);
        assert_eq!(t.resolve(r), None);
        let (k2, a2) = FlowKey::new(ip("10.0.0.3"), ip("192.0.2.10"), 5000, 53, 17);
        let id2 = t
            .insert(k2, a2, Side::Inside, FlowState::Active, 0)
            .unwrap();
        assert_eq!(id2, id, "the slot is reused");
        assert_eq!(t.resolve(r), None, "another flow lives there now");
    }

    #[test]
    fn a_slot_is_two_cache_lines() {
        // The memory per flow the README quotes: 128 bytes a slot.
        assert_eq!(std::mem::size_of::<Flow>(), 128);
    }

    #[test]
    fn insert_lookup_expire_remove() {
        let mut t = FlowTable::new(2, 1);
        let (k, a) = FlowKey::new(ip("10.0.0.2"), ip("192.0.2.10"), 5000, 53, 17);
        let id = t.insert(k, a, Side::Inside, FlowState::Active, 0).unwrap();
        assert_eq!(t.lookup(&k, 50, &T), Some(id));
        assert_eq!(t.get(id).initiator(), (ip("10.0.0.2"), 5000));
        assert_eq!(t.get(id).responder(), (ip("192.0.2.10"), 53));
        assert_eq!(
            t.lookup(&k, 51, &T),
            None,
            "idle longer than the UDP timeout"
        );
        assert!(t.is_empty());

        let (k2, _) = FlowKey::new(ip("10.0.0.3"), ip("192.0.2.10"), 1, 2, 17);
        let (k3, _) = FlowKey::new(ip("10.0.0.4"), ip("192.0.2.10"), 1, 2, 17);
        let (k4, _) = FlowKey::new(ip("10.0.0.5"), ip("192.0.2.10"), 1, 2, 17);
        t.insert(k, true, Side::Inside, FlowState::Active, 100)
            .unwrap();
        t.insert(k2, true, Side::Inside, FlowState::Active, 100)
            .unwrap();
        assert_eq!(
            t.insert(k3, true, Side::Inside, FlowState::Active, 100),
            Err(TableFull)
        );
        assert_eq!(t.sweep(200, &T, 10), 2, "both idle past 50 ns");
        assert!(
            t.insert(k4, true, Side::Inside, FlowState::Active, 200)
                .is_ok()
        );
    }

    #[test]
    fn a_stale_hint_only_costs_the_search() {
        let mut t = FlowTable::new(4, 1);
        let (k, _) = FlowKey::new(ip("10.0.0.2"), ip("192.0.2.10"), 5000, 53, 17);
        let (k2, _) = FlowKey::new(ip("10.0.0.3"), ip("192.0.2.10"), 5000, 53, 17);
        let id = t
            .insert(k, true, Side::Inside, FlowState::Active, 0)
            .unwrap();
        let (hint, new) = t.prefetch_flow(t.hash(&k), 0);
        assert_eq!((hint, new), (Some(id), false));
        assert_eq!(t.lookup_hinted(&k, t.hash(&k), hint, 1, &T), Some(id));
        // The slot freed, then reused by another flow: the hint names a slot that no longer
        // holds the key.
        t.remove(id);
        assert_eq!(t.lookup_hinted(&k, t.hash(&k), hint, 1, &T), None);
        let id2 = t
            .insert(k2, true, Side::Inside, FlowState::Active, 1)
            .unwrap();
        assert_eq!(id2, id, "the freed slot is reused");
        assert_eq!(t.lookup_hinted(&k, t.hash(&k), hint, 1, &T), None);
        // A wrong hint for a key that is elsewhere: found by the search.
        let id3 = t
            .insert(k, true, Side::Inside, FlowState::Active, 1)
            .unwrap();
        assert_eq!(t.lookup_hinted(&k, t.hash(&k), Some(id2), 1, &T), Some(id3));
        // A hinted flow idle too long is removed like any other.
        assert_eq!(t.lookup_hinted(&k, t.hash(&k), Some(id3), 100, &T), None);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn sweep_is_bounded_and_wraps() {
        let mut t = FlowTable::new(8, 1);
        for i in 0..8u16 {
            let (k, _) = FlowKey::new(ip("10.0.0.2"), ip("192.0.2.10"), i, 80, 17);
            t.insert(k, true, Side::Inside, FlowState::Active, 0)
                .unwrap();
        }
        assert_eq!(t.sweep(1000, &T, 3), 3);
        assert_eq!(t.sweep(1000, &T, 3), 3);
        assert_eq!(t.sweep(1000, &T, 3), 2);
        assert!(t.is_empty());
    }

    #[test]
    fn chunks_cover_every_flow_once() {
        let mut t = FlowTable::new(100, 7);
        for i in 0..60u16 {
            let (k, _) = FlowKey::new(ip("10.0.0.2"), ip("192.0.2.10"), i, 80, 6);
            t.insert(k, true, Side::Inside, FlowState::Established, 0)
                .unwrap();
        }
        let (mut seen, mut next) = (0, Some(0));
        while let Some(from) = next {
            let (c, n) = t.chunk(from, 7);
            assert!(c.len() <= 7);
            seen += c.len();
            next = n;
        }
        assert_eq!(seen, 60);
    }
}
