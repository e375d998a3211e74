//! The in-memory prompt cache of the invocation path: a prompt and all its versions, loaded
//! once and kept until they change, so an invocation reads no database.
//!
//! Changes made through this process evict the entry at once; a background task compares every
//! prompt's revision with the database each second to see changes made elsewhere (the CLI,
//! another replica).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use promptgate_core::{Prompt, PromptVersion, VersionLabel};
use promptgate_store::{PromptFilter, Store, StoreError};
use uuid::Uuid;

use crate::templates::VersionTemplate;
use crate::tools::ServedTools;

/// How many prompts one listing reads when a name holds the wildcard `*`.
const NAME_PAGE: u32 = 500;

/// A prompt with every version, as invocations need it.
#[derive(Debug)]
pub struct CachedPrompt {
    /// The prompt (status, traffic, revision).
    pub prompt: Prompt,
    /// Its versions by label.
    pub versions: HashMap<VersionLabel, PromptVersion>,
    /// Each version's templates, parsed and compiled once, by label.
    pub templates: HashMap<VersionLabel, VersionTemplate>,
    /// The tools and output format of each version that has any, built once, by label.
    pub tools: HashMap<VersionLabel, Arc<ServedTools>>,
}

impl CachedPrompt {
    /// The prompt with its versions, each version's templates parsed and compiled.
    pub fn new(prompt: Prompt, versions: HashMap<VersionLabel, PromptVersion>) -> Self {
        let templates = versions
            .iter()
            .map(|(label, version)| (label.clone(), VersionTemplate::build(&version.settings)))
            .collect();
        let tools = versions
            .iter()
            .filter(|(_, version)| !version.settings.tool_settings.is_empty())
            .map(|(label, version)| {
                let served = ServedTools::build(&version.settings.tool_settings);
                (label.clone(), Arc::new(served))
            })
            .collect();
        CachedPrompt {
            prompt,
            versions,
            templates,
            tools,
        }
    }
}

impl CachedPrompt {
    /// The tokens `label`'s tool definitions take in its budget and window (0 without any),
    /// counted once per version.
    pub fn tool_tokens(
        &self,
        label: &VersionLabel,
        counter: &promptgate_core::TokenCounter,
        tokenizer: promptgate_core::TokenizerKind,
    ) -> usize {
        self.tools
            .get(label)
            .map_or(0, |tools| tools.tokens(counter, tokenizer))
    }
}

/// Prompts by id, and ids by name.
pub struct PromptCache {
    store: Arc<dyn Store>,
    entries: RwLock<HashMap<Uuid, Arc<CachedPrompt>>>,
    /// Names never change and are never reused (archived prompts keep theirs), so an id found
    /// by name stays right; names not found are not remembered (the prompt may be created).
    ids_by_name: RwLock<HashMap<String, Uuid>>,
}

impl PromptCache {
    /// An empty cache over `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        PromptCache {
            store,
            entries: RwLock::new(HashMap::new()),
            ids_by_name: RwLock::new(HashMap::new()),
        }
    }

    /// The id of the prompt named exactly `name`, from memory after the first lookup.
    pub async fn id_by_name(&self, name: &str) -> Result<Option<Uuid>, StoreError> {
        if let Some(id) = self
            .ids_by_name
            .read()
            .ok()
            .and_then(|names| names.get(name).copied())
        {
            return Ok(Some(id));
        }
        // The listing's name filter is exact unless the name holds `*`, its wildcard; then the
        // pattern also matches the name itself, among others, so read on until it is found.
        let filter = PromptFilter {
            name: Some(name.to_owned()),
            status: None,
        };
        let mut after = None;
        let found = loop {
            let page = self.store.list_prompts(&filter, after, NAME_PAGE).await?;
            if let Some(hit) = page.iter().find(|p| p.name == name) {
                break Some(hit.id);
            }
            match page.last() {
                Some(last) if page.len() == NAME_PAGE as usize => after = Some(last.id),
                _ => break None,
            }
        };
        if let (Some(id), Ok(mut names)) = (found, self.ids_by_name.write()) {
            names.insert(name.to_owned(), id);
        }
        Ok(found)
    }

    /// The prompt, from memory when cached; `None` when it does not exist.
    pub async fn get(&self, id: Uuid) -> Result<Option<Arc<CachedPrompt>>, StoreError> {
        if let Some(hit) = self.entries.read().ok().and_then(|e| e.get(&id).cloned()) {
            return Ok(Some(hit));
        }
        let Some(prompt) = self.store.get_prompt(id).await? else {
            return Ok(None);
        };
        let versions = self
            .store
            .list_versions(id)
            .await?
            .into_iter()
            .map(|v| (v.version.clone(), v))
            .collect();
        let entry = Arc::new(CachedPrompt::new(prompt, versions));
        if let Ok(mut entries) = self.entries.write() {
            // A concurrent writer may have cached a newer revision meanwhile; keep the newer.
            let newer = entries
                .get(&id)
                .is_some_and(|e| e.prompt.revision > entry.prompt.revision);
            if !newer {
                entries.insert(id, entry.clone());
            }
        }
        Ok(Some(entry))
    }

    /// Forgets a prompt this process just changed.
    pub fn invalidate(&self, id: Uuid) {
        if let Ok(mut entries) = self.entries.write() {
            entries.remove(&id);
        }
    }

    /// Forgets every cached prompt whose revision in the database differs (or that is gone).
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let current: HashMap<Uuid, i64> =
            self.store.prompt_revisions().await?.into_iter().collect();
        if let Ok(mut entries) = self.entries.write() {
            entries.retain(|id, entry| current.get(id) == Some(&entry.prompt.revision));
        }
        // Prompts are never deleted, but a database can be restored under a running gateway.
        if let Ok(mut names) = self.ids_by_name.write() {
            names.retain(|_, id| current.contains_key(id));
        }
        Ok(())
    }
}
