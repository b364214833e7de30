//! Validation of Gemini request bodies: proto-JSON names and types with Google's error texts and collection.

use serde_json::{Map, Value, json};

use crate::gemini::error_with;
use crate::gemini_config::{generation_config, safety_settings};
use crate::gemini_parts::{content, turns};
use crate::gemini_schema::{built_in_with_functions, tool_config, tools};
use crate::reply::Reply;

pub(crate) const V1BETA: &str = "type.googleapis.com/google.ai.generativelanguage.v1beta";

const REQUEST: &[&str] = &[
    "model",
    "contents",
    "systemInstruction",
    "tools",
    "toolConfig",
    "safetySettings",
    "cachedContent",
    "generationConfig",
];

/// Errors collected the way Google reports them: every "Invalid JSON payload" problem at once
/// (with `google.rpc.BadRequest` details), else every semantic problem.
pub(crate) struct Errors {
    request: &'static str,
    payload: Vec<(String, String)>,
    semantic: Vec<String>,
}

impl Errors {
    pub(crate) fn new(request: &'static str) -> Errors {
        Errors {
            request,
            payload: Vec::new(),
            semantic: Vec::new(),
        }
    }

    pub(crate) fn unknown(&mut self, path: &str, key: &str) {
        let description = if path.is_empty() {
            format!("Invalid JSON payload received. Unknown name \"{key}\": Cannot find field.")
        } else {
            format!(
                "Invalid JSON payload received. Unknown name \"{key}\" at '{path}': Cannot find field."
            )
        };
        self.payload.push((path.to_string(), description));
    }

    /// A value of the wrong JSON type; `ty` is a proto scalar (`TYPE_FLOAT`) or message/enum type URL.
    pub(crate) fn invalid(&mut self, path: &str, ty: &str, v: &Value) {
        let description = format!("Invalid value at '{path}' ({ty}), {v}");
        self.payload.push((path.to_string(), description));
    }

    /// An "Invalid JSON payload" problem with a description of its own.
    pub(crate) fn payload(&mut self, path: &str, description: String) {
        self.payload.push((path.to_string(), description));
    }

    /// A semantic error on one field: `* GenerateContentRequest.<path>: <message>`.
    pub(crate) fn field(&mut self, path: &str, message: &str) {
        self.semantic
            .push(format!("* {}.{path}: {message}", self.request));
    }

    /// A semantic error with a message of its own.
    pub(crate) fn plain(&mut self, message: &str) {
        if !self.semantic.iter().any(|m| m == message) {
            self.semantic.push(message.to_string());
        }
    }

    /// Reports keys that are neither a known lowerCamelCase name nor its proto (snake_case) name.
    pub(crate) fn fields(&mut self, path: &str, obj: &Map<String, Value>, allowed: &[&str]) {
        for key in obj.keys() {
            if !allowed.contains(&key.as_str()) && !allowed.iter().any(|a| snake(a) == *key) {
                self.unknown(path, key);
            }
        }
    }

    /// The 400 reply, if anything was wrong.
    pub(crate) fn reply(self) -> Option<Reply> {
        if !self.payload.is_empty() {
            let message: Vec<&str> = self.payload.iter().map(|(_, d)| d.as_str()).collect();
            let violations: Vec<Value> = self
                .payload
                .iter()
                .map(|(field, description)| match field.as_str() {
                    "" => json!({ "description": description }),
                    f => json!({"field": f, "description": description}),
                })
                .collect();
            let details = json!([{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": violations}]);
            return Some(error_with(400, &message.join("\n"), Some(details)));
        }
        (!self.semantic.is_empty()).then(|| error_with(400, &self.semantic.join("\n"), None))
    }
}

/// `functionDeclarations` → `function_declarations`.
pub(crate) fn snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A field by its lowerCamelCase or proto name (`null` counts as absent, as in proto JSON).
pub(crate) fn get<'a>(obj: &'a Map<String, Value>, camel: &str) -> Option<&'a Value> {
    obj.get(camel)
        .or_else(|| obj.get(&snake(camel)))
        .filter(|v| !v.is_null())
}

/// The proto path of a field, as Google's messages write it: `generation_config.top_p`.
pub(crate) fn join(path: &str, camel: &str) -> String {
    if path.is_empty() {
        snake(camel)
    } else {
        format!("{path}.{}", snake(camel))
    }
}

/// An object of message type `ty` with the `allowed` fields.
pub(crate) fn message<'a>(
    e: &mut Errors,
    path: &str,
    v: &'a Value,
    ty: &str,
    allowed: &[&str],
) -> Option<&'a Map<String, Value>> {
    match v {
        Value::Object(obj) => {
            e.fields(path, obj, allowed);
            Some(obj)
        }
        _ => {
            e.invalid(path, &format!("{V1BETA}.{ty}"), v);
            None
        }
    }
}

