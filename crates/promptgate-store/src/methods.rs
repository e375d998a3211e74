//! The store methods whose bodies are the same in both stores, written once.
//!
//! # Why macros
//!
//! sqlx types everything by database: `Query<'_, Sqlite, SqliteArguments>` and
//! `Query<'_, Postgres, PgArguments>`, `SqliteConnection` and `PgConnection`, `SqlitePool` and
//! `PgPool`. A body that is generic over `sqlx::Database` needs a `where` clause for every type
//! it binds or decodes and for every executor it runs on (and `async_trait`'s `Send` bounds on
//! top), which outgrows the bodies themselves. So each body here is a `macro_rules!` that
//! expands the same source once in each store's module, where every sqlx type is concrete. Row
//! decoding and value binding stay plain generic functions (`rows.rs`), which they can be.
//!
//! # What a store provides
//!
//! The macros take the store type and the name of the store's `sql` module, and name the
//! following, which each store module defines:
//! - `sql::NAME` (`&'static str`): the statements in the store's dialect (`?` or `$1`
//!   placeholders, its types and casts). A statement that is the same text in both dialects is
//!   written here instead. `sql::BEGIN_WRITE` is how a write transaction begins (SQLite takes its
//!   write lock up front; PostgreSQL fixes `READ COMMITTED`), and `sql::LOCK_*`
//!   (`Option<&'static str>`) are locks a store takes where the other needs none.
//! - `sql::uuid` and `sql::flag`: how the dialect binds a UUID and a true/false column (SQLite:
//!   text and integer; PostgreSQL: `uuid` and `boolean`), and `sql::Connection`, its connection.
//! - `sql::is_existing_version`: whether an insert failed because the version exists.
//! - `db_error` (a function in the store module): how a database error is reported.
//! - `Store::pool(&self) -> Result<&Pool, StoreError>`: the pool, or why it must not be used;
//!   `Store::page_versions`: a listing page's version labels and default versions (JSON arrays
//!   on SQLite, `uuid[]` and `UNNEST` on PostgreSQL).
//! - `sql::summary_aggregates`, `sql::summary_ranks`, `sql::bind_ranks` and
//!   `sql::BEGIN_SNAPSHOT`: the telemetry summary's two queries and their read transaction.
//!
//! # Adding a method
//!
//! Declare it on its area's trait (`lib.rs`). When its body is the same in both stores but for
//! the SQL text, write it in that trait's macro below, with its statements as `sql::NAME` in both
//! store modules (or inline, when the text is the same in both). When it really differs (other
//! statements, other round trips, other locking), write it in each store's block of own methods
//! at the macro's call (`prompt_store!(Store, sql, { … })`).

/// The free functions the methods below share within one transaction: `insert_version`,
/// `client_in` and `append_audit_in`.
macro_rules! helpers {
    ($sql:ident) => {
        /// Inserts one version of a prompt; an existing one is [`StoreError::DuplicateVersion`].
        async fn insert_version(
            conn: &mut $sql::Connection,
            v: &::promptgate_core::PromptVersion,
        ) -> Result<(), $crate::StoreError> {
            let query = ::sqlx::query($sql::INSERT_VERSION).bind($sql::uuid(v.prompt_id));
            $crate::rows::version_values(query, v)
                .execute(conn)
                .await
                .map_err(|e| {
                    if $sql::is_existing_version(&e) {
                        $crate::StoreError::DuplicateVersion {
                            version: v.version.to_string(),
                        }
                    } else {
                        db_error(e)
                    }
                })?;
            Ok(())
        }

        /// One client, read inside a write transaction (after changing it).
        async fn client_in(
            conn: &mut $sql::Connection,
            id: &str,
        ) -> Result<Option<$crate::Client>, $crate::StoreError> {
            let row = ::sqlx::query($sql::CLIENT_BY_ID)
                .bind($crate::codec::nul_free(id))
                .fetch_optional(conn)
                .await
                .map_err(db_error)?;
            row.as_ref().map($crate::rows::client).transpose()
        }

        /// Seals `drafts` onto the chain as it stands in this transaction and inserts them.
        /// `sql::BEGIN_WRITE` and `sql::LOCK_AUDIT` say why no other writer can take the same
        /// sequence.
        async fn append_audit_in(
            conn: &mut $sql::Connection,
            drafts: &[::promptgate_audit::AuditDraft],
        ) -> Result<Vec<::promptgate_audit::SealedEntry>, $crate::StoreError> {
            if drafts.is_empty() {
                return Ok(Vec::new());
            }
            if let Some(lock) = $sql::LOCK_AUDIT {
                ::sqlx::query(lock)
                    .execute(&mut *conn)
                    .await
                    .map_err(db_error)?;
            }
            let last: Option<(i64, String)> = ::sqlx::query_as(
                "SELECT sequence, hash FROM audit_entries ORDER BY sequence DESC LIMIT 1",
            )
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_error)?;
            let rows = $crate::seal::seal(last, drafts)?;
            for row in &rows {
                let query = ::sqlx::query($sql::INSERT_AUDIT)
                    .bind($sql::uuid(row.draft.id))
                    .bind(row.draft.prompt_id.map($sql::uuid));
                $crate::rows::audit_values(query, row)
                    .execute(&mut *conn)
                    .await
                    .map_err(db_error)?;
            }
            Ok($crate::seal::entries(rows))
        }
    };
}
pub(crate) use helpers;

