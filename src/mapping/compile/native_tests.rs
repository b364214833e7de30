//! `native_body`: the top-level edits of a native client's body, and where they are allowed.

use std::path::Path;

use http::HeaderMap;
use http_body_util::BodyExt;
use serde_json::{Value, json};

use super::super::compile_file;
use crate::mapping::{Mapping, Op};
use crate::upstream::build_request;

fn compiled(route: &str) -> Result<Mapping, String> {
    let src = format!("upstream:\n  base_url: http://x\nroutes:\n  chat:\n{route}");
    compile_file(Path::new("m.yaml"), &src, &|_| None).map_err(|e| format!("{e:?}"))
}

async fn sent(m: &Mapping, request: &Value, as_is: bool) -> Value {
    let route = m.route(Op::Chat).unwrap();
    let endpoint = &m.upstream.endpoints[0];
    let req = build_request(m, route, request, &HeaderMap::new(), false, endpoint, as_is).unwrap();
    let bytes = req.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn a_native_body_is_the_request_with_its_fields_set_or_taken_out() {
    let m = compiled(
        "    path: /p\n    native: [messages]\n    native_body:\n      model: null\n      version: {$const: v-1}\n      echo: $.metadata.user_id\n      gone: $.nowhere\n    request: {translated: true}\n    response: {}\n",
    )
    .unwrap();
    let request = json!({"model": "m", "max_tokens": 5, "gone": 1, "metadata": {"user_id": "u"}});
    assert_eq!(
        sent(&m, &request, true).await,
        json!({"max_tokens": 5, "version": "v-1", "echo": "u", "metadata": {"user_id": "u"}})
    );
    // Translated clients get the route's `request` template, untouched by `native_body`.
    assert_eq!(sent(&m, &request, false).await, json!({"translated": true}));
}

#[test]
fn a_native_body_needs_a_native_dialect() {
    let err =
        compiled("    path: /p\n    native_body: {model: null}\n    response: {}\n").unwrap_err();
    assert!(
        err.contains("native_body needs a client dialect in `native`"),
        "{err}"
    );
}
