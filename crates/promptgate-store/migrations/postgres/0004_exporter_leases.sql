-- Which replica delivers each exporter's outbox. Only the holder of an unexpired lease
-- delivers, so a batch is not sent by two replicas at once (the cursor's compare-and-set alone
-- only stops the second from moving the cursor, after it has delivered). A holder renews its
-- lease on every pass and deletes it on graceful shutdown; a crashed holder's lease lapses at
-- `expires_at` (Unix milliseconds) and another replica takes over from the exporter's cursor.
CREATE TABLE exporter_leases (
    exporter   TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
