//! The fake Gemini validates like the real API (wire-formats.md 3.2, 3.8): names, types, schemas, turns.

mod common;

use common::send;
use rosetta_testkit::FakeUpstream;
use serde_json::{Value, json};

use common::gemini::*;

#[tokio::test]
async fn validation_rejects_like_the_real_api() {
    let fake = FakeUpstream::gemini().await;
    let tool = |params: Value| {
        with(
            ask("x"),
            "/tools",
            json!([{"functionDeclarations": [{"name": "f", "parameters": params}]}]),
        )
    };
    let obj = |props: Value| json!({"type": "OBJECT", "properties": props});
    let cases: Vec<(Value, &str)> = vec![
        (
            with(ask("x"), "/messages", json!([])),
            "Invalid JSON payload received. Unknown name \"messages\": Cannot find field.",
        ),
        (
            with(ask("x"), "/generationConfig", json!({"max_tokens": 5})),
            "Unknown name \"max_tokens\" at 'generation_config': Cannot find field.",
        ),
        (
            with(ask("x"), "/contents/0/role", json!("assistant")),
            "Please use a valid role: user, model.",
        ),
        (
            with(ask("x"), "/contents/0/role", json!("system")),
            "Please use a valid role: user, model.",
        ),
        (
            tool(
                json!({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": false}),
            ),
            "Unknown name \"additionalProperties\" at 'tools[0].function_declarations[0].parameters': Cannot find field.",
        ),
        (
            tool(obj(json!({"a": {"type": "STRING", "$schema": "x"}}))),
            "Unknown name \"$schema\" at 'tools[0].function_declarations[0].parameters.properties[0].value'",
        ),
        (
            tool(obj(
                json!({"a": {"type": "ARRAY", "items": {"type": "STRING", "const": "x"}}}),
            )),
            "Unknown name \"const\" at 'tools[0].function_declarations[0].parameters.properties[0].value.items'",
        ),
        (
            with(
                ask("x"),
                "/tools",
                json!([{"functionDeclarations": [{"name": "f", "strict": true}]}]),
            ),
            "Unknown name \"strict\" at 'tools[0].function_declarations[0]'",
        ),
        (
            with(
                ask("x"),
                "/tools",
                json!([{"type": "function", "function": {"name": "f"}}]),
            ),
            "Unknown name \"type\" at 'tools[0]'",
        ),
        (
            tool(obj(json!({}))),
            "* GenerateContentRequest.tools[0].function_declarations[0].parameters.properties: should be non-empty for OBJECT type",
        ),
        (
            tool(
                json!({"type": "OBJECT", "properties": {"a": {"type": "STRING"}}, "required": ["b"]}),
            ),
            "parameters.required[0]: property is not defined",
        ),
        (
            tool(obj(json!({"a": {"type": ["string", "null"]}}))),
            "Invalid value at 'tools[0].function_declarations[0].parameters.properties[0].value.type' (type.googleapis.com/google.ai.generativelanguage.v1beta.Type)",
        ),
        (
            with(
                ask("x"),
                "/tools",
                json!([{"functionDeclarations": [{"name": "1bad name"}]}]),
            ),
            "Invalid function name.",
        ),
        (
            tool_turns(json!({"city": "Paris"}), json!({"result": 18}), "nope"),
            "* GenerateContentRequest.contents[2].parts[0].function_response.name: function 'nope' is not declared",
        ),
        (
            tool_turns(json!({"city": "Paris"}), json!({"result": 18}), ""),
            "function_response.name: Name cannot be empty.",
        ),
        (
            tool_turns(
                json!("{\"city\":\"Paris\"}"),
                json!({"result": 18}),
                "get_weather",
            ),
            "Invalid value at 'contents[1].parts[0].function_call.args' (type.googleapis.com/google.protobuf.Struct), \"{\\\"city\\\":\\\"Paris\\\"}\"",
        ),
        (
            tool_turns(json!({"city": "Paris"}), json!("18 C"), "get_weather"),
            "Invalid value at 'contents[2].parts[0].function_response.response' (type.googleapis.com/google.protobuf.Struct)",
        ),
        (
            with(
                tool_turns(json!({}), json!({}), "get_weather"),
                "/contents/1",
                json!({"role": "model", "parts": [{"text": "ok"}]}),
            ),
            "Please ensure that function response turn comes immediately after a function call turn.",
        ),
        (
            with(
                tool_turns(json!({}), json!({}), "get_weather"),
                "/contents/2/parts/1",
                json!({"functionResponse": {"name": "get_time", "response": {}}}),
            ),
            "Please ensure that the number of function response parts is equal to the number of function call parts",
        ),
        (
            json!({"contents": []}),
            "* GenerateContentRequest.contents: contents is not specified",
        ),
        (
            json!({}),
            "* GenerateContentRequest.contents: contents is not specified",
        ),
        (
            with(ask("x"), "/contents/0/parts", json!([])),
            "* GenerateContentRequest.contents[0].parts: contents.parts must not be empty.",
        ),
        (
            with(ask("x"), "/contents/0/parts/0", json!({})),
            "contents[0].parts[0].data: required oneof field 'data' must have one initialized field",
        ),
        (
            with(
                ask("x"),
                "/contents/0/parts/0",
                json!({"inlineData": {"mimeType": "image/png", "data": "data:image/png;base64,iVBORw0KGgo="}}),
            ),
            "Invalid value at 'contents[0].parts[0].inline_data.data' (TYPE_BYTES), Base64 decoding failed for \"data:image/png;base64,",
        ),
        (
            with(ask("x"), "/generationConfig", json!({"temperature": "hot"})),
            "Invalid value at 'generation_config.temperature' (TYPE_FLOAT), \"hot\"",
        ),
        (
            with(ask("x"), "/generationConfig", json!({"temperature": 3})),
            "* GenerateContentRequest.generation_config.temperature: must be in the range [0, 2]",
        ),
        (
            with(ask("x"), "/generationConfig", json!({"topP": 1.5})),
            "generation_config.top_p: must be in the range",
        ),
        (
            with(ask("x"), "/generationConfig", json!({"candidateCount": 9})),
            "generation_config.candidate_count: must be in the range",
        ),
        (
            with(
                ask("x"),
                "/generationConfig",
                json!({"maxOutputTokens": 1.5}),
            ),
            "Invalid value at 'generation_config.max_output_tokens' (TYPE_INT32), 1.5",
        ),
        (
            with(
                ask("x"),
                "/generationConfig",
                json!({"stopSequences": ["a", "b", "c", "d", "e", "f"]}),
            ),
            "stop_sequences must not exceed 5",
        ),
        (
            with(
                ask("x"),
                "/generationConfig",
                json!({"responseMimeType": "text/html"}),
            ),
            "allowed mimetypes are `text/plain`, `application/json`",
        ),
        (
            with(
                ask("x"),
                "/generationConfig",
                json!({"thinkingConfig": {"budget": 5}}),
            ),
            "Unknown name \"budget\" at 'generation_config.thinking_config'",
        ),
        (
            with(
                ask("x"),
                "/toolConfig",
                json!({"functionCallingConfig": {"mode": "auto"}}),
            ),
            "Invalid value at 'tool_config.function_calling_config.mode' (type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), \"auto\"",
        ),
        (
            with(
                with(ask("x"), "/tools", weather_tools()),
                "/toolConfig",
                json!({"functionCallingConfig": {"mode": "AUTO", "allowedFunctionNames": ["get_time"]}}),
            ),
            "allowed_function_names should be empty unless mode is ANY",
        ),
        (
            with(
                ask("x"),
                "/safetySettings",
                json!([{"category": "HARASSMENT", "threshold": "BLOCK_NONE"}]),
            ),
            "Invalid value at 'safety_settings[0].category' (type.googleapis.com/google.ai.generativelanguage.v1beta.HarmCategory), \"HARASSMENT\"",
        ),
        (
            with(ask("x"), "/systemInstruction", json!("You are terse.")),
            "Invalid value at 'system_instruction' (type.googleapis.com/google.ai.generativelanguage.v1beta.Content), \"You are terse.\"",
        ),
        (
            with(
                ask("x"),
                "/tools",
                json!([{"googleSearch": {"dynamicThreshold": 0.3}}]),
            ),
            "Unknown name \"dynamicThreshold\" at 'tools[0].google_search': Cannot find field.",
        ),
        (
            with(ask("x"), "/tools", json!([{"webSearch": {}}])),
            "Unknown name \"webSearch\" at 'tools[0]': Cannot find field.",
        ),
        (
            with(
                ask("x"),
                "/tools",
                json!([weather_tools()[0].clone(), {"googleSearch": {}}]),
            ),
            "Tool use with function calling is unsupported by the model.",
        ),
        (
            with(
                tool_turns(
                    json!({"city": "Paris"}),
                    json!({"result": 18}),
                    "get_weather",
                ),
                "/tools",
                json!([{"googleSearch": {}}]),
            ),
            "Tool use with function calling is unsupported by the model.",
        ),
    ];
    for (body, expected) in cases {
        let r = generate(&fake, &body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        let e = &r.json()["error"];
        assert_eq!(
            (e["code"].as_u64(), e["status"].as_str()),
            (Some(400), Some("INVALID_ARGUMENT")),
            "{body}"
        );
        let message = e["message"].as_str().unwrap();
        assert!(message.contains(expected), "{body}\n got: {message}");
        if message.starts_with("Invalid") {
            assert_eq!(
                e["details"][0]["@type"], "type.googleapis.com/google.rpc.BadRequest",
                "{body}"
            );
            let violations = e["details"][0]["fieldViolations"].as_array().unwrap();
            assert!(
                violations
                    .iter()
                    .any(|v| v["description"].as_str().unwrap().contains(expected)),
                "{body}: {e}"
            );
        }
    }
    let two = generate(
        &fake,
        &json!({"contents": [{"parts": [{"text": "x"}]}], "a": 1, "b": 2}),
    )
    .await
    .json();
    assert_eq!(
        two["error"]["message"],
        "Invalid JSON payload received. Unknown name \"a\": Cannot find field.\n\
                                         Invalid JSON payload received. Unknown name \"b\": Cannot find field."
    );
    assert_eq!(
        two["error"]["details"][0]["fieldViolations"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let path = "/v1beta/models/gemini-2.5-flash:generateContent";
    let root = send(fake.addr(), "POST", path, &[KEY], "[]").await;
    assert!(
        root.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Root element must be a message.")
    );
    let broken = send(fake.addr(), "POST", path, &[KEY], "{oops").await;
    assert_eq!(
        (broken.status, broken.json()["error"]["status"].as_str()),
        (400, Some("INVALID_ARGUMENT"))
    );
    // Proto JSON also takes the snake_case field names; lower-case schema types are tolerated.
    let snake = json!({"system_instruction": {"parts": [{"text": "Be terse."}]}, "contents": [{"parts": [{"text": "hi"}]}],
        "generation_config": {"max_output_tokens": 64, "top_p": 0.5},
        "tools": [{"function_declarations": [{"name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "string"}}}}]}],
        "tool_config": {"function_calling_config": {"mode": "NONE"}}});
    let ok = generate(&fake, &snake).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    let image = with(
        ask("what is this?"),
        "/contents/0/parts/1",
        json!({"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}),
    );
    assert_eq!(generate(&fake, &image).await.status, 200);
    let file = with(
        ask("and this?"),
        "/contents/0/parts/1",
        json!({"fileData": {"fileUri": "https://example.com/a.pdf"}}),
    );
    assert_eq!(generate(&fake, &file).await.status, 200);
}

#[tokio::test]
async fn malformed_bodies_never_crash_the_fake() {
    let fake = FakeUpstream::gemini().await;
    let bodies = [
        "",
        "null",
        "5",
        "\"x\"",
        "{",
        "{\"contents\": null, \"tools\": null, \"generationConfig\": null}",
        "{\"contents\": [null, 5, \"x\", [], {}]}",
        "{\"contents\": [{\"role\": 5, \"parts\": {\"text\": \"x\"}}]}",
        "{\"contents\": [{\"parts\": [null, 5, {\"text\": 5, \"thought\": \"yes\", \"thoughtSignature\": 7}]}]}",
        "{\"contents\": [{\"parts\": [{\"functionCall\": 5}, {\"functionResponse\": {\"name\": 5}}, {\"inlineData\": []}]}]}",
        "{\"contents\": [{\"role\": \"model\", \"parts\": [{\"functionCall\": {\"name\": \"f\"}}]}, {\"parts\": [{\"functionResponse\": {}}]}]}",
        "{\"contents\": [{\"parts\": [{\"text\": \"x\"}]}], \"tools\": [5, {\"functionDeclarations\": [null, {\"parameters\": {\"properties\": 5, \"required\": [1], \"items\": 5, \"anyOf\": {}}}]}]}",
        "{\"contents\": [{\"parts\": [{\"text\": \"x\"}]}], \"tools\": {}, \"toolConfig\": 5, \"safetySettings\": {}, \"generationConfig\": {\"candidateCount\": 1e40, \"topK\": -1, \"stopSequences\": \"x\"}}",
        "{\"contents\": [{\"parts\": [{\"text\": \"x\"}]}], \"toolConfig\": {\"functionCallingConfig\": {\"mode\": \"ANY\", \"allowedFunctionNames\": [5]}}}",
        "{\"requests\": [null, {\"content\": 5}], \"content\": {\"parts\": 5}, \"outputDimensionality\": 99999999999}",
    ];
    for body in bodies {
        for method in [
            "generateContent",
            "streamGenerateContent?alt=sse",
            "streamGenerateContent",
            "countTokens",
        ] {
            let path = format!("/v1beta/models/gemini-2.5-flash:{method}");
            let r = send(fake.addr(), "POST", &path, &[KEY], body).await;
            assert!(
                r.status == 200 || r.status == 400,
                "{method} {body}: {}",
                r.status
            );
        }
        for method in ["embedContent", "batchEmbedContents"] {
            let path = format!("/v1beta/models/gemini-embedding-001:{method}");
            let r = send(fake.addr(), "POST", &path, &[KEY], body).await;
            assert!(
                r.status == 200 || r.status == 400,
                "{method} {body}: {}",
                r.status
            );
        }
    }
}
