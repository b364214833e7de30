//! What a Responses answer carries besides the model's output: the response's identity, the
//! request fields it repeats, and the slot a stream leaves its final response in.

use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};

use super::fresh_id;
use super::sse::{write_json, write_str, write_value};

/// Where a stream's writer puts the final response object (completed, incomplete or failed)
/// before it writes the terminal event, so the server can store it once the stream is over.
pub type Finished = Arc<Mutex<Option<Value>>>;

/// The request fields a response repeats, in key order (the order of a [`Map`], so an echo's
/// fields are built without searching). A field the request omits (or sends as `null`) is
/// shown with its [`default_of`] value.
const ECHOED: [&str; 20] = [
    "background",
    "instructions",
    "max_output_tokens",
    "max_tool_calls",
    "metadata",
    "parallel_tool_calls",
    "previous_response_id",
    "prompt_cache_key",
    "reasoning",
    "safety_identifier",
    "service_tier",
    "store",
    "temperature",
    "text",
    "tool_choice",
    "tools",
    "top_logprobs",
    "top_p",
    "truncation",
    "user",
];

/// The keys a response has besides the echoed fields, in key order.
const OWN: [&str; 10] = [
    "completed_at",
    "created_at",
    "error",
    "id",
    "incomplete_details",
    "model",
    "object",
    "output",
    "status",
    "usage",
];

/// The keys of [`ECHOED`] and [`OWN`] together, in key order, each with whether it is the
/// response's own.
const FIELDS: [(&str, bool); ECHOED.len() + OWN.len()] = [
    ("background", false),
    ("completed_at", true),
    ("created_at", true),
    ("error", true),
    ("id", true),
    ("incomplete_details", true),
    ("instructions", false),
    ("max_output_tokens", false),
    ("max_tool_calls", false),
    ("metadata", false),
    ("model", true),
    ("object", true),
    ("output", true),
    ("parallel_tool_calls", false),
    ("previous_response_id", false),
    ("prompt_cache_key", false),
    ("reasoning", false),
    ("safety_identifier", false),
    ("service_tier", false),
    ("status", true),
    ("store", false),
    ("temperature", false),
    ("text", false),
    ("tool_choice", false),
    ("tools", false),
    ("top_logprobs", false),
    ("top_p", false),
    ("truncation", false),
    ("usage", true),
    ("user", false),
];

/// What OpenAI shows for an echoed field the request left out (`null` for most), as JSON.
fn default_json(field: &str) -> &'static [u8] {
    match field {
        "tools" => b"[]",
        "tool_choice" => b"\"auto\"",
        "parallel_tool_calls" => b"true",
        "text" => b"{\"format\":{\"type\":\"text\"}}",
        "truncation" => b"\"disabled\"",
        "metadata" => b"{}",
        "background" => b"false",
        "store" => b"true",
        _ => b"null",
    }
}

/// [`default_json`] as a value.
fn default_of(field: &str) -> Value {
    match field {
        "tools" => json!([]),
        "tool_choice" => json!("auto"),
        "parallel_tool_calls" => json!(true),
        "text" => json!({"format": {"type": "text"}}),
        "truncation" => json!("disabled"),
        "metadata" => json!({}),
        "background" => json!(false),
        "store" => json!(true),
        _ => Value::Null,
    }
}

/// A field of a response, in key order.
enum Field<'a> {
    /// One of the response's own keys ([`OWN`]).
    Own(&'static str),
    /// A field of the echo's.
    Given(&'a str, &'a Value),
    /// An echoed field the echo does not have: its default.
    Default(&'static str),
}

/// A response's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    InProgress,
    Completed,
    Incomplete,
    Failed,
}

impl Status {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::InProgress => "in_progress",
            Status::Completed => "completed",
            Status::Incomplete => "incomplete",
            Status::Failed => "failed",
        }
    }
}

/// One response's identity and the request fields it repeats.
#[derive(Debug)]
pub struct Echo {
    /// `resp_` and 48 letters and digits.
    pub id: String,
    /// Unix seconds.
    pub created_at: u64,
    /// The model as the client named it.
    pub model: String,
    /// The request fields a response repeats (`instructions`, `tools`, `metadata`…) that the
    /// request gave (not as `null`), or that were set since. A response shows the others with
    /// the value OpenAI shows when one is omitted (so making an echo copies only what the
    /// request gave).
    pub fields: Map<String, Value>,
    /// The final response of a stream, once it has ended.
    pub finished: Finished,
}

