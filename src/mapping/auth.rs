//! `upstream.auth:`: credentials the proxy mints at run time, as opposed to the fixed
//! `upstream.headers`.
//!
//! `service_account` is an OAuth 2.0 service account (RFC 7523): a JSON key file holding
//! `client_email`, an RSA `private_key` (PEM) and the `token_uri` of its authorization server.
//! Rosetta signs a short JWT with the key (RS256), exchanges it at `token_uri` for an access
//! token, and sends that as `Authorization: Bearer ...` ([`crate::upstream::token`]). The key file
//! is read when the mappings load (at start and on every reload); its contents are never
//! logged or shown.

use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::EncodingKey;
use serde::Deserialize;

use crate::mapping::spec::Scalar;

/// `upstream.auth:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSpec {
    pub service_account: Option<ServiceAccountSpec>,
}

/// `upstream.auth.service_account:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccountSpec {
    /// The JSON key file; `${VAR}` allowed. Unset: calls fail with 503 until it is set.
    pub key_file: String,
    /// OAuth scopes asked for (at least one).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The longest a token exchange may take (default 10s).
    pub timeout: Option<Scalar>,
    /// How long before its expiry a token is replaced (default 3m45s).
    pub refresh_before: Option<Scalar>,
}

/// Default longest token exchange.
pub const DEFAULT_TOKEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Default margin before expiry at which a token is replaced (what common client libraries use).
pub const DEFAULT_REFRESH_BEFORE: Duration = Duration::from_secs(225);
/// The lifetime asked for in the signed assertion (the most RFC 7523 servers grant).
pub const ASSERTION_LIFETIME_S: i64 = 3600;

/// A compiled `service_account`.
pub struct ServiceAccount {
    /// The key, or why there is none (an unset variable): calls then fail with this reason.
    pub key: Result<AccountKey, String>,
    /// Space-separated, as the token request wants them.
    pub scopes: String,
    pub timeout: Duration,
    pub refresh_before: Duration,
}

/// What a service-account key file holds.
pub struct AccountKey {
    pub file: PathBuf,
    pub email: String,
    pub key_id: Option<String>,
    pub token_uri: String,
    pub signing_key: EncodingKey,
    /// A hash of the file's contents and the scopes: equal keys may share cached tokens.
    pub fingerprint: u64,
}

#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    client_email: Option<String>,
    private_key: Option<String>,
    private_key_id: Option<String>,
    token_uri: Option<String>,
}

/// Reads a key file. Errors name the file and the problem, never its contents.
pub fn read_key(file: PathBuf, scopes: &str) -> Result<AccountKey, String> {
    let text = std::fs::read_to_string(&file).map_err(|e| {
        format!(
            "cannot read the service-account key file {}: {e}",
            file.display()
        )
    })?;
    let bad = |why: &str| {
        format!(
            "{} is not a service-account key file: {why}",
            file.display()
        )
    };
    let parsed: KeyFile = serde_json::from_str(&text).map_err(|_| bad("not a JSON object"))?;
    if let Some(kind) = parsed.kind.as_deref()
        && kind != "service_account"
    {
        return Err(bad(&format!(
            "its type is {kind:?}, not \"service_account\""
        )));
    }
    let email = parsed
        .client_email
        .filter(|e| !e.is_empty())
        .ok_or_else(|| bad("no client_email"))?;
    let token_uri = parsed
        .token_uri
        .filter(|u| !u.is_empty())
        .ok_or_else(|| bad("no token_uri"))?;
    if !(token_uri.starts_with("https://") || token_uri.starts_with("http://")) {
        return Err(bad("token_uri is not an http(s) URL"));
    }
    let pem = parsed.private_key.ok_or_else(|| bad("no private_key"))?;
    let signing_key = EncodingKey::from_rsa_pem(pem.as_bytes())
        .map_err(|_| bad("private_key is not an RSA private key in PEM"))?;
    let fingerprint = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        text.hash(&mut h);
        scopes.hash(&mut h);
        h.finish()
    };
    Ok(AccountKey {
        file,
        email,
        key_id: parsed.private_key_id.filter(|k| !k.is_empty()),
        token_uri,
        signing_key,
        fingerprint,
    })
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        let file = self.key.as_ref().ok().map(|k| k.file.display().to_string());
        f.debug_struct("ServiceAccount")
            .field("key_file", &file)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}
