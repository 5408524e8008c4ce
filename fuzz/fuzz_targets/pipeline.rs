//! The whole pipeline over a sequence of frames (format: dataplane::fuzzing::pipeline).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dataplane::fuzzing::pipeline(data));
