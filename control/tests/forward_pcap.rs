//! `ferrowall run` on two `net_pcap` devices: a capture received on one port leaves the other
//! byte for byte and in order, in both directions at once.

use std::process::Command;
use std::time::Duration;

use testkit::capture::{mixed_frames, read_pcap, write_pcap};
use testkit::process::{Running, ferrowall_bin};

#[test]
fn mixed_capture_crosses_byte_for_byte_both_ways() {
    let dir = testkit::scratch_dir("forward-pcap");
    let (in_a, in_b) = (dir.join("inside-rx.pcap"), dir.join("outside-rx.pcap"));
    let (out_a, out_b) = (dir.join("inside-tx.pcap"), dir.join("outside-tx.pcap"));
    let a = mixed_frames(1200, 1);
    let b = mixed_frames(1100, 2);
    let sizes = a.iter().map(Vec::len);
    assert!(sizes.clone().min() == Some(60) && sizes.max().is_some_and(|m| m > 1400));
    write_pcap(&in_a, &a, 1_700_000_000_000_000_000);
    write_pcap(&in_b, &b, 1_700_000_000_000_000_000);

    let config = dir.join("pcap.toml");
    std::fs::write(
        &config,
        testkit::isolated(
            &format!(
                r#"
[dpdk]
eal_args = ["-l", "0-1", "--no-huge", "-m", "256", "--no-pci", "--no-shconf",
            "--vdev=net_pcap0,rx_pcap={},tx_pcap={}",
            "--vdev=net_pcap1,rx_pcap={},tx_pcap={}"]
[ports.inside]
device = "net_pcap0"
[ports.outside]
device = "net_pcap1"
[flows]
tcp_midstream = true   # the capture's TCP segments are not whole connections
[default]
action = "allow"
"#,
                in_a.display(),
                out_a.display(),
                in_b.display(),
                out_b.display()
            ),
            &dir,
        ),
    )
    .unwrap();

    let mut cmd = Command::new(ferrowall_bin());
    cmd.args(["run", "--config"]).arg(&config);
    let mut fw = Running::start(cmd);
    fw.wait_for("worker started", Duration::from_secs(20));
    // net_pcap reads its whole file at once; give the worker time to move both captures.
    std::thread::sleep(Duration::from_millis(1500));
    let done = fw.stop(Duration::from_secs(20));
    assert!(
        done.status.success(),
        "exit {}: {}",
        done.status,
        done.stderr
    );
    assert!(
        done.stdout.contains("port inside rx 1200 tx 1100"),
        "final counters: {}",
        done.stdout
    );

    let left_outside = read_pcap(&out_b);
    let left_inside = read_pcap(&out_a);
    assert_eq!(left_outside.len(), a.len());
    assert_eq!(left_inside.len(), b.len());
    for (i, (got, want)) in left_outside.iter().zip(&a).enumerate() {
        assert_eq!(got, want, "inside->outside frame {i} differs");
    }
    for (i, (got, want)) in left_inside.iter().zip(&b).enumerate() {
        assert_eq!(got, want, "outside->inside frame {i} differs");
    }
}
