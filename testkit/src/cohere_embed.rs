//! The fake Cohere `POST /v2/embed`: required `input_type` and `embedding_types`, embeddings by type.

use serde_json::{Map, Value, json};

use crate::cohere::uuid;
use crate::cohere_validate::{invalid, known, one_of};
use crate::common::{Ids, words};
use crate::gemini_embed::{DEFAULT_DIMENSIONS, vector};
use crate::reply::Reply;

const EMBED: &[&str] = &[
    "model",
    "input_type",
    "embedding_types",
    "texts",
    "images",
    "inputs",
    "truncate",
    "max_tokens",
    "output_dimension",
    "priority",
];
const INPUT_TYPES: &[&str] = &[
    "search_document",
    "search_query",
    "classification",
    "clustering",
    "image",
];
const EMBEDDING_TYPES: &[&str] = &["float", "int8", "uint8", "binary", "ubinary", "base64"];

fn strings<'a>(body: &'a Map<String, Value>, key: &str) -> Result<Vec<&'a str>, (u16, String)> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(Value::as_str)
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| invalid(format!("{key} must be an array of strings"))),
        Some(_) => Err(invalid(format!("{key} must be an array of strings"))),
    }
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// One embedding of `text` in the requested representation.
fn embedding(text: &str, dims: usize, ty: &str) -> Value {
    let v = vector(text, dims);
    let int8 = || {
        v.iter()
            .map(|x| (x * 1270.0).round().clamp(-128.0, 127.0) as i64)
    };
    let bits = |signed: bool| -> Vec<i64> {
        v.chunks(8)
            .map(|c| {
                let byte = c.iter().fold(0i64, |b, x| b << 1 | i64::from(*x > 0.0));
                if signed { byte - 128 } else { byte }
            })
            .collect()
    };
    match ty {
        "int8" => json!(int8().collect::<Vec<_>>()),
        "uint8" => json!(int8().map(|x| x + 128).collect::<Vec<_>>()),
        "binary" => json!(bits(true)),
        "ubinary" => json!(bits(false)),
        "base64" => json!(base64(
            &v.iter()
                .flat_map(|x| (*x as f32).to_le_bytes())
                .collect::<Vec<u8>>()
        )),
        _ => json!(v),
    }
}

pub(crate) fn embed(body: &Map<String, Value>, ids: &Ids) -> Result<Reply, (u16, String)> {
    known(body, EMBED, "embed")?;
    if body
        .get("model")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(invalid("model is required"));
    }
    if body.get("input_type").is_none_or(Value::is_null) {
        return Err(invalid("input_type is required"));
    }
    one_of(body, "input_type", "input_type", INPUT_TYPES)?;
    let types = strings(body, "embedding_types")?;
    if types.is_empty() {
        return Err(invalid("embedding_types is required"));
    }
    if let Some(bad) = types.iter().find(|t| !EMBEDDING_TYPES.contains(t)) {
        return Err(invalid(format!(
            "embedding_types must be one of {}, got '{bad}'",
            EMBEDDING_TYPES.join(", ")
        )));
    }
    one_of(body, "truncate", "truncate", &["NONE", "START", "END"])?;
    let texts = strings(body, "texts")?;
    let images = strings(body, "images")?;
    let inputs: Vec<String> = match body.get("inputs") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().map(Value::to_string).collect(),
        Some(_) => return Err(invalid("inputs must be an array")),
    };
    if texts.len() > 96 {
        return Err(invalid("texts must contain at most 96 elements"));
    }
    let all: Vec<&str> = texts
        .iter()
        .chain(&images)
        .copied()
        .chain(inputs.iter().map(String::as_str))
        .collect();
    if all.is_empty() {
        return Err(invalid(
            "one of 'texts', 'images' or 'inputs' must be specified",
        ));
    }
    let dims = match body.get("output_dimension") {
        None | Some(Value::Null) => DEFAULT_DIMENSIONS,
        Some(d) => match d.as_u64() {
            Some(n @ (256 | 512 | 1024 | 1536)) => n as usize,
            _ => {
                return Err(invalid(
                    "output_dimension must be one of 256, 512, 1024, 1536",
                ));
            }
        },
    };
    let mut embeddings = Map::new();
    for ty in &types {
        let list: Vec<Value> = all.iter().map(|t| embedding(t, dims, ty)).collect();
        embeddings.insert(ty.to_string(), json!(list));
    }
    let tokens = texts.iter().map(|t| words(t).max(1)).sum::<usize>() as f64;
    Ok(Reply::json(
        200,
        json!({"id": uuid(ids), "embeddings": embeddings, "texts": texts,
               "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": tokens}}}),
    ))
}
