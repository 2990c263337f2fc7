//! The schema's migrations (`migrations/sqlite/`), applied in order, each in a transaction of
//! its own. Their bookkeeping is sqlx's (`_sqlx_migrations`: version, description, SHA-384
//! checksum of the SQL), which earlier versions of the server applied them with: a database
//! they created upgrades as it is.

use rusqlite::{params, OpenFlags, OptionalExtension};
use sha2::{Digest, Sha384};
use std::time::Instant;

use crate::{db, Location, SqliteConn};
use commerce_store::{Fault, StoreError};

macro_rules! migration {
    ($name:literal) => {
        (
            $name,
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../migrations/sqlite/",
                $name,
                ".sql"
            )),
        )
    };
}

/// Every migration, by file name; a new file is listed here too (a test checks).
const MIGRATIONS: &[(&str, &str)] = &[
    migration!("0001_balance_products"),
    migration!("0002_coupons_orders"),
    migration!("0003_platform"),
    migration!("0004_native_storage"),
    migration!("0005_order_cancellation"),
    migration!("0006_platform_pruning"),
    migration!("0007_outbox_trace"),
    migration!("0008_audit_log"),
    migration!("0009_product_sale_window"),
    migration!("0010_purchase_limits"),
    migration!("0011_webhooks"),
];

/// One migration as sqlx names it: `0001_balance_products.sql` is version 1, described as
/// "balance products".
struct Migration {
    version: i64,
    description: String,
    sql: &'static str,
    checksum: Vec<u8>,
}

fn migrations() -> Vec<Migration> {
    MIGRATIONS
        .iter()
        .map(|(name, sql)| {
            let (version, description) = name.split_once('_').expect("NNNN_description");
            Migration {
                version: version.parse().expect("a numbered migration"),
                description: description.replace('_', " "),
                sql,
                checksum: Sha384::digest(sql.as_bytes()).to_vec(),
            }
        })
        .collect()
}

/// Applies the migrations the database lacks, on a connection of its own.
pub(crate) async fn migrate(location: Location) -> Result<(), StoreError> {
    tokio::task::spawn_blocking(move || {
        let conn =
            location.open(OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE)?;
        apply(&conn)
    })
    .await
    .map_err(|e| StoreError::new(Fault::Bug, e))?
    .map_err(|e| StoreError::new(Fault::Unavailable, e))
}

fn apply(conn: &SqliteConn) -> Result<(), StoreError> {
    let conn = &conn.0;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
             version BIGINT PRIMARY KEY,
             description TEXT NOT NULL,
             installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
             success BOOLEAN NOT NULL,
             checksum BLOB NOT NULL,
             execution_time BIGINT NOT NULL
         )",
    )
    .map_err(db)?;
    let dirty: Option<i64> = conn
        .query_row(
            "SELECT version FROM _sqlx_migrations WHERE success = false ORDER BY version LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(db)?;
    if let Some(version) = dirty {
        return Err(refusal(format!(
            "migration {version} was left half-applied"
        )));
    }
    let known = migrations();
    let applied: Vec<(i64, Vec<u8>)> = conn
        .prepare("SELECT version, checksum FROM _sqlx_migrations ORDER BY version")
        .map_err(db)?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)?;
    for (version, checksum) in &applied {
        match known.iter().find(|m| m.version == *version) {
            None => {
                return Err(refusal(format!(
                    "migration {version} was applied but is unknown to this version"
                )))
            }
            Some(m) if m.checksum != *checksum => {
                return Err(refusal(format!(
                    "migration {version} was changed after it was applied"
                )))
            }
            Some(_) => {}
        }
    }
    for m in known
        .iter()
        .filter(|m| !applied.iter().any(|(v, _)| *v == m.version))
    {
        let started = Instant::now();
        conn.execute_batch("BEGIN IMMEDIATE").map_err(db)?;
        let applied = conn.execute_batch(m.sql).and_then(|()| {
            conn.execute(
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
                 VALUES (?1, ?2, TRUE, ?3, ?4)",
                params![
                    m.version,
                    m.description,
                    m.checksum,
                    started.elapsed().as_nanos() as i64
                ],
            )?;
            conn.execute_batch("COMMIT")
        });
        if let Err(error) = applied {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(db(error));
        }
    }
    Ok(())
}

fn refusal(why: String) -> StoreError {
    StoreError::new(Fault::Unavailable, why)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::Path;

    #[test]
    fn every_migration_file_is_listed() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations/sqlite");
        let files: BTreeSet<String> = std::fs::read_dir(dir)
            .expect("the migrations")
            .map(|e| {
                e.expect("an entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        let listed: BTreeSet<String> = MIGRATIONS.iter().map(|(n, _)| format!("{n}.sql")).collect();
        assert_eq!(files, listed);
    }

    #[test]
    fn bookkeeping_matches_what_sqlx_wrote() {
        let first = &migrations()[0];
        assert_eq!(first.version, 1);
        assert_eq!(first.description, "balance products");
        assert_eq!(first.checksum.len(), 48, "SHA-384");
    }
}
