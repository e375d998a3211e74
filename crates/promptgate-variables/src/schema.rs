//! A version's variables schema: read, checked against the draft 2020-12 meta-schema, compiled,
//! and compared with the placeholders of the version's texts.

use std::fmt;

use jsonschema::error::ValidationErrorKind;
use jsonschema::paths::LocationSegment;
use jsonschema::{PatternOptions, ValidationError, ValidationOptions, Validator};
use promptgate_core::template::{Placeholder, SchemaCheck, VariablePath};
use promptgate_core::violation::{Violation, ViolationCode};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

use crate::messages;

/// The field that names the schema in the contract.
const SCHEMA_FIELD: &str = "variablesSchema";

/// The `$schema` of draft 2020-12, the only draft accepted.
const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// The most local `$ref`s followed from one schema: a bound on a reference cycle.
const MAX_REF_HOPS: usize = 16;

/// The deepest nested default applied, and the most properties visited to find defaults: a
/// recursive schema (through `$ref`) would otherwise unfold without end.
const MAX_DEFAULT_DEPTH: usize = 8;
const MAX_DEFAULT_VISITS: usize = 10_000;

/// Why a variables schema cannot be used, or does not fit the version's placeholders.
///
/// [`SchemaChecker`] reports each as a violation (of `variablesSchema`, or of the placeholder's
/// field); [`crate::VersionVariables::compile`] returns the first. A stored schema that no
/// longer compiles (after an upgrade of the validator) is one of these too, and the server then
/// serves the version without variables.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VariablesError {
    /// The text is not JSON.
    #[error("variablesSchema is not JSON: {reason}")]
    NotJson {
        /// The parser's explanation.
        reason: String,
    },
    /// `$schema` names another draft (or anything but draft 2020-12).
    #[error(
        "variablesSchema must be JSON Schema draft 2020-12 ({DRAFT_2020_12}); its $schema is {uri}"
    )]
    Draft {
        /// The `$schema` value, as JSON text.
        uri: String,
    },
    /// The document breaks the draft 2020-12 meta-schema.
    #[error("variablesSchema is not a valid JSON Schema (draft 2020-12): at {at}: {reason}")]
    Invalid {
        /// Where in the document (a JSON Pointer, or "the top level").
        at: String,
        /// What is wrong there.
        reason: String,
    },
    /// The schema does not describe an object whose properties are the variables.
    #[error(
        "variablesSchema must describe an object whose properties are the variables: set \"type\": \"object\" and list them under \"properties\""
    )]
    NotObject,
    /// A top-level `required` name that `properties` does not declare: no invocation could
    /// pass, since an undeclared name is refused.
    #[error(
        "variablesSchema requires {name}, which its properties do not declare; no invocation could supply it"
    )]
    RequiredUndeclared {
        /// The name listed in `required`.
        name: String,
    },
    /// A `$ref` that the document does not resolve itself: remote references are never fetched.
    #[error(
        "variablesSchema has a reference that cannot be resolved within the document (remote references are never fetched; put the definition under $defs): {reason}"
    )]
    UnresolvedReference {
        /// The resolver's explanation.
        reason: String,
    },
    /// The validator refuses the schema (an invalid or unsupported `pattern`, for example).
    #[error("variablesSchema cannot be compiled: {reason}")]
    Uncompilable {
        /// The validator's explanation.
        reason: String,
    },
    /// A `default` that its own property's schema refuses.
    #[error("variablesSchema: the default of {name} is not valid: {reason}")]
    BadDefault {
        /// The variable (top-level property).
        name: String,
        /// What is wrong with the default.
        reason: String,
    },
    /// A placeholder whose variable the schema does not declare.
    #[error(
        "placeholder {{{{{placeholder}}}}} is not declared in variablesSchema; {}",
        Declared::list(.parent, .declared)
    )]
    Undeclared {
        /// The placeholder's path (`customer.tier`).
        placeholder: String,
        /// The object variable whose properties were searched (`customer`); none at the top.
        parent: Option<String>,
        /// The names declared where the placeholder's name was looked for.
        declared: Vec<String>,
    },
    /// A dotted placeholder that reads a property of a variable declared as something other than
    /// an object.
    #[error(
        "placeholder {{{{{placeholder}}}}} reads a property of {variable}, which variablesSchema declares as {declared_type}"
    )]
    NotAnObject {
        /// The placeholder's path (`name.first`).
        placeholder: String,
        /// The variable it reads a property of (`name`).
        variable: String,
        /// Its declared `type`, as JSON text.
        declared_type: String,
    },
}

