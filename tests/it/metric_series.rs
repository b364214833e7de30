//! The series `/metrics` shows after a few calls of every kind (whole, stream, client error,
//! no mapping, model list, upstream failure, a reload in between): the same names, labels and
//! counts as when every request resolved its labels itself.

use std::collections::BTreeSet;
use std::path::Path;

use rosetta::serving::state::MappingSet;
use rosetta_testkit::FakeUpstream;
use serde_json::json;

use super::support::{Proxy, chat, post, request, stream};

/// Every series of `text`, without histogram buckets (a bucket exists exactly when its
/// histogram's `_count` does). Counters and counts keep their values; gauges and sums, which
/// depend on time, keep only their labels.
fn series(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| l.starts_with("rosetta_") && !l.contains("_bucket{"))
        .map(|l| {
            let (name, _) = l.rsplit_once(' ').unwrap();
            let plain = name.split('{').next().unwrap();
            if plain.ends_with("_total") || plain.ends_with("_count") {
                l.to_string()
            } else {
                name.to_string()
            }
        })
        .filter(|l| !l.starts_with("rosetta_last_reload_success_timestamp"))
        .collect()
}

const EXPECTED: &str = include_str!("metric_series.txt");

#[tokio::test]
async fn metrics_after_calls_of_every_kind() {
    let anthropic = FakeUpstream::anthropic().await;
    let env = [
        ("ANTHROPIC_BASE_URL", anthropic.base_url()),
        ("ANTHROPIC_API_KEY", "k".to_string()),
        // Nothing listens there: every call fails before reaching an upstream.
        ("OLLAMA_BASE_URL", "http://127.0.0.1:9".to_string()),
    ];
    let proxy = Proxy::start(&env).await;
    let chat_url = proxy.url("/anthropic/v1/chat/completions");
    let r = post(&chat_url, &chat("claude-sonnet-4-5", "Hi")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut streamed = chat("claude-sonnet-4-5", "Hi");
    streamed["stream"] = json!(true);
    let s = stream(&chat_url, &streamed).await;
    assert_eq!(s.status, 200);
    let r = post(&chat_url, &json!({"model": "x"})).await;
    assert_eq!(r.status, 400);
    let r = post(&proxy.url("/v1/chat/completions"), &chat("gpt-9", "Hi")).await;
    assert_eq!(r.status, 404);
    let r = request("GET", &proxy.url("/anthropic/v1/models"), None).await;
    assert_eq!(r.status, 200);
    let r = post(
        &proxy.url("/ollama/v1/chat/completions"),
        &chat("llama3", "Hi"),
    )
    .await;
    assert_eq!(r.status, 502, "{}", r.text);

    // A reload: the same series continue.
    let env_of = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
    let ms = rosetta::mapping::load_dir(&dir, &env_of).unwrap();
    proxy
        .state
        .replace_mappings(MappingSet::new(ms, &proxy.state.metrics));
    let r = post(&chat_url, &chat("claude-sonnet-4-5", "Hi")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let s = stream(&chat_url, &streamed).await;
    assert_eq!(s.status, 200);

    let got = series(&proxy.metrics());
    let expected: BTreeSet<String> = EXPECTED.lines().map(String::from).collect();
    let missing: Vec<_> = expected.difference(&got).collect();
    let extra: Vec<_> = got.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing: {missing:#?}\nextra: {extra:#?}\nall:\n{}",
        got.iter().cloned().collect::<Vec<_>>().join("\n")
    );
}
