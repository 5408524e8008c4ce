//! The packet builder is checked against tshark, the reference dissector: every frame decodes
//! with the protocols asked for, no malformed field, and good checksums.

use std::process::Command;

use testkit::capture::{mixed_frames, write_pcap};
use testkit::{Ext, Pkt, tcp};

fn tshark(path: &std::path::Path, filter: &str, fields: &[&str]) -> Vec<String> {
    let mut cmd = Command::new("tshark");
    cmd.args(["-n", "-r"]).arg(path);
    for p in ["ip", "tcp", "udp"] {
        cmd.args(["-o", &format!("{p}.check_checksum:TRUE")]);
    }
    cmd.args(["-Y", filter, "-T", "fields"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd
        .output()
        .expect("tshark (scripts/install-deps installs it)");
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn built_frames_decode_cleanly_in_tshark() {
    let dir = testkit::scratch_dir("builder");
    let mut frames = mixed_frames(300, 7);
    frames.push(
        Pkt::new("10.0.0.1", "192.0.2.1")
            .tcp(1234, 80, tcp::SYN)
            .qinq(10, 20)
            .build(),
    );
    frames.push(
        Pkt::new("fd00::1", "2001:db8::1")
            .udp(40000, 5002)
            .ext(Ext::HopByHop(0))
            .ext(Ext::Routing)
            .ext(Ext::Ah)
            .ext(Ext::DestOpts(0))
            .payload(b"hello")
            .build(),
    );
    frames.push(
        Pkt::new("10.0.0.1", "192.0.2.1")
            .v4_options(&[1, 1, 1, 0])
            .echo_request(1, 2)
            .build(),
    );
    let big = Pkt::new("10.0.0.1", "192.0.2.1")
        .udp(1, 2)
        .payload(&[7u8; 3000]);
    frames.extend(big.fragments(1200));
    let big6 = Pkt::new("fd00::1", "2001:db8::1")
        .udp(1, 2)
        .payload(&[7u8; 3000])
        .ip_id(77);
    frames.extend(big6.fragments(1200));
    let path = dir.join("built.pcap");
    write_pcap(&path, &frames, 1_700_000_000_000_000_000);

    let bad = tshark(
        &path,
        "_ws.malformed || _ws.expert.severity >= error || ip.checksum.status == 0 || tcp.checksum.status == 0 || udp.checksum.status == 0 || icmp.checksum.status == 0 || icmpv6.checksum.status == 0",
        &["frame.number", "_ws.expert.message"],
    );
    assert!(bad.is_empty(), "tshark finds problems: {bad:?}");
    // Checksums were verified, not skipped.
    let verified = tshark(
        &path,
        "ip.checksum.status == 1 && (tcp.checksum.status == 1 || udp.checksum.status == 1 || icmp.checksum.status == 1)",
        &["frame.number"],
    );
    assert!(
        verified.len() > 150,
        "only {} frames verified",
        verified.len()
    );
    let all = tshark(&path, "", &["frame.number"]);
    assert_eq!(all.len(), frames.len());
    // Reassembly: tshark rebuilds both fragmented datagrams into 3008-byte UDP messages.
    let reassembled = tshark(&path, "udp.length == 3008", &["frame.number"]);
    assert_eq!(reassembled.len(), 2, "{reassembled:?}");
    let qinq = tshark(
        &path,
        "vlan.id == 20 && tcp.flags.syn == 1",
        &["frame.number"],
    );
    assert_eq!(qinq.len(), 1);
}
