//! Running `ferrowall replay` on a capture built by a test.

use std::process::Command;

use serde_json::Value;

use crate::capture::{read_pcap, write_pcap_ts};
use crate::process::ferrowall_bin;

/// What a replay produced.
#[derive(Debug)]
pub struct Replayed {
    /// The verdict log, one object per input packet.
    pub log: Vec<Value>,
    /// The frames of `--out`, in order.
    pub out: Vec<Vec<u8>>,
    /// stderr.
    pub stderr: String,
}

impl Replayed {
    /// The verdict of packet `i` (`allow`, `drop`, `reject`).
    pub fn verdict(&self, i: usize) -> &str {
        self.log[i]["verdict"].as_str().unwrap_or("?")
    }

    /// The reason of packet `i`.
    pub fn reason(&self, i: usize) -> &str {
        self.log[i]["reason"].as_str().unwrap_or("?")
    }

    /// The deciding rule of packet `i`, if any.
    pub fn rule(&self, i: usize) -> Option<&str> {
        self.log[i]["rule"].as_str()
    }

    /// `verdict/reason` of every packet, for compact assertions.
    pub fn summary(&self) -> Vec<String> {
        (0..self.log.len())
            .map(|i| format!("{}/{}", self.verdict(i), self.reason(i)))
            .collect()
    }
}

/// Replays `frames` (timestamp in ns, Ethernet frame) under configuration `config` (TOML text,
/// ports added when missing), with extra command-line arguments.
pub fn replay_with(
    name: &str,
    config: &str,
    frames: &[(u64, Vec<u8>)],
    extra: &[String],
) -> Replayed {
    let dir = crate::scratch_dir(&format!("replay-{name}"));
    let cfg = if config.contains("[ports.inside]") {
        config.to_owned()
    } else {
        format!("[ports.inside]\ndevice = \"in\"\n[ports.outside]\ndevice = \"out\"\n{config}")
    };
    let (c, p, o, l) = (
        dir.join("c.toml"),
        dir.join("in.pcap"),
        dir.join("out.pcap"),
        dir.join("v.jsonl"),
    );
    std::fs::write(&c, cfg).expect("writing the config");
    write_pcap_ts(&p, frames);
    let out = Command::new(ferrowall_bin())
        .arg("replay")
        .arg("--config")
        .arg(&c)
        .arg("--pcap")
        .arg(&p)
        .arg("--out")
        .arg(&o)
        .arg("--log")
        .arg(&l)
        .args(extra)
        .output()
        .expect("running ferrowall replay");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "replay failed: {stderr}");
    let log: Vec<Value> = std::fs::read_to_string(&l)
        .expect("reading the log")
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("bad log line {line:?}: {e}"))
        })
        .collect();
    assert_eq!(log.len(), frames.len(), "one log line per packet");
    for (i, v) in log.iter().enumerate() {
        assert_eq!(v["index"].as_u64(), Some(i as u64), "log in input order");
    }
    Replayed {
        log,
        out: read_pcap(&o),
        stderr,
    }
}

/// [`replay_with`] without extra arguments.
pub fn replay(name: &str, config: &str, frames: &[(u64, Vec<u8>)]) -> Replayed {
    replay_with(name, config, frames, &[])
}

/// Timestamps `frames` one millisecond apart from a fixed start.
pub fn at_ms(frames: Vec<Vec<u8>>) -> Vec<(u64, Vec<u8>)> {
    frames
        .into_iter()
        .enumerate()
        .map(|(i, f)| (T0 + i as u64 * 1_000_000, f))
        .collect()
}

/// The start time of test captures (2023-11-14).
pub const T0: u64 = 1_700_000_000_000_000_000;

/// One second in nanoseconds.
pub const SEC: u64 = 1_000_000_000;
