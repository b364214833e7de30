//! Talking the Messages API to Rosetta: requests with the dialect's headers, and a stream's
//! events folded into the message they make, checking every invariant on the way (what the
//! official SDKs' stream accumulators rely on, and more).

use serde_json::{Value, json};

use super::support::{Resp, Streamed, request_with_headers, stream_with_headers};

/// The headers every Messages client sends.
pub const HEADERS: &[(&str, &str)] = &[("anthropic-version", "2023-06-01")];

pub async fn post_messages(url: &str, body: &Value) -> Resp {
    request_with_headers("POST", url, Some(body.to_string()), HEADERS).await
}

pub async fn stream_messages(url: &str, body: &Value) -> Streamed {
    stream_with_headers(url, body, HEADERS).await
}

/// The events of one stream, `(event name, data)`, checking that each name is its `type`.
pub fn events(s: &Streamed) -> Vec<Value> {
    assert_eq!(s.status, 200, "{}", s.text());
    assert!(
        s.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = s.text();
    assert!(!text.contains("[DONE]"), "a Messages stream has no [DONE]");
    let mut out = Vec::new();
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let mut event = None;
        let mut data = String::new();
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("event: ") {
                event = Some(v.to_string());
            } else if let Some(v) = line.strip_prefix("data: ") {
                data.push_str(v);
            }
        }
        let json: Value =
            serde_json::from_str(&data).unwrap_or_else(|e| panic!("bad data {data:?}: {e}"));
        assert_eq!(event.as_deref(), json["type"].as_str(), "{block}");
        out.push(json);
    }
    out
}

/// Folds a successful stream into its final message, as the SDKs' accumulators do, asserting
/// the order: `message_start` first, blocks started at dense indexes from 0 in order, deltas
/// only to the open block of their kind, each block stopped before the next starts, one
/// signature just before a thinking block's stop, `message_delta` then `message_stop` last.
pub fn fold(events: &[Value]) -> Value {
    assert_eq!(events[0]["type"], "message_start", "{events:?}");
    let mut message = events[0]["message"].clone();
    assert!(message["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(message["content"], json!([]));
    let mut content: Vec<Value> = Vec::new();
    let mut json_args: Vec<String> = Vec::new();
    let mut open: Option<usize> = None;
    let mut last_was_signature = false;
    let n = events.len();
    assert_eq!(events[n - 1]["type"], "message_stop", "{events:?}");
    assert_eq!(events[n - 2]["type"], "message_delta", "{events:?}");
    for e in &events[1..] {
        let kind = e["type"].as_str().unwrap();
        match kind {
            "ping" => {}
            "content_block_start" => {
                assert!(open.is_none(), "a block starts while another is open: {e}");
                let i = e["index"].as_u64().unwrap() as usize;
                assert_eq!(i, content.len(), "indexes dense from 0: {e}");
                content.push(e["content_block"].clone());
                json_args.push(String::new());
                open = Some(i);
            }
            "content_block_delta" => {
                let i = e["index"].as_u64().unwrap() as usize;
                assert_eq!(Some(i), open, "a delta to a block that is not open: {e}");
                assert!(!last_was_signature, "nothing after a signature: {e}");
                let d = &e["delta"];
                let block = &mut content[i];
                match (d["type"].as_str().unwrap(), block["type"].as_str().unwrap()) {
                    ("text_delta", "text") => {
                        let t = format!(
                            "{}{}",
                            block["text"].as_str().unwrap(),
                            d["text"].as_str().unwrap()
                        );
                        block["text"] = json!(t);
                    }
                    ("thinking_delta", "thinking") => {
                        let t = format!(
                            "{}{}",
                            block["thinking"].as_str().unwrap(),
                            d["thinking"].as_str().unwrap()
                        );
                        block["thinking"] = json!(t);
                    }
                    ("signature_delta", "thinking") => {
                        block["signature"] = d["signature"].clone();
                        last_was_signature = true;
                    }
                    ("input_json_delta", "tool_use") => {
                        json_args[i].push_str(d["partial_json"].as_str().unwrap());
                    }
                    other => panic!("delta {other:?} in the wrong block: {e}"),
                }
            }
            "content_block_stop" => {
                let i = e["index"].as_u64().unwrap() as usize;
                assert_eq!(Some(i), open, "{e}");
                if content[i]["type"] == "tool_use" && !json_args[i].is_empty() {
                    content[i]["input"] = serde_json::from_str(&json_args[i])
                        .unwrap_or_else(|err| panic!("arguments {:?}: {err}", json_args[i]));
                }
                assert!(content[i]["input"].is_object() || content[i]["type"] != "tool_use");
                open = None;
                last_was_signature = false;
            }
            "message_delta" => {
                assert!(open.is_none(), "message_delta with a block open");
                message["stop_reason"] = e["delta"]["stop_reason"].clone();
                message["stop_sequence"] = e["delta"]["stop_sequence"].clone();
                for (k, v) in e["usage"].as_object().unwrap() {
                    message["usage"][k] = v.clone();
                }
            }
            "message_stop" => {}
            other => panic!("unexpected event {other}: {e}"),
        }
    }
    message["content"] = Value::Array(content);
    message
}

/// The concatenated text blocks of a message.
pub fn text_of(message: &Value) -> String {
    message["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "text")
        .map(|b| b["text"].as_str().unwrap().to_string())
        .collect()
}

/// The checks every `message` object must pass.
pub fn assert_message(m: &Value) {
    assert_eq!(m["type"], "message", "{m}");
    assert_eq!(m["role"], "assistant", "{m}");
    assert!(m["id"].as_str().unwrap().starts_with("msg_"), "{m}");
    assert!(m["stop_reason"].is_string(), "{m}");
    for k in ["input_tokens", "output_tokens"] {
        assert!(m["usage"][k].is_u64(), "usage.{k}: {m}");
    }
    for block in m["content"].as_array().unwrap() {
        match block["type"].as_str().unwrap() {
            "text" => assert!(block["text"].is_string()),
            "thinking" => assert!(block["signature"].is_string(), "{block}"),
            "tool_use" => {
                assert!(block["input"].is_object(), "{block}");
                assert!(block["id"].is_string() && block["name"].is_string());
            }
            other => panic!("unexpected block {other}: {m}"),
        }
    }
}
