//! DNS messages (RFC 1035 section 4): a zero-copy view that checks the framing once, then reads
//! the question and records on demand.
//!
//! Contract: [`Message::parse`] checks the 12-byte header and walks every section once, without
//! allocating, so that the counts agree with the data: every question and record announced is
//! there, whole (names, fixed fields, RDATA within RDLENGTH). Once a [`Message`] is built, no
//! accessor panics, whatever the bytes. Reading the contents can still fail, never panic: names
//! are decompressed (backward pointers only, see [`super::name`]) and RDATA is checked per type
//! when [`Message::question`], [`Message::questions`], [`Message::answers`] or
//! [`Message::records`] reach them, and those iterators stop after the first error.
//!
//! Tolerated: bytes after the last section (tshark and most resolvers ignore them; they are
//! counted by [`Message::trailing_len`]), unknown opcodes, rcodes and record types. Refused:
//! anything that makes a field ambiguous (see [`DnsError`]).
//!
//! No allocation happens here except for the SvcParam address hints of SVCB/HTTPS records
//! ([`Svcb`], boxed in [`DataText`]), which are read on the control thread, the caller's text
//! buffer growing when names are read as text ([`Records::next_text`]), and in the
//! test-message writer [`build`].

use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Range;

use super::cursor::{BufferTooShort, Cursor};
use super::name::{MAX_WIRE_LEN, Name, TextName, read_text, read_text_known};

/// Length of the header.
pub const HEADER_LEN: usize = 12;

/// Record types ferrowall reads (and a few it names in tests and logs).
pub mod rtype {
    /// IPv4 address.
    pub const A: u16 = 1;
    /// Name server.
    pub const NS: u16 = 2;
    /// Canonical name.
    pub const CNAME: u16 = 5;
    /// Start of authority.
    pub const SOA: u16 = 6;
    /// Pointer (reverse lookups).
    pub const PTR: u16 = 12;
    /// Mail exchanger.
    pub const MX: u16 = 15;
    /// Text.
    pub const TXT: u16 = 16;
    /// IPv6 address.
    pub const AAAA: u16 = 28;
    /// EDNS(0) pseudo-record.
    pub const OPT: u16 = 41;
    /// Service binding (RFC 9460).
    pub const SVCB: u16 = 64;
    /// Service binding for HTTPS (RFC 9460).
    pub const HTTPS: u16 = 65;
}

/// The Internet class.
pub const CLASS_IN: u16 = 1;

/// Why a DNS message (or a name) could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum DnsError {
    /// The message ends inside the header, a question, a record or a name.
    #[error("the message ends inside a field")]
    Truncated,
    /// A compression pointer to itself or to a later byte, or to a name that does not end
    /// before the pointer (so no loop can be followed).
    #[error("a compression pointer does not point strictly backwards")]
    ForwardPointer,
    /// A label type other than a plain label (0b00) or a pointer (0b11).
    #[error("a label type other than a plain label or a pointer")]
    BadLabelType,
    /// A label longer than 63 bytes (in a name given as text; on the wire such a length byte is
    /// a [`DnsError::BadLabelType`]).
    #[error("a label longer than 63 bytes")]
    LabelTooLong,
    /// An empty label inside a name given as text (`a..b`, `.a`).
    #[error("an empty label inside a name")]
    EmptyLabel,
    /// A name longer than 255 bytes in wire form.
    #[error("a name longer than 255 bytes")]
    NameTooLong,
    /// The header announces more questions or records than the message holds.
    #[error("the header announces more questions or records than the message holds")]
    CountMismatch,
    /// RDATA that does not fit its type or its RDLENGTH.
    #[error("bad RDATA for record type {rtype}")]
    BadRdata {
        /// The record type.
        rtype: u16,
    },
}

impl DnsError {
    /// A stable kebab-case name, for counters and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            DnsError::Truncated => "truncated",
            DnsError::ForwardPointer => "forward-pointer",
            DnsError::BadLabelType => "bad-label-type",
            DnsError::LabelTooLong => "label-too-long",
            DnsError::EmptyLabel => "empty-label",
            DnsError::NameTooLong => "name-too-long",
            DnsError::CountMismatch => "count-mismatch",
            DnsError::BadRdata { .. } => "bad-rdata",
        }
    }
}

impl From<BufferTooShort> for DnsError {
    fn from(_: BufferTooShort) -> Self {
        DnsError::Truncated
    }
}

/// The kind of message (header OPCODE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Opcode {
    /// A standard query (0).
    Query,
    /// An inverse query (1, obsolete).
    IQuery,
    /// A server status request (2).
    Status,
    /// A zone change notification (4).
    Notify,
    /// A dynamic update (5).
    Update,
    /// Anything else.
    Unknown(u8),
}

impl From<u8> for Opcode {
    fn from(v: u8) -> Self {
        match v {
            0 => Opcode::Query,
            1 => Opcode::IQuery,
            2 => Opcode::Status,
            4 => Opcode::Notify,
            5 => Opcode::Update,
            n => Opcode::Unknown(n),
        }
    }
}

/// The response code of the header (its 4 bits; EDNS extended codes are not combined in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rcode {
    /// No error (0).
    NoError,
    /// Format error (1).
    FormErr,
    /// Server failure (2).
    ServFail,
    /// The name does not exist (3).
    NxDomain,
    /// Not implemented (4).
    NotImp,
    /// Refused (5).
    Refused,
    /// Anything else.
    Unknown(u8),
}

impl From<u8> for Rcode {
    fn from(v: u8) -> Self {
        match v {
            0 => Rcode::NoError,
            1 => Rcode::FormErr,
            2 => Rcode::ServFail,
            3 => Rcode::NxDomain,
            4 => Rcode::NotImp,
            5 => Rcode::Refused,
            n => Rcode::Unknown(n),
        }
    }
}

/// A record section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Section {
    /// Answers.
    Answer,
    /// Authority (name servers, SOA).
    Authority,
    /// Additional records (glue, OPT).
    Additional,
}

const SECTIONS: [Section; 3] = [Section::Answer, Section::Authority, Section::Additional];

/// A question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// The name asked about.
    pub name: Name,
    /// QTYPE.
    pub qtype: u16,
    /// QCLASS.
    pub qclass: u16,
}

/// A resource record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The owner name.
    pub name: Name,
    /// TYPE.
    pub rtype: u16,
    /// CLASS (for OPT: the sender's UDP payload size).
    pub class: u16,
    /// TTL in seconds, as carried (RFC 2181 asks readers to treat values with the top bit set
    /// as 0; that is the consumer's decision).
    pub ttl: u32,
    /// The data.
    pub data: RData,
}

/// Record data, for the types ferrowall reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RData {
    /// An IPv4 address (RDLENGTH exactly 4).
    A(Ipv4Addr),
    /// An IPv6 address (RDLENGTH exactly 16).
    Aaaa(Ipv6Addr),
    /// The canonical name (ending exactly at RDLENGTH; it may point back into the message).
    Cname(Name),
    /// SVCB (64) or HTTPS (65).
    Svcb(Svcb),
    /// Any other type, not looked into.
    Other {
        /// TYPE.
        rtype: u16,
        /// RDLENGTH.
        len: u16,
    },
}