/// Core's [`SchemaCheck`] with JSON Schema: parses the schema, checks it against the draft
/// 2020-12 meta-schema, checks that it describes an object, compiles it (refusing remote
/// references), checks its defaults, and checks that it declares every placeholder. Every
/// problem is returned at once.
#[derive(Debug, Clone, Copy, Default)]
pub struct SchemaChecker;

impl SchemaCheck for SchemaChecker {
    fn check(&self, schema: &str, placeholders: &[Placeholder]) -> Vec<Violation> {
        let compiled = match CompiledSchema::load(schema) {
            Ok(compiled) => compiled,
            Err(errors) => {
                return errors
                    .iter()
                    .map(|e| Violation::invalid(SCHEMA_FIELD, e.to_string()))
                    .collect();
            }
        };
        let mut seen: Vec<(&str, &VariablePath)> = Vec::new();
        let mut violations = Vec::new();
        for placeholder in placeholders {
            let key = (placeholder.field.as_str(), &placeholder.path);
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            if let Err(error) = compiled.declares(&placeholder.path) {
                violations.push(placeholder_violation(&placeholder.field, &error));
            }
        }
        violations
    }

    /// A tool's parameters (the field ends in `.parameters`) must describe an object; an
    /// output schema may be anything.
    fn check_document(&self, schema: &str, field: &str) -> Vec<Violation> {
        crate::output::check_document(schema, field, field.ends_with(".parameters"))
    }
}

/// A placeholder's problem as a violation of its own field, with the names in parameters.
fn placeholder_violation(field: &str, error: &VariablesError) -> Violation {
    match error {
        VariablesError::Undeclared {
            placeholder,
            parent,
            declared,
        } => {
            let placeholder = format!("{{{{{placeholder}}}}}");
            let list = declared.join(", ");
            let (template, params) = match (parent, declared.is_empty()) {
                (None, false) => (
                    "placeholder {placeholder} is not declared in variablesSchema; declared variables: {declared}",
                    vec![("placeholder", placeholder), ("declared", list)],
                ),
                (None, true) => (
                    "placeholder {placeholder} is not declared in variablesSchema; it declares no variables",
                    vec![("placeholder", placeholder)],
                ),
                (Some(parent), false) => (
                    "placeholder {placeholder} is not declared in variablesSchema; {variable} declares: {declared}",
                    vec![
                        ("placeholder", placeholder),
                        ("variable", parent.clone()),
                        ("declared", list),
                    ],
                ),
                (Some(parent), true) => (
                    "placeholder {placeholder} is not declared in variablesSchema; {variable} declares no properties",
                    vec![("placeholder", placeholder), ("variable", parent.clone())],
                ),
            };
            Violation::with_params(ViolationCode::InvalidValue, field, template, &params)
        }
        other => Violation::invalid(field, other.to_string()),
    }
}

/// How [`VariablesError::Undeclared`] lists what is declared.
struct Declared<'a> {
    parent: Option<&'a str>,
    names: &'a [String],
}

impl<'a> Declared<'a> {
    fn list(parent: &'a Option<String>, names: &'a [String]) -> Self {
        Declared {
            parent: parent.as_deref(),
            names,
        }
    }
}

impl fmt::Display for Declared<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.parent, self.names.is_empty()) {
            (None, false) => write!(f, "declared variables: {}", self.names.join(", ")),
            (None, true) => f.write_str("it declares no variables"),
            (Some(parent), false) => write!(f, "{parent} declares: {}", self.names.join(", ")),
            (Some(parent), true) => write!(f, "{parent} declares no properties"),
        }
    }
}

/// One top-level variable as the schema declares it.
#[derive(Debug, Clone)]
pub(crate) struct DeclaredVariable {
    pub(crate) name: String,
    /// Listed in `required`.
    pub(crate) required: bool,
    /// Has a `default`.
    pub(crate) has_default: bool,
}

