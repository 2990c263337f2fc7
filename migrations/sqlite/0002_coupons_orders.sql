CREATE TABLE coupons (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    name             TEXT    NOT NULL CHECK (length(name) > 0),
    discount_type    TEXT    NOT NULL CHECK (discount_type IN ('FIXED', 'RATE')),
    discount_value   INTEGER NOT NULL CHECK (discount_value >= 1),
    min_order_amount INTEGER NOT NULL CHECK (min_order_amount >= 0),
    total_quantity   INTEGER NOT NULL CHECK (total_quantity >= 1),
    issued_quantity  INTEGER NOT NULL DEFAULT 0,
    issue_starts_at  INTEGER,
    issue_ends_at    INTEGER,
    valid_days       INTEGER NOT NULL CHECK (valid_days >= 1),
    created_at       INTEGER NOT NULL,
    CHECK (issued_quantity >= 0 AND issued_quantity <= total_quantity)
);

-- The issue history: one row per issued coupon; used_at/order_id record its use.
CREATE TABLE user_coupons (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL,
    coupon_id  INTEGER NOT NULL REFERENCES coupons (id),
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    order_id   INTEGER,
    UNIQUE (user_id, coupon_id)
);
CREATE INDEX user_coupons_by_user ON user_coupons (user_id, id);

CREATE TABLE orders (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id         INTEGER NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('PAID')),
    total_amount    INTEGER NOT NULL CHECK (total_amount >= 0),
    discount_amount INTEGER NOT NULL CHECK (discount_amount >= 0),
    paid_amount     INTEGER NOT NULL CHECK (paid_amount >= 0),
    user_coupon_id  INTEGER REFERENCES user_coupons (id),
    created_at      INTEGER NOT NULL
);
CREATE INDEX orders_by_user ON orders (user_id, id);
CREATE INDEX orders_by_time ON orders (created_at);

CREATE TABLE order_items (
    order_id   INTEGER NOT NULL REFERENCES orders (id),
    product_id INTEGER NOT NULL REFERENCES products (id),
    name       TEXT    NOT NULL,
    unit_price INTEGER NOT NULL,
    quantity   INTEGER NOT NULL CHECK (quantity >= 1),
    amount     INTEGER NOT NULL,
    PRIMARY KEY (order_id, product_id)
);

-- Transactional outbox: written in the order's transaction, delivered after commit.
CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    topic        TEXT    NOT NULL,
    payload      TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    delivered_at INTEGER
);
CREATE INDEX outbox_pending ON outbox (id) WHERE delivered_at IS NULL;
