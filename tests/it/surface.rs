//! The HTTP surface: /health, /metrics, /NAME/v1/models, 404 and 405.

use serde_json::json;

use rosetta_testkit::FakeUpstream;

use super::support::{Proxy, Served, chat, post, request};

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
        "/anthropic/v2/chat",
        "/unknown/v1/chat/completions",
        "/v1/speech",
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
    let r = post(
        &proxy.url("/anthropic/v1/embeddings"),
        &json!({"model": "m", "input": "x"}),
    )
    .await;
    assert_eq!(
        r.status, 404,
        "the anthropic mapping has no embeddings route"
    );
    assert!(
        r.openai_error()["message"]
            .as_str()
            .unwrap()
            .contains("no embeddings route")
    );

    // Failed calls (the 405 above and this 400) show in the metrics, with fixed labels only.
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
            "rosetta_requests_total{mapping=\"anthropic\",route=\"chat\",status=\"4xx\"} 2"
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

#[tokio::test]
async fn unified_surface_routes_by_model() {
    let anthropic = FakeUpstream::anthropic().await;
    let ollama = FakeUpstream::ollama().await;
    let proxy = Proxy::start(&[
        ("ANTHROPIC_BASE_URL", anthropic.base_url()),
        ("ANTHROPIC_API_KEY", "k".into()),
        ("OLLAMA_BASE_URL", ollama.base_url()),
    ])
    .await;
    let url = proxy.url("/v1/chat/completions");
    // A declared model routes to its mapping; the response names the model as the client did.
    let r = post(&url, &chat("claude-sonnet-4-5", "Hi")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["model"], "claude-sonnet-4-5");
    assert_eq!(anthropic.requests().len(), 1);
    // NAME/model always selects the mapping, and the upstream sees the bare model.
    let r = post(&url, &chat("ollama/mistral:7b", "Hi")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["model"], "ollama/mistral:7b");
    assert_eq!(ollama.requests()[0].body["model"], "mistral:7b");
    // A model nobody claims is a clear 404.
    let r = post(&url, &chat("gpt-9", "Hi")).await;
    assert_eq!(r.status, 404);
    let e = r.openai_error();
    assert_eq!(e["code"], "model_not_found");
    assert!(e["message"].as_str().unwrap().contains("NAME/gpt-9"));
    // The unified list names every model routably.
    let list = request("GET", &proxy.url("/v1/models"), None).await.json();
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"anthropic/claude-sonnet-4-5"), "{ids:?}");
}

