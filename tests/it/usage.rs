//! Usage, pricing and budgets end to end (docs/usage-and-budgets.md): Rosetta in front of the
//! fake Anthropic API, recording on a real ledger. Every test body runs on SQLite and on
//! PostgreSQL (`usage::NAME::sqlite`, `usage::NAME::postgres`; see `db.rs`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rosetta::ledger::budgets::{Budgets, day_period};
use rosetta::ledger::store::SqlStore;
use rosetta::ledger::tab::Accounting;
use rosetta::ledger::writer::{Ledger, LedgerOptions};
use rosetta::ledger::{GroupBy, ReportRow, Store};
use rosetta::mapping::pricing::NANO;
use rosetta::ops::clock::Clock;
use rosetta::serving::auth::Auth;
use rosetta_testkit::FakeUpstream;
use serde_json::{Value, json};

use super::db::{Db, T0, on_both};
use super::support::{Proxy, temp_dir};

const KEY: &str = "sk-ant-test-0123456789";

/// Rosetta on the shipped Anthropic mapping (its `pricing` edited by `pricing`), recording on
/// the test's database.
struct Rig {
    fake: FakeUpstream,
    proxy: Proxy,
    ledger: Ledger,
}

struct Setup<'a> {
    budgets: Option<&'a str>,
    require_user: bool,
    keys: Option<&'a str>,
    options: LedgerOptions,
}

impl Default for Setup<'_> {
    fn default() -> Self {
        Setup {
            budgets: None,
            require_user: false,
            keys: None,
            options: LedgerOptions {
                flush_interval: Duration::from_millis(20),
                // Past it a call goes through unchecked: on a loaded test machine two SQLite
                // writers in one file can wait on each other for more than the default 2 s.
                reserve_timeout: Duration::from_secs(15),
                // The date of T0, running: probes and hold expiry still see time pass.
                clock: Clock::running_from(T0),
                ..LedgerOptions::default()
            },
        }
    }
}

/// The haiku models cost exactly one cent a call and nothing per token: budget tests know
/// each call's cost before it is made.
fn edit_pricing(src: &str, require_user: bool) -> String {
    let mut out = String::new();
    for line in src.lines() {
        if line.contains("model: \"claude-haiku-4-5*\"") {
            out.push_str("    - {model: \"claude-haiku-4-5*\", request: 0.01}\n");
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if require_user && line == "pricing:" {
            out.push_str("  require_user: true\n");
        }
    }
    out
}

async fn rig_on(db: &Db, fake: FakeUpstream, setup: Setup<'_>) -> Rig {
    let src = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/anthropic.yaml"),
    )
    .unwrap();
    let dir = temp_dir();
    std::fs::write(
        dir.join("anthropic.yaml"),
        edit_pricing(&src, setup.require_user),
    )
    .unwrap();
    let budgets = setup
        .budgets
        .map(|text| Budgets::parse(text, "budgets.yaml").unwrap());
    let store: Arc<dyn Store> = Arc::new(db.store_at(setup.options.clock.clone()));
    let mut ledger_slot = None;
    let env = [
        ("ANTHROPIC_BASE_URL", fake.base_url()),
        ("ANTHROPIC_API_KEY", KEY.to_string()),
    ];
    let proxy = Proxy::start_with(&dir, &env, |state| {
        let ledger = Ledger::start(store, setup.options, state.metrics.clone());
        ledger_slot = Some(ledger.clone());
        let mut state = state.with_accounting(Accounting {
            ledger: Some(ledger),
            budgets,
            user_header: Some(http::HeaderName::from_static("x-user")),
            ..Accounting::default()
        });
        if let Some(keys) = setup.keys {
            state = state.with_auth(Auth::load(Some(keys), None).unwrap());
        }
        state
    })
    .await;
    Rig {
        fake,
        proxy,
        ledger: ledger_slot.unwrap(),
    }
}

async fn rig(db: &Db, setup: Setup<'_>) -> Rig {
    rig_on(db, FakeUpstream::anthropic_with_key(KEY).await, setup).await
}

/// A chat completion with extra headers; the status, headers and body.
async fn call(rig: &Rig, body: &Value, headers: &[(&str, &str)]) -> (u16, http::HeaderMap, String) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut req = http::Request::post(rig.proxy.url("/anthropic/v1/chat/completions"))
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = client
        .request(req.body(Full::new(Bytes::from(body.to_string()))).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&text).into_owned())
}

fn chat(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": text}]})
}

