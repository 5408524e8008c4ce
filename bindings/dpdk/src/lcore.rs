//! Launching closures on worker lcores and joining them, scoped like `std::thread::scope`.

use std::ffi::{c_int, c_void};
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Arc, Mutex, PoisonError};

use crate::eal::Eal;
use crate::error::{Error, Result};

type Job<'a> = Box<dyn FnOnce() + Send + 'a>;
type Slot<T> = Arc<Mutex<Option<std::thread::Result<T>>>>;

/// A scope in which closures run on worker lcores; see [`Eal::scope`].
#[derive(Debug)]
pub struct LcoreScope<'scope, 'env: 'scope> {
    eal: &'env Eal,
    /// Lcores launched and not yet joined.
    running: Mutex<Vec<u32>>,
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

/// The handle of a closure running on an lcore.
#[derive(Debug)]
pub struct LcoreHandle<'scope, T> {
    lcore: u32,
    slot: Slot<T>,
    running: &'scope Mutex<Vec<u32>>,
}

pub(crate) fn run_scope<'env, F, T>(eal: &'env Eal, f: F) -> T
where
    F: for<'scope> FnOnce(&'scope LcoreScope<'scope, 'env>) -> T,
{
    let scope = LcoreScope {
        eal,
        running: Mutex::new(Vec::new()),
        scope: PhantomData,
        env: PhantomData,
    };
    let result = catch_unwind(AssertUnwindSafe(|| f(&scope)));
    // Whatever happened, no launched closure may outlive the scope.
    let left: Vec<u32> =
        std::mem::take(&mut *scope.running.lock().unwrap_or_else(PoisonError::into_inner));
    for lcore in left {
        wait(lcore);
    }
    match result {
        Ok(v) => v,
        Err(panic) => resume_unwind(panic),
    }
}

fn wait(lcore: u32) -> i32 {
    // SAFETY: lcore was launched by this crate; waiting on it has no other precondition.
    unsafe { rte_sys::rte_eal_wait_lcore(lcore) }
}

impl<'scope, 'env> LcoreScope<'scope, 'env> {
    /// Runs `f` on worker lcore `lcore`. The lcore must be enabled, not the main one, and idle.
    pub fn launch<F, T>(&'scope self, lcore: u32, f: F) -> Result<LcoreHandle<'scope, T>>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        if !self.eal.worker_lcores().contains(&lcore) {
            return Err(Error::LcoreUnavailable(lcore));
        }
        let slot: Slot<T> = Arc::new(Mutex::new(None));
        let out = Arc::clone(&slot);
        let job: Job<'scope> = Box::new(move || {
            let r = catch_unwind(AssertUnwindSafe(f));
            *out.lock().unwrap_or_else(PoisonError::into_inner) = Some(r);
        });
        // SAFETY: only the lifetime changes. The job runs on the lcore and is consumed there;
        // run_scope (or LcoreHandle::join) waits for the lcore before 'scope ends, so nothing the
        // job borrows is used after it is gone.
        let job: Job<'static> = unsafe { std::mem::transmute::<Job<'scope>, Job<'static>>(job) };
        let arg = Box::into_raw(Box::new(job)).cast::<c_void>();
        // SAFETY: `trampoline` matches lcore_function_t and takes ownership of `arg` exactly once.
        let rc = unsafe { rte_sys::rte_eal_remote_launch(Some(trampoline), arg, lcore) };
        if rc < 0 {
            // SAFETY: the launch failed, so the lcore never received `arg`; we still own it.
            drop(unsafe { Box::from_raw(arg.cast::<Job<'static>>()) });
            return Err(if rc == -libc_ebusy() {
                Error::LcoreUnavailable(lcore)
            } else {
                Error::from_errno("rte_eal_remote_launch", rc)
            });
        }
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(lcore);
        Ok(LcoreHandle {
            lcore,
            slot,
            running: &self.running,
        })
    }
}

impl<T> LcoreHandle<'_, T> {
    /// The lcore the closure runs on.
    pub fn lcore(&self) -> u32 {
        self.lcore
    }

    /// Waits for the closure to return and gives back its value.
    pub fn join(self) -> Result<T> {
        wait(self.lcore);
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|&l| l != self.lcore);
        let r = self
            .slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match r {
            Some(Ok(v)) => Ok(v),
            _ => Err(Error::LcorePanicked(self.lcore)),
        }
    }
}

const fn libc_ebusy() -> i32 {
    16 // EBUSY on Linux
}

unsafe extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` came from Box::into_raw in `launch` and is consumed exactly once, here.
    let job = unsafe { Box::from_raw(arg.cast::<Job<'static>>()) };
    // The job catches its own panics, so nothing unwinds across this C frame.
    job();
    0
}
