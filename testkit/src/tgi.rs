//! The fake Hugging Face TGI native API (`/generate`, `/generate_stream`, `/`, `/info`, `/health`): routing and auth.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::common::{Ids, words};
use crate::reply::Reply;
use crate::server::{Handler, Recorded};
use crate::tgi_reply::{Plan, sse_chunk};
use crate::tgi_validate::{decode, validate};

pub(crate) const MODEL_ID: &str = "meta-llama/Meta-Llama-3.1-8B-Instruct";
pub(crate) const MAX_INPUT_TOKENS: u64 = 4095;
pub(crate) const MAX_TOTAL_TOKENS: u64 = 4096;
pub(crate) const SSE: &str = "text/event-stream";
const OOM: &str = "Request failed during generation: Server error: CUDA out of memory. Tried to allocate 2.00 GiB";

pub(crate) fn handler(key: Option<String>) -> Handler {
    let ids = Arc::new(Ids::default());
    Arc::new(move |req: &Recorded| route(req, key.as_deref(), &ids))
}

/// TGI's `ErrorResponse`: `{"error": ..., "error_type": ...}`.
pub(crate) fn error_body(message: &str, error_type: &str) -> Value {
    json!({"error": message, "error_type": error_type})
}

fn error(status: u16, message: &str, error_type: &str) -> Reply {
    Reply::json(status, error_body(message, error_type))
}

/// A bare status without body, as axum answers 401/404/405.
fn bare(status: u16) -> Reply {
    Reply::raw(status, "text/plain; charset=utf-8", "")
}

fn route(req: &Recorded, key: Option<&str>, ids: &Ids) -> Reply {
    if let Some(key) = key {
        let want = format!("Bearer {key}");
        let ok = req
            .header("authorization")
            .is_some_and(|h| h.eq_ignore_ascii_case(&want));
        if !ok {
            return bare(401);
        }
    }
    let endpoint = match (req.method.as_str(), req.path_only()) {
        ("GET", "/health") => return bare(200),
        ("GET", "/info") => return Reply::json(200, info()),
        ("POST", "/generate") => Endpoint::Generate,
        ("POST", "/generate_stream") => Endpoint::Stream,
        ("POST", "/") => Endpoint::Compat,
        (_, "/health" | "/info" | "/generate" | "/generate_stream" | "/") => return bare(405),
        _ => return bare(404),
    };
    let request = match decode(req, endpoint) {
        Ok(request) => request,
        Err(reply) => return reply,
    };
    let stream = request.stream;
    // Errors of `Infer` (validation, overloaded, ...): a status on `/generate`, but on
    // `/generate_stream` the 200 stream has already begun, so they are one SSE event.
    let fail = |status: u16, message: &str, error_type: &str| {
        if stream {
            stream_error(message, error_type)
        } else {
            error(status, message, error_type)
        }
    };
    if let Err(message) = validate(&request) {
        return fail(
            422,
            &format!("Input validation error: {message}"),
            "validation",
        );
    }
    let plan = Plan::new(&request, ids);
    let t = &plan.triggers;
    match t.fail(&[422, 424, 429, 500]) {
        Some(422) => {
            let msg = "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. \
                       Given: 4000 `inputs` tokens and 1024 `max_new_tokens`";
            return fail(422, msg, "validation");
        }
        Some(424) => return fail(424, OOM, "generation"),
        Some(429) => return fail(429, "Model is overloaded", "overloaded"),
        Some(_) if stream => {
            return stream_error("Incomplete generation stream", "incomplete_generation");
        }
        Some(_) => return error(500, "Incomplete generation", "incomplete_generation"),
        None => {}
    }
    if t.garbage() {
        return if stream {
            Reply::raw(200, SSE, "data:this is not json{\n\n")
        } else {
            Reply::raw(200, "application/json", "this is not json{")
        };
    }
    if t.has("HANG") {
        return Reply::hang();
    }
    if stream {
        return plan.stream(OOM);
    }
    let body = plan.response();
    let body = if request.endpoint == Endpoint::Compat {
        json!([body])
    } else {
        body
    };
    plan.timing_headers(Reply::json(200, body))
}

