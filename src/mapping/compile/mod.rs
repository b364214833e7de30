//! Compiling one mapping file into a [`Mapping`]: the top-level sections (models, options,
//! defs, errors) here; the upstream, the routes, the stream rules and the prices each in their
//! own file. Every error is collected in `Ctx`, with its location, and reported together.

mod auth;
mod pricing;
mod routes;
mod sign;
mod streams;
mod upstream;
pub mod values;

use values::parse_duration;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::Path as FsPath;
use std::time::Duration;

use serde_yaml::Value as Yaml;

use crate::mapping::spec::{self, ROUTE_NAMES, TOP_LEVEL_KEYS};
use crate::mapping::template::{self, CompileError, Defs, Expr};
use crate::mapping::*;

/// The line where a second YAML document starts (a mapping file holds one): a `---` after
/// content, or content after a `...` end marker. Line 1 when neither is found, so that an
/// error always points somewhere.
fn second_document(src: &str) -> Option<usize> {
    let (mut content_seen, mut ended) = (false, false);
    for (i, line) in src.lines().enumerate() {
        let t = line.trim_end();
        let blank = t.trim_start().is_empty() || t.trim_start().starts_with('#');
        if t == "---" || t.starts_with("--- ") {
            if content_seen {
                return Some(i + 1);
            }
            content_seen = true;
        } else if t == "..." || t.starts_with("... ") {
            ended = true;
        } else if !blank {
            if ended {
                return Some(i + 1);
            }
            content_seen = true;
        }
    }
    Some(1)
}

/// Names that cannot be mappings because they are Rosetta's own paths.
const RESERVED_NAMES: &[&str] = &["v1", "health", "metrics"];

/// Compiles one file's text.
pub fn compile_file(file: &FsPath, src: &str, env: Env<'_>) -> Result<Mapping, Vec<LoadError>> {
    let name = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_string();
    let mut c = Ctx {
        file,
        src,
        errors: Vec::new(),
        missing: Vec::new(),
        vars: Default::default(),
        secrets: Vec::new(),
    };
    let valid_name = !name.is_empty()
        && name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_');
    if !valid_name || RESERVED_NAMES.contains(&name.as_str()) {
        c.error("", format!("the file name {name:?} is not a valid mapping name (letters, digits, - and _; not v1, health or metrics)"));
    }
    let top: BTreeMap<String, Yaml> = match serde_yaml::from_str(src) {
        Ok(t) => t,
        Err(e) => {
            // Without a position (a second `---` document), point at the second document.
            let line = e
                .location()
                .map(|l| l.line())
                .or_else(|| second_document(src));
            return Err(vec![LoadError {
                file: file.to_path_buf(),
                line,
                location: String::new(),
                message: format!("invalid YAML: {e}"),
            }]);
        }
    };
    // `include:` sections merged under the file's own (crate::mapping::include).
    let (top, sources) = crate::mapping::include::resolve(file, src, top)?;
    for k in top.keys() {
        if !TOP_LEVEL_KEYS.contains(&k.as_str()) {
            // An empty key (`"": 1`) still needs a location to point at.
            let at = if k.is_empty() { "\"\"" } else { k.as_str() };
            c.error(
                at,
                format!(
                    "unknown top-level key (expected one of {})",
                    TOP_LEVEL_KEYS.join(", ")
                ),
            );
        }
    }
    let mut sources = sources;
    let upstream = match c.section::<spec::UpstreamSpec>(&top, "upstream", true) {
        Some(mut u) => {
            let auth = u.auth.take();
            let mut upstream = c.upstream(u, env);
            if let Some(spec) = auth {
                let mut missing = Vec::new();
                let (token, key_file) = c.auth(spec, env, &mut missing);
                c.missing.append(&mut missing);
                sources.extend(key_file);
                if let Some(up) = upstream.as_mut() {
                    up.token = token;
                }
            }
            upstream
        }
        None => None,
    };
    let models: Vec<Model> = c
        .section::<Vec<spec::ModelSpec>>(&top, "models", false)
        .unwrap_or_default()
        .into_iter()
        .map(|m| match m {
            spec::ModelSpec::Id(id) => Model {
                id,
                upstream: None,
                owned_by: None,
                fallback: None,
            },
            spec::ModelSpec::Full(e) => Model {
                id: e.id,
                upstream: e.upstream,
                owned_by: e.owned_by,
                fallback: e.fallback.map(Fallback::from),
            },
        })
        .collect();
    let options = c
        .section::<spec::OptionsSpec>(&top, "options", false)
        .unwrap_or_default();
    let defs: Defs = c
        .section::<BTreeMap<String, Yaml>>(&top, "defs", false)
        .unwrap_or_default()
        .into_iter()
        .collect();
    // Compile every definition once on its own, so errors in unused ones are reported too.
    // In name order, so errors come out in the same order every time.
    let mut names: Vec<&String> = defs.keys().collect();
    names.sort();
    for name in names {
        c.template(&defs[name], &format!("defs.{name}"), &defs);
    }
    let errors_spec = c
        .section::<spec::ErrorsSpec>(&top, "errors", false)
        .unwrap_or_default();
    for (from, to) in &errors_spec.status {
        if !(100..=599).contains(to) {
            c.error(
                &format!("errors.status.{from}"),
                format!("{to} is not an HTTP status (100-599)"),
            );
        }
    }
    let errors = ErrorProgram {
        message: errors_spec
            .message
            .as_ref()
            .map(|y| c.template(y, "errors.message", &defs)),
        kind: errors_spec
            .kind
            .as_ref()
            .map(|y| c.template(y, "errors.type", &defs)),
        code: errors_spec
            .code
            .as_ref()
            .map(|y| c.template(y, "errors.code", &defs)),
        status: errors_spec.status.into_iter().collect(),
    };
    let routes = c
        .section::<BTreeMap<String, Yaml>>(&top, "routes", true)
        .unwrap_or_default();
    if options.only_declared_models && models.is_empty() {
        c.error(
            "options.only_declared_models",
            "needs a `models` list to allow",
        );
    }
    let serves = options.serves.iter().map(|p| glob(p)).collect();
    let pricing = c.pricing(&top);
    let (mut chat, mut completions, mut embeddings, mut model_list) = (None, None, None, None);
    let mut count_tokens = None;
    for (route_name, y) in &routes {
        let at = format!("routes.{route_name}");
        if !ROUTE_NAMES.contains(&route_name.as_str()) {
            c.error(
                &at,
                format!("unknown route (expected one of {})", ROUTE_NAMES.join(", ")),
            );
            continue;
        }
        let spec = match serde_yaml::from_value::<spec::RouteSpec>(y.clone()) {
            Ok(s) => s,
            Err(e) => {
                c.error(&at, e.to_string());
                continue;
            }
        };
        let (op, slot) = match route_name.as_str() {
            "chat" => (Op::Chat, &mut chat),
            "completions" => (Op::Completions, &mut completions),
            "embeddings" => (Op::Embeddings, &mut embeddings),
            "count_tokens" => (Op::CountTokens, &mut count_tokens),
            _ => (Op::Models, &mut model_list),
        };
        *slot = c.route(op, spec, &at, &defs, env);
    }
    if routes.is_empty() && top.contains_key("routes") {
        c.error("routes", "a mapping needs at least one route");
    }
    // A definition used in several places reports its errors once.
    let mut seen = std::collections::HashSet::new();
    c.errors.retain(|e| seen.insert(e.to_string()));
    match (c.errors.is_empty(), upstream) {
        (true, Some(mut upstream)) => {
            upstream.secrets = c.secrets;
            for var in c.missing {
                if !upstream.missing_env.contains(&var) {
                    upstream.missing_env.push(var);
                }
            }
            Ok(Mapping {
                name,
                file: file.to_path_buf(),
                upstream,
                models,
                always_include_usage: options.always_include_usage,
                only_declared_models: options.only_declared_models,
                reject_unsupported: options.unsupported == spec::Unsupported::Reject,
                serves,
                errors,
                chat,
                completions,
                embeddings,
                model_list,
                count_tokens,
                reads_headers: c.vars.contains("headers"),
                reads_client_headers: c.vars.contains("client_headers"),
                pricing,
                sources,
            })
        }
        _ => Err(c.errors),
    }
}

