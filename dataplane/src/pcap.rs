//! Classic pcap files (not pcapng): reading any byte order and either timestamp resolution,
//! writing in the host's order. Used by `ferrowall replay`, the tests and the benchmarks.

use std::io::{self, Read, Write};

/// Link types ferrowall understands (the pcap `network` field).
pub mod linktype {
    /// BSD loopback: a 4-byte address family in host order, then IP.
    pub const NULL: u32 = 0;
    /// Ethernet II.
    pub const ETHERNET: u32 = 1;
    /// PPP: an optional `ff 03`, then a 2-byte protocol.
    pub const PPP: u32 = 9;
    /// Raw IP (v4 or v6, by the version nibble).
    pub const RAW: u32 = 101;
    /// Linux cooked capture v1.
    pub const LINUX_SLL: u32 = 113;
    /// Raw IPv4.
    pub const IPV4: u32 = 228;
    /// Raw IPv6.
    pub const IPV6: u32 = 229;
}

/// The largest record accepted; anything bigger is a corrupt file, not a packet.
pub const MAX_RECORD: u32 = 256 * 1024;

/// Timestamp resolution of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// Magic `a1b2c3d4`: microseconds.
    Micro,
    /// Magic `a1b23c4d`: nanoseconds.
    Nano,
}

/// Errors reading a capture.
#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    /// The file could not be read.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// Not a classic pcap file.
    #[error("not a pcap file (magic {0:08x}); pcapng must be converted first (editcap -F pcap)")]
    BadMagic(u32),
    /// A record header announces an impossible length.
    #[error("record {index}: captured length {len} exceeds {MAX_RECORD}")]
    RecordTooLong {
        /// 0-based record index.
        index: u64,
        /// The announced length.
        len: u32,
    },
    /// The file ends inside a record.
    #[error("record {0}: truncated")]
    Truncated(u64),
    /// A link layer ferrowall does not read.
    #[error(
        "link type {0} is not supported (Ethernet, raw IP, BSD loopback, PPP and Linux cooked captures are)"
    )]
    LinkType(u32),
}

/// One record of a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Capture time in nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Original length of the packet on the wire.
    pub orig_len: u32,
    /// The captured bytes.
    pub data: Vec<u8>,
}

/// Reads a classic pcap stream record by record.
#[derive(Debug)]
pub struct Reader<R> {
    inner: R,
    swapped: bool,
    resolution: Resolution,
    linktype: u32,
    snaplen: u32,
    index: u64,
}

