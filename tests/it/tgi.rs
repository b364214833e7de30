//! The TGI mapping against the faithful fake native API (`/generate`, `/generate_stream`).

use rosetta_testkit::FakeUpstream;
use serde_json::{Value, json};

use super::support::{Proxy, chat, post, request, stream};

const CHATML_HI: &str = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n";

async fn setup() -> (FakeUpstream, Proxy) {
    let fake = FakeUpstream::tgi().await;
    let proxy = Proxy::start(&[("TGI_BASE_URL", fake.base_url())]).await;
    (fake, proxy)
}

fn url(p: &Proxy) -> String {
    p.url("/tgi/v1/chat/completions")
}

fn streaming(mut body: Value) -> Value {
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    body
}

#[tokio::test]
async fn non_stream_chatml_prompt_details_and_header_usage() {
    let (fake, proxy) = setup().await;
    let body = json!({"model": "tgi", "max_tokens": 50, "messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]});
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    assert_eq!(j["object"], "chat.completion");
    assert_eq!(j["model"], "tgi");
    assert_eq!(j["choices"][0]["message"]["content"], "Hello! You said: Hi");
    assert_eq!(j["choices"][0]["finish_reason"], "stop");
    let prompt = j["usage"]["prompt_tokens"].as_u64().unwrap();
    assert!(prompt > 0, "prompt tokens come from x-prompt-tokens: {j}");
    assert_eq!(
        j["usage"]["completion_tokens"], 5,
        "4 words + the end token"
    );
    let sent = &fake.requests()[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/generate");
    assert_eq!(sent.body["inputs"], CHATML_HI);
    assert_eq!(sent.body["add_special_tokens"], false);
    assert_eq!(
        sent.body["parameters"],
        json!({"max_new_tokens": 50, "do_sample": true, "stop": ["<|im_end|>"],
               "details": true, "return_full_text": false})
    );

    // The same prompt streamed reports its length as details.input_length: the same count.
    let s = stream(&url(&proxy), &streaming(body)).await;
    let chunks = s.assert_valid();
    assert_eq!(chunks.last().unwrap()["usage"]["prompt_tokens"], prompt);
}

#[tokio::test]
async fn llama3_model_gets_the_llama3_template() {
    let (fake, proxy) = setup().await;
    let body = json!({"model": "meta-llama/Llama-3.1-8B-Instruct", "messages": [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "there"}]}]});
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "Hello! You said: Hi\nthere"
    );
    let sent = &fake.requests()[0].body;
    assert_eq!(
        sent["inputs"],
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>\
         <|start_header_id|>user<|end_header_id|>\n\nHi\nthere<|eot_id|>\
         <|start_header_id|>assistant<|end_header_id|>\n\n"
    );
    assert_eq!(sent["parameters"]["stop"], json!(["<|eot_id|>"]));
}

#[tokio::test]
async fn stream_is_incremental_with_usage_and_no_special_token() {
    let (_fake, proxy) = setup().await;
    let s = stream(
        &url(&proxy),
        &streaming(chat("tgi", "tell me something nice")),
    )
    .await;
    let chunks = s.assert_valid();
    assert_eq!(s.content(), "Hello! You said: tell me something nice");
    assert!(!s.text().contains("im_end"), "special tokens are not text");
    let pieces = chunks
        .iter()
        .filter(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
        })
        .count();
    assert_eq!(pieces, 7, "one chunk per word: {}", s.text());
    assert_eq!(s.finish_reason(), "stop");
    let usage = &chunks.last().unwrap()["usage"];
    assert!(usage["prompt_tokens"].as_u64().unwrap() > 0);
    assert_eq!(usage["completion_tokens"], 8, "7 words + the end token");
    assert_eq!(
        usage["total_tokens"],
        usage["prompt_tokens"].as_u64().unwrap() + 8
    );
}

#[tokio::test]
async fn max_tokens_is_length_in_both_modes() {
    let (fake, proxy) = setup().await;
    let r = post(&url(&proxy), &chat("tgi", "MAX TOKENS please")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["choices"][0]["finish_reason"], "length");
    let mut body = streaming(chat("tgi", "a long answer please"));
    body["max_completion_tokens"] = json!(2);
    let s = stream(&url(&proxy), &body).await;
    s.assert_valid();
    assert_eq!(s.finish_reason(), "length");
    assert_eq!(s.content(), "Hello! You");
    assert_eq!(fake.requests()[1].path, "/generate_stream");
    assert_eq!(fake.requests()[1].body["parameters"]["max_new_tokens"], 2);
}

