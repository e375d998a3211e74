//! OAuth scopes: what a client may do. A typo in a scope must never silently grant or deny, so
//! scopes are a closed enum parsed strictly.

use std::fmt;
use std::str::FromStr;

/// One permission from the contract's scope table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Read prompts and versions.
    PromptRead,
    /// Create, change and archive prompts.
    PromptWrite,
    /// Invoke prompts and write audit entries.
    GatewayWrite,
    /// Read telemetry.
    TelemetryRead,
    /// Read the audit log and its proofs.
    AuditRead,
    /// Manage OAuth clients.
    Admin,
}

impl Scope {
    /// Every scope, in the contract's order; the bootstrap admin client holds all of them.
    pub const ALL: [Scope; 6] = [
        Scope::PromptRead,
        Scope::PromptWrite,
        Scope::GatewayWrite,
        Scope::TelemetryRead,
        Scope::AuditRead,
        Scope::Admin,
    ];

    /// The wire name, such as `ai:prompt:read`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::PromptRead => "ai:prompt:read",
            Scope::PromptWrite => "ai:prompt:write",
            Scope::GatewayWrite => "ai:gateway:write",
            Scope::TelemetryRead => "ai:telemetry:read",
            Scope::AuditRead => "ai:audit:read",
            Scope::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scope name that is not in the contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown scope {}; known scopes are ai:prompt:read, ai:prompt:write, ai:gateway:write, ai:telemetry:read, ai:audit:read, admin",
    crate::violation::quoted(.0)
)]
pub struct UnknownScope(pub String);

impl FromStr for Scope {
    type Err = UnknownScope;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| UnknownScope(s.to_owned()))
    }
}

/// A set of scopes, kept sorted and free of duplicates so that its text form is canonical.
#[derive(Debug, Clone, PartialEq, Eq, Default, Hash)]
pub struct ScopeSet(Vec<Scope>);

impl ScopeSet {
    /// A set holding every scope.
    pub fn all() -> Self {
        ScopeSet(Scope::ALL.to_vec())
    }

    /// Builds a set from any scopes, sorting and de-duplicating them.
    pub fn from_scopes(scopes: impl IntoIterator<Item = Scope>) -> Self {
        let mut v: Vec<Scope> = scopes.into_iter().collect();
        v.sort();
        v.dedup();
        ScopeSet(v)
    }

    /// Parses a space-separated list (the OAuth `scope` form); empty input is an empty set.
    pub fn parse_space_separated(text: &str) -> Result<Self, UnknownScope> {
        text.split_whitespace()
            .map(Scope::from_str)
            .collect::<Result<Vec<_>, _>>()
            .map(ScopeSet::from_scopes)
    }

    /// Whether the set grants `scope`.
    pub fn contains(&self, scope: Scope) -> bool {
        self.0.contains(&scope)
    }

    /// Whether every scope of `other` is in this set.
    pub fn is_superset_of(&self, other: &ScopeSet) -> bool {
        other.0.iter().all(|s| self.contains(*s))
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The scopes, sorted.
    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }

    /// The wire names, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|s| s.as_str()).collect()
    }
}

impl fmt::Display for ScopeSet {
    /// The space-separated form used by OAuth and by the store.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names().join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_canonically() {
        let set = ScopeSet::parse_space_separated("admin  ai:prompt:read admin").unwrap();
        assert_eq!(set.to_string(), "ai:prompt:read admin");
        assert!(set.contains(Scope::Admin));
        assert!(!set.contains(Scope::PromptWrite));
    }

    #[test]
    fn rejects_unknown_scope_by_name() {
        let err = ScopeSet::parse_space_separated("ai:prompt:read ai:prompt:delete").unwrap_err();
        assert_eq!(err.0, "ai:prompt:delete");
    }
}
