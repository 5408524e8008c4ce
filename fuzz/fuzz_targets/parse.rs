//! L2-L4 parsing of arbitrary frames.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dataplane::fuzzing::parse(data));
