//! How a fuzz input is read: a control byte, cut points, then the payload.
//!
//! Layout: byte 0 holds the number of cut points in its low 3 bits (0-7) and flags for the
//! target in its high 5 bits; then 2 bytes (little-endian) per cut point; the rest is the
//! payload. A cut point is reduced modulo `payload.len() + 1`. An input of `\0` followed by a
//! transcript is the transcript with no cut points and no flags: that is how seeds are written.

/// A fuzz input, split into its parts.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    /// The high 5 bits of byte 0.
    pub flags: u8,
    /// Cut points into `payload`, sorted, each in `0..=payload.len()`.
    pub cuts: Vec<usize>,
    pub payload: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn parse(data: &'a [u8]) -> Input<'a> {
        let Some((&control, rest)) = data.split_first() else {
            return Input {
                flags: 0,
                cuts: Vec::new(),
                payload: &[],
            };
        };
        let n = usize::from(control & 7).min(rest.len() / 2);
        let (raw, payload) = rest.split_at(2 * n);
        let mut cuts: Vec<usize> = raw
            .chunks_exact(2)
            .map(|c| usize::from(u16::from_le_bytes([c[0], c[1]])) % (payload.len() + 1))
            .collect();
        cuts.sort_unstable();
        Input {
            flags: control >> 3,
            cuts,
            payload,
        }
    }

    /// Whether flag bit `bit` (0-4) is set.
    pub fn flag(&self, bit: u8) -> bool {
        self.flags & (1 << bit) != 0
    }

    /// The payload cut at every cut point (empty pieces included: they are legal feeds).
    pub fn pieces(&self) -> Vec<&'a [u8]> {
        let mut out = Vec::with_capacity(self.cuts.len() + 1);
        let mut at = 0;
        for &c in &self.cuts {
            out.push(&self.payload[at..c]);
            at = c;
        }
        out.push(&self.payload[at..]);
        out
    }

    /// The payload in two pieces: at the first cut point, or in the middle.
    pub fn halves(&self) -> [&'a [u8]; 2] {
        let at = self.cuts.first().copied().unwrap_or(self.payload.len() / 2);
        let (l, r) = self.payload.split_at(at);
        [l, r]
    }
}

/// The control byte for `n` cut points and `flags` (for writing inputs).
pub fn control(n: u8, flags: u8) -> u8 {
    (flags << 3) | (n & 7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let i = Input::parse(b"\x0a\x01\x00\x09\x00abcdef");
        assert_eq!(i.flags, 1);
        assert_eq!(i.cuts, vec![1, 2]);
        assert_eq!(i.payload, b"abcdef");
        assert_eq!(i.pieces(), vec![&b"a"[..], b"b", b"cdef"]);
        assert_eq!(Input::parse(b"\0xy").pieces(), vec![&b"xy"[..]]);
        assert_eq!(Input::parse(b"\0xy").halves(), [&b"x"[..], b"y"]);
        assert_eq!(Input::parse(b"").payload, b"");
        // Too few bytes for the cut points asked for: as many as fit.
        assert_eq!(Input::parse(b"\x07\x01").cuts, Vec::<usize>::new());
    }
}
