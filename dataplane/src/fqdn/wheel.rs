//! The learner's expiry order: a hierarchical timing wheel (Varghese and Lauck, 1987; the
//! layout of the Linux kernel's and tokio's timers). Inserting, moving and removing a timer
//! cost O(1) whatever the number of timers. [`Wheel::due`] costs O(levels) per occupied slot it
//! passes, plus each timer's moves down the levels (at most one per level over its life,
//! amortised), plus the timers of the current tick, which it looks through at every call
//! (those due within the same ~1 ms).
//!
//! Time is counted in ticks of 2^20 ns (about 1 ms). Each of [`LEVELS`] levels has 64 slots;
//! a slot of level `l` spans 64^l ticks. A timer lies in the level of the highest 6-bit group
//! in which its tick differs from `elapsed` (the tick up to which the wheel has been
//! advanced), in that group's slot. Timers are nodes of a slab, linked into their slot's list
//! by index. Advancing takes the earliest occupied slot: a level-0 slot holds timers of one
//! tick, all due; a higher slot's timers are put again into lower levels. The tick `now` is
//! in is looked through timer by timer, so that a timer is due exactly when its time (in ns)
//! is at most `now`, never a tick early or late.
//!
//! Invariant (checked by the tests against a sorted reference): a timer of level `l` shares
//! the 6-bit groups above `l` with `elapsed`, and its group `l` is larger (at level 0: larger
//! or equal). So the lowest occupied level holds the earliest timers, and a slot's start is
//! found from `elapsed` alone.

/// Levels: 8 x 6 bits of ticks cover 2^48 ticks (a `u64` of ns has 2^44).
pub const LEVELS: usize = 8;
const SLOT_BITS: u32 = 6;
const SLOTS: usize = 1 << SLOT_BITS;
/// A tick is 2^20 ns.
const TICK_SHIFT: u32 = 20;
const NIL: u32 = u32::MAX;
/// Timers per slab chunk (small under Miri, so that its tests cross chunks cheaply).
const CHUNK: usize = if cfg!(miri) { 64 } else { 4096 };

/// A timer (a slab node).
#[derive(Debug, Clone)]
struct Node<T> {
    /// When it is due (ns).
    at: u64,
    prev: u32,
    next: u32,
    /// `level * 64 + slot` of the list it is in.
    slot: u16,
    /// `None`: a free node.
    value: Option<T>,
}

/// Timers carrying a `T` each (see the module documentation).
#[derive(Debug, Clone)]
pub struct Wheel<T> {
    /// The timers, in chunks of [`CHUNK`] (timer `id` is node `id % CHUNK` of chunk
    /// `id / CHUNK`).
    nodes: Vec<Vec<Node<T>>>,
    free: Vec<u32>,
    heads: [[u32; SLOTS]; LEVELS],
    /// Bit `s` of `occupied[l]`: slot `s` of level `l` has timers.
    occupied: [u64; LEVELS],
    /// Every tick before this one has been advanced through.
    elapsed: u64,
    len: usize,
}

impl<T> Default for Wheel<T> {
    fn default() -> Self {
        Wheel {
            nodes: Vec::new(),
            free: Vec::new(),
            heads: [[NIL; SLOTS]; LEVELS],
            occupied: [0; LEVELS],
            elapsed: 0,
            len: 0,
        }
    }
}

impl<T: Copy> Wheel<T> {
    /// Timers set.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no timer is set.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Sets a timer due at `at` (ns) carrying `value`; returns its id.
    pub fn insert(&mut self, at: u64, value: T) -> u32 {
        let node = Node {
            at,
            prev: NIL,
            next: NIL,
            slot: 0,
            value: Some(value),
        };
        let id = match self.free.pop() {
            Some(id) => {
                if let Some(n) = self.node_mut(id) {
                    *n = node;
                }
                id
            }
            None => {
                // A new chunk when the last is full: growing never moves the timers (a
                // doubling vector would copy them all at once, stalling the control thread
                // for milliseconds at a million timers).
                if self.nodes.last().is_none_or(|c| c.len() == CHUNK) {
                    self.nodes.push(Vec::with_capacity(CHUNK));
                }
                let chunks = self.nodes.len();
                let Some(last) = self.nodes.last_mut() else {
                    return NIL;
                };
                last.push(node);
                u32::try_from((chunks - 1) * CHUNK + last.len() - 1).unwrap_or(NIL)
            }
        };
        self.len += 1;
        self.link(id);
        id
    }

    /// Moves timer `id` to `at`.
    pub fn set(&mut self, id: u32, at: u64) {
        if self.get(id).is_none() {
            return;
        }
        self.unlink(id);
        if let Some(n) = self.node_mut(id) {
            n.at = at;
        }
        self.link(id);
    }

    /// Removes timer `id`; returns what it carried.
    pub fn remove(&mut self, id: u32) -> Option<T> {
        self.get(id)?;
        self.unlink(id);
        self.release(id)
    }

