//! The OpenAI features the capability matrix asks every mapping about: each one a small
//! request of its route, the base request plus the feature (`rosetta capabilities`).
//!
//! A new inbound dialect adds its rows here, on its own route.

use crate::mapping::Op;

/// One row of the matrix.
pub struct Feature {
    /// The row's name, as clients know the feature.
    pub name: &'static str,
    pub op: Op,
    /// JSON merged over the route's base request (top-level keys replace the base's).
    pub request: &'static str,
}

const fn f(name: &'static str, op: Op, request: &'static str) -> Feature {
    Feature { name, op, request }
}

/// The base request of each route: nothing in it can be dropped.
pub fn base(op: Op) -> &'static str {
    match op {
        Op::Chat => r#"{"model":"m","messages":[{"role":"user","content":"Hi"}]}"#,
        Op::Responses => r#"{"model":"m","input":"Hi"}"#,
        Op::Messages => {
            r#"{"model":"m","max_tokens":16,"messages":[{"role":"user","content":"Hi"}]}"#
        }
        Op::Completions => r#"{"model":"m","prompt":"Hi"}"#,
        Op::Embeddings => r#"{"model":"m","input":"Hi"}"#,
        Op::Models => "{}",
        Op::CountTokens => r#"{"model":"m","messages":[{"role":"user","content":"Hi"}]}"#,
    }
}

macro_rules! with_tool {
    ($rest:literal) => {
        concat!(
            r#"{"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{}}}}],"#,
            $rest,
            "}"
        )
    };
}

macro_rules! part {
    ($part:literal) => {
        concat!(
            r#"{"messages":[{"role":"user","content":[{"type":"text","text":"Hi"},"#,
            $part,
            "]}]}"
        )
    };
}

