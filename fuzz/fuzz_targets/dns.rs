//! DNS message parsing of arbitrary bytes (a UDP payload, or a TCP message without its length).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dataplane::fuzzing::dns(data));
