//! The Anthropic mapping against the faithful fake Messages API.

use std::time::Duration;

use rosetta_testkit::FakeUpstream;
use serde_json::{Value, json};

use super::responses_support::events;
use super::support::{Proxy, chat, post, stream, tools};

const KEY: &str = "sk-ant-test-0123456789";

async fn setup() -> (FakeUpstream, Proxy) {
    let fake = FakeUpstream::anthropic_with_key(KEY).await;
    let proxy = Proxy::start(&[
        ("ANTHROPIC_BASE_URL", fake.base_url()),
        ("ANTHROPIC_API_KEY", KEY.to_string()),
    ])
    .await;
    (fake, proxy)
}

fn url(p: &Proxy) -> String {
    p.url("/anthropic/v1/chat/completions")
}

#[tokio::test]
async fn non_stream_text() {
    let (fake, proxy) = setup().await;
    let r = post(&url(&proxy), &chat("claude-sonnet-4-5", "Hi there")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    assert_eq!(j["object"], "chat.completion");
    assert!(j["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert!(j["created"].is_u64());
    assert_eq!(j["model"], "claude-sonnet-4-5");
    assert_eq!(j["choices"][0]["message"]["role"], "assistant");
    assert_eq!(
        j["choices"][0]["message"]["content"],
        "Hello! You said: Hi there"
    );
    assert_eq!(j["choices"][0]["finish_reason"], "stop");
    let u = &j["usage"];
    assert_eq!(
        u["total_tokens"].as_u64().unwrap(),
        u["prompt_tokens"].as_u64().unwrap() + u["completion_tokens"].as_u64().unwrap()
    );
    assert!(u["completion_tokens"].as_u64().unwrap() > 0);
    let sent = &fake.requests()[0];
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.header("x-api-key"), Some(KEY));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(sent.body["max_tokens"], 4096);
    assert_eq!(
        sent.body["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "Hi there"}]}])
    );
}

#[tokio::test]
async fn system_and_developer_messages_are_hoisted() {
    let (fake, proxy) = setup().await;
    let body = json!({"model": "claude-sonnet-4-5", "messages": [
        {"role": "system", "content": "Be terse."},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
        {"role": "user", "content": "Hi"}]});
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sent = &fake.requests()[0].body;
    assert_eq!(sent["system"], "Be terse.\n\nAnswer in French.");
    assert_eq!(sent["messages"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn stream_text_is_incremental() {
    let (_fake, proxy) = setup().await;
    let mut body = chat("claude-sonnet-4-5", "SLOW please say several words");
    body["stream"] = json!(true);
    let s = stream(&url(&proxy), &body).await;
    let chunks = s.assert_valid();
    assert_eq!(
        s.content(),
        "Hello! You said: SLOW please say several words"
    );
    assert!(
        chunks.iter().all(|c| c.get("usage").is_none()),
        "no usage without include_usage"
    );
    // The fake waits 300 ms between events: the first content must reach us long before the end.
    let first_content = s
        .frames
        .iter()
        .find(|(_, b)| String::from_utf8_lossy(b).contains("\"content\":\"Hello"))
        .unwrap()
        .0;
    let last = s.frames.last().unwrap().0;
    assert!(
        last.duration_since(first_content) >= Duration::from_millis(600),
        "buffered: {:?}",
        last.duration_since(first_content)
    );
}

#[tokio::test]
async fn include_usage_adds_a_final_usage_chunk() {
    let (_fake, proxy) = setup().await;
    let mut body = chat("claude-sonnet-4-5", "CACHED count me");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let s = stream(&url(&proxy), &body).await;
    let chunks = s.assert_valid();
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    let u = &last["usage"];
    assert!(u["prompt_tokens"].as_u64().unwrap() >= 5);
    assert_eq!(u["prompt_tokens_details"]["cached_tokens"], 5);
    assert_eq!(
        u["total_tokens"].as_u64().unwrap(),
        u["prompt_tokens"].as_u64().unwrap() + u["completion_tokens"].as_u64().unwrap()
    );
    assert_eq!(
        chunks.iter().filter(|c| c.get("usage").is_some()).count(),
        1
    );
    assert!(
        !chunks[chunks.len() - 2]["choices"][0]["finish_reason"].is_null(),
        "usage comes right after the finish chunk"
    );
}

#[tokio::test]
async fn tools_non_stream() {
    let (fake, proxy) = setup().await;
    let mut body = chat("claude-sonnet-4-5", "Weather in Paris?");
    body["tools"] = tools();
    body["tool_choice"] = json!("required");
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    let msg = &j["choices"][0]["message"];
    assert_eq!(msg["content"], "Let me check.");
    let call = &msg["tool_calls"][0];
    assert!(call["id"].as_str().unwrap().starts_with("toolu_"));
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "Paris"}));
    assert_eq!(j["choices"][0]["finish_reason"], "tool_calls");
    let sent = &fake.requests()[0].body;
    assert_eq!(
        sent["tools"][0]["input_schema"]["properties"]["city"]["type"],
        "string"
    );
    assert_eq!(sent["tool_choice"], json!({"type": "any"}));
}

#[tokio::test]
async fn tools_stream_with_argument_pieces_and_indexes() {
    let (_fake, proxy) = setup().await;
    let mut body = chat("claude-sonnet-4-5", "TWO TOOLS please");
    body["tools"] = tools();
    body["stream"] = json!(true);
    body["parallel_tool_calls"] = json!(true);
    let s = stream(&url(&proxy), &body).await;
    s.assert_valid();
    assert_eq!(s.finish_reason(), "tool_calls");
    let deltas = s.tool_deltas();
    let starts: Vec<&Value> = deltas.iter().filter(|d| d.get("id").is_some()).collect();
    assert_eq!(starts.len(), 2);
    for (i, st) in starts.iter().enumerate() {
        assert_eq!(st["index"], i);
        assert_eq!(st["type"], "function");
        assert_eq!(st["function"]["arguments"], "");
    }
    assert_eq!(starts[0]["function"]["name"], "get_weather");
    assert_eq!(starts[1]["function"]["name"], "get_time");
    for i in 0..2 {
        let pieces: Vec<&Value> = deltas
            .iter()
            .filter(|d| d["index"] == i && d.get("id").is_none())
            .collect();
        assert!(pieces.len() >= 2, "arguments arrive in pieces: {pieces:?}");
        assert!(
            pieces
                .iter()
                .all(|p| p.get("type").is_none() && p["function"].get("name").is_none())
        );
        let args: String = pieces
            .iter()
            .map(|p| p["function"]["arguments"].as_str().unwrap())
            .collect();
        let parsed: Value = serde_json::from_str(&args).unwrap();
        assert!(parsed.is_object());
    }
}

#[tokio::test]
async fn tool_result_round_trip() {
    let (fake, proxy) = setup().await;
    let body = json!({"model": "claude-sonnet-4-5", "tools": tools(), "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "toolu_01A", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
            {"id": "toolu_01B", "type": "function", "function": {"name": "get_time", "arguments": "{\"tz\":\"CET\"}"}}]},
        {"role": "tool", "tool_call_id": "toolu_01A", "content": "18 C, cloudy"},
        {"role": "tool", "tool_call_id": "toolu_01B", "content": "12:00"},
        {"role": "user", "content": "Summarize."}]});
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "Tool said: 18 C, cloudy"
    );
    let sent = &fake.requests()[0].body["messages"];
    assert_eq!(sent.as_array().unwrap().len(), 3, "{sent}");
    assert_eq!(
        sent[1]["content"][0],
        json!({"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Paris"}})
    );
    assert_eq!(sent[2]["content"][0]["type"], "tool_result");
    assert_eq!(sent[2]["content"][1]["tool_use_id"], "toolu_01B");
    assert_eq!(
        sent[2]["content"][2],
        json!({"type": "text", "text": "Summarize."})
    );
}

