//! The stored responses as the server reaches them through the ledger ([`Responses`]), and the
//! ledger's task that purges the expired ones.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::{ResponseStore, StoredResponse};
use crate::ledger::{Store, StoreError};
use crate::ops::clock::Clock;

/// How often the ledger purges expired responses.
pub const PURGE_EVERY: Duration = Duration::from_secs(60);

/// The stored responses as the server uses them: each operation is bounded by the ledger's
/// write timeout (a store that does not answer is an error, not a hung request) and reads
/// "now" from the ledger's clock.
#[derive(Clone, Copy)]
pub struct Responses<'a> {
    store: &'a dyn ResponseStore,
    timeout: Duration,
    clock: &'a Clock,
}

impl<'a> Responses<'a> {
    pub(in crate::ledger) fn new(
        store: &'a dyn ResponseStore,
        timeout: Duration,
        clock: &'a Clock,
    ) -> Self {
        Responses {
            store,
            timeout,
            clock,
        }
    }

    /// Now, in Unix milliseconds (the ledger's clock): a new response's `created_ms`.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Stores `response` (replacing one of the same id).
    pub async fn put(&self, response: &StoredResponse) -> Result<(), StoreError> {
        self.bounded(self.store.put_response(response)).await
    }

    /// The response `id` of `owner`, unless it is missing, expired or another owner's.
    pub async fn get(&self, id: &str, owner: &str) -> Result<Option<StoredResponse>, StoreError> {
        let now = self.now_ms();
        self.bounded(self.store.get_response(id, owner, now)).await
    }

    /// Deletes the response `id` of `owner`; false when there was none to delete.
    pub async fn delete(&self, id: &str, owner: &str) -> Result<bool, StoreError> {
        let now = self.now_ms();
        self.bounded(self.store.delete_response(id, owner, now))
            .await
    }

    /// Deletes the responses expired by now; returns how many.
    pub async fn purge(&self) -> Result<u64, StoreError> {
        let now = self.now_ms();
        self.bounded(self.store.purge_responses(now)).await
    }

    async fn bounded<T>(
        &self,
        call: BoxFuture<'_, Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(answer) => answer,
            Err(_) => Err(StoreError(format!(
                "the ledger store did not answer within {} ms",
                self.timeout.as_millis()
            ))),
        }
    }
}

