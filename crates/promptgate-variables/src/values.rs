//! A version's compiled variables and an invocation's checked values.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use promptgate_core::template::{Template, VariablePath};
use promptgate_core::violation::Violation;
use serde_json::{Map, Value};

use crate::messages;
use crate::schema::{CompiledSchema, VariablesError};

/// The most bytes of an unknown name that its field repeats: the name is the caller's, and an
/// error body should not carry a huge one back whole.
const MAX_UNKNOWN_NAME_BYTES: usize = promptgate_core::template::MAX_PATH_BYTES;

/// One variable a version declares, as `GET …/versions/{v}` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariableInfo {
    /// The top-level name (`customer_name`).
    pub name: String,
    /// Whether the caller must send it: listed in the schema's `required` and without a
    /// `default` (every variable of a version without a schema).
    pub required: bool,
}

/// A version's variables, compiled once per version: the server keeps it in its prompt cache
/// (behind an `Arc`), so that an invocation parses no schema.
pub struct VersionVariables {
    schema: CompiledSchema,
    /// The declared names, sorted, for the unknown-name check.
    sorted_names: Vec<String>,
    /// Whether the schema was implied by the placeholders.
    implied: bool,
}

impl fmt::Debug for VersionVariables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VersionVariables")
            .field("variables", &self.describe())
            .field("implied", &self.implied)
            .finish_non_exhaustive()
    }
}

impl VersionVariables {
    /// Compiles a version's variables from its schema text (`None`: the schema implied by the
    /// placeholders, crate docs "Without a schema") and its placeholders.
    ///
    /// The schema is checked as on create ([`crate::SchemaChecker`]), and the first problem is
    /// the error: a stored version should never fail, unless the validator changed since it
    /// was stored.
    pub fn compile(
        schema: Option<&str>,
        placeholders: impl IntoIterator<Item = VariablePath>,
    ) -> Result<Self, VariablesError> {
        let (compiled, implied) = match schema {
            Some(text) => {
                let compiled = CompiledSchema::load(text).map_err(|errors| {
                    errors
                        .into_iter()
                        .next()
                        .unwrap_or(VariablesError::NotObject)
                })?;
                for path in placeholders {
                    compiled.declares(&path)?;
                }
                (compiled, false)
            }
            None => (CompiledSchema::implied(placeholders)?, true),
        };
        let mut sorted_names: Vec<String> =
            compiled.variables.iter().map(|v| v.name.clone()).collect();
        sorted_names.sort();
        Ok(VersionVariables {
            schema: compiled,
            sorted_names,
            implied,
        })
    }

    /// The declared variables with whether each is required, in the schema's written order
    /// (first appearance in the texts without a schema).
    pub fn describe(&self) -> Vec<VariableInfo> {
        self.schema
            .variables
            .iter()
            .map(|v| VariableInfo {
                name: v.name.clone(),
                required: v.required && !v.has_default,
            })
            .collect()
    }

    /// Checks an invocation's `variables` (`None` when absent) and applies the defaults.
    ///
    /// Every problem is returned at once, as `invalid.value` violations of `variables.<name>`
    /// sorted by field: the names the version does not declare and whatever the schema refuses
    /// (missing, wrong type, too long, not in the enum, …).
    pub fn resolve(
        &self,
        supplied: Option<&Map<String, Value>>,
    ) -> Result<ResolvedVariables, Vec<Violation>> {
        let mut violations = Vec::new();
        let mut values = Map::new();
        let mut names = Vec::new();
        for (name, value) in supplied.into_iter().flatten() {
            if self.sorted_names.binary_search(name).is_ok() {
                values.insert(name.clone(), value.clone());
                names.push(name.clone());
            } else {
                violations.push(self.unknown(name));
            }
        }
        self.schema.defaults.apply(&mut values);
        let instance = Value::Object(values);
        for error in self.schema.validator.iter_errors(&instance) {
            violations.extend(messages::violations(&error));
        }
        if !violations.is_empty() {
            violations.sort_by(|a, b| a.field.cmp(&b.field));
            return Err(violations);
        }
        // The instance was built as an object just above; the other arm cannot happen.
        let Value::Object(values) = instance else {
            return Ok(ResolvedVariables::default());
        };
        names.sort();
        Ok(ResolvedVariables {
            values,
            supplied: names,
        })
    }

