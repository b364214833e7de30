//! Loading and compiling mapping files into ready-to-run [`Mapping`]s.
//!
//! `load_dir` reads every `*.yaml`/`*.yml` file of a directory, compiles each completely and
//! returns either the whole set or *every* error found, each with file, line and location.

pub mod path;
pub mod pricing;
pub mod spec;
pub mod template;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method, Uri};
use regex::Regex;
use serde_yaml::Value as Yaml;

use pricing::{DEFAULT_CURRENCY, MAX_PRICE_UNITS, Price, Pricing};
use spec::{
    EMBEDDING_KEYS, EMIT_KEYS, MODEL_LIST_KEYS, RESPONSE_KEYS, ROUTE_NAMES, TOP_LEVEL_KEYS,
};
use template::{CompileError, Defs, Expr};

/// Default connect timeout: a healthy upstream accepts within milliseconds.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time to the upstream's response headers. Long prompts on slow models take minutes.
pub const DEFAULT_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(300);
/// Default longest silence between two stream events (thinking models pause for a while).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Default time an idle pooled upstream connection is kept.
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(90);
/// Default tries per request, the first included.
pub const DEFAULT_RETRY_ATTEMPTS: u32 = 3;
/// Default delay before the first retry (doubled for each further one, with jitter).
pub const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_millis(250);
/// Default longest delay between two tries.
pub const DEFAULT_RETRY_MAX_BACKOFF: Duration = Duration::from_secs(4);
/// Default time after the start of a request past which no retry starts.
pub const DEFAULT_RETRY_BUDGET: Duration = Duration::from_secs(30);
/// Default consecutive failures that take an endpoint out of rotation.
pub const DEFAULT_HEALTH_FAILURES: u32 = 3;
/// Default time an endpoint stays out of rotation.
pub const DEFAULT_HEALTH_COOLDOWN: Duration = Duration::from_secs(30);

/// Headers that belong to one connection (RFC 9110 §7.6.1) or that the proxy itself sets:
/// a mapping can never forward them.
pub const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

/// One error in a mapping file.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub location: String,
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if !self.location.is_empty() {
            write!(f, ": {}", self.location)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A compiled mapping: one upstream API.
#[derive(Debug)]
pub struct Mapping {
    pub name: String,
    pub file: PathBuf,
    pub upstream: Upstream,
    pub models: Vec<Model>,
    pub always_include_usage: bool,
    pub only_declared_models: bool,
    /// Model-name patterns served on the unified surface (compiled globs).
    pub serves: Vec<Regex>,
    pub errors: ErrorProgram,
    pub chat: Option<Route>,
    pub completions: Option<Route>,
    pub embeddings: Option<Route>,
    pub model_list: Option<Route>,
    /// Whether some template reads `$headers` / `$client_headers`: the header objects are
    /// built per call only then.
    pub reads_headers: bool,
    pub reads_client_headers: bool,
    /// The request fields some template reads at the top of its focus (`$.NAME`): what
    /// [`Mapping::reads_request_field`] answers from.
    pub read_fields: std::collections::BTreeSet<String>,
    /// What calls cost (`pricing:`); `None`: calls through this mapping are free.
    pub pricing: Option<Pricing>,
}

/// A declared model: the id clients use, and the upstream model it stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub id: String,
    pub upstream: Option<String>,
    pub owned_by: Option<String>,
    /// Where calls for this model go when every endpoint failed (wins over the mapping's).
    pub fallback: Option<Fallback>,
}

/// Another mapping (and model) to use when every endpoint failed before the first byte.
#[derive(Debug, Clone, PartialEq)]
pub struct Fallback {
    pub mapping: String,
    /// The model to ask for; `None` keeps the model of the request.
    pub model: Option<String>,
}

impl From<spec::FallbackSpec> for Fallback {
    fn from(f: spec::FallbackSpec) -> Self {
        Fallback {
            mapping: f.mapping,
            model: f.model,
        }
    }
}

/// The OpenAI operations a mapping can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Chat,
    /// The Responses API: served by the mapping's `chat` route, the request converted to a
    /// chat request first and the answer written in the Responses dialect.
    Responses,
    Completions,
    Embeddings,
    Models,
}

impl Op {
    /// The route name in mapping files, and the metric label.
    pub fn name(self) -> &'static str {
        match self {
            Op::Chat => "chat",
            Op::Responses => "responses",
            Op::Completions => "completions",
            Op::Embeddings => "embeddings",
            Op::Models => "models",
        }
    }
}

impl Mapping {
    /// Whether some template of this mapping reads request field `name` (`$.name...`): a
    /// canonical request field the mapping translates, such as `web_search_options`.
    pub fn reads_request_field(&self, name: &str) -> bool {
        self.read_fields.contains(name)
    }

    /// The route for an operation, if the mapping has one.
    pub fn route(&self, op: Op) -> Option<&Route> {
        match op {
            Op::Chat | Op::Responses => self.chat.as_ref(),
            Op::Completions => self.completions.as_ref(),
            Op::Embeddings => self.embeddings.as_ref(),
            Op::Models => self.model_list.as_ref(),
        }
    }

    /// The fallback for calls of `model`: the model's own, else the mapping's.
    pub fn fallback_for(&self, model: &str) -> Option<&Fallback> {
        self.models
            .iter()
            .find(|m| m.id == model)
            .and_then(|m| m.fallback.as_ref())
            .or(self.upstream.fallback.as_ref())
    }

