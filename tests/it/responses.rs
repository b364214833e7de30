//! The OpenAI Responses API on every shipped chat mapping, against the faithful fakes.
//!
//! The strongest check is dialect-neutrality: a Responses call must reach the upstream as the
//! same request as the equivalent Chat Completions call, and carry back the same answer.

use serde_json::{Value, json};

use super::responses_support::{Events, events};
use super::support::{post, stream};

pub use super::every_mapping::{Up, every_mapping};

/// The text of every `output_text` part of every message item (the SDK's `output_text`).
pub fn output_text(response: &Value) -> String {
    response["output"]
        .as_array()
        .expect("output is a list")
        .iter()
        .filter(|i| i["type"] == "message")
        .flat_map(|i| i["content"].as_array().unwrap().clone())
        .filter(|p| p["type"] == "output_text")
        .map(|p| p["text"].as_str().unwrap().to_string())
        .collect()
}

/// The checks every Response object must pass.
pub fn assert_response(r: &Value, model: &str) {
    assert_eq!(r["object"], "response", "{r}");
    assert!(r["id"].as_str().unwrap().starts_with("resp_"), "{r}");
    assert!(r["created_at"].is_u64(), "{r}");
    assert_eq!(r["model"], model, "{r}");
    assert!(r["error"].is_null(), "{r}");
    let u = &r["usage"];
    for k in ["input_tokens", "output_tokens", "total_tokens"] {
        assert!(u[k].is_u64(), "usage.{k}: {r}");
    }
    assert!(u["input_tokens_details"]["cached_tokens"].is_u64(), "{r}");
    assert!(
        u["output_tokens_details"]["reasoning_tokens"].is_u64(),
        "{r}"
    );
    assert_eq!(
        u["total_tokens"].as_u64().unwrap(),
        u["input_tokens"].as_u64().unwrap() + u["output_tokens"].as_u64().unwrap()
    );
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
        let r = post(
            &up.responses(&proxy),
            &json!({"model": up.model, "instructions": "Be brief.", "input": "Hi there",
                "temperature": 0.5, "max_output_tokens": 200}),
        )
        .await;
        assert_eq!(r.status, 200, "{}: {}", up.name, r.text);
        assert_eq!(
            up.last_sent(),
            chat_sent,
            "{}: same upstream request",
            up.name
        );
        let j = r.json();
        assert_response(&j, up.model);
        assert_eq!(j["status"], "completed", "{}: {j}", up.name);
        assert_eq!(j["instructions"], "Be brief.");
        assert_eq!(j["max_output_tokens"], 200);
        let chat = chat.json();
        assert_eq!(
            output_text(&j),
            chat["choices"][0]["message"]["content"].as_str().unwrap(),
            "{}",
            up.name
        );
        assert_eq!(j["usage"]["input_tokens"], chat["usage"]["prompt_tokens"]);
        assert_eq!(
            j["usage"]["output_tokens"],
            chat["usage"]["completion_tokens"]
        );
        let msg = j["output"].as_array().unwrap().last().unwrap();
        assert_eq!(msg["type"], "message");
        assert_eq!(msg["role"], "assistant");
        assert_eq!(msg["status"], "completed");
        assert!(msg["id"].as_str().unwrap().starts_with("msg_"));
    }
}

