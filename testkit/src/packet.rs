//! A packet builder for tests, written independently of ferrowall's own wire code (so tests do
//! not check the parser against itself), and checked against tshark in this crate's tests.

use std::net::IpAddr;

/// TCP flag bits.
pub mod tcp {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

/// The MAC the lab's inside client uses in built frames.
pub const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// The MAC of the far side in built frames.
pub const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

/// An IPv6 extension header placed before the transport header.
#[derive(Debug, Clone)]
pub enum Ext {
    /// Hop-by-hop options (PadN only), `len8` units of 8 bytes after the first 8.
    HopByHop(u8),
    /// Destination options (PadN only).
    DestOpts(u8),
    /// Routing header of the experimental type 253, no segments left.
    Routing,
    /// Fragment header: offset in 8-byte units, more-fragments flag, identification.
    Fragment(u16, bool, u32),
    /// Authentication header with a 12-byte ICV.
    Ah,
}

#[derive(Debug, Clone)]
enum L4 {
    Tcp {
        sport: u16,
        dport: u16,
        seq: u32,
        ack: u32,
        flags: u8,
        window: u16,
    },
    Udp {
        sport: u16,
        dport: u16,
    },
    Icmp {
        ty: u8,
        code: u8,
        rest: [u8; 4],
    },
    Other(u8),
}

/// A packet under construction. Build with [`Pkt::build`].
#[derive(Debug, Clone)]
pub struct Pkt {
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    /// (TPID, VLAN id), outermost first.
    vlans: Vec<(u16, u16)>,
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    ip_id: u32,
    /// IPv4 fragment: (offset in 8-byte units, more fragments).
    v4_frag: Option<(u16, bool)>,
    v4_options: Vec<u8>,
    v6_ext: Vec<Ext>,
    l4: L4,
    payload: Vec<u8>,
    pad_to: usize,
}

fn ip(s: &str) -> IpAddr {
    s.parse()
        .unwrap_or_else(|_| panic!("bad address in test: {s}"))
}

impl Pkt {
    /// A UDP packet from `src` to `dst` (either family; both must match), ports 0, no payload.
    pub fn new(src: &str, dst: &str) -> Pkt {
        let (src, dst) = (ip(src), ip(dst));
        assert_eq!(src.is_ipv4(), dst.is_ipv4(), "address families differ");
        Pkt {
            src_mac: CLIENT_MAC,
            dst_mac: SERVER_MAC,
            vlans: Vec::new(),
            src,
            dst,
            ttl: 64,
            ip_id: 1,
            v4_frag: None,
            v4_options: Vec::new(),
            v6_ext: Vec::new(),
            l4: L4::Udp { sport: 0, dport: 0 },
            payload: Vec::new(),
            pad_to: 60,
        }
    }

    /// TCP with these ports and flags (seq 1000, ack 0 unless set).
    pub fn tcp(mut self, sport: u16, dport: u16, flags: u8) -> Pkt {
        self.l4 = L4::Tcp {
            sport,
            dport,
            seq: 1000,
            ack: 0,
            flags,
            window: 64240,
        };
        self
    }

    /// Sets the TCP sequence and acknowledgement numbers.
    pub fn seq_ack(mut self, s: u32, a: u32) -> Pkt {
        if let L4::Tcp { seq, ack, .. } = &mut self.l4 {
            *seq = s;
            *ack = a;
        }
        self
    }

    /// UDP with these ports.
    pub fn udp(mut self, sport: u16, dport: u16) -> Pkt {
        self.l4 = L4::Udp { sport, dport };
        self
    }

    /// ICMP (v4) or ICMPv6 (v6), by the address family, with type, code and the 4 bytes after
    /// the checksum.
    pub fn icmp(mut self, ty: u8, code: u8, rest: [u8; 4]) -> Pkt {
        self.l4 = L4::Icmp { ty, code, rest };
        self
    }

