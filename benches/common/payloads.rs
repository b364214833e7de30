//! The payloads the transform benchmarks and `examples/transform_loop.rs` share: the shipped
//! mappings, a 1 KB chat, whole answers and streams in each upstream's wire format.

use std::path::Path;
use std::sync::Arc;

use rosetta::mapping::{Mapping, load_dir};
use serde_json::{Value, json};

pub fn mappings() -> Vec<Arc<Mapping>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
    load_dir(&dir, &|_| None).expect("the shipped mappings load")
}

pub fn mapping(all: &[Arc<Mapping>], name: &str) -> Arc<Mapping> {
    Arc::clone(
        all.iter()
            .find(|m| m.name == name)
            .expect("shipped mapping"),
    )
}

/// About 1 KB: a system message and three turns.
pub fn chat(model: &str, stream: bool) -> Value {
    let words = |n: usize, w: &str| vec![w; n].join(" ");
    json!({
        "model": model,
        "stream": stream,
        "temperature": 0.7,
        "max_tokens": 1024,
        "messages": [
            {"role": "system", "content": format!("You are a helpful assistant. {}", words(20, "Be brief."))},
            {"role": "user", "content": words(30, "hello")},
            {"role": "assistant", "content": words(30, "answer")},
            {"role": "user", "content": words(30, "question")},
        ],
    })
}

/// An Anthropic answer and a Gemini answer of ~200 words.
pub fn anthropic_answer() -> Vec<u8> {
    json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
           "content": [{"type": "text", "text": vec!["word"; 200].join(" ")}],
           "stop_reason": "end_turn", "stop_sequence": null,
           "usage": {"input_tokens": 250, "output_tokens": 200}})
    .to_string()
    .into_bytes()
}

pub fn gemini_answer() -> Vec<u8> {
    json!({"candidates": [{"content": {"role": "model", "parts": [{"text": vec!["word"; 200].join(" ")}]},
                           "finishReason": "STOP", "index": 0}],
           "usageMetadata": {"promptTokenCount": 250, "candidatesTokenCount": 200, "totalTokenCount": 450},
           "modelVersion": "gemini-2.5-flash"})
    .to_string()
    .into_bytes()
}

/// 64 Anthropic text events (start, 62 deltas, stop) as SSE frames.
pub fn anthropic_stream() -> Vec<Vec<u8>> {
    let ev = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n").into_bytes();
    let mut out = vec![ev(
        "message_start",
        json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
               "model": "claude-sonnet-4-5", "content": [], "stop_reason": null, "stop_sequence": null,
               "usage": {"input_tokens": 250, "output_tokens": 1}}}),
    )];
    out.push(ev(
        "content_block_start",
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    ));
    for i in 0..59 {
        out.push(ev(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": format!("word{i} ")}}),
        ));
    }
    out.push(ev(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    out.push(ev(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 60}}),
    ));
    out.push(ev("message_stop", json!({"type": "message_stop"})));
    out
}

/// An Anthropic tool-call stream: a tool_use block with 20 argument pieces.
pub fn anthropic_tool_stream() -> Vec<Vec<u8>> {
    let ev = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n").into_bytes();
    let mut out = vec![ev(
        "message_start",
        json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
               "model": "claude-sonnet-4-5", "content": [], "stop_reason": null, "stop_sequence": null,
               "usage": {"input_tokens": 250, "output_tokens": 1}}}),
    )];
    out.push(ev(
        "content_block_start",
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}}),
    ));
    for i in 0..20 {
        out.push(ev(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": format!("{{\"k{i}\":")}}),
        ));
    }
    out.push(ev(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    out.push(ev(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 30}}),
    ));
    out.push(ev("message_stop", json!({"type": "message_stop"})));
    out
}

/// 64 Gemini SSE chunks (`alt=sse`), the last with the finish reason and usage.
pub fn gemini_stream() -> Vec<Vec<u8>> {
    (0..64)
        .map(|i| {
            let mut c = json!({"candidates": [{"content": {"role": "model", "parts": [{"text": format!("word{i} ")}]}, "index": 0}],
                               "modelVersion": "gemini-2.5-flash"});
            if i == 63 {
                c["candidates"][0]["finishReason"] = json!("STOP");
                c["usageMetadata"] = json!({"promptTokenCount": 250, "candidatesTokenCount": 64, "totalTokenCount": 314});
            }
            format!("data: {c}\r\n\r\n").into_bytes()
        })
        .collect()
}