#[tokio::test]
async fn parameters_are_translated_and_openai_only_fields_dropped() {
    let (fake, proxy) = setup().await;
    let mut body = chat("claude-sonnet-4-5", "Hi");
    for (k, v) in [
        ("max_tokens", json!(77)),
        ("stop", json!("END")),
        ("temperature", json!(1.7)),
        ("top_p", json!(0.5)),
        ("user", json!("u-42")),
        ("n", json!(1)),
        ("frequency_penalty", json!(0)),
        ("presence_penalty", json!(0)),
        ("seed", json!(1)),
        ("logit_bias", json!({})),
        ("stream_options", json!({"include_usage": true})),
    ] {
        body[k] = v;
    }
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sent = &fake.requests()[0].body;
    assert_eq!(sent["max_tokens"], 77);
    assert_eq!(sent["stop_sequences"], json!(["END"]));
    assert_eq!(sent["temperature"], 1.0);
    assert!(
        sent.get("top_p").is_none(),
        "newer Claude models refuse top_p beside a temperature: {sent}"
    );
    assert_eq!(sent["metadata"], json!({"user_id": "u-42"}));
    body["max_completion_tokens"] = json!(55);
    body["stop"] = json!(["A", "B"]);
    body["temperature"] = json!(0);
    post(&url(&proxy), &body).await;
    let sent = &fake.requests()[1].body;
    assert_eq!(sent["max_tokens"], 55);
    assert_eq!(sent["stop_sequences"], json!(["A", "B"]));
    assert_eq!(sent["temperature"], 0);
    body.as_object_mut().unwrap().remove("temperature");
    post(&url(&proxy), &body).await;
    assert_eq!(fake.requests()[2].body["top_p"], 0.5, "top_p alone is sent");
}