    /// The upstream model id for a requested one: aliases resolve, and with
    /// `only_declared_models` an undeclared model is refused (`Err` holds the message).
    pub fn resolve_model(&self, requested: &str) -> Result<String, String> {
        match self.models.iter().find(|m| m.id == requested) {
            Some(m) => Ok(m.upstream.clone().unwrap_or_else(|| m.id.clone())),
            None if self.only_declared_models => Err(format!(
                "the model {requested:?} does not exist on mapping {:?}; it serves: {}",
                self.name,
                self.models
                    .iter()
                    .map(|m| m.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            None => Ok(requested.to_string()),
        }
    }

    /// Whether this mapping claims `model` on the unified surface: a declared id or a pattern.
    pub fn serves(&self, model: &str) -> bool {
        self.models.iter().any(|m| m.id == model) || self.serves.iter().any(|p| p.is_match(model))
    }
}

/// Compiles a glob (`claude-*`, `gpt-4?`) into an anchored regex.
pub fn glob(pattern: &str) -> Regex {
    let mut re = String::from("^");
    for c in pattern.chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    Regex::new(&re).expect("an escaped glob is a valid regex")
}

/// Where and how to reach the upstream.
pub struct Upstream {
    /// One or more endpoints, chosen by weight among the healthy ones.
    pub endpoints: Vec<Endpoint>,
    /// Headers sent on every request; values from the environment are marked sensitive.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Client headers copied to the upstream (nothing else is).
    pub forward_headers: Vec<HeaderName>,
    pub connect_timeout: Duration,
    pub first_byte_timeout: Duration,
    pub idle_timeout: Duration,
    /// Idle pooled connections are closed after this long.
    pub keep_alive: Duration,
    pub retry: RetryPolicy,
    pub health: HealthPolicy,
    pub fallback: Option<Fallback>,
    /// Environment variables the mapping references that are unset (for `/health` and logs).
    pub missing_env: Vec<String>,
    /// Values read from the environment into headers and queries: never shown to anyone,
    /// even when an upstream echoes them in an error message.
    pub secrets: Vec<String>,
}

/// One base URL of an upstream.
pub struct Endpoint {
    pub scheme: http::uri::Scheme,
    pub authority: http::uri::Authority,
    /// Path prefix of the base URL, without a trailing `/`.
    pub base_path: String,
    /// Share of the traffic, relative to the other endpoints (at least 1).
    pub weight: u32,
    /// This endpoint's own headers, sent after (and over) the upstream's.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// `scheme://host:port/path`, without credentials: how `/health` and logs name it.
    pub label: String,
}

/// When and how a request is tried again before its first byte reaches the client.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub attempts: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
    pub budget: Duration,
    pub on_connect: bool,
    pub on_timeout: bool,
    pub on_5xx: bool,
    /// Further statuses retried (429 by default).
    pub on_status: Vec<u16>,
}

impl RetryPolicy {
    /// Whether an upstream status is worth another try.
    pub fn retries_status(&self, status: u16) -> bool {
        (self.on_5xx && (500..=599).contains(&status)) || self.on_status.contains(&status)
    }
}

/// Passive health: when an endpoint is taken out of rotation, and for how long.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthPolicy {
    pub failures: u32,
    pub cooldown: Duration,
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values may be secrets: print names only.
        f.debug_struct("Upstream")
            .field(
                "endpoints",
                &self.endpoints.iter().map(|e| &e.label).collect::<Vec<_>>(),
            )
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// How to read upstream error bodies.
#[derive(Debug, Default)]
pub struct ErrorProgram {
    pub message: Option<Expr>,
    pub kind: Option<Expr>,
    pub code: Option<Expr>,
    pub status: HashMap<u16, u16>,
}

/// An OpenAI operation mapped to an upstream call.
#[derive(Debug)]
pub struct Route {
    pub method: Method,
    pub path: Expr,
    pub rewrites: Vec<(Regex, String)>,
    pub query: Vec<(String, Expr)>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub request: Option<Expr>,
    pub response: Fields,
    pub stream: Option<StreamProgram>,
}

/// A fixed set of named output expressions (a normalized response, or a rule's emission).
#[derive(Debug, Default)]
pub struct Fields {
    pub content: Option<Expr>,
    pub reasoning: Option<Expr>,
    pub tool_calls: Option<Expr>,
    pub finish_reason: Option<Expr>,
    pub usage: Option<Expr>,
    pub error: Option<Expr>,
    pub end: Option<Expr>,
    pub embeddings: Option<Expr>,
    pub models: Option<Expr>,
}

/// Upstream stream framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Server-sent events, with or without `event:` names.
    Sse,
    /// One JSON object per line.
    Ndjson,
}

/// A compiled `stream:` section.
#[derive(Debug)]
pub struct StreamProgram {
    pub framing: Framing,
    /// Forward the upstream's bytes unchanged (it already speaks OpenAI).
    pub passthrough: bool,
    pub rules: Vec<Rule>,
}

/// A compiled stream rule.
#[derive(Debug)]
pub struct Rule {
    /// Event names this rule applies to; empty means any.
    pub events: Vec<String>,
    /// Raw event data this rule applies to, compared before any parsing.
    pub data: Option<String>,
    pub cond: Option<Expr>,
    pub set: Vec<(String, Expr)>,
    pub incr: Vec<String>,
    pub emit: Fields,
}

/// Looks up an environment variable; tests pass their own.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

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
    let upstream = match c.section::<spec::UpstreamSpec>(&top, "upstream", true) {
        Some(u) => c.upstream(u, env),
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
                serves,
                errors,
                chat,
                completions,
                embeddings,
                model_list,
                reads_headers: c.vars.contains("headers"),
                reads_client_headers: c.vars.contains("client_headers"),
                read_fields: c
                    .vars
                    .iter()
                    .filter_map(|v| v.strip_prefix("$."))
                    .map(str::to_string)
                    .collect(),
                pricing,
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

    /// `pricing:`: every price read exactly; each error at its entry and key.
    fn pricing(&mut self, top: &BTreeMap<String, Yaml>) -> Option<Pricing> {
        let y = top.get("pricing")?;
        let s = match serde_yaml::from_value::<spec::PricingSpec>(y.clone()) {
            Ok(s) => s,
            Err(e) => {
                let (at, message) = pricing_error_at(y, e.to_string());
                self.error(&at, message);
                return None;
            }
        };
        let before = self.errors.len();
        let currency = s.currency.unwrap_or_else(|| DEFAULT_CURRENCY.to_string());
        if currency.is_empty()
            || currency.chars().count() > 16
            || currency
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            self.error(
                "pricing.currency",
                format!("{currency:?} is not a currency label (1 to 16 characters without spaces, such as USD, EUR or credits)"),
            );
        }
        if s.models.is_empty() {
            self.error(
                "pricing.models",
                "needs at least one price, such as `- {model: \"claude-*\", input: 3, output: 15}`",
            );
        }
        // (entry index, price) of the entries compiled so far, to find unreachable ones.
        let mut prices: Vec<(usize, Price)> = Vec::new();
        for (i, m) in s.models.into_iter().enumerate() {
            let at = format!("pricing.models[{i}]");
            let pattern = m.model.as_str();
            if pattern.is_empty() || pattern.chars().any(|c| c.is_whitespace() || c.is_control()) {
                self.error(
                    &format!("{at}.model"),
                    format!("{pattern:?} is not a model id or pattern (no spaces; `*` and `?` are wildcards)"),
                );
                continue;
            }
            if let Some((j, earlier)) = prices
                .iter()
                .find(|(_, p)| p.pattern == pattern || p.pattern.chars().all(|c| c == '*'))
            {
                self.error(
                    &format!("{at}.model"),
                    format!(
                        "never used: pricing.models[{j}] ({:?}) comes first and matches every model this entry does",
                        earlier.pattern
                    ),
                );
            }
            let mut amount = |key: &str, a: &Option<spec::Amount>| {
                let a = a.as_ref()?;
                match pricing::parse_amount(&a.0, MAX_PRICE_UNITS) {
                    Ok(nano) => Some(nano),
                    Err(e) => {
                        self.error(&format!("{at}.{key}"), format!("invalid price: {e}"));
                        None
                    }
                }
            };
            let input = amount("input", &m.input);
            let cached_input = amount("cached_input", &m.cached_input);
            let output = amount("output", &m.output);
            let request = amount("request", &m.request);
            match (&m.input, &m.output) {
                (Some(_), None) | (None, Some(_)) => self.error(
                    &at,
                    "give both `input` and `output` per million tokens (0 for a side that is free), or neither for a price per request only",
                ),
                (None, None) if m.request.is_none() => self.error(
                    &at,
                    "needs a price: `input` and `output` per million tokens, and/or `request`",
                ),
                _ => {}
            }
            if m.cached_input.is_some() && m.input.is_none() {
                self.error(&format!("{at}.cached_input"), "needs an `input` price too");
            }
            let input = input.unwrap_or(0);
            prices.push((
                i,
                Price::new(
                    pattern,
                    input,
                    cached_input.unwrap_or(input),
                    output.unwrap_or(0),
                    request.unwrap_or(0),
                ),
            ));
        }
        (self.errors.len() == before).then(|| {
            Pricing::new(
                currency,
                s.require_user,
                prices.into_iter().map(|(_, p)| p).collect(),
            )
        })
    }

