//! Hot reload of the mappings: the directory is compiled completely, then swapped in whole.
//!
//! [`Source`] is how `rosetta serve` loads its mappings, at start-up and on every reload:
//! [`mapping::load_dir`] plus the serve-time [`Overrides`]. A [`Reloader`] keeps a running
//! [`State`] current. A reload that compiles swaps the new [`MappingSet`] in atomically, and
//! requests already running keep the set they started with (streams included). A reload with any
//! error logs every error with file and line, keeps the running set, and counts the failure in
//! `rosetta_reloads_total{result="error"}`. A directory whose `*.yaml`/`*.yml` files (names and
//! contents, see [`Fingerprint`]) are those of the running set is not reloaded at all.
//!
//! [`Triggers`] reloads on SIGHUP and, unless turned off, when files in the directory change
//! (debounced, so an editor's write-and-rename or a Kubernetes ConfigMap update is one reload).
//! Reloads run one at a time.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use notify::Watcher as _;
use tokio::sync::mpsc;

use crate::mapping::{self, LoadError, Mapping};
use crate::serving::state::{MappingSet, State};

/// The process environment, or a stand-in (tests), as `${VAR}` lookups for every load.
pub type SharedEnv = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Quiet period after the last file event before a reload starts.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// Longest that a steady stream of file events can put a reload off.
pub const MAX_DEBOUNCE: Duration = Duration::from_secs(3);

/// Settings of `rosetta serve` applied to every mapping after each load.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--always-include-usage`: every stream ends with a usage chunk.
    pub always_include_usage: bool,
}

impl Overrides {
    /// Applies the overrides to freshly loaded mappings (not yet shared, so each `Arc` is the
    /// only one).
    pub fn apply(&self, mappings: &mut [Arc<Mapping>]) {
        for m in mappings {
            let Some(m) = Arc::get_mut(m) else {
                tracing::warn!(mapping = %m.name, "a shared mapping cannot take the serve-time overrides");
                continue;
            };
            if self.always_include_usage {
                m.always_include_usage = true;
            }
        }
    }
}

/// What the mapping files of a directory were when read: each `*.yaml`/`*.yml` file name with a
/// hash of its contents (symlinks followed). Two equal fingerprints compile to the same set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fingerprint {
    /// File name → hash of the contents, or the read error.
    files: BTreeMap<String, Result<u64, String>>,
    /// Set when the directory itself could not be listed.
    unreadable: Option<String>,
    /// The other files the mappings were compiled from (`Mapping::sources`: included files,
    /// key files), by path: a change there is a change too.
    sources: BTreeMap<PathBuf, Result<u64, String>>,
}

impl Fingerprint {
    /// Reads every mapping file of `dir` (the files [`mapping::load_dir`] loads).
    pub fn read(dir: &Path) -> Fingerprint {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                return Fingerprint {
                    files: BTreeMap::new(),
                    unreadable: Some(e.to_string()),
                    sources: BTreeMap::new(),
                };
            }
        };
        let files = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| is_mapping_file(p))
            .map(|p| (file_name(&p), hash_file(&p)))
            .collect();
        Fingerprint {
            files,
            unreadable: None,
            sources: BTreeMap::new(),
        }
    }

    /// The same, with `paths` (the other files a set was compiled from) read too.
    pub fn with_sources<'p>(mut self, paths: impl IntoIterator<Item = &'p PathBuf>) -> Self {
        self.sources = paths
            .into_iter()
            .map(|p| (p.clone(), hash_file(p)))
            .collect();
        self
    }

    /// The directory read again, with the same other files.
    fn reread(&self, dir: &Path) -> Fingerprint {
        Fingerprint::read(dir).with_sources(self.sources.keys())
    }

    /// The state of one mapping file, by its path (only its name counts).
    fn file(&self, path: &Path) -> Option<&Result<u64, String>> {
        self.files.get(&file_name(path))
    }
}