    /// When timer `id` is due and what it carries.
    pub fn get(&self, id: u32) -> Option<(u64, T)> {
        let n = self.node(id)?;
        n.value.map(|v| (n.at, v))
    }

    /// Removes every timer due at `now` or earlier (ns), appending what they carried to `out`
    /// in the order of their ticks.
    pub fn due(&mut self, now: u64, out: &mut Vec<T>) {
        let now_tick = now >> TICK_SHIFT;
        while let Some((level, slot, start)) = self.next_slot() {
            if start > now_tick {
                break;
            }
            if level == 0 && start == now_tick {
                // The tick `now` is in: only the timers due by `now` go.
                let mut id = self.heads[0][slot];
                while let Some(n) = self.node(id) {
                    let (next, at) = (n.next, n.at);
                    if at <= now {
                        self.unlink(id);
                        out.extend(self.release(id));
                    }
                    id = next;
                }
                break;
            }
            self.elapsed = start;
            let mut id = std::mem::replace(&mut self.heads[level][slot], NIL);
            self.occupied[level] &= !(1 << slot);
            while let Some(next) = self.node(id).map(|n| n.next) {
                if level == 0 {
                    out.extend(self.release(id));
                } else {
                    self.link(id); // into a lower level: it is due within this slot
                }
                id = next;
            }
        }
        self.elapsed = self.elapsed.max(now_tick);
    }

    fn node(&self, id: u32) -> Option<&Node<T>> {
        let id = id as usize;
        self.nodes.get(id / CHUNK)?.get(id % CHUNK)
    }

    fn node_mut(&mut self, id: u32) -> Option<&mut Node<T>> {
        let id = id as usize;
        self.nodes.get_mut(id / CHUNK)?.get_mut(id % CHUNK)
    }

    /// Frees node `id` (already unlinked).
    fn release(&mut self, id: u32) -> Option<T> {
        let v = self.node_mut(id)?.value.take()?;
        self.free.push(id);
        self.len -= 1;
        Some(v)
    }

    /// The earliest occupied slot: (level, slot, its first tick). A timer never lies before
    /// `elapsed` in its level (it shares the higher groups of `elapsed` and is not earlier), so
    /// the lowest occupied slot of the lowest occupied level is the earliest, in the current
    /// turn of that level.
    fn next_slot(&self) -> Option<(usize, usize, u64)> {
        let (level, &bits) = self
            .occupied
            .iter()
            .enumerate()
            .find(|(_, bits)| **bits != 0)?;
        let shift = SLOT_BITS * u32::try_from(level).ok()?;
        let slot = bits.trailing_zeros();
        let level_span = 1u64.checked_shl(shift + SLOT_BITS).unwrap_or(0);
        let start = (self.elapsed & !level_span.wrapping_sub(1)) + (u64::from(slot) << shift);
        Some((level, slot as usize, start))
    }

    /// Puts node `id` (unlinked) in the slot its time falls in.
    fn link(&mut self, id: u32) {
        let Some(at) = self.node(id).map(|n| n.at) else {
            return;
        };
        let tick = (at >> TICK_SHIFT).max(self.elapsed);
        let masked = (tick ^ self.elapsed) | (SLOTS as u64 - 1);
        let significant = 63 - masked.leading_zeros();
        let level = ((significant / SLOT_BITS) as usize).min(LEVELS - 1);
        let slot = ((tick >> (SLOT_BITS as usize * level)) & (SLOTS as u64 - 1)) as usize;
        let head = std::mem::replace(&mut self.heads[level][slot], id);
        self.occupied[level] |= 1 << slot;
        if let Some(h) = self.node_mut(head) {
            h.prev = id;
        }
        if let Some(n) = self.node_mut(id) {
            n.prev = NIL;
            n.next = head;
            n.slot = u16::try_from(level * SLOTS + slot).unwrap_or(0);
        }
    }

