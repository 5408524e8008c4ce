//! Domain names: decompression from a message into a fixed buffer, and their text form.
//!
//! A [`Name`] holds a whole decompressed name without allocating: its text form (labels joined
//! by `.`, ASCII letters lowercased, no trailing dot, the root is empty) and where each label
//! ends, so that a label holding a literal `.` byte is never confused with two labels.
//!
//! Decompression ([`Name::read`]) follows a compression pointer only if it points strictly
//! backwards of the place the pointer was read, and from then on reads only the bytes before
//! that place (smoltcp's approach: the readable window shrinks at every pointer). Every jump
//! makes the window strictly shorter, so a pointer loop cannot be written down at all: a
//! forward, self or looping pointer is an error, never a hang. Every bound is checked; nothing
//! here panics, whatever the bytes.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Range;
use std::str::FromStr;

use super::message::DnsError;

/// Longest name on the wire, terminating zero included (RFC 1035 section 3.1).
pub const MAX_WIRE_LEN: usize = 255;
/// Longest label.
pub const MAX_LABEL_LEN: usize = 63;
/// Longest text form: a 255-byte wire name has 253 bytes of labels and dots.
pub const MAX_TEXT_LEN: usize = MAX_WIRE_LEN - 2;
/// Most labels in a name: 127 one-byte labels make 255 wire bytes.
pub const MAX_LABELS: usize = (MAX_WIRE_LEN - 1) / 2;

/// A decompressed domain name (see the module documentation).
#[derive(Clone)]
pub struct Name {
    /// Labels joined by '.', lowercased; `text[..text_len]` is meaningful.
    text: [u8; MAX_TEXT_LEN],
    text_len: u8,
    /// `ends[i]`: offset in `text` just past label `i`; `ends[..labels]` is meaningful.
    ends: [u8; MAX_LABELS],
    labels: u8,
    /// Some label holds a '.' byte: the text form is ambiguous.
    dotted: bool,
}

impl Name {
    /// The root name (no labels).
    pub const fn root() -> Self {
        Name {
            text: [0; MAX_TEXT_LEN],
            text_len: 0,
            ends: [0; MAX_LABELS],
            labels: 0,
            dotted: false,
        }
    }

    /// Reads the (possibly compressed) name at `at` of `msg`, the whole DNS message (pointers
    /// are offsets from its first byte). Returns the name and the bytes it takes at `at`: up to
    /// its terminating zero, or up to and including its first pointer.
    ///
    /// Errors: [`DnsError::Truncated`] if `msg` ends inside the name;
    /// [`DnsError::ForwardPointer`] for a pointer to itself or to a later byte, or to a name
    /// that does not end before the pointer (which is what a loop would need);
    /// [`DnsError::BadLabelType`] for the label types `0b01` and `0b10` (so also for a length
    /// byte above 63); [`DnsError::NameTooLong`] beyond 255 bytes of wire length.
    pub fn read(msg: &[u8], at: usize) -> Result<(Name, usize), DnsError> {
        let mut name = Name::root();
        let used = walk(msg, at, |label| name.push_label(label))?;
        Ok((name, used))
    }

    /// The name written as text, labels separated by dots; an optional trailing dot; `""` and
    /// `"."` are the root. No escapes: a label can not hold a dot here. Letters are lowercased.
    ///
    /// Errors: [`DnsError::EmptyLabel`], [`DnsError::LabelTooLong`], [`DnsError::NameTooLong`].
    pub fn from_dotted(s: &str) -> Result<Name, DnsError> {
        let mut name = Name::root();
        let s = s.strip_suffix('.').unwrap_or(s);
        if s.is_empty() {
            return Ok(name);
        }
        for label in s.split('.') {
            if label.is_empty() {
                return Err(DnsError::EmptyLabel);
            }
            if label.len() > MAX_LABEL_LEN {
                return Err(DnsError::LabelTooLong);
            }
            name.push_label(label.as_bytes())?;
        }
        Ok(name)
    }

