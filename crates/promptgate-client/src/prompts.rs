//! Calls for prompts, versions, traffic, model endpoints, OAuth clients and health.

use futures_util::stream::BoxStream;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use promptgate_api::{
    BASE_PATH, ChatCompletionsDraft, CreateClientRequest, CreatePromptRequest, HealthStatus,
    LabelRequest, Listing, ModelEndpoint, OAuthClient, Page, Prompt, PromptVersion, RenderRequest,
    RenderResponse, UpdatePromptRequest,
};
use reqwest::Method;
use serde::de::DeserializeOwned;

use crate::builder::{PromptDraft, TrafficSplit, VersionDraft};
use crate::client::{Call, Client, Tagged};
use crate::error::Error;

/// Filters for [`Client::list_prompts`].
#[derive(Debug, Clone, Default)]
pub struct PromptQuery {
    /// Exact name, or a pattern with `*` wildcards.
    pub name: Option<String>,
    /// `ACTIVE` or `ARCHIVED`.
    pub status: Option<String>,
    /// Entities per request (1–500).
    pub page_size: Option<u32>,
}

impl Client {
    /// Creates a prompt. With the `tokens` feature (on by default) the draft's token budget is
    /// checked locally with the endpoint's tokenizer first, so an over-budget prompt fails
    /// without a request; the server checks again, and without the feature alone.
    pub async fn create_prompt(&self, draft: &PromptDraft) -> Result<Tagged<Prompt>, Error> {
        #[cfg(feature = "tokens")]
        if let Some(tokenizer) = self.tokenizer_for(draft.model_endpoint_ref()).await? {
            draft.check_budget(tokenizer)?;
        }
        self.create_prompt_raw(draft.request()).await
    }

    /// Creates a prompt from the contract's request body as is (no local check).
    pub async fn create_prompt_raw(
        &self,
        request: &CreatePromptRequest,
    ) -> Result<Tagged<Prompt>, Error> {
        let call = Call::with(
            Method::POST,
            format!("{BASE_PATH}/prompts"),
            Some(to_json(request)?),
        );
        self.send(call).await?.tagged()
    }

    /// One prompt with its ETag; its generation fields are the default version's.
    pub async fn get_prompt(&self, id: &str) -> Result<Tagged<Prompt>, Error> {
        self.send(Call::get(format!("{BASE_PATH}/prompts/{}", segment(id))))
            .await?
            .tagged()
    }

