//! Elementary intervals of a key space (IPv4 or IPv6 addresses, ports), a row of vector offsets
//! per interval, and the bucketed search that maps a key to its interval's row.
//!
//! Invariants: the entries' bounds are sorted, free of duplicates and start with zero, so
//! interval `i` runs from bound `i` up to bound `i + 1` (the last one to the top of the key space)
//! and every key lies in exactly one interval. `starts[b]` counts the bounds whose bucket is below
//! `b`; `bucket` is non-decreasing in the key, so the entries of bucket `b` are
//! `entries[starts[b]..starts[b + 1]]` and a key of bucket `b` lies in an interval whose start is
//! among them or just before them.

use std::fmt::Debug;
use std::mem::size_of;

/// An unsigned integer key.
pub(super) trait Key: Copy + Ord + Debug {
    /// The bottom of the key space.
    const ZERO: Self;
    /// Width of the key space.
    const BITS: u32;

    /// `self + 1`, or `None` at the top of the key space.
    fn successor(self) -> Option<Self>;

    /// `(self - base) >> shift` (0 when `shift` is the width or more), saturated to `usize`;
    /// only called with `self >= base`.
    fn scaled(self, base: Self, shift: u32) -> usize;
}

macro_rules! unsigned_key {
    ($($t:ty),*) => {$(
        impl Key for $t {
            const ZERO: Self = 0;
            const BITS: u32 = <$t>::BITS;

            #[inline]
            fn successor(self) -> Option<Self> {
                self.checked_add(1)
            }

            #[inline]
            fn scaled(self, base: Self, shift: u32) -> usize {
                let offset = self.wrapping_sub(base).checked_shr(shift).unwrap_or(0);
                usize::try_from(offset).unwrap_or(usize::MAX)
            }
        }
    )*};
}

unsigned_key!(u16, u32, u128);

/// Vector offsets per interval: one per group of a class (a class has at most four groups).
pub(super) const SLOTS: usize = 4;

/// An interval's start and the vector offset of each group (slot) for it, side by side: the
/// search that finds the interval has the row in cache.
#[derive(Debug, Clone, Copy)]
struct Entry<K> {
    bound: K,
    row: [u32; SLOTS],
}

/// The elementary intervals cut by a set of boundaries, with a row per interval and a bucket
/// table over them.
///
/// The bucket of a key is a linear function of it, so clustered boundaries (every rule inside
/// `10.0.0.0/8`, say) still spread over the buckets: the span from the lowest non-zero boundary
/// to the highest is divided into up to 2^15 equal buckets. A lookup reads `starts` twice (one
/// cache line) and then searches the few entries of one bucket.
#[derive(Debug, Clone)]
pub(super) struct IntervalTable<K> {
    /// Sorted by `bound`, the first one zero.
    entries: Vec<Entry<K>>,
    base: K,
    shift: u32,
    last_bucket: usize,
    starts: Vec<u32>,
}

impl<K: Key> Default for IntervalTable<K> {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

impl<K: Key> IntervalTable<K> {
    /// The intervals cut by `bounds` (in any order, duplicates allowed; zero is added), with
    /// all-zero rows.
    pub(super) fn new(mut bounds: Vec<K>) -> Self {
        bounds.push(K::ZERO);
        bounds.sort_unstable();
        bounds.dedup();
        let base = bounds.get(1).copied().unwrap_or(K::ZERO);
        let top = bounds.last().copied().unwrap_or(K::ZERO);
        // About one bucket per two to four boundaries, at most 2^15: the table stays small
        // enough to be cached and a bucket's entries fit in a cache line or two when the
        // boundaries are spread evenly.
        let bucket_bits = bounds
            .len()
            .next_power_of_two()
            .trailing_zeros()
            .saturating_sub(1)
            .clamp(1, 15);
        let last_bucket = (1_usize << bucket_bits) - 1;
        let mut shift = 0;
        while shift < K::BITS && top.scaled(base, shift) >= last_bucket {
            shift += 1;
        }
        let mut table = Self {
            entries: bounds
                .into_iter()
                .map(|bound| Entry {
                    bound,
                    row: [0; SLOTS],
                })
                .collect(),
            base,
            shift,
            last_bucket,
            starts: vec![0; last_bucket + 2],
        };
        for i in 0..table.entries.len() {
            let bucket = table.bucket(table.entries[i].bound);
            table.starts[bucket + 1] += 1;
        }
        for b in 1..table.starts.len() {
            table.starts[b] += table.starts[b - 1];
        }
        table
    }