/// Begins a write transaction on the store `$store` (`sql::BEGIN_WRITE`), returning early with
/// the store's error when it cannot.
macro_rules! begin_write {
    ($store:expr, $sql:ident) => {
        $store
            .pool()?
            .begin_with($sql::BEGIN_WRITE)
            .await
            .map_err(db_error)?
    };
}
pub(crate) use begin_write;

/// Binds a telemetry filter's six conditions (`prompt_id`, `version`, the time range, `status`,
/// `label`) as the first six parameters of `$query`, in the order every telemetry statement
/// reads them: listings and summaries filter alike.
macro_rules! telemetry_filter {
    ($query:expr, $filter:expr, $sql:ident) => {
        $query
            .bind($filter.prompt_id.map($sql::uuid))
            .bind($crate::codec::nul_free_opt($filter.version.as_deref()))
            .bind($filter.start.map($crate::codec::millis))
            .bind($filter.end.map($crate::codec::millis))
            .bind(
                $filter
                    .status
                    .map(::promptgate_core::invocation::InvocationStatus::as_str),
            )
            .bind($crate::codec::nul_free_opt($filter.label.as_deref()))
    };
}
pub(crate) use telemetry_filter;

/// `impl ClientStore`: the same in both stores.
macro_rules! client_store {
    ($store:ty, $sql:ident) => {
        #[::async_trait::async_trait]
        impl $crate::ClientStore for $store {
            async fn count_clients(&self) -> Result<i64, $crate::StoreError> {
                ::sqlx::query_scalar("SELECT COUNT(*) FROM clients")
                    .fetch_one(self.pool()?)
                    .await
                    .map_err(db_error)
            }

            async fn insert_client(
                &self,
                client: &$crate::Client,
                audit: &::promptgate_audit::AuditDraft,
            ) -> Result<(), $crate::StoreError> {
                let mut tx = $crate::methods::begin_write!(self, $sql);
                let query = ::sqlx::query($sql::INSERT_CLIENT);
                $crate::rows::client_values(query, client)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| {
                        $crate::methods::unique_or(e, db_error, || {
                            $crate::StoreError::DuplicateClient {
                                id: client.id.clone(),
                            }
                        })
                    })?;
                append_audit_in(&mut tx, std::slice::from_ref(audit)).await?;
                tx.commit().await.map_err(db_error)?;
                Ok(())
            }

            async fn get_client(
                &self,
                id: &str,
            ) -> Result<Option<$crate::Client>, $crate::StoreError> {
                ::sqlx::query($sql::CLIENT_BY_ID)
                    .bind($crate::codec::nul_free(id))
                    .fetch_optional(self.pool()?)
                    .await
                    .map_err(db_error)?
                    .as_ref()
                    .map($crate::rows::client)
                    .transpose()
            }

            async fn list_clients(&self) -> Result<Vec<$crate::Client>, $crate::StoreError> {
                ::sqlx::query("SELECT * FROM clients ORDER BY created_at, id")
                    .fetch_all(self.pool()?)
                    .await
                    .map_err(db_error)?
                    .iter()
                    .map($crate::rows::client)
                    .collect()
            }

            async fn disable_client(
                &self,
                id: &str,
                at: ::time::OffsetDateTime,
                audit: &::promptgate_audit::AuditDraft,
            ) -> Result<Option<$crate::Client>, $crate::StoreError> {
                let mut tx = $crate::methods::begin_write!(self, $sql);
                let disabled_now = ::sqlx::query($sql::DISABLE_CLIENT)
                    .bind($crate::codec::millis(at))
                    .bind($crate::codec::nul_free(id))
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?
                    .rows_affected();
                if disabled_now > 0 {
                    append_audit_in(&mut tx, std::slice::from_ref(audit)).await?;
                }
                let client = client_in(&mut tx, id).await?;
                tx.commit().await.map_err(db_error)?;
                Ok(client)
            }

            async fn disabled_client_ids(&self) -> Result<Vec<String>, $crate::StoreError> {
                ::sqlx::query_scalar("SELECT id FROM clients WHERE disabled_at IS NOT NULL")
                    .fetch_all(self.pool()?)
                    .await
                    .map_err(db_error)
            }

            async fn rotate_client_secret(
                &self,
                id: &str,
                new_secret_hash: &str,
                at: ::time::OffsetDateTime,
                audit: &::promptgate_audit::AuditDraft,
            ) -> Result<Option<$crate::Client>, $crate::StoreError> {
                let mut tx = $crate::methods::begin_write!(self, $sql);
                let rotated = ::sqlx::query($sql::ROTATE_SECRET)
                    .bind(new_secret_hash)
                    .bind($crate::codec::millis(at))
                    .bind($crate::codec::nul_free(id))
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?
                    .rows_affected();
                if rotated == 0 {
                    tx.rollback().await.map_err(db_error)?;
                    return Ok(None);
                }
                ::sqlx::query($sql::DELETE_CLIENT_TOKENS)
                    .bind($crate::codec::nul_free(id))
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                append_audit_in(&mut tx, std::slice::from_ref(audit)).await?;
                let client = client_in(&mut tx, id).await?;
                tx.commit().await.map_err(db_error)?;
                Ok(client)
            }

            async fn secret_rotations(
                &self,
            ) -> Result<Vec<(String, ::time::OffsetDateTime)>, $crate::StoreError> {
                let rows: Vec<(String, i64)> = ::sqlx::query_as(
                    "SELECT id, secret_rotated_at FROM clients WHERE secret_rotated_at IS NOT NULL",
                )
                .fetch_all(self.pool()?)
                .await
                .map_err(db_error)?;
                rows.into_iter()
                    .map(|(id, at)| Ok((id, $crate::codec::from_millis(at)?)))
                    .collect()
            }

            async fn insert_token(
                &self,
                token: &$crate::AccessToken,
            ) -> Result<(), $crate::StoreError> {
                let query = ::sqlx::query($sql::INSERT_TOKEN);
                $crate::rows::token_values(query, token)
                    .execute(self.pool()?)
                    .await
                    .map_err(db_error)?;
                Ok(())
            }

            async fn insert_token_bounded(
                &self,
                token: &$crate::AccessToken,
                max_live: u32,
                now: ::time::OffsetDateTime,
            ) -> Result<Vec<String>, $crate::StoreError> {
                // Two issuers for one client must never both count the tokens before either
                // deletes: `sql::LOCK_CLIENT_TOKENS` says how each store prevents it.
                let mut tx = $crate::methods::begin_write!(self, $sql);
                if let Some(lock) = $sql::LOCK_CLIENT_TOKENS {
                    ::sqlx::query(lock)
                        .bind($crate::codec::nul_free(&token.client_id))
                        .execute(&mut *tx)
                        .await
                        .map_err(db_error)?;
                }
                let query = ::sqlx::query($sql::INSERT_TOKEN);
                $crate::rows::token_values(query, token)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                // The others newest first; past the first `max_live - 1` of them, all go.
                let revoked: Vec<String> = ::sqlx::query_scalar($sql::REVOKE_SURPLUS_TOKENS)
                    .bind($crate::codec::nul_free(&token.client_id))
                    .bind(&token.token_hash)
                    .bind($crate::codec::millis(now))
                    .bind(i64::from(max_live.saturating_sub(1)))
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db_error)?;
                if !revoked.is_empty() {
                    ::sqlx::query($sql::BUMP_TOKEN_GENERATION)
                        .bind($crate::codec::nul_free(&token.client_id))
                        .execute(&mut *tx)
                        .await
                        .map_err(db_error)?;
                }
                tx.commit().await.map_err(db_error)?;
                Ok(revoked)
            }

            async fn token_generations(&self) -> Result<Vec<(String, i64)>, $crate::StoreError> {
                ::sqlx::query_as(
                    "SELECT id, token_generation FROM clients WHERE token_generation > 0",
                )
                .fetch_all(self.pool()?)
                .await
                .map_err(db_error)
            }

            async fn find_token(
                &self,
                token_hash: &str,
            ) -> Result<Option<$crate::AccessToken>, $crate::StoreError> {
                let row = ::sqlx::query($sql::TOKEN_BY_HASH)
                    .bind(token_hash)
                    .fetch_optional(self.pool()?)
                    .await
                    .map_err(db_error)?;
                row.as_ref().map($crate::rows::access_token).transpose()
            }

            async fn delete_expired_tokens(
                &self,
                now: ::time::OffsetDateTime,
            ) -> Result<u64, $crate::StoreError> {
                let done = ::sqlx::query($sql::DELETE_EXPIRED_TOKENS)
                    .bind($crate::codec::millis(now))
                    .execute(self.pool()?)
                    .await
                    .map_err(db_error)?;
                Ok(done.rows_affected())
            }
        }
    };
}
pub(crate) use client_store;

