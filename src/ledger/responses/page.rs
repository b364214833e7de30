//! One page of a stored response's input items: the list object of
//! `GET /v1/responses/{id}/input_items` (`{"object": "list", "data", "first_id", "last_id",
//! "has_more"}`), cut from the items as they were given.

use serde_json::{Value, json};

/// Items per page when the request names no `limit`.
pub const DEFAULT_LIMIT: usize = 20;
/// The most items per page (`limit` is 1 to 100).
pub const MAX_LIMIT: usize = 100;

/// The page of `items` (in the order the request gave them) after the item whose `id` is
/// `after`, at most `limit` of them (clamped to 1..=[`MAX_LIMIT`]), newest first when
/// `order_desc` (OpenAI's default). `first_id` and `last_id` are the page's first and last
/// items' ids (`null` for an empty page, or an item without one); `has_more` tells whether
/// items follow the page. An `after` that names no item gives an empty page: nothing follows
/// an unknown cursor.
pub fn page_items(items: &[Value], after: Option<&str>, limit: usize, order_desc: bool) -> Value {
    let limit = limit.clamp(1, MAX_LIMIT);
    let ordered: Vec<&Value> = if order_desc {
        items.iter().rev().collect()
    } else {
        items.iter().collect()
    };
    let start = match after {
        None => 0,
        Some(after) => ordered
            .iter()
            .position(|item| id_of(item) == Some(after))
            .map_or(ordered.len(), |at| at + 1),
    };
    let rest = &ordered[start..];
    let page = &rest[..rest.len().min(limit)];
    json!({
        "object": "list",
        "data": page,
        "first_id": page.first().and_then(|item| id_of(item)),
        "last_id": page.last().and_then(|item| id_of(item)),
        "has_more": rest.len() > page.len(),
    })
}

fn id_of(item: &Value) -> Option<&str> {
    item.get("id").and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Items `msg_1` .. `msg_n`, oldest first.
    fn items(n: usize) -> Vec<Value> {
        (1..=n)
            .map(|i| json!({"id": format!("msg_{i}"), "type": "message", "role": "user"}))
            .collect()
    }

    /// The ids of a page's data, then its first_id, last_id and has_more.
    fn shape(page: &Value) -> (Vec<&str>, Value, Value, bool) {
        let ids = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap())
            .collect();
        let more = page["has_more"].as_bool().unwrap();
        (ids, page["first_id"].clone(), page["last_id"].clone(), more)
    }

    #[test]
    fn the_list_object_has_the_documented_shape() {
        let page = page_items(&items(1), None, 20, true);
        assert_eq!(
            page,
            json!({
                "object": "list",
                "data": [{"id": "msg_1", "type": "message", "role": "user"}],
                "first_id": "msg_1",
                "last_id": "msg_1",
                "has_more": false,
            })
        );
    }

    #[test]
    fn descending_is_newest_first_and_ascending_as_given() {
        let all = items(3);
        let desc = page_items(&all, None, 20, true);
        assert_eq!(
            shape(&desc),
            (
                vec!["msg_3", "msg_2", "msg_1"],
                json!("msg_3"),
                json!("msg_1"),
                false
            )
        );
        let asc = page_items(&all, None, 20, false);
        assert_eq!(
            shape(&asc),
            (
                vec!["msg_1", "msg_2", "msg_3"],
                json!("msg_1"),
                json!("msg_3"),
                false
            )
        );
    }

    #[test]
    fn limit_cuts_the_page_and_has_more_tells() {
        let all = items(5);
        let page = page_items(&all, None, 2, false);
        assert_eq!(
            shape(&page),
            (vec!["msg_1", "msg_2"], json!("msg_1"), json!("msg_2"), true)
        );
        // Exactly the rest: no more after it.
        let page = page_items(&all, Some("msg_3"), 2, false);
        assert_eq!(shape(&page).0, vec!["msg_4", "msg_5"]);
        assert!(!shape(&page).3);
    }

    #[test]
    fn after_continues_in_the_chosen_order() {
        let all = items(5);
        let page = page_items(&all, Some("msg_2"), 2, false);
        assert_eq!(
            shape(&page),
            (vec!["msg_3", "msg_4"], json!("msg_3"), json!("msg_4"), true)
        );
        let page = page_items(&all, Some("msg_4"), 2, true);
        assert_eq!(
            shape(&page),
            (vec!["msg_3", "msg_2"], json!("msg_3"), json!("msg_2"), true)
        );
        // Paging as the SDK does, with `after` = the last id, visits each item once.
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = page_items(&all, after.as_deref(), 2, true);
            let (ids, _, last, more) = shape(&page);
            seen.extend(ids.iter().map(|s| s.to_string()));
            if !more {
                break;
            }
            after = last.as_str().map(String::from);
        }
        assert_eq!(seen, ["msg_5", "msg_4", "msg_3", "msg_2", "msg_1"]);
    }

    #[test]
    fn the_last_item_or_an_unknown_cursor_gives_an_empty_page() {
        let all = items(3);
        for (after, desc) in [("msg_3", false), ("msg_1", true), ("msg_9", false)] {
            let page = page_items(&all, Some(after), 20, desc);
            assert_eq!(
                shape(&page),
                (vec![], Value::Null, Value::Null, false),
                "{after}"
            );
        }
        let page = page_items(&[], None, 20, true);
        assert_eq!(shape(&page), (vec![], Value::Null, Value::Null, false));
        assert_eq!(page["object"], "list");
    }

    #[test]
    fn limit_is_clamped_to_one_through_a_hundred() {
        let all = items(150);
        assert_eq!(shape(&page_items(&all, None, 0, false)).0, vec!["msg_1"]);
        let page = page_items(&all, None, 1_000, false);
        assert_eq!(page["data"].as_array().unwrap().len(), MAX_LIMIT);
        assert_eq!(page["last_id"], "msg_100");
        assert!(shape(&page).3);
        let page = page_items(&all, None, DEFAULT_LIMIT, true);
        assert_eq!(page["data"].as_array().unwrap().len(), 20);
        assert_eq!(page["first_id"], "msg_150");
    }
}