/// An SVCB or HTTPS record (RFC 9460): what ferrowall learns from it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Svcb {
    /// SvcPriority (0: alias mode).
    pub priority: u16,
    /// TargetName (the root means the owner name in service mode).
    pub target: Name,
    /// The `ipv4hint` SvcParam (key 4), in order.
    pub ipv4hint: Vec<Ipv4Addr>,
    /// The `ipv6hint` SvcParam (key 6), in order.
    pub ipv6hint: Vec<Ipv6Addr>,
}

/// SvcParamKeys read from SVCB records.
const SVC_IPV4HINT: u16 = 4;
const SVC_IPV6HINT: u16 = 6;

/// A DNS message whose framing was checked (see the module documentation).
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    bytes: &'a [u8],
    id: u16,
    flags: u16,
    counts: [u16; 4],
    /// Offset of the first record of each record section, then the end of the last section.
    starts: [usize; 4],
}

impl<'a> Message<'a> {
    /// Checks the header and the framing of every section (see the module documentation).
    ///
    /// Errors: [`DnsError::CountMismatch`] if the data ends exactly where a question or record
    /// was announced, [`DnsError::Truncated`] if it ends inside one, [`DnsError::BadLabelType`]
    /// or [`DnsError::NameTooLong`] for a name that can not be skipped.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, DnsError> {
        let mut c = Cursor::new(bytes);
        let id = c.get_u16()?;
        let flags = c.get_u16()?;
        let counts = [c.get_u16()?, c.get_u16()?, c.get_u16()?, c.get_u16()?];
        for _ in 0..counts[0] {
            announced(&c)?;
            skip_name(&mut c)?;
            c.skip(4)?;
        }
        let mut starts = [0; 4];
        for (start, &count) in starts.iter_mut().zip(&counts[1..]) {
            *start = c.off();
            for _ in 0..count {
                announced(&c)?;
                skip_name(&mut c)?;
                c.skip(8)?; // type, class, TTL
                c.get_bytes_with_u16_length()?;
            }
        }
        starts[3] = c.off();
        Ok(Message {
            bytes,
            id,
            flags,
            counts,
            starts,
        })
    }

    /// The bytes of the message.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Transaction ID.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The flags word (QR, OPCODE, AA, TC, RD, RA, Z, AD, CD, RCODE).
    pub fn flags(&self) -> u16 {
        self.flags
    }

    /// Whether this is a response (QR).
    pub fn is_response(&self) -> bool {
        self.flags & 0x8000 != 0
    }

    /// OPCODE.
    pub fn opcode(&self) -> Opcode {
        Opcode::from(((self.flags >> 11) & 0xf).to_be_bytes()[1])
    }

    /// RCODE (the header's 4 bits).
    pub fn rcode(&self) -> Rcode {
        Rcode::from((self.flags & 0xf).to_be_bytes()[1])
    }

    /// Whether the message was truncated (TC): the answer is incomplete.
    pub fn truncated(&self) -> bool {
        self.flags & 0x0200 != 0
    }

    /// The counts of the header: (questions, answers, authority, additional).
    pub fn counts(&self) -> (u16, u16, u16, u16) {
        let [qd, an, ns, ar] = self.counts;
        (qd, an, ns, ar)
    }

    /// Offset just past the last section.
    pub fn sections_end(&self) -> usize {
        self.starts[3]
    }

    /// Bytes after the last section (tolerated, see the module documentation).
    pub fn trailing_len(&self) -> usize {
        self.bytes.len().saturating_sub(self.starts[3])
    }

    /// The first question, if there is one.
    pub fn question(&self) -> Result<Option<Question>, DnsError> {
        self.questions().next().transpose()
    }

    /// Every question, in order; stops after an error.
    pub fn questions(&self) -> Questions<'a> {
        Questions {
            msg: self.bytes,
            pos: HEADER_LEN,
            left: self.counts[0],
        }
    }

    /// The records of the answer section, in order; stops after an error.
    pub fn answers(&self) -> Answers<'a> {
        Answers(Records {
            msg: self.bytes,
            pos: self.starts[0],
            left: [self.counts[1], 0, 0],
            section: 0,
        })
    }

    /// The records of the answer, authority and additional sections, in order, with their
    /// section; stops after an error.
    pub fn records(&self) -> Records<'a> {
        Records {
            msg: self.bytes,
            pos: self.starts[0],
            left: [self.counts[1], self.counts[2], self.counts[3]],
            section: 0,
        }
    }
}

/// Before a question or record the header announced: no data left is a count mismatch.
fn announced(c: &Cursor<'_>) -> Result<(), DnsError> {
    if c.is_empty() {
        Err(DnsError::CountMismatch)
    } else {
        Ok(())
    }
}

/// Moves past a name without decompressing it: its labels, then a zero or a pointer.
fn skip_name(c: &mut Cursor<'_>) -> Result<(), DnsError> {
    let mut wire = 0;
    loop {
        let len = c.get_u8()?;
        match len >> 6 {
            0b00 if len == 0 => return Ok(()),
            0b00 => {
                c.skip(usize::from(len))?;
                wire += 1 + usize::from(len);
                if wire >= MAX_WIRE_LEN {
                    return Err(DnsError::NameTooLong);
                }
            }
            0b11 => return c.skip(1).map_err(Into::into),
            _ => return Err(DnsError::BadLabelType),
        }
    }
}

/// The questions of a [`Message`].
#[derive(Debug, Clone)]
pub struct Questions<'a> {
    msg: &'a [u8],
    pos: usize,
    left: u16,
}

impl Iterator for Questions<'_> {
    type Item = Result<Question, DnsError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.read_next(read_question)
    }
}

impl Questions<'_> {
    /// The next question's name as text appended to `text` ([`read_text`]), with the same
    /// checks as [`Iterator::next`].
    pub fn next_text(&mut self, text: &mut Vec<u8>) -> Option<Result<TextName, DnsError>> {
        self.read_next(|msg, at| {
            let mark = text.len();
            let (used, name) = read_text(msg, at, text)?;
            let mut c = Cursor::at(msg, at + used);
            if c.skip(4).is_err() {
                text.truncate(mark);
                return Err(DnsError::Truncated);
            }
            Ok((
                TextName {
                    at,
                    used,
                    text: name,
                },
                c.off(),
            ))
        })
    }

    #[inline]
    fn read_next<R>(
        &mut self,
        read: impl FnOnce(&[u8], usize) -> Result<(R, usize), DnsError>,
    ) -> Option<Result<R, DnsError>> {
        self.left = self.left.checked_sub(1)?;
        let q = read(self.msg, self.pos);
        match q {
            Ok((q, next)) => {
                self.pos = next;
                Some(Ok(q))
            }
            Err(e) => {
                self.left = 0;
                Some(Err(e))
            }
        }
    }
}

