//! The fake Ollama native API: routing, and Go-style validation of `/api/chat` and `/api/generate`.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::common::{Ids, base64_error, rfc3339_now};
use crate::ollama_embed::{embed, embeddings, tags};
use crate::ollama_reply::{Endpoint, Plan};
use crate::reply::Reply;
use crate::server::{Handler, Recorded};

pub(crate) fn handler() -> Handler {
    let ids = Arc::new(Ids::default());
    Arc::new(move |req: &Recorded| route(req, &ids))
}

pub(crate) fn error(status: u16, message: &str) -> Reply {
    Reply::json(status, json!({"error": message}))
}

fn route(req: &Recorded, ids: &Ids) -> Reply {
    match (req.method.as_str(), req.path_only()) {
        ("GET" | "HEAD", "/") => Reply::raw(200, "text/plain; charset=utf-8", "Ollama is running"),
        ("GET", "/api/version") => Reply::json(200, json!({"version": "0.12.6"})),
        ("GET", "/api/tags") => Reply::json(200, tags()),
        ("POST", "/api/chat") => with_body(req, |b| chat(b, ids)),
        ("POST", "/api/generate") => with_body(req, |b| generate(b, ids)),
        ("POST", "/api/embed") => with_body(req, embed),
        ("POST", "/api/embeddings") => with_body(req, embeddings),
        // Ollama's router (gin) answers unknown routes with a plain-text 404.
        _ => Reply::raw(404, "text/plain", "404 page not found"),
    }
}

fn with_body(req: &Recorded, f: impl FnOnce(&Map<String, Value>) -> Result<Reply, Reply>) -> Reply {
    if req.raw_body.trim().is_empty() {
        return error(400, "missing request body");
    }
    let body = match serde_json::from_str::<Value>(&req.raw_body) {
        Ok(Value::Object(body)) => body,
        Ok(other) => return error(400, &unmarshal(&other, "", "api.Request")),
        Err(e) => return error(400, &format!("invalid character in JSON body: {e}")),
    };
    f(&body).unwrap_or_else(|e| e)
}

fn go_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Go's `encoding/json` type-mismatch message.
fn unmarshal(v: &Value, field: &str, go_type: &str) -> String {
    if field.is_empty() {
        return format!(
            "json: cannot unmarshal {} into Go value of type {go_type}",
            go_kind(v)
        );
    }
    format!(
        "json: cannot unmarshal {} into Go struct field {field} of type {go_type}",
        go_kind(v)
    )
}

/// Checks a field's JSON type as Go would decode it (`null` means absent).
pub(crate) fn expect(
    obj: &Map<String, Value>,
    key: &str,
    ok: fn(&Value) -> bool,
    field: &str,
    go_type: &str,
) -> Result<(), Reply> {
    match obj.get(key) {
        Some(v) if !v.is_null() && !ok(v) => Err(error(400, &unmarshal(v, field, go_type))),
        _ => Ok(()),
    }
}

/// `model` present and known; `Ok(model)`.
pub(crate) fn model_of(body: &Map<String, Value>, owner: &str) -> Result<String, Reply> {
    expect(
        body,
        "model",
        Value::is_string,
        &format!("{owner}.model"),
        "string",
    )?;
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if model.is_empty() {
        return Err(error(400, "model is required"));
    }
    if model == "missing-model" || model == "missing-model:latest" {
        let msg = format!("model \"{model}\" not found, try pulling it first");
        return Err(error(404, &msg));
    }
    Ok(model.to_string())
}

fn common_fields(body: &Map<String, Value>, owner: &str) -> Result<(), Reply> {
    expect(
        body,
        "stream",
        Value::is_boolean,
        &format!("{owner}.stream"),
        "bool",
    )?;
    expect(
        body,
        "options",
        Value::is_object,
        &format!("{owner}.options"),
        "map[string]interface {}",
    )?;
    expect(
        body,
        "think",
        |v| v.is_boolean() || v.is_string(),
        &format!("{owner}.think"),
        "api.ThinkValue",
    )?;
    match body.get("format") {
        None | Some(Value::Null | Value::Object(_)) => Ok(()),
        Some(Value::String(s)) if s == "json" || s.is_empty() => Ok(()),
        Some(_) => Err(error(
            400,
            "invalid format: format must be \"json\" or a JSON schema object",
        )),
    }
}

