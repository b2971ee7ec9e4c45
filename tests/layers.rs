//! The layers point one way. Every `crate::` path in src/ must name the module's own layer or
//! one below it in the pipeline, so a change low in the pipeline never has to know about what
//! sits above it (ARCHITECTURE.md draws the same picture).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Each top-level module and its layer, lowest first. Modules on the same layer are siblings
/// and may not import each other either (render and audio both sit on what sources give them).
const LAYERS: &[(&str, u32)] = &[
    ("base", 0),
    ("scene", 1),
    ("sources", 2),
    ("render", 3),
    ("audio", 3),
    ("encode", 4),
    ("output", 5),
    ("engine", 6),
    ("show", 7),
    ("control", 8),
    ("signals", 8),
    ("remote", 9),
    // The app hosts remote control, so it sits above it.
    ("ui", 10),
];

fn layer_of(module: &str) -> Option<u32> {
    LAYERS
        .iter()
        .find(|(name, _)| *name == module)
        .map(|(_, layer)| *layer)
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// The top-level module a file under src/ belongs to (`src/render/textures.rs` is in
/// `render`), or `None` for the crate root and the binary.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).expect("a file under src/");
    let mut parts = relative.components();
    let first = parts.next()?.as_os_str().to_str()?.to_string();
    if parts.next().is_none() {
        // A file straight under src/: lib.rs and main.rs sit above every layer.
        let name = first.strip_suffix(".rs")?;
        return (name != "lib" && name != "main").then(|| name.to_string());
    }
    Some(first)
}

/// The top-level modules a line of code names through `crate::`, comments left out.
fn crate_paths(line: &str) -> Vec<String> {
    let code = line.trim_start();
    if code.starts_with("//") {
        return Vec::new();
    }
    let mut named = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            named.push(name);
        }
        rest = after;
    }
    named
}

/// Every import in `src` that points up the pipeline or sideways to a sibling, as
/// "file:line: module -> module".
fn upward_imports(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut problems = Vec::new();
    for file in files {
        let Some(module) = module_of(src, &file) else {
            continue;
        };
        let own = layer_of(&module).unwrap_or_else(|| {
            panic!(
                "{}: module `{module}` has no layer in tests/layers.rs; give it one",
                file.display()
            )
        });
        let text = std::fs::read_to_string(&file).expect("a source file is readable");
        for (number, line) in text.lines().enumerate() {
            for target in crate_paths(line) {
                if target == module {
                    continue;
                }
                // Names defined in lib.rs itself (none today) would have no layer.
                let Some(theirs) = layer_of(&target) else {
                    continue;
                };
                if theirs >= own {
                    problems.push(format!(
                        "{}:{}: {module} (layer {own}) imports {target} (layer {theirs})",
                        file.display(),
                        number + 1
                    ));
                }
            }
        }
    }
    problems
}

#[test]
fn imports_point_down_the_pipeline() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let problems = upward_imports(&src);
    assert!(
        problems.is_empty(),
        "imports that point up the pipeline or to a sibling:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_module_has_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|file| module_of(&src, file))
        .collect();
    let missing: Vec<&String> = modules
        .iter()
        .filter(|module| layer_of(module).is_none())
        .collect();
    assert!(missing.is_empty(), "modules without a layer: {missing:?}");
}

#[test]
fn the_check_catches_an_upward_import() {
    // The check itself: a file in sources that names render must be caught, and one that
    // names base must not.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let sources = dir.path().join("sources");
    std::fs::create_dir(&sources).expect("a folder");
    std::fs::write(
        sources.join("mod.rs"),
        "use crate::base::Tick;\n// crate::engine in a comment is fine\nfn f() { crate::render::draw(); }\n",
    )
    .expect("a file");
    let problems = upward_imports(dir.path());
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].ends_with("mod.rs:3: sources (layer 2) imports render (layer 3)"));
}
