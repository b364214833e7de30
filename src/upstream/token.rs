//! Bearer tokens minted from a service account (`upstream.auth.service_account`): cached,
//! replaced `refresh_before` their expiry (by the injected [`Clock`]), and fetched by one caller
//! at a time: callers that find the token stale while a refresh runs wait for it and share its
//! outcome, success or failure, so a failing token endpoint costs one exchange, not one per
//! call. Every exchange is bounded by the account's `timeout`.
//!
//! A token in use is a secret: it is [`crate::ops::redact::remember`]ed for logs and the
//! ledger, and [`TokenSource::redactor`] keeps it out of answers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use arc_swap::ArcSwap;
use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, StatusCode};
use serde_json::{Value, json};

use crate::error::ProxyError;
use crate::mapping::auth::ServiceAccount;
use crate::ops::clock::Clock;
use crate::ops::redact::Redactor;
use crate::upstream::UpstreamClient;

/// An access token and when it expires (Unix milliseconds, by the source's clock).
#[derive(Clone)]
pub struct Token {
    pub value: Arc<str>,
    pub expires_ms: i64,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token(expires {})", self.expires_ms)
    }
}

/// The outcome of the latest exchange.
#[derive(Clone, Default)]
enum Last {
    #[default]
    None,
    Ok,
    Failed(String),
}

/// One service account's tokens.
pub struct TokenSource {
    pub(super) account: ServiceAccount,
    pub(super) clock: RwLock<Clock>,
    pub(super) client: UpstreamClient,
    cached: RwLock<Option<Token>>,
    /// Held by the one caller that exchanges.
    refresh: tokio::sync::Mutex<()>,
    /// Exchanges started so far.
    started: AtomicU64,
    /// Exchanges finished so far: a waiter that sees it move knows a refresh ran meanwhile.
    finished: AtomicU64,
    last: Mutex<Last>,
    redactor: ArcSwap<Redactor>,
}

impl TokenSource {
    pub fn new(account: ServiceAccount) -> TokenSource {
        let client = crate::upstream::client_with(account.timeout, account.timeout * 6);
        TokenSource {
            account,
            clock: RwLock::new(Clock::system()),
            client,
            cached: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(()),
            started: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            last: Mutex::new(Last::None),
            redactor: ArcSwap::default(),
        }
    }

    /// Uses `clock` for "now" from here on (tests pin it; see [`crate::serving::state::State::with_clock`]).
    pub fn set_clock(&self, clock: Clock) {
        *self.clock.write().unwrap_or_else(PoisonError::into_inner) = clock;
    }

    pub(super) fn now_ms(&self) -> i64 {
        self.clock
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .now_ms()
    }

    /// How many token exchanges this source has started.
    pub fn exchanges(&self) -> u64 {
        self.started.load(Ordering::SeqCst)
    }

    /// The current token when it is not due for replacement.
    fn fresh(&self) -> Option<Token> {
        let margin = self.account.refresh_before.as_millis() as i64;
        let now = self.now_ms();
        self.cached
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .filter(|t| now < t.expires_ms - margin)
            .cloned()
    }

    /// A token to send: the cached one, or a new one (one exchange at a time).
    pub async fn token(&self) -> Result<Token, ProxyError> {
        let key = self
            .account
            .key
            .as_ref()
            .map_err(|why| unavailable(503, why))?;
        if let Some(t) = self.fresh() {
            return Ok(t);
        }
        let seen = self.finished.load(Ordering::SeqCst);
        let _turn = self.refresh.lock().await;
        if let Some(t) = self.fresh() {
            return Ok(t);
        }
        if self.finished.load(Ordering::SeqCst) != seen
            && let Last::Failed(why) = self.last()
        {
            // The refresh this call waited for failed: its error, not another try.
            return Err(unavailable(502, &why));
        }
        self.started.fetch_add(1, Ordering::SeqCst);
        let limit = self.account.timeout;
        let outcome = match tokio::time::timeout(limit, self.exchange(key)).await {
            Ok(r) => r,
            Err(_) => Err(format!(
                "the token endpoint did not answer within {limit:?}"
            )),
        };
        self.finished.fetch_add(1, Ordering::SeqCst);
        match outcome {
            Ok(token) => {
                crate::ops::redact::remember([&token.value.to_string()]);
                let previous = self.cached_value();
                let secrets = [Some(token.value.to_string()), previous]
                    .into_iter()
                    .flatten();
                self.redactor.store(Arc::new(Redactor::new(secrets)));
                *self.cached.write().unwrap_or_else(PoisonError::into_inner) = Some(token.clone());
                self.set_last(Last::Ok);
                Ok(token)
            }
            Err(why) => {
                tracing::warn!(error = %why, "cannot obtain an access token");
                self.set_last(Last::Failed(why.clone()));
                Err(unavailable(502, &why))
            }
        }
    }

