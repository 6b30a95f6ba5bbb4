//! Fuzz target `request_split`: its property is `altsock::fuzzing::request`, which
//! `tests/fuzz_corpus.rs` also replays over `fuzz/corpus/request_split/`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| altsock::fuzzing::request::check(data));
