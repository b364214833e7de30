//! `soak`: a bounded soak test of the release `rosetta serve` binary, loopback only.
//!
//! It starts fake upstreams in this process (a good Anthropic, a flaky Anthropic that answers
//! 503/429 with `retry-after` in bursts, a second Anthropic for rate-limit traffic, an Ollama,
//! and a closed port as a dead endpoint), writes a temporary mappings directory (the shipped
//! Anthropic mapping with an `endpoints:` list, short timeouts, retries, passive health and a
//! fallback to Ollama), runs `rosetta serve` as a child process, and then:
//!
//! 1. warm-up: a few seconds of the same mixed traffic at the same concurrency, so that the
//!    upstream connection pools reach their working size; then waits for quiescence and takes
//!    the BASELINE (open fds of the Rosetta process, classified through `/proc/net/tcp`, its
//!    VmRSS, the fakes' open connections);
//! 2. soak: `--concurrency` workers for `--duration` seconds, each looping over a weighted random
//!    mix of request kinds (normal chats and streams, tools, client aborts, upstream resets,
//!    mid-stream errors, garbage, hangs, 5xx/429, embeddings, listings, client errors). Every
//!    request has a client-side deadline; going past it is a HUNG request. Every response is
//!    checked against what its kind must give, computed from the mapping config and the docs
//!    (`docs/mapping-reference.md` §2.2.1, §6.6, §7), including which side served it (the
//!    `x-rosetta-fallback` header);
//! 3. after: waits for quiescence again (`rosetta_active_streams` and
//!    `rosetta_in_flight_requests` at 0, no client connection left) and measures again; with
//!    `--idle-drain SECS` it then also waits for idle upstream keep-alive connections to close.
//!
//! It prints a table per kind, the resource figures and each pass criterion with its numbers,
//! and exits 0 only if every criterion passes. The Rosetta child is killed on every exit path.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rosetta_testkit::{FakeUpstream, Provider, Reply};
use serde_json::{Value, json};

