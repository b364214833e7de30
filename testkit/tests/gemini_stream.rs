//! The fake Gemini's streams (wire-formats.md 3.6): `?alt=sse` data-only SSE, the JSON array, and their faults.

mod common;

use std::time::Duration;

use common::send;
use rosetta_testkit::FakeUpstream;
use serde_json::{Value, json};

const KEY: (&str, &str) = ("x-goog-api-key", "AIza-test");

fn ask(text: &str) -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": text}]}]})
}

async fn stream(fake: &FakeUpstream, body: &Value, sse: bool) -> common::Exchange {
    let alt = if sse { "?alt=sse" } else { "" };
    let path = format!("/v1beta/models/gemini-2.5-flash:streamGenerateContent{alt}");
    send(fake.addr(), "POST", &path, &[KEY], &body.to_string()).await
}

/// Every event is data-only (no `event:` line) and is one JSON response object.
fn chunks(r: &common::Exchange) -> Vec<Value> {
    r.sse()
        .into_iter()
        .map(|(name, data)| {
            assert!(name.is_none(), "Gemini SSE has no event names");
            assert_ne!(data, "[DONE]", "Gemini SSE has no [DONE]");
            serde_json::from_str(&data).expect("each event is JSON")
        })
        .collect()
}

fn text_of(chunks: &[Value], thought: bool) -> String {
    chunks
        .iter()
        .flat_map(|c| {
            c["candidates"][0]["content"]["parts"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|p| (p["thought"] == true) == thought)
        .filter_map(|p| p["text"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn sse_text_stream_is_data_only_and_paced() {
    let fake = FakeUpstream::gemini().await;
    let r = stream(&fake, &ask("is 1 < 2 & 3 > 2 in Paris today"), true).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    assert!(r.error.is_none(), "ends cleanly at EOF");
    assert!(
        r.text()
            .starts_with("data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": ")
    );
    assert!(
        r.text().contains("\\u003c") && r.text().contains("\\u0026"),
        "Google escapes <, > and &"
    );
    assert!(!r.text().contains("event:"));
    let cs = chunks(&r);
    assert!(cs.len() >= 5, "text split into several chunks");
    assert_eq!(
        text_of(&cs, false),
        "Hello! You said: is 1 < 2 & 3 > 2 in Paris today"
    );
    let (last, rest) = cs.split_last().unwrap();
    for c in rest {
        let cand = &c["candidates"][0];
        assert!(
            cand.get("finishReason").is_none(),
            "finishReason only on the last chunk"
        );
        assert_eq!(cand["content"]["role"], "model");
        assert!(
            cand["content"]["parts"][0]["text"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
        );
        assert_eq!(
            c["usageMetadata"],
            json!({"promptTokenCount": 11, "totalTokenCount": 11})
        );
        assert_eq!(
            (&c["modelVersion"], &c["responseId"]),
            (&last["modelVersion"], &last["responseId"])
        );
    }
    assert_eq!(
        last["candidates"][0]["content"]["parts"],
        json!([{"text": ""}])
    );
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    let u = &last["usageMetadata"];
    assert_eq!(
        (
            u["promptTokenCount"].as_u64(),
            u["candidatesTokenCount"].as_u64(),
            u["totalTokenCount"].as_u64()
        ),
        (Some(11), Some(14), Some(25))
    );
    assert!(
        r.spread() > Duration::from_millis(60),
        "chunks spread over {:?}",
        r.spread()
    );
    assert!(r.chunks.len() >= cs.len(), "one body frame per chunk");
}

#[tokio::test]
async fn function_calls_arrive_whole_then_a_finish_chunk() {
    let fake = FakeUpstream::gemini().await;
    let mut body = ask("THINK, then TWO TOOLS");
    body["tools"] = json!([{"functionDeclarations": [
        {"name": "get_weather", "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}}},
        {"name": "get_time"}]}]);
    let cs = chunks(&stream(&fake, &body, true).await);
    let thought = text_of(&cs, true);
    assert!(thought.len() > 20, "thought parts come first: {thought}");
    assert_eq!(
        cs[0]["candidates"][0]["content"]["parts"][0]["thought"],
        true
    );
    let n = cs.len();
    let calls = &cs[n - 2]["candidates"][0];
    assert!(calls.get("finishReason").is_none());
    let parts = calls["content"]["parts"].as_array().unwrap();
    assert_eq!(
        parts[0]["functionCall"],
        json!({"name": "get_weather", "args": {"city": "Paris"}})
    );
    assert_eq!(
        parts[1]["functionCall"],
        json!({"name": "get_time", "args": {}})
    );
    assert!(parts[0]["thoughtSignature"].is_string());
    let last = &cs[n - 1];
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(
        last["candidates"][0]["content"]["parts"],
        json!([{"text": ""}])
    );
    assert!(
        last["usageMetadata"]["thoughtsTokenCount"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert_eq!(text_of(&cs, false), "", "no answer text beside the calls");
}

#[tokio::test]
async fn without_alt_sse_the_stream_is_a_json_array() {
    let fake = FakeUpstream::gemini().await;
    let r = stream(&fake, &ask("what is the weather like"), false).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=UTF-8")
    );
    let text = r.text();
    assert!(text.starts_with("[{\n  \"candidates\": ["), "{text}");
    assert!(text.contains("}\n,\r\n{\n") && text.ends_with("}\n]"));
    let all: Vec<Value> = serde_json::from_str(&text).expect("one JSON array");
    assert!(all.len() >= 5);
    assert_eq!(
        text_of(&all, false),
        "Hello! You said: what is the weather like"
    );
    assert_eq!(all.last().unwrap()["candidates"][0]["finishReason"], "STOP");
    assert!(r.chunks.len() >= all.len(), "written object by object");
    assert!(r.spread() > Duration::from_millis(50));

    let r = stream(&fake, &ask("MIDSTREAM ERROR now please"), false).await;
    let all: Vec<Value> = serde_json::from_str(&r.text()).expect("still one JSON array");
    assert_eq!(all.len(), 3);
    assert_eq!(all[2]["error"]["status"], "INTERNAL");
    let reset = stream(&fake, &ask("RESET now please"), false).await;
    assert!(reset.error.is_some());
    assert!(!reset.text().ends_with(']'));
}

#[tokio::test]
async fn stream_faults() {
    let fake = FakeUpstream::gemini().await;
    let r = stream(&fake, &ask("MIDSTREAM ERROR now please"), true).await;
    assert_eq!(r.status, 200);
    let cs = chunks(&r);
    assert_eq!(cs.len(), 3, "two text chunks, then the error");
    assert_eq!(text_of(&cs[..2], false), "Hello! You");
    assert_eq!(
        cs[2],
        json!({"error": {"code": 500, "status": "INTERNAL",
        "message": "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"}})
    );
    assert!(r.error.is_none(), "then the connection closes");

    let r = stream(&fake, &ask("RESET now please"), true).await;
    assert_eq!(r.status, 200);
    assert!(r.error.is_some(), "the client must see an aborted body");
    assert_eq!(chunks(&r).len(), 2);

    let r = stream(&fake, &ask("SAFETY check this text"), true).await;
    let cs = chunks(&r);
    let last = &cs.last().unwrap()["candidates"][0];
    assert_eq!(
        (cs.len(), last["finishReason"].as_str()),
        (3, Some("SAFETY"))
    );
    assert!(last.get("content").is_none() && last["safetyRatings"].is_array());

    let r = stream(&fake, &ask("MAX TOKENS"), true).await;
    assert_eq!(
        chunks(&r).last().unwrap()["candidates"][0]["finishReason"],
        "MAX_TOKENS"
    );
    let r = stream(&fake, &ask("GARBAGE"), false).await;
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=UTF-8")
    );
    let r = stream(&fake, &ask("GARBAGE"), true).await;
    assert_eq!(
        (r.header("content-type"), r.text().as_str()),
        (Some("text/event-stream"), "this is not json{")
    );
    let r = stream(&fake, &ask("FAIL 429"), true).await;
    assert_eq!(
        r.status, 429,
        "errors before the stream are plain HTTP errors"
    );
    assert_eq!(r.json()["error"]["status"], "RESOURCE_EXHAUSTED");

    let slow = stream(&fake, &ask("SLOW"), true).await;
    assert!(
        slow.spread() > Duration::from_millis(900),
        "{:?}",
        slow.spread()
    );
}

/// A grounded stream: the text in increments, `groundingMetadata` on the last chunk only.
#[tokio::test]
async fn search_grounding_comes_on_the_last_chunk() {
    let fake = FakeUpstream::gemini().await;
    let mut body = ask("SEARCH rosetta");
    body["tools"] = json!([{"googleSearch": {}}]);
    let cs = chunks(&stream(&fake, &body, true).await);
    assert!(cs.len() > 2);
    let (last, rest) = cs.split_last().unwrap();
    assert!(
        rest.iter()
            .all(|c| c["candidates"][0].get("groundingMetadata").is_none())
    );
    let g = &last["candidates"][0]["groundingMetadata"];
    assert_eq!(g["webSearchQueries"], json!(["SEARCH rosetta"]));
    assert!(text_of(&cs, false).starts_with("Rosetta makes LLM providers"));
}
