//! Optional inbound API keys: who may call Rosetta.
//!
//! Keys come from `--api-keys` / `ROSETTA_API_KEYS` (comma-separated) and/or `--api-keys-file`
//! / `ROSETTA_API_KEYS_FILE` (one entry a line; blank lines and lines starting with `#` are
//! skipped). An entry is `name:key` or a bare `key`, which is named `key-N` (N counts the
//! unnamed entries, the list's first, then the file's). With no key configured, auth is off.
//!
//! When it is on, every request except `GET /health` (and `/metrics`, unless
//! `--protect-metrics`) must send `Authorization: Bearer <key>`; otherwise it gets `401` with
//! `www-authenticate: Bearer` and an OpenAI error (code `invalid_api_key`). Only that header is
//! read: every OpenAI client sends it, and `x-api-key` / `api-key` are left to mean the upstream
//! keys some mappings forward. The header is then removed from the request, so it can never
//! reach an upstream.
//!
//! Keys are checked against SHA-256 digests; their text is kept only as the pieces a
//! [`Redactor`] needs to keep them out of everything sent. A presented key is hashed and compared with every
//! configured digest using `subtle`'s constant-time equality, with no early exit, so the time
//! taken tells neither which key matched nor how long the keys are. No key, presented or
//! configured, is ever logged, counted or echoed in an error (errors about the keys file give
//! line numbers only). The name of the matched key is put in the request's extensions as a
//! [`KeyName`].
//!
//! The keys file is read again on SIGHUP ([`reload_on_sighup`]); a file that cannot be read or
//! has an error keeps the previous keys.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use http::HeaderMap;
use http::header::AUTHORIZATION;
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

use crate::ops::redact::Redactor;

/// A secret from the command line or the environment: `Debug` never shows it.
#[derive(Clone, Default)]
pub struct Secret(String);

impl Secret {
    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

/// The name of the key a request authenticated with, in the request's extensions
/// (`req.extensions().get::<KeyName>()`), for per-key accounting and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyName(pub Arc<str>);

impl KeyName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A configured key: its name and the SHA-256 digest of the key.
#[derive(Clone)]
struct Key {
    name: Arc<str>,
    digest: [u8; 32],
}

/// One parsed entry, before unnamed ones get their `key-N` name.
#[derive(Clone)]
struct Entry {
    name: Option<String>,
    digest: [u8; 32],
    text: Secret,
    /// Where it came from, for error messages: `--api-keys entry 2`, `keys.txt:4`.
    at: String,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No `Authorization` header.
    Missing,
    /// An `Authorization` header that is not one `Bearer <key>`.
    Malformed,
    /// A bearer key that matches no configured key.
    Invalid,
}

impl Denied {
    /// A short label for logs.
    pub fn reason(self) -> &'static str {
        match self {
            Denied::Missing => "missing",
            Denied::Malformed => "malformed",
            Denied::Invalid => "invalid",
        }
    }

    /// The message the client gets (it never quotes what the client sent).
    pub fn message(self) -> &'static str {
        match self {
            Denied::Missing => {
                "missing API key: send your Rosetta API key as `Authorization: Bearer <key>`"
            }
            Denied::Malformed => "the Authorization header must be `Bearer <key>`",
            Denied::Invalid => "invalid API key",
        }
    }
}

/// The inbound keys (possibly none: auth off) and whether `/metrics` needs one.
pub struct Auth {
    keys: ArcSwap<Vec<Key>>,
    /// The keys' pieces, redacted from every answer, log and ledger row ([`crate::ops::redact`]).
    redactor: ArcSwap<Redactor>,
    /// Entries from `--api-keys`, kept for reloads of the file.
    listed: Vec<Entry>,
    file: Option<PathBuf>,
    protect_metrics: bool,
}

impl Default for Auth {
    fn default() -> Self {
        Auth::off()
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("keys", &self.names())
            .field("file", &self.file)
            .field("protect_metrics", &self.protect_metrics)
            .finish()
    }
}

impl Auth {
    /// No keys: every request is let in.
    pub fn off() -> Self {
        Auth {
            keys: ArcSwap::from_pointee(Vec::new()),
            redactor: ArcSwap::default(),
            listed: Vec::new(),
            file: None,
            protect_metrics: false,
        }
    }

