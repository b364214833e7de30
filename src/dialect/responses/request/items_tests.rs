//! Input items as chat messages: roles, turns of calls and outputs, reasoning, references.

use serde_json::{Value, json};

use super::testing::{messages, ok, ok_after, param, refused, refused_after};

fn chat_of(input: Value) -> Vec<Value> {
    messages(&ok(json!({"model": "m", "input": input}))).to_vec()
}

fn call(id: &str, name: &str) -> Value {
    json!({"type": "function_call", "call_id": id, "name": name, "arguments": "{\"a\":1}"})
}

fn output(id: &str, text: &str) -> Value {
    json!({"type": "function_call_output", "call_id": id, "output": text})
}

fn tool_call(id: &str, name: &str) -> Value {
    json!({"id": id, "type": "function", "function": {"name": name, "arguments": "{\"a\":1}"}})
}

#[test]
fn a_string_input_is_one_user_message_and_one_listed_item() {
    let c = ok(json!({"model": "m", "input": "Hi"}));
    assert_eq!(messages(&c), [json!({"role": "user", "content": "Hi"})]);
    let [item] = c.input_items.as_slice() else {
        panic!("{:?}", c.input_items)
    };
    assert!(item["id"].as_str().unwrap().starts_with("msg_"), "{item}");
    assert_eq!(item["type"], "message");
    assert_eq!(item["role"], "user");
    assert_eq!(
        item["content"],
        json!([{"type": "input_text", "text": "Hi"}])
    );
}

#[test]
fn instructions_lead_and_roles_map() {
    let c = ok(json!({"model": "m", "instructions": "Be brief.", "input": [
        {"role": "developer", "content": "Use tools."},
        {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "S"}]},
        {"role": "user", "content": [{"type": "input_text", "text": "Q"}]},
        {"role": "assistant", "content": "A"},
    ]}));
    assert_eq!(
        messages(&c),
        [
            json!({"role": "system", "content": "Be brief."}),
            json!({"role": "system", "content": "Use tools."}),
            json!({"role": "system", "content": "S"}),
            json!({"role": "user", "content": "Q"}),
            json!({"role": "assistant", "content": "A"}),
        ]
    );
}

#[test]
fn items_keep_their_ids_and_get_ids_in_openai_style() {
    let c = ok(json!({"model": "m", "input": [
        {"role": "user", "content": "Q", "id": "msg_client"},
        call("call_A", "f"),
        output("call_A", "5"),
        {"type": "reasoning", "summary": []},
        {"role": "assistant", "content": "A"},
    ]}));
    let ids: Vec<&str> = c
        .input_items
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids[0], "msg_client");
    for (id, prefix) in ids[1..].iter().zip(["fc_", "fco_", "rs_", "msg_"]) {
        assert!(
            id.starts_with(prefix) && id.len() > prefix.len() + 20,
            "{id}"
        );
    }
    assert_eq!(c.input_items[1]["status"], "completed");
    assert_eq!(
        c.input_items[4]["content"],
        json!([{"type": "output_text", "text": "A", "annotations": []}])
    );
}

#[test]
fn a_tool_round_trip_becomes_user_assistant_tool_assistant() {
    let got = chat_of(json!([
        {"role": "user", "content": "Weather?"},
        call("call_A", "get_weather"),
        output("call_A", "18C"),
        {"type": "message", "role": "assistant", "status": "completed",
         "content": [{"type": "output_text", "text": "It is 18C.", "annotations": []}]},
    ]));
    assert_eq!(
        got,
        [
            json!({"role": "user", "content": "Weather?"}),
            json!({"role": "assistant", "content": null, "tool_calls": [tool_call("call_A", "get_weather")]}),
            json!({"role": "tool", "tool_call_id": "call_A", "content": "18C"}),
            json!({"role": "assistant", "content": "It is 18C."}),
        ]
    );
}

#[test]
fn parallel_calls_and_the_text_before_them_are_one_assistant_message() {
    let got = chat_of(json!([
        {"role": "user", "content": "Q"},
        {"role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
        call("call_A", "f"),
        call("call_B", "g"),
        output("call_B", "b"),
        output("call_A", "a"),
    ]));
    assert_eq!(
        got[1],
        json!({"role": "assistant", "content": "Checking.",
               "tool_calls": [tool_call("call_A", "f"), tool_call("call_B", "g")]})
    );
    // Outputs follow in call order.
    assert_eq!(got[2]["tool_call_id"], "call_A");
    assert_eq!(got[3]["tool_call_id"], "call_B");
    assert_eq!(got.len(), 4);
}

#[test]
fn late_outputs_move_up_to_their_calls() {
    let got = chat_of(json!([
        call("call_A", "f"),
        {"role": "user", "content": "and?"},
        output("call_A", "a"),
    ]));
    let roles: Vec<&str> = got.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["assistant", "tool", "user"]);
}

