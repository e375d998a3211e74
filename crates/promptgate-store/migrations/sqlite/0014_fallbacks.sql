-- Fallbacks across model endpoints (docs/fallbacks.md, shared/API.md "Fallbacks across model
-- endpoints"). Every column's NULL means what a row written before it meant: a version without
-- fallback endpoints, an invocation whose serving endpoint was not recorded.

-- A version's `fallbackEndpointRefs` as a JSON array of refs, in order; NULL when it has none.
ALTER TABLE prompt_versions ADD COLUMN fallback_endpoint_refs TEXT;

-- The model endpoint that served an invocation (or the last one tried when all failed), and
-- the endpoints that failed before it as a JSON array of `{"endpointRef", "errorCode"}`
-- (NULL: none).
ALTER TABLE invocations ADD COLUMN endpoint_ref TEXT;
ALTER TABLE invocations ADD COLUMN fallback_attempts TEXT;
