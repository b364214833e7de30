//! Keeping secrets out of everything Rosetta sends: the one function every upstream-derived
//! string passes through on its way out.
//!
//! A [`Redactor`] knows the secrets (each mapping's environment values in headers and secret
//! query parameters, the inbound and admin API keys) as their pieces of [`PIECE`] bytes, and
//! replaces every run of text made of such pieces with [`MARK`]. So not only a whole key is
//! caught, but any 8-byte-or-longer piece of one: a key cut by a truncation, or quoted in part.
//!
//! **No oracle.** An upstream often echoes what the client sent (an "unknown model X"
//! message, a model repeating the prompt). If Rosetta redacted a piece the client itself sent,
//! a client could guess a key 8 bytes at a time, one character per try, and watch for
//! `[redacted]`. So a client-visible answer leaves alone the pieces that appear in the client's
//! own request ([`Redactor::pieces_in`] gives them, [`Redactor::redact_except`] skips them):
//! echoing a client its own bytes tells it nothing. Logs and the ledger are redacted without
//! that exception.
//!
//! Streams are redacted frame by frame ([`crate::serving::shield::Shield`]): a frame's last bytes
//! that could start a piece, or that end a replaced run, are carried into the next frame
//! ([`Redactor::redact_frame`]), so a key split across frames is still caught.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, LazyLock, Mutex};

use aho_corasick::{AhoCorasick, MatchKind};

/// The length of the pieces of a secret that are caught wherever they appear.
pub const PIECE: usize = 8;
/// What replaces a secret, or a run of pieces of secrets.
pub const MARK: &str = "[redacted]";

/// The secrets, as an automaton over their pieces.
pub struct Redactor {
    /// Every distinct [`PIECE`]-byte window of every secret; `None` with no secret.
    pieces: Option<AhoCorasick>,
    /// Says at about a byte a nanosecond whether a text may hold a piece (nearly every text sent
    /// holds none); the automaton then finds where.
    filter: Filter,
    /// The bytes that occur in some piece.
    piece_bytes: [bool; 256],
    /// Every proper prefix (1 to PIECE - 1 bytes) of a piece: what a frame may end with and be
    /// the start of a secret that goes on in the next frame.
    starts: HashSet<Box<[u8]>>,
}

/// The pieces of secrets a client's request holds (usually none): ids of the automaton.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sent(Vec<u32>);

impl Sent {
    /// Adds the pieces of `other`.
    pub fn merge(&mut self, other: Sent) {
        self.0.extend(other.0);
        self.0.sort_unstable();
        self.0.dedup();
    }

    fn has(&self, id: u32) -> bool {
        self.0.binary_search(&id).is_ok()
    }
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor {
            pieces: None,
            filter: Filter::default(),
            piece_bytes: [false; 256],
            starts: HashSet::new(),
        }
    }
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets, nor their pieces.
        let n = self.pieces.as_ref().map_or(0, AhoCorasick::patterns_len);
        write!(f, "Redactor({n} pieces)")
    }
}

impl Redactor {
    /// A redactor of `secrets`. Secrets shorter than [`PIECE`] bytes are left out: they would
    /// blank out ordinary words.
    pub fn new<S: AsRef<[u8]>>(secrets: impl IntoIterator<Item = S>) -> Redactor {
        let mut seen: HashSet<&[u8]> = HashSet::new();
        let owned: Vec<S> = secrets.into_iter().collect();
        let mut pieces: Vec<&[u8]> = Vec::new();
        for s in &owned {
            for w in s.as_ref().windows(PIECE) {
                if seen.insert(w) {
                    pieces.push(w);
                }
            }
        }
        if pieces.is_empty() {
            return Redactor::default();
        }
        let starts = pieces
            .iter()
            .flat_map(|p| (1..PIECE).map(move |n| Box::<[u8]>::from(&p[..n])))
            .collect();
        let mut filter = Filter::default();
        for p in &pieces {
            filter.insert(p);
        }
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(&pieces)
            .expect("a few thousand 8-byte patterns always build");
        let mut piece_bytes = [false; 256];
        for b in pieces.iter().flat_map(|p| p.iter()) {
            piece_bytes[usize::from(*b)] = true;
        }
        Redactor {
            pieces: Some(automaton),
            filter,
            piece_bytes,
            starts,
        }
    }

