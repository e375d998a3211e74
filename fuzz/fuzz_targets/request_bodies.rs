//! The request-body decoders of the gateway: `promptgate_server::limits::decode_json_body`
//! (what `JsonBody<T>` runs for every JSON endpoint) for each request type a route decodes, the
//! nesting-depth pre-check `json_depth_over`, and `QueryParams::with_json_body` (GET filters
//! sent as a JSON body).
//!
//! The input is the raw body, so the seeds in `corpus/request_bodies/` are JSON files.
//!
//! Properties:
//! - no decoder panics; each answers `Ok` or a 400-class `ApiError` (`BadRequest` for bodies
//!   that are not JSON objects, `Invalid` for too deep or wrongly typed ones), never another;
//! - `json_depth_over` agrees with serde_json on every body serde_json parses: it never finds
//!   less than the value's nesting depth (the body object is depth 1), and on the value's own
//!   text exactly that depth (a body may be deeper than its value when a member name repeats:
//!   the text is what it bounds);
//! - a body that parses as an object within the depth limit decodes as `serde_json::Value`;
//! - `with_json_body` keeps every non-null member of an object body, strings as they are,
//!   other values as their JSON text; the query helpers then never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use promptgate_api as api;
use promptgate_server::error::ApiError;
use promptgate_server::extract::QueryParams;
use promptgate_server::limits::{DEFAULT_MAX_JSON_DEPTH, decode_json_body, json_depth_over};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The nesting depth of a parsed value: scalars 0, an array or object one more than its
/// deepest member.
fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(members) => 1 + members.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn decode<T: DeserializeOwned>(name: &str, body: &[u8]) -> Option<T> {
    match decode_json_body::<T>(body, DEFAULT_MAX_JSON_DEPTH) {
        Ok(value) => Some(value),
        Err(ApiError::BadRequest(_) | ApiError::Invalid(_)) => None,
        Err(other) => panic!("{name}: a body was refused with a non-400 error: {other:?}"),
    }
}

fuzz_target!(|body: &[u8]| {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();

    // The depth pre-check agrees with the parser on every body the parser accepts. It reads the
    // text, so it may find more than the value keeps (a member repeated under the same name
    // counts though serde_json keeps only the last one): it never finds less, and on the value's
    // own duplicate-free text it finds exactly the value's depth.
    if let Some(value) = &parsed {
        let d = depth(value);
        if d > 0 {
            assert_eq!(json_depth_over(body, d - 1), Some(d), "depth {d} not found");
        }
        let text = serde_json::to_vec(value).expect("a Value serialises");
        assert_eq!(
            json_depth_over(&text, d),
            None,
            "depth {d} reported over {d}"
        );
        if d > 0 {
            assert_eq!(json_depth_over(&text, d - 1), Some(d));
        }
    }
    let over = json_depth_over(body, DEFAULT_MAX_JSON_DEPTH);
    if let Some(found) = over {
        assert_eq!(
            found,
            DEFAULT_MAX_JSON_DEPTH + 1,
            "it stops as soon as it passes the limit"
        );
    }

    let as_value = decode::<Value>("Value", body);
    if let Some(value) = &parsed {
        let acceptable = value.is_object() && over.is_none();
        assert_eq!(
            as_value.is_some(),
            acceptable,
            "a JSON object within the limit is accepted"
        );
    } else {
        assert!(as_value.is_none(), "a body serde_json refuses was accepted");
    }

    // Every request type a route decodes with `JsonBody<T>`.
    let _ = decode::<api::CreatePromptRequest>("CreatePromptRequest", body);
    let _ = decode::<api::UpdatePromptRequest>("UpdatePromptRequest", body);
    let _ = decode::<api::InvokeRequest>("InvokeRequest", body);
    let _ = decode::<api::FeedbackRequest>("FeedbackRequest", body);
    let _ = decode::<api::AuditEntryRequest>("AuditEntryRequest", body);
    let _ = decode::<api::CreateClientRequest>("CreateClientRequest", body);
    let _ = decode::<api::LabelRequest>("LabelRequest", body);
    let _ = decode::<api::RenderRequest>("RenderRequest", body);
    let _ = decode::<api::openai::ChatCompletionRequest>("ChatCompletionRequest", body);

    // GET filters sent as a body.
    match QueryParams::default().with_json_body(body) {
        Ok(query) => {
            if let Some(Value::Object(members)) = &parsed {
                for (key, value) in members {
                    let expected = match value {
                        Value::Null => None,
                        Value::String(s) => Some(s.clone()),
                        other => Some(other.to_string()),
                    };
                    assert_eq!(query.get(key), expected.as_deref(), "member {key:?}");
                }
            }
            let mut violations = Vec::new();
            let _ = query.page_size(50, &mut violations);
            let _ = query.cursor(&mut violations);
            let _ = query.cursor_as::<u64>(&mut violations);
        }
        Err(ApiError::BadRequest(_)) => {
            assert!(
                !matches!(parsed, Some(Value::Object(_))),
                "an object body was refused"
            );
        }
        Err(other) => panic!("with_json_body: a non-400 error: {other:?}"),
    }
});