#[test]
fn history_comes_first_and_instructions_are_not_inherited() {
    let history = [
        json!({"id": "msg_1", "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Add 2 and 3"}]}),
        json!({"id": "fc_1", "type": "function_call", "call_id": "call_A", "name": "add", "arguments": "{}", "status": "completed"}),
    ];
    let c = ok_after(
        &history,
        json!({"model": "m", "instructions": "New rules.", "previous_response_id": "resp_1",
               "input": [output("call_A", "5")]}),
    );
    assert_eq!(
        messages(&c),
        [
            json!({"role": "system", "content": "New rules."}),
            json!({"role": "user", "content": "Add 2 and 3"}),
            json!({"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_A", "type": "function", "function": {"name": "add", "arguments": "{}"}}]}),
            json!({"role": "tool", "tool_call_id": "call_A", "content": "5"}),
        ]
    );
    assert_eq!(
        c.input_items.len(),
        1,
        "only this request's input is listed"
    );
}

#[test]
fn an_orphan_output_is_openais_400() {
    let (message, param) = refused(json!({"model": "m", "input": [
        {"role": "user", "content": "Q"}, output("call_A", "5"),
    ]}));
    assert_eq!(
        message,
        "No tool call found for function call output with call_id call_A."
    );
    assert_eq!(param.as_deref(), Some("input"));
    // An output before its call is an orphan too.
    let (message, _) =
        refused(json!({"model": "m", "input": [output("call_A", "5"), call("call_A", "f")]}));
    assert!(message.starts_with("No tool call found"), "{message}");
}

#[test]
fn a_call_without_output_and_duplicates_are_400() {
    let (message, param) = refused(json!({"model": "m", "input": [
        {"role": "user", "content": "Q"}, call("call_A", "f"), {"role": "user", "content": "?"},
    ]}));
    assert_eq!(message, "No tool output found for function call call_A.");
    assert_eq!(param.as_deref(), Some("input"));
    let (message, param) = refused(json!({"model": "m", "input": [
        call("call_A", "f"), output("call_A", "1"), output("call_A", "2"),
    ]}));
    assert!(
        message.starts_with("Duplicate function call output"),
        "{message}"
    );
    assert_eq!(param.as_deref(), Some("input[2]"));
    let (message, _) = refused(json!({"model": "m", "input": [
        call("call_A", "f"), call("call_A", "f"), output("call_A", "1"),
    ]}));
    assert!(
        message.starts_with("Duplicate function call with"),
        "{message}"
    );
}

#[test]
fn errors_in_history_name_previous_response_id() {
    let history = [json!({"type": "message", "role": "critic", "content": "x"})];
    let (_, param) = refused_after(
        &history,
        json!({"model": "m", "previous_response_id": "resp_1"}),
    );
    assert_eq!(param.as_deref(), Some("previous_response_id.role"));
}

#[test]
fn reasoning_rides_on_the_next_assistant_message() {
    let got = chat_of(json!([
        {"role": "user", "content": "Q"},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Plan."}],
         "encrypted_content": "sig-1"},
        call("call_A", "f"),
        {"type": "reasoning", "id": "rs_2", "summary": [], "content": [{"type": "reasoning_text", "text": "More."}]},
        call("call_B", "g"),
        output("call_A", "a"),
        output("call_B", "b"),
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "One."}, {"type": "summary_text", "text": "Two."}]},
        {"role": "assistant", "content": "Done."},
    ]));
    // The reasoning between two calls does not split them.
    assert_eq!(got[1]["tool_calls"].as_array().unwrap().len(), 2);
    assert_eq!(got[1]["reasoning_content"], "Plan.\n\nMore.");
    assert_eq!(got[1]["reasoning_signature"], "sig-1");
    assert_eq!(got[4]["reasoning_content"], "One.\n\nTwo.");
    assert!(got[4].get("reasoning_signature").is_none());
}

