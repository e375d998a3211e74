-- The same columns, defaults and meaning as the SQLite schema's 0011_tools.sql: a version's
-- tools, tool choice and response format as one JSON object (NULL: none), an invocation's
-- schema check (1, 0; NULL: not checked) and its number of tool calls. BIGINT rather than
-- BOOLEAN so that both stores decode the same row type (SQLite's INTEGER is 64-bit).
ALTER TABLE prompt_versions ADD COLUMN tool_settings TEXT;
ALTER TABLE invocations ADD COLUMN schema_valid BIGINT;
ALTER TABLE invocations ADD COLUMN tool_call_count BIGINT NOT NULL DEFAULT 0;
