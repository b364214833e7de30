//! Stored responses (`store`), `previous_response_id`, retrieval and deletion, who may see a
//! stored response, and what is left out of a call (`x-rosetta-dropped`). The stores run on
//! SQLite and PostgreSQL (`on_both!`).

use std::sync::Arc;
use std::time::Duration;

use rosetta::ledger::Store;
use rosetta::ledger::tab::Accounting;
use rosetta::ledger::writer::{Ledger, LedgerOptions};
use rosetta::ops::clock::Clock;
use rosetta::serving::auth::Auth;
use rosetta_testkit::FakeUpstream;
use serde_json::{Value, json};

use super::db::{Db, T0, on_both};

on_both!(
    stored_response_is_retrieved_listed_and_deleted,
    previous_response_id_rebuilds_the_conversation,
    unknown_or_unstored_previous_response_is_a_400,
    a_stored_response_is_visible_only_to_its_key,
    two_instances_on_one_store_share_conversations,
    responses_calls_are_recorded_in_the_ledger_like_chat_calls,
    a_chained_tool_loop_sends_the_stored_thinking_signature_back,
);
use super::responses::output_text;
use super::responses_support::events;
use super::support::{Proxy, Resp, request, stream};

const KEY: &str = "sk-ant-test-0123456789";

struct Rig {
    fake: FakeUpstream,
    proxy: Proxy,
}

/// Rosetta on the shipped Anthropic mapping with a ledger on `db` (or none), and inbound
/// keys `keys` when given.
async fn rig(db: Option<&Db>, keys: Option<&str>) -> Rig {
    let fake = FakeUpstream::anthropic_with_key(KEY).await;
    rig_with(fake, db, keys).await
}

async fn rig_with(fake: FakeUpstream, db: Option<&Db>, keys: Option<&str>) -> Rig {
    let env = [
        ("ANTHROPIC_BASE_URL", fake.base_url()),
        ("ANTHROPIC_API_KEY", KEY.to_string()),
    ];
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
    let store: Option<Arc<dyn Store>> =
        db.map(|d| Arc::new(d.store_at(Clock::running_from(T0))) as _);
    let keys = keys.map(String::from);
    let proxy = Proxy::start_with(&dir, &env, move |state| {
        let ledger = store.map(|s| {
            let options = LedgerOptions {
                flush_interval: Duration::from_millis(20),
                clock: Clock::running_from(T0),
                ..LedgerOptions::default()
            };
            Ledger::start(s, options, state.metrics.clone())
        });
        let mut state = state.with_accounting(Accounting {
            ledger,
            responses_ttl: Duration::from_secs(30 * 86_400),
            ..Accounting::default()
        });
        if let Some(k) = keys {
            state = state.with_auth(Auth::load(Some(&k), None).unwrap());
        }
        state
    })
    .await;
    Rig { fake, proxy }
}

impl Rig {
    fn url(&self, rest: &str) -> String {
        self.proxy.url(&format!("/anthropic/v1/responses{rest}"))
    }
    async fn create(&self, body: Value, key: Option<&str>) -> Resp {
        send(&self.url(""), "POST", Some(body), key).await
    }
}

async fn send(url: &str, method: &str, body: Option<Value>, key: Option<&str>) -> Resp {
    match key {
        None => request(method, url, body.map(|b| b.to_string())).await,
        Some(k) => {
            super::support::request_with_headers(
                method,
                url,
                body.map(|b| b.to_string()),
                &[("authorization", &format!("Bearer {k}"))],
            )
            .await
        }
    }
}

fn ask(text: &str) -> Value {
    json!({"model": "claude-sonnet-4-5", "input": text})
}

