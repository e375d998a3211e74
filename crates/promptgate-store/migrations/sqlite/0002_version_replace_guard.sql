-- `INSERT OR REPLACE` deletes the old row without firing delete triggers (unless
-- recursive_triggers is on), so a replace could rewrite an immutable version. Refuse an insert
-- whose key exists before conflict resolution runs.
CREATE TRIGGER prompt_versions_no_replace BEFORE INSERT ON prompt_versions
WHEN EXISTS (SELECT 1 FROM prompt_versions WHERE prompt_id = NEW.prompt_id AND version = NEW.version)
BEGIN
    SELECT RAISE(ABORT, 'prompt versions are immutable');
END;
