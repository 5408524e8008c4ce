//! The per-worker FQDN tables and how the control thread publishes changes to them.
//!
//! # Design
//!
//! Each worker reads its own [`FqdnMap`] (address -> [`IpEntry`]), a plain hash map that it holds
//! exclusively while it reads it: no lock, no atomic read-modify-write, nothing anybody else can
//! change under it. The control thread keeps, per worker, a second copy (the "spare") and the
//! log of changes the spare lacks. To publish, control applies the log to the spare and sends it
//! to the worker through the worker's message ring; the worker swaps it in at its quiescent
//! point (the loop boundary, where it holds no reference into its table) and sends its previous
//! copy back. That returned copy becomes the next spare. This is left-right with ownership
//! instead of pointers: at any moment each copy has exactly one owner, which the type system
//! checks, so a reader can never see a copy being changed, and nothing a reader may still use is
//! freed — a removed entry's memory goes when the last `Arc` to it goes, and the worker's
//! references are only given up at its quiescent point (or when a flow that kept its entry
//! ends).
//!
//! An update costs O(entries changed) per copy: the log holds only the changes. Every change is
//! numbered; a copy's `version` is the number of the last change it contains, and a worker
//! publishes the version of the copy it reads, which is how a held DNS answer knows when every
//! worker can see the addresses it taught.
//!
//! Entries are immutable once published. A changed address gets a new entry; flows that were
//! attributed to the old one keep it (and its names) alive for as long as they live.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::flow::addr_from_bits;

/// An address as the FQDN tables key it: 24 bytes, 8-aligned (a `u128` would make it 32 and
/// every table holding it a third larger).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpKey {
    /// The high and low halves of the address in 128-bit form (IPv4 mapped), as flow keys
    /// hold it; ordered as the 128-bit number.
    halves: [u64; 2],
    /// IPv6.
    v6: bool,
}

impl IpKey {
    /// The key of an address.
    pub fn new(ip: IpAddr) -> Self {
        let bits = crate::flow::addr_bits(ip);
        IpKey {
            halves: [
                u64::try_from(bits >> 64).unwrap_or(u64::MAX),
                u64::try_from(bits & u128::from(u64::MAX)).unwrap_or(u64::MAX),
            ],
            v6: ip.is_ipv6(),
        }
    }

    /// The address.
    pub fn ip(&self) -> IpAddr {
        let bits = (u128::from(self.halves[0]) << 64) | u128::from(self.halves[1]);
        addr_from_bits(bits, self.v6)
    }
}

/// An entry's names: almost always one, kept inside the entry.
pub type EntryNames = SmallVec<[Arc<str>; 1]>;
/// An entry's rules: usually a few, kept inside the entry (up to four).
pub type EntryRules = SmallVec<[u32; 4]>;

/// What a worker knows about one learned address. Immutable once published. Its names and
/// rules are inline in the common case: building one is one allocation, and a worker reading
/// it touches one block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpEntry {
    /// The names this address was learned for (and that match some rule), most recent first.
    pub names: EntryNames,
    /// When the last of its name bindings expires (data path clock, ns).
    pub expires: u64,
    /// The rules whose patterns match some of the names, sorted, under policy `generation`.
    pub rules: EntryRules,
    /// The policy generation `rules` was computed for.
    pub generation: u64,
}

/// The name that let an FQDN rule allow a flow, with the entry it came from. The flow keeps
/// the entry (and so the name) alive for as long as it lives, whatever the table does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribution {
    entry: Arc<IpEntry>,
    index: usize,
}

impl Attribution {
    /// The name `index` of `entry`, if there is one.
    pub fn new(entry: Arc<IpEntry>, index: usize) -> Option<Self> {
        (index < entry.names.len()).then_some(Attribution { entry, index })
    }

    /// The name.
    pub fn name(&self) -> &str {
        self.entry.names.get(self.index).map_or("", |n| n)
    }

    /// The entry the name came from.
    pub fn entry(&self) -> &Arc<IpEntry> {
        &self.entry
    }
}

