//! Fake upstream LLM servers for Rosetta's tests: faithful provider fakes (tables below) and a scripted server.
//!
//! Every fake binds 127.0.0.1, records each request before validating it ([`FakeUpstream::requests`],
//! also `GET /__requests`, cleared by `DELETE /__requests`), counts open connections
//! ([`FakeUpstream::open_connections`], also `GET /__stats`, which does not count the asking
//! connection) and streams with real pauses. The fakes follow `shared/reference/wire-formats.md`
//! (sections 2 and 5).
//!
//! Their answers are chosen by trigger words in the text of the last user message (Ollama: last
//! `user` or `tool` message):
//!
//! | trigger | Anthropic | Ollama |
//! |---|---|---|
//! | `FAIL 429` / `FAIL 500` / `FAIL 400` | error in Anthropic shape (429 has `retry-after: 7`) | `{"error": ...}` with that status |
//! | `FAIL 529` | 529 `overloaded_error` | - |
//! | `GARBAGE` | 200 `application/json` body `this is not json{` | same (NDJSON content type when streaming) |
//! | `HANG` | never answers | never answers |
//! | tool results in the last turn | text `Tool said: <first result>` | last message role `tool`: `Tool said: <content>` |
//! | `tools` given (and `tool_choice` not none) | text `Let me check.` + `tool_use`, stop `tool_use` | one `tool_calls` line, then final `done_reason: "stop"` |
//! | `TWO TOOLS` | calls the first two tools | calls the first two tools |
//! | `THINK` | thinking block (+ signature) first | `message.thinking` pieces first |
//! | `SEARCH` (Anthropic: a `web_search_*` tool given) | text, `server_tool_use` + `web_search_tool_result` (2 pages), text blocks with `citations` (streamed as `citations_delta`s), `usage.server_tool_use.web_search_requests: 1`, stop `end_turn` | - |
//! | `MAX TOKENS` | stop `max_tokens` | `done_reason: "length"` |
//! | `STOPSEQ` | stop `stop_sequence`, first of `stop_sequences` or `END` | - |
//! | `CACHED` | `cache_read_input_tokens: 5` | - |
//! | `NO PROMPT COUNT` | - | final line without `prompt_eval_count` |
//! | `SLOW` | 300 ms between events (default 15 ms) | 300 ms between lines (default 15 ms) |
//! | `MIDSTREAM ERROR` | after 2 text deltas: `event: error` (overloaded), close | after 2 content lines: `{"error": ...}` line, close |
//! | `RESET` | after 2 text deltas: TCP reset | after 2 content lines: TCP reset |
//! | `STREAM GARBAGE` | after 2 text deltas: `data: {not json`, then continues | - |
//!
//! Otherwise the answer is `Hello! You said: <text>`.
//!
//! The Anthropic fake takes the tool types the real API lists (`custom`, or the versioned server
//! tools such as `web_search_20250305`, which must be named `web_search`); any other `type` is
//! the real 400 listing them.
//!
//! Its `thinking` blocks carry a signature (`EqQBCkgIARABGAIiQ` and 40 letters and digits; in a
//! stream, one `signature_delta` after the thinking deltas). A thinking block sent back in an
//! assistant turn needs a non-empty `signature`, and with `thinking` on, a tool loop's final
//! assistant message (the one whose `tool_use` blocks the last user turn answers) must start
//! with a `thinking` or `redacted_thinking` block: otherwise the real 400s
//! (`shared/reference/clouds.md` §5.3).
//!
//! The TGI (section 6), Azure OpenAI (section 7) and OpenAI-compatible (section 1, like vLLM or
//! llama.cpp) fakes use the same idea. TGI reads the last user turn out of the rendered prompt
//! (Llama 3 `<|start_header_id|>user<|end_header_id|>` or ChatML `<|im_start|>user`, else the
//! whole prompt); Azure and OpenAI read the last `user` or `tool` message. Answers are one token
//! per word and are cut at `max_new_tokens` / `max_completion_tokens` / `max_tokens` (`length`).
//!
//! | trigger | TGI | Azure OpenAI / OpenAI-compatible |
//! |---|---|---|
//! | `FAIL 422` / `424` / `429` / `500` | `/generate`: `{"error","error_type"}` with that status; `/generate_stream`: 200 + one error event | - |
//! | `FAIL 429` / `500` / `503` / `400` | - | OpenAI error envelope (Azure 429: `{"error":{"code":"429",...}}`); 429 has `retry-after: 7` |
//! | `FILTER PROMPT` | - | Azure: 400 `content_filter` with `innererror` |
//! | `GARBAGE` | 200 body `this is not json{` (stream: `data:this is not json{`) | same (stream: `data: this is not json{`) |
//! | `HANG` | never answers | never answers |
//! | `tool` messages at the end | - | `Tool said: <first of them>` |
//! | `tools` given (`tool_choice` not none) | - | `tool_calls` (content null), finish `tool_calls` |
//! | `TWO TOOLS` | - | calls the first two tools (unless `parallel_tool_calls: false`) |
//! | `MAX TOKENS` | finish `length`, no end token | finish `length` |
//! | `STOPSEQ` | finish `stop_sequence`, last token = first `stop` (or `END`), kept in the text | - |
//! | `FILTERED` | - | text cut after 2 pieces, finish `content_filter` (Azure: `violence` filtered) |
//! | `SLOW` | 300 ms between events (default 15 ms) | 300 ms between events (default 15 ms) |
//! | `MIDSTREAM ERROR` | after 2 tokens: `data:{"error":...,"error_type":"generation"}`, close | after 2 payload chunks: `data: {"error":{...}}`, close |
//! | `RESET` | after 2 tokens: TCP reset | after 2 payload chunks: TCP reset |
//! | `STREAM GARBAGE` | after 2 tokens: `data:{not json`, then continues | after 2 payload chunks: `data: {not json`, then continues |
//!
//! Otherwise TGI ends with a special end token (`<|eot_id|>`, `<|im_end|>` or `</s>`, `special:
//! true`, not part of `generated_text`) and finish `eos_token`.
//!
//! The Gemini (section 3) and Cohere v2 (section 4) fakes read the text of the last user turn
//! (Gemini: last `user` content, its `functionResponse` JSON included; Cohere: last `user` or
//! `tool` message). Gemini accepts `x-goog-api-key` or `?key=` (missing: 403, wrong: 400
//! `API_KEY_INVALID`), Cohere `Authorization: Bearer` (401). Model `missing-model` is a 404.
//!
//! | trigger | Gemini | Cohere |
//! |---|---|---|
//! | `FAIL 429` / `500` / `400` (Gemini also `503`) | Google error (`RESOURCE_EXHAUSTED` with `RetryInfo` 7s, `INTERNAL`, ...) | `{"id","message"}` with that status |
//! | `GARBAGE` | 200 body `this is not json{` (`text/event-stream` when streaming) | same |
//! | `HANG` | never answers | never answers |
//! | tool results in the last turn | `Tool said: <JSON of the first functionResponse.response>` | trailing `tool` messages: `Tool said: <first of them>` |
//! | tools declared (mode not `NONE`) | `functionCall` part(s), no id, `thoughtSignature` on the first, finish `STOP` | `tool_plan` + `tool_calls` (arguments a JSON string), finish `TOOL_CALL` |
//! | `TWO TOOLS` | calls the first two (allowed) functions | calls the first two tools |
//! | `THINK` | a `"thought": true` part first, `thoughtsTokenCount` | a `thinking` content block first |
//! | `SEARCH` (Gemini: `googleSearch` tool given) | grounded text + candidate `groundingMetadata` (streamed: on the last chunk) | - |
//! | `MAX TOKENS` | finish `MAX_TOKENS` | finish `MAX_TOKENS` |
//! | `STOPSEQ` | - | finish `STOP_SEQUENCE` |
//! | `SAFETY` | finish `SAFETY` + `safetyRatings`, no content (stream: after 2 text chunks) | - |
//! | `SLOW` | 300 ms between chunks (default 15 ms) | 300 ms between events (default 15 ms) |
//! | `MIDSTREAM ERROR` | after 2 text chunks: `{"error":{"code":500,...,"status":"INTERNAL"}}` chunk, close | after 2 deltas: `message-end` with `finish_reason: "ERROR"` + `error`, close |
//! | `RESET` | after 2 text chunks: TCP reset | after 2 deltas: TCP reset |
//! | `DONE MARKER` | - | a trailing `data: [DONE]` after `message-end` |
//!
//! The Bedrock fake (Converse, `shared/reference/clouds.md` §1-6) verifies every request's
//! Signature Version 4 with its own verifier ([`sigv4`]), or a bearer API key, and answers
//! like the Anthropic fake: `FAIL 429` / `500` / `400` (Bedrock's `{"message"}` with
//! `x-amzn-ErrorType`), `GARBAGE`, `HANG`, tool results (`Tool said: ...`), tools (text `Let me
//! check.` + toolUse), `TWO TOOLS`, `THINK` (reasoningContent with a signature), `MAX TOKENS`,
//! `STOPSEQ`, `GUARDRAIL`, `FILTERED`, `CACHED`, `SLOW`; streams are event-stream frames, and
//! after two text deltas `THROTTLE`, `MODEL STREAM ERROR` / `MIDSTREAM ERROR`, `BAD CRC`, `CUT
//! SHORT` and `RESET` inject their fault. It refuses Converse fields it does not know (400
//! `ValidationException`).
//!
//! Gemini streams are `?alt=sse` data-only SSE ending at EOF, or without `alt=sse` one JSON array
//! written object by object. Gemini refuses `googleSearch` or `codeExecution` beside function
//! declarations, or beside function calls and responses in the turns, as Gemini 2.x does (400
//! `Tool use with function calling is unsupported by the model.`). Cohere usage numbers are
//! floats (`18.0`).
#![forbid(unsafe_code)]

