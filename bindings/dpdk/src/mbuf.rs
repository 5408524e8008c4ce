//! Packet buffer pools, owned mbufs and bursts of them.
//!
//! Invariants: an [`Mbuf`] is the only owner of its `rte_mbuf` (reference count 1, never cloned),
//! so its data may be borrowed mutably; it is freed to its pool when dropped. Pools are never
//! freed before the EAL (they are leaked on creation and borrow the [`Eal`]), so no mbuf can
//! outlive its pool.

use std::ffi::CString;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ptr::NonNull;

use rte_sys::{rte_mbuf, rte_mempool};

use crate::eal::Eal;
use crate::error::{Error, Result};

/// A pool of packet buffers (`rte_pktmbuf_pool_create`).
#[derive(Debug)]
pub struct Mempool<'e> {
    ptr: NonNull<rte_mempool>,
    name: String,
    _eal: PhantomData<&'e Eal>,
}

// SAFETY: DPDK mempools (ring_mp_mc ops) are safe to get from and put to on any thread; the
// handle itself is an immutable pointer.
unsafe impl Send for Mempool<'_> {}
// SAFETY: as above: every operation through `&Mempool` is thread-safe in DPDK.
unsafe impl Sync for Mempool<'_> {}

/// Room for packet data in each mbuf of a pool made with [`Mempool::new`] (a standard frame).
pub const DEFAULT_DATA_ROOM: u16 = 2048 + 128;

impl<'e> Mempool<'e> {
    /// Creates a pool of `n` mbufs with `data_room` bytes each (headroom included) and a per-lcore
    /// cache of `cache` mbufs, on the caller's NUMA socket. The pool lives until the EAL is
    /// cleaned up: create pools once, at start-up.
    pub fn new(
        eal: &'e Eal,
        name: &str,
        n: u32,
        cache: u32,
        data_room: u16,
    ) -> Result<&'e Mempool<'e>> {
        let cname = CString::new(name).map_err(|_| Error::BadName(name.to_owned()))?;
        // SAFETY: the EAL is initialised (we hold &Eal); the name is a valid C string.
        let ptr = unsafe {
            rte_sys::rte_pktmbuf_pool_create(
                cname.as_ptr(),
                n,
                cache,
                0,
                data_room,
                eal.socket_id(),
            )
        };
        let ptr = NonNull::new(ptr).ok_or_else(|| Error::last("rte_pktmbuf_pool_create"))?;
        Ok(Box::leak(Box::new(Mempool {
            ptr,
            name: name.to_owned(),
            _eal: PhantomData,
        })))
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn as_ptr(&self) -> *mut rte_mempool {
        self.ptr.as_ptr()
    }

    /// Takes an empty mbuf from the pool, or `None` when the pool is exhausted.
    pub fn alloc(&'e self) -> Option<Mbuf<'e>> {
        // SAFETY: the pool is a live pktmbuf pool.
        let m = unsafe { rte_sys::rte_pktmbuf_alloc(self.as_ptr()) };
        NonNull::new(m).map(|ptr| Mbuf {
            ptr,
            _pool: PhantomData,
        })
    }

    /// An mbuf holding a copy of `bytes`, or `None` if the pool is empty or `bytes` does not fit.
    pub fn alloc_copy(&'e self, bytes: &[u8]) -> Option<Mbuf<'e>> {
        let mut m = self.alloc()?;
        let room = m.append(u16::try_from(bytes.len()).ok()?)?;
        room.copy_from_slice(bytes);
        Some(m)
    }

    /// Mbufs currently free in the pool (caches included).
    pub fn available(&self) -> u32 {
        // SAFETY: the pool is live; the count is a read.
        unsafe { rte_sys::rte_mempool_avail_count(self.as_ptr()) }
    }

    /// Mbufs currently taken from the pool.
    pub fn in_use(&self) -> u32 {
        // SAFETY: the pool is live; the count is a read.
        unsafe { rte_sys::rte_mempool_in_use_count(self.as_ptr()) }
    }
}

/// An owned packet buffer. Dropping it returns it to its pool.
#[repr(transparent)]
#[derive(Debug)]
pub struct Mbuf<'e> {
    ptr: NonNull<rte_mbuf>,
    _pool: PhantomData<&'e Mempool<'e>>,
}

// SAFETY: an Mbuf is the sole owner of its buffer; moving ownership to another thread is sound
// (freeing it there puts it back into a thread-safe pool).
unsafe impl Send for Mbuf<'_> {}

impl<'e> Mbuf<'e> {
    fn raw(&self) -> &rte_mbuf {
        // SAFETY: ptr points to a live mbuf we own for as long as self exists.
        unsafe { self.ptr.as_ref() }
    }

    /// Start of the first segment's packet data.
    #[inline]
    fn data_ptr(&self) -> *mut u8 {
        let m = self.raw();
        // data_off is within the buffer (DPDK invariant), so the offset stays in bounds; wrapping
        // arithmetic keeps this computation itself free of unsafe.
        m.buf_addr
            .cast::<u8>()
            .wrapping_add(usize::from(m.data_off))
    }

    /// The packet bytes of the first segment.
    #[inline]
    pub fn data(&self) -> &[u8] {
        let len = usize::from(self.raw().data_len);
        // SAFETY: DPDK guarantees buf_addr + data_off .. + data_len lies within the mbuf's data
        // buffer, which we own exclusively (reference count 1) while self is borrowed.
        unsafe { std::slice::from_raw_parts(self.data_ptr(), len) }
    }

    /// The packet bytes of the first segment, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let len = usize::from(self.raw().data_len);
        // SAFETY: as in `data`, and &mut self makes the borrow exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.data_ptr(), len) }
    }

    /// Length of the whole packet (all segments).
    pub fn pkt_len(&self) -> u32 {
        self.raw().pkt_len
    }

    /// Number of segments; ferrowall's ports receive single-segment packets.
    pub fn segments(&self) -> u16 {
        self.raw().nb_segs
    }

    /// The port the packet arrived on.
    pub fn port(&self) -> u16 {
        self.raw().port
    }

    /// The RSS hash the NIC computed, if it did.
    pub fn rss_hash(&self) -> Option<u32> {
        let m = self.raw();
        if m.ol_flags & RX_RSS_HASH != 0 {
            let hash = &m.__bindgen_anon_2;
            // SAFETY: the flag says the hash member of the union is the one the PMD wrote.
            let hash = unsafe { hash.hash };
            // SAFETY: the rss member of the hash union is the PMD's RSS hash (same flag).
            Some(unsafe { hash.rss })
        } else {
            None
        }
    }

    /// Extends the packet by `len` bytes at its end and returns them, or `None` without room.
    pub fn append(&mut self, len: u16) -> Option<&mut [u8]> {
        // SAFETY: the mbuf is live and ours; rte_pktmbuf_append returns NULL when out of room.
        let p = unsafe { rte_sys::rte_pktmbuf_append(self.ptr.as_ptr(), len) };
        if p.is_null() {
            return None;
        }
        // SAFETY: DPDK reserved `len` bytes at p inside this mbuf's buffer, exclusively ours.
        Some(unsafe { std::slice::from_raw_parts_mut(p.cast::<u8>(), usize::from(len)) })
    }

    /// Hints the CPU to load the packet's first cache line.
    #[inline(always)]
    pub fn prefetch(&self) {
        let m = self.raw();
        let p = m
            .buf_addr
            .cast::<i8>()
            .wrapping_add(usize::from(m.data_off));
        // SAFETY: prefetch never faults, whatever the address.
        unsafe { core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p) };
    }

