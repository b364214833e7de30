//! The normalized answer: what a mapping's `response` and `stream` rules produce, before any
//! client dialect sees it.
//!
//! A stream is a sequence of typed events, delivered to a [`crate::dialect::StreamWriter`]:
//! text and reasoning deltas, tool-call starts and argument pieces, then one finish (with the
//! usage) or one failure. A whole answer is the same content folded into one [`Answer`], built
//! from the mapping's normalized fields in one place ([`Answer::from_normalized`]);
//! [`crate::dialect::Fold`] builds the same struct from a stream's events.

use serde_json::{Map, Value};

/// Why an answer ended: a closed set, whatever the upstream wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    Stop,
    Length,
    ToolCalls,
    ContentFilter,
    /// The legacy single-function call.
    FunctionCall,
}

impl Finish {
    /// A mapping's `finish_reason` value; anything outside the set is `Stop`.
    pub fn from_value(v: &Value) -> Finish {
        match v.as_str() {
            Some("length") => Finish::Length,
            Some("tool_calls") => Finish::ToolCalls,
            Some("content_filter") => Finish::ContentFilter,
            Some("function_call") => Finish::FunctionCall,
            _ => Finish::Stop,
        }
    }

    /// The finish the upstream stated (`Stop` when it stated none), with `ToolCalls` over
    /// `Stop` when the answer holds tool calls.
    pub fn resolve(stated: Option<Finish>, had_tool_calls: bool) -> Finish {
        match stated.unwrap_or(Finish::Stop) {
            Finish::Stop if had_tool_calls => Finish::ToolCalls,
            other => other,
        }
    }

    /// The name OpenAI uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Finish::Stop => "stop",
            Finish::Length => "length",
            Finish::ToolCalls => "tool_calls",
            Finish::ContentFilter => "content_filter",
            Finish::FunctionCall => "function_call",
        }
    }
}

/// Token counts, merged field by field as they arrive.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Usage {
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub cached_tokens: Option<u64>,
    pub reasoning_tokens: Option<u64>,
}

impl Usage {
    /// Reads a normalized usage object; floats are rounded, since counts are integers.
    pub fn from_value(v: &Value) -> Usage {
        let n = |k: &str| {
            v.get(k).and_then(|x| match x {
                Value::Number(n) => n
                    .as_u64()
                    .or_else(|| n.as_f64().map(|f| f.max(0.0).round() as u64)),
                Value::String(s) => s
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .map(|f| f.max(0.0).round() as u64),
                _ => None,
            })
        };
        Usage {
            prompt_tokens: n("prompt_tokens"),
            completion_tokens: n("completion_tokens"),
            cached_tokens: n("cached_tokens"),
            reasoning_tokens: n("reasoning_tokens"),
        }
    }

    /// Later values win, field by field (upstreams send cumulative counts).
    pub fn merge(&mut self, other: Usage) {
        self.prompt_tokens = other.prompt_tokens.or(self.prompt_tokens);
        self.completion_tokens = other.completion_tokens.or(self.completion_tokens);
        self.cached_tokens = other.cached_tokens.or(self.cached_tokens);
        self.reasoning_tokens = other.reasoning_tokens.or(self.reasoning_tokens);
    }

    pub fn is_empty(&self) -> bool {
        *self == Usage::default()
    }
}

/// One object of a mapping's `tool_calls` output: a call's start (with a name), a piece of its
/// arguments, or both. `key` is the upstream's own handle for the call.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ToolCallPart {
    pub key: Option<String>,
    pub id: Option<String>,
    pub name: Option<String>,
    pub arguments: Option<String>,
}

impl ToolCallPart {
    /// Reads `{key?, id?, name?, arguments?}`; object arguments become JSON strings.
    pub fn from_value(v: &Value) -> ToolCallPart {
        let s = |k: &str| v.get(k).filter(|x| !x.is_null()).map(to_text);
        ToolCallPart {
            key: s("key"),
            id: s("id"),
            name: s("name"),
            arguments: v
                .get("arguments")
                .filter(|x| !x.is_null())
                .map(|a| match a {
                    Value::String(t) => t.clone(),
                    other => other.to_string(),
                }),
        }
    }

    /// Parts from a single object or an array of them.
    pub fn list(v: &Value) -> Vec<ToolCallPart> {
        match v {
            Value::Array(items) => items
                .iter()
                .filter(|i| i.is_object())
                .map(Self::from_value)
                .collect(),
            Value::Object(_) => vec![Self::from_value(v)],
            _ => Vec::new(),
        }
    }
}

