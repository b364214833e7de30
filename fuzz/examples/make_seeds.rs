//! Regenerates `fuzz/seeds/` from the project's own material: the golden cases
//! (`tests/golden/*/*.yaml`, `docs/tutorial/golden`: client requests, upstream JSON bodies,
//! error bodies, SSE and NDJSON transcripts), the shipped and tutorial mappings, and a few
//! hand-written edge cases below.
//!
//! ```sh
//! cargo run --manifest-path fuzz/Cargo.toml --no-default-features --example make_seeds
//! ```
//!
//! The seeds are committed; `scripts/fuzz` copies them into `fuzz/corpus/<target>/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rosetta_fuzz::input::control;
use serde_json::Value;

/// Seeds by target: file name -> bytes.
type Seeds = BTreeMap<&'static str, BTreeMap<String, Vec<u8>>>;

fn add(seeds: &mut Seeds, target: &'static str, name: String, bytes: Vec<u8>) {
    let set = seeds.entry(target).or_default();
    if !set.values().any(|b| *b == bytes) {
        set.insert(name, bytes);
    }
}

/// A transcript with no cut points (control byte 0) and one with usage asked for and a cut
/// in the middle (flag bit 0).
fn framed(flags: u8, cut: Option<usize>, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match cut {
        Some(c) => {
            out.push(control(1, flags));
            out.extend_from_slice(&(c as u16).to_le_bytes());
        }
        None => out.push(control(0, flags)),
    }
    out.extend_from_slice(payload);
    out
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|e| e.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    out.retain(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"));
    out.sort();
    out
}

fn golden(root: &Path, seeds: &mut Seeds) {
    let mut dirs = Vec::new();
    for base in [root.join("tests/golden"), root.join("docs/tutorial/golden")] {
        if let Ok(entries) = std::fs::read_dir(&base) {
            let mut d: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            d.sort();
            dirs.extend(d.into_iter().filter(|p| p.is_dir()));
        }
    }
    for dir in dirs {
        let mapping = dir.file_name().unwrap().to_string_lossy().into_owned();
        for file in yaml_files(&dir) {
            let case = file.file_stem().unwrap().to_string_lossy().into_owned();
            let name = format!("{mapping}-{case}");
            let text = std::fs::read_to_string(&file).expect("readable case");
            let Ok(v) = serde_yaml::from_str::<Value>(&text) else {
                eprintln!("skipped (not YAML): {}", file.display());
                continue;
            };
            if let Some(r) = v.get("request") {
                add(
                    seeds,
                    "transform",
                    format!("{name}.request.json"),
                    r.to_string().into_bytes(),
                );
            }
            let Some(up) = v.get("upstream_response") else {
                continue;
            };
            if let Some(j) = up.get("json") {
                add(
                    seeds,
                    "transform",
                    format!("{name}.upstream.json"),
                    j.to_string().into_bytes(),
                );
            }
            if let Some(Value::String(b)) = up.get("body") {
                add(
                    seeds,
                    "transform",
                    format!("{name}.body"),
                    b.clone().into_bytes(),
                );
            }
            for (key, target) in [("sse", "sse_framing"), ("ndjson", "ndjson_framing")] {
                let Some(Value::String(t)) = up.get(key) else {
                    continue;
                };
                let t = t.as_bytes();
                add(seeds, target, format!("{name}.{key}"), framed(0, None, t));
                add(
                    seeds,
                    "stream_rewrite",
                    format!("{name}.{key}"),
                    framed(0, None, t),
                );
                add(
                    seeds,
                    "stream_rewrite",
                    format!("{name}.usage-cut.{key}"),
                    framed(1, Some(t.len() / 3), t),
                );
            }
        }
    }
}

fn mappings(root: &Path, seeds: &mut Seeds) {
    let mut files = yaml_files(&root.join("mappings"));
    files.extend(yaml_files(&root.join("docs/tutorial/mappings")));
    for (i, file) in files.iter().enumerate() {
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read(file).expect("readable mapping");
        // Mode 0: the whole file.
        let mut whole = vec![0u8];
        whole.extend_from_slice(&text);
        add(seeds, "mapping_loader", format!("{stem}.whole"), whole);
        // Splices into the file (file index i, as `shipped::sources` orders them): an empty
        // insert at the start, and a directive typo in the middle.
        add(
            seeds,
            "mapping_loader",
            format!("{stem}.splice-empty"),
            vec![1, i as u8, 0, 0, 0],
        );
        let mid = (text.len() / 2) as u16;
        let mut typo = vec![1, i as u8];
        typo.extend_from_slice(&mid.to_le_bytes());
        typo.push(0);
        typo.extend_from_slice(b" {$joinn: $.x}");
        add(seeds, "mapping_loader", format!("{stem}.splice-typo"), typo);
    }
}

/// Hand-written edge cases.
fn edges(seeds: &mut Seeds) {
    let sse: &[(&str, &[u8])] = &[
        ("crlf-multiline", b"data: a\r\ndata: b\r\n\r\ndata: [DONE]"),
        ("cr-only", b"event: x\rdata: 1\r\rdata: 2\r"),
        (
            "comments-fields",
            b": ping\nid: 7\nretry: 10\nevent\ndata\n\nevent:\ndata:x\n\n",
        ),
        (
            "split-utf8",
            b"data: {\"t\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}\n\n",
        ),
        (
            "invalid-utf8",
            b"data: ok\n\ndata: \xff\xfe\n\ndata: after\n\n",
        ),
        ("bom", b"\xef\xbb\xbfdata: x\n\n"),
        ("no-final-blank", b"event: a\ndata: {\"x\":1}"),
        (
            "done-trailing-space",
            b"data: {\"choices\":[]}\n\ndata: [DONE]\n\n   \n",
        ),
    ];
    for (name, bytes) in sse {
        add(
            seeds,
            "sse_framing",
            format!("edge-{name}.sse"),
            framed(0, None, bytes),
        );
        add(
            seeds,
            "stream_rewrite",
            format!("edge-{name}.sse"),
            framed(0, None, bytes),
        );
    }
    let ndjson: &[(&str, &[u8])] = &[
        (
            "blank-and-crlf",
            b"{\"a\":1}\r\n\r\n  {\"b\":2}  \r{\"c\":3}",
        ),
        ("invalid-utf8", b"{\"a\":1}\n\xc3\n{\"b\":2}\n"),
        ("unicode-space", b"\xe2\x80\x83{\"a\":1}\xc2\xa0\n"),
    ];
    for (name, bytes) in ndjson {
        add(
            seeds,
            "ndjson_framing",
            format!("edge-{name}.ndjson"),
            framed(0, None, bytes),
        );
        add(
            seeds,
            "stream_rewrite",
            format!("edge-{name}.ndjson"),
            framed(0, None, bytes),
        );
    }
    let transform: &[(&str, &str)] = &[
        (
            "huge-usage",
            r#"{"usage":{"input_tokens":1e30,"output_tokens":1e30,"prompt_tokens":1e30,"completion_tokens":1e30}}"#,
        ),
        (
            "chat-stream-request",
            r#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"t"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":"auto"}"#,
        ),
        (
            "error-envelope",
            r#"{"error":{"message":"","type":null,"code":429}}"#,
        ),
    ];
    for (name, json) in transform {
        add(
            seeds,
            "transform",
            format!("edge-{name}.json"),
            json.as_bytes().to_vec(),
        );
    }
    let minimal = "upstream: {base_url: \"http://x\"}\nroutes:\n  chat:\n    path: /c\n    response: {content: $.text}\n    stream:\n      framing: ndjson\n      rules:\n        - on: {if: {$exists: $.error}}\n          emit: {error: $.error}\n        - emit: {content: $.text, end: $.done}\n";
    let mut m = vec![0u8];
    m.extend_from_slice(minimal.as_bytes());
    add(seeds, "mapping_loader", "edge-minimal.whole".into(), m);
    let mut m = vec![4u8]; // the environment answers with the first line
    m.extend_from_slice(b"upstream: {base_url: \"${X}\", headers: {k: \"${X}\"}}\nroutes: {chat: {path: /c, response: {}}}\n");
    add(seeds, "mapping_loader", "edge-env.whole".into(), m);
}

fn main() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = fuzz.parent().expect("fuzz/ has a parent");
    let mut seeds = Seeds::new();
    golden(root, &mut seeds);
    mappings(root, &mut seeds);
    edges(&mut seeds);
    for (target, files) in &seeds {
        let dir = fuzz.join("seeds").join(target);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).expect("removable seeds dir");
        }
        std::fs::create_dir_all(&dir).expect("seeds dir");
        for (name, bytes) in files {
            std::fs::write(dir.join(name), bytes).expect("seed written");
        }
        println!("{target}: {} seeds", files.len());
    }
}
