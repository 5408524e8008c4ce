//! Raw FFI to the system DPDK, generated at build time. Use the safe `dpdk` crate instead.
//!
//! DPDK's `static inline` functions (`rte_eth_rx_burst`, `rte_pktmbuf_free`, ...) appear here as
//! ordinary functions: bindgen generated a C wrapper for each, compiled into this crate.
#![allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    dead_code,
    improper_ctypes,
    unsafe_op_in_unsafe_fn,
    missing_debug_implementations,
    clippy::all,
    clippy::pedantic,
    clippy::undocumented_unsafe_blocks,
    clippy::multiple_unsafe_ops_per_block
)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
