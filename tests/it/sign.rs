//! The signer against the worked example of `shared/reference/clouds.md` §1.2 (computed with
//! botocore's signer and a plain HMAC implementation), and against the test kit's independent
//! verifier for the paths hand-written signers get wrong.

use bytes::Bytes;
use http::{HeaderValue, Request};
use http_body_util::Full;
use rosetta::upstream::sign::{SigV4, Signing};

/// 2024-08-01 12:00:00 UTC.
const T: i64 = 1_722_513_600_000;
const BODY: &str = r#"{"messages":[{"role":"user","content":[{"text":"Hello"}]}],"inferenceConfig":{"maxTokens":64}}"#;
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn key(session_token: Option<&str>) -> Signing {
    Signing::SigV4(SigV4 {
        service: "bedrock".into(),
        region: "us-east-1".into(),
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: SECRET.into(),
        session_token: session_token.map(String::from),
    })
}

fn request(url: &str) -> Request<Full<Bytes>> {
    Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(BODY)))
        .unwrap()
}

fn header<'a>(r: &'a Request<Full<Bytes>>, name: &str) -> &'a str {
    r.headers().get(name).unwrap().to_str().unwrap()
}

const URL: &str = "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse";

#[test]
fn the_worked_example_signs_as_botocore_does() {
    let mut r = request(URL);
    key(None).apply(&mut r, T).unwrap();
    assert_eq!(header(&r, "x-amz-date"), "20240801T120000Z");
    assert_eq!(
        header(&r, "authorization"),
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240801/us-east-1/bedrock/aws4_request, \
         SignedHeaders=content-type;host;x-amz-date, \
         Signature=ee40a3c3c0b385fe83f108c73f432016ee338e610847850552cd360d3e716ce7"
    );
    assert!(r.headers().get("authorization").unwrap().is_sensitive());
    assert!(r.headers().get("x-amz-content-sha256").is_none());
}

#[test]
fn a_session_token_is_sent_and_signed() {
    let mut r = request(URL);
    key(Some("FQoGZXIvYXdzEXAMPLESESSIONTOKEN"))
        .apply(&mut r, T)
        .unwrap();
    assert_eq!(
        header(&r, "x-amz-security-token"),
        "FQoGZXIvYXdzEXAMPLESESSIONTOKEN"
    );
    assert!(header(&r, "authorization").ends_with(
        "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, \
         Signature=eaba16017c50283f9d5ee121cb32791924b632b4fa57ec8a528625490c1c6efc"
    ));
}

/// The test kit's verifier recomputes the signature from the request as received.
fn verified(url: &str, at: i64) -> Result<(), String> {
    let mut r = request(url);
    key(None).apply(&mut r, at).unwrap();
    let headers: Vec<(String, String)> = r
        .headers()
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
        .collect();
    let mut headers = headers;
    headers.push(("host".into(), r.uri().authority().unwrap().to_string()));
    let path = r.uri().path_and_query().unwrap().as_str();
    rosetta_testkit::sigv4::verify(
        &rosetta_testkit::sigv4::Received {
            method: "POST",
            path,
            headers: &headers,
            body: BODY.as_bytes(),
        },
        "AKIDEXAMPLE",
        SECRET,
        "bedrock",
        at,
    )
}

#[test]
fn model_ids_with_colons_slashes_and_ports_verify_independently() {
    for url in [
        URL,
        // A raw `:` (a cross-region profile id as Rosetta sends it): canonical `%3A`.
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/us.anthropic.claude-sonnet-4-5-20250929-v1:0/converse-stream",
        // An ARN's `/` sent as `%2F`: canonical `%252F`.
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aapplication-inference-profile%2Fabc123/converse",
        "http://127.0.0.1:4567/base/model/m:0/converse",
    ] {
        verified(url, T).unwrap_or_else(|e| panic!("{url}: {e}"));
    }
}

#[test]
fn the_verifier_refuses_a_changed_body_or_an_old_signature() {
    let mut r = request(URL);
    key(None).apply(&mut r, T).unwrap();
    let mut headers: Vec<(String, String)> = r
        .headers()
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
        .collect();
    headers.push((
        "host".into(),
        "bedrock-runtime.us-east-1.amazonaws.com".into(),
    ));
    let path = r.uri().path();
    let check = |body: &[u8], now: i64| {
        rosetta_testkit::sigv4::verify(
            &rosetta_testkit::sigv4::Received {
                method: "POST",
                path,
                headers: &headers,
                body,
            },
            "AKIDEXAMPLE",
            SECRET,
            "bedrock",
            now,
        )
    };
    assert!(check(BODY.as_bytes(), T).is_ok());
    assert!(check(b"{}", T).is_err());
    // Fifteen minutes later the same signature is too old.
    assert!(check(BODY.as_bytes(), T + 15 * 60_000).is_err());
}

#[test]
fn bearer_sets_authorization_and_nothing_else() {
    let mut r = request(URL);
    Signing::Bearer(HeaderValue::from_static("Bearer abc"))
        .apply(&mut r, T)
        .unwrap();
    assert_eq!(header(&r, "authorization"), "Bearer abc");
    assert!(r.headers().get("x-amz-date").is_none());
    assert_eq!(
        format!("{:?}", key(Some("tok"))),
        "SigV4(bedrock/us-east-1)"
    );
}

/// Every request a signing mapping sends is signed, the upstream model listing included, with
/// the state's clock.
#[tokio::test]
async fn the_model_listing_and_chat_calls_are_signed() {
    use rosetta_testkit::{FakeUpstream, Reply};
    let fake = FakeUpstream::with_handler(|r| {
        if r.path == "/models" {
            Reply::json(200, serde_json::json!({"data": [{"id": "m1"}]}))
        } else {
            Reply::json(200, serde_json::json!({"text": "hi"}))
        }
    })
    .await;
    let dir = super::support::temp_dir();
    std::fs::write(
        dir.join("signed.yaml"),
        "upstream:\n  base_url: ${BASE}\n  sign:\n    - sigv4: {service: svc, region: r-1, access_key_id: AKIDEXAMPLE, secret_access_key: \"${SECRET}\"}\nroutes:\n  chat: {path: /chat, response: {content: $.text}}\n  models:\n    path: /models\n    method: GET\n    response: {models: {$map: $.data, to: {id: $.id}}}\n",
    )
    .unwrap();
    let env = [("BASE", fake.base_url()), ("SECRET", SECRET.to_string())];
    let proxy = super::support::Proxy::start_with(&dir, &env, |s| {
        s.with_clock(rosetta::ops::clock::Clock::manual(T))
    })
    .await;
    let r = super::support::request("GET", &proxy.url("/signed/v1/models"), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("m1"), "{}", r.text);
    let r = super::support::post(
        &proxy.url("/signed/v1/chat/completions"),
        &serde_json::json!({"model": "x", "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sent = fake.requests();
    assert_eq!(sent.len(), 2);
    for s in &sent {
        assert_eq!(
            s.header("x-amz-date"),
            Some("20240801T120000Z"),
            "{}",
            s.path
        );
        let headers = s.headers.clone();
        rosetta_testkit::sigv4::verify(
            &rosetta_testkit::sigv4::Received {
                method: &s.method,
                path: &s.path,
                headers: &headers,
                body: s.raw_body.as_bytes(),
            },
            "AKIDEXAMPLE",
            SECRET,
            "svc",
            T,
        )
        .unwrap_or_else(|e| panic!("{}: {e}", s.path));
    }
}