    /// Every prompt matching `query`, fetched page by page as the stream is read.
    pub fn list_prompts(&self, query: PromptQuery) -> BoxStream<'_, Result<Prompt, Error>> {
        let mut params = Vec::new();
        if let Some(name) = query.name {
            params.push(("name".to_owned(), name));
        }
        if let Some(status) = query.status {
            params.push(("status".to_owned(), status));
        }
        self.paginate(format!("{BASE_PATH}/prompts"), params, query.page_size)
    }

    /// A prompt's versions, newest first, page by page.
    pub fn list_versions(
        &self,
        prompt_id: &str,
        page_size: Option<u32>,
    ) -> BoxStream<'_, Result<PromptVersion, Error>> {
        self.paginate(
            format!("{BASE_PATH}/prompts/{}/versions", segment(prompt_id)),
            Vec::new(),
            page_size,
        )
    }

    /// One version.
    pub async fn get_version(
        &self,
        prompt_id: &str,
        version: &str,
    ) -> Result<PromptVersion, Error> {
        self.send(Call::get(format!(
            "{BASE_PATH}/prompts/{}/versions/{}",
            segment(prompt_id),
            segment(version)
        )))
        .await?
        .json()
    }

    /// Adds a version and/or changes traffic in one atomic request. With `if_match`, fails
    /// with [`Error::PreconditionFailed`] when the prompt changed since that ETag.
    pub async fn update_prompt(
        &self,
        prompt_id: &str,
        request: &UpdatePromptRequest,
        if_match: Option<&str>,
    ) -> Result<Tagged<Prompt>, Error> {
        let mut call = Call::with(
            Method::PUT,
            format!("{BASE_PATH}/prompts/{}", segment(prompt_id)),
            Some(to_json(request)?),
        );
        call.if_match = if_match.map(str::to_owned);
        self.send(call).await?.tagged()
    }

    /// Adds a version built with [`VersionDraft`] (fields it leaves unset are the newest
    /// version's). With `if_match`, fails with [`Error::PreconditionFailed`] when the prompt
    /// changed since that ETag.
    pub async fn add_version(
        &self,
        prompt_id: &str,
        draft: &VersionDraft,
        if_match: Option<&str>,
    ) -> Result<Tagged<Prompt>, Error> {
        self.update_prompt(prompt_id, draft.request(), if_match)
            .await
    }

    /// Renders a version's templates with sample variables, calling no model: the system
    /// prompt and template messages a model would be sent, with their token counts. The
    /// variables are checked as an invocation checks them ([`Error::InvalidVariables`]); the
    /// request names a `version`, a `label`, or neither (the default version).
    pub async fn render(
        &self,
        prompt_id: &str,
        request: &RenderRequest,
    ) -> Result<RenderResponse, Error> {
        let call = Call::with(
            Method::POST,
            format!("{BASE_PATH}/prompts/{}/render", segment(prompt_id)),
            Some(to_json(request)?),
        );
        self.send(call).await?.json()
    }

    /// Points the label `label` (such as `production`) at `version`, creating it or moving it;
    /// answers the prompt with its labels. With `if_match`, fails with
    /// [`Error::PreconditionFailed`] when the prompt changed since that ETag.
    pub async fn set_label(
        &self,
        prompt_id: &str,
        label: &str,
        version: &str,
        if_match: Option<&str>,
    ) -> Result<Tagged<Prompt>, Error> {
        let request = LabelRequest {
            version: Some(version.to_owned()),
        };
        let mut call = Call::with(
            Method::PUT,
            label_path(prompt_id, label),
            Some(to_json(&request)?),
        );
        call.if_match = if_match.map(str::to_owned);
        self.send(call).await?.tagged()
    }

    /// Deletes the label `label`; answers the prompt without it ([`Error::NotFound`] when the
    /// prompt has no such label).
    pub async fn delete_label(
        &self,
        prompt_id: &str,
        label: &str,
        if_match: Option<&str>,
    ) -> Result<Tagged<Prompt>, Error> {
        let mut call = Call::with(Method::DELETE, label_path(prompt_id, label), None);
        call.if_match = if_match.map(str::to_owned);
        self.send(call).await?.tagged()
    }

    /// Sets the traffic split (a value that cannot hold invalid weights).
    pub async fn set_traffic(
        &self,
        prompt_id: &str,
        split: &TrafficSplit,
        if_match: Option<&str>,
    ) -> Result<Tagged<Prompt>, Error> {
        let request = UpdatePromptRequest {
            traffic_distribution: Some(split.to_wire()),
            ..UpdatePromptRequest::default()
        };
        self.update_prompt(prompt_id, &request, if_match).await
    }

    /// Sets the prompt's policy for the OpenAI-compatible `/v1/chat/completions` (parts left
    /// `None` keep their values); no version is created.
    pub async fn set_chat_completions(
        &self,
        prompt_id: &str,
        policy: &ChatCompletionsDraft,
        if_match: Option<&str>,
    ) -> Result<Tagged<Prompt>, Error> {
        let request = UpdatePromptRequest {
            chat_completions: Some(policy.clone()),
            ..UpdatePromptRequest::default()
        };
        self.update_prompt(prompt_id, &request, if_match).await
    }

    /// Archives a prompt: it stops serving, its history stays.
    pub async fn archive_prompt(
        &self,
        prompt_id: &str,
        if_match: Option<&str>,
    ) -> Result<Tagged<Prompt>, Error> {
        let mut call = Call::with(
            Method::DELETE,
            format!("{BASE_PATH}/prompts/{}", segment(prompt_id)),
            None,
        );
        call.if_match = if_match.map(str::to_owned);
        self.send(call).await?.tagged()
    }

    /// The gateway's model endpoints and whether each can be called now.
    pub async fn model_endpoints(&self) -> Result<Vec<ModelEndpoint>, Error> {
        let listing: Listing<ModelEndpoint> = self
            .send(Call::get(format!("{BASE_PATH}/model-endpoints")))
            .await?
            .json()?;
        Ok(listing.entities)
    }

    /// Creates an OAuth client (scope `admin`); the answer holds its secret, shown only now.
    pub async fn create_client(&self, name: &str, scopes: &[&str]) -> Result<OAuthClient, Error> {
        let request = CreateClientRequest {
            name: Some(name.to_owned()),
            scopes: Some(scopes.iter().map(|s| (*s).to_owned()).collect()),
        };
        self.send(Call::with(
            Method::POST,
            "/api/v2/oauth/clients",
            Some(to_json(&request)?),
        ))
        .await?
        .json()
    }

    /// Every OAuth client (scope `admin`).
    pub async fn list_clients(&self) -> Result<Vec<OAuthClient>, Error> {
        let listing: Listing<OAuthClient> = self
            .send(Call::get("/api/v2/oauth/clients"))
            .await?
            .json()?;
        Ok(listing.entities)
    }

    /// Disables an OAuth client (scope `admin`).
    pub async fn disable_client(&self, client_id: &str) -> Result<OAuthClient, Error> {
        self.send(Call::with(
            Method::POST,
            format!("/api/v2/oauth/clients/{}/disable", segment(client_id)),
            None,
        ))
        .await?
        .json()
    }

    /// `/readyz`: whether the gateway and its database answer.
    pub async fn ready(&self) -> Result<HealthStatus, Error> {
        self.send_anonymous("/readyz").await?.json()
    }

    /// The tokenizer of the endpoint `reference`, from the gateway's catalogue when the token
    /// allows reading it, else from the built-in catalogue; `None` when unknown here.
    #[cfg(feature = "tokens")]
    async fn tokenizer_for(
        &self,
        reference: Option<&str>,
    ) -> Result<Option<promptgate_core::TokenizerKind>, Error> {
        let Some(reference) = reference else {
            return Ok(None);
        };
        let from_gateway = match self.model_endpoints().await {
            Ok(list) => list
                .into_iter()
                .find(|e| e.reference == reference)
                .and_then(|e| e.tokenizer.parse().ok()),
            // A token without ai:prompt:read cannot list endpoints; the server still checks.
            Err(Error::MissingScope { .. }) => None,
            Err(other) => return Err(other),
        };
        Ok(from_gateway.or_else(|| {
            promptgate_core::EndpointCatalogue::with_overrides([])
                .get(reference)
                .map(|e| e.tokenizer)
        }))
    }

    pub(crate) fn paginate<T: DeserializeOwned + Send + 'static>(
        &self,
        path: String,
        params: Vec<(String, String)>,
        page_size: Option<u32>,
    ) -> BoxStream<'_, Result<T, Error>> {
        // State: the next cursor, or `None` once the last page was read.
        let start: Option<Option<String>> = Some(None);
        stream::try_unfold(start, move |state| {
            let path = path.clone();
            let mut query = params.clone();
            async move {
                let Some(cursor) = state else { return Ok(None) };
                if let Some(size) = page_size {
                    query.push(("pageSize".to_owned(), size.to_string()));
                }
                if let Some(cursor) = cursor {
                    query.push(("cursor".to_owned(), cursor));
                }
                let mut call = Call::get(path);
                call.query = query;
                let page: Page<T> = self.send(call).await?.json()?;
                let next = page.next_page_cursor.map(Some);
                Ok::<_, Error>(Some((
                    stream::iter(page.entities.into_iter().map(Ok)),
                    next,
                )))
            }
        })
        .try_flatten()
        .boxed()
    }
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<serde_json::Value, Error> {
    serde_json::to_value(value)
        .map_err(|e| Error::Config(format!("cannot encode the request: {e}")))
}

fn label_path(prompt_id: &str, label: &str) -> String {
    format!(
        "{BASE_PATH}/prompts/{}/labels/{}",
        segment(prompt_id),
        segment(label)
    )
}

/// Percent-encodes a path segment so ids and versions cannot change the path.
pub(crate) fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~+".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
