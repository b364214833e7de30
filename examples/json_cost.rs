//! Compares `json_cost::measure`'s estimate with what parsing really allocates, shape by shape:
//! `cargo run --release --example json_cost [FILE...]`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts live heap bytes and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn main() {
    let n = 100_000;
    // Or the files named on the command line.
    let files: Vec<(String, String)> = std::env::args()
        .skip(1)
        .map(|f| (f.clone(), std::fs::read_to_string(&f).unwrap()))
        .collect();
    let mut shapes: Vec<(&str, String)> = vec![
        ("ints", format!("[{}0]", "1,".repeat(n - 1))),
        ("small objects", format!("[{}{{\"a\":0}}]", "{\"a\":0},".repeat(n - 1))),
        (
            "nested one-key objects",
            format!("[{}0]", "{\"\":{\"\":{\"\":0}}},".repeat(n / 3)),
        ),
        (
            "chat messages",
            format!(
                "{{\"model\":\"m\",\"messages\":[{}{{\"role\":\"user\",\"content\":\"x\"}}]}}",
                "{\"role\":\"user\",\"content\":\"x\"},".repeat(n / 3 - 1)
            ),
        ),
        (
            "tool calls",
            format!(
                "[{}0]",
                r#"{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},"#
                    .repeat(n / 10)
            ),
        ),
        ("short strings", format!("[{}\"\"]", "\"ab\",".repeat(n - 1))),
        ("wide object", format!("{{{}\"z\":0}}", (0..n).map(|i| format!("\"k{i}\":0,")).collect::<String>())),
        ("one big string", format!("[\"{}\"]", "A".repeat(20 << 20))),
    ];
    if !files.is_empty() {
        shapes = files.iter().map(|(f, b)| (f.as_str(), b.clone())).collect();
    }
    println!(
        "{:<24} {:>10} {:>8} {:>12} {:>12} {:>7} {:>7}",
        "shape", "body", "values", "parsed", "estimate", "x body", "est/real"
    );
    for (name, body) in shapes {
        let shape = rosetta::serving::json_cost::measure(body.as_bytes(), 0).unwrap();
        let before = LIVE.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        let v: serde_json::Value = serde_json::from_slice(body.as_bytes()).unwrap();
        let held = LIVE.load(Ordering::Relaxed) - before;
        let peak = PEAK.load(Ordering::Relaxed) - before;
        drop(v);
        println!(
            "{name:<24} {:>10} {:>8} {:>12} {:>12} {:>7.1} {:>7.2}  (peak while parsing {peak})",
            body.len(),
            shape.values,
            held,
            shape.parsed_bytes,
            held as f64 / body.len() as f64,
            shape.parsed_bytes as f64 / held as f64,
        );
    }
}
