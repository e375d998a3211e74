//! Prompt templates: `{{name}}` placeholders in a version's texts, parsed once per version.
//!
//! The syntax is substitution only (shared/API.md, "Templates and variables"): `{{name}}` or
//! `{{ name }}`, where a name is `[A-Za-z_][A-Za-z0-9_]*` or several of those joined by dots
//! (`{{customer.tier}}`, a property of an object variable). `\{{` writes a literal `{{`; no other
//! backslash sequence is special, and a lone `}}` is literal text. A `{{` that does not open a
//! well-formed placeholder is an error, so that a typo is reported when the version is created
//! instead of reaching a model as text.
//!
//! Parsing happens when a version is checked and when it enters the server's prompt cache;
//! rendering walks the parsed parts and does no searching.

use std::fmt;

use crate::violation::Violation;

/// The longest variable path, in bytes: a bound on work, far above any real name.
pub const MAX_PATH_BYTES: usize = 256;

/// A variable's name as written in a placeholder: one identifier or several joined by dots.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VariablePath(String);

impl VariablePath {
    /// Checks `text` (already trimmed of the braces' inner spaces) as a path.
    pub fn parse(text: &str) -> Option<Self> {
        let valid = !text.is_empty()
            && text.len() <= MAX_PATH_BYTES
            && text.split('.').all(|segment| {
                let mut chars = segment.chars();
                chars
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
        valid.then(|| VariablePath(text.to_owned()))
    }

    /// The path as written (`customer.tier`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The top-level variable the path starts with (`customer` for `customer.tier`): what the
    /// caller supplies and the schema declares.
    pub fn root(&self) -> &str {
        self.0.split('.').next().unwrap_or(&self.0)
    }

    /// The path's segments (`["customer", "tier"]`).
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('.')
    }
}

impl fmt::Display for VariablePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a text is not a well-formed template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A `{{` without its `}}`.
    #[error(
        "the placeholder opened at character {at} is not closed with }}}}; write \\{{{{ for a literal {{{{"
    )]
    Unclosed {
        /// The character offset (0-based) of the `{{`.
        at: usize,
    },
    /// A `{{…}}` whose inside is not a variable name.
    #[error(
        "the placeholder at character {at} is not a variable name (letters, digits and _, dotted for nested values); write \\{{{{ for a literal {{{{"
    )]
    BadName {
        /// The character offset (0-based) of the `{{`.
        at: usize,
    },
}

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// Text copied as is (escapes already resolved).
    Text(String),
    /// A placeholder.
    Variable(VariablePath),
}

/// A parsed template: literal text and placeholders, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses `text`. A text without `{{` parses to itself.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        // Byte offset of `rest` in `text`, for the error's character offset.
        let mut consumed = 0;
        while let Some(found) = rest.find("{{") {
            let escaped = rest[..found].ends_with('\\');
            if escaped {
                literal.push_str(&rest[..found - 1]);
                literal.push_str("{{");
                consumed += found + 2;
                rest = &rest[found + 2..];
                continue;
            }
            literal.push_str(&rest[..found]);
            let at = text[..consumed + found].chars().count();
            let inner_start = found + 2;
            let Some(close) = rest[inner_start..].find("}}") else {
                return Err(TemplateError::Unclosed { at });
            };
            let inner = &rest[inner_start..inner_start + close];
            let path = VariablePath::parse(inner.trim_matches(|c| c == ' ' || c == '\t'))
                .ok_or(TemplateError::BadName { at })?;
            if !literal.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut literal)));
            }
            parts.push(Part::Variable(path));
            let after = inner_start + close + 2;
            consumed += after;
            rest = &rest[after..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Template { parts })
    }

    /// `text` as one literal, with no placeholders and no escapes: what a stored text that no
    /// longer parses (written before templates existed) serves as, unchanged.
    pub fn verbatim(text: &str) -> Self {
        let parts = if text.is_empty() {
            Vec::new()
        } else {
            vec![Part::Text(text.to_owned())]
        };
        Template { parts }
    }

    /// The placeholders in order of appearance (a repeated one appears each time).
    pub fn placeholders(&self) -> impl Iterator<Item = &VariablePath> {
        self.parts.iter().filter_map(|part| match part {
            Part::Variable(path) => Some(path),
            Part::Text(_) => None,
        })
    }

    /// Whether the template has no placeholder (it renders to [`Self::literal`] whatever the
    /// variables).
    pub fn is_constant(&self) -> bool {
        self.placeholders().next().is_none()
    }

    /// The text with its placeholders removed and escapes resolved: what the token budget is
    /// checked on when a version is created (the values are not known yet).
    pub fn literal(&self) -> String {
        self.render(|_| "")
    }

    /// The text with each placeholder replaced by `value(path)`, verbatim (no escaping).
    pub fn render<'v>(&self, mut value: impl FnMut(&VariablePath) -> &'v str) -> String {
        let mut out = String::with_capacity(self.len_hint());
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Variable(path) => out.push_str(value(path)),
            }
        }
        out
    }

    fn len_hint(&self) -> usize {
        self.parts
            .iter()
            .map(|part| match part {
                Part::Text(text) => text.len(),
                Part::Variable(_) => 16,
            })
            .sum()
    }
}

/// A placeholder with the field it was found in, as the contract names fields
/// (`systemPrompt`, `templateMessages[2].content`, `fewShotExamples[0].input`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    /// The field.
    pub field: String,
    /// The variable.
    pub path: VariablePath,
}

