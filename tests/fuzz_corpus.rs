//! Replays the saved fuzz corpus (`fuzz/corpus/<target>/`) and any crash
//! inputs cargo-fuzz left (`fuzz/artifacts/<target>/`) through the same
//! functions the fuzz targets call, so a normal `cargo test` re-checks
//! every input the fuzzer ever kept: no decoder panics, every round trip
//! holds. A target whose corpus is missing or empty fails the test, so a
//! deleted corpus cannot pass silently; so does one in which nothing
//! decodes (a corpus of noise checks only the first error path).
//!
//! Running the fuzzers themselves (nightly, cargo-fuzz): `fuzz/README.md`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use caskade::fuzzing;

/// A target's function: how many values of the input decoded.
type Decode = fn(&[u8]) -> usize;

/// The fuzz targets, by their names under `fuzz/fuzz_targets/`.
const TARGETS: [(&str, Decode); 5] = [
    ("record", fuzzing::decode_record),
    ("hint", fuzzing::decode_hint),
    ("manifest", fuzzing::decode_manifest),
    ("catalog", fuzzing::decode_catalog),
    ("name", fuzzing::decode_name),
];

/// The files directly in `dir`, sorted; none if it does not exist.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a readable directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn replay_fuzz_corpus() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    // Each input's panic message goes to stderr as usual; the summary line
    // stays alone on stdout.
    let (mut total, mut panics, mut failed) = (0usize, 0usize, Vec::new());
    for (target, decode) in TARGETS {
        let corpus = inputs(&fuzz.join("corpus").join(target));
        assert!(
            !corpus.is_empty(),
            "fuzz/corpus/{target}/ is missing or empty: restore it (seeds: \
             CASKADE_WRITE_SEEDS=1 cargo test --lib fuzzing::seeds)"
        );
        let artifacts = inputs(&fuzz.join("artifacts").join(target));
        let mut decoded = 0;
        for path in corpus.iter().chain(&artifacts) {
            let bytes = std::fs::read(path).expect("a readable corpus file");
            total += 1;
            match catch_unwind(AssertUnwindSafe(|| decode(&bytes))) {
                Ok(n) => decoded += n,
                Err(_) => {
                    panics += 1;
                    failed.push(path.display().to_string());
                }
            }
        }
        assert!(
            decoded > 0 || panics > 0,
            "nothing in fuzz/corpus/{target}/ decodes: the corpus has no valid seed"
        );
    }
    println!(
        "reliability: harness=fuzz_corpus inputs={total} targets={} panics={panics}",
        TARGETS.len()
    );
    assert!(failed.is_empty(), "inputs that panicked: {failed:#?}");
}
