//! The deterministic answer of the fake TGI: chat-template parsing, tokens, `/generate` JSON and the SSE stream.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Ids, Triggers, word_pieces};
use crate::reply::Reply;
use crate::tgi::{SSE, TgiRequest, error_body};

const LLAMA_USER: &str = "<|start_header_id|>user<|end_header_id|>";
const CHATML_USER: &str = "<|im_start|>user";

/// The chat template a prompt was rendered with (decides the end-of-turn token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Template {
    Llama3,
    ChatMl,
    Plain,
}

impl Template {
    fn of(prompt: &str) -> Template {
        if prompt.contains("<|start_header_id|>") || prompt.contains("<|eot_id|>") {
            Template::Llama3
        } else if prompt.contains("<|im_start|>") {
            Template::ChatMl
        } else {
            Template::Plain
        }
    }

    /// The special end token: `(id, text)`.
    fn eos(self) -> (u64, &'static str) {
        match self {
            Template::Llama3 => (128_009, "<|eot_id|>"),
            Template::ChatMl => (151_645, "<|im_end|>"),
            Template::Plain => (2, "</s>"),
        }
    }
}

/// The text of the last user turn of a rendered chat template (Llama 3 or ChatML); without
/// a user turn marker, the whole prompt.
pub(crate) fn last_user_turn(prompt: &str) -> (String, Template) {
    let template = Template::of(prompt);
    let llama = prompt
        .rfind(LLAMA_USER)
        .map(|i| (i, LLAMA_USER, "<|eot_id|>"));
    let chatml = prompt
        .rfind(CHATML_USER)
        .map(|i| (i, CHATML_USER, "<|im_end|>"));
    let last = match (llama, chatml) {
        (Some(a), Some(b)) => Some(if a.0 > b.0 { a } else { b }),
        (a, b) => a.or(b),
    };
    match last {
        Some((at, marker, end)) => {
            let rest = &prompt[at + marker.len()..];
            let body = rest.split(end).next().unwrap_or_default();
            (body.trim_start_matches('\n').to_string(), template)
        }
        None => (prompt.to_string(), template),
    }
}

struct Token {
    id: u64,
    text: String,
    logprob: f64,
    special: bool,
}

impl Token {
    /// A deterministic "vocabulary" token for `text`.
    fn of(text: &str) -> Token {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in text.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        let logprob = -((((h >> 20) % 3000) + 1) as f64) / 10_000.0;
        Token {
            id: 1000 + h % 120_000,
            text: text.to_string(),
            logprob,
            special: false,
        }
    }

    fn json(&self) -> Value {
        json!({"id": self.id, "text": self.text, "logprob": self.logprob, "special": self.special})
    }
}

/// The deterministic answer to one valid request.
pub(crate) struct Plan {
    tokens: Vec<Token>,
    finish_reason: &'static str,
    generated_text: String,
    seed: Option<u64>,
    input_length: u64,
    input_chars: usize,
    details: bool,
    prefill: Option<Vec<Value>>,
    pub(crate) triggers: Triggers,
}

