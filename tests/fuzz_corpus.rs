//! Replays every file of the fuzz corpus (`fuzz/corpus/TARGET/`, kept small
//! by `cargo fuzz cmin`) and of the fuzz regressions (`fuzz/regressions/
//! TARGET/`, inputs that once broke a property, named for what they broke)
//! through the same property the fuzz target checks (`altsock::fuzzing`), so
//! `cargo test` on stable keeps them all passing without nightly.

use std::path::{Path, PathBuf};

use altsock::fuzzing::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of `fuzz/KIND/TARGET/` (`corpus` or `regressions`), by name;
/// none when the directory does not exist.
fn inputs(kind: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = fuzz_dir().join(kind).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("corpus entry").path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).expect("corpus file");
            (path, bytes)
        })
        .collect()
}

/// Replays the corpus and the regressions of `target` through its property.
fn replay(target: &str) {
    let (_, property) = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("a known target");
    let corpus = inputs("corpus", target);
    assert!(!corpus.is_empty(), "the {target} corpus is empty");
    for (path, bytes) in corpus.into_iter().chain(inputs("regressions", target)) {
        let outcome = std::panic::catch_unwind(|| property(&bytes));
        assert!(
            outcome.is_ok(),
            "{target}: {} breaks the property (replay it with \
             `cargo fuzz run {target} {}`)",
            path.display(),
            path.display()
        );
    }
}

#[test]
fn every_target_has_a_corpus_and_a_fuzz_target() {
    for (target, _) in TARGETS {
        let corpus = fuzz_dir().join("corpus").join(target);
        assert!(corpus.is_dir(), "no corpus for {target}");
        let source = fuzz_dir().join("fuzz_targets").join(format!("{target}.rs"));
        assert!(source.is_file(), "no fuzz target {}", source.display());
    }
}

#[test]
fn request_split_corpus() {
    replay("request_split");
}

#[test]
fn chunked_corpus() {
    replay("chunked");
}

#[test]
fn urlencoded_corpus() {
    replay("urlencoded");
}

#[cfg(feature = "server")]
#[test]
fn cookie_corpus() {
    replay("cookie");
}

#[cfg(feature = "server")]
#[test]
fn hub_json_corpus() {
    replay("hub_json");
}

#[cfg(feature = "server")]
#[test]
fn sip_message_corpus() {
    replay("sip_message");
}

#[cfg(feature = "websocket")]
#[test]
fn ws_frames_corpus() {
    replay("ws_frames");
}
