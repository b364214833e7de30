//! The fake Azure OpenAI (classic, versioned): deployment routes, `api-key`, `api-version`, Azure's error bodies.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::common::Ids;
use crate::openai_compat::{chat, parse_body};
use crate::openai_compat_chat::Flavor;
use crate::openai_compat_extra::{completions, embeddings};
use crate::openai_compat_validate::{Invalid, invalid_type};
use crate::reply::Reply;
use crate::server::{Handler, Recorded};

/// What the deployments "run" (Azure answers with the model, not the deployment name).
const CHAT_MODEL: &str = "gpt-4o-2024-08-06";
const EMBEDDING_MODEL: &str = "text-embedding-3-small";
const COMPLETION_MODEL: &str = "gpt-35-turbo-instruct";

/// Body fields Azure knows; anything else is "Unrecognized request argument supplied".
const CHAT_FIELDS: &[&str] = &[
    "model",
    "messages",
    "stream",
    "stream_options",
    "max_tokens",
    "max_completion_tokens",
    "n",
    "temperature",
    "top_p",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "logprobs",
    "top_logprobs",
    "logit_bias",
    "response_format",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "user",
    "functions",
    "function_call",
    "metadata",
    "store",
    "modalities",
    "audio",
    "prediction",
    "reasoning_effort",
    "service_tier",
    "verbosity",
    "web_search_options",
    "prompt_cache_key",
    "safety_identifier",
    "data_sources",
    "user_security_context",
];
const EMBEDDING_FIELDS: &[&str] = &[
    "model",
    "input",
    "encoding_format",
    "dimensions",
    "user",
    "input_type",
];
const COMPLETION_FIELDS: &[&str] = &[
    "model",
    "prompt",
    "max_tokens",
    "temperature",
    "top_p",
    "n",
    "stream",
    "stream_options",
    "logprobs",
    "echo",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "best_of",
    "logit_bias",
    "seed",
    "suffix",
    "user",
];

pub(crate) fn handler(key: Option<String>) -> Handler {
    let ids = Arc::new(Ids::default());
    Arc::new(move |req: &Recorded| {
        let hex = |n| ids.next(b"0123456789abcdef", n);
        let request_id = format!("{}-{}-{}-{}-{}", hex(8), hex(4), hex(4), hex(4), hex(12));
        route(req, key.as_deref(), &ids)
            .header("apim-request-id", request_id.clone())
            .header("x-request-id", request_id)
            .header("x-ms-region", "East US")
    })
}

/// Azure's own error body: `{"error": {"code", "message"}}`.
fn azure_error(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(status, json!({"error": {"code": code, "message": message}}))
}

fn resource_not_found() -> Reply {
    // Byte for byte what Azure sends (note the space after the second colon).
    Reply::raw(
        404,
        "application/json",
        r#"{"error":{"code":"404","message": "Resource not found"}}"#,
    )
}

/// `YYYY-MM-DD` or `YYYY-MM-DD-preview`, no older than the first chat-capable GA version.
fn supported_version(v: &str) -> bool {
    let date = v.strip_suffix("-preview").unwrap_or(v);
    let parts: Vec<&str> = date.split('-').collect();
    let well_formed = parts.len() == 3
        && [4, 2, 2]
            .iter()
            .zip(&parts)
            .all(|(n, p)| p.len() == *n && p.bytes().all(|b| b.is_ascii_digit()))
        && (1..=12).contains(&parts[1].parse::<u8>().unwrap_or(0))
        && (1..=31).contains(&parts[2].parse::<u8>().unwrap_or(0));
    well_formed && date >= "2023-05-15"
}

fn route(req: &Recorded, key: Option<&str>, ids: &Ids) -> Reply {
    let rest = req
        .path_only()
        .strip_prefix("/openai/deployments/")
        .unwrap_or_default();
    let (deployment, operation) = rest.split_once('/').unwrap_or(("", ""));
    let fields = match operation {
        "chat/completions" => CHAT_FIELDS,
        "embeddings" => EMBEDDING_FIELDS,
        "completions" => COMPLETION_FIELDS,
        _ => return resource_not_found(),
    };
    if deployment.is_empty() || req.method != "POST" {
        return resource_not_found();
    }
    let query = req.path.split_once('?').map_or("", |(_, q)| q);
    let version = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("api-version="))
        .unwrap_or_default()
        .to_string();
    if version.is_empty() {
        return resource_not_found();
    }
    match (req.header("api-key").map(str::trim), key) {
        (None | Some(""), _) => {
            let msg = "Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API.";
            return azure_error(401, "401", msg);
        }
        (Some(got), Some(want)) if got != want => {
            let msg = "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid \
                       key for an active subscription and use a correct regional API endpoint for your resource.";
            return azure_error(401, "401", msg);
        }
        _ => {}
    }
    if !supported_version(&version) {
        return azure_error(400, "BadRequest", "API version not supported");
    }
    if deployment == "missing-deployment" {
        let msg = "The API deployment for this resource does not exist. If you created the deployment within the last \
                   5 minutes, please wait a moment and try again.";
        return azure_error(404, "DeploymentNotFound", msg);
    }
    let body = match parse_body(req) {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    if let Err(e) = known_fields(&body, fields) {
        return e.reply();
    }
    match operation {
        "chat/completions" => {
            chat(&body, CHAT_MODEL, Flavor::Azure, ids, &version).unwrap_or_else(|r| r)
        }
        "embeddings" => embeddings(&body, EMBEDDING_MODEL, Flavor::Azure, &version),
        _ => completions(&body, COMPLETION_MODEL, ids, Flavor::Azure, &version),
    }
}

/// Unknown fields are refused; `model` is optional (the deployment picks the model) but typed.
fn known_fields(body: &Map<String, Value>, fields: &[&str]) -> Result<(), Invalid> {
    if let Some(k) = body.keys().find(|k| !fields.contains(&k.as_str())) {
        return Err(Invalid::new(
            format!("Unrecognized request argument supplied: {k}"),
            None,
            None,
        ));
    }
    match body.get("model") {
        Some(v) if !v.is_string() && !v.is_null() => Err(invalid_type("model", "a string", v)),
        _ => Ok(()),
    }
}

/// Azure's per-choice content filter annotations (`violence` flagged when `filtered`).
pub(crate) fn filter_results(filtered: bool) -> Value {
    let safe = json!({"filtered": false, "severity": "safe"});
    let violence = if filtered {
        json!({"filtered": true, "severity": "medium"})
    } else {
        safe.clone()
    };
    json!({"hate": safe, "self_harm": safe, "sexual": safe, "violence": violence})
}

/// Azure's `prompt_filter_results`.
pub(crate) fn prompt_filter_results() -> Value {
    let mut results = filter_results(false);
    results["jailbreak"] = json!({"filtered": false, "detected": false});
    json!([{"prompt_index": 0, "content_filter_results": results}])
}