fn read_question(msg: &[u8], at: usize) -> Result<(Question, usize), DnsError> {
    let (name, used) = Name::read(msg, at)?;
    let mut c = Cursor::at(msg, at + used);
    let qtype = c.get_u16()?;
    let qclass = c.get_u16()?;
    Ok((
        Question {
            name,
            qtype,
            qclass,
        },
        c.off(),
    ))
}

/// The records of a [`Message`], with their section.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    msg: &'a [u8],
    pos: usize,
    /// Records left in each section.
    left: [u16; 3],
    section: usize,
}

impl Iterator for Records<'_> {
    type Item = Result<(Section, Record), DnsError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.read_next(read_record)
    }
}

impl Records<'_> {
    /// The next record as [`RecordText`]: its names' text appended to `text` instead of
    /// decoded into [`Name`]s (the same checks, errors and order as [`Iterator::next`]). An
    /// owner that only points at `known` (the question, usually) is not read again.
    pub fn next_text(
        &mut self,
        text: &mut Vec<u8>,
        known: Option<&TextName>,
    ) -> Option<Result<(Section, RecordText), DnsError>> {
        self.read_next(|msg, at| read_record_text(msg, at, text, known))
    }

    /// Steps to the next record's section and reads the record at the current position.
    #[inline]
    fn read_next<R>(
        &mut self,
        read: impl FnOnce(&[u8], usize) -> Result<(R, usize), DnsError>,
    ) -> Option<Result<(Section, R), DnsError>> {
        loop {
            let left = self.left.get_mut(self.section)?;
            if let Some(l) = left.checked_sub(1) {
                *left = l;
                break;
            }
            self.section += 1;
        }
        let section = *SECTIONS.get(self.section)?;
        match read(self.msg, self.pos) {
            Ok((r, next)) => {
                self.pos = next;
                Some(Ok((section, r)))
            }
            Err(e) => {
                self.left = [0; 3];
                Some(Err(e))
            }
        }
    }
}

/// The records of a [`Message`]'s answer section.
#[derive(Debug, Clone)]
pub struct Answers<'a>(Records<'a>);

impl Iterator for Answers<'_> {
    type Item = Result<Record, DnsError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|r| r.map(|(_, r)| r))
    }
}

impl Answers<'_> {
    /// [`Records::next_text`] for the answer section.
    pub fn next_text(
        &mut self,
        text: &mut Vec<u8>,
        known: Option<&TextName>,
    ) -> Option<Result<RecordText, DnsError>> {
        self.0.next_text(text, known).map(|r| r.map(|(_, r)| r))
    }
}

/// A record read by [`Records::next_text`]: its names are text in the caller's buffer
/// ([`read_text`]), so that reading it copies no [`Name`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordText {
    /// Where the owner name's text is in the buffer (`None`: it has no unambiguous text).
    pub owner: Option<Range<usize>>,
    /// TYPE.
    pub rtype: u16,
    /// CLASS.
    pub class: u16,
    /// TTL in seconds, as carried.
    pub ttl: u32,
    /// The data.
    pub data: DataText,
}

/// The data of a [`RecordText`]: [`RData`] with the canonical name as text in the caller's
/// buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataText {
    /// An IPv4 address.
    A(Ipv4Addr),
    /// An IPv6 address.
    Aaaa(Ipv6Addr),
    /// Where the canonical name's text is in the buffer (`None`: no unambiguous text).
    Cname(Option<Range<usize>>),
    /// SVCB or HTTPS (rare: boxed, so that the common records stay small).
    Svcb(Box<Svcb>),
    /// Any other type.
    Other {
        /// TYPE.
        rtype: u16,
        /// RDLENGTH.
        len: u16,
    },
}

/// A record's fields after its owner name.
struct Fixed {
    rtype: u16,
    class: u16,
    ttl: u32,
    /// Where the RDATA starts.
    rdata: usize,
    rdlen: u16,
    /// Where the next record starts.
    next: usize,
}

impl Fixed {
    /// The fields at `at` (just past the owner name), the RDATA checked to be within `msg`.
    fn read(msg: &[u8], at: usize) -> Result<Fixed, DnsError> {
        let mut c = Cursor::at(msg, at);
        let rtype = c.get_u16()?;
        let class = c.get_u16()?;
        let ttl = c.get_u32()?;
        let rdlen = c.get_u16()?;
        let rdata = c.off();
        c.skip(usize::from(rdlen))?;
        Ok(Fixed {
            rtype,
            class,
            ttl,
            rdata,
            rdlen,
            next: c.off(),
        })
    }
}

fn read_record(msg: &[u8], at: usize) -> Result<(Record, usize), DnsError> {
    let (name, used) = Name::read(msg, at)?;
    let f = Fixed::read(msg, at + used)?;
    let data = read_rdata(msg, f.rdata, f.rtype, f.rdlen)?;
    Ok((
        Record {
            name,
            rtype: f.rtype,
            class: f.class,
            ttl: f.ttl,
            data,
        },
        f.next,
    ))
}

/// [`read_record`] with its names read as text into `text` (nothing is left there on error).
fn read_record_text(
    msg: &[u8],
    at: usize,
    text: &mut Vec<u8>,
    known: Option<&TextName>,
) -> Result<(RecordText, usize), DnsError> {
    let mark = text.len();
    let r = read_record_text_inner(msg, at, text, known);
    if r.is_err() {
        text.truncate(mark);
    }
    r
}

fn read_record_text_inner(
    msg: &[u8],
    at: usize,
    text: &mut Vec<u8>,
    known: Option<&TextName>,
) -> Result<(RecordText, usize), DnsError> {
    let (used, owner) = read_text_known(msg, at, text, known)?;
    let f = Fixed::read(msg, at + used)?;
    let (rtype, rdlen) = (f.rtype, f.rdlen);
    // The common types are read here: going through `RData` (which holds whole `Name`s) would
    // copy hundreds of bytes per record.
    let data = match rtype {
        rtype::A => DataText::A(read_addr::<4>(msg, f.rdata, rtype, rdlen)?.into()),
        rtype::AAAA => DataText::Aaaa(read_addr::<16>(msg, f.rdata, rtype, rdlen)?.into()),
        rtype::CNAME => {
            let (window, inside) = rdata_window(msg, f.rdata, rtype, rdlen)?;
            let (used, target) = read_text(window, f.rdata, text).map_err(inside)?;
            if used != usize::from(rdlen) {
                return Err(DnsError::BadRdata { rtype });
            }
            DataText::Cname(target)
        }
        rtype::SVCB | rtype::HTTPS => {
            DataText::Svcb(Box::new(read_svcb(msg, f.rdata, rtype, rdlen)?))
        }
        _ => {
            let (_, _) = rdata_window(msg, f.rdata, rtype, rdlen)?;
            DataText::Other { rtype, len: rdlen }
        }
    };
    Ok((
        RecordText {
            owner,
            rtype,
            class: f.class,
            ttl: f.ttl,
            data,
        },
        f.next,
    ))
}

