//! Vertex AI through the shipped `vertex` (Gemini) and `vertex-anthropic` (Claude) mappings, in
//! front of the fake Vertex and the fake Google token endpoint, with a pinned clock: text,
//! streaming, tools, images, usage and errors, every call carrying a minted bearer token.

use std::path::{Path, PathBuf};

use rosetta::ops::clock::Clock;
use rosetta_testkit::{FakeUpstream, GoogleTokens};
use serde_json::{Value, json};

use super::support::{Proxy, chat, post, stream, temp_dir, tools};

/// 2026-11-01T00:00:00Z: the pinned "now" of these tests.
pub const T0: i64 = 1_793_491_200_000;
const CLAUDE: &str = "claude-sonnet-4-5@20250929";

/// Rosetta with the shipped mappings, both fakes, and a key file naming the fake token endpoint.
pub struct Google {
    pub clock: Clock,
    pub tokens: GoogleTokens,
    /// Kept running for the test's length.
    pub _token_endpoint: FakeUpstream,
    pub vertex: FakeUpstream,
    pub proxy: Proxy,
}

impl Google {
    pub async fn start() -> Google {
        Self::start_in(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings"),
            None,
        )
        .await
    }

    /// In `mappings`, with this key file text (`None`: the TEST key naming the fake endpoint).
    pub async fn start_in(mappings: &Path, key: Option<String>) -> Google {
        let clock = Clock::manual(T0);
        let judge = clock.clone();
        let tokens = GoogleTokens::new(move || judge.now_ms() / 1000);
        let token_endpoint = FakeUpstream::google_token(&tokens).await;
        let vertex = FakeUpstream::vertex(&tokens).await;
        let dir = temp_dir();
        let uri = format!("{}/token", token_endpoint.base_url());
        let key = key.unwrap_or_else(|| GoogleTokens::key_file(&uri));
        std::fs::write(dir.join("key.json"), key.replace("TOKEN_URI", &uri)).unwrap();
        let env = [
            (
                "GOOGLE_APPLICATION_CREDENTIALS",
                dir.join("key.json").display().to_string(),
            ),
            ("VERTEX_PROJECT", "rosetta-test-project".to_string()),
            ("VERTEX_BASE_URL", vertex.base_url()),
        ];
        let c = clock.clone();
        let proxy = Proxy::start_with(mappings, &env, move |s| s.with_clock(c)).await;
        Google {
            clock,
            tokens,
            _token_endpoint: token_endpoint,
            vertex,
            proxy,
        }
    }

    pub fn chat_url(&self, mapping: &str) -> String {
        self.proxy.url(&format!("/{mapping}/v1/chat/completions"))
    }

    /// The `Authorization` of the fake Vertex's last request.
    pub fn last_bearer(&self) -> String {
        let reqs = self.vertex.requests();
        let last = reqs.last().expect("Vertex got a request");
        last.header("authorization").unwrap_or_default().to_string()
    }
}

