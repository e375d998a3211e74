-- When a client's secret was last rotated (Unix milliseconds), NULL if never. Rotation deletes
-- the client's tokens in the same transaction; every gateway reloads these times each second and
-- drops a client's cached tokens when its time changes, so old tokens stop working everywhere
-- within that second without comparing clocks across replicas.
ALTER TABLE clients ADD COLUMN secret_rotated_at INTEGER;
