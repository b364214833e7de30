//! Body decoding (axum/serde rejections) and the router's `Validation` rules of the fake TGI, with TGI's texts.

use serde_json::{Map, Value};

use crate::reply::Reply;
use crate::server::Recorded;
use crate::tgi::{Endpoint, MAX_INPUT_TOKENS, MAX_TOTAL_TOKENS, TgiRequest};

#[derive(Clone, Copy)]
enum Kind {
    F32,
    I32,
    U32,
    Usize,
    U64,
    Bool,
    OptBool,
    Str,
    Stops,
    Grammar,
}

const PARAMS: &[(&str, Kind)] = &[
    ("best_of", Kind::Usize),
    ("temperature", Kind::F32),
    ("repetition_penalty", Kind::F32),
    ("frequency_penalty", Kind::F32),
    ("top_k", Kind::I32),
    ("top_p", Kind::F32),
    ("typical_p", Kind::F32),
    ("do_sample", Kind::Bool),
    ("max_new_tokens", Kind::U32),
    ("return_full_text", Kind::OptBool),
    ("stop", Kind::Stops),
    ("truncate", Kind::Usize),
    ("watermark", Kind::Bool),
    ("details", Kind::Bool),
    ("decoder_input_details", Kind::Bool),
    ("seed", Kind::U64),
    ("top_n_tokens", Kind::U32),
    ("grammar", Kind::Grammar),
    ("adapter_id", Kind::Str),
];

/// serde's description of an unexpected JSON value.
fn unexpected(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean `{b}`"),
        Value::Number(n) if n.is_f64() => format!("floating point `{n}`"),
        Value::Number(n) => format!("integer `{n}`"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "sequence".into(),
        Value::Object(_) => "map".into(),
    }
}

fn type_error(path: &str, v: &Value, expected: &str) -> String {
    format!(
        "{path}: invalid type: {}, expected {expected}",
        unexpected(v)
    )
}

/// axum's `Json` rejection for a body that does not fit the target type: 422, plain text.
fn data_error(message: &str) -> Reply {
    let text = format!("Failed to deserialize the JSON body into the target type: {message}");
    Reply::raw(422, "text/plain; charset=utf-8", text)
}

fn check_param(name: &str, kind: Kind, v: &Value) -> Result<(), String> {
    let path = format!("parameters.{name}");
    if v.is_null() {
        // Only `Option` fields accept null.
        return match kind {
            Kind::Bool => Err(type_error(&path, v, "a boolean")),
            Kind::Stops => Err(type_error(&path, v, "a sequence")),
            _ => Ok(()),
        };
    }
    let int = |ty: &str, max: u64, signed: bool| -> Result<(), String> {
        match v {
            Value::Number(n) if n.is_f64() => Err(type_error(&path, v, ty)),
            Value::Number(n) if n.as_u64().is_some_and(|x| x <= max) => Ok(()),
            Value::Number(n) if signed && n.as_i64().is_some_and(|x| x >= -(max as i64) - 1) => {
                Ok(())
            }
            Value::Number(_) => Err(format!(
                "{path}: invalid value: {}, expected {ty}",
                unexpected(v)
            )),
            _ => Err(type_error(&path, v, ty)),
        }
    };
    match kind {
        Kind::F32 if v.is_number() => Ok(()),
        Kind::F32 => Err(type_error(&path, v, "f32")),
        Kind::I32 => int("i32", i32::MAX as u64, true),
        Kind::U32 => int("u32", u32::MAX as u64, false),
        Kind::Usize => int("usize", u64::MAX, false),
        Kind::U64 => int("u64", u64::MAX, false),
        Kind::Bool | Kind::OptBool if v.is_boolean() => Ok(()),
        Kind::Bool | Kind::OptBool => Err(type_error(&path, v, "a boolean")),
        Kind::Str if v.is_string() => Ok(()),
        Kind::Str => Err(type_error(&path, v, "a string")),
        Kind::Stops => match v.as_array() {
            None => Err(type_error(&path, v, "a sequence")),
            Some(items) => items.iter().enumerate().try_for_each(|(i, s)| match s {
                Value::String(_) => Ok(()),
                other => Err(type_error(&format!("{path}[{i}]"), other, "a string")),
            }),
        },
        Kind::Grammar => grammar(&path, v),
    }
}

