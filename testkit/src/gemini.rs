//! The fake Gemini API (`/v1beta/models/...`): routing, API-key auth, Google's error shape, trigger dispatch.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::common::{Ids, words};
use crate::gemini_embed::{batch_embed, embed_content, model_info, models};
use crate::gemini_parts::content;
use crate::gemini_plan::Plan;
use crate::gemini_validate::{Errors, get, list, validate};
use crate::reply::Reply;
use crate::server::{Handler, Recorded};

const JSON_CONTENT_TYPE: &str = "application/json; charset=UTF-8";
const METHODS: &[&str] = &[
    "generateContent",
    "streamGenerateContent",
    "countTokens",
    "embedContent",
    "batchEmbedContents",
];

pub(crate) fn handler(key: Option<String>) -> Handler {
    let ids = Arc::new(Ids::default());
    Arc::new(move |req: &Recorded| route(req, key.as_deref(), &ids))
}

/// The canonical `status` string of a Google RPC error with this HTTP status.
pub(crate) fn status_name(code: u16) -> &'static str {
    match code {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        500 => "INTERNAL",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "UNKNOWN",
    }
}

/// `{"error": {"code", "message", "status", "details"?}}`, pretty-printed like Google's front end.
pub(crate) fn error_with(code: u16, message: &str, details: Option<Value>) -> Reply {
    let mut error = json!({"code": code, "message": message, "status": status_name(code)});
    if let Some(details) = details {
        error["details"] = details;
    }
    json_reply(code, &json!({ "error": error }))
}

pub(crate) fn error(code: u16, message: &str) -> Reply {
    error_with(code, message, None)
}

pub(crate) fn json_reply(status: u16, body: &Value) -> Reply {
    Reply::raw(status, JSON_CONTENT_TYPE, google_json(body, true))
}

/// JSON as Google's front end writes it: `"key": value`, `<`, `>`, `&` escaped; indented when `pretty`.
pub(crate) fn google_json(v: &Value, pretty: bool) -> String {
    let mut out = String::new();
    write_json(&mut out, v, pretty.then_some(0));
    out
}

fn write_json(out: &mut String, v: &Value, level: Option<usize>) {
    let newline = |out: &mut String, depth: usize| {
        if level.is_some() {
            out.push('\n');
            out.push_str(&"  ".repeat(depth));
        }
    };
    let depth = level.unwrap_or(0);
    match v {
        Value::String(s) => out.push_str(&escape(s)),
        Value::Array(items) if !items.is_empty() => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                write_json(out, item, level.map(|l| l + 1));
            }
            newline(out, depth);
            out.push(']');
        }
        Value::Object(map) if !map.is_empty() => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                out.push_str(&escape(key));
                out.push_str(": ");
                write_json(out, item, level.map(|l| l + 1));
            }
            newline(out, depth);
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn escape(s: &str) -> String {
    Value::String(s.to_string())
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// The value of a query parameter (no percent-decoding; keys and `alt` values never need it).
pub(crate) fn query<'a>(req: &'a Recorded, name: &str) -> Option<&'a str> {
    let (_, query) = req.path.split_once('?')?;
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Google's HTML 404 page, served for paths the API does not have.
fn not_found_page(path: &str) -> Reply {
    let page = format!(
        "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 404 (Not Found)!!1</title>\n  \
         <p><b>404.</b> <ins>That’s an error.</ins>\n  <p>The requested URL <code>{path}</code> was not found on \
         this server.  <ins>That’s all we know.</ins>\n"
    );
    Reply::raw(404, "text/html; charset=UTF-8", page)
}

pub(crate) fn error_info(reason: &str, method: &str) -> Value {
    let mut metadata = json!({"service": "generativelanguage.googleapis.com"});
    if !method.is_empty() {
        metadata["method"] = json!(format!(
            "google.ai.generativelanguage.v1beta.GenerativeService.{method}"
        ));
    }
    json!({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
           "domain": "googleapis.com", "metadata": metadata})
}