    #[allow(dead_code)]
    pub(crate) fn into_raw(self) -> *mut rte_mbuf {
        let p = self.ptr.as_ptr();
        std::mem::forget(self);
        p
    }
}

impl AsRef<[u8]> for Mbuf<'_> {
    /// The packet bytes of the first segment.
    #[inline]
    fn as_ref(&self) -> &[u8] {
        self.data()
    }
}

impl Drop for Mbuf<'_> {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf; it is freed exactly once.
        unsafe { rte_sys::rte_pktmbuf_free(self.ptr.as_ptr()) };
    }
}

/// `RTE_MBUF_F_RX_RSS_HASH` (a macro bindgen can not evaluate).
const RX_RSS_HASH: u64 = 1 << 1;

/// The most packets one burst holds.
pub const MAX_BURST: usize = 256;

/// A burst of owned mbufs: what `rx_burst` fills and `tx_burst` empties. Dropping it frees any
/// mbufs left in it.
pub struct Burst<'e> {
    len: usize,
    slots: [MaybeUninit<Mbuf<'e>>; MAX_BURST],
}

impl std::fmt::Debug for Burst<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Burst").field("len", &self.len).finish()
    }
}

impl Default for Burst<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'e> Burst<'e> {
    /// An empty burst.
    pub fn new() -> Self {
        Burst {
            len: 0,
            slots: [const { MaybeUninit::uninit() }; MAX_BURST],
        }
    }

