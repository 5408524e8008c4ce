//! The DNS learner: answers in, table changes out (format: dataplane::fuzzing::learner).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dataplane::fuzzing::learner(data));
