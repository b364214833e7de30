//! A whole answer as one Responses `response` object.

use serde_json::Value;

use super::echo::Echo;
use super::output::{Item, finished, item_status, status_of};
use crate::dialect::answer::Answer;

/// The `response` for a whole answer: its output items in OpenAI's order (reasoning, then the
/// message, then one `function_call` per tool call), the status its finish gives
/// (`incomplete` with a reason for `length` and `content_filter`), and the usage.
pub fn render(answer: &Answer, echo: &Echo) -> Value {
    let mut items = Vec::new();
    if answer.reasoning.is_some() || answer.reasoning_signature.is_some() {
        items.push(Item::reasoning(
            answer.reasoning.clone().unwrap_or_default(),
            answer.reasoning_signature.clone(),
            echo.wants_summary(),
        ));
    }
    if let Some(text) = &answer.text {
        items.push(Item::message(text.clone()));
    }
    for call in &answer.tool_calls {
        let mut item = Item::call(&items, call.id.as_deref(), &call.name);
        if let Item::Call { arguments, .. } = &mut item {
            arguments.clone_from(&call.arguments);
        }
        items.push(item);
    }
    let finish = answer.resolved_finish();
    let (status, _) = status_of(finish);
    let last = items.len().saturating_sub(1);
    let output = items
        .iter()
        .enumerate()
        .map(|(i, item)| item.done(item_status(status, i == last)))
        .collect();
    finished(echo, output, finish, &answer.usage)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::answer::{Finish, ToolCall, Usage};
    use serde_json::json;

    fn echo() -> Echo {
        Echo::from_request(&json!({"model": "gpt-x", "instructions": "Be brief."}), 7)
    }

    fn answer() -> Answer {
        Answer {
            text: Some("18 °C, cloudy.".into()),
            reasoning: Some("Look it up.".into()),
            reasoning_signature: Some("sig-1".into()),
            tool_calls: vec![
                ToolCall {
                    id: Some("toolu_a".into()),
                    name: "get_weather".into(),
                    arguments: Some("{\"city\":\"Paris\"}".into()),
                },
                ToolCall {
                    id: Some("toolu_a".into()),
                    name: "now".into(),
                    arguments: None,
                },
            ],
            finish: Some(Finish::Stop),
            usage: Usage {
                prompt_tokens: Some(21),
                completion_tokens: Some(9),
                cached_tokens: None,
                reasoning_tokens: Some(4),
            },
        }
    }

    #[test]
    fn a_whole_answer_is_reasoning_then_message_then_calls() {
        let echo = echo();
        let r = render(&answer(), &echo);
        assert_eq!(r["id"], json!(echo.id));
        assert_eq!(r["object"], "response");
        assert_eq!(r["status"], "completed");
        assert!(r["completed_at"].is_u64());
        assert_eq!(r["error"], Value::Null);
        assert_eq!(r["incomplete_details"], Value::Null);
        assert_eq!(r["instructions"], "Be brief.");
        assert_eq!(r["model"], "gpt-x");
        assert!(
            r.get("output_text").is_none(),
            "an SDK property, not a field"
        );
        let out = r["output"].as_array().unwrap();
        assert_eq!(out.len(), 4);
        let id = |i: usize, prefix: &str| {
            let id = out[i]["id"].as_str().unwrap();
            assert!(id.starts_with(prefix), "{id}");
        };
        id(0, "rs_");
        id(1, "msg_");
        id(2, "fc_");
        id(3, "fc_");
        assert_eq!(
            out[0],
            json!({"id": out[0]["id"], "type": "reasoning", "summary": [],
                   "content": [{"type": "reasoning_text", "text": "Look it up."}],
                   "encrypted_content": "sig-1"})
        );
        assert_eq!(
            out[1],
            json!({"id": out[1]["id"], "type": "message", "role": "assistant", "status": "completed",
                   "content": [{"type": "output_text", "text": "18 °C, cloudy.",
                                "annotations": [], "logprobs": []}]})
        );
        assert_eq!(
            out[2],
            json!({"id": out[2]["id"], "type": "function_call", "status": "completed",
                   "call_id": "toolu_a", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"})
        );
        // A repeated upstream id gets a fresh call_id; absent arguments are `{}`.
        let second = out[3]["call_id"].as_str().unwrap();
        assert!(
            second.starts_with("call_") && second.len() == 29,
            "{second}"
        );
        assert_eq!(out[3]["arguments"], "{}");
        assert_eq!(
            r["usage"],
            json!({"input_tokens": 21, "input_tokens_details": {"cached_tokens": 0},
                   "output_tokens": 9, "output_tokens_details": {"reasoning_tokens": 4},
                   "total_tokens": 30})
        );
    }

    #[test]
    fn length_and_content_filter_are_incomplete_with_the_last_item_incomplete() {
        for (finish, reason) in [
            (Finish::Length, "max_output_tokens"),
            (Finish::ContentFilter, "content_filter"),
        ] {
            let a = Answer {
                text: Some("One, two,".into()),
                finish: Some(finish),
                ..Answer::default()
            };
            let r = render(&a, &echo());
            assert_eq!(r["status"], "incomplete");
            assert_eq!(r["incomplete_details"], json!({"reason": reason}));
            assert_eq!(r["completed_at"], Value::Null);
            assert_eq!(r["output"][0]["status"], "incomplete");
        }
        let mut a = answer();
        a.finish = Some(Finish::Length);
        let r = render(&a, &echo());
        let statuses: Vec<&Value> = r["output"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| &i["status"])
            .collect();
        assert_eq!(
            statuses,
            [
                &Value::Null,
                &json!("completed"),
                &json!("completed"),
                &json!("incomplete")
            ]
        );
    }

    #[test]
    fn an_empty_answer_is_completed_with_no_output_and_zero_usage() {
        let r = render(&Answer::default(), &echo());
        assert_eq!(r["status"], "completed");
        assert_eq!(r["output"], json!([]));
        assert_eq!(r["usage"]["total_tokens"], 0);
        assert_eq!(r["usage"]["input_tokens_details"]["cached_tokens"], 0);
    }
}