/// A schema ready to validate: the validator, the variables in their written order and the
/// defaults to apply.
pub(crate) struct CompiledSchema {
    pub(crate) root: Value,
    pub(crate) validator: Validator,
    pub(crate) variables: Vec<DeclaredVariable>,
    pub(crate) defaults: Defaults,
}

impl CompiledSchema {
    /// Reads, checks and compiles a version's schema text; every problem found at the first
    /// stage that has any.
    pub(crate) fn load(text: &str) -> Result<Self, Vec<VariablesError>> {
        let root: Value = serde_json::from_str(text).map_err(|e| {
            vec![VariablesError::NotJson {
                reason: e.to_string(),
            }]
        })?;
        let Some(object) = root.as_object() else {
            return Err(vec![VariablesError::NotObject]);
        };
        if let Some(uri) = object.get("$schema") {
            let draft_2020_12 = uri
                .as_str()
                .is_some_and(|u| u.trim_end_matches('#') == DRAFT_2020_12);
            if !draft_2020_12 {
                return Err(vec![VariablesError::Draft {
                    uri: uri.to_string(),
                }]);
            }
        }
        let meta = jsonschema::draft202012::meta::validator();
        let invalid: Vec<VariablesError> = meta
            .iter_errors(&root)
            .map(|e| VariablesError::Invalid {
                at: match e.instance_path().as_str() {
                    "" => "the top level".to_owned(),
                    pointer => pointer.to_owned(),
                },
                reason: e.masked_with("the value").to_string(),
            })
            .collect();
        if !invalid.is_empty() {
            return Err(invalid);
        }
        if !describes_object(object) {
            return Err(vec![VariablesError::NotObject]);
        }
        let required_undeclared = required_undeclared(object);
        if !required_undeclared.is_empty() {
            return Err(required_undeclared);
        }
        let validator = options().build(&root).map_err(|e| vec![uncompilable(&e)])?;
        let variables = declared_variables(text, &root);
        let defaults = Defaults::of(&root, &root, 0, &mut 0);
        let compiled = CompiledSchema {
            validator,
            variables,
            defaults,
            root,
        };
        let bad_defaults = compiled.bad_defaults();
        if bad_defaults.is_empty() {
            Ok(compiled)
        } else {
            Err(bad_defaults)
        }
    }

    /// The schema implied by the placeholders of a version without one: each root a required
    /// string, or a required object when it is used dotted (crate docs, "Without a schema").
    pub(crate) fn implied(
        placeholders: impl IntoIterator<Item = VariablePath>,
    ) -> Result<Self, VariablesError> {
        let mut tree = Vec::new();
        for path in placeholders {
            let segments: Vec<&str> = path.segments().collect();
            Implied::insert(&mut tree, &segments);
        }
        let variables = tree
            .iter()
            .map(|(name, _)| DeclaredVariable {
                name: name.clone(),
                required: true,
                has_default: false,
            })
            .collect();
        let root = Implied::Object(tree).schema();
        let validator = options().build(&root).map_err(|e| uncompilable(&e))?;
        Ok(CompiledSchema {
            root,
            validator,
            variables,
            defaults: Defaults::default(),
        })
    }

    /// Whether the schema declares `path`: its root is a variable, and each further segment a
    /// property of the previous one (crate docs, "The schema").
    pub(crate) fn declares(&self, path: &VariablePath) -> Result<(), VariablesError> {
        let mut segments = path.segments();
        let root_name = path.root();
        segments.next();
        if !self.variables.iter().any(|v| v.name == root_name) {
            return Err(VariablesError::Undeclared {
                placeholder: path.as_str().to_owned(),
                parent: None,
                declared: self.variables.iter().map(|v| v.name.clone()).collect(),
            });
        }
        let mut parent = root_name.to_owned();
        let mut node = property_schema(&self.root, &self.root, root_name);
        for segment in segments {
            let Some(current) = node else {
                // Declared through something other than `properties` (never here: roots come
                // from `properties`), or below a free-form object: anything goes.
                return Ok(());
            };
            let chain = schema_chain(&self.root, current);
            if let Some(declared_type) = non_object_type(&chain) {
                return Err(VariablesError::NotAnObject {
                    placeholder: path.as_str().to_owned(),
                    variable: parent,
                    declared_type,
                });
            }
            let maps: Vec<&Map<String, Value>> = chain
                .iter()
                .filter_map(|schema| schema.get("properties").and_then(Value::as_object))
                .collect();
            if maps.is_empty() {
                return Ok(());
            }
            match maps.iter().find_map(|m| m.get(segment)) {
                Some(next) => node = Some(next),
                None => {
                    let mut declared: Vec<String> =
                        maps.iter().flat_map(|m| m.keys().cloned()).collect();
                    declared.sort();
                    declared.dedup();
                    return Err(VariablesError::Undeclared {
                        placeholder: path.as_str().to_owned(),
                        parent: Some(parent),
                        declared,
                    });
                }
            }
            parent.push('.');
            parent.push_str(segment);
        }
        Ok(())
    }

