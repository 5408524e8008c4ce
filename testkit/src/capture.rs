//! Captures built for tests.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use dataplane::pcap::{Reader, Resolution, Writer, linktype};

use crate::packet::{Ext, Pkt, tcp};

/// A small deterministic generator (xorshift), so captures are the same on every run.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// `n` frames mixing TCP, UDP and ICMP over IPv4 and IPv6 (some VLAN-tagged, some with IPv6
/// extension headers), frame sizes spread over 60..=1514 bytes, in both directions between
/// `inside` and `outside` hosts. Deterministic for a seed.
pub fn mixed_frames(n: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| {
            let v6 = rng.range(0, 2) == 0;
            let (a, b) = if v6 {
                (
                    format!("fd00::{:x}", rng.range(1, 200)),
                    format!("2001:db8::{:x}", rng.range(1, 200)),
                )
            } else {
                (
                    format!("10.0.0.{}", rng.range(1, 250)),
                    format!("192.0.2.{}", rng.range(1, 250)),
                )
            };
            let (src, dst) = if rng.range(0, 1) == 0 { (a, b) } else { (b, a) };
            let mut p = Pkt::new(&src, &dst);
            let header = if v6 { 54 } else { 34 };
            p = match rng.range(0, 9) {
                0..=4 => {
                    let flags =
                        [tcp::SYN, tcp::ACK, tcp::ACK | tcp::PSH, tcp::FIN | tcp::ACK][i % 4];
                    let sport = u16::try_from(rng.range(1024, 65535)).unwrap_or(1024);
                    p.tcp(sport, 5001, flags).seq_ack(
                        u32::try_from(rng.range(0, u64::from(u32::MAX))).unwrap_or(0),
                        u32::try_from(rng.range(0, u64::from(u32::MAX))).unwrap_or(0),
                    )
                }
                5..=7 => {
                    let sport = u16::try_from(rng.range(1024, 65535)).unwrap_or(1024);
                    p.udp(sport, 5002)
                }
                _ => p.echo_request(
                    u16::try_from(rng.range(0, 65535)).unwrap_or(0),
                    u16::try_from(i % 65536).unwrap_or(0),
                ),
            };
            if rng.range(0, 9) == 0 {
                p = p.vlan(u16::try_from(rng.range(1, 4094)).unwrap_or(1));
            }
            if v6 && rng.range(0, 7) == 0 {
                p = p.ext(Ext::HopByHop(0)).ext(Ext::DestOpts(1));
            }
            let l4_header = 20;
            let target = usize::try_from(rng.range(60, 1514)).unwrap_or(60);
            let payload_len = target.saturating_sub(14 + header + l4_header);
            let payload: Vec<u8> = (0..payload_len).map(|k| (k as u8) ^ (i as u8)).collect();
            p.payload(&payload).build()
        })
        .collect()
}

/// Writes Ethernet frames to a pcap file, one microsecond apart from `start_ns`.
pub fn write_pcap(path: &Path, frames: &[Vec<u8>], start_ns: u64) {
    let f = File::create(path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
    let mut w =
        Writer::new(BufWriter::new(f), linktype::ETHERNET, Resolution::Micro).expect("pcap header");
    for (i, fr) in frames.iter().enumerate() {
        w.write(start_ns + i as u64 * 1000, fr)
            .expect("pcap record");
    }
    w.finish().expect("flushing pcap");
}

/// Writes timestamped frames to a pcap file.
pub fn write_pcap_ts(path: &Path, frames: &[(u64, Vec<u8>)]) {
    let f = File::create(path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
    let mut w =
        Writer::new(BufWriter::new(f), linktype::ETHERNET, Resolution::Nano).expect("pcap header");
    for (ts, fr) in frames {
        w.write(*ts, fr).expect("pcap record");
    }
    w.finish().expect("flushing pcap");
}

/// The frames of a pcap file, in order.
pub fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let f = File::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    Reader::new(std::io::BufReader::new(f))
        .expect("pcap header")
        .map(|r| r.expect("pcap record").data)
        .collect()
}