/// `impl ApiKeyStore`: every method is the same in both stores but for the SQL text.
macro_rules! api_key_store {
    ($store:ty, $sql:ident) => {
        #[::async_trait::async_trait]
        impl $crate::ApiKeyStore for $store {
            async fn insert_api_key(
                &self,
                key: &$crate::ApiKey,
                audit: &::promptgate_audit::AuditDraft,
            ) -> Result<(), $crate::StoreError> {
                let mut tx = $crate::methods::begin_write!(self, $sql);
                let query = ::sqlx::query($sql::INSERT_API_KEY);
                $crate::rows::api_key_values(query, key)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                append_audit_in(&mut tx, std::slice::from_ref(audit)).await?;
                tx.commit().await.map_err(db_error)?;
                Ok(())
            }

            async fn get_api_key(
                &self,
                id: &str,
            ) -> Result<Option<$crate::ApiKey>, $crate::StoreError> {
                ::sqlx::query($sql::API_KEY_BY_ID)
                    .bind($crate::codec::nul_free(id))
                    .fetch_optional(self.pool()?)
                    .await
                    .map_err(db_error)?
                    .as_ref()
                    .map($crate::rows::api_key)
                    .transpose()
            }

            async fn list_api_keys(
                &self,
                client_id: Option<&str>,
            ) -> Result<Vec<$crate::ApiKey>, $crate::StoreError> {
                let rows = match client_id {
                    Some(client_id) => {
                        ::sqlx::query($sql::API_KEYS_OF_CLIENT)
                            .bind($crate::codec::nul_free(client_id))
                            .fetch_all(self.pool()?)
                            .await
                    }
                    None => {
                        ::sqlx::query("SELECT * FROM api_keys ORDER BY created_at, id")
                            .fetch_all(self.pool()?)
                            .await
                    }
                }
                .map_err(db_error)?;
                rows.iter().map($crate::rows::api_key).collect()
            }

            async fn revoke_api_key(
                &self,
                id: &str,
                at: ::time::OffsetDateTime,
                audit: &::promptgate_audit::AuditDraft,
            ) -> Result<Option<$crate::ApiKey>, $crate::StoreError> {
                let mut tx = $crate::methods::begin_write!(self, $sql);
                let revoked_now = ::sqlx::query($sql::REVOKE_API_KEY)
                    .bind($crate::codec::millis(at))
                    .bind($crate::codec::nul_free(id))
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?
                    .rows_affected();
                if revoked_now > 0 {
                    append_audit_in(&mut tx, std::slice::from_ref(audit)).await?;
                }
                let key = ::sqlx::query($sql::API_KEY_BY_ID)
                    .bind($crate::codec::nul_free(id))
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_error)?
                    .as_ref()
                    .map($crate::rows::api_key)
                    .transpose()?;
                tx.commit().await.map_err(db_error)?;
                Ok(key)
            }

            async fn revoked_api_key_ids(&self) -> Result<Vec<String>, $crate::StoreError> {
                ::sqlx::query_scalar("SELECT id FROM api_keys WHERE revoked_at IS NOT NULL")
                    .fetch_all(self.pool()?)
                    .await
                    .map_err(db_error)
            }

            async fn find_api_key(
                &self,
                key_hash: &str,
            ) -> Result<Option<$crate::ApiKey>, $crate::StoreError> {
                ::sqlx::query($sql::API_KEY_BY_HASH)
                    .bind(key_hash)
                    .fetch_optional(self.pool()?)
                    .await
                    .map_err(db_error)?
                    .as_ref()
                    .map($crate::rows::api_key)
                    .transpose()
            }

            async fn record_api_key_use(
                &self,
                uses: &[(String, ::time::OffsetDateTime)],
            ) -> Result<(), $crate::StoreError> {
                if uses.is_empty() {
                    return Ok(());
                }
                let mut tx = $crate::methods::begin_write!(self, $sql);
                for (id, at) in uses {
                    ::sqlx::query($sql::TOUCH_API_KEY)
                        .bind($crate::codec::millis(*at))
                        .bind($crate::codec::nul_free(id))
                        .execute(&mut *tx)
                        .await
                        .map_err(db_error)?;
                }
                tx.commit().await.map_err(db_error)?;
                Ok(())
            }
        }
    };
}
pub(crate) use api_key_store;

