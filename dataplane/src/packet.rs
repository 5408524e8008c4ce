//! One pass over a frame's headers (L2 to L4) into the summary the pipeline decides on.
//!
//! The walk uses the checked views of [`crate::wire`]; anything malformed becomes a
//! [`DropReason`]. No allocation, no panic, whatever the bytes.

use std::net::IpAddr;

use crate::drop::DropReason;
use crate::flow::{addr_from_bits, v4_bits};
use crate::wire::{Malformed, ethernet, icmp, ipv4, ipv6, tcp, udp};

/// IP protocol numbers.
pub mod proto {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
}

/// What kind of frame it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// ARP: always passed by the bridge.
    Arp,
    /// An IP packet.
    Ip(IpPacket),
}

/// A fragment's place in its datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// Identification (16 bits for IPv4, 32 for IPv6).
    pub ident: u32,
    /// Offset of this fragment's data in bytes.
    pub offset: u16,
    /// More fragments follow.
    pub more: bool,
}

impl Fragment {
    /// Whether this fragment starts the datagram (and carries the transport header).
    pub fn is_first(&self) -> bool {
        self.offset == 0
    }
}

/// The transport layer, as far as the pipeline needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4 {
    /// TCP.
    Tcp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
        /// Flag bits.
        flags: u8,
        /// Sequence number.
        seq: u32,
        /// Acknowledgement number.
        ack: u32,
        /// Bytes of data in this segment (this fragment's, for a first fragment).
        payload_len: u16,
    },
    /// UDP.
    Udp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
    },
    /// ICMP or ICMPv6.
    Icmp {
        /// Type.
        ty: u8,
        /// Code.
        code: u8,
        /// Echo identifier (meaningful for echo messages).
        ident: u16,
    },
    /// Another protocol (or ESP), not looked into.
    Other,
    /// A later fragment: no transport header here.
    Fragment,
}

/// An IP packet's summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpPacket {
    /// Offset of the IP header in the frame.
    pub l3_offset: u16,
    /// Offset just past the IP packet (Ethernet padding excluded).
    pub ip_end: u16,
    /// Source address, IPv4 as an IPv4-mapped IPv6 address (see [`crate::flow::addr_bits`]).
    pub src: u128,
    /// Destination address, likewise.
    pub dst: u128,
    /// IPv6 (the addresses are IPv6 addresses, even IPv4-mapped looking ones).
    pub v6: bool,
    /// The upper-layer protocol (after IPv6 extension headers).
    pub proto: u8,
    /// Set when the packet is a fragment.
    pub frag: Option<Fragment>,
    /// Offset of the transport header in the frame (when there is one).
    pub l4_offset: u16,
    /// The transport layer.
    pub l4: L4,
}

impl IpPacket {
    /// Whether this is IPv6.
    #[inline]
    pub fn is_v6(&self) -> bool {
        self.v6
    }

    /// The source address.
    pub fn src_ip(&self) -> IpAddr {
        addr_from_bits(self.src, self.v6)
    }

    /// The destination address.
    pub fn dst_ip(&self) -> IpAddr {
        addr_from_bits(self.dst, self.v6)
    }

    /// Bytes of the IP packet (header included).
    pub fn ip_len(&self) -> u16 {
        self.ip_end - self.l3_offset
    }
}

fn off(n: usize) -> u16 {
    // Frames are at most 64 KiB (MAX_RECORD / mbuf data room); saturate rather than wrap.
    u16::try_from(n).unwrap_or(u16::MAX)
}

