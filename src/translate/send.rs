//! Sending a call upstream until an endpoint answers with a success: the retry loop over the
//! mapping's endpoints, feeding their passive health ([`crate::upstream::pool`]) and waiting as
//! [`crate::upstream::retries`] says.

use std::time::{Duration, Instant};

use http::{Response, StatusCode};

use crate::error::ProxyError;
use crate::ops::handles::RetryReason;
use crate::ops::trace;
use crate::translate::proxy::{Call, Prepared, prepare_for};
use crate::upstream::retries::{backoff, retry_after};
use crate::upstream::{SendError, send, upstream_error};

/// A success status from an endpoint, and how to read its body.
pub(crate) struct Answered {
    pub response: Response<hyper::body::Incoming>,
    pub stream: bool,
    pub include_usage: bool,
}

/// Sends a call's upstream request until an endpoint answers with a success, retrying before
/// anything reaches the client: on the failures `upstream.retry.on` names, at most
/// `retry.attempts` tries, backing off exponentially with jitter (an upstream's `retry-after`
/// is honoured), and never starting a try past `retry.budget`. A retry goes to an endpoint
/// this call has not tried when one is in rotation, without waiting. Every outcome feeds the
/// endpoints' passive health.
pub(crate) async fn send_with_retries(call: &Call<'_>) -> Result<Answered, ProxyError> {
    let mapping = call.mapping;
    let up = &mapping.upstream;
    let policy = &up.retry;
    if call.has_fallback && call.pool.all_out() {
        return Err(ProxyError::Unreachable {
            message: format!(
                "every endpoint of mapping {:?} is out of rotation after repeated failures",
                mapping.name
            ),
        });
    }
    // A minted bearer token (`upstream.auth`): one for every try; a 401 to it is retried once
    // with a new one. Failing to get one ends the call here, with no endpoint to blame.
    let source = up.token.as_deref();
    let mut bearer = match source {
        Some(s) => Some(s.token().await?),
        None => None,
    };
    let mut renewed = false;
    let mut tried: Vec<usize> = Vec::new();
    let mut next = call.pool.pick(&up.endpoints, &tried);
    let mut attempt = 1;
    loop {
        let i = next;
        let endpoint = &up.endpoints[i];
        let mut prepared = prepare_for(
            mapping,
            call.op,
            &call.request,
            call.client_headers,
            endpoint,
        )?;
        // Signed last, anew for every attempt: what is signed is what is sent.
        up.signing
            .apply(&mut prepared.request, call.clock.now_ms())?;
        // The path only: query values may hold secrets from the environment.
        tracing::debug!(endpoint = %endpoint.label, path = %prepared.request.uri().path(), attempt, "upstream request");
        if let Some(id) = &call.trace {
            let r = &prepared.request;
            tracing::info!(
                target: "rosetta::trace",
                id = %id,
                attempt,
                method = %r.method(),
                url = %trace::uri(r.uri()),
                headers = %trace::headers(r.headers()),
                body = %trace::text(&trace::full_bytes(r.body())),
                "upstream request"
            );
        }
        let Prepared {
            mut request,
            stream,
            include_usage,
        } = prepared;
        if let Some(token) = &bearer {
            crate::upstream::token::authorize(&mut request, token);
        }
        call.pool.sent(i);
        let sent = Instant::now();
        let outcome = send(mapping, call.client, request).await;
        call.metrics
            .upstream_duration(call.op)
            .observe(sent.elapsed().as_secs_f64());
        let outcome = match (outcome, source, &bearer) {
            (Ok(r), Some(s), Some(used)) if r.status() == StatusCode::UNAUTHORIZED && !renewed => {
                tracing::info!(mapping = %mapping.name, "the upstream refused the access token: minting a new one and trying once more");
                renewed = true;
                bearer = Some(s.renew(used).await?);
                next = i;
                continue;
            }
            (o, _, _) => o,
        };
        let (error, reason, retryable, hold) = match outcome {
            Ok(response) if response.status().is_success() => {
                call.pool.success(i);
                return Ok(Answered {
                    response,
                    stream,
                    include_usage,
                });
            }
            Ok(response) => {
                let status = response.status().as_u16();
                let hold = retry_after(response.headers());
                let error = upstream_error(mapping, response, call.limits.max_upstream_body).await;
                if status != 429 && status < 500 {
                    // The endpoint is up; the request is what it refused.
                    call.pool.success(i);
                    return Err(error);
                }
                let reason = if status == 429 {
                    RetryReason::TooMany
                } else {
                    RetryReason::ServerError
                };
                (error, reason, policy.retries_status(status), hold)
            }
            Err(SendError { error, connect }) => {
                let (reason, retryable) = if connect {
                    (RetryReason::Connect, policy.on_connect)
                } else {
                    (RetryReason::Timeout, policy.on_timeout)
                };
                (error, reason, retryable, None)
            }
        };
        let message = error.to_string();
        if call.pool.failure(i, &up.health, &message, hold) {
            call.metrics.ejections(i).inc();
            tracing::warn!(mapping = %mapping.name, endpoint = %endpoint.label, error = %message, "endpoint taken out of rotation");
        }
        tried.push(i);
        if !retryable || attempt >= policy.attempts {
            return Err(error);
        }
        next = call.pool.pick(&up.endpoints, &tried);
        let same_endpoint = tried.contains(&next);
        if same_endpoint && hold.is_some_and(|h| h > policy.max_backoff) {
            // The upstream asks for a longer wait than a proxy should hold a request: the
            // client gets the error with its `retry-after` and decides.
            return Err(error);
        }
        let delay = if same_endpoint {
            backoff(policy, attempt, hold)
        } else {
            Duration::ZERO
        };
        if call.started.elapsed() + delay > policy.budget {
            tracing::debug!(?delay, "no retry: past the retry budget");
            return Err(error);
        }
        call.metrics.retries(reason).inc();
        tracing::info!(mapping = %mapping.name, endpoint = %up.endpoints[next].label, attempt = attempt + 1, ?delay, error = %message, "retrying");
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        attempt += 1;
    }
}
