//! Target `mapping_loader`: `rosetta::mapping::compile_file` on arbitrary and on mutated text.
//!
//! Input: byte 0 picks the mode; the rest is read by the mode.
//! - `byte0 & 3 == 0`: the rest, as (lossy) UTF-8, is the whole file `mappings/fuzz.yaml`;
//! - otherwise a splice into a shipped mapping (or the tutorial's): byte 1 picks the file,
//!   bytes 2-3 (little-endian) the offset, byte 4 how many bytes to delete there, and the rest
//!   is inserted. So most of the file stays valid and the fuzzer works deep in the compiler.
//! - `byte0 & 4`: the environment answers every variable with the first line of the fuzz text
//!   (else it answers none, as `rosetta test` does).
//!
//! Properties:
//! - no panic;
//! - compiling the same text twice gives the same errors in the same order;
//! - on `Err`: at least one error, each for this file, with a non-empty message, located by a
//!   line (within the file) or a dotted location, but for a missing top-level section (which
//!   is about the whole file);
//! - on `Ok`: the mapping is named after the file and works: for each of its routes,
//!   `prepare` on a small fixed request (and a stream request, when the route streams),
//!   `translate_whole` on small bodies, a stream rewriter on a small transcript and
//!   `error_from` all keep the properties of the `transform` and `stream_rewrite` targets.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rosetta::mapping::{self, Framing, LoadError, Mapping, Op};
use serde_json::Value;

use crate::check::{self, StreamKind};
use crate::{shipped, stream, transform};

/// The text to compile, where it claims to come from, and the fuzz text (for the environment).
pub struct Source {
    pub path: PathBuf,
    pub text: String,
    pub fuzz: String,
}

/// Reads an input as described in the module documentation.
pub fn source(data: &[u8]) -> Option<Source> {
    let (&control, rest) = data.split_first()?;
    if control & 3 == 0 {
        let text = String::from_utf8_lossy(rest).into_owned();
        return Some(Source {
            path: PathBuf::from("mappings/fuzz.yaml"),
            fuzz: text.clone(),
            text,
        });
    }
    if rest.len() < 4 {
        return None;
    }
    let sources = shipped::sources();
    let (path, base) = &sources[usize::from(rest[0]) % sources.len()];
    let at = floor_boundary(
        base,
        usize::from(u16::from_le_bytes([rest[1], rest[2]])) % (base.len() + 1),
    );
    let end = ceil_boundary(base, (at + usize::from(rest[3])).min(base.len()));
    let insert = String::from_utf8_lossy(&rest[4..]).into_owned();
    let text = format!("{}{insert}{}", &base[..at], &base[end..]);
    Some(Source {
        path: PathBuf::from("mappings").join(path.file_name().unwrap_or_default()),
        text,
        fuzz: insert,
    })
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// Whether an error is about the whole file rather than a place in it.
fn file_level(e: &LoadError) -> bool {
    e.message.starts_with("missing required section")
}

/// The properties of a failed compile.
pub fn check_errors(path: &Path, src: &str, errors: &[LoadError]) {
    assert!(!errors.is_empty(), "Err with no error");
    // Lines as YAML counts them: a lone `\r` (and NEL, LS, PS) ends one too.
    let lines = src.lines().count()
        + src.matches(['\u{85}', '\u{2028}', '\u{2029}']).count()
        + src.matches('\r').count();
    for e in errors {
        assert_eq!(e.file, path, "an error for another file: {e}");
        assert!(!e.message.trim().is_empty(), "an empty message: {e:?}");
        if let Some(l) = e.line {
            assert!(
                (1..=lines + 1).contains(&l),
                "line {l} outside the file ({lines} lines): {e}"
            );
        }
        if e.line.is_none() && e.location.is_empty() && !file_level(e) {
            panic!("an error with neither a line nor a location: {e:?}");
        }
    }
}

/// A small upstream transcript for a stream route, ending the answer both ways.
fn transcript(framing: Framing) -> &'static [u8] {
    match framing {
        Framing::Sse => {
            b"event: message\ndata: {\"text\":\"Hi\",\"delta\":{\"text\":\"Hi\"},\"done\":false}\n\ndata: {\"done\":true,\"finish_reason\":\"stop\"}\n\ndata: [DONE]\n\n"
        }
        Framing::Ndjson => b"{\"text\":\"Hi\",\"done\":false}\n{\"done\":true,\"done_reason\":\"stop\"}\n",
        // One message: `:event-type` `message`, payload `{"done":true}`.
        Framing::EventStream => &EVENTSTREAM_TRANSCRIPT,
    }
}

