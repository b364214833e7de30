//! The fake Gemini API follows wire-formats.md section 3: auth, routing, the response shape, embeddings.

mod common;

use common::{get, send};
use rosetta_testkit::FakeUpstream;
use serde_json::{Value, json};

const KEY: (&str, &str) = ("x-goog-api-key", "AIza-test");

fn ask(text: &str) -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": text}]}]})
}

async fn generate(fake: &FakeUpstream, body: &Value) -> common::Exchange {
    let path = "/v1beta/models/gemini-2.5-flash:generateContent";
    send(fake.addr(), "POST", path, &[KEY], &body.to_string()).await
}

#[tokio::test]
async fn valid_request_gets_a_generate_content_response() {
    let fake = FakeUpstream::gemini().await;
    let mut body = ask("hi there");
    body["systemInstruction"] = json!({"parts": [{"text": "You are terse."}]});
    body["generationConfig"] = json!({"temperature": 0.2, "topP": 0.9, "topK": 40, "maxOutputTokens": 256,
        "stopSequences": ["END"], "candidateCount": 1, "responseMimeType": "text/plain",
        "thinkingConfig": {"thinkingBudget": 0, "includeThoughts": false}});
    body["safetySettings"] =
        json!([{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}]);
    let r = generate(&fake, &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=UTF-8")
    );
    assert!(
        r.text().starts_with("{\n  \"candidates\": ["),
        "pretty-printed like Google"
    );
    let m = r.json();
    let c = &m["candidates"][0];
    assert_eq!(
        c["content"],
        json!({"parts": [{"text": "Hello! You said: hi there"}], "role": "model"})
    );
    assert_eq!(
        (c["finishReason"].as_str(), c["index"].as_u64()),
        (Some("STOP"), Some(0))
    );
    let u = &m["usageMetadata"];
    assert_eq!(
        (
            u["promptTokenCount"].as_u64(),
            u["candidatesTokenCount"].as_u64()
        ),
        (Some(5), Some(5))
    );
    assert_eq!(u["totalTokenCount"], 10);
    assert!(u.get("thoughtsTokenCount").is_none());
    assert_eq!(m["modelVersion"], "gemini-2.5-flash");
    assert_eq!(m["responseId"].as_str().unwrap().len(), 23);
    let recorded = fake.requests();
    assert_eq!(
        recorded[0].path,
        "/v1beta/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(recorded[0].header("X-Goog-Api-Key"), Some("AIza-test"));
    assert_eq!(recorded[0].body, body);
    let stats = get(fake.addr(), "/__requests").await.json();
    assert_eq!(stats[0]["body"], body);
}

#[tokio::test]
async fn auth_by_header_or_query_key() {
    let fake = FakeUpstream::gemini_with_key("right").await;
    let body = ask("hi").to_string();
    let path = "/v1beta/models/gemini-2.5-flash:generateContent";
    let missing = send(fake.addr(), "POST", path, &[], &body).await;
    assert_eq!(missing.status, 403);
    let e = &missing.json()["error"];
    assert_eq!(
        (e["code"].as_u64(), e["status"].as_str()),
        (Some(403), Some("PERMISSION_DENIED"))
    );
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("Method doesn't allow unregistered callers")
    );
    assert_eq!(e["details"][0]["reason"], "CREDENTIALS_MISSING");
    let wrong = send(
        fake.addr(),
        "POST",
        path,
        &[("x-goog-api-key", "wrong")],
        &body,
    )
    .await;
    assert_eq!(wrong.status, 400);
    let e = &wrong.json()["error"];
    assert_eq!(
        e["message"],
        "API key not valid. Please pass a valid API key."
    );
    assert_eq!(
        (e["status"].as_str(), e["details"][0]["reason"].as_str()),
        (Some("INVALID_ARGUMENT"), Some("API_KEY_INVALID"))
    );
    let bearer = send(
        fake.addr(),
        "POST",
        path,
        &[("authorization", "Bearer right")],
        &body,
    )
    .await;
    assert_eq!(
        (bearer.status, bearer.json()["error"]["status"].as_str()),
        (401, Some("UNAUTHENTICATED"))
    );
    let header = send(
        fake.addr(),
        "POST",
        path,
        &[("x-goog-api-key", "right")],
        &body,
    )
    .await;
    assert_eq!(header.status, 200);
    let query = send(
        fake.addr(),
        "POST",
        &format!("{path}?key=right"),
        &[],
        &body,
    )
    .await;
    assert_eq!(query.status, 200);
    let wrong_query = send(fake.addr(), "POST", &format!("{path}?key=nope"), &[], &body).await;
    assert_eq!(wrong_query.status, 400);

    let open = FakeUpstream::gemini().await;
    assert_eq!(
        send(
            open.addr(),
            "POST",
            path,
            &[("x-goog-api-key", "anything")],
            &body
        )
        .await
        .status,
        200
    );
    assert_eq!(
        send(open.addr(), "POST", path, &[], &body).await.status,
        403
    );
}