/// An echo's fields written once, in key order, cut where a response's own keys go: a
/// response of the echo is written by copying them around its own values. What a stream
/// writes its snapshots and its final response with, so the echoed fields (`tools`,
/// `instructions`…) are serialized once per stream.
#[derive(Debug)]
pub(super) struct Written {
    /// Every field as `"key":value,`.
    bytes: Vec<u8>,
    /// `bytes[cuts[i]..cuts[i + 1]]`: the fields between `OWN[i - 1]` and `OWN[i]`.
    cuts: [usize; OWN.len() + 2],
}

impl Written {
    /// Writes a response of the echo, its own keys' values written by `own` (a key of
    /// [`OWN`], the output).
    pub fn write(&self, out: &mut Vec<u8>, mut own: impl FnMut(&mut Vec<u8>, &'static str)) {
        out.push(b'{');
        for (i, key) in OWN.into_iter().enumerate() {
            out.extend_from_slice(&self.bytes[self.cuts[i]..self.cuts[i + 1]]);
            out.push(b'"');
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(b"\":");
            own(out, key);
            out.push(b',');
        }
        out.extend_from_slice(&self.bytes[self.cuts[OWN.len()]..]);
        // An own key was written, so a comma ends what was written.
        out.pop();
        out.push(b'}');
    }
}

impl Echo {
    /// A fresh response id for `model`, repeating the echoed fields of `request_fields` (a
    /// Responses request's fields; the others are not read).
    pub fn new(model: &str, created_at_secs: u64, request_fields: &Map<String, Value>) -> Echo {
        // Both in key order: one walk through the request's fields.
        let mut given = request_fields.iter().peekable();
        let fields = ECHOED
            .into_iter()
            .filter_map(|name| {
                while given.next_if(|(k, _)| k.as_str() < name).is_some() {}
                let (_, value) = given.next_if(|(k, _)| k.as_str() == name)?;
                if value.is_null() {
                    return None;
                }
                let mut value = value.clone();
                if name == "text"
                    && let Some(text) = value.as_object_mut()
                    && !text.get("format").is_some_and(Value::is_object)
                {
                    // `{"verbosity": "low"}` alone still answers in plain text.
                    text.insert("format".into(), json!({"type": "text"}));
                }
                Some((name.to_string(), value))
            })
            .collect();
        Echo {
            id: fresh_id("resp_"),
            created_at: created_at_secs,
            model: model.to_string(),
            fields,
            finished: Finished::default(),
        }
    }

    /// Calls `f` with every field of a response of this echo, in key order: the response's
    /// own keys, the echo's fields (but those of the same keys), the defaults of the echoed
    /// fields it does not have.
    fn each_field<'a>(&'a self, mut f: impl FnMut(Field<'a>)) {
        // Both in key order.
        let mut given = self.fields.iter().peekable();
        for (key, own) in FIELDS {
            while let Some((k, v)) = given.next_if(|(k, _)| k.as_str() < key) {
                f(Field::Given(k, v));
            }
            let same = given.next_if(|(k, _)| k.as_str() == key);
            f(match same {
                _ if own => Field::Own(key),
                Some((k, v)) => Field::Given(k, v),
                None => Field::Default(key),
            });
        }
        for (k, v) in given {
            f(Field::Given(k, v));
        }
    }

    /// The echo of an inbound Responses request (its `model` as written).
    pub fn from_request(request: &Value, created_at: u64) -> Echo {
        let model = request.get("model").and_then(Value::as_str).unwrap_or("");
        let empty = Map::new();
        Echo::new(model, created_at, request.as_object().unwrap_or(&empty))
    }

    /// Whether the client asked for the response to be stored (`store` defaults to true).
    pub fn store(&self) -> bool {
        self.fields.get("store").and_then(Value::as_bool) != Some(false)
    }

    /// Whether the client asked for a reasoning summary (`reasoning.summary`, or the older
    /// `reasoning.generate_summary`): reasoning then goes out as summary text.
    pub fn wants_summary(&self) -> bool {
        let r = self.fields.get("reasoning");
        ["summary", "generate_summary"]
            .iter()
            .any(|k| r.and_then(|r| r.get(*k)).is_some_and(|v| v.is_string()))
    }

