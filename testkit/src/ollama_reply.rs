//! Deterministic answers of the fake Ollama (`/api/chat`, `/api/generate`): NDJSON lines or one object.

use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::common::{
    Ids, LOWER_ALNUM, Triggers, args_from_schema, rfc3339_now, word_pieces, words,
};
use crate::ollama::error;
use crate::reply::Reply;

const NDJSON: &str = "application/x-ndjson";
const MIDSTREAM_ERROR: &str = "an error was encountered while running the model";

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Endpoint {
    Chat,
    Generate,
}

/// The deterministic answer to one valid request.
pub(crate) struct Plan {
    model: String,
    thinking: Vec<String>,
    content: Vec<String>,
    tool_calls: Vec<Value>,
    done_reason: &'static str,
    prompt_eval_count: usize,
    eval_count: usize,
    triggers: Triggers,
}

fn roles(m: &Value, wanted: &[&str]) -> bool {
    m.get("role")
        .and_then(Value::as_str)
        .is_some_and(|r| wanted.contains(&r))
}

impl Plan {
    pub(crate) fn chat(body: &Map<String, Value>, model: &str, ids: &Ids) -> Plan {
        let messages = body
            .get("messages")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        let last = messages.iter().rev().find(|m| roles(m, &["user", "tool"]));
        let text = last
            .and_then(|m| m.get("content")?.as_str())
            .unwrap_or_default();
        let triggers = Triggers(text.to_string());
        let prompt: usize = messages
            .iter()
            .map(|m| words(m.get("content").and_then(Value::as_str).unwrap_or_default()))
            .sum();
        let tools: Vec<&Value> = body
            .get("tools")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .collect();
        let mut tool_calls = Vec::new();
        let answer = if last.is_some_and(|m| roles(m, &["tool"])) {
            format!("Tool said: {text}")
        } else if !tools.is_empty() {
            let n = if triggers.has("TWO TOOLS") { 2 } else { 1 };
            for (index, tool) in tools.iter().take(n).enumerate() {
                let function = tool.get("function").unwrap_or(&Value::Null);
                let name = function
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let arguments =
                    args_from_schema(function.get("parameters").unwrap_or(&Value::Null));
                tool_calls.push(json!({
                    "id": format!("call_{}", ids.next(LOWER_ALNUM, 8)),
                    "function": {"index": index, "name": name, "arguments": arguments},
                }));
            }
            String::new()
        } else {
            format!("Hello! You said: {text}")
        };
        Plan::new(model, &answer, tool_calls, prompt, triggers)
    }

    pub(crate) fn generate(prompt: &str, model: &str, _ids: &Ids) -> Plan {
        let triggers = Triggers(prompt.to_string());
        Plan::new(
            model,
            &format!("Hello! You said: {prompt}"),
            Vec::new(),
            words(prompt),
            triggers,
        )
    }

    fn new(
        model: &str,
        answer: &str,
        tool_calls: Vec<Value>,
        prompt: usize,
        triggers: Triggers,
    ) -> Plan {
        let thinking = if triggers.has("THINK") {
            word_pieces("The user sent a message. I should answer it briefly.", 3)
        } else {
            Vec::new()
        };
        let eval_count = words(answer)
            + thinking.iter().map(|t| words(t)).sum::<usize>()
            + tool_calls
                .iter()
                .map(|c| words(&c["function"]["arguments"].to_string()))
                .sum::<usize>();
        Plan {
            model: model.to_string(),
            thinking,
            content: word_pieces(answer, 10),
            tool_calls,
            done_reason: if triggers.has("MAX TOKENS") {
                "length"
            } else {
                "stop"
            },
            prompt_eval_count: prompt.max(1),
            eval_count: eval_count.max(1),
            triggers,
        }
    }

