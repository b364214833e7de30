//! The mapping language: load → compile → run.
//!
//! A mapping file (`mappings/NAME.yaml`) is read into [`spec`] (which mirrors the YAML), then
//! compiled ([`compile`]) into the runtime types of this module: a [`Mapping`] with its
//! [`Upstream`], [`Route`]s, [`template`] expressions (over [`path`]s) and [`StreamProgram`]s,
//! every JSONPath and regex compiled once. [`load_dir`] loads a whole directory and reports
//! *every* error found, each with file, line and location. [`pricing`] prices a call.

pub mod auth;
pub mod compile;
pub mod glob;
pub mod include;
pub mod load;
pub mod path;
pub mod pricing;
pub mod reads;
pub mod spec;
pub mod template;

pub use compile::compile_file;
pub use glob::glob;
pub use load::load_dir;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};
use regex::Regex;

use pricing::Pricing;
use template::Expr;

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
    /// `options.unsupported: reject`: a request this mapping cannot translate whole is
    /// refused, as under `x-rosetta-strict`.
    pub reject_unsupported: bool,
    /// Model-name patterns served on the unified surface (compiled globs).
    pub serves: Vec<Regex>,
    pub errors: ErrorProgram,
    pub chat: Option<Route>,
    pub completions: Option<Route>,
    pub embeddings: Option<Route>,
    pub model_list: Option<Route>,
    /// The upstream's own count of a Messages request's input tokens (`routes.count_tokens`).
    pub count_tokens: Option<Route>,
    /// Whether some template reads `$headers` / `$client_headers`: the header objects are
    /// built per call only then.
    pub reads_headers: bool,
    pub reads_client_headers: bool,
    /// What calls cost (`pricing:`); `None`: calls through this mapping are free.
    pub pricing: Option<Pricing>,
    /// Files besides `file` that this mapping was compiled from (includes, key files): a
    /// reload also looks at them for changes.
    pub sources: Vec<PathBuf>,
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
    /// The Messages API: served by the mapping's `chat` route, the request converted to a
    /// chat request first and the answer written in the Messages dialect; or passed through
    /// unchanged when the route declares the dialect `native` ([`Route::native`]).
    Messages,
    /// `POST .../v1/messages/count_tokens`: the input tokens of a Messages request, from the
    /// mapping's `count_tokens` route where it has one, otherwise estimated.
    CountTokens,
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
            Op::Messages => "messages",
            Op::CountTokens => "count_tokens",
        }
    }
}

/// An operation is its route's metric label: its position among the labels of
/// [`crate::ops::handles::ROUTES`] (the order of `Op`'s variants).
impl crate::ops::handles::RouteLabel for Op {
    fn index(self) -> usize {
        self as usize
    }
}

impl Mapping {
    /// The route for an operation, if the mapping has one.
    pub fn route(&self, op: Op) -> Option<&Route> {
        match op {
            Op::Chat | Op::Responses | Op::Messages => self.chat.as_ref(),
            Op::Completions => self.completions.as_ref(),
            Op::Embeddings => self.embeddings.as_ref(),
            Op::Models => self.model_list.as_ref(),
            Op::CountTokens => self.count_tokens.as_ref(),
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
    /// Bearer tokens minted for every request (`upstream.auth`), cached and refreshed.
    pub token: Option<std::sync::Arc<crate::upstream::token::TokenSource>>,
    /// How each request is signed once rendered (`upstream.sign`).
    pub signing: crate::upstream::sign::Signing,
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
    /// The client dialects this route's upstream speaks itself (`native:`): a client of one
    /// of them is passed through, its request as it is (but the model) and the upstream's
    /// answer unchanged.
    pub native: Vec<String>,
    /// `native_body`: top-level fields of a native client's body, each set to its template's
    /// value or, when that is absent, taken out.
    pub native_body: Vec<(String, Option<Expr>)>,
    /// `trim_stop`: the stop texts cut from the end of the answer (evaluated on the request).
    pub trim_stop: Option<Expr>,
    /// What this route's templates read of the client's request.
    pub reads: reads::Node,
}

impl Route {
    /// Whether this route's upstream speaks the client dialect `dialect` itself.
    pub fn speaks(&self, dialect: &str) -> bool {
        self.native.iter().any(|d| d == dialect)
    }
}

/// A fixed set of named output expressions (a normalized response, or a rule's emission).
#[derive(Debug, Default)]
pub struct Fields {
    pub content: Option<Expr>,
    pub reasoning: Option<Expr>,
    /// The opaque signature of the reasoning, which the upstream wants back with it.
    pub reasoning_signature: Option<Expr>,
    pub tool_calls: Option<Expr>,
    pub finish_reason: Option<Expr>,
    pub usage: Option<Expr>,
    pub error: Option<Expr>,
    pub end: Option<Expr>,
    pub embeddings: Option<Expr>,
    pub models: Option<Expr>,
    /// A token count (`routes.count_tokens.response`).
    pub input_tokens: Option<Expr>,
}

/// Upstream stream framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Server-sent events, with or without `event:` names.
    Sse,
    /// One JSON object per line.
    Ndjson,
    /// Binary event-stream messages, named by their `:event-type` header.
    EventStream,
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

#[cfg(test)]
mod route_label_tests {
    use super::Op;
    use crate::ops::handles::{ROUTES, RouteLabel};

    #[test]
    fn every_op_is_its_route_label() {
        let ops = [
            Op::Chat,
            Op::Responses,
            Op::Completions,
            Op::Embeddings,
            Op::Models,
            Op::Messages,
            Op::CountTokens,
        ];
        assert_eq!(ops.len(), ROUTES.len());
        for op in ops {
            assert_eq!(ROUTES[op.index()], op.name(), "{op:?}");
        }
    }
}
