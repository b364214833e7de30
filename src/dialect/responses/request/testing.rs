//! Helpers shared by this folder's tests.

use serde_json::Value;

use super::{Converted, to_chat};
use crate::error::ProxyError;

/// The conversion of a request that must succeed.
pub fn ok(request: Value) -> Converted {
    ok_after(&[], request)
}

/// The conversion of a request continuing `history`, which must succeed.
pub fn ok_after(history: &[Value], request: Value) -> Converted {
    to_chat(&request, history).unwrap_or_else(|e| panic!("{request} was refused: {e:?}"))
}

/// The message and param of a request that must be a 400.
pub fn refused(request: Value) -> (String, Option<String>) {
    refused_after(&[], request)
}

/// The message and param of a request continuing `history` that must be a 400.
pub fn refused_after(history: &[Value], request: Value) -> (String, Option<String>) {
    match to_chat(&request, history) {
        Err(ProxyError::BadRequest { message, param }) => (message, param),
        other => panic!("{request} gave {other:?}, not a 400"),
    }
}

/// Just the param of a refused request.
pub fn param(request: Value) -> Option<String> {
    refused(request).1
}

/// The chat messages of a conversion.
pub fn messages(c: &Converted) -> &[Value] {
    c.chat["messages"].as_array().expect("messages")
}
