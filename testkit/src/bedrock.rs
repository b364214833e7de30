//! The fake Bedrock Runtime Converse API (`POST /model/{modelId}/converse` and
//! `/converse-stream`, `shared/reference/clouds.md` §3-6): every request's Signature Version 4
//! is verified with the secret the fake knows ([`crate::sigv4`], independent of Rosetta's
//! signer), or its bearer API key compared; errors in Bedrock's shape (`{"message"}` plus
//! `x-amzn-ErrorType`); streams as event-stream frames with valid CRCs.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::bedrock_plan::Plan;
use crate::bedrock_validate::validate;
use crate::common::Ids;
use crate::reply::Reply;
use crate::server::{Handler, Recorded};
use crate::sigv4::{Received, verify};

/// What the Bedrock fake accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BedrockAuth {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// A Bedrock API key accepted as `Authorization: Bearer <key>`; none accepts no bearer.
    pub bearer_token: Option<String>,
    /// The server's clock for the signature's age (Unix ms); the system clock when `None`.
    pub now_ms: Option<i64>,
}

pub(crate) fn handler(auth: BedrockAuth) -> Handler {
    let ids = Arc::new(Ids::default());
    Arc::new(move |req: &Recorded| {
        let rid = format!(
            "{}-{}-4{}-a{}-{}",
            ids.next(crate::common::LOWER_ALNUM, 8),
            ids.next(crate::common::LOWER_ALNUM, 4),
            ids.next(crate::common::LOWER_ALNUM, 3),
            ids.next(crate::common::LOWER_ALNUM, 3),
            ids.next(crate::common::LOWER_ALNUM, 12)
        );
        answer(req, &auth, &ids).header("x-amzn-requestid", rid)
    })
}

/// An error as Bedrock answers it: `{"message"}` and the code in `x-amzn-ErrorType`.
pub(crate) fn error(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(status, json!({"message": message})).header(
        "x-amzn-errortype",
        format!("{code}:http://internal.amazon.com/coral/com.amazon.bedrock/"),
    )
}

fn authenticate(req: &Recorded, auth: &BedrockAuth) -> Result<(), Reply> {
    let given = req.header("authorization").unwrap_or("");
    if let Some(key) = given.strip_prefix("Bearer ") {
        return match &auth.bearer_token {
            Some(want) if want == key => Ok(()),
            _ => Err(error(
                403,
                "AccessDeniedException",
                "Authentication failed: Please make sure your API Key is valid.",
            )),
        };
    }
    let now = auth.now_ms.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    });
    let received = Received {
        method: &req.method,
        path: &req.path,
        headers: &req.headers,
        body: req.raw_body.as_bytes(),
    };
    verify(
        &received,
        &auth.access_key_id,
        &auth.secret_access_key,
        "bedrock",
        now,
    )
    .map_err(|message| {
        let code = if message.starts_with("The security token") {
            "UnrecognizedClientException"
        } else {
            "InvalidSignatureException"
        };
        error(403, code, &message)
    })
}

/// The model id of a path `/model/{id}/{operation}` (the id percent-decoded) and the operation.
fn route(path: &str) -> Option<(String, &str)> {
    let rest = path.strip_prefix("/model/")?;
    let (id, op) = rest.rsplit_once('/')?;
    if id.contains('/') {
        return None; // an ARN's `/` must come encoded
    }
    let mut out = Vec::new();
    let b = id.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match (b[i], b.get(i + 1..i + 3)) {
            (b'%', Some(h)) => {
                let v = u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()?;
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some((String::from_utf8(out).ok()?, op))
}

fn answer(req: &Recorded, auth: &BedrockAuth, ids: &Ids) -> Reply {
    let Some((model, op)) = route(req.path_only()) else {
        return error(
            404,
            "UnknownOperationException",
            "UnknownOperationException",
        );
    };
    if req.method != "POST" {
        return error(
            404,
            "UnknownOperationException",
            "UnknownOperationException",
        );
    }
    if let Err(reply) = authenticate(req, auth) {
        return reply;
    }
    let stream = match op {
        "converse" => false,
        "converse-stream" => true,
        _ => {
            return error(
                404,
                "UnknownOperationException",
                "UnknownOperationException",
            );
        }
    };
    if model == "missing-model" {
        return error(
            404,
            "ResourceNotFoundException",
            "The provided model identifier is invalid.",
        );
    }
    let body: Value = match serde_json::from_str(&req.raw_body) {
        Ok(v) => v,
        Err(_) => {
            return error(
                400,
                "SerializationException",
                "Could not parse the request body as JSON",
            );
        }
    };
    if let Err(message) = validate(&model, &body) {
        return error(400, "ValidationException", &message);
    }
    let plan = Plan::new(&body, ids);
    let t = &plan.triggers;
    match t.fail(&[429, 500, 400]) {
        Some(429) => {
            return error(
                429,
                "ThrottlingException",
                "Too many requests, please wait before trying again.",
            );
        }
        Some(500) => {
            return error(
                500,
                "InternalServerException",
                "The server encountered an internal error.",
            );
        }
        Some(_) => return error(400, "ValidationException", "Simulated failure (FAIL 400)"),
        None => {}
    }
    if t.has("HANG") {
        return Reply::hang();
    }
    if t.garbage() {
        return if stream {
            Reply::binary(
                200,
                "application/vnd.amazon.eventstream",
                [b"this is not an event stream{".to_vec()],
            )
        } else {
            Reply::raw(200, "application/json", "this is not json{")
        };
    }
    if stream {
        plan.stream()
    } else {
        Reply::json(200, plan.response())
    }
}
