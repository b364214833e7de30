//! Request signing (`upstream.sign`): the last step before a request leaves, after every
//! transform, so what is signed is exactly the method, path, query, headers and body sent.
//!
//! Two kinds: a bearer token (`Authorization: Bearer <token>`), or Signature Version 4
//! computed by the `sigv4` crate (never by hand here) from a key pair, an optional session
//! token, a region and a signing name. Each attempt is signed anew with the time of the
//! injected clock ([`crate::ops::clock::Clock`]).

use std::fmt;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{HeaderValue, Request};
use http_body_util::Full;
use sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use sigv4::sign::v4;
use sigv4_credentials::Credentials;
use sigv4_identity::client::identity::Identity;

use crate::error::ProxyError;
use crate::ops::trace::full_bytes;

/// How a mapping's upstream requests are authenticated beyond their headers.
#[derive(Default)]
pub enum Signing {
    /// Sent as rendered.
    #[default]
    None,
    /// `Authorization: Bearer <token>` (marked sensitive).
    Bearer(HeaderValue),
    /// Signature Version 4.
    SigV4(SigV4),
}

/// What a Signature Version 4 needs besides the request.
pub struct SigV4 {
    /// The signing name of the service (the credential scope's third part).
    pub service: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Temporary credentials' token, sent (and signed) as `x-amz-security-token`.
    pub session_token: Option<String>,
}

impl fmt::Debug for Signing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the credentials.
        match self {
            Signing::None => f.write_str("None"),
            Signing::Bearer(_) => f.write_str("Bearer"),
            Signing::SigV4(s) => write!(f, "SigV4({}/{})", s.service, s.region),
        }
    }
}

impl Signing {
    /// The kind, as `/health` and logs name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Signing::None => "none",
            Signing::Bearer(_) => "bearer",
            Signing::SigV4(_) => "sigv4",
        }
    }

    /// Signs `req` as it will be sent, at `now_ms` (Unix milliseconds).
    pub fn apply(&self, req: &mut Request<Full<Bytes>>, now_ms: i64) -> Result<(), ProxyError> {
        match self {
            Signing::None => Ok(()),
            Signing::Bearer(token) => {
                req.headers_mut().insert(AUTHORIZATION, token.clone());
                Ok(())
            }
            Signing::SigV4(key) => sigv4(key, req, now_ms),
        }
    }
}

fn sigv4(key: &SigV4, req: &mut Request<Full<Bytes>>, now_ms: i64) -> Result<(), ProxyError> {
    let failed = |e: &dyn fmt::Display| ProxyError::Transform {
        message: format!("cannot sign the upstream request: {e}"),
    };
    // Whatever authorization a header gave is replaced by the signature.
    req.headers_mut().remove(AUTHORIZATION);
    let body = full_bytes(req.body());
    let uri = req.uri().to_string();
    let headers: Vec<(&str, &str)> = req
        .headers()
        .iter()
        .filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?)))
        .collect();
    let signable = SignableRequest::new(
        req.method().as_str(),
        uri.as_str(),
        headers.into_iter(),
        SignableBody::Bytes(&body),
    )
    .map_err(|e| failed(&e))?;
    let identity: Identity = Credentials::new(
        &key.access_key_id,
        &key.secret_access_key,
        key.session_token.clone(),
        None,
        "mapping",
    )
    .into();
    let time = UNIX_EPOCH + Duration::from_millis(u64::try_from(now_ms).unwrap_or(0));
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&key.region)
        .name(&key.service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| failed(&e))?
        .into();
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| failed(&e))?
        .into_parts();
    instructions.apply_to_request_http1x(req);
    for name in [AUTHORIZATION.as_str(), "x-amz-security-token"] {
        if let Some(v) = req.headers_mut().get_mut(name) {
            v.set_sensitive(true);
        }
    }
    Ok(())
}
