-- The same columns, defaults and meaning as the SQLite schema's 0010_templates_labels.sql:
-- a version's template turns (JSON array) and variables' schema (JSON text, NULL: none), a
-- prompt's labels (JSON object), an invocation's label (NULL: none) and variable names (JSON
-- array). JSON stays TEXT, as every JSON column here (0001_core.sql says why). A column with a
-- constant default is added without rewriting the table, and adding one fires no row trigger:
-- versions stay immutable.
ALTER TABLE prompt_versions ADD COLUMN template_messages TEXT NOT NULL DEFAULT '[]';
ALTER TABLE prompt_versions ADD COLUMN variables_schema TEXT;
ALTER TABLE prompts ADD COLUMN labels TEXT NOT NULL DEFAULT '{}';
ALTER TABLE invocations ADD COLUMN label TEXT;
ALTER TABLE invocations ADD COLUMN variable_names TEXT NOT NULL DEFAULT '[]';
