//! The golden runner's own tests.

use super::*;
use serde_json::json;

#[test]
fn diff_reports_paths_and_honours_wildcards() {
    let mut p = Vec::new();
    diff(
        &json!({"id": "*", "a": [1, {"b": "x"}], "n": 1}),
        &json!({"id": "chatcmpl-1", "a": [1, {"b": "y"}], "n": 1.0, "extra": true}),
        "$",
        &mut p,
    );
    assert_eq!(
        p,
        vec![
            "$.a[1].b: expected \"x\", got \"y\"".to_string(),
            "$.extra: unexpected true".to_string()
        ]
    );
    let mut p = Vec::new();
    diff(&json!({"id": "*"}), &json!({}), "$", &mut p);
    assert_eq!(p.len(), 1, "a wildcard still needs the key");
}

fn minted(prefix: &str, c: char, n: usize) -> String {
    format!("{prefix}{}", c.to_string().repeat(n))
}

#[test]
fn steady_names_minted_ids_by_first_sight_and_keeps_the_others() {
    let (msg, fc, call) = (
        minted("msg_", 'a', 48),
        minted("fc_", 'b', 48),
        minted("call_", 'c', 24),
    );
    let now = now_secs();
    let mut v = json!({
        "id": minted("resp_", 'r', 48),
        "completed_at": now,
        "output": [
            {"id": msg, "type": "message"},
            {"id": fc, "call_id": call, "type": "function_call"},
            {"id": minted("fc_", 'd', 48), "call_id": "toolu_01", "type": "function_call"},
        ],
        // Not an id key, a prefix without its 48 characters, an id of another shape.
        "text": msg,
        "item_id": "msg_short",
        "x": {"item_id": fc, "call_id": minted("call_", 'e', 23)},
    });
    let mut problems = Vec::new();
    Steady::new(now, false).apply(&mut v, "$", &mut problems);
    assert_eq!(problems, Vec::<String>::new());
    assert_eq!(
        v,
        json!({
            "id": "<resp_1>",
            "completed_at": CASE_TIME,
            "output": [
                {"id": "<msg_1>", "type": "message"},
                {"id": "<fc_1>", "call_id": "<call_1>", "type": "function_call"},
                {"id": "<fc_2>", "call_id": "toolu_01", "type": "function_call"},
            ],
            "text": msg,
            "item_id": "msg_short",
            "x": {"item_id": "<fc_1>", "call_id": minted("call_", 'e', 23)},
        })
    );
}

#[test]
fn steady_renames_the_messages_dialects_ids_only_in_a_messages_case() {
    let msg = minted("msg_", 'a', 24);
    let tool = minted("toolu_", 'b', 24);
    let given = "toolu_01Ghi";
    let v = json!({"id": msg, "content": [{"type": "tool_use", "id": tool}, {"id": given}]});
    let mut problems = Vec::new();
    let mut renamed = v.clone();
    Steady::new(now_secs(), true).apply(&mut renamed, "$", &mut problems);
    assert_eq!(problems, Vec::<String>::new());
    assert_eq!(
        renamed,
        json!({"id": "<msg_1>", "content": [{"type": "tool_use", "id": "<toolu_1>"}, {"id": given}]})
    );
    // A Responses case's `msg_` ids have 48 characters: 24 is not one of its ids.
    let mut kept = v.clone();
    Steady::new(now_secs(), false).apply(&mut kept, "$", &mut problems);
    assert_eq!(kept, v);
}

#[test]
fn steady_refuses_a_completed_at_from_outside_the_run() {
    let mut v = json!({"response": {"completed_at": CASE_TIME, "created_at": 5}});
    let mut problems = Vec::new();
    Steady::new(now_secs(), false).apply(&mut v, "events[3]", &mut problems);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0]
            .starts_with("events[3].response.completed_at: 1700000000 is not a time of the run"),
        "{problems:?}"
    );
    // `created_at` is the echo's, fixed: it is compared as it is.
    assert_eq!(v["response"]["created_at"], 5);
}

#[test]
fn responses_events_are_read_with_their_event_line() {
    let text = "event: response.created\ndata: {\"type\":\"response.created\"}\n\n\
                event: error\ndata: {\"type\":\"error\"}\n\ndata: [DONE]\n\n";
    let (events, done) = parse_events(text);
    assert_eq!(
        events,
        vec![
            (
                "response.created".to_string(),
                json!({"type": "response.created"})
            ),
            ("error".to_string(), json!({"type": "error"})),
        ]
    );
    assert!(done);
}

/// The shipped Anthropic mapping, loaded as `rosetta test` loads it.
fn anthropic() -> Arc<Mapping> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/anthropic.yaml");
    let src = std::fs::read_to_string(&file).unwrap();
    Arc::new(crate::mapping::compile_file(&file, &src, &|_| None).unwrap())
}

fn case(yaml: &str) -> Case {
    serde_yaml::from_str(yaml).unwrap()
}

const WHOLE: &str = r#"
route: responses
request: {model: claude-sonnet-4-5, input: Hello, max_output_tokens: 5}
upstream_request:
  body: {model: claude-sonnet-4-5, max_tokens: 5, messages: [{role: user, content: [{type: text, text: Hello}]}]}
upstream_response:
  json: {content: [{type: text, text: Hi}], stop_reason: max_tokens, usage: {input_tokens: 3, output_tokens: 5}}