#[tokio::test]
async fn gemini_on_vertex_text_with_a_minted_token_and_usage() {
    let g = Google::start().await;
    let r = post(&g.chat_url("vertex"), &chat("gemini-2.5-flash", "Hi there")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    assert_eq!(
        j["choices"][0]["message"]["content"], "Hello! You said: Hi there",
        "{j}"
    );
    assert_eq!(j["model"], "gemini-2.5-flash");
    assert!(j["usage"]["prompt_tokens"].as_u64().unwrap() > 0, "{j}");
    let req = g.vertex.requests().pop().unwrap();
    assert_eq!(
        req.path,
        "/v1/projects/rosetta-test-project/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent"
    );
    assert!(
        req.header("x-goog-api-key").is_none(),
        "no API key on Vertex"
    );
    let bearer = g.last_bearer();
    let token = bearer.strip_prefix("Bearer ").expect("a bearer token");
    assert!(g.tokens.is_valid(token));
    assert_eq!(g.tokens.exchanges(), 1);
    // The next call reuses the token.
    let r = post(&g.chat_url("vertex"), &chat("gemini-2.5-flash", "Again")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(g.tokens.exchanges(), 1);
    assert_eq!(g.last_bearer(), bearer);
    // The token never reaches the client, and the unified surface finds the mapping by name.
    assert!(!r.text.contains(token));
    let r = post(
        &g.proxy.url("/v1/chat/completions"),
        &chat("vertex/gemini-2.5-flash", "U"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn gemini_on_vertex_streams_tools_and_images() {
    let g = Google::start().await;
    let mut body = chat("gemini-2.5-flash", "Tell me");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let s = stream(&g.chat_url("vertex"), &body).await;
    assert_eq!(s.status, 200);
    s.assert_valid();
    assert_eq!(s.content(), "Hello! You said: Tell me");
    assert!(s.done());
    let last = s.chunks().pop().unwrap();
    assert!(
        last["usage"]["total_tokens"].as_u64().unwrap() > 0,
        "{last}"
    );
    let req = g.vertex.requests().pop().unwrap();
    assert!(
        req.path.ends_with(":streamGenerateContent?alt=sse"),
        "{}",
        req.path
    );

    let mut body = chat("gemini-2.5-flash", "Weather in Paris?");
    body["tools"] = tools();
    let r = post(&g.chat_url("vertex"), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    assert_eq!(j["choices"][0]["finish_reason"], "tool_calls", "{j}");
    assert_eq!(
        j["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        "get_weather"
    );

    let png = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg==";
    let body = json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": png}}]}]});
    let r = post(&g.chat_url("vertex"), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let parts = g.vertex.requests().pop().unwrap().body["contents"][0]["parts"].clone();
    assert_eq!(parts[1]["inlineData"]["mimeType"], "image/png", "{parts}");
}

#[tokio::test]
async fn gemini_on_vertex_errors_keep_their_status() {
    let g = Google::start().await;
    let r = post(&g.chat_url("vertex"), &chat("gemini-2.5-flash", "FAIL 400")).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.openai_error()["code"], "INVALID_ARGUMENT");
    let r = post(&g.chat_url("vertex"), &chat("missing-model", "Hi")).await;
    assert_eq!(r.status, 404, "{}", r.text);
}

#[tokio::test]
async fn claude_on_vertex_text_stream_tools_images_usage_and_errors() {
    let g = Google::start().await;
    let r = post(&g.chat_url("vertex-anthropic"), &chat(CLAUDE, "Hi there")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    assert_eq!(
        j["choices"][0]["message"]["content"], "Hello! You said: Hi there",
        "{j}"
    );
    assert_eq!(j["model"], CLAUDE);
    assert!(j["usage"]["completion_tokens"].as_u64().unwrap() > 0, "{j}");
    let req = g.vertex.requests().pop().unwrap();
    assert_eq!(
        req.path,
        format!(
            "/v1/projects/rosetta-test-project/locations/us-central1/publishers/anthropic/models/{CLAUDE}:rawPredict"
        )
    );
    assert_eq!(req.body["anthropic_version"], "vertex-2023-10-16");
    assert!(req.body.get("model").is_none(), "{}", req.body);
    assert!(req.header("anthropic-version").is_none());
    assert!(req.header("x-api-key").is_none());

    let mut body = chat(CLAUDE, "THINK please");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    body["reasoning_effort"] = json!("low");
    let s = stream(&g.chat_url("vertex-anthropic"), &body).await;
    assert_eq!(s.status, 200);
    s.assert_valid();
    assert!(!s.reasoning().is_empty(), "{}", s.text());
    assert!(s.content().starts_with("Hello! You said:"), "{}", s.text());
    assert!(s.done());
    let req = g.vertex.requests().pop().unwrap();
    assert!(req.path.ends_with(":streamRawPredict"), "{}", req.path);
    assert_eq!(req.body["stream"], true);

    let mut body = chat(CLAUDE, "Weather in Paris?");
    body["tools"] = tools();
    body["stream"] = json!(true);
    let s = stream(&g.chat_url("vertex-anthropic"), &body).await;
    assert_eq!(s.finish_reason(), "tool_calls", "{}", s.text());

    let png = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg==";
    let body = json!({"model": CLAUDE, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": png}}]}]});
    let r = post(&g.chat_url("vertex-anthropic"), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let blocks = g.vertex.requests().pop().unwrap().body["messages"][0]["content"].clone();
    assert_eq!(blocks[1]["source"]["media_type"], "image/png", "{blocks}");

    let r = post(&g.chat_url("vertex-anthropic"), &chat(CLAUDE, "FAIL 429")).await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert_eq!(r.openai_error()["type"], "rate_limit_error");
    assert_eq!(g.tokens.exchanges(), 1, "one token served every call");
}

/// The shipped `name` mappings copied to a new directory, `edit` applied to `vertex.yaml`.
pub fn mappings_with(edit: impl Fn(&str) -> String) -> PathBuf {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
    let dir = temp_dir();
    for name in ["gemini.yaml", "vertex.yaml"] {
        let text = std::fs::read_to_string(shipped.join(name)).unwrap();
        let text = if name == "vertex.yaml" {
            edit(&text)
        } else {
            text
        };
        std::fs::write(dir.join(name), text).unwrap();
    }
    dir
}

/// A `/health` mapping entry by name.
pub async fn health_of(proxy: &Proxy, name: &str) -> (Value, Value) {
    let r = super::support::request("GET", &proxy.url("/health"), None).await;
    let h = r.json();
    let m = h["mappings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .cloned()
        .unwrap();
    (h, m)
}
