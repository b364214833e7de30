use serde_json::{Value, json};

use super::*;

fn chat(request: Value) -> Converted {
    to_chat(&request, &[]).unwrap()
}

#[test]
fn a_coding_agent_request_becomes_a_chat_request() {
    let request = json!({
        "model": "m", "max_tokens": 32000, "stream": true,
        "system": [{"type": "text", "text": "You are an agent."},
                   {"type": "text", "text": "Be careful.", "cache_control": {"type": "ephemeral"}}],
        "metadata": {"user_id": "u-42"},
        "thinking": {"type": "enabled", "budget_tokens": 31999},
        "context_management": {"edits": []},
        "tools": [{"name": "Bash", "description": "Run", "input_schema": {"type": "object"},
                   "defer_loading": true},
                  {"type": "web_search_20250305", "name": "web_search"}],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
        "stop_sequences": ["END"], "temperature": 0.3, "top_k": 5,
        "messages": [
            {"role": "user", "content": "List files"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Use ls.", "signature": "sig"},
                {"type": "text", "text": "Running."},
                {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"cmd": "ls"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1",
                 "content": [{"type": "text", "text": "a.txt"}], "is_error": false},
                {"type": "text", "text": "Now summarise."}]},
            {"role": "system", "content": "Environment: linux"}
        ]
    });
    let c = to_chat(&request, &["claude-code-20250219"]).unwrap();
    assert_eq!(
        c.chat["messages"],
        json!([
            {"role": "system", "content": "You are an agent.\n\nBe careful.\n\nEnvironment: linux"},
            {"role": "user", "content": "List files"},
            {"role": "assistant", "content": "Running.", "reasoning_content": "Use ls.",
             "reasoning_signature": "sig", "tool_calls": [{"id": "toolu_1", "type": "function",
                "function": {"name": "Bash", "arguments": "{\"cmd\":\"ls\"}"}}]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "a.txt"},
            {"role": "user", "content": "Now summarise."}
        ])
    );
    assert_eq!(c.chat["max_completion_tokens"], 32000);
    assert_eq!(c.chat["stream_options"], json!({"include_usage": true}));
    assert_eq!(c.chat["user"], "u-42");
    assert_eq!(c.chat["reasoning_effort"], "high");
    assert_eq!(c.chat["stop"], json!(["END"]));
    assert_eq!(c.chat["tool_choice"], "auto");
    assert_eq!(c.chat["parallel_tool_calls"], false);
    assert_eq!(c.chat["tools"].as_array().unwrap().len(), 1);
    assert_eq!(
        c.chat["tools"][0]["function"]["parameters"],
        json!({"type": "object"})
    );
    assert_eq!(
        c.dropped,
        [
            "cache_control",
            "tools.1:web_search_20250305",
            "top_k",
            "context_management",
            "beta:claude-code-20250219"
        ]
    );
}

#[test]
fn images_documents_and_tool_choices() {
    let c = chat(json!({"model": "m", "max_tokens": 10,
        "tools": [{"name": "f", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": "f"},
        "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA"}},
            {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVB"}},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain"}}]}]}));
    assert_eq!(
        c.chat["messages"][0]["content"],
        json!([
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}},
            {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVB"}},
            {"type": "text", "text": "plain"}
        ])
    );
    assert_eq!(c.dropped, [DOCUMENT]);
    assert_eq!(
        c.chat["tool_choice"],
        json!({"type": "function", "function": {"name": "f"}})
    );
    for (choice, want) in [("any", json!("required")), ("none", json!("none"))] {
        let c = chat(json!({"model": "m", "max_tokens": 10,
            "tools": [{"name": "f", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": choice}, "messages": [{"role": "user", "content": "x"}]}));
        assert_eq!(c.chat["tool_choice"], want);
    }
}

#[test]
fn adaptive_thinking_takes_the_effort() {
    let c = chat(
        json!({"model": "m", "max_tokens": 10, "thinking": {"type": "adaptive"},
        "output_config": {"effort": "medium"}, "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!(c.chat["reasoning_effort"], "medium");
    let c = chat(
        json!({"model": "m", "max_tokens": 10, "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!(c.chat["reasoning_effort"], "low");
}

#[test]
fn malformed_requests_are_400s_naming_the_field() {
    for (request, param) in [
        (
            json!({"max_tokens": 1, "messages": [{"role": "user", "content": "x"}]}),
            "model",
        ),
        (
            json!({"model": "m", "max_tokens": 1, "messages": []}),
            "messages",
        ),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
            "max_tokens",
        ),
        (
            json!({"model": "m", "max_tokens": 1, "messages": [{"role": "tool", "content": "x"}]}),
            "messages.0.role",
        ),
        (
            json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": 3}]}),
            "messages.0.content",
        ),
        (
            json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [
            {"type": "tool_result"}]}]}),
            "messages.0.content.0.tool_use_id",
        ),
        (
            json!({"model": "m", "max_tokens": 1, "tools": [{"name": "f", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "sometimes"}, "messages": [{"role": "user", "content": "x"}]}),
            "tool_choice.type",
        ),
        (
            json!({"model": "m", "max_tokens": 1, "thinking": {"type": "enabled"},
            "messages": [{"role": "user", "content": "x"}]}),
            "thinking.budget_tokens",
        ),
        (
            json!({"model": "m", "max_tokens": 1, "messages": [{"role": "system", "content": "only"}]}),
            "messages",
        ),
    ] {
        match to_chat(&request, &[]) {
            Err(ProxyError::BadRequest { param: Some(p), .. }) => assert_eq!(p, param, "{request}"),
            other => panic!("{request}: {other:?}"),
        }
    }
}