/// `impl PromptStore`: the shared methods, and the store's own (`prompt_revisions`) as the block
/// `{ … }`. A listing page's versions are read by the store's `page_versions`.
macro_rules! prompt_store {
    ($store:ty, $sql:ident, { $($own:tt)* }) => {
        #[::async_trait::async_trait]
        impl $crate::PromptStore for $store {
            $($own)*

            async fn create_prompt(
                &self,
                prompt: &::promptgate_core::Prompt,
                first: &::promptgate_core::PromptVersion,
                audit: &[::promptgate_audit::AuditDraft],
            ) -> Result<(), $crate::StoreError> {
                let mut tx = $crate::methods::begin_write!(self, $sql);
                let query = ::sqlx::query($sql::INSERT_PROMPT)
                    .bind($sql::uuid(prompt.id))
                    .bind($sql::flag(prompt.chat_completions.allow_caller_settings));
                $crate::rows::prompt_values(query, prompt)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| {
                        $crate::methods::unique_or(e, db_error, || {
                            $crate::StoreError::DuplicateName {
                                name: prompt.name.clone(),
                            }
                        })
                    })?;
                insert_version(&mut tx, first).await?;
                append_audit_in(&mut tx, audit).await?;
                tx.commit().await.map_err(db_error)?;
                Ok(())
            }

            async fn get_prompt(
                &self,
                id: ::uuid::Uuid,
            ) -> Result<Option<::promptgate_core::Prompt>, $crate::StoreError> {
                ::sqlx::query($sql::PROMPT_BY_ID)
                    .bind($sql::uuid(id))
                    .fetch_optional(self.pool()?)
                    .await
                    .map_err(db_error)?
                    .as_ref()
                    .map($crate::rows::prompt)
                    .transpose()
            }

            async fn list_prompts(
                &self,
                filter: &$crate::PromptFilter,
                after: Option<::uuid::Uuid>,
                limit: u32,
            ) -> Result<Vec<::promptgate_core::Prompt>, $crate::StoreError> {
                // Each filter is bound as a parameter; a NULL parameter switches its condition
                // off.
                let (exact, pattern) = $crate::codec::name_filter(filter.name.as_deref());
                ::sqlx::query($sql::LIST_PROMPTS)
                    .bind(exact)
                    .bind(pattern)
                    .bind(filter.status.map(::promptgate_core::PromptStatus::as_str))
                    .bind(after.map($sql::uuid))
                    .bind(i64::from(limit))
                    .fetch_all(self.pool()?)
                    .await
                    .map_err(db_error)?
                    .iter()
                    .map($crate::rows::prompt)
                    .collect()
            }

            async fn list_prompt_listings(
                &self,
                filter: &$crate::PromptFilter,
                after: Option<::uuid::Uuid>,
                limit: u32,
            ) -> Result<Vec<$crate::PromptListing>, $crate::StoreError> {
                let prompts = self.list_prompts(filter, after, limit).await?;
                if prompts.is_empty() {
                    return Ok(Vec::new());
                }
                let (labels, defaults) = self.page_versions(&prompts).await?;
                Ok($crate::rows::listings(prompts, labels, defaults))
            }

            async fn list_versions(
                &self,
                prompt_id: ::uuid::Uuid,
            ) -> Result<Vec<::promptgate_core::PromptVersion>, $crate::StoreError> {
                ::sqlx::query($sql::VERSIONS_OF)
                    .bind($sql::uuid(prompt_id))
                    .fetch_all(self.pool()?)
                    .await
                    .map_err(db_error)?
                    .iter()
                    .map($crate::rows::version)
                    .collect()
            }

            async fn version_labels(
                &self,
                prompt_id: ::uuid::Uuid,
            ) -> Result<Vec<::promptgate_core::VersionLabel>, $crate::StoreError> {
                let labels: Vec<String> = ::sqlx::query_scalar($sql::VERSION_LABELS_OF)
                    .bind($sql::uuid(prompt_id))
                    .fetch_all(self.pool()?)
                    .await
                    .map_err(db_error)?;
                labels.iter().map(|l| $crate::codec::version(l)).collect()
            }

            async fn get_version(
                &self,
                prompt_id: ::uuid::Uuid,
                version: &::promptgate_core::VersionLabel,
            ) -> Result<Option<::promptgate_core::PromptVersion>, $crate::StoreError> {
                ::sqlx::query($sql::VERSION_BY_LABEL)
                    .bind($sql::uuid(prompt_id))
                    .bind(version.to_string())
                    .fetch_optional(self.pool()?)
                    .await
                    .map_err(db_error)?
                    .as_ref()
                    .map($crate::rows::version)
                    .transpose()
            }

            async fn update_prompt(
                &self,
                update: &$crate::PromptUpdate,
            ) -> Result<(), $crate::StoreError> {
                let mut tx = $crate::methods::begin_write!(self, $sql);
                let changed = ::sqlx::query($sql::UPDATE_PROMPT)
                    .bind(update.new_revision)
                    .bind($crate::codec::millis(update.updated_at))
                    .bind(update.traffic.as_ref().map($crate::codec::traffic_json))
                    .bind(update.status.map(::promptgate_core::PromptStatus::as_str))
                    .bind(update.chat_completions.map(|p| p.system_message.as_str()))
                    .bind(
                        update
                            .chat_completions
                            .map(|p| $sql::flag(p.allow_caller_settings)),
                    )
                    .bind(update.labels.as_ref().map($crate::codec::labels_json))
                    .bind($sql::uuid(update.id))
                    .bind(update.expected_revision)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?
                    .rows_affected();
                if changed == 0 {
                    let exists: Option<i64> = ::sqlx::query_scalar($sql::PROMPT_REVISION)
                        .bind($sql::uuid(update.id))
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db_error)?;
                    return Err(match exists {
                        Some(_) => $crate::StoreError::StaleRevision,
                        None => $crate::StoreError::NotFound,
                    });
                }
                if let Some(version) = &update.new_version {
                    insert_version(&mut tx, version).await?;
                }
                append_audit_in(&mut tx, &update.audit).await?;
                tx.commit().await.map_err(db_error)?;
                Ok(())
            }
        }
    };
}
pub(crate) use prompt_store;