#[tokio::test]
async fn the_unified_surface_routes_responses_by_model() {
    let (ups, proxy) = every_mapping().await;
    let up = &ups[0];
    let r = post(
        &proxy.url("/v1/responses"),
        &json!({"model": format!("{}/{}", up.name, up.model), "input": "Hi"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["model"], format!("{}/{}", up.name, up.model));
    assert_eq!(up.fake.requests().len(), 1);
    let m = proxy.metrics();
    assert!(
        m.lines().any(|l| l.starts_with("rosetta_requests_total")
            && l.contains("route=\"responses\"")
            && l.contains("mapping=\"anthropic\"")),
        "{m}"
    );
}

#[tokio::test]
async fn streamed_text_on_every_mapping_folds_into_the_whole_answer() {
    let (ups, proxy) = every_mapping().await;
    for up in &ups {
        let body = json!({"model": up.model, "input": "Say a few words please"});
        let whole = post(&up.responses(&proxy), &body).await.json();
        let mut body = body;
        body["stream"] = json!(true);
        let s = stream(&up.responses(&proxy), &body).await;
        let ev = events(&s);
        ev.assert_valid();
        let fin = ev.terminal();
        assert_eq!(fin["type"], "response.completed", "{}", up.name);
        let fin = &fin["response"];
        assert_response(fin, up.model);
        assert_eq!(output_text(fin), output_text(&whole), "{}", up.name);
        assert_eq!(ev.text_deltas(), output_text(&whole), "{}", up.name);
        assert_eq!(fin["usage"], whole["usage"], "{}", up.name);
        assert!(
            ev.of("response.output_text.delta").len() > 1,
            "{}: the text arrives in pieces",
            up.name
        );
    }
}

/// A Responses tool loop: the call, then its output sent back, the way the Agents SDK does it.
#[tokio::test]
async fn tool_call_and_its_output_round_trip_on_every_mapping_with_tools() {
    let (ups, proxy) = every_mapping().await;
    let tools = json!([{"type": "function", "name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        "strict": false}]);
    for up in ups.iter().filter(|u| u.tools) {
        for streamed in [false, true] {
            let body = json!({"model": up.model, "input": "Weather in Paris?", "tools": tools,
                "stream": streamed});
            let first = if streamed {
                let ev = events(&stream(&up.responses(&proxy), &body).await);
                ev.assert_valid();
                let args: String = ev
                    .of("response.function_call_arguments.delta")
                    .iter()
                    .map(|e| e["delta"].as_str().unwrap().to_string())
                    .collect();
                let done = ev.of("response.function_call_arguments.done");
                assert_eq!(done.len(), 1, "{}", up.name);
                assert_eq!(done[0]["arguments"].as_str().unwrap(), args, "{}", up.name);
                ev.terminal()["response"].clone()
            } else {
                let r = post(&up.responses(&proxy), &body).await;
                assert_eq!(r.status, 200, "{}: {}", up.name, r.text);
                r.json()
            };
            let calls: Vec<&Value> = first["output"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|i| i["type"] == "function_call")
                .collect();
            assert_eq!(calls.len(), 1, "{}: {first}", up.name);
            let call = calls[0];
            assert_eq!(call["name"], "get_weather");
            assert_eq!(call["status"], "completed");
            assert!(call["id"].as_str().unwrap().starts_with("fc_"));
            let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
            assert!(args.is_object(), "{}: {args}", up.name);
            let call_id = call["call_id"].as_str().unwrap();
            let second = json!({"model": up.model, "tools": tools, "input": [
                {"role": "user", "content": "Weather in Paris?"},
                {"type": "function_call", "call_id": call_id, "name": "get_weather",
                    "arguments": call["arguments"]},
                {"type": "function_call_output", "call_id": call_id, "output": "18C and sunny"}]});
            let r = post(&up.responses(&proxy), &second).await;
            assert_eq!(r.status, 200, "{}: {}", up.name, r.text);
            assert!(
                output_text(&r.json()).contains("18C and sunny"),
                "{}: {}",
                up.name,
                r.text
            );
        }
    }
}

#[tokio::test]
async fn reasoning_becomes_a_reasoning_item_first() {
    let (ups, proxy) = every_mapping().await;
    for up in ups.iter().filter(|u| u.reasoning) {
        let body = json!({"model": up.model, "input": "THINK about it",
            "reasoning": {"effort": "high", "summary": "auto"}});
        let r = post(&up.responses(&proxy), &body).await;
        assert_eq!(r.status, 200, "{}: {}", up.name, r.text);
        let j = r.json();
        let first = &j["output"][0];
        assert_eq!(first["type"], "reasoning", "{}: {j}", up.name);
        assert!(first["id"].as_str().unwrap().starts_with("rs_"));
        let summary = first["summary"][0]["text"].as_str().unwrap_or_default();
        assert!(!summary.is_empty(), "{}: {j}", up.name);
        assert_eq!(j["output"][1]["type"], "message", "{}: {j}", up.name);
        let mut body = body;
        body["stream"] = json!(true);
        let ev = events(&stream(&up.responses(&proxy), &body).await);
        ev.assert_valid();
        let streamed: String = ev
            .of("response.reasoning_summary_text.delta")
            .iter()
            .map(|e| e["delta"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(streamed, summary, "{}", up.name);
    }
}

#[tokio::test]
async fn images_and_json_schema_reach_the_upstream_as_the_chat_request_would_send_them() {
    let (ups, proxy) = every_mapping().await;
    let png = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
    let schema = json!({"type": "object", "properties": {"city": {"type": "string"}},
        "required": ["city"], "additionalProperties": false});
    for up in ups.iter().filter(|u| u.images) {
        let chat = json!({"model": up.model, "messages": [{"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": png}}]}],
            "response_format": {"type": "json_schema",
                "json_schema": {"name": "place", "schema": schema, "strict": true}}});
        let c = post(&up.chat(&proxy), &chat).await;
        assert_eq!(c.status, 200, "{}: {}", up.name, c.text);
        let chat_sent = up.last_sent();
        let resp = json!({"model": up.model, "input": [{"role": "user", "content": [
                {"type": "input_text", "text": "What is this?"},
                {"type": "input_image", "image_url": png}]}],
            "text": {"format": {"type": "json_schema", "name": "place", "schema": schema,
                "strict": true}}});
        let r = post(&up.responses(&proxy), &resp).await;
        assert_eq!(r.status, 200, "{}: {}", up.name, r.text);
        let mut sent = up.last_sent();
        // `detail` defaults to auto in Responses; the chat request above left it out.
        strip_detail(&mut sent);
        let mut chat_sent = chat_sent;
        strip_detail(&mut chat_sent);
        assert_eq!(sent, chat_sent, "{}", up.name);
        assert_eq!(r.json()["text"]["format"]["type"], "json_schema");
    }
}

fn strip_detail(v: &mut Value) {
    match v {
        Value::Object(o) => {
            if o.get("detail").is_some_and(|d| d == "auto") {
                o.remove("detail");
            }
            o.values_mut().for_each(strip_detail);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_detail),
        _ => {}
    }
}

#[tokio::test]
async fn max_output_tokens_gives_incomplete_whole_and_streamed() {
    let (ups, proxy) = every_mapping().await;
    for up in &ups {
        let body =
            json!({"model": up.model, "input": "MAX TOKENS please", "max_output_tokens": 16});
        let r = post(&up.responses(&proxy), &body).await;
        assert_eq!(r.status, 200, "{}: {}", up.name, r.text);
        let j = r.json();
        assert_eq!(j["status"], "incomplete", "{}: {j}", up.name);
        assert_eq!(j["incomplete_details"]["reason"], "max_output_tokens");
        let mut body = body;
        body["stream"] = json!(true);
        let ev = events(&stream(&up.responses(&proxy), &body).await);
        ev.assert_valid();
        let fin = ev.terminal();
        assert_eq!(fin["type"], "response.incomplete", "{}", up.name);
        assert_eq!(fin["response"]["status"], "incomplete");
        assert_eq!(
            fin["response"]["incomplete_details"]["reason"],
            "max_output_tokens"
        );
    }
}

#[tokio::test]
async fn upstream_failures_before_the_stream_are_http_errors_in_openai_shape() {
    let (ups, proxy) = every_mapping().await;
    for up in ups.iter().filter(|u| u.fails) {
        for (trigger, status) in [("FAIL 400", 400), ("FAIL 429", 429), ("FAIL 500", 500)] {
            for streamed in [false, true] {
                let body = json!({"model": up.model, "input": trigger, "stream": streamed});
                let r = post(&up.responses(&proxy), &body).await;
                assert_eq!(r.status, status, "{} {trigger}: {}", up.name, r.text);
                // The same failure on the chat route answers the same status and error.
                let chat = json!({"model": up.model, "stream": streamed,
                    "messages": [{"role": "user", "content": trigger}]});
                let c = post(&up.chat(&proxy), &chat).await;
                assert_eq!(c.status, r.status, "{} {trigger}", up.name);
                assert_eq!(c.openai_error()["type"], r.openai_error()["type"]);
                let e = r.openai_error();
                assert!(!e["message"].as_str().unwrap().is_empty());
            }
        }
    }
}

#[tokio::test]
async fn a_reset_in_the_middle_of_a_stream_ends_with_error_then_response_failed() {
    let (ups, proxy) = every_mapping().await;
    for up in &ups {
        let body = json!({"model": up.model, "input": "RESET now", "stream": true});
        let s = stream(&up.responses(&proxy), &body).await;
        let ev: Events = events(&s);
        ev.assert_numbered();
        let types = ev.types();
        assert!(
            types.iter().all(|t| t != "response.completed"),
            "{}: {types:?}",
            up.name
        );
        let n = types.len();
        assert_eq!(types[n - 2], "error", "{}: {types:?}", up.name);
        assert_eq!(types[n - 1], "response.failed", "{}: {types:?}", up.name);
        let failed = &ev.all()[n - 1]["response"];
        assert_eq!(failed["status"], "failed");
        assert!(failed["error"]["message"].is_string(), "{failed}");
        let err = &ev.all()[n - 2];
        assert!(err["message"].is_string(), "flat error event: {err}");
    }
}

/// `web_search` becomes the upstream's hosted search where the mapping translates
/// `web_search_options`; elsewhere it is left out, named in `x-rosetta-dropped`, and never
/// forwarded (not even by a mapping that passes the whole request on).
#[tokio::test]
async fn hosted_web_search_is_translated_or_named_as_dropped() {
    let (ups, proxy) = every_mapping().await;
    for up in &ups {
        let body = json!({"model": up.model, "input": "Hi", "tools": [{"type": "web_search"}]});
        let r = post(&up.responses(&proxy), &body).await;
        assert_eq!(r.status, 200, "{}: {}", up.name, r.text);
        let dropped = r
            .headers
            .get("x-rosetta-dropped")
            .map(|v| v.to_str().unwrap().to_string());
        let sent = up.last_sent();
        let text = sent.to_string();
        match up.name {
            "anthropic" => {
                assert_eq!(dropped, None, "{}", up.name);
                assert_eq!(sent["tools"][0]["type"], "web_search_20250305", "{sent}");
            }
            // Vertex grounds Gemini with Google Search as the Gemini API does (vertex.yaml
            // takes gemini.yaml's tools).
            "gemini" | "vertex" => {
                assert_eq!(dropped, None, "{}", up.name);
                assert_eq!(sent["tools"][0], json!({"googleSearch": {}}), "{sent}");
            }
            _ => {
                assert_eq!(
                    dropped.as_deref(),
                    Some("tools[0]:web_search"),
                    "{}",
                    up.name
                );
                assert!(!text.contains("web_search"), "{}: {text}", up.name);
            }
        }
    }
}
