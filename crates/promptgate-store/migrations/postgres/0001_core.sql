-- promptgate core schema on PostgreSQL: OAuth clients and tokens, prompts and their immutable
-- versions. Same tables and rules as the SQLite schema, so both stores behave alike:
-- * Times are Unix milliseconds (UTC) in BIGINT columns, exactly what the SQLite store keeps.
-- * Text that is ordered or pattern-matched uses the "C" collation, i.e. byte order, as SQLite's
--   BINARY collation does; the database's default collation is whatever the operator chose.
-- * JSON columns are TEXT: the store reads them back with its own codec, and jsonb would refuse
--   the escape \u0000 that JSON text may carry.
-- Secrets and tokens are stored only as SHA-256 hex.

CREATE TABLE clients (
    id          TEXT COLLATE "C" PRIMARY KEY,
    name        TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    disabled_at BIGINT
);

CREATE TABLE access_tokens (
    token_hash TEXT PRIMARY KEY,
    client_id  TEXT COLLATE "C" NOT NULL REFERENCES clients (id),
    scopes     TEXT NOT NULL,
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX access_tokens_by_expiry ON access_tokens (expires_at);
CREATE INDEX access_tokens_by_client ON access_tokens (client_id);

CREATE TABLE prompts (
    id         UUID PRIMARY KEY,
    name       TEXT COLLATE "C" NOT NULL UNIQUE,
    status     TEXT NOT NULL CHECK (status IN ('ACTIVE', 'ARCHIVED')),
    traffic    TEXT NOT NULL,
    revision   BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    created_by TEXT NOT NULL
);

CREATE TABLE prompt_versions (
    prompt_id            UUID NOT NULL REFERENCES prompts (id),
    version              TEXT COLLATE "C" NOT NULL,
    model_endpoint_ref   TEXT NOT NULL,
    system_prompt        TEXT NOT NULL,
    temperature          DOUBLE PRECISION NOT NULL,
    safety_guardrails    TEXT NOT NULL,
    few_shot_examples    TEXT NOT NULL,
    system_prompt_tokens BIGINT NOT NULL,
    tokenizer            TEXT NOT NULL,
    created_at           BIGINT NOT NULL,
    created_by           TEXT NOT NULL,
    PRIMARY KEY (prompt_id, version)
);

-- Refuses the statement that fired it with the message given as the trigger's argument; every
-- append-only and immutable table uses it.
CREATE FUNCTION promptgate_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', TG_ARGV[0];
END
$$;

-- Versions are immutable: the database refuses to change or remove one, whatever the client.
-- PostgreSQL has no INSERT OR REPLACE; an INSERT … ON CONFLICT DO UPDATE fires the update
-- trigger, and TRUNCATE (which fires no row trigger) has its own.
CREATE TRIGGER prompt_versions_immutable BEFORE UPDATE OR DELETE ON prompt_versions
    FOR EACH ROW EXECUTE FUNCTION promptgate_refuse('prompt versions are immutable');
CREATE TRIGGER prompt_versions_no_truncate BEFORE TRUNCATE ON prompt_versions
    FOR EACH STATEMENT EXECUTE FUNCTION promptgate_refuse('prompt versions are immutable');
