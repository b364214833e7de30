//! Every shipped chat mapping behind one Rosetta, each in front of its faithful fake: what the
//! dialect tests (Responses, Messages, fidelity) run over. The cloud mappings are served too:
//! Bedrock's fake verifies each request's Signature Version 4, Vertex's wants a token minted by
//! the fake Google token endpoint; Rosetta, the Bedrock fake and the token endpoint's judge share
//! one pinned clock, so nothing depends on when the tests run.

use std::sync::Arc;

use rosetta::ops::clock::Clock;
use rosetta_testkit::{BedrockAuth, FakeUpstream, GoogleTokens, Provider};
use serde_json::Value;

use super::support::{Proxy, temp_dir};

/// 2026-11-01T00:00:00Z: the pinned "now" of Rosetta and the cloud fakes.
const T0: i64 = 1_793_491_200_000;
const AWS_KEY_ID: &str = "AKIDEXAMPLE";
const AWS_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// One shipped mapping with its fake, and what its upstream can do.
pub struct Up {
    pub name: &'static str,
    pub model: &'static str,
    /// The fake; `vertex` and `vertex-anthropic` share one (both read `VERTEX_BASE_URL`). The
    /// tests drive one mapping at a time, so its last request is the mapping's.
    pub fake: Arc<FakeUpstream>,
    pub tools: bool,
    pub reasoning: bool,
    pub images: bool,
    /// The fake fails on `FAIL 500` / `FAIL 429` with that status.
    pub fails: bool,
    /// A server the mapping also needs (Vertex's token endpoint), kept running.
    _aux: Option<Arc<FakeUpstream>>,
}