/// Writes out everything queued and gives the report grouped `by`.
async fn report(rig: &Rig, by: GroupBy) -> Vec<ReportRow> {
    let closed = rig.ledger.close(Duration::from_secs(10)).await;
    assert_eq!(closed.left, 0, "{closed:?}");
    rig.ledger.store().report(0, by).await.unwrap()
}

fn row<'a>(rows: &'a [ReportRow], group: &str) -> &'a ReportRow {
    rows.iter()
        .find(|r| r.group.as_deref() == Some(group))
        .unwrap_or_else(|| panic!("no row {group:?} in {rows:#?}"))
}

/// Sonnet's list price in nano-units: 3, 0.30 and 15 USD per million input, cached input and
/// output tokens are 3,000, 300 and 15,000 nano-units per token.
fn sonnet_cost(prompt: i64, cached: i64, completion: i64) -> i64 {
    (prompt - cached) * 3_000 + cached * 300 + completion * 15_000
}

async fn priced_calls_are_recorded_and_charged(db: &Db) {
    let rig = rig(db, Setup::default()).await;
    // Non-stream, user from the body, with cache reads.
    let mut body = chat("claude-sonnet-4-5", "Hello there CACHED");
    body["user"] = json!("alice");
    let (status, _, text) = call(&rig, &body, &[]).await;
    assert_eq!(status, 200, "{text}");
    let usage = serde_json::from_str::<Value>(&text).unwrap()["usage"].clone();
    let prompt = usage["prompt_tokens"].as_i64().unwrap();
    let completion = usage["completion_tokens"].as_i64().unwrap();
    let cached = usage["prompt_tokens_details"]["cached_tokens"]
        .as_i64()
        .unwrap();
    assert!(cached > 0 && completion > 0, "{usage}");
    // The same prompt as a stream that does not ask for usage, user from the header.
    let mut streamed = chat("claude-sonnet-4-5", "Hello there CACHED");
    streamed["stream"] = json!(true);
    let (status, _, text) = call(&rig, &streamed, &[("x-user", "bob")]).await;
    assert_eq!(status, 200);
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert!(
        !text.contains("\"usage\""),
        "the client did not ask: {text}"
    );
    let metrics = rig.proxy.metrics();

    let rows = report(&rig, GroupBy::User).await;
    let want = sonnet_cost(prompt, cached, completion);
    for user in ["alice", "bob"] {
        let r = row(&rows, user);
        assert_eq!(
            (r.requests, r.succeeded, r.failed, r.aborted),
            (1, 1, 0, 0),
            "{user}"
        );
        assert_eq!(
            (r.prompt_tokens, r.completion_tokens, r.cached_tokens),
            (prompt, completion, cached),
            "{user}: the stream is priced from its final usage"
        );
        assert_eq!(r.cost_nano, want, "{user}");
    }
    let line = format!(
        "rosetta_cost_nano_total{{mapping=\"anthropic\",model=\"claude-sonnet-4-5*\"}} {}",
        2 * want
    );
    assert!(metrics.contains(&line), "{line} not in\n{metrics}");
    assert!(
        metrics.contains(&format!(
            "rosetta_model_tokens_total{{kind=\"cached\",mapping=\"anthropic\",model=\"claude-sonnet-4-5*\"}} {}",
            2 * cached
        )),
        "{metrics}"
    );
    let by_model = rig.ledger.store().report(0, GroupBy::Model).await.unwrap();
    assert_eq!(row(&by_model, "claude-sonnet-4-5").cost_nano, 2 * want);
}

