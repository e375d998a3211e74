-- Prompt templates and labels (docs/templates.md, shared/API.md "Templates and variables" and
-- "Labels"). Every column has a default that means what a row written before it meant, so
-- nothing already stored changes meaning: a version without template turns and without a
-- schema, a prompt without labels, an invocation that named no label and no variables.
-- Adding a column fires no trigger: versions stay immutable (0001, 0002) and the new columns
-- are covered by the same triggers.

-- A version's fixed chat turns, as a JSON array of {"role": "user"|"assistant", "content"},
-- like `few_shot_examples`; and its variables' JSON Schema as compact JSON text, NULL when the
-- version has none (every placeholder is then a required string).
ALTER TABLE prompt_versions ADD COLUMN template_messages TEXT NOT NULL DEFAULT '[]';
ALTER TABLE prompt_versions ADD COLUMN variables_schema TEXT;

-- A prompt's labels as a JSON object from label name to version (`{"production": "1.2.0"}`),
-- like `traffic`; rewritten whole by the update that moves or deletes one, with the revision.
ALTER TABLE prompts ADD COLUMN labels TEXT NOT NULL DEFAULT '{}';

-- The label an invocation named (NULL: none), and the names of the variables it supplied as a
-- JSON array of strings, never their values. No index on `label`: like `version`, it is
-- filtered with the prompt (whose index narrows first) or over a time range, and the
-- invocations table is the one written on every call.
ALTER TABLE invocations ADD COLUMN label TEXT;
ALTER TABLE invocations ADD COLUMN variable_names TEXT NOT NULL DEFAULT '[]';
