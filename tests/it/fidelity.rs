//! Nothing dropped silently: a request with every OpenAI chat parameter set, to every shipped
//! mapping, names in `x-rosetta-dropped` exactly what the mapping leaves out (the expected
//! lists are golden data: tests/fidelity/dropped.json); strictness refuses exactly those; the
//! capability matrix agrees with the server on every cell; and a mapping edited to read one
//! more field translates it, with no change to Rosetta.

use std::collections::BTreeMap;
use std::path::Path;

use rosetta::mapping::{Mapping, Op, load_dir};
use rosetta::translate::fidelity::features::{FEATURES, Feature};
use rosetta::translate::fidelity::matrix::{Cell, cell, request_of};
use serde_json::{Value, json};

use super::responses::{Up, every_mapping};
use super::support::{Proxy, Resp, request_with_headers, temp_dir};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The request with every chat parameter set, for `model`.
fn every_param(model: &str) -> Value {
    let text = std::fs::read_to_string(root().join("tests/fidelity/every-param.json")).unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["model"] = json!(model);
    v
}

/// The golden lists: mapping name -> what it leaves out of [`every_param`], in header order.
fn expected() -> BTreeMap<String, Vec<String>> {
    let text = std::fs::read_to_string(root().join("tests/fidelity/dropped.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn shipped() -> Vec<std::sync::Arc<Mapping>> {
    load_dir(&root().join("mappings"), &|_| None).unwrap()
}

async fn send(url: &str, body: &Value, strict: bool) -> Resp {
    // The version header the Messages API requires (the other routes ignore it).
    let headers: &[(&str, &str)] = if strict {
        &[
            ("x-rosetta-strict", "true"),
            ("anthropic-version", "2023-06-01"),
        ]
    } else {
        &[("anthropic-version", "2023-06-01")]
    };
    request_with_headers("POST", url, Some(body.to_string()), headers).await
}

fn header(r: &Resp) -> Vec<String> {
    r.headers
        .get("x-rosetta-dropped")
        .map(|v| v.to_str().unwrap().split(',').map(str::to_string).collect())
        .unwrap_or_default()
}

fn url(up: &Up, proxy: &Proxy, op: Op) -> String {
    let path = match op {
        Op::Chat => "chat/completions",
        Op::Responses => "responses",
        Op::Completions => "completions",
        Op::Embeddings => "embeddings",
        Op::Messages => "messages",
        Op::CountTokens => "messages/count_tokens",
        Op::Models => "models",
    };
    proxy.url(&format!("/{}/v1/{path}", up.name))
}

/// The part of [`every_param`] an entry names, alone on a minimal request.
fn only(every: &Value, entry: &str) -> Value {
    let mut r = json!({"model": every["model"], "messages": [{"role": "user", "content": "Hi"}]});
    if let Some(kind) = entry.strip_prefix("messages[].content[].") {
        let part = every["messages"][1]["content"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["type"] == kind)
            .unwrap()
            .clone();
        r["messages"] =
            json!([{"role": "user", "content": [{"type": "text", "text": "Hi"}, part]}]);
    } else if let Some(kind) = entry.strip_prefix("tools[].") {
        let tool = every["tools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == kind)
            .unwrap()
            .clone();
        r["tools"] = json!([tool]);
    } else {
        let field = entry.split('=').next().unwrap();
        r[field] = every[field].clone();
    }
    r
}

/// [`every_param`] without what the entries name.
fn without(every: &Value, entries: &[String]) -> Value {
    let mut r = every.clone();
    for entry in entries {
        if let Some(kind) = entry.strip_prefix("messages[].content[].") {
            let parts = r["messages"][1]["content"].as_array_mut().unwrap();
            parts.retain(|p| p["type"] != kind);
        } else if let Some(kind) = entry.strip_prefix("tools[].") {
            r["tools"]
                .as_array_mut()
                .unwrap()
                .retain(|t| t["type"] != kind);
        } else {
            let field = entry.split('=').next().unwrap();
            r.as_object_mut().unwrap().remove(field);
        }
    }
    r
}

#[tokio::test]
async fn every_parameter_to_every_mapping_names_exactly_what_it_leaves_out() {
    let (ups, proxy) = every_mapping().await;
    let names: Vec<&str> = ups.iter().map(|u| u.name).collect();
    let expected = expected();
    let golden: Vec<&str> = expected.keys().map(String::as_str).collect();
    let mut files: Vec<String> = shipped().iter().map(|m| m.name.clone()).collect();
    files.sort();
    if std::env::var_os("ROSETTA_BLESS").is_none() {
        assert_eq!(golden, files, "one golden list per shipped mapping");
    }
    // Every list is the server's: every shipped mapping is behind it.
    let mut served = names.clone();
    served.sort();
    assert_eq!(served, files, "every shipped mapping is served");
    // `ROSETTA_BLESS=1` writes what the server said as the new golden lists (review the diff).
    let bless = std::env::var_os("ROSETTA_BLESS").is_some();
    let mut seen = BTreeMap::new();
    for up in &ups {
        let r = send(&url(up, &proxy, Op::Chat), &every_param(up.model), false).await;
        assert_eq!(r.status, 200, "{}: {}", up.name, r.text);
        seen.insert(up.name.to_string(), header(&r));
        if bless {
            continue;
        }
        assert_eq!(header(&r), expected[up.name], "{}", up.name);
        // What is named is not sent: where the upstream body is OpenAI's own shape (the rest
        // of the request goes as it is), no dropped top-level field reaches it.
        if up.name == "openai-compatible" {
            let sent = up.last_sent();
            assert!(!expected[up.name].is_empty());
            for entry in &expected[up.name] {
                assert!(
                    sent.get(entry.as_str()).is_none(),
                    "{}: {entry} sent",
                    up.name
                );
                assert!(every_param(up.model).get(entry.as_str()).is_some());
            }
            assert_eq!(sent["seed"], 7, "what is not named is sent");
        }
    }
    if bless {
        let text = serde_json::to_string_pretty(&seen).unwrap() + "\n";
        std::fs::write(root().join("tests/fidelity/dropped.json"), text).unwrap();
        return;
    }
    let metrics = proxy.metrics();
    assert!(
        metrics.contains(r#"rosetta_dropped_params_total{mapping="tgi",param="logit_bias"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"rosetta_dropped_params_total{mapping="anthropic",param="messages[].content[].input_audio"} 1"#
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn strictness_refuses_exactly_what_would_be_left_out() {
    let (ups, proxy) = every_mapping().await;
    let expected = expected();
    for up in &ups {
        let every = every_param(up.model);
        let lost = &expected[up.name];
        let chat = url(up, &proxy, Op::Chat);
        let before = up.fake.requests().len();
        let r = send(&chat, &every, true).await;
        if lost.is_empty() {
            assert_eq!(r.status, 200, "{}: {}", up.name, r.text);
            continue;
        }
        assert_eq!(r.status, 400, "{}: {}", up.name, r.text);
        let e = r.openai_error();
        assert_eq!(e["code"], "unsupported_parameter", "{}: {e}", up.name);
        assert_eq!(e["param"], lost[0].as_str(), "{}: {e}", up.name);
        assert_eq!(
            up.fake.requests().len(),
            before,
            "{}: refused before the upstream",
            up.name
        );
        // Each entry alone is refused, naming it...
        for entry in lost {
            let r = send(&chat, &only(&every, entry), true).await;
            assert_eq!(r.status, 400, "{}: {entry}: {}", up.name, r.text);
            assert_eq!(r.openai_error()["param"], entry.as_str(), "{}", up.name);
        }
        // ...and everything else goes through.
        let r = send(&chat, &without(&every, lost), true).await;
        assert_eq!(r.status, 200, "{}: {}", up.name, r.text);
        assert!(header(&r).is_empty(), "{}", up.name);
    }
}

#[tokio::test]
async fn the_matrix_agrees_with_the_server_on_every_cell() {
    let (ups, proxy) = every_mapping().await;
    let mappings = shipped();
    for up in &ups {
        let m = mappings.iter().find(|m| m.name == up.name).unwrap();
        for f in FEATURES {
            let c = cell(m, f);
            if c == Cell::NoRoute {
                continue;
            }
            let mut body = request_of(f);
            body["model"] = json!(up.model);
            let at = format!("{} / {}", up.name, f.name);
            let strict = send(&url(up, &proxy, f.op), &body, true).await;
            let error: Value = serde_json::from_str(&strict.text).unwrap_or_default();
            // OpenAI's shape names the code and the param; the Messages API's has neither: its
            // refusal is an invalid_request_error whose message lists what would be left out.
            // `first`: the entry the refusal must name first (`None`: any).
            let refused = |first: Option<&str>| match f.op {
                Op::Messages => {
                    error["error"]["type"] == "invalid_request_error"
                        && error["error"]["message"].as_str().is_some_and(|m| {
                            m.contains("cannot take") && first.is_none_or(|n| m.contains(n))
                        })
                }
                _ => {
                    error["error"]["code"] == "unsupported_parameter"
                        && first.is_none_or(|n| error["error"]["param"] == n)
                }
            };
            match &c {
                Cell::Translated => {
                    assert!(!refused(None), "{at}: {}", strict.text);
                    if strict.status == 200 {
                        assert!(header(&strict).is_empty(), "{at}");
                    }
                }
                Cell::Dropped(names) => {
                    assert_eq!(strict.status, 400, "{at}: {}", strict.text);
                    assert!(refused(Some(&names[0])), "{at}: {}", strict.text);
                    let lenient = send(&url(up, &proxy, f.op), &body, false).await;
                    if lenient.status == 200 {
                        assert_eq!(&header(&lenient), names, "{at}");
                    }
                }
                Cell::Refused(_) => assert_eq!(strict.status, 400, "{at}: {}", strict.text),
                Cell::NoRoute => unreachable!(),
            }
        }
    }
}

#[test]
fn a_mapping_that_reads_one_more_field_translates_it() {
    let dir = temp_dir();
    for entry in std::fs::read_dir(root().join("mappings")).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
    }
    let tgi = |dir: &Path| -> std::sync::Arc<Mapping> {
        load_dir(dir, &|_| None)
            .unwrap()
            .into_iter()
            .find(|m| m.name == "tgi")
            .unwrap()
    };
    let feature = Feature {
        name: "top_logprobs",
        op: Op::Chat,
        request: r#"{"top_logprobs":2}"#,
    };
    let before = tgi(&dir);
    assert_eq!(
        cell(&before, &feature),
        Cell::Dropped(vec!["top_logprobs".into()])
    );
    let every = every_param("tgi");
    let report = |m: &Mapping| -> Vec<String> {
        rosetta::translate::fidelity::matrix::report(m, Op::Chat, &every)
            .unwrap()
            .names()
            .map(str::to_string)
            .collect()
    };
    assert!(report(&before).contains(&"top_logprobs".to_string()));
    // TGI's native API takes top_n_tokens: one more line in the mapping.
    let file = dir.join("tgi.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let line = "    frequency_penalty: $.frequency_penalty\n";
    assert!(text.contains(line));
    let edited = text.replace(line, &format!("{line}    top_n_tokens: $.top_logprobs\n"));
    std::fs::write(&file, edited).unwrap();
    let after = tgi(&dir);
    assert_eq!(cell(&after, &feature), Cell::Translated);
    let (a, b) = (report(&before), report(&after));
    let gone: Vec<&String> = a.iter().filter(|e| !b.contains(e)).collect();
    assert_eq!(gone, ["top_logprobs"], "only that field moved");
    assert_eq!(b.len(), a.len() - 1);
    std::fs::remove_dir_all(&dir).unwrap();
}