/// Every chat mapping, each with its own fake, behind one Rosetta.
pub async fn every_mapping() -> (Vec<Up>, Proxy) {
    let mut env = Vec::new();
    let mut ups = Vec::new();
    let mut add = |name, model, fake, vars: Vec<(&'static str, String)>, caps| {
        env.extend(vars);
        let (tools, reasoning, images, fails) = caps;
        ups.push(Up {
            name,
            model,
            fake: Arc::new(fake),
            tools,
            reasoning,
            images,
            fails,
            _aux: None,
        });
    };
    let f = FakeUpstream::anthropic_with_key("sk-ant-test-0123456789").await;
    let vars = vec![
        ("ANTHROPIC_BASE_URL", f.base_url()),
        ("ANTHROPIC_API_KEY", "sk-ant-test-0123456789".into()),
    ];
    add(
        "anthropic",
        "claude-sonnet-4-5",
        f,
        vars,
        (true, true, true, true),
    );
    let f = FakeUpstream::gemini_with_key("AIzaTest0123456789").await;
    let vars = vec![
        ("GEMINI_BASE_URL", f.base_url()),
        ("GEMINI_API_KEY", "AIzaTest0123456789".into()),
    ];
    add(
        "gemini",
        "gemini-2.5-flash",
        f,
        vars,
        (true, true, true, true),
    );
    let f = FakeUpstream::cohere_with_key("co-test-0123456789").await;
    let vars = vec![
        ("COHERE_BASE_URL", f.base_url()),
        ("COHERE_API_KEY", "co-test-0123456789".into()),
    ];
    add(
        "cohere",
        "command-a-03-2025",
        f,
        vars,
        (true, true, true, true),
    );
    let f = FakeUpstream::ollama().await;
    let vars = vec![("OLLAMA_BASE_URL", f.base_url())];
    add("ollama", "llama3.2", f, vars, (true, true, true, true));
    let f = FakeUpstream::tgi().await;
    let vars = vec![("TGI_BASE_URL", f.base_url())];
    add("tgi", "tgi", f, vars, (false, false, false, false));
    let f = FakeUpstream::azure_with_key("0123456789abcdef0123456789abcdef").await;
    let vars = vec![
        ("AZURE_OPENAI_BASE_URL", f.base_url()),
        (
            "AZURE_OPENAI_API_KEY",
            "0123456789abcdef0123456789abcdef".into(),
        ),
    ];
    add("azure", "gpt4o-prod", f, vars, (true, false, true, true));
    let f = FakeUpstream::openai_with_key("sk-local-0123456789abcd").await;
    let vars = vec![
        ("OPENAI_COMPATIBLE_BASE_URL", format!("{}/v1", f.base_url())),
        (
            "OPENAI_COMPATIBLE_API_KEY",
            "sk-local-0123456789abcd".into(),
        ),
    ];
    add(
        "openai-compatible",
        "gpt-4o-mini",
        f,
        vars,
        (true, false, true, true),
    );
    let clock = Clock::manual(T0);
    let f = bedrock_fake().await;
    let vars = vec![
        ("BEDROCK_BASE_URL", f.base_url()),
        ("AWS_REGION", "us-west-2".into()),
        ("AWS_ACCESS_KEY_ID", AWS_KEY_ID.into()),
        ("AWS_SECRET_ACCESS_KEY", AWS_SECRET.into()),
    ];
    add(
        "bedrock",
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        f,
        vars,
        (true, true, true, true),
    );
    let (vertex, token_endpoint, vars) = vertex_fakes(&clock).await;
    env.extend(vars);
    let (vertex, token_endpoint) = (Arc::new(vertex), Arc::new(token_endpoint));
    for (name, model) in [
        ("vertex", "gemini-2.5-flash"),
        ("vertex-anthropic", "claude-sonnet-4-5@20250929"),
    ] {
        ups.push(Up {
            name,
            model,
            fake: Arc::clone(&vertex),
            tools: true,
            reasoning: true,
            images: true,
            fails: true,
            _aux: Some(Arc::clone(&token_endpoint)),
        });
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
    let proxy = Proxy::start_with(&dir, &env, move |s| s.with_clock(clock)).await;
    (ups, proxy)
}

/// The Bedrock fake, verifying signatures made with the test key pair at [`T0`].
async fn bedrock_fake() -> FakeUpstream {
    let auth = BedrockAuth {
        access_key_id: AWS_KEY_ID.into(),
        secret_access_key: AWS_SECRET.into(),
        bearer_token: None,
        now_ms: Some(T0),
    };
    FakeUpstream::bind(
        "127.0.0.1:0".parse().unwrap(),
        Provider::Bedrock(auth).handler(),
    )
    .await
    .unwrap()
}

/// The Vertex fake, the token endpoint (judging `exp` on `clock`) and Rosetta's environment for
/// them: a TEST key file naming the endpoint.
async fn vertex_fakes(clock: &Clock) -> (FakeUpstream, FakeUpstream, Vec<(&'static str, String)>) {
    let judge = clock.clone();
    let tokens = GoogleTokens::new(move || judge.now_ms() / 1000);
    let token_endpoint = FakeUpstream::google_token(&tokens).await;
    let vertex = FakeUpstream::vertex(&tokens).await;
    let key = temp_dir().join("key.json");
    let uri = format!("{}/token", token_endpoint.base_url());
    std::fs::write(&key, GoogleTokens::key_file(&uri)).unwrap();
    let vars = vec![
        ("GOOGLE_APPLICATION_CREDENTIALS", key.display().to_string()),
        ("VERTEX_PROJECT", "rosetta-test-project".into()),
        ("VERTEX_BASE_URL", vertex.base_url()),
    ];
    (vertex, token_endpoint, vars)
}

impl Up {
    pub fn responses(&self, p: &Proxy) -> String {
        p.url(&format!("/{}/v1/responses", self.name))
    }
    pub fn chat(&self, p: &Proxy) -> String {
        p.url(&format!("/{}/v1/chat/completions", self.name))
    }
    /// The body of the last request the fake received, without the fields a Responses call
    /// may legitimately add (`stream_options`).
    pub fn last_sent(&self) -> Value {
        let mut body = self.fake.requests().last().expect("a request").body.clone();
        if let Some(o) = body.as_object_mut() {
            o.remove("stream_options");
        }
        body
    }
}
