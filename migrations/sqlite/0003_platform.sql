-- Data platform. Events are applied once: the event id is the key.
CREATE TABLE platform_processed_events (
    event_id     BIGINT PRIMARY KEY,
    processed_at BIGINT NOT NULL
);

-- Live sales per (shop-time-zone day, product), fed by order events.
CREATE TABLE platform_sales_live (
    day        TEXT   NOT NULL,
    product_id BIGINT NOT NULL,
    quantity   BIGINT NOT NULL,
    amount     BIGINT NOT NULL,
    PRIMARY KEY (day, product_id)
);

-- Authoritative figures written by the daily job, recomputed from the orders.
CREATE TABLE platform_daily_sales (
    day        TEXT   NOT NULL,
    product_id BIGINT NOT NULL,
    quantity   BIGINT NOT NULL,
    amount     BIGINT NOT NULL,
    PRIMARY KEY (day, product_id)
);

-- One row per finalized day; also the lock that serializes concurrent runs of the job.
CREATE TABLE platform_daily_runs (
    day         TEXT   PRIMARY KEY,
    products    BIGINT NOT NULL,
    quantity    BIGINT NOT NULL,
    amount      BIGINT NOT NULL,
    computed_at BIGINT NOT NULL
);
