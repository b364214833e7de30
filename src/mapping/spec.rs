//! The mapping file as written: serde types that mirror the YAML exactly (`deny_unknown_fields`).
//!
//! Templates stay raw YAML here; [`crate::mapping`] compiles them. Each top-level section is
//! deserialized on its own so that an error in one section does not hide errors in another.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_yaml::Value as Yaml;

/// `upstream:`: where requests go.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSpec {
    /// One endpoint; or `endpoints` for several.
    pub base_url: Option<String>,
    #[serde(default)]
    pub endpoints: Vec<EndpointSpec>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub forward_headers: Vec<String>,
    #[serde(default)]
    pub timeouts: TimeoutsSpec,
    #[serde(default)]
    pub retry: RetrySpec,
    #[serde(default)]
    pub health: HealthSpec,
    pub fallback: Option<FallbackSpec>,
    /// Credentials minted at run time (see [`crate::mapping::auth`]).
    pub auth: Option<crate::mapping::auth::AuthSpec>,
    /// How requests are signed: the first alternative whose variables are all set.
    #[serde(default)]
    pub sign: Vec<SignSpec>,
}

/// One alternative of `upstream.sign`: exactly one of its keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignSpec {
    /// `Authorization: Bearer <token>`.
    pub bearer: Option<String>,
    pub sigv4: Option<SigV4Spec>,
}

/// `sigv4:` of `upstream.sign`: Signature Version 4's inputs (each may read `${VAR}`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigV4Spec {
    /// The signing name (the credential scope's service).
    pub service: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Temporary credentials' token; empty or unset sends none.
    pub session_token: Option<String>,
}

/// One entry of `upstream.endpoints`: a base URL, its share of traffic, its own headers.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointSpec {
    pub base_url: String,
    pub weight: Option<u32>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// `upstream.retry:`: retries before the first byte reaches the client.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    /// Tries in all, the first included (1 turns retries off).
    pub attempts: Option<u32>,
    /// Delay before the first retry; doubled for each one after it.
    pub backoff: Option<Scalar>,
    pub max_backoff: Option<Scalar>,
    /// No retry starts later than this after the request began.
    pub budget: Option<Scalar>,
    /// What is retried: `connect`, `timeout`, `429`, `5xx`, or a status such as `503`.
    pub on: Option<Vec<Scalar>>,
}

/// `upstream.health:`: passive health of each endpoint.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSpec {
    /// Consecutive failures that take an endpoint out of rotation.
    pub failures: Option<u32>,
    /// How long it stays out.
    pub cooldown: Option<Scalar>,
}

/// `fallback:` of a mapping or a model: where a call goes when every endpoint failed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FallbackSpec {
    pub mapping: String,
    /// The model to ask the fallback mapping for; the same model when absent.
    pub model: Option<String>,
}

/// `upstream.timeouts:`: durations such as `500ms`, `30s`, `2m`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsSpec {
    pub connect: Option<Scalar>,
    pub first_byte: Option<Scalar>,
    pub idle: Option<Scalar>,
    /// How long an idle pooled connection to the upstream is kept open.
    pub keep_alive: Option<Scalar>,
}

/// A string or a number, read as text (`30` and `"30s"` are both durations).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Text(String),
    Number(f64),
}

impl Scalar {
    pub fn text(&self) -> String {
        match self {
            Scalar::Text(t) => t.clone(),
            Scalar::Number(n) => n.to_string(),
        }
    }
}

/// `options:`: engine behaviour switches for this mapping.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionsSpec {
    /// Emit the usage chunk on every stream, even without `stream_options.include_usage`.
    #[serde(default)]
    pub always_include_usage: bool,
    /// Refuse models that `models` does not declare (404 `model_not_found`).
    #[serde(default)]
    pub only_declared_models: bool,
    /// Glob patterns of model names this mapping serves on the unified `/v1/...` surface.
    #[serde(default)]
    pub serves: Vec<String>,
    /// What to do with a request this mapping cannot translate whole: `drop` (the default:
    /// leave it out, named in `x-rosetta-dropped`) or `reject` (a 400, as `x-rosetta-strict`).
    #[serde(default)]
    pub unsupported: Unsupported,
}

/// `options.unsupported`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unsupported {
    #[default]
    Drop,
    Reject,
}

/// One entry of `models:`: a plain id, or an id with the upstream model it stands for.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ModelSpec {
    Id(String),
    Full(ModelEntry),
}

