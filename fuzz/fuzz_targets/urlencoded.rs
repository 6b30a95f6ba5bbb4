//! Fuzz target `urlencoded`: its property is `altsock::fuzzing::urlencoded`, which
//! `tests/fuzz_corpus.rs` also replays over `fuzz/corpus/urlencoded/`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| altsock::fuzzing::urlencoded::check(data));