fn grammar(path: &str, v: &Value) -> Result<(), String> {
    let obj = v
        .as_object()
        .ok_or_else(|| type_error(path, v, "adjacently tagged enum GrammarType"))?;
    let ty = match obj.get("type") {
        None => return Err(format!("{path}: missing field `type`")),
        Some(Value::String(t)) => t.as_str(),
        Some(other) => {
            return Err(type_error(
                &format!("{path}.type"),
                other,
                "variant identifier",
            ));
        }
    };
    if !["json", "regex", "json_schema"].contains(&ty) {
        return Err(format!(
            "{path}.type: unknown variant `{ty}`, expected one of `json`, `regex`, `json_schema`"
        ));
    }
    match obj.get("value") {
        None => Err(format!("{path}: missing field `value`")),
        Some(Value::String(_)) => Ok(()),
        Some(other) if ty == "regex" => {
            Err(type_error(&format!("{path}.value"), other, "a string"))
        }
        Some(_) => Ok(()),
    }
}

/// Decodes the body like axum's `Json<GenerateRequest>` extractor (plain-text rejections).
/// Stricter than TGI on one point: unknown names inside `parameters` are rejected (TGI ignores
/// them silently), so a translation that sends `max_tokens` instead of `max_new_tokens` shows up.
pub(crate) fn decode(req: &Recorded, endpoint: Endpoint) -> Result<TgiRequest, Reply> {
    let json_type = req.header("content-type").is_some_and(|ct| {
        let essence = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        essence == "application/json"
            || (essence.starts_with("application/") && essence.ends_with("+json"))
    });
    if !json_type {
        let msg = "Expected request with `Content-Type: application/json`";
        return Err(Reply::raw(415, "text/plain; charset=utf-8", msg));
    }
    let body: Value = serde_json::from_str(&req.raw_body).map_err(|e| {
        let text = format!("Failed to parse the request body as JSON: {e}");
        Reply::raw(400, "text/plain; charset=utf-8", text)
    })?;
    let obj = body.as_object().ok_or_else(|| {
        data_error(&format!(
            "invalid type: {}, expected struct GenerateRequest",
            unexpected(&body)
        ))
    })?;
    let inputs = match obj.get("inputs") {
        None => return Err(data_error("missing field `inputs`")),
        Some(Value::String(s)) => s.clone(),
        Some(other) => return Err(data_error(&type_error("inputs", other, "a string"))),
    };
    let params = match obj.get("parameters") {
        None => Map::new(),
        Some(Value::Object(p)) => p.clone(),
        Some(other) => {
            return Err(data_error(&type_error(
                "parameters",
                other,
                "struct GenerateParameters",
            )));
        }
    };
    for (key, v) in &params {
        match PARAMS.iter().find(|(name, _)| name == key) {
            Some((name, kind)) => check_param(name, *kind, v).map_err(|e| data_error(&e))?,
            None => {
                let names: Vec<String> = PARAMS.iter().map(|(n, _)| format!("`{n}`")).collect();
                let msg = format!(
                    "parameters: unknown field `{key}`, expected one of {}",
                    names.join(", ")
                );
                return Err(data_error(&msg));
            }
        }
    }
    for key in ["add_special_tokens", "stream"] {
        match obj.get(key) {
            Some(v) if !v.is_boolean() && (key != "stream" || endpoint == Endpoint::Compat) => {
                return Err(data_error(&type_error(key, v, "a boolean")));
            }
            _ => {}
        }
    }
    let stream = match endpoint {
        Endpoint::Generate => false,
        Endpoint::Stream => true,
        Endpoint::Compat => obj.get("stream").and_then(Value::as_bool) == Some(true),
    };
    Ok(TgiRequest {
        endpoint,
        inputs,
        params,
        stream,
    })
}

