//! The fake Azure OpenAI follows wire-formats.md section 7 (and section 1 for the bodies).

mod common;

use std::time::Duration;

use common::azure::*;
use common::send;
use rosetta_testkit::FakeUpstream;
use serde_json::{Value, json};

#[tokio::test]
async fn chat_completion_carries_filter_results() {
    let fake = FakeUpstream::azure().await;
    let r = post(&fake, CHAT, &chat("Hello")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("apim-request-id").is_some());
    let c = r.json();
    assert_eq!(c["object"], "chat.completion");
    assert!(c["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(
        c["model"], "gpt-4o-2024-08-06",
        "the model, not the deployment name"
    );
    let choice = &c["choices"][0];
    assert_eq!(
        choice["message"],
        json!({"role": "assistant", "content": "Hello! You said: Hello", "refusal": null})
    );
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(choice["content_filter_results"], safe_filters());
    let prompt = &c["prompt_filter_results"][0];
    assert_eq!(prompt["prompt_index"], 0);
    assert_eq!(
        prompt["content_filter_results"]["hate"],
        json!({"filtered": false, "severity": "safe"})
    );
    assert_eq!(c["usage"]["total_tokens"], 5);
}

#[tokio::test]
async fn routes_auth_and_api_versions() {
    let fake = FakeUpstream::azure_with_key("0123456789abcdef").await;
    let body = chat("x").to_string();
    let json_only = [("content-type", "application/json")];
    let r = send(fake.addr(), "POST", CHAT, &json_only, &body).await;
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (401, json!("401"))
    );
    let wrong = [("api-key", "nope"), ("content-type", "application/json")];
    let r = send(fake.addr(), "POST", CHAT, &wrong, &body).await;
    assert_eq!(r.status, 401);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Access denied due to invalid subscription key")
    );
    let bare = "/openai/deployments/gpt4o-prod/chat/completions";
    let r = send(fake.addr(), "POST", bare, HEADERS, &body).await;
    assert_eq!(
        (r.status, r.text()),
        (
            404,
            r#"{"error":{"code":"404","message": "Resource not found"}}"#.to_string()
        )
    );
    let old = send(
        fake.addr(),
        "POST",
        &format!("{bare}?api-version=2022-12-01"),
        HEADERS,
        &body,
    )
    .await;
    assert_eq!(
        (old.status, old.json()),
        (
            400,
            json!({"error": {"code": "BadRequest", "message": "API version not supported"}})
        )
    );
    let preview = send(
        fake.addr(),
        "POST",
        &format!("{bare}?api-version=2025-04-01-preview"),
        HEADERS,
        &body,
    )
    .await;
    assert_eq!(preview.status, 200);
    let gone = "/openai/deployments/missing-deployment/chat/completions?api-version=2024-10-21";
    let r = send(fake.addr(), "POST", gone, HEADERS, &body).await;
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (404, json!("DeploymentNotFound"))
    );
    let other = send(
        fake.addr(),
        "POST",
        "/openai/deployments/d/images?api-version=2024-10-21",
        HEADERS,
        &body,
    )
    .await;
    assert_eq!(other.status, 404);
    let mut extra = chat("x");
    extra["top_k"] = json!(5);
    let r = post(&fake, CHAT, &extra).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["error"]["message"],
        "Unrecognized request argument supplied: top_k"
    );
    let mut named = chat("x");
    named["model"] = json!("gpt-4o");
    assert_eq!(
        post(&fake, CHAT, &named).await.status,
        200,
        "model in the body is optional and harmless"
    );
    let recorded = fake.requests();
    assert_eq!(recorded.len(), 9);
    assert_eq!(
        recorded.last().unwrap().header("api-key"),
        Some("0123456789abcdef")
    );
}

