//! Fuzz target `ws_frames`: its property is `altsock::fuzzing::ws_frames`, which
//! `tests/fuzz_corpus.rs` also replays over `fuzz/corpus/ws_frames/`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| altsock::fuzzing::ws_frames::check(data));
