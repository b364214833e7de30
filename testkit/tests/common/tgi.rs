//! Shared request builders for the tgi fake's tests.

use rosetta_testkit::FakeUpstream;
use serde_json::{Value, json};

use super::*;

pub const JSON: &[(&str, &str)] = &[("content-type", "application/json")];

pub fn llama(user: &str) -> String {
    format!(
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>\
         <|start_header_id|>user<|end_header_id|>\n\n{user}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    )
}

pub fn chatml(user: &str) -> String {
    format!(
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
    )
}

pub fn request(inputs: &str, parameters: Value) -> Value {
    json!({"inputs": inputs, "parameters": parameters})
}

pub async fn post(fake: &FakeUpstream, path: &str, body: &Value) -> Exchange {
    send(fake.addr(), "POST", path, JSON, &body.to_string()).await
}

/// The events of a TGI stream: every one is exactly `data:{json}` + blank line.
pub fn events(r: &Exchange) -> Vec<Value> {
    let text = r.text();
    assert!(text.ends_with("\n\n"));
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let data = e.strip_prefix("data:").expect("data: line");
            assert!(data.starts_with('{'), "no space after `data:`: {e:?}");
            serde_json::from_str(data).expect("event JSON")
        })
        .collect()
}