    /// Appends a label of 1..=63 bytes, lowercased.
    fn push_label(&mut self, label: &[u8]) -> Result<(), DnsError> {
        if label.is_empty() {
            return Err(DnsError::EmptyLabel);
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(DnsError::LabelTooLong);
        }
        let start = usize::from(self.text_len) + usize::from(self.labels > 0);
        let end = start + label.len();
        // The text form is the wire form less its first length byte and terminating zero.
        if end > MAX_TEXT_LEN {
            return Err(DnsError::NameTooLong);
        }
        let (Ok(end8), Some(slot)) = (
            u8::try_from(end),
            self.ends.get_mut(usize::from(self.labels)),
        ) else {
            return Err(DnsError::NameTooLong);
        };
        if self.labels > 0 {
            if let Some(dot) = self.text.get_mut(start - 1) {
                *dot = b'.';
            }
        }
        if let Some(dst) = self.text.get_mut(start..end) {
            for (d, s) in dst.iter_mut().zip(label) {
                *d = s.to_ascii_lowercase();
            }
        }
        *slot = end8;
        self.text_len = end8;
        self.labels += 1;
        self.dotted |= label.contains(&b'.');
        Ok(())
    }

    /// The text form: labels joined by `.`, lowercased, no trailing dot; empty for the root.
    /// Other bytes are kept as they are; see [`Name::as_str`] for a form that is never
    /// ambiguous.
    pub fn as_bytes(&self) -> &[u8] {
        self.text.get(..usize::from(self.text_len)).unwrap_or(&[])
    }

    /// The text form as a string, if it is UTF-8 and no label holds a `.` byte (which would
    /// read as a label separator); `None` otherwise. `Display` shows every name unambiguously.
    pub fn as_str(&self) -> Option<&str> {
        if self.dotted {
            return None;
        }
        std::str::from_utf8(self.as_bytes()).ok()
    }

    /// The labels, first (leftmost) to last, each lowercased.
    pub fn labels(&self) -> Labels<'_> {
        Labels {
            name: self,
            next: 0,
        }
    }

    /// Number of labels (0 for the root).
    pub fn label_count(&self) -> usize {
        usize::from(self.labels)
    }

    /// Whether this is the root name.
    pub fn is_root(&self) -> bool {
        self.labels == 0
    }

    /// Length of the uncompressed wire form, terminating zero included (1 to 255).
    pub fn wire_len(&self) -> usize {
        if self.labels == 0 {
            1
        } else {
            usize::from(self.text_len) + 2
        }
    }

    /// Label ends, one per label.
    fn ends(&self) -> &[u8] {
        self.ends.get(..usize::from(self.labels)).unwrap_or(&[])
    }
}

/// Follows the name at `at` of `msg` by the rules of [`Name::read`], calling `label` with each
/// label in order (stopping at its first error). Returns the bytes the name takes at `at`.
fn walk(
    msg: &[u8],
    at: usize,
    mut label: impl FnMut(&[u8]) -> Result<(), DnsError>,
) -> Result<usize, DnsError> {
    // Bytes this name may still be read from: everything before the last pointer followed.
    let mut window = msg;
    let mut pos = at;
    let mut consumed = None;
    // Running off the window but not the message means the name reached its own pointer.
    let past_end = |window: &[u8]| {
        if window.len() < msg.len() {
            DnsError::ForwardPointer
        } else {
            DnsError::Truncated
        }
    };
    loop {
        let Some(&len) = window.get(pos) else {
            return Err(past_end(window));
        };
        match len >> 6 {
            // `pos >= at` until the first pointer, which sets `consumed`.
            0b00 if len == 0 => return Ok(consumed.unwrap_or_else(|| pos + 1 - at)),
            0b00 => {
                let start = pos + 1;
                let end = start + usize::from(len);
                label(window.get(start..end).ok_or_else(|| past_end(window))?)?;
                pos = end;
            }
            0b11 => {
                let Some(&low) = window.get(pos + 1) else {
                    return Err(past_end(window));
                };
                let target = usize::from(u16::from_be_bytes([len & 0x3f, low]));
                if target >= pos {
                    return Err(DnsError::ForwardPointer);
                }
                consumed.get_or_insert_with(|| pos + 2 - at);
                window = window.get(..pos).ok_or(DnsError::Truncated)?;
                pos = target;
            }
            _ => return Err(DnsError::BadLabelType),
        }
    }
}

