//! The Messages API on every shipped chat mapping, against the faithful fakes.
//!
//! A mapping that does not speak the dialect must reach its upstream with the same request as
//! the equivalent Chat Completions call and carry back the same answer; the mapping that does
//! (`native: [messages]`) passes the request and the answer through.

use serde_json::{Value, json};

use super::messages_support::{
    HEADERS, assert_message, events, fold, post_messages, stream_messages, text_of,
};
use super::responses::{Up, every_mapping};
use super::support::{Proxy, post, request_with_headers};

fn url(up: &Up, p: &Proxy) -> String {
    p.url(&format!("/{}/v1/messages?beta=true", up.name))
}

/// Whether the mapping's upstream speaks the Messages API itself.
fn native(up: &Up) -> bool {
    matches!(up.name, "anthropic" | "vertex-anthropic")
}

/// A native client's body as its upstream gets it: on Vertex without `model` (it is in the
/// URL) and with `anthropic_version` (vertex-anthropic.yaml's `native_body`).
fn passed_through(up: &Up, body: &Value) -> Value {
    let mut body = body.clone();
    if up.name == "vertex-anthropic" {
        let o = body.as_object_mut().unwrap();
        o.remove("model");
        o.insert("anthropic_version".into(), json!("vertex-2023-10-16"));
    }
    body
}

const WEATHER: &str = "get_weather";

fn tools() -> Value {
    json!([{"name": WEATHER, "description": "Weather in a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
        {"name": "get_time", "description": "Time in a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}])
}

#[tokio::test]
async fn text_on_every_mapping_is_the_chat_answer_and_the_same_upstream_request() {
    let (ups, proxy) = every_mapping().await;
    for up in &ups {
        let chat = post(
            &up.chat(&proxy),
            &json!({"model": up.model, "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi there"}],
                "temperature": 0.5, "max_completion_tokens": 200}),
        )
        .await;
        assert_eq!(chat.status, 200, "{}: {}", up.name, chat.text);
        let chat_sent = up.last_sent();
        let body = json!({"model": up.model, "max_tokens": 200, "temperature": 0.5,
            "system": [{"type": "text", "text": "Be brief."}],
            "messages": [{"role": "user", "content": "Hi there"}]});
        let r = post_messages(&url(up, &proxy), &body).await;
        assert_eq!(r.status, 200, "{}: {}", up.name, r.text);
        if native(up) {
            assert_eq!(
                up.last_sent(),
                passed_through(up, &body),
                "{}: passed through",
                up.name
            );
        } else {
            assert_eq!(
                up.last_sent(),
                chat_sent,
                "{}: same upstream request",
                up.name
            );
        }
        let m = r.json();
        assert_message(&m);
        assert_eq!(m["stop_reason"], "end_turn", "{}: {m}", up.name);
        let chat = chat.json();
        assert_eq!(
            text_of(&m),
            chat["choices"][0]["message"]["content"].as_str().unwrap(),
            "{}",
            up.name
        );
        assert_eq!(
            m["usage"]["output_tokens"], chat["usage"]["completion_tokens"],
            "{}",
            up.name
        );
        if !native(up) {
            assert_eq!(
                m["model"], up.model,
                "{}: the model as the client named it",
                up.name
            );
        }
    }
}

#[tokio::test]
async fn streamed_text_on_every_mapping_folds_into_the_whole_answer() {
    let (ups, proxy) = every_mapping().await;
    for up in &ups {
        let body = json!({"model": up.model, "max_tokens": 300,
            "messages": [{"role": "user", "content": "Say a few words please"}]});
        let whole = post_messages(&url(up, &proxy), &body).await.json();
        let mut body = body;
        body["stream"] = json!(true);
        let s = stream_messages(&url(up, &proxy), &body).await;
        let ev = events(&s);
        let folded = fold(&ev);
        assert_message(&folded);
        assert_eq!(text_of(&folded), text_of(&whole), "{}", up.name);
        assert_eq!(folded["stop_reason"], "end_turn", "{}", up.name);
        assert_eq!(
            folded["usage"]["output_tokens"], whole["usage"]["output_tokens"],
            "{}",
            up.name
        );
        let deltas = ev
            .iter()
            .filter(|e| e["type"] == "content_block_delta")
            .count();
        assert!(deltas > 1, "{}: the text arrives in pieces", up.name);
    }
}

/// A tool loop the way the SDKs' tool runners do it: the call, then its result sent back.
#[tokio::test]
async fn tool_use_and_its_result_round_trip_on_every_mapping_with_tools() {
    let (ups, proxy) = every_mapping().await;
    for up in ups.iter().filter(|u| u.tools) {
        for streamed in [false, true] {
            let ask = json!({"role": "user", "content": "Weather in Paris?"});
            let body = json!({"model": up.model, "max_tokens": 500, "messages": [ask],
                "tools": tools(), "tool_choice": {"type": "tool", "name": WEATHER},
                "stream": streamed});
            let first = if streamed {
                fold(&events(&stream_messages(&url(up, &proxy), &body).await))
            } else {
                let r = post_messages(&url(up, &proxy), &body).await;
                assert_eq!(r.status, 200, "{}: {}", up.name, r.text);
                r.json()
            };
            assert_message(&first);
            assert_eq!(first["stop_reason"], "tool_use", "{}: {first}", up.name);
            let calls: Vec<&Value> = first["content"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|b| b["type"] == "tool_use")
                .collect();
            assert_eq!(calls.len(), 1, "{}: {first}", up.name);
            assert_eq!(calls[0]["name"], WEATHER);
            assert!(
                calls[0]["input"]["city"].is_string(),
                "{}: {first}",
                up.name
            );
            let id = calls[0]["id"].as_str().unwrap();
            let second = json!({"model": up.model, "max_tokens": 500, "tools": tools(),
                "stream": streamed, "messages": [ask,
                {"role": "assistant", "content": first["content"]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": id,
                    "content": [{"type": "text", "text": "18C and sunny"}]}]}]});
            let answer = if streamed {
                fold(&events(&stream_messages(&url(up, &proxy), &second).await))
            } else {
                let r = post_messages(&url(up, &proxy), &second).await;
                assert_eq!(r.status, 200, "{}: {}", up.name, r.text);
                r.json()
            };
            assert!(
                text_of(&answer).contains("18C and sunny"),
                "{}: {answer}",
                up.name
            );
            assert_eq!(answer["stop_reason"], "end_turn");
        }
    }
}

