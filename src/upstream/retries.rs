//! How long to wait before a retry: exponential backoff with jitter, and the wait an upstream
//! asks for (`retry-after`, `retry-after-ms`).

use std::time::Duration;

use http::HeaderMap;

use crate::mapping::RetryPolicy;

/// The delay before try `attempt + 1`: `backoff · 2^(attempt-1)` capped at `max_backoff`,
/// with equal jitter (half fixed, half random), and at least an upstream's `retry-after`.
pub fn backoff(policy: &RetryPolicy, attempt: u32, hold: Option<Duration>) -> Duration {
    let exp = policy
        .backoff
        .saturating_mul(1u32 << (attempt - 1).min(16))
        .min(policy.max_backoff);
    let half = exp / 2;
    let jittered = half + half.mul_f64(fastrand::f64());
    hold.map_or(jittered, |h| h.max(jittered))
}

/// The wait an upstream asks for: `retry-after-ms`, or `retry-after` in seconds or as an
/// HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let v = text("retry-after")?;
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(86_400.0)));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}