    fn unknown(&self, name: &str) -> Violation {
        let mut shown = name;
        if shown.len() > MAX_UNKNOWN_NAME_BYTES {
            let mut end = MAX_UNKNOWN_NAME_BYTES;
            while !shown.is_char_boundary(end) {
                end -= 1;
            }
            shown = &shown[..end];
        }
        let declared: Vec<&str> = self
            .schema
            .variables
            .iter()
            .map(|v| v.name.as_str())
            .collect();
        if declared.is_empty() {
            messages::violation(
                shown,
                "unknown variable {name}; this version declares no variables",
                &[],
            )
        } else {
            messages::violation(
                shown,
                "unknown variable {name}; declared variables: {declared}",
                &[("declared", declared.join(", "))],
            )
        }
    }
}

/// An invocation's variables, checked and completed with the defaults. The server runs the
/// guardrails on the caller's strings ([`Self::strings_mut`]), then renders.
///
/// Its `Debug` shows names only: the values are caller input.
#[derive(Clone, Default)]
pub struct ResolvedVariables {
    values: Map<String, Value>,
    /// The names the caller supplied, sorted.
    supplied: Vec<String>,
}

impl fmt::Debug for ResolvedVariables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let defaulted: Vec<&String> = self
            .values
            .keys()
            .filter(|name| !self.is_supplied(name))
            .collect();
        f.debug_struct("ResolvedVariables")
            .field("supplied", &self.supplied)
            .field("defaulted", &defaulted)
            .finish()
    }
}

impl ResolvedVariables {
    /// The names the caller supplied (not those filled by defaults), sorted: telemetry records
    /// them, never the values.
    pub fn names(&self) -> Vec<String> {
        self.supplied.clone()
    }

    /// Every string among the caller's values, nested ones too, for the guardrails to rewrite in
    /// place (PII redaction). A variable filled by its default is the version author's text,
    /// not caller input, and is left out (a nested default inside an object the caller sent is
    /// part of that object, and is included). Object keys are not included: they reach a
    /// prompt only inside an object's JSON text.
    pub fn strings_mut(&mut self) -> impl Iterator<Item = &mut String> {
        let mut out = Vec::new();
        for (name, value) in &mut self.values {
            if self.supplied.binary_search(name).is_ok() {
                collect_strings_mut(value, &mut out);
            }
        }
        out.into_iter()
    }

    /// Every string among the caller's values, as [`Self::strings_mut`] (blocked-category
    /// detection).
    pub fn strings(&self) -> impl Iterator<Item = &str> {
        let mut out = Vec::new();
        for (name, value) in &self.values {
            if self.is_supplied(name) {
                collect_strings(value, &mut out);
            }
        }
        out.into_iter()
    }

    /// The text a placeholder renders to (crate docs, "Rendering"): a string verbatim, a number
    /// or a boolean as JSON text, an object or an array as compact JSON text, `null` and an
    /// absent value as the empty string.
    pub fn text(&self, path: &VariablePath) -> Cow<'_, str> {
        match self.rendered(path) {
            Rendered::Text(text) => Cow::Borrowed(text),
            Rendered::Json(value) => Cow::Owned(value.to_string()),
        }
    }

    /// Renders `template` with these values ([`Self::text`] for each placeholder).
    pub fn render(&self, template: &Template) -> String {
        // Strings, booleans and nothing are borrowed; only numbers, objects and arrays need
        // their text made, once per distinct placeholder, before rendering borrows it.
        let made: BTreeMap<&str, String> = template
            .placeholders()
            .filter_map(|path| match self.rendered(path) {
                Rendered::Json(value) => Some((path.as_str(), value.to_string())),
                Rendered::Text(_) => None,
            })
            .collect();
        template.render(|path| match self.rendered(path) {
            Rendered::Text(text) => text,
            Rendered::Json(_) => made.get(path.as_str()).map_or("", String::as_str),
        })
    }

    fn rendered(&self, path: &VariablePath) -> Rendered<'_> {
        match self.lookup(path) {
            None | Some(Value::Null) => Rendered::Text(""),
            Some(Value::String(text)) => Rendered::Text(text),
            Some(Value::Bool(true)) => Rendered::Text("true"),
            Some(Value::Bool(false)) => Rendered::Text("false"),
            Some(value) => Rendered::Json(value),
        }
    }

    /// The values as used, defaults applied and guardrails' rewrites kept (the render preview
    /// answers them). They are caller input: never log them.
    pub fn into_values(self) -> Map<String, Value> {
        self.values
    }

    /// The value at `path`, following dotted segments into objects.
    fn lookup(&self, path: &VariablePath) -> Option<&Value> {
        let mut segments = path.segments();
        let mut value = self.values.get(segments.next()?)?;
        for segment in segments {
            value = value.as_object()?.get(segment)?;
        }
        Some(value)
    }

    fn is_supplied(&self, name: &str) -> bool {
        self.supplied
            .binary_search_by(|supplied| supplied.as_str().cmp(name))
            .is_ok()
    }
}

