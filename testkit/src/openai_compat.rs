//! The fake OpenAI-compatible server (vLLM / llama.cpp / Groq style): routing, Bearer auth, unsupported parameters.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::common::{Ids, Triggers};
use crate::openai_compat_chat::{Chat, Flavor};
use crate::openai_compat_extra::{completions, embeddings};
use crate::openai_compat_messages::messages;
use crate::openai_compat_validate::{Invalid, chat_fields, oai_error};
use crate::reply::{Reply, SseEvent};
use crate::server::{Handler, Recorded};

const SERVER_ERROR: &str =
    "The server had an error while processing your request. Sorry about that!";

/// Parameters the OpenAI-compatible fake rejects by default.
pub(crate) const DEFAULT_UNSUPPORTED: &[&str] = &["store", "metadata", "service_tier"];

const MODELS: &[(&str, u64)] = &[
    ("gpt-4o-mini", 1_721_172_741),
    ("text-embedding-3-small", 1_705_948_997),
];

pub(crate) fn handler(key: Option<String>, unsupported: Vec<String>) -> Handler {
    let ids = Arc::new(Ids::default());
    Arc::new(move |req: &Recorded| {
        let request_id = format!("req_{}", ids.next(b"0123456789abcdef", 32));
        route(req, key.as_deref(), &unsupported, &ids).header("x-request-id", request_id)
    })
}

fn invalid(message: &str) -> Reply {
    oai_error(400, message, "invalid_request_error", None, None)
}

fn route(req: &Recorded, key: Option<&str>, unsupported: &[String], ids: &Ids) -> Reply {
    let (method, path) = (req.method.as_str(), req.path_only());
    let known = [
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
        "/v1/models",
    ]
    .contains(&path)
        || path.starts_with("/v1/models/");
    if !known {
        return oai_error(
            404,
            &format!("Invalid URL ({method} {path})"),
            "invalid_request_error",
            None,
            None,
        );
    }
    if let Some(key) = key {
        match req
            .header("authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
        {
            None | Some("") => {
                let msg = "You didn't provide an API key. You need to provide your API key in an Authorization header \
                           using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).";
                return oai_error(401, msg, "invalid_request_error", None, None);
            }
            Some(got) if got != key => {
                let tail: String = got
                    .chars()
                    .rev()
                    .take(4)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                let msg = format!("Incorrect API key provided: sk-****{tail}.");
                return oai_error(
                    401,
                    &msg,
                    "invalid_request_error",
                    None,
                    Some("invalid_api_key"),
                );
            }
            Some(_) => {}
        }
    }
    match (method, path) {
        ("GET", "/v1/models") => {
            let data: Vec<Value> = MODELS
                .iter()
                .map(|(id, created)| model_json(id, *created))
                .collect();
            Reply::json(200, json!({"object": "list", "data": data}))
        }
        ("GET", p) if p.starts_with("/v1/models/") => {
            let id = &p["/v1/models/".len()..];
            match MODELS.iter().find(|(m, _)| *m == id) {
                Some((m, created)) => Reply::json(200, model_json(m, *created)),
                None => not_found_model(id),
            }
        }
        ("POST", "/v1/chat/completions" | "/v1/completions" | "/v1/embeddings") => {
            let body = match parse_body(req) {
                Ok(body) => body,
                Err(reply) => return reply,
            };
            if let Some(name) = body.keys().find(|k| unsupported.iter().any(|u| u == *k)) {
                let msg = format!("Unsupported parameter: '{name}'");
                return oai_error(400, &msg, "invalid_request_error", Some(name), None);
            }
            let model = match body.get("model") {
                Some(Value::String(m)) if !m.is_empty() => m.clone(),
                _ => return invalid("you must provide a model parameter"),
            };
            if model == "missing-model" {
                return not_found_model(&model);
            }
            match path {
                "/v1/chat/completions" => {
                    chat(&body, &model, Flavor::OpenAi, ids, "").unwrap_or_else(|r| r)
                }
                "/v1/completions" => completions(&body, &model, ids, Flavor::OpenAi, ""),
                _ => embeddings(&body, &model, Flavor::OpenAi, ""),
            }
        }
        _ => oai_error(
            405,
            &format!("Invalid method for URL ({method} {path})"),
            "invalid_request_error",
            None,
            None,
        ),
    }
}

fn model_json(id: &str, created: u64) -> Value {
    json!({"id": id, "object": "model", "created": created, "owned_by": "system"})
}

fn not_found_model(id: &str) -> Reply {
    let msg = format!("The model `{id}` does not exist or you do not have access to it.");
    oai_error(
        404,
        &msg,
        "invalid_request_error",
        None,
        Some("model_not_found"),
    )
}

/// The JSON object body, or OpenAI's "could not parse" 400.
pub(crate) fn parse_body(req: &Recorded) -> Result<Map<String, Value>, Reply> {
    match serde_json::from_str::<Value>(&req.raw_body) {
        Ok(Value::Object(body)) => Ok(body),
        _ => Err(invalid(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP \
             library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you \
             have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)",
        )),
    }
}

