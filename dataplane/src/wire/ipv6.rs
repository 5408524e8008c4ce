//! IPv6 headers (RFC 8200) and the extension-header chain.

use std::net::Ipv6Addr;

use super::{Malformed, array, be16, be32};

mod field {
    pub const VER_TC_FLOW: usize = 0;
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: usize = 8;
    pub const DST: usize = 24;
}

/// Length of the fixed header.
pub const HEADER_LEN: usize = 40;
/// Most extension headers walked before the chain is declared malformed.
pub const MAX_EXT_HEADERS: usize = 8;

/// Next-header values of extension headers.
pub mod next_header {
    /// Hop-by-hop options (only directly after the fixed header).
    pub const HOP_BY_HOP: u8 = 0;
    /// Routing.
    pub const ROUTING: u8 = 43;
    /// Fragment.
    pub const FRAGMENT: u8 = 44;
    /// Encapsulating security payload: what follows is encrypted.
    pub const ESP: u8 = 50;
    /// Authentication header.
    pub const AH: u8 = 51;
    /// No next header.
    pub const NONE: u8 = 59;
    /// Destination options.
    pub const DEST_OPTS: u8 = 60;
    /// Mobility.
    pub const MOBILITY: u8 = 135;
    /// Host identity protocol.
    pub const HIP: u8 = 139;
    /// Shim6.
    pub const SHIM6: u8 = 140;
}

/// A view of an IPv6 packet.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// A view without checks.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// A view whose version and payload length are consistent with the buffer.
    pub fn new_checked(buffer: T) -> Result<Self, Malformed> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks the version and that the payload length fits the buffer (jumbograms, with a zero
    /// payload length, are refused).
    pub fn check_len(&self) -> Result<(), Malformed> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Malformed::Truncated);
        }
        if self.version() != 6 {
            return Err(Malformed::Ipv6Length);
        }
        if HEADER_LEN + usize::from(self.payload_len()) > b.len() {
            return Err(Malformed::Truncated);
        }
        Ok(())
    }

    /// Version field (6).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TC_FLOW] >> 4
    }

    /// Payload length (extension headers included).
    pub fn payload_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::PAYLOAD_LEN)
    }

    /// The first next-header value.
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// Source address.
    pub fn src(&self) -> Ipv6Addr {
        Ipv6Addr::from(array::<16>(self.buffer.as_ref(), field::SRC))
    }

    /// Destination address.
    pub fn dst(&self) -> Ipv6Addr {
        Ipv6Addr::from(array::<16>(self.buffer.as_ref(), field::DST))
    }

    /// Source address as a number.
    #[inline]
    pub fn src_bits(&self) -> u128 {
        u128::from_be_bytes(array::<16>(self.buffer.as_ref(), field::SRC))
    }

    /// Destination address as a number.
    #[inline]
    pub fn dst_bits(&self) -> u128 {
        u128::from_be_bytes(array::<16>(self.buffer.as_ref(), field::DST))
    }

    /// Everything after the fixed header, up to the payload length.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + usize::from(self.payload_len())]
    }
}

/// The fragment header's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragHeader {
    /// Offset of this fragment's data in bytes.
    pub offset: u16,
    /// More fragments follow.
    pub more: bool,
    /// Identification.
    pub ident: u32,
}

/// The result of walking the extension headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chain {
    /// The upper-layer protocol (or ESP / no-next-header, where the walk stops).
    pub protocol: u8,
    /// Offset of the upper-layer header from the start of the payload.
    pub upper_offset: usize,
    /// The fragment header, if there is one.
    pub frag: Option<FragHeader>,
    /// Number of extension headers walked.
    pub ext_count: usize,
}

/// Walks the extension headers of `payload` (the bytes after the fixed header, up to the payload
/// length) starting with next header `first`. A non-first fragment stops the walk at the fragment
/// header; ESP and no-next-header stop it too.
pub fn walk(first: u8, payload: &[u8]) -> Result<Chain, Malformed> {
    let mut nh = first;
    let mut off = 0usize;
    let mut frag = None;
    for count in 0..=MAX_EXT_HEADERS {
        let len = match nh {
            next_header::HOP_BY_HOP if count > 0 => return Err(Malformed::Ipv6ExtHeader),
            next_header::HOP_BY_HOP
            | next_header::ROUTING
            | next_header::DEST_OPTS
            | next_header::MOBILITY
            | next_header::HIP
            | next_header::SHIM6 => {
                let l = *payload.get(off + 1).ok_or(Malformed::Ipv6ExtHeader)?;
                (usize::from(l) + 1) * 8
            }
            next_header::AH => {
                let l = *payload.get(off + 1).ok_or(Malformed::Ipv6ExtHeader)?;
                (usize::from(l) + 2) * 4
            }
            next_header::FRAGMENT => 8,
            _ => {
                return Ok(Chain {
                    protocol: nh,
                    upper_offset: off,
                    frag,
                    ext_count: count,
                });
            }
        };
        if off + len > payload.len() {
            return Err(Malformed::Ipv6ExtHeader);
        }
        let next = payload[off];
        if nh == next_header::FRAGMENT {
            let f = FragHeader {
                offset: be16(payload, off + 2) & 0xfff8,
                more: payload[off + 3] & 1 != 0,
                ident: be32(payload, off + 4),
            };
            if frag.replace(f).is_some() {
                return Err(Malformed::Ipv6ExtHeader); // two fragment headers
            }
            if f.offset != 0 {
                // A later fragment: what follows is the middle of the datagram.
                return Ok(Chain {
                    protocol: next,
                    upper_offset: off + len,
                    frag,
                    ext_count: count + 1,
                });
            }
        }
        nh = next;
        off += len;
    }
    Err(Malformed::Ipv6ExtHeader)
}

