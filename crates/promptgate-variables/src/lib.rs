//! The variables of a prompt template: their JSON Schema (draft 2020-12), the check of a
//! caller's values with defaults applied, and the values as text for rendering
//! (shared/API.md, "Templates and variables"); and the other JSON Schemas a version holds, a
//! tool's parameters and the output format ([`output`]).
//!
//! Core parses templates and reads no JSON; this crate holds everything that needs JSON Schema,
//! so that the server and the SDK apply one set of rules. It is used twice:
//!
//! - **On create and update**, [`SchemaChecker`] (core's [`SchemaCheck`]) checks a version's
//!   `variablesSchema` and that it declares every placeholder of the version's texts.
//! - **Per version**, [`VersionVariables::compile`] builds the validator once (the server keeps
//!   it in its prompt cache); [`VersionVariables::resolve`] checks an invocation's `variables`
//!   and applies the defaults; [`ResolvedVariables`] hands the strings to the guardrails and
//!   renders the templates.
//!
//! # The schema
//!
//! A JSON Schema of draft 2020-12 (a `$schema` naming another draft is refused) describing an
//! object whose `properties` are the variables: its `type` is `"object"` (or absent, with
//! `properties`). The variables are the top-level `properties`, in the order they are written;
//! `required` lists those the caller must send, and a property's `default` fills it in when it
//! is absent. Nested `default`s are applied too, inside an object the caller sends or that a
//! default supplies. Properties may use local references (`{"$ref": "#/$defs/tier"}`); a
//! reference outside the document is never fetched, and the schema is refused. `format` is
//! asserted (a `"format": "date"` value must be a date) and `pattern` uses linear-time regular
//! expressions (no look-around or back-references), so that a caller's value can never make a
//! pattern run away.
//!
//! A placeholder is declared when its root is a top-level property, and each further segment of
//! a dotted placeholder (`{{customer.tier}}`) is a property of the previous one's schema. A
//! schema without `properties` at some level (a free-form object) declares whatever lies
//! beneath it; a schema whose `type` excludes objects declares nothing beneath it.
//!
//! # Without a schema
//!
//! Every placeholder is a required string: `{{name}}` makes `name` a required string. A dotted
//! placeholder `{{customer.tier}}` makes `customer` a required object whose `tier` is a required
//! string (further properties of `customer` are accepted). A name used both bare and dotted
//! (`{{customer}}` and `{{customer.tier}}`) is an object, and the bare placeholder renders its
//! JSON text.
//!
//! # Values
//!
//! Names that the version does not declare are refused, whatever the schema says about
//! `additionalProperties`: a typo must not pass silently. Every problem is reported at once, as
//! an `invalid.value` [`Violation`] whose field is `variables.<name>` (`variables.customer.tier`,
//! `variables.tags[2]` for nested values).
//!
//! # Rendering
//!
//! A string is inserted verbatim; a number or a boolean as its JSON text (`42`, `0.5`, `true`);
//! `null`, and an optional variable that is absent with no default, as the empty string. An
//! object or an array is meant to be read through dotted placeholders; a placeholder that
//! resolves to one renders its compact JSON text (`{"tier":"gold"}`), so that nothing is lost
//! silently.

#![warn(missing_docs)]

mod messages;
pub mod output;
mod schema;
mod values;

pub use output::{OutputCheck, OutputVerdict};
pub use schema::{SchemaChecker, VariablesError};
pub use values::{ResolvedVariables, VariableInfo, VersionVariables};

#[cfg(doc)]
use promptgate_core::{Violation, template::SchemaCheck};
