//! Fuzzing of our own: scene and show files bent out of shape from a corpus
//! (tests/fuzz-corpus/, shows in its shows/) by proptest, fed to the loaders and, where the
//! checked loader (what `tally check` runs) accepts a scene file, rendered as a snapshot. Nothing may panic: a file either loads or gets located errors,
//! and a file that loads renders (or reports why not).
//!
//! `TALLY_FUZZ_CASES` sets how many files the loader gets (default 3000) and
//! `TALLY_FUZZ_RENDERS` how many accepted ones are rendered (default 24); BENCHMARKS.md has a
//! longer run. A crash found here becomes a regression test in tests/robustness.rs.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::path::PathBuf;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus")
}

fn corpus() -> Vec<(PathBuf, String)> {
    corpus_in(&corpus_dir())
}

fn corpus_in(dir: &std::path::Path) -> Vec<(PathBuf, String)> {
    let mut files: Vec<(PathBuf, String)> = std::fs::read_dir(dir)
        .expect("the fuzz corpus")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            (path, text)
        })
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "the corpus in {} is missing",
        dir.display()
    );
    files
}

/// Pieces that make TOML and Tally's fields go wrong in interesting ways.
const TOKENS: &[&str] = &[
    "]",
    "[",
    "[[",
    "]]",
    "\"",
    "=",
    "{",
    "}",
    ",",
    "\n",
    "#",
    "'",
    "\\",
    "\u{0}",
    "é",
    "-1",
    "0",
    "1e309",
    "-0.0",
    "nan",
    "inf",
    "9223372036854775807",
    "4294967296",
    "65536",
    "\"1/0\"",
    "\"0/1\"",
    "\"1/1000000\"",
    "\"240/1\"",
    "true",
    "[]",
    "{}",
    "\"\"",
    "kind = \"media\"",
    "kind = \"text\"",
    "kind = \"image\"",
    "kind = \"camera\"",
    "kind = \"screen\"",
    "kind = \"audio_input\"",
    "path = \"/dev/zero\"",
    "path = \".\"",
    "path = \"../../assets/logo.png\"",
    "font = \"../../assets/logo.png\"",
    "path = \"../../assets/clip.mp4\"",
    "size = 1000",
    "width = 4096",
    "height = 8192",
    "scale = [1e30, -1e30]",
    "rotation = 1e300",
    "opacity = 2",
    "source = \"nobody\"",
    "fps = 0",
    "text = \"",
    "[[sources]]\nid = \"x\"\n",
    "[[scenes]]\nname = \"x\"\n",
    "bounds = { width = 0, height = 1, fit = \"fit\" }",
    "crop = { left = 99999 }",
    "filters = [{ kind = \"gain\", db = 1e9 }]",
    "current_scene = \"\"",
];

#[derive(Debug, Clone)]
enum Mutation {
    Insert { at: usize, token: usize },
    Delete { at: usize, length: usize },
    Duplicate { at: usize, length: usize },
    ReplaceNumber { nth: usize, token: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(at, token)| Mutation::Insert { at, token }),
        (any::<usize>(), 1usize..40).prop_map(|(at, length)| Mutation::Delete { at, length }),
        (any::<usize>(), 1usize..200).prop_map(|(at, length)| Mutation::Duplicate { at, length }),
        (any::<usize>(), 0..TOKENS.len())
            .prop_map(|(nth, token)| Mutation::ReplaceNumber { nth, token }),
    ]
}

