//! The deterministic answer of the fake Gemini API: candidates, usage, JSON body, SSE and JSON-array streams.

use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::common::{ALNUM, Ids, Triggers, args_from_schema, word_pieces, words};
use crate::gemini::{MIDSTREAM_MESSAGE, google_json};
use crate::gemini_parts::{parts_with, role_of};
use crate::gemini_validate::get;
use crate::reply::{Reply, SseEvent};

const SSE_CONTENT_TYPE: &str = "text/event-stream";
const JSON_CONTENT_TYPE: &str = "application/json; charset=UTF-8";
const THOUGHT: &str = "The user sent a message. I should read it carefully and answer briefly.";
/// The grounded answer to `SEARCH` with Google Search on, and the pages each sentence rests on:
/// `(sentence, url, title)`.
const GROUNDED: &[(&str, &str, &str)] = &[
    (
        "Rosetta makes LLM providers speak the OpenAI API.",
        "https://vertexaisearch.cloud.google.com/grounding-api-redirect/AUZIYQE1rosetta",
        "example.com",
    ),
    (
        " It runs as a reverse proxy in front of them.",
        "https://vertexaisearch.cloud.google.com/grounding-api-redirect/AUZIYQE2proxies",
        "example.org",
    ),
];

/// The deterministic answer to one valid request.
pub(crate) struct Plan {
    model: String,
    response_id: String,
    signature: String,
    thought: Option<String>,
    text: String,
    calls: Vec<(String, Value)>,
    finish: &'static str,
    /// `groundingMetadata` of a searched answer (on the last chunk when streaming).
    grounding: Option<Value>,
    candidates: usize,
    prompt: usize,
    output: usize,
    thoughts: usize,
    pub(crate) triggers: Triggers,
}

fn texts(c: &Value) -> String {
    parts_with(c, "text")
        .filter(|p| p.get("thought").and_then(Value::as_bool) != Some(true))
        .filter_map(|p| get(p, "text")?.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

fn field<'a>(v: &'a Value, camel: &str) -> Option<&'a Value> {
    get(v.as_object()?, camel)
}

/// Gemini type names are upper-case; `args_from_schema` reads JSON-Schema (lower-case) ones.
fn lower_types(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, x)| match (k.as_str(), x) {
                    ("type", Value::String(t)) => (k.clone(), json!(t.to_ascii_lowercase())),
                    _ => (k.clone(), lower_types(x)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(lower_types).collect()),
        other => other.clone(),
    }
}

