//! A writer of no dialect: it folds a stream's events into the whole [`Answer`] they make, the
//! struct a whole answer is built as ([`Answer::from_normalized`]).

use super::StreamWriter;
use crate::dialect::answer::{Answer, Finish, ToolCall, Usage};
use crate::error::ProxyError;

/// A [`StreamWriter`] that writes nothing and folds the events into an [`Answer`]; `failed`
/// holds the error a failed stream ended with.
#[derive(Debug, Default)]
pub struct Fold {
    pub answer: Answer,
    pub failed: Option<ProxyError>,
}

impl StreamWriter for Fold {
    fn text(&mut self, _out: &mut Vec<u8>, text: &str) {
        self.answer.text.get_or_insert_default().push_str(text);
    }

    fn reasoning(&mut self, _out: &mut Vec<u8>, text: &str, signature: Option<&str>) {
        if !text.is_empty() {
            self.answer.reasoning.get_or_insert_default().push_str(text);
        }
        if let Some(s) = signature {
            self.answer.reasoning_signature = Some(s.to_string());
        }
    }

    fn tool_start(&mut self, _out: &mut Vec<u8>, index: usize, id: Option<&str>, name: &str) {
        debug_assert_eq!(index, self.answer.tool_calls.len());
        self.answer.tool_calls.push(ToolCall {
            id: id.map(str::to_string),
            name: name.to_string(),
            arguments: None,
        });
    }

    fn tool_arguments(&mut self, _out: &mut Vec<u8>, index: usize, piece: &str) {
        if let Some(call) = self.answer.tool_calls.get_mut(index) {
            call.arguments.get_or_insert_default().push_str(piece);
        }
    }

    fn finish(&mut self, _out: &mut Vec<u8>, stated: Option<Finish>, usage: &Usage) {
        self.answer.finish = stated;
        self.answer.usage = *usage;
    }

    fn fail(&mut self, _out: &mut Vec<u8>, err: &ProxyError) {
        self.failed = Some(err.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::answer::ToolCallPart;
    use crate::dialect::{Dialect, Emitter};
    use serde_json::{Value, json};

    /// The content of `normalized`, as a stream's emissions would bring it, piece by piece.
    fn folded(script: impl FnOnce(&mut Emitter<Fold>, &mut Vec<u8>)) -> Fold {
        let mut e = Emitter::new(Fold::default());
        let mut out = Vec::new();
        script(&mut e, &mut out);
        assert!(out.is_empty(), "folding writes nothing");
        e.writer
    }

    #[test]
    fn folding_a_stream_equals_the_whole_answer_for_the_same_content() {
        let normalized = json!({
            "content": ["Hel", "lo"], "reasoning": "Let me see.", "reasoning_signature": "sig-2",
            "tool_calls": [{"id": "t1", "name": "f", "arguments": {"x": 1}},
                           {"name": "g"}, {"arguments": "no name: left out"}],
            "finish_reason": "stop",
            "usage": {"prompt_tokens": 3, "completion_tokens": 4, "cached_tokens": 1, "reasoning_tokens": 2},
        });
        let whole = Answer::from_normalized(normalized.as_object().unwrap());
        let fold = folded(|e, out| {
            let part = |v: Value| ToolCallPart::from_value(&v);
            e.reasoning(out, "Let me ");
            e.reasoning_signature(out, "sig-1");
            e.reasoning(out, "see.");
            e.reasoning_signature(out, "");
            e.reasoning_signature(out, "sig-2");
            e.content(out, "Hel");
            e.content(out, "");
            e.content(out, "lo");
            e.tool_call(out, part(json!({"arguments": "before any call: dropped"})));
            e.tool_call(out, part(json!({"key": 0, "id": "t1", "name": "f"})));
            e.tool_call(out, part(json!({"key": 0, "arguments": "{\"x\""})));
            e.tool_call(out, part(json!({"key": 7, "name": "g"})));
            e.tool_call(out, part(json!({"key": 0, "arguments": ":1}"})));
            e.add_usage(Usage::from_value(
                &json!({"prompt_tokens": 3, "cached_tokens": 1}),
            ));
            e.set_finish(json!("stop"));
            e.add_usage(Usage::from_value(
                &json!({"completion_tokens": 4, "reasoning_tokens": 2}),
            ));
            e.finish(out);
            e.content(out, "after the end: ignored");
        });
        assert!(fold.failed.is_none());
        assert_eq!(fold.answer, whole);
        assert_eq!(whole.reasoning_signature.as_deref(), Some("sig-2"));
        assert_eq!(whole.resolved_finish(), Finish::ToolCalls);
        assert_eq!(whole.tool_calls[1].arguments, None);
        // The same answer renders the same, whichever path built it.
        let strip = |mut v: Value| {
            v.as_object_mut().unwrap().remove("id");
            v.as_object_mut().unwrap().remove("created");
            v["choices"][0]["message"]["tool_calls"][1]
                .as_object_mut()
                .unwrap()
                .remove("id");
            v
        };
        assert_eq!(
            strip(Dialect::Chat.render(&fold.answer, "m")),
            strip(Dialect::Chat.render(&whole, "m"))
        );
    }

    #[test]
    fn a_signature_alone_is_no_reasoning_text() {
        let fold = folded(|e, out| {
            e.reasoning_signature(out, "sig-1");
            e.finish(out);
        });
        assert_eq!(fold.answer.reasoning, None);
        assert_eq!(fold.answer.reasoning_signature.as_deref(), Some("sig-1"));
        let whole = Answer::from_normalized(
            json!({"reasoning": "", "reasoning_signature": "sig-1"})
                .as_object()
                .unwrap(),
        );
        assert_eq!(fold.answer, whole);
    }

    #[test]
    fn a_failed_fold_keeps_the_error_and_what_came_before() {
        let fold = folded(|e, out| {
            e.content(out, "partial");
            e.fail(
                out,
                &ProxyError::BadUpstreamResponse {
                    message: "cut".into(),
                },
            );
            e.finish(out);
        });
        assert_eq!(fold.answer.text.as_deref(), Some("partial"));
        assert_eq!(fold.answer.finish, None);
        assert!(matches!(
            fold.failed,
            Some(ProxyError::BadUpstreamResponse { .. })
        ));
    }
}