#[tokio::test]
async fn validation_uses_the_openai_envelope() {
    let fake = FakeUpstream::azure().await;
    let cases = [
        (
            json!({"max_tokens": 5}),
            "Missing required parameter: 'messages'.",
        ),
        (
            json!({"messages": [{"role": "user", "content": "x"}], "temperature": -1}),
            "decimal below minimum value",
        ),
        (
            json!({"messages": [{"role": "user", "content": "x"}], "stream_options": {"include_usage": true}}),
            "only allowed when 'stream' is enabled",
        ),
        (
            json!({"messages": [{"role": "tool", "tool_call_id": "c", "content": "x"}]}),
            "must be a response to a preceeding message",
        ),
    ];
    for (body, message) in cases {
        let r = post(&fake, CHAT, &body).await;
        assert_eq!(r.status, 400, "{body}");
        let e = &r.json()["error"];
        assert_eq!(e["type"], "invalid_request_error");
        assert!(
            e["message"].as_str().unwrap().contains(message),
            "{body}: {e}"
        );
    }
}

#[tokio::test]
async fn filters_and_faults() {
    let fake = FakeUpstream::azure().await;
    let c = post(&fake, CHAT, &chat("FILTERED story")).await.json();
    assert_eq!(c["choices"][0]["finish_reason"], "content_filter");
    assert_eq!(
        c["choices"][0]["content_filter_results"]["violence"],
        json!({"filtered": true, "severity": "medium"})
    );
    let cs = chunks(&post(&fake, CHAT, &streaming("FILTERED story")).await);
    let last = &cs.last().unwrap()["choices"][0];
    assert_eq!(last["finish_reason"], "content_filter");
    assert_eq!(last["content_filter_results"]["violence"]["filtered"], true);

    let r = post(&fake, CHAT, &chat("FILTER PROMPT")).await;
    assert_eq!(r.status, 400);
    let e = &r.json()["error"];
    assert_eq!(
        (e["code"].clone(), e["param"].clone(), e["type"].clone()),
        (json!("content_filter"), json!("prompt"), Value::Null)
    );
    assert_eq!(e["innererror"]["code"], "ResponsibleAIPolicyViolation");
    assert_eq!(
        e["innererror"]["content_filter_result"]["hate"]["filtered"],
        true
    );

    let r = post(&fake, CHAT, &chat("FAIL 429")).await;
    assert_eq!((r.status, r.header("retry-after")), (429, Some("7")));
    let e = r.json()["error"].clone();
    assert_eq!(e["code"], "429");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("API version 2024-10-21")
    );
    assert_eq!(
        post(&fake, CHAT, &chat("FAIL 500")).await.json()["error"]["type"],
        "server_error"
    );

    let r = post(&fake, CHAT, &streaming("MIDSTREAM ERROR now")).await;
    let events = r.sse();
    assert_eq!(
        events.len(),
        5,
        "prompt filter, role, 2 content chunks, error"
    );
    assert!(events[4].1.starts_with("{\"error\":{"));
    let reset = post(&fake, CHAT, &streaming("RESET now")).await;
    assert!(reset.error.is_some());
    assert_eq!(
        post(&fake, CHAT, &chat("GARBAGE")).await.text(),
        "this is not json{"
    );
    let hang =
        tokio::time::timeout(Duration::from_millis(300), post(&fake, CHAT, &chat("HANG"))).await;
    assert!(hang.is_err());

    let embed = "/openai/deployments/ada/embeddings?api-version=2024-10-21";
    let e = post(&fake, embed, &json!({"input": ["a b", "c"]}))
        .await
        .json();
    assert_eq!(e["data"].as_array().unwrap().len(), 2);
    assert_eq!(e["model"], "text-embedding-3-small");
    let legacy = "/openai/deployments/instruct/completions?api-version=2024-10-21";
    let c = post(&fake, legacy, &json!({"prompt": "Say this"}))
        .await
        .json();
    assert_eq!(c["choices"][0]["text"], "Hello! You said: Say this");
    assert_eq!(c["choices"][0]["content_filter_results"], safe_filters());
}
