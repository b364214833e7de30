//! Reading a Responses API stream: its events, and the invariants every stream must keep
//! (what the OpenAI SDK's stream helper enforces, and more).

use std::collections::HashMap;

use serde_json::Value;

use super::support::Streamed;

/// The events of one Responses stream, in order.
pub struct Events(Vec<Value>);

/// Parses `event: T\ndata: JSON\n\n` blocks, checking that each `event:` line names the
/// `type` of its data.
pub fn events(s: &Streamed) -> Events {
    assert_eq!(s.status, 200, "{}", s.text());
    assert_eq!(s.headers["content-type"], "text/event-stream");
    let text = s.text();
    assert!(!text.contains("[DONE]"), "a Responses stream has no [DONE]");
    let mut out = Vec::new();
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let mut event = None;
        let mut data = None;
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("event: ") {
                event = Some(v.to_string());
            } else if let Some(v) = line.strip_prefix("data: ") {
                data = Some(v.to_string());
            }
        }
        let data = data.unwrap_or_else(|| panic!("an event without data: {block:?}"));
        let json: Value =
            serde_json::from_str(&data).unwrap_or_else(|e| panic!("bad data {data:?}: {e}"));
        assert_eq!(
            event.as_deref(),
            json["type"].as_str(),
            "event line and type differ: {block}"
        );
        out.push(json);
    }
    Events(out)
}

impl Events {
    pub fn all(&self) -> &[Value] {
        &self.0
    }

    pub fn types(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_string())
            .collect()
    }

    pub fn of(&self, kind: &str) -> Vec<&Value> {
        self.0.iter().filter(|e| e["type"] == kind).collect()
    }

    /// The last event: `response.completed`, `.incomplete` or `.failed`.
    pub fn terminal(&self) -> &Value {
        self.0.last().expect("events")
    }

    /// The concatenated `output_text` deltas.
    pub fn text_deltas(&self) -> String {
        self.of("response.output_text.delta")
            .iter()
            .map(|e| e["delta"].as_str().unwrap().to_string())
            .collect()
    }

    /// `sequence_number` 0, 1, 2... on every event; created then in_progress first.
    pub fn assert_numbered(&self) {
        for (i, e) in self.0.iter().enumerate() {
            assert_eq!(e["sequence_number"], i, "event {i}: {e}");
        }
        let t = self.types();
        assert_eq!(t[0], "response.created", "{t:?}");
        assert_eq!(t[1], "response.in_progress", "{t:?}");
        let created = &self.0[0]["response"];
        assert_eq!(created["status"], "in_progress");
        assert_eq!(created["output"], Value::Array(vec![]));
        assert!(created["usage"].is_null());
    }

    /// Everything a successful stream must keep: numbering, one response id on every
    /// lifecycle event, each output index added once before its content events and done
    /// with the same identity, content indexes in order, deltas that add up to the done
    /// texts, one terminal event last, whose output lists the done items in order.
    pub fn assert_valid(&self) {
        self.assert_numbered();
        let id = self.0[0]["response"]["id"].as_str().unwrap().to_string();
        let mut added: HashMap<u64, Value> = HashMap::new();
        let mut done: Vec<(u64, Value)> = Vec::new();
        let mut texts: HashMap<(u64, u64), String> = HashMap::new();
        let mut args: HashMap<u64, String> = HashMap::new();
        let n = self.0.len();
        for (i, e) in self.0.iter().enumerate() {
            let kind = e["type"].as_str().unwrap();
            let terminal = matches!(
                kind,
                "response.completed" | "response.incomplete" | "response.failed"
            );
            assert_eq!(
                terminal,
                i == n - 1,
                "terminal event only last: {kind} at {i}"
            );
            if let Some(r) = e.get("response") {
                assert_eq!(r["id"], id.as_str(), "lifecycle identity changed: {e}");
            }
            assert!(
                e.get("error").is_none_or(Value::is_null) || kind == "error",
                "{e}"
            );
            let idx = e["output_index"].as_u64();
            match kind {
                "response.output_item.added" => {
                    let idx = idx.unwrap();
                    assert_eq!(idx as usize, added.len(), "output indexes in order: {e}");
                    assert!(added.insert(idx, e["item"].clone()).is_none());
                }
                "response.output_item.done" => {
                    let idx = idx.unwrap();
                    let a = added.get(&idx).expect("done before added");
                    assert_eq!(a["type"], e["item"]["type"]);
                    assert_eq!(a["id"], e["item"]["id"]);
                    assert_eq!(a.get("call_id"), e["item"].get("call_id"));
                    done.push((idx, e["item"].clone()));
                }
                "response.output_text.delta" => {
                    let idx = idx.unwrap();
                    assert!(added.contains_key(&idx), "delta before its item: {e}");
                    let ci = e["content_index"].as_u64().unwrap();
                    texts
                        .entry((idx, ci))
                        .or_default()
                        .push_str(e["delta"].as_str().unwrap());
                    assert!(!e["delta"].as_str().unwrap().is_empty());
                }
                "response.output_text.done" => {
                    let key = (idx.unwrap(), e["content_index"].as_u64().unwrap());
                    assert_eq!(
                        texts.get(&key).map(String::as_str).unwrap_or(""),
                        e["text"].as_str().unwrap()
                    );
                }
                "response.function_call_arguments.delta" => {
                    let idx = idx.unwrap();
                    assert_eq!(added[&idx]["type"], "function_call", "{e}");
                    args.entry(idx)
                        .or_default()
                        .push_str(e["delta"].as_str().unwrap());
                }
                "response.function_call_arguments.done" => {
                    let idx = idx.unwrap();
                    let whole = e["arguments"].as_str().unwrap();
                    assert_eq!(args.get(&idx).map(String::as_str).unwrap_or(""), whole);
                    serde_json::from_str::<Value>(whole).expect("arguments are JSON");
                }
                _ => {}
            }
        }
        let fin = &self.0[n - 1]["response"];
        assert_eq!(done.len(), added.len(), "every added item is done");
        let output = fin["output"].as_array().unwrap();
        assert_eq!(output.len(), done.len(), "{fin}");
        for ((_, d), o) in done.iter().zip(output) {
            assert_eq!(d, o, "the final output is the done items");
        }
        let calls: Vec<&Value> = output.iter().filter_map(|o| o.get("call_id")).collect();
        let mut unique = calls.clone();
        unique.dedup();
        assert_eq!(unique.len(), calls.len(), "call ids are unique");
    }
}