#[tokio::test]
async fn parallel_tool_calls_are_blocks_in_order() {
    let (ups, proxy) = every_mapping().await;
    for up in ups.iter().filter(|u| u.tools) {
        for streamed in [false, true] {
            let body = json!({"model": up.model, "max_tokens": 500, "tools": tools(),
                "stream": streamed,
                "messages": [{"role": "user", "content": "TWO TOOLS for Paris"}]});
            let m = if streamed {
                fold(&events(&stream_messages(&url(up, &proxy), &body).await))
            } else {
                post_messages(&url(up, &proxy), &body).await.json()
            };
            let names: Vec<&str> = m["content"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|b| b["type"] == "tool_use")
                .map(|b| b["name"].as_str().unwrap())
                .collect();
            assert_eq!(
                names,
                [WEATHER, "get_time"],
                "{} streamed={streamed}: {m}",
                up.name
            );
            let ids: Vec<&Value> = m["content"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| &b["id"])
                .collect();
            assert_ne!(ids[ids.len() - 1], ids[ids.len() - 2], "{}", up.name);
        }
    }
}

/// Thinking comes back as a thinking block first; an upstream that signs its reasoning gets
/// the signed block back on the next turn.
#[tokio::test]
async fn thinking_is_a_block_first_and_its_signature_goes_back() {
    let (ups, proxy) = every_mapping().await;
    for up in ups.iter().filter(|u| u.reasoning) {
        let body = json!({"model": up.model, "max_tokens": 32000,
            "thinking": {"type": "enabled", "budget_tokens": 31999}, "tools": tools(),
            "messages": [{"role": "user", "content": "THINK about the weather in Paris"}]});
        for streamed in [false, true] {
            let mut body = body.clone();
            body["stream"] = json!(streamed);
            let m = if streamed {
                fold(&events(&stream_messages(&url(up, &proxy), &body).await))
            } else {
                post_messages(&url(up, &proxy), &body).await.json()
            };
            assert_message(&m);
            assert_eq!(m["content"][0]["type"], "thinking", "{}: {m}", up.name);
            assert!(!m["content"][0]["thinking"].as_str().unwrap().is_empty());
            // Gemini signs its thoughts in the tool call's id, not in the thinking block.
            if up.name == "anthropic" {
                assert!(
                    !m["content"][0]["signature"].as_str().unwrap().is_empty(),
                    "{}: {m}",
                    up.name
                );
            }
            if m["stop_reason"] != "tool_use" {
                continue;
            }
            // The tool result goes back with the signed thinking block first in its turn.
            let call = m["content"]
                .as_array()
                .unwrap()
                .iter()
                .find(|b| b["type"] == "tool_use")
                .unwrap();
            let next = json!({"model": up.model, "max_tokens": 32000,
                "thinking": {"type": "enabled", "budget_tokens": 31999}, "tools": tools(),
                "messages": [body["messages"][0], {"role": "assistant", "content": m["content"]},
                    {"role": "user", "content": [{"type": "tool_result",
                        "tool_use_id": call["id"], "content": "18C"}]}]});
            let r = post_messages(&url(up, &proxy), &next).await;
            assert_eq!(r.status, 200, "{}: {}", up.name, r.text);
            let sent = up.last_sent().to_string();
            let signature = m["content"][0]["signature"].as_str().unwrap();
            if !signature.is_empty() && up.name == "anthropic" {
                assert!(sent.contains(signature), "{}: {sent}", up.name);
            }
        }
    }
}