const USAGE: &str = "\
usage: soak [--duration SECS] [--concurrency N] [--warmup SECS] [--deadline SECS]
            [--idle-drain SECS] [--seed N] [--rosetta PATH] [--mappings DIR] [--keep-temp]

  --duration SECS    length of the soak phase (default 60)
  --concurrency N    concurrent client workers (default 16)
  --warmup SECS      warm-up at the same concurrency before the baseline (default 5)
  --deadline SECS    client-side deadline of every request; past it a request is HUNG (default 15)
  --idle-drain SECS  after the soak, also wait SECS and check that idle upstream keep-alive
                     connections were closed (the docs say 90 s; use 95 or more; default off)
  --seed N           seed of the traffic mix (default: from the clock)
  --rosetta PATH     the rosetta binary (default: $ROSETTA_BIN, else `rosetta` next to this
                     binary, i.e. <target>/release/rosetta)
  --mappings DIR     where the shipped mappings are (default: the repository's mappings/)
  --keep-temp        keep the temporary mappings directory and Rosetta's log

Loopback only. Exit code 0 only if every pass criterion holds.";

/// The Anthropic mapping's timeouts (written into the temporary mapping).
const ANTHROPIC_FIRST_BYTE: Duration = Duration::from_secs(2);
/// The Ollama mapping's first-byte timeout: the shipped 600 s (a model loading) is lowered so a
/// `HANG` that falls back to Ollama ends well within the client deadline.
const OLLAMA_FIRST_BYTE: Duration = Duration::from_secs(3);
const ANTHROPIC_UPSTREAM: &str = "  endpoints:\n{ENDPOINTS}  timeouts: {first_byte: 2s, idle: 1s}\n  retry: {attempts: 3, backoff: 50ms}\n  health: {failures: 2, cooldown: 2s}\n  fallback: {mapping: ollama, model: llama3.2}\n";
const SHIPPED_BASE_URL: &str = "  base_url: ${ANTHROPIC_BASE_URL:-https://api.anthropic.com}\n";
const SHIPPED_OLLAMA_FIRST_BYTE: &str = "first_byte: 600s";

const A_MODEL: &str = "claude-sonnet-4-5";
const O_MODEL: &str = "llama3.2";
const FALLBACK_HEADER: &str = "ollama/llama3.2";
const EMBED_MODEL: &str = "nomic-embed-text";
const ANTHROPIC_KEY: &str = "sk-ant-soak-0123456789";

/// Fixed allowance for fds other than upstream sockets (a log file reopened, a timer fd...).
const FD_SLACK: usize = 4;
/// Memory rule: after <= baseline * RSS_FACTOR + RSS_SLACK_KIB.
const RSS_FACTOR: f64 = 1.25;
const RSS_SLACK_KIB: u64 = 4 * 1024;
/// How long to wait for quiescence.
const QUIESCE_LIMIT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------------
// Command line

struct Args {
    duration: Duration,
    concurrency: usize,
    warmup: Duration,
    deadline: Duration,
    idle_drain: Option<Duration>,
    seed: u64,
    rosetta: Option<PathBuf>,
    mappings: PathBuf,
    keep_temp: bool,
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let mut a = Args {
        duration: Duration::from_secs(60),
        concurrency: 16,
        warmup: Duration::from_secs(5),
        deadline: Duration::from_secs(15),
        idle_drain: None,
        seed,
        rosetta: std::env::var_os("ROSETTA_BIN").map(PathBuf::from),
        mappings: Path::new(env!("CARGO_MANIFEST_DIR")).join("../mappings"),
        keep_temp: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        match flag {
            "-h" | "--help" => return Err(String::new()),
            "--keep-temp" => {
                a.keep_temp = true;
                continue;
            }
            _ => {}
        }
        let value = match inline {
            Some(v) => v,
            None => it.next().cloned().ok_or(format!("{flag} needs a value"))?,
        };
        let secs = |v: &str| -> Result<Duration, String> {
            v.parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64)
                .ok_or(format!("{flag}: not a number of seconds: {v}"))
        };
        match flag {
            "--duration" => a.duration = secs(&value)?,
            "--warmup" => a.warmup = secs(&value)?,
            "--deadline" => a.deadline = secs(&value)?,
            "--idle-drain" => a.idle_drain = Some(secs(&value)?).filter(|d| !d.is_zero()),
            "--concurrency" => {
                a.concurrency = value
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or(format!("--concurrency: not a positive integer: {value}"))?
            }
            "--seed" => {
                a.seed = value
                    .parse()
                    .map_err(|_| format!("--seed: not an integer: {value}"))?
            }
            "--rosetta" => a.rosetta = Some(PathBuf::from(value)),
            "--mappings" => a.mappings = PathBuf::from(value),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

/// `--rosetta`, `$ROSETTA_BIN`, `rosetta` next to this binary, `$CARGO_TARGET_DIR/release`,
/// then the repository's `target/release`.
fn rosetta_binary(given: Option<PathBuf>) -> Result<PathBuf, String> {
    if let Some(p) = given {
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("rosetta binary {} does not exist", p.display()))
        };
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        candidates.push(dir.join("rosetta"));
    }
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(t).join("release/rosetta"));
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/rosetta"));
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            format!(
                "no rosetta binary found (tried {}); run `cargo build --release` or set ROSETTA_BIN",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

// ---------------------------------------------------------------------------------------------
// Fake upstreams and the temporary mappings

struct Fakes {
    good: FakeUpstream,
    flaky: FakeUpstream,
    rl: FakeUpstream,
    ollama: FakeUpstream,
    dead: String,
}

impl Fakes {
    async fn start() -> Fakes {
        let dead = {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind 127.0.0.1:0");
            let addr = l.local_addr().expect("local addr");
            drop(l);
            format!("http://{addr}")
        };
        Fakes {
            good: FakeUpstream::anthropic().await,
            flaky: flaky_anthropic().await,
            rl: FakeUpstream::anthropic().await,
            ollama: FakeUpstream::ollama().await,
            dead,
        }
    }

    fn named(&self) -> [(&'static str, &FakeUpstream); 4] {
        [
            ("anthropic-good", &self.good),
            ("anthropic-flaky", &self.flaky),
            ("anthropic-rl", &self.rl),
            ("ollama", &self.ollama),
        ]
    }

    /// Runs `work` while clearing the requests the fakes record, every second (they keep each
    /// one, which would grow without bound in a long soak).
    async fn forgetting<T>(&self, work: impl Future<Output = T>) -> T {
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return out,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {
                    for (_, f) in self.named() {
                        f.clear_requests();
                    }
                }
            }
        }
    }

    fn connections(&self) -> Vec<(&'static str, usize)> {
        self.named()
            .iter()
            .map(|(n, f)| (*n, f.open_connections()))
            .collect()
    }
}

/// An Anthropic that, for one second in every five, answers 503 `retry-after: 1` and 429
/// `retry-after-ms: 800` in turn; otherwise it is the faithful fake (trigger words included).
async fn flaky_anthropic() -> FakeUpstream {
    let inner = Provider::Anthropic { api_key: None }.handler();
    let t0 = Instant::now();
    let n = AtomicU64::new(0);
    FakeUpstream::with_handler(move |req| {
        let burst = t0.elapsed().as_millis() % 5000 < 1000;
        if burst && req.path_only() == "/v1/messages" {
            if n.fetch_add(1, Ordering::Relaxed).is_multiple_of(2) {
                let e = json!({"type": "error", "error": {"type": "overloaded_error", "message": "flaky: burst 503"}});
                Reply::json(503, e).header("retry-after", "1")
            } else {
                let e = json!({"type": "error", "error": {"type": "rate_limit_error", "message": "flaky: burst 429"}});
                Reply::json(429, e).header("retry-after-ms", "800")
            }
        } else {
            inner(req)
        }
    })
    .await
}

/// The shipped Anthropic mapping with its `base_url` line replaced by these endpoints and the
/// soak's timeouts, retry, health and fallback settings.
fn anthropic_mapping(src: &str, endpoints: &[&str]) -> Result<String, String> {
    if !src.contains(SHIPPED_BASE_URL) {
        return Err(format!(
            "the shipped anthropic.yaml no longer has the line {:?}; update soak.rs",
            SHIPPED_BASE_URL.trim()
        ));
    }
    let list: String = endpoints
        .iter()
        .map(|e| format!("    - base_url: {e}\n"))
        .collect();
    Ok(src.replacen(
        SHIPPED_BASE_URL,
        &ANTHROPIC_UPSTREAM.replace("{ENDPOINTS}", &list),
        1,
    ))
}

fn write_mappings(src_dir: &Path, dir: &Path, fakes: &Fakes) -> Result<(), String> {
    let read = |name: &str| {
        std::fs::read_to_string(src_dir.join(name))
            .map_err(|e| format!("cannot read {}: {e}", src_dir.join(name).display()))
    };
    let anthropic = read("anthropic.yaml")?;
    let ollama = read("ollama.yaml")?;
    let (good, flaky, rl) = (
        fakes.good.base_url(),
        fakes.flaky.base_url(),
        fakes.rl.base_url(),
    );
    let primary = anthropic_mapping(&anthropic, &[&fakes.dead, &good, &flaky])?;
    let secondary = anthropic_mapping(&anthropic, &[&rl, &fakes.dead])?;
    if !ollama.contains(SHIPPED_OLLAMA_FIRST_BYTE) {
        return Err(format!(
            "the shipped ollama.yaml no longer has {SHIPPED_OLLAMA_FIRST_BYTE:?}; update soak.rs"
        ));
    }
    let ollama = ollama.replacen(
        SHIPPED_OLLAMA_FIRST_BYTE,
        &format!("first_byte: {}s", OLLAMA_FIRST_BYTE.as_secs()),
        1,
    );
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for (name, text) in [
        ("anthropic.yaml", primary),
        ("anthropic-rl.yaml", secondary),
        ("ollama.yaml", ollama),
    ] {
        std::fs::write(dir.join(name), text)
            .map_err(|e| format!("cannot write {}: {e}", dir.join(name).display()))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The Rosetta child process

/// `rosetta serve` as a child; dropping it kills the process.
struct Rosetta {
    child: Child,
    pid: u32,
    port: u16,
    log: PathBuf,
}

impl Drop for Rosetta {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Rosetta {
    /// SIGTERM, then up to 5 s for a clean exit: `(exit code, time)`, or `None` (then killed).
    fn terminate(&mut self) -> Option<(Option<i32>, Duration)> {
        let t = Instant::now();
        let sent = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        if !sent {
            return None;
        }
        while t.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some((status.code(), t.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// Which `rosetta serve` flags this binary has (another engineer may be adding them).
struct ServeFlags {
    max_concurrent: bool,
    max_body: bool,
    api_keys_env: bool,
    api_keys_flag: bool,
}

fn serve_flags(bin: &Path) -> Result<ServeFlags, String> {
    let out = Command::new(bin)
        .args(["serve", "--help"])
        .output()
        .map_err(|e| format!("cannot run {} serve --help: {e}", bin.display()))?;
    let help = String::from_utf8_lossy(&out.stdout);
    Ok(ServeFlags {
        max_concurrent: help.contains("--max-concurrent"),
        max_body: help.contains("--max-body"),
        api_keys_env: help.contains("ROSETTA_API_KEYS]") || help.contains("ROSETTA_API_KEYS="),
        api_keys_flag: help.contains("--api-keys "),
    })
}

fn check_mappings(bin: &Path, dir: &Path, env: &[(&str, String)]) -> Result<(), String> {
    let mut cmd = Command::new(bin);
    cmd.arg("check").arg("--mappings").arg(dir);
    strip_rosetta_env(&mut cmd);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {} check: {e}", bin.display()))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "the soak's generated mappings do not load (`rosetta check --mappings {}`):\n{}{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

fn strip_rosetta_env(cmd: &mut Command) {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("ROSETTA_") {
            cmd.env_remove(k);
        }
    }
    cmd.env_remove("RUST_LOG");
}

struct Spawned {
    rosetta: Rosetta,
    body_limit: usize,
    api_key: Option<String>,
    flags_used: Vec<String>,
}

fn spawn_rosetta(
    bin: &Path,
    dir: &Path,
    env: &[(&str, String)],
    concurrency: usize,
    seed: u64,
) -> Result<Spawned, String> {
    let flags = serve_flags(bin)?;
    let log = dir.join("rosetta.log");
    let mut cmd = Command::new(bin);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--mappings"])
        .arg(dir);
    strip_rosetta_env(&mut cmd);
    let mut flags_used = Vec::new();
    if flags.max_concurrent {
        // Well above the client concurrency: the soak must never see a 503 `overloaded`.
        let limit = (concurrency * 4 + 64).to_string();
        cmd.args(["--max-concurrent", &limit]);
        flags_used.push(format!("--max-concurrent {limit}"));
    }
    let body_limit = if flags.max_body {
        cmd.args(["--max-body", "1MiB"]);
        flags_used.push("--max-body 1MiB".into());
        1 << 20
    } else {
        32 << 20
    };
    let api_key = if flags.api_keys_env || flags.api_keys_flag {
        let key = format!("sk-soak-{seed:016x}");
        if flags.api_keys_env {
            cmd.env("ROSETTA_API_KEYS", format!("soak:{key}"));
            flags_used.push("ROSETTA_API_KEYS=soak:<key>".into());
        } else {
            cmd.args(["--api-keys", &format!("soak:{key}")]);
            flags_used.push("--api-keys soak:<key>".into());
        }
        Some(key)
    } else {
        None
    };
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.env("NO_COLOR", "1")
        .env("RUST_LOG", "warn,rosetta::cli=info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let pid = child.id();
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let log_path = log.clone();
    std::thread::spawn(move || {
        let mut file = std::fs::File::create(&log_path).ok();
        let mut announced = false;
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(f) = file.as_mut() {
                let _ = writeln!(f, "{line}");
            }
            if !announced && let Some(i) = line.find("listening on http://") {
                let rest = &line[i + "listening on http://".len()..];
                let addr = rest
                    .split(|c: char| c.is_whitespace() || c == '\x1b' || c == '"')
                    .next()
                    .unwrap_or_default()
                    .to_string();
                announced = true;
                let _ = tx.send(addr);
            }
        }
    });
    let mut rosetta = Rosetta {
        child,
        pid,
        port: 0,
        log,
    };
    let addr = match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(addr) => addr,
        Err(_) => {
            let status = rosetta.child.try_wait().ok().flatten();
            return Err(format!(
                "rosetta serve did not print `listening on http://...` within 20 s (exit: {status:?}); log tail:\n{}",
                rosetta.log_tail(30)
            ));
        }
    };
    rosetta.port = addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("cannot read a port from the listening address {addr:?}"))?;
    Ok(Spawned {
        rosetta,
        body_limit,
        api_key,
        flags_used,
    })
}

// ---------------------------------------------------------------------------------------------
// /proc measurements

#[derive(Debug, Clone, Default)]
struct Sockets {
    listen: usize,
    /// Client connections accepted by Rosetta.
    inbound: usize,
    /// Connections from Rosetta to each fake upstream (its pools, plus any in use).
    upstream: BTreeMap<String, usize>,
    /// Rosetta sockets in CLOSE_WAIT: the peer closed, Rosetta did not.
    close_wait: usize,
    /// Other TCP sockets and sockets not in the TCP tables (unix, netlink...).
    other: usize,
}

impl Sockets {
    fn upstream_total(&self) -> usize {
        self.upstream.values().sum()
    }
}

#[derive(Debug, Clone, Default)]
struct ProcStats {
    fds: usize,
    rss_kib: u64,
    sockets: Sockets,
}

impl ProcStats {
    /// Every fd that is not an upstream socket.
    fn non_upstream(&self) -> usize {
        self.fds - self.sockets.upstream_total()
    }
}

struct TcpEntry {
    local_port: u16,
    remote_port: u16,
    state: u8,
}

/// inode -> TCP socket, from `/proc/PID/net/tcp{,6}`.
fn tcp_table(pid: u32) -> BTreeMap<u64, TcpEntry> {
    let mut out = BTreeMap::new();
    for file in ["tcp", "tcp6"] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{file}")) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 {
                continue;
            }
            let port = |s: &str| {
                s.rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
            };
            let (Some(local_port), Some(remote_port), Ok(state), Ok(inode)) = (
                port(f[1]),
                port(f[2]),
                u8::from_str_radix(f[3], 16),
                f[9].parse::<u64>(),
            ) else {
                continue;
            };
            if inode != 0 {
                out.insert(
                    inode,
                    TcpEntry {
                        local_port,
                        remote_port,
                        state,
                    },
                );
            }
        }
    }
    out
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

fn fd_count(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

const TCP_CLOSE_WAIT: u8 = 0x08;
const TCP_LISTEN: u8 = 0x0A;

fn proc_stats(pid: u32, own_port: u16, upstreams: &[(String, u16)]) -> Result<ProcStats, String> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map_err(|e| format!("cannot read /proc/{pid}/fd: {e}"))?;
    let table = tcp_table(pid);
    let mut s = ProcStats {
        rss_kib: rss_kib(pid).unwrap_or(0),
        ..Default::default()
    };
    for (name, _) in upstreams {
        s.sockets.upstream.insert(name.clone(), 0);
    }
    for entry in dir.flatten() {
        s.fds += 1;
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let target = target.to_string_lossy();
        let Some(inode) = target
            .strip_prefix("socket:[")
            .and_then(|t| t.strip_suffix(']'))
            .and_then(|t| t.parse::<u64>().ok())
        else {
            continue;
        };
        let Some(tcp) = table.get(&inode) else {
            s.sockets.other += 1;
            continue;
        };
        if tcp.state == TCP_CLOSE_WAIT {
            s.sockets.close_wait += 1;
        }
        if tcp.state == TCP_LISTEN {
            s.sockets.listen += 1;
        } else if tcp.local_port == own_port {
            s.sockets.inbound += 1;
        } else if let Some((name, _)) = upstreams.iter().find(|(_, p)| *p == tcp.remote_port) {
            *s.sockets.upstream.entry(name.clone()).or_default() += 1;
        } else {
            s.sockets.other += 1;
        }
    }
    Ok(s)
}

/// Sockets of this process (the fakes' side) in CLOSE_WAIT on the fakes' ports: connections
/// Rosetta closed that a fake still holds (the fakes' business, not Rosetta's).
fn own_close_wait(fake_ports: &[u16]) -> usize {
    let pid = std::process::id();
    let table = tcp_table(pid);
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    dir.flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|t| {
            t.to_string_lossy()
                .strip_prefix("socket:[")
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse::<u64>().ok())
        })
        .filter(|i| {
            table
                .get(i)
                .is_some_and(|t| t.state == TCP_CLOSE_WAIT && fake_ports.contains(&t.local_port))
        })
        .count()
}

// ---------------------------------------------------------------------------------------------
// HTTP

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn http_client() -> HttpClient {
    let mut c = HttpConnector::new();
    c.set_nodelay(true);
    Client::builder(TokioExecutor::new()).build(c)
}

struct Ctx {
    base: String,
    api_key: Option<String>,
    body_limit: usize,
}

impl Ctx {
    fn request(
        &self,
        method: &str,
        path: &str,
        body: impl Into<Bytes>,
    ) -> hyper::Request<Full<Bytes>> {
        let mut b = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/json");
        if let Some(k) = &self.api_key {
            b = b.header("authorization", format!("Bearer {k}"));
        }
        b.body(Full::new(body.into())).expect("valid request")
    }
}

/// One GET on a fresh connection that is closed afterwards (so it leaves nothing behind).
async fn admin_get(base: &str, path: &str) -> Result<(u16, String), String> {
    let client = http_client();
    let req = hyper::Request::builder()
        .uri(format!("{base}{path}"))
        .header("connection", "close")
        .body(Full::new(Bytes::new()))
        .expect("valid request");
    let fut = async {
        let resp = client.request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok::<_, String>((status, String::from_utf8_lossy(&body).into_owned()))
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .map_err(|_| format!("GET {path}: no answer within 5 s"))?
}

/// `(name{labels}, value)` of every sample in a Prometheus text body.
fn samples(metrics: &str) -> Vec<(String, f64)> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

fn metric_sum(metrics: &str, name: &str) -> Option<f64> {
    let found: Vec<f64> = samples(metrics)
        .into_iter()
        .filter(|(k, _)| k == name || k.starts_with(&format!("{name}{{")))
        .map(|(_, v)| v)
        .collect();
    (!found.is_empty()).then(|| found.iter().sum())
}

/// Sums of a counter by one label, e.g. `rosetta_upstream_retries_total` by `reason`.
fn metric_by(metrics: &str, name: &str, label: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let needle = format!("{label}=\"");
    for (k, v) in samples(metrics) {
        if !k.starts_with(&format!("{name}{{")) {
            continue;
        }
        let value = k
            .find(&needle)
            .map(|i| &k[i + needle.len()..])
            .and_then(|r| r.split('"').next())
            .unwrap_or("?")
            .to_string();
        *out.entry(value).or_insert(0.0) += v;
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Traffic: kinds, their requests and what each must give

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Chat,
    Stream,
    Tools,
    Abort,
    Reset,
    Midstream,
    StreamGarbage,
    Garbage,
    GarbageStream,
    Hang,
    Fail500,
    Fail429,
    RlChat,
    OllamaStream,
    Unified,
    Embeddings,
    Models,
    BadJson,
    NotFound,
    TooLarge,
}

/// Every kind, its name in the table, its weight in the mix and what it checks.
const KINDS: &[(Kind, &str, u64, &str)] = &[
    (
        Kind::Chat,
        "chat",
        14,
        "anthropic non-stream: 200, the echo, finish stop",
    ),
    (
        Kind::Stream,
        "stream",
        14,
        "anthropic stream: chunks, finish stop, [DONE]",
    ),
    (
        Kind::Tools,
        "stream+tools",
        6,
        "anthropic stream with a tool: tool_calls delta, finish tool_calls, [DONE]",
    ),
    (
        Kind::Abort,
        "abort(SLOW)",
        6,
        "SLOW stream, client drops the connection after 2 events",
    ),
    (
        Kind::Reset,
        "RESET",
        5,
        "upstream TCP reset mid-stream: error event, no [DONE]",
    ),
    (
        Kind::Midstream,
        "MIDSTREAM ERROR",
        5,
        "upstream error event: OpenAI error event, no [DONE]",
    ),
    (
        Kind::StreamGarbage,
        "STREAM GARBAGE",
        4,
        "bad event mid-stream: error upstream_bad_response, no [DONE]",
    ),
    (
        Kind::Garbage,
        "GARBAGE",
        3,
        "non-JSON body: fallback, Ollama garbage too: 502 upstream_bad_response",
    ),
    (
        Kind::GarbageStream,
        "GARBAGE stream",
        3,
        "JSON to a stream request: fallback 200, Ollama's bad line: error event",
    ),
    (
        Kind::Hang,
        "HANG",
        2,
        "no answer: 2 s + fallback 3 s first-byte timeouts: 504 upstream_timeout",
    ),
    (
        Kind::Fail500,
        "FAIL 500",
        2,
        "5xx retried, fallback fails too: Ollama's 500",
    ),
    (
        Kind::Fail429,
        "FAIL 429 (rl)",
        1,
        "429 retry-after 7 (> max_backoff), fallback fails too: Ollama's 429",
    ),
    (
        Kind::RlChat,
        "chat (rl)",
        5,
        "anthropic-rl non-stream: 200, direct or fallback while ejected",
    ),
    (
        Kind::OllamaStream,
        "ollama stream",
        6,
        "ollama NDJSON stream: chunks, [DONE]",
    ),
    (
        Kind::Unified,
        "unified /v1",
        4,
        "/v1/chat/completions model ollama/llama3.2: 200",
    ),
    (
        Kind::Embeddings,
        "embeddings",
        6,
        "ollama embeddings: 2 vectors",
    ),
    (
        Kind::Models,
        "models",
        4,
        "/v1/models, /ollama/v1/models, /anthropic/v1/models: 200 list",
    ),
    (
        Kind::BadJson,
        "bad JSON",
        3,
        "invalid JSON body: 400 invalid_request_error",
    ),
    (
        Kind::NotFound,
        "unknown path",
        3,
        "GET unknown path: 404 not_found",
    ),
    (
        Kind::TooLarge,
        "too large",
        1,
        "body over the limit: 413 request_too_large",
    ),
];

fn kind_name(k: Kind) -> &'static str {
    KINDS.iter().find(|x| x.0 == k).map_or("?", |x| x.1)
}

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn kind(&mut self) -> Kind {
        let total: u64 = KINDS.iter().map(|k| k.2).sum();
        let mut roll = self.below(total);
        for (k, _, w, _) in KINDS {
            if roll < *w {
                return *k;
            }
            roll -= w;
        }
        Kind::Chat
    }
}

/// The result of one request: `Err(detail)` is an unexpected outcome.
type Outcome = Result<String, String>;

/// Which side answered: the mapping asked for, or its fallback (`x-rosetta-fallback`).
#[derive(Clone, Copy, PartialEq)]
enum Via {
    Direct,
    Fallback,
}

impl Via {
    fn of(headers: &hyper::HeaderMap) -> Result<Via, String> {
        match headers
            .get("x-rosetta-fallback")
            .map(|v| v.to_str().unwrap_or("?"))
        {
            None => Ok(Via::Direct),
            Some(FALLBACK_HEADER) => Ok(Via::Fallback),
            Some(other) => Err(format!(
                "x-rosetta-fallback is {other:?}, not {FALLBACK_HEADER:?}"
            )),
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Via::Direct => "direct",
            Via::Fallback => "fallback",
        }
    }

    /// The model a response names: the client's, or the fallback model.
    fn model(self, direct: &str) -> &str {
        match self {
            Via::Direct => direct,
            Via::Fallback => O_MODEL,
        }
    }
}

struct Resp {
    status: u16,
    headers: hyper::HeaderMap,
    body: Bytes,
}

impl Resp {
    fn text(&self) -> String {
        let t = String::from_utf8_lossy(&self.body);
        t.chars().take(400).collect()
    }

    fn json(&self) -> Result<Value, String> {
        serde_json::from_slice(&self.body).map_err(|e| {
            format!(
                "status {}: body is not JSON ({e}): {}",
                self.status,
                self.text()
            )
        })
    }

    fn status_is(&self, want: u16) -> Result<(), String> {
        if self.status == want {
            Ok(())
        } else {
            Err(format!(
                "status {} (wanted {want}), fallback header {:?}: {}",
                self.status,
                self.headers.get("x-rosetta-fallback"),
                self.text()
            ))
        }
    }

    /// The OpenAI error object (all four keys present, a non-empty message), with no fallback
    /// header (a failed fallback answers with its own error only).
    fn openai_error(&self) -> Result<Value, String> {
        let j = self.json()?;
        let e = j
            .get("error")
            .ok_or_else(|| format!("no `error` key: {}", self.text()))?;
        for k in ["message", "type", "param", "code"] {
            if e.get(k).is_none() {
                return Err(format!("the error lacks `{k}`: {e}"));
            }
        }
        if e["message"].as_str().is_none_or(|m| m.is_empty()) {
            return Err(format!("empty error message: {e}"));
        }
        Ok(e.clone())
    }
}

/// A POST on its own connection, written whole and then read to the end, like curl or
/// httpcore (the OpenAI Python SDK): a server that answers early and closes may make the write
/// fail (EPIPE, reset), but its answer is still read. hyper's client gives up on such a write
/// error instead, so it cannot tell a lost answer from an early one. Returns the response and
/// the write error, if any.
async fn raw_post(ctx: &Ctx, path: &str, body: &[u8]) -> Result<(Resp, Option<String>), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = ctx.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    if let Some(k) = &ctx.api_key {
        head.push_str(&format!("authorization: Bearer {k}\r\n"));
    }
    head.push_str("\r\n");
    let mut write_error = None;
    if let Err(e) = stream.write_all(head.as_bytes()).await {
        write_error = Some(e.to_string());
    } else if let Err(e) = stream.write_all(body).await {
        write_error = Some(e.to_string());
    }
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if raw.is_empty() => {
                return Err(format!(
                    "no response: read failed ({e}) after {}",
                    write_error.map_or("the whole request was written".into(), |w| format!(
                        "a write error ({w})"
                    ))
                ));
            }
            Err(_) => break,
        }
        if let Some(r) = parse_raw(&raw) {
            request_id(r.status, &r.headers)?;
            return Ok((r, write_error));
        }
    }
    parse_raw(&raw)
        .map(|r| (r, write_error.clone()))
        .ok_or_else(|| {
            format!(
                "an incomplete response (write error {write_error:?}): {:?}",
                String::from_utf8_lossy(&raw[..raw.len().min(300)])
            )
        })
}