/// Reads `frame` if it is the commonest packet: untagged IPv4 (no options) or IPv6 (no
/// extension headers), not fragmented, TCP or UDP, every length consistent. For every frame it
/// reads, [`parse`] returns the same summary (`Ok(Frame::Ip(..))`, equal field for field); it
/// only does less work, so that the fast path (and a new flow's first packet) pays for no more.
#[inline(always)]
pub fn parse_fast(frame: &[u8]) -> Option<IpPacket> {
    if frame.len() > usize::from(u16::MAX) {
        return None; // `parse` refuses these (truncated).
    }
    // Each header is read as a fixed-size array taken with one length check, so its fields
    // are read without further checks.
    let (eth, ip) = frame.split_first_chunk::<{ ethernet::HEADER_LEN }>()?;
    let l3_offset = ethernet::HEADER_LEN;
    let (src, dst, v6, proto, hl, l4) = match u16::from_be_bytes([eth[12], eth[13]]) {
        ethernet::ethertype::IPV4 => {
            let h: &[u8; ipv4::HEADER_LEN] = ip.first_chunk()?;
            // Version 4, no options; not a fragment (MF clear, offset 0). A total length
            // under 20 makes the range below reversed, which `get` refuses.
            if h[0] != 0x45 || h[6] & 0x3f != 0 || h[7] != 0 {
                return None;
            }
            let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
            let src = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
            let dst = u32::from_be_bytes([h[16], h[17], h[18], h[19]]);
            let l4 = ip.get(ipv4::HEADER_LEN..total)?;
            (
                v4_bits(src),
                v4_bits(dst),
                false,
                h[9],
                ipv4::HEADER_LEN,
                l4,
            )
        }
        ethernet::ethertype::IPV6 => {
            let (h, rest) = ip.split_first_chunk::<{ ipv6::HEADER_LEN }>()?;
            if h[0] >> 4 != 6 {
                return None;
            }
            let plen = usize::from(u16::from_be_bytes([h[4], h[5]]));
            let (src, dst) = h[8..].split_at(16);
            let src = u128::from_be_bytes(src.try_into().ok()?);
            let dst = u128::from_be_bytes(dst.try_into().ok()?);
            (src, dst, true, h[6], ipv6::HEADER_LEN, rest.get(..plen)?)
        }
        _ => return None,
    };
    let l4_offset = l3_offset + hl;
    let summary = match proto {
        proto::TCP => {
            let h: &[u8; tcp::HEADER_LEN] = l4.first_chunk()?;
            let doff = usize::from(h[12] >> 4) * 4;
            if doff < tcp::HEADER_LEN || doff > l4.len() {
                return None;
            }
            L4::Tcp {
                sport: u16::from_be_bytes([h[0], h[1]]),
                dport: u16::from_be_bytes([h[2], h[3]]),
                flags: h[13],
                seq: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
                ack: u32::from_be_bytes([h[8], h[9], h[10], h[11]]),
                payload_len: off(l4.len() - doff),
            }
        }
        proto::UDP => {
            let h: &[u8; udp::HEADER_LEN] = l4.first_chunk()?;
            let ulen = usize::from(u16::from_be_bytes([h[4], h[5]]));
            if ulen < udp::HEADER_LEN || ulen > l4.len() {
                return None;
            }
            L4::Udp {
                sport: u16::from_be_bytes([h[0], h[1]]),
                dport: u16::from_be_bytes([h[2], h[3]]),
            }
        }
        _ => return None,
    };
    Some(IpPacket {
        l3_offset: off(l3_offset),
        ip_end: off(l4_offset + l4.len()),
        src,
        dst,
        v6,
        proto,
        frag: None,
        l4_offset: off(l4_offset),
        l4: summary,
    })
}

/// What the established fast path needs of an untagged IPv4 TCP or UDP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V4Ports {
    /// Source address.
    pub src: u32,
    /// Destination address.
    pub dst: u32,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// [`proto::TCP`] or [`proto::UDP`].
    pub proto: u8,
    /// TCP flags (0 for UDP).
    pub tcp_flags: u8,
}

/// Frame bytes up to the end of the TCP flags (Ethernet, IPv4 without options, TCP).
const V4_TCP_END: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN + tcp::HEADER_LEN;
/// Frame bytes up to the end of the UDP header.
const V4_UDP_END: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN + udp::HEADER_LEN;

/// Reads `frame` if [`parse_fast`] reads it as IPv4 TCP or UDP, with the same fields: the
/// established path's reader, from fixed offsets, with no [`IpPacket`] to build. Any other
/// frame (IPv6 included) gives `None` and is for [`parse_fast`] to read.
#[inline(always)]
pub fn read_v4(frame: &[u8]) -> Option<V4Ports> {
    let h: &[u8; V4_UDP_END] = frame.first_chunk()?;
    // Ethernet type IPv4; version 4 and no options; not a fragment (MF clear, offset 0).
    if h[12] != 0x08 || h[13] != 0x00 || h[14] != 0x45 || h[20] & 0x3f != 0 || h[21] != 0 {
        return None;
    }
    if frame.len() > usize::from(u16::MAX) {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([h[16], h[17]]));
    // The transport bytes the IPv4 total length gives, all in the frame.
    let l4_len = total.checked_sub(ipv4::HEADER_LEN)?;
    if ethernet::HEADER_LEN + total > frame.len() {
        return None;
    }
    let proto = h[23];
    let tcp_flags = match proto {
        proto::TCP => {
            let t: &[u8; V4_TCP_END] = frame.first_chunk()?;
            let doff = usize::from(t[46] >> 4) * 4;
            if doff < tcp::HEADER_LEN || doff > l4_len {
                return None;
            }
            t[47]
        }
        proto::UDP => {
            let ulen = usize::from(u16::from_be_bytes([h[38], h[39]]));
            if ulen < udp::HEADER_LEN || ulen > l4_len {
                return None;
            }
            0
        }
        _ => return None,
    };
    Some(V4Ports {
        src: u32::from_be_bytes([h[26], h[27], h[28], h[29]]),
        dst: u32::from_be_bytes([h[30], h[31], h[32], h[33]]),
        sport: u16::from_be_bytes([h[34], h[35]]),
        dport: u16::from_be_bytes([h[36], h[37]]),
        proto,
        tcp_flags,
    })
}