/// `(name, args)` of the calls to make: the first declared (or allowed) function, two with `TWO TOOLS`.
fn calls(body: &Map<String, Value>, triggers: &Triggers) -> Vec<(String, Value)> {
    let decls: Vec<&Value> = get(body, "tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| field(t, "functionDeclarations")?.as_array())
        .flatten()
        .collect();
    let fcc = get(body, "toolConfig").and_then(|t| field(t, "functionCallingConfig"));
    let mode = fcc
        .and_then(|f| field(f, "mode")?.as_str())
        .unwrap_or("AUTO");
    if mode == "NONE" {
        return Vec::new();
    }
    let allowed: Vec<&str> = fcc
        .and_then(|f| field(f, "allowedFunctionNames")?.as_array())
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let n = if triggers.has("TWO TOOLS") { 2 } else { 1 };
    decls
        .into_iter()
        .map(|d| {
            (
                field(d, "name").and_then(Value::as_str).unwrap_or_default(),
                d,
            )
        })
        .filter(|(name, _)| allowed.is_empty() || allowed.contains(name))
        .take(n)
        .map(|(name, d)| {
            let schema = field(d, "parameters")
                .map(lower_types)
                .or_else(|| field(d, "parametersJsonSchema").cloned())
                .unwrap_or(Value::Null);
            (name.to_string(), args_from_schema(&schema))
        })
        .collect()
}

impl Plan {
    pub(crate) fn new(body: &Map<String, Value>, model: &str, ids: &Ids) -> Plan {
        let contents = get(body, "contents")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        let last_user = contents.iter().rev().find(|c| role_of(c) != "model");
        let text = last_user.map(texts).unwrap_or_default();
        let responses: Vec<String> = last_user
            .into_iter()
            .flat_map(|c| parts_with(c, "functionResponse"))
            .map(|p| {
                get(p, "functionResponse")
                    .and_then(|r| field(r, "response"))
                    .map_or_else(String::new, Value::to_string)
            })
            .collect();
        let triggers = Triggers(format!("{text}\n{}", responses.join("\n")));
        let calls = if responses.is_empty() {
            calls(body, &triggers)
        } else {
            Vec::new()
        };
        let searching = responses.is_empty() && triggers.has("SEARCH") && google_search(body);
        let answer = match responses.first() {
            Some(r) => format!("Tool said: {r}"),
            None if searching => GROUNDED.iter().map(|(s, _, _)| *s).collect(),
            None if calls.is_empty() => format!("Hello! You said: {text}"),
            None => String::new(),
        };
        let grounding = searching.then(|| grounding(&text));
        let thought = triggers.has("THINK").then(|| THOUGHT.to_string());
        let finish = if triggers.has("SAFETY") {
            "SAFETY"
        } else if triggers.has("MAX TOKENS") {
            "MAX_TOKENS"
        } else {
            "STOP"
        };
        let candidates = get(body, "generationConfig")
            .and_then(|g| field(g, "candidateCount")?.as_u64())
            .map_or(1, |n| n.clamp(1, 8) as usize);
        let system = get(body, "systemInstruction")
            .map(texts)
            .unwrap_or_default();
        let prompt = words(&system)
            + contents
                .iter()
                .map(|c| {
                    words(&texts(c))
                        + parts_with(c, "functionCall")
                            .chain(parts_with(c, "functionResponse"))
                            .count()
                            * 4
                })
                .sum::<usize>();
        let output = words(&answer)
            + calls
                .iter()
                .map(|(_, a)| words(&a.to_string()).max(1))
                .sum::<usize>();
        Plan {
            model: model.to_string(),
            response_id: ids.next(ALNUM, 23),
            signature: format!("CiQB{}", ids.next(ALNUM, 40)),
            thoughts: thought.as_deref().map_or(0, words),
            thought,
            text: answer,
            calls,
            finish,
            grounding,
            candidates,
            prompt: prompt.max(1),
            output: output.max(1) * candidates,
            triggers,
        }
    }

    /// Full counts (last chunk, non-stream) or the partial ones intermediate chunks carry.
    fn usage(&self, last: bool) -> Value {
        if !last {
            return json!({"promptTokenCount": self.prompt, "totalTokenCount": self.prompt});
        }
        let mut usage = json!({
            "promptTokenCount": self.prompt, "candidatesTokenCount": self.output,
            "totalTokenCount": self.prompt + self.output + self.thoughts,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": self.prompt}],
        });
        if self.thoughts > 0 {
            usage["thoughtsTokenCount"] = json!(self.thoughts);
        }
        usage
    }

    fn call_parts(&self) -> Vec<Value> {
        self.calls
            .iter()
            .enumerate()
            .map(|(i, (name, args))| {
                let mut part = json!({"functionCall": {"name": name, "args": args}});
                if i == 0 {
                    part["thoughtSignature"] = json!(self.signature);
                }
                part
            })
            .collect()
    }

    /// One response object; `parts: None` leaves `content` out (a blocked candidate).
    fn chunk(
        &self,
        parts: Option<Vec<Value>>,
        finish: Option<&str>,
        index: bool,
        last: bool,
    ) -> Value {
        let candidates: Vec<Value> = (0..self.candidates)
            .map(|i| {
                let mut c = Map::new();
                if let Some(parts) = &parts {
                    c.insert("content".into(), json!({"parts": parts, "role": "model"}));
                }
                if let Some(f) = finish {
                    c.insert("finishReason".into(), json!(f));
                }
                if f_is_safety(finish) {
                    c.insert("safetyRatings".into(), safety_ratings());
                }
                if index || self.candidates > 1 {
                    c.insert("index".into(), json!(i));
                }
                if let Some(g) = self.grounding.as_ref().filter(|_| last) {
                    c.insert("groundingMetadata".into(), g.clone());
                }
                Value::Object(c)
            })
            .collect();
        json!({"candidates": candidates, "usageMetadata": self.usage(last),
               "modelVersion": self.model, "responseId": self.response_id})
    }

    /// The non-streaming `GenerateContentResponse`.
    pub(crate) fn response(&self) -> Value {
        let mut parts = Vec::new();
        if let Some(t) = &self.thought {
            parts.push(json!({"text": t, "thought": true}));
        }
        if !self.text.is_empty() {
            parts.push(json!({ "text": self.text }));
        }
        parts.extend(self.call_parts());
        let parts = (self.finish != "SAFETY").then_some(parts);
        self.chunk(parts, Some(self.finish), true, true)
    }

    /// Stream chunks, and how many to keep when a fault strikes (after the second text chunk).
    fn chunks(&self) -> (Vec<Value>, usize) {
        let mut out = Vec::new();
        if let Some(t) = &self.thought {
            for piece in word_pieces(t, 2) {
                out.push(self.chunk(
                    Some(vec![json!({"text": piece, "thought": true})]),
                    None,
                    false,
                    false,
                ));
            }
        }
        let mut text_chunks = Vec::new();
        let pieces = if self.text.is_empty() {
            Vec::new()
        } else {
            word_pieces(&self.text, 10)
        };
        let keep = if self.finish == "SAFETY" {
            2
        } else {
            pieces.len()
        };
        for piece in pieces.into_iter().take(keep) {
            out.push(self.chunk(Some(vec![json!({ "text": piece })]), None, false, false));
            text_chunks.push(out.len());
        }
        if !self.calls.is_empty() {
            out.push(self.chunk(Some(self.call_parts()), None, false, false));
            text_chunks.push(out.len());
        }
        let cut = text_chunks
            .get(1)
            .or(text_chunks.last())
            .copied()
            .unwrap_or(out.len());
        let last = (self.finish != "SAFETY").then(|| vec![json!({"text": ""})]);
        out.push(self.chunk(last, Some(self.finish), false, true));
        (out, cut)
    }

    /// The chunks after the stream faults (`MIDSTREAM ERROR`, `RESET`) are applied; `true` = reset.
    fn faulted(&self) -> (Vec<Value>, bool) {
        let (mut chunks, cut) = self.chunks();
        let t = &self.triggers;
        let midstream = t.has("MIDSTREAM ERROR");
        if midstream || t.has("RESET") {
            chunks.truncate(cut);
        }
        if midstream {
            chunks.push(
                json!({"error": {"code": 500, "message": MIDSTREAM_MESSAGE, "status": "INTERNAL"}}),
            );
        }
        (chunks, t.has("RESET") && !midstream)
    }

    fn gap(&self, i: usize) -> Duration {
        if i == 0 {
            Duration::ZERO
        } else {
            self.triggers.pace()
        }
    }

    /// `?alt=sse`: data-only SSE, no `[DONE]`; the stream ends when the connection closes.
    pub(crate) fn sse(&self) -> Reply {
        let (chunks, reset) = self.faulted();
        let wire: Vec<(String, Duration)> = chunks
            .iter()
            .enumerate()
            .map(|(i, c)| (SseEvent::data(google_json(c, false)).to_wire(), self.gap(i)))
            .collect();
        let content_type = SSE_CONTENT_TYPE.to_string();
        if reset {
            return Reply::ResetAfter {
                status: 200,
                content_type,
                chunks: wire,
                headers: Vec::new(),
            };
        }
        Reply::Chunks {
            status: 200,
            content_type,
            chunks: wire,
            headers: Vec::new(),
        }
    }

    /// Without `alt=sse`: one JSON array, written progressively (`[{...}\n,\r\n{...}\n]`).
    pub(crate) fn json_array(&self) -> Reply {
        let (chunks, reset) = self.faulted();
        let mut pieces: Vec<(String, Duration)> = chunks
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let sep = if i == 0 { "[" } else { "\n,\r\n" };
                (format!("{sep}{}", google_json(c, true)), self.gap(i))
            })
            .collect();
        if reset {
            return Reply::ResetAfter {
                status: 200,
                content_type: JSON_CONTENT_TYPE.into(),
                chunks: pieces,
                headers: Vec::new(),
            };
        }
        if let Some(last) = pieces.last_mut() {
            last.0.push_str("\n]");
        }
        Reply::Chunks {
            status: 200,
            content_type: JSON_CONTENT_TYPE.into(),
            chunks: pieces,
            headers: Vec::new(),
        }
    }
}

