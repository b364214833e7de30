//! Items (the stored history, then this request's input) as chat messages.
//!
//! Chat wants every call of a turn in one assistant message, followed by one `tool` message
//! per call before anything else is said. So items are walked in order: assistant text and
//! `function_call` items gather into an open assistant turn; any other message closes it,
//! and closing writes the turn and then the outputs of all its calls, taken from wherever
//! they are later in the list (clients may send them late). An output whose call did not
//! come before it is OpenAI's 400, and so is a call that never gets an output. Reasoning
//! items never close a turn: their text and signature ride on the next assistant message as
//! `reasoning_content` and `reasoning_signature`.

use std::collections::{HashMap, HashSet, VecDeque};

use serde_json::{Value, json};

use super::normalize::kind;
use super::reasoning::Reasoning;
use super::{bad, content};
use crate::error::ProxyError;

/// Where an item came from, for the `param` of an error about it.
#[derive(Clone, Copy)]
enum Origin {
    History,
    Input(usize),
}

impl Origin {
    fn param(self) -> String {
        match self {
            Origin::History => "previous_response_id".into(),
            Origin::Input(i) => format!("input[{i}]"),
        }
    }
}

/// The chat messages for `history` followed by `input` (both normalized items).
pub(super) fn messages(
    history: &[Value],
    input: &[Value],
    dropped: &mut Vec<String>,
) -> Result<Vec<Value>, ProxyError> {
    let items = resolve(history, input)?;
    let mut outputs: HashMap<&str, VecDeque<usize>> = HashMap::new();
    for (pos, (_, item)) in items.iter().enumerate() {
        if kind(item) == Some("function_call_output")
            && let Some(id) = item.get("call_id").and_then(Value::as_str)
        {
            outputs.entry(id).or_default().push_back(pos);
        }
    }
    let mut walk = Walk {
        items: &items,
        outputs,
        used: vec![false; items.len()],
        seen: HashSet::new(),
        turn: None,
        pending: Reasoning::default(),
        out: Vec::with_capacity(items.len()),
        dropped,
    };
    for pos in 0..items.len() {
        if !walk.used[pos] {
            walk.item(pos)?;
        }
    }
    walk.close()?;
    Ok(walk.out)
}

/// The items in order, with each `item_reference` replaced by the item it names (an earlier
/// item of this conversation; there is no other store of items to look in).
fn resolve<'a>(
    history: &'a [Value],
    input: &'a [Value],
) -> Result<Vec<(Origin, &'a Value)>, ProxyError> {
    let all = history.iter().map(|item| (Origin::History, item)).chain(
        input
            .iter()
            .enumerate()
            .map(|(i, item)| (Origin::Input(i), item)),
    );
    let mut by_id: HashMap<&str, &Value> = HashMap::new();
    let mut out = Vec::with_capacity(history.len() + input.len());
    for (origin, item) in all {
        let id = item.get("id").and_then(Value::as_str);
        if kind(item) != Some("item_reference") {
            if let Some(id) = id {
                by_id.entry(id).or_insert(item);
            }
            out.push((origin, item));
            continue;
        }
        match id.and_then(|id| by_id.get(id)) {
            Some(target) => out.push((origin, *target)),
            None => {
                return Err(bad(
                    format!(
                        "item_reference '{}' names no earlier item of this conversation; references to other items are not bridged: send the item itself",
                        id.unwrap_or("")
                    ),
                    format!("{}.id", origin.param()),
                ));
            }
        }
    }
    Ok(out)
}

/// An assistant turn being gathered.
#[derive(Default)]
struct Turn {
    text: String,
    calls: Vec<Value>,
    call_ids: Vec<String>,
    reasoning: Reasoning,
}

struct Walk<'a, 'd> {
    items: &'a [(Origin, &'a Value)],
    /// Positions of each call's outputs, in order; taken from the front when its turn closes.
    outputs: HashMap<&'a str, VecDeque<usize>>,
    /// Outputs already written after their turn.
    used: Vec<bool>,
    /// Call ids of every call so far.
    seen: HashSet<String>,
    turn: Option<Turn>,
    pending: Reasoning,
    out: Vec<Value>,
    dropped: &'d mut Vec<String>,
}

impl Walk<'_, '_> {
    fn item(&mut self, pos: usize) -> Result<(), ProxyError> {
        let (origin, item) = self.items[pos];
        let param = origin.param();
        match kind(item) {
            Some("message") => self.message(item, &param),
            Some("function_call") => self.call(item, &param),
            Some("function_call_output") => self.output(item, &param),
            Some("reasoning") => {
                self.pending.absorb(Reasoning::of(item));
                Ok(())
            }
            Some(other) => Err(bad(
                format!("input items of type '{other}' are not supported by this bridge"),
                format!("{param}.type"),
            )),
            None => Err(bad(
                "an item needs a string `type` (or a `role`, for a message)",
                format!("{param}.type"),
            )),
        }
    }

