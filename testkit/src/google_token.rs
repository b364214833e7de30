//! A fake Google OAuth 2.0 token endpoint (`POST /token`, `shared/reference/clouds.md` §7): the
//! JWT-bearer grant of a service account (RFC 7523). It verifies the assertion's RS256 signature
//! with the TEST key's public half (`testkit/keys/`), and its `iss`, `aud` (this endpoint's own
//! URL), `scope`, `iat` and `exp` (at most one hour, not expired, by the injected clock), then
//! answers `{"access_token": "ya29.c.…", "expires_in", "token_type": "Bearer"}` and remembers the
//! token as valid for the Vertex fake ([`GoogleTokens`] is shared by both). Errors are Google's:
//! `{"error": "invalid_grant" | "invalid_scope" | "unsupported_grant_type", "error_description"}`.
//!
//! Tests can count exchanges, revoke every token issued, set the lifetime of the tokens, slow
//! the answers down, or make the endpoint fail (500) or never answer.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

use crate::common::{ALNUM, Ids};
use crate::reply::Reply;
use crate::server::{Handler, Recorded};

/// The TEST service account's private key (never a real one): see `testkit/keys/README.md`.
pub const TEST_PRIVATE_KEY: &str = include_str!("../keys/test-service-account.key.pem");
const TEST_PUBLIC_KEY: &str = include_str!("../keys/test-service-account.pub.pem");
/// A TEST key the token endpoint does not know.
pub const TEST_OTHER_PRIVATE_KEY: &str = include_str!("../keys/test-other.key.pem");
/// The TEST service account's email.
pub const TEST_EMAIL: &str = "rosetta-test@rosetta-test-project.iam.gserviceaccount.com";
const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Tokens issued by the token endpoint and accepted by the Vertex fake.
#[derive(Clone)]
pub struct GoogleTokens {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    now_s: Box<dyn Fn() -> i64 + Send + Sync>,
    valid: Mutex<HashSet<String>>,
    exchanges: AtomicUsize,
    refused: AtomicUsize,
    expires_in: AtomicI64,
    delay_ms: AtomicU64,
    failing: AtomicBool,
    hanging: AtomicBool,
    dead: AtomicBool,
    ids: Ids,
}

impl GoogleTokens {
    /// Tokens judged by `now_s` (Unix seconds: the same clock the proxy under test is given).
    pub fn new(now_s: impl Fn() -> i64 + Send + Sync + 'static) -> GoogleTokens {
        GoogleTokens {
            inner: Arc::new(Inner {
                now_s: Box::new(now_s),
                valid: Mutex::new(HashSet::new()),
                exchanges: AtomicUsize::new(0),
                refused: AtomicUsize::new(0),
                expires_in: AtomicI64::new(3599),
                delay_ms: AtomicU64::new(0),
                failing: AtomicBool::new(false),
                hanging: AtomicBool::new(false),
                dead: AtomicBool::new(false),
                ids: Ids::starting_at(1 << 62),
            }),
        }
    }

    /// A service-account key file (JSON) for the TEST account, naming `token_uri`.
    pub fn key_file(token_uri: &str) -> String {
        Self::key_file_with(token_uri, TEST_PRIVATE_KEY)
    }

    /// The same with another private key in it.
    pub fn key_file_with(token_uri: &str, private_key: &str) -> String {
        json!({
            "type": "service_account",
            "project_id": "rosetta-test-project",
            "private_key_id": "0123456789abcdef0123456789abcdef01234567",
            "private_key": private_key,
            "client_email": TEST_EMAIL,
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri,
        })
        .to_string()
    }

    /// Tokens issued (successful exchanges).
    pub fn exchanges(&self) -> usize {
        self.inner.exchanges.load(Ordering::SeqCst)
    }

    /// Exchanges refused (bad assertion, failing endpoint).
    pub fn refused(&self) -> usize {
        self.inner.refused.load(Ordering::SeqCst)
    }

    /// Every token issued so far stops working (revoked server-side before its expiry).
    pub fn revoke_all(&self) {
        self.inner.lock().clear();
    }

    /// The `expires_in` of the next tokens (seconds).
    pub fn set_expires_in(&self, seconds: i64) {
        self.inner.expires_in.store(seconds, Ordering::SeqCst);
    }

