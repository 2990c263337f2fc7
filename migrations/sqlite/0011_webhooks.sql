-- Webhooks: a second consumer of the outbox. The fan-out takes events not yet fanned out and
-- creates one delivery per subscribed webhook; events written before webhooks existed need
-- none. Instants are microseconds since the epoch.
ALTER TABLE outbox ADD COLUMN fanned_out_at INTEGER;
UPDATE outbox SET fanned_out_at = created_at;
CREATE INDEX outbox_fan_out ON outbox (id) WHERE fanned_out_at IS NULL;

CREATE TABLE webhooks (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    url        TEXT    NOT NULL,
    -- The subscribed topics as a JSON array, e.g. ["order.paid","order.cancelled"].
    events     TEXT    NOT NULL CHECK (json_valid(events)),
    secret     TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);

-- One row per event and webhook; deleted with its webhook. `claimed_until` is the lease of
-- the instance sending it; `expires_at` the instant after which a failed attempt is final.
CREATE TABLE webhook_deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id       INTEGER NOT NULL REFERENCES webhooks (id),
    event_id         INTEGER NOT NULL,
    event            TEXT    NOT NULL,
    body             TEXT    NOT NULL,
    status           TEXT    NOT NULL CHECK (status IN ('PENDING', 'DELIVERED', 'FAILED')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_status_code INTEGER,
    last_error       TEXT,
    next_attempt_at  INTEGER,
    claimed_until    INTEGER,
    delivered_at     INTEGER,
    expires_at       INTEGER NOT NULL,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'PENDING';
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (webhook_id, id);
