-- Which replica delivers each exporter's outbox. Only the holder of an unexpired lease
-- delivers, so a batch is not sent by two replicas at once (the cursor's compare-and-set alone
-- only stops the second from moving the cursor, after it has delivered). A holder renews its
-- lease on every pass and gives it up on graceful shutdown (expires_at = 0); a crashed holder's
-- lease lapses at `expires_at` (Unix milliseconds) and another replica takes over from the
-- exporter's cursor. `pending_first`/`pending_last` are the sequences of the batch the holder
-- started to deliver: a replica taking over re-sends exactly that batch, with the same batch
-- id, before any other.
CREATE TABLE exporter_leases (
    exporter      TEXT PRIMARY KEY,
    holder        TEXT NOT NULL,
    expires_at    BIGINT NOT NULL,
    pending_first BIGINT,
    pending_last  BIGINT
);
