//! Replays the committed inputs (`seeds/<target>/*`, `regressions/<target>/*`) through the
//! targets' checks, without libFuzzer, on a stable toolchain:
//!
//! ```sh
//! cargo test --manifest-path fuzz/Cargo.toml --no-default-features
//! ```
//!
//! `ROSETTA_FUZZ_REPLAY=DIR_OR_FILE` replays that instead (a crash artifact, a corpus).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use rosetta::mapping::Framing;

/// A target: its name and its body.
type Target = (&'static str, fn(&[u8]));

const TARGETS: &[Target] = &[
    ("sse_framing", |d| {
        rosetta_fuzz::framing::run(Framing::Sse, d)
    }),
    ("ndjson_framing", |d| {
        rosetta_fuzz::framing::run(Framing::Ndjson, d)
    }),
    ("eventstream_framing", rosetta_fuzz::eventstream::run),
    ("mapping_loader", rosetta_fuzz::loader::run),
    ("transform", rosetta_fuzz::transform::run),
    ("stream_rewrite", rosetta_fuzz::stream::run),
];

fn files(dir: &Path) -> Vec<PathBuf> {
    if dir.is_file() {
        return vec![dir.to_path_buf()];
    }
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .filter(|p| p.file_name().is_some_and(|n| n != "README.md"))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Runs every file under `dirs` through `target`; returns the failures.
fn replay(name: &str, target: fn(&[u8]), dirs: &[PathBuf]) -> (usize, Vec<String>) {
    let mut failures = Vec::new();
    let mut n = 0;
    for dir in dirs {
        for file in files(dir) {
            let data = std::fs::read(&file).expect("readable input");
            n += 1;
            if catch_unwind(AssertUnwindSafe(|| target(&data))).is_err() {
                failures.push(format!("{name}: {}", file.display()));
            }
        }
    }
    (n, failures)
}

#[test]
fn committed_inputs_pass() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let only = std::env::var_os("ROSETTA_FUZZ_REPLAY").map(PathBuf::from);
    let wanted = std::env::var("ROSETTA_FUZZ_TARGET").ok();
    let mut all = Vec::new();
    let mut total = 0;
    for (name, target) in TARGETS {
        if wanted.as_deref().is_some_and(|w| w != *name) {
            continue;
        }
        let dirs = match &only {
            Some(p) => vec![p.clone()],
            None => vec![
                root.join("seeds").join(name),
                root.join("regressions").join(name),
            ],
        };
        let (n, mut failures) = replay(name, *target, &dirs);
        println!("{name}: {n} inputs, {} failed", failures.len());
        total += n;
        all.append(&mut failures);
    }
    assert!(total > 0, "no input found");
    assert!(all.is_empty(), "failing inputs:\n{}", all.join("\n"));
}
