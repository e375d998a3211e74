-- API keys (shared/API.md "API keys", docs/api-keys.md): long-lived bearer credentials of a
-- client with a subset of its scopes. The key itself is never stored, only its SHA-256 hex.
-- A key is never deleted: revoking sets `revoked_at`, so the list and the audit log keep it.
CREATE TABLE api_keys (
    id           TEXT COLLATE "C" PRIMARY KEY,
    client_id    TEXT COLLATE "C" NOT NULL REFERENCES clients (id),
    name         TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,
    scopes       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    revoked_at   BIGINT,
    last_used_at BIGINT
);

CREATE INDEX api_keys_by_client ON api_keys (client_id, created_at);

-- The API key an invocation was made with (NULL: an access token).
ALTER TABLE invocations ADD COLUMN api_key_id TEXT;
