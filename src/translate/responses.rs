//! A Responses API request as the engine takes it, with no store involved (the server adds
//! the stored conversation and the saving: `serving::responses::turn`; `rosetta test` uses
//! this alone): the canonical chat request every mapping reads, the echo its answer is
//! written with, and what the chosen mapping cannot take.

use serde_json::Value;

use crate::dialect::responses::Echo;
use crate::dialect::responses::request::{self as convert, Converted};
use crate::error::ProxyError;
use crate::mapping::Mapping;

/// A Responses request converted for the engine.
pub struct Started {
    /// The canonical chat request.
    pub chat: Value,
    /// What the answer repeats, its id and `created_at`.
    pub echo: Echo,
    /// This request's input items, with ids (what `input_items` lists).
    pub input_items: Vec<Value>,
    /// What the upstream cannot receive, left out (`x-rosetta-dropped`).
    pub dropped: Vec<String>,
}

/// The `previous_response_id` a request continues, if any.
pub fn previous_id(request: &Value) -> Result<Option<&str>, ProxyError> {
    match request.get("previous_response_id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id)) => Ok(Some(id)),
        Some(_) => Err(ProxyError::BadRequest {
            message: "`previous_response_id` must be a string".into(),
            param: Some("previous_response_id".into()),
        }),
    }
}

/// The answer to a `previous_response_id` when no response is stored (no ledger).
pub fn no_store() -> ProxyError {
    ProxyError::BadRequest {
        message: "`previous_response_id` needs stored responses, and Rosetta stores them in its ledger, which is off (rosetta serve --ledger); send the whole conversation in `input` instead".into(),
        param: Some("previous_response_id".into()),
    }
}

/// Converts `request` after the earlier turns' `history`; `storing` is whether the answer
/// will be stored (the response says so in its `store`), `now_secs` stamps it.
pub fn start(
    request: &Value,
    history: &[Value],
    now_secs: u64,
    storing: bool,
) -> Result<Started, ProxyError> {
    let Converted {
        chat,
        input_items,
        dropped,
    } = convert::to_chat(request, history)?;
    let mut echo = Echo::from_request(request, now_secs);
    // Whether this response can be retrieved and chained on, as the client will see it.
    echo.fields.insert("store".into(), Value::Bool(storing));
    Ok(Started {
        chat,
        echo,
        input_items,
        dropped,
    })
}

/// Keeps in `dropped` only what `mapping` cannot take: a mapping whose templates read
/// `web_search_options` by name takes the hosted web search; for any other the field is taken
/// out of `chat` (a mapping that forwards the whole request must not pass on what the bridge
/// made up). The rest of the report, and strictness, is
/// [`crate::translate::fidelity::settle`]'s.
pub fn settle_dropped(dropped: &mut Vec<String>, mapping: &Mapping, chat: &mut Value) {
    let reads_search = mapping
        .chat
        .as_ref()
        .is_some_and(|r| r.reads.get(&["web_search_options"]).is_some());
    if reads_search {
        dropped.retain(|d| !convert::is_web_search(d));
    } else if let Some(o) = chat.as_object_mut() {
        o.remove("web_search_options");
    }
}
