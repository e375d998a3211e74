-- Bumped each time tokens of the client are revoked because it holds more than
-- `[auth] max_live_tokens_per_client` (in the same transaction as the revoking delete). Every
-- gateway reloads these counters each second and drops a client's cached tokens when its counter
-- changes, so revoked tokens stop working everywhere within that second; a counter, not a time,
-- so that two revocations within one millisecond are both noticed.
ALTER TABLE clients ADD COLUMN token_generation INTEGER NOT NULL DEFAULT 0;
-- The bound's delete reads one client's tokens newest first.
CREATE INDEX access_tokens_by_client_and_time ON access_tokens (client_id, issued_at);
