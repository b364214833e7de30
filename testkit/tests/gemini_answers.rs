//! The fake Gemini's deterministic answers (wire-formats.md 3.3-3.5): function calls and trigger words.

mod common;

use std::time::Duration;

use rosetta_testkit::FakeUpstream;
use serde_json::json;

use common::gemini::*;

#[tokio::test]
async fn tools_produce_function_calls_without_ids() {
    let fake = FakeUpstream::gemini().await;
    let body = with(ask("weather in Paris?"), "/tools", weather_tools());
    let m = generate(&fake, &body).await.json();
    let c = &m["candidates"][0];
    assert_eq!(
        c["finishReason"], "STOP",
        "Gemini has no tool-call finish reason"
    );
    let parts = c["content"]["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 1);
    assert_eq!(
        parts[0]["functionCall"],
        json!({"name": "get_weather", "args": {"city": "Paris", "days": 3}})
    );
    assert!(parts[0]["functionCall"].get("id").is_none());
    assert!(parts[0]["thoughtSignature"].as_str().unwrap().len() > 10);

    let two = generate(
        &fake,
        &with(
            body.clone(),
            "/contents/0/parts/0/text",
            json!("TWO TOOLS please"),
        ),
    )
    .await
    .json();
    let parts = two["candidates"][0]["content"]["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(
        parts[1]["functionCall"],
        json!({"name": "get_time", "args": {"utc": true, "offset": 1.5}})
    );
    assert!(parts[1].get("thoughtSignature").is_none());

    let none = with(
        body.clone(),
        "/toolConfig",
        json!({"functionCallingConfig": {"mode": "NONE"}}),
    );
    let m = generate(&fake, &none).await.json();
    assert_eq!(
        m["candidates"][0]["content"]["parts"][0]["text"],
        "Hello! You said: weather in Paris?"
    );
    let forced = with(
        body.clone(),
        "/toolConfig",
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_time"]}}),
    );
    let m = generate(&fake, &forced).await.json();
    assert_eq!(
        m["candidates"][0]["content"]["parts"][0]["functionCall"]["name"],
        "get_time"
    );
    let json_schema = with(
        ask("x"),
        "/tools",
        json!([{"functionDeclarations": [{"name": "lookup",
        "parametersJsonSchema": {"type": "object", "properties": {"q": {"type": "string"}}, "additionalProperties": false}}]}]),
    );
    let m = generate(&fake, &json_schema).await;
    assert_eq!(
        m.status,
        200,
        "parametersJsonSchema takes plain JSON Schema: {}",
        m.text()
    );
    assert_eq!(
        m.json()["candidates"][0]["content"]["parts"][0]["functionCall"]["args"],
        json!({"q": "Paris"})
    );

    let round_trip = tool_turns(
        json!({"city": "Paris"}),
        json!({"result": {"temp_c": 18}}),
        "get_weather",
    );
    let m = generate(&fake, &round_trip).await.json();
    assert_eq!(
        m["candidates"][0]["content"]["parts"],
        json!([{"text": "Tool said: {\"result\":{\"temp_c\":18}}"}])
    );
}

#[tokio::test]
async fn trigger_words_select_the_answer() {
    let fake = FakeUpstream::gemini().await;
    let m = generate(&fake, &ask("THINK first")).await.json();
    let parts = &m["candidates"][0]["content"]["parts"];
    assert_eq!(parts[0]["thought"], true);
    assert!(parts[0]["text"].as_str().unwrap().len() > 10);
    assert_eq!(parts[1], json!({"text": "Hello! You said: THINK first"}));
    let u = &m["usageMetadata"];
    let thoughts = u["thoughtsTokenCount"].as_u64().unwrap();
    assert!(thoughts > 0);
    assert_eq!(
        u["totalTokenCount"].as_u64().unwrap(),
        u["promptTokenCount"].as_u64().unwrap()
            + u["candidatesTokenCount"].as_u64().unwrap()
            + thoughts
    );
    assert_eq!(
        generate(&fake, &ask("MAX TOKENS")).await.json()["candidates"][0]["finishReason"],
        "MAX_TOKENS"
    );
    let blocked = generate(&fake, &ask("SAFETY")).await.json();
    let c = &blocked["candidates"][0];
    assert_eq!(c["finishReason"], "SAFETY");
    assert!(c.get("content").is_none());
    assert!(
        c["safetyRatings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["blocked"] == true)
    );
    let mut two = ask("two please");
    two["generationConfig"] = json!({"candidateCount": 2});
    let m = generate(&fake, &two).await.json();
    assert_eq!(m["candidates"][1]["index"], 1);

    let r = generate(&fake, &ask("FAIL 429")).await;
    assert_eq!(r.status, 429);
    let e = &r.json()["error"];
    assert_eq!(e["status"], "RESOURCE_EXHAUSTED");
    assert!(
        e["details"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["retryDelay"] == "7s")
    );
    for (word, status, name) in [
        ("FAIL 500", 500, "INTERNAL"),
        ("FAIL 503", 503, "UNAVAILABLE"),
        ("FAIL 400", 400, "INVALID_ARGUMENT"),
    ] {
        let r = generate(&fake, &ask(word)).await;
        assert_eq!(
            (r.status, r.json()["error"]["status"].as_str()),
            (status, Some(name))
        );
        assert_eq!(r.json()["error"]["code"], status);
    }
    let r = generate(&fake, &ask("GARBAGE")).await;
    assert_eq!((r.status, r.text().as_str()), (200, "this is not json{"));
    let hang =
        tokio::time::timeout(Duration::from_millis(300), generate(&fake, &ask("HANG"))).await;
    assert!(hang.is_err(), "HANG must not answer");
}

/// `SEARCH` with Google Search on: a grounded answer whose `groundingMetadata` ties the text to
/// its pages, as the Gemini API documents it.
#[tokio::test]
async fn search_answers_with_grounding_metadata() {
    let fake = FakeUpstream::gemini().await;
    let body = with(
        ask("SEARCH what is rosetta"),
        "/tools",
        json!([{"googleSearch": {}}]),
    );
    let r = generate(&fake, &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let c = &r.json()["candidates"][0];
    let text = c["content"]["parts"][0]["text"].as_str().unwrap();
    assert!(text.starts_with("Rosetta makes LLM providers"), "{text}");
    assert_eq!(c["finishReason"], "STOP");
    let g = &c["groundingMetadata"];
    assert_eq!(g["webSearchQueries"], json!(["SEARCH what is rosetta"]));
    assert!(g["searchEntryPoint"]["renderedContent"].is_string());
    let chunks = g["groundingChunks"].as_array().unwrap();
    assert_eq!(chunks.len(), 2);
    assert!(chunks.iter().all(|c| c["web"]["uri"].is_string()));
    for s in g["groundingSupports"].as_array().unwrap() {
        let seg = &s["segment"];
        let from = seg["startIndex"].as_u64().unwrap_or(0) as usize;
        let to = seg["endIndex"].as_u64().unwrap() as usize;
        assert_eq!(&text[from..to], seg["text"].as_str().unwrap());
    }
    let plain = generate(&fake, &ask("SEARCH without the tool"))
        .await
        .json();
    assert!(plain["candidates"][0].get("groundingMetadata").is_none());
}
