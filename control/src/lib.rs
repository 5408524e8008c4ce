//! ferrowall's control plane: process start-up, EAL and lcore launch, signals, and the
//! `ferrowall` command line. Only the `ferrowall` binary uses this crate.

pub mod cli;
mod controller;
mod fqdn;
mod replay;
mod run;
