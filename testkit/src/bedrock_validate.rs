//! What the fake Bedrock Converse API refuses, with Bedrock's `ValidationException` messages
//! (`shared/reference/clouds.md` §4 and the translator traps of §10): unknown fields anywhere
//! in the shapes it knows, content blocks that are not exactly one known member, blank text,
//! blank tool-result text, images it cannot read, tool blocks without a `toolConfig`, tools
//! sharing a name, out-of-range inference settings, `temperature` beside `topP` on Claude 4.5
//! models, and thinking budgets that do not fit.

use serde_json::{Map, Value};

use crate::common::base64_error;

fn extraneous(obj: &Map<String, Value>, allowed: &[&str], at: &str) -> Result<(), String> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!(
            "Malformed input request: extraneous key [{k}] is not permitted at {at}, please reformat your input and try again."
        )),
        None => Ok(()),
    }
}

fn object<'a>(v: &'a Value, at: &str) -> Result<&'a Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("Malformed input request: {at} must be an object"))
}

const TOP: &[&str] = &[
    "messages",
    "system",
    "inferenceConfig",
    "toolConfig",
    "guardrailConfig",
    "additionalModelRequestFields",
    "additionalModelResponseFieldPaths",
    "outputConfig",
    "performanceConfig",
    "serviceTier",
    "requestMetadata",
    "promptVariables",
];

/// `Ok` when Bedrock would take `body` for `model`; else the message of its 400.
pub(crate) fn validate(model: &str, body: &Value) -> Result<(), String> {
    let top = object(body, "the request body")?;
    extraneous(top, TOP, "the top level")?;
    let messages = top
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or("A conversation must start with a user message. Try again with a conversation that starts with a user message.")?;
    if let Some(system) = top.get("system") {
        for (i, s) in system
            .as_array()
            .ok_or("system must be a list")?
            .iter()
            .enumerate()
        {
            let s = object(s, "system")?;
            extraneous(s, &["text", "cachePoint", "guardContent"], "system")?;
            if s.get("text")
                .and_then(Value::as_str)
                .is_some_and(|t| t.trim().is_empty())
            {
                return Err(format!(
                    "The text field in the SystemContentBlock object at system.{i} is blank. Add text to the text field, and try again."
                ));
            }
        }
    }
    let mut tool_blocks = false;
    let mut last_role = "";
    for (i, m) in messages.iter().enumerate() {
        let m = object(m, "a message")?;
        extraneous(m, &["role", "content"], &format!("messages.{i}"))?;
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        if !matches!(role, "user" | "assistant") {
            return Err(format!(
                "Value '{role}' at 'messages.{}.member.role' failed to satisfy constraint: Member must satisfy enum value set: [user, assistant]",
                i + 1
            ));
        }
        if i == 0 && role != "user" {
            return Err("A conversation must start with a user message. Try again with a conversation that starts with a user message.".into());
        }
        if role == last_role {
            return Err("A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.".into());
        }
        last_role = role;
        let content = m
            .get("content")
            .and_then(Value::as_array)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| format!("The content field in the Message object at messages.{i} is empty. Add a ContentBlock object to the content field and try again."))?;
        for (j, b) in content.iter().enumerate() {
            tool_blocks |= block(b, role, i, j)?;
        }
    }
    if tool_blocks && top.get("toolConfig").is_none() {
        return Err("The toolConfig field must be defined when using toolUse and toolResult content blocks.".into());
    }
    if let Some(tc) = top.get("toolConfig") {
        tool_config(tc)?;
    }
    let inference = match top.get("inferenceConfig") {
        Some(c) => {
            let c = object(c, "inferenceConfig")?;
            extraneous(
                c,
                &["maxTokens", "temperature", "topP", "stopSequences"],
                "inferenceConfig",
            )?;
            for k in ["temperature", "topP"] {
                if let Some(v) = c.get(k) {
                    let x = v.as_f64().ok_or(format!("{k} must be a number"))?;
                    if !(0.0..=1.0).contains(&x) {
                        return Err(format!(
                            "1 validation error detected: Value '{x}' at 'inferenceConfig.{k}' failed to satisfy constraint: Member must have value less than or equal to 1"
                        ));
                    }
                }
            }
            if c.get("maxTokens")
                .is_some_and(|m| m.as_u64().is_none_or(|m| m < 1))
            {
                return Err("1 validation error detected: Value at 'inferenceConfig.maxTokens' failed to satisfy constraint: Member must have value greater than or equal to 1".into());
            }
            if c.contains_key("temperature") && c.contains_key("topP") && model.contains("-4-5") {
                return Err("The model returned the following errors: `temperature` and `top_p` cannot both be specified for this model. Please use only one.".into());
            }
            Some(c)
        }
        None => None,
    };
    if let Some(thinking) = body.pointer("/additionalModelRequestFields/thinking") {
        let budget = thinking
            .get("budget_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if budget < 1024 {
            return Err("The model returned the following errors: thinking.enabled.budget_tokens: Input should be greater than or equal to 1024".into());
        }
        let max = inference
            .and_then(|c| c.get("maxTokens"))
            .and_then(Value::as_u64)
            .unwrap_or(4096);
        if budget >= max {
            return Err("The model returned the following errors: `max_tokens` must be greater than `thinking.budget_tokens`.".into());
        }
        if inference.is_some_and(|c| c.contains_key("temperature")) {
            return Err("The model returned the following errors: `temperature` may only be set to 1 when thinking is enabled.".into());
        }
    }
    Ok(())
}