#[tokio::test]
async fn images_reach_the_upstream_as_the_chat_request_would_send_them() {
    let (ups, proxy) = every_mapping().await;
    let data = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
    for up in ups.iter().filter(|u| u.images && !native(u)) {
        let chat = json!({"model": up.model, "max_completion_tokens": 100, "messages": [{"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{data}")}}]}]});
        let c = post(&up.chat(&proxy), &chat).await;
        assert_eq!(c.status, 200, "{}: {}", up.name, c.text);
        let chat_sent = up.last_sent();
        let body = json!({"model": up.model, "max_tokens": 100, "messages": [{"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}]}]});
        let r = post_messages(&url(up, &proxy), &body).await;
        assert_eq!(r.status, 200, "{}: {}", up.name, r.text);
        assert_eq!(up.last_sent(), chat_sent, "{}", up.name);
    }
}

#[tokio::test]
async fn max_tokens_and_stop_sequences() {
    let (ups, proxy) = every_mapping().await;
    for up in &ups {
        for streamed in [false, true] {
            let body = json!({"model": up.model, "max_tokens": 5, "stream": streamed,
                "messages": [{"role": "user", "content": "MAX TOKENS please"}]});
            let m = if streamed {
                fold(&events(&stream_messages(&url(up, &proxy), &body).await))
            } else {
                post_messages(&url(up, &proxy), &body).await.json()
            };
            assert_eq!(m["stop_reason"], "max_tokens", "{}: {m}", up.name);
        }
        let body = json!({"model": up.model, "max_tokens": 50, "stop_sequences": ["END", "STOP"],
            "messages": [{"role": "user", "content": "STOPSEQ now"}]});
        let r = post_messages(&url(up, &proxy), &body).await;
        assert_eq!(r.status, 200, "{}: {}", up.name, r.text);
        let sent = up.last_sent().to_string();
        assert!(
            sent.contains("END") && sent.contains("STOP"),
            "{}: {sent}",
            up.name
        );
        let m = r.json();
        if native(up) {
            // Only an upstream of the dialect says which sequence stopped it.
            assert_eq!(m["stop_reason"], "stop_sequence", "{m}");
            assert_eq!(m["stop_sequence"], "END", "{m}");
        } else {
            assert_eq!(m["stop_reason"], "end_turn", "{}: {m}", up.name);
        }
    }
}

/// Every error class, before the first byte: the dialect's shape, type and status.
#[tokio::test]
async fn errors_before_the_first_byte_are_in_the_dialects_shape() {
    let (ups, proxy) = every_mapping().await;
    for up in ups.iter().filter(|u| u.fails) {
        for (trigger, status, kind) in [
            ("FAIL 429", 429, "rate_limit_error"),
            ("FAIL 500", 500, "api_error"),
        ] {
            let body = json!({"model": up.model, "max_tokens": 50,
                "messages": [{"role": "user", "content": trigger}]});
            let r = post_messages(&url(up, &proxy), &body).await;
            assert_eq!(r.status, status, "{} {trigger}: {}", up.name, r.text);
            let j = r.json();
            assert_eq!(j["type"], "error", "{}: {j}", up.name);
            assert_eq!(j["error"]["type"], kind, "{} {trigger}: {j}", up.name);
            assert!(
                j["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty())
            );
        }
    }
    let anthropic = &ups[0];
    let r = post_messages(
        &url(anthropic, &proxy),
        &json!({"model": anthropic.model, "max_tokens": 5,
            "messages": [{"role": "user", "content": "FAIL 529"}]}),
    )
    .await;
    assert_eq!(r.status, 529, "{}", r.text);
    assert_eq!(r.json()["error"]["type"], "overloaded_error");
    // Rosetta's own refusals.
    let before = anthropic.fake.requests().len();
    let no_model = post_messages(
        &proxy.url("/v1/messages"),
        &json!({"model": "no-such-model", "max_tokens": 5,
            "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(no_model.status, 404, "{}", no_model.text);
    assert_eq!(no_model.json()["error"]["type"], "not_found_error");
    let no_max = post_messages(
        &url(anthropic, &proxy),
        &json!({"model": anthropic.model, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(no_max.status, 400);
    assert_eq!(no_max.json()["error"]["type"], "invalid_request_error");
    let no_version = request_with_headers(
        "POST",
        &url(anthropic, &proxy),
        Some(
            json!({"model": anthropic.model, "max_tokens": 5,
            "messages": [{"role": "user", "content": "hi"}]})
            .to_string(),
        ),
        &[],
    )
    .await;
    assert_eq!(no_version.status, 400, "{}", no_version.text);
    assert!(
        no_version.text.contains("-version: header is required"),
        "{}",
        no_version.text
    );
    assert_eq!(
        anthropic.fake.requests().len(),
        before,
        "refusals never reach the upstream"
    );
}

/// A failure after the first byte is an `error` event and the end: never a `message_stop`.
#[tokio::test]
async fn errors_after_the_first_byte_are_error_events() {
    let (ups, proxy) = every_mapping().await;
    for up in &ups {
        let body = json!({"model": up.model, "max_tokens": 100, "stream": true,
            "messages": [{"role": "user", "content": "MIDSTREAM ERROR please say a few words"}]});
        let s = stream_messages(&url(up, &proxy), &body).await;
        let ev = events(&s);
        let last = ev.last().unwrap();
        assert_eq!(last["type"], "error", "{}: {ev:?}", up.name);
        assert!(last["error"]["type"].is_string(), "{}: {last}", up.name);
        assert!(last["error"]["message"].is_string(), "{}: {last}", up.name);
        assert!(
            !ev.iter().any(|e| e["type"] == "message_stop"),
            "{}",
            up.name
        );
    }
}

/// Beta flags never cause a refusal: an upstream of the dialect gets them, any other upstream
/// leaves them out and says so.
#[tokio::test]
async fn betas_go_to_a_native_upstream_and_are_reported_dropped_elsewhere() {
    let (ups, proxy) = every_mapping().await;
    let betas = "claude-code-20250219,interleaved-thinking-2025-05-14";
    let body = json!({"model": "m", "max_tokens": 20, "metadata": {"user_id": "u-1"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015"}]},
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi",
            "cache_control": {"type": "ephemeral"}}]}]});
    for up in &ups {
        let mut body = body.clone();
        body["model"] = json!(up.model);
        let mut headers = HEADERS.to_vec();
        headers.push(("anthropic-beta", betas));
        let r =
            request_with_headers("POST", &url(up, &proxy), Some(body.to_string()), &headers).await;
        assert_eq!(r.status, 200, "{}: {}", up.name, r.text);
        let dropped = r
            .headers
            .get("x-rosetta-dropped")
            .map(|v| v.to_str().unwrap().to_string());
        let seen = up.fake.requests().last().unwrap().clone();
        if native(up) {
            assert_eq!(dropped, None, "{}", up.name);
            assert_eq!(seen.header("anthropic-beta"), Some(betas));
            assert_eq!(seen.body["context_management"], body["context_management"]);
        } else {
            let dropped = dropped.unwrap_or_else(|| panic!("{}: nothing reported", up.name));
            for entry in [
                "beta:claude-code-20250219",
                "context_management",
                "cache_control",
            ] {
                assert!(dropped.contains(entry), "{}: {dropped}", up.name);
            }
            assert!(seen.header("anthropic-beta").is_none(), "{}", up.name);
            // Strictness refuses what would be left out.
            headers.push(("x-rosetta-strict", "true"));
            let strict =
                request_with_headers("POST", &url(up, &proxy), Some(body.to_string()), &headers)
                    .await;
            assert_eq!(strict.status, 400, "{}", strict.text);
        }
    }
}