/// Validates and answers a chat request (shared with the Azure fake; `api_version` only
/// appears in Azure's rate-limit message).
pub(crate) fn chat(
    body: &Map<String, Value>,
    model: &str,
    flavor: Flavor,
    ids: &Ids,
    api_version: &str,
) -> Result<Reply, Reply> {
    messages(body).map_err(|e: Invalid| e.reply())?;
    chat_fields(body).map_err(|e| e.reply())?;
    let plan = Chat::new(body, model, flavor, ids);
    if let Some(reply) = fault(
        &plan.triggers,
        flavor,
        "ChatCompletions_Create",
        api_version,
    ) {
        return Ok(reply);
    }
    let stream = body.get("stream").and_then(Value::as_bool) == Some(true);
    if plan.triggers.garbage() {
        return Ok(garbage(stream));
    }
    if plan.triggers.has("HANG") {
        return Ok(Reply::hang());
    }
    Ok(if stream {
        plan.stream()
    } else {
        Reply::json(200, plan.completion())
    })
}

/// `GARBAGE`: a body that is not JSON (as a `data:` event when streaming).
pub(crate) fn garbage(stream: bool) -> Reply {
    if stream {
        Reply::raw(
            200,
            "text/event-stream; charset=utf-8",
            "data: this is not json{\n\n",
        )
    } else {
        Reply::raw(200, "application/json", "this is not json{")
    }
}

/// The error triggers shared by the OpenAI-style fakes: `FAIL 4xx/5xx`, Azure's `FILTER PROMPT`, `HANG`.
pub(crate) fn fault(
    t: &Triggers,
    flavor: Flavor,
    operation: &str,
    api_version: &str,
) -> Option<Reply> {
    let azure = flavor == Flavor::Azure;
    if azure && t.has("FILTER PROMPT") {
        let mut results = crate::azure::filter_results(false);
        results["hate"] = json!({"filtered": true, "severity": "medium"});
        let body = json!({"error": {
            "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. \
                        Please modify your prompt and retry. To learn more about our content filtering policies please \
                        read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766",
            "type": null, "param": "prompt", "code": "content_filter", "status": 400,
            "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": results}}});
        return Some(Reply::json(400, body));
    }
    let reply = match t.fail(&[429, 500, 503, 400])? {
        429 if azure => {
            let msg = format!(
                "Requests to the {operation} Operation under Azure OpenAI API version {api_version} have exceeded token \
                 rate limit of your current OpenAI S0 pricing tier. Please retry after 7 seconds. Please go here: \
                 https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit."
            );
            Reply::json(429, json!({"error": {"code": "429", "message": msg}}))
                .header("retry-after", "7")
        }
        429 => {
            let msg = "Rate limit reached for requests on requests per min (RPM): Limit 3, Used 3, Requested 1. \
                       Please try again in 7s. Visit https://platform.openai.com/account/rate-limits to learn more.";
            oai_error(429, msg, "requests", None, Some("rate_limit_exceeded"))
                .header("retry-after", "7")
        }
        500 => oai_error(
            500,
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
            None,
        ),
        503 => oai_error(
            503,
            "The server is overloaded or not ready yet.",
            "server_error",
            None,
            None,
        ),
        _ => invalid("Simulated failure (FAIL 400)"),
    };
    Some(reply)
}

/// Applies the stream fault triggers after the second payload event, then paces the events.
pub(crate) fn finish_stream(mut events: Vec<SseEvent>, payload: &[usize], t: &Triggers) -> Reply {
    let cut = payload
        .get(1)
        .or(payload.last())
        .map_or(events.len(), |i| i + 1);
    if t.has("MIDSTREAM ERROR") {
        events.truncate(cut);
        let error = json!({"error": {"message": SERVER_ERROR, "type": "server_error", "param": null, "code": null}});
        events.push(SseEvent::data(error));
    } else if t.has("RESET") {
        events.truncate(cut);
    } else if t.has("STREAM GARBAGE") {
        events.insert(cut, SseEvent::data("{not json"));
    }
    let pace = t.pace();
    let events: Vec<SseEvent> = events
        .into_iter()
        .enumerate()
        .map(|(i, e)| e.delay(if i == 0 { Duration::ZERO } else { pace }))
        .collect();
    if t.has("RESET") && !t.has("MIDSTREAM ERROR") {
        return Reply::ResetAfter {
            status: 200,
            content_type: "text/event-stream; charset=utf-8".into(),
            chunks: events.iter().map(|e| (e.to_wire(), e.delay)).collect(),
            headers: vec![("cache-control".into(), "no-cache".into())],
        };
    }
    Reply::sse_events(events).header("cache-control", "no-cache")
}
