//! The two ports of the bump in the wire.

use std::fmt;

/// The port a packet entered on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    /// The protected network's port.
    Inside,
    /// The untrusted network's port.
    Outside,
}

impl Side {
    /// Both sides, inside first.
    pub const BOTH: [Side; 2] = [Side::Inside, Side::Outside];

    /// The port a packet that passes leaves on.
    #[inline]
    pub fn other(self) -> Side {
        match self {
            Side::Inside => Side::Outside,
            Side::Outside => Side::Inside,
        }
    }

    /// 0 for inside, 1 for outside: the index of per-side arrays.
    #[inline]
    pub fn index(self) -> usize {
        self as usize
    }

    /// `inside` or `outside`, as in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Inside => "inside",
            Side::Outside => "outside",
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