#[test]
fn reasoning_with_no_assistant_after_it_is_left_out() {
    let got = chat_of(json!([
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "Hm."}]},
        {"role": "user", "content": "Q"},
        {"role": "assistant", "content": "A"},
    ]));
    assert_eq!(got[1], json!({"role": "assistant", "content": "A"}));
}

#[test]
fn item_references_resolve_to_earlier_items_only() {
    let history = [json!({"id": "msg_1", "type": "message", "role": "user", "content": "Earlier"})];
    let c = ok_after(
        &history,
        json!({"model": "m", "previous_response_id": "resp_1", "input": [{"id": "msg_1"}]}),
    );
    assert_eq!(
        messages(&c)[1],
        json!({"role": "user", "content": "Earlier"})
    );
    assert_eq!(c.input_items[0]["type"], "item_reference");
    let (_, param) =
        refused(json!({"model": "m", "input": [{"type": "item_reference", "id": "msg_x"}]}));
    assert_eq!(param.as_deref(), Some("input[0].id"));
}

#[test]
fn hosted_tool_items_are_400() {
    for kind in [
        "web_search_call",
        "computer_call",
        "custom_tool_call",
        "compaction",
    ] {
        let p = param(
            json!({"model": "m", "input": [{"role": "user", "content": "Q"}, {"type": kind, "id": "x"}]}),
        );
        assert_eq!(p.as_deref(), Some("input[1].type"), "{kind}");
    }
}

#[test]
fn images_become_image_url_parts() {
    let got = chat_of(json!([{"role": "user", "content": [
        {"type": "input_text", "text": "What is this?"},
        {"type": "input_image", "image_url": "https://x.test/a.png", "detail": "auto"},
        {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=", "detail": "original"},
        {"type": "input_image", "image_url": "https://x.test/b.png"},
    ]}]));
    assert_eq!(
        got[0]["content"],
        json!([
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "https://x.test/a.png", "detail": "auto"}},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}},
            {"type": "image_url", "image_url": {"url": "https://x.test/b.png"}},
        ])
    );
}

#[test]
fn files_go_as_file_data_only() {
    let got = chat_of(json!([{"role": "user", "content": [
        {"type": "input_file", "file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"},
    ]}]));
    assert_eq!(
        got[0]["content"],
        json!([{"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"}}])
    );
    for (part, at) in [
        (
            json!({"type": "input_image", "file_id": "file-1"}),
            "file_id",
        ),
        (
            json!({"type": "input_file", "file_id": "file-1"}),
            "file_id",
        ),
        (
            json!({"type": "input_file", "file_url": "https://x.test/a.pdf"}),
            "file_url",
        ),
        (json!({"type": "input_image"}), "image_url"),
        (json!({"type": "input_audio", "data": "x"}), "type"),
    ] {
        let p = param(json!({"model": "m", "input": [{"role": "user", "content": [part]}]}));
        assert_eq!(p, Some(format!("input[0].content[0].{at}")));
    }
}

#[test]
fn tool_output_parts_are_joined_and_images_noted() {
    let c = ok(json!({"model": "m", "input": [
        call("call_A", "look"),
        {"type": "function_call_output", "call_id": "call_A", "output": [
            {"type": "input_text", "text": "one"},
            {"type": "input_image", "image_url": "data:image/png;base64,AA"},
            {"type": "input_text", "text": "two"},
        ]},
    ]}));
    assert_eq!(messages(&c)[1]["content"], "one\ntwo");
    assert_eq!(c.dropped, ["input[1].output[1]:input_image"]);
}

#[test]
fn assistant_content_is_text_and_refusals_are_kept_as_text() {
    let got = chat_of(json!([{"role": "assistant", "content": [
        {"type": "output_text", "text": "Part one, "},
        {"type": "input_text", "text": "part two. "},
        {"type": "refusal", "refusal": "I can't."},
    ]}]));
    assert_eq!(
        got[0],
        json!({"role": "assistant", "content": "Part one, part two. I can't."})
    );
    let (message, param) = refused(json!({"model": "m", "input": [
        {"role": "assistant", "content": [{"type": "input_image", "image_url": "https://x"}]}]}));
    assert_eq!(
        message,
        "Invalid value: 'input_image'. Supported values are: 'output_text' and 'refusal'."
    );
    assert_eq!(param.as_deref(), Some("input[0].content[0].type"));
}

#[test]
fn empty_arguments_become_an_empty_object() {
    let got = chat_of(json!([
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": ""},
        output("c", "x"),
    ]));
    assert_eq!(got[0]["tool_calls"][0]["function"]["arguments"], "{}");
}
