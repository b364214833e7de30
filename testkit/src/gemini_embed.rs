//! The fake Gemini's `:embedContent`, `:batchEmbedContents` and `GET /v1beta/models` (list and get).

use serde_json::{Map, Value, json};

use crate::gemini::json_reply;
use crate::gemini_parts::content;
use crate::gemini_validate::{Errors, enumeration, get, int, join, list, message, string};
use crate::reply::Reply;

const EMBED: &[&str] = &[
    "model",
    "content",
    "taskType",
    "title",
    "outputDimensionality",
];
const TASK_TYPES: &[&str] = &[
    "TASK_TYPE_UNSPECIFIED",
    "RETRIEVAL_QUERY",
    "RETRIEVAL_DOCUMENT",
    "SEMANTIC_SIMILARITY",
    "CLASSIFICATION",
    "CLUSTERING",
    "QUESTION_ANSWERING",
    "FACT_VERIFICATION",
    "CODE_RETRIEVAL_QUERY",
];
/// Length of the fake embeddings unless the request asks for another.
pub(crate) const DEFAULT_DIMENSIONS: usize = 8;

/// A deterministic, unit-free "embedding" of `text` with `dims` components in [-0.1, 0.1].
pub(crate) fn vector(text: &str, dims: usize) -> Vec<f64> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (0..dims)
        .map(|i| {
            let mut z = h.wrapping_add((i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            let raw = ((z >> 11) & 0xffff) as f64 / 65_535.0 * 0.2 - 0.1;
            (raw * 10_000.0).round() / 10_000.0
        })
        .collect()
}

/// One `EmbedContentRequest` checked at `path`; `Some((text, dims))` when valid so far.
fn embed_request(e: &mut Errors, path: &str, v: &Value) -> Option<(String, usize)> {
    let r = message(e, path, v, "EmbedContentRequest", EMBED)?;
    let at = |name: &str| join(path, name);
    let text = match get(r, "content") {
        Some(c) => {
            content(e, &at("content"), c);
            c.get("parts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|p| p.get("text")?.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        }
        None => {
            e.field(&at("content"), "content is not specified");
            String::new()
        }
    };
    if let Some(t) = get(r, "taskType") {
        enumeration(e, &at("taskType"), t, "TaskType", TASK_TYPES);
    }
    if let Some(t) = get(r, "title") {
        string(e, &at("title"), t);
    }
    let mut dims = DEFAULT_DIMENSIONS;
    if let Some(d) = get(r, "outputDimensionality") {
        match int(e, &at("outputDimensionality"), d) {
            Some(n @ 1..=3072) => dims = n as usize,
            Some(_) => e.field(
                &at("outputDimensionality"),
                "must be in the range [1, 3072]",
            ),
            None => {}
        }
    }
    Some((text, dims))
}

fn values(text: &str, dims: usize) -> Value {
    json!({ "values": vector(text, dims) })
}

pub(crate) fn embed_content(body: &Map<String, Value>, _model: &str) -> Reply {
    let mut e = Errors::new("EmbedContentRequest");
    let parsed = embed_request(&mut e, "", &Value::Object(body.clone()));
    if let Some(reply) = e.reply() {
        return reply;
    }
    let (text, dims) = parsed.unwrap_or_default();
    json_reply(200, &json!({ "embedding": values(&text, dims) }))
}

pub(crate) fn batch_embed(body: &Map<String, Value>, model: &str) -> Reply {
    let mut e = Errors::new("BatchEmbedContentsRequest");
    e.fields("", body, &["requests"]);
    let requests = get(body, "requests").map_or(&[][..], |v| {
        list(&mut e, "requests", v, "EmbedContentRequest")
    });
    if requests.is_empty() {
        e.field("requests", "requests is not specified");
    }
    let mut out = Vec::new();
    for (i, r) in requests.iter().enumerate() {
        let path = format!("requests[{i}]");
        let Some((text, dims)) = embed_request(&mut e, &path, r) else {
            continue;
        };
        match r.get("model").and_then(Value::as_str) {
            None => e.field(&format!("{path}.model"), "model is not specified"),
            Some(m) if !m.starts_with("models/") => {
                e.field(&format!("{path}.model"), "unexpected model name format")
            }
            Some(m) if m != format!("models/{model}") => e.field(
                &format!("{path}.model"),
                &format!("model '{m}' does not match the model in the URL 'models/{model}'"),
            ),
            Some(_) => {}
        }
        out.push(values(&text, dims));
    }
    match e.reply() {
        Some(reply) => reply,
        None => json_reply(200, &json!({ "embeddings": out })),
    }
}

fn model_entry(
    name: &str,
    display: &str,
    methods: &[&str],
    input: u64,
    output: u64,
    thinking: bool,
) -> Value {
    let mut m = json!({
        "name": format!("models/{name}"), "version": "001", "displayName": display,
        "description": format!("{display} (fake)"), "inputTokenLimit": input, "outputTokenLimit": output,
        "supportedGenerationMethods": methods,
    });
    if !methods.contains(&"embedContent") {
        m["temperature"] = json!(1);
        m["topP"] = json!(0.95);
        m["topK"] = json!(64);
        m["maxTemperature"] = json!(2);
        m["thinking"] = json!(thinking);
    }
    m
}

pub(crate) fn models() -> Value {
    let generate = [
        "generateContent",
        "countTokens",
        "createCachedContent",
        "batchGenerateContent",
    ];
    json!({"models": [
        model_entry("gemini-2.5-flash", "Gemini 2.5 Flash", &generate, 1_048_576, 65_536, true),
        model_entry("gemini-2.5-pro", "Gemini 2.5 Pro", &generate, 1_048_576, 65_536, true),
        model_entry("gemini-2.0-flash", "Gemini 2.0 Flash", &generate, 1_048_576, 8_192, false),
        model_entry("gemini-embedding-001", "Gemini Embedding 001",
                    &["embedContent", "countTextTokens", "countTokens", "asyncBatchEmbedContent"], 2_048, 1, false),
    ]})
}

/// `GET /v1beta/models/{name}`: one entry of the list.
pub(crate) fn model_info(name: &str) -> Option<Value> {
    let full = format!("models/{}", name.trim_start_matches("models/"));
    models()["models"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == full.as_str())
        .cloned()
}