/// The bytes names inside the RDATA of `len` bytes at `at` may be read from, and how their
/// errors read: they may point back anywhere before them, but their own labels must stay
/// within RDLENGTH, so they are read from the message cut at the end of the RDATA (running
/// off it is bad RDATA, not a truncated message).
fn rdata_window(
    msg: &[u8],
    at: usize,
    rtype: u16,
    len: u16,
) -> Result<(&[u8], impl Fn(DnsError) -> DnsError), DnsError> {
    let bad = DnsError::BadRdata { rtype };
    let window = msg
        .get(..at + usize::from(len))
        .ok_or(DnsError::Truncated)?;
    Ok((
        window,
        move |e| if e == DnsError::Truncated { bad } else { e },
    ))
}

/// The address of an A or AAAA record: RDATA of `len` bytes at `at`, exactly `N` of them.
fn read_addr<const N: usize>(
    msg: &[u8],
    at: usize,
    rtype: u16,
    len: u16,
) -> Result<[u8; N], DnsError> {
    let bad = DnsError::BadRdata { rtype };
    let (window, _) = rdata_window(msg, at, rtype, len)?;
    let mut c = Cursor::at(window, at);
    let a: [u8; N] = c.get_array().map_err(|_| bad)?;
    if !c.is_empty() {
        return Err(bad);
    }
    Ok(a)
}

/// Reads the RDATA of `len` bytes at `at` (already checked to be within `msg`).
fn read_rdata(msg: &[u8], at: usize, rtype: u16, len: u16) -> Result<RData, DnsError> {
    match rtype {
        rtype::A => read_addr::<4>(msg, at, rtype, len).map(|a| RData::A(a.into())),
        rtype::AAAA => read_addr::<16>(msg, at, rtype, len).map(|a| RData::Aaaa(a.into())),
        rtype::CNAME => {
            let (window, inside) = rdata_window(msg, at, rtype, len)?;
            let (name, used) = Name::read(window, at).map_err(inside)?;
            if used != usize::from(len) {
                return Err(DnsError::BadRdata { rtype });
            }
            Ok(RData::Cname(name))
        }
        rtype::SVCB | rtype::HTTPS => read_svcb(msg, at, rtype, len).map(RData::Svcb),
        _ => rdata_window(msg, at, rtype, len).map(|_| RData::Other { rtype, len }),
    }
}

/// The RDATA of `len` bytes at `at` of an SVCB or HTTPS record: SvcPriority, TargetName, then
/// SvcParams (key, length, value) in strictly increasing key order, filling it exactly.
fn read_svcb(msg: &[u8], at: usize, rtype: u16, len: u16) -> Result<Svcb, DnsError> {
    let bad = DnsError::BadRdata { rtype };
    let (window, inside) = rdata_window(msg, at, rtype, len)?;
    let mut c = Cursor::at(window, at);
    let priority = c.get_u16().map_err(|_| bad)?;
    let (target, used) = Name::read(window, c.off()).map_err(inside)?;
    c.skip(used).map_err(|_| bad)?;
    let mut svcb = Svcb {
        priority,
        target,
        ..Svcb::default()
    };
    let mut last_key = None;
    while !c.is_empty() {
        let key = c.get_u16().map_err(|_| bad)?;
        let value = c.get_bytes_with_u16_length().map_err(|_| bad)?;
        if last_key.is_some_and(|k| key <= k) {
            return Err(bad);
        }
        last_key = Some(key);
        match key {
            SVC_IPV4HINT => {
                svcb.ipv4hint = addresses::<4, Ipv4Addr>(value).ok_or(bad)?;
            }
            SVC_IPV6HINT => {
                svcb.ipv6hint = addresses::<16, Ipv6Addr>(value).ok_or(bad)?;
            }
            _ => {}
        }
    }
    Ok(svcb)
}

/// A non-empty list of `N`-byte addresses filling `value` exactly.
fn addresses<const N: usize, A: From<[u8; N]>>(value: &[u8]) -> Option<Vec<A>> {
    if value.is_empty() || value.len() % N != 0 {
        return None;
    }
    value
        .chunks_exact(N)
        .map(|a| a.try_into().ok().map(A::from))
        .collect()
}

/// A writer of well-formed messages for tests (here and in other crates): queries, and
/// responses with A, AAAA, CNAME and HTTPS answers, names compressed when repeated.
///
/// Names are given as text (`"www.example.com"`, a trailing dot allowed, `""` or `"."` for the
/// root) and written with their case kept. The functions panic on a name that can not be
/// written (an empty label, a label over 63 bytes, a name over 255 bytes): they build test
/// input, they never see the network.
pub mod build {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::{CLASS_IN, SVC_IPV4HINT, SVC_IPV6HINT, rtype};
    use crate::dns::name::{MAX_LABEL_LEN, MAX_WIRE_LEN};

    /// The data of an answer written by [`response`].
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum RecordSpec {
        /// An A record.
        A(Ipv4Addr),
        /// An AAAA record.
        Aaaa(Ipv6Addr),
        /// A CNAME record pointing at this name.
        Cname(String),
        /// An HTTPS record in service mode (priority 1) with these address hints (each written
        /// only when not empty). The target is never compressed (RFC 9460).
        Https {
            /// TargetName (`"."` or `""`: the owner name).
            target: String,
            /// `ipv4hint`.
            ipv4hint: Vec<Ipv4Addr>,
            /// `ipv6hint`.
            ipv6hint: Vec<Ipv6Addr>,
        },
    }

    impl RecordSpec {
        /// The record type written.
        pub fn rtype(&self) -> u16 {
            match self {
                RecordSpec::A(_) => rtype::A,
                RecordSpec::Aaaa(_) => rtype::AAAA,
                RecordSpec::Cname(_) => rtype::CNAME,
                RecordSpec::Https { .. } => rtype::HTTPS,
            }
        }
    }

