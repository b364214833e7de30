//! Loading a mappings directory: every `*.yaml`/`*.yml` file compiled completely, then the
//! checks across files (unique names, fallbacks that exist, one currency). Returns either the
//! whole set or *every* error found, each with file, line and location.

use std::collections::HashMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use crate::mapping::spec::{self};
use crate::mapping::*;

/// Loads every mapping in `dir`. Returns all of them, or every error found.
pub fn load_dir(dir: &FsPath, env: Env<'_>) -> Result<Vec<Arc<Mapping>>, Vec<LoadError>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        vec![LoadError {
            file: dir.to_path_buf(),
            line: None,
            location: String::new(),
            message: format!("cannot read the mappings directory: {e}"),
        }]
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    let mut mappings = Vec::new();
    let mut errors = Vec::new();
    for file in files {
        match std::fs::read_to_string(&file) {
            Ok(src) => match compile_file(&file, &src, env) {
                Ok(m) => mappings.push(Arc::new(m)),
                Err(mut e) => errors.append(&mut e),
            },
            Err(e) => errors.push(LoadError {
                file: file.clone(),
                line: None,
                location: String::new(),
                message: format!("cannot read: {e}"),
            }),
        }
    }
    let mut seen = HashMap::new();
    for m in &mappings {
        if let Some(other) = seen.insert(m.name.clone(), m.file.clone()) {
            errors.push(LoadError {
                file: m.file.clone(),
                line: None,
                location: String::new(),
                message: format!(
                    "mapping name {:?} is also used by {}",
                    m.name,
                    other.display()
                ),
            });
        }
    }
    // A fallback must name another mapping of the same set.
    for m in &mappings {
        let named = m
            .upstream
            .fallback
            .iter()
            .map(|f| ("upstream.fallback".to_string(), f));
        let by_model = m.models.iter().enumerate().filter_map(|(i, d)| {
            d.fallback
                .as_ref()
                .map(|f| (format!("models[{i}].fallback"), f))
        });
        for (at, f) in named.chain(by_model) {
            let problem = if f.mapping == m.name {
                Some("a mapping cannot fall back to itself".to_string())
            } else if !seen.contains_key(&f.mapping) {
                Some(format!(
                    "fallback mapping {:?} does not exist (mappings: {})",
                    f.mapping,
                    {
                        let mut names: Vec<&str> = seen.keys().map(String::as_str).collect();
                        names.sort_unstable();
                        names.join(", ")
                    }
                ))
            } else {
                None
            };
            if let Some(message) = problem {
                let src = std::fs::read_to_string(&m.file).unwrap_or_default();
                errors.push(LoadError {
                    file: m.file.clone(),
                    line: spec::locate(&src, &format!("{at}.mapping")),
                    location: format!("{at}.mapping"),
                    message,
                });
            }
        }
    }
    // Budgets add costs up across mappings: every mapping must price in one currency.
    let mut first: Option<(&str, &PathBuf)> = None;
    for m in &mappings {
        let Some(p) = &m.pricing else { continue };
        match first {
            None => first = Some((&p.currency, &m.file)),
            Some((currency, file)) if currency != p.currency => {
                let src = std::fs::read_to_string(&m.file).unwrap_or_default();
                errors.push(LoadError {
                    file: m.file.clone(),
                    line: spec::locate(&src, "pricing.currency")
                        .or_else(|| spec::locate(&src, "pricing")),
                    location: "pricing.currency".into(),
                    message: format!(
                        "prices are in {} here but in {currency} in {}: budgets add costs up across mappings, so every mapping must price in the same currency",
                        p.currency,
                        file.display()
                    ),
                });
            }
            Some(_) => {}
        }
    }
    if mappings.is_empty() && errors.is_empty() {
        errors.push(LoadError {
            file: dir.to_path_buf(),
            line: None,
            location: String::new(),
            message: "no mapping files (*.yaml, *.yml) found".into(),
        });
    }
    if errors.is_empty() {
        Ok(mappings)
    } else {
        Err(errors)
    }
}
