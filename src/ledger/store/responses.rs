//! [`ResponseStore`] on the ledger's database: the `responses` table (`0003_responses.sql`),
//! the Response and its item lists as JSON text.
//!
//! Writes (`put`, `delete`, the purge) go through the writing pool (on SQLite its one
//! connection, shared with the ledger's batches); `get` reads on the reader pool. A purge
//! deletes [`PURGE_ROWS`] rows per statement, each statement a transaction of its own, so that
//! it never holds the database's lock (SQLite) or many row locks (PostgreSQL) for long; on
//! PostgreSQL it skips rows another replica's purge holds.

use futures_util::future::BoxFuture;
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Dialect, SqlStore};
use crate::ledger::StoreError;
use crate::ledger::responses::{ResponseStore, StoredResponse};

/// Rows deleted per statement of a purge.
const PURGE_ROWS: i64 = 100;
/// The most statements of one purge: past them, the rest waits for the next purge.
const PURGE_STATEMENTS: usize = 100;

impl SqlStore {
    async fn put(&self, r: &StoredResponse) -> Result<(), StoreError> {
        self.ready().await?;
        let json =
            |text: serde_json::Result<String>| text.map_err(|e| self.fail("store response", e));
        let response = json(serde_json::to_string(&r.response))?;
        let input_items = json(serde_json::to_string(&r.input_items))?;
        let history = json(serde_json::to_string(&r.history))?;
        sqlx::query(
            "INSERT INTO responses \
             (id, owner, created_ms, expires_ms, response, input_items, history) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET \
             owner = excluded.owner, created_ms = excluded.created_ms, \
             expires_ms = excluded.expires_ms, response = excluded.response, \
             input_items = excluded.input_items, history = excluded.history",
        )
        .bind(&r.id)
        .bind(&r.owner)
        .bind(r.created_ms)
        .bind(r.expires_ms)
        .bind(response)
        .bind(input_items)
        .bind(history)
        .execute(&self.pool)
        .await
        .map_err(|e| self.fail("store response", e))?;
        Ok(())
    }

    async fn get(
        &self,
        id: &str,
        owner: &str,
        now_ms: i64,
    ) -> Result<Option<StoredResponse>, StoreError> {
        self.ready().await?;
        let row = sqlx::query(
            "SELECT created_ms, expires_ms, response, input_items, history FROM responses \
             WHERE id = $1 AND owner = $2 AND expires_ms > $3",
        )
        .bind(id)
        .bind(owner)
        .bind(now_ms)
        .fetch_optional(&self.reader)
        .await
        .map_err(|e| self.fail("read response", e))?;
        row.map(|row| self.decode(id, owner, &row)).transpose()
    }

    fn decode(&self, id: &str, owner: &str, row: &AnyRow) -> Result<StoredResponse, StoreError> {
        let fail = |e: &dyn std::fmt::Display| self.fail(&format!("read response {id}"), e);
        let text = |i: usize| row.try_get::<String, _>(i).map_err(|e| fail(&e));
        let items = |i: usize| -> Result<Vec<Value>, StoreError> {
            serde_json::from_str(&text(i)?).map_err(|e| fail(&e))
        };
        Ok(StoredResponse {
            id: id.to_string(),
            owner: owner.to_string(),
            created_ms: row.try_get(0).map_err(|e| fail(&e))?,
            expires_ms: row.try_get(1).map_err(|e| fail(&e))?,
            response: serde_json::from_str(&text(2)?).map_err(|e| fail(&e))?,
            input_items: items(3)?,
            history: items(4)?,
        })
    }

    async fn delete(&self, id: &str, owner: &str, now_ms: i64) -> Result<bool, StoreError> {
        self.ready().await?;
        let done =
            sqlx::query("DELETE FROM responses WHERE id = $1 AND owner = $2 AND expires_ms > $3")
                .bind(id)
                .bind(owner)
                .bind(now_ms)
                .execute(&self.pool)
                .await
                .map_err(|e| self.fail("delete response", e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn purge(&self, now_ms: i64) -> Result<u64, StoreError> {
        self.ready().await?;
        let sql = match self.dialect {
            Dialect::Sqlite => {
                "DELETE FROM responses WHERE id IN \
                 (SELECT id FROM responses WHERE expires_ms <= $1 LIMIT $2)"
            }
            Dialect::Postgres => {
                "DELETE FROM responses WHERE id IN \
                 (SELECT id FROM responses WHERE expires_ms <= $1 LIMIT $2 \
                  FOR UPDATE SKIP LOCKED)"
            }
        };
        let mut purged = 0;
        for _ in 0..PURGE_STATEMENTS {
            let done = sqlx::query(sql)
                .bind(now_ms)
                .bind(PURGE_ROWS)
                .execute(&self.pool)
                .await
                .map_err(|e| self.fail("purge responses", e))?;
            purged += done.rows_affected();
            if done.rows_affected() < PURGE_ROWS as u64 {
                break;
            }
            // Let the ledger's writes and other operations have the connection in between.
            tokio::task::yield_now().await;
        }
        Ok(purged)
    }
}

impl ResponseStore for SqlStore {
    fn put_response<'a>(
        &'a self,
        response: &'a StoredResponse,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.put(response))
    }

    fn get_response<'a>(
        &'a self,
        id: &'a str,
        owner: &'a str,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<Option<StoredResponse>, StoreError>> {
        Box::pin(self.get(id, owner, now_ms))
    }

    fn delete_response<'a>(
        &'a self,
        id: &'a str,
        owner: &'a str,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(self.delete(id, owner, now_ms))
    }

    fn purge_responses(&self, now_ms: i64) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(self.purge(now_ms))
    }
}
