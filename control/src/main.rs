//! The `ferrowall` command. Exit codes: 0 success, 1 runtime failure, 2 bad usage or invalid
//! configuration.

use std::process::ExitCode;

/// mimalloc: the control thread's learner allocates and frees small objects at high rates
/// (glibc's malloc spent a fifth of its time consolidating free chunks in the learner benchmark).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    control::cli::main()
}