/// A complete HTTP/1.1 response with a `content-length` body, or `None` if more is needed.
fn parse_raw(raw: &[u8]) -> Option<Resp> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let mut headers = hyper::HeaderMap::new();
    let mut length = None;
    for line in lines {
        let (k, v) = line.split_once(':')?;
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
        if k == "content-length" {
            length = v.parse::<usize>().ok();
        }
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(k.as_bytes()),
            hyper::header::HeaderValue::from_str(v),
        ) {
            headers.append(name, value);
        }
    }
    let body = &raw[end + 4..];
    if body.len() < length? {
        return None;
    }
    Some(Resp {
        status,
        headers,
        body: Bytes::copy_from_slice(&body[..length?]),
    })
}

async fn send(
    client: &HttpClient,
    req: hyper::Request<Full<Bytes>>,
) -> Result<hyper::Response<Incoming>, String> {
    let r = client
        .request(req)
        .await
        .map_err(|e| format!("transport error before the response: {}", chain(&e)))?;
    request_id(r.status().as_u16(), r.headers())?;
    Ok(r)
}

/// Every response carries `x-request-id` (README, HTTP surface).
fn request_id(status: u16, headers: &hyper::HeaderMap) -> Result<(), String> {
    match headers.get("x-request-id") {
        Some(v) if !v.is_empty() => Ok(()),
        _ => Err(format!("a {status} response without x-request-id")),
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s = format!("{s}: {x}");
        src = x.source();
    }
    s
}