/// `impl TelemetryStore`: the shared methods, and the store's own (`insert_invocations`) as the
/// block `{ … }`.
macro_rules! telemetry_store {
    ($store:ty, $sql:ident, { $($own:tt)* }) => {
        #[::async_trait::async_trait]
        impl $crate::TelemetryStore for $store {
            $($own)*

            async fn list_invocations(
                &self,
                filter: &$crate::TelemetryFilter,
                after: Option<i64>,
                limit: u32,
            ) -> Result<Vec<$crate::StoredInvocation>, $crate::StoreError> {
                // Each filter is bound as a parameter; a NULL parameter switches its condition
                // off.
                $crate::methods::telemetry_filter!(
                    ::sqlx::query($sql::LIST_INVOCATIONS),
                    filter,
                    $sql
                )
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(self.pool()?)
                .await
                .map_err(db_error)?
                .iter()
                .map($crate::rows::invocation)
                .collect()
            }

            async fn summary_aggregates(
                &self,
                filter: &$crate::TelemetryFilter,
                group: $crate::SummaryGroup,
            ) -> Result<Vec<$crate::VersionAggregate>, $crate::StoreError> {
                // Both queries bind the filter, then the finite range (`sql::summary_aggregates`
                // says how); `summary.rs` says how the two queries work.
                let mut tx = self
                    .pool()?
                    .begin_with($sql::BEGIN_SNAPSHOT)
                    .await
                    .map_err(db_error)?;
                let rows: Vec<$crate::summary::AggregateRow> = $crate::methods::telemetry_filter!(
                    ::sqlx::query($sql::summary_aggregates(group)),
                    filter,
                    $sql
                )
                .bind(-f64::MAX)
                .bind(f64::MAX)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_error)?
                .iter()
                .map(|row| $crate::summary::AggregateRow::from_row(row).map_err(db_error))
                .collect::<Result<_, $crate::StoreError>>()?;
                let (versions, ranks) = $crate::summary::wanted_ranks(&rows);
                let mut ranked = ::std::collections::HashMap::new();
                if !ranks.is_empty() {
                    let query = $crate::methods::telemetry_filter!(
                        ::sqlx::query_as($sql::summary_ranks(group)),
                        filter,
                        $sql
                    )
                    .bind(-f64::MAX)
                    .bind(f64::MAX);
                    let values: Vec<(String, i64, f64)> = $sql::bind_ranks(query, versions, ranks)?
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(db_error)?;
                    ranked.extend(values.into_iter().map(|(v, i, x)| ((v, i), x)));
                }
                tx.commit().await.map_err(db_error)?;
                Ok($crate::summary::assemble(rows, &ranked))
            }

            async fn set_feedback(
                &self,
                id: &str,
                feedback: &$crate::Feedback,
            ) -> Result<bool, $crate::StoreError> {
                let query = ::sqlx::query($sql::SET_FEEDBACK);
                let done = $crate::rows::feedback_values(query, feedback, id)
                    .execute(self.pool()?)
                    .await
                    .map_err(db_error)?;
                Ok(done.rows_affected() > 0)
            }

            async fn feedback_state(
                &self,
                id: &str,
            ) -> Result<Option<$crate::FeedbackState>, $crate::StoreError> {
                let row = ::sqlx::query($sql::FEEDBACK_STATE)
                    .bind($crate::codec::nul_free(id))
                    .fetch_optional(self.pool()?)
                    .await
                    .map_err(db_error)?;
                row.as_ref().map($crate::rows::feedback_state).transpose()
            }

            async fn replace_feedback(
                &self,
                id: &str,
                expected: Option<&$crate::Feedback>,
                feedback: &$crate::Feedback,
                audit: Option<&::promptgate_audit::AuditDraft>,
            ) -> Result<bool, $crate::StoreError> {
                let mut tx = $crate::methods::begin_write!(self, $sql);
                let query = ::sqlx::query($sql::REPLACE_FEEDBACK);
                let done = $crate::rows::feedback_values(query, feedback, id)
                    .bind(expected.map(|f| f.score))
                    .bind(expected.and_then(|f| $crate::codec::nul_free_opt(f.comment.as_deref())))
                    .bind(expected.map(|f| $crate::codec::millis(f.at)))
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                if done.rows_affected() == 0 {
                    tx.rollback().await.map_err(db_error)?;
                    return Ok(false);
                }
                if let Some(audit) = audit {
                    append_audit_in(&mut tx, std::slice::from_ref(audit)).await?;
                }
                tx.commit().await.map_err(db_error)?;
                Ok(true)
            }

            async fn prune_invocations(
                &self,
                before: ::time::OffsetDateTime,
            ) -> Result<u64, $crate::StoreError> {
                let done = ::sqlx::query($sql::PRUNE_INVOCATIONS)
                    .bind($crate::codec::millis(before))
                    .execute(self.pool()?)
                    .await
                    .map_err(db_error)?;
                Ok(done.rows_affected())
            }
        }
    };
}
pub(crate) use telemetry_store;

