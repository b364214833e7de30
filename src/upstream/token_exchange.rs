//! One token exchange (RFC 7523 §2.1): a JWT signed with the account's key (RS256) sent to
//! its `token_uri` as `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`, answered with
//! `{"access_token", "expires_in", "token_type"}` or `{"error", "error_description"}`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{Method, Request};
use http_body_util::Full;
use jsonwebtoken::{Algorithm, Header};
use serde_json::{Value, json};

use crate::mapping::auth::{ASSERTION_LIFETIME_S, AccountKey};
use crate::upstream::read_body;
use crate::upstream::token::{Token, TokenSource};

/// The most a token answer may hold.
const MAX_TOKEN_ANSWER: usize = 64 * 1024;
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

impl TokenSource {
    /// Signs an assertion and exchanges it. The error says what went wrong, never a secret.
    pub(super) async fn exchange(&self, key: &AccountKey) -> Result<Token, String> {
        let now_ms = self.now_ms();
        let now_s = now_ms.div_euclid(1000);
        let claims = json!({
            "iss": key.email,
            "scope": self.account.scopes,
            "aud": key.token_uri,
            "iat": now_s,
            "exp": now_s + ASSERTION_LIFETIME_S,
        });
        let mut header = Header::new(Algorithm::RS256);
        header.kid = key.key_id.clone();
        let assertion = jsonwebtoken::encode(&header, &claims, &key.signing_key)
            .map_err(|e| format!("cannot sign the token request: {e}"))?;
        let form = format!(
            "grant_type={}&assertion={assertion}",
            form_encode(GRANT_TYPE)
        );
        let request = Request::builder()
            .method(Method::POST)
            .uri(&key.token_uri)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body(Full::new(Bytes::from(form)))
            .map_err(|_| format!("invalid token_uri in {}", key.file.display()))?;
        let host = request.uri().host().unwrap_or_default().to_string();
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| format!("cannot reach the token endpoint ({host}): {}", chain(&e)))?;
        let status = response.status();
        let body = read_body(response.into_body(), self.account.timeout, MAX_TOKEN_ANSWER)
            .await
            .map_err(|e| format!("reading the token endpoint's answer failed: {e}"))?;
        let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if !status.is_success() {
            let text = |k: &str| parsed.get(k).and_then(Value::as_str).unwrap_or_default();
            return Err(format!(
                "the token endpoint ({host}) answered {}: {} {}",
                status.as_u16(),
                text("error"),
                text("error_description")
            )
            .trim_end()
            .to_string());
        }
        let value = parsed
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                format!("the token endpoint ({host}) answered without an access_token")
            })?;
        let lifetime = parsed
            .get("expires_in")
            .and_then(Value::as_i64)
            .filter(|s| *s > 0)
            .unwrap_or(ASSERTION_LIFETIME_S);
        Ok(Token {
            value: Arc::from(value),
            expires_ms: now_ms + Duration::from_secs(lifetime as u64).as_millis() as i64,
        })
    }
}

/// `application/x-www-form-urlencoded` of a value (RFC 3986 unreserved characters pass).
fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// An error and its sources, joined.
fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    msg
}