/// The text form of the name at `at` of `msg` (the bytes [`Name::as_bytes`] of what
/// [`Name::read`] would return), appended to `out` without building a [`Name`]: the same
/// checks, the same errors. Returns the bytes the name takes at `at` and where its text now is
/// in `out`, or `None` if a label holds a `.` byte (the text would be ambiguous; nothing is
/// appended then). Where the text is UTF-8, it is what [`Name::as_str`] gives. On error nothing
/// is appended.
pub fn read_text(
    msg: &[u8],
    at: usize,
    out: &mut Vec<u8>,
) -> Result<(usize, Option<Range<usize>>), DnsError> {
    let start = out.len();
    let mut dotted = false;
    let used = walk(msg, at, |label| {
        if out.len() > start {
            out.push(b'.');
        }
        let from = out.len();
        // The text form is the wire form less its first length byte and terminating zero.
        if from - start + label.len() > MAX_TEXT_LEN {
            return Err(DnsError::NameTooLong);
        }
        out.extend_from_slice(label);
        for b in out.get_mut(from..).unwrap_or_default() {
            dotted |= *b == b'.';
            b.make_ascii_lowercase();
        }
        Ok(())
    });
    match used {
        Ok(used) if !dotted => Ok((used, Some(start..out.len()))),
        used => {
            out.truncate(start);
            used.map(|used| (used, None))
        }
    }
}

/// The text of a name read into `text` by [`read_text`] (at `name`), if it has a text form.
pub fn text_bytes<'t>(text: &'t [u8], name: &Option<Range<usize>>) -> Option<&'t [u8]> {
    name.as_ref().and_then(|r| text.get(r.clone()))
}

/// [`text_bytes`] as a string, if it is UTF-8 too (names patterns can match).
pub fn text_str<'t>(text: &'t [u8], name: &Option<Range<usize>>) -> Option<&'t str> {
    text_bytes(text, name).and_then(|b| std::str::from_utf8(b).ok())
}

/// A name read as text by [`read_text`]: where it starts in the message, the bytes it takes
/// there, and where its text is in the caller's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextName {
    /// Its offset in the message.
    pub at: usize,
    /// The bytes it takes there.
    pub used: usize,
    /// Where its text is (`None`: a label holds a `.`).
    pub text: Option<Range<usize>>,
}

/// [`read_text`], except that a name that is only a compression pointer to `known` (read
/// earlier from the same message into the same `out`, and ending before this name) is not
/// read again: it is the same name, with the same text. (Answers usually name their question
/// this way.)
pub fn read_text_known(
    msg: &[u8],
    at: usize,
    out: &mut Vec<u8>,
    known: Option<&TextName>,
) -> Result<(usize, Option<Range<usize>>), DnsError> {
    if let (Some(k), Some(&[len, low])) = (known, msg.get(at..at + 2)) {
        // The pointed-at name lies wholly before the pointer, so reading it through the
        // pointer's shrunk window gives what reading it in place gave.
        if len >> 6 == 0b11
            && usize::from(u16::from_be_bytes([len & 0x3f, low])) == k.at
            && k.at + k.used <= at
        {
            return Ok((2, k.text.clone()));
        }
    }
    read_text(msg, at, out)
}

impl Default for Name {
    fn default() -> Self {
        Name::root()
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes() && self.ends() == other.ends()
    }
}

impl Eq for Name {}

impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
        self.ends().hash(state);
    }
}

impl FromStr for Name {
    type Err = DnsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Name::from_dotted(s)
    }
}

/// Shows the name like dig does: labels joined by `.`, no trailing dot except for the root,
/// which is `.`; a `.`, `\` or other special byte inside a label is escaped with `\`, and a
/// byte that is not printable ASCII (space included) as `\DDD` (three decimal digits).
impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_root() {
            return f.write_str(".");
        }
        for (i, label) in self.labels().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            for &b in label {
                match b {
                    b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$' => {
                        write!(f, "\\{}", char::from(b))?;
                    }
                    0x21..=0x7e => write!(f, "{}", char::from(b))?,
                    _ => write!(f, "\\{b:03}")?,
                }
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name(\"{self}\")")
    }
}

/// The labels of a [`Name`], from [`Name::labels`].
#[derive(Debug, Clone)]
pub struct Labels<'a> {
    name: &'a Name,
    next: usize,
}

impl<'a> Iterator for Labels<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let ends = self.name.ends();
        let end = usize::from(*ends.get(self.next)?);
        let start = match self.next {
            0 => 0,
            i => usize::from(*ends.get(i - 1)?) + 1,
        };
        self.next += 1;
        self.name.text.get(start..end)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.name.label_count().saturating_sub(self.next);
        (n, Some(n))
    }
}