    /// The defaults that their own schemas refuse: the defaults alone are validated, and each
    /// error inside a defaulted variable is one problem.
    fn bad_defaults(&self) -> Vec<VariablesError> {
        let mut values = Map::new();
        self.defaults.apply(&mut values);
        if values.is_empty() {
            return Vec::new();
        }
        let instance = Value::Object(values);
        self.validator
            .iter_errors(&instance)
            .filter_map(|error| {
                let name = match error.instance_path().segments().next()? {
                    LocationSegment::Property(name) => name.into_owned(),
                    LocationSegment::Index(_) => return None,
                };
                let reason = messages::violations(&error)
                    .iter()
                    .map(Violation::message)
                    .collect::<Vec<_>>()
                    .join("; ");
                Some(VariablesError::BadDefault { name, reason })
            })
            .collect()
    }
}

/// The validator's options: draft 2020-12 whatever the document says, no retrieval of any
/// reference (even if another crate turns jsonschema's HTTP feature on), `format` asserted,
/// linear-time patterns.
fn options() -> ValidationOptions<'static> {
    jsonschema::draft202012::options()
        .offline()
        .should_validate_formats(true)
        .with_pattern_options(PatternOptions::regex())
}

fn uncompilable(error: &ValidationError<'_>) -> VariablesError {
    match error.kind() {
        ValidationErrorKind::Referencing(reason) => VariablesError::UnresolvedReference {
            reason: reason.to_string(),
        },
        _ => VariablesError::Uncompilable {
            reason: match error.instance_path().as_str() {
                "" => error.masked_with("the value").to_string(),
                at => format!("at {at}: {}", error.masked_with("the value")),
            },
        },
    }
}

/// Whether the root describes an object: `type` is (or includes) `"object"`, or is absent with
/// `properties` present.
fn describes_object(root: &Map<String, Value>) -> bool {
    match root.get("type") {
        Some(Value::String(ty)) => ty == "object",
        Some(Value::Array(types)) => types.iter().any(|t| t == "object"),
        Some(_) => false,
        None => root.contains_key("properties"),
    }
}

/// The names of the top-level `required` that `properties` does not declare.
fn required_undeclared(root: &Map<String, Value>) -> Vec<VariablesError> {
    let properties = root.get("properties").and_then(Value::as_object);
    root.get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|name| properties.is_none_or(|p| !p.contains_key(*name)))
        .map(|name| VariablesError::RequiredUndeclared {
            name: name.to_owned(),
        })
        .collect()
}

/// The top-level properties in the order the text writes them (serde_json's map sorts its
/// keys, and a person reading `GET …/versions/{v}` expects the author's order).
fn declared_variables(text: &str, root: &Value) -> Vec<DeclaredVariable> {
    let Some(properties) = root.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    let required: Vec<&str> = root
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut order: Vec<String> = serde_json::from_str::<WrittenOrder>(text)
        .map(|written| written.0)
        .unwrap_or_default();
    order.retain(|name| properties.contains_key(name));
    let mut names: Vec<String> = Vec::with_capacity(properties.len());
    for name in order.into_iter().chain(properties.keys().cloned()) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
        .into_iter()
        .map(|name| {
            let has_default = properties
                .get(&name)
                .is_some_and(|schema| default_of(root, schema).is_some());
            DeclaredVariable {
                required: required.contains(&name.as_str()),
                has_default,
                name,
            }
        })
        .collect()
}

/// The keys of a document's top-level `properties`, in written order.
struct WrittenOrder(Vec<String>);