/// Parses a frame.
#[inline(always)]
pub fn parse(frame: &[u8]) -> Result<Frame, DropReason> {
    if frame.len() > usize::from(u16::MAX) {
        return Err(DropReason::Truncated);
    }
    let l2 = ethernet::parse(frame)?;
    let l3 = &frame[l2.l3_offset..];
    match l2.ethertype {
        ethernet::ethertype::ARP => Ok(Frame::Arp),
        ethernet::ethertype::IPV4 => parse_ipv4(l3, l2.l3_offset).map(Frame::Ip),
        ethernet::ethertype::IPV6 => parse_ipv6(l3, l2.l3_offset).map(Frame::Ip),
        _ => Err(DropReason::NonIp),
    }
}

/// Parses an IPv4 packet that starts at `l3_offset` of its frame.
#[inline(always)]
pub fn parse_ipv4(b: &[u8], l3_offset: usize) -> Result<IpPacket, DropReason> {
    let p = ipv4::Packet::new_checked(b)?;
    let hl = p.header_len();
    let frag = (p.more_frags() || p.frag_offset() != 0).then(|| Fragment {
        ident: u32::from(p.ident()),
        offset: p.frag_offset(),
        more: p.more_frags(),
    });
    let proto = p.protocol();
    let (l4, _) = parse_l4(proto, p.payload(), frag, false)?;
    Ok(IpPacket {
        l3_offset: off(l3_offset),
        ip_end: off(l3_offset + usize::from(p.total_len())),
        src: v4_bits(p.src_bits()),
        dst: v4_bits(p.dst_bits()),
        v6: false,
        proto,
        frag,
        l4_offset: off(l3_offset + hl),
        l4,
    })
}

/// Parses an IPv6 packet that starts at `l3_offset` of its frame.
#[inline(always)]
pub fn parse_ipv6(b: &[u8], l3_offset: usize) -> Result<IpPacket, DropReason> {
    let p = ipv6::Packet::new_checked(b)?;
    let payload = p.payload();
    let chain = ipv6::walk(p.next_header(), payload).map_err(|e| match e {
        // A first fragment must carry the whole chain (RFC 7112).
        Malformed::Ipv6ExtHeader if p.next_header() == ipv6::next_header::FRAGMENT => {
            Malformed::FragmentTooSmall
        }
        e => e,
    })?;
    let frag = chain.frag.map(|f| Fragment {
        ident: f.ident,
        offset: f.offset,
        more: f.more,
    });
    let upper = &payload[chain.upper_offset..];
    let (l4, _) = parse_l4(chain.protocol, upper, frag, true)?;
    Ok(IpPacket {
        l3_offset: off(l3_offset),
        ip_end: off(l3_offset + ipv6::HEADER_LEN + payload.len()),
        src: p.src_bits(),
        dst: p.dst_bits(),
        v6: true,
        proto: chain.protocol,
        frag,
        l4_offset: off(l3_offset + ipv6::HEADER_LEN + chain.upper_offset),
        l4,
    })
}

