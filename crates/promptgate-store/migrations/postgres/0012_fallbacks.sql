-- The same columns and meaning as the SQLite schema's 0014_fallbacks.sql: a version's fallback
-- endpoints as a JSON array (NULL: none), the endpoint that served an invocation (NULL: not
-- recorded, rows from before) and its failed attempts as a JSON array (NULL: none).
ALTER TABLE prompt_versions ADD COLUMN fallback_endpoint_refs TEXT;
ALTER TABLE invocations ADD COLUMN endpoint_ref TEXT;
ALTER TABLE invocations ADD COLUMN fallback_attempts TEXT;
