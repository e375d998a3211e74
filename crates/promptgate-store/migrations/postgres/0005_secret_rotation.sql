-- When a client's secret was last rotated (Unix milliseconds), NULL if never; the same column
-- and meaning as the SQLite schema's 0007_secret_rotation.sql.
ALTER TABLE clients ADD COLUMN secret_rotated_at BIGINT;
