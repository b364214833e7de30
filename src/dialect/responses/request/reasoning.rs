//! Reasoning items as the reasoning of the next assistant message.
//!
//! Chat has no reasoning item; Rosetta carries its text as `reasoning_content` (what
//! reasoning upstreams return and LibreChat reads) and its `encrypted_content` as
//! `reasoning_signature`, so a mapping whose upstream signs its reasoning can send it back.

use serde_json::Value;

/// Reasoning waiting for, or carried by, an assistant message.
#[derive(Default)]
pub(super) struct Reasoning {
    /// The text, paragraphs joined by a blank line.
    pub text: String,
    /// The opaque signature an upstream needs back with the text.
    pub signature: Option<String>,
}

impl Reasoning {
    /// Adds `other` after this one: texts joined, the first signature kept.
    pub fn absorb(&mut self, other: Reasoning) {
        if !other.text.is_empty() {
            if !self.text.is_empty() {
                self.text.push_str("\n\n");
            }
            self.text.push_str(&other.text);
        }
        if self.signature.is_none() {
            self.signature = other.signature;
        }
    }

    /// A reasoning item's text and signature. The text is its `reasoning_text` content (what
    /// Rosetta itself returns), else its summaries; the signature is its `encrypted_content`.
    pub fn of(item: &Value) -> Reasoning {
        let texts = |key: &str, kind: &str| -> Vec<&str> {
            item.get(key)
                .and_then(Value::as_array)
                .map(|parts| {
                    parts
                        .iter()
                        .filter(|p| p.get("type").and_then(Value::as_str) == Some(kind))
                        .filter_map(|p| p.get("text").and_then(Value::as_str))
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut text = texts("content", "reasoning_text");
        if text.is_empty() {
            text = texts("summary", "summary_text");
        }
        Reasoning {
            text: text.join("\n\n"),
            signature: item
                .get("encrypted_content")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        }
    }
}
