-- The admin audit log: every admin write, stored in the write's own transaction. Entries are
-- only ever appended; the API lists them newest first by id.
CREATE TABLE audit_log (
    id           BIGSERIAL   PRIMARY KEY,
    actor        BIGINT      NOT NULL,
    action       TEXT        NOT NULL,
    resource     TEXT        NOT NULL,
    before_value JSONB,
    after_value  JSONB,
    at           TIMESTAMPTZ NOT NULL
);
