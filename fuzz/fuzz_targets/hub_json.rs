//! Fuzz target `hub_json`: its property is `altsock::fuzzing::hub_json`, which
//! `tests/fuzz_corpus.rs` also replays over `fuzz/corpus/hub_json/`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| altsock::fuzzing::hub_json::check(data));