    /// No secret known: every call is a no-op.
    pub fn is_empty(&self) -> bool {
        self.pieces.is_none()
    }

    /// The pieces of secrets that `bytes` (a client's request) holds.
    pub fn pieces_in(&self, bytes: &[u8]) -> Sent {
        let Some(ac) = &self.pieces else {
            return Sent::default();
        };
        if !self.filter.any(bytes) {
            return Sent::default();
        }
        let mut ids: Vec<u32> = ac
            .find_overlapping_iter(bytes)
            .map(|m| m.pattern().as_u32())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        Sent(ids)
    }

    /// The byte ranges to replace in `text`: overlapping and adjacent pieces merged, the
    /// pieces in `sent` left out.
    fn ranges(&self, text: &[u8], sent: &Sent) -> Vec<(usize, usize)> {
        let Some(ac) = &self.pieces else {
            return Vec::new();
        };
        // Nearly every text holds no piece: one quick pass says so.
        if !self.filter.any(text) {
            return Vec::new();
        }
        let mut out: Vec<(usize, usize)> = Vec::new();
        for m in ac.find_overlapping_iter(text) {
            if sent.has(m.pattern().as_u32()) {
                continue;
            }
            match out.last_mut() {
                Some(last) if m.start() <= last.1 => last.1 = last.1.max(m.end()),
                _ => out.push((m.start(), m.end())),
            }
        }
        out
    }

    /// `text` with every run of secret pieces replaced by [`MARK`] (logs, the ledger).
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match self.redact_bytes(text.as_bytes(), &Sent::default()) {
            Cow::Borrowed(_) => Cow::Borrowed(text),
            // A piece may cut a multi-byte character: keep what is valid.
            Cow::Owned(b) => Cow::Owned(String::from_utf8_lossy(&b).into_owned()),
        }
    }

    /// `text` with every run of secret pieces replaced by [`MARK`], except the pieces the
    /// client sent itself (`sent`, see the module doc).
    pub fn redact_except<'a>(&self, text: &'a [u8], sent: &Sent) -> Cow<'a, [u8]> {
        self.redact_bytes(text, sent)
    }

    fn redact_bytes<'a>(&self, text: &'a [u8], sent: &Sent) -> Cow<'a, [u8]> {
        let ranges = self.ranges(text, sent);
        if ranges.is_empty() {
            return Cow::Borrowed(text);
        }
        Cow::Owned(render(text, &ranges))
    }

    /// How many bytes at the end of `text` (a stream frame, already redacted up to where its
    /// last replaced piece ends, `after`) to hold back: the longest tail, starting at or after
    /// `after`, that could be the start of a piece going on in the next frame.
    fn hold(&self, text: &[u8], after: usize) -> usize {
        // A tail that starts a piece ends with a byte of a piece; `\n`, ending every SSE event
        // and NDJSON line, is none.
        match text.last() {
            Some(&b) if self.piece_bytes[usize::from(b)] => {}
            _ => return 0,
        }
        let room = text.len().saturating_sub(after).min(PIECE - 1);
        (1..=room)
            .rev()
            .find(|&n| self.starts.contains(&text[text.len() - n..]))
            .unwrap_or(0)
    }

    /// Whether a stream frame (with nothing carried before it) goes out as it is: it holds no
    /// piece and its tail could not start one.
    pub fn passes(&self, frame: &[u8]) -> bool {
        self.pieces.is_none() || (self.hold(frame, 0) == 0 && !self.filter.any(frame))
    }

    /// Redacts one stream frame whose tail may continue in the next. `frame` starts with the
    /// previous call's carry, whose first `forced` bytes were part of a replaced run and are
    /// replaced whatever follows. Returns the bytes to send now, the bytes to carry over
    /// (prepended to the next frame, or given to [`Redactor::redact_end`]) and how many of
    /// them are forced.
    ///
    /// A run that reaches the frame's end may go on in the next frame: its last bytes (at most
    /// [`PIECE`] - 1) are carried, forced, so that the next frame's pieces join them and no
    /// byte of a key split across frames gets out. Otherwise the longest tail that could
    /// start a piece is carried (`hold`).
    pub fn redact_frame(
        &self,
        frame: &[u8],
        sent: &Sent,
        forced: usize,
    ) -> (Vec<u8>, Vec<u8>, usize) {
        let mut ranges = self.ranges(frame, sent);
        force(&mut ranges, forced.min(frame.len()));
        let (keep, forced_next) = match ranges.last_mut() {
            Some(last) if last.1 == frame.len() => {
                let c = (PIECE - 1).min(last.1 - last.0 - 1);
                last.1 -= c;
                (frame.len() - c, c)
            }
            last => {
                let after = last.map_or(0, |r| r.1);
                (frame.len() - self.hold(frame, after), 0)
            }
        };
        let out = render(&frame[..keep], &ranges);
        (out, frame[keep..].to_vec(), forced_next)
    }

    /// Redacts a stream's last carry (see [`Redactor::redact_frame`]).
    pub fn redact_end(&self, carry: &[u8], sent: &Sent, forced: usize) -> Vec<u8> {
        let mut ranges = self.ranges(carry, sent);
        force(&mut ranges, forced.min(carry.len()));
        render(carry, &ranges)
    }

    /// Where to cut `text` to keep at most `max_chars` characters without cutting through a
    /// piece of a secret (the cut moves back to the piece's start): a byte index.
    pub fn cut(&self, text: &str, max_chars: usize) -> usize {
        let mut cut = text
            .char_indices()
            .nth(max_chars)
            .map_or(text.len(), |(i, _)| i);
        for (start, end) in self.ranges(text.as_bytes(), &Sent::default()) {
            if start < cut && cut < end {
                cut = start;
            }
        }
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        cut
    }
}

