-- Balance: one row per user that has ever been charged; history is append-only.
CREATE TABLE balances (
    user_id    INTEGER PRIMARY KEY,
    balance    INTEGER NOT NULL CHECK (balance >= 0),
    updated_at INTEGER NOT NULL
);

CREATE TABLE balance_history (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       INTEGER NOT NULL,
    kind          TEXT    NOT NULL CHECK (kind IN ('CHARGE', 'PAYMENT')),
    amount        INTEGER NOT NULL CHECK (amount > 0),
    balance_after INTEGER NOT NULL CHECK (balance_after >= 0),
    order_id      INTEGER,
    created_at    INTEGER NOT NULL
);
CREATE INDEX balance_history_by_user ON balance_history (user_id, id);

-- Idempotency keys live beside the effect they guard and are written in its transaction.
CREATE TABLE idempotency_keys (
    user_id     INTEGER NOT NULL,
    key         TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    outcome     TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);

CREATE TABLE products (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL CHECK (length(name) > 0),
    price      INTEGER NOT NULL CHECK (price >= 1),
    stock      INTEGER NOT NULL CHECK (stock >= 0),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
