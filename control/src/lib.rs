//! ferrowall's control plane: process start-up, EAL and lcore launch, signals, and the
//! `ferrowall` command line. Only the `ferrowall` binary uses this crate.

pub mod admin;
pub mod cli;
mod controller;
mod fqdn;
mod metrics;
mod notify;
mod replay;
mod run;
pub mod shared;
