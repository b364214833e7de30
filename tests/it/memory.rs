//! What one request body may cost in memory: the JSON value limit, the parsed-size limit and the
//! in-flight budget, down to the peak RSS of the `rosetta` process under an attack body.

use std::time::{Duration, Instant};

use rosetta_testkit::FakeUpstream;
use serde_json::{Value, json};

use super::support::{Proxy, Resp, Served, chat, request_within, serve_anthropic, stream};

const URL: &str = "/anthropic/v1/chat/completions";
const MODEL: &str = "claude-sonnet-4-5";

async fn anthropic() -> (FakeUpstream, Vec<(&'static str, String)>) {
    let fake = FakeUpstream::anthropic_with_key("k").await;
    let env = vec![
        ("ANTHROPIC_BASE_URL", fake.base_url()),
        ("ANTHROPIC_API_KEY", "k".to_string()),
    ];
    (fake, env)
}

/// A chat of `n` tiny messages, written by hand (a `Value` of them would cost what the server
/// must not spend).
fn many_messages(n: usize) -> String {
    format!(
        r#"{{"model":"{MODEL}","messages":[{}{{"role":"user","content":"ZQXJ"}}]}}"#,
        r#"{"role":"user","content":"ZQXJ"},"#.repeat(n - 1)
    )
}

/// A small chat with `n` integers in a field no mapping reads.
fn many_integers(n: usize) -> String {
    format!(
        r#"{{"model":"{MODEL}","messages":[{{"role":"user","content":"Hi"}}],"x_ints":[{}7]}}"#,
        "7,".repeat(n - 1)
    )
}

/// A small chat with `size` bytes of padding in a field no mapping reads.
fn padded(text: &str, size: usize, stream: bool) -> String {
    format!(
        r#"{{"model":"{MODEL}","stream":{stream},"messages":[{{"role":"user","content":"{text}"}}],"x_pad":"{}"}}"#,
        "p".repeat(size)
    )
}

/// A real long agent chat: `turns` rounds of a user message, an assistant tool call and its
/// result, with two tools declared.
fn agent_chat(turns: usize) -> Value {
    let mut messages = vec![json!({"role": "system", "content": "You are a helpful agent."})];
    for i in 0..turns {
        messages.push(json!({"role": "user", "content": format!("Step {i}: what is the weather in city {i}?")}));
        messages.push(json!({"role": "assistant", "content": null, "tool_calls": [{
            "id": format!("call_{i}"), "type": "function",
            "function": {"name": "get_weather", "arguments": format!("{{\"city\":\"City {i}\"}}")}
        }]}));
        messages.push(json!({"role": "tool", "tool_call_id": format!("call_{i}"), "content": "{\"temp\":21,\"sky\":\"clear\"}"}));
    }
    messages.push(json!({"role": "user", "content": "Thanks, summarize."}));
    json!({"model": MODEL, "messages": messages, "tools": super::support::tools()})
}

async fn send(url: &str, body: String, timeout: Duration) -> Resp {
    request_within("POST", url, Some(body), timeout).await
}

fn assert_too_complex(r: &Resp, mentions: &str) {
    assert_eq!(r.status, 413, "{}", &r.text[..r.text.len().min(300)]);
    let e = r.openai_error();
    assert_eq!(e["type"], "invalid_request_error", "{e}");
    assert_eq!(e["code"], "request_too_complex", "{e}");
    let message = e["message"].as_str().unwrap();
    assert!(message.contains(mentions), "{message}");
    assert!(!r.text.contains("ZQXJ"), "the body is never echoed");
}

#[tokio::test]
async fn bodies_with_too_many_values_are_refused_before_parsing_and_real_chats_pass() {
    let (fake, env) = anthropic().await;
    let proxy = Proxy::start(&env).await;
    let url = proxy.url(URL);
    // 2,000 rounds of tool calls (6,000 messages, about 35,000 values) pass.
    let real = agent_chat(2000);
    let r = send(&url, real.to_string(), Duration::from_secs(60)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // 200,000 messages: 600,000 values, over the default 500,000.
    let r = send(&url, many_messages(200_000), Duration::from_secs(60)).await;
    assert_too_complex(&r, "more than 500000 JSON values");
    // 600,000 integers in a field no mapping reads cost as much parsed.
    let r = send(&url, many_integers(600_000), Duration::from_secs(60)).await;
    assert_too_complex(&r, "--max-json-values");
    // 150,000 nested one-key objects (450,000 values) stay under the value limit, but their
    // 2.2 MB would take about 200 MB parsed: past the parsed-size limit.
    let objects = format!(
        r#"{{"model":"{MODEL}","messages":[{{"role":"user","content":"Hi"}}],"x":[{}{{"a":0}}]}}"#,
        r#"{"a":{"b":0}},"#.repeat(150_000)
    );
    let r = send(&url, objects, Duration::from_secs(60)).await;
    assert_too_complex(&r, "--max-parsed-size");
    assert_eq!(fake.requests().len(), 1, "only the real chat went upstream");
    assert!(
        proxy
            .metrics()
            .contains("rosetta_rejected_total{reason=\"too_complex\"} 3"),
        "{}",
        proxy.metrics()
    );
}

/// `rosetta serve` with only the Anthropic mapping, in front of `fake`.
fn serve(fake: &FakeUpstream, env: &[(&str, &str)]) -> Served {
    serve_anthropic(fake, env, &[])
}

/// A line of `/proc/PID/status` in bytes (`VmHWM`: the peak resident set, `VmRSS`: now).
fn proc_kib(pid: u32, field: &str) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<usize>()
        .unwrap()
        * 1024
}

/// Runs `work` while watching the peak RSS of `pid`; fails as soon as it passes `bound`.
async fn under_bound<T>(pid: u32, bound: usize, what: &str, work: impl Future<Output = T>) -> T {
    let watch = async {
        loop {
            let peak = proc_kib(pid, "VmHWM");
            assert!(
                peak <= bound,
                "{what}: peak RSS {} MiB, over the bound of {} MiB",
                peak >> 20,
                bound >> 20
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::select! {
        out = work => out,
        _ = watch => unreachable!(),
    }
}

#[tokio::test]
async fn a_million_message_body_and_a_burst_of_eight_stay_within_the_memory_bound() {
    let (fake, _env) = anthropic().await;
    let served = serve(&fake, &[]);
    let pid = served.pid();
    let url = served.url(URL);
    let baseline = proc_kib(pid, "VmRSS");
    // docs/operations.md: requests hold at most --max-inflight-bytes (1 GiB by default), 64 MiB
    // more for the allocator and connection buffers.
    let bound = baseline + (1 << 30) + (64 << 20);
    let body = many_messages(1_000_000);
    assert!(
        body.len() > 28_000_000 && body.len() < 32 << 20,
        "{}",
        body.len()
    );
    let started = Instant::now();
    let r = under_bound(
        pid,
        bound,
        "one body",
        send(&url, body.clone(), Duration::from_secs(120)),
    )
    .await;
    assert_too_complex(&r, "JSON values");
    let one = started.elapsed();
    let one_peak = proc_kib(pid, "VmHWM");
    let burst = (0..8).map(|_| send(&url, body.clone(), Duration::from_secs(120)));
    let answers = under_bound(
        pid,
        bound,
        "eight bodies",
        futures_util::future::join_all(burst),
    )
    .await;
    for r in &answers {
        match r.status {
            413 => assert_too_complex(r, "JSON values"),
            503 => assert_eq!(r.headers["retry-after"], "1"),
            other => panic!("status {other}: {}", r.text),
        }
    }
    let peak = proc_kib(pid, "VmHWM");
    // A body refused after its scan costs its buffer and nothing more.
    let buffers = baseline + 8 * body.len() + (64 << 20);
    assert!(
        peak <= buffers,
        "peak RSS {} MiB, over the eight buffers ({} MiB)",
        peak >> 20,
        buffers >> 20
    );
    eprintln!(
        "baseline {} MiB; one 1M-message body: {:?}, peak {} MiB; burst of eight: peak {} MiB (bound {} MiB)",
        baseline >> 20,
        one,
        one_peak >> 20,
        peak >> 20,
        bound >> 20
    );
    assert!(fake.requests().is_empty());
    // Still serving.
    let r = send(&url, chat(MODEL, "Hi").to_string(), Duration::from_secs(10)).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn past_the_inflight_budget_large_requests_get_503_and_small_ones_pass() {
    let (fake, _env) = anthropic().await;
    let served = serve(&fake, &[("ROSETTA_MAX_INFLIGHT_BYTES", "64MiB")]);
    let url = served.url(URL);
    let metric = |text: &str, name: &str| -> i64 {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1)
    };
    // A slow stream with 8 MiB of padding holds about 43 MiB of the budget to its end.
    let held: Value = serde_json::from_str(&padded("SLOW one two three", 8 << 20, true)).unwrap();
    let running = tokio::spawn({
        let url = url.clone();
        async move { stream(&url, &held).await }
    });
    // Its charge is taken before the upstream is called.
    assert!(
        fake.wait_open_connections(1, Duration::from_secs(10)).await,
        "the stream reached the upstream"
    );
    let large = padded("Hi", 8 << 20, false);
    let r = send(&url, large.clone(), Duration::from_secs(20)).await;
    assert_eq!(r.status, 503, "{}", &r.text[..r.text.len().min(300)]);
    assert_eq!(r.headers["retry-after"], "1");
    let e = r.openai_error();
    assert_eq!(e["type"], "server_error", "{e}");
    assert_eq!(e["code"], "overloaded", "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("67108864 bytes"),
        "{e}"
    );
    // A small one passes meanwhile.
    let r = send(&url, chat(MODEL, "Hi").to_string(), Duration::from_secs(20)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Once the stream has ended, its charge is back and the large request passes.
    let s = running.await.unwrap();
    assert_eq!(s.status, 200);
    assert!(s.done(), "{}", s.text());
    // A request larger than the whole budget can never pass: 413.
    let r = send(&url, padded("Hi", 20 << 20, false), Duration::from_secs(20)).await;
    assert_too_complex(&r, "--max-inflight-bytes");
    let r = send(&url, large, Duration::from_secs(20)).await;
    assert_eq!(r.status, 200, "{}", &r.text[..r.text.len().min(300)]);
    let m = served.metrics().await;
    assert_eq!(metric(&m, "rosetta_inflight_request_bytes"), 0, "{m}");
    assert!(
        m.contains("rosetta_rejected_total{reason=\"memory\"} 1"),
        "{m}"
    );
}
