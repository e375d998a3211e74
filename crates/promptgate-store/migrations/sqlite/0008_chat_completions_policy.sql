-- The OpenAI-compatible front door's policy of each prompt (docs/openai-compatibility.md):
-- whether the version's system prompt replaces or precedes the caller's system message, and
-- whether the caller's temperature and model endpoint win over the version's.
ALTER TABLE prompts ADD COLUMN system_message_mode TEXT NOT NULL DEFAULT 'replace'
    CHECK (system_message_mode IN ('replace', 'prepend'));
ALTER TABLE prompts ADD COLUMN allow_caller_settings INTEGER NOT NULL DEFAULT 0
    CHECK (allow_caller_settings IN (0, 1));