/// A 200 SSE stream made of one error event (how `/generate_stream` reports `Infer` errors).
fn stream_error(message: &str, error_type: &str) -> Reply {
    Reply::chunks(200, SSE, [sse_chunk(&error_body(message, error_type))])
        .header("cache-control", "no-cache")
        .header("x-accel-buffering", "no")
}

/// `GET /info` (router `Info`).
fn info() -> Value {
    json!({
        "model_id": MODEL_ID,
        "model_sha": "0e9e39f249a16976918f6564b8830bc894c89659",
        "model_pipeline_tag": "text-generation",
        "max_concurrent_requests": 128,
        "max_best_of": 2,
        "max_stop_sequences": 4,
        "max_input_tokens": MAX_INPUT_TOKENS,
        "max_total_tokens": MAX_TOTAL_TOKENS,
        "validation_workers": 2,
        "max_client_batch_size": 4,
        "router": "text-generation-router",
        "version": "3.0.1",
        "sha": "bb9095aac6da2bcbd8e9f2d0ce4e6e4a5d8a5f2b",
        "docker_label": "sha-bb9095a",
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Generate,
    Stream,
    /// `POST /`: `stream` in the body picks generate or generate_stream.
    Compat,
}

/// A decoded `GenerateRequest`.
pub(crate) struct TgiRequest {
    pub(crate) endpoint: Endpoint,
    pub(crate) inputs: String,
    pub(crate) params: Map<String, Value>,
    pub(crate) stream: bool,
}

impl TgiRequest {
    pub(crate) fn f64(&self, key: &str) -> Option<f64> {
        self.params.get(key).and_then(Value::as_f64)
    }

    pub(crate) fn u64(&self, key: &str) -> Option<u64> {
        self.params.get(key).and_then(Value::as_u64)
    }

    pub(crate) fn flag(&self, key: &str) -> bool {
        self.params.get(key).and_then(Value::as_bool) == Some(true)
    }

    pub(crate) fn stops(&self) -> Vec<&str> {
        let stops = self.params.get("stop").and_then(Value::as_array);
        stops
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect()
    }

    /// Sampling is on with `do_sample` or any sampling parameter (then a seed is reported).
    pub(crate) fn sampling(&self) -> bool {
        self.flag("do_sample")
            || ["temperature", "top_k", "top_p", "typical_p"]
                .iter()
                .any(|k| self.params.get(*k).is_some_and(|v| !v.is_null()))
    }

    /// `return_full_text`; `POST /` defaults it to true for a `text-generation` model.
    pub(crate) fn return_full_text(&self) -> bool {
        match self.params.get("return_full_text").and_then(Value::as_bool) {
            Some(b) => b,
            None => self.endpoint == Endpoint::Compat,
        }
    }

    /// Prompt tokens after `truncate`.
    pub(crate) fn input_length(&self) -> u64 {
        let n = prompt_tokens(&self.inputs);
        self.u64("truncate").map_or(n, |t| n.min(t))
    }

    /// `max_new_tokens`, or what the router derives: the room left, at most 1024.
    pub(crate) fn max_new_tokens(&self) -> u64 {
        self.u64("max_new_tokens").unwrap_or_else(|| {
            MAX_TOTAL_TOKENS
                .saturating_sub(self.input_length())
                .min(1024)
        })
    }
}

/// "Tokens" of a prompt: each `<|...|>` marker is one, plus the words between them.
pub(crate) fn prompt_tokens(inputs: &str) -> u64 {
    let mut plain = String::new();
    let mut specials = 0;
    let mut rest = inputs;
    while let Some(start) = rest.find("<|") {
        plain.push_str(&rest[..start]);
        plain.push(' ');
        specials += 1;
        rest = match rest[start..].find("|>") {
            Some(end) => &rest[start + end + 2..],
            None => "",
        };
    }
    plain.push_str(rest);
    (specials + words(&plain)) as u64
}
