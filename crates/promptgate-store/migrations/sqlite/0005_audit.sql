-- The audit log. `body` is the RFC 8785 canonical JSON of the entry without its hash: the exact
-- bytes that are chained and that form the Merkle leaf. The other columns repeat what the body
-- says so that listings can filter on indexes; verification reads only the body and the hashes.
CREATE TABLE audit_entries (
    sequence    INTEGER PRIMARY KEY,          -- 1-based, gap-free; assigned inside the writing transaction
    id          TEXT NOT NULL UNIQUE,
    recorded_at INTEGER NOT NULL,             -- unix milliseconds, for time filters
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    prompt_id   TEXT,
    body        TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,                -- lowercase hex
    hash        TEXT NOT NULL,
    leaf_hash   TEXT NOT NULL
);
CREATE INDEX audit_entries_prompt ON audit_entries (prompt_id, sequence);
CREATE INDEX audit_entries_action ON audit_entries (action, sequence);
CREATE INDEX audit_entries_actor ON audit_entries (actor, sequence);

-- Append-only, enforced by the database: no UPDATE, no DELETE, no INSERT OR REPLACE (which
-- deletes without firing delete triggers), and every insert must extend the chain: the next
-- sequence, linked to the current last hash.
CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
BEGIN
    SELECT RAISE(ABORT, 'audit entries are append-only');
END;
CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries
BEGIN
    SELECT RAISE(ABORT, 'audit entries are append-only');
END;
CREATE TRIGGER audit_entries_extend_chain BEFORE INSERT ON audit_entries
WHEN NEW.sequence <> COALESCE((SELECT MAX(sequence) FROM audit_entries), 0) + 1
  OR NEW.prev_hash <> COALESCE(
        (SELECT hash FROM audit_entries ORDER BY sequence DESC LIMIT 1),
        '0000000000000000000000000000000000000000000000000000000000000000')
BEGIN
    SELECT RAISE(ABORT, 'an audit entry must extend the chain');
END;

-- Signed tree heads, kept so that `verify` can check the log against every head it ever signed.
CREATE TABLE audit_tree_heads (
    tree_size INTEGER NOT NULL,
    key_id    TEXT NOT NULL,
    root_hash TEXT NOT NULL,
    signed_at TEXT NOT NULL,                  -- the signed RFC 3339 text, verbatim
    signature TEXT NOT NULL,
    PRIMARY KEY (tree_size, key_id)
);
CREATE TRIGGER audit_tree_heads_no_update BEFORE UPDATE ON audit_tree_heads
BEGIN
    SELECT RAISE(ABORT, 'signed tree heads are append-only');
END;
CREATE TRIGGER audit_tree_heads_no_delete BEFORE DELETE ON audit_tree_heads
BEGIN
    SELECT RAISE(ABORT, 'signed tree heads are append-only');
END;
