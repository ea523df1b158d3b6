-- oauthtest's store. Every table is prefixed oauthtest_ so the store can live inside an existing
-- staging database without touching its tables. The first seven columns keep the layout staging
-- credential tables already have; the rest is what the harness must know without decrypting.
CREATE TABLE IF NOT EXISTS oauthtest_credentials (
    id                   BIGSERIAL   PRIMARY KEY,
    user_id              BIGINT      NOT NULL,
    type                 TEXT        NOT NULL,
    name                 TEXT        NOT NULL,
    encrypted_data       TEXT        NOT NULL,
    created_at           TIMESTAMPTZ NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL,
    expires_at           TIMESTAMPTZ,
    state                TEXT        NOT NULL DEFAULT 'active'
                         CHECK (state IN ('active', 'needs_reconnect')),
    has_refresh_token    BOOLEAN     NOT NULL DEFAULT TRUE,
    key_id               TEXT        NOT NULL,
    version              BIGINT      NOT NULL DEFAULT 1,
    last_refresh_at      TIMESTAMPTZ,
    last_refresh_outcome TEXT,
    failure_count        BIGINT      NOT NULL DEFAULT 0,
    cooldown_until_ms    BIGINT,
    lease_owner          TEXT,
    lease_expires_at_ms  BIGINT
);

CREATE TABLE IF NOT EXISTS oauthtest_refresh_history (
    id             BIGSERIAL   PRIMARY KEY,
    credential_id  BIGINT      NOT NULL REFERENCES oauthtest_credentials (id) ON DELETE CASCADE,
    at             TIMESTAMPTZ NOT NULL,
    mode           TEXT        NOT NULL,
    action         TEXT        NOT NULL,
    outcome        TEXT        NOT NULL,
    detail         TEXT
);

CREATE INDEX IF NOT EXISTS oauthtest_refresh_history_credential
    ON oauthtest_refresh_history (credential_id, id);
