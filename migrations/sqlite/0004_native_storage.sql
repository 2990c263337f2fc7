-- SQLite keeps instants as microseconds since the epoch (it has no timestamp type) and shop
-- days as 'YYYY-MM-DD' text; PostgreSQL's version of this migration moves to native types.

-- Idempotency keys store the HTTP answer (status and body), not serialized domain types.
-- Outcomes stored in the old form cannot be replayed faithfully, so those keys go; they were
-- kept for retries of at most 48 hours.
DELETE FROM idempotency_keys;
ALTER TABLE idempotency_keys DROP COLUMN outcome;
ALTER TABLE idempotency_keys ADD COLUMN status INTEGER NOT NULL DEFAULT 0;
ALTER TABLE idempotency_keys ADD COLUMN body TEXT NOT NULL DEFAULT '';

-- Readiness probes write here to learn whether the database takes writes again.
CREATE TABLE health_probes (
    id  INTEGER PRIMARY KEY AUTOINCREMENT,
    pad TEXT NOT NULL
);
