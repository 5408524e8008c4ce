//! What the benchmarks feed the pipeline: test frames and policies, shared by the `perf`
//! binary and the instruction-count example (`perf/examples/icount.rs`).

use anyhow::Result;

/// Writes TCP frames into packet buffers: flow `i` is 10.(i>>16).(i>>8).(i & 255):(1024 + i>>24) ->
/// 192.0.2.10:443, an ACK (flows are picked up mid-stream).
#[derive(Debug, Clone)]
pub struct Feeder {
    frame: [u8; 60],
    next: u32,
    flows: u32,
}

impl Feeder {
    /// A feeder cycling through `flows` flows.
    pub fn new(flows: u32) -> Self {
        let mut frame = [0u8; 60];
        frame[..12].copy_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
        frame[12..14].copy_from_slice(&[0x08, 0x00]);
        frame[14..34].copy_from_slice(&[
            0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 0, 192, 0, 2, 10,
        ]);
        frame[34..54].copy_from_slice(&[
            0, 0, 0x01, 0xbb, 0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0,
        ]);
        Feeder {
            frame,
            next: 0,
            flows: flows.max(1),
        }
    }

    /// Writes the next flow's frame into the first 60 bytes of `d` (left alone if shorter).
    pub fn write(&mut self, d: &mut [u8]) {
        let i = self.next;
        self.next = if self.next + 1 == self.flows {
            0
        } else {
            self.next + 1
        };
        if d.len() < 60 {
            return;
        }
        d[..60].copy_from_slice(&self.frame);
        let a = i.to_be_bytes();
        d[27..30].copy_from_slice(&a[1..]);
        let sport = 1024u16 + u16::from(a[0]);
        d[34..36].copy_from_slice(&sport.to_be_bytes());
    }
}

/// A configuration on two net_null ports with a flow table of `flows` and `rules` (TOML).
pub fn config_with(flows: usize, rules: &str) -> Result<config::Config> {
    let text = format!(
        "[ports.inside]\ndevice = \"net_null0\"\n[ports.outside]\ndevice = \"net_null1\"\n[flows]\ncapacity = {flows}\ntcp_midstream = true\n{rules}"
    );
    Ok(config::parse(&text, "perf.toml")?)
}

/// `n` random rules that the benchmark's traffic (10/8 -> 192.0.2.10:443) never matches: the
/// matcher has to rule every one of them out, the worst case for a linear scan. Default allow.
pub fn random_rules(n: usize, seed: u64) -> String {
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut s = String::new();
    for i in 0..n {
        let r = next();
        let proto = ["tcp", "udp", "any"][(r % 3) as usize];
        let from = ["inside", "outside", "any"][((r >> 2) % 3) as usize];
        let action = ["allow", "drop", "reject"][((r >> 4) % 3) as usize];
        // Destinations in 172.16.0.0/12 (never the traffic's), prefixes /12 to /32.
        let len = 12 + (r >> 8) % 21;
        let addr = 0xac10_0000u32 | (u32::try_from((r >> 16) & 0x000f_ffff).unwrap_or(0));
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        let net = std::net::Ipv4Addr::from(addr & mask);
        s.push_str(&format!(
            "[[rule]]\nname = \"r{i}\"\naction = \"{action}\"\nfrom = \"{from}\"\nproto = \"{proto}\"\ndst_cidr = [\"{net}/{len}\"]\n"
        ));
        if proto != "any" {
            let lo = (r >> 40) % 60000;
            let hi = lo + (r >> 56) % 100;
            s.push_str(&format!("dst_ports = [\"{lo}-{hi}\"]\n"));
        }
        if (r >> 36) % 4 == 0 {
            // Some rules also name sources; the traffic's source is inside 10/8.
            s.push_str(&format!("src_cidr = [\"10.{}.0.0/16\"]\n", (r >> 28) % 256));
        }
    }
    s.push_str("[default]\naction = \"allow\"\n");
    s
}
