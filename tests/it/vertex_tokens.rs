//! Service-account tokens (`upstream.auth.service_account`) against the fake Google token
//! endpoint: one exchange under 50 concurrent calls, refresh before expiry by the pinned clock,
//! a revoked token re-minted once, a failing or silent endpoint answered quickly and reported in
//! `/health`, a wrong key, and an unset key file.

use std::time::{Duration, Instant};

use rosetta_testkit::{GoogleTokens, TEST_OTHER_PRIVATE_KEY};

use super::support::{Proxy, chat, post};
use super::vertex::{Google, health_of, mappings_with};

#[tokio::test]
async fn fifty_concurrent_calls_share_one_exchange() {
    let g = Google::start().await;
    // The endpoint answers slowly, so the calls all find no token and pile up behind one refresh.
    g.tokens.set_delay(Duration::from_millis(300));
    let url = g.chat_url("vertex");
    let calls: Vec<_> = (0..50)
        .map(|i| {
            let url = url.clone();
            tokio::spawn(
                async move { post(&url, &chat("gemini-2.5-flash", &format!("n{i}"))).await },
            )
        })
        .collect();
    for c in calls {
        let r = c.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text);
    }
    assert_eq!(g.tokens.exchanges(), 1, "exactly one token exchange");
    assert_eq!(g.vertex.requests().len(), 50);
    let (_, m) = health_of(&g.proxy, "vertex").await;
    assert_eq!(m["auth"]["state"], "ok", "{m}");
    assert_eq!(m["auth"]["exchanges"], 1, "{m}");
}

#[tokio::test]
async fn a_token_near_its_expiry_is_replaced_before_use() {
    let g = Google::start().await;
    let url = g.chat_url("vertex");
    assert_eq!(post(&url, &chat("gemini-2.5-flash", "a")).await.status, 200);
    let first = g.last_bearer();
    // expires_in 3599 s; replaced 225 s before: at 3373 s it is still good...
    g.clock.advance(3_373_000);
    assert_eq!(post(&url, &chat("gemini-2.5-flash", "b")).await.status, 200);
    assert_eq!(g.tokens.exchanges(), 1);
    assert_eq!(g.last_bearer(), first);
    // ...and at 3375 s (224 s before its expiry) a new one is minted before the call.
    g.clock.advance(2_000);
    assert_eq!(post(&url, &chat("gemini-2.5-flash", "c")).await.status, 200);
    assert_eq!(g.tokens.exchanges(), 2);
    assert_ne!(g.last_bearer(), first);
    // The Vertex fake saw no 401: the old token was never sent late.
    assert!(
        g.vertex
            .requests()
            .iter()
            .all(|r| r.header("authorization").is_some())
    );
}

#[tokio::test]
async fn a_revoked_token_is_minted_anew_and_the_call_retried_once() {
    let g = Google::start().await;
    let url = g.chat_url("vertex-anthropic");
    let model = "claude-sonnet-4-5@20250929";
    assert_eq!(post(&url, &chat(model, "a")).await.status, 200);
    let first = g.last_bearer();
    g.tokens.revoke_all();
    let r = post(&url, &chat(model, "b")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(g.tokens.exchanges(), 2, "one new token");
    let reqs = g.vertex.requests();
    assert_eq!(reqs.len(), 3, "the refused call and its one retry");
    assert_eq!(reqs[1].header("authorization").unwrap(), first);
    assert_ne!(reqs[2].header("authorization").unwrap(), first);
    // A new token refused too is not retried again: the 401 reaches the client.
    g.tokens.set_issue_revoked(true);
    g.tokens.revoke_all();
    let r = post(&url, &chat(model, "c")).await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(g.tokens.exchanges(), 3);
    assert_eq!(g.vertex.requests().len(), 5, "one retry, no more");
}

#[tokio::test]
async fn a_failing_token_endpoint_is_a_quick_502_and_reported_in_health() {
    let g = Google::start().await;
    g.tokens.set_failing(true);
    let started = Instant::now();
    let r = post(&g.chat_url("vertex"), &chat("gemini-2.5-flash", "Hi")).await;
    assert_eq!(r.status, 502, "{}", r.text);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let e = r.openai_error();
    assert_eq!(e["code"], "upstream_token_unavailable", "{e}");
    let m = e["message"].as_str().unwrap();
    assert!(
        m.contains("cannot authenticate to the upstream") && m.contains("500"),
        "{m}"
    );
    assert!(
        g.vertex.requests().is_empty(),
        "no call went out without a token"
    );
    let (h, m) = health_of(&g.proxy, "vertex").await;
    assert_eq!(h["status"], "degraded", "{h}");
    assert_eq!(m["auth"]["state"], "failing", "{m}");
    assert!(
        m["auth"]["last_error"]
            .as_str()
            .unwrap()
            .contains("internal_failure"),
        "{m}"
    );
    // Back up: the next call mints and succeeds, and health recovers.
    g.tokens.set_failing(false);
    let r = post(&g.chat_url("vertex"), &chat("gemini-2.5-flash", "Hi")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let (h, m) = health_of(&g.proxy, "vertex").await;
    assert_eq!(m["auth"]["state"], "ok", "{m}");
    assert_eq!(h["status"], "ok", "{h}");
}

#[tokio::test]
async fn a_silent_token_endpoint_times_out_and_waiters_share_the_failure() {
    let dir = mappings_with(|t| {
        t.replace(
            "      scopes: [https://www.googleapis.com/auth/cloud-platform]\n",
            "      scopes: [https://www.googleapis.com/auth/cloud-platform]\n      timeout: 400ms\n",
        )
    });
    let g = Google::start_in(&dir, None).await;
    g.tokens.set_hanging(true);
    let started = Instant::now();
    let url = g.chat_url("vertex");
    let calls: Vec<_> = (0..5)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { post(&url, &chat("gemini-2.5-flash", "Hi")).await })
        })
        .collect();
    for c in calls {
        let r = c.await.unwrap();
        assert_eq!(r.status, 502, "{}", r.text);
        assert!(r.text.contains("did not answer within"), "{}", r.text);
    }
    // One exchange's timeout, shared by the calls that waited for it (not 5 x 400 ms).
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_assertion_signed_with_another_key_is_refused() {
    let key = GoogleTokens::key_file_with("TOKEN_URI", TEST_OTHER_PRIVATE_KEY);
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
    let g = Google::start_in(&shipped, Some(key)).await;
    let r = post(&g.chat_url("vertex"), &chat("gemini-2.5-flash", "Hi")).await;
    assert_eq!(r.status, 502, "{}", r.text);
    assert!(r.text.contains("Invalid JWT Signature"), "{}", r.text);
    assert_eq!(g.tokens.refused(), 1);
    assert_eq!(g.tokens.exchanges(), 0);
}

#[tokio::test]
async fn an_unset_key_file_is_a_503_and_not_a_degraded_proxy() {
    let proxy = Proxy::start(&[("VERTEX_PROJECT", "p".to_string())]).await;
    let r = post(
        &proxy.url("/vertex/v1/chat/completions"),
        &chat("gemini-2.5-flash", "Hi"),
    )
    .await;
    assert_eq!(r.status, 503, "{}", r.text);
    let e = r.openai_error();
    assert_eq!(e["code"], "upstream_credentials_missing", "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("GOOGLE_APPLICATION_CREDENTIALS is not set"),
        "{e}"
    );
    let (h, m) = health_of(&proxy, "vertex").await;
    assert_eq!(m["auth"]["state"], "not_configured", "{m}");
    assert_eq!(h["status"], "ok", "{h}");
}
