//! The command line: `rosetta serve`, `check`, `test`, `capabilities` and `health`.

pub mod capabilities;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::mapping::{self, Mapping};
use crate::serving::reload;
use crate::serving::server;
use crate::serving::state::State;

/// Rosetta: put any LLM API behind an OpenAI-compatible endpoint.
#[derive(Debug, Parser)]
#[command(name = "rosetta", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The command line of this process, with its environment; exits with clap's message (and
    /// status 2) on an error, or after printing `--help` / `--version`.
    pub fn from_process() -> Cli {
        Cli::try_parse_with_env(std::env::args_os(), &|name| std::env::var_os(name))
            .unwrap_or_else(|e| e.exit())
    }

    /// Parses `args` (program name first) with `env` as the environment of the options' `ROSETTA_*`
    /// variables. **An empty variable counts as unset**, as Docker and compose users expect
    /// (`FOO: ${FOO:-}` passes an empty value): the option then takes its default, or stays
    /// off. A flag on the command line still wins over the variable, and the variable over
    /// the default.
    ///
    /// This is done once, for every option: clap reads each `env` variable when the command is
    /// built and refuses an empty value, so each option's variable is looked up here instead,
    /// in `env`, and a non-empty value becomes the option's default.
    pub fn try_parse_with_env<I, T>(
        args: I,
        env: &dyn Fn(&str) -> Option<OsString>,
    ) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString>,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let mut command = with_env(Cli::command(), env);
        match command.try_get_matches_from_mut(&args) {
            Ok(matches) => Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut command)),
            // Help as clap writes it from the options themselves, `[env: NAME]` included.
            Err(e) if is_help(e.kind()) => Err(Cli::command()
                .try_get_matches_from(&args)
                .err()
                .filter(|plain| is_help(plain.kind()))
                .unwrap_or(e)),
            Err(e) => Err(e),
        }
    }
}

fn is_help(kind: clap::error::ErrorKind) -> bool {
    use clap::error::ErrorKind::{DisplayHelp, DisplayHelpOnMissingArgumentOrSubcommand};
    matches!(kind, DisplayHelp | DisplayHelpOnMissingArgumentOrSubcommand)
}

/// `command` and its subcommands with every option's environment variable looked up in `env`
/// rather than by clap: a non-empty value becomes the option's default, an empty or missing
/// one leaves the option as if the variable were unset.
fn with_env(command: clap::Command, env: &dyn Fn(&str) -> Option<OsString>) -> clap::Command {
    command
        .mut_args(|arg| {
            let Some(name) = arg.get_env().map(|n| n.to_string_lossy().into_owned()) else {
                return arg;
            };
            let arg = arg.env(None::<&str>);
            match env(&name).filter(|v| !v.is_empty()) {
                Some(value) => arg.default_value(value),
                None => arg,
            }
        })
        .mut_subcommands(|sub| with_env(sub, env))
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
        /// Reload the mappings when files in the mappings directory change (`--watch=false`
        /// turns that off; SIGHUP always reloads).
        #[arg(
            long,
            env = "ROSETTA_WATCH",
            value_name = "BOOL",
            default_value_t = true,
            num_args = 0..=1,
            default_missing_value = "true",
            action = clap::ArgAction::Set,
            value_parser = clap::builder::BoolishValueParser::new()
        )]
        watch: bool,
        #[command(flatten)]
        edge: EdgeArgs,
        #[command(flatten)]
        accounting: Box<AccountingArgs>,
    },
    /// Print usage and cost from the ledger, grouped.
    Usage {
        /// The ledger: `sqlite://PATH`, a plain path, or `postgres://...`.
        #[arg(long, env = "ROSETTA_LEDGER", default_value = DEFAULT_LEDGER, hide_env_values = true)]
        ledger: String,
        /// First day counted (UTC, `YYYY-MM-DD`); default: the first day of this month.
        #[arg(long)]
        since: Option<String>,
        /// How to group the calls.
        #[arg(long, default_value = "user", value_parser = ["user", "key", "model", "mapping", "day"])]
        by: String,
        /// Print JSON (as `/admin/usage` answers) instead of a table.
        #[arg(long)]
        json: bool,
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
    /// Print, for every mapping, which OpenAI features it translates, drops or refuses
    /// (worked out from the compiled mappings, as each request's x-rosetta-dropped is).
    Capabilities {
        /// Directory of mapping files (*.yaml).
        #[arg(long, env = "ROSETTA_MAPPINGS", default_value = "./mappings")]
        mappings: PathBuf,
        /// Output format.
        #[arg(long, default_value = "table", value_parser = capabilities::FORMATS)]
        format: String,
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

/// A single-threaded runtime for the short commands (`health`, `usage`), or `None` after
/// printing why it could not start.
fn current_thread_runtime() -> Option<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| eprintln!("error: cannot start the runtime: {e}"))
        .ok()
}

