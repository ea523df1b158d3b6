-- oauthtest's store. Every table is prefixed oauthtest_ so the store can live inside an existing
-- staging database without touching its tables. The first seven columns keep the layout staging
-- credential tables already have; the rest is what the harness must know without decrypting.
CREATE TABLE IF NOT EXISTS oauthtest_credentials (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id              INTEGER NOT NULL,
    type                 TEXT    NOT NULL,
    name                 TEXT    NOT NULL,
    encrypted_data       TEXT    NOT NULL,
    created_at           TEXT    NOT NULL,
    updated_at           TEXT    NOT NULL,
    expires_at           TEXT,
    state                TEXT    NOT NULL DEFAULT 'active'
                         CHECK (state IN ('active', 'needs_reconnect')),
    has_refresh_token    INTEGER NOT NULL DEFAULT 1,
    key_id               TEXT    NOT NULL,
    version              INTEGER NOT NULL DEFAULT 1,
    last_refresh_at      TEXT,
    last_refresh_outcome TEXT,
    failure_count        INTEGER NOT NULL DEFAULT 0,
    cooldown_until_ms    INTEGER,
    lease_owner          TEXT,
    lease_expires_at_ms  INTEGER
);

CREATE TABLE IF NOT EXISTS oauthtest_refresh_history (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    credential_id  INTEGER NOT NULL REFERENCES oauthtest_credentials (id) ON DELETE CASCADE,
    at             TEXT    NOT NULL,
    mode           TEXT    NOT NULL,
    action         TEXT    NOT NULL,
    outcome        TEXT    NOT NULL,
    detail         TEXT
);

CREATE INDEX IF NOT EXISTS oauthtest_refresh_history_credential
    ON oauthtest_refresh_history (credential_id, id);