    /// The response object with no output yet: every key a client reads is present, `output`
    /// is `[]` and `usage`, `error`, `incomplete_details` and `completed_at` are `null`.
    pub fn base(&self, status: Status) -> Value {
        self.response(status, [])
    }

    /// [`Echo::base`] with the values of `set` (keys of the response's own) in place of its.
    pub(super) fn response<const N: usize>(
        &self,
        status: Status,
        set: [(&'static str, Value); N],
    ) -> Value {
        let mut own = [
            Value::Null,
            self.created_at.into(),
            Value::Null,
            self.id.as_str().into(),
            Value::Null,
            self.model.as_str().into(),
            "response".into(),
            Value::Array(Vec::new()),
            status.as_str().into(),
            Value::Null,
        ];
        for (key, value) in set {
            let i = OWN.iter().position(|k| *k == key);
            debug_assert!(i.is_some(), "{key} is not a response's own");
            if let Some(i) = i {
                own[i] = value;
            }
        }
        let mut own = own.into_iter();
        let mut r: Vec<(String, Value)> = Vec::with_capacity(ECHOED.len() + OWN.len());
        self.each_field(|field| {
            r.push(match field {
                Field::Own(k) => (k.to_string(), own.next().unwrap_or_default()),
                Field::Given(k, v) => (k.to_string(), v.clone()),
                Field::Default(k) => (k.to_string(), default_of(k)),
            })
        });
        // In key order: the map is built without searching.
        Value::Object(r.into_iter().collect())
    }

    /// The echoed fields, written once (see [`Written`]).
    pub(super) fn written(&self) -> Written {
        let mut bytes = Vec::with_capacity(1024);
        let mut cuts = [0; OWN.len() + 2];
        let mut own = 0;
        self.each_field(|field| match field {
            Field::Own(_) => {
                own += 1;
                cuts[own] = bytes.len();
            }
            Field::Given(key, value) => {
                write_str(&mut bytes, key);
                bytes.push(b':');
                write_value(&mut bytes, value);
                bytes.push(b',');
            }
            Field::Default(key) => {
                bytes.push(b'"');
                bytes.extend_from_slice(key.as_bytes());
                bytes.extend_from_slice(b"\":");
                bytes.extend_from_slice(default_json(key));
                bytes.push(b',');
            }
        });
        cuts[OWN.len() + 1] = bytes.len();
        Written { bytes, cuts }
    }

    /// The value of an own key of [`Echo::base`], written.
    pub(super) fn write_own_base(&self, out: &mut Vec<u8>, key: &str, status: Status) {
        match key {
            "created_at" => write_json(out, &self.created_at),
            "id" => write_str(out, &self.id),
            "model" => write_str(out, &self.model),
            "object" => out.extend_from_slice(b"\"response\""),
            "output" => out.extend_from_slice(b"[]"),
            "status" => write_str(out, status.as_str()),
            _ => out.extend_from_slice(b"null"),
        }
    }

    /// [`Echo::base`], written straight into `out`, byte for byte as `serde_json` writes it
    /// (see the test).
    #[cfg(test)]
    fn write_base(&self, out: &mut Vec<u8>, status: Status) {
        self.written()
            .write(out, |out, key| self.write_own_base(out, key, status));
    }

    /// The final response of the stream this echo belongs to, if it has ended.
    pub fn take_finished(&self) -> Option<Value> {
        self.finished
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    /// Leaves the final response for the server.
    pub(super) fn set_finished(&self, response: Value) {
        *self
            .finished
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(response);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn omitted_fields_take_openai_defaults_and_given_ones_are_repeated() {
        let echo = Echo::from_request(
            &json!({"model": "my-model", "input": "hi", "temperature": 0.2, "metadata": null,
                    "text": {"verbosity": "low"}, "store": false, "stream": true,
                    "tools": [{"type": "function", "name": "f"}]}),
            1_750_000_000,
        );
        assert!(echo.id.starts_with("resp_") && echo.id.len() == 53);
        assert!(echo.id[5..].bytes().all(|b| b.is_ascii_alphanumeric()));
        let r = echo.base(Status::InProgress);
        assert_eq!(r["object"], "response");
        assert_eq!(r["status"], "in_progress");
        assert_eq!(r["model"], "my-model");
        assert_eq!(r["created_at"], 1_750_000_000);
        assert_eq!(r["output"], json!([]));
        for k in ["usage", "error", "incomplete_details", "completed_at"] {
            assert_eq!(r[k], Value::Null, "{k}");
            assert!(r.get(k).is_some(), "{k} is present");
        }
        assert_eq!(r["temperature"], 0.2);
        assert_eq!(r["metadata"], json!({}));
        assert_eq!(
            r["text"],
            json!({"verbosity": "low", "format": {"type": "text"}})
        );
        assert_eq!(r["tools"][0]["name"], "f");
        assert_eq!(r["tool_choice"], "auto");
        assert_eq!(r["parallel_tool_calls"], true);
        assert_eq!(r["truncation"], "disabled");
        assert_eq!(r["store"], false);
        assert!(!echo.store());
        assert_eq!(r["instructions"], Value::Null);
        assert_eq!(r["previous_response_id"], Value::Null);
        // Request-only fields are not repeated.
        assert!(r.get("input").is_none() && r.get("stream").is_none());
    }

    #[test]
    fn the_base_written_directly_is_what_json_would_write() {
        let request = json!({"model": "my \"model\"\n", "instructions": "Be brief.\u{1}",
            "temperature": 0.7, "top_p": 1e-3, "metadata": {"k": "v", "a": [1, null]},
            "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
            "reasoning": {"effort": "high", "summary": "auto"}, "text": {"verbosity": "low"}});
        let mut echoes = vec![
            Echo::from_request(&request, 1_750_000_000),
            Echo::from_request(&json!({}), 0),
        ];
        // Fields before, between and after the response's own keys, and fields with the same
        // keys (the response's own value wins).
        let mut odd = Echo::from_request(&request, u64::MAX);
        for key in [
            "aaa",
            "id",
            "model",
            "o",
            "status",
            "usage",
            "zzz",
            "created_at",
        ] {
            odd.fields.insert(key.into(), json!(["x", key]));
        }
        echoes.push(odd);
        // No field, and fields that all sort before some of the response's own keys.
        for keys in [&[][..], &["aaa"], &["f", "p"], &["completed_at", "status"]] {
            let mut few = Echo::from_request(&request, 3);
            few.fields = keys.iter().map(|k| (k.to_string(), json!(k))).collect();
            echoes.push(few);
        }
        for echo in &echoes {
            for status in [
                Status::InProgress,
                Status::Completed,
                Status::Incomplete,
                Status::Failed,
            ] {
                let mut out = b"before ".to_vec();
                echo.write_base(&mut out, status);
                assert_eq!(
                    String::from_utf8(out).unwrap(),
                    format!("before {}", echo.base(status))
                );
                // The defaults, under the echo's fields, under the response's own.
                let mut plain: Map<String, Value> = ECHOED
                    .iter()
                    .map(|k| (k.to_string(), default_of(k)))
                    .collect();
                plain.extend(echo.fields.clone());
                plain.extend([
                    ("id".into(), json!(echo.id)),
                    ("object".into(), json!("response")),
                    ("created_at".into(), json!(echo.created_at)),
                    ("status".into(), json!(status.as_str())),
                    ("model".into(), json!(echo.model)),
                    ("output".into(), json!([])),
                ]);
                for k in ["completed_at", "error", "incomplete_details", "usage"] {
                    plain.insert(k.into(), Value::Null);
                }
                assert_eq!(echo.base(status), Value::Object(plain));
            }
        }
    }

    #[test]
    fn the_field_lists_are_in_key_order_and_the_defaults_agree() {
        assert!(ECHOED.is_sorted() && OWN.is_sorted());
        assert!(ECHOED.iter().all(|k| !OWN.contains(k)));
        let mut all: Vec<(&str, bool)> = ECHOED.iter().map(|k| (*k, false)).collect();
        all.extend(OWN.iter().map(|k| (*k, true)));
        all.sort();
        assert_eq!(all, FIELDS);
        for k in ECHOED {
            assert_eq!(default_json(k), serde_json::to_vec(&default_of(k)).unwrap());
            assert!(!super::super::sse::needs_escape(k.as_bytes()));
        }
    }

    #[test]
    fn store_defaults_to_true_and_the_slot_starts_empty() {
        let echo = Echo::from_request(&json!({"model": "m"}), 0);
        assert!(echo.store());
        assert_eq!(
            echo.base(Status::Completed)["text"]["format"]["type"],
            "text"
        );
        assert!(echo.take_finished().is_none());
        echo.set_finished(json!({"id": "x"}));
        assert_eq!(echo.take_finished(), Some(json!({"id": "x"})));
    }
}