/// A value's rendered text: borrowed when it exists as text, else the value whose JSON text it
/// is (a number, an object, an array).
enum Rendered<'a> {
    Text(&'a str),
    Json(&'a Value),
}

fn collect_strings_mut<'a>(value: &'a mut Value, out: &mut Vec<&'a mut String>) {
    match value {
        Value::String(text) => out.push(text),
        Value::Array(items) => items.iter_mut().for_each(|v| collect_strings_mut(v, out)),
        Value::Object(properties) => properties
            .values_mut()
            .for_each(|v| collect_strings_mut(v, out)),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

fn collect_strings<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::String(text) => out.push(text),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(properties) => properties.values().for_each(|v| collect_strings(v, out)),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use promptgate_core::violation::ViolationCode;
    use serde_json::json;

    const SUPPORT: &str = r#"{"type": "object", "properties": {
        "customer_name": {"type": "string", "maxLength": 5},
        "tier": {"enum": ["gold", "silver"], "default": "silver"},
        "count": {"type": "integer", "minimum": 0},
        "note": {"type": "string"},
        "customer": {"type": "object", "properties": {
            "tier": {"type": "string"},
            "region": {"type": "string", "default": "eu"}
        }, "required": ["tier"], "additionalProperties": false},
        "tags": {"type": "array", "items": {"type": "string"}},
        "since": {"type": "string", "format": "date"}
    }, "required": ["customer_name"]}"#;

    fn path(text: &str) -> VariablePath {
        VariablePath::parse(text).unwrap()
    }

    fn paths(texts: &[&str]) -> Vec<VariablePath> {
        texts.iter().map(|t| path(t)).collect()
    }

    fn support() -> VersionVariables {
        VersionVariables::compile(Some(SUPPORT), paths(&["customer_name", "tier"])).unwrap()
    }

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    /// The (field, message) of each violation of `variables`.
    fn problems(version: &VersionVariables, variables: Value) -> Vec<(String, String)> {
        let violations = version.resolve(Some(&object(variables))).unwrap_err();
        assert!(
            violations
                .iter()
                .all(|v| v.code == ViolationCode::InvalidValue)
        );
        violations
            .iter()
            .map(|v| (v.field.clone(), v.message()))
            .collect()
    }

    fn pair(field: &str, message: &str) -> (String, String) {
        (field.to_owned(), message.to_owned())
    }

    fn render(version: &VersionVariables, variables: Value, template: &str) -> String {
        let resolved = version.resolve(Some(&object(variables))).unwrap();
        resolved.render(&Template::parse(template).unwrap())
    }

    #[test]
    fn each_kind_of_problem_names_its_variable() {
        let version = support();
        assert_eq!(
            problems(&version, json!({})),
            [pair("variables.customer_name", "customer_name is required")]
        );
        assert_eq!(
            problems(&version, json!({"customer_name": 42})),
            [pair(
                "variables.customer_name",
                "customer_name must be a string; got a number"
            )]
        );
        let too_long = problems(&version, json!({"customer_name": "Janet Doe"}));
        assert_eq!(
            too_long,
            [pair(
                "variables.customer_name",
                "customer_name is 9 characters long; the limit is 5"
            )]
        );
        assert_eq!(
            problems(&version, json!({"customer_name": "Jane", "tier": "bronze"})),
            [pair(
                "variables.tier",
                "tier must be one of \"gold\", \"silver\""
            )]
        );
        assert_eq!(
            problems(
                &version,
                json!({"customer_name": "Jane", "custmer_name": "J"})
            ),
            [pair(
                "variables.custmer_name",
                "unknown variable custmer_name; declared variables: customer_name, tier, count, note, customer, tags, since"
            )]
        );
        assert_eq!(
            problems(&version, json!({"customer_name": "Jane", "count": -1})),
            [pair("variables.count", "count must be at least 0")]
        );
        assert_eq!(
            problems(
                &version,
                json!({"customer_name": "Jane", "since": "yesterday"})
            ),
            [pair("variables.since", "since is not a valid date")]
        );
    }

    #[test]
    fn violation_params_keep_the_values_apart() {
        let violations = support()
            .resolve(Some(&object(json!({"customer_name": "Janet Doe"}))))
            .unwrap_err();
        assert_eq!(
            violations[0].template,
            "{name} is {length} characters long; the limit is {limit}"
        );
        assert_eq!(violations[0].params["name"], "customer_name");
        assert_eq!(violations[0].params["limit"], "5");
        assert_eq!(violations[0].params["length"], "9");
    }

    #[test]
    fn every_problem_is_reported_at_once_sorted_by_field() {
        let found = problems(
            &support(),
            json!({
                "tier": "bronze",
                "count": "three",
                "typo": 1,
                "customer": {"region": 5, "extra": "x"},
                "tags": ["a", 2]
            }),
        );
        assert_eq!(
            found,
            [
                pair("variables.count", "count must be an integer; got a string"),
                pair(
                    "variables.customer.extra",
                    "customer.extra is not a property that the schema allows"
                ),
                pair(
                    "variables.customer.region",
                    "customer.region must be a string; got a number"
                ),
                pair("variables.customer.tier", "customer.tier is required"),
                pair("variables.customer_name", "customer_name is required"),
                pair(
                    "variables.tags[1]",
                    "tags[1] must be a string; got a number"
                ),
                pair("variables.tier", "tier must be one of \"gold\", \"silver\""),
                pair(
                    "variables.typo",
                    "unknown variable typo; declared variables: customer_name, tier, count, note, customer, tags, since"
                ),
            ]
        );
    }

    #[test]
    fn absent_variables_are_checked_like_an_empty_object() {
        let version = support();
        let violations = version.resolve(None).unwrap_err();
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].field, "variables.customer_name");
        let optional = VersionVariables::compile(
            Some(r#"{"type": "object", "properties": {"a": {"type": "string"}}}"#),
            paths(&["a"]),
        )
        .unwrap();
        let resolved = optional.resolve(None).unwrap();
        assert_eq!(resolved.render(&Template::parse("[{{a}}]").unwrap()), "[]");
        assert!(resolved.names().is_empty());
    }

    #[test]
    fn defaults_are_applied_and_not_counted_as_supplied() {
        let version = support();
        let resolved = version
            .resolve(Some(&object(
                json!({"customer_name": "Jane", "customer": {"tier": "gold"}}),
            )))
            .unwrap();
        assert_eq!(resolved.text(&path("tier")), "silver");
        // A nested default inside an object the caller sent.
        assert_eq!(resolved.text(&path("customer.region")), "eu");
        assert_eq!(resolved.names(), ["customer", "customer_name"]);
        // A supplied value wins over the default.
        let gold = version
            .resolve(Some(&object(
                json!({"customer_name": "Jane", "tier": "gold"}),
            )))
            .unwrap();
        assert_eq!(gold.text(&path("tier")), "gold");
        assert_eq!(gold.names(), ["customer_name", "tier"]);
    }

    #[test]
    fn a_required_variable_with_a_default_is_not_required_of_the_caller() {
        let version = VersionVariables::compile(
            Some(
                r#"{"type": "object", "properties": {
                    "tier": {"type": "string", "default": "silver"},
                    "name": {"type": "string"},
                    "nick": {"type": "string"}
                }, "required": ["tier", "name"]}"#,
            ),
            paths(&["tier", "name"]),
        )
        .unwrap();
        assert_eq!(
            version.describe(),
            [
                VariableInfo {
                    name: "tier".into(),
                    required: false
                },
                VariableInfo {
                    name: "name".into(),
                    required: true
                },
                VariableInfo {
                    name: "nick".into(),
                    required: false
                },
            ]
        );
        let resolved = version
            .resolve(Some(&object(json!({"name": "Jane"}))))
            .unwrap();
        assert_eq!(resolved.text(&path("tier")), "silver");
    }

    #[test]
    fn nested_defaults_fill_objects_that_a_default_supplies() {
        let version = VersionVariables::compile(
            Some(
                r##"{"type": "object", "properties": {
                    "node": {"$ref": "#/$defs/node", "default": {}}
                }, "$defs": {"node": {"type": "object", "properties": {
                    "child": {"$ref": "#/$defs/node"},
                    "label": {"type": "string", "default": "x"}
                }}}}"##,
            ),
            paths(&["node.label", "node.child.label"]),
        )
        .unwrap();
        let resolved = version.resolve(None).unwrap();
        assert_eq!(resolved.text(&path("node.label")), "x");
        // The recursive schema is unfolded a bounded number of levels, into supplied objects.
        assert_eq!(resolved.text(&path("node.child.label")), "");
        let deeper = version
            .resolve(Some(&object(json!({"node": {"child": {}}}))))
            .unwrap();
        assert_eq!(deeper.text(&path("node.child.label")), "x");
    }

    #[test]
    fn values_render_as_their_text() {
        let version = VersionVariables::compile(
            Some(
                r#"{"type": "object", "properties": {
                    "s": {}, "n": {}, "f": {}, "t": {}, "b": {}, "z": {}, "o": {}, "a": {}, "absent": {}
                }}"#,
            ),
            Vec::new(),
        )
        .unwrap();
        let rendered = render(
            &version,
            json!({
                "s": "it's <b>{{raw}}</b>", "n": 42, "f": 0.5, "t": true, "b": false, "z": null,
                "o": {"tier": "gold", "n": 1}, "a": [1, "two"]
            }),
            "{{s}}|{{n}}|{{f}}|{{t}}|{{b}}|{{z}}|{{o}}|{{a}}|{{absent}}|{{o.tier}}|{{o.n}}|{{o.missing}}|{{s.x}}|{{n}}",
        );
        assert_eq!(
            rendered,
            r#"it's <b>{{raw}}</b>|42|0.5|true|false||{"n":1,"tier":"gold"}|[1,"two"]||gold|1|||42"#
        );
    }

    #[test]
    fn text_borrows_strings_and_makes_the_rest() {
        let version = support();
        let resolved = version
            .resolve(Some(&object(json!({"customer_name": "Jane", "count": 3}))))
            .unwrap();
        assert!(matches!(
            resolved.text(&path("customer_name")),
            Cow::Borrowed("Jane")
        ));
        assert!(matches!(resolved.text(&path("count")), Cow::Owned(ref t) if t == "3"));
        assert!(matches!(resolved.text(&path("note")), Cow::Borrowed("")));
    }

    #[test]
    fn without_a_schema_each_placeholder_is_a_required_string() {
        let version = VersionVariables::compile(
            None,
            paths(&[
                "name",
                "customer.tier",
                "name",
                "customer.address.city",
                "customer",
            ]),
        )
        .unwrap();
        assert_eq!(
            version.describe(),
            [
                VariableInfo {
                    name: "name".into(),
                    required: true
                },
                VariableInfo {
                    name: "customer".into(),
                    required: true
                },
            ]
        );
        assert_eq!(
            problems(
                &version,
                json!({"name": 3, "customer": "gold", "nmae": "x"})
            ),
            [
                pair(
                    "variables.customer",
                    "customer must be an object; got a string"
                ),
                pair("variables.name", "name must be a string; got a number"),
                pair(
                    "variables.nmae",
                    "unknown variable nmae; declared variables: name, customer"
                ),
            ]
        );
        assert_eq!(
            problems(
                &version,
                json!({"name": "Jane", "customer": {"tier": true, "address": {}}})
            ),
            [
                pair(
                    "variables.customer.address.city",
                    "customer.address.city is required"
                ),
                pair(
                    "variables.customer.tier",
                    "customer.tier must be a string; got a boolean"
                ),
            ]
        );
        // Further properties of an object are accepted; the bare placeholder renders its JSON.
        let rendered = render(
            &version,
            json!({"name": "Jane", "customer": {"tier": "gold", "address": {"city": "Oslo"}, "id": 7}}),
            "{{name}} {{customer.tier}} {{customer.address.city}} {{customer.id}}",
        );
        assert_eq!(rendered, "Jane gold Oslo 7");
    }

    #[test]
    fn without_a_schema_or_placeholders_no_variable_is_accepted() {
        let version = VersionVariables::compile(None, Vec::new()).unwrap();
        assert!(version.describe().is_empty());
        assert!(version.resolve(None).is_ok());
        assert!(version.resolve(Some(&Map::new())).is_ok());
        assert_eq!(
            problems(&version, json!({"x": "y"})),
            [pair(
                "variables.x",
                "unknown variable x; this version declares no variables"
            )]
        );
    }

    #[test]
    fn a_huge_unknown_name_is_cut_in_its_field() {
        let name = format!("é{}", "a".repeat(1000));
        let found = problems(
            &support(),
            json!({"customer_name": "Jane", name.clone(): 1}),
        );
        assert_eq!(found.len(), 1);
        assert!(
            found[0].0.len() <= "variables.".len() + MAX_UNKNOWN_NAME_BYTES,
            "{}",
            found[0].0
        );
        assert!(found[0].0.starts_with("variables.éaaa"));
    }

    #[test]
    fn guardrails_see_and_rewrite_the_callers_strings_only() {
        let version = support();
        let mut resolved = version
            .resolve(Some(&object(json!({
                "customer_name": "Jane",
                "customer": {"tier": "jane@example.com"},
                "tags": ["a", "b"],
                "count": 2
            }))))
            .unwrap();
        let mut seen: Vec<&str> = resolved.strings().collect();
        seen.sort();
        // Not "silver": a defaulted variable is the author's text. "eu" is a default inside the
        // caller's object, which is handed over whole.
        assert_eq!(seen, ["Jane", "a", "b", "eu", "jane@example.com"]);
        for text in resolved.strings_mut() {
            if text.contains('@') {
                *text = "[EMAIL]".to_owned();
            }
        }
        let template = Template::parse("{{customer_name}} {{customer.tier}} {{tier}}").unwrap();
        assert_eq!(resolved.render(&template), "Jane [EMAIL] silver");
        let values = resolved.into_values();
        assert_eq!(values["customer"]["tier"], "[EMAIL]");
        assert_eq!(values["tier"], "silver");
    }

    #[test]
    fn debug_shows_names_never_values() {
        let version = support();
        let resolved = version
            .resolve(Some(&object(
                json!({"customer_name": "sk-9f", "note": "hunter2-secret"}),
            )))
            .unwrap();
        let shown = format!("{resolved:?}");
        assert!(
            !shown.contains("sk-9f") && !shown.contains("hunter2"),
            "{shown}"
        );
        assert!(!shown.contains("silver"), "{shown}");
        assert!(
            shown.contains("customer_name") && shown.contains("tier"),
            "{shown}"
        );
        let version_shown = format!("{version:?}");
        assert!(version_shown.contains("customer_name"), "{version_shown}");
    }

    #[test]
    fn compile_refuses_what_the_check_refuses() {
        assert!(matches!(
            VersionVariables::compile(Some("{"), Vec::new()),
            Err(VariablesError::NotJson { .. })
        ));
        assert!(matches!(
            VersionVariables::compile(Some(r#"{"type": "string"}"#), Vec::new()),
            Err(VariablesError::NotObject)
        ));
        assert!(matches!(
            VersionVariables::compile(
                Some(
                    r#"{"type": "object", "properties": {"a": {"$ref": "https://example.com/a"}}}"#
                ),
                Vec::new()
            ),
            Err(VariablesError::UnresolvedReference { .. })
        ));
        let undeclared = VersionVariables::compile(
            Some(r#"{"type": "object", "properties": {"a": {}}}"#),
            paths(&["a", "b"]),
        )
        .unwrap_err();
        assert_eq!(
            undeclared.to_string(),
            "placeholder {{b}} is not declared in variablesSchema; declared variables: a"
        );
    }

    #[test]
    fn compiled_variables_can_be_shared_across_threads() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<VersionVariables>();
        shareable::<ResolvedVariables>();
        let version = std::sync::Arc::new(support());
        let handle = {
            let version = std::sync::Arc::clone(&version);
            std::thread::spawn(move || {
                version
                    .resolve(Some(&object(json!({"customer_name": "Jane"}))))
                    .map(|r| r.names())
            })
        };
        assert_eq!(handle.join().unwrap().unwrap(), ["customer_name"]);
    }
}
