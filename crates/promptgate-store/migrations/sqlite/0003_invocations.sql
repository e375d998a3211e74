-- One row per invocation (success, error, blocked), written in batches off the request path.
-- `seq` is the storage order: telemetry pages are keyset-paginated on it, so a page boundary is
-- stable while new records arrive (a record written late never lands before a cursor).
CREATE TABLE invocations (
    seq                    INTEGER PRIMARY KEY AUTOINCREMENT,
    id                     TEXT NOT NULL UNIQUE,
    timestamp              INTEGER NOT NULL,
    prompt_id              TEXT NOT NULL,
    version                TEXT NOT NULL,
    model                  TEXT NOT NULL,
    status                 TEXT NOT NULL CHECK (status IN ('SUCCESS', 'ERROR', 'BLOCKED')),
    error_code             TEXT,
    latency_ms             REAL NOT NULL,
    upstream_latency_ms    REAL,
    time_to_first_token_ms REAL,
    prompt_tokens          INTEGER NOT NULL,
    completion_tokens      INTEGER NOT NULL,
    session_id             TEXT,
    client_id              TEXT NOT NULL,
    metadata               TEXT NOT NULL,
    feedback_score         REAL,
    feedback_comment       TEXT,
    feedback_at            INTEGER
) STRICT;

CREATE INDEX invocations_by_prompt ON invocations (prompt_id, seq);
CREATE INDEX invocations_by_time ON invocations (timestamp);