async fn whole(client: &HttpClient, req: hyper::Request<Full<Bytes>>) -> Result<Resp, String> {
    let r = send(client, req).await?;
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r
        .into_body()
        .collect()
        .await
        .map_err(|e| {
            format!(
                "status {status}: transport error in the body: {}",
                chain(&e)
            )
        })?
        .to_bytes();
    Ok(Resp {
        status,
        headers,
        body,
    })
}

/// A streamed answer, read to its end (or until `stop_after` `data:` events, then dropped).
struct Streamed {
    status: u16,
    headers: hyper::HeaderMap,
    text: String,
    transport_error: Option<String>,
    stopped: bool,
}

async fn streamed(
    client: &HttpClient,
    req: hyper::Request<Full<Bytes>>,
    stop_after: Option<usize>,
) -> Result<Streamed, String> {
    let r = send(client, req).await?;
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let mut body = r.into_body();
    let mut bytes = Vec::new();
    let mut transport_error = None;
    let mut stopped = false;
    loop {
        match body.frame().await {
            None => break,
            Some(Err(e)) => {
                transport_error = Some(chain(&e));
                break;
            }
            Some(Ok(f)) => {
                if let Ok(d) = f.into_data() {
                    bytes.extend_from_slice(&d);
                    if let Some(n) = stop_after
                        && bytes.windows(6).filter(|w| w == b"data: ").count() >= n
                    {
                        stopped = true;
                        break;
                    }
                }
            }
        }
    }
    // Dropping `body` here, unfinished, closes the connection: the client went away.
    drop(body);
    Ok(Streamed {
        status,
        headers,
        text: String::from_utf8_lossy(&bytes).into_owned(),
        transport_error,
        stopped,
    })
}

enum End {
    Done,
    Error(Value),
}

/// What an OpenAI chat stream said, after its invariants were checked.
struct Summary {
    end: End,
    content: String,
    finish: Option<String>,
    /// (name, joined arguments) per tool call index.
    tools: Vec<(String, String)>,
    model: String,
}

/// Checks an OpenAI chat stream: `data: ` events only; one id and model; the role first and
/// once; at most one finish, on the last choice chunk; it ends with `[DONE]` after exactly one
/// finish, or with an error event and no finish and no `[DONE]` (§6.5, §6.6); nothing after.
fn check_stream(text: &str) -> Result<Summary, String> {
    let short = |s: &str| s.chars().take(300).collect::<String>();
    if !text.ends_with("\n\n") {
        return Err(format!(
            "the stream does not end at an event boundary: {:?}",
            short(&text[text.len().saturating_sub(300)..])
        ));
    }
    let mut end = None;
    let (mut id, mut model) = (None::<Value>, String::new());
    let (mut role_seen, mut finish) = (false, None::<String>);
    let mut content = String::new();
    let mut tools: Vec<(String, String)> = Vec::new();
    for ev in text.split("\n\n").filter(|e| !e.is_empty()) {
        let data = ev
            .strip_prefix("data: ")
            .ok_or_else(|| format!("an event that is not `data: `: {:?}", short(ev)))?;
        if end.is_some() {
            return Err(format!(
                "an event after the end of the stream: {:?}",
                short(ev)
            ));
        }
        if data == "[DONE]" {
            end = Some(End::Done);
            continue;
        }
        let v: Value = serde_json::from_str(data)
            .map_err(|e| format!("an event that is not JSON ({e}): {:?}", short(data)))?;
        if let Some(e) = v.get("error") {
            let ok =
                e["message"].as_str().is_some_and(|m| !m.is_empty()) && e.get("type").is_some();
            if !ok {
                return Err(format!("a malformed error event: {v}"));
            }
            end = Some(End::Error(e.clone()));
            continue;
        }
        if v["object"] != "chat.completion.chunk" {
            return Err(format!("not a chat.completion.chunk: {v}"));
        }
        match &id {
            None => {
                id = Some(v["id"].clone());
                model = v["model"].as_str().unwrap_or_default().to_string();
            }
            Some(first) if *first != v["id"] => return Err(format!("the chunk id changed: {v}")),
            _ => {}
        }
        let Some(choice) = v["choices"].as_array().and_then(|c| c.first()) else {
            // The usage chunk: only after the finish.
            if finish.is_none() {
                return Err(format!("a chunk without choices before the finish: {v}"));
            }
            continue;
        };
        if finish.is_some() {
            return Err(format!("a choice chunk after the finish: {v}"));
        }
        let delta = &choice["delta"];
        match (delta.get("role"), role_seen) {
            (Some(_), true) => return Err(format!("the role is repeated: {v}")),
            (None, false) => return Err(format!("the first chunk has no role: {v}")),
            _ => role_seen = true,
        }
        if let Some(c) = delta["content"].as_str() {
            content.push_str(c);
        }
        for tc in delta["tool_calls"].as_array().into_iter().flatten() {
            let i = tc["index"].as_u64().unwrap_or(u64::MAX) as usize;
            if let Some(name) = tc["function"]["name"].as_str() {
                if i != tools.len() {
                    return Err(format!("tool call index {i} out of order: {v}"));
                }
                tools.push((name.to_string(), String::new()));
            }
            match tools.get_mut(i) {
                Some(t) => {
                    t.1.push_str(tc["function"]["arguments"].as_str().unwrap_or_default())
                }
                None => return Err(format!("arguments for an unknown tool call: {v}")),
            }
        }
        if let Some(f) = choice["finish_reason"].as_str() {
            finish = Some(f.to_string());
        }
    }
    let end = end.ok_or_else(|| {
        format!(
            "the stream ended with neither [DONE] nor an error event: ...{:?}",
            short(&text[text.len().saturating_sub(300)..])
        )
    })?;
    match (&end, &finish) {
        (End::Done, None) => return Err("[DONE] without a finish_reason".into()),
        (End::Error(e), Some(f)) => {
            return Err(format!("an error event after a normal finish ({f}): {e}"));
        }
        _ => {}
    }
    Ok(Summary {
        end,
        content,
        finish,
        tools,
        model,
    })
}

impl Streamed {
    /// Status 200 as an SSE stream, read to its end without a transport error, and valid.
    fn valid(&self) -> Result<(Via, Summary), String> {
        if self.status != 200 {
            return Err(format!(
                "status {} (wanted 200): {}",
                self.status,
                self.text.chars().take(400).collect::<String>()
            ));
        }
        let ct = self
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok());
        if ct != Some("text/event-stream") {
            return Err(format!("content-type {ct:?}, not text/event-stream"));
        }
        if let Some(e) = &self.transport_error {
            return Err(format!("the stream broke at the transport level: {e}"));
        }
        let via = Via::of(&self.headers)?;
        Ok((via, check_stream(&self.text)?))
    }
}

fn chat_body(model: &str, text: &str, stream: bool) -> Value {
    let mut b = json!({"model": model, "messages": [{"role": "user", "content": text}]});
    if stream {
        b["stream"] = json!(true);
        b["stream_options"] = json!({"include_usage": true});
    }
    b
}

fn echo(text: &str) -> String {
    format!("Hello! You said: {text}")
}

/// A stream that must finish normally with `content` and `finish`.
fn expect_done(s: &Summary, via: Via, content: &str, model: &str) -> Result<(), String> {
    match &s.end {
        End::Done => {}
        End::Error(e) => {
            return Err(format!(
                "{} stream ended with an error event: {e}",
                via.tag()
            ));
        }
    }
    if s.content != content {
        return Err(format!(
            "{} content {:?}, wanted {content:?}",
            via.tag(),
            s.content
        ));
    }
    if s.model != model {
        return Err(format!(
            "{} model {:?}, wanted {model:?}",
            via.tag(),
            s.model
        ));
    }
    Ok(())
}

/// A stream that must end with an error event (and whatever content came before it must be
/// the start of the normal answer).
fn expect_error_event(s: &Summary, full: &str) -> Result<Value, String> {
    match &s.end {
        End::Done => Err(format!(
            "the stream finished normally ({:?}, content {:?}) after an upstream fault",
            s.finish, s.content
        )),
        End::Error(e) => {
            if !full.starts_with(&s.content) {
                return Err(format!(
                    "content before the error {:?} is not a prefix of {full:?}",
                    s.content
                ));
            }
            Ok(e.clone())
        }
    }
}

