-- Webhooks: a second consumer of the outbox. The fan-out claims events not yet fanned out
-- (not by an id cursor: commits land out of id order across instances) and creates one
-- delivery per subscribed webhook; events written before webhooks existed need none.
ALTER TABLE outbox ADD COLUMN fanned_out_at TIMESTAMPTZ;
UPDATE outbox SET fanned_out_at = created_at;
CREATE INDEX outbox_fan_out ON outbox (id) WHERE fanned_out_at IS NULL;

CREATE TABLE webhooks (
    id         BIGSERIAL   PRIMARY KEY,
    url        TEXT        NOT NULL,
    -- The subscribed topics, e.g. {order.paid,order.cancelled}.
    events     TEXT[]      NOT NULL,
    secret     TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- One row per event and webhook; deleted with its webhook. `claimed_until` is the lease of
-- the instance sending it; `expires_at` the instant after which a failed attempt is final.
CREATE TABLE webhook_deliveries (
    id               BIGSERIAL   PRIMARY KEY,
    webhook_id       BIGINT      NOT NULL REFERENCES webhooks (id),
    event_id         BIGINT      NOT NULL,
    event            TEXT        NOT NULL,
    body             TEXT        NOT NULL,
    status           TEXT        NOT NULL CHECK (status IN ('PENDING', 'DELIVERED', 'FAILED')),
    attempts         BIGINT      NOT NULL DEFAULT 0,
    last_status_code BIGINT,
    last_error       TEXT,
    next_attempt_at  TIMESTAMPTZ,
    claimed_until    TIMESTAMPTZ,
    delivered_at     TIMESTAMPTZ,
    expires_at       TIMESTAMPTZ NOT NULL,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'PENDING';
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (webhook_id, id);