    pub(crate) fn reply(&self, endpoint: Endpoint, stream: bool) -> Reply {
        let t = &self.triggers;
        match t.fail(&[429, 500, 400]) {
            Some(429) => return error(429, "too many requests, please try again later"),
            Some(500) => return error(500, "llama runner process has terminated: exit status 2"),
            Some(_) => return error(400, "simulated failure (FAIL 400)"),
            None => {}
        }
        if t.garbage() {
            let ct = if stream {
                NDJSON
            } else {
                "application/json; charset=utf-8"
            };
            return Reply::raw(200, ct, "this is not json{\n");
        }
        if t.has("HANG") {
            return Reply::hang();
        }
        if !stream {
            let thinking = (!self.thinking.is_empty()).then(|| self.thinking.concat());
            let mut last = self.line(
                endpoint,
                &self.content.concat(),
                thinking.as_deref(),
                &self.tool_calls,
            );
            self.finish(&mut last, endpoint);
            return Reply::json(200, last);
        }
        let mut lines: Vec<Value> = Vec::new();
        for piece in &self.thinking {
            lines.push(self.line(endpoint, "", Some(piece), &[]));
        }
        if !self.tool_calls.is_empty() {
            lines.push(self.line(endpoint, "", None, &self.tool_calls));
        }
        let mut content_lines = Vec::new();
        for piece in self.content.iter().filter(|p| !p.is_empty()) {
            lines.push(self.line(endpoint, piece, None, &[]));
            content_lines.push(lines.len());
        }
        let mut last = self.line(endpoint, "", None, &[]);
        self.finish(&mut last, endpoint);
        lines.push(last);

        let cut = content_lines
            .get(1)
            .or(content_lines.last())
            .copied()
            .unwrap_or(lines.len());
        let midstream = t.has("MIDSTREAM ERROR");
        if midstream || t.has("RESET") {
            lines.truncate(cut);
        }
        if midstream {
            lines.push(json!({"error": MIDSTREAM_ERROR}));
        }
        let pace = t.pace();
        let gap = |i: usize| if i == 0 { Duration::ZERO } else { pace };
        if t.has("RESET") && !midstream {
            let chunks = lines
                .iter()
                .enumerate()
                .map(|(i, l)| (format!("{l}\n"), gap(i)))
                .collect();
            return Reply::ResetAfter {
                status: 200,
                content_type: NDJSON.into(),
                chunks,
                headers: Vec::new(),
            };
        }
        let lines = lines
            .into_iter()
            .enumerate()
            .map(|(i, l)| (l, gap(i)))
            .collect();
        Reply::Ndjson {
            status: 200,
            lines,
            headers: Vec::new(),
        }
    }

    /// One NDJSON line (not final): chat lines carry `message`, generate lines carry `response`.
    fn line(
        &self,
        endpoint: Endpoint,
        content: &str,
        thinking: Option<&str>,
        calls: &[Value],
    ) -> Value {
        let mut line = json!({"model": self.model, "created_at": rfc3339_now()});
        match endpoint {
            Endpoint::Chat => {
                let mut message = json!({"role": "assistant", "content": content});
                if let Some(t) = thinking {
                    message["thinking"] = json!(t);
                }
                if !calls.is_empty() {
                    message["tool_calls"] = json!(calls);
                }
                line["message"] = message;
            }
            Endpoint::Generate => {
                line["response"] = json!(content);
                if let Some(t) = thinking {
                    line["thinking"] = json!(t);
                }
            }
        }
        line["done"] = json!(false);
        line
    }

    /// Turns a line into the final one: `done: true`, `done_reason` and the metrics (nanoseconds).
    fn finish(&self, line: &mut Value, endpoint: Endpoint) {
        let (load, prompt_eval) = (35_000_000_u64, 20_000_000_u64);
        let eval = 18_000_000 * self.eval_count as u64;
        line["done"] = json!(true);
        line["done_reason"] = json!(self.done_reason);
        if endpoint == Endpoint::Generate {
            line["context"] = json!([128_006, 882, 128_007]);
        }
        line["total_duration"] = json!(load + prompt_eval + eval + 5_000_000);
        line["load_duration"] = json!(load);
        if !self.triggers.has("NO PROMPT COUNT") {
            line["prompt_eval_count"] = json!(self.prompt_eval_count);
        }
        line["prompt_eval_duration"] = json!(prompt_eval);
        line["eval_count"] = json!(self.eval_count);
        line["eval_duration"] = json!(eval);
    }
}