    /// A standard query (RD set) with one question of class IN.
    pub fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
        let mut w = Writer::new(id, 0x0100, [1, 0, 0, 0], true);
        w.question(name, qtype);
        w.out
    }

    /// A response (QR, RD, RA set, no error) to the question (`question_name`, `qtype`, IN)
    /// with these answers (owner name, TTL, data), in order, class IN. Names already written
    /// (owner names, CNAME targets, or their suffixes) are compressed into pointers.
    ///
    /// # Panics
    ///
    /// On more than 65535 answers, or a name that can not be written (see the module docs).
    pub fn response(
        id: u16,
        question_name: &str,
        qtype: u16,
        answers: &[(&str, u32, RecordSpec)],
    ) -> Vec<u8> {
        response_with(id, question_name, qtype, answers, true)
    }

    /// [`response`], with compression or without.
    pub(crate) fn response_with(
        id: u16,
        question_name: &str,
        qtype: u16,
        answers: &[(&str, u32, RecordSpec)],
        compress: bool,
    ) -> Vec<u8> {
        let an = u16::try_from(answers.len()).expect("at most 65535 answers");
        let mut w = Writer::new(id, 0x8180, [1, an, 0, 0], compress);
        w.question(question_name, qtype);
        for (owner, ttl, spec) in answers {
            w.name(owner, true);
            w.u16(spec.rtype());
            w.u16(CLASS_IN);
            w.out.extend(ttl.to_be_bytes());
            let len_at = w.out.len();
            w.u16(0);
            match spec {
                RecordSpec::A(a) => w.out.extend(a.octets()),
                RecordSpec::Aaaa(a) => w.out.extend(a.octets()),
                RecordSpec::Cname(target) => w.name(target, true),
                RecordSpec::Https {
                    target,
                    ipv4hint,
                    ipv6hint,
                } => {
                    w.u16(1);
                    w.name(target, false);
                    if !ipv4hint.is_empty() {
                        w.u16(SVC_IPV4HINT);
                        w.len16(ipv4hint.len() * 4);
                        ipv4hint.iter().for_each(|a| w.out.extend(a.octets()));
                    }
                    if !ipv6hint.is_empty() {
                        w.u16(SVC_IPV6HINT);
                        w.len16(ipv6hint.len() * 16);
                        ipv6hint.iter().for_each(|a| w.out.extend(a.octets()));
                    }
                }
            }
            let rdlen = u16::try_from(w.out.len() - len_at - 2).expect("RDATA within 64 KiB");
            w.out[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
        }
        w.out
    }

    /// The message being written, and where each name suffix already written starts.
    struct Writer {
        out: Vec<u8>,
        compress: bool,
        /// (lowercased suffix in text form, its offset).
        suffixes: Vec<(String, u16)>,
    }

    impl Writer {
        fn new(id: u16, flags: u16, counts: [u16; 4], compress: bool) -> Self {
            let mut w = Writer {
                out: Vec::with_capacity(512),
                compress,
                suffixes: Vec::new(),
            };
            w.u16(id);
            w.u16(flags);
            counts.iter().for_each(|&c| w.u16(c));
            w
        }

        fn u16(&mut self, v: u16) {
            self.out.extend(v.to_be_bytes());
        }

        fn len16(&mut self, n: usize) {
            self.u16(u16::try_from(n).expect("a length within 64 KiB"));
        }

        fn question(&mut self, name: &str, qtype: u16) {
            self.name(name, true);
            self.u16(qtype);
            self.u16(CLASS_IN);
        }

        /// Writes `name`, ending in a pointer to the longest suffix already written if
        /// `compressible` and compression is on.
        fn name(&mut self, name: &str, compressible: bool) {
            let labels = labels_of(name);
            for i in 0..labels.len() {
                let suffix = labels[i..].join(".").to_ascii_lowercase();
                if self.compress && compressible {
                    if let Some(&(_, at)) = self.suffixes.iter().find(|(s, _)| *s == suffix) {
                        self.u16(0xc000 | at);
                        return;
                    }
                }
                if let Ok(at) = u16::try_from(self.out.len()) {
                    if at < 0x4000 {
                        self.suffixes.push((suffix, at));
                    }
                }
                let label = labels[i].as_bytes();
                self.out
                    .push(u8::try_from(label.len()).expect("checked label length"));
                self.out.extend(label);
            }
            self.out.push(0);
        }
    }

    /// The labels of a text name; panics on one that can not be written.
    fn labels_of(name: &str) -> Vec<&str> {
        let name = name.strip_suffix('.').unwrap_or(name);
        if name.is_empty() {
            return Vec::new();
        }
        let labels: Vec<&str> = name.split('.').collect();
        for l in &labels {
            assert!(
                (1..=MAX_LABEL_LEN).contains(&l.len()),
                "label {l:?} of {name:?}: 1 to 63 bytes"
            );
        }
        assert!(name.len() + 2 <= MAX_WIRE_LEN, "{name:?}: over 255 bytes");
        labels
    }
}

#[cfg(test)]
mod tests {
    use super::build::{RecordSpec, response_with};
    use super::*;
    use proptest::prelude::*;

    /// `dig www.example.com A`: one answer, owner name compressed to the question.
    static A_RESPONSE_BYTES: [u8; 49] = [
        0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, // header
        3, b'w', b'w', b'w', 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 3, b'c', b'o', b'm', 0,
        0, 1, 0, 1, // question at 12
        0xc0, 12, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 93, 184, 216, 34, // answer at 33
    ];

    /// An AAAA answer for `v6.example`, TTL 60.
    static AAAA_RESPONSE_BYTES: [u8; 56] = [
        0xab, 0xcd, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, // header
        2, b'v', b'6', 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 0, 0, 28, 0,
        1, // question
        0xc0, 12, 0, 28, 0, 1, 0, 0, 0, 60, 0, 16, // answer head at 28
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    ];

    /// `www.shop.example` CNAME `shop.cdn.example` (compressed: `shop.` + pointer into the
    /// question... to `example`), CNAME `edge.cdn.example` (`edge` + pointer to `cdn.example`),
    /// A 192.0.2.7. Authority: none. Additional: an OPT record.
    static CNAME_CHAIN_BYTES: [u8; 114] = [
        0x00, 0x07, 0x81, 0x80, 0, 1, 0, 3, 0, 0, 0, 1, // header
        // question at 12: www.shop.example
        3, b'w', b'w', b'w', 4, b's', b'h', b'o', b'p', 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e',
        0, 0, 1, 0, 1, // 12..34
        // answer 1 at 34: www.shop.example CNAME shop.cdn.example
        0xc0, 12, 0, 5, 0, 1, 0, 0, 1, 0x2c, 0, 11, // rdata at 46, 11 bytes
        4, b's', b'h', b'o', b'p', 3, b'c', b'd', b'n', 0xc0, 21, // 46..57: cdn at 51
        // answer 2 at 57: shop.cdn.example CNAME edge.cdn.example
        0xc0, 46, 0, 5, 0, 1, 0, 0, 0, 30, 0, 7, // rdata at 69
        4, b'e', b'd', b'g', b'e', 0xc0, 51, // 69..76
        // answer 3 at 76: edge.cdn.example A 192.0.2.7
        0xc0, 69, 0, 1, 0, 1, 0, 0, 0, 20, 0, 4, 192, 0, 2, 7, // 76..92
        // additional at 92: OPT, root, payload 1232, 0 TTL, 0 bytes
        0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0, // 92..103
        // 11 trailing bytes (tolerated)
        0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 0, 0, 0,
    ];

    /// `example.net` HTTPS 1 `.` ipv4hint=192.0.2.1,192.0.2.2 ipv6hint=2001:db8::1, with an
    /// alpn (key 1) before and a port (key 3) between, which are skipped.
    static HTTPS_RESPONSE_BYTES: [u8; 89] = [
        0x55, 0x55, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, // header
        7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 3, b'n', b'e', b't', 0, 0, 65, 0, 1, // q
        0xc0, 12, 0, 65, 0, 1, 0, 0, 0x0e, 0x10, 0, 48, // answer head at 29, rdata at 41
        0, 1, 0, // priority 1, target root
        0, 1, 0, 3, 2, b'h', b'2', // alpn h2
        0, 3, 0, 2, 0x01, 0xbb, // port 443
        0, 4, 0, 8, 192, 0, 2, 1, 192, 0, 2, 2, // ipv4hint
        0, 6, 0, 16, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, // ipv6hint
    ];