/// `impl OutboxStore`: the shared methods, and the store's own (`advance_exporter_cursor`) as the
/// block `{ … }`.
macro_rules! outbox_store {
    ($store:ty, $sql:ident, { $($own:tt)* }) => {
        #[::async_trait::async_trait]
        impl $crate::OutboxStore for $store {
            $($own)*

            async fn last_invocation_seq(&self) -> Result<i64, $crate::StoreError> {
                let seq: Option<i64> = ::sqlx::query_scalar("SELECT MAX(seq) FROM invocations")
                    .fetch_one(self.pool()?)
                    .await
                    .map_err(db_error)?;
                Ok(seq.unwrap_or(0))
            }

            async fn exporter_cursor(&self, exporter: &str) -> Result<i64, $crate::StoreError> {
                let seq: Option<i64> = ::sqlx::query_scalar($sql::EXPORTER_CURSOR)
                    .bind(exporter)
                    .fetch_optional(self.pool()?)
                    .await
                    .map_err(db_error)?;
                Ok(seq.unwrap_or(0))
            }

            async fn try_acquire_exporter_lease(
                &self,
                exporter: &str,
                holder: &str,
                now: ::time::OffsetDateTime,
                ttl: std::time::Duration,
            ) -> Result<bool, $crate::StoreError> {
                // One conditional upsert: the row is written only when it is new, ours, or
                // expired, so of two processes racing for a free or lapsed lease exactly one
                // sees a row changed.
                let granted = ::sqlx::query($sql::ACQUIRE_LEASE)
                    .bind(exporter)
                    .bind(holder)
                    .bind($crate::codec::lease_expiry(now, ttl))
                    .bind($crate::codec::millis(now))
                    .execute(self.pool()?)
                    .await
                    .map_err(db_error)?
                    .rows_affected();
                Ok(granted > 0)
            }

            async fn release_exporter_lease(
                &self,
                exporter: &str,
                holder: &str,
            ) -> Result<(), $crate::StoreError> {
                // Expired rather than deleted, so that the pending batch survives for the next
                // holder.
                ::sqlx::query($sql::RELEASE_LEASE)
                    .bind(exporter)
                    .bind(holder)
                    .execute(self.pool()?)
                    .await
                    .map_err(db_error)?;
                Ok(())
            }

            async fn begin_exporter_batch(
                &self,
                exporter: &str,
                holder: &str,
                now: ::time::OffsetDateTime,
                batch: $crate::PendingBatch,
            ) -> Result<bool, $crate::StoreError> {
                let recorded = ::sqlx::query($sql::BEGIN_BATCH)
                    .bind(batch.first_seq)
                    .bind(batch.last_seq)
                    .bind(exporter)
                    .bind(holder)
                    .bind($crate::codec::millis(now))
                    .execute(self.pool()?)
                    .await
                    .map_err(db_error)?
                    .rows_affected();
                Ok(recorded > 0)
            }

            async fn pending_exporter_batch(
                &self,
                exporter: &str,
            ) -> Result<Option<$crate::PendingBatch>, $crate::StoreError> {
                let row: Option<(Option<i64>, Option<i64>)> =
                    ::sqlx::query_as($sql::PENDING_BATCH)
                        .bind(exporter)
                        .fetch_optional(self.pool()?)
                        .await
                        .map_err(db_error)?;
                Ok(match row {
                    Some((Some(first_seq), Some(last_seq))) => Some($crate::PendingBatch {
                        first_seq,
                        last_seq,
                    }),
                    _ => None,
                })
            }
        }
    };
}
pub(crate) use outbox_store;

