//! Step two of a call: the mapping (named in the path, or chosen by model on the unified
//! surface) and the model its upstream is asked for.

use http::HeaderMap;
use serde_json::Value;

use crate::error::ProxyError;
use crate::mapping::Op;
use crate::serving::responses::turn::Turn;
use crate::serving::router::pick_mapping;
use crate::serving::state::{Loaded, MappingSet};
use crate::translate::fidelity::{self, Dropped};
use crate::translate::request::model_not_found;

use super::Seen;

/// The mapping a call runs on, and its model.
pub(super) struct Picked<'s, 'm> {
    pub name: &'s str,
    pub loaded: &'s Loaded,
    /// The model as the mapping sees it (without a `NAME/` prefix).
    pub model: &'m str,
    /// The model the upstream is asked for, already written into the request.
    pub upstream_model: String,
    /// What the mapping does not translate of the request (`x-rosetta-dropped`).
    pub dropped: Dropped,
}

/// Picks the mapping (noted in `seen` as soon as it is known, for the call's metrics), works
/// out what it does not translate of the request (a Responses `turn`'s bridge losses first),
/// refusing the call under strictness, and resolves the model into `request`.
pub(super) fn pick<'s, 'm>(
    set: &'s MappingSet,
    seen: &mut Seen<'s>,
    op: Op,
    client_model: &'m str,
    request: &mut Value,
    turn: Option<&mut Turn>,
    headers: &HeaderMap,
) -> Result<Picked<'s, 'm>, ProxyError> {
    let (name, model) = match seen.mapping {
        Some((n, _)) => (n, client_model),
        None => pick_mapping(set, client_model)?,
    };
    let loaded = &set.mappings[name];
    seen.mapping = Some((name, loaded));
    let earlier = match turn {
        Some(t) => t.settle_dropped(&loaded.mapping, request),
        None => Vec::new(),
    };
    // A Messages request is checked once it is a chat request (see `dispatch`); a count
    // drops nothing that matters (see `count`).
    let dropped = if matches!(op, Op::Messages | Op::CountTokens) {
        Dropped::default()
    } else {
        fidelity::settle(&loaded.mapping, op, request, earlier, headers)?
    };
    for label in dropped.labels() {
        loaded.metrics.dropped(label).inc();
    }
    let upstream_model = loaded
        .mapping
        .resolve_model(model)
        .map_err(model_not_found)?;
    request["model"] = Value::String(upstream_model.clone());
    Ok(Picked {
        name,
        loaded,
        model,
        upstream_model,
        dropped,
    })
}