/// Normalized content: a string, or an array of strings joined.
pub fn text_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Null => None,
        Value::Array(items) => {
            let s: String = items.iter().filter(|i| !i.is_null()).map(to_text).collect();
            (!s.is_empty()).then_some(s)
        }
        other => Some(to_text(other)).filter(|s| !s.is_empty()),
    }
}

/// A normalized reasoning signature: a string (any other value as its text), or of an array
/// the last non-empty item. A signature is one opaque token, never pieces: when several come (one
/// per thinking block, or per stream event), the last one wins.
pub fn signature_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Null => None,
        Value::Array(items) => items.iter().rev().find_map(|i| signature_of(Some(i))),
        other => Some(to_text(other)).filter(|s| !s.is_empty()),
    }
}

/// A whole tool call. `id` is the upstream's (the dialect makes one when it is absent);
/// `arguments` is the JSON text, absent when the upstream gave none.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: Option<String>,
    pub name: String,
    pub arguments: Option<String>,
}

/// A whole answer, in no dialect.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Answer {
    pub text: Option<String>,
    pub reasoning: Option<String>,
    /// The opaque signature of the reasoning, where the upstream gives one.
    pub reasoning_signature: Option<String>,
    pub tool_calls: Vec<ToolCall>,
    /// The finish the upstream stated (see [`Finish::resolve`]).
    pub finish: Option<Finish>,
    pub usage: Usage,
}

impl Answer {
    /// The answer in a mapping's normalized `response` fields. Tool calls without a name are
    /// left out.
    pub fn from_normalized(normalized: &Map<String, Value>) -> Answer {
        Answer {
            text: text_of(normalized.get("content")),
            reasoning: text_of(normalized.get("reasoning")),
            reasoning_signature: signature_of(normalized.get("reasoning_signature")),
            tool_calls: normalized
                .get("tool_calls")
                .map(ToolCallPart::list)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|c| {
                    Some(ToolCall {
                        name: c.name?,
                        id: c.id,
                        arguments: c.arguments,
                    })
                })
                .collect(),
            finish: normalized.get("finish_reason").map(Finish::from_value),
            usage: normalized
                .get("usage")
                .map(Usage::from_value)
                .unwrap_or_default(),
        }
    }

    /// The finish a client is told, tool calls included.
    pub fn resolved_finish(&self) -> Finish {
        Finish::resolve(self.finish, !self.tool_calls.is_empty())
    }
}

/// A JSON value as text: a string as itself, anything else as its JSON (the mapping language's
/// `to_text`, written again here so the answer does not depend on the mapping language).
fn to_text(v: &Value) -> String {
    match v {
        Value::String(t) => t.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finish_is_a_closed_set_and_tool_calls_win_over_stop() {
        for name in [
            "stop",
            "length",
            "tool_calls",
            "content_filter",
            "function_call",
        ] {
            assert_eq!(Finish::from_value(&json!(name)).as_str(), name);
        }
        assert_eq!(Finish::from_value(&json!("end_turn")), Finish::Stop);
        assert_eq!(Finish::from_value(&json!(3)), Finish::Stop);
        assert_eq!(Finish::resolve(None, false), Finish::Stop);
        assert_eq!(Finish::resolve(None, true), Finish::ToolCalls);
        assert_eq!(Finish::resolve(Some(Finish::Length), true), Finish::Length);
    }

    #[test]
    fn a_signature_is_one_token_and_the_last_one_wins() {
        assert_eq!(
            signature_of(Some(&json!("sig-1"))).as_deref(),
            Some("sig-1")
        );
        assert_eq!(
            signature_of(Some(&json!(["sig-1", "sig-2", "", null]))).as_deref(),
            Some("sig-2")
        );
        assert_eq!(signature_of(Some(&json!(7))).as_deref(), Some("7"));
        for none in [json!(""), json!(null), json!([]), json!(["", null])] {
            assert_eq!(signature_of(Some(&none)), None, "{none}");
        }
        assert_eq!(signature_of(None), None);
        let whole = Answer::from_normalized(
            json!({"reasoning": "hmm", "reasoning_signature": ["a", "b"]})
                .as_object()
                .unwrap(),
        );
        assert_eq!(whole.reasoning_signature.as_deref(), Some("b"));
        let unsigned = Answer::from_normalized(json!({"reasoning": "hmm"}).as_object().unwrap());
        assert_eq!(unsigned.reasoning_signature, None);
    }
}
