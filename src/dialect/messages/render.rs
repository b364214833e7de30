//! A whole answer as one `message` object, and the pieces a stream shares with it: the stop
//! reason and the usage.

use serde_json::{Map, Value, json};

use super::{fresh_id, tool_id};
use crate::dialect::answer::{Answer, Finish, Usage};

/// The dialect's `stop_reason` for a resolved finish.
pub fn stop_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop => "end_turn",
        Finish::Length => "max_tokens",
        Finish::ToolCalls | Finish::FunctionCall => "tool_use",
        Finish::ContentFilter => "refusal",
    }
}

/// The usage object. The dialect counts cache reads apart from the other input tokens, where
/// the normalized prompt count holds them all.
pub fn usage_json(usage: &Usage) -> Value {
    let cached = usage.cached_tokens.unwrap_or(0);
    let prompt = usage.prompt_tokens.unwrap_or(0);
    json!({
        "input_tokens": prompt.saturating_sub(cached),
        "output_tokens": usage.completion_tokens.unwrap_or(0),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    })
}

/// A call's arguments as the `input` object: the JSON object they are, else `{}` (the dialect
/// has no place for arguments that are not an object).
pub fn input_of(arguments: Option<&str>) -> Value {
    match arguments.map(serde_json::from_str::<Value>) {
        Some(Ok(v @ Value::Object(_))) => v,
        _ => Value::Object(Map::new()),
    }
}

/// The `message` object of a whole answer: thinking first, then the text, then the tool calls.
pub fn render(answer: &Answer, model: &str) -> Value {
    let mut content = Vec::new();
    if answer.reasoning.is_some() || answer.reasoning_signature.is_some() {
        content.push(json!({
            "type": "thinking",
            "thinking": answer.reasoning.as_deref().unwrap_or_default(),
            "signature": answer.reasoning_signature.as_deref().unwrap_or_default(),
        }));
    }
    if let Some(text) = answer.text.as_deref().filter(|t| !t.is_empty()) {
        content.push(json!({"type": "text", "text": text}));
    }
    for call in &answer.tool_calls {
        content.push(json!({
            "type": "tool_use",
            "id": call.id.clone().unwrap_or_else(tool_id),
            "name": call.name,
            "input": input_of(call.arguments.as_deref()),
        }));
    }
    json!({
        "id": fresh_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(answer.resolved_finish()),
        "stop_sequence": null,
        "usage": usage_json(&answer.usage),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::answer::ToolCall;

    #[test]
    fn a_whole_answer_is_thinking_text_then_tool_uses() {
        let answer = Answer {
            text: Some("Checking.".into()),
            reasoning: Some("hmm".into()),
            reasoning_signature: Some("sig".into()),
            tool_calls: vec![
                ToolCall {
                    id: Some("call_1".into()),
                    name: "f".into(),
                    arguments: Some("{\"x\":1}".into()),
                },
                ToolCall {
                    id: None,
                    name: "g".into(),
                    arguments: Some("not json".into()),
                },
            ],
            finish: Some(Finish::Stop),
            usage: Usage {
                prompt_tokens: Some(10),
                completion_tokens: Some(4),
                cached_tokens: Some(3),
                reasoning_tokens: None,
            },
        };
        let m = render(&answer, "client-model");
        assert!(m["id"].as_str().unwrap().starts_with("msg_"));
        assert_eq!(m["model"], "client-model");
        assert_eq!(m["stop_reason"], "tool_use");
        let c = m["content"].as_array().unwrap();
        assert_eq!(
            c[0],
            json!({"type": "thinking", "thinking": "hmm", "signature": "sig"})
        );
        assert_eq!(c[1], json!({"type": "text", "text": "Checking."}));
        assert_eq!(c[2]["input"], json!({"x": 1}));
        assert_eq!(c[2]["id"], "call_1");
        assert_eq!(c[3]["input"], json!({}));
        assert!(c[3]["id"].as_str().unwrap().starts_with("toolu_"));
        assert_eq!(
            m["usage"],
            json!({"input_tokens": 7, "output_tokens": 4, "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 3})
        );
    }

    #[test]
    fn stop_reasons() {
        let mut a = Answer::default();
        for (finish, reason) in [
            (None, "end_turn"),
            (Some(Finish::Length), "max_tokens"),
            (Some(Finish::ContentFilter), "refusal"),
        ] {
            a.finish = finish;
            let m = render(&a, "m");
            assert_eq!(m["stop_reason"], reason);
            assert_eq!(m["content"], json!([]));
        }
    }
}