/// `{id, upstream?, owned_by?}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    pub id: String,
    pub upstream: Option<String>,
    pub owned_by: Option<String>,
    pub fallback: Option<FallbackSpec>,
}

/// `errors:`: how to read an upstream error body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorsSpec {
    pub message: Option<Yaml>,
    #[serde(rename = "type")]
    pub kind: Option<Yaml>,
    pub code: Option<Yaml>,
    #[serde(default)]
    pub status: BTreeMap<u16, u16>,
}

/// One entry of `routes:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    pub method: Option<String>,
    pub path: Yaml,
    #[serde(default)]
    pub rewrite: Vec<RewriteSpec>,
    #[serde(default)]
    pub query: BTreeMap<String, Yaml>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub request: Option<Yaml>,
    pub response: Option<BTreeMap<String, Yaml>>,
    pub stream: Option<StreamSpec>,
    /// Client dialects the upstream speaks itself at this route (`[messages]`).
    #[serde(default)]
    pub native: Vec<String>,
    /// Top-level fields set (a template on the client's request) or, when `null` or absent,
    /// taken out of a native client's body before it goes.
    #[serde(default)]
    pub native_body: BTreeMap<String, Yaml>,
    /// The stop texts (a template on the request) the engine cuts from the answer.
    pub trim_stop: Option<Yaml>,
}

/// `rewrite:` entry: a regex replacement applied to the rendered upstream path.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewriteSpec {
    pub pattern: String,
    pub replace: String,
}

/// `stream:`: framing of the upstream stream and the rules that rewrite its events.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSpec {
    pub framing: String,
    /// Forward the upstream's events verbatim (for upstreams that already speak OpenAI).
    #[serde(default)]
    pub passthrough: bool,
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
}

/// One stream rule: when it applies, what state it updates, what it emits.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    #[serde(default)]
    pub on: OnSpec,
    #[serde(default)]
    pub set: BTreeMap<String, Yaml>,
    #[serde(default)]
    pub incr: Vec<String>,
    #[serde(default)]
    pub emit: BTreeMap<String, Yaml>,
}

/// `on:` of a rule: event name(s) and/or a predicate on the event's JSON.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnSpec {
    pub event: Option<OneOrMany>,
    /// Matches the raw event data exactly, without parsing it (`[DONE]` sentinels).
    pub data: Option<String>,
    #[serde(rename = "if")]
    pub cond: Option<Yaml>,
}

/// A string or a list of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// `pricing:`: what the models of this mapping cost (compiled into [`crate::mapping::pricing::Pricing`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PricingSpec {
    /// A label only; `USD` when absent.
    pub currency: Option<String>,
    /// Refuse a request that has no user identity.
    #[serde(default)]
    pub require_user: bool,
    /// Tried in order; the first entry whose `model` matches wins.
    pub models: Vec<PriceSpec>,
}

/// One entry of `pricing.models`: a model id or glob and its prices, each a number or a
/// decimal string (read exactly, never through a float's rounding).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceSpec {
    pub model: String,
    /// Per million input tokens.
    pub input: Option<Amount>,
    /// Per million cached input tokens; the `input` price when absent.
    pub cached_input: Option<Amount>,
    /// Per million output tokens.
    pub output: Option<Amount>,
    /// Per request.
    pub request: Option<Amount>,
}

pub use crate::mapping::pricing::Amount;

/// The top-level keys a mapping file may have.
pub const TOP_LEVEL_KEYS: &[&str] = &[
    "upstream", "models", "options", "defs", "errors", "routes", "pricing", "include",
];

/// Route names: the OpenAI operations a mapping can serve.
pub const ROUTE_NAMES: &[&str] = &[
    "chat",
    "completions",
    "embeddings",
    "models",
    "count_tokens",
];

/// Keys of a normalized response (`routes.*.response`).
pub const RESPONSE_KEYS: &[&str] = &[
    "content",
    "reasoning",
    "reasoning_signature",
    "tool_calls",
    "finish_reason",
    "usage",
];

/// Keys of a normalized embeddings response (`routes.embeddings.response`).
pub const EMBEDDING_KEYS: &[&str] = &["embeddings", "usage"];

/// Keys of a normalized token count (`routes.count_tokens.response`).
pub const COUNT_KEYS: &[&str] = &["input_tokens"];

/// Keys of a normalized model listing (`routes.models.response`).
pub const MODEL_LIST_KEYS: &[&str] = &["models"];

