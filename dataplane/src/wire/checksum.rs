//! The Internet checksum (RFC 1071) and the IPv4/IPv6 pseudo-headers.

use std::net::IpAddr;

/// Adds `data` to a running one's-complement sum (not yet folded).
pub fn add(mut sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum = sum.wrapping_add(u32::from(u16::from_be_bytes([c[0], c[1]])));
    }
    if let [last] = chunks.remainder() {
        sum = sum.wrapping_add(u32::from(u16::from_be_bytes([*last, 0])));
    }
    sum
}

/// Folds a running sum into the final checksum value (complemented).
pub fn finish(mut sum: u32) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // Folding leaves at most 16 bits.
    !u16::try_from(sum).unwrap_or(u16::MAX)
}

/// The checksum of `data` alone.
pub fn of(data: &[u8]) -> u16 {
    finish(add(0, data))
}

/// The pseudo-header sum of a transport segment of `len` bytes and protocol `proto`.
pub fn pseudo(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> u32 {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let sum = add(add(0, &s.octets()), &d.octets());
            let len = u32::try_from(len).unwrap_or(u32::MAX) & 0xffff;
            sum.wrapping_add(u32::from(proto)).wrapping_add(len)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let sum = add(add(0, &s.octets()), &d.octets());
            let len = u32::try_from(len).unwrap_or(u32::MAX);
            sum.wrapping_add(len >> 16)
                .wrapping_add(len & 0xffff)
                .wrapping_add(u32::from(proto))
        }
        // Mixed families can not occur: both addresses come from one IP header.
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2 (checksum 220d).
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(of(&d), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(of(&[0x12]), of(&[0x12, 0x00]));
    }

    #[test]
    fn a_valid_header_sums_to_zero() {
        // An IPv4 header with its checksum in place sums to 0xffff (checksum of it = 0).
        let h = [
            0x45, 0, 0, 0x54, 0x3c, 0x8b, 0x40, 0, 0x40, 1, 0, 0, 10, 0, 0, 2, 192, 0, 2, 10,
        ];
        let c = of(&h);
        let mut h2 = h;
        h2[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(of(&h2), 0);
    }
}
