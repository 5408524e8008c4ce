//! The Environment Abstraction Layer: started once per process, cleaned up on drop.
//!
//! Everything DPDK hands out (mempools, ports, mbufs) borrows the [`Eal`], so none of it can
//! outlive `rte_eal_cleanup`.

use std::ffi::{CString, c_char, c_int};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

static INITIALISED: AtomicBool = AtomicBool::new(false);

/// The running EAL. Dropping it calls `rte_eal_cleanup`.
///
/// It is not `Send`: DPDK expects initialisation and cleanup on the main lcore's thread.
#[derive(Debug)]
pub struct Eal {
    _main_thread_only: PhantomData<*const ()>,
}

// SAFETY: the query methods (`lcores`, `tsc_hz`, ...) only read state that rte_eal_init wrote
// before any other thread could see the `Eal`; sharing `&Eal` with lcore threads is sound.
unsafe impl Sync for Eal {}

impl Eal {
    /// Initialises the EAL from `args` (without the program name), as `rte_eal_init` would parse
    /// a command line. Fails if called a second time in the same process.
    pub fn init<I, S>(args: I) -> Result<Eal>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        if INITIALISED
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(Error::EalAlreadyInitialised);
        }
        let mut owned =
            vec![CString::new("ferrowall").map_err(|_| Error::BadName("ferrowall".into()))?];
        for a in args {
            let a = a.as_ref();
            owned.push(CString::new(a).map_err(|_| Error::BadEalArgument(a.to_owned()))?);
        }
        // DPDK keeps pointers into argv (argv[0] becomes the syslog identity), so the strings
        // live as long as the process.
        let owned: &'static mut [CString] = owned.leak();
        let argv: Vec<*mut c_char> = owned.iter().map(|s| s.as_ptr().cast_mut()).collect();
        let argc =
            c_int::try_from(argv.len()).map_err(|_| Error::BadEalArgument("too many".into()))?;
        let argv: &'static mut [*mut c_char] = argv.leak();
        // SAFETY: argc/argv describe valid NUL-terminated strings that are never freed; the
        // compare_exchange above guarantees this is the process's only call.
        let rc = unsafe { rte_sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if rc < 0 {
            return Err(Error::last("rte_eal_init"));
        }
        Ok(Eal {
            _main_thread_only: PhantomData,
        })
    }

    /// The lcore this (main) thread runs as.
    pub fn main_lcore(&self) -> u32 {
        // SAFETY: the EAL is initialised.
        unsafe { rte_sys::rte_get_main_lcore() }
    }

    /// The enabled lcores other than the main one, in increasing order.
    pub fn worker_lcores(&self) -> Vec<u32> {
        let mut out = Vec::new();
        // SAFETY: the EAL is initialised; rte_get_next_lcore only reads its lcore table.
        let mut id = unsafe { rte_sys::rte_get_next_lcore(u32::MAX, 1, 0) };
        while id < rte_sys::RTE_MAX_LCORE {
            out.push(id);
            // SAFETY: as above.
            id = unsafe { rte_sys::rte_get_next_lcore(id, 1, 0) };
        }
        out
    }

    /// Number of ethdev ports DPDK probed (vdevs and bound PCI devices).
    pub fn port_count(&self) -> u16 {
        // SAFETY: the EAL is initialised.
        unsafe { rte_sys::rte_eth_dev_count_avail() }
    }

    /// Cycles per second of the timestamp counter ([`crate::tsc`]).
    pub fn tsc_hz(&self) -> u64 {
        // SAFETY: the EAL is initialised (it calibrated the TSC).
        unsafe { rte_sys::rte_get_tsc_hz() }
    }

    /// The NUMA socket of the calling lcore (0 on a non-EAL thread).
    pub fn socket_id(&self) -> i32 {
        // SAFETY: reads the calling thread's lcore state.
        let s = unsafe { rte_sys::rte_socket_id() };
        i32::try_from(s).unwrap_or(0)
    }

    /// Runs `f` with a scope in which closures can be launched on worker lcores; every launched
    /// closure has returned (its lcore joined) before `scope` returns, as with
    /// `std::thread::scope`, so closures may borrow from the caller.
    pub fn scope<'env, F, T>(&'env self, f: F) -> T
    where
        F: for<'scope> FnOnce(&'scope crate::lcore::LcoreScope<'scope, 'env>) -> T,
    {
        crate::lcore::run_scope(self, f)
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // SAFETY: every DPDK object borrows the Eal, so none is alive any more; lcores launched
        // through scopes were joined when their scope ended.
        let rc = unsafe { rte_sys::rte_eal_cleanup() };
        if rc < 0 {
            // Nothing sensible to do at this point but say so.
            eprintln!("{}", Error::from_errno("rte_eal_cleanup", rc));
        }
    }
}

/// Reads the CPU's timestamp counter: the clock of per-packet cycle accounting.
#[inline(always)]
pub fn tsc() -> u64 {
    // SAFETY: rdtsc has no preconditions on x86_64 and does not touch memory.
    unsafe { core::arch::x86_64::_rdtsc() }
}
