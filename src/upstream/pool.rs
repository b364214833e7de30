//! The endpoints of one mapping at run time: weighted choice among the healthy ones, and
//! passive health (an endpoint that keeps failing is taken out of rotation for a while).
//!
//! Lock-free on the request path: choosing reads atomics only; the last error's text sits
//! behind a mutex that only failures write and `/health` reads.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::mapping::{Endpoint, HealthPolicy};

/// The run-time state of one endpoint.
#[derive(Default)]
struct EndpointState {
    consecutive_failures: AtomicU32,
    /// Milliseconds since the pool's epoch until which the endpoint is out; 0 when in.
    out_until_ms: AtomicU64,
    requests: AtomicU64,
    failures: AtomicU64,
    last_error: Mutex<Option<(String, u64)>>,
}

/// The health of a mapping's endpoints (same order as `Upstream::endpoints`).
pub struct Pool {
    epoch: Instant,
    states: Vec<EndpointState>,
}

impl Pool {
    pub fn new(endpoints: usize) -> Self {
        Pool {
            epoch: Instant::now(),
            states: (0..endpoints).map(|_| EndpointState::default()).collect(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn is_out(&self, i: usize, now: u64) -> bool {
        self.states[i].out_until_ms.load(Ordering::Relaxed) > now
    }

    /// Whether every endpoint is out of rotation right now.
    pub fn all_out(&self) -> bool {
        let now = self.now_ms();
        (0..self.states.len()).all(|i| self.is_out(i, now))
    }

    /// Chooses an endpoint: by weight among those in rotation that this request has not tried
    /// yet; else among those in rotation; else the one that comes back soonest.
    pub fn pick(&self, endpoints: &[Endpoint], tried: &[usize]) -> usize {
        if endpoints.len() == 1 {
            return 0;
        }
        let now = self.now_ms();
        let fresh = |i: &usize| !self.is_out(*i, now) && !tried.contains(i);
        let healthy = |i: &usize| !self.is_out(*i, now);
        for filter in [&fresh as &dyn Fn(&usize) -> bool, &healthy] {
            let candidates: Vec<usize> = (0..endpoints.len()).filter(|i| filter(i)).collect();
            if let Some(i) = weighted(endpoints, &candidates) {
                return i;
            }
        }
        (0..endpoints.len())
            .min_by_key(|i| self.states[*i].out_until_ms.load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    /// Counts a request sent to endpoint `i`.
    pub fn sent(&self, i: usize) {
        self.states[i].requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Endpoint `i` answered: it is healthy again.
    pub fn success(&self, i: usize) {
        let s = &self.states[i];
        if s.consecutive_failures.load(Ordering::Relaxed) != 0 {
            s.consecutive_failures.store(0, Ordering::Relaxed);
            s.out_until_ms.store(0, Ordering::Relaxed);
        }
    }

    /// Endpoint `i` failed. After `policy.failures` failures in a row it is out for the
    /// cooldown (or for `hold`, an upstream's own `retry-after`, when that is longer).
    /// Returns true when this failure took it out.
    pub fn failure(
        &self,
        i: usize,
        policy: &HealthPolicy,
        message: &str,
        hold: Option<Duration>,
    ) -> bool {
        let s = &self.states[i];
        let now = self.now_ms();
        s.failures.fetch_add(1, Ordering::Relaxed);
        let n = s.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        *s.last_error.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((message.to_string(), crate::dialect::openai::now_secs()));
        let mut out_for = if n >= policy.failures {
            Some(policy.cooldown)
        } else {
            None
        };
        if let Some(h) = hold {
            out_for = Some(out_for.map_or(h, |c| c.max(h)));
        }
        match out_for {
            Some(d) => {
                let was_out = self.is_out(i, now);
                s.out_until_ms
                    .store(now + d.as_millis().max(1) as u64, Ordering::Relaxed);
                !was_out
            }
            None => false,
        }
    }

    /// Endpoint `i` is in rotation right now.
    pub fn healthy(&self, i: usize) -> bool {
        !self.is_out(i, self.now_ms())
    }

    /// Each endpoint's state, for `/health`.
    pub fn report(&self, endpoints: &[Endpoint]) -> Vec<Value> {
        let now = self.now_ms();
        endpoints
            .iter()
            .zip(&self.states)
            .map(|(e, s)| {
                let until = s.out_until_ms.load(Ordering::Relaxed);
                let last = s
                    .last_error
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                json!({
                    "url": e.label,
                    "weight": e.weight,
                    "state": if until > now { "out" } else { "healthy" },
                    "back_in_ms": until.saturating_sub(now),
                    "consecutive_failures": s.consecutive_failures.load(Ordering::Relaxed),
                    "requests": s.requests.load(Ordering::Relaxed),
                    "failures": s.failures.load(Ordering::Relaxed),
                    "last_error": last.map(|(message, at)| json!({"message": message, "at": at})),
                })
            })
            .collect()
    }
}

/// A weighted random choice among `candidates` (indexes into `endpoints`).
fn weighted(endpoints: &[Endpoint], candidates: &[usize]) -> Option<usize> {
    let total: u64 = candidates
        .iter()
        .map(|i| u64::from(endpoints[*i].weight))
        .sum();
    if total == 0 {
        return None;
    }
    let mut roll = fastrand::u64(0..total);
    for i in candidates {
        let w = u64::from(endpoints[*i].weight);
        if roll < w {
            return Some(*i);
        }
        roll -= w;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(weights: &[u32]) -> Vec<Endpoint> {
        weights
            .iter()
            .enumerate()
            .map(|(i, w)| Endpoint {
                scheme: http::uri::Scheme::HTTP,
                authority: format!("h{i}:80").parse().unwrap(),
                base_path: String::new(),
                weight: *w,
                headers: Vec::new(),
                label: format!("http://h{i}:80"),
            })
            .collect()
    }

    const POLICY: HealthPolicy = HealthPolicy {
        failures: 2,
        cooldown: Duration::from_secs(60),
    };

    #[test]
    fn picks_by_weight() {
        let e = endpoints(&[3, 1]);
        let pool = Pool::new(2);
        let mut counts = [0u32; 2];
        for _ in 0..8000 {
            counts[pool.pick(&e, &[])] += 1;
        }
        // 6000 / 2000 expected; allow a wide margin.
        assert!((5500..6500).contains(&counts[0]), "{counts:?}");
    }

    #[test]
    fn prefers_untried_then_healthy_endpoints() {
        let e = endpoints(&[1, 1, 1]);
        let pool = Pool::new(3);
        for _ in 0..100 {
            let i = pool.pick(&e, &[0, 1]);
            assert_eq!(i, 2);
        }
        // All tried: any healthy one.
        assert!(pool.pick(&e, &[0, 1, 2]) < 3);
    }

    #[test]
    fn consecutive_failures_take_an_endpoint_out_and_a_success_brings_it_back() {
        let e = endpoints(&[1, 1]);
        let pool = Pool::new(2);
        assert!(!pool.failure(0, &POLICY, "refused", None));
        assert!(pool.healthy(0));
        assert!(pool.failure(0, &POLICY, "refused", None));
        assert!(!pool.healthy(0));
        for _ in 0..100 {
            assert_eq!(pool.pick(&e, &[]), 1);
        }
        let report = pool.report(&e);
        assert_eq!(report[0]["state"], "out");
        assert_eq!(report[0]["last_error"]["message"], "refused");
        assert_eq!(report[1]["state"], "healthy");
        pool.success(0);
        assert!(pool.healthy(0));
    }

    #[test]
    fn a_retry_after_holds_an_endpoint_out_at_once() {
        let pool = Pool::new(2);
        assert!(pool.failure(1, &POLICY, "429", Some(Duration::from_secs(5))));
        assert!(!pool.healthy(1));
    }

    #[test]
    fn when_all_are_out_the_one_back_soonest_is_chosen() {
        let e = endpoints(&[1, 1]);
        let pool = Pool::new(2);
        pool.failure(0, &POLICY, "x", Some(Duration::from_secs(50)));
        pool.failure(1, &POLICY, "x", Some(Duration::from_secs(10)));
        assert!(pool.all_out());
        assert_eq!(pool.pick(&e, &[]), 1);
    }
}
