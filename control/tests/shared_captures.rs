//! `ferrowall replay` with an allow-all policy over every real capture in ../shared/captures:
//! no crash, exactly one verdict line per input packet, in order.

use std::path::{Path, PathBuf};
use std::process::Command;

use testkit::process::ferrowall_bin;

fn captures(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("../shared/captures is readable") {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            captures(&p, out);
        } else if p.extension().is_some_and(|x| x == "pcap") {
            out.push(p);
        }
    }
}

#[test]
fn every_shared_capture_replays_with_one_line_per_packet() {
    let mut files = Vec::new();
    captures(&testkit::shared_captures(), &mut files);
    files.sort();
    assert!(
        files.len() >= 90,
        "expected the suricata-verify captures, found {}",
        files.len()
    );
    let dir = testkit::scratch_dir("shared-captures");
    let cfg = dir.join("allow-all.toml");
    std::fs::write(
        &cfg,
        "[ports.inside]\ndevice = \"in\"\n[ports.outside]\ndevice = \"out\"\n[network]\ninside = [\"10.0.0.0/8\", \"172.16.0.0/12\", \"192.168.0.0/16\", \"fc00::/7\"]\n[flows]\ntcp_midstream = true\ncapacity = 65536\n[default]\naction = \"allow\"\n",
    )
    .unwrap();
    let mut total = 0;
    for f in &files {
        let log = dir.join("v.jsonl");
        let out = Command::new(ferrowall_bin())
            .args(["replay", "--config"])
            .arg(&cfg)
            .arg("--pcap")
            .arg(f)
            .arg("--log")
            .arg(&log)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            f.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let packets = testkit::capture::read_pcap(f).len();
        let lines = std::fs::read_to_string(&log).unwrap();
        let mut n = 0;
        for (i, line) in lines.lines().enumerate() {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}: {line}: {e}", f.display()));
            assert_eq!(v["index"].as_u64(), Some(i as u64), "{}", f.display());
            assert!(matches!(
                v["verdict"].as_str(),
                Some("allow" | "drop" | "reject")
            ));
            n += 1;
        }
        assert_eq!(n, packets, "{}: one line per packet", f.display());
        total += n;
    }
    assert!(total > 1000, "{total} packets replayed");
}
