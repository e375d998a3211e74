-- Which process delivers each exporter's outbox. Several gateways (or a gateway and a second
-- one started beside it) may share the database; only the holder of an unexpired lease
-- delivers, so a batch is not sent by two of them at once. A holder renews its lease on every
-- pass and deletes it on graceful shutdown; a crashed holder's lease lapses at `expires_at`
-- (Unix milliseconds) and another process takes over from the exporter's cursor.
CREATE TABLE exporter_leases (
    exporter   TEXT PRIMARY KEY NOT NULL,
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