/// A hash of a file's contents, or why it cannot be read.
fn hash_file(path: &Path) -> Result<u64, String> {
    std::fs::read(path)
        .map(|bytes| {
            let mut h = DefaultHasher::new();
            bytes.hash(&mut h);
            h.finish()
        })
        .map_err(|e| e.to_string())
}

/// Whether `path` names a mapping file (`*.yaml`, `*.yml`), as [`mapping::load_dir`] decides.
fn is_mapping_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A directory compiled completely, with the serve-time overrides applied.
pub struct Compiled {
    pub mappings: Vec<Arc<Mapping>>,
    /// The files as read just before compiling them.
    pub fingerprint: Fingerprint,
}

/// Where the mappings come from: the directory, the environment for `${VAR}`, the overrides.
pub struct Source {
    dir: PathBuf,
    env: SharedEnv,
    overrides: Overrides,
}

impl Source {
    pub fn new(dir: impl Into<PathBuf>, env: SharedEnv, overrides: Overrides) -> Source {
        Source {
            dir: dir.into(),
            env,
            overrides,
        }
    }

    /// A source reading `${VAR}` from the process environment (as `rosetta serve` does).
    pub fn from_process_env(dir: impl Into<PathBuf>, overrides: Overrides) -> Source {
        Self::new(dir, Arc::new(|k: &str| std::env::var(k).ok()), overrides)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn overrides(&self) -> Overrides {
        self.overrides
    }

    /// Compiles every mapping of the directory and applies the overrides: all of them, or every
    /// error found.
    pub fn load(&self) -> Result<Compiled, Vec<LoadError>> {
        self.load_read(Fingerprint::read(&self.dir))
    }

    /// Loads the directory that `fingerprint` was just read from. Reading it first means a
    /// file changed during the load shows up as a difference at the next reload.
    fn load_read(&self, fingerprint: Fingerprint) -> Result<Compiled, Vec<LoadError>> {
        let mut mappings = mapping::load_dir(&self.dir, &*self.env)?;
        self.overrides.apply(&mut mappings);
        let fingerprint = fingerprint.with_sources(mappings.iter().flat_map(|m| &m.sources));
        Ok(Compiled {
            mappings,
            fingerprint,
        })
    }
}

/// What started a reload (logged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// SIGHUP.
    Signal,
    /// A change in the mappings directory.
    Watch,
    /// A direct call.
    Manual,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Signal => "signal",
            Trigger::Watch => "watch",
            Trigger::Manual => "manual",
        }
    }
}

/// What a reload did.
#[derive(Debug)]
pub enum Outcome {
    /// The new set serves new requests.
    Reloaded(Changes),
    /// The files are those of the running set: nothing was compiled or swapped.
    Unchanged,
    /// The directory has errors (every one of them here): the running set stays.
    Failed(Vec<LoadError>),
}

/// The mappings a successful reload added, removed and changed (names, sorted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes {
    /// The generation of the new set (see [`MappingSet::generation`]).
    pub generation: u64,
    /// Every mapping of the new set.
    pub mappings: Vec<String>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// In both sets, with a different file.
    pub changed: Vec<String>,
}

/// Keeps a running [`State`] in step with its mappings directory, one reload at a time.
pub struct Reloader {
    state: Arc<State>,
    source: Source,
    /// The files the running set was compiled from; the lock serializes reloads.
    running: Mutex<Fingerprint>,
}

impl Reloader {
    /// A reloader for `state`, whose mappings were loaded from `source` when its files were
    /// `running` (from [`Compiled::fingerprint`], or [`Fingerprint::read`] just before loading).
    pub fn new(state: Arc<State>, source: Source, running: Fingerprint) -> Reloader {
        Reloader {
            state,
            source,
            running: Mutex::new(running),
        }
    }

    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Whether the files differ from those the running set was compiled from.
    pub fn changed_on_disk(&self) -> bool {
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        running.reread(&self.source.dir) != *running
    }