impl<R: Read> Reader<R> {
    /// Reads the file header.
    pub fn new(mut inner: R) -> Result<Self, PcapError> {
        let mut h = [0u8; 24];
        inner.read_exact(&mut h)?;
        let magic = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let (swapped, resolution) = match magic {
            0xa1b2_c3d4 => (false, Resolution::Micro),
            0xa1b2_3c4d => (false, Resolution::Nano),
            0xd4c3_b2a1 => (true, Resolution::Micro),
            0x4d3c_b2a1 => (true, Resolution::Nano),
            m => return Err(PcapError::BadMagic(m)),
        };
        let rd = |b: [u8; 4]| {
            if swapped {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let snaplen = rd([h[16], h[17], h[18], h[19]]);
        // The upper bits of the link type field carry FCS information; only 16 bits are the type.
        let linktype = rd([h[20], h[21], h[22], h[23]]) & 0xffff;
        Ok(Reader {
            inner,
            swapped,
            resolution,
            linktype,
            snaplen,
            index: 0,
        })
    }

    /// The file's link type (see [`linktype`]).
    pub fn linktype(&self) -> u32 {
        self.linktype
    }

    /// The file's timestamp resolution.
    pub fn resolution(&self) -> Resolution {
        self.resolution
    }

    /// The file's snapshot length.
    pub fn snaplen(&self) -> u32 {
        self.snaplen
    }

    fn u32_at(&self, b: &[u8; 16], at: usize) -> u32 {
        let v = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if self.swapped {
            u32::from_be_bytes(v)
        } else {
            u32::from_le_bytes(v)
        }
    }

    /// The next record, or `None` at the end of the file.
    pub fn next_record(&mut self) -> Result<Option<Record>, PcapError> {
        let mut h = [0u8; 16];
        match read_full(&mut self.inner, &mut h)? {
            0 => return Ok(None),
            16 => {}
            _ => return Err(PcapError::Truncated(self.index)),
        }
        let (sec, frac) = (self.u32_at(&h, 0), self.u32_at(&h, 4));
        let (incl, orig) = (self.u32_at(&h, 8), self.u32_at(&h, 12));
        if incl > MAX_RECORD {
            return Err(PcapError::RecordTooLong {
                index: self.index,
                len: incl,
            });
        }
        let mut data = vec![0u8; incl as usize];
        if read_full(&mut self.inner, &mut data)? != data.len() {
            return Err(PcapError::Truncated(self.index));
        }
        let frac_ns = match self.resolution {
            Resolution::Micro => u64::from(frac) * 1000,
            Resolution::Nano => u64::from(frac),
        };
        self.index += 1;
        Ok(Some(Record {
            ts_ns: u64::from(sec) * 1_000_000_000 + frac_ns,
            orig_len: orig,
            data,
        }))
    }
}

impl<R: Read> Iterator for Reader<R> {
    type Item = Result<Record, PcapError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().transpose()
    }
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Writes a classic pcap stream (little endian).
#[derive(Debug)]
pub struct Writer<W: Write> {
    inner: W,
    resolution: Resolution,
}

impl<W: Write> Writer<W> {
    /// Writes the file header.
    pub fn new(mut inner: W, linktype: u32, resolution: Resolution) -> io::Result<Self> {
        let magic: u32 = match resolution {
            Resolution::Micro => 0xa1b2_c3d4,
            Resolution::Nano => 0xa1b2_3c4d,
        };
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&magic.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&65535u32.to_le_bytes());
        h.extend_from_slice(&linktype.to_le_bytes());
        inner.write_all(&h)?;
        Ok(Writer { inner, resolution })
    }

    /// Appends one packet captured at `ts_ns` (nanoseconds since the epoch), with its full length.
    pub fn write(&mut self, ts_ns: u64, data: &[u8]) -> io::Result<()> {
        let len = u32::try_from(data.len()).map_err(|_| io::Error::other("packet too large"))?;
        self.write_record(ts_ns, len, data)
    }

    /// Appends one packet whose original length was `orig_len`.
    pub fn write_record(&mut self, ts_ns: u64, orig_len: u32, data: &[u8]) -> io::Result<()> {
        let incl = u32::try_from(data.len()).map_err(|_| io::Error::other("packet too large"))?;
        let sec = u32::try_from(ts_ns / 1_000_000_000).unwrap_or(u32::MAX);
        let sub = ts_ns % 1_000_000_000;
        let frac = match self.resolution {
            Resolution::Micro => sub / 1000,
            Resolution::Nano => sub,
        };
        let frac = u32::try_from(frac).unwrap_or(0);
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&sec.to_le_bytes());
        h[4..8].copy_from_slice(&frac.to_le_bytes());
        h[8..12].copy_from_slice(&incl.to_le_bytes());
        h[12..16].copy_from_slice(&orig_len.max(incl).to_le_bytes());
        self.inner.write_all(&h)?;
        self.inner.write_all(data)
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.inner.flush()?;
        Ok(self.inner)
    }
}

/// Converts between a capture's link layer and Ethernet, which the pipeline reads. Frames of
/// other link layers get a synthetic Ethernet header (zero MACs, the EtherType of their IP
/// version); frames ferrowall writes go back to the capture's link layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link(u32);

const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
const ETHERTYPE_IPV6: [u8; 2] = [0x86, 0xdd];

impl Link {
    /// The adapter for link type `lt`, if ferrowall reads it.
    pub fn new(lt: u32) -> Result<Link, PcapError> {
        match lt {
            linktype::ETHERNET
            | linktype::NULL
            | linktype::RAW
            | linktype::IPV4
            | linktype::IPV6
            | linktype::PPP
            | linktype::LINUX_SLL => Ok(Link(lt)),
            other => Err(PcapError::LinkType(other)),
        }
    }