struct Ctx<'a> {
    file: &'a FsPath,
    src: &'a str,
    errors: Vec<LoadError>,
    /// Unset environment variables referenced outside `upstream` (route headers).
    missing: Vec<String>,
    /// Every variable a template reads.
    vars: std::collections::BTreeSet<String>,
    /// Environment values put into headers and queries (see [`Upstream::secrets`]).
    secrets: Vec<String>,
}

impl Ctx<'_> {
    fn error(&mut self, location: &str, message: impl Into<String>) {
        self.errors.push(LoadError {
            file: self.file.to_path_buf(),
            line: spec::locate(self.src, location),
            location: location.to_string(),
            message: message.into(),
        });
    }

    fn section<T: serde::de::DeserializeOwned>(
        &mut self,
        top: &BTreeMap<String, Yaml>,
        key: &str,
        required: bool,
    ) -> Option<T> {
        match top.get(key) {
            None => {
                if required {
                    self.error("", format!("missing required section `{key}`"));
                }
                None
            }
            Some(y) => match serde_yaml::from_value::<T>(y.clone()) {
                Ok(v) => Some(v),
                Err(e) => {
                    self.error(key, e.to_string());
                    None
                }
            },
        }
    }

    fn template(&mut self, y: &Yaml, at: &str, defs: &Defs) -> Expr {
        let mut errs: Vec<CompileError> = Vec::new();
        let e = template::compile(y, at, defs, &mut errs, &mut self.vars);
        for err in errs {
            self.error(&err.at, err.message);
        }
        e
    }

    fn duration(&mut self, raw: &Option<spec::Scalar>, at: &str, default: Duration) -> Duration {
        match raw.as_ref().map(|r| parse_duration(&r.text())) {
            None => default,
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                self.error(at, e);
                default
            }
        }
    }
}