    /// Keys from a comma-separated `list` and/or a keys `file`. An empty or blank list counts
    /// as none; a file must hold at least one key (so emptying it cannot turn auth off).
    pub fn load(list: Option<&str>, file: Option<&Path>) -> Result<Self, String> {
        let listed = match list {
            Some(l) => parse_list(l)?,
            None => Vec::new(),
        };
        let from_file = match file {
            Some(f) => read_file(f)?,
            None => Vec::new(),
        };
        let redactor = redactor_of(listed.iter().chain(&from_file));
        let keys = assemble(&listed, from_file)?;
        Ok(Auth {
            keys: ArcSwap::from_pointee(keys),
            redactor: ArcSwap::from_pointee(redactor),
            listed,
            file: file.map(Path::to_path_buf),
            protect_metrics: false,
        })
    }

    /// The same keys; `/metrics` needs one too when `yes` (and auth is on).
    pub fn protect_metrics(mut self, yes: bool) -> Self {
        self.protect_metrics = yes;
        self
    }

    /// Whether requests need a key.
    pub fn enabled(&self) -> bool {
        !self.keys.load().is_empty()
    }

    /// Whether `/metrics` needs a key.
    pub fn metrics_protected(&self) -> bool {
        self.protect_metrics && self.enabled()
    }

    /// The names of the configured keys (never the keys).
    pub fn names(&self) -> Vec<String> {
        self.keys
            .load()
            .iter()
            .map(|k| k.name.to_string())
            .collect()
    }

    /// The keys file, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Reads the keys file again (the `--api-keys` entries stay). On any error the previous
    /// keys stay in force. Returns the number of keys now in force.
    pub fn reload(&self) -> Result<usize, String> {
        let Some(file) = &self.file else {
            return Ok(self.keys.load().len());
        };
        let from_file = read_file(file)?;
        let redactor = redactor_of(self.listed.iter().chain(&from_file));
        let keys = assemble(&self.listed, from_file)?;
        let n = keys.len();
        self.keys.store(Arc::new(keys));
        self.redactor.store(Arc::new(redactor));
        Ok(n)
    }

    /// The redactor of the keys in force.
    pub fn redactor(&self) -> Arc<Redactor> {
        self.redactor.load_full()
    }

    /// Checks a request's headers: `Ok(None)` when auth is off, `Ok(Some(name))` for a valid
    /// key.
    pub fn check(&self, headers: &HeaderMap) -> Result<Option<KeyName>, Denied> {
        self.check_with(headers, false)
    }

    /// [`Auth::check`], where a client of the Messages API may send its key as `x-api-key`
    /// instead (when it sends no `Authorization`), as that API's clients do.
    pub fn check_with(
        &self,
        headers: &HeaderMap,
        api_key_header: bool,
    ) -> Result<Option<KeyName>, Denied> {
        let keys = self.keys.load();
        if keys.is_empty() {
            return Ok(None);
        }
        if api_key_header && !headers.contains_key(AUTHORIZATION) {
            let mut values = headers.get_all(API_KEY).iter();
            let value = values.next().ok_or(Denied::Missing)?;
            if values.next().is_some() {
                return Err(Denied::Malformed);
            }
            let presented = value.as_bytes().trim_ascii();
            if presented.is_empty() {
                return Err(Denied::Missing);
            }
            return match find(&keys, &digest(presented)) {
                Some(i) => Ok(Some(KeyName(Arc::clone(&keys[i].name)))),
                None => Err(Denied::Invalid),
            };
        }
        let mut values = headers.get_all(AUTHORIZATION).iter();
        let value = values.next().ok_or(Denied::Missing)?;
        if values.next().is_some() {
            return Err(Denied::Malformed);
        }
        let presented = bearer(value.as_bytes()).ok_or(Denied::Malformed)?;
        match find(&keys, &digest(presented)) {
            Some(i) => Ok(Some(KeyName(Arc::clone(&keys[i].name)))),
            None => Err(Denied::Invalid),
        }
    }
}

/// The header a Messages API client sends its key in.
pub const API_KEY: &str = "x-api-key";

