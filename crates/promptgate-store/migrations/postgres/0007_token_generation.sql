-- The same column, index and meaning as the SQLite schema's 0009_token_generation.sql.
ALTER TABLE clients ADD COLUMN token_generation BIGINT NOT NULL DEFAULT 0;
CREATE INDEX access_tokens_by_client_and_time ON access_tokens (client_id, issued_at);