fn expect_error(
    r: &Resp,
    status: u16,
    code: Option<&str>,
    message: Option<&str>,
) -> Result<Value, String> {
    r.status_is(status)?;
    let e = r.openai_error()?;
    if let Some(c) = code
        && e["code"] != c
    {
        return Err(format!(
            "status {status}: error code {}, wanted {c:?}: {e}",
            e["code"]
        ));
    }
    if let Some(m) = message
        && e["message"] != m
    {
        return Err(format!(
            "status {status}: error message {}, wanted {m:?}: {e}",
            e["message"]
        ));
    }
    if r.headers.contains_key("x-rosetta-fallback") {
        return Err(format!("an error response carries x-rosetta-fallback: {e}"));
    }
    Ok(e)
}

fn expect_chat(r: &Resp, model: &str, content: &str) -> Outcome {
    r.status_is(200)?;
    let via = Via::of(&r.headers)?;
    let j = r.json()?;
    let want_model = via.model(model);
    if j["object"] != "chat.completion" || j["model"] != want_model {
        return Err(format!(
            "{}: not a chat.completion for {want_model}: {j}",
            via.tag()
        ));
    }
    let c = &j["choices"][0];
    if c["message"]["content"] != content || c["finish_reason"] != "stop" {
        return Err(format!(
            "{}: wanted content {content:?} and finish stop: {j}",
            via.tag()
        ));
    }
    Ok(via.tag().into())
}

