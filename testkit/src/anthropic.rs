//! The fake Anthropic Messages API (`POST /v1/messages`, `POST /v1/messages/count_tokens`):
//! routing, auth, error shape, trigger dispatch.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::anthropic_plan::Plan;
use crate::anthropic_validate::{validate, validate_beta};
use crate::common::{ALNUM, Ids, words};
use crate::reply::Reply;
use crate::server::{Handler, Recorded};

pub(crate) fn handler(key: Option<String>) -> Handler {
    let ids = Arc::new(Ids::default());
    Arc::new(move |req: &Recorded| {
        let request_id = format!("req_011C{}", ids.next(ALNUM, 20));
        answer(req, key.as_deref(), &ids, &request_id).header("request-id", request_id)
    })
}

pub(crate) fn error(status: u16, ty: &str, message: &str, request_id: &str) -> Reply {
    let body = json!({"type": "error", "error": {"type": ty, "message": message}, "request_id": request_id});
    Reply::json(status, body)
}

fn answer(req: &Recorded, key: Option<&str>, ids: &Ids, rid: &str) -> Reply {
    let invalid = |message: &str| error(400, "invalid_request_error", message, rid);
    let count = req.path_only() == "/v1/messages/count_tokens";
    if req.path_only() != "/v1/messages" && !count {
        return error(404, "not_found_error", "Not Found", rid);
    }
    if req.method != "POST" {
        return error(405, "invalid_request_error", "Method Not Allowed", rid);
    }
    match (req.header("x-api-key").map(str::trim), key) {
        (None | Some(""), _) => {
            return error(
                401,
                "authentication_error",
                "x-api-key header is required",
                rid,
            );
        }
        (Some(got), Some(want)) if got != want => {
            return error(401, "authentication_error", "invalid x-api-key", rid);
        }
        _ => {}
    }
    match req.header("anthropic-version") {
        None => return invalid("anthropic-version: header is required"),
        Some("2023-06-01") => {}
        Some(other) => return invalid(&format!("anthropic-version: invalid version '{other}'")),
    }
    if let Err(e) = serde_json::from_str::<Value>(&req.raw_body) {
        return invalid(&format!(
            "There was an error parsing the body of your request: {e}"
        ));
    }
    if count {
        return count_tokens(&req.body, rid);
    }
    messages(&req.body, ids, rid, req.header("anthropic-beta").is_some())
}

/// `POST /v1/messages/count_tokens`: the request of a message without `max_tokens` or
/// `stream` (which it refuses, as extra inputs); the answer counts the words of its `system`,
/// `messages` and `tools` (`{"input_tokens": N}`), so a test can tell a forwarded count from an
/// estimate.
fn count_tokens(body: &Value, rid: &str) -> Reply {
    let invalid = |message: &str| error(400, "invalid_request_error", message, rid);
    if !body.get("model").is_some_and(Value::is_string) {
        return invalid("model: Field required");
    }
    if body
        .get("messages")
        .and_then(Value::as_array)
        .is_none_or(|m| m.is_empty())
    {
        return invalid("messages: Field required");
    }
    for extra in ["max_tokens", "stream"] {
        if body.get(extra).is_some() {
            return invalid(&format!("{extra}: Extra inputs are not permitted"));
        }
    }
    let n: usize = ["system", "messages", "tools"]
        .iter()
        .filter_map(|k| body.get(*k))
        .map(|v| words(&v.to_string()))
        .sum();
    Reply::json(200, json!({"input_tokens": n.max(1)}))
}

/// A Messages request past routing, auth and version checks: validated (only the basics when
/// the client sent beta flags, whose fields vary) and answered (also what the Vertex fake's
/// Claude publisher answers with).
pub(crate) fn messages(body: &Value, ids: &Ids, rid: &str, beta: bool) -> Reply {
    let invalid = |message: &str| error(400, "invalid_request_error", message, rid);
    let checked = if beta {
        validate_beta(body)
    } else {
        validate(body)
    };
    if let Err(message) = checked {
        return invalid(&message);
    }
    let plan = Plan::new(body, ids);
    let t = &plan.triggers;
    match t.fail(&[429, 500, 529, 400]) {
        Some(429) => {
            let msg = "Number of request tokens has exceeded your per-minute rate limit";
            return error(429, "rate_limit_error", msg, rid).header("retry-after", "7");
        }
        Some(500) => return error(500, "api_error", "Internal server error", rid),
        Some(529) => return error(529, "overloaded_error", "Overloaded", rid),
        Some(_) => return invalid("Simulated failure (FAIL 400)"),
        None => {}
    }
    if t.garbage() {
        return Reply::raw(200, "application/json", "this is not json{");
    }
    if t.has("HANG") {
        return Reply::hang();
    }
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        plan.stream()
    } else {
        Reply::json(200, plan.message())
    }
}
