//! Zero-copy views of the headers ferrowall reads, in the smoltcp style.
//!
//! Each protocol has a `Packet<T: AsRef<[u8]>>` view over a buffer. `new_checked` verifies the
//! lengths the header itself announces (`check_len`); once it succeeded, no accessor of that view
//! panics, whatever the bytes. Protocols ferrowall also writes (TCP RSTs and ICMP errors for
//! `reject`) have an `emit` side. Malformed input is a [`Malformed`] value, never a panic.
//!
//! Checksums are not verified: ferrowall forwards packets unchanged and the end hosts verify
//! them; it computes them only for the packets it writes itself.

pub mod checksum;
pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;
pub mod udp;

/// Why a header could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// The buffer ends inside the header (or inside what its length fields announce).
    Truncated,
    /// More VLAN tags than ferrowall accepts (two: 802.1ad outside 802.1Q).
    VlanDepth,
    /// IPv4 version or header length (IHL) invalid.
    Ipv4Header,
    /// IPv4 total length shorter than the header or longer than the frame.
    Ipv4Length,
    /// IPv6 payload length longer than the frame (jumbograms included).
    Ipv6Length,
    /// IPv6 extension header chain too long, hop-by-hop not first, or a bad header length.
    Ipv6ExtHeader,
    /// TCP data offset below 5 words or beyond the segment.
    TcpHeader,
    /// UDP length below 8 or beyond the datagram.
    UdpLength,
    /// A first fragment without the whole transport header, or a fragment overlapping the TCP
    /// header (RFC 1858, RFC 7112).
    FragmentTooSmall,
}

/// Reads a big-endian u16 at `at` (0 past the end: callers check lengths first, and a view's
/// accessors must not panic).
#[inline(always)]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes(array(b, at))
}

/// Reads a big-endian u32 at `at` (0 past the end).
#[inline(always)]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(array(b, at))
}

/// Copies `N` bytes at `at` (zeros past the end). One bounds check for the whole read.
#[inline(always)]
pub(crate) fn array<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    match b.get(at..at.wrapping_add(N)) {
        Some(s) => s.try_into().unwrap_or([0; N]),
        None => [0; N],
    }
}