/// Keys of a stream rule's `emit`.
pub const EMIT_KEYS: &[&str] = &[
    "content",
    "reasoning",
    "reasoning_signature",
    "tool_calls",
    "finish_reason",
    "usage",
    "error",
    "end",
];

/// Finds the 1-based line of a dotted location (`routes.chat.stream.rules[2].emit`) in
/// block-style YAML. Within its parent's block, a key is the shallowest line naming it, and
/// `[n]` steps into the n-th `- ` item; flow-style sections resolve to the nearest enclosing key.
pub fn locate(src: &str, dotted: &str) -> Option<usize> {
    let lines: Vec<&str> = src.lines().collect();
    let indent_of = |l: &str| (l.len() - l.trim_start().len()) as isize;
    let content = |l: &str| {
        let t = l.trim_start();
        !t.is_empty() && !t.starts_with('#')
    };
    // The block searched: lines [from, to), deeper than `parent`.
    let (mut from, mut to, mut parent) = (0usize, lines.len(), -1isize);
    let mut found = None;
    for segment in dotted.split('.') {
        let (key, index) = match segment.split_once('[') {
            Some((k, rest)) => (k, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (segment, None),
        };
        if key.is_empty() {
            continue;
        }
        let block = lines
            .iter()
            .enumerate()
            .take(to)
            .skip(from)
            .filter(|(_, l)| content(l))
            .take_while(|(_, l)| indent_of(l) > parent);
        let mut best: Option<(usize, isize)> = None;
        for (i, line) in block {
            let body = line
                .trim_start()
                .trim_start_matches("- ")
                .trim_start_matches(['"', '\'']);
            let names_key = body
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start_matches(['"', '\'']).starts_with(':'));
            let indent = indent_of(line);
            if names_key && best.is_none_or(|(_, b)| indent < b) {
                best = Some((i, indent));
            }
        }
        let Some((i, indent)) = best else { break };
        found = Some(i + 1);
        from = i + 1;
        to = lines.len();
        parent = indent;
        if let Some(n) = index {
            let items: Vec<(usize, isize)> = lines
                .iter()
                .enumerate()
                .skip(from)
                .filter(|(_, l)| content(l))
                .take_while(|(_, l)| {
                    indent_of(l) > parent
                        || l.trim_start().starts_with("- ") && indent_of(l) == parent
                })
                .filter(|(_, l)| l.trim_start().starts_with("- "))
                .map(|(j, l)| (j, indent_of(l)))
                .collect();
            let Some(shallowest) = items.iter().map(|(_, d)| *d).min() else {
                break;
            };
            let Some((j, d)) = items.into_iter().filter(|(_, d)| *d == shallowest).nth(n) else {
                break;
            };
            found = Some(j + 1);
            // The item: its dash line, then the lines deeper than its dash.
            from = j;
            parent = d - 1;
            to = lines
                .iter()
                .enumerate()
                .skip(j + 1)
                .find(|(_, l)| content(l) && indent_of(l) <= d)
                .map_or(lines.len(), |(k, _)| k);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::locate;

    #[test]
    fn locates_nested_keys() {
        let src = "upstream:\n  base_url: x\nroutes:\n  chat:\n    path: /a\n    request:\n      model: $.model\n";
        assert_eq!(locate(src, "routes.chat.request.model"), Some(7));
        assert_eq!(locate(src, "routes.chat.path"), Some(5));
        assert_eq!(locate(src, "upstream"), Some(1));
        assert_eq!(locate(src, "routes.chat.request.model.$map"), Some(7));
        let nested = "routes:\n  chat:\n    request:\n      stream: $.stream\n    stream:\n      framing: x\n";
        assert_eq!(locate(nested, "routes.chat.stream.framing"), Some(6));
        assert_eq!(locate(nested, "routes.chat.stream"), Some(5));
        let rules = "stream:\n  rules:\n    - on: {event: a}\n      emit: {content: $.x}\n    - on: {event: b}\n    - on: {event: c}\n      emit:\n        content: $.y\n";
        assert_eq!(locate(rules, "stream.rules[0].emit"), Some(4));
        assert_eq!(locate(rules, "stream.rules[1].on"), Some(5));
        assert_eq!(locate(rules, "stream.rules[2].emit.content"), Some(8));
        assert_eq!(locate(rules, "stream.rules[2]"), Some(6));
    }
}