/// An IPv6 header ferrowall writes (no extension headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Source.
    pub src: Ipv6Addr,
    /// Destination.
    pub dst: Ipv6Addr,
    /// Payload protocol.
    pub next_header: u8,
    /// Payload length.
    pub payload_len: usize,
    /// Hop limit.
    pub hop_limit: u8,
}

impl Repr {
    /// Appends the header to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[0x60, 0, 0, 0]);
        out.extend_from_slice(
            &u16::try_from(self.payload_len)
                .unwrap_or(u16::MAX)
                .to_be_bytes(),
        );
        out.extend_from_slice(&[self.next_header, self.hop_limit]);
        out.extend_from_slice(&self.src.octets());
        out.extend_from_slice(&self.dst.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(nh: u8, payload: &[u8]) -> Vec<u8> {
        let r = Repr {
            src: "fd00::2".parse().unwrap(),
            dst: "2001:db8::10".parse().unwrap(),
            next_header: nh,
            payload_len: payload.len(),
            hop_limit: 64,
        };
        let mut v = Vec::new();
        r.emit(&mut v);
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn fixed_header_round_trip() {
        let p = header(17, &[0; 8]);
        let v = Packet::new_checked(&p[..]).unwrap();
        assert_eq!(
            (v.version(), v.payload_len(), v.next_header(), v.hop_limit()),
            (6, 8, 17, 64)
        );
        assert_eq!(v.src(), "fd00::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(v.dst(), "2001:db8::10".parse::<Ipv6Addr>().unwrap());
        assert_eq!(
            Packet::new_checked(&p[..47]).unwrap_err(),
            Malformed::Truncated
        );
    }

    #[test]
    fn walks_hop_by_hop_routing_dest_opts_ah() {
        let mut chain = vec![43, 0, 1, 4, 0, 0, 0, 0]; // HBH -> routing
        chain.extend_from_slice(&[60, 0, 253, 0, 0, 0, 0, 0]); // routing -> dest opts
        chain.extend_from_slice(&[51, 0, 1, 4, 0, 0, 0, 0]); // dest opts -> AH
        chain.extend_from_slice(&[6, 4, 0, 0, 0, 0, 0x10, 1, 0, 0, 0, 1]); // AH (24 bytes) -> TCP
        chain.extend_from_slice(&[0xaa; 12]);
        chain.extend_from_slice(&[0; 20]);
        let c = walk(0, &chain).unwrap();
        assert_eq!(
            (c.protocol, c.upper_offset, c.ext_count, c.frag),
            (6, 48, 4, None)
        );
    }

    #[test]
    fn fragments_first_and_later() {
        let first = [17, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0];
        let c = walk(44, &first).unwrap();
        assert_eq!(
            c.frag,
            Some(FragHeader {
                offset: 0,
                more: true,
                ident: 9
            })
        );
        assert_eq!((c.protocol, c.upper_offset), (17, 8));
        let later = [17, 0, 0x04, 0xb0, 0, 0, 0, 9, 1, 2, 3];
        let c = walk(44, &later).unwrap();
        assert_eq!(
            c.frag,
            Some(FragHeader {
                offset: 1200,
                more: false,
                ident: 9
            })
        );
        assert_eq!(c.protocol, 17);
    }

    #[test]
    fn malformed_chains() {
        // hop-by-hop not first
        assert_eq!(
            walk(60, &[0, 0, 1, 4, 0, 0, 0, 0, 17, 0, 1, 4, 0, 0, 0, 0]),
            Err(Malformed::Ipv6ExtHeader)
        );
        // header longer than the payload
        assert_eq!(
            walk(60, &[17, 1, 1, 4, 0, 0, 0, 0]),
            Err(Malformed::Ipv6ExtHeader)
        );
        // missing length byte
        assert_eq!(walk(43, &[17]), Err(Malformed::Ipv6ExtHeader));
        // too many headers
        let many: Vec<u8> = (0..10).flat_map(|_| [60u8, 0, 1, 4, 0, 0, 0, 0]).collect();
        assert_eq!(walk(60, &many), Err(Malformed::Ipv6ExtHeader));
        // two fragment headers
        assert_eq!(
            walk(44, &[44, 0, 0, 1, 0, 0, 0, 1, 17, 0, 0, 1, 0, 0, 0, 1]),
            Err(Malformed::Ipv6ExtHeader)
        );
        // ESP and no-next-header stop the walk
        assert_eq!(walk(50, &[1, 2, 3]).unwrap().protocol, 50);
        assert_eq!(walk(59, &[]).unwrap().protocol, 59);
    }
}
