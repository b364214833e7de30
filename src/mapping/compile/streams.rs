//! Compiling a route's `stream:` section: the framing and the rules that turn upstream events
//! into normalized emissions (and the built-in rules for OpenAI chunks).

use crate::mapping::spec::{self, EMIT_KEYS};
use crate::mapping::template::Defs;
use crate::mapping::*;

use super::Ctx;

impl Ctx<'_> {
    pub(super) fn stream(&mut self, s: spec::StreamSpec, at: &str, defs: &Defs) -> StreamProgram {
        let framing = match s.framing.as_str() {
            "sse" => Framing::Sse,
            "ndjson" => Framing::Ndjson,
            "eventstream" => Framing::EventStream,
            other => {
                self.error(
                    &format!("{at}.framing"),
                    format!("unknown framing {other:?} (expected sse, ndjson or eventstream)"),
                );
                Framing::Sse
            }
        };
        let rules: Vec<Rule> = s
            .rules
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let rat = format!("{at}.rules[{i}]");
                Rule {
                    events: r
                        .on
                        .event
                        .map(spec::OneOrMany::into_vec)
                        .unwrap_or_default(),
                    data: r.on.data,
                    cond: r
                        .on
                        .cond
                        .as_ref()
                        .map(|y| self.template(y, &format!("{rat}.on.if"), defs)),
                    set: r
                        .set
                        .iter()
                        .map(|(k, y)| {
                            (k.clone(), self.template(y, &format!("{rat}.set.{k}"), defs))
                        })
                        .collect(),
                    incr: r.incr,
                    emit: self.fields(&r.emit, &format!("{rat}.emit"), EMIT_KEYS, defs),
                }
            })
            .collect();
        if s.passthrough && framing != Framing::Sse {
            self.error(
                &format!("{at}.passthrough"),
                "passthrough forwards SSE streams only",
            );
        }
        if s.passthrough && !rules.is_empty() {
            self.error(&format!("{at}.rules"), "a passthrough stream has no rules");
        }
        // A passthrough stream forwards OpenAI chunks to chat clients; clients of another
        // dialect get them read by the engine's own rules for OpenAI chunks.
        let rules = if s.passthrough && rules.is_empty() {
            self.stream(chat_chunks(), CHAT_CHUNKS_AT, &Defs::new())
                .rules
        } else {
            rules
        };
        StreamProgram {
            framing,
            passthrough: s.passthrough,
            rules,
        }
    }
}

/// Where the built-in rules for OpenAI chunks are, in messages.
const CHAT_CHUNKS_AT: &str = "src/dialect/chat_chunks.yaml";

/// The built-in rules that read an upstream's OpenAI chat chunks (`chat_chunks.yaml`).
fn chat_chunks() -> spec::StreamSpec {
    serde_yaml::from_str(include_str!("../../dialect/chat_chunks.yaml"))
        .expect("the built-in chat_chunks.yaml is a stream section")
}
