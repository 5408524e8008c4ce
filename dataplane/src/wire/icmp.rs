//! ICMP (RFC 792) and ICMPv6 (RFC 4443) messages: both share the first 8 bytes' layout.

use std::net::IpAddr;

use super::{Malformed, be16, checksum};

/// Length of the fixed part (type, code, checksum, 4 bytes of rest-of-header).
pub const HEADER_LEN: usize = 8;

/// ICMPv4 types ferrowall treats specially.
pub mod v4 {
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable.
    pub const DEST_UNREACHABLE: u8 = 3;
    /// Source quench (deprecated).
    pub const SOURCE_QUENCH: u8 = 4;
    /// Redirect.
    pub const REDIRECT: u8 = 5;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 8;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter problem.
    pub const PARAMETER_PROBLEM: u8 = 12;
    /// Code of destination unreachable: communication administratively prohibited.
    pub const CODE_ADMIN_PROHIBITED: u8 = 13;

    /// Whether the type is an error that quotes the packet that caused it.
    pub fn is_error(ty: u8) -> bool {
        matches!(
            ty,
            DEST_UNREACHABLE | SOURCE_QUENCH | REDIRECT | TIME_EXCEEDED | PARAMETER_PROBLEM
        )
    }
}

/// ICMPv6 types ferrowall treats specially.
pub mod v6 {
    /// Destination unreachable.
    pub const DEST_UNREACHABLE: u8 = 1;
    /// Packet too big.
    pub const PACKET_TOO_BIG: u8 = 2;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 3;
    /// Parameter problem.
    pub const PARAMETER_PROBLEM: u8 = 4;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 128;
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 129;
    /// Router solicitation (first of the neighbour discovery types, RFC 4861).
    pub const ROUTER_SOLICITATION: u8 = 133;
    /// Redirect (last of the neighbour discovery types).
    pub const REDIRECT: u8 = 137;
    /// Code of destination unreachable: communication administratively prohibited.
    pub const CODE_ADMIN_PROHIBITED: u8 = 1;

    /// Whether the type is an error message (RFC 4443 2.1: every type below 128), which
    /// quotes the packet that caused it.
    pub fn is_error(ty: u8) -> bool {
        ty < 128
    }

    /// Router and neighbour discovery (router solicitation/advertisement, neighbour
    /// solicitation/advertisement, redirect): what a bridge always passes.
    pub fn is_neighbour_discovery(ty: u8) -> bool {
        (ROUTER_SOLICITATION..=REDIRECT).contains(&ty)
    }
}

/// A view of an ICMP or ICMPv6 message.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// A view without checks.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// A view of at least the fixed 8 bytes.
    pub fn new_checked(buffer: T) -> Result<Self, Malformed> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks the fixed part is there.
    pub fn check_len(&self) -> Result<(), Malformed> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Malformed::Truncated)
        } else {
            Ok(())
        }
    }

    /// Message type.
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[0]
    }

    /// Message code.
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[1]
    }

    /// Checksum as carried.
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), 2)
    }

    /// Echo identifier (for echo messages).
    pub fn echo_ident(&self) -> u16 {
        be16(self.buffer.as_ref(), 4)
    }

    /// Echo sequence number (for echo messages).
    pub fn echo_seq(&self) -> u16 {
        be16(self.buffer.as_ref(), 6)
    }

    /// What follows the fixed part: for errors, the quoted packet.
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

/// An ICMP or ICMPv6 error ferrowall writes: type, code, zero rest-of-header, quoted bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorRepr<'a> {
    /// Type.
    pub msg_type: u8,
    /// Code.
    pub code: u8,
    /// The start of the packet being answered.
    pub quoted: &'a [u8],
}

impl ErrorRepr<'_> {
    /// Length of the message.
    pub fn len(&self) -> usize {
        HEADER_LEN + self.quoted.len()
    }

    /// Whether the message has no quoted data.
    pub fn is_empty(&self) -> bool {
        self.quoted.is_empty()
    }

    /// Appends the message to `out`. ICMPv6 checksums cover the pseudo-header of `src`/`dst`;
    /// ICMPv4 checksums do not (pass `None`).
    pub fn emit(&self, pseudo: Option<(IpAddr, IpAddr)>, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[self.msg_type, self.code, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(self.quoted);
        let init = pseudo.map_or(0, |(s, d)| checksum::pseudo(s, d, 58, self.len()));
        let c = checksum::finish(checksum::add(init, &out[start..]));
        out[start + 2..start + 4].copy_from_slice(&c.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static ECHO: [u8; 12] = [
        8, 0, 0xf7, 0xfd, 0x12, 0x34, 0x00, 0x02, b'p', b'i', b'n', b'g',
    ];

    #[test]
    fn echo_fields() {
        let p = Packet::new_checked(&ECHO[..]).unwrap();
        assert_eq!(
            (p.msg_type(), p.code(), p.echo_ident(), p.echo_seq()),
            (8, 0, 0x1234, 2)
        );
        assert_eq!(p.data(), b"ping");
        assert_eq!(
            Packet::new_checked(&ECHO[..7]).unwrap_err(),
            Malformed::Truncated
        );
    }

    #[test]
    fn kinds() {
        assert!(v4::is_error(3) && v4::is_error(11) && !v4::is_error(8) && !v4::is_error(0));
        assert!(v6::is_error(1) && v6::is_error(4) && !v6::is_error(128));
        assert!(v6::is_neighbour_discovery(135) && v6::is_neighbour_discovery(133));
        assert!(!v6::is_neighbour_discovery(138) && !v6::is_neighbour_discovery(130));
    }

    #[test]
    fn error_emit_checksums() {
        let quoted = [0x45u8, 0, 0, 28];
        let e = ErrorRepr {
            msg_type: 3,
            code: 13,
            quoted: &quoted,
        };
        let mut out = Vec::new();
        e.emit(None, &mut out);
        assert_eq!(out.len(), e.len());
        assert_eq!(checksum::of(&out), 0);
        let (s, d): (IpAddr, IpAddr) =
            ("2001:db8::10".parse().unwrap(), "fd00::2".parse().unwrap());
        let mut out6 = Vec::new();
        ErrorRepr {
            msg_type: 1,
            code: 1,
            quoted: &quoted,
        }
        .emit(Some((s, d)), &mut out6);
        assert_eq!(
            checksum::finish(checksum::add(checksum::pseudo(s, d, 58, out6.len()), &out6)),
            0
        );
    }
}