/// A change to a table.
#[derive(Debug, Clone)]
pub enum Op {
    /// Add or replace the entry of an address.
    Put(IpKey, Arc<IpEntry>),
    /// Forget an address.
    Remove(IpKey),
}

impl Op {
    /// The address it changes.
    pub fn key(&self) -> &IpKey {
        match self {
            Op::Put(k, _) | Op::Remove(k) => k,
        }
    }
}

/// One worker's copy of the FQDN table.
#[derive(Debug, Default)]
pub struct FqdnMap {
    version: u64,
    map: HashMap<IpKey, Arc<IpEntry>, foldhash::quality::RandomState>,
}

impl FqdnMap {
    /// An empty copy with room for `capacity` addresses (allocated now, so that it never has
    /// to grow, and stall its writer, while the appliance runs).
    pub fn with_capacity(capacity: usize) -> Self {
        FqdnMap {
            version: 0,
            map: HashMap::with_capacity_and_hasher(capacity, Default::default()),
        }
    }

    /// The number of the last change this copy contains.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The entry of an address.
    #[inline]
    pub fn get(&self, key: &IpKey) -> Option<&Arc<IpEntry>> {
        self.map.get(key)
    }

    /// Addresses in the table.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every address and its entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&IpKey, &Arc<IpEntry>)> {
        self.map.iter()
    }

    /// Applies a change that stays in the log (its entry shared).
    fn apply(&mut self, op: &Op) {
        self.apply_owned(op.clone());
    }

    fn apply_owned(&mut self, op: Op) {
        match op {
            Op::Put(k, e) => {
                self.map.insert(k, e);
            }
            Op::Remove(k) => {
                self.map.remove(&k);
            }
        }
    }
}

/// Changes kept before a stalled worker's copy is rebuilt from scratch instead.
pub const MAX_LOG: usize = 1 << 22;

/// Control's side of one worker's pair of copies.
#[derive(Debug)]
pub struct Replica {
    /// The copy control holds, when the worker has given it back.
    spare: Option<Box<FqdnMap>>,
    /// Changes not yet in the spare, oldest first, numbered.
    log: VecDeque<(u64, Op)>,
    /// The number of the last change recorded.
    latest: u64,
    /// The version of the copy last sent to the worker.
    sent: u64,
    /// Copies still to be rebuilt from a full listing since the log overflowed: both (the
    /// log lost changes that either may lack), then the other one.
    resync: u8,
    /// Changes kept at most.
    max_log: usize,
}

impl Replica {
    /// A replica with two empty copies; the second goes to the worker.
    pub fn new() -> (Replica, Box<FqdnMap>) {
        Self::with_max_log(MAX_LOG, 0)
    }

    /// A replica whose copies have room for `capacity` addresses.
    pub fn with_capacity(capacity: usize) -> (Replica, Box<FqdnMap>) {
        Self::with_max_log(MAX_LOG, capacity)
    }

    /// [`Replica::with_capacity`] keeping at most `max_log` changes for a worker that has not
    /// handed its copy back.
    pub fn with_max_log(max_log: usize, capacity: usize) -> (Replica, Box<FqdnMap>) {
        (
            Replica {
                spare: Some(Box::new(FqdnMap::with_capacity(capacity))),
                log: VecDeque::new(),
                latest: 0,
                sent: 0,
                resync: 0,
                max_log,
            },
            Box::new(FqdnMap::with_capacity(capacity)),
        )
    }

    /// The version last sent to the worker.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Records a change (numbered `version`, shared by all replicas of one commit).
    pub fn record(&mut self, version: u64, op: Op) {
        self.latest = self.latest.max(version);
        if self.resync == 2 {
            return; // both copies will be rebuilt: nothing needs the change logged
        }
        if self.log.len() >= self.max_log {
            // The worker has not handed its copy back for a very long time: stop logging and
            // rebuild both copies from the full table instead, one at each publication (the
            // first one rebuilt needs the log again from then on).
            self.log.clear();
            self.resync = 2;
            return;
        }
        self.log.push_back((version, op));
    }