/// Parses the transport header in `b` (this fragment's share of the datagram). Returns the
/// summary and the transport header's length.
#[inline(always)]
fn parse_l4(
    proto: u8,
    b: &[u8],
    frag: Option<Fragment>,
    v6: bool,
) -> Result<(L4, usize), DropReason> {
    let fragmented = frag.is_some();
    if let Some(f) = frag {
        if !f.is_first() {
            // RFC 1858: a fragment at offset 8 can only be there to overwrite TCP flags.
            if proto == proto::TCP && f.offset == 8 {
                return Err(DropReason::FragmentTooSmall);
            }
            return Ok((L4::Fragment, 0));
        }
    }
    // In a first fragment the transport header must be whole; otherwise it is truncation.
    let short = |m: Malformed| -> DropReason {
        if fragmented && m == Malformed::Truncated {
            DropReason::FragmentTooSmall
        } else {
            m.into()
        }
    };
    match proto {
        proto::TCP => {
            let t = tcp::Packet::new_checked(b).map_err(|m| {
                if fragmented {
                    DropReason::FragmentTooSmall
                } else {
                    short(m)
                }
            })?;
            let hl = t.header_len();
            Ok((
                L4::Tcp {
                    sport: t.src_port(),
                    dport: t.dst_port(),
                    flags: t.flags(),
                    seq: t.seq(),
                    ack: t.ack(),
                    payload_len: off(b.len() - hl),
                },
                hl,
            ))
        }
        proto::UDP => {
            // A fragmented datagram's length field covers all fragments: check only the header.
            let u = if fragmented {
                if b.len() < udp::HEADER_LEN {
                    return Err(DropReason::FragmentTooSmall);
                }
                udp::Packet::new_unchecked(b)
            } else {
                udp::Packet::new_checked(b).map_err(short)?
            };
            Ok((
                L4::Udp {
                    sport: u.src_port(),
                    dport: u.dst_port(),
                },
                udp::HEADER_LEN,
            ))
        }
        proto::ICMP | proto::ICMPV6 if (proto == proto::ICMPV6) == v6 => {
            let i = icmp::Packet::new_checked(b).map_err(short)?;
            Ok((
                L4::Icmp {
                    ty: i.msg_type(),
                    code: i.code(),
                    ident: i.echo_ident(),
                },
                icmp::HEADER_LEN,
            ))
        }
        _ => Ok((L4::Other, 0)),
    }
}

/// The packet an ICMP error quotes: its IP header and at least the first 8 bytes of transport.
///
/// Returns the quoted packet's summary, or `None` if it can not be read (then the error belongs
/// to no flow). The quote may be cut short by the error's size limit, so lengths are only checked
/// as far as the first 8 transport bytes.
pub fn quoted(frame: &[u8], p: &IpPacket) -> Option<IpPacket> {
    let start = usize::from(p.l4_offset) + icmp::HEADER_LEN;
    let end = usize::from(p.ip_end);
    let q = frame.get(start..end)?;
    let version = q.first()? >> 4;
    let (src, dst, proto, upper): (u128, u128, u8, &[u8]) = match (version, p.is_v6()) {
        (4, false) => {
            if q.len() < ipv4::HEADER_LEN {
                return None;
            }
            let h = ipv4::Packet::new_unchecked(q);
            let hl = h.header_len();
            if hl < ipv4::HEADER_LEN || q.len() < hl {
                return None;
            }
            if h.frag_offset() != 0 {
                return None; // a later fragment carries no ports to find the flow by
            }
            (
                v4_bits(h.src_bits()),
                v4_bits(h.dst_bits()),
                h.protocol(),
                &q[hl..],
            )
        }
        (6, true) => {
            if q.len() < ipv6::HEADER_LEN {
                return None;
            }
            let h = ipv6::Packet::new_unchecked(q);
            let rest = &q[ipv6::HEADER_LEN..];
            let chain = ipv6::walk(h.next_header(), rest).ok()?;
            if chain.frag.is_some_and(|f| f.offset != 0) {
                return None;
            }
            (
                h.src_bits(),
                h.dst_bits(),
                chain.protocol,
                &rest[chain.upper_offset..],
            )
        }
        _ => return None,
    };
    if upper.len() < 8 {
        return None;
    }
    let be16 = |i: usize| u16::from_be_bytes([upper[i], upper[i + 1]]);
    let l4 = match proto {
        proto::TCP => L4::Tcp {
            sport: be16(0),
            dport: be16(2),
            flags: 0,
            seq: u32::from_be_bytes([upper[4], upper[5], upper[6], upper[7]]),
            ack: 0,
            payload_len: 0,
        },
        proto::UDP => L4::Udp {
            sport: be16(0),
            dport: be16(2),
        },
        proto::ICMP | proto::ICMPV6 => L4::Icmp {
            ty: upper[0],
            code: upper[1],
            ident: be16(4),
        },
        _ => L4::Other,
    };
    Some(IpPacket {
        l3_offset: off(start),
        ip_end: off(end),
        src,
        dst,
        v6: p.v6,
        proto,
        frag: None,
        l4_offset: 0,
        l4,
    })
}