async fn stored_response_is_retrieved_listed_and_deleted(db: &Db) {
    let rig = rig(Some(db), None).await;
    let body = json!({"model": "claude-sonnet-4-5", "input": [
        {"role": "user", "content": "First"},
        {"role": "user", "content": [{"type": "input_text", "text": "Second"}]}]});
    let r = rig.create(body, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let created = r.json();
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["store"], true);
    // Both the named and the unified surface find it.
    for url in [
        rig.url(&format!("/{id}")),
        rig.proxy.url(&format!("/v1/responses/{id}")),
    ] {
        let got = request("GET", &url, None).await;
        assert_eq!(got.status, 200, "{}", got.text);
        assert_eq!(got.json(), created);
    }
    // A stream's events are not kept: a replay is refused clearly, not answered as JSON.
    let replay = request("GET", &rig.url(&format!("/{id}?stream=true")), None).await;
    assert_eq!(replay.status, 400, "{}", replay.text);
    assert_eq!(replay.openai_error()["param"], "stream");
    let items = request("GET", &rig.url(&format!("/{id}/input_items")), None).await;
    assert_eq!(items.status, 200, "{}", items.text);
    let items = items.json();
    assert_eq!(items["object"], "list");
    let data = items["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    // Newest first by default.
    assert_eq!(data[0]["content"][0]["text"], "Second");
    assert_eq!(items["first_id"], data[0]["id"]);
    assert_eq!(items["has_more"], false);
    let asc = request(
        "GET",
        &rig.url(&format!("/{id}/input_items?order=asc&limit=1")),
        None,
    )
    .await
    .json();
    assert_eq!(asc["data"][0]["content"][0]["text"], "First");
    assert_eq!(asc["has_more"], true);
    let del = request("DELETE", &rig.url(&format!("/{id}")), None).await;
    assert_eq!(del.status, 200, "{}", del.text);
    assert_eq!(
        del.json(),
        json!({"id": id, "object": "response.deleted", "deleted": true})
    );
    let gone = request("GET", &rig.url(&format!("/{id}")), None).await;
    assert_eq!(gone.status, 404, "{}", gone.text);
    assert_eq!(gone.openai_error()["type"], "invalid_request_error");
    let again = request("DELETE", &rig.url(&format!("/{id}")), None).await;
    assert_eq!(again.status, 404);
}

async fn previous_response_id_rebuilds_the_conversation(db: &Db) {
    let rig = rig(Some(db), None).await;
    let mut first = ask("My name is Ada");
    first["instructions"] = json!("Be brief.");
    let a = rig.create(first, None).await.json();
    let answer = output_text(&a);
    let mut next = ask("What is my name?");
    next["previous_response_id"] = a["id"].clone();
    let b = rig.create(next, None).await;
    assert_eq!(b.status, 200, "{}", b.text);
    assert_eq!(b.json()["previous_response_id"], a["id"]);
    let sent = &rig.fake.requests()[1].body;
    assert!(
        sent.get("system").is_none(),
        "instructions are not inherited: {sent}"
    );
    let texts: Vec<(String, String)> = sent["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let c = &m["content"];
            let t = c.as_str().map(String::from).unwrap_or_else(|| {
                c.as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|p| p["text"].as_str())
                    .collect()
            });
            (m["role"].as_str().unwrap().to_string(), t)
        })
        .collect();
    assert_eq!(
        texts,
        vec![
            ("user".into(), "My name is Ada".into()),
            ("assistant".into(), answer),
            ("user".into(), "What is my name?".into()),
        ]
    );
    // Chaining a stream works too, and the streamed response is stored before it ends.
    let mut third = ask("And again?");
    third["previous_response_id"] = b.json()["id"].clone();
    third["stream"] = json!(true);
    let ev = events(&stream(&rig.url(""), &third).await);
    ev.assert_valid();
    let fin = ev.terminal()["response"].clone();
    let id = fin["id"].as_str().unwrap();
    let got = request("GET", &rig.url(&format!("/{id}")), None).await;
    assert_eq!(
        got.status, 200,
        "stored before the stream's end: {}",
        got.text
    );
    assert_eq!(got.json(), fin);
    assert_eq!(
        rig.fake.requests()[2].body["messages"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
}

async fn unknown_or_unstored_previous_response_is_a_400(db: &Db) {
    let rig = rig(Some(db), None).await;
    let mut next = ask("Hi");
    next["previous_response_id"] = json!("resp_doesnotexist");
    let r = rig.create(next, None).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let e = r.openai_error();
    assert_eq!(e["code"], "previous_response_not_found");
    assert_eq!(e["param"], "previous_response_id");
    let mut unstored = ask("Hi");
    unstored["store"] = json!(false);
    let a = rig.create(unstored, None).await.json();
    assert_eq!(a["store"], false);
    let got = request(
        "GET",
        &rig.url(&format!("/{}", a["id"].as_str().unwrap())),
        None,
    )
    .await;
    assert_eq!(got.status, 404);
    let mut next = ask("Hi");
    next["previous_response_id"] = a["id"].clone();
    assert_eq!(rig.create(next, None).await.status, 400);
    assert_eq!(rig.fake.requests().len(), 1, "refused before the upstream");
}

async fn a_stored_response_is_visible_only_to_its_key(db: &Db) {
    let rig = rig(
        Some(db),
        Some("alice:sk-alice-0123456789,bob:sk-bob-0123456789"),
    )
    .await;
    let a = rig
        .create(ask("Secret plan"), Some("sk-alice-0123456789"))
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let id = a.json()["id"].as_str().unwrap().to_string();
    let url = rig.url(&format!("/{id}"));
    assert_eq!(
        send(&url, "GET", None, Some("sk-alice-0123456789"))
            .await
            .status,
        200
    );
    assert_eq!(
        send(&url, "GET", None, Some("sk-bob-0123456789"))
            .await
            .status,
        404
    );
    assert_eq!(
        send(&url, "DELETE", None, Some("sk-bob-0123456789"))
            .await
            .status,
        404
    );
    let items = format!("{url}/input_items");
    assert_eq!(
        send(&items, "GET", None, Some("sk-bob-0123456789"))
            .await
            .status,
        404
    );
    let mut next = ask("Go on");
    next["previous_response_id"] = json!(id);
    let r = rig.create(next, Some("sk-bob-0123456789")).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(
        send(&url, "GET", None, Some("sk-alice-0123456789"))
            .await
            .status,
        200
    );
}

async fn two_instances_on_one_store_share_conversations(db: &Db) {
    let one = rig(Some(db), None).await;
    let two = rig_with(FakeUpstream::anthropic_with_key(KEY).await, Some(db), None).await;
    let a = one.create(ask("My name is Ada"), None).await.json();
    let mut next = ask("What is my name?");
    next["previous_response_id"] = a["id"].clone();
    let b = two.create(next, None).await;
    assert_eq!(b.status, 200, "{}", b.text);
    let sent = &two.fake.requests()[0].body["messages"];
    assert_eq!(sent.as_array().unwrap().len(), 3, "{sent}");
    let got = request(
        "GET",
        &two.url(&format!("/{}", a["id"].as_str().unwrap())),
        None,
    )
    .await;
    assert_eq!(got.json(), a);
}

#[tokio::test]
async fn without_a_ledger_plain_calls_work_and_chaining_is_a_clear_400() {
    let rig = rig(None, None).await;
    let a = rig.create(ask("Hi"), None).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let mut next = ask("Again");
    next["previous_response_id"] = a.json()["id"].clone();
    let r = rig.create(next, None).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(
        r.openai_error()["message"]
            .as_str()
            .unwrap()
            .contains("ledger"),
        "{}",
        r.text
    );
    let got = request(
        "GET",
        &rig.url(&format!("/{}", a.json()["id"].as_str().unwrap())),
        None,
    )
    .await;
    assert_eq!(got.status, 404);
}

/// Codex CLI's default tools: a function with no parameters, `web_search` and a `namespace`.
fn codex_tools() -> Value {
    json!([
        {"type": "function", "name": "list_files", "description": "List files",
            "parameters": {"type": "object", "properties": {}}, "strict": false},
        {"type": "web_search"},
        {"type": "namespace", "name": "mcp", "tools": []}
    ])
}

#[tokio::test]
async fn tools_the_upstream_cannot_take_are_named_in_a_header_or_refused_when_strict() {
    let rig = rig(None, None).await;
    let mut body = ask("List the files");
    body["tools"] = codex_tools();
    body["tools"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "file_search", "vector_store_ids": ["vs_1"]}));
    let r = rig.create(body.clone(), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let dropped = r.headers["x-rosetta-dropped"].to_str().unwrap().to_string();
    assert!(dropped.contains("namespace"), "{dropped}");
    assert!(dropped.contains("file_search"), "{dropped}");
    let sent = &rig.fake.requests()[0].body;
    let names: Vec<&str> = sent["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"list_files"), "{sent}");
    let strict = super::support::request_with_headers(
        "POST",
        &rig.url(""),
        Some(body.to_string()),
        &[("x-rosetta-strict", "true")],
    )
    .await;
    assert_eq!(strict.status, 400, "{}", strict.text);
    let e = strict.openai_error();
    assert!(e["message"].as_str().unwrap().contains("namespace"), "{e}");
    assert_eq!(rig.fake.requests().len(), 1, "refused before the upstream");
}

#[tokio::test]
async fn codex_default_tools_work_on_every_mapping_with_tools() {
    let (ups, proxy) = super::responses::every_mapping().await;
    for up in ups.iter().filter(|u| u.tools) {
        let body = json!({"model": up.model, "input": "List the files", "tools": codex_tools(),
            "tool_choice": "auto", "parallel_tool_calls": false, "stream": true, "store": false,
            "include": ["reasoning.encrypted_content"], "prompt_cache_key": "k1",
            "reasoning": {"effort": "medium", "summary": "auto"}});
        let ev = events(&stream(&up.responses(&proxy), &body).await);
        ev.assert_valid();
        let fin = &ev.terminal()["response"];
        assert_eq!(fin["status"], "completed", "{}: {fin}", up.name);
        let call = fin["output"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["type"] == "function_call")
            .unwrap_or_else(|| panic!("{}: no call: {fin}", up.name));
        assert_eq!(call["name"], "list_files", "{}", up.name);
    }
}

/// A Responses call is a ledger record like a chat call: its user (`safety_identifier` when
/// there is no `user`), its tokens, its cost; a stream too.
async fn responses_calls_are_recorded_in_the_ledger_like_chat_calls(db: &Db) {
    let rig = rig(Some(db), None).await;
    let mut body = ask("Hi there");
    body["safety_identifier"] = json!("user-42");
    let whole = rig.create(body.clone(), None).await;
    assert_eq!(whole.status, 200, "{}", whole.text);
    body["stream"] = json!(true);
    let ev = events(&stream(&rig.url(""), &body).await);
    ev.assert_valid();
    let usage = &whole.json()["usage"];
    let ledger = rig.proxy.state.accounting.ledger.as_ref().unwrap();
    let closed = ledger.close(Duration::from_secs(10)).await;
    assert_eq!(closed.left, 0, "{closed:?}");
    let rows = ledger
        .store()
        .report(0, rosetta::ledger::GroupBy::User)
        .await
        .unwrap();
    let row = rows
        .iter()
        .find(|r| r.group.as_deref() == Some("user-42"))
        .unwrap_or_else(|| panic!("no row for user-42: {rows:#?}"));
    assert_eq!((row.requests, row.succeeded), (2, 2), "{row:?}");
    assert_eq!(
        row.prompt_tokens,
        2 * usage["input_tokens"].as_i64().unwrap(),
        "{row:?}"
    );
    assert_eq!(
        row.completion_tokens,
        2 * usage["output_tokens"].as_i64().unwrap(),
        "{row:?}"
    );
    assert!(
        row.cost_nano > 0,
        "the shipped anthropic pricing charges it: {row:?}"
    );
}

/// A tool loop chained with previous_response_id: the stored reasoning item keeps the
/// thinking block's signature, so the next call, streamed or not, reaches Anthropic with
/// thinking on and the signed thinking block first in the turn that called the tool.
async fn a_chained_tool_loop_sends_the_stored_thinking_signature_back(db: &Db) {
    let rig = rig(Some(db), None).await;
    let tool = json!({"type": "function", "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}});
    for streamed in [false, true] {
        let first = json!({"model": "claude-sonnet-4-5", "input": "THINK: weather in Paris?",
            "tools": [tool], "reasoning": {"effort": "high"}, "stream": streamed});
        let a = if streamed {
            let ev = events(&stream(&rig.url(""), &first).await);
            ev.assert_valid();
            ev.terminal()["response"].clone()
        } else {
            let r = rig.create(first, None).await;
            assert_eq!(r.status, 200, "{}", r.text);
            r.json()
        };
        let reasoning = a["output"][0].clone();
        assert_eq!(reasoning["type"], "reasoning", "{a}");
        assert!(reasoning["encrypted_content"].is_string(), "{a}");
        let call = a["output"][2].clone();
        assert_eq!(call["type"], "function_call", "{a}");
        let next = json!({"model": "claude-sonnet-4-5", "previous_response_id": a["id"],
            "tools": [tool], "reasoning": {"effort": "high"},
            "input": [{"type": "function_call_output", "call_id": call["call_id"],
                       "output": "18"}]});
        let b = rig.create(next, None).await;
        assert_eq!(b.status, 200, "{}", b.text);
        assert_eq!(output_text(&b.json()), "Tool said: 18");
        let sent = rig.fake.requests().last().unwrap().body.clone();
        assert_eq!(sent["thinking"]["type"], "enabled", "{sent}");
        assert_eq!(
            sent["messages"][1]["content"][0],
            json!({"type": "thinking", "thinking": reasoning["content"][0]["text"],
                   "signature": reasoning["encrypted_content"]}),
            "{sent}"
        );
    }
}