    /// Compiles the directory and swaps the new set in, or keeps the running one on any error;
    /// logs and counts the result. Blocking (reads and compiles files): from async code, run it
    /// with `spawn_blocking`. Concurrent calls run one after the other.
    pub fn reload(&self, trigger: Trigger) -> Outcome {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let metrics = &self.state.metrics;
        let dir = self.source.dir.display();
        let read = running.reread(&self.source.dir);
        if read == *running {
            tracing::debug!(trigger = trigger.as_str(), %dir, "mappings unchanged: nothing to reload");
            metrics.reloads.with_label_values(&["unchanged"]).inc();
            metrics.last_reload_successful.set(1);
            return Outcome::Unchanged;
        }
        let compiled = match self.source.load_read(read) {
            Ok(c) => c,
            Err(errors) => {
                for e in &errors {
                    tracing::error!(trigger = trigger.as_str(), "{e}");
                }
                tracing::error!(
                    trigger = trigger.as_str(),
                    errors = errors.len(),
                    %dir,
                    "mappings reload failed: the running mappings stay in use"
                );
                metrics.reloads.with_label_values(&["error"]).inc();
                metrics.last_reload_successful.set(0);
                return Outcome::Failed(errors);
            }
        };
        let old = self.state.mappings();
        let mut changes = Changes {
            generation: old.generation + 1,
            mappings: Vec::new(),
            added: Vec::new(),
            removed: Vec::new(),
            changed: Vec::new(),
        };
        let mut names = BTreeSet::new();
        for m in &compiled.mappings {
            names.insert(m.name.clone());
            let list = match old.mappings.get(&m.name) {
                None => &mut changes.added,
                Some(l) if running.file(&l.mapping.file) != compiled.fingerprint.file(&m.file) => {
                    &mut changes.changed
                }
                Some(_) => continue,
            };
            list.push(m.name.clone());
            for var in &m.upstream.missing_env {
                tracing::warn!(mapping = %m.name, "{var} is not set");
            }
        }
        changes.removed = old
            .mappings
            .keys()
            .filter(|n| !names.contains(*n))
            .cloned()
            .collect();
        changes.mappings = names.into_iter().collect();
        changes.added.sort();
        changes.changed.sort();
        drop(old);
        self.state
            .replace_mappings(MappingSet::new(compiled.mappings, &self.state.metrics));
        *running = compiled.fingerprint;
        metrics.reloads.with_label_values(&["ok"]).inc();
        tracing::info!(
            trigger = trigger.as_str(),
            generation = changes.generation,
            mappings = ?changes.mappings,
            added = ?changes.added,
            removed = ?changes.removed,
            changed = ?changes.changed,
            "mappings reloaded"
        );
        Outcome::Reloaded(changes)
    }
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = ();

/// What starts reloads: SIGHUP, and file changes in the mappings directory when watched.
pub struct Triggers {
    hangup: Hangup,
    watch: bool,
}

impl Triggers {
    /// Takes over SIGHUP (from here on it no longer ends the process) and remembers whether to
    /// watch the directory. Call it early in the runtime, before announcing readiness.
    pub fn install(watch: bool) -> Triggers {
        #[cfg(unix)]
        let hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP: no reload on signal");
                None
            }
        };
        #[cfg(not(unix))]
        let hangup = ();
        Triggers { hangup, watch }
    }

    /// Starts the watcher (if asked for; a watcher that cannot start is a warning, and SIGHUP
    /// still works) and the task that runs the reloads, one at a time.
    pub fn spawn(self, reloader: Arc<Reloader>) -> tokio::task::JoinHandle<()> {
        let dir = reloader.source.dir.clone();
        let (watcher, files) = if self.watch {
            match watch_dir(&dir) {
                Ok((w, rx)) => {
                    tracing::info!(dir = %dir.display(), "reloading the mappings on SIGHUP and on file changes");
                    (Some(w), Some(rx))
                }
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot watch the mappings directory: reloading on SIGHUP only");
                    (None, None)
                }
            }
        } else {
            tracing::info!(dir = %dir.display(), "reloading the mappings on SIGHUP (file watching is off)");
            (None, None)
        };
        let mut hangup = self.hangup;
        tokio::spawn(async move {
            let _watcher = watcher;
            let mut files = files;
            // A change between the first load and the watcher's start has no event of its own.
            if files.is_some() && reloader.changed_on_disk() {
                run(&reloader, Trigger::Watch).await;
            }
            loop {
                let trigger = tokio::select! {
                    () = next_hangup(&mut hangup) => Trigger::Signal,
                    () = next_file_event(&mut files) => {
                        settle(&mut files).await;
                        Trigger::Watch
                    }
                };
                run(&reloader, trigger).await;
            }
        })
    }
}

