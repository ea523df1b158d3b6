-- The store's own id. Every credential envelope is bound to it (and to its row and the row's
-- version), so a row copied in from another store, or an older envelope put back, does not
-- decrypt. One row, created once; never changed.
CREATE TABLE IF NOT EXISTS oauthtest_store (
    singleton  INTEGER PRIMARY KEY CHECK (singleton = 1),
    store_id   TEXT    NOT NULL,
    created_at TEXT    NOT NULL
);

INSERT INTO oauthtest_store (singleton, store_id, created_at)
SELECT 1, lower(hex(randomblob(16))), strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
WHERE NOT EXISTS (SELECT 1 FROM oauthtest_store);