impl ExactSizeIterator for Labels<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header's worth of padding, then `www.Example.com` at 12, then `mail` + pointer to
    /// `example.com` at 29, then a bare pointer to `mail.example.com` at 36.
    static NAMES_BYTES: [u8; 38] = [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // 0..12
        3, b'w', b'w', b'w', 7, b'E', b'x', b'a', b'm', b'p', b'l', b'e', 3, b'c', b'o', b'm',
        0, // 12..29
        4, b'm', b'a', b'i', b'l', 0xc0, 16, // 29..36
        0xc0, 29, // 36..38
    ];

    fn text(n: &Name) -> &str {
        n.as_str().unwrap()
    }

    #[test]
    fn reads_plain_and_compressed_names() {
        let (n, used) = Name::read(&NAMES_BYTES, 12).unwrap();
        assert_eq!((text(&n), used), ("www.example.com", 17));
        assert_eq!(n.label_count(), 3);
        assert_eq!(n.wire_len(), 17);
        let labels: Vec<&[u8]> = n.labels().collect();
        assert_eq!(labels, [&b"www"[..], b"example", b"com"]);
        let (n, used) = Name::read(&NAMES_BYTES, 29).unwrap();
        assert_eq!((text(&n), used), ("mail.example.com", 7));
        let (n, used) = Name::read(&NAMES_BYTES, 36).unwrap();
        assert_eq!((text(&n), used), ("mail.example.com", 2));
        assert_eq!(n, Name::from_dotted("MAIL.example.com.").unwrap());
        let (n, used) = Name::read(&NAMES_BYTES, 28).unwrap();
        assert!(n.is_root());
        assert_eq!((n.as_bytes(), n.as_str(), used), (&b""[..], Some(""), 1));
        assert_eq!(n.to_string(), ".");
        assert_eq!(n.wire_len(), 1);
    }

    #[test]
    fn forward_and_self_pointers_are_refused() {
        // A pointer to a later byte.
        let mut b = NAMES_BYTES;
        b[35] = 37;
        assert_eq!(Name::read(&b, 29), Err(DnsError::ForwardPointer));
        // A pointer to itself.
        let mut b = NAMES_BYTES;
        b[37] = 36;
        assert_eq!(Name::read(&b, 36), Err(DnsError::ForwardPointer));
        // A name that loops through its own labels: `mail` then a pointer back to `mail`.
        let mut b = NAMES_BYTES;
        b[35] = 29;
        assert_eq!(Name::read(&b, 29), Err(DnsError::ForwardPointer));
        assert_eq!(Name::read(&b, 36), Err(DnsError::ForwardPointer));
    }

    #[test]
    fn two_pointers_pointing_at_each_other_are_refused() {
        // 12: pointer to 14; 14: pointer to 12. Whichever is read first, one of them points
        // forward (or out of the shrunk window).
        let mut b = [0u8; 16];
        b[12..16].copy_from_slice(&[0xc0, 14, 0xc0, 12]);
        assert_eq!(Name::read(&b, 12), Err(DnsError::ForwardPointer));
        assert_eq!(Name::read(&b, 14), Err(DnsError::ForwardPointer));
    }

    #[test]
    fn label_types_and_lengths() {
        // 0x40 (64) is an extended label type (0b01), 0x80 is reserved (0b10).
        for first in [0x40, 0x7f, 0x80, 0xbf] {
            let b = [first, b'a', 0];
            assert_eq!(Name::read(&b, 0), Err(DnsError::BadLabelType), "{first:#x}");
        }
        // A 63-byte label is fine; the wire form can not say 64.
        let mut b = vec![63];
        b.extend([b'a'; 63]);
        b.push(0);
        let (n, used) = Name::read(&b, 0).unwrap();
        assert_eq!((n.as_bytes().len(), used), (63, 65));
        assert_eq!(
            Name::from_dotted(&"a".repeat(64)),
            Err(DnsError::LabelTooLong)
        );
        assert_eq!(Name::from_dotted("a..b"), Err(DnsError::EmptyLabel));
        assert_eq!(Name::from_dotted(".a"), Err(DnsError::EmptyLabel));
    }

    /// A name of `labels` labels of 63 bytes, then `tail` more one-byte labels.
    fn long_name(labels: usize, tail: usize) -> Vec<u8> {
        let mut b = Vec::new();
        for _ in 0..labels {
            b.push(63);
            b.extend([b'x'; 63]);
        }
        for _ in 0..tail {
            b.extend([1, b'y']);
        }
        b.push(0);
        b
    }

    #[test]
    fn names_longer_than_255_bytes_are_refused() {
        // 3 * 64 + 31 * 2 + 1 = 255: the longest name.
        let b = long_name(3, 31);
        assert_eq!(b.len(), 255);
        let (n, used) = Name::read(&b, 0).unwrap();
        assert_eq!((n.wire_len(), used, n.as_bytes().len()), (255, 255, 253));
        assert_eq!(n.label_count(), 34);
        // One more label is one too many.
        assert_eq!(Name::read(&long_name(3, 32), 0), Err(DnsError::NameTooLong));
        assert_eq!(Name::read(&long_name(4, 0), 0), Err(DnsError::NameTooLong));
        // 127 one-byte labels: 255 bytes, the most labels a name can have.
        let b = long_name(0, 127);
        let (n, _) = Name::read(&b, 0).unwrap();
        assert_eq!((n.label_count(), n.wire_len()), (MAX_LABELS, 255));
        assert_eq!(
            Name::read(&long_name(0, 128), 0),
            Err(DnsError::NameTooLong)
        );
        // Also when the excess comes through a pointer: 128 bytes of labels at 0, then at
        // 129 labels of 126 (fine) or 128 bytes (too long) and a pointer to 0.
        for (tail, ok) in [(31, true), (32, false)] {
            let mut b = long_name(2, 0);
            let at = b.len();
            let own = long_name(1, tail);
            b.extend(&own[..own.len() - 1]);
            b.extend([0xc0, 0]);
            match Name::read(&b, at) {
                Ok((n, used)) => {
                    assert!(ok);
                    assert_eq!((n.wire_len(), used), (255, b.len() - at));
                }
                Err(e) => assert_eq!((ok, e), (false, DnsError::NameTooLong)),
            }
        }
        assert_eq!(
            Name::from_dotted(&["a"; 128].join(".")),
            Err(DnsError::NameTooLong)
        );
    }

    #[test]
    fn truncated_names_are_errors() {
        for cut in 0..NAMES_BYTES.len() {
            for at in [12, 29, 36] {
                match Name::read(&NAMES_BYTES[..cut], at) {
                    Ok((_, used)) => assert!(at + used <= cut, "cut {cut} at {at}"),
                    Err(e) => assert_eq!(e, DnsError::Truncated, "cut {cut} at {at}"),
                }
            }
        }
        assert_eq!(Name::read(&NAMES_BYTES, 1000), Err(DnsError::Truncated));
    }

    #[test]
    fn dotted_and_odd_bytes_are_kept_and_shown_escaped() {
        // One label "a.b" then "c", and one label with a space, a backslash and 0xff.
        let b = [
            3, b'a', b'.', b'B', 1, b'c', 0, 4, b' ', b'\\', 0xff, b'Z', 0,
        ];
        let (dotted, _) = Name::read(&b, 0).unwrap();
        assert_eq!(dotted.as_bytes(), b"a.b.c");
        assert_eq!(
            dotted.as_str(),
            None,
            "a dot inside a label is not a separator"
        );
        assert_eq!(dotted.label_count(), 2);
        assert_eq!(dotted.to_string(), "a\\.b.c");
        assert_ne!(dotted, Name::from_dotted("a.b.c").unwrap());
        let (odd, _) = Name::read(&b, 7).unwrap();
        assert_eq!(odd.as_bytes(), b" \\\xffz");
        assert_eq!(odd.as_str(), None, "not UTF-8");
        assert_eq!(odd.to_string(), "\\032\\\\\\255z");
        assert_eq!(format!("{odd:?}"), "Name(\"\\032\\\\\\255z\")");
        let under = Name::from_dotted("_sip._UDP.x-y.example").unwrap();
        assert_eq!(under.as_str(), Some("_sip._udp.x-y.example"));
        assert_eq!(under.to_string(), "_sip._udp.x-y.example");
    }

    #[test]
    fn equal_names_hash_alike() {
        use std::collections::HashSet;
        let a = Name::from_dotted("WWW.example.com").unwrap();
        let (b, _) = Name::read(&NAMES_BYTES, 12).unwrap();
        let set: HashSet<Name> = [a.clone(), b.clone()].into_iter().collect();
        assert_eq!(set.len(), 1);
        assert_eq!(a, b);
        assert_eq!(Name::default(), Name::from_dotted(".").unwrap());
        assert_eq!("example.com".parse::<Name>().unwrap().label_count(), 2);
    }
}