impl<'de> serde::Deserialize<'de> for WrittenOrder {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Root;
        struct Keys;

        impl<'de> Visitor<'de> for Root {
            type Value = WrittenOrder;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON Schema object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WrittenOrder, A::Error> {
                let mut keys = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if key == "properties" {
                        keys = map.next_value_seed(Keys)?;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(WrittenOrder(keys))
            }
        }

        impl<'de> de::DeserializeSeed<'de> for Keys {
            type Value = Vec<String>;
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<String>, D::Error> {
                d.deserialize_map(self)
            }
        }

        impl<'de> Visitor<'de> for Keys {
            type Value = Vec<String>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of properties")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<String>, A::Error> {
                let mut keys = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    map.next_value::<IgnoredAny>()?;
                    keys.push(key);
                }
                Ok(keys)
            }
        }

        deserializer.deserialize_map(Root)
    }
}

/// `node` followed by the schemas its local `$ref`s lead to (`#/$defs/customer`), at most
/// [`MAX_REF_HOPS`] of them.
fn schema_chain<'a>(root: &'a Value, node: &'a Value) -> Vec<&'a Value> {
    let mut chain = vec![node];
    let mut current = node;
    for _ in 0..MAX_REF_HOPS {
        let target = current
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|reference| reference.strip_prefix('#'))
            .and_then(|pointer| root.pointer(pointer));
        match target {
            Some(next) if !chain.iter().any(|seen| std::ptr::eq(*seen, next)) => {
                chain.push(next);
                current = next;
            }
            _ => break,
        }
    }
    chain
}

/// The schema of property `name` of `node` (its own `properties` or those of its references).
fn property_schema<'a>(root: &'a Value, node: &'a Value, name: &str) -> Option<&'a Value> {
    schema_chain(root, node).into_iter().find_map(|schema| {
        schema
            .get("properties")
            .and_then(Value::as_object)
            .and_then(|properties| properties.get(name))
    })
}

/// The first `type` along the chain, as JSON text, when it excludes objects.
fn non_object_type(chain: &[&Value]) -> Option<String> {
    let ty = chain.iter().find_map(|schema| schema.get("type"))?;
    let allows_object = match ty {
        Value::String(name) => name == "object",
        Value::Array(names) => names.iter().any(|n| n == "object"),
        _ => true,
    };
    (!allows_object).then(|| ty.to_string())
}

/// A property schema's `default`, its own or its references'.
fn default_of<'a>(root: &'a Value, schema: &'a Value) -> Option<&'a Value> {
    schema_chain(root, schema)
        .into_iter()
        .find_map(|s| s.get("default"))
}

/// The defaults of a schema's properties, nested ones too, collected once per version so that
/// applying them walks no schema.
#[derive(Debug, Default)]
pub(crate) struct Defaults(Vec<DefaultEntry>);

#[derive(Debug)]
struct DefaultEntry {
    name: String,
    value: Option<Value>,
    nested: Defaults,
}

impl Defaults {
    fn of(root: &Value, node: &Value, depth: usize, visits: &mut usize) -> Defaults {
        if depth > MAX_DEFAULT_DEPTH {
            return Defaults::default();
        }
        let mut entries: Vec<DefaultEntry> = Vec::new();
        for schema in schema_chain(root, node) {
            let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
                continue;
            };
            for (name, property) in properties {
                *visits += 1;
                if *visits > MAX_DEFAULT_VISITS {
                    return Defaults(entries);
                }
                if entries.iter().any(|e| &e.name == name) {
                    continue;
                }
                let value = default_of(root, property).cloned();
                let nested = Defaults::of(root, property, depth + 1, visits);
                if value.is_some() || !nested.0.is_empty() {
                    entries.push(DefaultEntry {
                        name: name.clone(),
                        value,
                        nested,
                    });
                }
            }
        }
        Defaults(entries)
    }

    /// Fills in the absent properties of `object` that have a default, and the defaults inside
    /// the objects it holds.
    pub(crate) fn apply(&self, object: &mut Map<String, Value>) {
        for entry in &self.0 {
            match object.get_mut(&entry.name) {
                Some(Value::Object(inner)) => entry.nested.apply(inner),
                Some(_) => {}
                None => {
                    if let Some(default) = &entry.value {
                        let mut value = default.clone();
                        if let Value::Object(inner) = &mut value {
                            entry.nested.apply(inner);
                        }
                        object.insert(entry.name.clone(), value);
                    }
                }
            }
        }
    }
}

