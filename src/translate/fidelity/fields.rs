//! The inbound dialects' field tables: the names the fidelity report may count under (a closed
//! set of OpenAI names: the metric's `param` label), the values that lose nothing when left
//! out, and how each dialect names a field of the canonical chat request.
//!
//! A dialect plugs in with a [`DialectFields`]: the report is always worked out on the
//! canonical request every mapping reads, then named in the client's own terms.

use std::borrow::Cow;

use serde_json::Value;

use crate::mapping::Op;

/// How a client dialect names what the canonical (chat) request calls `canonical`: a field
/// (`max_completion_tokens`), a field's value (`tool_choice=required`) or an element's type
/// (`messages[].content[].input_audio`).
pub trait DialectFields: Sync {
    fn name<'a>(&self, canonical: &'a str) -> Cow<'a, str>;
}

/// Chat completions, legacy completions and embeddings: the canonical names themselves.
pub struct Canonical;

impl DialectFields for Canonical {
    fn name<'a>(&self, canonical: &'a str) -> Cow<'a, str> {
        Cow::Borrowed(canonical)
    }
}

/// The Responses API: the fields its bridge turned into chat fields get their own names back.
pub struct Responses;

/// Canonical prefix -> the Responses API's, longest first.
const RESPONSES_NAMES: &[(&str, &str)] = &[
    (
        "messages[].content[].image_url",
        "input[].content[].input_image",
    ),
    ("messages[].content[].text", "input[].content[].input_text"),
    ("messages[].content[].file", "input[].content[].input_file"),
    ("messages", "input"),
    ("max_completion_tokens", "max_output_tokens"),
    ("reasoning_effort", "reasoning.effort"),
    ("response_format", "text.format"),
];

impl DialectFields for Responses {
    fn name<'a>(&self, canonical: &'a str) -> Cow<'a, str> {
        for (from, to) in RESPONSES_NAMES {
            if let Some(rest) = canonical.strip_prefix(from) {
                return Cow::Owned(format!("{to}{rest}"));
            }
        }
        Cow::Borrowed(canonical)
    }
}

/// The Messages API: the chat fields its bridge wrote get the Messages names back.
pub struct Messages;

/// Canonical prefix -> the Messages API's, longest first.
const MESSAGES_NAMES: &[(&str, &str)] = &[
    (
        "messages[].content[].image_url",
        "messages[].content[].image",
    ),
    ("messages[].content[].file", "messages[].content[].document"),
    ("max_completion_tokens", "max_tokens"),
    ("reasoning_effort", "thinking"),
    ("stop", "stop_sequences"),
    ("user", "metadata.user_id"),
];

impl DialectFields for Messages {
    fn name<'a>(&self, canonical: &'a str) -> Cow<'a, str> {
        for (from, to) in MESSAGES_NAMES {
            if let Some(rest) = canonical.strip_prefix(from) {
                return Cow::Owned(format!("{to}{rest}"));
            }
        }
        Cow::Borrowed(canonical)
    }
}

/// The field names of the dialect an operation's clients speak.
pub fn of(op: Op) -> &'static dyn DialectFields {
    match op {
        Op::Responses => &Responses,
        Op::Messages | Op::CountTokens => &Messages,
        _ => &Canonical,
    }
}

pub use crate::ops::params::{LABELS, OTHER};

/// The label of a report entry: the entry itself when known, else the field it starts with
/// when known, else [`OTHER`] (the position `LABELS.len()`).
pub fn label(entry: &str) -> usize {
    let find = |s: &str| LABELS.binary_search(&s).ok();
    find(entry)
        .or_else(|| {
            let end = entry.find(['[', '.', '=', ':']).unwrap_or(entry.len());
            find(&entry[..end])
        })
        .unwrap_or(LABELS.len())
}

/// Whether leaving field `key` with `value` out of an `op` request loses nothing: the engine
/// honours it itself (the model is how the call is routed, `stream_options` and
/// `encoding_format` are written by the engine), or it is OpenAI's default.
pub fn no_loss(op: Op, key: &str, value: &Value) -> bool {
    match (key, value) {
        ("model" | "stream_options", _) => true,
        ("encoding_format", _) => op == Op::Embeddings,
        ("stream" | "logprobs" | "store" | "echo", Value::Bool(false)) => true,
        ("parallel_tool_calls", Value::Bool(true)) => true,
        ("n" | "best_of", v) => v.as_u64() == Some(1),
        ("presence_penalty" | "frequency_penalty" | "top_logprobs", v) => v.as_f64() == Some(0.0),
        ("tool_choice", Value::String(s)) => s == "auto",
        ("service_tier", Value::String(s)) => s == "auto" || s == "default",
        ("response_format", Value::Object(o)) => {
            o.get("type").and_then(Value::as_str) == Some("text")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_sorted_so_they_can_be_searched() {
        assert!(LABELS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn an_entry_counts_under_itself_its_field_or_other() {
        assert_eq!(LABELS[label("logit_bias")], "logit_bias");
        assert_eq!(
            LABELS[label("tool_choice=required")],
            "tool_choice=required"
        );
        assert_eq!(LABELS[label("tool_choice=weird")], "tool_choice");
        assert_eq!(LABELS[label("tools[2]:namespace")], "tools");
        assert_eq!(label("x-my-own-field"), LABELS.len());
    }

    #[test]
    fn responses_names_its_own_fields() {
        assert_eq!(Responses.name("max_completion_tokens"), "max_output_tokens");
        assert_eq!(
            Responses.name("messages[].content[].image_url"),
            "input[].content[].input_image"
        );
        assert_eq!(
            Responses.name("response_format=json_object"),
            "text.format=json_object"
        );
        assert_eq!(Responses.name("seed"), "seed");
    }
}