#[tokio::test]
async fn stop_sequence_is_stop_and_left_out_of_the_text() {
    let (fake, proxy) = setup().await;
    let mut body = chat("tgi", "STOPSEQ now");
    body["stop"] = json!("END");
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    assert_eq!(j["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        j["choices"][0]["message"]["content"],
        "Hello! You said: STOPSEQ now"
    );
    assert_eq!(
        fake.requests()[0].body["parameters"]["stop"],
        json!(["END", "<|im_end|>"])
    );
    let s = stream(&url(&proxy), &streaming(body)).await;
    s.assert_valid();
    assert_eq!(s.finish_reason(), "stop");
    assert_eq!(s.content(), "Hello! You said: STOPSEQ now");
}

/// TGI keeps the stop text at the end of its answer, generated over several tokens: the
/// answer ends before it all the same, whole or streamed, when it spans two events (`ZQST`:
/// `ZQ`, `ST`) and three (`ZQSTOP`: `ZQ`, `ST`, `OP`). Before `trim_stop` the mapping dropped
/// only the last token, leaving `...nowZQST` for `ZQSTOP`.
#[tokio::test]
async fn a_stop_text_over_two_and_three_tokens_is_cut_whole_and_streamed() {
    let (fake, proxy) = setup().await;
    for stop in ["ZQST", "ZQSTOP"] {
        let mut body = chat("tgi", "STOPSEQ now");
        body["stop"] = json!([stop]);
        let r = post(&url(&proxy), &body).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let upstream = fake.requests().last().unwrap().clone();
        assert_eq!(upstream.body["parameters"]["stop"][0], stop);
        assert_eq!(
            r.json()["choices"][0]["message"]["content"],
            "Hello! You said: STOPSEQ now",
            "{stop}"
        );
        let s = stream(&url(&proxy), &streaming(body)).await;
        s.assert_valid();
        assert_eq!(s.finish_reason(), "stop");
        assert_eq!(s.content(), "Hello! You said: STOPSEQ now", "{stop}");
        assert!(
            !s.text().contains("ZQ"),
            "no piece of the stop text is sent: {}",
            s.text()
        );
    }
}

#[tokio::test]
async fn temperature_zero_is_greedy_and_accepted() {
    let (fake, proxy) = setup().await;
    let mut body = chat("tgi", "Hi");
    body["temperature"] = json!(0);
    body["top_p"] = json!(0.5);
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "TGI refuses temperature 0: {}", r.text);
    let params = &fake.requests()[0].body["parameters"];
    assert_eq!(params["do_sample"], false);
    assert!(params.get("temperature").is_none(), "{params}");
    assert!(params.get("top_p").is_none(), "{params}");

    body["temperature"] = json!(0.8);
    body["top_p"] = json!(1);
    body["seed"] = json!(11);
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "TGI refuses top_p 1: {}", r.text);
    let params = &fake.requests()[1].body["parameters"];
    assert_eq!(params["do_sample"], true);
    assert_eq!(params["temperature"], 0.8);
    assert_eq!(params["seed"], 11);
    assert!(params.get("top_p").is_none(), "{params}");
}

#[tokio::test]
async fn legacy_completions_both_modes() {
    let (fake, proxy) = setup().await;
    let url = proxy.url("/tgi/v1/completions");
    let r = post(
        &url,
        &json!({"model": "tgi", "prompt": "Why is the sky blue?", "max_tokens": 20, "suffix": "x"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    assert_eq!(j["object"], "text_completion");
    assert!(j["id"].as_str().unwrap().starts_with("cmpl-"));
    assert_eq!(
        j["choices"][0]["text"],
        "Hello! You said: Why is the sky blue?"
    );
    assert_eq!(j["choices"][0]["finish_reason"], "stop");
    assert_eq!(j["usage"]["prompt_tokens"], 5, "x-prompt-tokens: 5 words");
    assert_eq!(j["usage"]["completion_tokens"], 9);
    let sent = &fake.requests()[0];
    assert_eq!(sent.path, "/generate");
    assert_eq!(
        sent.body,
        json!({"inputs": "Why is the sky blue?", "parameters": {"max_new_tokens": 20,
            "do_sample": true, "details": true, "return_full_text": false}})
    );

    let s = stream(
        &url,
        &json!({"model": "tgi", "prompt": ["Why", "MAX TOKENS"], "stream": true,
                "stream_options": {"include_usage": true}}),
    )
    .await;
    assert_eq!(s.status, 200);
    assert!(s.done(), "{}", s.text());
    assert_eq!(fake.requests()[1].path, "/generate_stream");
    assert_eq!(fake.requests()[1].body["inputs"], "Why\nMAX TOKENS");
    let chunks = s.chunks();
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "text_completion" && c["id"] == chunks[0]["id"])
    );
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["text"].as_str())
        .collect();
    assert_eq!(text, "Hello! You said: Why\nMAX TOKENS");
    let finishes: Vec<&Value> = chunks
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finishes, vec![&json!("length")]);
    assert_eq!(chunks.last().unwrap()["usage"]["prompt_tokens"], 3);
}

