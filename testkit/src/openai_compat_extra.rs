//! `/embeddings` and legacy `/completions` of the OpenAI-style fakes (plain and Azure deployments).

use serde_json::{Map, Value, json};

use crate::azure::{filter_results, prompt_filter_results};
use crate::common::{ALNUM, Ids, Triggers, word_pieces, words};
use crate::openai_compat::{fault, finish_stream, garbage};
use crate::openai_compat_chat::{Flavor, now_secs};
use crate::openai_compat_validate::{
    Check, Invalid, boolean, decimal, integer, invalid_type, invalid_value, missing, present, stop,
    stream_fields,
};
use crate::reply::{Reply, SseEvent};

const INPUT_INVALID: &str = "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.";

/// A deterministic "embedding" of `text` with `dims` components in [-0.1, 0.1].
fn vector(text: &str, dims: usize) -> Vec<f32> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (0..dims)
        .map(|i| {
            let z = h.wrapping_add(i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let raw = ((z >> 40) & 0xffff) as f32 / 65_535.0 * 0.2 - 0.1;
            (raw * 10_000.0).round() / 10_000.0
        })
        .collect()
}

/// Standard padded base64.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ABC[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The texts of `input` (token arrays become their numbers), or the 400 OpenAI gives.
fn inputs(v: Option<&Value>, key: &str) -> Result<Vec<String>, Invalid> {
    let bad = || Invalid::new(INPUT_INVALID, None, None);
    let tokens = |items: &[Value]| -> Option<String> {
        let ids: Option<Vec<String>> = items
            .iter()
            .map(|t| t.as_u64().map(|n| n.to_string()))
            .collect();
        ids.map(|ids| ids.join(" "))
    };
    match v {
        None | Some(Value::Null) => Err(missing(key)),
        Some(Value::String(s)) if s.is_empty() => Err(bad()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) if items.is_empty() => Err(bad()),
        Some(Value::Array(items)) if items.iter().all(Value::is_number) => {
            tokens(items).map(|t| vec![t]).ok_or_else(bad)
        }
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) if !s.is_empty() => Some(s.clone()),
                Value::Array(t) if !t.is_empty() => tokens(t),
                _ => None,
            })
            .collect::<Option<Vec<String>>>()
            .ok_or_else(bad),
        Some(other) => Err(invalid_type(key, "a string or an array", other)),
    }
}

fn triggered(
    texts: &[String],
    flavor: Flavor,
    operation: &str,
    api_version: &str,
    stream: bool,
) -> Option<Reply> {
    let t = Triggers(texts.first().cloned().unwrap_or_default());
    if let Some(reply) = fault(&t, flavor, operation, api_version) {
        return Some(reply);
    }
    if t.garbage() {
        return Some(garbage(stream));
    }
    t.has("HANG").then(Reply::hang)
}