    /// Takes node `id` out of its slot's list.
    fn unlink(&mut self, id: u32) {
        let Some(n) = self.node(id) else {
            return;
        };
        let (prev, next, slot) = (n.prev, n.next, usize::from(n.slot));
        let (level, slot) = (slot / SLOTS, slot % SLOTS);
        match self.node_mut(prev) {
            Some(p) => p.next = next,
            None => {
                self.heads[level][slot] = next;
                if next == NIL {
                    self.occupied[level] &= !(1 << slot);
                }
            }
        }
        if let Some(nx) = self.node_mut(next) {
            nx.prev = prev;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    const MS: u64 = 1_000_000;

    fn due(w: &mut Wheel<u32>, now: u64) -> Vec<u32> {
        let mut out = Vec::new();
        w.due(now, &mut out);
        out.sort_unstable();
        out
    }

    #[test]
    fn timers_are_due_exactly_at_their_time() {
        let mut w = Wheel::default();
        let a = w.insert(10 * MS, 1);
        w.insert(10 * MS + 1, 2);
        w.insert(3_600_000 * MS, 3);
        assert_eq!(due(&mut w, 10 * MS - 1), Vec::<u32>::new());
        assert_eq!(due(&mut w, 10 * MS), [1]);
        assert_eq!(w.get(a), None);
        assert_eq!(due(&mut w, 10 * MS), Vec::<u32>::new());
        assert_eq!(due(&mut w, 10 * MS + 1), [2]);
        assert_eq!(due(&mut w, 3_600_000 * MS - 1), Vec::<u32>::new());
        assert_eq!(w.len(), 1);
        assert_eq!(due(&mut w, u64::MAX), [3]);
        assert!(w.is_empty());
    }

    #[test]
    fn moved_and_removed_timers() {
        let mut w = Wheel::default();
        let a = w.insert(5 * MS, 1);
        let b = w.insert(5 * MS, 2);
        w.set(a, 500 * MS);
        assert_eq!(w.remove(b), Some(2));
        assert_eq!(w.remove(b), None);
        assert_eq!(due(&mut w, 499 * MS), Vec::<u32>::new());
        assert_eq!(w.get(a), Some((500 * MS, 1)));
        // A timer set in the past is due at once.
        w.insert(MS, 3);
        assert_eq!(due(&mut w, 499 * MS), [3]);
        assert_eq!(due(&mut w, u64::MAX), [1]);
    }

    #[test]
    fn timers_across_slab_chunks() {
        let mut w = Wheel::default();
        let n = u32::try_from(2 * CHUNK + 7).unwrap();
        let ids: Vec<u32> = (0..n).map(|i| w.insert(u64::from(i) * MS, i)).collect();
        for &id in ids.iter().step_by(3) {
            w.remove(id);
        }
        // Freed timers are reused before the slab grows.
        let again = w.insert(0, n);
        assert_eq!(again, ids[ids.len() - 1 - (ids.len() - 1) % 3]);
        assert_eq!(w.get(ids[1]), Some((MS, 1)));
        let left: Vec<u32> = (0..n).filter(|i| i % 3 != 0).chain([n]).collect();
        let mut got = due(&mut w, u64::from(n) * MS);
        got.sort_unstable();
        assert_eq!(got, left);
        assert!(w.is_empty());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u64),
        Set(usize, u64),
        Remove(usize),
        Advance(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        // Offsets from the current time: within a tick, within a level, far, and huge.
        let offset = prop_oneof![0..(2 * MS), 0..(100_000 * MS), 0..(1u64 << 50), Just(0)];
        prop_oneof![
            4 => offset.clone().prop_map(Op::Insert),
            1 => (any::<usize>(), offset.clone()).prop_map(|(i, o)| Op::Set(i, o)),
            1 => any::<usize>().prop_map(Op::Remove),
            3 => offset.prop_map(Op::Advance),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// The wheel agrees with a sorted map of (time, id) under any sequence of operations.
        /// (Safe code only: not worth minutes under Miri, which runs the tests above.)
        #[test]
        #[cfg_attr(miri, ignore)]
        fn agrees_with_a_sorted_reference(ops in prop::collection::vec(op(), 1..200)) {
            let mut w = Wheel::default();
            let mut reference: BTreeMap<(u64, u32), u32> = BTreeMap::new();
            let mut live: Vec<u32> = Vec::new();
            let mut now = 0u64;
            let mut next_value = 0u32;
            for op in ops {
                match op {
                    Op::Insert(d) => {
                        // Times may lie in the past (set before an advance caught up).
                        let at = (now + d).saturating_sub(MS);
                        let id = w.insert(at, next_value);
                        reference.insert((at, id), next_value);
                        live.push(id);
                        next_value += 1;
                    }
                    Op::Set(i, d) if !live.is_empty() => {
                        let id = live[i % live.len()];
                        let (old, v) = w.get(id).unwrap();
                        reference.remove(&(old, id));
                        w.set(id, now + d);
                        reference.insert((now + d, id), v);
                    }
                    Op::Remove(i) if !live.is_empty() => {
                        let id = live.swap_remove(i % live.len());
                        let (at, v) = w.get(id).unwrap();
                        prop_assert_eq!(w.remove(id), Some(v));
                        reference.remove(&(at, id));
                    }
                    Op::Advance(d) => {
                        now = now.saturating_add(d);
                        let mut want: Vec<u32> = Vec::new();
                        while let Some((&(at, id), &v)) = reference.first_key_value() {
                            if at > now {
                                break;
                            }
                            reference.remove(&(at, id));
                            live.retain(|l| *l != id);
                            want.push(v);
                        }
                        want.sort_unstable();
                        prop_assert_eq!(due(&mut w, now), want);
                    }
                    Op::Set(..) | Op::Remove(_) => {}
                }
                prop_assert_eq!(w.len(), reference.len());
            }
            prop_assert_eq!(due(&mut w, u64::MAX).len(), reference.len());
        }
    }
}