#[tokio::test]
async fn http_errors_become_openai_errors() {
    let (_fake, proxy) = setup().await;
    let r = post(&url(&proxy), &chat("tgi", "FAIL 422")).await;
    assert_eq!(r.status, 422, "{}", r.text);
    let e = r.openai_error();
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("Input validation error"),
        "{e}"
    );
    assert_eq!(e["type"], "invalid_request_error");
    assert_eq!(e["code"], "validation");

    let r = post(&url(&proxy), &chat("tgi", "FAIL 429")).await;
    assert_eq!(r.status, 429, "{}", r.text);
    let e = r.openai_error();
    assert_eq!(e["message"], "Model is overloaded");
    assert_eq!(e["type"], "rate_limit_error");
    assert_eq!(e["code"], "overloaded");

    let r = post(&url(&proxy), &chat("tgi", "FAIL 424")).await;
    assert_eq!(
        r.status, 502,
        "424 generation errors become 502: {}",
        r.text
    );
    let e = r.openai_error();
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("CUDA out of memory")
    );
    assert_eq!(e["type"], "server_error");
    assert_eq!(e["code"], "generation");

    // /generate_stream answers these with a 200 and one error event.
    let s = stream(&url(&proxy), &streaming(chat("tgi", "FAIL 429"))).await;
    assert_eq!(s.status, 200);
    assert!(!s.done());
    let chunks = s.chunks();
    assert_eq!(chunks.len(), 1, "{}", s.text());
    assert_eq!(
        chunks[0]["error"],
        json!({"message": "Model is overloaded", "type": "rate_limit_error", "param": null, "code": "overloaded"})
    );
}

#[tokio::test]
async fn midstream_error_event_ends_the_stream() {
    let (_fake, proxy) = setup().await;
    let s = stream(&url(&proxy), &streaming(chat("tgi", "MIDSTREAM ERROR now"))).await;
    assert_eq!(s.status, 200);
    assert!(!s.done(), "no [DONE] after an error: {}", s.text());
    assert_eq!(s.content(), "Hello! You", "the two tokens before the error");
    let chunks = s.chunks();
    let last = chunks.last().unwrap();
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("CUDA out of memory"),
        "{last}"
    );
    assert_eq!(last["error"]["code"], "generation");
    assert!(
        chunks
            .iter()
            .all(|c| c["choices"][0]["finish_reason"].is_null())
    );
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
}

#[tokio::test]
async fn api_key_is_sent_as_bearer() {
    let fake = FakeUpstream::tgi_with_key("hf_secret").await;
    let proxy = Proxy::start(&[
        ("TGI_BASE_URL", fake.base_url()),
        ("TGI_API_KEY", "hf_secret".to_string()),
    ])
    .await;
    let r = post(&url(&proxy), &chat("tgi", "Hi")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        fake.requests()[0].header("authorization"),
        Some("Bearer hf_secret")
    );

    // Without the key, TGI launched with --api-key answers a bare 401.
    let proxy = Proxy::start(&[("TGI_BASE_URL", fake.base_url())]).await;
    let r = post(&url(&proxy), &chat("tgi", "Hi")).await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(r.openai_error()["type"], "authentication_error");
}

#[tokio::test]
async fn models_and_unified_surface() {
    let (fake, proxy) = setup().await;
    let r = request("GET", &proxy.url("/tgi/v1/models"), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let ids: Vec<String> = r.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ids,
        [
            "tgi",
            "meta-llama/Llama-3.1-8B-Instruct",
            "Qwen/Qwen2.5-7B-Instruct",
            "meta-llama/Meta-Llama-3.1-8B-Instruct"
        ],
        "declared models, then the one /info names"
    );
    assert_eq!(fake.requests()[0].path, "/info");

    let r = post(
        &proxy.url("/v1/chat/completions"),
        &chat("Qwen/Qwen2.5-7B-Instruct", "Hi"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["model"], "Qwen/Qwen2.5-7B-Instruct");
    let r = post(
        &proxy.url("/v1/chat/completions"),
        &chat("tgi/llama3-custom", "Hi"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        fake.requests()[2].body["inputs"]
            .as_str()
            .unwrap()
            .starts_with("<|begin_of_text|>")
    );
}
