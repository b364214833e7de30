//! A fake Vertex AI (`shared/reference/clouds.md` §8-9): `POST /v1/projects/{project}/locations/
//! {location}/publishers/{google|anthropic}/models/{model}:{method}`. Every call needs
//! `Authorization: Bearer <token>` with a token the fake token endpoint issued and nobody revoked
//! ([`GoogleTokens`]); otherwise 401 `UNAUTHENTICATED` in Google's envelope. No API key is taken.
//!
//! The Google publisher (`:generateContent`, `:streamGenerateContent`) answers as the Gemini fake
//! does (same triggers), and also refuses a `contents` entry without a `role`, as Vertex does.
//! The Anthropic publisher (`:rawPredict`, `:streamRawPredict`) wants the Messages body without
//! `model` and with `anthropic_version: "vertex-2023-10-16"` (or a dated version) in it, then
//! answers as the Anthropic fake does (same triggers), model from the URL.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::common::{ALNUM, Ids};
use crate::gemini::{error_with, generate, parse};
use crate::google_token::GoogleTokens;
use crate::reply::Reply;
use crate::server::{FakeUpstream, Handler, Recorded};

impl FakeUpstream {
    /// The fake Google token endpoint (`POST /token`) of `tokens`.
    pub async fn google_token(tokens: &GoogleTokens) -> FakeUpstream {
        Self::bind(([127, 0, 0, 1], 0).into(), tokens.handler())
            .await
            .expect("bind 127.0.0.1:0")
    }

    /// The fake Vertex AI, accepting the tokens of `tokens`.
    pub async fn vertex(tokens: &GoogleTokens) -> FakeUpstream {
        Self::bind(([127, 0, 0, 1], 0).into(), tokens.vertex_handler())
            .await
            .expect("bind 127.0.0.1:0")
    }
}

impl GoogleTokens {
    /// Vertex AI and its token endpoint (`/token`) on one server, for script-driven tests;
    /// `GET /__key_file` answers a TEST key file whose `token_uri` is this server's `/token`.
    pub fn combined_handler(&self) -> Handler {
        let (token, vertex) = (self.handler(), self.vertex_handler());
        Arc::new(move |req: &Recorded| match req.path_only() {
            "/token" => token(req),
            "/__key_file" => {
                let uri = format!("http://{}/token", req.header("host").unwrap_or_default());
                Reply::raw(200, "application/json", GoogleTokens::key_file(&uri))
            }
            _ => vertex(req),
        })
    }

    /// The Vertex AI fake's handler, accepting the tokens this endpoint issued.
    pub fn vertex_handler(&self) -> Handler {
        let tokens = self.clone();
        let ids = Arc::new(Ids::default());
        Arc::new(move |req: &Recorded| answer(req, &tokens, &ids))
    }
}

fn error_info(reason: &str) -> Value {
    json!([{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
            "domain": "googleapis.com",
            "metadata": {"service": "aiplatform.googleapis.com", "method": "google.cloud.aiplatform.v1.PredictionService.GenerateContent"}}])
}

fn answer(req: &Recorded, tokens: &GoogleTokens, ids: &Ids) -> Reply {
    let bearer = req
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match bearer {
        None => {
            return error_with(
                401,
                "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
                Some(error_info("CREDENTIALS_MISSING")),
            );
        }
        Some(t) if !tokens.is_valid(t) => {
            return error_with(
                401,
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
                Some(error_info("ACCESS_TOKEN_EXPIRED")),
            );
        }
        Some(_) => {}
    }
    let path = req.path_only();
    let not_found = || {
        error_with(
            404,
            &format!("The requested URL {path} was not found."),
            None,
        )
    };
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let [
        "v1",
        "projects",
        project,
        "locations",
        location,
        "publishers",
        publisher,
        "models",
        rest,
    ] = segments.as_slice()
    else {
        return not_found();
    };
    let Some((model, method)) = rest.rsplit_once(':') else {
        return not_found();
    };
    if project.is_empty() || location.is_empty() || model.is_empty() || req.method != "POST" {
        return not_found();
    }
    match (*publisher, method) {
        ("google", "generateContent" | "streamGenerateContent") => {
            let body = match parse(req) {
                Ok(b) => b,
                Err(reply) => return reply,
            };
            let roleless = body
                .get("contents")
                .and_then(Value::as_array)
                .is_some_and(|c| c.iter().any(|e| e.get("role").is_none()));
            if model == "missing-model" {
                let name = format!(
                    "projects/{project}/locations/{location}/publishers/google/models/{model}"
                );
                return error_with(
                    404,
                    &format!(
                        "Publisher Model `{name}` was not found or your project does not have access to it."
                    ),
                    None,
                );
            }
            if roleless {
                return error_with(400, "Please use a valid role: user, model.", None);
            }
            generate(req, &body, model, method == "streamGenerateContent", ids)
        }
        ("anthropic", "rawPredict" | "streamRawPredict") => claude(req, model, ids),
        _ => not_found(),
    }
}

fn claude(req: &Recorded, model: &str, ids: &Ids) -> Reply {
    let rid = format!("req_vrtx_{}", ids.next(ALNUM, 20));
    let invalid = |m: &str| crate::anthropic::error(400, "invalid_request_error", m, &rid);
    let Value::Object(mut body) = req.body.clone() else {
        return invalid("There was an error parsing the body of your request");
    };
    if body.contains_key("model") {
        return invalid("model: Extra inputs are not permitted");
    }
    match body
        .remove("anthropic_version")
        .as_ref()
        .and_then(Value::as_str)
    {
        Some("vertex-2023-10-16") => {}
        Some(v) if is_date(v) => {}
        Some(v) => return invalid(&format!("anthropic_version: invalid version '{v}'")),
        None => return invalid("anthropic_version: Field required"),
    }
    body.insert("model".into(), Value::String(model.to_string()));
    crate::anthropic::messages(
        &Value::Object(body),
        ids,
        &rid,
        req.header("anthropic-beta").is_some(),
    )
    .header("request-id", rid.clone())
}

/// `YYYY-MM-DD`.
fn is_date(v: &str) -> bool {
    v.len() == 10
        && v.char_indices().all(|(i, c)| {
            if i == 4 || i == 7 {
                c == '-'
            } else {
                c.is_ascii_digit()
            }
        })
}
