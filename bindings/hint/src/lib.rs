//! CPU hints for the packet path: prefetching the memory a later stage of a burst will read
//! (DPDK's l3fwd lesson). A hint changes timing only, never results.
//!
//! It lives under `bindings/` because the intrinsic is an `unsafe fn`; it does not link DPDK, so
//! the pure pipeline that uses it still runs under Miri and fuzzers.

/// Asks the CPU to bring the cache line holding the start of `value` into all cache levels.
#[inline(always)]
pub fn prefetch<T: ?Sized>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        let p = std::ptr::from_ref(value).cast::<i8>();
        // SAFETY: prefetch is a hint: it never faults and reads nothing architecturally; `p`
        // comes from a live reference anyway.
        unsafe { core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

#[cfg(test)]
mod tests {
    #[test]
    fn prefetch_is_harmless() {
        let v = [1u8; 100];
        super::prefetch(&v[..]);
        super::prefetch(&v[99]);
        super::prefetch("text");
        assert_eq!(v[99], 1);
    }
}
