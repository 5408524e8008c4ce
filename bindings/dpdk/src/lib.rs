//! Safe layer over DPDK: the EAL, mempools, owned mbufs, ports with their queues, and lcores.
//!
//! Lifetimes carry DPDK's rules: everything borrows the [`Eal`] (nothing outlives
//! `rte_eal_cleanup`); queue handles borrow their [`Port`] and are handed out once (one poller per
//! queue, no stop while polled); an [`Mbuf`] is owned and freed on drop. Every failing call
//! becomes an [`Error`] carrying `rte_strerror`'s text.
//!
//! This crate and `rte-sys` are the only places in ferrowall with `unsafe` code; each block says
//! why it is sound.

mod eal;
mod error;
mod lcore;
mod mbuf;
mod memory;
mod port;

pub use eal::{Eal, tsc};
pub use error::{Error, Result, strerror};
pub use lcore::{LcoreHandle, LcoreScope};
pub use mbuf::{Burst, DEFAULT_DATA_ROOM, Drain, MAX_BURST, Mbuf, Mempool};
pub use memory::lock_all_memory;
pub use port::{Port, PortConfig, PortInfo, PortStats, RssMode, RxQueue, TxQueue};
