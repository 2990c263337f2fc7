//! The PostgreSQL backend of commerce's store, on sqlx's native driver: native types
//! (`TIMESTAMPTZ`, `DATE`), sets as arrays (`= ANY($1)`, `UNNEST`), a pool for reads and lone
//! writes, the committers' transactions and an optional streaming replica for reads that may
//! trail.

mod audit;
mod balance;
mod coupon;
mod engine;
mod error;
mod idempotency;
mod order;
mod outbox;
mod platform;
mod product;
mod replica;
mod webhook;

pub use engine::connect;

use async_trait::async_trait;
use ref_cast::RefCast;
use sqlx::{Executor, PgConnection};

use commerce_store::{Conn, Row, StoreError};
use error::db;

/// A PostgreSQL connection, used as a [`Conn`] (a type of this crate, so it may implement
/// the store's traits).
#[derive(RefCast)]
#[repr(transparent)]
pub(crate) struct PgConn(PgConnection);

#[async_trait]
impl Conn for PgConn {
    async fn savepoint(&mut self) -> Result<(), StoreError> {
        self.0.execute("SAVEPOINT effect").await.map_err(db)?;
        Ok(())
    }

    async fn release_savepoint(&mut self) -> Result<(), StoreError> {
        self.0
            .execute("RELEASE SAVEPOINT effect")
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn rollback_to_savepoint(&mut self) -> Result<(), StoreError> {
        self.0
            .execute("ROLLBACK TO SAVEPOINT effect")
            .await
            .map_err(db)?;
        self.0
            .execute("RELEASE SAVEPOINT effect")
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn probe_write(&mut self) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO health_probes (pad) VALUES (repeat('x', 8192))")
            .execute(&mut self.0)
            .await
            .map_err(db)?;
        self.0
            .execute("DELETE FROM health_probes")
            .await
            .map_err(db)?;
        Ok(())
    }

    /// Rows that exist but cannot be locked now: `SKIP LOCKED` passes over rows another
    /// transaction holds, so what exists and was not returned is held elsewhere. The caller
    /// rolls back, which lets the rows it did lock go at once.
    async fn held_rows(&mut self, rows: &[Row]) -> Result<Vec<Row>, StoreError> {
        let mut kinds: Vec<Row> = rows.iter().map(|r| r.with_key(0)).collect();
        kinds.sort_unstable();
        kinds.dedup();
        let mut held = Vec::new();
        for kind in kinds {
            let keys: Vec<i64> = rows
                .iter()
                .filter(|r| r.with_key(0) == kind)
                .map(|r| r.key())
                .collect();
            let (table, key) = kind.table();
            let free: Vec<i64> = sqlx::query_scalar(&format!(
                "SELECT {key} FROM {table} WHERE {key} = ANY($1) FOR UPDATE SKIP LOCKED"
            ))
            .bind(&keys)
            .fetch_all(&mut self.0)
            .await
            .map_err(db)?;
            let existing: Vec<i64> =
                sqlx::query_scalar(&format!("SELECT {key} FROM {table} WHERE {key} = ANY($1)"))
                    .bind(&keys)
                    .fetch_all(&mut self.0)
                    .await
                    .map_err(db)?;
            held.extend(
                existing
                    .into_iter()
                    .filter(|k| !free.contains(k))
                    .map(|k| kind.with_key(k)),
            );
        }
        Ok(held)
    }
}
