//! The fake TGI's `/generate_stream` SSE (wire-formats.md 6.4), finish reasons and fault triggers.

mod common;

use std::time::Duration;

use common::Exchange;
use rosetta_testkit::FakeUpstream;
use serde_json::{Value, json};

use common::tgi::*;

#[tokio::test]
async fn stream_is_one_event_per_token_ending_with_a_special_token() {
    let fake = FakeUpstream::tgi().await;
    let body = request(&chatml("tell me about rust"), json!({"details": true}));
    let r = post(&fake, "/generate_stream", &body).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    assert_eq!(r.header("x-accel-buffering"), Some("no"));
    assert!(!r.text().contains("[DONE]"));
    let evs = events(&r);
    assert_eq!(evs.len(), 8);
    let (last, tokens) = evs.split_last().unwrap();
    for (i, e) in evs.iter().enumerate() {
        assert_eq!(e["index"], i + 1);
        let t = &e["token"];
        assert!(
            t["id"].is_u64()
                && t["text"].is_string()
                && t["logprob"].is_f64()
                && t["special"].is_boolean()
        );
    }
    for e in tokens {
        assert_eq!(
            (e["generated_text"].clone(), e["details"].clone()),
            (Value::Null, Value::Null)
        );
        assert_eq!(e["token"]["special"], false);
    }
    assert_eq!(
        last["token"],
        json!({"id": 151645, "text": "<|im_end|>", "logprob": -0.0012, "special": true})
    );
    let text: String = tokens
        .iter()
        .map(|e| e["token"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Hello! You said: tell me about rust");
    assert_eq!(
        last["generated_text"],
        text.as_str(),
        "special tokens are not content"
    );
    assert_eq!(
        last["details"],
        json!({"finish_reason": "eos_token", "generated_tokens": 8, "seed": null, "input_length": 14})
    );
    assert!(r.spread() > Duration::from_millis(80));

    let no_details = events(
        &post(
            &fake,
            "/generate_stream",
            &request("plain prompt", json!({})),
        )
        .await,
    );
    let last = no_details.last().unwrap();
    assert_eq!(last["details"], Value::Null);
    assert_eq!(last["token"]["text"], "</s>");
    assert_eq!(last["generated_text"], "Hello! You said: plain prompt");
}

#[tokio::test]
async fn finish_reasons() {
    let fake = FakeUpstream::tgi().await;
    let details = |r: &Exchange| r.json()["details"].clone();
    let d = details(
        &post(
            &fake,
            "/generate",
            &request(&llama("MAX TOKENS"), json!({"details": true})),
        )
        .await,
    );
    assert_eq!(d["finish_reason"], "length");
    assert!(
        d["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["special"] == false)
    );
    let stop = request(
        &llama("STOPSEQ"),
        json!({"details": true, "stop": ["###", "END"]}),
    );
    let v = post(&fake, "/generate", &stop).await.json();
    assert_eq!(v["details"]["finish_reason"], "stop_sequence");
    // The stop text is generated over several tokens (two characters each), as a tokenizer
    // cuts it.
    let tokens = v["details"]["tokens"].as_array().unwrap();
    let texts: Vec<&str> = tokens.iter().map(|t| t["text"].as_str().unwrap()).collect();
    assert_eq!(texts[texts.len() - 2..], ["##", "#"]);
    assert_eq!(
        v["generated_text"], "Hello! You said: STOPSEQ###",
        "TGI keeps the stop sequence"
    );
    let short = request(
        &llama("one two three four"),
        json!({"details": true, "max_new_tokens": 3}),
    );
    let v = post(&fake, "/generate", &short).await.json();
    assert_eq!(
        (
            v["generated_text"].clone(),
            v["details"]["finish_reason"].clone()
        ),
        (json!("Hello! You said:"), json!("length"))
    );
    assert_eq!(v["details"]["generated_tokens"], 3);
    let evs = events(&post(&fake, "/generate_stream", &short).await);
    assert_eq!(evs.len(), 3);
    assert_eq!(evs[2]["details"]["finish_reason"], "length");
}

#[tokio::test]
async fn faults() {
    let fake = FakeUpstream::tgi().await;
    let ask = |text: &str| request(&llama(text), json!({"details": true}));
    for (trigger, status, kind) in [
        ("FAIL 422", 422, "validation"),
        ("FAIL 424", 424, "generation"),
        ("FAIL 429", 429, "overloaded"),
        ("FAIL 500", 500, "incomplete_generation"),
    ] {
        let r = post(&fake, "/generate", &ask(trigger)).await;
        assert_eq!(
            (r.status, r.json()["error_type"].clone()),
            (status, json!(kind)),
            "{trigger}"
        );
        let s = post(&fake, "/generate_stream", &ask(trigger)).await;
        assert_eq!(s.status, 200);
        assert_eq!(events(&s)[0]["error_type"], kind, "{trigger} in a stream");
    }
    assert_eq!(
        post(&fake, "/generate", &ask("FAIL 429")).await.json()["error"],
        "Model is overloaded"
    );
    let r = post(&fake, "/generate_stream", &ask("MIDSTREAM ERROR now")).await;
    let evs = events(&r);
    assert_eq!(evs.len(), 3);
    assert!(evs[1]["token"].is_object());
    assert_eq!(evs[2]["error_type"], "generation");
    assert!(
        evs[2]["error"]
            .as_str()
            .unwrap()
            .starts_with("Request failed during generation: ")
    );
    let reset = post(&fake, "/generate_stream", &ask("RESET now")).await;
    assert!(reset.error.is_some());
    assert_eq!(events(&reset).len(), 2);
    let garbage = post(&fake, "/generate_stream", &ask("STREAM GARBAGE")).await;
    assert!(garbage.text().contains("\n\ndata:{not json\n\n"));
    assert_eq!(
        post(&fake, "/generate", &ask("GARBAGE")).await.text(),
        "this is not json{"
    );
    assert_eq!(
        post(&fake, "/generate_stream", &ask("GARBAGE"))
            .await
            .text(),
        "data:this is not json{\n\n"
    );
    let slow = post(&fake, "/generate_stream", &ask("SLOW")).await;
    assert!(slow.spread() > Duration::from_millis(900));
    let hang = tokio::time::timeout(
        Duration::from_millis(300),
        post(&fake, "/generate", &ask("HANG")),
    )
    .await;
    assert!(hang.is_err());
}