    fn name(s: &str) -> Name {
        Name::from_dotted(s).unwrap()
    }

    fn all_records(m: &Message<'_>) -> Result<Vec<(Section, Record)>, DnsError> {
        m.records().collect()
    }

    fn answers(bytes: &[u8]) -> Result<Vec<Record>, DnsError> {
        Message::parse(bytes)?.answers().collect()
    }

    #[test]
    fn a_response() {
        let m = Message::parse(&A_RESPONSE_BYTES).unwrap();
        assert_eq!(m.id(), 0x1234);
        assert!(m.is_response());
        assert!(!m.truncated());
        assert_eq!((m.opcode(), m.rcode()), (Opcode::Query, Rcode::NoError));
        assert_eq!(m.counts(), (1, 1, 0, 0));
        assert_eq!((m.sections_end(), m.trailing_len()), (49, 0));
        assert_eq!(
            m.question().unwrap(),
            Some(Question {
                name: name("www.example.com"),
                qtype: rtype::A,
                qclass: CLASS_IN,
            })
        );
        assert_eq!(
            answers(&A_RESPONSE_BYTES).unwrap(),
            [Record {
                name: name("www.example.com"),
                rtype: rtype::A,
                class: CLASS_IN,
                ttl: 3600,
                data: RData::A(Ipv4Addr::new(93, 184, 216, 34)),
            }]
        );
        assert_eq!(
            all_records(&m).unwrap()[0].0,
            Section::Answer,
            "records() sees the answer too"
        );
    }

    #[test]
    fn header_fields() {
        let mut b = A_RESPONSE_BYTES;
        b[2] = 0x2a; // QR 0, opcode 5 (update), TC
        b[3] = 0x83; // rcode 3
        let m = Message::parse(&b).unwrap();
        assert!(!m.is_response());
        assert!(m.truncated());
        assert_eq!((m.opcode(), m.rcode()), (Opcode::Update, Rcode::NxDomain));
        b[2] = 0x78; // opcode 15
        b[3] = 0x0b;
        let m = Message::parse(&b).unwrap();
        assert_eq!(
            (m.opcode(), m.rcode()),
            (Opcode::Unknown(15), Rcode::Unknown(11))
        );
        assert_eq!(m.flags(), 0x780b);
    }