    /// Answers are held back this long (to make concurrent callers overlap).
    pub fn set_delay(&self, delay: Duration) {
        self.inner
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// The endpoint answers 500 `internal_failure` (true) or works again (false).
    pub fn set_failing(&self, failing: bool) {
        self.inner.failing.store(failing, Ordering::SeqCst);
    }

    /// The endpoint never answers (true) or works again (false).
    pub fn set_hanging(&self, hanging: bool) {
        self.inner.hanging.store(hanging, Ordering::SeqCst);
    }

    /// Tokens issued from now on are already revoked (true), or good again (false).
    pub fn set_issue_revoked(&self, dead: bool) {
        self.inner.dead.store(dead, Ordering::SeqCst);
    }

    /// Whether `token` was issued and not revoked.
    pub fn is_valid(&self, token: &str) -> bool {
        self.inner.lock().contains(token)
    }

    /// The token endpoint's handler.
    pub fn handler(&self) -> Handler {
        let inner = Arc::clone(&self.inner);
        Arc::new(move |req: &Recorded| inner.answer(req))
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.valid.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn answer(&self, req: &Recorded) -> Reply {
        if self.hanging.load(Ordering::SeqCst) {
            return Reply::hang();
        }
        let reply = self.exchange(req);
        let delay = self.delay_ms.load(Ordering::SeqCst);
        if delay == 0 {
            return reply;
        }
        // Headers at once, the body after the delay: the caller waits for the whole answer.
        let (status, body) = match &reply {
            Reply::Json { status, body, .. } => (*status, body.to_string()),
            _ => return reply,
        };
        Reply::drip(
            status,
            "application/json; charset=utf-8",
            body.clone(),
            body.len().max(1),
            Duration::from_millis(delay),
        )
    }

    fn exchange(&self, req: &Recorded) -> Reply {
        let refuse = |status: u16, error: &str, description: &str| {
            self.refused.fetch_add(1, Ordering::SeqCst);
            Reply::json(
                status,
                json!({"error": error, "error_description": description}),
            )
        };
        if req.method != "POST" || req.path_only() != "/token" {
            return Reply::raw(404, "text/html", "<html><body>Not Found</body></html>");
        }
        if self.failing.load(Ordering::SeqCst) {
            return refuse(500, "internal_failure", "Backend Error");
        }
        let form = form(&req.raw_body);
        let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        if field("grant_type") != Some(GRANT_TYPE) {
            let given = field("grant_type").unwrap_or_default();
            return refuse(
                400,
                "unsupported_grant_type",
                &format!("Invalid grant_type: {given}"),
            );
        }
        let Some(assertion) = field("assertion") else {
            return refuse(
                400,
                "invalid_request",
                "Missing required parameter: assertion",
            );
        };
        let audience = format!("http://{}/token", req.header("host").unwrap_or_default());
        let claims = match verify(assertion) {
            Ok(c) => c,
            Err(description) => return refuse(400, "invalid_grant", description),
        };
        let text = |k: &str| claims.get(k).and_then(Value::as_str).unwrap_or_default();
        let num = |k: &str| claims.get(k).and_then(Value::as_i64);
        let now = (self.now_s)();
        if text("iss") != TEST_EMAIL {
            return refuse(400, "invalid_grant", "Invalid grant: account not found");
        }
        if text("aud") != audience {
            return refuse(400, "invalid_grant", "Invalid JWT: Failed audience check.");
        }
        let timeframe = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.";
        match (num("iat"), num("exp")) {
            (Some(iat), Some(exp)) if exp - iat <= 3600 && exp > now && iat <= now + 60 => {}
            _ => return refuse(400, "invalid_grant", timeframe),
        }
        let scopes: Vec<&str> = text("scope").split(' ').collect();
        if !scopes.contains(&CLOUD_PLATFORM) {
            return refuse(
                400,
                "invalid_scope",
                "Invalid OAuth scope or ID token audience provided.",
            );
        }
        let token = format!("ya29.c.{}", self.ids.next(ALNUM, 120));
        if !self.dead.load(Ordering::SeqCst) {
            self.lock().insert(token.clone());
        }
        self.exchanges.fetch_add(1, Ordering::SeqCst);
        Reply::json(
            200,
            json!({
                "access_token": token,
                "expires_in": self.expires_in.load(Ordering::SeqCst),
                "token_type": "Bearer",
            }),
        )
    }
}

/// The assertion's claims when its RS256 signature is the TEST key's (time checked by the caller).
fn verify(assertion: &str) -> Result<Value, &'static str> {
    let key = DecodingKey::from_rsa_pem(TEST_PUBLIC_KEY.as_bytes()).expect("the test public key");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    match jsonwebtoken::decode::<Value>(assertion, &key, &validation) {
        Ok(data) => Ok(data.claims),
        Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::InvalidSignature) => {
            Err("Invalid JWT Signature.")
        }
        Err(_) => Err("Invalid JWT: malformed or not RS256."),
    }
}

/// `a=b&c=d`, percent- and `+`-decoded.
fn form(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
