//! Replays every file of the fuzz corpus (`fuzz/corpus/TARGET/`) through the
//! same property its fuzz target checks (`altsock::fuzzing`), so `cargo
//! test` on stable keeps every input the fuzzer found interesting, and every
//! input that once broke a property, passing.

use std::path::{Path, PathBuf};

use altsock::fuzzing::TARGETS;

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
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

fn replay(target: &str) {
    let (_, property) = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("a known target");
    let files = corpus(target);
    assert!(!files.is_empty(), "the {target} corpus is empty");
    for (path, bytes) in files {
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
        assert!(corpus_dir(target).is_dir(), "no corpus for {target}");
        let source = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/fuzz_targets")
            .join(format!("{target}.rs"));
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
