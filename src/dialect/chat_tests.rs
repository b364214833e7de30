//! The chat dialect's tests: the stream invariants, and its exact bytes.

use super::*;
use crate::dialect::Emitter;
use crate::dialect::answer::{ToolCallPart, Usage};
use serde_json::Map;

/// A chat stream as the server drives it.
fn stream(kind: Kind, model: &str, include_usage: bool) -> Emitter<ChunkWriter> {
    Emitter::new(ChunkWriter::new(kind, model, include_usage))
}

/// The chat body and usage of a mapping's normalized response.
fn completion(model: &str, normalized: &Map<String, Value>) -> (Value, Usage) {
    let answer = Answer::from_normalized(normalized);
    (super::completion(&answer, model), answer.usage)
}

#[test]
fn huge_usage_counts_saturate_instead_of_overflowing() {
    let u = Usage {
        prompt_tokens: Some(u64::MAX),
        completion_tokens: Some(5),
        ..Usage::default()
    };
    assert_eq!(usage_json(&u)["total_tokens"], u64::MAX);
}

fn chunks(out: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(out)
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

#[test]
fn text_stream_invariants() {
    let mut w = stream(Kind::Chat, "m", true);
    let mut out = Vec::new();
    w.content(&mut out, "Hel");
    w.content(&mut out, "");
    w.content(&mut out, "lo");
    w.add_usage(Usage {
        prompt_tokens: Some(3),
        ..Default::default()
    });
    w.add_usage(Usage {
        completion_tokens: Some(2),
        ..Default::default()
    });
    w.set_finish(json!("stop"));
    w.finish(&mut out);
    w.content(&mut out, "late");
    let c = chunks(&out);
    assert_eq!(c.len(), 5);
    assert_eq!(
        c[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    assert_eq!(c[1]["choices"][0]["delta"], json!({"content": "Hel"}));
    assert_eq!(c[3]["choices"][0]["finish_reason"], "stop");
    assert_eq!(c[3]["choices"][0]["delta"], json!({}));
    assert_eq!(c[4]["choices"], json!([]));
    assert_eq!(c[4]["usage"]["total_tokens"], 5);
    assert!(
        c.iter()
            .all(|x| x["id"] == c[0]["id"] && x["created"] == c[0]["created"])
    );
    assert!(String::from_utf8_lossy(&out).ends_with("data: [DONE]\n\n"));
}

#[test]
fn tool_call_indexes_follow_keys_not_upstream_indexes() {
    let mut w = stream(Kind::Chat, "m", false);
    let mut out = Vec::new();
    let part = |v: Value| ToolCallPart::from_value(&v);
    w.content(&mut out, "Checking.");
    w.tool_call(
        &mut out,
        part(json!({"key": 1, "id": "toolu_a", "name": "get_weather"})),
    );
    w.tool_call(&mut out, part(json!({"key": 1, "arguments": "{\"ci"})));
    w.tool_call(
        &mut out,
        part(json!({"key": 3, "id": "toolu_b", "name": "get_time", "arguments": {"tz": "UTC"}})),
    );
    w.tool_call(&mut out, part(json!({"key": 1, "arguments": "ty\":1}"})));
    w.set_finish(json!("stop"));
    w.finish(&mut out);
    let c = chunks(&out);
    let tc: Vec<&Value> = c
        .iter()
        .filter_map(|x| x["choices"][0]["delta"].get("tool_calls"))
        .collect();
    assert_eq!(
        tc[0][0],
        json!({"index": 0, "id": "toolu_a", "type": "function", "function": {"name": "get_weather", "arguments": ""}})
    );
    assert_eq!(
        tc[1][0],
        json!({"index": 0, "function": {"arguments": "{\"ci"}})
    );
    assert_eq!(tc[2][0]["index"], 1);
    assert_eq!(
        tc[3][0],
        json!({"index": 1, "function": {"arguments": "{\"tz\":\"UTC\"}"}})
    );
    assert_eq!(tc[4][0]["index"], 0);
    assert_eq!(
        c.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );
    assert!(c.iter().all(|x| x.get("usage").is_none()));
}

#[test]
fn deltas_written_directly_are_what_json_would_write() {
    let w = ChunkWriter::new(Kind::Chat, "m", false);
    let bytes = |d: Delta<'_>| {
        let mut out = Vec::new();
        w.chunk(&mut out, d, None);
        out
    };
    for text in ["", "a \"quoted\" line\n", "\u{1}é\u{2028}"] {
        assert_eq!(
            bytes(Delta::Text("content", text)),
            bytes(Delta::Object(&json!({"content": text})))
        );
        assert_eq!(
            bytes(Delta::ToolArguments(7, text)),
            bytes(Delta::Object(
                &json!({"tool_calls": [{"index": 7, "function": {"arguments": text}}]})
            ))
        );
    }
}

#[test]
fn failure_is_an_error_object_without_done() {
    let mut w = stream(Kind::Chat, "m", true);
    let mut out = Vec::new();
    w.content(&mut out, "partial");
    w.fail(
        &mut out,
        &ProxyError::UpstreamStreamError {
            message: "Overloaded".into(),
            kind: Some("overloaded_error".into()),
            code: None,
        },
    );
    w.finish(&mut out);
    let text = String::from_utf8_lossy(&out);
    assert!(!text.contains("[DONE]"));
    assert!(!text.contains("finish_reason\":\"stop"));
    assert_eq!(
        chunks(&out).last().unwrap()["error"]["type"],
        "overloaded_error"
    );
}

#[test]
fn legacy_text_stream() {
    let mut w = stream(Kind::Text, "m", false);
    let mut out = Vec::new();
    w.content(&mut out, "Ray");
    w.reasoning(&mut out, "hidden");
    w.set_finish(json!("length"));
    w.finish(&mut out);
    let c = chunks(&out);
    assert_eq!(c.len(), 2);
    assert_eq!(c[0]["object"], "text_completion");
    assert!(c[0]["id"].as_str().unwrap().starts_with("cmpl-"));
    assert_eq!(
        c[0]["choices"][0],
        json!({"text": "Ray", "index": 0, "logprobs": null, "finish_reason": null})
    );
    assert_eq!(c[1]["choices"][0]["finish_reason"], "length");
    assert_eq!(c[1]["choices"][0]["text"], "");
}

#[test]
fn completion_object() {
    let n = json!({"content": ["a", "b"], "tool_calls": [{"name": "f", "arguments": {"x": 1}}], "finish_reason": "stop",
        "usage": {"prompt_tokens": 3.0, "completion_tokens": 4, "cached_tokens": 1}});
    let (c, u) = completion("m", n.as_object().unwrap());
    assert_eq!(c["object"], "chat.completion");
    assert_eq!(c["choices"][0]["message"]["content"], "ab");
    assert_eq!(
        c["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
        "{\"x\":1}"
    );
    assert!(
        c["choices"][0]["message"]["tool_calls"][0]["id"]
            .as_str()
            .unwrap()
            .starts_with("call_")
    );
    assert_eq!(c["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(
        c["usage"],
        json!({"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7, "prompt_tokens_details": {"cached_tokens": 1}})
    );
    assert_eq!(u.prompt_tokens, Some(3));
    let (c, _) = completion("m", json!({"finish_reason": "weird"}).as_object().unwrap());
    assert_eq!(c["choices"][0]["finish_reason"], "stop");
    assert_eq!(c["choices"][0]["message"]["content"], Value::Null);
}

/// The chat dialect's bytes for scripted event sequences, captured from `ChunkWriter` before the
/// dialect-writer refactor: the writer that replaces it must produce exactly these.
mod captured_bytes {
    use super::*;
    use crate::dialect::Emitter;
    use crate::dialect::answer::{ToolCallPart, Usage};
    use serde_json::Map;

    fn stream(kind: Kind, model: &str, include_usage: bool) -> Emitter<ChunkWriter> {
        Emitter::new(ChunkWriter::new(kind, model, include_usage))
    }

    fn completion(model: &str, normalized: &Map<String, Value>) -> (Value, Usage) {
        let answer = Answer::from_normalized(normalized);
        (super::super::completion(&answer, model), answer.usage)
    }

    fn text_completion(model: &str, normalized: &Map<String, Value>) -> (Value, Usage) {
        let answer = Answer::from_normalized(normalized);
        (super::super::text_completion(&answer, model), answer.usage)
    }

    /// The stream with its one random id and clock time replaced by `HEAD`.
    fn masked(out: &[u8]) -> String {
        let s = String::from_utf8(out.to_vec()).unwrap();
        let start = s.find("{\"id\":").unwrap();
        let end = s[start..].find("\"model\":").unwrap() + start;
        let head = s[start..end].to_string();
        s.replace(&head, "HEAD")
    }

    fn part(v: Value) -> ToolCallPart {
        ToolCallPart::from_value(&v)
    }

    fn err() -> ProxyError {
        ProxyError::UpstreamStreamError {
            message: "Overloaded".into(),
            kind: Some("overloaded_error".into()),
            code: None,
        }
    }

    pub fn chat_script(w: &mut Emitter<ChunkWriter>, out: &mut Vec<u8>) {
        w.reasoning(out, "think \"hard\"");
        w.content(out, "");
        w.content(out, "Hi\né");
        w.tool_call(out, part(json!({"key": 0, "arguments": "orphan"})));
        w.tool_call(
            out,
            part(json!({"key": 1, "id": "toolu_a", "name": "get_weather"})),
        );
        w.tool_call(out, part(json!({"key": 1, "arguments": "{\"ci"})));
        w.tool_call(
            out,
            part(json!({"key": 3, "id": "toolu_b", "name": "f", "arguments": {"tz": "UTC"}})),
        );
        w.tool_call(out, part(json!({"arguments": "ty\":1}"})));
        w.tool_call(out, part(json!({"key": 1, "arguments": ""})));
        w.add_usage(Usage {
            prompt_tokens: Some(3),
            cached_tokens: Some(1),
            ..Default::default()
        });
        w.set_finish(json!("stop"));
        w.add_usage(Usage {
            completion_tokens: Some(2),
            reasoning_tokens: Some(1),
            ..Default::default()
        });
        w.finish(out);
        w.content(out, "late");
        w.fail(out, &err());
    }

    /// Splits a stream into its events, checking the masked head's shape.
    fn frames(out: &[u8], id_prefix: &str, object: &str) -> Vec<String> {
        let s = String::from_utf8(out.to_vec()).unwrap();
        let start = s.find("{\"id\":").unwrap();
        let head = &s[start..s[start..].find("\"model\":").unwrap() + start];
        let rest = head
            .strip_prefix(&format!("{{\"id\":\"{id_prefix}"))
            .unwrap();
        let (id, rest) = rest.split_at(24);
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric()), "{head}");
        let rest = rest
            .strip_prefix(&format!("\",\"object\":\"{object}\",\"created\":"))
            .unwrap();
        let secs = rest.strip_suffix(',').unwrap();
        assert!(secs.parse::<u64>().is_ok(), "{head}");
        assert!(s.ends_with("\n\n"));
        masked(out)
            .split("\n\n")
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn chat_stream_bytes() {
        let mut w = stream(Kind::Chat, "m\"1", true);
        let mut out = Vec::new();
        chat_script(&mut w, &mut out);
        let expected = [
            r#"data: HEAD"model":"m\"1","choices":[{"index":0,"delta":{"content":"","role":"assistant"},"logprobs":null,"finish_reason":null}]}"#,
            r#"data: HEAD"model":"m\"1","choices":[{"index":0,"delta":{"reasoning_content":"think \"hard\""},"logprobs":null,"finish_reason":null}]}"#,
            r#"data: HEAD"model":"m\"1","choices":[{"index":0,"delta":{"content":"Hi\né"},"logprobs":null,"finish_reason":null}]}"#,
            r#"data: HEAD"model":"m\"1","choices":[{"index":0,"delta":{"tool_calls":[{"function":{"arguments":"","name":"get_weather"},"id":"toolu_a","index":0,"type":"function"}]},"logprobs":null,"finish_reason":null}]}"#,
            r#"data: HEAD"model":"m\"1","choices":[{"index":0,"delta":{"tool_calls":[{"function":{"arguments":"{\"ci"},"index":0}]},"logprobs":null,"finish_reason":null}]}"#,
            r#"data: HEAD"model":"m\"1","choices":[{"index":0,"delta":{"tool_calls":[{"function":{"arguments":"","name":"f"},"id":"toolu_b","index":1,"type":"function"}]},"logprobs":null,"finish_reason":null}]}"#,
            r#"data: HEAD"model":"m\"1","choices":[{"index":0,"delta":{"tool_calls":[{"function":{"arguments":"{\"tz\":\"UTC\"}"},"index":1}]},"logprobs":null,"finish_reason":null}]}"#,
            r#"data: HEAD"model":"m\"1","choices":[{"index":0,"delta":{"tool_calls":[{"function":{"arguments":"ty\":1}"},"index":1}]},"logprobs":null,"finish_reason":null}]}"#,
            r#"data: HEAD"model":"m\"1","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}]}"#,
            r#"data: HEAD"model":"m\"1","choices":[],"usage":{"completion_tokens":2,"completion_tokens_details":{"reasoning_tokens":1},"prompt_tokens":3,"prompt_tokens_details":{"cached_tokens":1},"total_tokens":5}}"#,
            r#"data: [DONE]"#,
        ];
        assert_eq!(frames(&out, "chatcmpl-", "chat.completion.chunk"), expected);
    }

    #[test]
    fn text_stream_bytes() {
        let mut w = stream(Kind::Text, "m", true);
        let mut out = Vec::new();
        chat_script(&mut w, &mut out);
        let expected = [
            r#"data: HEAD"model":"m","choices":[{"text":"Hi\né","index":0,"logprobs":null,"finish_reason":null}]}"#,
            r#"data: HEAD"model":"m","choices":[{"text":"","index":0,"logprobs":null,"finish_reason":"stop"}]}"#,
            r#"data: HEAD"model":"m","choices":[],"usage":{"completion_tokens":2,"completion_tokens_details":{"reasoning_tokens":1},"prompt_tokens":3,"prompt_tokens_details":{"cached_tokens":1},"total_tokens":5}}"#,
            r#"data: [DONE]"#,
        ];
        assert_eq!(frames(&out, "cmpl-", "text_completion"), expected);
    }

    #[test]
    fn failed_and_empty_stream_bytes() {
        let mut w = stream(Kind::Chat, "m", false);
        let mut out = Vec::new();
        w.content(&mut out, "partial");
        w.fail(&mut out, &err());
        w.finish(&mut out);
        let expected = [
            r#"data: HEAD"model":"m","choices":[{"index":0,"delta":{"content":"","role":"assistant"},"logprobs":null,"finish_reason":null}]}"#,
            r#"data: HEAD"model":"m","choices":[{"index":0,"delta":{"content":"partial"},"logprobs":null,"finish_reason":null}]}"#,
            r#"data: {"error":{"code":null,"message":"Overloaded","param":null,"type":"overloaded_error"}}"#,
        ];
        assert_eq!(frames(&out, "chatcmpl-", "chat.completion.chunk"), expected);
        let mut w = stream(Kind::Chat, "m", false);
        let mut out = Vec::new();
        w.set_finish(json!("weird"));
        w.finish(&mut out);
        let expected = [
            r#"data: HEAD"model":"m","choices":[{"index":0,"delta":{"content":"","role":"assistant"},"logprobs":null,"finish_reason":null}]}"#,
            r#"data: HEAD"model":"m","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}"#,
            r#"data: [DONE]"#,
        ];
        assert_eq!(frames(&out, "chatcmpl-", "chat.completion.chunk"), expected);
    }

    /// A whole answer's JSON text, without its random id and clock time (checked for shape).
    fn whole(mut body: Value, id_prefix: &str) -> String {
        let obj = body.as_object_mut().unwrap();
        let id = obj.remove("id").unwrap();
        assert!(id.as_str().unwrap().starts_with(id_prefix));
        assert!(obj.remove("created").unwrap().is_u64());
        body.to_string()
    }

    #[test]
    fn whole_answer_bytes() {
        let n = json!({"content": ["Hi", null, "!"], "reasoning": "mm",
            "tool_calls": [{"id": "t1", "name": "f", "arguments": {"x": 1}}, {"name": "g", "arguments": ""},
                {"arguments": "no name"}],
            "finish_reason": "length", "usage": {"prompt_tokens": 3.4, "completion_tokens": "4", "reasoning_tokens": 2}});
        let n = n.as_object().unwrap();
        let (body, usage) = completion("m", n);
        let mut body = body;
        let generated = body["choices"][0]["message"]["tool_calls"][1]["id"].take();
        assert!(generated.as_str().unwrap().starts_with("call_"));
        assert_eq!(
            whole(body, "chatcmpl-"),
            r#"{"choices":[{"finish_reason":"length","index":0,"logprobs":null,"message":{"content":"Hi!","reasoning_content":"mm","refusal":null,"role":"assistant","tool_calls":[{"function":{"arguments":"{\"x\":1}","name":"f"},"id":"t1","type":"function"},{"function":{"arguments":"","name":"g"},"id":null,"type":"function"}]}}],"model":"m","object":"chat.completion","usage":{"completion_tokens":4,"completion_tokens_details":{"reasoning_tokens":2},"prompt_tokens":3,"total_tokens":7}}"#
        );
        assert_eq!(usage.prompt_tokens, Some(3));
        let (body, _) = text_completion("m", n);
        assert_eq!(
            whole(body, "cmpl-"),
            r#"{"choices":[{"finish_reason":"length","index":0,"logprobs":null,"text":"Hi!"}],"model":"m","object":"text_completion","usage":{"completion_tokens":4,"completion_tokens_details":{"reasoning_tokens":2},"prompt_tokens":3,"total_tokens":7}}"#
        );
        let (body, _) = completion("m", &Map::new());
        assert_eq!(
            whole(body, "chatcmpl-"),
            r#"{"choices":[{"finish_reason":"stop","index":0,"logprobs":null,"message":{"content":null,"refusal":null,"role":"assistant"}}],"model":"m","object":"chat.completion","usage":{"completion_tokens":0,"prompt_tokens":0,"total_tokens":0}}"#
        );
    }
}
