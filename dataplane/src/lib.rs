//! The packet path of ferrowall: what a worker core does to every packet.
//!
//! Classification is pure (bytes, ingress side and time in; verdict out) so that it runs the same
//! under `cargo test`, fuzzers, `ferrowall replay`, benchmarks and the appliance; the DPDK worker
//! loop in [`worker`] is the edge that feeds it mbufs.

pub mod agent;
pub mod counter;
pub mod dns;
pub mod drop;
pub mod flow;
pub mod fqdn;
pub mod frag;
pub mod fuzzing;
pub mod packet;
pub mod pcap;
pub mod pipeline;
pub mod policy;
pub mod reject;
pub mod side;
pub mod verdict;
pub mod wire;
pub mod worker;

pub use drop::DropReason;
pub use fqdn::FqdnMap;
pub use pipeline::{Disposition, Effects, Pipeline, PipelineConfig, PipelineStats};
pub use policy::Policy;
pub use side::Side;
pub use verdict::{Decision, Reason, Verdict};