expect:
  body:
    id: <resp_1>
    object: response
    created_at: 1700000000
    status: incomplete
    completed_at: null
    error: null
    incomplete_details: {reason: max_output_tokens}
    model: claude-sonnet-4-5
    output:
      - id: <msg_1>
        type: message
        status: incomplete
        role: assistant
        content: [{type: output_text, text: Hi, annotations: [], logprobs: []}]
    usage: {input_tokens: 3, input_tokens_details: {cached_tokens: 0}, output_tokens: 5, output_tokens_details: {reasoning_tokens: 0}, total_tokens: 8}
    background: false
    instructions: null
    max_output_tokens: 5
    max_tool_calls: null
    metadata: {}
    parallel_tool_calls: true
    previous_response_id: null
    prompt_cache_key: null
    reasoning: null
    safety_identifier: null
    service_tier: null
    store: false
    temperature: null
    text: {format: {type: text}}
    tool_choice: auto
    tools: []
    top_logprobs: null
    top_p: null
    truncation: disabled
    user: null
"#;

#[test]
fn a_whole_responses_case_is_compared_exactly() {
    let m = anthropic();
    assert_eq!(run_case(&m, &case(WHOLE)), Vec::<String>::new());
    let broken = WHOLE.replace(
        "status: incomplete\n    completed_at",
        "status: completed\n    completed_at",
    );
    assert_eq!(
        run_case(&m, &case(&broken)),
        vec![r#"$.status: expected "completed", got "incomplete""#.to_string()]
    );
    // The expected output mentions an id the answer does not have.
    let broken = WHOLE.replace("- id: <msg_1>", "- id: <msg_2>");
    assert_eq!(
        run_case(&m, &case(&broken)),
        vec![r#"$.output[0].id: expected "<msg_2>", got "<msg_1>""#.to_string()]
    );
}

const STREAM: &str = r#"
route: responses
request: {model: claude-sonnet-4-5, input: Hi, stream: true, store: false}
upstream_response:
  sse: |
    event: content_block_delta
    data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Yo"}}

    event: message_delta
    data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":1}}

    event: message_stop
    data: {"type":"message_stop"}
expect:
  events:
    - {type: response.created, sequence_number: 0, response: "*"}
    - {type: response.in_progress, sequence_number: 1, response: "*"}
    - {type: response.output_item.added, sequence_number: 2, output_index: 0, item: {id: <msg_1>, type: message, status: in_progress, role: assistant, content: []}}
    - {type: response.content_part.added, sequence_number: 3, output_index: 0, content_index: 0, item_id: <msg_1>, part: {type: output_text, text: "", annotations: [], logprobs: []}}
    - {type: response.output_text.delta, sequence_number: 4, output_index: 0, content_index: 0, item_id: <msg_1>, delta: Yo, logprobs: []}
    - {type: response.output_text.done, sequence_number: 5, output_index: 0, content_index: 0, item_id: <msg_1>, text: Yo, logprobs: []}
    - {type: response.content_part.done, sequence_number: 6, output_index: 0, content_index: 0, item_id: <msg_1>, part: {type: output_text, text: Yo, annotations: [], logprobs: []}}
    - {type: response.output_item.done, sequence_number: 7, output_index: 0, item: {id: <msg_1>, type: message, status: completed, role: assistant, content: [{type: output_text, text: Yo, annotations: [], logprobs: []}]}}
    - type: response.completed
      sequence_number: 8
      response:
        id: <resp_1>
        status: completed
        completed_at: 1700000000
        output: [{id: <msg_1>, type: message, status: completed, role: assistant, content: [{type: output_text, text: Yo, annotations: [], logprobs: []}]}]
        usage: {input_tokens: 0, input_tokens_details: {cached_tokens: 0}, output_tokens: 1, output_tokens_details: {reasoning_tokens: 0}, total_tokens: 1}
        object: response
        created_at: 1700000000
        error: null
        incomplete_details: null
        model: claude-sonnet-4-5
        background: false
        instructions: null
        max_output_tokens: null
        max_tool_calls: null
        metadata: {}
        parallel_tool_calls: true
        previous_response_id: null
        prompt_cache_key: null
        reasoning: null
        safety_identifier: null
        service_tier: null
        store: false
        temperature: null
        text: {format: {type: text}}
        tool_choice: auto
        tools: []
        top_logprobs: null
        top_p: null
        truncation: disabled
        user: null
"#;

#[test]
fn a_responses_stream_is_compared_event_by_event() {
    let m = anthropic();
    assert_eq!(run_case(&m, &case(STREAM)), Vec::<String>::new());
    let broken = STREAM.replace("sequence_number: 4,", "sequence_number: 5,");
    assert_eq!(
        run_case(&m, &case(&broken)),
        vec!["events[4].sequence_number: expected 5, got 4".to_string()]
    );
    // An event left out: the count, with every event the stream had, then the shifted diff.
    let broken = STREAM.replace(
        "    - {type: response.in_progress, sequence_number: 1, response: \"*\"}\n",
        "",
    );
    let problems = run_case(&m, &case(&broken));
    assert!(
        problems[0].starts_with("expected 8 events, got 9:\n  - {\"response\":"),
        "{problems:?}"
    );
    assert!(problems.len() > 1, "{problems:?}");
    // A Responses stream has no [DONE]; asking for one fails.
    let broken = format!("{STREAM}  done: true\n");
    assert_eq!(
        run_case(&m, &case(&broken)),
        vec!["the stream does not end with data: [DONE]".to_string()]
    );
    // Chunks are a chat stream's.
    let broken = STREAM.replace("  events:", "  chunks:");
    let problems = run_case(&m, &case(&broken));
    assert_eq!(
        problems[0],
        "a Responses stream is expected as `expect.events`, not `chunks`"
    );
}
