//! Known findings that are not fixed in `src/` yet, and how the targets tolerate them.
//!
//! A finding the fuzzers keep rediscovering would turn every run (and CI) red until it is fixed,
//! and hide anything new behind it. So each one is listed here, with its reproducer under
//! `fuzz/regressions/<target>/`, and tolerated: an input that hits it is skipped, after a
//! one-line note. `ROSETTA_FUZZ_STRICT=1` tolerates nothing (to see them fail, or to check a
//! fix). **When a finding is fixed in `src/`, delete its entry here**; its reproducer stays in
//! `fuzz/regressions/` and is replayed by `tests/replay.rs`.
//!
//! A panic inside Rosetta is matched by its source file and message ([`PANICS`]); a property
//! of ours that a known bug breaks is matched by a predicate where it is checked.
//!
//! Fixed so far (src commit f2acf2a; reproducers in `fuzz/regressions/`): usage totals that
//! overflowed, exponential `$use` inlining, `defs` errors in random order, a second YAML
//! document without a line, events dropped before a framing error, blank lines after a
//! passthrough `[DONE]`.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Mutex, Once, OnceLock};

/// A panic inside Rosetta that is known and not fixed yet.
pub struct KnownPanic {
    /// Where the panic is raised: the end of the path.
    pub file: &'static str,
    /// The start of the panic message.
    pub message: &'static str,
    /// What it is, and its reproducer.
    pub what: &'static str,
}

/// None at the moment.
pub const PANICS: &[KnownPanic] = &[];

/// Whether known findings fail like any other (`ROSETTA_FUZZ_STRICT=1`).
pub fn strict() -> bool {
    static STRICT: OnceLock<bool> = OnceLock::new();
    *STRICT.get_or_init(|| std::env::var_os("ROSETTA_FUZZ_STRICT").is_some_and(|v| v != "0"))
}

thread_local! {
    /// Inside [`guard`]: a known panic unwinds to it instead of failing.
    static GUARDED: Cell<bool> = const { Cell::new(false) };
    /// The known panic that is unwinding, if any.
    static HIT: Cell<Option<usize>> = const { Cell::new(None) };
}

fn note(what: &str) {
    static NOTES: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut seen = NOTES.lock().unwrap_or_else(|e| e.into_inner());
    if !seen.iter().any(|s| s == what) {
        seen.push(what.to_string());
        eprintln!(
            "note: an input hit a known finding, skipped (ROSETTA_FUZZ_STRICT=1 fails on it): {what}"
        );
    }
}

fn install_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        // libFuzzer's hook (print, then abort) or the test harness's: whatever was there runs
        // for every panic that is not a tolerated known one.
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if GUARDED.get() && !strict() {
                let file = info.location().map(|l| l.file()).unwrap_or("");
                let message = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                if let Some(i) = PANICS
                    .iter()
                    .position(|k| file.ends_with(k.file) && message.starts_with(k.message))
                {
                    HIT.set(Some(i));
                    return;
                }
            }
            previous(info);
        }));
    });
}

/// Runs one input; an input that hits a known panic is skipped.
pub fn guard(f: impl FnOnce()) {
    install_hook();
    GUARDED.set(true);
    HIT.set(None);
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    GUARDED.set(false);
    if let Err(payload) = result {
        match HIT.take() {
            Some(i) => note(PANICS[i].what),
            None => panic::resume_unwind(payload),
        }
    }
}

/// Tolerates a property failure that a known bug explains (`what` says which).
pub fn tolerated(known: bool, what: &str) -> bool {
    if known && !strict() {
        note(what);
        return true;
    }
    false
}
