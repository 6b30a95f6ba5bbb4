//! Fuzz target `sip_message`: its property is `altsock::fuzzing::sip_message`,
//! which `tests/fuzz_corpus.rs` also replays over `fuzz/corpus/sip_message/`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| altsock::fuzzing::sip_message::check(data));
