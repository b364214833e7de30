//! The memory budget of in-flight requests (`rosetta serve --max-inflight-bytes`).
//!
//! Every API call holds a [`Charge`] on the [`MemoryBudget`] for the memory its request takes:
//! its body while it is read (the declared `content-length` up front, or frame by frame), then
//! its footprint once the body is scanned ([`footprint`]). The charge travels in the response
//! body like the concurrency permit ([`crate::serving::admission::hold`]), so a stream, which keeps its
//! parsed request to the end, holds it until its last byte.
//!
//! A charge that does not fit is refused at once, never queued. The last eighth of the budget
//! is kept for small requests ([`SMALL`]): when big ones are refused, ordinary chats still pass.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use prometheus::IntGauge;

/// A request whose footprint is at most this is small: it may use the whole budget.
pub const SMALL: usize = 256 * 1024;

/// What a request is charged once its body is scanned: the body and its parsed form, then the
/// upstream request rendered from them: the template's output (a second parsed form, measured
/// up to twice the first for chats of tool calls) and its serialized bytes.
pub fn footprint(body: usize, parsed: usize) -> usize {
    body.saturating_mul(2)
        .saturating_add(parsed.saturating_mul(3))
}

/// The budget shared by all in-flight requests. A limit of `0` means no limit (charges are
/// still counted).
pub struct MemoryBudget {
    limit: usize,
    used: AtomicUsize,
    gauge: IntGauge,
}

/// Why a charge was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The whole budget is smaller than this one request: it can never pass.
    Never,
    /// Other requests hold the budget now; retry shortly.
    Busy,
}

impl MemoryBudget {
    /// A budget of `limit` bytes (`0`: none), reporting the bytes held on `gauge`.
    pub fn new(limit: usize, gauge: IntGauge) -> Arc<Self> {
        Arc::new(MemoryBudget {
            limit,
            used: AtomicUsize::new(0),
            gauge,
        })
    }

    /// The configured limit (`0`: none).
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes charged by the requests in flight.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// A charge of nothing, to grow as the request's memory becomes known.
    pub fn open(self: &Arc<Self>) -> Charge {
        Charge {
            budget: Arc::clone(self),
            bytes: 0,
        }
    }

    /// Adds `more` to the bytes held if the total stays within what a request of `total`
    /// bytes may use.
    fn take(&self, more: usize, total: usize) -> Result<(), Refused> {
        if self.limit > 0 {
            if total > self.limit {
                return Err(Refused::Never);
            }
            let ceiling = if total <= SMALL {
                self.limit
            } else {
                self.limit - self.limit / 8
            };
            self.used
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                    used.checked_add(more).filter(|&u| u <= ceiling)
                })
                .map_err(|_| Refused::Busy)?;
        } else {
            self.used.fetch_add(more, Ordering::AcqRel);
        }
        self.gauge.add(more as i64);
        Ok(())
    }
}

/// The bytes one request holds on the budget; dropping it gives them back.
pub struct Charge {
    budget: Arc<MemoryBudget>,
    bytes: usize,
}

impl Charge {
    /// Raises the charge to `total` bytes (a lower total changes nothing).
    pub fn raise_to(&mut self, total: usize) -> Result<(), Refused> {
        if total <= self.bytes {
            return Ok(());
        }
        self.budget.take(total - self.bytes, total)?;
        self.bytes = total;
        Ok(())
    }

    /// The bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
        self.budget.gauge.sub(self.bytes as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(limit: usize) -> Arc<MemoryBudget> {
        MemoryBudget::new(limit, IntGauge::new("g", "g").unwrap())
    }

    #[test]
    fn large_charges_stop_short_of_the_small_reserve() {
        let b = budget(8 << 20);
        let mut big = b.open();
        big.raise_to(6 << 20).unwrap();
        let mut second = b.open();
        assert_eq!(second.raise_to(2 << 20), Err(Refused::Busy), "past 7/8");
        assert_eq!(second.bytes(), 0);
        let mut small = b.open();
        small.raise_to(SMALL).unwrap();
        assert_eq!(b.used(), (6 << 20) + SMALL);
        drop(big);
        assert_eq!(b.used(), SMALL);
        second.raise_to(2 << 20).unwrap();
        assert_eq!(b.gauge.get() as usize, SMALL + (2 << 20));
    }

    #[test]
    fn a_request_larger_than_the_budget_never_fits() {
        let b = budget(1 << 20);
        let mut c = b.open();
        c.raise_to(1000).unwrap();
        assert_eq!(c.raise_to((1 << 20) + 1), Err(Refused::Never));
        assert_eq!(c.bytes(), 1000, "a refused raise keeps what was held");
        c.raise_to(10).unwrap();
        assert_eq!(c.bytes(), 1000);
        drop(c);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn small_requests_may_fill_the_budget_but_not_overfill_it() {
        let b = budget(4 * SMALL);
        let held: Vec<Charge> = (0..4)
            .map(|_| {
                let mut c = b.open();
                c.raise_to(SMALL).unwrap();
                c
            })
            .collect();
        assert_eq!(b.open().raise_to(1), Err(Refused::Busy));
        drop(held);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn no_limit_counts_without_refusing() {
        let b = budget(0);
        let mut c = b.open();
        c.raise_to(usize::MAX / 2).unwrap();
        assert_eq!(b.used(), usize::MAX / 2);
        drop(c);
        assert_eq!(b.used(), 0);
    }
}
