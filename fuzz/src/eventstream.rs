//! Target `eventstream_framing`: `rosetta::translate::framing::Decoder` with
//! `Framing::EventStream` (binary length-prefixed messages with two CRC-32s).
//!
//! Properties, for any bytes:
//! - no panic, and no allocation beyond the frame limit (a prelude announcing more is refused
//!   before its body is buffered: with the limit set to 256 bytes, any error about size says
//!   256);
//! - the events and the first error are the same whether the input is fed whole, in two
//!   pieces, in up to eight fuzz-chosen pieces, or (for short inputs) byte by byte;
//! - every event has a name (the `:event-type`), and an input that decodes cleanly is made of
//!   whole messages of at least 16 bytes each: never more events than `len / 16`;
//! - an input whose last 4 bytes are changed never decodes to the same events without error
//!   (a corrupted checksum is an error, never text).

use rosetta::mapping::Framing;
use rosetta::translate::framing::{Decoder, Event, FramingError};

use crate::input::Input;

const MAX: usize = 256;

type Decoded = (Vec<Event>, Option<FramingError>);

fn decode(pieces: &[&[u8]]) -> Decoded {
    let mut d = Decoder::new(Framing::EventStream);
    d.set_max_frame(MAX);
    let mut events = Vec::new();
    for p in pieces {
        if let Err(e) = d.feed(p, &mut events) {
            return (events, Some(e));
        }
    }
    let err = d.finish(&mut events).err();
    (events, err)
}

pub fn run(data: &[u8]) {
    crate::known::guard(|| check(data));
}

fn check(data: &[u8]) {
    let input = Input::parse(data);
    let payload = input.payload;
    let whole = decode(&[payload]);
    assert_eq!(whole, decode(&input.halves()), "whole vs two pieces");
    assert_eq!(whole, decode(&input.pieces()), "whole vs pieces");
    if payload.len() <= 512 {
        let bytes: Vec<&[u8]> = payload.chunks(1).collect();
        assert_eq!(whole, decode(&bytes), "whole vs byte by byte");
    }
    for e in &whole.0 {
        assert!(e.name.is_some(), "an event without a name: {e:?}");
    }
    match &whole.1 {
        None => assert!(
            whole.0.len() <= payload.len() / 16,
            "more events than messages"
        ),
        Some(FramingError::TooLarge(limit)) => assert_eq!(*limit, MAX),
        Some(FramingError::Invalid(m)) => assert!(!m.is_empty()),
        Some(FramingError::Upstream { .. }) => {}
    }
    if whole.1.is_none() && !whole.0.is_empty() {
        let mut bad = payload.to_vec();
        let n = bad.len();
        bad[n - 1] ^= 0x5a;
        assert!(
            decode(&[&bad]).1.is_some(),
            "a changed checksum went unnoticed"
        );
    }
}