/// `x-goog-api-key` or `?key=`; a bearer token is taken for an (unsupported) OAuth token.
fn auth(req: &Recorded, key: Option<&str>, method: &str) -> Result<(), Reply> {
    let given = req
        .header("x-goog-api-key")
        .or_else(|| query(req, "key"))
        .map(str::trim)
        .filter(|k| !k.is_empty());
    match (given, key) {
        (None, _) if req.header("authorization").is_some() => Err(error_with(
            401,
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or \
             other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
            Some(json!([error_info("ACCESS_TOKEN_TYPE_UNSUPPORTED", method)])),
        )),
        (None, _) => Err(error_with(
            403,
            "Method doesn't allow unregistered callers (callers without established identity). Please use API \
             Key or other form of API consumer identity to call this API.",
            Some(json!([error_info("CREDENTIALS_MISSING", method)])),
        )),
        (Some(got), Some(want)) if got != want => {
            let message = "API key not valid. Please pass a valid API key.";
            let localized = json!({"@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                                   "locale": "en-US", "message": message});
            Err(error_with(
                400,
                message,
                Some(json!([error_info("API_KEY_INVALID", ""), localized])),
            ))
        }
        _ => Ok(()),
    }
}

fn route(req: &Recorded, key: Option<&str>, ids: &Ids) -> Reply {
    let path = req.path_only();
    let Some(rest) = path.strip_prefix("/v1beta/models") else {
        return not_found_page(path);
    };
    let (name, method) = match rest.strip_prefix('/') {
        None if rest.is_empty() => ("", "ListModels"),
        Some(r) => match r.rsplit_once(':') {
            Some((model, m)) if METHODS.contains(&m) && !model.is_empty() => (model, m),
            None if !r.is_empty() => (r, "GetModel"),
            _ => return not_found_page(path),
        },
        None => return not_found_page(path),
    };
    let expected = if method.ends_with("Model") || method == "ListModels" {
        "GET"
    } else {
        "POST"
    };
    if req.method != expected {
        return not_found_page(path);
    }
    let api_method = match method {
        "generateContent" | "streamGenerateContent" | "countTokens" => {
            let mut m = method.to_string();
            m[..1].make_ascii_uppercase();
            m
        }
        _ => String::new(),
    };
    if let Err(reply) = auth(req, key, &api_method) {
        return reply;
    }
    match method {
        "ListModels" => json_reply(200, &models()),
        "GetModel" => match model_info(name) {
            Some(m) => json_reply(200, &m),
            None => error(
                404,
                &format!(
                    "models/{name} is not found for API version v1beta, or is not supported for GetModel."
                ),
            ),
        },
        _ => call(req, name, method, ids).unwrap_or_else(|r| r),
    }
}

pub(crate) fn parse(req: &Recorded) -> Result<Map<String, Value>, Reply> {
    let payload = |description: &str| {
        let details = json!([{"@type": "type.googleapis.com/google.rpc.BadRequest",
                               "fieldViolations": [{"description": description}]}]);
        error_with(400, description, Some(details))
    };
    if req.raw_body.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(&req.raw_body) {
        Ok(Value::Object(body)) => Ok(body),
        Ok(_) => Err(payload(
            "Invalid JSON payload received. Unknown name \"\": Root element must be a message.",
        )),
        Err(_) => Err(payload("Invalid JSON payload received. Unexpected token.")),
    }
}

fn call(req: &Recorded, model: &str, method: &str, ids: &Ids) -> Result<Reply, Reply> {
    let body = parse(req)?;
    let embedding = method.contains("mbed");
    let unsupported = if embedding {
        model.starts_with("gemini-") && !model.contains("embedding")
    } else {
        model.contains("embedding")
    };
    if model == "missing-model" || unsupported {
        return Err(error(
            404,
            &format!(
                "models/{model} is not found for API version v1beta, or is not supported for {method}. \
                 Call ListModels to see the list of available models and their supported methods."
            ),
        ));
    }
    Ok(match method {
        "embedContent" => embed_content(&body, model),
        "batchEmbedContents" => batch_embed(&body, model),
        "countTokens" => count_tokens(&body)?,
        _ => generate(req, &body, model, method == "streamGenerateContent", ids),
    })
}

fn count_tokens(body: &Map<String, Value>) -> Result<Reply, Reply> {
    let mut e = Errors::new("CountTokensRequest");
    e.fields("", body, &["contents", "generateContentRequest"]);
    let contents =
        get(body, "contents").map_or(&[][..], |v| list(&mut e, "contents", v, "Content"));
    for (i, c) in contents.iter().enumerate() {
        content(&mut e, &format!("contents[{i}]"), c);
    }
    if let Some(reply) = e.reply() {
        return Err(reply);
    }
    let nested = get(body, "generateContentRequest").and_then(|r| get(r.as_object()?, "contents"));
    let all = contents
        .iter()
        .chain(nested.and_then(Value::as_array).into_iter().flatten());
    let total = all.map(|c| words(&c.to_string())).sum::<usize>().max(1);
    Ok(json_reply(
        200,
        &json!({"totalTokens": total, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": total}]}),
    ))
}

pub(crate) fn generate(
    req: &Recorded,
    body: &Map<String, Value>,
    model: &str,
    stream: bool,
    ids: &Ids,
) -> Reply {
    if let Some(reply) = validate(body) {
        return reply;
    }
    let plan = Plan::new(body, model, ids);
    let t = &plan.triggers;
    match t.fail(&[429, 500, 503, 400]) {
        Some(429) => {
            let details = json!([
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
                    "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                    "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                    "quotaDimensions": {"location": "global", "model": model}, "quotaValue": "10"}]},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"},
            ]);
            let message = "You exceeded your current quota, please check your plan and billing details. For more \
                           information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.";
            return error_with(429, message, Some(details));
        }
        Some(500) => return error(500, MIDSTREAM_MESSAGE),
        Some(503) => return error(503, "The model is overloaded. Please try again later."),
        Some(_) => return error(400, "Simulated failure (FAIL 400)"),
        None => {}
    }
    if t.garbage() {
        let ct = if stream && query(req, "alt") == Some("sse") {
            "text/event-stream"
        } else {
            JSON_CONTENT_TYPE
        };
        return Reply::raw(200, ct, "this is not json{");
    }
    if t.has("HANG") {
        return Reply::hang();
    }
    match (stream, query(req, "alt")) {
        (false, _) => json_reply(200, &plan.response()),
        (true, Some("sse")) => plan.sse(),
        (true, _) => plan.json_array(),
    }
}

/// The message of Gemini's 500 INTERNAL errors.
pub(crate) const MIDSTREAM_MESSAGE: &str = "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting";
