//! The fake TGI native API follows wire-formats.md section 6.

mod common;

use common::{get, send};
use rosetta_testkit::FakeUpstream;
use serde_json::{Value, json};

use common::tgi::*;

#[tokio::test]
async fn generate_with_details() {
    let fake = FakeUpstream::tgi().await;
    let body = request(
        &llama("What is Deep Learning?"),
        json!({"max_new_tokens": 64, "details": true}),
    );
    let r = post(&fake, "/generate", &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(
        v["generated_text"],
        "Hello! You said: What is Deep Learning?"
    );
    let d = &v["details"];
    assert_eq!(d["finish_reason"], "eos_token");
    assert_eq!(d["prefill"], json!([]));
    assert_eq!(d["seed"], Value::Null, "no sampling, no seed");
    let tokens = d["tokens"].as_array().unwrap();
    assert_eq!(d["generated_tokens"], tokens.len());
    assert_eq!(tokens.len(), 8, "7 words + end token");
    let last = tokens.last().unwrap();
    assert_eq!(
        (
            last["text"].clone(),
            last["special"].clone(),
            last["id"].clone()
        ),
        (json!("<|eot_id|>"), json!(true), json!(128009))
    );
    for t in &tokens[..7] {
        assert_eq!(t["special"], false);
        assert!(t["id"].is_u64() && t["logprob"].as_f64().unwrap() < 0.0);
    }
    let text: String = tokens[..7]
        .iter()
        .map(|t| t["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, v["generated_text"].as_str().unwrap());
    assert_eq!(r.header("x-generated-tokens"), Some("8"));
    let prompt_tokens: u64 = r.header("x-prompt-tokens").unwrap().parse().unwrap();
    assert_eq!(prompt_tokens, 18, "9 template markers + 9 words");
    for h in [
        "x-compute-type",
        "x-compute-time",
        "x-total-time",
        "x-inference-time",
        "x-queue-time",
    ] {
        assert!(r.header(h).is_some(), "{h}");
    }

    let plain = post(&fake, "/generate", &request(&llama("hi"), json!({})))
        .await
        .json();
    assert_eq!(
        plain,
        json!({"generated_text": "Hello! You said: hi"}),
        "details default to false"
    );
    let seeded = request(
        &chatml("hi"),
        json!({"details": true, "do_sample": true, "seed": 42, "decoder_input_details": true}),
    );
    let d = post(&fake, "/generate", &seeded).await.json()["details"].clone();
    assert_eq!(d["seed"], 42);
    assert_eq!(d["prefill"][0]["logprob"], Value::Null);
    assert!(d["prefill"].as_array().unwrap().len() > 1);
    let sampled = post(
        &fake,
        "/generate",
        &request("hi", json!({"details": true, "temperature": 0.7})),
    )
    .await
    .json();
    assert!(sampled["details"]["seed"].is_u64());
    assert_eq!(fake.requests()[0].body, body);
}

#[tokio::test]
async fn validation() {
    let fake = FakeUpstream::tgi().await;
    let p = |params: Value| request(&llama("x"), params);
    let cases = [
        (
            p(json!({"temperature": 0})),
            "Input validation error: `temperature` must be strictly positive",
        ),
        (
            p(json!({"max_new_tokens": 0})),
            "Input validation error: `max_new_tokens` must be strictly positive",
        ),
        (
            p(json!({"max_new_tokens": 5000})),
            "`inputs` tokens + `max_new_tokens` must be <= 4096. Given: 15 `inputs` tokens and 5000 `max_new_tokens`",
        ),
        (
            p(json!({"stop": ["a", "b", "c", "d", "e"]})),
            "`stop` supports up to 4 stop sequences. Given: 5",
        ),
        (p(json!({"top_p": 1.0})), "`top_p` must be > 0.0 and < 1.0"),
        (
            p(json!({"best_of": 2})),
            "you must use sampling when `best_of` is > 1",
        ),
        (
            p(json!({"best_of": 3, "do_sample": true})),
            "`best_of` must be > 0 and <= 2. Given: 3",
        ),
        (
            p(json!({"repetition_penalty": -1.0})),
            "`repetition_penalty` must be strictly positive",
        ),
        (
            p(json!({"grammar": {"type": "json", "value": {"type": "object"}}})),
            "Grammar must have a 'properties' field",
        ),
        (request("", json!({})), "`inputs` cannot be empty"),
    ];
    for (body, message) in cases {
        let r = post(&fake, "/generate", &body).await;
        assert_eq!(r.status, 422, "{body}: {}", r.text());
        let v = r.json();
        assert_eq!(v["error_type"], "validation");
        assert!(
            v["error"].as_str().unwrap().contains(message),
            "{body}\n got {v}"
        );
        assert_eq!(v.as_object().unwrap().len(), 2);
    }
    let serde_cases = [
        (
            p(json!({"stop": "END"})),
            "parameters.stop: invalid type: string \"END\", expected a sequence",
        ),
        (
            p(json!({"max_tokens": 10})),
            "parameters: unknown field `max_tokens`, expected one of `best_of`",
        ),
        (
            p(json!({"max_new_tokens": "10"})),
            "parameters.max_new_tokens: invalid type: string \"10\", expected u32",
        ),
        (
            p(json!({"details": null})),
            "parameters.details: invalid type: null, expected a boolean",
        ),
        (json!({"parameters": {}}), "missing field `inputs`"),
    ];
    for (body, message) in serde_cases {
        let r = post(&fake, "/generate", &body).await;
        assert_eq!(r.status, 422, "{body}");
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
        let expected =
            format!("Failed to deserialize the JSON body into the target type: {message}");
        assert!(r.text().starts_with(&expected), "{body}\n got {}", r.text());
    }
    let r = send(fake.addr(), "POST", "/generate", JSON, "{oops").await;
    assert_eq!(r.status, 400);
    assert!(
        r.text()
            .starts_with("Failed to parse the request body as JSON: ")
    );
    let r = send(
        fake.addr(),
        "POST",
        "/generate",
        &[],
        &p(json!({})).to_string(),
    )
    .await;
    assert_eq!(
        (r.status, r.text()),
        (
            415,
            "Expected request with `Content-Type: application/json`".to_string()
        )
    );

    // On /generate_stream the response has begun: errors are a 200 stream with one error event.
    for params in [
        json!({"temperature": 0}),
        json!({"decoder_input_details": true}),
        json!({"best_of": 2, "do_sample": true}),
    ] {
        let r = post(&fake, "/generate_stream", &p(params.clone())).await;
        assert_eq!(r.status, 200);
        let evs = events(&r);
        assert_eq!(evs.len(), 1, "{params}");
        assert_eq!(evs[0]["error_type"], "validation");
        assert!(
            evs[0]["error"]
                .as_str()
                .unwrap()
                .starts_with("Input validation error: ")
        );
    }
}

#[tokio::test]
async fn auth_compat_route_info_and_health() {
    let fake = FakeUpstream::tgi_with_key("hf_secret").await;
    let body = request(&llama("hi"), json!({})).to_string();
    let r = send(fake.addr(), "POST", "/generate", JSON, &body).await;
    assert_eq!((r.status, r.text()), (401, String::new()));
    let auth = [
        ("content-type", "application/json"),
        ("authorization", "bearer HF_SECRET"),
    ];
    assert_eq!(
        send(fake.addr(), "POST", "/generate", &auth, &body)
            .await
            .status,
        200,
        "compared case-insensitively"
    );
    assert_eq!(get(fake.addr(), "/health").await.status, 401);

    let fake = FakeUpstream::tgi().await;
    assert_eq!(get(fake.addr(), "/health").await.status, 200);
    let info = get(fake.addr(), "/info").await.json();
    assert_eq!(
        (
            info["max_stop_sequences"].clone(),
            info["max_total_tokens"].clone()
        ),
        (json!(4), json!(4096))
    );
    assert!(info["model_id"].is_string());
    assert_eq!(get(fake.addr(), "/v1/chat/completions").await.status, 404);
    assert_eq!(get(fake.addr(), "/generate").await.status, 405);
    let compat = post(&fake, "/", &request("Say hi", json!({}))).await.json();
    assert_eq!(
        compat,
        json!([{"generated_text": "Say hiHello! You said: Say hi"}]),
        "`/` returns a list and the full text"
    );
    let mut stream = request("Say hi", json!({"return_full_text": false}));
    stream["stream"] = json!(true);
    let evs = events(&post(&fake, "/", &stream).await);
    assert_eq!(
        evs.last().unwrap()["generated_text"],
        "Hello! You said: Say hi"
    );
    assert_eq!(fake.requests().len(), 6);
}