/// The pieces as 8-byte words: a 64 Kibit bitmap of their hashes (8 KiB, in cache) to rule out
/// nearly every window at once, and the sorted words to confirm the few that pass.
#[derive(Default)]
struct Filter {
    bits: Vec<u64>,
    words: Vec<u64>,
}

const FILTER_BITS: u32 = 16;

impl Filter {
    fn slot(word: u64) -> usize {
        (word.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - FILTER_BITS)) as usize
    }

    fn insert(&mut self, piece: &[u8]) {
        if self.bits.is_empty() {
            self.bits = vec![0; (1 << FILTER_BITS) / 64];
        }
        let word = u64::from_le_bytes(piece.try_into().expect("a piece is 8 bytes"));
        let slot = Filter::slot(word);
        self.bits[slot / 64] |= 1 << (slot % 64);
        if let Err(at) = self.words.binary_search(&word) {
            self.words.insert(at, word);
        }
    }

    /// Whether some 8-byte window of `text` is a piece.
    fn any(&self, text: &[u8]) -> bool {
        if self.words.is_empty() || text.len() < PIECE {
            return false;
        }
        text.windows(PIECE).any(|w| {
            let word = u64::from_le_bytes(w.try_into().expect("8-byte window"));
            let slot = Filter::slot(word);
            self.bits[slot / 64] & (1 << (slot % 64)) != 0
                && self.words.binary_search(&word).is_ok()
        })
    }
}

/// Every secret this process has served with (all mappings, every reload): what logs and the
/// ledger are redacted with. It only grows, so a secret rotated out is still kept out of logs.
static AT_REST: LazyLock<(Mutex<BTreeSet<String>>, arc_swap::ArcSwap<Redactor>)> =
    LazyLock::new(|| (Mutex::new(BTreeSet::new()), arc_swap::ArcSwap::default()));

/// Adds `secrets` to those redacted from logs and the ledger ([`at_rest`]).
pub fn remember<'a>(secrets: impl IntoIterator<Item = &'a String>) {
    let (known, redactor) = &*AT_REST;
    let mut known = known.lock().unwrap_or_else(|e| e.into_inner());
    let before = known.len();
    known.extend(secrets.into_iter().cloned());
    if known.len() != before {
        redactor.store(Arc::new(Redactor::new(known.iter())));
    }
}

/// The redactor of logs and ledger records: every secret [`remember`]ed.
pub fn at_rest() -> Arc<Redactor> {
    AT_REST.1.load_full()
}