/// The ledger's purge task: every `every` (monotonic time), deletes the responses expired by
/// `clock`'s now, until `stop` resolves. Nothing to do for a store that keeps no responses.
pub(in crate::ledger) async fn purge_task(
    store: Arc<dyn Store>,
    every: Duration,
    timeout: Duration,
    clock: Clock,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        tokio::select! {
            biased;
            () = &mut stop => return,
            () = tokio::time::sleep(every) => {}
        }
        let Some(responses) = store.responses() else {
            return;
        };
        match Responses::new(responses, timeout, &clock).purge().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(purged = n, "expired stored responses purged"),
            Err(e) => tracing::warn!(error = %e, "purging expired stored responses failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::ledger::writer::{Ledger, LedgerOptions};
    use crate::ledger::{Check, Denial, GroupBy, Record, ReportRow};
    use crate::ops::telemetry::Metrics;

    /// 2026-11-23T00:00:00Z.
    const T0: i64 = 1_795_392_000_000;

    /// A store that keeps no records and answers its responses from memory, noting the "now"
    /// of each call; `hang` makes every response call wait forever. `keeps` false: a store
    /// without stored responses.
    #[derive(Default)]
    struct Fake {
        keeps: bool,
        hang: AtomicBool,
        /// (operation, now_ms) of each response call.
        calls: Mutex<Vec<(&'static str, i64)>>,
    }

    impl Fake {
        fn new(keeps: bool) -> Arc<Fake> {
            Arc::new(Fake {
                keeps,
                ..Fake::default()
            })
        }

        fn calls(&self, op: &str) -> Vec<i64> {
            let calls = self.calls.lock().unwrap();
            calls
                .iter()
                .filter(|(o, _)| *o == op)
                .map(|c| c.1)
                .collect()
        }

        async fn call(&self, op: &'static str, now_ms: i64) {
            if self.hang.load(Ordering::SeqCst) {
                futures_util::future::pending::<()>().await;
            }
            self.calls.lock().unwrap().push((op, now_ms));
        }
    }

    impl Store for Fake {
        fn kind(&self) -> &'static str {
            "fake"
        }
        fn write<'a>(&'a self, _: &'a [Record]) -> BoxFuture<'a, Result<(), StoreError>> {
            Box::pin(async { Ok(()) })
        }
        fn reserve<'a>(
            &'a self,
            _: &'a [Check],
            _: &'a str,
            _: i64,
            _: i64,
        ) -> BoxFuture<'a, Result<Option<Denial>, StoreError>> {
            Box::pin(async { Ok(None) })
        }
        fn report(&self, _: i64, _: GroupBy) -> BoxFuture<'_, Result<Vec<ReportRow>, StoreError>> {
            Box::pin(async { Ok(vec![]) })
        }
        fn responses(&self) -> Option<&dyn ResponseStore> {
            self.keeps.then_some(self as &dyn ResponseStore)
        }
    }

    impl ResponseStore for Fake {
        fn put_response<'a>(
            &'a self,
            r: &'a StoredResponse,
        ) -> BoxFuture<'a, Result<(), StoreError>> {
            Box::pin(async move {
                self.call("put", r.created_ms).await;
                Ok(())
            })
        }
        fn get_response<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
            now_ms: i64,
        ) -> BoxFuture<'a, Result<Option<StoredResponse>, StoreError>> {
            Box::pin(async move {
                self.call("get", now_ms).await;
                Ok(None)
            })
        }
        fn delete_response<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
            now_ms: i64,
        ) -> BoxFuture<'a, Result<bool, StoreError>> {
            Box::pin(async move {
                self.call("delete", now_ms).await;
                Ok(true)
            })
        }
        fn purge_responses(&self, now_ms: i64) -> BoxFuture<'_, Result<u64, StoreError>> {
            Box::pin(async move {
                self.call("purge", now_ms).await;
                Ok(1)
            })
        }
    }

    fn start(store: &Arc<Fake>, clock: &Clock, purge_every: Duration) -> Ledger {
        let options = LedgerOptions {
            write_timeout: Duration::from_millis(50),
            clock: clock.clone(),
            responses_purge_every: purge_every,
            ..LedgerOptions::default()
        };
        Ledger::start(store.clone(), options, Metrics::new())
    }

    /// Polls `cond` until it holds; panics after 10 s.
    async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
        let end = std::time::Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(
                std::time::Instant::now() < end,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    #[tokio::test]
    async fn the_ledger_hands_out_its_stores_responses_on_its_clock() {
        let clock = Clock::manual(T0);
        let store = Fake::new(true);
        let ledger = start(&store, &clock, PURGE_EVERY);
        let responses = ledger.responses().expect("the store keeps responses");
        assert_eq!(responses.now_ms(), T0);
        assert_eq!(responses.get("resp_1", "ann").await.unwrap(), None);
        clock.advance(5);
        assert!(responses.delete("resp_1", "ann").await.unwrap());
        assert_eq!(responses.purge().await.unwrap(), 1);
        assert_eq!(store.calls("get"), [T0]);
        assert_eq!(store.calls("delete"), [T0 + 5]);
        assert_eq!(store.calls("purge"), [T0 + 5]);

        let plain = Fake::new(false);
        assert!(start(&plain, &clock, PURGE_EVERY).responses().is_none());
    }

    #[tokio::test]
    async fn a_hung_store_is_an_error_within_the_write_timeout() {
        let store = Fake::new(true);
        let ledger = start(&store, &Clock::manual(T0), PURGE_EVERY);
        store.hang.store(true, Ordering::SeqCst);
        let responses = ledger.responses().unwrap();
        let started = std::time::Instant::now();
        let response = StoredResponse {
            id: "resp_1".into(),
            owner: String::new(),
            created_ms: T0,
            expires_ms: T0 + 1,
            response: serde_json::json!({}),
            input_items: vec![],
            history: vec![],
        };
        let errors = [
            responses.put(&response).await.unwrap_err(),
            responses.get("resp_1", "").await.unwrap_err(),
            responses.delete("resp_1", "").await.unwrap_err(),
            responses.purge().await.unwrap_err(),
        ];
        for e in errors {
            assert_eq!(e.0, "the ledger store did not answer within 50 ms");
        }
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    /// The ledger purges on its own, by its clock, every `responses_purge_every`, and stops
    /// when it is closed.
    #[tokio::test]
    async fn expired_responses_are_purged_by_the_ledgers_clock_until_it_closes() {
        let clock = Clock::manual(T0);
        let store = Fake::new(true);
        let ledger = start(&store, &clock, Duration::from_millis(5));
        wait_until("two purges", || store.calls("purge").len() >= 2).await;
        clock.set(T0 + 3_600_000);
        wait_until("a purge an hour on", || {
            store.calls("purge").contains(&(T0 + 3_600_000))
        })
        .await;
        let purges = store.calls("purge");
        assert!(purges.iter().all(|&t| t == T0 || t == T0 + 3_600_000));
        ledger.close(Duration::from_secs(1)).await;
        let after_close = store.calls("purge").len();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(store.calls("purge").len(), after_close, "stopped at close");

        // A ledger that is never closed purges no sooner than its interval.
        let store = Fake::new(true);
        let _ledger = start(&store, &clock, Duration::from_secs(3_600));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(store.calls("purge").is_empty());
    }
}
