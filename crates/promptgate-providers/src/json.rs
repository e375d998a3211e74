//! JSON text that core keeps as text (schemas, tool-call arguments), placed into a provider's
//! request as JSON without building a `Value` for it.

use serde_json::value::RawValue;

use crate::ProviderError;

/// `text` as a JSON value to embed; `what` names it in the error when it is not JSON (the
/// gateway checks schemas when a version is written and arguments when a request arrives, so
/// this is a last guard, not the place users meet the error).
pub(crate) fn raw_json<'a>(text: &'a str, what: &str) -> Result<&'a RawValue, ProviderError> {
    serde_json::from_str(text)
        .map_err(|err| ProviderError::Invalid(format!("{what} is not JSON: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_text_is_embedded_as_it_is_and_other_text_is_an_error() {
        let raw = raw_json(r#"{"type": "object"}"#, "a schema").unwrap();
        assert_eq!(raw.get(), r#"{"type": "object"}"#);
        let err = raw_json("{not json", "a schema").unwrap_err();
        assert!(err.to_string().contains("a schema is not JSON"), "{err}");
    }
}
