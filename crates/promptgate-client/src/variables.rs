//! Local checks of an invocation's template variables against a version the caller has read,
//! with the very rules the gateway applies (`promptgate-variables`): the version's schema with
//! its defaults, or, without one, every placeholder a required string; unknown names refused.
//! A mistake then fails before any request, with every problem at once.

use promptgate_api::PromptVersion;
use promptgate_core::template::{Template, VariablePath};
use promptgate_core::violation::Violation;
use promptgate_variables::VersionVariables;
use serde_json::{Map, Value};

use crate::error::{Error, FieldViolation};

/// A version's variables, compiled once (the schema is parsed and its validator built here) and
/// then checked against any number of invocations' values.
///
/// ```
/// use promptgate_client::{Error, VariablesCheck};
/// # fn demo(version: &promptgate_client::api::PromptVersion) -> Result<(), Error> {
/// let check = VariablesCheck::for_version(version);
/// let mut variables = serde_json::Map::new();
/// variables.insert("customer_name".into(), "Jane".into());
/// check.check(Some(&variables))?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct VariablesCheck {
    version: String,
    /// `None` when the version declares no variables that can be compiled (a version stored
    /// before templates existed): any variable sent is then unknown, as the gateway says.
    variables: Option<VersionVariables>,
}

impl VariablesCheck {
    /// Compiles the variables of `version` (as [`crate::Client::get_version`] answers it): its
    /// placeholders in the system prompt, the template messages and the few-shot examples, and
    /// its `variablesSchema`.
    ///
    /// Like the gateway, a text that does not parse as a template is taken verbatim, and a
    /// schema that does not compile falls back to the schema the placeholders imply, so that
    /// a version the gateway serves is never refused here.
    pub fn for_version(version: &PromptVersion) -> Self {
        let texts = std::iter::once(version.system_prompt.as_str())
            .chain(
                version
                    .template_messages
                    .iter()
                    .filter_map(|m| m.content.as_deref()),
            )
            .chain(version.few_shot_examples.iter().flat_map(|e| {
                [e.input.as_deref(), e.output.as_deref()]
                    .into_iter()
                    .flatten()
            }));
        let placeholders: Vec<VariablePath> = texts
            .map(|text| Template::parse(text).unwrap_or_else(|_| Template::verbatim(text)))
            .flat_map(|template| template.placeholders().cloned().collect::<Vec<_>>())
            .collect();
        let schema = version.variables_schema.as_ref().map(Value::to_string);
        let variables = VersionVariables::compile(schema.as_deref(), placeholders.clone())
            .or_else(|_| VersionVariables::compile(None, placeholders))
            .ok();
        VariablesCheck {
            version: version.version.clone(),
            variables,
        }
    }

    /// The version the check was compiled for.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Checks an invocation's `variables` (`None` when it sends none): every problem at once,
    /// as [`Error::InvalidVariables`] naming `variables.<name>`, sorted by field.
    pub fn check(&self, variables: Option<&Map<String, Value>>) -> Result<(), Error> {
        let violations: Vec<Violation> = match &self.variables {
            Some(compiled) => match compiled.resolve(variables) {
                Ok(_) => return Ok(()),
                Err(violations) => violations,
            },
            None => variables
                .into_iter()
                .flat_map(Map::keys)
                .map(|name| {
                    Violation::invalid(
                        format!("variables.{name}"),
                        "this version declares no variables",
                    )
                })
                .collect(),
        };
        if violations.is_empty() {
            return Ok(());
        }
        Err(Error::InvalidVariables {
            violations: violations
                .iter()
                .map(|v| FieldViolation {
                    field: v.field.clone(),
                    message: v.message(),
                })
                .collect(),
            context_id: None,
        })
    }
}

/// Checks `variables` against `version` once: [`VariablesCheck::for_version`] then
/// [`VariablesCheck::check`]. Compile a [`VariablesCheck`] instead to check many invocations.
pub fn check_variables(
    version: &PromptVersion,
    variables: Option<&Map<String, Value>>,
) -> Result<(), Error> {
    VariablesCheck::for_version(version).check(variables)
}
