//! `include:`: a mapping file takes sections (`defs`, `errors`, `routes`...) of other mapping
//! files and writes only what differs.
//!
//! ```yaml
//! include: base.yaml                          # defs, errors and routes of base.yaml
//! include:
//!   - {file: ../shared/common.yaml, take: [defs]}
//! ```
//!
//! Paths are relative to the including file. Included files may include others; a cycle, a
//! missing file or a section the included file does not have is a load error located at the
//! `include` entry. The sections are merged: the included files in order, then the including
//! file's own over them. Merging goes key by key through maps; a template operation (a map
//! whose keys start with `$`), a list or a scalar replaces what was there whole; `null` removes
//! the key. `upstream` is never taken: where requests go and with which credentials is always
//! the including file's own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_yaml::Value as Yaml;

use crate::mapping::LoadError;
use crate::mapping::spec::locate;

/// The sections an `include` can take.
pub const TAKEABLE: &[&str] = &["defs", "errors", "routes", "models", "options", "pricing"];
/// What an `include` takes when it does not say.
const DEFAULT_TAKE: &[&str] = &["defs", "errors", "routes"];
/// How deep includes may nest.
const MAX_DEPTH: usize = 8;

/// A file's top-level sections, by key.
pub type Sections = BTreeMap<String, Yaml>;

/// The top-level sections of `file` (text `src`, parsed `top`) with its `include`s resolved,
/// and every file read for them (to watch for changes); or every error found.
pub fn resolve(
    file: &Path,
    src: &str,
    top: BTreeMap<String, Yaml>,
) -> Result<(Sections, Vec<PathBuf>), Vec<LoadError>> {
    let mut stack = vec![file.canonicalize().unwrap_or_else(|_| file.to_path_buf())];
    let mut read = Vec::new();
    let out = resolve_in(file, src, top, &mut stack, &mut read)?;
    Ok((out, read))
}

