//! Fuzz seeds made from the real captures of ../shared/captures.

use std::path::{Path, PathBuf};

use dataplane::pcap::{Link, Reader};

/// Every capture file under `dir`, sorted.
pub fn capture_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "pcap") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

/// The frames of a capture as Ethernet frames (as replay feeds them to the pipeline).
pub fn ethernet_frames(path: &Path) -> Vec<Vec<u8>> {
    let Ok(f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let Ok(r) = Reader::new(std::io::BufReader::new(f)) else {
        return Vec::new();
    };
    let Ok(link) = Link::new(r.linktype()) else {
        return Vec::new();
    };
    r.map_while(Result::ok)
        .map(|rec| link.to_ethernet(&rec.data))
        .collect()
}

/// Seeds for the `parse` target: every distinct frame of every capture.
pub fn parse_seeds(dir: &Path) -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = capture_files(dir)
        .iter()
        .flat_map(|p| ethernet_frames(p))
        .collect();
    seeds.sort();
    seeds.dedup();
    seeds
}

/// Seeds for the `pipeline` target: each capture (its first 256 frames) as one input, sides
/// alternating by source/destination order, 0-200 ms between packets.
pub fn pipeline_seeds(dir: &Path) -> Vec<Vec<u8>> {
    capture_files(dir)
        .iter()
        .map(|p| {
            let mut input = Vec::new();
            for (i, f) in ethernet_frames(p).iter().take(256).enumerate() {
                let len = u16::try_from(f.len()).unwrap_or(u16::MAX);
                input.extend_from_slice(&len.to_be_bytes());
                input.push(((i % 3) as u8) << 1 | (f.get(26).copied().unwrap_or(0) & 1));
                input.extend_from_slice(&f[..usize::from(len)]);
            }
            input
        })
        .collect()
}

/// Seeds for the `dns` target: every UDP or TCP payload to or from port 53 (TCP without its
/// length prefix when it holds one whole message).
pub fn dns_seeds(dir: &Path) -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for p in capture_files(dir) {
        for f in ethernet_frames(&p) {
            let Ok(dataplane::packet::Frame::Ip(ip)) = dataplane::packet::parse(&f) else {
                continue;
            };
            let (start, end) = (
                usize::from(ip.l4_offset),
                usize::from(ip.ip_end).min(f.len()),
            );
            let payload = match ip.l4 {
                dataplane::packet::L4::Udp { sport, dport } if sport == 53 || dport == 53 => {
                    f.get(start + 8..end)
                }
                dataplane::packet::L4::Tcp { sport, dport, .. } if sport == 53 || dport == 53 => {
                    let hl = f.get(start + 12).map_or(0, |b| usize::from(b >> 4) * 4);
                    f.get(start + hl + 2..end)
                }
                _ => None,
            };
            if let Some(p) = payload.filter(|p| p.len() >= 12) {
                seeds.push(p.to_vec());
            }
        }
    }
    seeds.sort();
    seeds.dedup();
    seeds
}

/// Seeds for the `learner` target: the DNS responses of the captures, each as one record.
pub fn learner_seeds(dir: &Path) -> Vec<Vec<u8>> {
    dns_seeds(dir)
        .into_iter()
        .filter(|m| m.get(2).is_some_and(|b| b & 0x80 != 0))
        .map(|m| {
            let mut input = u16::try_from(m.len())
                .unwrap_or(u16::MAX)
                .to_be_bytes()
                .to_vec();
            input.push(1);
            input.extend_from_slice(&m);
            input
        })
        .collect()
}

/// A stable file name for a seed.
pub fn seed_name(data: &[u8]) -> String {
    // FNV-1a: a name that only depends on the bytes.
    let h = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    format!("generated-{h:016x}")
}