async fn failures_and_aborts_are_recorded_but_never_charged(db: &Db) {
    let budgets = "users:\n  \"*\": {requests_per_day: 100, cost_per_day: 100}\n";
    let rig = rig(
        db,
        Setup {
            budgets: Some(budgets),
            ..Setup::default()
        },
    )
    .await;
    // An upstream error (a 400: not retried, no fallback).
    let mut body = chat("claude-sonnet-4-5", "FAIL 400 please");
    body["user"] = json!("erin");
    let (status, _, text) = call(&rig, &body, &[]).await;
    assert_eq!(status, 400, "{text}");
    // A 5xx after every retry.
    let mut body = chat("claude-sonnet-4-5", "FAIL 500 please");
    body["user"] = json!("erin");
    let (status, _, _) = call(&rig, &body, &[]).await;
    assert_eq!(status, 500);
    // A stream the client leaves after its first bytes.
    let mut body = chat("claude-sonnet-4-5", "SLOW a long answer please");
    body["user"] = json!("erin");
    body["stream"] = json!(true);
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let req = http::Request::post(rig.proxy.url("/anthropic/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut incoming = resp.into_body();
    let first = incoming.frame().await.unwrap().unwrap();
    assert!(first.is_data());
    drop(incoming);
    drop(client);
    // The abort is recorded once the proxy notices (within a second).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while rig.ledger.status().written + rig.ledger.status().pending < 3 {
        assert!(std::time::Instant::now() < deadline, "abort not recorded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // And one success, charged, to show the budget does move.
    let mut body = chat("claude-sonnet-4-5", "Hi");
    body["user"] = json!("erin");
    assert_eq!(call(&rig, &body, &[]).await.0, 200);

    let rows = report(&rig, GroupBy::User).await;
    let r = row(&rows, "erin");
    assert_eq!(
        (r.requests, r.succeeded, r.failed, r.aborted),
        (4, 1, 1, 1),
        "{r:?}: the 400 is a client error, the 500 an upstream error"
    );
    let store = SqlStore::connect_lazy(&db.url).unwrap();
    let (spent, requests) = store
        .budget_usage("user:erin", &day_period(T0).0)
        .await
        .unwrap();
    assert_eq!(requests, 1, "only the success counts");
    assert_eq!(spent, r.cost_nano, "only the success is charged");
    assert!(spent > 0);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM budget_holds").await, 0);
    let failed: i64 = db
        .scalar(
            "SELECT COALESCE(CAST(SUM(cost_nano) AS BIGINT), 0) FROM ledger WHERE status <> 'ok'",
        )
        .await;
    assert_eq!(failed, 0);
    assert_eq!(
        db.scalar(
            "SELECT COUNT(*) FROM ledger WHERE status = 'client_abort' AND http_status = 499"
        )
        .await,
        1
    );
}

async fn the_user_comes_from_the_header_the_body_or_the_key(db: &Db) {
    let rig = rig(
        db,
        Setup {
            require_user: true,
            keys: Some("team-a:sk-team-a-123"),
            ..Setup::default()
        },
    )
    .await;
    let auth = ("authorization", "Bearer sk-team-a-123");
    let mut body = chat("claude-sonnet-4-5", "Hi");
    body["user"] = json!("from-body");
    assert_eq!(
        call(&rig, &body, &[auth, ("x-user", "from-header")])
            .await
            .0,
        200
    );
    assert_eq!(call(&rig, &body, &[auth]).await.0, 200);
    assert_eq!(
        call(&rig, &chat("claude-sonnet-4-5", "Hi"), &[auth])
            .await
            .0,
        200
    );
    let rows = report(&rig, GroupBy::User).await;
    for user in ["from-header", "from-body", "team-a"] {
        assert_eq!(row(&rows, user).succeeded, 1, "{user}");
    }
    let by_key = rig.ledger.store().report(0, GroupBy::Key).await.unwrap();
    assert_eq!(row(&by_key, "team-a").requests, 3);
}

async fn a_priced_mapping_can_require_a_user(db: &Db) {
    let rig = rig(
        db,
        Setup {
            require_user: true,
            ..Setup::default()
        },
    )
    .await;
    let (status, _, text) = call(&rig, &chat("claude-sonnet-4-5", "Hi"), &[]).await;
    assert_eq!(status, 400, "{text}");
    let e: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(e["error"]["param"], "user");
    assert_eq!(e["error"]["type"], "invalid_request_error");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("x-user"),
        "{e}"
    );
    assert!(rig.fake.requests().is_empty(), "nothing was sent upstream");
    let (status, _, _) = call(&rig, &chat("claude-sonnet-4-5", "Hi"), &[("x-user", "ann")]).await;
    assert_eq!(status, 200);
}

async fn budgets_block_exactly_at_the_limit_across_replicas(db: &Db) {
    let budgets = "users:\n  \"*\": {requests_per_day: 5}\n  erin: {cost_per_day: 0.05}\n";
    let setup = || Setup {
        budgets: Some(budgets),
        ..Setup::default()
    };
    // Two replicas on one database.
    let a = rig(db, setup()).await;
    let b = rig_on(db, FakeUpstream::anthropic_with_key(KEY).await, setup()).await;
    let fire = |user: &'static str, model: &'static str, n: usize| {
        let (a, b) = (&a, &b);
        async move {
            let calls = (0..n).map(|i| async move {
                let mut body = chat(model, "Hi");
                body["user"] = json!(user);
                call(if i % 2 == 0 { a } else { b }, &body, &[]).await
            });
            futures_util::future::join_all(calls).await
        }
    };
    let (carol, erin) = tokio::join!(
        fire("carol", "claude-sonnet-4-5", 20),
        fire("erin", "claude-haiku-4-5", 12)
    );
    for (user, results, allowed) in [("carol", &carol, 5), ("erin", &erin, 5)] {
        let ok = results.iter().filter(|r| r.0 == 200).count();
        assert_eq!(
            ok,
            allowed,
            "{user}: {:?}",
            results.iter().map(|r| r.0).collect::<Vec<_>>()
        );
        for (status, headers, text) in results.iter().filter(|r| r.0 != 200) {
            assert_eq!(*status, 429, "{text}");
            let e: Value = serde_json::from_str(text).unwrap();
            assert_eq!(e["error"]["type"], "insufficient_quota");
            assert_eq!(e["error"]["code"], "insufficient_quota");
            assert_eq!(headers["x-should-retry"], "false");
            let reset: i64 = headers["x-rosetta-budget-reset"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(reset * 1000, day_period(T0).1);
            let message = e["error"]["message"].as_str().unwrap();
            assert!(message.contains(&format!("user \"{user}\"")), "{message}");
        }
    }
    let message = carol.iter().find(|r| r.0 == 429).unwrap().2.clone();
    assert!(message.contains("5 of its 5 requests per day"), "{message}");
    // Another user is not affected.
    let mut body = chat("claude-sonnet-4-5", "Hi");
    body["user"] = json!("dave");
    assert_eq!(call(&a, &body, &[]).await.0, 200);
    // Every refused call is recorded, not charged.
    report(&b, GroupBy::User).await;
    let rows = report(&a, GroupBy::User).await;
    assert_eq!(
        (row(&rows, "carol").succeeded, row(&rows, "carol").requests),
        (5, 20)
    );
    assert_eq!(row(&rows, "erin").cost_nano, 5 * NANO / 100);
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM ledger WHERE status = 'budget_exceeded'")
            .await,
        15 + 7
    );
}

async fn the_ledger_survives_a_store_outage(db: &Db) {
    let rig = rig(
        db,
        Setup {
            options: LedgerOptions {
                flush_interval: Duration::from_millis(20),
                write_timeout: Duration::from_millis(300),
                retry_initial: Duration::from_millis(50),
                retry_max: Duration::from_millis(200),
                ..LedgerOptions::default()
            },
            ..Setup::default()
        },
    )
    .await;
    let mut body = chat("claude-sonnet-4-5", "Hi");
    body["user"] = json!("olga");
    assert_eq!(call(&rig, &body, &[]).await.0, 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while rig.ledger.status().written < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the first record was never written"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The store stops taking writes: another connection holds the ledger table locked.
    let lock = Locker::lock(db).await;
    let health = |rig: &Rig| {
        let url = rig.proxy.url("/health");
        async move {
            let r = super::support::request("GET", &url, None).await;
            serde_json::from_str::<Value>(&r.text).unwrap()
        }
    };
    for _ in 0..20 {
        assert_eq!(
            call(&rig, &body, &[]).await.0,
            200,
            "requests keep being served"
        );
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let h = health(&rig).await;
        if h["ledger"]["state"] == "unavailable" {
            assert_eq!(h["status"], "degraded");
            assert!(h["ledger"]["pending"].as_u64().unwrap() >= 20, "{h}");
            assert!(h["ledger"]["last_error"].is_string(), "{h}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never unavailable: {h}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = rig.proxy.metrics();
    assert!(metrics.contains("rosetta_ledger_up 0"), "{metrics}");
    assert!(
        !metrics.contains("rosetta_ledger_write_errors_total 0"),
        "{metrics}"
    );
    lock.release().await;
    // Back: every record is written once.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while rig.ledger.status().pending > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            rig.ledger.status().state
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(health(&rig).await["ledger"]["state"], "ok");
    let rows = report(&rig, GroupBy::User).await;
    assert_eq!(row(&rows, "olga").succeeded, 21);
    assert_eq!(rig.ledger.status().dropped, 0);
}

/// Holds the ledger table locked from a connection of its own until released.
struct Locker {
    release: tokio::sync::oneshot::Sender<()>,
    done: tokio::task::JoinHandle<()>,
}

impl Locker {
    async fn lock(db: &Db) -> Locker {
        use sqlx::Connection;
        let mut conn = super::db::connect(&db.url).await;
        let (locked_tx, locked) = tokio::sync::oneshot::channel();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let postgres = db.is_postgres();
        let done = tokio::spawn(async move {
            let statements: &[&str] = if postgres {
                &["BEGIN", "LOCK TABLE ledger IN ACCESS EXCLUSIVE MODE"]
            } else {
                &["BEGIN EXCLUSIVE"]
            };
            for s in statements {
                sqlx::raw_sql(sqlx::AssertSqlSafe(*s))
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
            locked_tx.send(()).unwrap();
            let _ = released.await;
            sqlx::raw_sql("ROLLBACK").execute(&mut conn).await.unwrap();
            conn.close().await.ok();
        });
        locked.await.unwrap();
        Locker { release, done }
    }

    async fn release(self) {
        self.release.send(()).unwrap();
        self.done.await.unwrap();
    }
}

on_both!(
    priced_calls_are_recorded_and_charged,
    failures_and_aborts_are_recorded_but_never_charged,
    the_user_comes_from_the_header_the_body_or_the_key,
    a_priced_mapping_can_require_a_user,
    budgets_block_exactly_at_the_limit_across_replicas,
    the_ledger_survives_a_store_outage,
);

/// `rosetta serve` with its default kind of ledger (a SQLite file, created on start), the admin
/// API behind its own key, the queue written out on SIGTERM, then `rosetta usage` on the file.
#[tokio::test]
async fn serve_records_to_a_sqlite_file_reports_it_and_flushes_on_sigterm() {
    let fake = FakeUpstream::anthropic_with_key(KEY).await;
    let dir = temp_dir();
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/anthropic.yaml"),
        dir.join("anthropic.yaml"),
    )
    .unwrap();
    let ledger = dir.join("data").join("ledger.db");
    let ledger_url = format!("sqlite://{}", ledger.display());
    let base = fake.base_url();
    let mut served = super::support::Served::spawn(
        &dir,
        &[
            ("ANTHROPIC_BASE_URL", base.as_str()),
            ("ANTHROPIC_API_KEY", KEY),
            ("ROSETTA_LEDGER", ledger_url.as_str()),
            ("ROSETTA_ADMIN_KEYS", "ops:sk-admin-0123"),
        ],
        &["--user-header", "x-user"],
    );
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let send = |req: http::Request<Full<Bytes>>| {
        let client = client.clone();
        async move {
            let r = client.request(req).await.unwrap();
            let status = r.status().as_u16();
            let body = r.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    };
    let chat_req = || {
        http::Request::post(served.url("/anthropic/v1/chat/completions"))
            .header("x-user", "zoe")
            .body(Full::new(Bytes::from(
                chat("claude-sonnet-4-5", "Hello").to_string(),
            )))
            .unwrap()
    };
    assert_eq!(send(chat_req()).await.0, 200);
    let admin = |key: Option<&str>| {
        let mut r = http::Request::get(served.url("/admin/usage?since=2000-01-01&by=user"));
        if let Some(k) = key {
            r = r.header("authorization", format!("Bearer {k}"));
        }
        r.body(Full::new(Bytes::new())).unwrap()
    };
    assert_eq!(send(admin(None)).await.0, 401);
    // Wait until the first record is written, then read it through the admin API.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let report = loop {
        let (status, text) = send(admin(Some("sk-admin-0123"))).await;
        assert_eq!(status, 200, "{text}");
        let j: Value = serde_json::from_str(&text).unwrap();
        if j["data"].as_array().is_some_and(|d| !d.is_empty()) {
            break j;
        }
        assert!(std::time::Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(report["object"], "usage_report");
    assert_eq!(report["data"][0]["group"], "zoe");
    assert_eq!(report["data"][0]["succeeded"], 1);
    assert!(report["data"][0]["cost_nano"].as_i64().unwrap() > 0);
    // A second call, then SIGTERM at once: the record is still queued and must be written.
    assert_eq!(send(chat_req()).await.0, 200);
    served.signal("TERM");
    let (status, _) = served.wait_exit(Duration::from_secs(15));
    assert!(status.is_some_and(|s| s.success()), "{}", served.log());
    assert!(served.log().contains("ledger closed"), "{}", served.log());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rosetta"))
        .args([
            "usage",
            "--ledger",
            &ledger_url,
            "--since",
            "2000-01-01",
            "--by",
            "user",
            "--json",
        ])
        .env_remove("ROSETTA_LEDGER")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["data"][0]["group"], "zoe");
    assert_eq!(j["data"][0]["succeeded"], 2, "{j}");
    let table = std::process::Command::new(env!("CARGO_BIN_EXE_rosetta"))
        .args([
            "usage",
            "--ledger",
            &ledger_url,
            "--since",
            "2000-01-01",
            "--by",
            "model",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("claude-sonnet-4-5 ") && l.contains(" 2 ")),
        "{text}"
    );
}