fn resolve_in(
    file: &Path,
    src: &str,
    mut top: BTreeMap<String, Yaml>,
    stack: &mut Vec<PathBuf>,
    read: &mut Vec<PathBuf>,
) -> Result<BTreeMap<String, Yaml>, Vec<LoadError>> {
    let Some(spec) = top.remove("include") else {
        return Ok(top);
    };
    let mut errors = Vec::new();
    let err = |at: &str, message: String| LoadError {
        file: file.to_path_buf(),
        line: locate(src, at).or_else(|| locate(src, "include")),
        location: at.to_string(),
        message,
    };
    let mut merged: BTreeMap<String, Yaml> = BTreeMap::new();
    for (at, entry) in entries(&spec) {
        let (name, take, explicit) = match parse_entry(entry) {
            Ok(x) => x,
            Err(message) => {
                errors.push(err(&at, message));
                continue;
            }
        };
        if let Some(bad) = take.iter().find(|t| !TAKEABLE.contains(&t.as_str())) {
            errors.push(err(
                &format!("{at}.take"),
                format!(
                    "cannot take {bad:?} (expected some of {}; `upstream` is always the including file's own)",
                    TAKEABLE.join(", ")
                ),
            ));
            continue;
        }
        let path = file.parent().unwrap_or(Path::new(".")).join(&name);
        let canonical = match path.canonicalize() {
            Ok(p) => p,
            Err(e) => {
                errors.push(err(
                    &at,
                    format!("cannot read the included file {}: {e}", path.display()),
                ));
                continue;
            }
        };
        if stack.contains(&canonical) || stack.len() > MAX_DEPTH {
            let chain: Vec<String> = stack
                .iter()
                .chain([&canonical])
                .map(|p| p.file_name().unwrap_or_default().to_string_lossy().into())
                .collect();
            errors.push(err(
                &at,
                format!("include cycle: {} (or nested too deep)", chain.join(" -> ")),
            ));
            continue;
        }
        read.push(canonical.clone());
        let text = match std::fs::read_to_string(&canonical) {
            Ok(t) => t,
            Err(e) => {
                errors.push(err(
                    &at,
                    format!("cannot read the included file {}: {e}", path.display()),
                ));
                continue;
            }
        };
        let parsed: BTreeMap<String, Yaml> = match serde_yaml::from_str(&text) {
            Ok(t) => t,
            Err(e) => {
                errors.push(LoadError {
                    file: path.clone(),
                    line: e.location().map(|l| l.line()),
                    location: String::new(),
                    message: format!("invalid YAML (included from {}): {e}", file.display()),
                });
                continue;
            }
        };
        stack.push(canonical);
        let included = resolve_in(&path, &text, parsed, stack, read);
        stack.pop();
        let mut included = match included {
            Ok(i) => i,
            Err(mut e) => {
                errors.append(&mut e);
                continue;
            }
        };
        for section in take {
            match included.remove(&section) {
                Some(v) => merge_into(&mut merged, section, v),
                // The default sections are taken when they are there.
                None if !explicit => {}
                None => errors.push(err(
                    &format!("{at}.take"),
                    format!("{} has no `{section}` section", path.display()),
                )),
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    for (k, v) in top {
        merge_into(&mut merged, k, v);
    }
    Ok(merged)
}

/// The entries of `include:`, each with its location: one, or a list.
fn entries(spec: &Yaml) -> Vec<(String, &Yaml)> {
    match spec {
        Yaml::Sequence(items) => items
            .iter()
            .enumerate()
            .map(|(i, y)| (format!("include[{i}]"), y))
            .collect(),
        one => vec![("include".to_string(), one)],
    }
}

/// `file.yaml` or `{file, take}`: the path, the sections, and whether they were named.
fn parse_entry(y: &Yaml) -> Result<(String, Vec<String>, bool), String> {
    let default = || DEFAULT_TAKE.iter().map(|s| s.to_string()).collect();
    match y {
        Yaml::String(s) if !s.is_empty() => Ok((s.clone(), default(), false)),
        Yaml::Mapping(m) => {
            let mut file = None;
            let mut take = None;
            for (k, v) in m {
                match (k.as_str(), v) {
                    (Some("file"), Yaml::String(s)) if !s.is_empty() => file = Some(s.clone()),
                    (Some("take"), Yaml::Sequence(items)) => {
                        let names: Option<Vec<String>> =
                            items.iter().map(|i| i.as_str().map(String::from)).collect();
                        take = Some(names.ok_or("`take` is a list of section names")?);
                    }
                    (Some(other), _) => {
                        return Err(format!(
                            "unknown or invalid key {other:?} (expected `file`: a path, `take`: a list of sections)"
                        ));
                    }
                    _ => return Err("keys are `file` and `take`".into()),
                }
            }
            let file = file.ok_or("needs `file`: the path of the mapping file to include")?;
            let explicit = take.is_some();
            Ok((file, take.unwrap_or_else(default), explicit))
        }
        _ => Err("an include is a file path, or `{file, take}`".into()),
    }
}

/// Puts `over` at `key` of `into`, merged with what is there.
fn merge_into(into: &mut BTreeMap<String, Yaml>, key: String, over: Yaml) {
    match into.remove(&key) {
        Some(base) => {
            if let Some(v) = merge(base, over) {
                into.insert(key, v);
            }
        }
        None if over.is_null() => {}
        None => {
            into.insert(key, over);
        }
    }
}

/// `over` merged onto `base` (see the module doc); `None`: the key is removed.
pub fn merge(base: Yaml, over: Yaml) -> Option<Yaml> {
    match (base, over) {
        (_, Yaml::Null) => None,
        (Yaml::Mapping(mut b), Yaml::Mapping(o)) if !is_operation(&b) && !is_operation(&o) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => {
                        let prev = std::mem::replace(slot, Yaml::Null);
                        match merge(prev, v) {
                            Some(m) => *slot = m,
                            None => {
                                b.shift_remove(&k);
                            }
                        }
                    }
                    None if v.is_null() => {}
                    None => {
                        b.insert(k, v);
                    }
                }
            }
            Some(Yaml::Mapping(b))
        }
        (_, o) => Some(o),
    }
}

/// Whether a map is a template operation (`{$concat: ...}`): replaced whole, never merged.
fn is_operation(m: &serde_yaml::Mapping) -> bool {
    m.keys()
        .any(|k| k.as_str().is_some_and(|s| s.starts_with('$')))
}

#[cfg(test)]
#[path = "include_tests.rs"]
mod tests;