/// The index of the key with this digest. Every key is compared, in constant time.
fn find(keys: &[Key], presented: &[u8; 32]) -> Option<usize> {
    let mut found = Choice::from(0);
    let mut index = 0u64;
    for (i, k) in keys.iter().enumerate() {
        let eq = presented.ct_eq(&k.digest);
        index = u64::conditional_select(&index, &(i as u64), eq);
        found |= eq;
    }
    bool::from(found).then_some(index as usize)
}

/// The token of `Bearer <token>` (scheme case-insensitive), if that is what the value is.
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let value = value.trim_ascii();
    let (scheme, rest) = value.split_at(value.iter().position(|b| *b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

fn digest(key: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, key);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Parses one entry (`name:key` or `key`). Errors never quote the entry.
fn parse_entry(raw: &str, at: String) -> Result<Entry, String> {
    let raw = raw.trim();
    let (name, key) = match raw.split_once(':') {
        Some((n, k)) => (Some(n.trim()), k.trim()),
        None => (None, raw),
    };
    if let Some(n) = name
        && (n.is_empty()
            || n.len() > 64
            || !n
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')))
    {
        return Err(format!(
            "{at}: invalid key name (use letters, digits, '-', '_' or '.', at most 64)"
        ));
    }
    if key.is_empty() {
        return Err(format!("{at}: empty key"));
    }
    if !key.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
        return Err(format!(
            "{at}: a key may only hold printable ASCII without spaces or commas"
        ));
    }
    Ok(Entry {
        name: name.map(String::from),
        digest: digest(key.as_bytes()),
        text: Secret(key.to_string()),
        at,
    })
}

fn parse_list(list: &str) -> Result<Vec<Entry>, String> {
    list.split(',')
        .enumerate()
        .filter(|(_, e)| !e.trim().is_empty())
        .map(|(i, e)| parse_entry(e, format!("--api-keys entry {}", i + 1)))
        .collect()
}

fn read_file(path: &Path) -> Result<Vec<Entry>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the keys file {}: {e}", path.display()))?;
    let entries = text
        .lines()
        .enumerate()
        .filter(|(_, l)| {
            let l = l.trim();
            !l.is_empty() && !l.starts_with('#')
        })
        .map(|(i, l)| parse_entry(l, format!("{}:{}", path.display(), i + 1)))
        .collect::<Result<Vec<_>, _>>()?;
    if entries.is_empty() {
        return Err(format!("the keys file {} has no key", path.display()));
    }
    Ok(entries)
}

/// Names the unnamed entries and checks that names and keys are unique.
fn assemble(listed: &[Entry], from_file: Vec<Entry>) -> Result<Vec<Key>, String> {
    let mut unnamed = 0;
    let mut keys: Vec<Key> = Vec::new();
    for e in listed.iter().cloned().chain(from_file) {
        let name = e.name.unwrap_or_else(|| {
            unnamed += 1;
            format!("key-{unnamed}")
        });
        if let Some(k) = keys.iter().find(|k| *k.name == *name) {
            return Err(format!("{}: the key name {:?} is used twice", e.at, k.name));
        }
        if let Some(k) = keys.iter().find(|k| k.digest == e.digest) {
            return Err(format!(
                "{}: the same key is also configured as {:?}",
                e.at, k.name
            ));
        }
        keys.push(Key {
            name: name.into(),
            digest: e.digest,
        });
    }
    Ok(keys)
}

/// A redactor of the entries' keys; they are also remembered for logs and the ledger.
fn redactor_of<'a>(entries: impl Iterator<Item = &'a Entry> + Clone) -> Redactor {
    let texts: Vec<String> = entries.map(|e| e.text.expose().to_string()).collect();
    crate::ops::redact::remember(texts.iter());
    Redactor::new(texts)
}

/// Re-reads the keys file on every SIGHUP while the runtime runs (nothing to do without a
/// file). Call it from inside the runtime, before announcing that the server is up.
pub fn reload_on_sighup(auth: Arc<Auth>) {
    let Some(file) = auth.file().map(Path::to_path_buf) else {
        return;
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP: the keys file will not be reloaded");
                return;
            }
        };
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                match auth.reload() {
                    Ok(n) => {
                        tracing::info!(keys = n, names = ?auth.names(), file = %file.display(), "API keys reloaded")
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "API keys not reloaded; the previous keys stay in force")
                    }
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = (auth, file);
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
