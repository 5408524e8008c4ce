//! Test support for ferrowall: a packet builder independent of ferrowall's wire code, captures
//! built from it, the `ferrowall` process under test, and the network-namespace lab.

// Test data generators truncate numbers into bytes on purpose.
#![allow(clippy::cast_possible_truncation)]

pub mod capture;
pub mod lab;
pub mod packet;
pub mod process;
pub mod replay;
pub mod seeds;

pub use packet::{Ext, Pkt, tcp};

use std::path::PathBuf;
use std::sync::Arc;

use dataplane::{Pipeline, PipelineConfig, PipelineStats, Policy};

/// A pipeline (worker 0, on plain buffers) under the configuration `rules` (everything but the
/// two port sections, which it adds), with its policy (for the rule counters) and its counters.
pub fn pipeline(rules: &str) -> (Pipeline<Vec<u8>>, Arc<Policy>, Arc<PipelineStats>) {
    let text = format!("[ports.inside]\ndevice = \"a\"\n[ports.outside]\ndevice = \"b\"\n{rules}");
    let cfg = config::parse(&text, "test.toml").expect("a valid test configuration");
    let policy = Arc::new(Policy::compile(&cfg, 1, 1));
    let stats = Arc::new(PipelineStats::default());
    let p = Pipeline::new(
        PipelineConfig::from_config(&cfg, 0, 7),
        Arc::clone(&policy),
        Arc::clone(&stats),
    );
    (p, policy, stats)
}

/// The project's root folder.
pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit lives in the workspace")
        .to_path_buf()
}

/// `../shared/captures` relative to the project root: the real captures of the test suite.
pub fn shared_captures() -> PathBuf {
    project_root().join("../shared/captures")
}

/// `config` (a configuration without `[admin]` and `[metrics]`) with its admin socket in `dir`
/// and its metrics on a free loopback port, so that a test's ferrowall never meets another
/// instance's socket or port.
pub fn isolated(config: &str, dir: &std::path::Path) -> String {
    format!(
        "{config}\n[admin]\nsocket = {:?}\n\n[metrics]\nlisten = \"127.0.0.1:0\"\n",
        dir.join("admin.sock").display().to_string()
    )
}

/// A fresh, empty folder for one test's files, under the target directory.
pub fn scratch_dir(test: &str) -> PathBuf {
    let dir = project_root()
        .join("target/test-scratch")
        .join(format!("{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating a scratch folder");
    dir
}
