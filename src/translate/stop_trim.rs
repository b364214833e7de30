//! `trim_stop`: the answer ends before the first stop text, as OpenAI's `stop` means, for
//! upstreams that keep the matched stop sequence at the end of their text.
//!
//! A whole answer is cut at once ([`cut`]). A stream goes through a [`StopTrim`]: each piece
//! is sent at once except its end, where a stop text may be starting; that tail (at most the
//! longest stop's length minus one character) is held until the next piece tells whether it
//! is a stop text (then it is dropped with everything after it) or not (then it is sent).

use serde_json::Value;

use crate::dialect::{Emitter, StreamWriter};
use crate::mapping::template::{Expr, Scope, eval};

/// The stop texts a route's `trim_stop` gives for `request` (a string or a list of strings;
/// empty ones are ignored).
pub fn stops(expr: &Expr, request: &Value) -> Vec<String> {
    let globals = [("root", request), ("request", request)];
    let texts = match eval(expr, Scope::new(request, &globals)) {
        Some(Value::String(s)) => vec![s],
        Some(Value::Array(items)) => items
            .into_iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    texts.into_iter().filter(|s| !s.is_empty()).collect()
}

/// Where the first stop text starts in `text`, if one is there.
fn first_stop(stops: &[String], text: &str) -> Option<usize> {
    stops.iter().filter_map(|s| text.find(s.as_str())).min()
}

/// `text` up to the first stop text.
pub fn cut(stops: &[String], text: &mut String) {
    if let Some(i) = first_stop(stops, text) {
        text.truncate(i);
    }
}

/// A stream's text on its way through `trim_stop`.
#[derive(Debug)]
pub struct StopTrim {
    stops: Vec<String>,
    /// The end of the text so far that may be the start of a stop text.
    held: String,
    /// A stop text was found: nothing more is text.
    stopped: bool,
}

impl StopTrim {
    /// `None` when there is no stop text to look for.
    pub fn new(stops: Vec<String>) -> Option<StopTrim> {
        (!stops.is_empty()).then(|| StopTrim {
            stops,
            held: String::new(),
            stopped: false,
        })
    }

    /// Takes the next piece of text; appends to `out` what can be sent now.
    pub fn push(&mut self, piece: &str, out: &mut String) {
        if self.stopped {
            return;
        }
        self.held.push_str(piece);
        if let Some(i) = first_stop(&self.stops, &self.held) {
            out.push_str(&self.held[..i]);
            self.held.clear();
            self.stopped = true;
            return;
        }
        let keep = self.partial_len();
        let send = self.held.len() - keep;
        out.push_str(&self.held[..send]);
        self.held.drain(..send);
    }

    /// The text held back, now known not to be a stop text (the stream ended or moved on to
    /// something else). Empty once a stop text was found.
    pub fn flush(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    /// The length of the longest end of `held` that a stop text starts with (shorter than
    /// that stop text: a whole one was looked for first).
    fn partial_len(&self) -> usize {
        let mut best = 0;
        for stop in &self.stops {
            for (i, _) in stop.char_indices().skip(1) {
                if i > best && self.held.ends_with(&stop[..i]) {
                    best = i;
                }
            }
        }
        best
    }
}

/// Sends a piece of a stream's text to `w`, through `trim` when the route trims stop texts.
pub fn content<W: StreamWriter>(
    trim: Option<&mut StopTrim>,
    w: &mut Emitter<W>,
    out: &mut Vec<u8>,
    text: &str,
) {
    match trim {
        None => w.content(out, text),
        Some(t) => {
            let mut now = String::new();
            t.push(text, &mut now);
            w.content(out, &now);
        }
    }
}

/// Sends what `trim` holds back (before a tool call, the end, or an error).
pub fn flush<W: StreamWriter>(trim: Option<&mut StopTrim>, w: &mut Emitter<W>, out: &mut Vec<u8>) {
    if let Some(t) = trim {
        let held = t.flush();
        w.content(out, &held);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&str]) -> (Vec<String>, String) {
        let mut t = StopTrim::new(stops.iter().map(|s| s.to_string()).collect()).unwrap();
        let mut sent = Vec::new();
        for p in pieces {
            let mut out = String::new();
            t.push(p, &mut out);
            sent.push(out);
        }
        let rest = t.flush();
        (sent, rest)
    }

    #[test]
    fn a_stop_over_two_and_three_pieces_is_held_then_dropped() {
        let (sent, rest) = run(&["ZQSTOP"], &["Count ", "ZQ", "ST", "OP"]);
        assert_eq!(sent, ["Count ", "", "", ""]);
        assert_eq!(rest, "");
        let (sent, _) = run(&["Par"], &["is P", "ar"]);
        assert_eq!(sent, ["is ", ""]);
    }

    #[test]
    fn held_text_that_is_no_stop_after_all_is_sent() {
        let (sent, rest) = run(&["ZQSTOP"], &["a ZQ", "S", "x", " end ZQS"]);
        assert_eq!(sent, ["a ", "", "ZQSx", " end "]);
        assert_eq!(rest, "ZQS", "the stream ended: what was held is text");
    }

    #[test]
    fn at_most_the_stop_length_minus_one_is_held() {
        let mut t = StopTrim::new(vec!["abcd".into(), "xy".into()]).unwrap();
        let mut out = String::new();
        t.push("zzabc", &mut out);
        assert_eq!(out, "zz");
        assert_eq!(t.held, "abc");
        t.push("x", &mut out);
        assert_eq!(
            out, "zzabc",
            "abcx cannot start abcd any more; x may start xy"
        );
        assert_eq!(t.held, "x");
    }

    #[test]
    fn nothing_after_the_stop_and_whole_answers_cut_the_same() {
        let (sent, _) = run(&["END"], &["one EN", "D two", " three"]);
        assert_eq!(sent.concat(), "one ");
        let mut whole = "one END two".to_string();
        cut(&["END".into()], &mut whole);
        assert_eq!(whole, "one ");
        let (sent, rest) = run(&["é!"], &["café", "!"]);
        assert_eq!((sent.concat(), rest), ("caf".into(), String::new()));
    }
}