    fn template(&mut self, y: &Yaml, at: &str, defs: &Defs) -> Expr {
        let mut errs: Vec<CompileError> = Vec::new();
        let e = template::compile(y, at, defs, &mut errs, &mut self.vars);
        for err in errs {
            self.error(&err.at, err.message);
        }
        e
    }

    fn upstream(&mut self, u: spec::UpstreamSpec, env: Env<'_>) -> Option<Upstream> {
        let mut missing = Vec::new();
        let specs: Vec<(String, spec::EndpointSpec)> = match (u.base_url, u.endpoints) {
            (Some(base_url), e) if e.is_empty() => vec![(
                "upstream.base_url".into(),
                spec::EndpointSpec {
                    base_url,
                    weight: None,
                    headers: BTreeMap::new(),
                },
            )],
            (None, e) if !e.is_empty() => e
                .into_iter()
                .enumerate()
                .map(|(i, e)| (format!("upstream.endpoints[{i}]"), e))
                .collect(),
            (Some(_), _) => {
                self.error(
                    "upstream",
                    "give either `base_url` or `endpoints`, not both",
                );
                return None;
            }
            (None, _) => {
                self.error("upstream", "needs a `base_url` or a list of `endpoints`");
                return None;
            }
        };
        let mut endpoints = Vec::new();
        for (at, e) in specs {
            if let Some(endpoint) = self.endpoint(e, &at, env, &mut missing) {
                endpoints.push(endpoint);
            }
        }
        let headers = self.headers(&u.headers, "upstream.headers", env, &mut missing);
        let forward_headers = u
            .forward_headers
            .iter()
            .filter_map(|h| match HeaderName::from_bytes(h.as_bytes()) {
                Ok(n) if HOP_BY_HOP.contains(&n.as_str()) => {
                    self.error(
                        "upstream.forward_headers",
                        format!("{h:?} is a hop-by-hop header and is never forwarded"),
                    );
                    None
                }
                Ok(n) => Some(n),
                Err(_) => {
                    self.error(
                        "upstream.forward_headers",
                        format!("invalid header name {h:?}"),
                    );
                    None
                }
            })
            .collect();
        let t = &u.timeouts;
        let r = &u.retry;
        let retry = RetryPolicy {
            attempts: match r.attempts {
                Some(0) => {
                    self.error(
                        "upstream.retry.attempts",
                        "must be at least 1 (1 = no retry)",
                    );
                    1
                }
                Some(n) => n.min(10),
                None => DEFAULT_RETRY_ATTEMPTS,
            },
            backoff: self.duration(&r.backoff, "upstream.retry.backoff", DEFAULT_RETRY_BACKOFF),
            max_backoff: self.duration(
                &r.max_backoff,
                "upstream.retry.max_backoff",
                DEFAULT_RETRY_MAX_BACKOFF,
            ),
            budget: self.duration(&r.budget, "upstream.retry.budget", DEFAULT_RETRY_BUDGET),
            on_connect: true,
            on_timeout: false,
            on_5xx: true,
            on_status: vec![429],
        };
        let retry = match &r.on {
            None => retry,
            Some(on) => self.retry_on(retry, on),
        };
        let h = &u.health;
        let health = HealthPolicy {
            failures: match h.failures {
                Some(0) => {
                    self.error("upstream.health.failures", "must be at least 1");
                    DEFAULT_HEALTH_FAILURES
                }
                Some(n) => n,
                None => DEFAULT_HEALTH_FAILURES,
            },
            cooldown: self.duration(
                &h.cooldown,
                "upstream.health.cooldown",
                DEFAULT_HEALTH_COOLDOWN,
            ),
        };
        if endpoints.is_empty() {
            return None;
        }
        Some(Upstream {
            endpoints,
            headers,
            forward_headers,
            connect_timeout: self.duration(
                &t.connect,
                "upstream.timeouts.connect",
                DEFAULT_CONNECT_TIMEOUT,
            ),
            first_byte_timeout: self.duration(
                &t.first_byte,
                "upstream.timeouts.first_byte",
                DEFAULT_FIRST_BYTE_TIMEOUT,
            ),
            idle_timeout: self.duration(&t.idle, "upstream.timeouts.idle", DEFAULT_IDLE_TIMEOUT),
            keep_alive: self.duration(
                &t.keep_alive,
                "upstream.timeouts.keep_alive",
                DEFAULT_KEEP_ALIVE,
            ),
            retry,
            health,
            fallback: u.fallback.map(Fallback::from),
            missing_env: missing,
            secrets: Vec::new(),
        })
    }