#[tokio::test]
async fn max_tokens_stop_becomes_length() {
    let (_fake, proxy) = setup().await;
    let r = post(&url(&proxy), &chat("claude-sonnet-4-5", "MAX TOKENS")).await;
    assert_eq!(r.json()["choices"][0]["finish_reason"], "length");
    let mut body = chat("claude-sonnet-4-5", "MAX TOKENS");
    body["stream"] = json!(true);
    let s = stream(&url(&proxy), &body).await;
    s.assert_valid();
    assert_eq!(s.finish_reason(), "length");
}

#[tokio::test]
async fn thinking_becomes_reasoning_content() {
    let (_fake, proxy) = setup().await;
    let r = post(&url(&proxy), &chat("claude-sonnet-4-5", "THINK first")).await;
    let msg = &r.json()["choices"][0]["message"];
    assert!(
        msg["reasoning_content"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{msg}"
    );
    let mut body = chat("claude-sonnet-4-5", "THINK first");
    body["stream"] = json!(true);
    let s = stream(&url(&proxy), &body).await;
    s.assert_valid();
    assert!(
        s.chunks()
            .iter()
            .any(|c| c["choices"][0]["delta"]["reasoning_content"].is_string())
    );
}

/// reasoning_effort turns on extended thinking with a budget the API accepts (below max_tokens,
/// at least 1024), in both modes, and the thinking comes back as reasoning_content.
#[tokio::test]
async fn reasoning_effort_becomes_a_valid_thinking_budget() {
    let (fake, proxy) = setup().await;
    for (effort, cap) in [("high", None), ("medium", Some(3000)), ("low", Some(1500))] {
        let mut body = chat("claude-sonnet-4-5", "THINK about it");
        body["reasoning_effort"] = json!(effort);
        body["temperature"] = json!(0.3);
        if let Some(cap) = cap {
            body["max_tokens"] = json!(cap);
        }
        let r = post(&url(&proxy), &body).await;
        assert_eq!(r.status, 200, "{effort}: {}", r.text);
        let msg = &r.json()["choices"][0]["message"];
        assert!(
            !msg["reasoning_content"].as_str().unwrap_or("").is_empty(),
            "{effort}: {msg}"
        );
        let sent = fake.requests().last().unwrap().body.clone();
        let budget = sent["thinking"]["budget_tokens"].as_i64().unwrap();
        assert!(budget >= 1024 && budget < sent["max_tokens"].as_i64().unwrap());
        assert!(sent.get("temperature").is_none(), "{sent}");
        body["stream"] = json!(true);
        let s = stream(&url(&proxy), &body).await;
        s.assert_valid();
        assert!(!s.reasoning().is_empty(), "{effort}: streamed reasoning");
    }
}

/// The fake's searched answer (`SEARCH` with the web search tool): its text blocks, joined.
const SEARCHED: &str = "I'll search the web for that.\n\nAccording to the search results, \
     Rosetta makes LLM providers speak the OpenAI API. It runs as a reverse proxy in front of them.";

/// A request for web search beside function tools.
fn search_request(text: &str) -> Value {
    let mut body = chat("claude-sonnet-4-5", text);
    body["tools"] = tools();
    body["web_search_options"] = json!({"search_context_size": "high", "user_location": {
        "type": "approximate", "approximate": {"country": "FR", "city": "Paris",
        "region": "Ile-de-France", "timezone": "Europe/Paris"}}});
    body
}

/// web_search_options becomes Anthropic's hosted web search tool beside the functions; the
/// server tool blocks of the answer are not tool calls, and its text blocks make the content.
#[tokio::test]
async fn web_search_options_become_the_hosted_search_tool() {
    let (fake, proxy) = setup().await;
    let r = post(&url(&proxy), &search_request("SEARCH what is rosetta")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    let msg = &j["choices"][0]["message"];
    assert_eq!(msg["content"], SEARCHED);
    assert!(msg.get("tool_calls").is_none(), "{msg}");
    assert_eq!(j["choices"][0]["finish_reason"], "stop");
    let sent = &fake.requests()[0].body;
    let tools = sent["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 3, "{sent}");
    assert_eq!(tools[0]["name"], "get_weather");
    assert_eq!(tools[1]["name"], "get_time");
    assert_eq!(
        tools[2],
        json!({"type": "web_search_20250305", "name": "web_search", "user_location": {
            "type": "approximate", "city": "Paris", "region": "Ile-de-France", "country": "FR",
            "timezone": "Europe/Paris"}})
    );
}

#[tokio::test]
async fn web_search_stream_has_only_the_text() {
    let (fake, proxy) = setup().await;
    let mut body = search_request("SEARCH what is rosetta");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let s = stream(&url(&proxy), &body).await;
    let chunks = s.assert_valid();
    assert_eq!(s.content(), SEARCHED);
    assert!(s.tool_deltas().is_empty(), "{}", s.text());
    assert_eq!(s.finish_reason(), "stop");
    assert!(
        chunks.last().unwrap()["usage"]["prompt_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert_eq!(
        fake.requests()[0].body["tools"][2]["type"],
        "web_search_20250305"
    );
}

/// Only web_search_options: the search tool alone, no tool_choice; an empty option object is a
/// request for search too.
#[tokio::test]
async fn web_search_without_functions() {
    let (fake, proxy) = setup().await;
    let mut body = chat("claude-sonnet-4-5", "SEARCH rosetta");
    body["web_search_options"] = json!({});
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["choices"][0]["message"]["content"], SEARCHED);
    let sent = &fake.requests()[0].body;
    assert_eq!(
        sent["tools"],
        json!([{"type": "web_search_20250305", "name": "web_search"}])
    );
    assert!(sent.get("tool_choice").is_none(), "{sent}");
}

#[tokio::test]
async fn no_search_tool_without_web_search_options() {
    let (fake, proxy) = setup().await;
    let mut body = chat("claude-sonnet-4-5", "SEARCH rosetta");
    body["tools"] = tools();
    body["web_search_options"] = Value::Null;
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sent = &fake.requests()[0].body;
    let types: Vec<&Value> = sent["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.get("type"))
        .collect();
    assert!(types.is_empty(), "only function tools: {sent}");
    assert_eq!(r.json()["choices"][0]["finish_reason"], "tool_calls");
    post(&url(&proxy), &chat("claude-sonnet-4-5", "SEARCH rosetta")).await;
    assert!(fake.requests()[1].body.get("tools").is_none());
}

fn responses_url(p: &Proxy) -> String {
    p.url("/anthropic/v1/responses")
}

/// The fake's thinking signature: `EqQBCkgIARABGAIiQ` and 40 letters and digits.
fn assert_fake_signature(s: &Value) {
    let s = s.as_str().unwrap_or_else(|| panic!("a signature: {s}"));
    let tail = s.strip_prefix("EqQBCkgIARABGAIiQ").expect(s);
    assert_eq!(tail.len(), 40, "{s}");
    assert!(tail.chars().all(|c| c.is_ascii_alphanumeric()), "{s}");
}

/// The thinking block first in the assistant turn the fake received last.
fn sent_thinking_block(fake: &FakeUpstream) -> Value {
    let sent = fake.requests().last().unwrap().body.clone();
    let assistant = sent["messages"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|m| m["role"] == "assistant")
        .unwrap_or_else(|| panic!("an assistant turn: {sent}"))
        .clone();
    assistant["content"][0].clone()
}

/// Through the Responses API the thinking block's signature is the reasoning item's
/// encrypted_content, whole and streamed; a client that sends the items back (as stateless
/// clients do) gets it to Anthropic as the signed thinking block, first in that turn.
#[tokio::test]
async fn the_thinking_signature_survives_a_responses_round_trip() {
    let (fake, proxy) = setup().await;
    let ask = json!({"model": "claude-sonnet-4-5", "input": "THINK about Paris",
        "reasoning": {"effort": "high"}, "store": false});
    let r = post(&responses_url(&proxy), &ask).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let whole = r.json();
    let reasoning = &whole["output"][0];
    assert_eq!(reasoning["type"], "reasoning", "{whole}");
    assert_fake_signature(&reasoning["encrypted_content"]);
    let thinking = reasoning["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!thinking.is_empty(), "{whole}");
    assert_eq!(whole["output"][1]["type"], "message", "{whole}");

    let mut streamed = ask.clone();
    streamed["stream"] = json!(true);
    let ev = events(&stream(&responses_url(&proxy), &streamed).await);
    ev.assert_valid();
    let done = ev.of("response.output_item.done")[0]["item"].clone();
    assert_eq!(done["type"], "reasoning", "{done}");
    assert_fake_signature(&done["encrypted_content"]);
    assert_ne!(
        done["encrypted_content"], reasoning["encrypted_content"],
        "each answer has its own signature"
    );
    assert_eq!(ev.terminal()["response"]["output"][0], done);

    // The next turn, with the whole output sent back: the signature reaches Anthropic as it came.
    let mut input = vec![json!({"role": "user", "content": "THINK about Paris"})];
    input.extend(whole["output"].as_array().unwrap().iter().cloned());
    input.push(json!({"role": "user", "content": "And Lyon?"}));
    let next = json!({"model": "claude-sonnet-4-5", "input": input,
        "reasoning": {"effort": "high"}, "store": false});
    let r = post(&responses_url(&proxy), &next).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        sent_thinking_block(&fake),
        json!({"type": "thinking", "thinking": thinking,
               "signature": reasoning["encrypted_content"]})
    );
}

/// A tool loop through the Responses API keeps thinking on: the reasoning item, the message
/// and the function_call sent back with the function_call_output become one assistant turn
/// that starts with the signed thinking block, which the fake, like Anthropic, requires.
#[tokio::test]
async fn a_responses_tool_loop_sends_the_signed_thinking_block_first() {
    let (fake, proxy) = setup().await;
    let tool = json!({"type": "function", "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
            "required": ["city"]}});
    for streamed in [false, true] {
        let ask = json!({"model": "claude-sonnet-4-5", "input": "THINK: weather in Paris?",
            "tools": [tool], "reasoning": {"effort": "high"}, "store": false,
            "stream": streamed});
        let output = if streamed {
            let ev = events(&stream(&responses_url(&proxy), &ask).await);
            ev.assert_valid();
            ev.terminal()["response"]["output"].clone()
        } else {
            let r = post(&responses_url(&proxy), &ask).await;
            assert_eq!(r.status, 200, "{}", r.text);
            r.json()["output"].clone()
        };
        let kinds: Vec<&Value> = output
            .as_array()
            .unwrap()
            .iter()
            .map(|i| &i["type"])
            .collect();
        assert_eq!(kinds, ["reasoning", "message", "function_call"], "{output}");
        let reasoning = &output[0];
        assert_fake_signature(&reasoning["encrypted_content"]);
        let call_id = output[2]["call_id"].clone();
        let mut input = vec![json!({"role": "user", "content": "THINK: weather in Paris?"})];
        input.extend(output.as_array().unwrap().iter().cloned());
        input.push(json!({"type": "function_call_output", "call_id": call_id,
            "output": "{\"temp_c\":18}"}));
        let next = json!({"model": "claude-sonnet-4-5", "input": input, "tools": [tool],
            "reasoning": {"effort": "high"}, "store": false, "stream": streamed});
        let answer = if streamed {
            let ev = events(&stream(&responses_url(&proxy), &next).await);
            ev.assert_valid();
            ev.text_deltas()
        } else {
            let r = post(&responses_url(&proxy), &next).await;
            assert_eq!(r.status, 200, "{}", r.text);
            super::responses::output_text(&r.json())
        };
        assert_eq!(answer, "Tool said: {\"temp_c\":18}");
        let sent = fake.requests().last().unwrap().body.clone();
        assert_eq!(sent["thinking"]["type"], "enabled", "{sent}");
        assert_eq!(
            sent_thinking_block(&fake),
            json!({"type": "thinking",
                   "thinking": reasoning["content"][0]["text"],
                   "signature": reasoning["encrypted_content"]}),
            "{sent}"
        );
    }
}

/// A chat client keeps no signature: while its tool loop continues (tool results last, or
/// followed by a new user message, which Anthropic merges into the same turn), thinking
/// stays off, since Anthropic would want the tool_use turn's signed thinking block first.
#[tokio::test]
async fn thinking_is_off_while_an_unsigned_tool_loop_continues() {
    let (fake, proxy) = setup().await;
    let call = json!({"id": "toolu_01Abc", "type": "function",
        "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}});
    for trailing in [None, Some("Answer in one sentence.")] {
        let mut messages = vec![
            json!({"role": "user", "content": "Weather in Paris?"}),
            json!({"role": "assistant", "content": "Checking.", "tool_calls": [call],
                   "reasoning_content": "Call the tool."}),
            json!({"role": "tool", "tool_call_id": "toolu_01Abc", "content": "18"}),
        ];
        if let Some(text) = trailing {
            messages.push(json!({"role": "user", "content": text}));
        }
        let body = json!({"model": "claude-sonnet-4-5", "messages": messages,
            "reasoning_effort": "high", "tools": tools()});
        let r = post(&url(&proxy), &body).await;
        assert_eq!(r.status, 200, "{trailing:?}: {}", r.text);
        let sent = fake.requests().last().unwrap().body.clone();
        assert!(sent.get("thinking").is_none(), "{sent}");
        assert_eq!(sent["messages"][1]["content"][0]["type"], "text", "{sent}");
    }
}