/// Adds the range `[0, n)` (bytes that must be replaced) to sorted, merged `ranges`.
fn force(ranges: &mut Vec<(usize, usize)>, n: usize) {
    if n == 0 {
        return;
    }
    let mut end = n;
    while let Some(first) = ranges.first() {
        if first.0 > end {
            break;
        }
        end = end.max(first.1);
        ranges.remove(0);
    }
    ranges.insert(0, (0, end));
}

/// `text` with each range (sorted, within `text`) replaced by [`MARK`].
fn render(text: &[u8], ranges: &[(usize, usize)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut at = 0;
    for &(start, end) in ranges {
        out.extend_from_slice(&text[at..start]);
        out.extend_from_slice(MARK.as_bytes());
        at = end;
    }
    out.extend_from_slice(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk-test-0123456789abcdefXYZ";

    #[test]
    fn whole_keys_and_pieces_are_replaced_and_the_rest_kept() {
        let r = Redactor::new([KEY]);
        assert_eq!(r.redact(&format!("bad key {KEY}!")), "bad key [redacted]!");
        assert_eq!(r.redact("key ends 89abcdefXYZ."), "key ends [redacted].");
        // Seven bytes of a key are not a piece; ordinary text is borrowed, not copied.
        assert!(matches!(r.redact("sk-test and 0123456"), Cow::Borrowed(_)));
        assert_eq!(
            r.redact(&format!("{KEY}{KEY} and {KEY}")),
            "[redacted] and [redacted]"
        );
        assert!(Redactor::new(["short"]).is_empty());
        assert_eq!(format!("{r:?}"), "Redactor(20 pieces)");
    }

    #[test]
    fn what_the_client_sent_is_not_redacted_in_its_answer() {
        let r = Redactor::new([KEY]);
        let sent = r.pieces_in(b"{\"model\":\"sk-test-0\"}");
        let echo = b"unknown model sk-test-0; key sk-test-0123456789abcdefXYZ";
        // The key's own first pieces are the ones the client sent: only "sk" stays.
        let out = r.redact_except(echo, &sent);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "unknown model sk-test-0; key sk[redacted]"
        );
        // Without the exception (logs), everything goes.
        assert!(
            !String::from_utf8_lossy(&r.redact_except(echo, &Sent::default()))
                .contains("sk-test-0")
        );
    }

    #[test]
    fn a_key_split_across_frames_is_caught() {
        let r = Redactor::new([KEY]);
        let none = Sent::default();
        // A tail that could start a piece waits for the next frame.
        let (out, carry, forced) = r.redact_frame(b"data: sk-tes", &none, 0);
        assert_eq!(
            (out.as_slice(), carry.as_slice(), forced),
            (&b"data: "[..], &b"sk-tes"[..], 0)
        );
        let mut next = carry.clone();
        next.extend_from_slice(b"t-0123456789abcdefXYZ\n\n");
        let (out, carry, _) = r.redact_frame(&next, &none, 0);
        assert_eq!(out, b"[redacted]\n\n");
        assert!(carry.is_empty());
        // A run reaching the frame's end carries its last 7 bytes, forced: the key's next
        // bytes join them, and none of it gets out even when what follows is short.
        let (out, carry, forced) = r.redact_frame(b"x sk-test-01", &none, 0);
        assert_eq!(
            (out.as_slice(), carry.as_slice(), forced),
            (&b"x [redacted]"[..], &b"test-01"[..], 7)
        );
        let mut next = carry.clone();
        next.extend_from_slice(b"23 and more\n");
        let (out, carry, forced) = r.redact_frame(&next, &none, forced);
        assert_eq!(
            (out.as_slice(), carry.as_slice(), forced),
            (&b"[redacted] and more\n"[..], &b""[..], 0)
        );
        assert_eq!(r.redact_end(b"test-01", &none, 7), b"[redacted]");
        // A frame ending in a newline holds nothing back.
        assert_eq!(r.redact_frame(b"data: {}\n\n", &none, 0).1, b"");
    }

    #[test]
    fn a_cut_never_splits_a_piece() {
        let r = Redactor::new([KEY]);
        let text = format!("{}{KEY} tail", "x".repeat(195));
        let cut = r.cut(&text, 200);
        assert_eq!(cut, 195);
        assert_eq!(r.cut("short", 200), 5);
        assert_eq!(Redactor::default().cut(&text, 200), 200);
    }
}