    /// `retry.on`: `connect`, `timeout`, `5xx`, or single statuses; replaces the defaults.
    fn retry_on(&mut self, mut policy: RetryPolicy, on: &[spec::Scalar]) -> RetryPolicy {
        policy.on_connect = false;
        policy.on_timeout = false;
        policy.on_5xx = false;
        policy.on_status.clear();
        for item in on {
            match item.text().as_str() {
                "connect" => policy.on_connect = true,
                "timeout" => policy.on_timeout = true,
                "5xx" => policy.on_5xx = true,
                t => match t.parse::<u16>() {
                    Ok(s) if (400..=599).contains(&s) => policy.on_status.push(s),
                    _ => self.error(
                        "upstream.retry.on",
                        format!(
                            "unknown retry condition {t:?} (expected connect, timeout, 5xx or a status 400-599)"
                        ),
                    ),
                },
            }
        }
        policy
    }

    /// One endpoint: its URL split into parts, its weight, its own headers.
    fn endpoint(
        &mut self,
        e: spec::EndpointSpec,
        at: &str,
        env: Env<'_>,
        missing: &mut Vec<String>,
    ) -> Option<Endpoint> {
        let url_at = format!("{at}.base_url");
        let base = self.interpolate(&e.base_url, &url_at, env, missing)?;
        let uri: Uri = match base.parse() {
            Ok(uri) => uri,
            Err(e) => {
                self.error(&url_at, format!("invalid URL {base:?}: {e}"));
                return None;
            }
        };
        let (Some(scheme), Some(authority)) = (uri.scheme().cloned(), uri.authority().cloned())
        else {
            self.error(&url_at, format!("{base:?} needs a scheme and a host"));
            return None;
        };
        if uri.query().is_some() {
            self.error(
                &url_at,
                "the base URL cannot have a query string; use `query` in a route",
            );
        }
        if scheme != http::uri::Scheme::HTTP && scheme != http::uri::Scheme::HTTPS {
            self.error(&url_at, "the scheme must be http or https");
        }
        let weight = match e.weight {
            Some(0) => {
                self.error(&format!("{at}.weight"), "must be at least 1");
                1
            }
            Some(w) => w,
            None => 1,
        };
        let headers = self.headers(&e.headers, &format!("{at}.headers"), env, missing);
        let base_path = uri.path().trim_end_matches('/').to_string();
        // Credentials in the URL (`user:pass@host`) never reach /health or the logs.
        let host = authority.as_str().rsplit('@').next().unwrap_or_default();
        Some(Endpoint {
            label: format!("{scheme}://{host}{base_path}"),
            scheme,
            authority,
            base_path,
            weight,
            headers,
        })
    }

    fn headers(
        &mut self,
        spec: &BTreeMap<String, String>,
        at: &str,
        env: Env<'_>,
        missing: &mut Vec<String>,
    ) -> Vec<(HeaderName, HeaderValue)> {
        let mut out = Vec::new();
        for (name, raw) in spec {
            let loc = format!("{at}.{name}");
            let Ok(hn) = HeaderName::from_bytes(name.as_bytes()) else {
                self.error(&loc, format!("invalid header name {name:?}"));
                continue;
            };
            let before = missing.len();
            self.note_secrets(raw, env);
            let Some(value) = self.interpolate(raw, &loc, env, missing) else {
                continue;
            };
            // An unset `${VAR}` (or an empty result) drops the whole header: an optional secret
            // sends nothing rather than `Bearer ` with no token.
            if value.is_empty() || missing.len() > before {
                continue;
            }
            match HeaderValue::from_str(&value) {
                Ok(mut hv) => {
                    hv.set_sensitive(raw.contains("${"));
                    out.push((hn, hv));
                }
                // Never echo the value: it may be a secret.
                Err(_) => self.error(
                    &loc,
                    "the header value contains characters not allowed in HTTP headers",
                ),
            }
        }
        out
    }

    fn interpolate(
        &mut self,
        raw: &str,
        at: &str,
        env: Env<'_>,
        missing: &mut Vec<String>,
    ) -> Option<String> {
        match interpolate_env(raw, env, missing) {
            Ok(s) => Some(s),
            Err(e) => {
                self.error(at, e);
                None
            }
        }
    }

