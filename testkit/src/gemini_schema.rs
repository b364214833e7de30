//! Validation of Gemini `tools` (function declarations, the OpenAPI-subset `Schema`) and `toolConfig`.

use serde_json::{Map, Value};

use crate::gemini_parts::parts_with;
use crate::gemini_validate::{
    Errors, boolean, enumeration, float, get, int, join, list, message, string,
};

const TOOL: &[&str] = &[
    "functionDeclarations",
    "googleSearchRetrieval",
    "codeExecution",
    "googleSearch",
    "urlContext",
    "computerUse",
    "fileSearch",
    "googleMaps",
];
const DECLARATION: &[&str] = &[
    "name",
    "description",
    "parameters",
    "parametersJsonSchema",
    "response",
    "responseJsonSchema",
    "behavior",
];
/// The fields of Gemini's `Schema`; JSON-Schema keywords such as `additionalProperties`, `$schema`,
/// `const`, `oneOf`, `$ref` or `strict` are unknown names.
const SCHEMA: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "default",
    "items",
    "minimum",
    "maximum",
];
const TYPES: &[&str] = &[
    "TYPE_UNSPECIFIED",
    "STRING",
    "NUMBER",
    "INTEGER",
    "BOOLEAN",
    "ARRAY",
    "OBJECT",
    "NULL",
];
const NAME_RULE: &str = "Invalid function name. Must start with a letter or an underscore. Must be alphameric \
     (a-z, A-Z, 0-9), underscores (_), dots (.), colons (:), or dashes (-), with a maximum length of 64.";

/// Validates `tools`; returns the declared function names.
pub(crate) fn tools(e: &mut Errors, v: Option<&Value>) -> Vec<String> {
    let mut names = Vec::new();
    for (i, tool) in v
        .map_or(&[][..], |v| list(e, "tools", v, "Tool"))
        .iter()
        .enumerate()
    {
        let path = format!("tools[{i}]");
        let Some(t) = message(e, &path, tool, "Tool", TOOL) else {
            continue;
        };
        let decl_path = join(&path, "functionDeclarations");
        let decls = get(t, "functionDeclarations")
            .map_or(&[][..], |v| list(e, &decl_path, v, "FunctionDeclaration"));
        for (j, d) in decls.iter().enumerate() {
            declaration(e, &format!("{decl_path}[{j}]"), d, &mut names);
        }
        if let Some(search) = get(t, "googleSearch") {
            let path = join(&path, "googleSearch");
            message(e, &path, search, "Tool.GoogleSearch", &["timeRangeFilter"]);
        }
    }
    names
}

/// Built-in tools that Gemini 2.x cannot combine with function calling.
const BUILT_IN: &[&str] = &["googleSearch", "codeExecution"];

/// Google Search or code execution beside function declarations, or beside function calls and
/// responses in the turns: Gemini 2.x refuses the request (multi-tool use is Live API only).
pub(crate) fn built_in_with_functions(e: &mut Errors, tools: Option<&Value>, contents: &[Value]) {
    let tools: Vec<&Map<String, Value>> = tools
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .collect();
    let built_in = tools
        .iter()
        .any(|t| BUILT_IN.iter().any(|k| get(t, k).is_some()));
    let declared = tools.iter().any(|t| {
        get(t, "functionDeclarations")
            .and_then(Value::as_array)
            .is_some_and(|d| !d.is_empty())
    });
    let called = contents.iter().any(|c| {
        parts_with(c, "functionCall")
            .chain(parts_with(c, "functionResponse"))
            .next()
            .is_some()
    });
    if built_in && (declared || called) {
        e.plain("Tool use with function calling is unsupported by the model.");
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c))
}

fn declaration(e: &mut Errors, path: &str, v: &Value, names: &mut Vec<String>) {
    let Some(d) = message(e, path, v, "FunctionDeclaration", DECLARATION) else {
        return;
    };
    match get(d, "name").map(|n| string(e, &join(path, "name"), n)) {
        Some(Some(name)) if valid_name(name) => names.push(name.to_string()),
        Some(None) => {}
        _ => e.field(&join(path, "name"), NAME_RULE),
    }
    if let Some(desc) = get(d, "description") {
        string(e, &join(path, "description"), desc);
    }
    for key in ["parameters", "response"] {
        if let Some(s) = get(d, key) {
            schema(e, &join(path, key), s);
        }
    }
    if let Some(b) = get(d, "behavior") {
        let values = ["UNSPECIFIED", "BLOCKING", "NON_BLOCKING"];
        enumeration(
            e,
            &join(path, "behavior"),
            b,
            "FunctionDeclaration.Behavior",
            &values,
        );
    }
    if get(d, "parameters").is_some() && get(d, "parametersJsonSchema").is_some() {
        e.field(
            &join(path, "parameters"),
            "parameters and parameters_json_schema are mutually exclusive",
        );
    }
}