    #[test]
    fn aaaa_response() {
        let r = answers(&AAAA_RESPONSE_BYTES).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].name, name("v6.example"));
        assert_eq!((r[0].rtype, r[0].ttl), (rtype::AAAA, 60));
        assert_eq!(r[0].data, RData::Aaaa("2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn cname_chain_with_backward_pointers() {
        let m = Message::parse(&CNAME_CHAIN_BYTES).unwrap();
        assert_eq!(m.counts(), (1, 3, 0, 1));
        assert_eq!((m.sections_end(), m.trailing_len()), (103, 11));
        let r = all_records(&m).unwrap();
        let summary: Vec<(Section, String, u32, RData)> = r
            .into_iter()
            .map(|(s, r)| (s, r.name.to_string(), r.ttl, r.data))
            .collect();
        assert_eq!(
            summary,
            [
                (
                    Section::Answer,
                    "www.shop.example".into(),
                    300,
                    RData::Cname(name("shop.cdn.example"))
                ),
                (
                    Section::Answer,
                    "shop.cdn.example".into(),
                    30,
                    RData::Cname(name("edge.cdn.example"))
                ),
                (
                    Section::Answer,
                    "edge.cdn.example".into(),
                    20,
                    RData::A(Ipv4Addr::new(192, 0, 2, 7))
                ),
                (
                    Section::Additional,
                    ".".into(),
                    0,
                    RData::Other {
                        rtype: rtype::OPT,
                        len: 0
                    }
                ),
            ]
        );
        assert_eq!(m.answers().count(), 3);
    }

    #[test]
    fn https_with_hints() {
        let r = answers(&HTTPS_RESPONSE_BYTES).unwrap();
        assert_eq!(
            r[0].data,
            RData::Svcb(Svcb {
                priority: 1,
                target: Name::root(),
                ipv4hint: vec![Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2)],
                ipv6hint: vec!["2001:db8::1".parse().unwrap()],
            })
        );
        // The same bytes typed SVCB (64) read the same way.
        let mut b = HTTPS_RESPONSE_BYTES;
        b[32] = 64;
        assert!(matches!(answers(&b).unwrap()[0].data, RData::Svcb(_)));
    }

    #[test]
    fn svcb_params_must_be_ordered_well_formed_and_fill_rdlength() {
        let bad = Err(DnsError::BadRdata { rtype: 65 });
        // Keys out of order: make the port key (3) a 1, after alpn (1).
        let mut b = HTTPS_RESPONSE_BYTES;
        b[52] = 1;
        assert_eq!(answers(&b), bad);
        // An ipv4hint of 7 bytes.
        let mut b = HTTPS_RESPONSE_BYTES;
        b[60] = 7;
        assert_eq!(answers(&b), bad);
        // An empty ipv6hint list.
        let mut b = HTTPS_RESPONSE_BYTES.to_vec();
        b[40] = 32; // rdlength: cut the ipv6 addresses off
        b[72] = 0;
        b.truncate(73);
        assert_eq!(answers(&b), bad);
        // RDLENGTH one short: the last param runs past it.
        let mut b = HTTPS_RESPONSE_BYTES.to_vec();
        b[40] = 47;
        b.pop();
        assert_eq!(answers(&b), bad);
        // RDLENGTH one long: a stray byte after the last param.
        let mut b = HTTPS_RESPONSE_BYTES.to_vec();
        b[40] = 49;
        b.push(0);
        assert_eq!(answers(&b), bad);
        // RDLENGTH too short for the priority, or the target.
        for len in [0, 1, 2] {
            let mut b = HTTPS_RESPONSE_BYTES[..41 + len].to_vec();
            b[40] = u8::try_from(len).unwrap();
            assert_eq!(answers(&b), bad, "rdlength {len}");
        }
    }

    #[test]
    fn rdlength_must_fit_a_aaaa_and_cname() {
        // A with 3 and 5 bytes.
        let mut short = A_RESPONSE_BYTES.to_vec();
        short[44] = 3;
        short.pop();
        assert_eq!(answers(&short), Err(DnsError::BadRdata { rtype: 1 }));
        let mut long = A_RESPONSE_BYTES.to_vec();
        long[44] = 5;
        long.push(0);
        assert_eq!(answers(&long), Err(DnsError::BadRdata { rtype: 1 }));
        // AAAA with 15 and 17 bytes.
        let mut short = AAAA_RESPONSE_BYTES.to_vec();
        short[39] = 15;
        short.pop();
        assert_eq!(answers(&short), Err(DnsError::BadRdata { rtype: 28 }));
        let mut long = AAAA_RESPONSE_BYTES.to_vec();
        long[39] = 17;
        long.push(0);
        assert_eq!(answers(&long), Err(DnsError::BadRdata { rtype: 28 }));
        // CNAME 1 whose RDLENGTH (11) says 10: the pointer's second byte is outside.
        let mut b = CNAME_CHAIN_BYTES;
        b[45] = 10;
        let m = Message::parse(&b);
        // The framing now puts the next record one byte early; either way it is refused.
        assert!(m.is_err() || all_records(&m.unwrap()).is_err());
        // Checked alone: a CNAME whose name ends before RDLENGTH, or runs past it.
        let cname = |rdata: &[u8], rdlen: u8| {
            let mut b = A_RESPONSE_BYTES[..33].to_vec();
            b.extend([0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 1, 0, rdlen]);
            b.extend(rdata);
            answers(&b)
        };
        let bad = Err(DnsError::BadRdata { rtype: 5 });
        assert_eq!(cname(&[0xc0, 12, 0], 3), bad, "a byte after the name");
        assert_eq!(
            cname(&[1, b'a', 0xc0, 12], 3),
            bad,
            "name runs past RDLENGTH"
        );
        assert_eq!(cname(&[1, b'a', 0], 2), bad, "name runs past RDLENGTH");
        assert_eq!(cname(&[], 0), bad, "empty");
        assert_eq!(
            cname(&[1, b'a', 0xc0, 12], 4).unwrap()[0].data,
            RData::Cname(name("a.www.example.com"))
        );
        assert_eq!(
            cname(&[0xc0, 45], 2),
            Err(DnsError::ForwardPointer),
            "a pointer to itself"
        );
    }

    #[test]
    fn forward_self_and_looping_pointers_are_errors() {
        // The answer's owner name pointing forward (to its own RDATA).
        let mut b = A_RESPONSE_BYTES;
        b[34] = 45;
        assert_eq!(answers(&b), Err(DnsError::ForwardPointer));
        // ... or at itself.
        b[34] = 33;
        assert_eq!(answers(&b), Err(DnsError::ForwardPointer));
        // The question's name pointing forward, at the answer's pointer, which points back:
        // a two-pointer loop. Parsing the framing succeeds (names are skipped); reading fails.
        let mut b = A_RESPONSE_BYTES.to_vec();
        b.splice(12..29, [0xc0, 18]);
        assert_eq!(&b[18..20], &[0xc0, 12], "the answer's pointer, now at 18");
        let m = Message::parse(&b).unwrap();
        assert_eq!(m.question(), Err(DnsError::ForwardPointer));
        assert_eq!(answers(&b), Err(DnsError::ForwardPointer));
        // A name that loops back into itself: `www` then a pointer to `www`.
        let mut b = A_RESPONSE_BYTES[..12].to_vec();
        b[7] = 0;
        b.extend([3, b'w', b'w', b'w', 0xc0, 12, 0, 1, 0, 1]);
        let m = Message::parse(&b).unwrap();
        assert_eq!(m.question(), Err(DnsError::ForwardPointer));
    }

    #[test]
    fn bad_label_types_and_long_names() {
        let mut b = A_RESPONSE_BYTES;
        b[12] = 0x40; // extended label type
        assert_eq!(Message::parse(&b).unwrap_err(), DnsError::BadLabelType);
        b[12] = 0x83;
        assert_eq!(Message::parse(&b).unwrap_err(), DnsError::BadLabelType);
        // A label of "64" bytes is the 0b01 type on the wire.
        let mut b = A_RESPONSE_BYTES.to_vec();
        b.splice(12..16, [64].into_iter().chain([b'w'; 64]));
        assert_eq!(Message::parse(&b).unwrap_err(), DnsError::BadLabelType);
        // A question name of 257 bytes.
        let mut b = A_RESPONSE_BYTES[..12].to_vec();
        b[7] = 0; // no answers
        for _ in 0..4 {
            b.push(63);
            b.extend([b'x'; 63]);
        }
        b.extend([0, 0, 1, 0, 1]);
        assert_eq!(Message::parse(&b).unwrap_err(), DnsError::NameTooLong);
        // 255 bytes are fine.
        let mut b = A_RESPONSE_BYTES[..12].to_vec();
        b[7] = 0;
        for _ in 0..3 {
            b.push(63);
            b.extend([b'x'; 63]);
        }
        b.extend([61]);
        b.extend([b'y'; 61]);
        b.extend([0, 0, 1, 0, 1]);
        let m = Message::parse(&b).unwrap();
        assert_eq!(m.question().unwrap().unwrap().name.wire_len(), 255);
    }

    #[test]
    fn counts_larger_than_the_data() {
        // One more answer announced than present: the data ends where it should start.
        let mut b = A_RESPONSE_BYTES;
        b[7] = 2;
        assert_eq!(Message::parse(&b).unwrap_err(), DnsError::CountMismatch);
        let mut b = A_RESPONSE_BYTES;
        b[5] = 2;
        assert_eq!(Message::parse(&b).unwrap_err(), DnsError::Truncated);
        for at in [9, 11] {
            let mut b = A_RESPONSE_BYTES;
            b[at] = 1; // an authority or additional record that is not there
            assert_eq!(Message::parse(&b).unwrap_err(), DnsError::CountMismatch);
        }
        let mut b = A_RESPONSE_BYTES;
        b[6] = 0xff;
        assert_eq!(Message::parse(&b).unwrap_err(), DnsError::CountMismatch);
        // An RDLENGTH past the end.
        let mut b = A_RESPONSE_BYTES;
        b[44] = 5;
        assert_eq!(Message::parse(&b).unwrap_err(), DnsError::Truncated);
        // Fewer announced than present: the rest is trailing data, tolerated.
        let mut b = A_RESPONSE_BYTES;
        b[7] = 0;
        let m = Message::parse(&b).unwrap();
        assert_eq!((m.answers().count(), m.trailing_len()), (0, 16));
        assert_eq!(Message::parse(&[0; 11]).unwrap_err(), DnsError::Truncated);
        let empty = Message::parse(&[0; 12]).unwrap();
        assert_eq!(empty.question(), Ok(None));
        assert_eq!(empty.records().count(), 0);
    }

    /// Parses and reads everything; the first error, if any.
    fn walk(bytes: &[u8]) -> Result<usize, DnsError> {
        let m = Message::parse(bytes)?;
        let _ = (m.id(), m.opcode(), m.rcode(), m.counts(), m.trailing_len());
        let mut n = 0;
        for q in m.questions() {
            let q = q?;
            assert!(q.name.wire_len() <= 255);
            n += 1;
        }
        m.question()?;
        for r in m.records() {
            let (_, r) = r?;
            assert!(r.name.wire_len() <= 255);
            assert!(r.name.labels().all(|l| (1..=63).contains(&l.len())));
            let _ = r.name.to_string();
            n += 1;
        }
        Ok(n)
    }

    #[test]
    fn every_truncation_of_valid_responses_is_an_error() {
        for full in [
            &A_RESPONSE_BYTES[..],
            &AAAA_RESPONSE_BYTES,
            &CNAME_CHAIN_BYTES,
            &HTTPS_RESPONSE_BYTES,
        ] {
            let whole = walk(full).unwrap();
            let end = Message::parse(full).unwrap().sections_end();
            for cut in 0..full.len() {
                match walk(&full[..cut]) {
                    Err(_) => assert!(cut < end),
                    // Only trailing bytes may go.
                    Ok(n) => assert!(cut >= end && n == whole, "cut {cut}"),
                }
            }
        }
    }

    fn spec_data(spec: &RecordSpec) -> RData {
        match spec {
            RecordSpec::A(a) => RData::A(*a),
            RecordSpec::Aaaa(a) => RData::Aaaa(*a),
            RecordSpec::Cname(t) => RData::Cname(name(t)),
            RecordSpec::Https {
                target,
                ipv4hint,
                ipv6hint,
            } => RData::Svcb(Svcb {
                priority: 1,
                target: name(target),
                ipv4hint: ipv4hint.clone(),
                ipv6hint: ipv6hint.clone(),
            }),
        }
    }

    fn expected(answers: &[(&str, u32, RecordSpec)]) -> Vec<Record> {
        answers
            .iter()
            .map(|(owner, ttl, spec)| Record {
                name: name(owner),
                rtype: spec.rtype(),
                class: CLASS_IN,
                ttl: *ttl,
                data: spec_data(spec),
            })
            .collect()
    }

    #[test]
    fn builder_round_trip() {
        let q = build::query(7, "WWW.Example.com", rtype::HTTPS);
        let m = Message::parse(&q).unwrap();
        assert_eq!(
            (m.id(), m.is_response(), m.counts()),
            (7, false, (1, 0, 0, 0))
        );
        let question = m.question().unwrap().unwrap();
        assert_eq!(question.name, name("www.example.com"));
        assert_eq!((question.qtype, question.qclass), (rtype::HTTPS, CLASS_IN));
        assert_eq!(m.trailing_len(), 0);

        let answers = [
            (
                "www.example.com",
                300,
                RecordSpec::Cname("edge.cdn.example.net".into()),
            ),
            (
                "edge.cdn.example.net",
                60,
                RecordSpec::A(Ipv4Addr::new(192, 0, 2, 1)),
            ),
            (
                "edge.cdn.example.net",
                60,
                RecordSpec::Aaaa("2001:db8::2".parse().unwrap()),
            ),
            (
                "www.example.com",
                30,
                RecordSpec::Https {
                    target: ".".into(),
                    ipv4hint: vec![Ipv4Addr::new(192, 0, 2, 3)],
                    ipv6hint: vec!["2001:db8::3".parse().unwrap(), "::1".parse().unwrap()],
                },
            ),
            (
                "other.example.com",
                5,
                RecordSpec::Https {
                    target: "svc.example.com".into(),
                    ipv4hint: vec![],
                    ipv6hint: vec![],
                },
            ),
        ];
        let compressed = build::response(9, "www.example.com", rtype::A, &answers);
        let plain = response_with(9, "www.example.com", rtype::A, &answers, false);
        assert!(compressed.len() + 40 < plain.len(), "names were compressed");
        for bytes in [&compressed, &plain] {
            let m = Message::parse(bytes).unwrap();
            assert_eq!(
                (m.id(), m.is_response(), m.rcode()),
                (9, true, Rcode::NoError)
            );
            assert_eq!(m.counts(), (1, 5, 0, 0));
            assert_eq!(m.trailing_len(), 0);
            assert_eq!(m.question().unwrap().unwrap().name, name("www.example.com"));
            let got: Vec<Record> = m.answers().collect::<Result<_, _>>().unwrap();
            assert_eq!(got, expected(&answers));
        }
        // Pointers in the compressed form point backwards only (the parser accepted them) and
        // every pointer is at most 2 bytes: the owner names of records 2-5 are pure pointers.
        assert_eq!(&compressed[33..35], &[0xc0, 12]);
    }

    #[test]
    #[should_panic(expected = "1 to 63 bytes")]
    fn builder_refuses_unwritable_names() {
        build::query(1, "a..b", rtype::A);
    }

    fn name_strategy() -> impl Strategy<Value = String> {
        // Few distinct labels, so that suffixes repeat and compression is exercised.
        prop::collection::vec(
            prop::sample::select(vec!["a", "www", "Example", "com", "x-y_z", "cdn"]),
            0..5,
        )
        .prop_map(|l| l.join("."))
    }

    fn spec_strategy() -> impl Strategy<Value = RecordSpec> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(|a| RecordSpec::A(a.into())),
            any::<[u8; 16]>().prop_map(|a| RecordSpec::Aaaa(a.into())),
            name_strategy().prop_map(RecordSpec::Cname),
            (
                name_strategy(),
                prop::collection::vec(any::<[u8; 4]>(), 0..4),
                prop::collection::vec(any::<[u8; 16]>(), 0..3)
            )
                .prop_map(|(target, v4, v6)| RecordSpec::Https {
                    target,
                    ipv4hint: v4.into_iter().map(Into::into).collect(),
                    ipv6hint: v6.into_iter().map(Into::into).collect(),
                }),
        ]
    }

    proptest! {
        // A failing case is printed, not saved to a file.
        #![proptest_config(ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
            let _ = walk(&bytes);
            let _ = Name::read(&bytes, 0);
            let _ = Name::read(&bytes, 12);
            crate::fuzzing::dns(&bytes);
        }

        #[test]
        fn mutated_responses_never_panic(
            which in 0usize..4,
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut b = [
                &A_RESPONSE_BYTES[..],
                &AAAA_RESPONSE_BYTES,
                &CNAME_CHAIN_BYTES,
                &HTTPS_RESPONSE_BYTES,
            ][which]
                .to_vec();
            for (at, v) in edits {
                let i = at.index(b.len());
                b[i] = v;
            }
            let _ = walk(&b);
            let _ = walk(&b[..cut.index(b.len() + 1)]);
            crate::fuzzing::dns(&b);
            crate::fuzzing::dns(&b[..cut.index(b.len() + 1)]);
        }

        #[test]
        fn built_responses_parse_back(
            id in any::<u16>(),
            qname in name_strategy(),
            qtype in any::<u16>(),
            answers in prop::collection::vec((name_strategy(), any::<u32>(), spec_strategy()), 0..8),
            compress in any::<bool>(),
        ) {
            let answers: Vec<(&str, u32, RecordSpec)> =
                answers.iter().map(|(n, t, s)| (n.as_str(), *t, s.clone())).collect();
            let bytes = response_with(id, &qname, qtype, &answers, compress);
            let m = Message::parse(&bytes).unwrap();
            prop_assert_eq!(m.id(), id);
            prop_assert_eq!(m.trailing_len(), 0);
            let q = m.question().unwrap().unwrap();
            prop_assert_eq!((q.name, q.qtype), (name(&qname), qtype));
            let got: Vec<Record> = m.answers().collect::<Result<_, _>>().unwrap();
            prop_assert_eq!(got, expected(&answers));
        }
    }
}
