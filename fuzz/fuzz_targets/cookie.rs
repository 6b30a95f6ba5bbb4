//! Fuzz target `cookie`: its property is `altsock::fuzzing::cookie`, which
//! `tests/fuzz_corpus.rs` also replays over `fuzz/corpus/cookie/`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| altsock::fuzzing::cookie::check(data));
