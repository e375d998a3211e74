-- The telemetry outbox: `invocations` holds the records; each exporter keeps the sequence of
-- the last record it delivered, so delivery resumes after a restart or an outage.
CREATE TABLE exporter_cursors (
    exporter   TEXT PRIMARY KEY NOT NULL,
    last_seq   INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
