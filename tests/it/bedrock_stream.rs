//! The Bedrock mapping's streams when the event stream goes wrong: exception frames, a bad
//! checksum, a stream cut short (the fake injects each after two text deltas).

use super::bedrock::{MODEL, setup, streaming, url};
use super::support::{chat, stream};

#[tokio::test]
async fn exception_frames_mid_stream_end_in_an_error() {
    let (_fake, proxy) = setup().await;
    for (trigger, kind) in [
        ("THROTTLE", "throttlingException"),
        ("MODEL STREAM ERROR", "modelStreamErrorException"),
    ] {
        let s = stream(
            &url(&proxy),
            &streaming(chat(MODEL, &format!("{trigger} say several words"))),
        )
        .await;
        let text = s.text();
        assert!(!s.done(), "{text}");
        assert!(s.content().starts_with("Hello!"), "{text}");
        let last = s.chunks().last().unwrap().clone();
        assert_eq!(last["error"]["type"], kind, "{text}");
        assert!(s.finish_reason().is_null(), "{text}");
    }
}

#[tokio::test]
async fn a_corrupted_crc_is_an_error_never_text() {
    let (_fake, proxy) = setup().await;
    let s = stream(
        &url(&proxy),
        &streaming(chat(MODEL, "BAD CRC say several words")),
    )
    .await;
    let text = s.text();
    assert!(!text.contains("garbage"), "{text}");
    assert!(!s.done(), "{text}");
    let last = s.chunks().last().unwrap().clone();
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("checksum"),
        "{text}"
    );
    // A stream that stops before messageStop is cut short, not finished.
    let s = stream(
        &url(&proxy),
        &streaming(chat(MODEL, "CUT SHORT say several words")),
    )
    .await;
    assert!(!s.done(), "{}", s.text());
}
