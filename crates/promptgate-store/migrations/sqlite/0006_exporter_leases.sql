-- Which process delivers each exporter's outbox. Several gateways (or a gateway and a second
-- one started beside it) may share the database; only the holder of an unexpired lease
-- delivers, so a batch is not sent by two of them at once. A holder renews its lease on every
-- pass and gives it up on graceful shutdown (expires_at = 0); a crashed holder's lease lapses at
-- `expires_at` (Unix milliseconds) and another process takes over from the exporter's cursor.
-- `pending_first`/`pending_last` are the sequences of the batch the holder started to deliver:
-- a process taking over re-sends exactly that batch, with the same batch id, before any other.
CREATE TABLE exporter_leases (
    exporter      TEXT PRIMARY KEY NOT NULL,
    holder        TEXT NOT NULL,
    expires_at    INTEGER NOT NULL,
    pending_first INTEGER,
    pending_last  INTEGER
) STRICT;