mod anthropic;
mod anthropic_messages;
mod anthropic_plan;
mod anthropic_validate;
mod azure;
mod bedrock;
mod bedrock_plan;
mod bedrock_validate;
mod cohere;
mod cohere_embed;
mod cohere_messages;
mod cohere_plan;
mod cohere_validate;
mod common;
pub mod eventstream;
mod gemini;
mod gemini_config;
mod gemini_embed;
mod gemini_parts;
mod gemini_plan;
mod gemini_schema;
mod gemini_validate;
mod google_token;
mod ollama;
mod ollama_embed;
mod ollama_reply;
mod openai_compat;
mod openai_compat_chat;
mod openai_compat_extra;
mod openai_compat_messages;
mod openai_compat_validate;
mod reply;
mod server;
pub mod sigv4;
mod tgi;
mod tgi_reply;
mod tgi_validate;
mod vertex;

pub use bedrock::BedrockAuth;
pub use google_token::{GoogleTokens, TEST_EMAIL, TEST_OTHER_PRIVATE_KEY, TEST_PRIVATE_KEY};
pub use reply::{BoxError, Reply, ReplyBody, SseEvent};
pub use server::{FakeUpstream, Handler, Recorded};

/// Which faithful fake to run (used by the `fake-upstream` binary).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    /// Anthropic Messages API; `Some(key)` requires exactly that `x-api-key`.
    Anthropic { api_key: Option<String> },
    /// Ollama native API.
    Ollama,
    /// Google Gemini API (`v1beta`); `Some(key)` requires exactly that `x-goog-api-key` / `?key=`.
    Gemini { api_key: Option<String> },
    /// Cohere API v2; `Some(key)` requires `Authorization: Bearer <key>`.
    Cohere { api_key: Option<String> },
    /// Hugging Face TGI native API; `Some(key)` requires `Authorization: Bearer <key>`.
    Tgi { api_key: Option<String> },
    /// Azure OpenAI (deployment routes); `Some(key)` requires exactly that `api-key`.
    Azure { api_key: Option<String> },
    /// A plain OpenAI-compatible server; `Some(key)` requires `Authorization: Bearer <key>`.
    OpenAi { api_key: Option<String> },
    /// Google Vertex AI (Gemini and Claude publishers) and, at `/token`, its token endpoint
    /// (system clock); `GET /__key_file` gives a TEST service-account key file naming it.
    Vertex,
    /// Bedrock Runtime Converse; every request signed with these credentials (or the bearer key).
    Bedrock(BedrockAuth),
}

impl Provider {
    /// The request handler implementing this provider.
    pub fn handler(&self) -> Handler {
        match self {
            Provider::Anthropic { api_key } => anthropic::handler(api_key.clone()),
            Provider::Ollama => ollama::handler(),
            Provider::Gemini { api_key } => gemini::handler(api_key.clone()),
            Provider::Cohere { api_key } => cohere::handler(api_key.clone()),
            Provider::Tgi { api_key } => tgi::handler(api_key.clone()),
            Provider::Azure { api_key } => azure::handler(api_key.clone()),
            Provider::Vertex => GoogleTokens::new(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64)
            })
            .combined_handler(),
            Provider::Bedrock(auth) => bedrock::handler(auth.clone()),
            Provider::OpenAi { api_key } => openai_compat::handler(
                api_key.clone(),
                openai_compat::DEFAULT_UNSUPPORTED
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            ),
        }
    }
}
