//! The Bedrock fake's signature verifier against the worked example of
//! `shared/reference/clouds.md` §1.2 (botocore's result), and the fake's refusals.

use rosetta_testkit::sigv4::{
    Received, canonical_request, hex, parse_amz_date, signing_key, verify,
};
use rosetta_testkit::{BedrockAuth, FakeUpstream, Provider};
use sha2::{Digest, Sha256};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const BODY: &str = r#"{"messages":[{"role":"user","content":[{"text":"Hello"}]}],"inferenceConfig":{"maxTokens":64}}"#;
const PATH: &str = "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse";
const T: i64 = 1_722_513_600_000;

fn headers(auth: &str) -> Vec<(String, String)> {
    vec![
        ("Content-Type".into(), "application/json".into()),
        (
            "Host".into(),
            "bedrock-runtime.us-east-1.amazonaws.com".into(),
        ),
        ("X-Amz-Date".into(), "20240801T120000Z".into()),
        ("Authorization".into(), auth.into()),
    ]
}

const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240801/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=ee40a3c3c0b385fe83f108c73f432016ee338e610847850552cd360d3e716ce7";

#[test]
fn the_worked_example_canonical_request_key_chain_and_signature() {
    let h = headers(AUTH);
    let r = Received {
        method: "POST",
        path: PATH,
        headers: &h,
        body: BODY.as_bytes(),
    };
    let creq = canonical_request(&r, &["content-type", "host", "x-amz-date"]);
    assert_eq!(
        creq,
        "POST\n/model/anthropic.claude-3-5-sonnet-20240620-v1%253A0/converse\n\ncontent-type:application/json\nhost:bedrock-runtime.us-east-1.amazonaws.com\nx-amz-date:20240801T120000Z\n\ncontent-type;host;x-amz-date\nf5b802cc64a01910fd197a46e9e959f3a5795f7728fa5710fb28f1ec3019f545"
    );
    assert_eq!(
        hex(&Sha256::digest(creq.as_bytes())),
        "27c5e399206f81df19af9997686e25cf6ec561e25879164b284ad0ba4f467e7c"
    );
    assert_eq!(
        hex(&signing_key(SECRET, "20240801", "us-east-1", "bedrock")),
        "9422c933707c8cd2cb48a056d59151fb58285056f7e12583ae6600a292f40b32"
    );
    assert_eq!(parse_amz_date("20240801T120000Z"), Some(T));
    verify(&r, "AKIDEXAMPLE", SECRET, "bedrock", T).unwrap();
    // One wrong input, one refusal.
    assert!(verify(&r, "AKIDEXAMPLE", "wrong-secret", "bedrock", T).is_err());
    assert!(verify(&r, "AKIDOTHER", SECRET, "bedrock", T).is_err());
    assert!(verify(&r, "AKIDEXAMPLE", SECRET, "bedrock", T + 6 * 60_000).is_err());
    let r2 = Received { body: b"{}", ..r };
    assert!(verify(&r2, "AKIDEXAMPLE", SECRET, "bedrock", T).is_err());
}

#[tokio::test]
async fn the_fake_answers_403_invalid_signature_on_a_mismatch() {
    let fake = FakeUpstream::bind(
        "127.0.0.1:0".parse().unwrap(),
        Provider::Bedrock(BedrockAuth {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: SECRET.into(),
            bearer_token: Some("bedrock-api-key-123".into()),
            now_ms: Some(T),
        })
        .handler(),
    )
    .await
    .unwrap();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let send = |auth: &'static str| {
        let req = hyper::Request::post(format!("{}/model/m/converse", fake.base_url()))
            .header("content-type", "application/json")
            .header("x-amz-date", "20240801T120000Z")
            .header("authorization", auth)
            .body(http_body_util::Full::new(bytes::Bytes::from(BODY)))
            .unwrap();
        client.request(req)
    };
    let bad = send(AUTH).await.unwrap();
    assert_eq!(bad.status(), 403);
    let kind = bad.headers()["x-amzn-errortype"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(kind.starts_with("InvalidSignatureException:"), "{kind}");
    let ok = send("Bearer bedrock-api-key-123").await.unwrap();
    assert_eq!(ok.status(), 200);
    let wrong = send("Bearer nope").await.unwrap();
    assert_eq!(wrong.status(), 403);
}

#[tokio::test]
async fn the_fake_refuses_converse_fields_it_does_not_know() {
    let fake = FakeUpstream::bind(
        "127.0.0.1:0".parse().unwrap(),
        Provider::Bedrock(BedrockAuth {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: SECRET.into(),
            bearer_token: Some("bedrock-api-key-123".into()),
            now_ms: Some(T),
        })
        .handler(),
    )
    .await
    .unwrap();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let send = |model: &'static str, body: serde_json::Value| {
        let req = hyper::Request::post(format!("{}/model/{model}/converse", fake.base_url()))
            .header("content-type", "application/json")
            .header("authorization", "Bearer bedrock-api-key-123")
            .body(http_body_util::Full::new(bytes::Bytes::from(
                body.to_string(),
            )))
            .unwrap();
        client.request(req)
    };
    let hi = serde_json::json!([{"role": "user", "content": [{"text": "Hi"}]}]);
    for (model, body, says) in [
        (
            "m",
            serde_json::json!({"messages": hi, "max_tokens": 5}),
            "extraneous key [max_tokens]",
        ),
        (
            "m",
            serde_json::json!({"messages": [{"role": "user", "content": [{"text": " "}]}]}),
            "is blank",
        ),
        (
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            serde_json::json!({"messages": hi, "inferenceConfig": {"temperature": 0.5, "topP": 0.9}}),
            "cannot both be specified",
        ),
    ] {
        let r = send(model, body).await.unwrap();
        assert_eq!(r.status(), 400);
        let kind = r.headers()["x-amzn-errortype"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(kind.starts_with("ValidationException:"), "{kind}");
        let bytes = http_body_util::BodyExt::collect(r.into_body())
            .await
            .unwrap()
            .to_bytes();
        let text = String::from_utf8_lossy(&bytes).to_string();
        assert!(text.contains(says), "{text}");
    }
    let ok = send(
        "m",
        serde_json::json!({"messages": hi, "inferenceConfig": {"maxTokens": 5}}),
    )
    .await
    .unwrap();
    assert_eq!(ok.status(), 200);
}
