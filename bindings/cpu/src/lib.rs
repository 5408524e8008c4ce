//! CPU helpers for the packet path: prefetching the memory a later stage of a burst will read
//! (DPDK's l3fwd lesson) and comparing a cache line of signatures at once. Results never depend
//! on the CPU; only speed does.
//!
//! They live under `bindings/` because the intrinsics are `unsafe fn`s; this crate does not link
//! DPDK, so the pure pipeline that uses it still runs under Miri and fuzzers.

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

/// One bit per element of `values` equal to `needle` (bit `i` for element `i`).
#[inline(always)]
pub fn eq_mask_u32x8(values: &[u32; 8], needle: u32) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: SSE2 is part of the x86_64 baseline, so every CPU this runs on has it.
        unsafe { sse2_eq_mask(values, needle) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        portable_eq_mask(values, needle)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
#[inline]
fn sse2_eq_mask(values: &[u32; 8], needle: u32) -> u32 {
    use core::arch::x86_64::{
        __m128i, _mm_castsi128_ps, _mm_cmpeq_epi32, _mm_loadu_si128, _mm_movemask_ps,
        _mm_set1_epi32,
    };
    let p = values.as_ptr().cast::<__m128i>();
    // SAFETY: `values` is 32 readable bytes; this unaligned load reads the first 16.
    let a = unsafe { _mm_loadu_si128(p) };
    // SAFETY: and this one the last 16.
    let b = unsafe { _mm_loadu_si128(p.wrapping_add(1)) };
    let k = _mm_set1_epi32(i32::from_ne_bytes(needle.to_ne_bytes()));
    let ma = _mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(a, k)));
    let mb = _mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(b, k)));
    u32::from_ne_bytes((ma | (mb << 4)).to_ne_bytes())
}

/// The reference the SIMD version is tested against.
pub fn portable_eq_mask(values: &[u32; 8], needle: u32) -> u32 {
    let mut m = 0;
    for (i, &v) in values.iter().enumerate() {
        m |= u32::from(v == needle) << i;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefetch_is_harmless() {
        let v = [1u8; 100];
        prefetch(&v[..]);
        prefetch(&v[99]);
        prefetch("text");
        assert_eq!(v[99], 1);
    }

    #[test]
    fn eq_mask_matches_the_reference() {
        let mut x = 0x1234_5678_u32;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            // Few distinct values, so that matches are common.
            let v: [u32; 8] = std::array::from_fn(|i| (x >> (i * 3)) & 3);
            let needle = x >> 30;
            assert_eq!(eq_mask_u32x8(&v, needle), portable_eq_mask(&v, needle));
        }
        assert_eq!(eq_mask_u32x8(&[u32::MAX; 8], u32::MAX), 0xff);
        assert_eq!(eq_mask_u32x8(&[0, 0, 0, 0, 0, 0, 0, 7], 7), 0x80);
    }
}