/// An OpenAPI-subset `Schema` (type names upper-case; lower-case is tolerated in practice).
pub(crate) fn schema(e: &mut Errors, path: &str, v: &Value) {
    let Some(s) = message(e, path, v, "Schema", SCHEMA) else {
        return;
    };
    let ty = match get(s, "type") {
        None => String::new(),
        Some(Value::String(t)) if TYPES.contains(&t.to_ascii_uppercase().as_str()) => {
            t.to_ascii_uppercase()
        }
        Some(other) => {
            e.invalid(
                &join(path, "type"),
                "type.googleapis.com/google.ai.generativelanguage.v1beta.Type",
                other,
            );
            String::new()
        }
    };
    for key in ["format", "title", "description", "pattern"] {
        if let Some(x) = get(s, key) {
            string(e, &join(path, key), x);
        }
    }
    if let Some(n) = get(s, "nullable") {
        boolean(e, &join(path, "nullable"), n);
    }
    for key in [
        "maxItems",
        "minItems",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
    ] {
        if let Some(x) = get(s, key) {
            int(e, &join(path, key), x);
        }
    }
    for key in ["minimum", "maximum"] {
        if let Some(x) = get(s, key) {
            float(e, &join(path, key), x);
        }
    }
    for key in ["enum", "required", "propertyOrdering"] {
        let at = join(path, key);
        for (i, x) in get(s, key)
            .map_or(&[][..], |v| list(e, &at, v, "TYPE_STRING"))
            .iter()
            .enumerate()
        {
            string(e, &format!("{at}[{i}]"), x);
        }
    }
    if let Some(items) = get(s, "items") {
        schema(e, &join(path, "items"), items);
    }
    let any_of = join(path, "anyOf");
    for (i, x) in get(s, "anyOf")
        .map_or(&[][..], |v| list(e, &any_of, v, "Schema"))
        .iter()
        .enumerate()
    {
        schema(e, &format!("{any_of}[{i}]"), x);
    }
    let props = properties(e, path, s);
    if ty == "OBJECT" && props.as_ref().is_some_and(Map::is_empty) {
        e.field(
            &join(path, "properties"),
            "should be non-empty for OBJECT type",
        );
    }
    let required = get(s, "required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    for (i, name) in required.enumerate() {
        let defined = props
            .as_ref()
            .is_some_and(|p| name.as_str().is_some_and(|n| p.contains_key(n)));
        if !defined {
            e.field(
                &format!("{}[{i}]", join(path, "required")),
                "property is not defined",
            );
        }
    }
    if get(s, "enum").is_some() && !ty.is_empty() && ty != "STRING" {
        e.field(&join(path, "enum"), "only allowed for STRING type");
    }
}

/// `properties` (a map of schemas, reported as `properties[i].value` like proto map entries).
fn properties(e: &mut Errors, path: &str, s: &Map<String, Value>) -> Option<Map<String, Value>> {
    let at = join(path, "properties");
    match get(s, "properties")? {
        Value::Object(props) => {
            for (i, p) in props.values().enumerate() {
                schema(e, &format!("{at}[{i}].value"), p);
            }
            Some(props.clone())
        }
        other => {
            e.invalid(
                &at,
                "type.googleapis.com/google.ai.generativelanguage.v1beta.Schema",
                other,
            );
            None
        }
    }
}

pub(crate) fn tool_config(e: &mut Errors, v: Option<&Value>, declared: &[String]) {
    let Some(config) = v.and_then(|v| {
        message(
            e,
            "tool_config",
            v,
            "ToolConfig",
            &["functionCallingConfig", "retrievalConfig"],
        )
    }) else {
        return;
    };
    let path = "tool_config.function_calling_config";
    let Some(fcc) = get(config, "functionCallingConfig").and_then(|v| {
        message(
            e,
            path,
            v,
            "FunctionCallingConfig",
            &["mode", "allowedFunctionNames"],
        )
    }) else {
        return;
    };
    let modes = ["MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED"];
    let mode = get(fcc, "mode").and_then(|m| {
        enumeration(
            e,
            &join(path, "mode"),
            m,
            "FunctionCallingConfig.Mode",
            &modes,
        )
    });
    let at = join(path, "allowedFunctionNames");
    let names =
        get(fcc, "allowedFunctionNames").map_or(&[][..], |v| list(e, &at, v, "TYPE_STRING"));
    if !names.is_empty() && !matches!(mode, Some("ANY" | "VALIDATED")) {
        e.field(
            &at,
            "allowed_function_names should be empty unless mode is ANY or VALIDATED",
        );
    }
    for (i, n) in names.iter().enumerate() {
        let name = string(e, &format!("{at}[{i}]"), n);
        if let Some(name) = name.filter(|name| !declared.iter().any(|d| d == name)) {
            e.field(
                &format!("{at}[{i}]"),
                &format!("function '{name}' is not declared in tools[].function_declarations"),
            );
        }
    }
}