    /// The number of intervals.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The interval that starts at `bound`, one of the boundaries given to `new`; at build time.
    pub(super) fn starting_at(&self, bound: K) -> usize {
        self.entries.partition_point(|e| e.bound < bound)
    }

    /// The interval just past the inclusive range ending at `last`: `len()` when `last` is the
    /// top of the key space, else the interval starting at `last + 1`, which must be a boundary.
    pub(super) fn after(&self, last: K) -> usize {
        last.successor()
            .map_or(self.len(), |next| self.starting_at(next))
    }

    /// Sets `slot` of each interval's row: `column[i]` for interval `i`.
    pub(super) fn set_column(&mut self, slot: usize, column: &[u32]) {
        for (entry, &value) in self.entries.iter_mut().zip(column) {
            entry.row[slot] = value;
        }
    }

    /// The row of the interval holding `key`.
    #[inline]
    pub(super) fn find(&self, key: K) -> &[u32; SLOTS] {
        let bucket = self.bucket(key);
        let lo = self.starts[bucket] as usize;
        let hi = self.starts[bucket + 1] as usize;
        let within = self.entries[lo..hi].partition_point(|e| e.bound <= key);
        // The first bound is zero, so at least one is <= key.
        &self.entries[(lo + within).saturating_sub(1)].row
    }

    /// Approximate heap bytes.
    pub(super) fn memory_bytes(&self) -> usize {
        self.entries.capacity() * size_of::<Entry<K>>() + self.starts.capacity() * size_of::<u32>()
    }

    #[inline]
    fn bucket(&self, key: K) -> usize {
        if key < self.base {
            0
        } else {
            key.scaled(self.base, self.shift)
                .saturating_add(1)
                .min(self.last_bucket)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table whose row of interval `i` holds `i` in slot 0.
    fn numbered<K: Key>(bounds: Vec<K>) -> IntervalTable<K> {
        let mut table = IntervalTable::new(bounds);
        let column: Vec<u32> = (0..).take(table.len()).collect();
        table.set_column(0, &column);
        table
    }

    /// `find` agrees with a plain search over the boundaries.
    fn check<K: Key>(table: &IntervalTable<K>, keys: &[K]) {
        for &key in keys {
            let expected = table.entries.partition_point(|e| e.bound <= key) - 1;
            assert_eq!(table.find(key)[0] as usize, expected, "{key:?}");
        }
    }

    #[test]
    fn no_boundaries_is_one_interval() {
        let index = numbered::<u32>(Vec::new());
        assert_eq!(index.len(), 1);
        check(&index, &[0, 1, 77, u32::MAX]);
        assert_eq!(index.after(u32::MAX), 1);
    }

    #[test]
    fn finds_every_interval_of_a_small_set() {
        let index = numbered::<u16>(vec![80, 81, 443, 444, 8000, 8081, 80]);
        assert_eq!(index.len(), 7);
        assert_eq!(index.starting_at(80), 1);
        assert_eq!(index.after(80), 2);
        let mut keys: Vec<u16> = (0..=u16::MAX).step_by(97).collect();
        keys.extend([
            0,
            79,
            80,
            81,
            82,
            442,
            443,
            444,
            7999,
            8000,
            8080,
            8081,
            u16::MAX,
        ]);
        check(&index, &keys);
    }

    #[test]
    fn finds_intervals_of_clustered_and_spread_sets() {
        let clustered: Vec<u32> = (0..5000_u32).map(|i| 0x0a00_0000 + i * 256).collect();
        let index = numbered(clustered.clone());
        let mut keys: Vec<u32> = clustered.iter().flat_map(|&b| [b - 1, b, b + 1]).collect();
        keys.extend([0, 1, u32::MAX, 0x0aff_ffff, 0x0b00_0000]);
        check(&index, &keys);

        let spread: Vec<u128> = (1..3000_u128)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835))
            .collect();
        let index = numbered(spread.clone());
        let mut keys: Vec<u128> = spread
            .iter()
            .flat_map(|&b| [b.wrapping_sub(1), b, b.wrapping_add(1)])
            .collect();
        keys.extend([0, u128::MAX]);
        check(&index, &keys);
    }
}