    /// Whether the next copy must be rebuilt from a full listing (the log overflowed).
    pub fn needs_full(&self) -> bool {
        self.resync > 0
    }

    /// Whether the worker's copy lacks changes.
    pub fn behind(&self) -> bool {
        self.sent < self.latest
    }

    /// Whether control holds the spare (the worker gave its previous copy back).
    pub fn has_spare(&self) -> bool {
        self.spare.is_some()
    }

    /// The next copy for the worker, if it lacks changes and control holds the spare. `full`
    /// lists every entry, used only after the log overflowed.
    pub fn publish<F>(&mut self, full: F) -> Option<Box<FqdnMap>>
    where
        F: FnOnce() -> Vec<(IpKey, Arc<IpEntry>)>,
    {
        if !self.behind() {
            return None;
        }
        let mut copy = self.spare.take()?;
        if self.resync > 0 {
            copy.map.clear();
            copy.map.extend(full());
            self.resync -= 1;
        } else {
            let have = copy.version;
            // Look every address up first: the lookups do not depend on each other, so the CPU
            // overlaps their cache misses, and the changes that follow find their lines cached.
            for (_, op) in self.log.iter().filter(|(v, _)| *v > have) {
                std::hint::black_box(copy.map.get(op.key()));
            }
            // Changes the worker's copy has already are applied here for the last time: they
            // leave the log, their entries moved, not shared (no reference count to touch).
            while self.log.front().is_some_and(|(v, _)| *v <= self.sent) {
                if let Some((v, op)) = self.log.pop_front() {
                    if v > have {
                        copy.apply_owned(op);
                    }
                }
            }
            for (_, op) in &self.log {
                copy.apply(op);
            }
        }
        copy.version = self.latest;
        self.sent = self.latest;
        Some(copy)
    }

    /// The worker gave back the copy it no longer reads: it becomes the spare, and changes it
    /// already contains leave the log.
    pub fn returned(&mut self, copy: Box<FqdnMap>) {
        let v = copy.version;
        while self.log.front().is_some_and(|(n, _)| *n <= v) {
            self.log.pop_front();
        }
        self.spare = Some(copy);
    }

    /// Changes waiting in the log (for tests and stats).
    pub fn log_len(&self) -> usize {
        self.log.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32) -> IpKey {
        IpKey::new(IpAddr::from(n.to_be_bytes()))
    }

    #[test]
    fn keys_round_trip_and_order_as_addresses() {
        let addrs: Vec<IpAddr> = [
            "0.0.0.0",
            "10.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "2001:db8::1",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        for a in &addrs {
            assert_eq!(IpKey::new(*a).ip(), *a);
        }
        assert_eq!(std::mem::size_of::<IpKey>(), 24);
        let bits = |a: &IpAddr| (crate::flow::addr_bits(*a), a.is_ipv6());
        for x in &addrs {
            for y in &addrs {
                assert_eq!(IpKey::new(*x).cmp(&IpKey::new(*y)), bits(x).cmp(&bits(y)));
            }
        }
    }

    fn entry(name: &str) -> Arc<IpEntry> {
        Arc::new(IpEntry {
            names: vec![Arc::from(name)].into(),
            expires: 100,
            rules: vec![0].into(),
            generation: 1,
        })
    }

    /// The worker's side of the protocol: swap in what control sends, give back the old copy.
    fn swap(current: &mut Box<FqdnMap>, new: Box<FqdnMap>) -> Box<FqdnMap> {
        std::mem::replace(current, new)
    }