/// Loads mappings, printing every error to stderr.
fn load_with(dir: &Path, env: mapping::Env<'_>) -> Option<Vec<Arc<Mapping>>> {
    reported(dir, mapping::load_dir(dir, env))
}

/// The loaded value, or `None` after printing every error to stderr.
fn reported<T>(dir: &Path, loaded: Result<T, Vec<mapping::LoadError>>) -> Option<T> {
    match loaded {
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
            let Some(runtime) = current_thread_runtime() else {
                return ExitCode::FAILURE;
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
            if crate::translate::golden::print(&crate::translate::golden::run(&ms, &fixtures)) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Command::Capabilities { mappings, format } => {
            // As `rosetta test`: no secret is read, every `${VAR:-default}` takes its default.
            let Some(ms) = load_with(&mappings, &|_| None) else {
                return ExitCode::FAILURE;
            };
            let refs: Vec<&Mapping> = ms.iter().map(|m| m.as_ref()).collect();
            print!("{}", capabilities::render(&refs, &format));
            ExitCode::SUCCESS
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
        Command::Usage {
            ledger,
            since,
            by,
            json,
        } => usage(&ledger, since.as_deref(), &by, json),
        Command::Serve {
            mappings,
            listen,
            log_format,
            trace,
            always_include_usage,
            watch,
            edge,
            accounting,
        } => {
            crate::ops::telemetry::init_logging(log_format == "json");
            let (limits, auth) = match edge.resolve() {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            if edge.protect_metrics && !auth.enabled() {
                tracing::warn!(
                    "--protect-metrics has no effect without API keys: /metrics stays open, like every path"
                );
            }
            let auth = Arc::new(auth);
            let budgets = match accounting.budgets() {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let admin = match accounting.admin() {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            // The same load (serve-time overrides included) runs on every reload.
            let source = reload::Source::from_process_env(
                &mappings,
                reload::Overrides {
                    always_include_usage,
                },
            );
            let Some(reload::Compiled {
                mappings: ms,
                fingerprint,
            }) = reported(&mappings, source.load())
            else {
                return ExitCode::FAILURE;
            };
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
            let code = runtime.block_on(async move {
                // SIGHUP reloads from here on, before anyone is told the server is ready.
                let triggers = reload::Triggers::install(watch);
                // Likewise SIGTERM/SIGINT (shutdown) and SIGHUP (keys file).
                let shutdown = shutdown_signal();
                crate::serving::auth::reload_on_sighup(Arc::clone(&auth));
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
                log_edge(&auth, &limits, listener.local_addr().ok());
                tracing::info!(mappings = ?names, "listening on http://{addr}");
                let mode = crate::ops::trace::TraceMode::parse(&trace).unwrap_or_default();
                let mut state = State::new(ms)
                    .with_trace(mode)
                    .with_limits(limits)
                    .with_auth(auth);
                let ledger = match accounting.ledger(&state.metrics) {
                    Ok(l) => l,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::FAILURE;
                    }
                };
                if let Some(admin) = admin {
                    state = state.with_admin(admin);
                }
                let state = Arc::new(state.with_accounting(crate::ledger::tab::Accounting {
                    ledger: ledger.clone(),
                    budgets,
                    user_header: accounting.user_header.clone(),
                    responses_ttl: accounting.responses_ttl,
                }));
                let reloader = reload::Reloader::new(Arc::clone(&state), source, fingerprint);
                triggers.spawn(Arc::new(reloader));
                let code = match server::serve(listener, state, shutdown).await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("error: {e}");
                        ExitCode::FAILURE
                    }
                };
                if let Some(ledger) = ledger {
                    // Every request has finished: write out what the ledger still holds.
                    let r = ledger.close(LEDGER_CLOSE).await;
                    tracing::info!(written = r.written, left = r.left, spilled = r.spilled, file = ?r.spill_file, "ledger closed");
                }
                code
            });
            // Past the grace, streams still running are cut here; a blocking task (a slow DNS
            // lookup) must not hold the exit either.
            runtime.shutdown_timeout(std::time::Duration::from_secs(1));
            code
        }
    }
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called (inside the
/// runtime), not when the future is first polled, so a signal sent as soon as the server says
/// it is listening already means a graceful shutdown.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let int = signal(SignalKind::interrupt());
        let term = signal(SignalKind::terminate());
        async move {
            match (int, term) {
                (Ok(mut int), Ok(mut term)) => tokio::select! {
                    _ = int.recv() => tracing::info!("SIGINT received"),
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                },
                _ => {
                    tracing::warn!("cannot listen for SIGTERM; only Ctrl-C stops the server");
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The default ledger: a SQLite file in the working directory.
pub const DEFAULT_LEDGER: &str = "sqlite://rosetta-ledger.db";

/// How long shutdown waits for the ledger's queue to be written.
const LEDGER_CLOSE: std::time::Duration = std::time::Duration::from_secs(10);

/// `rosetta serve` flags for usage, pricing and budgets (docs/usage-and-budgets.md).
#[derive(Debug, clap::Args)]
pub struct AccountingArgs {
    /// Where every finished call is recorded: `sqlite://PATH` (or a plain path), created on
    /// first start; `postgres://USER:PASSWORD@HOST/DB` to share one ledger and one set of
    /// budgets between replicas; `off` for none.
    #[arg(long, env = "ROSETTA_LEDGER", default_value = DEFAULT_LEDGER, hide_env_values = true)]
    pub ledger: String,
    /// Limits per user and per API key (YAML; needs a ledger).
    #[arg(long, env = "ROSETTA_BUDGETS", value_name = "FILE")]
    pub budgets: Option<PathBuf>,
    /// The request header naming the user a call is charged to (checked before the body's
    /// `user` field and the API key's name), e.g. `x-user-id`.
    #[arg(long, env = "ROSETTA_USER_HEADER", value_name = "NAME")]
    pub user_header: Option<http::HeaderName>,
    /// Keys of the admin API (`GET /admin/usage`), comma-separated, each `name:key` or `key`.
    /// Without them the admin API is off.
    #[arg(
        long,
        env = "ROSETTA_ADMIN_KEYS",
        hide_env_values = true,
        value_name = "KEYS"
    )]
    pub admin_keys: Option<crate::serving::auth::Secret>,
    /// How long a stored Response (`POST /v1/responses` with `store`) is kept in the ledger's
    /// database before it is purged: `30d`, `12h`, ...; `0`: responses are not stored.
    #[arg(long, env = "ROSETTA_RESPONSES_TTL", default_value = "30d", value_parser = mapping::compile::values::parse_duration, value_name = "DURATION")]
    pub responses_ttl: std::time::Duration,
}

impl AccountingArgs {
    fn budgets(&self) -> Result<Option<crate::ledger::budgets::Budgets>, String> {
        let Some(path) = &self.budgets else {
            return Ok(None);
        };
        if ledger_url(&self.ledger).is_none() {
            return Err("--budgets needs a ledger (--ledger is off)".into());
        }
        crate::ledger::budgets::Budgets::load(path).map(Some)
    }

    /// The admin API's keys, `None` when it is off: without `--admin-keys`, and also when the
    /// list holds no key (`""`, `","`), which must never mean "open to anyone".
    fn admin(&self) -> Result<Option<crate::serving::auth::Auth>, String> {
        let Some(keys) = &self.admin_keys else {
            return Ok(None);
        };
        let admin = crate::serving::auth::Auth::load(Some(keys.expose()), None)?;
        if !admin.enabled() {
            tracing::warn!("--admin-keys holds no key: the admin API stays off");
        }
        Ok(admin.enabled().then_some(admin))
    }

    /// Opens the ledger (inside the runtime): the store connects on first use, so Rosetta
    /// starts while PostgreSQL is down; a first report is asked at once to create the schema.
    fn ledger(
        &self,
        metrics: &crate::ops::telemetry::Metrics,
    ) -> Result<Option<crate::ledger::writer::Ledger>, String> {
        use crate::ledger::writer::{Ledger, LedgerOptions};
        let Some(url) = ledger_url(&self.ledger) else {
            return Ok(None);
        };
        let store =
            crate::ledger::store::SqlStore::connect_lazy(&url).map_err(|e| e.to_string())?;
        let options = LedgerOptions {
            spill_dir: Some(spill_dir(&url)),
            ..LedgerOptions::default()
        };
        let ledger = Ledger::start(Arc::new(store), options, metrics.clone());
        let warm = ledger.clone();
        tokio::spawn(async move {
            let now = warm.now_ms();
            match warm.report(now, crate::ledger::GroupBy::Day).await {
                Ok(_) => tracing::info!(store = warm.store().kind(), "ledger ready"),
                Err(e) => {
                    tracing::warn!(error = %e, "ledger not available yet: records are kept and retried")
                }
            }
        });
        Ok(Some(ledger))
    }
}

/// The store URL of a `--ledger` value, `None` for `off`. A plain path is a SQLite file.
pub fn ledger_url(value: &str) -> Option<String> {
    let v = value.trim();
    if v.is_empty() || v.eq_ignore_ascii_case("off") || v.eq_ignore_ascii_case("none") {
        return None;
    }
    if v.starts_with("sqlite:") || v.starts_with("postgres://") || v.starts_with("postgresql://") {
        Some(v.to_string())
    } else {
        Some(format!("sqlite://{v}"))
    }
}

/// Where records that cannot be written at shutdown go: beside the SQLite file, or here.
fn spill_dir(url: &str) -> PathBuf {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .map(|p| p.split('?').next().unwrap_or(p))
        .and_then(|p| Path::new(p).parent().map(Path::to_path_buf))
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `rosetta usage`: the ledger's report as a table or JSON.
fn usage(ledger: &str, since: Option<&str>, by: &str, as_json: bool) -> ExitCode {
    use crate::ledger::{GroupBy, Store};
    let Some(url) = ledger_url(ledger) else {
        eprintln!("error: --ledger is off: there is nothing to report");
        return ExitCode::FAILURE;
    };
    let by = GroupBy::parse(by).expect("clap checked the value");
    let since_day = since.map_or_else(
        || crate::ledger::month_start_of(crate::ops::clock::Clock::system().now_ms()),
        str::to_string,
    );
    let Some(since_ms) = crate::ledger::parse_day(&since_day) else {
        eprintln!("error: --since {since_day:?} is not a date (YYYY-MM-DD)");
        return ExitCode::FAILURE;
    };
    let Some(runtime) = current_thread_runtime() else {
        return ExitCode::FAILURE;
    };
    let rows = runtime.block_on(async {
        let store = crate::ledger::store::SqlStore::connect_lazy(&url)?;
        store.report(since_ms, by).await
    });
    match rows {
        Ok(rows) if as_json => {
            println!("{}", crate::ledger::report::json(&rows, by, &since_day));
            ExitCode::SUCCESS
        }
        Ok(rows) => {
            println!("usage since {since_day} by {}:", by.column());
            print!("{}", crate::ledger::report::table(&rows, by));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `rosetta serve` flags for what clients may do: limits and inbound API keys.
#[derive(Debug, clap::Args)]
pub struct EdgeArgs {
    /// Largest request body, in bytes or with a unit (`512KiB`, `32MiB`, `1GiB`); a larger
    /// one gets 413.
    #[arg(long, env = "ROSETTA_MAX_BODY", default_value = "32MiB", value_parser = crate::limits::parse_size)]
    pub max_body: usize,
    /// Most JSON values (objects, arrays, strings, numbers, literals) in a request body; past
    /// it, 413 before anything is parsed. `0`: no limit.
    #[arg(long, env = "ROSETTA_MAX_JSON_VALUES", default_value_t = crate::limits::DEFAULT_MAX_JSON_VALUES)]
    pub max_json_values: usize,
    /// Most memory one request body may take once parsed (estimated before parsing); past it,
    /// 413. `0`: no limit.
    #[arg(long, env = "ROSETTA_MAX_PARSED_SIZE", default_value = "128MiB", value_parser = crate::limits::parse_size)]
    pub max_parsed_size: usize,
    /// Memory all in-flight requests may hold together (bodies, parsed forms, upstream
    /// renderings); a large request past it gets 503 with `retry-after: 1`. `0`: no limit.
    #[arg(long, env = "ROSETTA_MAX_INFLIGHT_BYTES", default_value = "1GiB", value_parser = crate::limits::parse_size)]
    pub max_inflight_bytes: usize,
    /// How long a client may take to send its request line and headers (also the longest an
    /// idle keep-alive connection, or an HTTP/2 connection with no request running, stays
    /// open); `0` turns it off.
    #[arg(long, env = "ROSETTA_HEADER_TIMEOUT", default_value = "10s", value_parser = mapping::compile::values::parse_duration)]
    pub header_timeout: std::time::Duration,
    /// How long a client may take to send its whole request body (408 past it); `0` turns it
    /// off.
    #[arg(long, env = "ROSETTA_BODY_TIMEOUT", default_value = "60s", value_parser = mapping::compile::values::parse_duration)]
    pub body_timeout: std::time::Duration,
    /// API calls served at once (streams count until their last byte); past it, 503 with
    /// `retry-after: 1`. `/health` and `/metrics` are never limited. `0`: no limit.
    #[arg(long, env = "ROSETTA_MAX_CONCURRENT", default_value_t = crate::limits::DEFAULT_MAX_CONCURRENT)]
    pub max_concurrent: usize,
    /// After SIGTERM or SIGINT, how long in-flight requests and streams may still run.
    #[arg(long, env = "ROSETTA_SHUTDOWN_GRACE", default_value = "30s", value_parser = mapping::compile::values::parse_duration)]
    pub shutdown_grace: std::time::Duration,
    /// Largest frame of an upstream stream (one SSE event with all its lines, one NDJSON line);
    /// past it the stream ends with an error event and the upstream connection is closed.
    #[arg(long, env = "ROSETTA_MAX_UPSTREAM_FRAME", default_value = "8MiB", value_parser = crate::limits::parse_size)]
    pub max_upstream_frame: usize,
    /// Largest upstream body read whole (non-stream answers, error bodies); past it, 502 and
    /// the upstream connection is closed.
    #[arg(long, env = "ROSETTA_MAX_UPSTREAM_BODY", default_value = "64MiB", value_parser = crate::limits::parse_size)]
    pub max_upstream_body: usize,
    /// Inbound API keys, comma-separated, each `name:key` or `key`: clients must send
    /// `Authorization: Bearer <key>`. Prefer the environment variable or a file: a command
    /// line is visible to other users.
    #[arg(
        long,
        env = "ROSETTA_API_KEYS",
        hide_env_values = true,
        value_name = "KEYS"
    )]
    pub api_keys: Option<crate::serving::auth::Secret>,
    /// File of inbound API keys, one `name:key` or `key` a line (`#` comments); read again on
    /// SIGHUP.
    #[arg(long, env = "ROSETTA_API_KEYS_FILE", value_name = "FILE")]
    pub api_keys_file: Option<PathBuf>,
    /// Require an API key on /metrics too (/health always stays open).
    #[arg(long, env = "ROSETTA_PROTECT_METRICS")]
    pub protect_metrics: bool,
}

impl EdgeArgs {
    /// The limits and the inbound keys these flags ask for.
    pub fn resolve(&self) -> Result<(crate::limits::Limits, crate::serving::auth::Auth), String> {
        let limits = crate::limits::Limits {
            max_request_body: self.max_body,
            max_json_values: self.max_json_values,
            max_parsed_size: self.max_parsed_size,
            max_inflight_bytes: self.max_inflight_bytes,
            header_read_timeout: self.header_timeout,
            body_read_timeout: self.body_timeout,
            max_concurrent: self.max_concurrent,
            shutdown_grace: self.shutdown_grace,
            max_upstream_frame: self.max_upstream_frame,
            max_upstream_body: self.max_upstream_body,
        };
        let auth = crate::serving::auth::Auth::load(
            self.api_keys
                .as_ref()
                .map(crate::serving::auth::Secret::expose),
            self.api_keys_file.as_deref(),
        )?
        .protect_metrics(self.protect_metrics);
        Ok((limits, auth))
    }
}

/// Logs whether clients need a key (names and count, never the keys) and the limits.
fn log_edge(
    auth: &crate::serving::auth::Auth,
    limits: &crate::limits::Limits,
    addr: Option<std::net::SocketAddr>,
) {
    if auth.enabled() {
        tracing::info!(
            keys = auth.names().len(),
            names = ?auth.names(),
            protect_metrics = auth.metrics_protected(),
            "API keys required (Authorization: Bearer)"
        );
    } else if addr.is_some_and(|a| !a.ip().is_loopback()) {
        tracing::warn!(
            "no API keys configured: anyone who can reach this address can use the upstreams"
        );
    } else {
        tracing::info!("no API keys configured: requests are not authenticated");
    }
    tracing::info!(
        max_body = limits.max_request_body,
        max_json_values = limits.max_json_values,
        max_parsed_size = limits.max_parsed_size,
        max_inflight_bytes = limits.max_inflight_bytes,
        header_timeout = ?limits.header_read_timeout,
        body_timeout = ?limits.body_read_timeout,
        max_concurrent = limits.max_concurrent,
        shutdown_grace = ?limits.shutdown_grace,
        max_upstream_frame = limits.max_upstream_frame,
        max_upstream_body = limits.max_upstream_body,
        "limits"
    );
}

#[cfg(test)]
mod tests;