    /// A new token after the upstream refused `used` (revoked or rotated before its expiry):
    /// `used` is dropped unless another call already replaced it.
    pub async fn renew(&self, used: &Token) -> Result<Token, ProxyError> {
        {
            let mut cached = self.cached.write().unwrap_or_else(PoisonError::into_inner);
            if cached.as_ref().is_some_and(|t| t.value == used.value) {
                *cached = None;
            }
        }
        self.token().await
    }

    /// Keeps the tokens of `old` (a reload with the same key file and scopes).
    pub fn adopt(&self, old: &TokenSource) {
        let same = match (&self.account.key, &old.account.key) {
            (Ok(a), Ok(b)) => a.fingerprint == b.fingerprint,
            _ => false,
        };
        if same {
            let token = old
                .cached
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            *self.cached.write().unwrap_or_else(PoisonError::into_inner) = token;
            self.redactor.store(old.redactor.load_full());
            self.started
                .store(old.started.load(Ordering::SeqCst), Ordering::SeqCst);
            self.finished
                .store(old.finished.load(Ordering::SeqCst), Ordering::SeqCst);
            self.set_last(old.last());
        }
    }

    /// The redactor of the tokens in use (the current one and the one before it).
    pub fn redactor(&self) -> Arc<Redactor> {
        self.redactor.load_full()
    }

    /// For `/health`: whether tokens can be had, and why not.
    pub fn report(&self) -> Value {
        let cached = self
            .cached
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let expires_in_s = cached.map(|t| (t.expires_ms - self.now_ms()) / 1000);
        let (state, error) = match (&self.account.key, self.last()) {
            (Err(why), _) => ("not_configured", Some(why.clone())),
            (Ok(_), Last::Failed(why)) => ("failing", Some(why)),
            (Ok(_), Last::Ok) => ("ok", None),
            (Ok(_), Last::None) => ("not_fetched_yet", None),
        };
        json!({
            "kind": "service_account",
            "state": state,
            "last_error": error,
            "token_expires_in_s": expires_in_s,
            "exchanges": self.exchanges(),
        })
    }

    /// Whether the latest exchange failed (an unset key file is reported, not a failure: a
    /// mapping nobody configured must not make the whole proxy look degraded).
    pub fn failing(&self) -> bool {
        self.account.key.is_ok() && matches!(self.last(), Last::Failed(_))
    }

    fn cached_value(&self) -> Option<String> {
        self.cached
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|t| t.value.to_string())
    }

    fn last(&self) -> Last {
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_last(&self, last: Last) {
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = last;
    }
}

/// Puts `token` in the request's `Authorization` header (marked sensitive).
pub fn authorize<B>(request: &mut Request<B>, token: &Token) {
    if let Ok(mut v) = HeaderValue::from_str(&format!("Bearer {}", token.value)) {
        v.set_sensitive(true);
        request.headers_mut().insert(AUTHORIZATION, v);
    }
}

/// The client's error when no token can be had: 503 while unconfigured, 502 when the token
/// endpoint fails.
fn unavailable(status: u16, why: &str) -> ProxyError {
    let (status, code) = match status {
        503 => (
            StatusCode::SERVICE_UNAVAILABLE,
            "upstream_credentials_missing",
        ),
        _ => (StatusCode::BAD_GATEWAY, "upstream_token_unavailable"),
    };
    ProxyError::UpstreamStatus {
        status,
        message: format!("cannot authenticate to the upstream: {why}"),
        kind: Some("upstream_auth_error".into()),
        code: Some(code.into()),
        retry_after: None,
    }
}