/// Checks a version's variables schema (compact JSON text) and that it declares every
/// placeholder the version's texts hold, returning every problem at once (field
/// `variablesSchema` for the schema, the placeholder's field for an undeclared one).
///
/// JSON Schema needs JSON, which core does not read: the server and the SDK pass the
/// implementation of the `promptgate-variables` crate.
pub trait SchemaCheck: Send + Sync {
    /// The problems of `schema` with `placeholders`; empty when it is fine.
    fn check(&self, schema: &str, placeholders: &[Placeholder]) -> Vec<Violation>;

    /// The problems of `schema` as a JSON Schema document on its own (a tool's parameters, an
    /// output format), reported against `field`; empty when it is one.
    fn check_document(&self, schema: &str, field: &str) -> Vec<Violation>;
}

/// For core's own tests: a check that finds nothing wrong with any schema.
#[cfg(test)]
pub(crate) struct AcceptingSchemas;

#[cfg(test)]
impl SchemaCheck for AcceptingSchemas {
    fn check(&self, _schema: &str, _placeholders: &[Placeholder]) -> Vec<Violation> {
        Vec::new()
    }

    fn check_document(&self, _schema: &str, _field: &str) -> Vec<Violation> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(template: &Template) -> Vec<&str> {
        template.placeholders().map(VariablePath::as_str).collect()
    }

    #[test]
    fn plain_text_is_one_literal() {
        let t = Template::parse("You are helpful. {not a placeholder} }}").unwrap();
        assert!(t.is_constant());
        assert_eq!(t.literal(), "You are helpful. {not a placeholder} }}");
        assert_eq!(Template::parse("").unwrap().literal(), "");
    }

    #[test]
    fn placeholders_with_and_without_spaces_and_dots() {
        let t = Template::parse("Hi {{name}}, tier {{ customer.tier }} ({{\tname\t}})").unwrap();
        assert_eq!(names(&t), ["name", "customer.tier", "name"]);
        let rendered = t.render(|p| match p.as_str() {
            "name" => "Jane",
            "customer.tier" => "gold",
            _ => "?",
        });
        assert_eq!(rendered, "Hi Jane, tier gold (Jane)");
        assert_eq!(t.literal(), "Hi , tier  ()");
        let path = VariablePath::parse("customer.tier").unwrap();
        assert_eq!(path.root(), "customer");
        assert_eq!(path.segments().collect::<Vec<_>>(), ["customer", "tier"]);
    }

    #[test]
    fn backslash_escapes_only_double_braces() {
        let t = Template::parse(r"literal \{{name}} and {{name}} and \n \{ ").unwrap();
        assert_eq!(names(&t), ["name"]);
        assert_eq!(t.render(|_| "X"), r"literal {{name}} and X and \n \{ ");
    }

    #[test]
    fn values_are_inserted_verbatim() {
        let t = Template::parse("<{{v}}>").unwrap();
        assert_eq!(t.render(|_| "{{other}} & <b>"), "<{{other}} & <b>>");
    }

    #[test]
    fn malformed_placeholders_are_errors_with_their_offset() {
        assert_eq!(
            Template::parse("ab {{name").unwrap_err(),
            TemplateError::Unclosed { at: 3 }
        );
        assert_eq!(
            Template::parse("é {{ 1abc }}").unwrap_err(),
            TemplateError::BadName { at: 2 }
        );
        for bad in [
            "{{}}",
            "{{ a b }}",
            "{{a..b}}",
            "{{a.}}",
            "{{ -x }}",
            "{{\"k\": 1}}",
        ] {
            assert!(
                matches!(Template::parse(bad), Err(TemplateError::BadName { .. })),
                "{bad}"
            );
        }
        let message = TemplateError::Unclosed { at: 3 }.to_string();
        assert!(
            message.contains("character 3") && message.contains(r"\{{"),
            "{message}"
        );
    }

    #[test]
    fn verbatim_text_keeps_its_braces() {
        let t = Template::verbatim("{{ not parsed");
        assert!(t.is_constant());
        assert_eq!(t.literal(), "{{ not parsed");
    }

    #[test]
    fn long_paths_are_refused() {
        let long = "a".repeat(MAX_PATH_BYTES + 1);
        assert!(VariablePath::parse(&long).is_none());
        assert!(VariablePath::parse(&"a".repeat(MAX_PATH_BYTES)).is_some());
    }

    proptest::proptest! {
        /// Any text escaped with `\{{` is a constant template that renders back to itself, and
        /// parsing any text never panics (it is a template or an error with an offset inside it).
        #[test]
        fn escaped_text_renders_to_itself(text in "[a-z{} .\\\\]{0,80}") {
            let escaped = text.replace("{{", "\\{{");
            // `\{{` is itself an escape, so a text holding `\` before `{{` cannot round-trip;
            // leave those out.
            proptest::prop_assume!(!text.contains("\\{{") && !escaped.ends_with('\\'));
            let t = Template::parse(&escaped).unwrap();
            proptest::prop_assert!(t.is_constant());
            proptest::prop_assert_eq!(t.literal(), text.clone());
            match Template::parse(&text) {
                Ok(t) => proptest::prop_assert!(t.literal().len() <= text.len()),
                Err(TemplateError::Unclosed { at } | TemplateError::BadName { at }) => {
                    proptest::prop_assert!(at < text.chars().count())
                }
            }
        }
    }
}
