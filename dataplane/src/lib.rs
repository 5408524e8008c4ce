//! The packet path of ferrowall: what a worker core does to every packet.
//!
//! Classification is pure (bytes, ingress side and time in; verdict out) so that it runs the same
//! under `cargo test`, fuzzers, `ferrowall replay`, benchmarks and the appliance; the DPDK worker
//! loop in [`worker`] is the edge that feeds it mbufs.

pub mod counter;
pub mod pcap;
pub mod side;
pub mod worker;

pub use side::Side;
