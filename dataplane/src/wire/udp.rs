//! UDP headers (RFC 768).

use super::{Malformed, be16};

/// Length of the header.
pub const HEADER_LEN: usize = 8;

/// A view of a UDP datagram.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// A view without checks.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// A view whose length field is at least 8 and within the buffer.
    pub fn new_checked(buffer: T) -> Result<Self, Malformed> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks the header and the length field.
    pub fn check_len(&self) -> Result<(), Malformed> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Malformed::Truncated);
        }
        let l = usize::from(self.len());
        if l < HEADER_LEN || l > b.len() {
            return Err(Malformed::UdpLength);
        }
        Ok(())
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), 0)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), 2)
    }

    /// Length field (header and data).
    pub fn len(&self) -> u16 {
        be16(self.buffer.as_ref(), 4)
    }

    /// Whether the length field says there is no data.
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= HEADER_LEN
    }

    /// Checksum as carried (0: none, IPv4 only).
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), 6)
    }

    /// The data, up to the length field.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static DNS_QUERY_HEAD: [u8; 12] = [0xd4, 0x31, 0x00, 0x35, 0x00, 0x0c, 0x12, 0x34, 1, 2, 3, 4];

    #[test]
    fn fields_and_lengths() {
        let p = Packet::new_checked(&DNS_QUERY_HEAD[..]).unwrap();
        assert_eq!(
            (p.src_port(), p.dst_port(), p.len(), p.checksum()),
            (54321, 53, 12, 0x1234)
        );
        assert_eq!(p.payload(), &[1, 2, 3, 4]);
        let mut long = DNS_QUERY_HEAD;
        long[5] = 13;
        assert_eq!(
            Packet::new_checked(&long[..]).unwrap_err(),
            Malformed::UdpLength
        );
        let mut short = DNS_QUERY_HEAD;
        short[5] = 7;
        assert_eq!(
            Packet::new_checked(&short[..]).unwrap_err(),
            Malformed::UdpLength
        );
        assert_eq!(
            Packet::new_checked(&DNS_QUERY_HEAD[..7]).unwrap_err(),
            Malformed::Truncated
        );
    }
}