    /// Number of mbufs held.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no mbuf.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Free slots left.
    #[inline]
    pub fn room(&self) -> usize {
        MAX_BURST - self.len
    }

    /// Adds an mbuf at the end, or gives it back when full.
    #[inline]
    pub fn push(&mut self, m: Mbuf<'e>) -> std::result::Result<(), Mbuf<'e>> {
        if self.len == MAX_BURST {
            return Err(m);
        }
        self.slots[self.len].write(m);
        self.len += 1;
        Ok(())
    }

    /// The mbufs held, in order.
    #[inline]
    pub fn as_slice(&self) -> &[Mbuf<'e>] {
        // SAFETY: slots[..len] are initialised; MaybeUninit<T> has T's layout.
        unsafe { std::slice::from_raw_parts(self.slots.as_ptr().cast::<Mbuf<'e>>(), self.len) }
    }

    /// The mbufs held, in order, writable.
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [Mbuf<'e>] {
        // SAFETY: as in as_slice, and &mut self is exclusive.
        unsafe {
            std::slice::from_raw_parts_mut(self.slots.as_mut_ptr().cast::<Mbuf<'e>>(), self.len)
        }
    }

    /// Moves every mbuf out, in order; those the iterator does not yield are freed when it drops.
    pub fn drain(&mut self) -> Drain<'_, 'e> {
        let len = self.len;
        self.len = 0;
        Drain {
            burst: self,
            next: 0,
            end: len,
        }
    }

    /// Frees every mbuf held.
    pub fn clear(&mut self) {
        if self.len == 0 {
            return;
        }
        let n = u32::try_from(self.len).unwrap_or(u32::MAX);
        self.len = 0;
        // SAFETY: slots[..n] hold owned mbufs, which we give up (len is already 0, so they are
        // neither freed twice nor used again). Mbuf is a transparent non-null mbuf pointer.
        unsafe {
            rte_sys::rte_pktmbuf_free_bulk(self.slots.as_mut_ptr().cast::<*mut rte_mbuf>(), n)
        };
    }

    /// Pointer to the first free slot, for `rx_burst`.
    pub(crate) fn tail_ptr(&mut self) -> *mut *mut rte_mbuf {
        self.slots[self.len..].as_mut_ptr().cast::<*mut rte_mbuf>()
    }

    /// Records that a PMD filled `n` more slots.
    ///
    /// # Safety
    /// The `n` slots after the current length must now hold mbufs the caller owns.
    pub(crate) unsafe fn grow(&mut self, n: usize) {
        debug_assert!(self.len + n <= MAX_BURST);
        self.len += n;
    }

    /// Pointer to the first slot, for `tx_burst`.
    pub(crate) fn head_ptr(&mut self) -> *mut *mut rte_mbuf {
        self.slots.as_mut_ptr().cast::<*mut rte_mbuf>()
    }

    /// After a PMD took the first `sent` mbufs: frees the rest and empties the burst. Returns the
    /// number freed.
    pub(crate) fn forget_sent_free_rest(&mut self, sent: usize) -> usize {
        let len = self.len;
        let left = len - sent.min(len);
        self.len = 0;
        if left > 0 {
            let n = u32::try_from(left).unwrap_or(u32::MAX);
            // SAFETY: slots[sent..len] still hold owned mbufs the PMD refused; we free them once
            // (len is 0 already).
            unsafe {
                rte_sys::rte_pktmbuf_free_bulk(
                    self.slots[sent..len].as_mut_ptr().cast::<*mut rte_mbuf>(),
                    n,
                )
            };
        }
        left
    }
}

impl Drop for Burst<'_> {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Iterator that moves the mbufs out of a [`Burst`].
#[derive(Debug)]
pub struct Drain<'b, 'e> {
    burst: &'b mut Burst<'e>,
    next: usize,
    end: usize,
}

impl<'e> Iterator for Drain<'_, 'e> {
    type Item = Mbuf<'e>;

    #[inline]
    fn next(&mut self) -> Option<Mbuf<'e>> {
        if self.next == self.end {
            return None;
        }
        let i = self.next;
        self.next += 1;
        // SAFETY: slots[next..end] are initialised and not yet moved out (the burst's len is 0,
        // so only this iterator owns them); each is read exactly once.
        Some(unsafe { self.burst.slots[i].assume_init_read() })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.end - self.next;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Drain<'_, '_> {}

impl Drop for Drain<'_, '_> {
    fn drop(&mut self) {
        for i in self.next..self.end {
            // SAFETY: slots not yet yielded are still owned here; each is dropped once.
            drop(unsafe { self.burst.slots[i].assume_init_read() });
        }
    }
}
