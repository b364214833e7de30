//! Making a golden case's answer comparable: the ids Rosetta mints and the times it stamps.

use std::collections::HashMap;

use serde_json::Value;

use super::CASE_TIME;
use crate::dialect::openai::now_secs;

/// Makes a Responses or Messages answer comparable, in one pass over everything the client
/// got, in order:
///
/// - an id Rosetta mints (under `id`, `item_id` or `call_id`: `resp_`, `msg_`, `fc_` or `rs_`
///   and 48 letters and digits, or `call_` and 24) becomes `<PREFIX_N>`, N counting that
///   prefix's distinct ids from 1 (`<resp_1>`, `<msg_1>`, `<fc_2>`, `<call_1>`). The same id
///   always gets the same name, so a case still checks that an item keeps its id from event
///   to event and into the final response, and that two items differ. Ids the upstream gave
///   (a `call_id` such as `toolu_…`) are kept. In a Messages case the minted ids are `msg_`
///   and `toolu_` and 24 letters and digits (`<msg_1>`, `<toolu_1>`);
/// - `completed_at`, stamped from the clock when the answer ends, must be a time of the run
///   and is shown as [`CASE_TIME`] (`null` stays `null`).
pub(super) struct Steady {
    names: HashMap<String, String>,
    counts: HashMap<&'static str, usize>,
    /// When the case started (Unix seconds).
    since: u64,
    /// The ids are the Messages dialect's (`msg_` and `toolu_` and 24 letters and digits).
    messages: bool,
}

impl Steady {
    pub(super) fn new(since: u64, messages: bool) -> Steady {
        Steady {
            names: HashMap::new(),
            counts: HashMap::new(),
            since,
            messages,
        }
    }

    pub(super) fn apply(&mut self, value: &mut Value, at: &str, problems: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    let here = format!("{at}.{k}");
                    match (k.as_str(), &*v) {
                        ("id" | "item_id" | "call_id", Value::String(s)) => {
                            if let Some(name) = self.name(s) {
                                *v = Value::String(name);
                            }
                        }
                        ("completed_at", Value::Number(n)) => {
                            let now = now_secs();
                            match n.as_u64() {
                                Some(t) if (self.since..=now).contains(&t) => {
                                    *v = Value::from(CASE_TIME);
                                }
                                _ => problems.push(format!(
                                    "{here}: {n} is not a time of the run ({}..={now})",
                                    self.since
                                )),
                            }
                        }
                        _ => self.apply(v, &here, problems),
                    }
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter_mut().enumerate() {
                    self.apply(v, &format!("{at}[{i}]"), problems);
                }
            }
            _ => {}
        }
    }

    /// The stable name of a minted id, `None` for any other string.
    fn name(&mut self, id: &str) -> Option<String> {
        const MINTED: [(&str, usize); 5] = [
            ("resp_", 48),
            ("msg_", 48),
            ("fc_", 48),
            ("rs_", 48),
            ("call_", 24),
        ];
        const MESSAGES: [(&str, usize); 2] = [("msg_", 24), ("toolu_", 24)];
        let minted: &[(&str, usize)] = if self.messages { &MESSAGES } else { &MINTED };
        let (prefix, _) = minted.iter().copied().find(|(prefix, len)| {
            id.strip_prefix(prefix)
                .is_some_and(|r| r.len() == *len && r.bytes().all(|b| b.is_ascii_alphanumeric()))
        })?;
        if let Some(name) = self.names.get(id) {
            return Some(name.clone());
        }
        let n = self.counts.entry(prefix).or_default();
        *n += 1;
        let name = format!("<{prefix}{n}>");
        self.names.insert(id.to_string(), name.clone());
        Some(name)
    }
}
