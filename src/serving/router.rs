//! Which operation and which mapping a request is for.
//!
//! Per-mapping paths name the mapping (`/NAME/v1/...`); the unified surface (`/v1/...`) routes
//! by model: `NAME/model` selects mapping NAME, otherwise the one mapping that declares the
//! model or matches it with an `options.serves` pattern.

use crate::error::ProxyError;
use crate::mapping::Op;
use crate::serving::state::MappingSet;
use crate::translate::request::model_not_found;

/// The operation of a path below `/v1/`.
pub fn op_for(rest: &[&str]) -> Option<Op> {
    match rest {
        ["chat", "completions"] => Some(Op::Chat),
        ["responses"] => Some(Op::Responses),
        ["messages"] => Some(Op::Messages),
        ["messages", "count_tokens"] => Some(Op::CountTokens),
        ["completions"] => Some(Op::Completions),
        ["embeddings"] => Some(Op::Embeddings),
        ["models"] => Some(Op::Models),
        _ => None,
    }
}

/// On the unified surface: the mapping for `model`, and the model name that mapping sees.
pub fn pick_mapping<'s, 'm>(
    state: &'s MappingSet,
    model: &'m str,
) -> Result<(&'s str, &'m str), ProxyError> {
    if let Some((name, rest)) = model.split_once('/')
        && let Some((key, _)) = state.mappings.get_key_value(name)
    {
        return Ok((key.as_str(), rest));
    }
    // A declared id wins over a pattern; patterns decide only when no mapping declares it.
    let declared: Vec<&str> = state
        .mappings
        .iter()
        .filter(|(_, l)| l.mapping.models.iter().any(|m| m.id == model))
        .map(|(n, _)| n.as_str())
        .collect();
    let claimed: Vec<&str> = if declared.is_empty() {
        state
            .mappings
            .iter()
            .filter(|(_, l)| l.mapping.serves(model))
            .map(|(n, _)| n.as_str())
            .collect()
    } else {
        declared
    };
    match claimed.as_slice() {
        [one] => Ok((one, model)),
        [] => Err(model_not_found(format!(
            "no mapping serves the model {model:?}; name one explicitly as NAME/{model}, where NAME is one of: {}",
            state
                .mappings
                .keys()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        many => Err(ProxyError::BadRequest {
            message: format!(
                "the model {model:?} is served by several mappings ({}); name one explicitly, e.g. {}/{model}",
                many.join(", "),
                many[0]
            ),
            param: Some("model".into()),
        }),
    }
}