    #[test]
    fn both_copies_converge_and_the_log_empties() {
        let (mut r, mut worker) = Replica::new();
        r.record(1, Op::Put(key(1), entry("a")));
        r.record(2, Op::Put(key(2), entry("b")));
        let copy = r.publish(Vec::new).expect("the spare is here and behind");
        assert_eq!(copy.version(), 2);
        assert!(
            r.publish(Vec::new).is_none(),
            "the spare is at the worker now"
        );
        let old = swap(&mut worker, copy);
        assert_eq!(worker.len(), 2);
        r.returned(old);
        assert_eq!(r.log_len(), 2, "the returned copy still lacks both changes");

        r.record(3, Op::Remove(key(1)));
        let copy = r.publish(Vec::new).unwrap();
        assert_eq!((copy.version(), copy.len()), (3, 1));
        assert!(copy.get(&key(2)).is_some() && copy.get(&key(1)).is_none());
        let old = swap(&mut worker, copy);
        r.returned(old);
        assert_eq!(
            r.log_len(),
            1,
            "only change 3 is missing from the spare (at version 2)"
        );
        r.record(4, Op::Put(key(5), entry("e")));
        let copy = r.publish(Vec::new).unwrap();
        assert_eq!(copy.len(), 2);
        let old = swap(&mut worker, copy);
        r.returned(old);
        assert_eq!(r.log_len(), 1);
    }

    #[test]
    fn a_removed_entry_lives_while_someone_holds_it() {
        let (mut r, mut worker) = Replica::new();
        let e = entry("kept");
        r.record(1, Op::Put(key(1), Arc::clone(&e)));
        let old = swap(&mut worker, r.publish(Vec::new).unwrap());
        r.returned(old);
        // A flow keeps the entry it was attributed to.
        let held = Arc::clone(worker.get(&key(1)).unwrap());
        r.record(2, Op::Remove(key(1)));
        let old = swap(&mut worker, r.publish(Vec::new).unwrap());
        r.returned(old);
        let old = swap(&mut worker, r.publish(Vec::new).unwrap_or_default());
        drop(old);
        drop(e);
        assert!(worker.get(&key(1)).is_none());
        assert_eq!(
            &*held.names[0], "kept",
            "still whole for the flow that holds it"
        );
    }

    #[test]
    fn an_overflowing_log_falls_back_to_a_full_rebuild() {
        let (mut r, _worker) = Replica::with_max_log(4, 0);
        for i in 1..=5 {
            r.record(i, Op::Put(key(u32::try_from(i).unwrap()), entry("x")));
        }
        assert!(r.needs_full());
        assert_eq!(r.log_len(), 0);
        let copy = r.publish(|| vec![(key(9), entry("x"))]).unwrap();
        assert_eq!((copy.len(), copy.version()), (1, 5));
        assert!(copy.get(&key(9)).is_some());
    }

    #[test]
    fn after_an_overflow_both_copies_are_rebuilt() {
        let (mut r, mut worker) = Replica::with_max_log(4, 0);
        let table = |n: u32| move || (1..=n).map(|i| (key(i), entry("x"))).collect();
        r.record(1, Op::Put(key(1), entry("x")));
        // Sent, but the worker stalls before swapping it in.
        let sent = r.publish(table(1)).unwrap();
        for i in 2..=7 {
            r.record(i, Op::Put(key(u32::try_from(i).unwrap()), entry("x")));
        }
        assert!(r.needs_full());
        // The worker wakes: swaps in version 1, gives back version 0.
        let old = swap(&mut worker, sent);
        r.returned(old);
        let old = swap(&mut worker, r.publish(table(7)).unwrap());
        assert_eq!(worker.len(), 7);
        r.returned(old);
        r.record(8, Op::Put(key(8), entry("x")));
        // The copy given back (version 1) lacks changes the overflow dropped from the log: it
        // is rebuilt too, then both copies follow the log again.
        assert!(r.needs_full());
        let old = swap(&mut worker, r.publish(table(8)).unwrap());
        assert_eq!((worker.len(), worker.version()), (8, 8));
        r.returned(old);
        assert!(!r.needs_full());
        r.record(9, Op::Remove(key(1)));
        let old = swap(&mut worker, r.publish(table(0)).unwrap());
        assert_eq!((worker.len(), worker.version()), (7, 9));
        r.returned(old);
        let copy = r.publish(table(0)).unwrap_or_else(|| {
            r.record(10, Op::Remove(key(2)));
            r.publish(table(0)).unwrap()
        });
        assert_eq!((copy.len(), copy.version()), (6, 10));
        assert_eq!(r.log_len(), 1, "change 10 only: change 9 is in both copies");
    }
}
