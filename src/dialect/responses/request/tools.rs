//! Responses tools and `tool_choice` in chat form.
//!
//! Function tools are flat in Responses and nested under `function` in chat. A web search
//! tool becomes chat's `web_search_options`; every other hosted tool (file search, computer
//! use, code interpreter, MCP, Codex's `namespace`, `custom`, types not known yet) has no
//! chat form: it is left out and noted, never an error, so clients that always send them
//! still work (strictness, which refuses instead, is `translate::fidelity`'s).

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use super::{bad, note};
use crate::error::ProxyError;

/// The tool types that are a web search.
pub(super) const WEB_SEARCH: &[&str] = &[
    "web_search",
    "web_search_preview",
    "web_search_2025_08_26",
    "web_search_preview_2025_03_11",
];

/// The request's tools in chat form.
#[derive(Debug, Default)]
pub(super) struct Tools {
    /// Chat function tools.
    pub chat: Vec<Value>,
    /// Chat's `web_search_options`, from the last web search tool.
    pub web_search: Option<Value>,
}

/// The `tools` field in chat form.
pub(super) fn tools(tools: Option<&Value>, dropped: &mut Vec<String>) -> Result<Tools, ProxyError> {
    let mut out = Tools::default();
    let list = match tools {
        None | Some(Value::Null) => return Ok(out),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(bad("`tools` must be an array", "tools")),
    };
    for (i, tool) in list.iter().enumerate() {
        let Some(kind) = tool.get("type").and_then(Value::as_str) else {
            return Err(bad(
                "every tool needs a string `type`",
                format!("tools[{i}].type"),
            ));
        };
        if kind == "function" {
            out.chat.push(function(tool, i)?);
        } else if WEB_SEARCH.contains(&kind) {
            out.web_search = Some(web_search_options(tool, i, dropped));
            note(dropped, &format!("tools[{i}]:{kind}"));
        } else {
            note(dropped, &format!("tools[{i}]:{kind}"));
        }
    }
    Ok(out)
}

/// A flat Responses function tool as a chat one. A tool without parameters gets the empty
/// object schema, which every upstream takes; `strict` is sent only when true.
fn function(tool: &Value, i: usize) -> Result<Value, ProxyError> {
    // Lenient: a chat-shaped tool (`function: {...}`) is read the same way.
    let f = tool
        .get("function")
        .filter(|f| f.is_object())
        .unwrap_or(tool);
    let Some(name) = f
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    else {
        return Err(bad(
            "a function tool needs a non-empty `name`",
            format!("tools[{i}].name"),
        ));
    };
    let parameters = match f.get("parameters") {
        None | Some(Value::Null) => json!({"type": "object", "properties": {}}),
        Some(p @ Value::Object(_)) => p.clone(),
        Some(_) => {
            return Err(bad(
                "a function's `parameters` must be a JSON Schema object",
                format!("tools[{i}].parameters"),
            ));
        }
    };
    let mut out = json!({"name": name, "parameters": parameters});
    if let Some(d) = f.get("description").and_then(Value::as_str) {
        out["description"] = Value::String(d.into());
    }
    if f.get("strict") == Some(&Value::Bool(true)) {
        out["strict"] = Value::Bool(true);
    }
    Ok(json!({"type": "function", "function": out}))
}

/// A web search tool as chat's `web_search_options`: the context size, and the location
/// (flat in Responses, under `approximate` in chat). Domain filters have no chat form.
fn web_search_options(tool: &Value, i: usize, dropped: &mut Vec<String>) -> Value {
    let mut options = Map::new();
    if let Some(size) = tool.get("search_context_size").and_then(Value::as_str) {
        options.insert("search_context_size".into(), Value::String(size.into()));
    }
    if let Some(location) = tool.get("user_location").and_then(Value::as_object) {
        let approximate: Map<String, Value> = ["city", "country", "region", "timezone"]
            .into_iter()
            .filter_map(|k| {
                location
                    .get(k)
                    .filter(|v| v.is_string())
                    .map(|v| (k.into(), v.clone()))
            })
            .collect();
        if !approximate.is_empty() {
            options.insert(
                "user_location".into(),
                json!({"type": "approximate", "approximate": approximate}),
            );
        }
    }
    if tool.get("filters").is_some_and(|f| !f.is_null()) {
        note(dropped, &format!("tools[{i}].filters"));
    }
    Value::Object(options)
}

/// `tool_choice` in chat form. The modes are the same strings; a forced function nests its
/// name under `function`; `allowed_tools` keeps only the listed functions in `tools` and
/// becomes its mode (the form every mapping reads); a hosted tool's choice is `auto`, noted.
pub(super) fn tool_choice(
    choice: Option<&Value>,
    tools: &mut Tools,
    dropped: &mut Vec<String>,
) -> Result<Option<Value>, ProxyError> {
    let choice = match choice {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) if matches!(s.as_str(), "auto" | "none" | "required") => {
            return Ok(Some(Value::String(s.clone())));
        }
        Some(Value::Object(o)) => o,
        Some(_) => {
            return Err(bad(
                "`tool_choice` must be auto, none, required or an object",
                "tool_choice",
            ));
        }
    };
    match choice.get("type").and_then(Value::as_str) {
        Some("function") => match choice.get("name").and_then(Value::as_str) {
            Some(name) if !name.is_empty() => Ok(Some(
                json!({"type": "function", "function": {"name": name}}),
            )),
            _ => Err(bad(
                "a function tool_choice needs a `name`",
                "tool_choice.name",
            )),
        },
        Some("allowed_tools") => {
            let mode = match choice.get("mode") {
                None | Some(Value::Null) => "auto",
                Some(Value::String(m)) if m == "auto" || m == "required" => m,
                Some(_) => {
                    return Err(bad(
                        "`tool_choice.mode` must be auto or required",
                        "tool_choice.mode",
                    ));
                }
            };
            let Some(allowed) = choice.get("tools").and_then(Value::as_array) else {
                return Err(bad(
                    "`tool_choice.tools` must be an array",
                    "tool_choice.tools",
                ));
            };
            let names: HashSet<&str> = allowed
                .iter()
                .filter(|t| t.get("type").and_then(Value::as_str) == Some("function"))
                .filter_map(|t| t.get("name").and_then(Value::as_str))
                .collect();
            tools.chat.retain(|t| {
                t["function"]["name"]
                    .as_str()
                    .is_some_and(|n| names.contains(n))
            });
            Ok(Some(Value::String(mode.into())))
        }
        Some(hosted) => {
            note(dropped, &format!("tool_choice:{hosted}"));
            Ok(Some(Value::String("auto".into())))
        }
        None => Err(bad(
            "`tool_choice` needs a string `type`",
            "tool_choice.type",
        )),
    }
}