    fn message(&mut self, item: &Value, param: &str) -> Result<(), ProxyError> {
        let role = match item.get("role").and_then(Value::as_str) {
            Some(r @ ("user" | "system" | "developer" | "assistant")) => r,
            _ => {
                return Err(bad(
                    "a message's `role` must be user, assistant, system or developer",
                    format!("{param}.role"),
                ));
            }
        };
        if role == "assistant" {
            let text = content::assistant_text(item.get("content"), param)?;
            if self.turn.as_ref().is_some_and(|t| !t.calls.is_empty()) {
                self.close()?;
            }
            let turn = self.open();
            if !text.is_empty() && !turn.text.is_empty() {
                turn.text.push_str("\n\n");
            }
            turn.text.push_str(&text);
            return Ok(());
        }
        let content = content::message(item.get("content"), param)?;
        self.close()?;
        // Reasoning before a user turn answered nothing that is left.
        self.pending = Reasoning::default();
        let role = if role == "developer" { "system" } else { role };
        self.out.push(json!({"role": role, "content": content}));
        Ok(())
    }

    fn call(&mut self, item: &Value, param: &str) -> Result<(), ProxyError> {
        let id = call_id(item, param)?;
        let Some(name) = item
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        else {
            return Err(bad(
                "a function_call needs a string `name`",
                format!("{param}.name"),
            ));
        };
        let arguments = match item.get("arguments") {
            Some(Value::String(a)) if !a.trim().is_empty() => a.clone(),
            None | Some(Value::Null) | Some(Value::String(_)) => "{}".into(),
            Some(other) => other.to_string(),
        };
        if !self.seen.insert(id.to_string()) {
            return Err(bad(
                format!("Duplicate function call with call_id {id}."),
                format!("{param}.call_id"),
            ));
        }
        let turn = self.open();
        turn.calls.push(json!({
            "id": id,
            "type": "function",
            "function": {"name": name, "arguments": arguments},
        }));
        turn.call_ids.push(id.to_string());
        Ok(())
    }

    /// An output met in order: either the first output of the open turn (which then closes
    /// and writes every output of its calls), or an error.
    fn output(&mut self, item: &Value, param: &str) -> Result<(), ProxyError> {
        let id = call_id(item, param)?;
        if !self.seen.contains(id) {
            return Err(bad(
                format!("No tool call found for function call output with call_id {id}."),
                "input",
            ));
        }
        if !self
            .turn
            .as_ref()
            .is_some_and(|t| t.call_ids.iter().any(|c| c == id))
        {
            return Err(bad(
                format!("Duplicate function call output for call_id {id}."),
                param,
            ));
        }
        self.close()
    }

    /// The open assistant turn (opened if needed), with any pending reasoning on it.
    fn open(&mut self) -> &mut Turn {
        let turn = self.turn.get_or_insert_with(Turn::default);
        turn.reasoning.absorb(std::mem::take(&mut self.pending));
        turn
    }

    /// Writes the open turn, then one tool message per call, in call order.
    fn close(&mut self) -> Result<(), ProxyError> {
        let Some(turn) = self.turn.take() else {
            return Ok(());
        };
        let mut message = json!({
            "role": "assistant",
            "content": if turn.text.is_empty() && !turn.calls.is_empty() { Value::Null } else { Value::String(turn.text) },
        });
        if !turn.calls.is_empty() {
            message["tool_calls"] = Value::Array(turn.calls);
        }
        if !turn.reasoning.text.is_empty() {
            message["reasoning_content"] = Value::String(turn.reasoning.text);
        }
        if let Some(signature) = turn.reasoning.signature {
            message["reasoning_signature"] = Value::String(signature);
        }
        self.out.push(message);
        for id in &turn.call_ids {
            let Some(pos) = self
                .outputs
                .get_mut(id.as_str())
                .and_then(VecDeque::pop_front)
            else {
                return Err(bad(
                    format!("No tool output found for function call {id}."),
                    "input",
                ));
            };
            self.used[pos] = true;
            let (origin, item) = self.items[pos];
            let content = content::tool_output(item.get("output"), &origin.param(), self.dropped)?;
            self.out
                .push(json!({"role": "tool", "tool_call_id": id, "content": content}));
        }
        Ok(())
    }
}

/// An item's `call_id`, which must be a non-empty string.
fn call_id<'v>(item: &'v Value, param: &str) -> Result<&'v str, ProxyError> {
    item.get("call_id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            bad(
                "a non-empty string `call_id` is required",
                format!("{param}.call_id"),
            )
        })
}
