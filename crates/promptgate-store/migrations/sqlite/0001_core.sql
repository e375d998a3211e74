-- promptgate core schema: OAuth clients and tokens, prompts and their immutable versions.
-- Times are Unix milliseconds (UTC). Secrets and tokens are stored only as SHA-256 hex.

CREATE TABLE clients (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    disabled_at INTEGER
) STRICT;

CREATE TABLE access_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    client_id  TEXT NOT NULL REFERENCES clients (id),
    scopes     TEXT NOT NULL,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX access_tokens_by_expiry ON access_tokens (expires_at);

CREATE TABLE prompts (
    id         TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL UNIQUE,
    status     TEXT NOT NULL CHECK (status IN ('ACTIVE', 'ARCHIVED')),
    traffic    TEXT NOT NULL,
    revision   INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    created_by TEXT NOT NULL
) STRICT;

CREATE TABLE prompt_versions (
    prompt_id            TEXT NOT NULL REFERENCES prompts (id),
    version              TEXT NOT NULL,
    model_endpoint_ref   TEXT NOT NULL,
    system_prompt        TEXT NOT NULL,
    temperature          REAL NOT NULL,
    safety_guardrails    TEXT NOT NULL,
    few_shot_examples    TEXT NOT NULL,
    system_prompt_tokens INTEGER NOT NULL,
    tokenizer            TEXT NOT NULL,
    created_at           INTEGER NOT NULL,
    created_by           TEXT NOT NULL,
    PRIMARY KEY (prompt_id, version)
) STRICT;

-- Versions are immutable: the database refuses to change or remove one, whatever the client.
CREATE TRIGGER prompt_versions_no_update BEFORE UPDATE ON prompt_versions
BEGIN
    SELECT RAISE(ABORT, 'prompt versions are immutable');
END;

CREATE TRIGGER prompt_versions_no_delete BEFORE DELETE ON prompt_versions
BEGIN
    SELECT RAISE(ABORT, 'prompt versions are immutable');
END;
