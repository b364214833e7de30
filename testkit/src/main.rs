//! `fake-upstream`: runs a fake provider on 127.0.0.1 for script-driven (Python/Node) tests.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use rosetta_testkit::{FakeUpstream, Provider};

const USAGE: &str = "usage: fake-upstream --provider anthropic|ollama|gemini|cohere|tgi|azure|openai|vertex|bedrock [--listen 127.0.0.1:0] [--api-key KEY] (bedrock: KEY is the secret access key of access key id AKIDEXAMPLE) [--bearer-token KEY]";

fn parse(args: &[String]) -> Result<(Provider, SocketAddr), String> {
    let mut provider = None;
    let mut listen = "127.0.0.1:0".to_string();
    let mut api_key = None;
    let mut bearer_token = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        if flag == "--help" || flag == "-h" {
            return Err(String::new());
        }
        let value = match inline {
            Some(v) => v,
            None => it.next().cloned().ok_or(format!("{flag} needs a value"))?,
        };
        match flag {
            "--provider" => provider = Some(value),
            "--listen" => listen = value,
            "--api-key" => api_key = Some(value),
            "--bearer-token" => bearer_token = Some(value),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let provider = match provider.as_deref() {
        Some("anthropic") => Provider::Anthropic { api_key },
        Some("ollama") => Provider::Ollama,
        Some("gemini") => Provider::Gemini { api_key },
        Some("cohere") => Provider::Cohere { api_key },
        Some("tgi") => Provider::Tgi { api_key },
        Some("azure") => Provider::Azure { api_key },
        Some("openai") => Provider::OpenAi { api_key },
        Some("vertex") => Provider::Vertex,
        Some("bedrock") => Provider::Bedrock(rosetta_testkit::BedrockAuth {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: api_key.ok_or("bedrock needs --api-key (the secret access key)")?,
            bearer_token,
            now_ms: None,
        }),
        Some(other) => return Err(format!("unknown provider {other}")),
        None => return Err("--provider is required".into()),
    };
    let addr = listen
        .parse()
        .map_err(|e| format!("bad --listen {listen}: {e}"))?;
    Ok((provider, addr))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (provider, addr) = match parse(&args) {
        Ok(parsed) => parsed,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("fake-upstream: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let server = match FakeUpstream::bind(addr, provider.handler()).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("fake-upstream: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "listening on {}", server.base_url());
    let _ = stdout.flush();
    wait_for_signal().await;
    drop(server);
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
