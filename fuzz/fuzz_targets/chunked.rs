//! Fuzz target `chunked`: its property is `altsock::fuzzing::chunked`, which
//! `tests/fuzz_corpus.rs` also replays over `fuzz/corpus/chunked/`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| altsock::fuzzing::chunked::check(data));