/// `impl AuditStore`: the same in both stores.
macro_rules! audit_store {
    ($store:ty, $sql:ident) => {
        #[::async_trait::async_trait]
        impl $crate::AuditStore for $store {
            async fn append_audit(
                &self,
                drafts: &[::promptgate_audit::AuditDraft],
            ) -> Result<Vec<::promptgate_audit::SealedEntry>, $crate::StoreError> {
                let mut tx = $crate::methods::begin_write!(self, $sql);
                let sealed = append_audit_in(&mut tx, drafts).await?;
                tx.commit().await.map_err(db_error)?;
                Ok(sealed)
            }

            async fn list_audit(
                &self,
                filter: &$crate::AuditFilter,
                after: Option<u64>,
                limit: u32,
            ) -> Result<Vec<$crate::StoredAuditEntry>, $crate::StoreError> {
                ::sqlx::query($sql::LIST_AUDIT)
                    .bind(filter.prompt_id.map($sql::uuid))
                    .bind($crate::codec::nul_free_opt(filter.action.as_deref()))
                    .bind($crate::codec::nul_free_opt(filter.actor.as_deref()))
                    .bind(filter.start.map($crate::codec::millis))
                    .bind(filter.end.map($crate::codec::millis))
                    .bind(after.map($crate::codec::sql_sequence))
                    .bind(i64::from(limit))
                    .fetch_all(self.pool()?)
                    .await
                    .map_err(db_error)?
                    .iter()
                    .map($crate::rows::audit_entry)
                    .collect()
            }

            async fn get_audit(
                &self,
                sequence: u64,
            ) -> Result<Option<$crate::StoredAuditEntry>, $crate::StoreError> {
                ::sqlx::query($sql::AUDIT_BY_SEQUENCE)
                    .bind($crate::codec::sql_sequence(sequence))
                    .fetch_optional(self.pool()?)
                    .await
                    .map_err(db_error)?
                    .as_ref()
                    .map($crate::rows::audit_entry)
                    .transpose()
            }

            async fn last_audit_with_action(
                &self,
                action: &str,
            ) -> Result<Option<$crate::StoredAuditEntry>, $crate::StoreError> {
                ::sqlx::query($sql::LAST_AUDIT_WITH_ACTION)
                    .bind($crate::codec::nul_free(action))
                    .fetch_optional(self.pool()?)
                    .await
                    .map_err(db_error)?
                    .as_ref()
                    .map($crate::rows::audit_entry)
                    .transpose()
            }

            async fn audit_size(&self) -> Result<u64, $crate::StoreError> {
                let size: i64 = ::sqlx::query_scalar($sql::AUDIT_SIZE)
                    .fetch_one(self.pool()?)
                    .await
                    .map_err(db_error)?;
                u64::try_from(size).map_err(|_| {
                    $crate::StoreError::Corrupt(format!("audit sequence {size}"))
                })
            }

            async fn audit_leaf_hashes(
                &self,
                after: u64,
                up_to: u64,
            ) -> Result<Vec<::promptgate_audit::Hash>, $crate::StoreError> {
                let rows: Vec<String> = ::sqlx::query_scalar($sql::AUDIT_LEAF_HASHES)
                    .bind($crate::codec::sql_sequence(after))
                    .bind($crate::codec::sql_sequence(up_to))
                    .fetch_all(self.pool()?)
                    .await
                    .map_err(db_error)?;
                rows.iter().map(|hex| $crate::codec::stored_hash(hex)).collect()
            }

            async fn insert_tree_head(
                &self,
                head: &::promptgate_audit::SignedTreeHead,
            ) -> Result<(), $crate::StoreError> {
                ::sqlx::query($sql::INSERT_TREE_HEAD)
                    .bind($crate::codec::sql_sequence(head.head.tree_size))
                    .bind(&head.key_id)
                    .bind(::promptgate_audit::merkle::to_hex(&head.head.root_hash))
                    .bind(&head.head.timestamp)
                    .bind(&head.signature)
                    .execute(self.pool()?)
                    .await
                    .map_err(db_error)?;
                Ok(())
            }

            async fn latest_tree_head(
                &self,
            ) -> Result<Option<::promptgate_audit::SignedTreeHead>, $crate::StoreError> {
                ::sqlx::query(
                    "SELECT * FROM audit_tree_heads ORDER BY tree_size DESC, signed_at DESC LIMIT 1",
                )
                .fetch_optional(self.pool()?)
                .await
                .map_err(db_error)?
                .as_ref()
                .map($crate::rows::tree_head)
                .transpose()
            }

            async fn tree_heads(
                &self,
            ) -> Result<Vec<::promptgate_audit::SignedTreeHead>, $crate::StoreError> {
                ::sqlx::query("SELECT * FROM audit_tree_heads ORDER BY tree_size, signed_at")
                    .fetch_all(self.pool()?)
                    .await
                    .map_err(db_error)?
                    .iter()
                    .map($crate::rows::tree_head)
                    .collect()
            }
        }
    };
}
pub(crate) use audit_store;

/// Whether `err` is a unique violation: the row exists.
pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// `conflict()` when `err` is a unique violation (the row exists), otherwise the store's
/// `db_error`.
pub(crate) fn unique_or(
    err: sqlx::Error,
    db_error: fn(sqlx::Error) -> crate::StoreError,
    conflict: impl FnOnce() -> crate::StoreError,
) -> crate::StoreError {
    if is_unique_violation(&err) {
        conflict()
    } else {
        db_error(err)
    }
}