    /// An echo request (v4 type 8, v6 type 128) with identifier and sequence.
    pub fn echo_request(self, id: u16, seq: u16) -> Pkt {
        let ty = if self.src.is_ipv4() { 8 } else { 128 };
        self.icmp(ty, 0, echo_rest(id, seq))
    }

    /// An echo reply (v4 type 0, v6 type 129).
    pub fn echo_reply(self, id: u16, seq: u16) -> Pkt {
        let ty = if self.src.is_ipv4() { 0 } else { 129 };
        self.icmp(ty, 0, echo_rest(id, seq))
    }

    /// Another IP protocol with just the payload.
    pub fn proto(mut self, p: u8) -> Pkt {
        self.l4 = L4::Other(p);
        self
    }

    /// The transport payload.
    pub fn payload(mut self, p: &[u8]) -> Pkt {
        self.payload = p.to_vec();
        self
    }

    /// Adds an 802.1Q tag (outermost first when called repeatedly).
    pub fn vlan(mut self, id: u16) -> Pkt {
        self.vlans.push((0x8100, id));
        self
    }

    /// Adds an 802.1ad service tag outside any 802.1Q tag: QinQ.
    pub fn qinq(mut self, outer: u16, inner: u16) -> Pkt {
        self.vlans.push((0x88a8, outer));
        self.vlans.push((0x8100, inner));
        self
    }

    /// Swaps the MAC addresses (a reply's frame).
    pub fn macs(mut self, src: [u8; 6], dst: [u8; 6]) -> Pkt {
        self.src_mac = src;
        self.dst_mac = dst;
        self
    }

    /// IPv4 identification / IPv6 fragment identification used by [`Pkt::fragments`].
    pub fn ip_id(mut self, id: u32) -> Pkt {
        self.ip_id = id;
        self
    }

    /// IPv4 options (padded to 4 bytes by the builder).
    pub fn v4_options(mut self, opts: &[u8]) -> Pkt {
        self.v4_options = opts.to_vec();
        self
    }

    /// Adds an IPv6 extension header (in order).
    pub fn ext(mut self, e: Ext) -> Pkt {
        self.v6_ext.push(e);
        self
    }

    /// Pads the frame with zeros to at least `len` bytes (60 by default: Ethernet's minimum).
    pub fn pad_to(mut self, len: usize) -> Pkt {
        self.pad_to = len;
        self
    }

    fn proto_number(&self) -> u8 {
        match self.l4 {
            L4::Tcp { .. } => 6,
            L4::Udp { .. } => 17,
            L4::Icmp { .. } if self.src.is_ipv4() => 1,
            L4::Icmp { .. } => 58,
            L4::Other(p) => p,
        }
    }

    /// The transport header and payload, checksummed.
    pub fn l4_bytes(&self) -> Vec<u8> {
        let mut b = Vec::new();
        match self.l4 {
            L4::Tcp {
                sport,
                dport,
                seq,
                ack,
                flags,
                window,
            } => {
                b.extend_from_slice(&sport.to_be_bytes());
                b.extend_from_slice(&dport.to_be_bytes());
                b.extend_from_slice(&seq.to_be_bytes());
                b.extend_from_slice(&ack.to_be_bytes());
                b.push(5 << 4);
                b.push(flags);
                b.extend_from_slice(&window.to_be_bytes());
                b.extend_from_slice(&[0, 0, 0, 0]);
            }
            L4::Udp { sport, dport } => {
                b.extend_from_slice(&sport.to_be_bytes());
                b.extend_from_slice(&dport.to_be_bytes());
                let len = u16::try_from(8 + self.payload.len()).expect("UDP length");
                b.extend_from_slice(&len.to_be_bytes());
                b.extend_from_slice(&[0, 0]);
            }
            L4::Icmp { ty, code, rest } => {
                b.extend_from_slice(&[ty, code, 0, 0]);
                b.extend_from_slice(&rest);
            }
            L4::Other(_) => {}
        }
        b.extend_from_slice(&self.payload);
        let csum_at = match self.l4 {
            L4::Tcp { .. } => Some(16),
            L4::Udp { .. } => Some(6),
            L4::Icmp { .. } => Some(2),
            L4::Other(_) => None,
        };
        if let Some(at) = csum_at {
            let pseudo = if matches!(self.l4, L4::Icmp { .. }) && self.src.is_ipv4() {
                0 // ICMPv4 has no pseudo-header
            } else {
                self.pseudo_sum(b.len())
            };
            let mut c = finish(sum(&b, pseudo));
            if c == 0 && matches!(self.l4, L4::Udp { .. }) {
                c = 0xffff;
            }
            b[at..at + 2].copy_from_slice(&c.to_be_bytes());
        }
        b
    }