/// The router's validation, in its order; `Err` is the `ValidationError` text.
pub(crate) fn validate(r: &TgiRequest) -> Result<(), String> {
    let best_of = r.u64("best_of");
    if let Some(b) = best_of.filter(|b| *b == 0 || *b > 2) {
        return Err(format!("`best_of` must be > 0 and <= 2. Given: {b}"));
    }
    let best_of = best_of.unwrap_or(1);
    if r.stream && best_of != 1 {
        return Err("`best_of` != 1 is not supported when streaming tokens".into());
    }
    if r.stream && r.flag("decoder_input_details") {
        return Err(
            "`decoder_input_details` == true is not supported when streaming tokens".into(),
        );
    }
    if best_of > 1 && !r.sampling() {
        return Err("you must use sampling when `best_of` is > 1".into());
    }
    let positive = |key: &str| r.f64(key).is_some_and(|x| x <= 0.0);
    if positive("temperature") {
        return Err("`temperature` must be strictly positive".into());
    }
    if positive("repetition_penalty") {
        return Err("`repetition_penalty` must be strictly positive".into());
    }
    if r.f64("frequency_penalty")
        .is_some_and(|x| !(-2.0..=2.0).contains(&x))
    {
        return Err("`frequency_penalty` must be >= -2.0 and <= 2.0".into());
    }
    for key in ["top_p", "typical_p"] {
        if r.f64(key).is_some_and(|x| x <= 0.0 || x >= 1.0) {
            return Err(format!("`{key}` must be > 0.0 and < 1.0"));
        }
    }
    if r.params
        .get("top_k")
        .and_then(Value::as_i64)
        .is_some_and(|k| k <= 0)
    {
        return Err("`top_k` must be strictly positive".into());
    }
    if r.u64("max_new_tokens") == Some(0) {
        return Err("`max_new_tokens` must be strictly positive".into());
    }
    let stops = r.stops().len();
    if stops > 4 {
        return Err(format!(
            "`stop` supports up to 4 stop sequences. Given: {stops}"
        ));
    }
    if best_of > 1 && r.u64("seed").is_some() {
        return Err("`seed` must not be set when `best_of` > 1".into());
    }
    if let Some(n) = r.u64("top_n_tokens").filter(|n| *n > 5) {
        return Err(format!("`top_n_tokens` must be >= 0 and <= 5. Given: {n}"));
    }
    if r.inputs.is_empty() {
        return Err("`inputs` cannot be empty".into());
    }
    if let Some(t) = r
        .u64("truncate")
        .filter(|t| *t == 0 || *t > MAX_INPUT_TOKENS)
    {
        return Err(format!(
            "`truncate` must be strictly positive and less than {MAX_INPUT_TOKENS}. Given: {t}"
        ));
    }
    let (input, max_new) = (r.input_length(), r.max_new_tokens());
    if input + max_new > MAX_TOTAL_TOKENS {
        return Err(format!(
            "`inputs` tokens + `max_new_tokens` must be <= {MAX_TOTAL_TOKENS}. Given: {input} `inputs` tokens and {max_new} `max_new_tokens`"
        ));
    }
    if input > MAX_INPUT_TOKENS {
        return Err(format!(
            "`inputs` must have less than {MAX_INPUT_TOKENS} tokens. Given: {input}"
        ));
    }
    grammar_valid(r.params.get("grammar"))
}

fn grammar_valid(grammar: Option<&Value>) -> Result<(), String> {
    let Some(g) = grammar.and_then(Value::as_object) else {
        return Ok(());
    };
    if g.get("type").and_then(Value::as_str) != Some("json") {
        return Ok(());
    }
    let schema = match g.get("value") {
        Some(Value::String(s)) => {
            serde_json::from_str::<Value>(s).map_err(|e| format!("grammar is not valid: {e}"))?
        }
        Some(v @ Value::Object(_)) => v.clone(),
        _ => return Err("grammar is not supported".into()),
    };
    if schema.get("properties").is_none() {
        return Err("grammar is not valid: Grammar must have a 'properties' field".into());
    }
    Ok(())
}
