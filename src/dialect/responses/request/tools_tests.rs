//! Tools and tool_choice in chat form; hosted tools left out and noted.

use serde_json::{Value, json};

use super::is_web_search;
use super::testing::{ok, param};

fn with_tools(tools: Value, choice: Value) -> super::Converted {
    ok(json!({"model": "m", "input": "Q", "tools": tools, "tool_choice": choice}))
}

fn weather() -> Value {
    json!({"type": "function", "name": "get_weather", "description": "Current weather", "strict": true,
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}})
}

#[test]
fn function_tools_nest_under_function() {
    let c = with_tools(json!([weather()]), Value::Null);
    assert_eq!(
        c.chat["tools"],
        json!([{"type": "function", "function": {"name": "get_weather", "description": "Current weather", "strict": true,
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])
    );
    assert!(c.chat.get("tool_choice").is_none());
    assert!(c.dropped.is_empty());
}

#[test]
fn a_function_without_parameters_gets_the_empty_object_schema() {
    let c = with_tools(
        json!([
            {"type": "function", "name": "now", "strict": false},
            {"type": "function", "name": "list", "parameters": {"type": "object", "properties": {}}},
        ]),
        json!("auto"),
    );
    let empty = json!({"type": "object", "properties": {}});
    assert_eq!(
        c.chat["tools"][0]["function"],
        json!({"name": "now", "parameters": empty})
    );
    assert_eq!(c.chat["tools"][1]["function"]["parameters"], empty);
}

#[test]
fn web_search_becomes_web_search_options_and_is_noted() {
    let c = with_tools(
        json!([weather(), {"type": "web_search_preview", "search_context_size": "low",
            "user_location": {"type": "approximate", "city": "Paris", "country": "FR", "region": null},
            "filters": {"allowed_domains": ["x.test"]}}]),
        json!("auto"),
    );
    assert_eq!(
        c.chat["web_search_options"],
        json!({"search_context_size": "low",
               "user_location": {"type": "approximate", "approximate": {"city": "Paris", "country": "FR"}}})
    );
    assert_eq!(
        c.dropped,
        ["tools[1].filters", "tools[1]:web_search_preview"]
    );
    assert!(is_web_search(&c.dropped[1]));
    assert!(!is_web_search(&c.dropped[0]));
    assert!(!is_web_search("tools[0]:file_search"));
    let bare = with_tools(json!([{"type": "web_search"}]), Value::Null);
    assert_eq!(bare.chat["web_search_options"], json!({}));
}

#[test]
fn hosted_and_unknown_tools_are_left_out_and_noted() {
    let kinds = [
        "file_search",
        "computer_use_preview",
        "code_interpreter",
        "image_generation",
        "mcp",
        "local_shell",
        "custom",
        "namespace",
        "a_tool_from_next_year",
    ];
    let mut tools: Vec<Value> = kinds
        .iter()
        .map(|k| json!({"type": k, "name": "x"}))
        .collect();
    tools.push(weather());
    let c = with_tools(Value::Array(tools), json!("required"));
    let expected: Vec<String> = kinds
        .iter()
        .enumerate()
        .map(|(i, k)| format!("tools[{i}]:{k}"))
        .collect();
    assert_eq!(c.dropped, expected);
    assert_eq!(c.chat["tools"].as_array().unwrap().len(), 1);
    assert_eq!(c.chat["tool_choice"], "required");
}

#[test]
fn without_function_tools_no_tool_fields_reach_chat() {
    let c = ok(
        json!({"model": "m", "input": "Q", "tools": [{"type": "file_search"}],
                      "tool_choice": "auto", "parallel_tool_calls": true}),
    );
    for key in ["tools", "tool_choice", "parallel_tool_calls"] {
        assert!(c.chat.get(key).is_none(), "{key}: {}", c.chat);
    }
    let c =
        ok(json!({"model": "m", "input": "Q", "tools": [weather()], "parallel_tool_calls": false}));
    assert_eq!(c.chat["parallel_tool_calls"], false);
}

#[test]
fn tool_choice_forms() {
    for mode in ["auto", "none", "required"] {
        assert_eq!(
            with_tools(json!([weather()]), json!(mode)).chat["tool_choice"],
            mode
        );
    }
    let forced = with_tools(
        json!([weather()]),
        json!({"type": "function", "name": "get_weather"}),
    );
    assert_eq!(
        forced.chat["tool_choice"],
        json!({"type": "function", "function": {"name": "get_weather"}})
    );
    let hosted = with_tools(json!([weather()]), json!({"type": "file_search"}));
    assert_eq!(hosted.chat["tool_choice"], "auto");
    assert_eq!(hosted.dropped, ["tool_choice:file_search"]);
}

#[test]
fn allowed_tools_keeps_the_listed_functions_and_its_mode() {
    let other = json!({"type": "function", "name": "other"});
    let c = with_tools(
        json!([weather(), other]),
        json!({"type": "allowed_tools", "mode": "required",
               "tools": [{"type": "function", "name": "get_weather"}, {"type": "web_search"}]}),
    );
    assert_eq!(c.chat["tool_choice"], "required");
    let names: Vec<&str> = c.chat["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["get_weather"]);
}

#[test]
fn bad_tools_and_choices_are_400() {
    let p = |tools: Value, choice: Value| {
        param(json!({"model": "m", "input": "Q", "tools": tools, "tool_choice": choice}))
    };
    assert_eq!(p(json!({}), Value::Null).as_deref(), Some("tools"));
    assert_eq!(
        p(json!([{"name": "f"}]), Value::Null).as_deref(),
        Some("tools[0].type")
    );
    assert_eq!(
        p(json!([{"type": "function"}]), Value::Null).as_deref(),
        Some("tools[0].name")
    );
    assert_eq!(
        p(
            json!([{"type": "function", "name": "f", "parameters": "x"}]),
            Value::Null
        )
        .as_deref(),
        Some("tools[0].parameters")
    );
    assert_eq!(
        p(json!([weather()]), json!("any")).as_deref(),
        Some("tool_choice")
    );
    assert_eq!(
        p(json!([weather()]), json!({"type": "function"})).as_deref(),
        Some("tool_choice.name")
    );
    assert_eq!(
        p(json!([weather()]), json!({"name": "f"})).as_deref(),
        Some("tool_choice.type")
    );
    assert_eq!(
        p(
            json!([weather()]),
            json!({"type": "allowed_tools", "mode": "none", "tools": []})
        )
        .as_deref(),
        Some("tool_choice.mode")
    );
}
