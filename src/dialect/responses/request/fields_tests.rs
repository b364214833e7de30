//! Top-level fields: validation, their chat names, what stays with the bridge, and the
//! request Codex CLI sends.

use serde_json::{Value, json};

use super::testing::{messages, ok, param, refused};
use super::to_chat;
use crate::error::ProxyError;

fn chat_with(extra: Value) -> Value {
    let mut request = json!({"model": "m", "input": "Q"});
    for (k, v) in extra.as_object().unwrap() {
        request[k] = v.clone();
    }
    ok(request).chat
}

#[test]
fn the_body_model_and_input_are_checked() {
    assert!(matches!(
        to_chat(&json!([1]), &[]),
        Err(ProxyError::BadRequest { param: None, .. })
    ));
    assert_eq!(param(json!({"input": "Q"})).as_deref(), Some("model"));
    assert_eq!(
        param(json!({"model": "", "input": "Q"})).as_deref(),
        Some("model")
    );
    assert_eq!(param(json!({"model": "m"})).as_deref(), Some("input"));
    assert_eq!(
        param(json!({"model": "m", "input": 3})).as_deref(),
        Some("input")
    );
    assert_eq!(
        param(json!({"model": "m", "input": [3]})).as_deref(),
        Some("input[0]")
    );
    assert_eq!(
        param(json!({"model": "m", "input": [{"content": "x"}]})).as_deref(),
        Some("input[0].type")
    );
    assert_eq!(
        param(json!({"model": "m", "input": []})).as_deref(),
        Some("input")
    );
    assert_eq!(
        param(json!({"model": "m", "input": "Q", "instructions": 1})).as_deref(),
        Some("instructions")
    );
    // With previous_response_id the input may be missing; the history carries the turn.
    let history = [json!({"type": "message", "role": "user", "content": "Earlier"})];
    let c = to_chat(
        &json!({"model": "m", "previous_response_id": "resp_1"}),
        &history,
    )
    .unwrap();
    assert_eq!(
        c.chat["messages"],
        json!([{"role": "user", "content": "Earlier"}])
    );
    assert!(c.input_items.is_empty());
}

#[test]
fn sampling_and_identity_fields_take_their_chat_names() {
    let chat = chat_with(
        json!({"temperature": 0.2, "top_p": 0.9, "max_output_tokens": 512,
                               "top_logprobs": 3, "user": "u-1", "safety_identifier": "s-1",
                               "reasoning": {"effort": "low", "summary": "auto"}}),
    );
    assert_eq!(chat["model"], "m");
    assert_eq!(chat["temperature"], 0.2);
    assert_eq!(chat["top_p"], 0.9);
    assert_eq!(chat["max_completion_tokens"], 512);
    assert!(chat.get("max_tokens").is_none());
    assert_eq!(chat["logprobs"], true);
    assert_eq!(chat["top_logprobs"], 3);
    assert_eq!(chat["user"], "u-1");
    assert_eq!(chat["reasoning_effort"], "low");
    assert!(chat.get("reasoning").is_none());
    assert_eq!(
        chat_with(json!({"safety_identifier": "s-1"}))["user"],
        "s-1"
    );
}

#[test]
fn stream_asks_for_usage() {
    let chat = chat_with(json!({"stream": true, "stream_options": {"include_obfuscation": false}}));
    assert_eq!(chat["stream"], true);
    assert_eq!(chat["stream_options"], json!({"include_usage": true}));
    let chat = chat_with(json!({"stream": false}));
    assert_eq!(chat["stream"], false);
    assert!(chat.get("stream_options").is_none());
    assert!(chat_with(json!({})).get("stream").is_none());
}

#[test]
fn text_format_becomes_response_format() {
    assert!(
        chat_with(json!({"text": {"format": {"type": "text"}}}))
            .get("response_format")
            .is_none()
    );
    assert_eq!(
        chat_with(json!({"text": {"format": {"type": "json_object"}}}))["response_format"],
        json!({"type": "json_object"})
    );
    let schema =
        json!({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]});
    let chat = chat_with(
        json!({"text": {"verbosity": "low", "format": {"type": "json_schema",
        "name": "answer", "strict": true, "description": "The answer", "schema": schema}}}),
    );
    assert_eq!(
        chat["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "answer", "schema": schema,
               "strict": true, "description": "The answer"}})
    );
    assert_eq!(chat["verbosity"], "low");
    for (format, at) in [
        (
            json!({"type": "json_schema", "schema": {}}),
            "text.format.name",
        ),
        (
            json!({"type": "json_schema", "name": "a"}),
            "text.format.schema",
        ),
        (json!({"type": "yaml"}), "text.format.type"),
    ] {
        assert_eq!(
            param(json!({"model": "m", "input": "Q", "text": {"format": format}})).as_deref(),
            Some(at)
        );
    }
}

