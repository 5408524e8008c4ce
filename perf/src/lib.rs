//! ferrowall's benchmark workloads (the `perf` binary is `src/main.rs`).

pub mod dnsload;
pub mod sol;
pub mod workload;
