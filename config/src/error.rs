//! [`ConfigError`], and the internal [`Located`] message that becomes one once the file name
//! and the text are known.

use std::borrow::Cow;
use std::io;

/// Why a configuration could not be loaded.
///
/// Displays as `FILE:LINE:COL: message` (line and column 1-based, columns in characters), or
/// `FILE: cannot read: ...` when the file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read (or is not UTF-8).
    #[error("{file}: cannot read: {error}")]
    Read {
        /// The file name.
        file: String,
        /// What the OS said.
        error: io::Error,
    },
    /// The file was read but is not a valid configuration.
    #[error("{file}:{line}:{col}: {message}")]
    Invalid {
        /// The file name (the `origin` given to [`crate::parse`]).
        file: String,
        /// 1-based line of the offending key or value.
        line: usize,
        /// 1-based column, in characters.
        col: usize,
        /// What is wrong, naming the key and quoting the value.
        message: String,
    },
}

impl ConfigError {
    /// The file the error is about.
    #[must_use]
    pub fn file(&self) -> &str {
        match self {
            Self::Read { file, .. } | Self::Invalid { file, .. } => file,
        }
    }

    /// 1-based line of the offending key or value; `None` when the file could not be read.
    #[must_use]
    pub const fn line(&self) -> Option<usize> {
        match self {
            Self::Read { .. } => None,
            Self::Invalid { line, .. } => Some(*line),
        }
    }

    /// 1-based column, in characters; `None` when the file could not be read.
    #[must_use]
    pub const fn col(&self) -> Option<usize> {
        match self {
            Self::Read { .. } => None,
            Self::Invalid { col, .. } => Some(*col),
        }
    }

    /// The message after the position: `rule "dns": dst_cidr: ...`, or `cannot read: ...`.
    #[must_use]
    pub fn message(&self) -> Cow<'_, str> {
        match self {
            Self::Read { error, .. } => Cow::Owned(format!("cannot read: {error}")),
            Self::Invalid { message, .. } => Cow::Borrowed(message),
        }
    }

    /// The error for `located` in `text`, read from `file`.
    pub(crate) fn invalid(file: &str, text: &str, located: Located) -> Self {
        let (line, col) = position(text, located.offset);
        Self::Invalid {
            file: file.to_owned(),
            line,
            col,
            message: located.message,
        }
    }
}

/// A message about the byte `offset` of the configuration text.
#[derive(Debug)]
pub(crate) struct Located {
    /// Where the offending key or value starts.
    pub offset: usize,
    /// The complete message, key path included.
    pub message: String,
}

impl Located {
    /// A message about the byte `offset`.
    pub(crate) fn new(offset: usize, message: impl Into<String>) -> Self {
        Self {
            offset,
            message: message.into(),
        }
    }
}

/// The 1-based line and column (in characters) of byte `offset` in `text`. An offset past the
/// end, or inside a character, is moved back to the nearest character start.
pub(crate) fn position(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = text.get(..offset).unwrap_or_default();
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let col = before.get(line_start..).unwrap_or_default().chars().count() + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_counts_lines_and_characters() {
        let text = "ab\nçé = x\n\nlast";
        assert_eq!(position(text, 0), (1, 1));
        assert_eq!(position(text, 2), (1, 3));
        assert_eq!(position(text, 3), (2, 1));
        // "çé" is 4 bytes, 2 characters.
        assert_eq!(position(text, 7), (2, 3));
        // Inside "ç": back to its start.
        assert_eq!(position(text, 4), (2, 1));
        assert_eq!(position(text, 12), (3, 1));
        assert_eq!(position(text, 13), (4, 1));
        assert_eq!(position(text, text.len()), (4, 5));
        assert_eq!(position(text, 1000), (4, 5));
        assert_eq!(position("", 5), (1, 1));
        assert_eq!(position("a\r\nb", 3), (2, 1));
    }

    #[test]
    fn displays_as_file_line_col_message() {
        let error = ConfigError::invalid("fw.toml", "a\nbb = 1", Located::new(5, "bad"));
        assert_eq!(error.to_string(), "fw.toml:2:4: bad");
        assert_eq!(
            (error.file(), error.line(), error.col()),
            ("fw.toml", Some(2), Some(4))
        );
        assert_eq!(error.message(), "bad");

        let error = ConfigError::Read {
            file: "fw.toml".to_owned(),
            error: io::Error::new(io::ErrorKind::NotFound, "gone"),
        };
        assert_eq!(error.to_string(), "fw.toml: cannot read: gone");
        assert_eq!((error.line(), error.col()), (None, None));
        assert_eq!(error.message(), "cannot read: gone");
    }
}
