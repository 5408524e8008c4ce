//! DNS: the wire format of the messages ferrowall snoops to learn which addresses a name
//! resolved to.
//!
//! Everything here reads untrusted bytes: every bound is checked, and once a view is built no
//! accessor panics, whatever the bytes. Compression pointers are followed backwards only, so a
//! pointer loop can not be expressed, let alone followed.

pub mod cursor;
pub mod message;
pub mod name;