#[tokio::test]
async fn aliases_allow_lists_and_ambiguity() {
    let fake = FakeUpstream::anthropic().await;
    let dir = std::env::temp_dir().join(format!("rosetta-alias-{}", fastrand::u64(..)));
    std::fs::create_dir_all(&dir).unwrap();
    let src = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/mappings/anthropic.yaml"
    ))
    .unwrap();
    let aliased = src.replacen(
        "models:\n",
        "options: {only_declared_models: true}\nmodels:\n  - {id: sonnet, upstream: claude-sonnet-4-5-20250929}\n",
        1,
    );
    std::fs::write(dir.join("claude.yaml"), &aliased).unwrap();
    std::fs::write(dir.join("anthropic.yaml"), &src).unwrap();
    let proxy = Proxy::start_dir(
        &dir,
        &[
            ("ANTHROPIC_BASE_URL", fake.base_url()),
            ("ANTHROPIC_API_KEY", "k".into()),
        ],
    )
    .await;
    let r = post(
        &proxy.url("/claude/v1/chat/completions"),
        &chat("sonnet", "Hi"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["model"], "sonnet");
    assert_eq!(
        fake.requests()[0].body["model"],
        "claude-sonnet-4-5-20250929"
    );
    let r = post(
        &proxy.url("/claude/v1/chat/completions"),
        &chat("claude-2", "Hi"),
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.openai_error()["code"], "model_not_found");
    assert_eq!(
        fake.requests().len(),
        1,
        "a refused model never reaches the upstream"
    );
    // Both mappings declare claude-sonnet-4-5: the unified surface asks which one.
    let r = post(
        &proxy.url("/v1/chat/completions"),
        &chat("claude-sonnet-4-5", "Hi"),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(
        r.openai_error()["message"]
            .as_str()
            .unwrap()
            .contains("several mappings")
    );
    let r = post(
        &proxy.url("/v1/chat/completions"),
        &chat("claude/sonnet", "Hi"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn declared_ids_win_over_patterns_and_allow_lists_list_only_what_they_allow() {
    let anthropic = FakeUpstream::anthropic().await;
    let ollama = FakeUpstream::ollama().await;
    let dir = std::env::temp_dir().join(format!("rosetta-serves-{}", fastrand::u64(..)));
    std::fs::create_dir_all(&dir).unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let anth = std::fs::read_to_string(format!("{root}/mappings/anthropic.yaml")).unwrap();
    let olla = std::fs::read_to_string(format!("{root}/mappings/ollama.yaml")).unwrap();
    // `wide` claims every claude-* model by pattern; `anthropic` declares one exactly.
    std::fs::write(
        dir.join("wide.yaml"),
        anth.replacen(
            "models:\n",
            "options: {serves: [\"claude-*\"]}\nmodels:\n",
            1,
        )
        .replace("  - claude-sonnet-4-5\n", ""),
    )
    .unwrap();
    std::fs::write(dir.join("anthropic.yaml"), &anth).unwrap();
    std::fs::write(
        dir.join("strict.yaml"),
        olla.replacen(
            "models:\n",
            "options: {only_declared_models: true}\nmodels:\n",
            1,
        ),
    )
    .unwrap();
    let env = [
        ("ANTHROPIC_BASE_URL", anthropic.base_url()),
        ("ANTHROPIC_API_KEY", "k".to_string()),
        ("OLLAMA_BASE_URL", ollama.base_url()),
    ];
    let proxy = Proxy::start_dir(&dir, &env).await;
    let url = proxy.url("/v1/chat/completions");
    assert_eq!(
        post(&url, &chat("claude-sonnet-4-5", "Hi")).await.status,
        200,
        "declared by anthropic only"
    );
    assert_eq!(
        post(&url, &chat("claude-opus-9", "Hi")).await.status,
        200,
        "the wide pattern"
    );
    let ids: Vec<String> = request("GET", &proxy.url("/strict/v1/models"), None)
        .await
        .json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ids,
        vec!["llama3.2".to_string(), "qwen2.5".to_string()],
        "fetched models the allow-list refuses are not listed"
    );
    assert!(
        ollama.requests().is_empty(),
        "an allow-list needs no upstream listing"
    );
    assert!(
        proxy.metrics().contains(
            "rosetta_requests_total{mapping=\"strict\",route=\"models\",status=\"2xx\"} 1"
        )
    );
}

/// `rosetta health` exits 0 only for a 200 from /health: the container health check.
#[tokio::test]
async fn health_subcommand_exit_codes() {
    let proxy = Proxy::start(&[]).await;
    let sick = FakeUpstream::scripted(vec![rosetta_testkit::Reply::raw(
        503,
        "text/plain",
        "draining",
    )])
    .await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let cases = [
        (proxy.url("/health"), true),
        (format!("{}/health", sick.base_url()), false),
        (format!("http://{closed}/health"), false),
        ("https://127.0.0.1:1/health".to_string(), false),
    ];
    for (url, healthy) in cases {
        let arg = url.clone();
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_rosetta"))
                .args(["health", "--url", &arg, "--timeout", "3"])
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert_eq!(
            out.status.success(),
            healthy,
            "{url}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Sends one HTTP/1.1 request over a plain socket and returns the whole answer.
fn raw_http(addr: &str, path: &str, extra_header: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n{extra_header}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// `rosetta serve` (the binary) with only the Anthropic mapping, in front of `fake`.
fn serve_anthropic(fake: &FakeUpstream, key: &str, flags: &[&str]) -> Served {
    let dir = super::support::temp_dir();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/mappings/anthropic.yaml"),
        dir.join("anthropic.yaml"),
    )
    .unwrap();
    let base = fake.base_url();
    Served::spawn(
        &dir,
        &[("ANTHROPIC_BASE_URL", &base), ("ANTHROPIC_API_KEY", key)],
        flags,
    )
}

/// `rosetta serve --always-include-usage`: every stream ends with a usage chunk, though the
/// client (like LibreChat) did not ask with `stream_options`.
#[tokio::test]
async fn always_include_usage_flag_adds_the_usage_chunk() {
    let fake = FakeUpstream::anthropic_with_key("k").await;
    for (flags, wanted) in [(&["--always-include-usage"][..], true), (&[][..], false)] {
        let served = serve_anthropic(&fake, "k", flags);
        let addr = served.addr().to_string();
        let body = json!({"model": "claude-sonnet-4-5", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}).to_string();
        let out = tokio::task::spawn_blocking(move || {
            raw_http(&addr, "/anthropic/v1/chat/completions", "", &body)
        })
        .await
        .unwrap();
        drop(served);
        assert!(out.contains("data: [DONE]"), "{out}");
        assert_eq!(
            out.contains(r#""choices":[],"usage":{"#),
            wanted,
            "flags {flags:?}: {out}"
        );
    }
}

/// `rosetta serve --trace header`: a request sending `x-rosetta-trace: 1` is logged end to end
/// (client request, upstream request, each stream frame next to what was sent), with the API
/// key redacted; a request without the header is not logged.
#[tokio::test]
async fn trace_switch_logs_one_request_end_to_end_with_keys_redacted() {
    let key = "sk-ant-trace-secret-42";
    let fake = FakeUpstream::anthropic_with_key(key).await;
    let served = serve_anthropic(&fake, key, &["--trace", "header"]);
    let addr = served.addr().to_string();
    let body = json!({"model": "claude-sonnet-4-5", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}).to_string();
    let (a, b) = (addr.clone(), body.clone());
    let traced = tokio::task::spawn_blocking(move || {
        raw_http(
            &a,
            "/anthropic/v1/chat/completions",
            "x-rosetta-trace: 1\r\n",
            &b,
        )
    })
    .await
    .unwrap();
    assert!(traced.contains("data: [DONE]"), "{traced}");
    let log = served.drain();
    for stage in [
        "client request",
        "upstream request",
        "upstream response",
        "stream frame",
        "data: [DONE]",
    ] {
        assert!(log.contains(stage), "no {stage:?} in the trace:\n{log}");
    }
    assert!(
        log.contains("event: message_start"),
        "raw upstream events are logged:\n{log}"
    );
    assert!(
        log.contains("chat.completion.chunk"),
        "what was sent is logged:\n{log}"
    );
    assert!(log.contains(r#""x-api-key":"[redacted]""#), "{log}");
    assert!(
        !log.contains(key),
        "the API key leaked into the trace:\n{log}"
    );
    let plain = tokio::task::spawn_blocking(move || {
        raw_http(&addr, "/anthropic/v1/chat/completions", "", &body)
    })
    .await
    .unwrap();
    assert!(plain.contains("data: [DONE]"), "{plain}");
    let later: Vec<String> = served
        .drain()
        .lines()
        .skip(log.lines().count())
        .map(String::from)
        .collect();
    assert!(
        !later.iter().any(|l| l.contains("rosetta::trace")),
        "a request without the header is not traced: {later:?}"
    );
}