/// Runs one reload off the async threads.
async fn run(reloader: &Arc<Reloader>, trigger: Trigger) {
    let r = Arc::clone(reloader);
    if let Err(e) = tokio::task::spawn_blocking(move || r.reload(trigger)).await {
        tracing::error!(error = %e, "the mappings reload did not finish");
    }
}

#[cfg(unix)]
async fn next_hangup(hangup: &mut Hangup) {
    if let Some(s) = hangup.as_mut()
        && s.recv().await.is_some()
    {
        return;
    }
    *hangup = None;
    std::future::pending().await
}

#[cfg(not(unix))]
async fn next_hangup(_: &mut Hangup) {
    std::future::pending().await
}

async fn next_file_event(files: &mut Option<mpsc::UnboundedReceiver<()>>) {
    if let Some(rx) = files.as_mut()
        && rx.recv().await.is_some()
    {
        return;
    }
    *files = None;
    std::future::pending().await
}

/// Waits until no file event came for [`DEBOUNCE`] (at most [`MAX_DEBOUNCE`] in all).
async fn settle(files: &mut Option<mpsc::UnboundedReceiver<()>>) {
    let Some(rx) = files.as_mut() else { return };
    let deadline = tokio::time::Instant::now() + MAX_DEBOUNCE;
    loop {
        let quiet = (tokio::time::Instant::now() + DEBOUNCE).min(deadline);
        match tokio::time::timeout_at(quiet, rx.recv()).await {
            Ok(Some(())) if tokio::time::Instant::now() < deadline => {}
            _ => return,
        }
    }
}

/// Watches `dir` itself (not its subdirectories): each event that can change the mappings
/// sends one `()`.
fn watch_dir(
    dir: &Path,
) -> notify::Result<(notify::RecommendedWatcher, mpsc::UnboundedReceiver<()>)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let root = dir.to_path_buf();
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(e) if !relevant(&root, &e) => {}
            Ok(_) => {
                let _ = tx.send(());
            }
            Err(e) => {
                tracing::warn!(error = %e, "watching the mappings directory");
                let _ = tx.send(());
            }
        })?;
    watcher.watch(dir, notify::RecursiveMode::NonRecursive)?;
    Ok((watcher, rx))
}

/// Whether a file event can change the mappings: not a mere read (reloading opens the files),
/// and about a mapping file, a Kubernetes ConfigMap entry (`..data`, `..TIMESTAMP`), the
/// directory itself, or unknown paths.
fn relevant(dir: &Path, event: &notify::Event) -> bool {
    use notify::event::{AccessKind, AccessMode, EventKind};
    if let EventKind::Access(kind) = event.kind
        && kind != AccessKind::Close(AccessMode::Write)
    {
        return false;
    }
    event.need_rescan()
        || event.paths.is_empty()
        || event.paths.iter().any(|p| {
            p == dir
                || is_mapping_file(p)
                || p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(".."))
        })
}

#[cfg(test)]
#[path = "reload_tests.rs"]
mod tests;
