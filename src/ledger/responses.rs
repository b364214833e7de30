//! Stored Responses (`POST /v1/responses` with `store`): each response with its input items,
//! kept in the ledger's database (so replicas sharing a PostgreSQL ledger share them) until it
//! expires, readable and deletable only by its owner.
//!
//! - [`StoredResponse`]: one row. Besides the Response and this request's input items it holds
//!   the whole conversation so far (`history`), so that a request continuing it
//!   (`previous_response_id`) needs one read.
//! - [`ResponseStore`]: the database's operations ([`super::store::SqlStore`] implements it;
//!   [`super::Store::responses`] reaches it from the ledger's store).
//! - [`Responses`]: what the server uses, from [`super::writer::Ledger::responses`]: the same
//!   operations, each bounded by the ledger's write timeout, "now" read from the ledger's clock.
//!   The ledger also purges expired responses every [`PURGE_EVERY`].
//! - [`page_items`]: the list object of `GET /v1/responses/{id}/input_items`.
//!
//! An owner is an opaque string (the caller's API key name, or its user, or `""` when it has
//! neither); a response of another owner is answered as missing, never as forbidden.

mod handle;
pub mod page;

use futures_util::future::BoxFuture;
use serde_json::Value;

pub(super) use handle::purge_task;
pub use handle::{PURGE_EVERY, Responses};
pub use page::{DEFAULT_LIMIT, MAX_LIMIT, page_items};

use super::StoreError;

/// One stored response.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredResponse {
    /// The Response's id (`resp_...`).
    pub id: String,
    /// Who may read or delete it (opaque; `""` for a caller without a key or user).
    pub owner: String,
    /// When it was stored, Unix milliseconds.
    pub created_ms: i64,
    /// From then on it is gone (to `get` at once, from the database at the next purge).
    pub expires_ms: i64,
    /// The Response object.
    pub response: Value,
    /// This request's input items, with their ids (`GET .../input_items`).
    pub input_items: Vec<Value>,
    /// The conversation up to and including this response's output: the previous response's
    /// history, then this input, then this output.
    pub history: Vec<Value>,
}

/// The database's stored responses. A response counts as missing once `now_ms` reaches its
/// `expires_ms`, and to anyone but its owner.
pub trait ResponseStore: Send + Sync + 'static {
    /// Stores `response`; one already stored under its id is replaced.
    fn put_response<'a>(
        &'a self,
        response: &'a StoredResponse,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The response `id` of `owner`, unless it is missing, expired or another owner's.
    fn get_response<'a>(
        &'a self,
        id: &'a str,
        owner: &'a str,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<Option<StoredResponse>, StoreError>>;

    /// Deletes the response `id` of `owner`; false when there was none to delete (missing,
    /// expired or another owner's).
    fn delete_response<'a>(
        &'a self,
        id: &'a str,
        owner: &'a str,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Deletes responses expired by `now_ms`, in short batches (none holds a lock for long);
    /// returns how many.
    fn purge_responses(&self, now_ms: i64) -> BoxFuture<'_, Result<u64, StoreError>>;
}