/// `POST /embeddings` (1.10): `float` arrays, or base64 of little-endian f32 with `encoding_format: base64`.
pub(crate) fn embeddings(
    body: &Map<String, Value>,
    model: &str,
    flavor: Flavor,
    api_version: &str,
) -> Reply {
    let texts = match inputs(body.get("input"), "input") {
        Ok(texts) => texts,
        Err(e) => return e.reply(),
    };
    let format = match present(body, "encoding_format") {
        None => "float",
        Some(Value::String(f)) if f == "float" || f == "base64" => f.as_str(),
        Some(other) => {
            let got = other
                .as_str()
                .map_or_else(|| other.to_string(), str::to_string);
            return invalid_value("encoding_format", &got, &["float", "base64"]).reply();
        }
    };
    if let Err(e) = integer(body, "dimensions", 1, 3072) {
        return e.reply();
    }
    if let Some(reply) = triggered(&texts, flavor, "Embeddings_Create", api_version, false) {
        return reply;
    }
    let dims = present(body, "dimensions")
        .and_then(Value::as_u64)
        .unwrap_or(3) as usize;
    let data: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let v = vector(text, dims);
            let embedding = if format == "base64" {
                json!(base64(
                    &v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>()
                ))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let tokens: usize = texts.iter().map(|t| words(t).max(1)).sum();
    Reply::json(
        200,
        json!({"object": "list", "data": data, "model": model,
               "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}),
    )
}

fn completion_fields(body: &Map<String, Value>) -> Check {
    integer(body, "max_tokens", 0, i64::MAX)?;
    decimal(body, "temperature", 0.0, 2.0)?;
    decimal(body, "top_p", 0.0, 1.0)?;
    decimal(body, "presence_penalty", -2.0, 2.0)?;
    decimal(body, "frequency_penalty", -2.0, 2.0)?;
    integer(body, "n", 1, 128)?;
    integer(body, "best_of", 0, 20)?;
    integer(body, "logprobs", 0, 5)?;
    boolean(body, "echo")?;
    stop(body)?;
    stream_fields(body)?;
    match present(body, "suffix") {
        Some(v) if !v.is_string() => Err(invalid_type("suffix", "a string", v)),
        _ => Ok(()),
    }
}

/// Legacy `POST /completions` (1.11): `max_tokens` defaults to 16; one choice per prompt and `n`.
pub(crate) fn completions(
    body: &Map<String, Value>,
    model: &str,
    ids: &Ids,
    flavor: Flavor,
    api_version: &str,
) -> Reply {
    let prompts = match inputs(body.get("prompt"), "prompt")
        .and_then(|p| completion_fields(body).map(|()| p))
    {
        Ok(prompts) => prompts,
        Err(e) => return e.reply(),
    };
    let stream = body.get("stream").and_then(Value::as_bool) == Some(true);
    if let Some(reply) = triggered(&prompts, flavor, "Completions_Create", api_version, stream) {
        return reply;
    }
    let t = Triggers(prompts[0].clone());
    let n = present(body, "n").and_then(Value::as_u64).unwrap_or(1) as usize;
    let limit = present(body, "max_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(16) as usize;
    let echo = present(body, "echo").and_then(Value::as_bool) == Some(true);
    let azure = flavor == Flavor::Azure;
    // (pieces, finish_reason) of every choice: prompt-major, then n.
    let choices: Vec<(Vec<String>, &str)> = prompts
        .iter()
        .flat_map(|p| std::iter::repeat_n(p, n))
        .map(|p| {
            let mut pieces = word_pieces(&format!("Hello! You said: {p}"), 1000);
            let mut finish = if t.has("FILTERED") {
                pieces.truncate(2);
                "content_filter"
            } else if t.has("MAX TOKENS") {
                "length"
            } else {
                "stop"
            };
            if pieces.len() > limit {
                pieces.truncate(limit);
                finish = "length";
            }
            if echo {
                pieces.insert(0, p.clone());
            }
            (pieces, finish)
        })
        .collect();
    let prompt_tokens: usize = prompts.iter().map(|p| words(p).max(1)).sum();
    let completion_tokens: usize = choices.iter().map(|(p, _)| p.len()).sum();
    let usage = json!({"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                       "total_tokens": prompt_tokens + completion_tokens});
    let base = json!({"id": format!("cmpl-{}", ids.next(ALNUM, 29)), "object": "text_completion",
                      "created": now_secs(), "model": model,
                      "system_fingerprint": format!("fp_{}", ids.next(b"0123456789abcdef", 10))});
    let choice = |index: usize, text: &str, finish: Option<&str>, filtered: bool| {
        let mut c =
            json!({"text": text, "index": index, "logprobs": null, "finish_reason": finish});
        if azure {
            c["content_filter_results"] = filter_results(filtered);
        }
        c
    };
    if !stream {
        let mut out = base;
        let list: Vec<Value> = choices
            .iter()
            .enumerate()
            .map(|(i, (pieces, finish))| {
                choice(
                    i,
                    &pieces.concat(),
                    Some(finish),
                    *finish == "content_filter",
                )
            })
            .collect();
        out["choices"] = json!(list);
        out["usage"] = usage;
        if azure {
            out["prompt_filter_results"] = prompt_filter_results();
        }
        return Reply::json(200, out);
    }
    let mut events = Vec::new();
    if azure {
        events.push(SseEvent::data(
            json!({"choices": [], "created": 0, "id": "", "model": "", "object": "",
                                          "prompt_filter_results": prompt_filter_results()}),
        ));
    }
    let mut payload = Vec::new();
    let longest = choices.iter().map(|(p, _)| p.len()).max().unwrap_or(0);
    for step in 0..longest {
        for (i, (pieces, finish)) in choices.iter().enumerate() {
            if let Some(piece) = pieces.get(step) {
                let last = step + 1 == pieces.len();
                let mut chunk = base.clone();
                chunk["choices"] = json!([choice(
                    i,
                    piece,
                    last.then_some(*finish),
                    last && *finish == "content_filter"
                )]);
                payload.push(events.len());
                events.push(SseEvent::data(chunk));
            }
        }
    }
    if present(body, "stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        == Some(true)
    {
        let mut chunk = base;
        chunk["choices"] = json!([]);
        chunk["usage"] = usage;
        events.push(SseEvent::data(chunk));
    }
    events.push(SseEvent::data("[DONE]"));
    finish_stream(events, &payload, &t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(base64(b"Man"), "TWFu");
        assert_eq!(base64(b"Ma"), "TWE=");
        assert_eq!(base64(b"M"), "TQ==");
        assert_eq!(base64(&1.0f32.to_le_bytes()), "AACAPw==");
        assert_eq!(vector("x", 5).len(), 5);
    }
}