    /// Remembers the environment values `raw` reads, as secrets (header and query values).
    fn note_secrets(&mut self, raw: &str, env: Env<'_>) {
        let seen = std::cell::RefCell::new(Vec::new());
        let capture = |k: &str| {
            let v = env(k);
            if let Some(v) = &v {
                seen.borrow_mut().push(v.clone());
            }
            v
        };
        let _ = interpolate_env(raw, &capture, &mut Vec::new());
        for v in seen.into_inner() {
            // Short values (`1`, `true`, a version) would blank out ordinary words.
            if v.len() >= 8 && !self.secrets.contains(&v) {
                self.secrets.push(v);
            }
        }
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

    fn route(
        &mut self,
        op: Op,
        s: spec::RouteSpec,
        at: &str,
        defs: &Defs,
        env: Env<'_>,
    ) -> Option<Route> {
        let default_method = if op == Op::Models { "GET" } else { "POST" };
        let raw_method = s.method.as_deref().unwrap_or(default_method);
        let method = match Method::from_bytes(raw_method.to_ascii_uppercase().as_bytes()) {
            Ok(m) => m,
            Err(_) => {
                self.error(
                    &format!("{at}.method"),
                    format!("invalid HTTP method {raw_method:?}"),
                );
                Method::POST
            }
        };
        let path = self.template(&s.path, &format!("{at}.path"), defs);
        let rewrites = s
            .rewrite
            .iter()
            .enumerate()
            .filter_map(|(i, r)| match Regex::new(&r.pattern) {
                Ok(re) => Some((re, r.replace.clone())),
                Err(e) => {
                    self.error(&format!("{at}.rewrite[{i}]"), format!("invalid regex: {e}"));
                    None
                }
            })
            .collect();
        let mut missing = Vec::new();
        let query = s
            .query
            .iter()
            .map(|(k, y)| {
                let loc = format!("{at}.query.{k}");
                // A plain string may take `${VAR}` from the environment, as headers do. The result
                // is a constant, never a path; unset, the parameter is left out.
                let e = match y {
                    Yaml::String(raw) if raw.contains("${") => {
                        // A version or a region is not a secret; a `key`, `token`, `sig`...
                        // parameter is (its pieces would blank out dates and words).
                        if crate::ops::trace::secret(k) {
                            self.note_secrets(raw, env);
                        }
                        match self.interpolate(raw, &loc, env, &mut missing) {
                            Some(v) if !v.is_empty() => Expr::Const(serde_json::Value::String(v)),
                            _ => Expr::Coalesce(Vec::new()),
                        }
                    }
                    other => self.template(other, &loc, defs),
                };
                (k.clone(), e)
            })
            .collect();
        let headers = self.headers(&s.headers, &format!("{at}.headers"), env, &mut missing);
        self.missing.append(&mut missing);
        let request = s
            .request
            .as_ref()
            .map(|y| self.template(y, &format!("{at}.request"), defs));
        let keys = match op {
            Op::Chat | Op::Responses | Op::Completions => RESPONSE_KEYS,
            Op::Embeddings => EMBEDDING_KEYS,
            Op::Models => MODEL_LIST_KEYS,
        };
        if s.stream.is_some() && matches!(op, Op::Embeddings | Op::Models) {
            self.error(
                &format!("{at}.stream"),
                "only chat and completions routes stream",
            );
        }
        let response = match &s.response {
            Some(r) => self.fields(r, &format!("{at}.response"), keys, defs),
            None => {
                self.error(at, "a route needs a `response` section");
                Fields::default()
            }
        };
        let stream = s
            .stream
            .map(|st| self.stream(st, &format!("{at}.stream"), defs));
        Some(Route {
            method,
            path,
            rewrites,
            query,
            headers,
            request,
            response,
            stream,
        })
    }

    fn fields(
        &mut self,
        m: &BTreeMap<String, Yaml>,
        at: &str,
        allowed: &[&str],
        defs: &Defs,
    ) -> Fields {
        let mut f = Fields::default();
        for (k, y) in m {
            let loc = format!("{at}.{k}");
            let slot = match k.as_str() {
                "content" => &mut f.content,
                "reasoning" => &mut f.reasoning,
                "tool_calls" => &mut f.tool_calls,
                "finish_reason" => &mut f.finish_reason,
                "usage" => &mut f.usage,
                "error" => &mut f.error,
                "end" => &mut f.end,
                "embeddings" => &mut f.embeddings,
                "models" => &mut f.models,
                _ => {
                    self.error(
                        &loc,
                        format!("unknown field (expected one of {})", allowed.join(", ")),
                    );
                    continue;
                }
            };
            if !allowed.contains(&k.as_str()) {
                self.error(
                    &loc,
                    format!("not allowed here (expected one of {})", allowed.join(", ")),
                );
                continue;
            }
            *slot = Some(self.template(y, &loc, defs));
        }
        f
    }

    fn stream(&mut self, s: spec::StreamSpec, at: &str, defs: &Defs) -> StreamProgram {
        let framing = match s.framing.as_str() {
            "sse" => Framing::Sse,
            "ndjson" => Framing::Ndjson,
            other => {
                self.error(
                    &format!("{at}.framing"),
                    format!("unknown framing {other:?} (expected sse or ndjson)"),
                );
                Framing::Sse
            }
        };
        let rules: Vec<Rule> = s
            .rules
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let rat = format!("{at}.rules[{i}]");
                Rule {
                    events: r
                        .on
                        .event
                        .map(spec::OneOrMany::into_vec)
                        .unwrap_or_default(),
                    data: r.on.data,
                    cond: r
                        .on
                        .cond
                        .as_ref()
                        .map(|y| self.template(y, &format!("{rat}.on.if"), defs)),
                    set: r
                        .set
                        .iter()
                        .map(|(k, y)| {
                            (k.clone(), self.template(y, &format!("{rat}.set.{k}"), defs))
                        })
                        .collect(),
                    incr: r.incr,
                    emit: self.fields(&r.emit, &format!("{rat}.emit"), EMIT_KEYS, defs),
                }
            })
            .collect();
        if s.passthrough && framing != Framing::Sse {
            self.error(
                &format!("{at}.passthrough"),
                "passthrough forwards SSE streams only",
            );
        }
        if s.passthrough && !rules.is_empty() {
            self.error(&format!("{at}.rules"), "a passthrough stream has no rules");
        }
        // A passthrough stream forwards OpenAI chunks to chat clients; clients of another
        // dialect get them read by the engine's own rules for OpenAI chunks.
        let rules = if s.passthrough && rules.is_empty() {
            self.stream(chat_chunks(), CHAT_CHUNKS_AT, &Defs::new())
                .rules
        } else {
            rules
        };
        StreamProgram {
            framing,
            passthrough: s.passthrough,
            rules,
        }
    }
}

/// Where the built-in rules for OpenAI chunks are, in messages.
const CHAT_CHUNKS_AT: &str = "src/dialect/chat_chunks.yaml";

/// The built-in rules that read an upstream's OpenAI chat chunks (`chat_chunks.yaml`).
fn chat_chunks() -> spec::StreamSpec {
    serde_yaml::from_str(include_str!("../dialect/chat_chunks.yaml"))
        .expect("the built-in chat_chunks.yaml is a stream section")
}

/// Where a schema error in `pricing` is: the first entry of `models` that fails on its own
/// (serde's messages carry no position), and the unknown key if that is the problem.
fn pricing_error_at(y: &Yaml, message: String) -> (String, String) {
    let unknown_key = |at: String, message: String| {
        let key = message
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split_once('`'))
            .map(|(k, _)| k.to_string());
        match key {
            Some(k) => (format!("{at}.{k}"), message),
            None => (at, message),
        }
    };
    if let Some(items) = y.get("models").and_then(Yaml::as_sequence) {
        for (i, item) in items.iter().enumerate() {
            if let Err(e) = serde_yaml::from_value::<spec::PriceSpec>(item.clone()) {
                return unknown_key(format!("pricing.models[{i}]"), e.to_string());
            }
        }
    }
    unknown_key("pricing".into(), message)
}

