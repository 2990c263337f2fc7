-- The admin audit log: every admin write, stored in the write's own transaction. Entries are
-- only ever appended; the API lists them newest first by id. Values are JSON text, instants
-- microseconds since the epoch.
CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    actor        INTEGER NOT NULL,
    action       TEXT    NOT NULL,
    resource     TEXT    NOT NULL,
    before_value TEXT CHECK (before_value IS NULL OR json_valid(before_value)),
    after_value  TEXT CHECK (after_value IS NULL OR json_valid(after_value)),
    at           INTEGER NOT NULL
);
