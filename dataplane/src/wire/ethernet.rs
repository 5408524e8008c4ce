//! Ethernet II frames and their 802.1Q / 802.1ad VLAN tags.

use super::{Malformed, array, be16};

/// EtherTypes ferrowall knows.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
    /// 802.1Q customer VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad service VLAN tag (QinQ outer tag).
    pub const QINQ: u16 = 0x88a8;
    /// Pre-standard QinQ outer tag still seen in the field.
    pub const QINQ_OLD: u16 = 0x9100;
}

mod field {
    use std::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: usize = 12;
    pub const PAYLOAD: usize = 14;
    pub const TAG_LEN: usize = 4;
}

/// Length of an untagged Ethernet II header.
pub const HEADER_LEN: usize = field::PAYLOAD;
/// Most VLAN tags accepted (QinQ).
pub const MAX_TAGS: usize = 2;

/// A view of an Ethernet II frame.
#[derive(Debug, Clone, Copy)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// A view without checks; accessors may panic on a short buffer.
    pub fn new_unchecked(buffer: T) -> Self {
        Frame { buffer }
    }

    /// A view of a buffer long enough for the header.
    pub fn new_checked(buffer: T) -> Result<Self, Malformed> {
        let f = Self::new_unchecked(buffer);
        f.check_len()?;
        Ok(f)
    }

    /// Checks that the fixed header is there.
    pub fn check_len(&self) -> Result<(), Malformed> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Malformed::Truncated)
        } else {
            Ok(())
        }
    }

    /// Destination MAC.
    pub fn dst(&self) -> [u8; 6] {
        array(self.buffer.as_ref(), field::DST.start)
    }

    /// Source MAC.
    pub fn src(&self) -> [u8; 6] {
        array(self.buffer.as_ref(), field::SRC.start)
    }

    /// The outermost EtherType (a TPID when the frame is tagged).
    pub fn ethertype(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ETHERTYPE)
    }

    /// Everything after the 14-byte header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }
}

/// The link layer of a frame, VLAN tags walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L2 {
    /// VLAN ids of the tags, outermost first.
    pub vlans: [u16; MAX_TAGS],
    /// How many tags there are.
    pub tag_count: u8,
    /// The EtherType after the tags.
    pub ethertype: u16,
    /// Offset of the network-layer header.
    pub l3_offset: usize,
}

fn is_tag(tpid: u16) -> bool {
    matches!(
        tpid,
        ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD
    )
}

/// Walks the Ethernet header and up to [`MAX_TAGS`] VLAN tags.
#[inline(always)]
pub fn parse(frame: &[u8]) -> Result<L2, Malformed> {
    let f = Frame::new_checked(frame)?;
    let mut et = f.ethertype();
    let mut off = field::PAYLOAD;
    let mut l2 = L2 {
        vlans: [0; MAX_TAGS],
        tag_count: 0,
        ethertype: et,
        l3_offset: off,
    };
    while is_tag(et) {
        if usize::from(l2.tag_count) == MAX_TAGS {
            return Err(Malformed::VlanDepth);
        }
        if frame.len() < off + field::TAG_LEN {
            return Err(Malformed::Truncated);
        }
        l2.vlans[usize::from(l2.tag_count)] = be16(frame, off) & 0x0fff;
        l2.tag_count += 1;
        et = be16(frame, off + 2);
        off += field::TAG_LEN;
    }
    l2.ethertype = et;
    l2.l3_offset = off;
    Ok(l2)
}

/// Writes the link layer of a reply to a frame whose link layer is `orig[..l3_offset]`: MACs
/// swapped, VLAN tags kept, the final EtherType set to `et`. Returns the bytes written.
pub fn emit_reply(orig: &[u8], l3_offset: usize, et: u16, out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&orig[field::SRC]);
    out.extend_from_slice(&orig[field::DST]);
    out.extend_from_slice(&orig[field::ETHERTYPE..l3_offset - 2]);
    out.extend_from_slice(&et.to_be_bytes());
    out.len() - start
}

#[cfg(test)]
mod tests {
    use super::*;

    static UNTAGGED: [u8; 16] = [
        0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00, 0x45, 0x00,
    ];

    #[test]
    fn untagged() {
        let f = Frame::new_checked(&UNTAGGED[..]).unwrap();
        assert_eq!(f.dst(), [2, 0, 0, 0, 0, 2]);
        assert_eq!(f.src(), [2, 0, 0, 0, 0, 1]);
        assert_eq!(f.ethertype(), ethertype::IPV4);
        assert_eq!(f.payload(), &[0x45, 0]);
        let l2 = parse(&UNTAGGED).unwrap();
        assert_eq!((l2.tag_count, l2.ethertype, l2.l3_offset), (0, 0x0800, 14));
    }

    #[test]
    fn qinq_and_limits() {
        let mut f = UNTAGGED[..12].to_vec();
        f.extend_from_slice(&[
            0x88, 0xa8, 0x00, 0x0a, 0x81, 0x00, 0x20, 0x14, 0x86, 0xdd, 0x60,
        ]);
        let l2 = parse(&f).unwrap();
        assert_eq!(l2.vlans, [10, 20]);
        assert_eq!((l2.tag_count, l2.ethertype, l2.l3_offset), (2, 0x86dd, 22));

        let mut three = UNTAGGED[..12].to_vec();
        three.extend_from_slice(&[0x88, 0xa8, 0, 1, 0x81, 0, 0, 2, 0x81, 0, 0, 3, 0x08, 0]);
        assert_eq!(parse(&three), Err(Malformed::VlanDepth));
        assert_eq!(parse(&f[..16]), Err(Malformed::Truncated));
        assert_eq!(parse(&f[..13]), Err(Malformed::Truncated));
    }

    #[test]
    fn reply_swaps_macs_and_keeps_tags() {
        let mut f = UNTAGGED[..12].to_vec();
        f.extend_from_slice(&[0x81, 0x00, 0x00, 0x07, 0x08, 0x00, 0x45]);
        let mut out = Vec::new();
        assert_eq!(emit_reply(&f, 18, 0x0800, &mut out), 18);
        assert_eq!(&out[..6], &f[6..12]);
        assert_eq!(&out[6..12], &f[..6]);
        assert_eq!(&out[12..18], &[0x81, 0, 0, 7, 0x08, 0]);
        let l2 = parse(&out).unwrap();
        assert_eq!((l2.vlans[0], l2.ethertype), (7, 0x0800));
    }
}