fn images(obj: &Map<String, Value>, field: &str) -> Result<(), Reply> {
    expect(obj, "images", Value::is_array, field, "[]api.ImageData")?;
    for img in obj
        .get("images")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let s = img
            .as_str()
            .ok_or_else(|| error(400, &unmarshal(img, field, "api.ImageData")))?;
        if let Some(at) = base64_error(s) {
            return Err(error(
                400,
                &format!("illegal base64 data at input byte {at}"),
            ));
        }
    }
    Ok(())
}

fn messages(body: &Map<String, Value>) -> Result<(), Reply> {
    expect(
        body,
        "messages",
        Value::is_array,
        "ChatRequest.messages",
        "[]api.Message",
    )?;
    for m in body
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let m = m
            .as_object()
            .ok_or_else(|| error(400, &unmarshal(m, "ChatRequest.messages", "api.Message")))?;
        for key in ["role", "content", "thinking", "tool_name", "tool_call_id"] {
            expect(
                m,
                key,
                Value::is_string,
                &format!("Message.messages.{key}"),
                "string",
            )?;
        }
        images(m, "Message.messages.images")?;
        expect(
            m,
            "tool_calls",
            Value::is_array,
            "Message.messages.tool_calls",
            "[]api.ToolCall",
        )?;
        for call in m
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let call = call.as_object().ok_or_else(|| {
                error(
                    400,
                    &unmarshal(call, "Message.messages.tool_calls", "api.ToolCall"),
                )
            })?;
            let field = "ToolCall.messages.tool_calls.function";
            expect(
                call,
                "function",
                Value::is_object,
                field,
                "api.ToolCallFunction",
            )?;
            if let Some(f) = call.get("function").and_then(Value::as_object) {
                let field = "ToolCallFunction.messages.tool_calls.function";
                expect(
                    f,
                    "name",
                    Value::is_string,
                    &format!("{field}.name"),
                    "string",
                )?;
                expect(
                    f,
                    "index",
                    Value::is_number,
                    &format!("{field}.index"),
                    "int",
                )?;
                let go = "api.ToolCallFunctionArguments";
                expect(
                    f,
                    "arguments",
                    Value::is_object,
                    &format!("{field}.arguments"),
                    go,
                )?;
            }
        }
        let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
        if !["system", "user", "assistant", "tool"].contains(&role) {
            return Err(error(
                400,
                &format!("invalid role \"{role}\": must be one of system, user, assistant, tool"),
            ));
        }
    }
    Ok(())
}

fn chat(body: &Map<String, Value>, ids: &Ids) -> Result<Reply, Reply> {
    messages(body)?;
    expect(
        body,
        "tools",
        Value::is_array,
        "ChatRequest.tools",
        "api.Tools",
    )?;
    for tool in body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let t = tool
            .as_object()
            .ok_or_else(|| error(400, &unmarshal(tool, "ChatRequest.tools", "api.Tool")))?;
        expect(
            t,
            "function",
            Value::is_object,
            "Tool.tools.function",
            "api.ToolFunction",
        )?;
    }
    common_fields(body, "ChatRequest")?;
    let model = model_of(body, "ChatRequest")?;
    let empty = body
        .get("messages")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    if empty {
        let msg = json!({"role": "assistant", "content": ""});
        let done = json!({"model": model, "created_at": rfc3339_now(), "message": msg, "done_reason": "load", "done": true});
        return Ok(Reply::json(200, done));
    }
    Ok(Plan::chat(body, &model, ids).reply(Endpoint::Chat, stream_of(body)))
}

fn generate(body: &Map<String, Value>, ids: &Ids) -> Result<Reply, Reply> {
    for key in ["prompt", "suffix", "system", "template"] {
        expect(
            body,
            key,
            Value::is_string,
            &format!("GenerateRequest.{key}"),
            "string",
        )?;
    }
    expect(
        body,
        "raw",
        Value::is_boolean,
        "GenerateRequest.raw",
        "bool",
    )?;
    images(body, "GenerateRequest.images")?;
    common_fields(body, "GenerateRequest")?;
    let model = model_of(body, "GenerateRequest")?;
    let prompt = body
        .get("prompt")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if prompt.is_empty() {
        let done = json!({"model": model, "created_at": rfc3339_now(), "response": "", "done": true, "done_reason": "load"});
        return Ok(Reply::json(200, done));
    }
    Ok(Plan::generate(prompt, &model, ids).reply(Endpoint::Generate, stream_of(body)))
}

fn stream_of(body: &Map<String, Value>) -> bool {
    body.get("stream").and_then(Value::as_bool).unwrap_or(true)
}
