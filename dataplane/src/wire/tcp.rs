//! TCP headers (RFC 9293). Options are skipped.

use std::net::IpAddr;

use super::{Malformed, be16, be32, checksum};

/// Flag bits of the 13th byte.
pub mod flags {
    /// No more data from sender.
    pub const FIN: u8 = 0x01;
    /// Synchronise sequence numbers.
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push.
    pub const PSH: u8 = 0x08;
    /// Acknowledgement field significant.
    pub const ACK: u8 = 0x10;
    /// Urgent pointer significant.
    pub const URG: u8 = 0x20;
}

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const SEQ: usize = 4;
    pub const ACK: usize = 8;
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: usize = 14;
    pub const CHECKSUM: usize = 16;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;

/// A view of a TCP segment.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// A view without checks.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// A view whose data offset lies within the buffer.
    pub fn new_checked(buffer: T) -> Result<Self, Malformed> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks the fixed header and the data offset.
    pub fn check_len(&self) -> Result<(), Malformed> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Malformed::Truncated);
        }
        let h = self.header_len();
        if h < HEADER_LEN || h > b.len() {
            return Err(Malformed::TcpHeader);
        }
        Ok(())
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// Sequence number.
    pub fn seq(&self) -> u32 {
        be32(self.buffer.as_ref(), field::SEQ)
    }

    /// Acknowledgement number.
    pub fn ack(&self) -> u32 {
        be32(self.buffer.as_ref(), field::ACK)
    }

    /// Header length in bytes (data offset x 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFF] >> 4) * 4
    }

    /// The flag bits (see [`flags`]).
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// Receive window.
    pub fn window(&self) -> u16 {
        be16(self.buffer.as_ref(), field::WINDOW)
    }

    /// Checksum as carried.
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The data after the header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// Whether the checksum is right for these addresses.
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> bool {
        let b = self.buffer.as_ref();
        checksum::finish(checksum::add(checksum::pseudo(src, dst, 6, b.len()), b)) == 0
    }
}

/// A TCP header ferrowall writes (a reset: no options, no data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// Flags.
    pub flags: u8,
    /// Window.
    pub window: u16,
}

impl Repr {
    /// Appends the header, checksummed for `src` -> `dst`, to `out`.
    pub fn emit(&self, src: IpAddr, dst: IpAddr, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&self.src_port.to_be_bytes());
        out.extend_from_slice(&self.dst_port.to_be_bytes());
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.ack.to_be_bytes());
        out.extend_from_slice(&[5 << 4, self.flags]);
        out.extend_from_slice(&self.window.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]);
        let c = checksum::finish(checksum::add(
            checksum::pseudo(src, dst, 6, HEADER_LEN),
            &out[start..],
        ));
        out[start + field::CHECKSUM..start + field::CHECKSUM + 2].copy_from_slice(&c.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A SYN 10.0.0.2:51000 -> 192.0.2.10:443 with an MSS option (24-byte header).
    static SYN: [u8; 24] = [
        0xc7, 0x38, 0x01, 0xbb, 0x00, 0x00, 0x03, 0xe8, 0, 0, 0, 0, 0x60, 0x02, 0xfa, 0xf0, 0x00,
        0x00, 0, 0, 2, 4, 0x05, 0xb4,
    ];

    #[test]
    fn fields() {
        let p = Packet::new_checked(&SYN[..]).unwrap();
        assert_eq!(
            (p.src_port(), p.dst_port(), p.seq(), p.ack()),
            (51000, 443, 1000, 0)
        );
        assert_eq!(
            (p.header_len(), p.flags(), p.window()),
            (24, flags::SYN, 64240)
        );
        assert!(p.payload().is_empty());
    }

    #[test]
    fn bad_offsets() {
        let mut b = SYN;
        b[12] = 0x40; // 16 bytes
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            Malformed::TcpHeader
        );
        b[12] = 0x70; // 28 bytes in a 24-byte buffer
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            Malformed::TcpHeader
        );
        assert_eq!(
            Packet::new_checked(&SYN[..19]).unwrap_err(),
            Malformed::Truncated
        );
    }

    #[test]
    fn emit_parses_back_with_good_checksum() {
        let (src, dst): (IpAddr, IpAddr) =
            ("192.0.2.10".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let r = Repr {
            src_port: 443,
            dst_port: 51000,
            seq: 0,
            ack: 1001,
            flags: flags::RST | flags::ACK,
            window: 0,
        };
        let mut out = Vec::new();
        r.emit(src, dst, &mut out);
        let p = Packet::new_checked(&out[..]).unwrap();
        assert_eq!(
            (p.src_port(), p.dst_port(), p.seq(), p.ack(), p.flags()),
            (443, 51000, 0, 1001, 0x14)
        );
        assert!(p.verify_checksum(src, dst));
        let v6: (IpAddr, IpAddr) = ("2001:db8::10".parse().unwrap(), "fd00::2".parse().unwrap());
        let mut out6 = Vec::new();
        r.emit(v6.0, v6.1, &mut out6);
        assert!(
            Packet::new_checked(&out6[..])
                .unwrap()
                .verify_checksum(v6.0, v6.1)
        );
    }
}
