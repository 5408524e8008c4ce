//! Counters written by one thread and read by any.
//!
//! A worker owns its counters: it is their only writer, so an increment is a relaxed load and a
//! relaxed store (two plain moves on x86), never an atomic read-modify-write, and no cache line
//! bounces between cores. Readers (metrics scrape, `stats`) load them whenever they like and sum
//! across workers.

use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonically increasing counter with a single writer.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Only the owning thread may call this (single writer).
    #[inline(always)]
    pub fn add(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    /// Adds one.
    #[inline(always)]
    pub fn inc(&self) {
        self.add(1);
    }

    /// The current value.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down, with a single writer (e.g. live flows).
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    /// Sets the value. Only the owning thread may call this.
    #[inline(always)]
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }

    /// The current value.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Upper bounds of the latency histogram buckets, in nanoseconds (beyond the last: +Inf). Fine
/// where a DNS hold should be (microseconds), coarse up to its timeout range.
pub const LATENCY_BUCKETS_NS: [u64; 20] = [
    1_000,
    2_000,
    5_000,
    10_000,
    20_000,
    30_000,
    50_000,
    75_000,
    100_000,
    200_000,
    500_000,
    1_000_000,
    2_000_000,
    5_000_000,
    10_000_000,
    20_000_000,
    50_000_000,
    100_000_000,
    200_000_000,
    1_000_000_000,
];

/// A latency histogram with one writer (per-bucket counts, not cumulative; sum in ns).
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations per bucket of [`LATENCY_BUCKETS_NS`], then the overflow bucket.
    pub buckets: [Counter; LATENCY_BUCKETS_NS.len() + 1],
    /// Sum of observations (ns).
    pub sum_ns: Counter,
    /// Number of observations.
    pub count: Counter,
}

impl Histogram {
    /// Records one observation of `ns` nanoseconds. Only the owning thread may call this.
    pub fn observe(&self, ns: u64) {
        let i = LATENCY_BUCKETS_NS.partition_point(|&b| b < ns);
        self.buckets[i].inc();
        self.sum_ns.add(ns);
        self.count.inc();
    }

    /// The value below which `permille`/1000 of the observations fall, as the upper bound of
    /// the bucket it lands in (`u64::MAX` for the overflow bucket, 0 with no observation).
    pub fn quantile_bound(&self, permille: u64) -> u64 {
        quantile_bound_of(&self.counts(), permille)
    }

    /// The bucket counts as they are now (subtract two snapshots for an interval's).
    pub fn counts(&self) -> [u64; LATENCY_BUCKETS_NS.len() + 1] {
        std::array::from_fn(|i| self.buckets[i].get())
    }
}

/// [`Histogram::quantile_bound`] of bucket counts (as [`Histogram::counts`] gives them).
pub fn quantile_bound_of(counts: &[u64], permille: u64) -> u64 {
    let n: u64 = counts.iter().sum();
    if n == 0 {
        return 0;
    }
    let target = n.saturating_mul(permille.min(1000)).div_ceil(1000).max(1);
    let mut seen = 0;
    for (i, c) in counts.iter().enumerate() {
        seen += c;
        if seen >= target {
            return LATENCY_BUCKETS_NS.get(i).copied().unwrap_or(u64::MAX);
        }
    }
    u64::MAX
}
