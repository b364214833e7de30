//! The Messages API request side: a `POST /v1/messages` body becomes the canonical Chat
//! Completions request that every mapping already reads, so each mapping serves the Messages
//! API with no change to its YAML.
//!
//! [`to_chat`] checks the body, turns `system` and the trailing system turns into the system
//! message, the turns' blocks into chat messages (`content`), the tools and tool choice into
//! chat ones (`tools`) and the other fields into their chat names (`fields`). What an upstream
//! cannot receive is left out and named in [`Converted::dropped`] (the `x-rosetta-dropped`
//! header); what the bridge cannot honour at all is a 400. `docs/messages.md` is the table of
//! what becomes what.

use serde_json::{Map, Value, json};

use crate::dialect::responses::request::{bad, note};
use crate::error::ProxyError;

mod content;
mod fields;
mod tools;

#[cfg(test)]
mod tests;

/// A Messages request as the chat request the mappings read, with what it left out.
#[derive(Debug, Clone, PartialEq)]
pub struct Converted {
    /// The canonical chat request.
    pub chat: Value,
    /// What was accepted but not passed on (`tools[3]:web_search_20250305`, `cache_control`,
    /// `beta:NAME`...). Printable ASCII, short, at most [`MAX_DROPPED`] + 1 entries.
    pub dropped: Vec<String>,
}

/// At most this many entries in [`Converted::dropped`] (then one `...`), as for Responses.
pub use crate::dialect::responses::request::MAX_DROPPED;

/// The dropped entry of a `document` block: kept only for a mapping that reads chat `file`
/// parts (else the request is refused, [`document_refusal`]).
pub const DOCUMENT: &str = "document";

/// The dropped entry of `top_k`, which chat does not have: kept only for a mapping that reads it.
pub const TOP_K: &str = "top_k";

/// Converts a Messages request body; `betas` are the flags of the request's beta header.
pub fn to_chat(request: &Value, betas: &[&str]) -> Result<Converted, ProxyError> {
    let Some(obj) = request.as_object() else {
        return Err(ProxyError::BadRequest {
            message: "the request body must be a JSON object".into(),
            param: None,
        });
    };
    let model = match obj.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m,
        _ => return Err(bad("model: Field required (a non-empty string)", "model")),
    };
    let mut dropped = Vec::new();
    let turns = match obj.get("messages") {
        Some(Value::Array(t)) if !t.is_empty() => t,
        Some(Value::Array(_)) => {
            return Err(bad(
                "messages: at least one message is required",
                "messages",
            ));
        }
        _ => return Err(bad("messages: Field required (an array)", "messages")),
    };
    let mut system = content::system(obj.get("system"), &mut dropped)?;
    let mut messages = Vec::with_capacity(turns.len() + 1);
    for (i, turn) in turns.iter().enumerate() {
        let param = format!("messages.{i}");
        match turn.get("role").and_then(Value::as_str) {
            Some("user") => {
                content::user(turn.get("content"), &param, &mut messages, &mut dropped)?
            }
            Some("assistant") => messages.push(content::assistant(
                turn.get("content"),
                &param,
                &mut dropped,
            )?),
            // A system turn among the messages (newer clients put their environment there)
            // joins the system prompt: it is no turn for the model to answer.
            Some("system") => {
                let text = content::system(turn.get("content"), &mut dropped)?;
                if !text.is_empty() {
                    if !system.is_empty() {
                        system.push_str("\n\n");
                    }
                    system.push_str(&text);
                }
            }
            _ => {
                return Err(bad(
                    format!("{param}.role: Input should be 'user' or 'assistant'"),
                    format!("{param}.role"),
                ));
            }
        }
    }
    if !system.is_empty() {
        messages.insert(0, json!({"role": "system", "content": system}));
    }
    if !messages.iter().any(|m| m["role"] != "system") {
        return Err(bad(
            "messages: the conversation has no user or assistant turn",
            "messages",
        ));
    }
    let mut chat = Map::new();
    chat.insert("model".into(), Value::String(model.clone()));
    chat.insert("messages".into(), Value::Array(messages));
    tools::copy(obj, &mut chat, &mut dropped)?;
    fields::copy(obj, &mut chat, &mut dropped)?;
    for beta in betas {
        note(&mut dropped, &format!("beta:{beta}"));
    }
    Ok(Converted {
        chat: Value::Object(chat),
        dropped,
    })
}

/// The 400 for a `document` block sent to a mapping that has no place for files.
pub fn document_refusal() -> ProxyError {
    bad(
        "this upstream takes no documents: send the document's text as a text block",
        "messages",
    )
}
