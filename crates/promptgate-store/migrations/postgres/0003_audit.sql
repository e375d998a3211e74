-- The audit log. `body` is the RFC 8785 canonical JSON of the entry without its hash: the exact
-- bytes that are chained and that form the Merkle leaf. The other columns repeat what the body
-- says so that listings can filter on indexes; verification reads only the body and the hashes.
CREATE TABLE audit_entries (
    sequence    BIGINT PRIMARY KEY,           -- 1-based, gap-free; assigned inside the writing transaction
    id          UUID NOT NULL UNIQUE,
    recorded_at BIGINT NOT NULL,              -- unix milliseconds, for time filters
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    prompt_id   UUID,
    body        TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,                -- lowercase hex
    hash        TEXT NOT NULL,
    leaf_hash   TEXT NOT NULL
);
CREATE INDEX audit_entries_prompt ON audit_entries (prompt_id, sequence);
CREATE INDEX audit_entries_action ON audit_entries (action, sequence);
CREATE INDEX audit_entries_actor ON audit_entries (actor, sequence);

-- Append-only, enforced by the database: no UPDATE, no DELETE, no TRUNCATE, and every insert
-- must extend the chain: the next sequence, linked to the current last hash. Writers serialise
-- on `LOCK TABLE audit_entries IN EXCLUSIVE MODE` before they read the head (see the store);
-- this trigger, with the primary key, keeps the chain linear even for a writer that does not.
CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION promptgate_refuse('audit entries are append-only');
CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries
    FOR EACH STATEMENT EXECUTE FUNCTION promptgate_refuse('audit entries are append-only');

CREATE FUNCTION audit_entries_extend_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    last_sequence BIGINT;
    last_hash     TEXT;
BEGIN
    SELECT sequence, hash INTO last_sequence, last_hash
        FROM audit_entries ORDER BY sequence DESC LIMIT 1;
    IF NEW.sequence IS DISTINCT FROM COALESCE(last_sequence, 0) + 1
       OR NEW.prev_hash IS DISTINCT FROM COALESCE(last_hash,
            '0000000000000000000000000000000000000000000000000000000000000000') THEN
        RAISE EXCEPTION 'an audit entry must extend the chain';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER audit_entries_extend_chain BEFORE INSERT ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION audit_entries_extend_chain();

-- Signed tree heads, kept so that `verify` can check the log against every head it ever signed.
CREATE TABLE audit_tree_heads (
    tree_size BIGINT NOT NULL,
    key_id    TEXT NOT NULL,
    root_hash TEXT NOT NULL,
    signed_at TEXT COLLATE "C" NOT NULL,      -- the signed RFC 3339 text, verbatim
    signature TEXT NOT NULL,
    PRIMARY KEY (tree_size, key_id)
);
CREATE TRIGGER audit_tree_heads_append_only BEFORE UPDATE OR DELETE ON audit_tree_heads
    FOR EACH ROW EXECUTE FUNCTION promptgate_refuse('signed tree heads are append-only');
CREATE TRIGGER audit_tree_heads_no_truncate BEFORE TRUNCATE ON audit_tree_heads
    FOR EACH STATEMENT EXECUTE FUNCTION promptgate_refuse('signed tree heads are append-only');
