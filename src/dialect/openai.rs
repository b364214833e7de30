//! The OpenAI answers that are not a dialect's answer: the embeddings list, and the clock the
//! OpenAI objects are stamped with. Chat and legacy completions are in [`crate::dialect::chat`].

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::dialect::answer::Usage;
use crate::error::ProxyError;

/// Unix time in seconds.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Builds the embeddings list from a normalized `{embeddings: [[f32...]...], usage}`. With
/// `base64`, each vector is packed little-endian float32 and base64-encoded, as OpenAI does.
pub fn embeddings(
    model: &str,
    normalized: &Map<String, Value>,
    base64: bool,
) -> Result<(Value, Usage), ProxyError> {
    use base64::Engine as _;
    let bad = |m: &str| ProxyError::BadUpstreamResponse {
        message: m.to_string(),
    };
    let Some(Value::Array(vectors)) = normalized.get("embeddings") else {
        return Err(bad("the upstream answer has no list of embeddings"));
    };
    let mut data = Vec::with_capacity(vectors.len());
    for (index, v) in vectors.iter().enumerate() {
        let Some(items) = v.as_array() else {
            return Err(bad("an upstream embedding is not an array of numbers"));
        };
        let floats: Option<Vec<f64>> = items.iter().map(Value::as_f64).collect();
        let floats = floats
            .ok_or_else(|| bad("an upstream embedding holds a value that is not a number"))?;
        let embedding = if base64 {
            let bytes: Vec<u8> = floats
                .iter()
                .flat_map(|f| (*f as f32).to_le_bytes())
                .collect();
            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        } else {
            json!(floats)
        };
        data.push(json!({"object": "embedding", "index": index, "embedding": embedding}));
    }
    let usage = normalized
        .get("usage")
        .map(Usage::from_value)
        .unwrap_or_default();
    let prompt = usage.prompt_tokens.unwrap_or(0);
    let body = json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
    });
    Ok((body, usage))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeddings_floats_and_base64() {
        let n = json!({"embeddings": [[0.5, -1.0], [2]], "usage": {"prompt_tokens": 4}});
        let (e, _) = embeddings("m", n.as_object().unwrap(), false).unwrap();
        assert_eq!(
            e["data"][1],
            json!({"object": "embedding", "index": 1, "embedding": [2.0]})
        );
        assert_eq!(e["usage"], json!({"prompt_tokens": 4, "total_tokens": 4}));
        let (e, _) = embeddings("m", n.as_object().unwrap(), true).unwrap();
        // 0.5f32 = 00 00 00 3f, -1.0f32 = 00 00 80 bf (little-endian)
        assert_eq!(e["data"][0]["embedding"], "AAAAPwAAgL8=");
        assert!(
            embeddings(
                "m",
                json!({"embeddings": [["x"]]}).as_object().unwrap(),
                false
            )
            .is_err()
        );
    }
}
