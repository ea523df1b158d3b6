//! The CI-sized fuzzing: every committed corpus input and past finding of the cargo-fuzz targets,
//! replayed through the very harnesses the fuzzer runs (`fuzz/harness/mod.rs`), plus a few
//! thousand seeded pseudo-random mutations per target, on the stable toolchain.
//!
//! The long version is `scripts/fuzz.sh` (nightly, libFuzzer); see docs/reliability.md.
//! A failing mutation prints its target, number and input bytes: save them under
//! `fuzz/regressions/<target>/`, fix the bug, and the replay test keeps it fixed.

#[path = "../../fuzz/harness/mod.rs"]
mod harness;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// Committed inputs of `target`: its seed corpus and its past findings, sorted by path.
fn committed_inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("a readable directory entry").path();
            if path.is_file() {
                let bytes = std::fs::read(&path).expect("a readable input file");
                files.push((path, bytes));
            }
        }
    }
    files.sort();
    files
}

fn harness_of(target: &str) -> harness::Harness {
    harness::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, run)| *run)
        .expect("a known target")
}

/// Runs `run` on `input`; on a failed property, panics with the input for the regression file.
fn check(target: &str, what: &str, run: harness::Harness, input: &[u8]) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| run(input))) {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        let saved = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fuzz-failure-{target}"));
        let _ = std::fs::write(&saved, input);
        panic!(
            "fuzz target {target}, {what}: {message}\n\
             input (written to {}; keep it as fuzz/regressions/{target}/<name>): {}",
            saved.display(),
            input.escape_ascii()
        );
    }
}

fn replay(target: &str) {
    let inputs = committed_inputs(target);
    assert!(
        inputs
            .iter()
            .any(|(p, _)| p.to_string_lossy().contains("corpus")),
        "fuzz/corpus/{target}/ has no seed inputs"
    );
    let run = harness_of(target);
    for (path, bytes) in &inputs {
        check(target, &path.display().to_string(), run, bytes);
    }
}

/// Tokens that matter to the decoders, spliced in by the mutator.
const DICTIONARY: &[&[u8]] = &[
    b"@R",
    b"@S",
    b"@A",
    b"@E",
    b"@I",
    b"@B",
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b",",
    b"=",
    b"\n",
    b"\r\n",
    b"\r\n\r\n",
    b".",
    b"-1",
    b"0",
    b"99999999999999999999",
    b"1e999",
    b"null",
    b"true",
    b"\\u0000",
    b"\xc3\xa9",
    b"\xff",
    b"otv1.",
    b"error",
    b"invalid_grant",
    b"access_token",
    b"refresh_token",
    b"expires_in",
    b"Content-Length: ",
    b"Transfer-Encoding: chunked",
    b"/token",
    b"/__admin/",
    b"[[token]]",
    b"action = ",
    b"status = ",
];

/// One deterministic mutation of `seed` (with `other` for splicing), as libFuzzer's mutators do
/// in spirit: bit flips, byte changes, inserts, deletes, duplicates, dictionary words, splices.
fn mutate(rng: &mut StdRng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        let len = data.len();
        match rng.random_range(0..8) {
            0 if len > 0 => {
                let i = rng.random_range(0..len);
                data[i] ^= 1 << rng.random_range(0..8);
            }
            1 if len > 0 => {
                let i = rng.random_range(0..len);
                data[i] = rng.random();
            }
            2 => {
                let i = rng.random_range(0..=len);
                data.insert(i, rng.random());
            }
            3 if len > 0 => {
                let i = rng.random_range(0..len);
                let n = rng.random_range(1..=(len - i).min(16));
                data.drain(i..i + n);
            }
            4 if len > 0 => {
                let i = rng.random_range(0..len);
                let n = rng.random_range(1..=(len - i).min(32));
                let copy = data[i..i + n].to_vec();
                let at = rng.random_range(0..=len);
                data.splice(at..at, copy);
            }
            5 | 6 => {
                let word = DICTIONARY[rng.random_range(0..DICTIONARY.len())];
                let i = rng.random_range(0..=len);
                data.splice(i..i, word.iter().copied());
            }
            _ if !other.is_empty() => {
                let cut = rng.random_range(0..=len);
                let from = rng.random_range(0..other.len());
                data.truncate(cut);
                data.extend_from_slice(&other[from..]);
            }
            _ => {}
        }
    }
    data.truncate(4096);
    data
}

fn mutations(target: &str, count: usize) {
    let seeds: Vec<Vec<u8>> = committed_inputs(target)
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    let run = harness_of(target);
    // A fixed seed per target: the same mutations on every run and every machine.
    let seed = target
        .bytes()
        .fold(0x5eed_u64, |h, b| h.rotate_left(5) ^ u64::from(b));
    let mut rng = StdRng::seed_from_u64(seed);
    for n in 0..count {
        let base = &seeds[rng.random_range(0..seeds.len())];
        let other = &seeds[rng.random_range(0..seeds.len())];
        let input = mutate(&mut rng, base, other);
        check(target, &format!("mutation #{n}"), run, &input);
    }
}

#[test]
fn every_committed_envelope_input_and_finding_holds_the_decoder_properties() {
    replay("envelope");
}

#[test]
fn every_committed_token_response_input_and_finding_holds_the_classifier_properties() {
    replay("token_response");
}

#[test]
fn every_committed_scenario_input_and_finding_holds_the_parser_properties() {
    replay("scenario");
}

#[test]
fn every_committed_import_input_and_finding_holds_the_parser_properties() {
    replay("import");
}

#[test]
fn every_committed_serve_request_input_and_finding_holds_the_front_end_properties() {
    replay("serve_request");
}

#[test]
fn seeded_mutations_of_envelopes_never_break_the_decoder_properties() {
    mutations("envelope", 5000);
}

#[test]
fn seeded_mutations_of_token_responses_never_break_the_classifier_properties() {
    mutations("token_response", 5000);
}

#[test]
fn seeded_mutations_of_scenario_files_never_break_the_parser_properties() {
    mutations("scenario", 3000);
}

#[test]
fn seeded_mutations_of_import_files_never_break_the_parser_properties() {
    mutations("import", 5000);
}

#[test]
fn seeded_mutations_of_serve_requests_never_break_the_front_end_properties() {
    mutations("serve_request", 2500);
}

#[test]
fn the_harness_targets_match_the_cargo_fuzz_targets() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .expect("fuzz/fuzz_targets exists")
        .map(|e| {
            let path = e.expect("a directory entry").path();
            path.file_stem()
                .expect("a file name")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    on_disk.sort();
    let mut known: Vec<String> = harness::TARGETS
        .iter()
        .map(|(n, _)| (*n).to_owned())
        .collect();
    known.sort();
    assert_eq!(on_disk, known);
}
