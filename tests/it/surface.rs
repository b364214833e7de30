//! The HTTP surface: /health, /metrics, /NAME/v1/models, 404 and 405.

use serde_json::json;

use super::support::{Proxy, chat, post, request};

#[tokio::test]
async fn health_metrics_models_and_not_found() {
    let proxy = Proxy::start(&[]).await;
    let h = request("GET", &proxy.url("/health"), None).await;
    assert_eq!(h.status, 200);
    assert!(
        h.headers["x-request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_")
    );
    let j = h.json();
    assert_eq!(j["status"], "ok");
    assert_eq!(j["version"], env!("CARGO_PKG_VERSION"));
    let names: Vec<&str> = j["mappings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"anthropic") && names.contains(&"ollama"),
        "{names:?}"
    );

    let m = request("GET", &proxy.url("/anthropic/v1/models"), None).await;
    assert_eq!(m.status, 200);
    let j = m.json();
    assert_eq!(j["object"], "list");
    assert_eq!(j["data"][0]["object"], "model");
    assert!(
        j["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["id"] == "claude-sonnet-4-5")
    );

    for path in [
        "/nope",
        "/anthropic/v1/embeddings",
        "/unknown/v1/chat/completions",
        "/v1/chat/completions",
    ] {
        let r = request("GET", &proxy.url(path), None).await;
        assert_eq!(r.status, 404, "{path}");
        assert!(
            r.openai_error()["message"]
                .as_str()
                .unwrap()
                .contains("anthropic")
        );
    }
    let r = request("GET", &proxy.url("/anthropic/v1/chat/completions"), None).await;
    assert_eq!(r.status, 405);
    r.openai_error();

    // A failed call shows in the metrics with fixed labels only.
    let r = post(
        &proxy.url("/anthropic/v1/chat/completions"),
        &json!({"model": "x"}),
    )
    .await;
    assert_eq!(r.status, 400);
    let _ = post(
        &proxy.url("/ollama/v1/chat/completions"),
        &chat("user-supplied-model-name", "hi"),
    )
    .await;
    let text = request("GET", &proxy.url("/metrics"), None).await.text;
    assert!(
        text.contains(
            "rosetta_requests_total{mapping=\"anthropic\",route=\"chat\",status=\"4xx\"} 1"
        ),
        "{text}"
    );
    for name in [
        "rosetta_request_duration_seconds",
        "rosetta_upstream_errors_total",
        "rosetta_requests_total",
    ] {
        assert!(text.contains(name), "{name} missing");
    }
    assert!(!text.contains("user-supplied-model-name"));
}
