//! Request extractors whose every failure is an [`ApiError`] in the contract's shape: a JSON
//! body (415, 413, 400 with the offending field's path) and query parameters.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use promptgate_core::Violation;
use promptgate_core::violation::quoted;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// The largest page any listing returns.
pub const MAX_PAGE_SIZE: u32 = 500;

/// A JSON request body decoded into `T`. Unknown fields are ignored; a value of the wrong type
/// is a 400 that names its path.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if !(essence == "application/json" || essence.ends_with("+json")) {
            return Err(ApiError::UnsupportedMediaType { got: content_type });
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge {
                    limit: state.max_body_bytes,
                }
            } else {
                ApiError::BadRequest(format!(
                    "the body could not be read: {}",
                    rejection.body_text()
                ))
            }
        })?;
        crate::limits::decode_json_body(&bytes, state.limits.max_json_depth).map(JsonBody)
    }
}

/// The query string as a map (the last value of a repeated key wins).
#[derive(Debug, Default)]
pub struct QueryParams(BTreeMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        Ok(QueryParams(
            form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        ))
    }
}

impl QueryParams {
    /// Adds the members of a JSON object body (some clients send a GET's filters that way);
    /// the query string wins where both give a key. An empty body changes nothing.
    pub fn with_json_body(mut self, body: &[u8]) -> Result<Self, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(self);
        }
        let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
            ApiError::BadRequest(format!(
                "the body is not valid JSON: {}",
                crate::limits::plain_serde_text(&e.to_string())
            ))
        })?;
        let serde_json::Value::Object(members) = value else {
            return Err(ApiError::BadRequest(
                "the body must be a JSON object".to_owned(),
            ));
        };
        for (key, value) in members {
            let text = match value {
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => continue,
                other => other.to_string(),
            };
            self.0.entry(key).or_insert(text);
        }
        Ok(self)
    }

    /// One parameter.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// `pageSize`, in 1–[`MAX_PAGE_SIZE`], or `default`.
    pub fn page_size(&self, default: u32, violations: &mut Vec<Violation>) -> u32 {
        match self.get("pageSize") {
            None => default,
            Some(text) => match text.parse::<u32>() {
                Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
                _ => {
                    violations.push(Violation::invalid(
                        "pageSize",
                        format!(
                            "pageSize is {}; it must be a whole number from 1 to {MAX_PAGE_SIZE}",
                            quoted(text)
                        ),
                    ));
                    default
                }
            },
        }
    }

    /// The decoded `cursor`, if one was given.
    pub fn cursor(&self, violations: &mut Vec<Violation>) -> Option<String> {
        let text = self.get("cursor").filter(|c| !c.is_empty())?;
        match decode_cursor(text) {
            Some(decoded) => Some(decoded),
            None => {
                violations.push(Violation::invalid(
                    "cursor",
                    "cursor is not one this server issued; pass nextPageCursor unchanged",
                ));
                None
            }
        }
    }
}

impl QueryParams {
    /// The `cursor` decoded and parsed as the position type of a listing (a storage sequence, a
    /// version label); anything else is reported as a cursor this server did not issue.
    pub fn cursor_as<T: std::str::FromStr>(&self, violations: &mut Vec<Violation>) -> Option<T> {
        self.cursor(violations).and_then(|c| {
            c.parse::<T>()
                .map_err(|_| {
                    violations.push(Violation::invalid(
                        "cursor",
                        "cursor is not one this server issued",
                    ))
                })
                .ok()
        })
    }
}

/// Cuts rows fetched with one extra (`page_size + 1`) to a page, with the cursor of the next
/// page when that extra row showed there is one.
pub fn keyset_page<R>(
    mut rows: Vec<R>,
    page_size: u32,
    position: impl Fn(&R) -> String,
) -> (Vec<R>, Option<String>) {
    let more = rows.len() > page_size as usize;
    rows.truncate(page_size as usize);
    let next = more
        .then(|| rows.last().map(|r| encode_cursor(&position(r))))
        .flatten();
    (rows, next)
}

/// Wraps a position in an opaque cursor.
pub fn encode_cursor(position: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("pg1:{position}"))
}

fn decode_cursor(cursor: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    text.strip_prefix("pg1:").map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = encode_cursor("0190a1b2-0000-7000-8000-000000000001");
        assert_eq!(
            decode_cursor(&c).as_deref(),
            Some("0190a1b2-0000-7000-8000-000000000001")
        );
        assert_eq!(decode_cursor("not-a-cursor"), None);
        assert_eq!(decode_cursor(&URL_SAFE_NO_PAD.encode("other")), None);
    }
}
