//! Compiling `upstream:`: endpoints, headers and queries (with `${VAR}`), timeouts, retries,
//! health and fallback.

use std::collections::BTreeMap;

use http::{HeaderName, HeaderValue, Uri};

use crate::mapping::spec::{self};
use crate::mapping::*;

use super::Ctx;
use super::values::interpolate_env;

impl Ctx<'_> {
    pub(super) fn upstream(&mut self, u: spec::UpstreamSpec, env: Env<'_>) -> Option<Upstream> {
        let mut missing = Vec::new();
        let specs: Vec<(String, spec::EndpointSpec)> = match (u.base_url, u.endpoints) {
            (Some(base_url), e) if e.is_empty() => vec![(
                "upstream.base_url".into(),
                spec::EndpointSpec {
                    base_url,
                    weight: None,
                    headers: BTreeMap::new(),
                },
            )],
            (None, e) if !e.is_empty() => e
                .into_iter()
                .enumerate()
                .map(|(i, e)| (format!("upstream.endpoints[{i}]"), e))
                .collect(),
            (Some(_), _) => {
                self.error(
                    "upstream",
                    "give either `base_url` or `endpoints`, not both",
                );
                return None;
            }
            (None, _) => {
                self.error("upstream", "needs a `base_url` or a list of `endpoints`");
                return None;
            }
        };
        let mut endpoints = Vec::new();
        for (at, e) in specs {
            if let Some(endpoint) = self.endpoint(e, &at, env, &mut missing) {
                endpoints.push(endpoint);
            }
        }
        let headers = self.headers(&u.headers, "upstream.headers", env, &mut missing);
        let signing = self.signing(&u.sign, env, &mut missing);
        let forward_headers = u
            .forward_headers
            .iter()
            .filter_map(|h| match HeaderName::from_bytes(h.as_bytes()) {
                Ok(n) if HOP_BY_HOP.contains(&n.as_str()) => {
                    self.error(
                        "upstream.forward_headers",
                        format!("{h:?} is a hop-by-hop header and is never forwarded"),
                    );
                    None
                }
                Ok(n) => Some(n),
                Err(_) => {
                    self.error(
                        "upstream.forward_headers",
                        format!("invalid header name {h:?}"),
                    );
                    None
                }
            })
            .collect();
        let t = &u.timeouts;
        let r = &u.retry;
        let retry = RetryPolicy {
            attempts: match r.attempts {
                Some(0) => {
                    self.error(
                        "upstream.retry.attempts",
                        "must be at least 1 (1 = no retry)",
                    );
                    1
                }
                Some(n) => n.min(10),
                None => DEFAULT_RETRY_ATTEMPTS,
            },
            backoff: self.duration(&r.backoff, "upstream.retry.backoff", DEFAULT_RETRY_BACKOFF),
            max_backoff: self.duration(
                &r.max_backoff,
                "upstream.retry.max_backoff",
                DEFAULT_RETRY_MAX_BACKOFF,
            ),
            budget: self.duration(&r.budget, "upstream.retry.budget", DEFAULT_RETRY_BUDGET),
            on_connect: true,
            on_timeout: false,
            on_5xx: true,
            on_status: vec![429],
        };
        let retry = match &r.on {
            None => retry,
            Some(on) => self.retry_on(retry, on),
        };
        let h = &u.health;
        let health = HealthPolicy {
            failures: match h.failures {
                Some(0) => {
                    self.error("upstream.health.failures", "must be at least 1");
                    DEFAULT_HEALTH_FAILURES
                }
                Some(n) => n,
                None => DEFAULT_HEALTH_FAILURES,
            },
            cooldown: self.duration(
                &h.cooldown,
                "upstream.health.cooldown",
                DEFAULT_HEALTH_COOLDOWN,
            ),
        };
        if endpoints.is_empty() {
            return None;
        }
        Some(Upstream {
            endpoints,
            headers,
            forward_headers,
            connect_timeout: self.duration(
                &t.connect,
                "upstream.timeouts.connect",
                DEFAULT_CONNECT_TIMEOUT,
            ),
            first_byte_timeout: self.duration(
                &t.first_byte,
                "upstream.timeouts.first_byte",
                DEFAULT_FIRST_BYTE_TIMEOUT,
            ),
            idle_timeout: self.duration(&t.idle, "upstream.timeouts.idle", DEFAULT_IDLE_TIMEOUT),
            keep_alive: self.duration(
                &t.keep_alive,
                "upstream.timeouts.keep_alive",
                DEFAULT_KEEP_ALIVE,
            ),
            retry,
            health,
            fallback: u.fallback.map(Fallback::from),
            missing_env: missing,
            secrets: Vec::new(),
            token: None,
            signing,
        })
    }

    /// `retry.on`: `connect`, `timeout`, `5xx`, or single statuses; replaces the defaults.
    pub(super) fn retry_on(&mut self, mut policy: RetryPolicy, on: &[spec::Scalar]) -> RetryPolicy {
        policy.on_connect = false;
        policy.on_timeout = false;
        policy.on_5xx = false;
        policy.on_status.clear();
        for item in on {
            match item.text().as_str() {
                "connect" => policy.on_connect = true,
                "timeout" => policy.on_timeout = true,
                "5xx" => policy.on_5xx = true,
                t => match t.parse::<u16>() {
                    Ok(s) if (400..=599).contains(&s) => policy.on_status.push(s),
                    _ => self.error(
                        "upstream.retry.on",
                        format!(
                            "unknown retry condition {t:?} (expected connect, timeout, 5xx or a status 400-599)"
                        ),
                    ),
                },
            }
        }
        policy
    }

    /// One endpoint: its URL split into parts, its weight, its own headers.
    pub(super) fn endpoint(
        &mut self,
        e: spec::EndpointSpec,
        at: &str,
        env: Env<'_>,
        missing: &mut Vec<String>,
    ) -> Option<Endpoint> {
        let url_at = format!("{at}.base_url");
        let base = self.interpolate(&e.base_url, &url_at, env, missing)?;
        let uri: Uri = match base.parse() {
            Ok(uri) => uri,
            Err(e) => {
                self.error(&url_at, format!("invalid URL {base:?}: {e}"));
                return None;
            }
        };
        let (Some(scheme), Some(authority)) = (uri.scheme().cloned(), uri.authority().cloned())
        else {
            self.error(&url_at, format!("{base:?} needs a scheme and a host"));
            return None;
        };
        if uri.query().is_some() {
            self.error(
                &url_at,
                "the base URL cannot have a query string; use `query` in a route",
            );
        }
        if scheme != http::uri::Scheme::HTTP && scheme != http::uri::Scheme::HTTPS {
            self.error(&url_at, "the scheme must be http or https");
        }
        let weight = match e.weight {
            Some(0) => {
                self.error(&format!("{at}.weight"), "must be at least 1");
                1
            }
            Some(w) => w,
            None => 1,
        };
        let headers = self.headers(&e.headers, &format!("{at}.headers"), env, missing);
        let base_path = uri.path().trim_end_matches('/').to_string();
        // Credentials in the URL (`user:pass@host`) never reach /health or the logs.
        let host = authority.as_str().rsplit('@').next().unwrap_or_default();
        Some(Endpoint {
            label: format!("{scheme}://{host}{base_path}"),
            scheme,
            authority,
            base_path,
            weight,
            headers,
        })
    }

    pub(super) fn headers(
        &mut self,
        spec: &BTreeMap<String, String>,
        at: &str,
        env: Env<'_>,
        missing: &mut Vec<String>,
    ) -> Vec<(HeaderName, HeaderValue)> {
        let mut out = Vec::new();
        for (name, raw) in spec {
            let loc = format!("{at}.{name}");
            let Ok(hn) = HeaderName::from_bytes(name.as_bytes()) else {
                self.error(&loc, format!("invalid header name {name:?}"));
                continue;
            };
            let before = missing.len();
            self.note_secrets(raw, env);
            let Some(value) = self.interpolate(raw, &loc, env, missing) else {
                continue;
            };
            // An unset `${VAR}` (or an empty result) drops the whole header: an optional secret
            // sends nothing rather than `Bearer ` with no token.
            if value.is_empty() || missing.len() > before {
                continue;
            }
            match HeaderValue::from_str(&value) {
                Ok(mut hv) => {
                    hv.set_sensitive(raw.contains("${"));
                    out.push((hn, hv));
                }
                // Never echo the value: it may be a secret.
                Err(_) => self.error(
                    &loc,
                    "the header value contains characters not allowed in HTTP headers",
                ),
            }
        }
        out
    }

    pub(super) fn interpolate(
        &mut self,
        raw: &str,
        at: &str,
        env: Env<'_>,
        missing: &mut Vec<String>,
    ) -> Option<String> {
        match interpolate_env(raw, env, missing) {
            Ok(s) => Some(s),
            Err(e) => {
                self.error(at, e);
                None
            }
        }
    }

    /// Remembers the environment values `raw` reads, as secrets (header and query values).
    pub(super) fn note_secrets(&mut self, raw: &str, env: Env<'_>) {
        let seen = std::cell::RefCell::new(Vec::new());
        let capture = |k: &str| {
            let v = env(k);
            if let Some(v) = &v {
                seen.borrow_mut().push(v.clone());
            }
            v
        };
        let _ = interpolate_env(raw, &capture, &mut Vec::new());
        for v in seen.into_inner() {
            // Short values (`1`, `true`, a version) would blank out ordinary words.
            if v.len() >= 8 && !self.secrets.contains(&v) {
                self.secrets.push(v);
            }
        }
    }
}