/// A repeated field; an element type URL (or scalar name) for the error.
pub(crate) fn list<'a>(e: &mut Errors, path: &str, v: &'a Value, ty: &str) -> &'a [Value] {
    match v {
        Value::Array(items) => items,
        _ => {
            let ty = if ty.starts_with("TYPE_") {
                ty.to_string()
            } else {
                format!("{V1BETA}.{ty}")
            };
            e.invalid(path, &ty, v);
            &[]
        }
    }
}

pub(crate) fn string<'a>(e: &mut Errors, path: &str, v: &'a Value) -> Option<&'a str> {
    let s = v.as_str();
    if s.is_none() {
        e.invalid(path, "TYPE_STRING", v);
    }
    s
}

pub(crate) fn boolean(e: &mut Errors, path: &str, v: &Value) {
    if !v.is_boolean() {
        e.invalid(path, "TYPE_BOOL", v);
    }
}

/// A float (proto JSON also accepts numeric strings).
pub(crate) fn float(e: &mut Errors, path: &str, v: &Value) -> Option<f64> {
    let n = v.as_f64().or_else(|| v.as_str()?.parse().ok());
    if n.is_none() {
        e.invalid(path, "TYPE_FLOAT", v);
    }
    n
}

/// An integer (proto JSON also accepts integral strings).
pub(crate) fn int(e: &mut Errors, path: &str, v: &Value) -> Option<i64> {
    let n = v.as_i64().or_else(|| v.as_str()?.parse().ok());
    if n.is_none() {
        e.invalid(path, "TYPE_INT32", v);
    }
    n
}

/// An enum value among `values` (case-sensitive, as proto JSON enums are); `ty` names the enum.
pub(crate) fn enumeration<'a>(
    e: &mut Errors,
    path: &str,
    v: &'a Value,
    ty: &str,
    values: &[&str],
) -> Option<&'a str> {
    match v.as_str() {
        Some(s) if values.contains(&s) => Some(s),
        _ => {
            e.invalid(path, &format!("{V1BETA}.{ty}"), v);
            None
        }
    }
}

/// A `google.protobuf.Struct`: any JSON object.
pub(crate) fn structure(e: &mut Errors, path: &str, v: &Value) {
    if !v.is_object() {
        e.invalid(path, "type.googleapis.com/google.protobuf.Struct", v);
    }
}

/// Validates a `generateContent` / `streamGenerateContent` body; `Some` is the 400 to answer.
pub(crate) fn validate(body: &Map<String, Value>) -> Option<Reply> {
    let mut e = Errors::new("GenerateContentRequest");
    e.fields("", body, REQUEST);
    let contents =
        get(body, "contents").map_or(&[][..], |v| list(&mut e, "contents", v, "Content"));
    for (i, c) in contents.iter().enumerate() {
        content(&mut e, &format!("contents[{i}]"), c);
    }
    if let Some(s) = get(body, "systemInstruction") {
        content(&mut e, "system_instruction", s);
    }
    if let Some(c) = get(body, "cachedContent") {
        string(&mut e, "cached_content", c);
    }
    let declared = tools(&mut e, get(body, "tools"));
    tool_config(&mut e, get(body, "toolConfig"), &declared);
    generation_config(&mut e, get(body, "generationConfig"));
    safety_settings(&mut e, get(body, "safetySettings"));
    if contents.is_empty() {
        e.field("contents", "contents is not specified");
    }
    turns(&mut e, contents, &declared);
    built_in_with_functions(&mut e, get(body, "tools"), contents);
    e.reply()
}