/// The nearest character boundary at or before `at` (taken modulo the length).
fn boundary(text: &str, at: usize) -> usize {
    let mut at = at % (text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn apply(text: &mut String, mutation: &Mutation) {
    match *mutation {
        Mutation::Insert { at, token } => {
            let at = boundary(text, at);
            text.insert_str(at, TOKENS[token]);
        }
        Mutation::Delete { at, length } => {
            let start = boundary(text, at);
            let end = boundary(text, start + length.min(text.len() - start));
            text.replace_range(start..end.max(start), "");
        }
        Mutation::Duplicate { at, length } => {
            let start = boundary(text, at);
            let end = boundary(text, start + length.min(text.len() - start)).max(start);
            let piece = text[start..end].to_string();
            text.insert_str(end, &piece);
        }
        Mutation::ReplaceNumber { nth, token } => {
            let numbers: Vec<(usize, usize)> = number_spans(text);
            if let Some(&(start, end)) = numbers.get(nth % numbers.len().max(1)) {
                text.replace_range(start..end, TOKENS[token]);
            }
        }
    }
}

/// Byte ranges of the runs of digits in `text`.
fn number_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = None;
    for (index, character) in text.char_indices().chain([(text.len(), ' ')]) {
        match (character.is_ascii_digit(), start) {
            (true, None) => start = Some(index),
            (false, Some(from)) => {
                spans.push((from, index));
                start = None;
            }
            _ => {}
        }
    }
    spans
}

/// A load error as a user should get it: at least one problem, each with a message of
/// reasonable length and, in a file that is not empty, a line.
fn located(text: &str, error: &tally::scene::LoadError) -> Result<(), TestCaseError> {
    prop_assert!(!error.diagnostics.is_empty());
    for diagnostic in &error.diagnostics {
        prop_assert!(!diagnostic.message.is_empty());
        prop_assert!(
            text.trim().is_empty() || diagnostic.line >= 1,
            "no line for {diagnostic}"
        );
        prop_assert!(diagnostic.to_string().len() < 2000);
    }
    Ok(())
}

fn cases(variable: &str, default: u32) -> u32 {
    std::env::var(variable)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn mutated_scenes() -> impl Strategy<Value = (usize, Vec<Mutation>)> {
    (0usize..16, prop::collection::vec(mutation(), 1..4))
}

fn mutate(corpus: &[(PathBuf, String)], (pick, mutations): &(usize, Vec<Mutation>)) -> String {
    let mut text = corpus[pick % corpus.len()].1.clone();
    for mutation in mutations {
        apply(&mut text, mutation);
    }
    text
}

#[test]
fn the_loader_gives_located_errors_or_a_collection_for_any_file() {
    let corpus = corpus();
    let dir = corpus_dir();
    let file = dir.join("fuzzed.toml");
    let mut runner = TestRunner::new(Config {
        cases: cases("TALLY_FUZZ_CASES", 3000),
        failure_persistence: None,
        ..Config::default()
    });
    let loaded = std::cell::Cell::new(0u32);
    runner
        .run(&mutated_scenes(), |scene| {
            let text = mutate(&corpus, &scene);
            match tally::scene::parse_str(&text, &file, &dir) {
                Ok(_) => loaded.set(loaded.get() + 1),
                Err(error) => located(&text, &error)?,
            }
            Ok(())
        })
        .unwrap();
    // The mutations are meant to break files, but not every one of them.
    assert!(
        loaded.get() > 0,
        "no mutated file loaded: the fuzzer tests only the error paths"
    );
}

#[test]
fn the_show_loader_gives_located_errors_or_a_show_for_any_file() {
    let dir = corpus_dir().join("shows");
    let corpus = corpus_in(&dir);
    let file = dir.join("fuzzed.toml");
    let loaded = std::cell::Cell::new(0u32);
    let mut runner = TestRunner::new(Config {
        // Each show loads its collection from disk too: a tenth as many as scene files.
        cases: (cases("TALLY_FUZZ_CASES", 3000) / 10).max(1),
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&mutated_scenes(), |scene| {
            let text = mutate(&corpus, &scene);
            match tally::show::parse_str(&text, &file, &dir) {
                Ok(_) => loaded.set(loaded.get() + 1),
                Err(error) => located(&text, &error)?,
            }
            Ok(())
        })
        .unwrap();
    assert!(loaded.get() > 0, "no mutated show loaded");
}

#[test]
fn what_check_accepts_renders_without_a_panic() {
    let corpus = corpus();
    let dir = corpus_dir();
    let file = dir.join("fuzzed.toml");
    let wanted = cases("TALLY_FUZZ_RENDERS", 24);
    let rendered = std::cell::Cell::new(0u32);
    let mut runner = TestRunner::new(Config {
        // Most mutations break the file; keep trying until enough were accepted.
        cases: wanted * 100,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&mutated_scenes(), |scene| {
        if rendered.get() >= wanted {
            return Ok(());
        }
        let text = mutate(&corpus, &scene);
        let Ok(collection) =
            tally::scene::parse_str_checked(&text, &file, &dir, &tally::sources::InputFiles)
        else {
            return Ok(());
        };
        rendered.set(rendered.get() + 1);
        // A thumbnail: the whole pipeline runs, at a size this machine draws quickly.
        let width = collection.canvas.width.min(320);
        let height = (u64::from(width) * u64::from(collection.canvas.height)
            / u64::from(collection.canvas.width))
        .max(1) as u32;
        let frame = u64::from(scene.1.len() as u32 * 7);
        let outcome = std::panic::catch_unwind(|| {
            tally::engine::render_snapshot_at_size(&collection, frame, [width, height])
        });
        match outcome {
            Ok(Ok(_)) | Ok(Err(_)) => Ok(()),
            Err(_) => Err(TestCaseError::fail(format!(
                "rendering panicked on:\n{text}"
            ))),
        }
    });
    result.unwrap();
    assert!(
        rendered.get() >= wanted,
        "only {} of {wanted} mutated files passed check",
        rendered.get()
    );
}

#[test]
fn number_spans_find_every_run_of_digits() {
    assert_eq!(number_spans("a 12 b3 4"), vec![(2, 4), (6, 7), (8, 9)]);
    let mut text = String::from("fps = 30\n");
    let minus_one = TOKENS.iter().position(|token| *token == "-1").unwrap();
    apply(
        &mut text,
        &Mutation::ReplaceNumber {
            nth: 0,
            token: minus_one,
        },
    );
    assert_eq!(text, "fps = -1\n");
    // Inserting at any offset of a multi-byte text stays on a character boundary.
    let mut text = String::from("é=é");
    apply(&mut text, &Mutation::Insert { at: 1, token: 0 });
    assert_eq!(text, "]é=é");
}
