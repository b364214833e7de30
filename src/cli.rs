//! The command line: `rosetta serve`, `check`, `test` and `health`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::mapping::{self, Mapping};
use crate::server::{self, State};

/// Rosetta: put any LLM API behind an OpenAI-compatible endpoint.
#[derive(Debug, Parser)]
#[command(name = "rosetta", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the OpenAI API for every mapping in the mappings directory.
    Serve {
        /// Directory of mapping files (*.yaml).
        #[arg(long, env = "ROSETTA_MAPPINGS", default_value = "./mappings")]
        mappings: PathBuf,
        /// Address to listen on.
        #[arg(long, env = "ROSETTA_LISTEN", default_value = "127.0.0.1:8080")]
        listen: String,
        /// Log format.
        #[arg(long, env = "ROSETTA_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
        log_format: String,
        /// Log requests end to end (client request, upstream request, raw upstream answer, what
        /// was sent back; secrets redacted): `off`, `header` (only requests sending
        /// `x-rosetta-trace: 1`) or `all`.
        #[arg(long, env = "ROSETTA_TRACE", default_value = "off", value_parser = ["off", "header", "all"])]
        trace: String,
        /// End every stream with a usage chunk, as if each request asked for
        /// `stream_options.include_usage` (LibreChat does not ask, but counts tokens from it).
        /// Per mapping: `options.always_include_usage`.
        #[arg(long, env = "ROSETTA_ALWAYS_INCLUDE_USAGE")]
        always_include_usage: bool,
    },
    /// Run the golden cases in FIXTURES/NAME/*.yaml against each mapping NAME.
    Test {
        /// Directory of mapping files (*.yaml).
        #[arg(long, env = "ROSETTA_MAPPINGS", default_value = "./mappings")]
        mappings: PathBuf,
        /// Directory holding one folder of cases per mapping.
        #[arg(long, default_value = "./tests/golden")]
        fixtures: PathBuf,
    },
    /// Load and compile every mapping without serving; print every error.
    Check {
        /// Directory of mapping files (*.yaml).
        #[arg(long, env = "ROSETTA_MAPPINGS", default_value = "./mappings")]
        mappings: PathBuf,
    },
    /// Exit 0 only if a running Rosetta's /health answers 200 (for container health checks).
    Health {
        /// The health URL to ask (plain http).
        #[arg(
            long,
            env = "ROSETTA_HEALTH_URL",
            default_value = "http://127.0.0.1:8080/health"
        )]
        url: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 5)]
        timeout: u64,
    },
}

/// One GET of `url`; `Ok(())` only for a 200.
async fn health(url: &str, timeout: std::time::Duration) -> Result<(), String> {
    use http_body_util::Empty;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("invalid URL {url:?}: {e}"))?;
    if uri.scheme() != Some(&http::uri::Scheme::HTTP) {
        return Err(format!("{url:?}: only http:// URLs are supported"));
    }
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
    let status = tokio::time::timeout(timeout, client.get(uri))
        .await
        .map_err(|_| format!("no answer from {url} within {}s", timeout.as_secs()))?
        .map_err(|e| format!("cannot reach {url}: {e}"))?
        .status();
    if status == http::StatusCode::OK {
        Ok(())
    } else {
        Err(format!("{url} answered {status}"))
    }
}

/// Loads mappings, printing every error to stderr.
fn load_with(dir: &Path, env: mapping::Env<'_>) -> Option<Vec<Arc<Mapping>>> {
    match mapping::load_dir(dir, env) {
        Ok(m) => Some(m),
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            eprintln!("{} error(s) in {}", errors.len(), dir.display());
            None
        }
    }
}

/// Loads mappings with the process environment.
fn load(dir: &Path) -> Option<Vec<Arc<Mapping>>> {
    load_with(dir, &|k| std::env::var(k).ok())
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Health { url, timeout } => {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(health(&url, std::time::Duration::from_secs(timeout))) {
                Ok(()) => {
                    println!("healthy: {url}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("unhealthy: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Test { mappings, fixtures } => {
            // An empty environment: every `${VAR:-default}` takes its default and no secret is
            // read, so cases give the same result on every machine.
            let Some(ms) = load_with(&mappings, &|_| None) else {
                return ExitCode::FAILURE;
            };
            if crate::golden::print(&crate::golden::run(&ms, &fixtures)) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Command::Check { mappings } => match load(&mappings) {
            Some(ms) => {
                for m in &ms {
                    println!("ok  {:<20} {}", m.name, m.file.display());
                    for var in &m.upstream.missing_env {
                        println!("    note: {var} is not set");
                    }
                }
                println!("{} mapping(s) OK", ms.len());
                ExitCode::SUCCESS
            }
            None => ExitCode::FAILURE,
        },
        Command::Serve {
            mappings,
            listen,
            log_format,
            trace,
            always_include_usage,
        } => {
            crate::telemetry::init_logging(log_format == "json");
            let Some(mut ms) = load(&mappings) else {
                return ExitCode::FAILURE;
            };
            if always_include_usage {
                for m in &mut ms {
                    if let Some(m) = Arc::get_mut(m) {
                        m.always_include_usage = true;
                    }
                }
            }
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::bind(&listen).await {
                    Ok(l) => l,
                    Err(e) => {
                        eprintln!("error: cannot listen on {listen}: {e}");
                        return ExitCode::FAILURE;
                    }
                };
                for m in &ms {
                    for var in &m.upstream.missing_env {
                        tracing::warn!(mapping = %m.name, "{var} is not set");
                    }
                }
                let names: Vec<&str> = ms.iter().map(|m| m.name.as_str()).collect();
                let addr = listener
                    .local_addr()
                    .map(|a| a.to_string())
                    .unwrap_or(listen.clone());
                tracing::info!(mappings = ?names, "listening on http://{addr}");
                let mode = crate::trace::TraceMode::parse(&trace).unwrap_or_default();
                let state = Arc::new(State::new(ms).with_trace(mode));
                match server::serve(listener, state, shutdown_signal()).await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("error: {e}");
                        ExitCode::FAILURE
                    }
                }
            })
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
