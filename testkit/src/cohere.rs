//! The fake Cohere API v2 (`POST /v2/chat`, `POST /v2/embed`): routing, bearer auth, error shape, trigger dispatch.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::cohere_embed::embed;
use crate::cohere_plan::Plan;
use crate::cohere_validate::validate;
use crate::common::Ids;
use crate::reply::Reply;
use crate::server::{Handler, Recorded};

const HEX: &[u8] = b"0123456789abcdef";

pub(crate) fn handler(key: Option<String>) -> Handler {
    let ids = Arc::new(Ids::default());
    Arc::new(move |req: &Recorded| route(req, key.as_deref(), &ids))
}

/// A random-looking UUID v4, as Cohere uses for response and error ids.
pub(crate) fn uuid(ids: &Ids) -> String {
    let h = ids.next(HEX, 30);
    let variant = ids.next(b"89ab", 1);
    format!(
        "{}-{}-4{}-{variant}{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..15],
        &h[15..18],
        &h[18..30]
    )
}

/// Cohere's error body: `{"id": "<uuid>", "message": "..."}`.
pub(crate) fn error(status: u16, message: &str, ids: &Ids) -> Reply {
    Reply::json(status, json!({"id": uuid(ids), "message": message}))
}

fn route(req: &Recorded, key: Option<&str>, ids: &Ids) -> Reply {
    let endpoint = match (req.method.as_str(), req.path_only()) {
        ("POST", "/v2/chat") => "chat",
        ("POST", "/v2/embed") => "embed",
        _ => return error(404, "Not Found", ids),
    };
    let token = req.header("authorization").map(str::trim).and_then(|h| {
        let (scheme, token) = h.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    });
    match (token.filter(|t| !t.is_empty()), key) {
        (None, _) => return error(401, "no api key supplied", ids),
        (Some(got), Some(want)) if got != want => return error(401, "invalid api token", ids),
        _ => {}
    }
    let body = match serde_json::from_str::<Value>(&req.raw_body) {
        Ok(Value::Object(body)) => body,
        Ok(_) => return error(400, "invalid request: body must be a JSON object", ids),
        Err(e) => {
            return error(
                400,
                &format!("invalid request: failed to decode JSON body: {e}"),
                ids,
            );
        }
    };
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if model == "missing-model" {
        let message = format!(
            "model '{model}' not found, make sure the correct model ID was used and that you have access to the model."
        );
        return error(404, &message, ids);
    }
    match endpoint {
        "chat" => chat(&body, ids),
        _ => embed(&body, ids).unwrap_or_else(|(status, message)| error(status, &message, ids)),
    }
}

fn chat(body: &Map<String, Value>, ids: &Ids) -> Reply {
    if let Err((status, message)) = validate(body) {
        return error(status, &message, ids);
    }
    let plan = Plan::new(body, ids);
    let t = &plan.triggers;
    match t.fail(&[429, 500, 400]) {
        Some(429) => {
            let message = "You are using a Trial key, which is limited to 20 API calls / minute. You can continue to \
                           use the Trial key for free or upgrade to a Production key with higher rate limits at \
                           'https://dashboard.cohere.com/api-keys'. Contact us on 'https://discord.gg/XW44jPfYJu' or \
                           email us at support@cohere.com with any questions";
            return error(429, message, ids);
        }
        Some(500) => return error(500, INTERNAL, ids),
        Some(_) => return error(400, "invalid request: simulated failure (FAIL 400)", ids),
        None => {}
    }
    let stream = body.get("stream").and_then(Value::as_bool) == Some(true);
    if t.garbage() {
        let ct = if stream {
            "text/event-stream"
        } else {
            "application/json"
        };
        return Reply::raw(200, ct, "this is not json{");
    }
    if t.has("HANG") {
        return Reply::hang();
    }
    if stream {
        plan.stream()
    } else {
        Reply::json(200, plan.response())
    }
}

/// Cohere's message for internal errors (also the in-stream `message-end` error).
pub(crate) const INTERNAL: &str = "internal server error, this has been reported to our developers";