/// Every row, in the order the matrix prints them.
pub const FEATURES: &[Feature] = &[
    // Chat completions: every parameter.
    f("chat", Op::Chat, "{}"),
    f("stream", Op::Chat, r#"{"stream":true}"#),
    f(
        "stream_options.include_usage",
        Op::Chat,
        r#"{"stream":true,"stream_options":{"include_usage":true}}"#,
    ),
    f("max_tokens", Op::Chat, r#"{"max_tokens":50}"#),
    f(
        "max_completion_tokens",
        Op::Chat,
        r#"{"max_completion_tokens":50}"#,
    ),
    f("temperature", Op::Chat, r#"{"temperature":0.5}"#),
    f("top_p", Op::Chat, r#"{"top_p":0.9}"#),
    f("stop", Op::Chat, r#"{"stop":["END"]}"#),
    f("seed", Op::Chat, r#"{"seed":7}"#),
    f("n", Op::Chat, r#"{"n":2}"#),
    f("presence_penalty", Op::Chat, r#"{"presence_penalty":0.5}"#),
    f(
        "frequency_penalty",
        Op::Chat,
        r#"{"frequency_penalty":0.5}"#,
    ),
    f("logit_bias", Op::Chat, r#"{"logit_bias":{"50256":-100}}"#),
    f("logprobs", Op::Chat, r#"{"logprobs":true}"#),
    f(
        "top_logprobs",
        Op::Chat,
        r#"{"logprobs":true,"top_logprobs":2}"#,
    ),
    f("user", Op::Chat, r#"{"user":"u1"}"#),
    f("metadata", Op::Chat, r#"{"metadata":{"k":"v"}}"#),
    f("store", Op::Chat, r#"{"store":true}"#),
    f("service_tier", Op::Chat, r#"{"service_tier":"flex"}"#),
    f("modalities", Op::Chat, r#"{"modalities":["text","audio"]}"#),
    f(
        "audio",
        Op::Chat,
        r#"{"audio":{"voice":"alloy","format":"wav"}}"#,
    ),
    f(
        "prediction",
        Op::Chat,
        r#"{"prediction":{"type":"content","content":"x"}}"#,
    ),
    f("verbosity", Op::Chat, r#"{"verbosity":"low"}"#),
    f(
        "safety_identifier",
        Op::Chat,
        r#"{"safety_identifier":"s1"}"#,
    ),
    f("prompt_cache_key", Op::Chat, r#"{"prompt_cache_key":"k1"}"#),
    f(
        "web_search_options",
        Op::Chat,
        r#"{"web_search_options":{}}"#,
    ),
    f(
        "reasoning_effort=minimal",
        Op::Chat,
        r#"{"reasoning_effort":"minimal"}"#,
    ),
    f(
        "reasoning_effort=low",
        Op::Chat,
        r#"{"reasoning_effort":"low"}"#,
    ),
    f(
        "reasoning_effort=medium",
        Op::Chat,
        r#"{"reasoning_effort":"medium"}"#,
    ),
    f(
        "reasoning_effort=high",
        Op::Chat,
        r#"{"reasoning_effort":"high"}"#,
    ),
    f(
        "response_format=json_object",
        Op::Chat,
        r#"{"response_format":{"type":"json_object"}}"#,
    ),
    f(
        "response_format=json_schema",
        Op::Chat,
        r#"{"response_format":{"type":"json_schema","json_schema":{"name":"o","schema":{"type":"object","properties":{"a":{"type":"string"}}}}}}"#,
    ),
    // Content parts.
    f(
        "messages[].content[].text",
        Op::Chat,
        part!(r#"{"type":"text","text":"there"}"#),
    ),
    f(
        "messages[].content[].image_url",
        Op::Chat,
        part!(r#"{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}"#),
    ),
    f(
        "messages[].content[].input_audio",
        Op::Chat,
        part!(r#"{"type":"input_audio","input_audio":{"data":"UklGRg==","format":"wav"}}"#),
    ),
    f(
        "messages[].content[].file",
        Op::Chat,
        part!(
            r#"{"type":"file","file":{"filename":"a.pdf","file_data":"data:application/pdf;base64,JVBERg=="}}"#
        ),
    ),
    // Tools and each tool_choice form.
    f("tools", Op::Chat, with_tool!(r#""tool_choice":"auto""#)),
    f(
        "tools[].custom",
        Op::Chat,
        r#"{"tools":[{"type":"custom","custom":{"name":"c"}}]}"#,
    ),
    f(
        "tool_choice=none",
        Op::Chat,
        with_tool!(r#""tool_choice":"none""#),
    ),
    f(
        "tool_choice=required",
        Op::Chat,
        with_tool!(r#""tool_choice":"required""#),
    ),
    f(
        "tool_choice=function",
        Op::Chat,
        with_tool!(r#""tool_choice":{"type":"function","function":{"name":"f"}}"#),
    ),
    f(
        "tool_choice=allowed_tools",
        Op::Chat,
        with_tool!(
            r#""tool_choice":{"type":"allowed_tools","allowed_tools":{"mode":"auto","tools":[{"type":"function","function":{"name":"f"}}]}}"#
        ),
    ),
    f(
        "parallel_tool_calls",
        Op::Chat,
        with_tool!(r#""parallel_tool_calls":false"#),
    ),
    f(
        "functions (deprecated)",
        Op::Chat,
        r#"{"functions":[{"name":"f","parameters":{"type":"object"}}],"function_call":"auto"}"#,
    ),
    // Legacy completions.
    f("completions", Op::Completions, "{}"),
    f("completions stream", Op::Completions, r#"{"stream":true}"#),
    f(
        "completions max_tokens",
        Op::Completions,
        r#"{"max_tokens":50}"#,
    ),
    f("completions stop", Op::Completions, r#"{"stop":["END"]}"#),
    f("completions suffix", Op::Completions, r#"{"suffix":"end"}"#),
    f("completions echo", Op::Completions, r#"{"echo":true}"#),
    f("completions best_of", Op::Completions, r#"{"best_of":2}"#),
    f("completions logprobs", Op::Completions, r#"{"logprobs":2}"#),
    // Embeddings.
    f("embeddings", Op::Embeddings, "{}"),
    f(
        "embeddings dimensions",
        Op::Embeddings,
        r#"{"dimensions":256}"#,
    ),
    f(
        "embeddings encoding_format=base64",
        Op::Embeddings,
        r#"{"encoding_format":"base64"}"#,
    ),
    f("embeddings user", Op::Embeddings, r#"{"user":"u1"}"#),
    // The Responses dialect.
    f("messages", Op::Messages, "{}"),
    f("messages stream", Op::Messages, r#"{"stream":true}"#),
    f(
        "messages tools",
        Op::Messages,
        r#"{"tools":[{"name":"f","input_schema":{"type":"object","properties":{}}}],"tool_choice":{"type":"any"}}"#,
    ),
    f(
        "messages thinking",
        Op::Messages,
        r#"{"max_tokens":4096,"thinking":{"type":"enabled","budget_tokens":1024}}"#,
    ),
    f("messages top_k", Op::Messages, r#"{"top_k":5}"#),
    f("responses", Op::Responses, "{}"),
    f("responses stream", Op::Responses, r#"{"stream":true}"#),
    f(
        "responses max_output_tokens",
        Op::Responses,
        r#"{"max_output_tokens":50}"#,
    ),
    f(
        "responses reasoning.effort",
        Op::Responses,
        r#"{"reasoning":{"effort":"high"}}"#,
    ),
    f(
        "responses text.format=json_schema",
        Op::Responses,
        r#"{"text":{"format":{"type":"json_schema","name":"o","schema":{"type":"object","properties":{"a":{"type":"string"}}}}}}"#,
    ),
    f(
        "responses tools (function)",
        Op::Responses,
        r#"{"tools":[{"type":"function","name":"f","parameters":{"type":"object","properties":{}}}]}"#,
    ),
    f(
        "responses tools web_search",
        Op::Responses,
        r#"{"tools":[{"type":"web_search"}]}"#,
    ),
    f(
        "responses input_image",
        Op::Responses,
        r#"{"input":[{"role":"user","content":[{"type":"input_text","text":"Hi"},{"type":"input_image","image_url":"https://example.com/a.png"}]}]}"#,
    ),
];