impl Plan {
    pub(crate) fn new(r: &TgiRequest, ids: &Ids) -> Plan {
        let (text, template) = last_user_turn(&r.inputs);
        let triggers = Triggers(text.clone());
        let answer = format!("Hello! You said: {text}");
        let mut tokens: Vec<Token> = word_pieces(&answer, 1000)
            .iter()
            .map(|p| Token::of(p))
            .collect();
        let mut finish_reason = if triggers.has("MAX TOKENS") {
            "length"
        } else if triggers.has("STOPSEQ") {
            // TGI keeps the matched stop sequence at the end of the generated text, in the
            // tokens the tokenizer cut it into: here pieces of two characters, so a stop text
            // longer than two spans several tokens (events, when streaming).
            let stop = r.stops().first().copied().unwrap_or("END");
            tokens.extend(stop_pieces(stop).iter().map(|p| Token::of(p)));
            "stop_sequence"
        } else {
            let (id, text) = template.eos();
            tokens.push(Token {
                id,
                text: text.into(),
                logprob: -0.0012,
                special: true,
            });
            "eos_token"
        };
        let max_new = usize::try_from(r.max_new_tokens()).unwrap_or(usize::MAX);
        if tokens.len() > max_new {
            tokens.truncate(max_new);
            finish_reason = "length";
        }
        let mut generated_text: String = tokens
            .iter()
            .filter(|t| !t.special)
            .map(|t| t.text.as_str())
            .collect();
        if r.return_full_text() {
            generated_text.insert_str(0, &r.inputs);
        }
        let seed = r.sampling().then(|| {
            r.u64("seed")
                .unwrap_or_else(|| ids.next(b"0123456789", 19).parse().unwrap_or(42))
        });
        let prefill = r.flag("decoder_input_details").then(|| {
            word_pieces(&r.inputs, 1000)
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let t = Token::of(p);
                    let logprob = if i == 0 {
                        Value::Null
                    } else {
                        json!(t.logprob)
                    };
                    json!({"id": t.id, "text": t.text, "logprob": logprob})
                })
                .collect()
        });
        Plan {
            tokens,
            finish_reason,
            generated_text,
            seed,
            input_length: r.input_length(),
            input_chars: r.inputs.chars().count(),
            details: r.flag("details"),
            prefill,
            triggers,
        }
    }

    /// The `/generate` body; `details` only when asked for (`details` or `decoder_input_details`).
    pub(crate) fn response(&self) -> Value {
        let mut body = json!({"generated_text": self.generated_text});
        if self.details || self.prefill.is_some() {
            let tokens: Vec<Value> = self.tokens.iter().map(Token::json).collect();
            body["details"] = json!({
                "finish_reason": self.finish_reason, "generated_tokens": self.tokens.len(),
                "seed": self.seed, "prefill": self.prefill.clone().unwrap_or_default(), "tokens": tokens,
            });
        }
        body
    }

    /// The headers `/generate` adds to a successful answer.
    pub(crate) fn timing_headers(&self, reply: Reply) -> Reply {
        let n = self.tokens.len() as u64;
        [
            ("x-compute-type", "gpu+optimized".to_string()),
            ("x-compute-time", format!("{:.6}", 0.012 + 0.018 * n as f64)),
            ("x-compute-characters", self.input_chars.to_string()),
            ("x-total-time", (12 + 18 * n).to_string()),
            ("x-validation-time", "1".into()),
            ("x-queue-time", "0".into()),
            ("x-inference-time", (11 + 18 * n).to_string()),
            ("x-time-per-token", "18".into()),
            ("x-prompt-tokens", self.input_length.to_string()),
            ("x-generated-tokens", n.to_string()),
        ]
        .into_iter()
        .fold(reply, |r, (name, value)| r.header(name, value))
    }

    /// `/generate_stream`: one `data:{...}` event per token, the last one with `generated_text`
    /// (and `details` if asked for); no terminator. Stream fault triggers strike after 2 tokens.
    pub(crate) fn stream(&self, generation_error: &str) -> Reply {
        let n = self.tokens.len();
        let mut chunks: Vec<String> = self
            .tokens
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let last = i + 1 == n;
                let details = (last && self.details).then(|| {
                    json!({"finish_reason": self.finish_reason, "generated_tokens": n,
                           "seed": self.seed, "input_length": self.input_length})
                });
                let text = last.then_some(self.generated_text.as_str());
                sse_chunk(&json!({"index": i + 1, "token": t.json(), "generated_text": text, "details": details}))
            })
            .collect();
        let t = &self.triggers;
        let cut = n.min(2);
        if t.has("MIDSTREAM ERROR") {
            chunks.truncate(cut);
            chunks.push(sse_chunk(&error_body(generation_error, "generation")));
        } else if t.has("RESET") {
            chunks.truncate(cut);
        } else if t.has("STREAM GARBAGE") {
            chunks.insert(cut, "data:{not json\n\n".into());
        }
        let pace = t.pace();
        let chunks: Vec<(String, Duration)> = chunks
            .into_iter()
            .enumerate()
            .map(|(i, c)| (c, if i == 0 { Duration::ZERO } else { pace }))
            .collect();
        let headers = vec![
            ("cache-control".to_string(), "no-cache".to_string()),
            ("x-compute-type".to_string(), "gpu+optimized".to_string()),
            (
                "x-compute-characters".to_string(),
                self.input_chars.to_string(),
            ),
            ("x-accel-buffering".to_string(), "no".to_string()),
        ];
        if t.has("RESET") && !t.has("MIDSTREAM ERROR") {
            return Reply::ResetAfter {
                status: 200,
                content_type: SSE.into(),
                chunks,
                headers,
            };
        }
        Reply::Chunks {
            status: 200,
            content_type: SSE.into(),
            chunks,
            headers,
        }
    }
}

/// A stop text as the tokens it is generated in: two characters each.
fn stop_pieces(stop: &str) -> Vec<String> {
    let chars: Vec<char> = stop.chars().collect();
    chars.chunks(2).map(|c| c.iter().collect()).collect()
}

/// One TGI SSE event: `data:` directly followed by the JSON (no space), then a blank line.
pub(crate) fn sse_chunk(v: &Value) -> String {
    format!("data:{v}\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_last_user_turn() {
        let llama = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>\
            <|start_header_id|>user<|end_header_id|>\n\nfirst<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nok<|eot_id|>\
            <|start_header_id|>user<|end_header_id|>\n\nsecond one<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
        assert_eq!(
            last_user_turn(llama),
            ("second one".into(), Template::Llama3)
        );
        let chatml = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi there<|im_end|>\n<|im_start|>assistant\n";
        assert_eq!(
            last_user_turn(chatml),
            ("hi there".into(), Template::ChatMl)
        );
        assert_eq!(
            last_user_turn("plain text"),
            ("plain text".into(), Template::Plain)
        );
        assert_eq!(stop_pieces("ZQSTOP"), ["ZQ", "ST", "OP"]);
        assert_eq!(stop_pieces("Par"), ["Pa", "r"]);
        let t = Token::of(" word");
        assert!(t.logprob < 0.0 && t.logprob > -0.31 && t.id >= 1000);
    }
}