async fn run_kind(
    kind: Kind,
    ctx: &Ctx,
    client: &HttpClient,
    rng: &mut Rng,
    started: Instant,
) -> Outcome {
    let n = rng.below(1_000_000);
    let a_chat = "/anthropic/v1/chat/completions";
    match kind {
        Kind::Chat | Kind::RlChat => {
            let path = if kind == Kind::Chat {
                a_chat
            } else {
                "/anthropic-rl/v1/chat/completions"
            };
            let text = format!("soak {n} hello");
            let r = whole(
                client,
                ctx.request("POST", path, chat_body(A_MODEL, &text, false).to_string()),
            )
            .await?;
            expect_chat(&r, A_MODEL, &echo(&text))
        }
        Kind::Stream => {
            let text = format!("soak {n} tell me a story");
            let s = streamed(
                client,
                ctx.request("POST", a_chat, chat_body(A_MODEL, &text, true).to_string()),
                None,
            )
            .await?;
            let (via, sum) = s.valid()?;
            expect_done(&sum, via, &echo(&text), via.model(A_MODEL))?;
            if sum.finish.as_deref() != Some("stop") {
                return Err(format!("finish {:?}, wanted stop", sum.finish));
            }
            Ok(via.tag().into())
        }
        Kind::Tools => {
            let mut body = chat_body(A_MODEL, &format!("soak {n} weather in Paris?"), true);
            body["tools"] = json!([{"type": "function", "function": {"name": "get_weather",
                "description": "Weather in a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]);
            let s = streamed(client, ctx.request("POST", a_chat, body.to_string()), None).await?;
            let (via, sum) = s.valid()?;
            // Anthropic says "Let me check." before the tool_use; the Ollama fake only calls.
            let content = if via == Via::Direct {
                "Let me check."
            } else {
                ""
            };
            expect_done(&sum, via, content, via.model(A_MODEL))?;
            if sum.finish.as_deref() != Some("tool_calls") {
                return Err(format!("finish {:?}, wanted tool_calls", sum.finish));
            }
            let args: Option<Value> = sum
                .tools
                .first()
                .and_then(|t| serde_json::from_str(&t.1).ok());
            if sum.tools.len() != 1
                || sum.tools[0].0 != "get_weather"
                || args != Some(json!({"city": "Paris"}))
            {
                return Err(format!(
                    "tool calls {:?}, wanted one get_weather {{\"city\":\"Paris\"}}",
                    sum.tools
                ));
            }
            Ok(via.tag().into())
        }
        Kind::Abort => {
            let text = format!("soak {n} SLOW please");
            // Two events: the role chunk and the first content; then the client goes away.
            let s = streamed(
                client,
                ctx.request("POST", a_chat, chat_body(A_MODEL, &text, true).to_string()),
                Some(2),
            )
            .await?;
            if s.status != 200 {
                return Err(format!("status {}: {}", s.status, s.text));
            }
            let via = Via::of(&s.headers)?;
            if !s.stopped {
                return Err(format!(
                    "the SLOW stream ended before the client could abort it (error {:?}): {}",
                    s.transport_error, s.text
                ));
            }
            Ok(via.tag().into())
        }
        Kind::Reset | Kind::Midstream | Kind::StreamGarbage => {
            let trigger = match kind {
                Kind::Reset => "RESET",
                Kind::Midstream => "MIDSTREAM ERROR",
                _ => "STREAM GARBAGE",
            };
            let text = format!("soak {n} {trigger} now");
            let s = streamed(
                client,
                ctx.request("POST", a_chat, chat_body(A_MODEL, &text, true).to_string()),
                None,
            )
            .await?;
            let (via, sum) = s.valid()?;
            let full = echo(&text);
            match (kind, via) {
                // The Ollama fake knows no STREAM GARBAGE: a normal answer.
                (Kind::StreamGarbage, Via::Fallback) => {
                    expect_done(&sum, via, &full, O_MODEL)?;
                    return Ok("fallback: normal".into());
                }
                (Kind::StreamGarbage, Via::Direct) => {
                    let e = expect_error_event(&sum, &full)?;
                    if e["code"] != "upstream_bad_response" {
                        return Err(format!(
                            "error event {e}, wanted code upstream_bad_response"
                        ));
                    }
                }
                (Kind::Reset, _) => {
                    let e = expect_error_event(&sum, &full)?;
                    if e["code"] != "upstream_stream_error" {
                        return Err(format!(
                            "error event {e}, wanted code upstream_stream_error"
                        ));
                    }
                }
                (_, Via::Direct) => {
                    let e = expect_error_event(&sum, &full)?;
                    if e["type"] != "overloaded_error" || e["message"] != "Overloaded" {
                        return Err(format!(
                            "error event {e}, wanted Anthropic's overloaded_error"
                        ));
                    }
                }
                (_, Via::Fallback) => {
                    let e = expect_error_event(&sum, &full)?;
                    if e["message"] != "an error was encountered while running the model" {
                        return Err(format!("error event {e}, wanted Ollama's mid-stream error"));
                    }
                }
            }
            Ok(format!("{}: error event", via.tag()))
        }
        Kind::Garbage => {
            let text = format!("soak {n} GARBAGE please");
            let r = whole(
                client,
                ctx.request("POST", a_chat, chat_body(A_MODEL, &text, false).to_string()),
            )
            .await?;
            expect_error(&r, 502, Some("upstream_bad_response"), None)?;
            Ok("502".into())
        }
        Kind::GarbageStream => {
            // Anthropic answers the stream request with a JSON body (before the first byte:
            // a fallback); the Ollama fake then streams a line that is not JSON.
            let text = format!("soak {n} GARBAGE please");
            let s = streamed(
                client,
                ctx.request("POST", a_chat, chat_body(A_MODEL, &text, true).to_string()),
                None,
            )
            .await?;
            let (via, sum) = s.valid()?;
            if via != Via::Fallback {
                return Err(
                    "no x-rosetta-fallback: the JSON answer to a stream request did not fall back"
                        .into(),
                );
            }
            let e = expect_error_event(&sum, "")?;
            if e["code"] != "upstream_bad_response" {
                return Err(format!(
                    "error event {e}, wanted code upstream_bad_response"
                ));
            }
            Ok("fallback: error event".into())
        }
        Kind::Hang => {
            let text = format!("soak {n} HANG forever");
            let r = whole(
                client,
                ctx.request("POST", a_chat, chat_body(A_MODEL, &text, false).to_string()),
            )
            .await?;
            expect_error(&r, 504, Some("upstream_timeout"), None)?;
            // The fallback's first-byte timeout is always paid; Anthropic's too unless all its
            // endpoints were out of rotation (then it falls back without trying).
            let t = started.elapsed();
            let floor = OLLAMA_FIRST_BYTE - Duration::from_millis(100);
            let both = ANTHROPIC_FIRST_BYTE + OLLAMA_FIRST_BYTE;
            if t < floor || t > both + Duration::from_secs(3) {
                return Err(format!(
                    "504 after {t:?}, wanted between {floor:?} and {:?}",
                    both + Duration::from_secs(3)
                ));
            }
            Ok(if t >= both - Duration::from_millis(100) {
                "504 after both timeouts".into()
            } else {
                "504 (anthropic skipped)".into()
            })
        }
        Kind::Fail500 => {
            let text = format!("soak {n} FAIL 500 please");
            let r = whole(
                client,
                ctx.request("POST", a_chat, chat_body(A_MODEL, &text, false).to_string()),
            )
            .await?;
            expect_error(
                &r,
                500,
                None,
                Some("llama runner process has terminated: exit status 2"),
            )?;
            Ok("500 from the fallback".into())
        }
        Kind::Fail429 => {
            let text = format!("soak {n} FAIL 429 please");
            let r = whole(
                client,
                ctx.request(
                    "POST",
                    "/anthropic-rl/v1/chat/completions",
                    chat_body(A_MODEL, &text, false).to_string(),
                ),
            )
            .await?;
            let e = expect_error(
                &r,
                429,
                None,
                Some("too many requests, please try again later"),
            )?;
            if e["type"] != "rate_limit_error" {
                return Err(format!(
                    "429 with type {}, wanted rate_limit_error",
                    e["type"]
                ));
            }
            Ok("429 from the fallback".into())
        }
        Kind::OllamaStream => {
            let text = format!("soak {n} hi ollama");
            let s = streamed(
                client,
                ctx.request(
                    "POST",
                    "/ollama/v1/chat/completions",
                    chat_body(O_MODEL, &text, true).to_string(),
                ),
                None,
            )
            .await?;
            let (via, sum) = s.valid()?;
            if via != Via::Direct {
                return Err("an Ollama call carries x-rosetta-fallback".into());
            }
            expect_done(&sum, via, &echo(&text), O_MODEL)?;
            Ok("direct".into())
        }
        Kind::Unified => {
            let text = format!("soak {n} unified");
            let model = "ollama/llama3.2";
            let r = whole(
                client,
                ctx.request(
                    "POST",
                    "/v1/chat/completions",
                    chat_body(model, &text, false).to_string(),
                ),
            )
            .await?;
            expect_chat(&r, model, &echo(&text))
        }
        Kind::Embeddings => {
            let body = json!({"model": EMBED_MODEL, "input": [format!("soak {n} a"), "soak b"]});
            let r = whole(
                client,
                ctx.request("POST", "/ollama/v1/embeddings", body.to_string()),
            )
            .await?;
            r.status_is(200)?;
            let j = r.json()?;
            let data = j["data"].as_array().cloned().unwrap_or_default();
            let ok = j["object"] == "list"
                && j["model"] == EMBED_MODEL
                && data.len() == 2
                && data.iter().enumerate().all(|(i, d)| {
                    d["index"] == i && d["embedding"].as_array().is_some_and(|v| v.len() == 3)
                });
            if !ok {
                return Err(format!("not two 3-dimensional embeddings: {j}"));
            }
            Ok("200".into())
        }
        Kind::Models => {
            let (path, tag) = match n % 3 {
                0 => ("/v1/models", "all"),
                1 => ("/ollama/v1/models", "ollama"),
                _ => ("/anthropic/v1/models", "anthropic"),
            };
            let r = whole(client, ctx.request("GET", path, Bytes::new())).await?;
            r.status_is(200)?;
            let j = r.json()?;
            let data = j["data"].as_array().cloned().unwrap_or_default();
            let want = match tag {
                "all" => "ollama/llama3.2",
                "ollama" => "llama3.2",
                _ => A_MODEL,
            };
            if j["object"] != "list" || !data.iter().any(|m| m["id"] == want) {
                return Err(format!("{path}: not a model list with {want}: {j}"));
            }
            Ok(tag.into())
        }
        Kind::BadJson => {
            let r = whole(
                client,
                ctx.request(
                    "POST",
                    a_chat,
                    "{\"model\": \"claude-sonnet-4-5\", not json",
                ),
            )
            .await?;
            let e = expect_error(&r, 400, None, None)?;
            if e["type"] != "invalid_request_error" {
                return Err(format!(
                    "400 with type {}, wanted invalid_request_error",
                    e["type"]
                ));
            }
            Ok("400".into())
        }
        Kind::NotFound => {
            let r = whole(
                client,
                ctx.request("GET", &format!("/soak/nope/{n}"), Bytes::new()),
            )
            .await?;
            expect_error(&r, 404, Some("not_found"), None)?;
            Ok("404".into())
        }
        Kind::TooLarge => {
            let filler = "x".repeat(ctx.body_limit + 64 * 1024);
            let body = chat_body(A_MODEL, &filler, false).to_string();
            let (r, write_error) = raw_post(ctx, a_chat, body.as_bytes()).await?;
            expect_error(&r, 413, Some("request_too_large"), None)?;
            Ok(match write_error {
                None => "413".into(),
                Some(_) => "413 after a write error".into(),
            })
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Statistics

#[derive(Default)]
struct KindStats {
    count: u64,
    ok: u64,
    unexpected: u64,
    hung: u64,
    latencies_ms: Vec<f64>,
    tags: BTreeMap<String, u64>,
}

#[derive(Default)]
struct Stats {
    kinds: BTreeMap<Kind, KindStats>,
    samples: Vec<String>,
}

impl Stats {
    fn record(&mut self, kind: Kind, outcome: Option<Outcome>, elapsed: Duration) {
        let k = self.kinds.entry(kind).or_default();
        k.count += 1;
        k.latencies_ms.push(elapsed.as_secs_f64() * 1000.0);
        match outcome {
            Some(Ok(tag)) => {
                k.ok += 1;
                *k.tags.entry(tag).or_default() += 1;
            }
            Some(Err(detail)) => {
                k.unexpected += 1;
                *k.tags.entry("UNEXPECTED".into()).or_default() += 1;
                if self.samples.len() < 25 {
                    self.samples.push(format!(
                        "[{}] after {elapsed:.2?}: {detail}",
                        kind_name(kind)
                    ));
                }
            }
            None => {
                k.hung += 1;
                *k.tags.entry("HUNG".into()).or_default() += 1;
                if self.samples.len() < 25 {
                    self.samples.push(format!(
                        "[{}] HUNG: no complete answer within the deadline {elapsed:.2?}",
                        kind_name(kind)
                    ));
                }
            }
        }
    }

    fn totals(&self) -> (u64, u64, u64) {
        self.kinds.values().fold((0, 0, 0), |(c, u, h), k| {
            (c + k.count, u + k.unexpected, h + k.hung)
        })
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Runs the mixed traffic for `length` with `concurrency` workers on one fresh client, which is
/// dropped at the end (so no client connection stays open).
async fn traffic(
    ctx: Arc<Ctx>,
    concurrency: usize,
    length: Duration,
    deadline: Duration,
    seed: u64,
) -> Stats {
    let client = http_client();
    let stats = Arc::new(Mutex::new(Stats::default()));
    let end = Instant::now() + length;
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let (ctx, client, stats) = (Arc::clone(&ctx), client.clone(), Arc::clone(&stats));
        let mut rng = Rng(seed ^ (w as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407));
        tasks.push(tokio::spawn(async move {
            while Instant::now() < end {
                let kind = rng.kind();
                let started = Instant::now();
                let outcome = tokio::time::timeout(
                    deadline,
                    run_kind(kind, &ctx, &client, &mut rng, started),
                )
                .await
                .ok();
                let elapsed = started.elapsed();
                stats
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .record(kind, outcome, elapsed);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    drop(client);
    Arc::try_unwrap(stats)
        .ok()
        .map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Quiescence and sampling

struct Quiet {
    active_streams: f64,
    in_flight: Option<f64>,
    inbound: usize,
    waited: Duration,
    reached: bool,
}

/// Polls `/metrics` and the process until no stream is active, nothing is in flight and no
/// client connection is open, twice in a row 300 ms apart (at most [`QUIESCE_LIMIT`]).
async fn quiesce(base: &str, pid: u32, port: u16) -> Quiet {
    let t = Instant::now();
    let mut calm = 0;
    loop {
        let metrics = admin_get(base, "/metrics")
            .await
            .map(|r| r.1)
            .unwrap_or_default();
        let active = metric_sum(&metrics, "rosetta_active_streams").unwrap_or(f64::NAN);
        let in_flight = metric_sum(&metrics, "rosetta_in_flight_requests");
        // Give the closed admin connection a moment before counting client connections.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let inbound = proc_stats(pid, port, &[])
            .map(|s| s.sockets.inbound)
            .unwrap_or(usize::MAX);
        let quiet = active == 0.0 && in_flight.is_none_or(|v| v == 0.0) && inbound == 0;
        calm = if quiet { calm + 1 } else { 0 };
        if calm >= 2 || t.elapsed() > QUIESCE_LIMIT {
            return Quiet {
                active_streams: active,
                in_flight,
                inbound,
                waited: t.elapsed(),
                reached: calm >= 2,
            };
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[derive(Default)]
struct Peak {
    rss_kib: AtomicU64,
    fds: AtomicU64,
}

/// Samples RSS and the fd count every 250 ms until `stop`.
fn sampler(pid: u32, stop: Arc<AtomicBool>) -> (Arc<Peak>, tokio::task::JoinHandle<()>) {
    let peak = Arc::new(Peak::default());
    let p = Arc::clone(&peak);
    let task = tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            if let Some(r) = rss_kib(pid) {
                p.rss_kib.fetch_max(r, Ordering::Relaxed);
            }
            if let Some(f) = fd_count(pid) {
                p.fds.fetch_max(f as u64, Ordering::Relaxed);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    (peak, task)
}

// ---------------------------------------------------------------------------------------------
// Report

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

fn print_kinds(stats: &Stats, secs: f64) {
    println!(
        "{:<16} {:>7} {:>7} {:>6} {:>5} {:>8} {:>8} {:>8}  outcomes",
        "kind", "count", "ok", "unexp", "hung", "p50 ms", "p99 ms", "max ms"
    );
    let mut all = Vec::new();
    for (kind, name, _, _) in KINDS {
        let Some(k) = stats.kinds.get(kind) else {
            println!("{name:<16} {:>7}", 0);
            continue;
        };
        let mut lat = k.latencies_ms.clone();
        lat.sort_by(|a, b| a.total_cmp(b));
        all.extend_from_slice(&lat);
        let tags: Vec<String> = k.tags.iter().map(|(t, n)| format!("{t} {n}")).collect();
        println!(
            "{name:<16} {:>7} {:>7} {:>6} {:>5} {:>8.1} {:>8.1} {:>8.1}  {}",
            k.count,
            k.ok,
            k.unexpected,
            k.hung,
            percentile(&lat, 50.0),
            percentile(&lat, 99.0),
            lat.last().copied().unwrap_or(0.0),
            tags.join(", ")
        );
    }
    all.sort_by(|a, b| a.total_cmp(b));
    let (count, unexpected, hung) = stats.totals();
    println!(
        "{:<16} {count:>7} {:>7} {unexpected:>6} {hung:>5} {:>8.1} {:>8.1} {:>8.1}  {:.1} req/s",
        "TOTAL",
        count - unexpected - hung,
        percentile(&all, 50.0),
        percentile(&all, 99.0),
        all.last().copied().unwrap_or(0.0),
        count as f64 / secs.max(0.001)
    );
}

fn sockets_line(s: &Sockets) -> String {
    let up: Vec<String> = s.upstream.iter().map(|(n, c)| format!("{n} {c}")).collect();
    format!(
        "listen {}, inbound {}, upstream {} ({}), other {}, CLOSE_WAIT {}",
        s.listen,
        s.inbound,
        s.upstream_total(),
        up.join(", "),
        s.other,
        s.close_wait
    )
}

struct Check {
    pass: bool,
    line: String,
}

fn check(pass: bool, line: String) -> Check {
    Check { pass, line }
}

// ---------------------------------------------------------------------------------------------
// Main

async fn run(args: Args, dir: &Path) -> Result<bool, String> {
    let dir = dir.to_path_buf();
    let bin = rosetta_binary(args.rosetta.clone())?;
    let fakes = Fakes::start().await;
    write_mappings(&args.mappings, &dir, &fakes)?;
    let env = vec![
        ("ANTHROPIC_API_KEY", ANTHROPIC_KEY.to_string()),
        ("OLLAMA_BASE_URL", fakes.ollama.base_url()),
    ];
    check_mappings(&bin, &dir, &env)?;
    let spawned = spawn_rosetta(&bin, &dir, &env, args.concurrency, args.seed)?;
    let mut rosetta = spawned.rosetta;
    let (pid, port) = (rosetta.pid, rosetta.port);
    let base = format!("http://127.0.0.1:{port}");
    let ctx = Arc::new(Ctx {
        base: base.clone(),
        api_key: spawned.api_key,
        body_limit: spawned.body_limit,
    });
    let upstreams: Vec<(String, u16)> = fakes
        .named()
        .iter()
        .map(|(n, f)| (n.to_string(), f.addr().port()))
        .collect();
    let fake_ports: Vec<u16> = upstreams.iter().map(|u| u.1).collect();

    println!("soak: rosetta {} (pid {pid}) on {base}", bin.display());
    println!("soak: mappings and log in {}", dir.display());
    println!(
        "soak: serve flags used: {}",
        if spawned.flags_used.is_empty() {
            "none (none of --max-concurrent, --max-body, --api-keys found)".to_string()
        } else {
            spawned.flags_used.join(" ")
        }
    );
    println!(
        "soak: upstreams: anthropic = [dead {}, good {}, flaky {}] (first_byte 2s, idle 1s, retry 3 x 50ms, health 2/2s, fallback ollama/llama3.2); anthropic-rl = [{}, dead]; ollama = {} (first_byte {}s)",
        fakes.dead,
        fakes.good.base_url(),
        fakes.flaky.base_url(),
        fakes.rl.base_url(),
        fakes.ollama.base_url(),
        OLLAMA_FIRST_BYTE.as_secs()
    );
    println!(
        "soak: duration {:?}, warm-up {:?}, concurrency {}, deadline {:?}, seed {}",
        args.duration, args.warmup, args.concurrency, args.deadline, args.seed
    );

    // Up?
    let t = Instant::now();
    loop {
        if let Ok((200, _)) = admin_get(&base, "/health").await {
            break;
        }
        if t.elapsed() > Duration::from_secs(20) {
            return Err(format!(
                "/health did not answer 200 within 20 s; log tail:\n{}",
                rosetta.log_tail(30)
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let start = proc_stats(pid, port, &upstreams)?;

    // Warm-up, then the baseline.
    let stop = Arc::new(AtomicBool::new(false));
    println!("soak: warm-up...");
    let warm = fakes
        .forgetting(traffic(
            Arc::clone(&ctx),
            args.concurrency,
            args.warmup,
            args.deadline,
            args.seed ^ 0x5eed,
        ))
        .await;
    let q0 = quiesce(&base, pid, port).await;
    let baseline = proc_stats(pid, port, &upstreams)?;
    let fakes_baseline = fakes.connections();

    // Soak.
    println!(
        "soak: soak for {:?} at concurrency {}...",
        args.duration, args.concurrency
    );
    let (peak, sampler_task) = sampler(pid, Arc::clone(&stop));
    let t_soak = Instant::now();
    let stats = fakes
        .forgetting(traffic(
            Arc::clone(&ctx),
            args.concurrency,
            args.duration,
            args.deadline,
            args.seed,
        ))
        .await;
    let soak_secs = t_soak.elapsed().as_secs_f64();
    let q1 = quiesce(&base, pid, port).await;
    stop.store(true, Ordering::Relaxed);
    let _ = sampler_task.await;
    let after = proc_stats(pid, port, &upstreams)?;
    let fakes_after = fakes.connections();
    let fakes_close_wait = own_close_wait(&fake_ports);
    let metrics = admin_get(&base, "/metrics")
        .await
        .map(|r| r.1)
        .unwrap_or_default();

    // Optional: idle keep-alive connections must close after the pool's idle timeout.
    let drained = match args.idle_drain {
        Some(d) => {
            println!("soak: idle drain: waiting {d:?} for idle upstream connections to close...");
            tokio::time::sleep(d).await;
            Some((proc_stats(pid, port, &upstreams)?, fakes.connections()))
        }
        None => None,
    };
    let shutdown = rosetta.terminate();

    // ---- report
    println!();
    println!("== requests (soak phase, {soak_secs:.1} s) ==");
    print_kinds(&stats, soak_secs);
    let (wc, wu, wh) = warm.totals();
    println!("warm-up: {wc} requests, {wu} unexpected, {wh} hung");
    let mut samples = warm.samples.clone();
    samples.extend(stats.samples.iter().cloned());
    if !samples.is_empty() {
        println!();
        println!("== unexpected / hung (first {}) ==", samples.len());
        for s in &samples {
            println!("  {s}");
        }
    }

    println!();
    println!("== resources of the rosetta process (pid {pid}) ==");
    let peak_rss = peak.rss_kib.load(Ordering::Relaxed).max(after.rss_kib);
    let peak_fds = (peak.fds.load(Ordering::Relaxed) as usize).max(after.fds);
    println!(
        "{:<22} {:>9} {:>9} {:>9} {:>9}{}",
        "",
        "start",
        "baseline",
        "peak",
        "after",
        if drained.is_some() { "   drained" } else { "" }
    );
    let d = drained.as_ref().map(|(s, _)| s);
    let col = |v: Option<String>| v.map(|v| format!(" {v:>9}")).unwrap_or_default();
    println!(
        "{:<22} {:>9} {:>9} {:>9} {:>9}{}",
        "open fds",
        start.fds,
        baseline.fds,
        peak_fds,
        after.fds,
        col(d.map(|s| s.fds.to_string()))
    );
    println!(
        "{:<22} {:>9} {:>9} {:>9} {:>9}{}",
        "  upstream sockets",
        start.sockets.upstream_total(),
        baseline.sockets.upstream_total(),
        "-",
        after.sockets.upstream_total(),
        col(d.map(|s| s.sockets.upstream_total().to_string()))
    );
    println!(
        "{:<22} {:>9} {:>9} {:>9} {:>9}{}",
        "  other fds",
        start.non_upstream(),
        baseline.non_upstream(),
        "-",
        after.non_upstream(),
        col(d.map(|s| s.non_upstream().to_string()))
    );
    println!(
        "{:<22} {:>9} {:>9} {:>9} {:>9}{}",
        "VmRSS MiB",
        mib(start.rss_kib),
        mib(baseline.rss_kib),
        mib(peak_rss),
        mib(after.rss_kib),
        col(d.map(|s| mib(s.rss_kib)))
    );
    println!("sockets at baseline: {}", sockets_line(&baseline.sockets));
    println!("sockets after:       {}", sockets_line(&after.sockets));
    if let Some(s) = d {
        println!("sockets drained:     {}", sockets_line(&s.sockets));
    }
    let fc = |v: &[(&str, usize)]| {
        v.iter()
            .map(|(n, c)| format!("{n} {c}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "fake upstream open connections: baseline [{}], after [{}]{}",
        fc(&fakes_baseline),
        fc(&fakes_after),
        drained
            .as_ref()
            .map(|(_, f)| format!(", drained [{}]", fc(f)))
            .unwrap_or_default()
    );
    println!(
        "fake-side sockets in CLOSE_WAIT (connections Rosetta closed that a fake still holds): {fakes_close_wait}"
    );
    println!(
        "quiescence: warm-up {:.1} s, soak {:.1} s (active streams {}, in flight {}, client connections {})",
        q0.waited.as_secs_f64(),
        q1.waited.as_secs_f64(),
        q1.active_streams,
        q1.in_flight.map_or("n/a".into(), |v| v.to_string()),
        q1.inbound
    );
    let by = |name: &str, label: &str| {
        metric_by(&metrics, name, label)
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "rosetta metrics (whole run): requests by status [{}]",
        by("rosetta_requests_total", "status")
    );
    println!(
        "  retries by reason [{}]; ejections [{}]; fallbacks [{}]",
        by("rosetta_upstream_retries_total", "reason"),
        by("rosetta_endpoint_ejections_total", "endpoint"),
        by("rosetta_fallbacks_total", "mapping")
    );
    println!(
        "  upstream errors by kind [{}]; rejected [{}]",
        by("rosetta_upstream_errors_total", "kind"),
        by("rosetta_rejected_total", "reason")
    );
    match shutdown {
        Some((code, t)) => println!("shutdown: SIGTERM -> exit {code:?} in {} ms", t.as_millis()),
        None => println!("shutdown: no exit within 5 s of SIGTERM (killed)"),
    }

    // ---- criteria
    let (_, unexpected, hung) = stats.totals();
    let (count, _, _) = stats.totals();
    let mut checks = Vec::new();
    checks.push(check(
        hung + wh == 0,
        format!(
            "hung requests: {} (soak {hung}, warm-up {wh}; deadline {:?})",
            hung + wh,
            args.deadline
        ),
    ));
    checks.push(check(
        unexpected + wu == 0,
        format!(
            "unexpected outcomes: {} of {} requests (soak {unexpected}, warm-up {wu})",
            unexpected + wu,
            count + wc
        ),
    ));
    checks.push(check(
        q1.reached,
        format!(
            "quiescent after the soak: active streams {}, in flight {}, client connections {} (waited {:.1} s, limit {:?})",
            q1.active_streams,
            q1.in_flight.map_or("n/a".into(), |v| v.to_string()),
            q1.inbound,
            q1.waited.as_secs_f64(),
            QUIESCE_LIMIT
        ),
    ));
    let other_limit = baseline.non_upstream() + FD_SLACK;
    checks.push(check(
        after.non_upstream() <= other_limit,
        format!(
            "fds other than upstream sockets: after {} <= baseline {} + {FD_SLACK} = {other_limit}",
            after.non_upstream(),
            baseline.non_upstream()
        ),
    ));
    let up_limit = baseline.sockets.upstream_total() + args.concurrency;
    checks.push(check(
        after.sockets.upstream_total() <= up_limit,
        format!(
            "upstream sockets (idle keep-alive pools): after {} <= baseline {} + concurrency {} = {up_limit}",
            after.sockets.upstream_total(),
            baseline.sockets.upstream_total(),
            args.concurrency
        ),
    ));
    checks.push(check(
        after.sockets.close_wait == 0,
        format!(
            "rosetta sockets in CLOSE_WAIT after: {}",
            after.sockets.close_wait
        ),
    ));
    let fd_limit = other_limit + up_limit;
    checks.push(check(
        after.fds <= fd_limit,
        format!(
            "open fds: after {} <= {fd_limit} (baseline {} + {FD_SLACK} + concurrency {})",
            after.fds, baseline.fds, args.concurrency
        ),
    ));
    let rss_limit = (baseline.rss_kib as f64 * RSS_FACTOR) as u64 + RSS_SLACK_KIB;
    checks.push(check(
        after.rss_kib <= rss_limit,
        format!(
            "VmRSS: after {} MiB <= baseline {} MiB x {RSS_FACTOR} + {} MiB = {} MiB (peak {} MiB)",
            mib(after.rss_kib),
            mib(baseline.rss_kib),
            RSS_SLACK_KIB / 1024,
            mib(rss_limit),
            mib(peak_rss)
        ),
    ));
    if let Some((s, _)) = &drained {
        checks.push(check(
            s.sockets.upstream_total() == 0 && s.non_upstream() <= start.non_upstream() + FD_SLACK,
            format!(
                "after the idle drain ({:?}): upstream sockets {} (want 0), other fds {} <= start {} + {FD_SLACK}",
                args.idle_drain.unwrap_or_default(),
                s.sockets.upstream_total(),
                s.non_upstream(),
                start.non_upstream()
            ),
        ));
    }
    let log = std::fs::read_to_string(&rosetta.log).unwrap_or_default();
    let panics = log.lines().filter(|l| l.contains("panicked")).count();
    checks.push(check(
        panics == 0,
        format!("panics in rosetta's log: {panics}"),
    ));
    println!();
    println!("== pass criteria ==");
    println!(
        "  (fd rule: the baseline is taken after a warm-up at the same concurrency, so Rosetta's"
    );
    println!(
        "   upstream keep-alive pools already hold their working set. Non-upstream fds (listener,"
    );
    println!(
        "   client connections, epoll, files) must return to the baseline; upstream sockets, which"
    );
    println!(
        "   are idle pooled connections classified through /proc/net/tcp by the fakes' ports, may"
    );
    println!(
        "   grow by at most one per worker (a busier overlap on one upstream than in the warm-up);"
    );
    println!(
        "   a leak grows with the request count instead. No Rosetta socket may sit in CLOSE_WAIT."
    );
    println!(
        "   RSS rule: allocators keep freed memory, hence x{RSS_FACTOR} + {} MiB over the baseline.)",
        RSS_SLACK_KIB / 1024
    );
    let mut all_pass = true;
    for c in &checks {
        all_pass &= c.pass;
        println!("  {} {}", if c.pass { "PASS" } else { "FAIL" }, c.line);
    }
    println!();
    println!(
        "soak: {} - {} requests in {:.0} s ({:.0} req/s) at concurrency {}, {} hung, {} unexpected, fds {} -> {} (peak {}), RSS {} -> {} MiB (peak {}), active streams {}",
        if all_pass { "PASS" } else { "FAIL" },
        count,
        soak_secs,
        count as f64 / soak_secs.max(0.001),
        args.concurrency,
        hung + wh,
        unexpected + wu,
        baseline.fds,
        after.fds,
        peak_fds,
        mib(baseline.rss_kib),
        mib(after.rss_kib),
        mib(peak_rss),
        q1.active_streams
    );
    drop(rosetta);
    Ok(all_pass)
}

async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[tokio::main]
async fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse_args(&argv) {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("soak: {e}");
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
            println!("{USAGE}\n\nrequest kinds (weight: what each must give):");
            for (_, name, weight, what) in KINDS {
                println!("  {name:<16} {weight:>3}  {what}");
            }
            return ExitCode::SUCCESS;
        }
    };
    let dir = std::env::temp_dir().join(format!(
        "rosetta-soak-{}-{:x}",
        std::process::id(),
        args.seed & 0xffff_ffff
    ));
    let keep_temp = args.keep_temp;
    // Dropping `run` (on a signal) drops the Rosetta guard, which kills the child.
    let (code, keep) = tokio::select! {
        r = run(args, &dir) => match r {
            Ok(true) => (ExitCode::SUCCESS, keep_temp),
            Ok(false) => (ExitCode::FAILURE, true),
            Err(e) => {
                eprintln!("soak: error: {e}");
                (ExitCode::from(2), true)
            }
        },
        _ = interrupted() => {
            eprintln!("soak: interrupted; rosetta stopped");
            (ExitCode::from(130), keep_temp)
        }
    };
    if keep && dir.exists() {
        println!("soak: kept {} (mappings, rosetta.log)", dir.display());
    } else if dir.exists() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(delta: Value, finish: Value) -> String {
        let c = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
        format!("data: {c}\n\n")
    }

    #[test]
    fn a_normal_stream_passes_and_faults_are_told_apart() {
        let role = chunk(json!({"role": "assistant", "content": ""}), Value::Null);
        let hi = chunk(json!({"content": "Hi"}), Value::Null);
        let stop = chunk(json!({}), json!("stop"));
        let usage = "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[],\"usage\":{}}\n\n";
        let error = "data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\",\"param\":null,\"code\":\"upstream_stream_error\"}}\n\n";
        let ok = check_stream(&format!("{role}{hi}{stop}{usage}data: [DONE]\n\n")).unwrap();
        assert!(matches!(ok.end, End::Done));
        assert_eq!(
            (ok.content.as_str(), ok.finish.as_deref(), ok.model.as_str()),
            ("Hi", Some("stop"), "m")
        );
        let failed = check_stream(&format!("{role}{hi}{error}")).unwrap();
        assert!(matches!(failed.end, End::Error(ref e) if e["code"] == "upstream_stream_error"));
        // Each of these must be an unexpected outcome.
        for bad in [
            format!("{role}{hi}"),                           // neither [DONE] nor an error
            format!("{role}{hi}{stop}{error}"),              // an error after a normal finish
            format!("{role}{hi}data: [DONE]\n\n"),           // [DONE] without a finish
            format!("{role}{hi}{stop}data: [DONE]\n\n{hi}"), // data after the end
            format!("{role}{role}{stop}data: [DONE]\n\n"),   // the role twice
            format!("{hi}{stop}data: [DONE]\n\n"),           // no role first
            format!("{role}{hi}data: {{not json\n\n"),       // not JSON
            format!("{role}{hi}{stop}data: [DONE]\n"),       // cut inside an event
        ] {
            assert!(check_stream(&bad).is_err(), "accepted: {bad}");
        }
    }

    #[test]
    fn tool_call_deltas_are_joined_per_index() {
        let role = chunk(json!({"role": "assistant", "content": ""}), Value::Null);
        let start = chunk(
            json!({"tool_calls": [{"index": 0, "id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
            Value::Null,
        );
        let a = chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\""}}]}),
            Value::Null,
        );
        let b = chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": ":\"Paris\"}"}}]}),
            Value::Null,
        );
        let fin = chunk(json!({}), json!("tool_calls"));
        let s = check_stream(&format!("{role}{start}{a}{b}{fin}data: [DONE]\n\n")).unwrap();
        assert_eq!(
            s.tools,
            vec![(
                "get_weather".to_string(),
                "{\"city\":\"Paris\"}".to_string()
            )]
        );
    }

    #[test]
    fn raw_responses_need_their_whole_body() {
        let head = b"HTTP/1.1 413 Payload Too Large\r\ncontent-type: application/json\r\nx-request-id: r1\r\ncontent-length: 7\r\n\r\n";
        let mut raw = head.to_vec();
        raw.extend_from_slice(b"{\"a\"");
        assert!(parse_raw(&raw).is_none());
        raw.extend_from_slice(b":1}");
        let r = parse_raw(&raw).unwrap();
        assert_eq!((r.status, &r.body[..]), (413, &b"{\"a\":1}"[..]));
        assert!(request_id(r.status, &r.headers).is_ok());
    }

    #[test]
    fn metrics_are_summed_and_split_by_label() {
        let text = "# HELP x\nrosetta_active_streams{mapping=\"a\"} 2\nrosetta_active_streams{mapping=\"b\"} 1\nrosetta_in_flight_requests 0\nrosetta_upstream_retries_total{mapping=\"a\",reason=\"5xx\"} 3\nrosetta_upstream_retries_total{mapping=\"b\",reason=\"5xx\"} 4\n";
        assert_eq!(metric_sum(text, "rosetta_active_streams"), Some(3.0));
        assert_eq!(metric_sum(text, "rosetta_in_flight_requests"), Some(0.0));
        assert_eq!(metric_sum(text, "rosetta_nope"), None);
        assert_eq!(
            metric_by(text, "rosetta_upstream_retries_total", "reason").get("5xx"),
            Some(&7.0)
        );
    }

    #[test]
    fn every_kind_is_drawn_and_percentiles_use_nearest_rank() {
        let mut rng = Rng(7);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..20_000 {
            seen.insert(rng.kind());
        }
        assert_eq!(seen.len(), KINDS.len());
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(
            (
                percentile(&v, 50.0),
                percentile(&v, 99.0),
                percentile(&v, 100.0)
            ),
            (50.0, 99.0, 100.0)
        );
    }

    #[test]
    fn the_anthropic_mapping_gets_the_endpoint_list() {
        let src = format!("upstream:\n{SHIPPED_BASE_URL}  headers:\n    x: y\n");
        let out = anthropic_mapping(&src, &["http://a", "http://b"]).unwrap();
        assert!(out.starts_with("upstream:\n  endpoints:\n    - base_url: http://a\n    - base_url: http://b\n  timeouts:"), "{out}");
        assert!(out.ends_with("  headers:\n    x: y\n"));
        assert!(anthropic_mapping("upstream:\n  base_url: http://x\n", &["http://a"]).is_err());
    }
}
