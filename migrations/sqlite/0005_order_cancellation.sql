-- SQLite cannot alter a CHECK constraint, so orders and balance_history are rebuilt (the SQLite
-- docs, "Making Other Kinds Of Table Schema Changes"). Foreign keys stay on (sqlx runs SQLite
-- migrations in a transaction, where they cannot be switched off), so order_items, which refers
-- to orders, is rebuilt with it: children first out, parents first in, no violation at any step.
-- Orders can be cancelled (once): the status says so and cancelled_at says when.
CREATE TABLE orders_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id         INTEGER NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('PAID', 'CANCELLED')),
    total_amount    INTEGER NOT NULL CHECK (total_amount >= 0),
    discount_amount INTEGER NOT NULL CHECK (discount_amount >= 0),
    paid_amount     INTEGER NOT NULL CHECK (paid_amount >= 0),
    user_coupon_id  INTEGER REFERENCES user_coupons (id),
    created_at      INTEGER NOT NULL,
    cancelled_at    INTEGER,
    CHECK ((status = 'CANCELLED') = (cancelled_at IS NOT NULL))
);
INSERT INTO orders_new (id, user_id, status, total_amount, discount_amount, paid_amount,
                        user_coupon_id, created_at)
    SELECT id, user_id, status, total_amount, discount_amount, paid_amount, user_coupon_id,
           created_at
    FROM orders;
CREATE TABLE order_items_new (
    order_id   INTEGER NOT NULL REFERENCES orders_new (id),
    product_id INTEGER NOT NULL REFERENCES products (id),
    name       TEXT    NOT NULL,
    unit_price INTEGER NOT NULL,
    quantity   INTEGER NOT NULL CHECK (quantity >= 1),
    amount     INTEGER NOT NULL,
    PRIMARY KEY (order_id, product_id)
);
INSERT INTO order_items_new (order_id, product_id, name, unit_price, quantity, amount)
    SELECT order_id, product_id, name, unit_price, quantity, amount FROM order_items;
DROP TABLE order_items;
DROP TABLE orders;
-- Renaming rewrites order_items_new's reference to the new name.
ALTER TABLE orders_new RENAME TO orders;
ALTER TABLE order_items_new RENAME TO order_items;
CREATE INDEX orders_by_user ON orders (user_id, id);
CREATE INDEX orders_by_time ON orders (created_at);

-- A cancellation pays the order back with a REFUND row; never two for one order.
CREATE TABLE balance_history_new (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       INTEGER NOT NULL,
    kind          TEXT    NOT NULL CHECK (kind IN ('CHARGE', 'PAYMENT', 'REFUND')),
    amount        INTEGER NOT NULL CHECK (amount > 0),
    balance_after INTEGER NOT NULL CHECK (balance_after >= 0),
    order_id      INTEGER,
    created_at    INTEGER NOT NULL
);
INSERT INTO balance_history_new (id, user_id, kind, amount, balance_after, order_id, created_at)
    SELECT id, user_id, kind, amount, balance_after, order_id, created_at FROM balance_history;
DROP TABLE balance_history;
ALTER TABLE balance_history_new RENAME TO balance_history;
CREATE INDEX balance_history_by_user ON balance_history (user_id, id);
CREATE UNIQUE INDEX balance_history_one_refund ON balance_history (order_id) WHERE kind = 'REFUND';