/// Expands `${VAR}`, `${VAR:-default}` and `${VAR:?message}`. Unset variables without a default
/// expand to "" and are listed in `missing`; `:?` makes them an error.
pub fn interpolate_env(
    raw: &str,
    env: Env<'_>,
    missing: &mut Vec<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let body = &rest[start + 2..];
        let end = body
            .find('}')
            .ok_or_else(|| format!("unclosed `${{` in {raw:?}"))?;
        let inner = &body[..end];
        let op_at = inner.find(":-").into_iter().chain(inner.find(":?")).min();
        let (var, op) = match op_at {
            Some(i) => (&inner[..i], Some((&inner[i..i + 2], &inner[i + 2..]))),
            None => (inner, None),
        };
        if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("invalid variable name {var:?}"));
        }
        match (env(var).filter(|v| !v.is_empty()), op) {
            (Some(v), _) => out.push_str(&v),
            (None, Some((":-", default))) => out.push_str(default),
            (None, Some((_, message))) => {
                return Err(format!("environment variable {var} is required: {message}"));
            }
            (None, None) => missing.push(var.to_string()),
        }
        rest = &body[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Parses `250ms`, `30s`, `2m`, `12h`, `30d`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?} (use 500ms, 30s, 2m, 12h or 30d)"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3_600.0,
        "d" => n * 86_400.0,
        _ => {
            return Err(format!(
                "invalid duration unit in {s:?} (use ms, s, m, h or d)"
            ));
        }
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("duration {s:?} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "KEY" => Some("sk-secret".into()),
            "BASE" => Some("http://127.0.0.1:9".into()),
            _ => None,
        }
    }

    #[test]
    fn env_interpolation() {
        let mut missing = Vec::new();
        assert_eq!(
            interpolate_env("${KEY}", &env, &mut missing).unwrap(),
            "sk-secret"
        );
        assert_eq!(
            interpolate_env("${NOPE:-http://x}/v1", &env, &mut missing).unwrap(),
            "http://x/v1"
        );
        assert_eq!(
            interpolate_env("a${NOPE}b", &env, &mut missing).unwrap(),
            "ab"
        );
        assert_eq!(missing, vec!["NOPE".to_string()]);
        assert!(
            interpolate_env("${NOPE:?set it}", &env, &mut missing)
                .unwrap_err()
                .contains("set it")
        );
        assert!(interpolate_env("${bad name}", &env, &mut missing).is_err());
        assert!(
            interpolate_env("${NOPE:?use x:-y}", &env, &mut missing)
                .unwrap_err()
                .contains("use x:-y")
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(
            parse_duration("12h").unwrap(),
            Duration::from_secs(12 * 3_600)
        );
        assert_eq!(
            parse_duration("30d").unwrap(),
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("99999999999999999999999m").is_err());
    }

    const GOOD: &str = "upstream:\n  base_url: ${BASE}/api\n  headers:\n    x-api-key: ${KEY}\nroutes:\n  chat:\n    path: /v1/x\n    request: {model: $.model}\n    response: {content: $.text}\n";

    #[test]
    fn defs_errors_come_in_name_order_and_a_second_document_has_a_line() {
        let src = "upstream: {base_url: \"http://x\"}\ndefs:\n  d: {$nope: 4}\n  a: {$nope: 1}\n  c: {$nope: 3}\n  b: {$nope: 2}\nroutes: {chat: {path: /c, response: {}}}\n";
        let first = compile_file(FsPath::new("m.yaml"), src, &env).unwrap_err();
        let names: Vec<&str> = first.iter().map(|e| e.location.as_str()).collect();
        assert_eq!(
            names,
            [
                "defs.a.$nope",
                "defs.b.$nope",
                "defs.c.$nope",
                "defs.d.$nope"
            ]
        );
        for _ in 0..5 {
            assert_eq!(
                compile_file(FsPath::new("m.yaml"), src, &env).unwrap_err(),
                first
            );
        }
        let two = "# two documents\nupstream: {base_url: \"http://x\"}\n---\nroutes: {}\n";
        let e = compile_file(FsPath::new("m.yaml"), two, &env).unwrap_err();
        assert_eq!(e[0].line, Some(3), "{e:?}");
        let empty_key = "upstream: {base_url: \"http://x\"}\n\"\": 1\nroutes: {chat: {path: /c, response: {}}}\n";
        let e = compile_file(FsPath::new("m.yaml"), empty_key, &env).unwrap_err();
        assert_eq!(e[0].location, "\"\"", "{e:?}");
        let ended = "upstream: {base_url: \"http://x\"}\n...\n# next\nroutes: {}\n";
        let e = compile_file(FsPath::new("m.yaml"), ended, &env).unwrap_err();
        assert_eq!(e[0].line, Some(4), "{e:?}");
    }

    #[test]
    fn a_definition_that_multiplies_is_refused_quickly() {
        let src = "upstream: {base_url: \"http://x\"}\ndefs:\n  a: [{$use: a}, {$use: a}, {$use: a}]\nroutes: {chat: {path: /c, response: {content: {$use: a}}}}\n";
        let t = std::time::Instant::now();
        let errors = compile_file(FsPath::new("m.yaml"), src, &env).unwrap_err();
        assert!(
            t.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            t.elapsed()
        );
        assert!(
            errors.iter().any(|e| e.message.contains("$use copies")),
            "{errors:?}"
        );
    }

    #[test]
    fn compiles_a_minimal_mapping() {
        let m = compile_file(FsPath::new("mappings/demo.yaml"), GOOD, &env).unwrap();
        assert_eq!(m.name, "demo");
        assert_eq!(m.upstream.endpoints[0].base_path, "/api");
        assert!(m.upstream.headers[0].1.is_sensitive());
        assert!(!format!("{m:?}").contains("sk-secret"));
    }

    #[test]
    fn reports_every_error_with_file_and_line() {
        let bad = "upstream:\n  base_url: nope\nroutes:\n  chat:\n    path: /v1/x\n    request:\n      a: {$summ: [1]}\n      b: \"$.[\"\n    response: {content: $.t, colour: red}\n    stream: {framing: xml}\n  speech: {}\nextra: 1\n";
        let errs = compile_file(FsPath::new("mappings/bad.yaml"), bad, &env).unwrap_err();
        let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        let all = text.join("\n");
        assert!(
            all.contains("mappings/bad.yaml:7: routes.chat.request.a.$summ: unknown directive"),
            "{all}"
        );
        assert!(
            all.contains("mappings/bad.yaml:8: routes.chat.request.b: invalid JSONPath"),
            "{all}"
        );
        assert!(
            all.contains("routes.chat.response.colour: unknown field"),
            "{all}"
        );
        assert!(
            all.contains("routes.chat.stream.framing: unknown framing"),
            "{all}"
        );
        assert!(all.contains("routes.speech: unknown route"), "{all}");
        assert!(all.contains("extra: unknown top-level key"), "{all}");
        assert!(all.contains("upstream.base_url"), "{all}");
        assert!(errs.len() >= 7, "{all}");
    }

    #[test]
    fn defs_route_env_statuses_and_bare_durations() {
        let src = "upstream:\n  base_url: http://x\n  timeouts: {idle: 30}\ndefs:\n  unused: {$nope: 1}\n  used: {$nope2: 1}\nerrors:\n  status: {529: 5030}\nroutes:\n  chat:\n    path: /\n    headers: {x-k: \"${ROUTE_KEY}\"}\n    request: {a: {$use: used}, b: {$use: used}}\n    response: {}\n";
        let all: Vec<String> = compile_file(FsPath::new("m.yaml"), src, &env)
            .unwrap_err()
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert!(
            all.iter()
                .any(|e| e.contains("defs.unused.$nope: unknown directive")),
            "{all:?}"
        );
        assert_eq!(
            all.iter().filter(|e| e.contains("$nope2")).count(),
            1,
            "{all:?}"
        );
        assert!(
            all.iter()
                .any(|e| e.contains("errors.status.529: 5030 is not an HTTP status")),
            "{all:?}"
        );
        assert_eq!(all.len(), 3, "{all:?}");
        let ok = "upstream:\n  base_url: http://x\n  timeouts: {idle: 30}\nroutes:\n  chat:\n    path: /\n    headers: {x-k: \"${ROUTE_KEY}\"}\n    response: {}\n";
        let m = compile_file(FsPath::new("m.yaml"), ok, &env).unwrap();
        assert_eq!(m.upstream.idle_timeout, Duration::from_secs(30));
        assert_eq!(m.upstream.missing_env, vec!["ROUTE_KEY".to_string()]);
    }

    #[test]
    fn header_objects_are_built_only_for_mappings_that_read_them() {
        let read = |request: &str, content: &str| {
            let src = format!(
                "upstream:\n  base_url: http://x\ndefs:\n  who: {request}\nroutes:\n  chat:\n    path: /\n    request: {{u: {{$use: who}}}}\n    response: {{content: {content}}}\n"
            );
            let m = compile_file(FsPath::new("m.yaml"), &src, &env).unwrap();
            (m.reads_headers, m.reads_client_headers)
        };
        assert_eq!(read("$.user", "$.text"), (false, false));
        assert_eq!(
            read("\"$client_headers['x-user-id']\"", "\"$headers['x-t']\""),
            (true, true)
        );
        assert_eq!(read("{$var: client_headers}", "$.text"), (false, true));
    }

    #[test]
    fn headers_with_an_unset_variable_are_not_sent() {
        let src = "upstream:\n  base_url: http://x\n  headers:\n    authorization: Bearer ${UNSET}\n    x-key: ${KEY}\n    x-opt: Bearer ${UNSET:-}\nroutes:\n  chat: {path: /, response: {}}\n";
        let m = compile_file(FsPath::new("m.yaml"), src, &env).unwrap();
        let sent: Vec<(String, String)> = m
            .upstream
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        assert_eq!(
            sent,
            vec![
                ("x-key".to_string(), "sk-secret".to_string()),
                ("x-opt".to_string(), "Bearer ".to_string()),
            ]
        );
    }

    #[test]
    fn query_values_take_the_environment() {
        let src = "upstream:\n  base_url: http://x\nroutes:\n  chat:\n    path: /\n    query: {v: \"${NOPE:-2024-10-21}\", k: \"${KEY}\", m: $.model, u: \"${UNSET}\"}\n    response: {}\n";
        let m = compile_file(FsPath::new("m.yaml"), src, &env).unwrap();
        let q = &m.chat.as_ref().unwrap().query;
        let text: Vec<String> = q.iter().map(|(k, e)| format!("{k}={e:?}")).collect();
        assert!(
            text.iter()
                .any(|t| t.starts_with("v=Const(String(\"2024-10-21\"))")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("k=Const(String(\"sk-secret\"))")),
            "{text:?}"
        );
        assert!(text.iter().any(|t| t.starts_with("m=Path")), "{text:?}");
        assert!(
            text.iter().any(|t| t == "u=Coalesce([])"),
            "an unset variable leaves the parameter out: {text:?}"
        );
        assert_eq!(m.upstream.missing_env, vec!["UNSET".to_string()]);
    }

    const ROUTES: &str =
        "upstream: {base_url: \"http://x\"}\nroutes:\n  chat: {path: /, response: {}}\n";

    #[test]
    fn pricing_compiles_exact_prices_in_order() {
        let src = format!(
            "{ROUTES}pricing:\n  currency: EUR\n  require_user: true\n  models:\n    - model: claude-sonnet-4-5*\n      input: 3.00\n      cached_input: 0.30\n      output: 15\n    - {{model: \"gemini-*\", input: 0.075, output: \"0.30\", request: 0.001}}\n    - {{model: per-call, request: 0.02}}\n"
        );
        let m = compile_file(FsPath::new("m.yaml"), &src, &env).unwrap();
        let p = m.pricing.as_ref().unwrap();
        assert_eq!(p.currency, "EUR");
        assert!(p.require_user);
        let sonnet = p.price("claude-sonnet-4-5-20250929", "x").unwrap();
        assert_eq!(
            (
                sonnet.input_nano,
                sonnet.cached_input_nano,
                sonnet.output_nano,
                sonnet.request_nano
            ),
            (3_000_000_000, 300_000_000, 15_000_000_000, 0)
        );
        let gemini = p.price("gemini-2.0-flash", "x").unwrap();
        assert_eq!(
            (
                gemini.input_nano,
                gemini.cached_input_nano,
                gemini.output_nano,
                gemini.request_nano
            ),
            (75_000_000, 75_000_000, 300_000_000, 1_000_000),
            "cached_input defaults to input"
        );
        let call = p.price("per-call", "per-call").unwrap();
        assert_eq!(
            (call.input_nano, call.output_nano, call.hold_cost()),
            (0, 0, 20_000_000)
        );
        assert_eq!(p.label("mistral", "mistral"), "other");
        let plain =
            format!("{ROUTES}pricing:\n  models: [{{model: \"*\", input: 1, output: 2}}]\n");
        let m = compile_file(FsPath::new("m.yaml"), &plain, &env).unwrap();
        let p = m.pricing.unwrap();
        assert_eq!((p.currency.as_str(), p.require_user), ("USD", false));
        assert!(
            compile_file(FsPath::new("m.yaml"), ROUTES, &env)
                .unwrap()
                .pricing
                .is_none()
        );
    }

    #[test]
    fn pricing_errors_have_file_and_line() {
        let errors = |pricing: &str| -> Vec<String> {
            let src = format!("{ROUTES}pricing:\n{pricing}");
            compile_file(FsPath::new("mappings/p.yaml"), &src, &env)
                .unwrap_err()
                .iter()
                .map(|e| e.to_string())
                .collect()
        };
        let e = errors(
            "  models:\n    - model: a\n      input: 1\n      output: 2\n    - model: b\n      inptu: 1\n      output: 2\n",
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("mappings/p.yaml:10: pricing.models[1].inptu: unknown field `inptu`"),
            "{e:?}"
        );
        let e = errors("  currency: USD\n  colour: red\n  models: [{model: a, request: 1}]\n");
        assert!(
            e[0].starts_with("mappings/p.yaml:6: pricing.colour: unknown field `colour`"),
            "{e:?}"
        );
        let e = errors(
            "  models:\n    - model: a\n      input: -3\n      output: 0.0000000001\n      request: .nan\n",
        );
        assert_eq!(
            e,
            [
                "mappings/p.yaml:7: pricing.models[0].input: invalid price: must not be negative (got -3)",
                "mappings/p.yaml:8: pricing.models[0].output: invalid price: 0.0000000001 has more than 9 decimal places (amounts are kept in units of 10^-9)",
                "mappings/p.yaml:9: pricing.models[0].request: invalid price: is not a number",
            ]
        );
        let e = errors("  models:\n    - model: a\n      input: 1000001\n      output: 1\n");
        assert!(
            e[0].starts_with(
                "mappings/p.yaml:7: pricing.models[0].input: invalid price: 1000001 is too large"
            ),
            "{e:?}"
        );
        let e = errors("  models: []\n");
        assert!(
            e[0].starts_with("mappings/p.yaml:5: pricing.models: needs at least one price"),
            "{e:?}"
        );
        let e = errors(
            "  models:\n    - model: \"claude 4\"\n      request: 1\n    - model: \"\"\n      request: 1\n",
        );
        assert!(e[0].starts_with("mappings/p.yaml:6: pricing.models[0].model: \"claude 4\" is not a model id or pattern"), "{e:?}");
        assert!(
            e[1].starts_with("mappings/p.yaml:8: pricing.models[1].model: \"\" is not a model id"),
            "{e:?}"
        );
        let e = errors(
            "  models:\n    - model: \"*\"\n      request: 1\n    - model: a\n      request: 1\n",
        );
        assert!(e[0].starts_with("mappings/p.yaml:8: pricing.models[1].model: never used: pricing.models[0] (\"*\") comes first"), "{e:?}");
        let e = errors(
            "  models:\n    - model: a\n      input: 1\n    - model: b\n      cached_input: 1\n      request: 1\n    - model: c\n",
        );
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(
            e[0].starts_with(
                "mappings/p.yaml:6: pricing.models[0]: give both `input` and `output`"
            ),
            "{e:?}"
        );
        assert!(
            e[1].starts_with(
                "mappings/p.yaml:9: pricing.models[1].cached_input: needs an `input` price"
            ),
            "{e:?}"
        );
        assert!(
            e[2].starts_with("mappings/p.yaml:11: pricing.models[2]: needs a price"),
            "{e:?}"
        );
        let e = errors("  currency: US Dollar\n  models: [{model: a, request: 1}]\n");
        assert!(
            e[0].starts_with(
                "mappings/p.yaml:5: pricing.currency: \"US Dollar\" is not a currency label"
            ),
            "{e:?}"
        );
        let e = errors("  require_user: maybe\n  models: [{model: a, request: 1}]\n");
        assert!(
            e[0].starts_with("mappings/p.yaml:4: pricing: invalid type"),
            "{e:?}"
        );
        let e = errors("  models:\n    - {model: a, input: [1], output: 1}\n");
        assert!(
            e[0].starts_with(
                "mappings/p.yaml:6: pricing.models[0]: invalid type: sequence, expected an amount"
            ),
            "{e:?}"
        );
    }

    #[test]
    fn every_mapping_prices_in_one_currency() {
        let dir = std::env::temp_dir().join(format!("rosetta-pricing-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let priced = |currency: &str| {
            format!(
                "{ROUTES}pricing:\n  currency: {currency}\n  models: [{{model: \"*\", request: 1}}]\n"
            )
        };
        std::fs::write(dir.join("a.yaml"), priced("USD")).unwrap();
        std::fs::write(dir.join("b.yaml"), ROUTES).unwrap();
        std::fs::write(dir.join("c.yaml"), priced("USD")).unwrap();
        assert_eq!(load_dir(&dir, &env).unwrap().len(), 3);
        std::fs::write(dir.join("c.yaml"), priced("EUR")).unwrap();
        let e = load_dir(&dir, &env).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(e.len(), 1, "{e:?}");
        let text = e[0].to_string();
        assert!(
            text.contains("c.yaml:5: pricing.currency: prices are in EUR here but in USD in "),
            "{text}"
        );
    }

    #[test]
    fn secrets_never_appear_in_errors() {
        let bad = "upstream:\n  base_url: http://x\n  headers:\n    x-api-key: \"${KEY}\\n\"\nroutes:\n  chat: {path: /, response: {}}\n";
        let errs = compile_file(FsPath::new("m.yaml"), bad, &env).unwrap_err();
        let all: String = errs.iter().map(|e| e.to_string()).collect();
        assert!(all.contains("x-api-key"), "{all}");
        assert!(!all.contains("sk-secret"), "{all}");
    }
}