/// One content block; `true` when it is a tool block.
fn block(b: &Value, role: &str, i: usize, j: usize) -> Result<bool, String> {
    let b = object(b, "a content block")?;
    let at = format!("messages.{i}.content.{j}");
    const KNOWN: &[&str] = &[
        "text",
        "image",
        "document",
        "toolUse",
        "toolResult",
        "reasoningContent",
        "cachePoint",
        "guardContent",
        "video",
    ];
    extraneous(b, KNOWN, &at)?;
    if b.len() != 1 {
        return Err(format!(
            "The ContentBlock object at {at} must set exactly one of its members."
        ));
    }
    let (key, v) = b.iter().next().expect("one member");
    match key.as_str() {
        "text" if v.as_str().is_none_or(|t| t.trim().is_empty()) => {
            return Err(format!(
                "The text field in the ContentBlock object at {at} is blank. Add text to the text field, and try again."
            ));
        }
        "image" => {
            let img = object(v, "image")?;
            extraneous(img, &["format", "source"], &at)?;
            let format = img.get("format").and_then(Value::as_str).unwrap_or("");
            if !matches!(format, "png" | "jpeg" | "gif" | "webp") {
                return Err(format!(
                    "1 validation error detected: Value '{format}' at '{at}.member.image.format' failed to satisfy constraint: Member must satisfy enum value set: [png, jpeg, gif, webp]"
                ));
            }
            let bytes = v
                .pointer("/source/bytes")
                .and_then(Value::as_str)
                .unwrap_or("");
            if bytes.is_empty() || base64_error(bytes).is_some() {
                return Err(format!("Invalid base64 in the image bytes at {at}."));
            }
        }
        "toolUse" => {
            let t = object(v, "toolUse")?;
            extraneous(t, &["toolUseId", "name", "input", "type"], &at)?;
            if role != "assistant"
                || t.get("toolUseId").and_then(Value::as_str).is_none()
                || !t.get("input").is_some_and(Value::is_object)
            {
                return Err(format!(
                    "The toolUse block at {at} needs a toolUseId, a name and an input object, in an assistant message."
                ));
            }
            return Ok(true);
        }
        "toolResult" => {
            let t = object(v, "toolResult")?;
            extraneous(t, &["toolUseId", "content", "status", "type"], &at)?;
            let content = t
                .get("content")
                .and_then(Value::as_array)
                .ok_or(format!("toolResult at {at} needs content"))?;
            for (k, c) in content.iter().enumerate() {
                let c = object(c, "toolResult content")?;
                extraneous(c, &["text", "json", "image", "document"], &at)?;
                if c.get("text")
                    .is_some_and(|t| t.as_str().is_none_or(|t| t.trim().is_empty()))
                {
                    return Err(format!(
                        "The text field in the ToolResultContentBlock object at {at}.toolResult.content.{k} is blank. Add text to the text field, and try again."
                    ));
                }
            }
            if role != "user" {
                return Err(format!(
                    "The toolResult block at {at} must be in a user message."
                ));
            }
            return Ok(true);
        }
        "reasoningContent" => {
            let r = object(v, "reasoningContent")?;
            extraneous(r, &["reasoningText", "redactedContent"], &at)?;
            if let Some(t) = r.get("reasoningText") {
                extraneous(object(t, "reasoningText")?, &["text", "signature"], &at)?;
                if t.get("signature")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    return Err("The model returned the following errors: messages.1.content.0.thinking.signature: Field required".into());
                }
            }
        }
        _ => {}
    }
    Ok(false)
}

fn tool_config(tc: &Value) -> Result<(), String> {
    let tc = object(tc, "toolConfig")?;
    extraneous(tc, &["tools", "toolChoice"], "toolConfig")?;
    let tools = tc.get("tools").and_then(Value::as_array).filter(|t| !t.is_empty()).ok_or("1 validation error detected: Value '[]' at 'toolConfig.tools' failed to satisfy constraint: Member must have length greater than or equal to 1")?;
    let mut names = Vec::new();
    for t in tools {
        let t = object(t, "a tool")?;
        if let Some(name) = t
            .get("toolSpec")
            .and_then(|s| s.get("name"))
            .and_then(Value::as_str)
        {
            if names.contains(&name) {
                return Err(
                    "The model returned the following errors: tools: Tool names must be unique."
                        .into(),
                );
            }
            names.push(name);
        }
        extraneous(
            t,
            &["toolSpec", "cachePoint", "systemTool"],
            "toolConfig.tools",
        )?;
        if let Some(spec) = t.get("toolSpec") {
            let spec = object(spec, "toolSpec")?;
            extraneous(
                spec,
                &["name", "description", "inputSchema", "strict"],
                "toolSpec",
            )?;
            if spec
                .get("inputSchema")
                .and_then(|s| s.get("json"))
                .is_none()
            {
                return Err("toolSpec.inputSchema.json is required".into());
            }
        }
    }
    if let Some(choice) = tc.get("toolChoice") {
        let c = object(choice, "toolChoice")?;
        extraneous(c, &["auto", "any", "tool"], "toolConfig.toolChoice")?;
        if c.len() != 1 {
            return Err("toolChoice must set exactly one of auto, any, tool".into());
        }
    }
    Ok(())
}
