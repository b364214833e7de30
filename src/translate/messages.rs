//! A Messages API request as the engine takes it: its required version header, the beta flags
//! it asks for, and, for a mapping that does not speak the dialect itself, the canonical chat
//! request every mapping reads with what the chosen mapping cannot take (`x-rosetta-dropped`).
//! A mapping whose chat route declares `native: [messages]` gets the request as it is.

use http::HeaderMap;
use serde_json::Value;

use crate::dialect::messages::request::{self as convert, Converted, DOCUMENT, TOP_K};
use crate::dialect::messages::{self, wire::wire};
use crate::error::ProxyError;
use crate::mapping::reads::{Cover, EACH};
use crate::mapping::{Mapping, Op};

/// A Messages request converted for a mapping that does not speak the dialect.
pub struct Started {
    /// The canonical chat request.
    pub chat: Value,
    /// What the upstream cannot receive, left out (`x-rosetta-dropped`).
    pub dropped: Vec<String>,
}

/// Whether `mapping`'s upstream speaks the Messages API itself.
pub fn native(mapping: &Mapping) -> bool {
    mapping
        .route(Op::Messages)
        .is_some_and(|r| r.speaks(messages::NAME))
}

/// The version header every request of the dialect carries, as its API requires.
pub fn check_version(headers: &HeaderMap) -> Result<(), ProxyError> {
    let name = &wire().version_header;
    match headers.get(name.as_str()).and_then(|v| v.to_str().ok()) {
        Some(v) if !v.trim().is_empty() => Ok(()),
        _ => Err(ProxyError::BadRequest {
            message: format!("{name}: header is required"),
            param: None,
        }),
    }
}

/// The beta flags the request asks for (the beta header, comma-separated, any number of times).
pub fn betas(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get_all(wire().beta_header.as_str())
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .collect()
}

/// Converts `request` for a mapping that does not speak the dialect. Its beta flags are
/// dropped: only an upstream of the dialect knows them.
pub fn start(request: &Value, headers: &HeaderMap) -> Result<Started, ProxyError> {
    let Converted { chat, dropped } = convert::to_chat(request, &betas(headers))?;
    Ok(Started { chat, dropped })
}

/// Keeps in `dropped` only what `mapping` cannot take: `top_k` stays in `chat` for a mapping
/// whose templates read it, and is taken out otherwise; a document is refused by a mapping
/// that reads no chat `file` part. Strictness is the fidelity report's (`fidelity::settle`),
/// which gets what is left.
pub fn settle_dropped(
    dropped: &mut Vec<String>,
    mapping: &Mapping,
    chat: &mut Value,
) -> Result<(), ProxyError> {
    let reads = mapping.route(Op::Messages).map(|r| &r.reads);
    if reads.is_some_and(|r| !matches!(r.cover(&[TOP_K]), Cover::None)) {
        dropped.retain(|d| d != TOP_K);
    } else if let Some(o) = chat.as_object_mut() {
        o.remove(TOP_K);
    }
    if dropped.iter().any(|d| d == DOCUMENT) {
        if !reads.is_some_and(|r| r.takes_kind(&["messages", EACH, "content", EACH], "file")) {
            return Err(convert::document_refusal());
        }
        dropped.retain(|d| d != DOCUMENT);
    }
    Ok(())
}
