//! The shipped mappings (`mappings/*.yaml`), loaded once per process.
//!
//! They are read at run time, not compiled in, so a target always fuzzes the mappings of the
//! tree it runs in. `ROSETTA_FUZZ_MAPPINGS` names another directory.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use rosetta::mapping::{self, Mapping, Op};

/// The mappings directory.
pub fn dir() -> PathBuf {
    match std::env::var_os("ROSETTA_FUZZ_MAPPINGS") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../mappings")),
    }
}

/// Every shipped mapping, compiled as `rosetta test` does: with an empty environment.
pub fn mappings() -> &'static [Arc<Mapping>] {
    static M: OnceLock<Vec<Arc<Mapping>>> = OnceLock::new();
    M.get_or_init(|| {
        let dir = dir();
        match mapping::load_dir(&dir, &|_| None) {
            Ok(m) => m,
            Err(errors) => {
                for e in &errors {
                    eprintln!("error: {e}");
                }
                panic!("the shipped mappings in {} do not load", dir.display());
            }
        }
    })
}

/// The text of every shipped mapping file and of the tutorial's, for the loader to mutate.
pub fn sources() -> &'static [(PathBuf, String)] {
    static S: OnceLock<Vec<(PathBuf, String)>> = OnceLock::new();
    S.get_or_init(|| {
        let mut out = Vec::new();
        let tutorial = PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/tutorial/mappings"
        ));
        for d in [dir(), tutorial] {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
                .collect();
            files.sort();
            for f in files {
                if let Ok(text) = std::fs::read_to_string(&f) {
                    out.push((f, text));
                }
            }
        }
        assert!(!out.is_empty(), "no mapping sources found");
        out
    })
}

/// Every (mapping, op) whose route has a `stream` section.
pub fn stream_routes() -> &'static [(Arc<Mapping>, Op)] {
    static R: OnceLock<Vec<(Arc<Mapping>, Op)>> = OnceLock::new();
    R.get_or_init(|| {
        let mut out = Vec::new();
        for m in mappings() {
            for op in [Op::Chat, Op::Completions] {
                if m.route(op).is_some_and(|r| r.stream.is_some()) {
                    out.push((Arc::clone(m), op));
                }
            }
        }
        out
    })
}
