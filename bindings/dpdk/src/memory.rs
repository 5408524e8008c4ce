//! Keeping the process's memory resident.

use std::io;

/// Locks every page the process has mapped and will map (`mlockall(MCL_CURRENT | MCL_FUTURE)`):
/// tables reserved at start-up are faulted in when they are allocated, so no page fault (slow in
/// a virtual machine: tens of microseconds) ever stalls a worker or the control thread later,
/// and nothing is swapped out. Needs `CAP_IPC_LOCK` or a large enough `RLIMIT_MEMLOCK`.
pub fn lock_all_memory() -> io::Result<()> {
    // SAFETY: mlockall takes only flags, touches no memory of ours and may be called at any
    // time; its failure is reported through errno.
    let rc = unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
