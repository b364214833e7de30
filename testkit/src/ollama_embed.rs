//! The fake Ollama's `/api/embed`, legacy `/api/embeddings` and `/api/tags`.

use serde_json::{Map, Value, json};

use crate::common::words;
use crate::ollama::{error, expect, model_of};
use crate::reply::Reply;

/// A deterministic 3-dimensional "embedding" of `text`.
fn vector(text: &str) -> Value {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let component = |shift: u32| {
        let raw = ((h >> shift) & 0xffff) as f64 / 65_535.0 * 0.2 - 0.1;
        (raw * 10_000.0).round() / 10_000.0
    };
    json!([component(0), component(16), component(32)])
}

pub(crate) fn embed(body: &Map<String, Value>) -> Result<Reply, Reply> {
    expect(
        body,
        "options",
        Value::is_object,
        "EmbedRequest.options",
        "map[string]interface {}",
    )?;
    let model = model_of(body, "EmbedRequest")?;
    let inputs: Vec<&str> = match body.get("input") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items
            .iter()
            .map(Value::as_str)
            .collect::<Option<_>>()
            .ok_or_else(|| error(400, "invalid input type"))?,
        Some(_) => return Err(error(400, "invalid input type")),
    };
    let embeddings: Vec<Value> = inputs.iter().map(|s| vector(s)).collect();
    let count: usize = inputs.iter().map(|s| words(s).max(1)).sum();
    Ok(Reply::json(
        200,
        json!({"model": model, "embeddings": embeddings, "total_duration": 12_000_000,
               "load_duration": 900_000, "prompt_eval_count": count}),
    ))
}

pub(crate) fn embeddings(body: &Map<String, Value>) -> Result<Reply, Reply> {
    expect(
        body,
        "prompt",
        Value::is_string,
        "EmbeddingRequest.prompt",
        "string",
    )?;
    model_of(body, "EmbeddingRequest")?;
    let prompt = body
        .get("prompt")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Ok(Reply::json(200, json!({"embedding": vector(prompt)})))
}

pub(crate) fn tags() -> Value {
    let model = |name: &str,
                 size: u64,
                 digest: &str,
                 family: &str,
                 params: &str,
                 modified: &str| {
        json!({
            "name": name, "model": name, "modified_at": modified, "size": size, "digest": digest,
            "details": {"parent_model": "", "format": "gguf", "family": family, "families": [family],
                        "parameter_size": params, "quantization_level": "Q4_K_M"},
        })
    };
    json!({"models": [
        model("llama3.2:latest", 2_019_393_189,
              "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
              "llama", "3.2B", "2026-01-10T08:15:00.123456789+01:00"),
        model("qwen2.5:7b", 4_683_087_332,
              "845dbda0ea48ed749caafd9e6037047aa19acfcfd82e704d7ca97d631a0b697e",
              "qwen2", "7.6B", "2026-01-12T17:40:31.987654321+01:00"),
    ]})
}