/// The schema implied by placeholders without a schema.
enum Implied {
    Text,
    Object(Vec<(String, Implied)>),
}

impl Implied {
    fn insert(entries: &mut Vec<(String, Implied)>, segments: &[&str]) {
        let Some((first, rest)) = segments.split_first() else {
            return;
        };
        let index = match entries.iter().position(|(name, _)| name == first) {
            Some(index) => index,
            None => {
                entries.push(((*first).to_owned(), Implied::Text));
                entries.len() - 1
            }
        };
        if rest.is_empty() {
            return;
        }
        let node = &mut entries[index].1;
        if let Implied::Text = node {
            *node = Implied::Object(Vec::new());
        }
        if let Implied::Object(children) = node {
            Implied::insert(children, rest);
        }
    }

    fn schema(&self) -> Value {
        match self {
            Implied::Text => serde_json::json!({"type": "string"}),
            Implied::Object(children) => {
                let properties: Map<String, Value> = children
                    .iter()
                    .map(|(name, child)| (name.clone(), child.schema()))
                    .collect();
                let required: Vec<Value> = children
                    .iter()
                    .map(|(name, _)| Value::String(name.clone()))
                    .collect();
                serde_json::json!({
                    "type": "object",
                    "properties": properties,
                    "required": required,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placeholder(field: &str, path: &str) -> Placeholder {
        Placeholder {
            field: field.to_owned(),
            path: VariablePath::parse(path).unwrap(),
        }
    }

    fn check(schema: &str, placeholders: &[(&str, &str)]) -> Vec<Violation> {
        let placeholders: Vec<Placeholder> = placeholders
            .iter()
            .map(|(field, path)| placeholder(field, path))
            .collect();
        SchemaChecker.check(schema, &placeholders)
    }

    /// The one violation of `schema`, which must be of `variablesSchema`.
    fn schema_problem(schema: &str) -> String {
        let violations = check(schema, &[]);
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert_eq!(violations[0].field, "variablesSchema");
        assert_eq!(violations[0].code, ViolationCode::InvalidValue);
        violations[0].message()
    }

    const SUPPORT: &str = r#"{"type": "object", "properties": {
        "customer_name": {"type": "string", "maxLength": 200},
        "tier": {"enum": ["gold", "silver"], "default": "silver"},
        "customer": {"type": "object", "properties": {"name": {"type": "string"}, "tier": {"type": "string"}}},
        "extra": {"type": "object"},
        "nickname": {"type": "string"}
    }, "required": ["customer_name"]}"#;

    #[test]
    fn a_good_schema_with_declared_placeholders_passes() {
        let violations = check(
            SUPPORT,
            &[
                ("systemPrompt", "customer_name"),
                ("systemPrompt", "tier"),
                ("templateMessages[0].content", "customer.tier"),
                ("fewShotExamples[0].input", "customer"),
                // Below a free-form object anything is declared.
                ("systemPrompt", "extra.anything.at_all"),
            ],
        );
        assert!(violations.is_empty(), "{violations:?}");
        assert!(check(r#"{"type": "object"}"#, &[]).is_empty());
        assert!(check(r#"{"properties": {"a": {}}}"#, &[("systemPrompt", "a")]).is_empty());
        assert!(
            check(
                r#"{"$schema": "https://json-schema.org/draft/2020-12/schema#", "type": "object"}"#,
                &[]
            )
            .is_empty()
        );
    }

    #[test]
    fn a_schema_that_is_not_json_is_refused() {
        let message = schema_problem(r#"{"type": "object""#);
        assert!(
            message.starts_with("variablesSchema is not JSON: "),
            "{message}"
        );
    }

    #[test]
    fn a_document_that_breaks_the_meta_schema_is_refused_with_every_place() {
        let message = schema_problem(r#"{"type": 5}"#);
        assert!(
            message.starts_with(
                "variablesSchema is not a valid JSON Schema (draft 2020-12): at /type: "
            ),
            "{message}"
        );
        let violations = check(
            r#"{"properties": {"a": {"minLength": "x"}}, "required": 3}"#,
            &[],
        );
        let messages: Vec<String> = violations.iter().map(Violation::message).collect();
        assert_eq!(violations.len(), 2, "{messages:?}");
        assert!(
            messages
                .iter()
                .any(|m| m.contains("at /properties/a/minLength: "))
        );
        assert!(messages.iter().any(|m| m.contains("at /required: ")));
    }

    #[test]
    fn a_schema_that_does_not_describe_an_object_is_refused() {
        for schema in [
            r#"{"type": "string"}"#,
            r#"{"type": ["string", "null"]}"#,
            "{}",
            "true",
            "[1, 2]",
            r#""object""#,
        ] {
            assert_eq!(
                schema_problem(schema),
                VariablesError::NotObject.to_string(),
                "{schema}"
            );
        }
        // An object among other types is an object: the variables always are one.
        assert!(check(r#"{"type": ["object", "null"]}"#, &[]).is_empty());
    }

    #[test]
    fn a_required_name_that_is_not_a_property_is_refused() {
        let violations = check(
            r#"{"type": "object", "properties": {"a": {}}, "required": ["a", "b", "c"]}"#,
            &[],
        );
        let messages: Vec<String> = violations.iter().map(Violation::message).collect();
        assert_eq!(
            messages,
            [
                "variablesSchema requires b, which its properties do not declare; no invocation could supply it",
                "variablesSchema requires c, which its properties do not declare; no invocation could supply it",
            ]
        );
        assert_eq!(
            schema_problem(r#"{"type": "object", "required": ["a"]}"#),
            "variablesSchema requires a, which its properties do not declare; no invocation could supply it"
        );
    }

    #[test]
    fn another_draft_is_refused() {
        let message = schema_problem(
            r#"{"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"}"#,
        );
        assert_eq!(
            message,
            "variablesSchema must be JSON Schema draft 2020-12 (https://json-schema.org/draft/2020-12/schema); its $schema is \"http://json-schema.org/draft-07/schema#\""
        );
    }

    #[test]
    fn remote_references_are_never_fetched() {
        // No network in this test: retrieval is disabled, so the schema is refused at once.
        for reference in [
            "https://example.com/customer.json",
            "http://127.0.0.1:9/customer.json",
            "file:///etc/passwd",
        ] {
            let schema = format!(
                r#"{{"type": "object", "properties": {{"customer": {{"$ref": "{reference}"}}}}}}"#
            );
            let message = schema_problem(&schema);
            assert!(
                message.starts_with("variablesSchema has a reference that cannot be resolved within the document (remote references are never fetched"),
                "{message}"
            );
            assert!(message.contains(reference), "{message}");
        }
        let message = schema_problem(
            r##"{"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}}"##,
        );
        assert!(message.contains("/$defs/missing"), "{message}");
    }

    #[test]
    fn a_pattern_the_linear_engine_cannot_run_is_refused() {
        let message = schema_problem(
            r#"{"type": "object", "properties": {"a": {"type": "string", "pattern": "(?=a)b"}}}"#,
        );
        assert!(
            message.starts_with("variablesSchema cannot be compiled: at /properties/a/pattern"),
            "{message}"
        );
    }

    #[test]
    fn defaults_that_their_schema_refuses_are_refused() {
        let violations = check(
            r#"{"type": "object", "properties": {
                "tier": {"enum": ["gold", "silver"], "default": "bronze"},
                "name": {"type": "string", "maxLength": 2, "default": "long"},
                "fine": {"type": "string", "default": "ok"},
                "other": {"type": "string"}
            }, "required": ["other"]}"#,
            &[],
        );
        let messages: Vec<String> = violations.iter().map(Violation::message).collect();
        assert_eq!(
            messages,
            [
                "variablesSchema: the default of name is not valid: name is 4 characters long; the limit is 2",
                "variablesSchema: the default of tier is not valid: tier must be one of \"gold\", \"silver\"",
            ]
        );
    }

    #[test]
    fn an_undeclared_placeholder_is_a_violation_of_its_own_field() {
        let violations = check(
            r#"{"type": "object", "properties": {"tier": {}, "customer_name": {}}}"#,
            &[
                ("systemPrompt", "customer_nme"),
                ("systemPrompt", "customer_nme"),
                ("templateMessages[2].content", "customer_nme"),
                ("systemPrompt", "tier"),
            ],
        );
        assert_eq!(violations.len(), 2, "{violations:?}");
        assert_eq!(violations[0].field, "systemPrompt");
        assert_eq!(violations[1].field, "templateMessages[2].content");
        // The declared names in the order the schema writes them.
        assert_eq!(
            violations[0].message(),
            "placeholder {{customer_nme}} is not declared in variablesSchema; declared variables: tier, customer_name"
        );
        assert_eq!(violations[0].params["placeholder"], "{{customer_nme}}");
        assert_eq!(violations[0].params["declared"], "tier, customer_name");

        let none = check(r#"{"type": "object"}"#, &[("systemPrompt", "name")]);
        assert_eq!(
            none[0].message(),
            "placeholder {{name}} is not declared in variablesSchema; it declares no variables"
        );
    }

    #[test]
    fn an_undeclared_dotted_placeholder_names_what_its_object_declares() {
        let violations = check(
            SUPPORT,
            &[
                ("templateMessages[2].content", "customer.tiers"),
                ("systemPrompt", "custom.tier"),
                ("systemPrompt", "nickname.first"),
            ],
        );
        let messages: Vec<(&str, String)> = violations
            .iter()
            .map(|v| (v.field.as_str(), v.message()))
            .collect();
        assert_eq!(
            messages,
            [
                (
                    "templateMessages[2].content",
                    "placeholder {{customer.tiers}} is not declared in variablesSchema; customer declares: name, tier".to_owned()
                ),
                (
                    "systemPrompt",
                    "placeholder {{custom.tier}} is not declared in variablesSchema; declared variables: customer_name, tier, customer, extra, nickname".to_owned()
                ),
                (
                    "systemPrompt",
                    "placeholder {{nickname.first}} reads a property of nickname, which variablesSchema declares as \"string\"".to_owned()
                ),
            ]
        );
        let empty = check(
            r#"{"type": "object", "properties": {"a": {"type": "object", "properties": {}}}}"#,
            &[("systemPrompt", "a.b")],
        );
        assert_eq!(
            empty[0].message(),
            "placeholder {{a.b}} is not declared in variablesSchema; a declares no properties"
        );
    }

    #[test]
    fn dotted_placeholders_follow_local_references() {
        let schema = r##"{"type": "object",
            "properties": {"customer": {"$ref": "#/$defs/customer"}},
            "$defs": {"customer": {"type": "object", "properties": {
                "address": {"$ref": "#/$defs/address"}}},
                "address": {"type": "object", "properties": {"city": {"type": "string"}}}}}"##;
        assert!(check(schema, &[("systemPrompt", "customer.address.city")]).is_empty());
        let violations = check(schema, &[("systemPrompt", "customer.address.street")]);
        assert_eq!(
            violations[0].message(),
            "placeholder {{customer.address.street}} is not declared in variablesSchema; customer.address declares: city"
        );
        // A reference cycle ends (declaring nothing beneath, like a free-form object).
        let cycle = r##"{"type": "object", "properties": {"a": {"$ref": "#/$defs/a"}},
            "$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}}"##;
        let compiled = CompiledSchema::load(cycle).unwrap();
        assert_eq!(
            compiled.declares(&VariablePath::parse("a.b").unwrap()),
            Ok(())
        );
    }

    #[test]
    fn errors_read_well() {
        let undeclared = VariablesError::Undeclared {
            placeholder: "customer.tiers".into(),
            parent: Some("customer".into()),
            declared: vec!["name".into(), "tier".into()],
        };
        assert_eq!(
            undeclared.to_string(),
            "placeholder {{customer.tiers}} is not declared in variablesSchema; customer declares: name, tier"
        );
        let top = VariablesError::Undeclared {
            placeholder: "x".into(),
            parent: None,
            declared: vec![],
        };
        assert_eq!(
            top.to_string(),
            "placeholder {{x}} is not declared in variablesSchema; it declares no variables"
        );
        let not_object = VariablesError::NotAnObject {
            placeholder: "name.first".into(),
            variable: "name".into(),
            declared_type: "\"string\"".into(),
        };
        assert!(
            not_object
                .to_string()
                .starts_with("placeholder {{name.first}} reads")
        );
    }
}