#[test]
fn bridge_fields_are_accepted_and_not_forwarded() {
    let chat = chat_with(
        json!({"store": false, "previous_response_id": null, "metadata": {"k": "v"},
        "prompt_cache_key": "k", "service_tier": "auto", "truncation": "auto", "background": false,
        "include": ["reasoning.encrypted_content"], "context_management": [{"type": "compaction"}],
        "client_metadata": {"a": "b"}, "max_tool_calls": 3, "conversation": null, "prompt": null}),
    );
    let keys: Vec<&str> = chat
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
}

#[test]
fn what_needs_openai_itself_is_400() {
    for (field, value) in [
        ("background", json!(true)),
        ("background_options", json!({"completion_window": "24h"})),
        ("conversation", json!("conv_1")),
        ("prompt", json!({"id": "pmpt_1"})),
    ] {
        let mut request = json!({"model": "m", "input": "Q"});
        request[field] = value;
        let (message, p) = refused(request);
        assert_eq!(p.as_deref(), Some(field), "{message}");
    }
}

#[test]
fn unknown_fields_and_unhonoured_includes_are_noted() {
    let c = ok(json!({"model": "m", "input": "Q", "stop": ["x"], "seed": 1,
        "include": ["message.output_text.logprobs", "file_search_call.results", "reasoning.encrypted_content"]}));
    assert_eq!(c.chat["logprobs"], true);
    assert_eq!(
        c.dropped,
        ["include:file_search_call.results", "seed", "stop"]
    );
}

#[test]
fn dropped_entries_are_short_printable_and_bounded() {
    let mut request = json!({"model": "m", "input": "Q"});
    for i in 0..100 {
        request[format!("x{i:03}")] = json!(1);
    }
    request["bad\nname\u{e9}"] = json!(1);
    request[format!("y{}", "z".repeat(500))] = json!(1);
    let c = ok(request);
    assert_eq!(c.dropped.len(), super::MAX_DROPPED + 1);
    assert_eq!(c.dropped.last().unwrap(), "...");
    let c = ok(json!({"model": "m", "input": "Q", "bad\nname\u{e9}": 1, "y": 1}));
    assert_eq!(c.dropped[0], "bad?name?");
}

#[test]
fn wrong_types_name_their_field() {
    for (field, value) in [
        ("temperature", json!("hot")),
        ("top_p", json!([])),
        ("max_output_tokens", json!(-1)),
        ("max_output_tokens", json!(1.5)),
        ("top_logprobs", json!(21)),
        ("stream", json!("yes")),
        ("store", json!(1)),
        ("user", json!(7)),
        ("reasoning", json!("high")),
        ("text", json!("json")),
        ("include", json!("x")),
        ("metadata", json!([])),
        ("parallel_tool_calls", json!("yes")),
        ("previous_response_id", json!(5)),
    ] {
        let mut request = json!({"model": "m", "input": "Q"});
        request[field] = value;
        assert_eq!(param(request).as_deref(), Some(field));
    }
}

/// The request Codex CLI sends by default (codex-rs `ResponsesApiRequest`): instructions, a
/// developer message, the user's message, function tools (one with empty properties), web
/// search, an MCP namespace, reasoning with summaries, encrypted reasoning asked back.
#[test]
fn codex_default_request() {
    let c = ok(json!({
        "model": "gpt-5-codex",
        "instructions": "You are Codex, a coding agent.",
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "<permissions>"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "fix the bug"}]},
        ],
        "tools": [
            {"type": "function", "name": "shell", "description": "Runs a command", "strict": false,
             "parameters": {"type": "object", "properties": {"command": {"type": "array", "items": {"type": "string"}}},
                            "required": ["command"], "additionalProperties": false}},
            {"type": "function", "name": "list_mcp_resources", "strict": false,
             "parameters": {"type": "object", "properties": {}}},
            {"type": "web_search"},
            {"type": "namespace", "name": "mcp__docs", "tools": [{"type": "function", "name": "search"}]},
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": false,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "store": false,
        "stream": true,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "0199-session",
        "text": {"verbosity": "medium"},
    }));
    assert_eq!(c.dropped, ["tools[2]:web_search", "tools[3]:namespace"]);
    assert_eq!(
        messages(&c),
        [
            json!({"role": "system", "content": "You are Codex, a coding agent."}),
            json!({"role": "system", "content": "<permissions>"}),
            json!({"role": "user", "content": "fix the bug"}),
        ]
    );
    let chat = &c.chat;
    assert_eq!(chat["tools"].as_array().unwrap().len(), 2);
    assert_eq!(
        chat["tools"][1]["function"]["parameters"],
        json!({"type": "object", "properties": {}})
    );
    assert_eq!(chat["tool_choice"], "auto");
    assert_eq!(chat["parallel_tool_calls"], false);
    assert_eq!(chat["reasoning_effort"], "medium");
    assert_eq!(chat["web_search_options"], json!({}));
    assert_eq!(chat["verbosity"], "medium");
    assert_eq!(chat["stream_options"], json!({"include_usage": true}));
    for key in [
        "store",
        "include",
        "prompt_cache_key",
        "reasoning",
        "instructions",
        "input",
    ] {
        assert!(chat.get(key).is_none(), "{key}");
    }
    assert_eq!(c.input_items.len(), 2);
}
