-- Tools and structured output (docs/tools.md, shared/API.md "Tools and structured output").
-- Every column has a default that means what a row written before it meant: a version without
-- tools or output format, an invocation whose output was not checked and that called no tool.

-- A version's `tools`, `toolChoice` and `responseFormat` as one JSON object in the contract's
-- shapes (`{"tools": […], "toolChoice": …, "responseFormat": …}`, each part left out when
-- unset); NULL when the version has none of them.
ALTER TABLE prompt_versions ADD COLUMN tool_settings TEXT;

-- Whether the output matched the version's JSON response format (1, 0; NULL: not checked),
-- and how many tool calls the answer made.
ALTER TABLE invocations ADD COLUMN schema_valid INTEGER;
ALTER TABLE invocations ADD COLUMN tool_call_count INTEGER NOT NULL DEFAULT 0;
