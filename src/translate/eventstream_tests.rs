use super::*;

/// A message with string headers (type 7), as an encoder writes it.
fn frame(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in headers {
        h.push(name.len() as u8);
        h.extend_from_slice(name.as_bytes());
        h.push(7);
        h.extend_from_slice(&(value.len() as u16).to_be_bytes());
        h.extend_from_slice(value.as_bytes());
    }
    let total = (16 + h.len() + payload.len()) as u32;
    let mut out = Vec::new();
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

fn event(name: &str, data: &str) -> Vec<u8> {
    frame(
        &[
            (":event-type", name),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        data.as_bytes(),
    )
}

fn decode_all(bytes: &[u8], max: usize) -> (Vec<Message>, Result<(), FramingError>) {
    let mut d = EventStreamDecoder::default();
    let mut out = Vec::new();
    let r = d.feed(bytes, &mut out, max).and_then(|()| d.finish());
    (out, r)
}

fn ev(name: &str, data: &str) -> Message {
    Message::Event(Event {
        name: Some(name.into()),
        data: data.into(),
    })
}

/// The byte-level example of `shared/reference/clouds.md` §2.5, decoded by the reference
/// implementation to the same headers and payload.
const REFERENCE: &str = "
    00 00 00 94 00 00 00 57 b4 ab 9a ee 0b 3a 65 76
    65 6e 74 2d 74 79 70 65 07 00 11 63 6f 6e 74 65
    6e 74 42 6c 6f 63 6b 44 65 6c 74 61 0d 3a 63 6f
    6e 74 65 6e 74 2d 74 79 70 65 07 00 10 61 70 70
    6c 69 63 61 74 69 6f 6e 2f 6a 73 6f 6e 0d 3a 6d
    65 73 73 61 67 65 2d 74 79 70 65 07 00 05 65 76
    65 6e 74 7b 22 63 6f 6e 74 65 6e 74 42 6c 6f 63
    6b 49 6e 64 65 78 22 3a 30 2c 22 64 65 6c 74 61
    22 3a 7b 22 74 65 78 74 22 3a 22 48 69 22 7d 7d
    1f 94 46 57";

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn the_reference_frame_decodes_and_matches_the_encoder() {
    let bytes = unhex(REFERENCE);
    let data = r#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#;
    assert_eq!(bytes, event("contentBlockDelta", data));
    let (out, r) = decode_all(&bytes, 1 << 20);
    r.unwrap();
    assert_eq!(out, vec![ev("contentBlockDelta", data)]);
    // The empty message of the reference: no type, nothing emitted.
    let (out, r) = decode_all(&unhex("00000010 00000000 05c248eb 7d98c8ff"), 100);
    r.unwrap();
    assert!(out.is_empty());
}

#[test]
fn messages_split_anywhere_decode_the_same() {
    let mut whole = event("a", r#"{"x":1}"#);
    whole.extend(event("b", r#"{"y":"é"}"#));
    for cut in 0..whole.len() {
        let mut d = EventStreamDecoder::default();
        let mut out = Vec::new();
        d.feed(&whole[..cut], &mut out, 1 << 20).unwrap();
        d.feed(&whole[cut..], &mut out, 1 << 20).unwrap();
        d.finish().unwrap();
        assert_eq!(
            out,
            vec![ev("a", r#"{"x":1}"#), ev("b", r#"{"y":"é"}"#)],
            "cut {cut}"
        );
    }
}

#[test]
fn every_corrupted_byte_is_an_error_never_text() {
    let good = event("contentBlockDelta", r#"{"delta":{"text":"Hello"}}"#);
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x20;
        let (out, r) = decode_all(&bad, 1 << 20);
        assert!(out.is_empty(), "byte {i}: {out:?}");
        assert!(r.is_err(), "byte {i}");
    }
}

#[test]
fn exceptions_and_errors_become_errors() {
    let exception = frame(
        &[
            (":exception-type", "throttlingException"),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        br#"{"message":"Too many tokens, please wait before trying again."}"#,
    );
    assert_eq!(exception.len(), 176);
    assert_eq!(&exception[..12], &unhex("000000b0 00000061 4f5086b3")[..]);
    let (out, r) = decode_all(&exception, 1 << 20);
    r.unwrap();
    assert_eq!(
        out,
        vec![Message::Error {
            kind: "throttlingException".into(),
            message: "Too many tokens, please wait before trying again.".into()
        }]
    );
    let error = frame(
        &[
            (":message-type", "error"),
            (":error-code", "InternalFailure"),
            (":error-message", "boom"),
        ],
        b"",
    );
    let (out, _) = decode_all(&error, 1 << 20);
    assert_eq!(
        out,
        vec![Message::Error {
            kind: "InternalFailure".into(),
            message: "boom".into()
        }]
    );
}

#[test]
fn absurd_lengths_are_refused_before_buffering() {
    let mut prelude = Vec::new();
    prelude.extend_from_slice(&u32::MAX.to_be_bytes());
    prelude.extend_from_slice(&0u32.to_be_bytes());
    let c = crc32fast::hash(&prelude);
    prelude.extend_from_slice(&c.to_be_bytes());
    let (_, r) = decode_all(&prelude, 1 << 20);
    assert_eq!(r, Err(FramingError::TooLarge(1 << 20)));
    // Headers longer than the message.
    let mut bad = Vec::new();
    bad.extend_from_slice(&20u32.to_be_bytes());
    bad.extend_from_slice(&10u32.to_be_bytes());
    let c = crc32fast::hash(&bad);
    bad.extend_from_slice(&c.to_be_bytes());
    assert!(decode_all(&bad, 1 << 20).1.is_err());
    // A message cut short at the end of the stream.
    let whole = event("a", "{}");
    assert!(decode_all(&whole[..whole.len() - 1], 1 << 20).1.is_err());
}

#[test]
fn other_header_types_keep_the_headers_in_step() {
    let mut h = Vec::new();
    for (name, kind, value) in [
        (":x-bool", 0u8, vec![]),
        (":x-byte", 2, vec![1]),
        (":x-short", 3, vec![0, 1]),
        (":x-int", 4, vec![0, 0, 0, 1]),
        (":x-long", 5, vec![0; 8]),
        (":x-bytes", 6, vec![0, 2, 9, 9]),
        (":x-time", 8, vec![0; 8]),
        (":x-uuid", 9, vec![0; 16]),
    ] {
        h.push(name.len() as u8);
        h.extend_from_slice(name.as_bytes());
        h.push(kind);
        h.extend_from_slice(&value);
    }
    let mut f = event("z", "{}");
    // Prepend the odd headers to a normal message by re-encoding it.
    let named = frame(&[(":event-type", "z")], b"{}");
    let headers_len = u32::from_be_bytes(named[4..8].try_into().unwrap()) as usize;
    let mut all = h.clone();
    all.extend_from_slice(&named[12..12 + headers_len]);
    let total = (16 + all.len() + 2) as u32;
    f.clear();
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&(all.len() as u32).to_be_bytes());
    let c = crc32fast::hash(&f);
    f.extend_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&all);
    f.extend_from_slice(b"{}");
    let c = crc32fast::hash(&f);
    f.extend_from_slice(&c.to_be_bytes());
    let (out, r) = decode_all(&f, 1 << 20);
    r.unwrap();
    assert_eq!(out, vec![ev("z", "{}")]);
}
