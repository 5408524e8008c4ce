//! A bounded reader over a byte slice, in the style of quiche's `octets`: big-endian integers,
//! byte runs and length-prefixed vectors, each read checked against the end of the buffer.
//!
//! Every read either returns the bytes asked for and advances, or returns [`BufferTooShort`]
//! and leaves the cursor where it was. Nothing panics and nothing allocates, whatever the bytes,
//! so one cursor type serves every length-prefixed format ferrowall walks (DNS here; TLS and
//! QUIC can use the same one).

/// The buffer ends before a read could complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("buffer too short")]
pub struct BufferTooShort;

/// A read position in a borrowed buffer.
#[derive(Debug, Clone, Copy)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    off: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, off: 0 }
    }

    /// A cursor at `off` of `buf` (past the end: every read fails).
    pub fn at(buf: &'a [u8], off: usize) -> Self {
        Cursor { buf, off }
    }

    /// The current offset from the start of the buffer.
    pub fn off(&self) -> usize {
        self.off
    }

    /// Bytes left to read.
    pub fn cap(&self) -> usize {
        self.buf.len().saturating_sub(self.off)
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.cap() == 0
    }

    /// The whole buffer the cursor reads (not only what is left).
    pub fn buf(&self) -> &'a [u8] {
        self.buf
    }

    /// The next `n` bytes; advances past them.
    pub fn get_bytes(&mut self, n: usize) -> Result<&'a [u8], BufferTooShort> {
        let end = self.off.checked_add(n).ok_or(BufferTooShort)?;
        let b = self.buf.get(self.off..end).ok_or(BufferTooShort)?;
        self.off = end;
        Ok(b)
    }

    /// The next `N` bytes as an array; advances past them.
    pub fn get_array<const N: usize>(&mut self) -> Result<[u8; N], BufferTooShort> {
        let b = self.get_bytes(N)?;
        b.try_into().map_err(|_| BufferTooShort)
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize) -> Result<(), BufferTooShort> {
        self.get_bytes(n).map(|_| ())
    }

    /// The next byte, without advancing.
    pub fn peek_u8(&self) -> Result<u8, BufferTooShort> {
        self.buf.get(self.off).copied().ok_or(BufferTooShort)
    }

    /// A byte.
    pub fn get_u8(&mut self) -> Result<u8, BufferTooShort> {
        self.get_array::<1>().map(|[b]| b)
    }

    /// A big-endian u16.
    pub fn get_u16(&mut self) -> Result<u16, BufferTooShort> {
        self.get_array().map(u16::from_be_bytes)
    }

    /// A big-endian 24-bit integer.
    pub fn get_u24(&mut self) -> Result<u32, BufferTooShort> {
        self.get_array::<3>()
            .map(|[a, b, c]| u32::from_be_bytes([0, a, b, c]))
    }

    /// A big-endian u32.
    pub fn get_u32(&mut self) -> Result<u32, BufferTooShort> {
        self.get_array().map(u32::from_be_bytes)
    }

    /// A vector with a one-byte length prefix. On error the cursor does not move.
    pub fn get_bytes_with_u8_length(&mut self) -> Result<&'a [u8], BufferTooShort> {
        let save = *self;
        let n = self.get_u8()?;
        self.get_bytes(usize::from(n)).inspect_err(|_| *self = save)
    }

    /// A vector with a two-byte length prefix. On error the cursor does not move.
    pub fn get_bytes_with_u16_length(&mut self) -> Result<&'a [u8], BufferTooShort> {
        let save = *self;
        let n = self.get_u16()?;
        self.get_bytes(usize::from(n)).inspect_err(|_| *self = save)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static BYTES: [u8; 10] = [1, 2, 3, 4, 5, 6, 7, 8, 3, 2];

    #[test]
    fn reads_in_order_and_stops_at_the_end() {
        let mut c = Cursor::new(&BYTES);
        assert_eq!(c.get_u8(), Ok(1));
        assert_eq!(c.get_u16(), Ok(0x0203));
        assert_eq!(c.get_u24(), Ok(0x0004_0506));
        assert_eq!(c.off(), 6);
        assert_eq!(c.get_bytes(5), Err(BufferTooShort));
        assert_eq!(c.off(), 6, "a failed read does not move");
        assert_eq!(c.get_bytes_with_u16_length(), Err(BufferTooShort));
        assert_eq!(c.off(), 6);
        assert_eq!(c.get_bytes(2), Ok(&[7, 8][..]));
        assert_eq!(c.peek_u8(), Ok(3));
        assert_eq!(c.get_bytes_with_u8_length(), Err(BufferTooShort));
        assert_eq!(c.off(), 8);
        assert_eq!(c.cap(), 2);
        assert_eq!(c.skip(3), Err(BufferTooShort));
        assert_eq!(c.skip(2), Ok(()));
        assert!(c.is_empty());
        assert_eq!(c.get_u8(), Err(BufferTooShort));
    }

    #[test]
    fn positions_past_the_end_and_huge_lengths_fail() {
        let mut c = Cursor::at(&BYTES, 100);
        assert_eq!(c.cap(), 0);
        assert_eq!(c.get_u8(), Err(BufferTooShort));
        let mut c = Cursor::at(&BYTES, 1);
        assert_eq!(c.get_bytes(usize::MAX), Err(BufferTooShort));
        assert_eq!(c.get_bytes_with_u8_length(), Ok(&[3, 4][..]));
    }
}