    fn pseudo_sum(&self, len: usize) -> u32 {
        let mut p = Vec::new();
        match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                p.extend_from_slice(&s.octets());
                p.extend_from_slice(&d.octets());
                p.extend_from_slice(&[0, self.proto_number()]);
                p.extend_from_slice(&u16::try_from(len).expect("len").to_be_bytes());
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                p.extend_from_slice(&s.octets());
                p.extend_from_slice(&d.octets());
                p.extend_from_slice(&u32::try_from(len).expect("len").to_be_bytes());
                p.extend_from_slice(&[0, 0, 0, self.proto_number()]);
            }
            _ => unreachable!("families checked in new"),
        }
        sum(&p, 0)
    }

    /// The IP packet (header, extension headers, transport), without the link layer.
    pub fn ip_bytes(&self) -> Vec<u8> {
        let l4 = self.l4_bytes();
        self.ip_wrap(&l4, self.v4_frag, None)
    }

    fn ip_wrap(&self, body: &[u8], v4_frag: Option<(u16, bool)>, v6_frag: Option<Ext>) -> Vec<u8> {
        match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let mut opts = self.v4_options.clone();
                while opts.len() % 4 != 0 {
                    opts.push(0);
                }
                let ihl = 5 + opts.len() / 4;
                let total = ihl * 4 + body.len();
                let mut h = vec![0x40 | u8::try_from(ihl).expect("ihl"), 0];
                h.extend_from_slice(&u16::try_from(total).expect("total").to_be_bytes());
                h.extend_from_slice(
                    &u16::try_from(self.ip_id & 0xffff)
                        .expect("id")
                        .to_be_bytes(),
                );
                let (off, mf) = v4_frag.unwrap_or((0, false));
                let ff = off | if mf { 0x2000 } else { 0 };
                h.extend_from_slice(&ff.to_be_bytes());
                h.extend_from_slice(&[self.ttl, self.proto_number(), 0, 0]);
                h.extend_from_slice(&s.octets());
                h.extend_from_slice(&d.octets());
                h.extend_from_slice(&opts);
                let c = finish(sum(&h, 0));
                h[10..12].copy_from_slice(&c.to_be_bytes());
                h.extend_from_slice(body);
                h
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let mut exts = self.v6_ext.clone();
                if let Some(f) = v6_frag {
                    exts.push(f);
                }
                let mut chain = Vec::new();
                let mut next_headers = Vec::new();
                for e in &exts {
                    next_headers.push(match e {
                        Ext::HopByHop(_) => 0u8,
                        Ext::DestOpts(_) => 60,
                        Ext::Routing => 43,
                        Ext::Fragment(..) => 44,
                        Ext::Ah => 51,
                    });
                }
                next_headers.push(self.proto_number());
                for (i, e) in exts.iter().enumerate() {
                    let nh = next_headers[i + 1];
                    match e {
                        Ext::HopByHop(n) | Ext::DestOpts(n) => {
                            let total = 8 * (usize::from(*n) + 1);
                            chain.extend_from_slice(&[
                                nh,
                                *n,
                                1,
                                u8::try_from(total - 4).expect("padn"),
                            ]);
                            chain.extend(std::iter::repeat_n(0, total - 4));
                        }
                        Ext::Routing => chain.extend_from_slice(&[nh, 0, 253, 0, 0, 0, 0, 0]),
                        Ext::Fragment(off, more, id) => {
                            chain.extend_from_slice(&[nh, 0]);
                            chain.extend_from_slice(&((off << 3) | u16::from(*more)).to_be_bytes());
                            chain.extend_from_slice(&id.to_be_bytes());
                        }
                        Ext::Ah => {
                            // Payload length in 4-byte units minus 2: 12 fixed + 12 ICV = 24 bytes.
                            chain.extend_from_slice(&[nh, 4, 0, 0]);
                            chain.extend_from_slice(&[0, 0, 0x10, 0x01]); // SPI
                            chain.extend_from_slice(&[0, 0, 0, 1]); // sequence
                            chain.extend_from_slice(&[0xaa; 12]);
                        }
                    }
                }
                let plen = chain.len() + body.len();
                let mut h = vec![0x60, 0, 0, 0];
                h.extend_from_slice(&u16::try_from(plen).expect("plen").to_be_bytes());
                h.extend_from_slice(&[next_headers[0], self.ttl]);
                h.extend_from_slice(&s.octets());
                h.extend_from_slice(&d.octets());
                h.extend_from_slice(&chain);
                h.extend_from_slice(body);
                h
            }
            _ => unreachable!("families checked in new"),
        }
    }

    fn link_wrap(&self, ip: &[u8]) -> Vec<u8> {
        let mut f = Vec::with_capacity(ip.len() + 22);
        f.extend_from_slice(&self.dst_mac);
        f.extend_from_slice(&self.src_mac);
        for (tpid, id) in &self.vlans {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&id.to_be_bytes());
        }
        let et: u16 = if self.src.is_ipv4() { 0x0800 } else { 0x86dd };
        f.extend_from_slice(&et.to_be_bytes());
        f.extend_from_slice(ip);
        if f.len() < self.pad_to {
            f.resize(self.pad_to, 0);
        }
        f
    }

    /// The Ethernet frame.
    pub fn build(&self) -> Vec<u8> {
        self.link_wrap(&self.ip_bytes())
    }

    /// The packet split into IP fragments carrying at most `size` bytes of transport data each
    /// (`size` a multiple of 8), as Ethernet frames in order.
    pub fn fragments(&self, size: usize) -> Vec<Vec<u8>> {
        assert!(
            size > 0 && size % 8 == 0,
            "fragment size must be a multiple of 8"
        );
        let l4 = self.l4_bytes();
        let mut out = Vec::new();
        let mut off = 0;
        while off < l4.len() {
            let end = (off + size).min(l4.len());
            let more = end < l4.len();
            let off8 = u16::try_from(off / 8).expect("offset");
            let ip = if self.src.is_ipv4() {
                self.ip_wrap(&l4[off..end], Some((off8, more)), None)
            } else {
                self.ip_wrap(
                    &l4[off..end],
                    None,
                    Some(Ext::Fragment(off8, more, self.ip_id)),
                )
            };
            out.push(self.link_wrap(&ip));
            off = end;
        }
        out
    }
}

fn echo_rest(id: u16, seq: u16) -> [u8; 4] {
    let (i, s) = (id.to_be_bytes(), seq.to_be_bytes());
    [i[0], i[1], s[0], s[1]]
}

/// An ARP request frame (who has `target`? tell `sender`).
pub fn arp_request(sender: [u8; 4], target: [u8; 4]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&CLIENT_MAC);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&CLIENT_MAC);
    f.extend_from_slice(&sender);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target);
    f.resize(60, 0);
    f
}

/// A frame of an EtherType ferrowall does not forward (here LLDP).
pub fn non_ip_frame() -> Vec<u8> {
    let mut f = vec![0x01, 0x80, 0xc2, 0, 0, 0x0e];
    f.extend_from_slice(&CLIENT_MAC);
    f.extend_from_slice(&[0x88, 0xcc]);
    f.resize(60, 0);
    f
}

fn sum(b: &[u8], init: u32) -> u32 {
    let mut s = init;
    for c in b.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        s += u32::from(w);
    }
    s
}

fn finish(mut s: u32) -> u16 {
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !u16::try_from(s).unwrap_or(0xffff)
}
