//! Validation of Gemini `contents`: parts and their `data` oneof, roles, function-call / function-response turns.

use serde_json::{Map, Value};

use crate::gemini_validate::{Errors, boolean, get, join, list, message, snake, string, structure};

const CONTENT: &[&str] = &["role", "parts"];
const PART: &[&str] = &[
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
    "thought",
    "thoughtSignature",
    "videoMetadata",
    "partMetadata",
];
/// The members of `Part`'s `data` oneof.
const DATA: &[&str] = &[
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
];

/// Base64 (standard or URL-safe, padding optional), as proto JSON `bytes` fields take it.
fn bytes(e: &mut Errors, path: &str, v: &Value) {
    let ok = v.as_str().is_some_and(|s| {
        let body = s.trim_end_matches('=');
        s.len() - body.len() <= 2
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/-_".contains(&b))
    });
    if !ok {
        let shown = v
            .as_str()
            .map_or_else(|| v.to_string(), |s| format!("\"{s}\""));
        let description =
            format!("Invalid value at '{path}' (TYPE_BYTES), Base64 decoding failed for {shown}");
        e.payload(path, description);
    }
}

/// A `Content`: optional role, non-empty parts.
pub(crate) fn content(e: &mut Errors, path: &str, v: &Value) {
    let Some(c) = message(e, path, v, "Content", CONTENT) else {
        return;
    };
    if let Some(role) = get(c, "role") {
        string(e, &join(path, "role"), role);
    }
    let parts_path = join(path, "parts");
    let parts = get(c, "parts").map_or(&[][..], |v| list(e, &parts_path, v, "Part"));
    if parts.is_empty() {
        e.field(&parts_path, "contents.parts must not be empty.");
    }
    for (j, p) in parts.iter().enumerate() {
        part(e, &format!("{parts_path}[{j}]"), p);
    }
}

fn part(e: &mut Errors, path: &str, v: &Value) {
    let Some(p) = message(e, path, v, "Part", PART) else {
        return;
    };
    let set: Vec<&str> = DATA
        .iter()
        .copied()
        .filter(|k| get(p, k).is_some())
        .collect();
    match set.as_slice() {
        [] => e.field(
            &format!("{path}.data"),
            "required oneof field 'data' must have one initialized field",
        ),
        [_] => {}
        [_, second, ..] => {
            let description = format!(
                "Invalid JSON payload received. Oneof field 'data' is already set. Cannot set '{second}'"
            );
            e.payload(path, description);
        }
    }
    if let Some(t) = get(p, "text") {
        string(e, &join(path, "text"), t);
    }
    if let Some(t) = get(p, "thought") {
        boolean(e, &join(path, "thought"), t);
    }
    if let Some(s) = get(p, "thoughtSignature") {
        bytes(e, &join(path, "thoughtSignature"), s);
    }
    let sub = |e: &mut Errors, name: &str, ty: &str, allowed: &[&str]| {
        let v = get(p, name)?;
        let at = join(path, name);
        message(e, &at, v, ty, allowed).map(|m| (at, m))
    };
    if let Some((at, blob)) = sub(e, "inlineData", "Blob", &["mimeType", "data"]) {
        required_string(e, &at, blob, "mimeType");
        match get(blob, "data") {
            Some(d) => bytes(e, &join(&at, "data"), d),
            None => e.field(&join(&at, "data"), "data is not specified"),
        }
    }
    if let Some((at, file)) = sub(e, "fileData", "FileData", &["mimeType", "fileUri"]) {
        if let Some(m) = get(file, "mimeType") {
            string(e, &join(&at, "mimeType"), m);
        }
        required_string(e, &at, file, "fileUri");
    }
    if let Some((at, call)) = sub(e, "functionCall", "FunctionCall", &["id", "name", "args"]) {
        required_string(e, &at, call, "name");
        if let Some(args) = get(call, "args") {
            structure(e, &join(&at, "args"), args);
        }
    }
    let response_fields = &[
        "id",
        "name",
        "response",
        "willContinue",
        "scheduling",
        "parts",
    ];
    if let Some((at, r)) = sub(e, "functionResponse", "FunctionResponse", response_fields) {
        match get(r, "name").map(|n| string(e, &join(&at, "name"), n)) {
            None | Some(Some("")) => e.field(&join(&at, "name"), "Name cannot be empty."),
            _ => {}
        }
        match get(r, "response") {
            Some(resp) => structure(e, &join(&at, "response"), resp),
            None => e.field(&join(&at, "response"), "response is not specified"),
        }
    }
    sub(
        e,
        "executableCode",
        "ExecutableCode",
        &["language", "code", "id"],
    );
    sub(
        e,
        "codeExecutionResult",
        "CodeExecutionResult",
        &["outcome", "output", "id"],
    );
    sub(
        e,
        "videoMetadata",
        "VideoMetadata",
        &["startOffset", "endOffset", "fps"],
    );
    if let Some(m) = get(p, "partMetadata") {
        structure(e, &join(path, "partMetadata"), m);
    }
}

fn required_string(e: &mut Errors, path: &str, obj: &Map<String, Value>, name: &str) {
    let at = join(path, name);
    match get(obj, name) {
        Some(v) => {
            if string(e, &at, v) == Some("") {
                e.field(&at, &format!("{} is not specified", snake(name)));
            }
        }
        None => e.field(&at, &format!("{} is not specified", snake(name))),
    }
}

pub(crate) fn role_of(c: &Value) -> &str {
    c.get("role").and_then(Value::as_str).unwrap_or("")
}

/// The parts of a content that carry `kind` (e.g. `functionCall`).
pub(crate) fn parts_with<'a>(
    c: &'a Value,
    kind: &'a str,
) -> impl Iterator<Item = &'a Map<String, Value>> + 'a {
    c.get("parts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .filter(move |p| get(p, kind).is_some())
}

/// Roles, and the pairing of function-call turns with function-response turns.
pub(crate) fn turns(e: &mut Errors, contents: &[Value], declared: &[String]) {
    for (i, c) in contents.iter().enumerate() {
        if !matches!(role_of(c), "" | "user" | "model") {
            e.plain("Please use a valid role: user, model.");
        }
        let prev = i.checked_sub(1).map(|p| &contents[p]);
        let calls = parts_with(c, "functionCall").count();
        if calls > 0 && prev.is_none_or(|p| role_of(p) == "model") {
            e.plain("Please ensure that function call turn comes immediately after a user turn or after a function response turn.");
        }
        let responses: Vec<&Map<String, Value>> = parts_with(c, "functionResponse").collect();
        if responses.is_empty() {
            continue;
        }
        let prev_calls = prev
            .filter(|p| role_of(p) == "model")
            .map_or(0, |p| parts_with(p, "functionCall").count());
        if prev_calls == 0 {
            e.plain("Please ensure that function response turn comes immediately after a function call turn.");
        } else if prev_calls != responses.len() {
            e.plain("Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn.");
        }
        for (j, part) in c
            .get("parts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let name = part
                .as_object()
                .and_then(|p| get(p, "functionResponse"))
                .and_then(|r| get(r.as_object()?, "name")?.as_str());
            if let Some(name) = name.filter(|n| !n.is_empty() && !declared.iter().any(|d| d == n)) {
                let at = format!("contents[{i}].parts[{j}].function_response.name");
                e.field(
                    &at,
                    &format!("function '{name}' is not declared in tools[].function_declarations"),
                );
            }
        }
    }
}