    /// The IP packet inside a non-Ethernet record, or `None` when the record carries no IP.
    fn ip_payload<'a>(&self, rec: &'a [u8]) -> Option<&'a [u8]> {
        match self.0 {
            linktype::RAW | linktype::IPV4 | linktype::IPV6 => Some(rec),
            linktype::NULL => rec.get(4..),
            linktype::PPP => {
                let rest = if rec.starts_with(&[0xff, 0x03]) {
                    &rec[2..]
                } else {
                    rec
                };
                // An odd first byte is a compressed (one-byte) protocol field (RFC 1661 6.5).
                let (protocol, body) = match rest {
                    [p, body @ ..] if p & 1 == 1 => (u16::from(*p), body),
                    [hi, lo, body @ ..] => (u16::from_be_bytes([*hi, *lo]), body),
                    _ => return None,
                };
                matches!(protocol, 0x21 | 0x57).then_some(body)
            }
            linktype::LINUX_SLL => rec.get(16..),
            _ => None,
        }
    }

    /// The record as an Ethernet frame for the pipeline.
    pub fn to_ethernet(self, rec: &[u8]) -> Vec<u8> {
        if self.0 == linktype::ETHERNET {
            return rec.to_vec();
        }
        if self.0 == linktype::LINUX_SLL && rec.len() >= 16 {
            // Keep the protocol the cooked header names (ARP, VLAN, ...).
            let mut f = vec![0u8; 12];
            f.extend_from_slice(&rec[14..]);
            return f;
        }
        let ip = self.ip_payload(rec).unwrap_or(&[]);
        let et = match ip.first().map(|b| b >> 4) {
            Some(6) => ETHERTYPE_IPV6,
            Some(4) => ETHERTYPE_IPV4,
            // Not IP: an EtherType the pipeline drops as non-IP.
            _ => [0x88, 0xb5],
        };
        let mut f = Vec::with_capacity(ip.len() + 14);
        f.extend_from_slice(&[0; 12]);
        f.extend_from_slice(&et);
        f.extend_from_slice(ip);
        f
    }

    /// A frame ferrowall wrote, in the capture's link layer.
    pub fn from_ethernet(self, frame: &[u8]) -> Vec<u8> {
        let l3_offset = match crate::wire::ethernet::parse(frame) {
            Ok(l2) => l2.l3_offset,
            Err(_) => return frame.to_vec(),
        };
        let ip = &frame[l3_offset..];
        let v6 = ip.first().is_some_and(|b| b >> 4 == 6);
        match self.0 {
            linktype::ETHERNET => frame.to_vec(),
            linktype::NULL => {
                // BSD address families: AF_INET 2, AF_INET6 24 (the value most captures use).
                let af: u32 = if v6 { 24 } else { 2 };
                let mut r = af.to_le_bytes().to_vec();
                r.extend_from_slice(ip);
                r
            }
            linktype::PPP => {
                let mut r = vec![0xff, 0x03, 0x00, if v6 { 0x57 } else { 0x21 }];
                r.extend_from_slice(ip);
                r
            }
            linktype::LINUX_SLL => {
                let mut r = vec![0, 4, 0, 1, 0, 6];
                r.extend_from_slice(&frame[6..12]);
                r.extend_from_slice(&[0, 0]);
                r.extend_from_slice(&frame[l3_offset - 2..l3_offset]);
                r.extend_from_slice(ip);
                r
            }
            _ => ip.to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_both_resolutions() {
        for res in [Resolution::Micro, Resolution::Nano] {
            let mut w = Writer::new(Vec::new(), linktype::ETHERNET, res).unwrap();
            w.write(1_700_000_000_123_456_789, b"abc").unwrap();
            w.write(1_700_000_001_000_000_000, &[0u8; 1514]).unwrap();
            let bytes = w.finish().unwrap();
            let mut r = Reader::new(bytes.as_slice()).unwrap();
            assert_eq!(r.linktype(), linktype::ETHERNET);
            assert_eq!(r.resolution(), res);
            let a = r.next_record().unwrap().unwrap();
            let want_ts = match res {
                Resolution::Micro => 1_700_000_000_123_456_000,
                Resolution::Nano => 1_700_000_000_123_456_789,
            };
            assert_eq!((a.ts_ns, a.data.as_slice()), (want_ts, &b"abc"[..]));
            assert_eq!(r.next_record().unwrap().unwrap().data.len(), 1514);
            assert!(r.next_record().unwrap().is_none());
        }
    }

    #[test]
    fn link_layers_become_ethernet_and_back() {
        let ip4 = [
            0x45u8, 0, 0, 20, 0, 0, 0, 0, 64, 253, 0, 0, 10, 0, 0, 2, 10, 0, 0, 3,
        ];
        let mut ip6 = [0u8; 40];
        ip6[0] = 0x60;
        ip6[6] = 59; // no next header
        for (lt, rec) in [
            (linktype::RAW, ip4.to_vec()),
            (linktype::IPV6, ip6.to_vec()),
            (linktype::NULL, [&2u32.to_le_bytes()[..], &ip4].concat()),
            (
                linktype::PPP,
                [&[0xff, 0x03, 0x00, 0x21][..], &ip4].concat(),
            ),
            (linktype::PPP, [&[0x21][..], &ip4].concat()), // compressed protocol field
            (linktype::PPP, [&[0x57][..], &ip6].concat()),
        ] {
            let link = Link::new(lt).unwrap();
            let eth = link.to_ethernet(&rec);
            let ip: &[u8] = if eth[12] == 0x86 { &ip6 } else { &ip4 };
            assert_eq!(&eth[14..], ip, "link type {lt}");
            assert!(crate::packet::parse(&eth).is_ok(), "link type {lt}");
            let back = link.from_ethernet(&eth);
            assert_eq!(link.to_ethernet(&back), eth, "link type {lt} round trip");
        }
        let sll = [
            &[0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00][..],
            &ip4,
        ]
        .concat();
        let eth = Link::new(linktype::LINUX_SLL).unwrap().to_ethernet(&sll);
        assert_eq!((&eth[12..14], &eth[14..]), (&[0x08, 0x00][..], &ip4[..]));
        assert!(matches!(Link::new(147), Err(PcapError::LinkType(147))));
        // Not IP in a raw capture: an EtherType the pipeline drops as non-IP.
        let odd = Link::new(linktype::RAW).unwrap().to_ethernet(&[0x10, 1, 2]);
        assert_eq!(crate::packet::parse(&odd), Err(crate::DropReason::NonIp));
    }

    #[test]
    fn big_endian_files_and_bad_input() {
        let mut be = vec![0xa1, 0xb2, 0xc3, 0xd4, 0, 2, 0, 4];
        be.extend_from_slice(&[0; 8]);
        be.extend_from_slice(&65535u32.to_be_bytes());
        be.extend_from_slice(&101u32.to_be_bytes());
        be.extend_from_slice(&5u32.to_be_bytes());
        be.extend_from_slice(&7u32.to_be_bytes());
        be.extend_from_slice(&2u32.to_be_bytes());
        be.extend_from_slice(&2u32.to_be_bytes());
        be.extend_from_slice(&[0x45, 0]);
        let mut r = Reader::new(be.as_slice()).unwrap();
        assert_eq!(r.linktype(), linktype::RAW);
        let rec = r.next_record().unwrap().unwrap();
        assert_eq!((rec.ts_ns, rec.data), (5_000_007_000, vec![0x45, 0]));

        assert!(matches!(
            Reader::new(
                &[
                    0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                    0, 0
                ][..]
            ),
            Err(PcapError::BadMagic(_))
        ));
        let mut w = Writer::new(Vec::new(), 1, Resolution::Micro).unwrap();
        w.write(0, b"abcdef").unwrap();
        let mut bytes = w.finish().unwrap();
        bytes.truncate(bytes.len() - 2);
        let mut r = Reader::new(bytes.as_slice()).unwrap();
        assert!(matches!(r.next_record(), Err(PcapError::Truncated(0))));
    }
}
