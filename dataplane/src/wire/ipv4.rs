//! IPv4 headers (RFC 791). Options are skipped, not interpreted.

use std::net::Ipv4Addr;

use super::{Malformed, array, be16, checksum};

mod field {
    pub const VER_IHL: usize = 0;
    pub const LENGTH: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLG_OFF: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;

/// A view of an IPv4 packet.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// A view without checks.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// A view whose version, header length and total length are consistent with the buffer
    /// (which may be longer: Ethernet pads short frames).
    pub fn new_checked(buffer: T) -> Result<Self, Malformed> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks version, IHL and total length against the buffer.
    pub fn check_len(&self) -> Result<(), Malformed> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Malformed::Truncated);
        }
        if self.version() != 4 || self.header_len() < HEADER_LEN {
            return Err(Malformed::Ipv4Header);
        }
        let total = usize::from(self.total_len());
        if total < self.header_len() {
            return Err(Malformed::Ipv4Length);
        }
        if total > b.len() {
            return Err(Malformed::Truncated);
        }
        Ok(())
    }

    /// Version field (4).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL x 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// Total length (header and payload).
    pub fn total_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Identification.
    pub fn ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::IDENT)
    }

    /// Don't-fragment flag.
    pub fn dont_frag(&self) -> bool {
        be16(self.buffer.as_ref(), field::FLG_OFF) & 0x4000 != 0
    }

    /// More-fragments flag.
    pub fn more_frags(&self) -> bool {
        be16(self.buffer.as_ref(), field::FLG_OFF) & 0x2000 != 0
    }

    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (be16(self.buffer.as_ref(), field::FLG_OFF) & 0x1fff) << 3
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// The protocol of the payload.
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// Header checksum as carried.
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Whether the header checksum is right.
    pub fn verify_checksum(&self) -> bool {
        checksum::of(&self.buffer.as_ref()[..self.header_len()]) == 0
    }

    /// Source address.
    pub fn src(&self) -> Ipv4Addr {
        Ipv4Addr::from(array::<4>(self.buffer.as_ref(), field::SRC))
    }

    /// Destination address.
    pub fn dst(&self) -> Ipv4Addr {
        Ipv4Addr::from(array::<4>(self.buffer.as_ref(), field::DST))
    }

    /// Source address as a number.
    #[inline]
    pub fn src_bits(&self) -> u32 {
        super::be32(self.buffer.as_ref(), field::SRC)
    }

    /// Destination address as a number.
    #[inline]
    pub fn dst_bits(&self) -> u32 {
        super::be32(self.buffer.as_ref(), field::DST)
    }

    /// The payload, up to the total length (Ethernet padding excluded).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }
}

/// An IPv4 header ferrowall writes (no options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Source.
    pub src: Ipv4Addr,
    /// Destination.
    pub dst: Ipv4Addr,
    /// Payload protocol.
    pub protocol: u8,
    /// Payload length.
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
}

impl Repr {
    /// Appends the header, checksummed, to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        let total = u16::try_from(HEADER_LEN + self.payload_len).unwrap_or(u16::MAX);
        out.extend_from_slice(&[0x45, 0]);
        out.extend_from_slice(&total.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0x40, 0, self.ttl, self.protocol, 0, 0]);
        out.extend_from_slice(&self.src.octets());
        out.extend_from_slice(&self.dst.octets());
        let c = checksum::of(&out[start..]);
        out[start + field::CHECKSUM..start + field::CHECKSUM + 2].copy_from_slice(&c.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // ICMP echo request 10.0.0.2 -> 192.0.2.10, captured on the lab (DF set, id 0x3c8b).
    static PACKET: [u8; 28] = [
        0x45, 0x00, 0x00, 0x1c, 0x3c, 0x8b, 0x40, 0x00, 0x40, 0x01, 0x32, 0x4a, 10, 0, 0, 2, 192,
        0, 2, 10, 8, 0, 0xf7, 0xff, 0, 0, 0, 0,
    ];

    #[test]
    fn fields() {
        let p = Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!((p.version(), p.header_len(), p.total_len()), (4, 20, 28));
        assert_eq!(
            (p.ident(), p.dont_frag(), p.more_frags(), p.frag_offset()),
            (0x3c8b, true, false, 0)
        );
        assert_eq!((p.ttl(), p.protocol()), (64, 1));
        assert_eq!(p.src(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(p.dst(), Ipv4Addr::new(192, 0, 2, 10));
        assert_eq!(p.payload().len(), 8);
        assert!(p.verify_checksum());
    }

    #[test]
    fn padding_is_not_payload_and_lengths_are_checked() {
        let mut padded = PACKET.to_vec();
        padded.extend_from_slice(&[0; 18]);
        assert_eq!(Packet::new_checked(&padded[..]).unwrap().payload().len(), 8);
        assert_eq!(
            Packet::new_checked(&PACKET[..27]).unwrap_err(),
            Malformed::Truncated
        );
        let mut bad = PACKET;
        bad[0] = 0x44; // IHL 4
        assert_eq!(
            Packet::new_checked(&bad[..]).unwrap_err(),
            Malformed::Ipv4Header
        );
        bad[0] = 0x55; // version 5
        assert_eq!(
            Packet::new_checked(&bad[..]).unwrap_err(),
            Malformed::Ipv4Header
        );
        let mut short = PACKET;
        short[3] = 16; // total length below the header length
        assert_eq!(
            Packet::new_checked(&short[..]).unwrap_err(),
            Malformed::Ipv4Length
        );
        let mut opts = PACKET;
        opts[0] = 0x4f; // 60-byte header in a 28-byte packet
        assert!(Packet::new_checked(&opts[..]).is_err());
    }

    #[test]
    fn emit_parses_back() {
        let r = Repr {
            src: Ipv4Addr::new(192, 0, 2, 10),
            dst: Ipv4Addr::new(10, 0, 0, 2),
            protocol: 6,
            payload_len: 20,
            ttl: 64,
        };
        let mut out = Vec::new();
        r.emit(&mut out);
        out.extend_from_slice(&[0; 20]);
        let p = Packet::new_checked(&out[..]).unwrap();
        assert_eq!(
            (p.src(), p.dst(), p.protocol(), p.total_len(), p.ttl()),
            (r.src, r.dst, 6, 40, 64)
        );
        assert!(p.verify_checksum());
    }
}
