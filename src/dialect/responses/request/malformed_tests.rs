//! Malformed requests never panic: every node of a rich request, replaced by each of a table
//! of odd values, converts or is a 400, never anything else.

use serde_json::{Value, json};

use super::to_chat;
use crate::error::ProxyError;

/// A request that touches every rule: items of each kind, parts, tools, choice, fields.
fn rich() -> Value {
    json!({
        "model": "m",
        "instructions": "Be brief.",
        "input": [
            {"role": "developer", "content": "Rules.", "id": "msg_0"},
            {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "Look"},
                {"type": "input_image", "image_url": "data:image/png;base64,AA", "detail": "low"},
                {"type": "input_file", "file_data": "data:application/pdf;base64,JV", "filename": "a.pdf"},
            ]},
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "S"}],
             "content": [{"type": "reasoning_text", "text": "R"}], "encrypted_content": "sig"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "T", "annotations": []}]},
            {"type": "function_call", "id": "fc_1", "call_id": "call_A", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_A", "output": [{"type": "input_text", "text": "5"}]},
            {"type": "item_reference", "id": "msg_0"},
        ],
        "tools": [
            {"type": "function", "name": "f", "parameters": {"type": "object", "properties": {}}, "strict": true},
            {"type": "web_search", "search_context_size": "low", "user_location": {"city": "Paris"}},
            {"type": "namespace", "name": "n"},
        ],
        "tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "f"}]},
        "parallel_tool_calls": true,
        "text": {"format": {"type": "json_schema", "name": "a", "schema": {"type": "object"}, "strict": true}, "verbosity": "low"},
        "reasoning": {"effort": "high"},
        "max_output_tokens": 100,
        "temperature": 1,
        "top_p": 1,
        "top_logprobs": 2,
        "stream": true,
        "include": ["reasoning.encrypted_content", "web_search_call.results"],
        "user": "u",
        "metadata": {"k": "v"},
        "store": true,
    })
}

fn odd_values() -> Vec<Value> {
    vec![
        Value::Null,
        json!(true),
        json!(false),
        json!(0),
        json!(-1),
        json!(1.5),
        json!(u64::MAX),
        json!(-1e308),
        json!(""),
        json!("x"),
        json!("call_A"),
        json!("\u{0}\u{7f}\u{e9}"),
        json!([]),
        json!([null]),
        json!([[]]),
        json!([{}]),
        json!({}),
        json!({"type": null}),
        json!({"type": 3, "role": 3, "id": 3}),
        json!({"role": "user"}),
        json!({"id": "fc_1"}),
        json!({"type": "function_call_output", "call_id": "call_A", "output": "again"}),
    ]
}

/// The JSON pointer of every node below the root, without recursion.
fn pointers(root: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![(String::new(), root)];
    while let Some((at, v)) = todo.pop() {
        match v {
            Value::Object(o) => {
                for (k, child) in o {
                    todo.push((
                        format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                        child,
                    ));
                }
            }
            Value::Array(a) => {
                for (i, child) in a.iter().enumerate() {
                    todo.push((format!("{at}/{i}"), child));
                }
            }
            _ => {}
        }
        if !at.is_empty() {
            out.push(at);
        }
    }
    out
}

fn converts_or_400(request: &Value, history: &[Value]) {
    match to_chat(request, history) {
        Ok(_) | Err(ProxyError::BadRequest { .. }) => {}
        Err(other) => panic!("{request} gave {other:?}"),
    }
}

#[test]
fn the_rich_request_converts() {
    let c = to_chat(&rich(), &[]).unwrap();
    let roles: Vec<&str> = c.chat["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    // The reference at the end repeats the developer message.
    assert_eq!(
        roles,
        ["system", "system", "user", "assistant", "tool", "system"]
    );
    assert_eq!(
        c.dropped,
        [
            "tools[1]:web_search",
            "tools[2]:namespace",
            "include:web_search_call.results"
        ]
    );
}

#[test]
fn every_node_replaced_by_an_odd_value_converts_or_is_a_400() {
    let base = rich();
    let history = [base["input"][3].clone(), base["input"][4].clone()];
    let mut runs = 0;
    for at in pointers(&base) {
        for odd in odd_values() {
            let mut request = base.clone();
            *request.pointer_mut(&at).unwrap() = odd.clone();
            converts_or_400(&request, &[]);
            converts_or_400(&request, &history);
            runs += 1;
        }
        let mut request = base.clone();
        let (parent, key) = at.rsplit_once('/').unwrap();
        match request.pointer_mut(if parent.is_empty() { "" } else { parent }) {
            Some(Value::Object(o)) => {
                o.remove(&key.replace("~1", "/").replace("~0", "~"));
            }
            Some(Value::Array(a)) => {
                a.remove(key.parse::<usize>().unwrap());
            }
            _ => unreachable!(),
        }
        converts_or_400(&request, &[]);
    }
    assert!(runs > 1000, "{runs}");
}

#[test]
fn odd_whole_bodies_are_400() {
    for body in odd_values() {
        if !body.is_object() {
            converts_or_400(&body, &[]);
            assert!(to_chat(&body, &[]).is_err());
        }
    }
    let deep = (0..100).fold(json!("x"), |v, _| json!([v]));
    converts_or_400(&json!({"model": "m", "input": deep}), &[]);
    converts_or_400(
        &json!({"model": "m", "input": [{"role": "user", "content": [deep]}]}),
        &[],
    );
}
