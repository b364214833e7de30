//! `POST .../v1/messages/count_tokens`: the input tokens a Messages request would use, answered
//! as `{"input_tokens": N}`.
//!
//! A mapping with a `count_tokens` route asks its upstream: the request as it is when the route
//! speaks the dialect (`native: [messages]`, the answer passed back unchanged), otherwise the
//! canonical chat request the route's template reads, its normalized `input_tokens` answered.
//! Any other mapping gets a documented estimate ([`estimate`]): no upstream call is made.

use http::HeaderMap;
use serde_json::{Value, json};

use crate::dialect::Dialect;
use crate::error::ProxyError;
use crate::mapping::{Mapping, Op};
use crate::translate::{messages, proxy};
use crate::upstream::pool::Pool;
use crate::upstream::{UpstreamClient, header_object, read_body, send, upstream_error};

/// Characters per token of the estimate, the usual rule of thumb for English text.
pub const CHARS_PER_TOKEN: usize = 4;

/// What a count needs of the server.
pub struct Upstream<'a> {
    pub client: &'a UpstreamClient,
    pub pool: &'a Pool,
    /// Largest upstream body read.
    pub max_body: usize,
    /// "Now" for request signatures.
    pub now_ms: i64,
}

/// Counts `request` (a Messages request, its `model` already the upstream's) on `mapping`.
pub async fn count(
    mapping: &Mapping,
    request: &Value,
    headers: &HeaderMap,
    up: Upstream<'_>,
) -> Result<Value, ProxyError> {
    let Some(route) = mapping.route(Op::CountTokens) else {
        return Ok(json!({"input_tokens": estimate(&to_chat(mapping, request, headers)?)}));
    };
    let body = if route.speaks(crate::dialect::messages::NAME) {
        request.clone()
    } else {
        to_chat(mapping, request, headers)?
    };
    let endpoint = &mapping.upstream.endpoints[up.pool.pick(&mapping.upstream.endpoints, &[])];
    let mut prepared = proxy::prepare_for(mapping, Op::CountTokens, &body, headers, endpoint)?;
    mapping
        .upstream
        .signing
        .apply(&mut prepared.request, up.now_ms)?;
    let response = send(mapping, up.client, prepared.request).await?;
    if !response.status().is_success() {
        return Err(upstream_error(mapping, response, up.max_body).await);
    }
    let answered = if mapping.reads_headers {
        header_object(response.headers())
    } else {
        Value::Null
    };
    let bytes = read_body(
        response.into_body(),
        mapping.upstream.idle_timeout,
        up.max_body,
    )
    .await?;
    let (answer, _) = proxy::translate_whole(
        mapping,
        Op::CountTokens,
        &Dialect::Messages,
        &bytes,
        &answered,
        &body,
        "",
    )?;
    Ok(answer)
}

/// The canonical chat request of a count: the Messages request converted as for a message
/// (a count has no `max_tokens`, so none is asked for), with what `mapping` cannot take left out.
fn to_chat(mapping: &Mapping, request: &Value, headers: &HeaderMap) -> Result<Value, ProxyError> {
    let mut request = request.clone();
    if let Some(o) = request.as_object_mut() {
        o.insert("max_tokens".into(), Value::from(1));
        o.remove("stream");
    }
    let mut started = messages::start(&request, headers)?;
    messages::settle_dropped(&mut started.dropped, mapping, &mut started.chat)?;
    if let Some(o) = started.chat.as_object_mut() {
        o.remove("max_completion_tokens");
    }
    Ok(started.chat)
}

/// The estimate of a chat request's input tokens: the characters of its text, divided by
/// [`CHARS_PER_TOKEN`] and rounded up, at least 1. Its text is every message's text (a string
/// content, `text` parts, `reasoning_content`, tool calls' names and arguments, tool results)
/// and the JSON of `tools`; images, audio and files are not counted.
pub fn estimate(chat: &Value) -> u64 {
    let mut chars = 0;
    for m in chat["messages"].as_array().into_iter().flatten() {
        chars += text_chars(&m["content"]) + text_chars(&m["reasoning_content"]);
        for call in m["tool_calls"].as_array().into_iter().flatten() {
            chars += text_chars(&call["function"]["name"]);
            chars += text_chars(&call["function"]["arguments"]);
        }
    }
    if let Some(tools) = chat.get("tools").filter(|t| !t.is_null()) {
        chars += tools.to_string().chars().count();
    }
    chars.div_ceil(CHARS_PER_TOKEN).max(1) as u64
}

/// The characters of a string, or of the `text` parts of a content array.
fn text_chars(v: &Value) -> usize {
    match v {
        Value::String(s) => s.chars().count(),
        Value::Array(parts) => parts
            .iter()
            .filter(|p| p["type"] == "text")
            .map(|p| text_chars(&p["text"]))
            .sum(),
        _ => 0,
    }
}

/// The answer of a route whose count is normalized: `{"input_tokens": N}`.
pub fn answer(n: Option<&Value>) -> Result<Value, ProxyError> {
    match n.and_then(Value::as_u64) {
        Some(n) => Ok(json!({"input_tokens": n})),
        None => Err(ProxyError::BadUpstreamResponse {
            message: "the upstream's token count has no input_tokens".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_is_a_quarter_of_the_text_rounded_up() {
        let chat = json!({"model": "m", "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [
                {"type": "text", "text": "Hello"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAAAAAAAAAA"}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ]},
            {"role": "tool", "tool_call_id": "c", "content": "ok"}
        ]});
        // 9 + 5 + 1 + 2 + 2 = 19 characters (the image is not counted): 5 tokens.
        assert_eq!(estimate(&chat), 5);
        let mut with_tools = chat.clone();
        with_tools["tools"] = json!([{"type": "function"}]);
        // The tools' JSON, `[{"type":"function"}]`, is 21 more characters: 40, 10 tokens.
        assert_eq!(estimate(&with_tools), 10);
        assert_eq!(estimate(&json!({"messages": []})), 1);
    }

    #[test]
    fn a_normalized_count_needs_a_number() {
        assert_eq!(answer(Some(&json!(7))).unwrap(), json!({"input_tokens": 7}));
        assert!(answer(None).is_err());
        assert!(answer(Some(&json!("7"))).is_err());
    }
}
