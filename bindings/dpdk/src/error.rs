//! Typed errors for every failing DPDK call, carrying `rte_strerror`'s text.

use std::ffi::CStr;

/// Everything the safe layer can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A DPDK call failed; `message` is `rte_strerror(errno)`.
    #[error("{call} failed: {message} (errno {errno})")]
    Dpdk {
        /// The DPDK function that failed.
        call: &'static str,
        /// The (positive) error number DPDK reported.
        errno: i32,
        /// DPDK's own description of `errno`.
        message: String,
    },
    /// The EAL was already initialised by this process (DPDK allows it once).
    #[error("the DPDK EAL is already initialised in this process")]
    EalAlreadyInitialised,
    /// An EAL argument can not be passed to C.
    #[error("EAL argument {0:?} contains a NUL byte")]
    BadEalArgument(String),
    /// No ethdev port has this name.
    #[error(
        "no DPDK port named {0:?}: add its --vdev to [dpdk].eal_args, or bind the PCI device to vfio-pci"
    )]
    NoSuchPort(String),
    /// The port can not have as many queues as asked.
    #[error("port {port:?} supports at most {max} {kind} queues, {wanted} requested")]
    TooManyQueues {
        /// Port name.
        port: String,
        /// "rx" or "tx".
        kind: &'static str,
        /// What the device supports.
        max: u16,
        /// What was asked.
        wanted: u16,
    },
    /// A queue handle was requested twice, or for a queue that does not exist.
    #[error("queue {queue} of port {port:?} is not available (taken, or not configured)")]
    QueueUnavailable {
        /// Port name.
        port: String,
        /// Queue index.
        queue: u16,
    },
    /// The port must be configured (and started) before this operation.
    #[error("port {0:?} is not configured")]
    PortNotConfigured(String),
    /// A port can not be stopped or reconfigured while queue handles are out.
    #[error("port {0:?} still has queues in use")]
    QueuesInUse(String),
    /// The lcore is not an enabled worker lcore, or is already running something.
    #[error("lcore {0} is not an idle worker lcore")]
    LcoreUnavailable(u32),
    /// A function launched on an lcore panicked.
    #[error("the function running on lcore {0} panicked")]
    LcorePanicked(u32),
    /// A name (pool, ring) is too long or contains a NUL byte.
    #[error("invalid DPDK object name {0:?}")]
    BadName(String),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds the error of `call` from a positive or negative errno value.
    pub fn from_errno(call: &'static str, errno: i32) -> Self {
        let errno = errno.abs();
        Error::Dpdk {
            call,
            errno,
            message: strerror(errno),
        }
    }

    /// Builds the error of `call` from the calling thread's `rte_errno`.
    pub fn last(call: &'static str) -> Self {
        // SAFETY: reads the calling thread's rte_errno; no preconditions.
        let errno = unsafe { rte_sys::rte_errno_get() };
        Self::from_errno(call, errno)
    }
}

/// DPDK's text for an error number.
pub fn strerror(errno: i32) -> String {
    // SAFETY: rte_strerror returns a pointer to a NUL-terminated string that is either static or
    // in a per-thread buffer; we copy it out before any other DPDK call on this thread.
    let ptr = unsafe { rte_sys::rte_strerror(errno) };
    if ptr.is_null() {
        return format!("error {errno}");
    }
    // SAFETY: non-null, NUL-terminated, valid until the next rte_strerror call on this thread.
    unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned()
}

/// Turns a DPDK return code (negative errno on failure) into a `Result`.
pub(crate) fn check(call: &'static str, rc: i32) -> Result<i32> {
    if rc < 0 {
        Err(Error::from_errno(call, rc))
    } else {
        Ok(rc)
    }
}