#[tokio::test]
async fn routes_models_and_not_found() {
    let fake = FakeUpstream::gemini().await;
    let body = ask("hi").to_string();
    let missing = send(
        fake.addr(),
        "POST",
        "/v1beta/models/missing-model:generateContent",
        &[KEY],
        &body,
    )
    .await;
    assert_eq!(missing.status, 404);
    let m = missing.json();
    assert_eq!(m["error"]["code"], 404);
    assert_eq!(m["error"]["status"], "NOT_FOUND");
    assert!(
        m["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("models/missing-model is not found for API version v1beta")
    );
    assert_eq!(m.as_object().unwrap().len(), 1);
    let embed_model = send(
        fake.addr(),
        "POST",
        "/v1beta/models/gemini-embedding-001:generateContent",
        &[KEY],
        &body,
    )
    .await;
    assert_eq!(embed_model.status, 404);
    let unknown = send(fake.addr(), "POST", "/v1/chat/completions", &[KEY], &body).await;
    assert_eq!(unknown.status, 404);
    assert!(
        unknown
            .header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(unknown.text().contains("Error 404 (Not Found)!!1"));
    let wrong_method = send(
        fake.addr(),
        "GET",
        "/v1beta/models/gemini-2.5-flash:generateContent",
        &[KEY],
        "",
    )
    .await;
    assert_eq!(wrong_method.status, 404);

    let list = send(fake.addr(), "GET", "/v1beta/models", &[KEY], "")
        .await
        .json();
    let names: Vec<&str> = list["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"models/gemini-2.5-flash")
            && names.contains(&"models/gemini-embedding-001")
    );
    let flash = &list["models"][0];
    assert!(flash["inputTokenLimit"].is_u64() && flash["supportedGenerationMethods"].is_array());
    let one = send(
        fake.addr(),
        "GET",
        "/v1beta/models/gemini-2.5-pro",
        &[KEY],
        "",
    )
    .await;
    assert_eq!(
        (one.status, one.json()["displayName"].as_str()),
        (200, Some("Gemini 2.5 Pro"))
    );
    assert_eq!(
        send(fake.addr(), "GET", "/v1beta/models", &[], "")
            .await
            .status,
        403
    );
    let count = send(
        fake.addr(),
        "POST",
        "/v1beta/models/gemini-2.5-flash:countTokens",
        &[KEY],
        &ask("one two three").to_string(),
    )
    .await;
    assert_eq!(count.status, 200);
    assert!(count.json()["totalTokens"].as_u64().unwrap() >= 3);
}

#[tokio::test]
async fn embeddings_single_and_batch() {
    let fake = FakeUpstream::gemini().await;
    let addr = fake.addr();
    let embed = |path: &str, body: Value| {
        let path = format!("/v1beta/models/gemini-embedding-001:{path}");
        async move { send(addr, "POST", &path, &[KEY], &body.to_string()).await }
    };
    let one = embed("embedContent", json!({"content": {"parts": [{"text": "first text"}]}, "taskType": "RETRIEVAL_DOCUMENT", "title": "Doc 1"})).await;
    assert_eq!(one.status, 200, "{}", one.text());
    let values = one.json()["embedding"]["values"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(values.len(), 8);
    assert!(values.iter().all(|v| v.as_f64().unwrap().abs() <= 0.1));
    assert_eq!(
        one.json().as_object().unwrap().len(),
        1,
        "no usage is returned"
    );
    let short = embed(
        "embedContent",
        json!({"content": {"parts": [{"text": "first text"}]}, "outputDimensionality": 4}),
    )
    .await;
    assert_eq!(
        short.json()["embedding"]["values"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    let batch = embed("batchEmbedContents", json!({"requests": [
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "first text"}]}},
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "second text"}]}}]})).await;
    assert_eq!(batch.status, 200, "{}", batch.text());
    let embeddings = batch.json()["embeddings"].as_array().unwrap().clone();
    assert_eq!(embeddings.len(), 2);
    assert_eq!(embeddings[0]["values"], json!(values));
    assert_ne!(embeddings[0], embeddings[1]);
    let cases = [
        (
            "embedContent",
            json!({"content": {"parts": [{"text": "x"}]}, "dimensions": 4}),
            "Unknown name \"dimensions\": Cannot find field.",
        ),
        (
            "embedContent",
            json!({"taskType": "RETRIEVAL_DOCUMENT"}),
            "* EmbedContentRequest.content: content is not specified",
        ),
        (
            "embedContent",
            json!({"content": {"parts": [{"text": "x"}]}, "taskType": "search"}),
            "Invalid value at 'task_type'",
        ),
        (
            "batchEmbedContents",
            json!({"requests": [{"model": "models/other", "content": {"parts": [{"text": "x"}]}}]}),
            "requests[0].model: model 'models/other' does not match the model in the URL",
        ),
        (
            "batchEmbedContents",
            json!({"requests": [{"content": {"parts": [{"text": "x"}]}}]}),
            "requests[0].model: model is not specified",
        ),
        (
            "batchEmbedContents",
            json!({"input": ["x"]}),
            "Unknown name \"input\": Cannot find field.",
        ),
    ];
    for (method, body, expected) in cases {
        let r = embed(method, body.clone()).await;
        assert_eq!(r.status, 400, "{body}");
        let message = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(message.contains(expected), "{body}\n got: {message}");
    }
    let wrong_model = send(
        fake.addr(),
        "POST",
        "/v1beta/models/gemini-2.5-flash:embedContent",
        &[KEY],
        &json!({"content": {"parts": [{"text": "x"}]}}).to_string(),
    )
    .await;
    assert_eq!(wrong_model.status, 404);
}