/// A one-message event stream (`:event-type: message`, payload `{"done":true}`), CRCs valid.
const EVENTSTREAM_TRANSCRIPT: [u8; 51] = [
    0, 0, 0, 51, 0, 0, 0, 22, 119, 119, 168, 110, 11, 58, 101, 118, 101, 110, 116, 45, 116, 121,
    112, 101, 7, 0, 7, 109, 101, 115, 115, 97, 103, 101, 123, 34, 100, 111, 110, 101, 34, 58, 116,
    114, 117, 101, 125, 211, 82, 162, 252,
];

/// Bodies a compiled mapping's response side is tried on.
const BODIES: &[&[u8]] = &[
    b"{}",
    b"{\"choices\":[{\"message\":{\"content\":\"Hi\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}",
    b"[1,\"a\",null]",
];

/// The properties of a mapping that compiled.
pub fn check_usable(m: Mapping, path: &Path) {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    assert_eq!(m.name, stem, "the mapping is not named after its file");
    let m = Arc::new(m);
    let headers = transform::client_headers();
    for op in [Op::Chat, Op::Completions, Op::Embeddings, Op::Models] {
        let Some(route) = m.route(op) else { continue };
        let request = transform::fixed_request(op);
        transform::check_prepare(&m, op, &request, &headers);
        for body in BODIES {
            transform::check_translate(&m, op, body, &request);
        }
        let Some(program) = &route.stream else {
            continue;
        };
        let (framing, passthrough) = (program.framing, program.passthrough);
        for include_usage in [false, true] {
            let mut streamed = stream::request(op, include_usage);
            if op == Op::Embeddings {
                // Embeddings do not stream: parse_request refuses it before prepare.
                streamed["stream"] = Value::Bool(false);
            }
            transform::check_prepare(&m, op, &streamed, &headers);
            if !matches!(op, Op::Chat | Op::Completions) {
                continue;
            }
            let bytes = transcript(framing);
            let include_usage = include_usage || m.always_include_usage;
            let out = stream::rewrite(&m, op, include_usage, &[bytes], false)
                .unwrap_or_else(|e| panic!("{e}"));
            let kind = if op == Op::Chat {
                StreamKind::Chat
            } else {
                StreamKind::Text
            };
            let checked = if passthrough {
                check::passthrough(&out, bytes, false)
            } else {
                check::chunk_stream(&out, kind, stream::MODEL, include_usage).map(|_| ())
            };
            if let Err(e) = checked {
                panic!(
                    "route {}: {e}\n--- output ---\n{}",
                    op.name(),
                    String::from_utf8_lossy(&out)
                );
            }
        }
    }
    transform::check_upstream_error(&m, 500, b"{\"error\":{\"message\":\"boom\"}}");
    transform::check_upstream_error(&m, 429, b"");
}

/// The target body.
pub fn run(data: &[u8]) {
    crate::known::guard(|| check(data));
}

fn check(data: &[u8]) {
    let Some(src) = source(data) else { return };
    let env_value = if data[0] & 4 != 0 {
        Some(src.fuzz.lines().next().unwrap_or_default().to_string())
    } else {
        None
    };
    let env = |_: &str| env_value.clone();
    let first = mapping::compile_file(&src.path, &src.text, &env);
    let second = mapping::compile_file(&src.path, &src.text, &env);
    match (first, second) {
        (Ok(m), Ok(_)) => check_usable(m, &src.path),
        (Err(a), Err(b)) => {
            if a != b {
                panic!("two compiles of the same text gave different errors:\n{a:#?}\nvs\n{b:#?}");
            }
            check_errors(&src.path, &src.text, &a);
        }
        (a, b) => panic!(
            "two compiles of the same text disagree: {:?} vs {:?}",
            a.err(),
            b.err()
        ),
    }
}