/// Whether the request turns on Google Search grounding.
fn google_search(body: &Map<String, Value>) -> bool {
    get(body, "tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|t| field(t, "googleSearch").is_some())
}

/// The `groundingMetadata` of the grounded answer: the query, the search widget, the pages
/// (`groundingChunks`) and which part of the text each supports (byte offsets; proto JSON leaves
/// out a zero `startIndex`).
fn grounding(query: &str) -> Value {
    let mut start = 0;
    let mut supports = Vec::new();
    for (i, (sentence, _, _)) in GROUNDED.iter().enumerate() {
        let text = sentence.trim_start();
        let (from, end) = (start + sentence.len() - text.len(), start + sentence.len());
        let mut segment = json!({"endIndex": end, "text": text});
        if from > 0 {
            segment["startIndex"] = json!(from);
        }
        supports.push(json!({"segment": segment, "groundingChunkIndices": [i]}));
        start = end;
    }
    let chunks: Vec<Value> = GROUNDED
        .iter()
        .map(|(_, uri, title)| json!({"web": {"uri": uri, "title": title}}))
        .collect();
    json!({
        "searchEntryPoint": {"renderedContent": "<style>\n.container { display: flex; }\n</style>\n<div class=\"container\">\n  <a class=\"chip\" href=\"https://www.google.com/search?q=rosetta\">rosetta</a>\n</div>\n"},
        "groundingChunks": chunks,
        "groundingSupports": supports,
        "webSearchQueries": [query.trim()],
    })
}

fn f_is_safety(finish: Option<&str>) -> bool {
    finish == Some("SAFETY")
}

fn safety_ratings() -> Value {
    let rating = |category: &str, probability: &str| json!({"category": category, "probability": probability});
    let mut dangerous = rating("HARM_CATEGORY_DANGEROUS_CONTENT", "HIGH");
    dangerous["blocked"] = json!(true);
    json!([
        rating("HARM_CATEGORY_SEXUALLY_EXPLICIT", "NEGLIGIBLE"),
        rating("HARM_CATEGORY_HATE_SPEECH", "NEGLIGIBLE"),
        rating("HARM_CATEGORY_HARASSMENT", "NEGLIGIBLE"),
        dangerous,
    ])
}
