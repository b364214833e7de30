//! The Responses API request side: a `POST /v1/responses` body becomes the canonical Chat
//! Completions request that every mapping already reads, so each mapping serves the Responses
//! API with no change to its YAML.
//!
//! [`to_chat`] checks the body, turns the stored history and this request's input items into
//! chat messages (`items`), its tools and tool choice into chat ones (`tools`) and its
//! other fields into their chat names (`fields`). What an upstream cannot receive is left
//! out and named in [`Converted::dropped`]; what the bridge cannot honour at all is a 400.
//! `docs/responses.md` is the table of what becomes what.

use serde_json::{Map, Value, json};

use crate::error::ProxyError;

mod content;
mod fields;
mod items;
mod normalize;
mod reasoning;
mod tools;

#[cfg(test)]
mod fields_tests;
#[cfg(test)]
mod items_tests;
#[cfg(test)]
mod malformed_tests;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tools_tests;

/// A Responses request as the chat request the mappings read, with what it left out.
#[derive(Debug, Clone, PartialEq)]
pub struct Converted {
    /// The canonical chat request: `model` verbatim, `messages` (this request's
    /// `instructions` first, then the history, then the input), the chat forms of the tools
    /// and fields, and `stream_options: {include_usage: true}` when streaming, so the usage
    /// reaches the terminal event.
    pub chat: Value,
    /// This request's input items as full item objects, each with an `id` and a `type` (a
    /// string input is one user message): what `GET /v1/responses/{id}/input_items` lists.
    pub input_items: Vec<Value>,
    /// What was accepted but not passed on, e.g. `tools[2]:namespace`, `tool_choice:mcp`,
    /// `include:file_search_call.results`, `stop` (a field the Responses API does not have):
    /// the `x-rosetta-dropped` header. Printable ASCII, short, at most [`MAX_DROPPED`] + 1.
    pub dropped: Vec<String>,
}

/// At most this many entries in [`Converted::dropped`] (then one `...`): it becomes a
/// response header, and its entries come from client-chosen names.
pub const MAX_DROPPED: usize = 32;

/// Longest dropped entry kept, in characters.
const MAX_ENTRY: usize = 96;

/// Converts a Responses request body. `history` holds the items of the earlier turns that
/// `previous_response_id` names (each response's input items, then its output items, oldest
/// first), loaded by the caller; they come before this request's input. Instructions are not
/// inherited: only this request's `instructions` becomes the leading system message.
pub fn to_chat(request: &Value, history: &[Value]) -> Result<Converted, ProxyError> {
    let Some(obj) = request.as_object() else {
        return Err(ProxyError::BadRequest {
            message: "the request body must be a JSON object".into(),
            param: None,
        });
    };
    let model = match obj.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m,
        _ => {
            return Err(bad(
                "`model` is required and must be a non-empty string",
                "model",
            ));
        }
    };
    fields::refuse_unbridged(obj)?;
    let mut dropped = Vec::new();
    let continues = match obj.get("previous_response_id") {
        None | Some(Value::Null) => false,
        Some(Value::String(_)) => true,
        Some(_) => {
            return Err(bad(
                "`previous_response_id` must be a string",
                "previous_response_id",
            ));
        }
    };
    let input_items = match obj.get("input") {
        None | Some(Value::Null) if continues => Vec::new(),
        None | Some(Value::Null) => {
            return Err(bad(
                "`input` is required (a string or an array of items) unless `previous_response_id` is given",
                "input",
            ));
        }
        Some(input) => normalize::input(input)?,
    };

    let mut messages = Vec::new();
    match obj.get("instructions") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.is_empty() => {}
        Some(Value::String(s)) => messages.push(json!({"role": "system", "content": s})),
        Some(_) => return Err(bad("`instructions` must be a string", "instructions")),
    }
    messages.extend(items::messages(history, &input_items, &mut dropped)?);
    if messages.is_empty() {
        return Err(bad(
            "the conversation is empty: give `input` or `instructions`",
            "input",
        ));
    }

    let mut chat = Map::new();
    chat.insert("model".into(), Value::String(model.clone()));
    chat.insert("messages".into(), Value::Array(messages));
    let mut set = tools::tools(obj.get("tools"), &mut dropped)?;
    let choice = tools::tool_choice(obj.get("tool_choice"), &mut set, &mut dropped)?;
    let parallel = fields::boolean(obj, "parallel_tool_calls")?;
    // Chat refuses `tool_choice` and `parallel_tool_calls` without `tools` (hosted tools
    // alone leave none).
    if !set.chat.is_empty() {
        chat.insert("tools".into(), Value::Array(set.chat));
        if let Some(choice) = choice {
            chat.insert("tool_choice".into(), choice);
        }
        if let Some(p) = parallel {
            chat.insert("parallel_tool_calls".into(), Value::Bool(p));
        }
    }
    if let Some(options) = set.web_search {
        chat.insert("web_search_options".into(), options);
    }
    fields::copy(obj, &mut chat, &mut dropped)?;
    Ok(Converted {
        chat: Value::Object(chat),
        input_items,
        dropped,
    })
}

/// Whether a dropped entry names a web search tool, which reached the chat request as
/// `web_search_options`: a mapping that reads that field did not drop it.
pub fn is_web_search(entry: &str) -> bool {
    entry.starts_with("tools[")
        && entry
            .split_once("]:")
            .is_some_and(|(_, kind)| tools::WEB_SEARCH.contains(&kind))
}

/// A 400 naming the offending parameter.
pub(crate) fn bad(message: impl Into<String>, param: impl Into<String>) -> ProxyError {
    ProxyError::BadRequest {
        message: message.into(),
        param: Some(param.into()),
    }
}

/// Adds a dropped entry: printable ASCII, cut to [`MAX_ENTRY`], once, and no more than
/// [`MAX_DROPPED`] of them.
pub(crate) fn note(dropped: &mut Vec<String>, entry: &str) {
    let clean: String = entry
        .chars()
        .take(MAX_ENTRY)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if dropped.len() > MAX_DROPPED || dropped.contains(&clean) {
        return;
    }
    dropped.push(if dropped.len() == MAX_DROPPED {
        "...".into()
    } else {
        clean
    });
}
