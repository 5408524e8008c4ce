//! The `ferrowall` command. Exit codes: 0 success, 1 runtime failure, 2 bad usage or invalid
//! configuration.

use std::process::ExitCode;

fn main() -> ExitCode {
    control::cli::main()
}
