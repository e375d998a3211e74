//! promptgate's audit log integrity, everything an outside auditor needs and nothing more: RFC 8785
//! canonical JSON ([`canonical`]), the entry and its hash chain ([`entry`]), the RFC 6962 /
//! RFC 9162 Merkle tree ([`merkle`]), Ed25519 signed tree heads ([`head`]), replaying a log
//! to find its first bad entry ([`chain`]), and the auditor's checks of a whole log against
//! signed heads, of inclusion and of consistency proofs ([`verify`]).
//!
//! Pure computation, no I/O: the gateway, its store, the SDK and the CLI all call the same code,
//! so they agree on every byte. The exact forms are the contract's (`shared/API.md`, "Audit
//! log") and `docs/audit.md` restates them for auditors who bring their own code.

#![warn(missing_docs)]

pub mod canonical;
pub mod chain;
pub mod entry;
pub mod head;
pub mod merkle;
pub mod verify;

pub use chain::{ChainBreak, ChainReport, ChainVerifier, RootAccumulator};
pub use entry::{AuditDraft, GENESIS_HASH, SYSTEM_ACTOR, SealedEntry, action};
pub use head::{HeadError, SignedTreeHead, TreeHead};
pub use merkle::Hash;
pub use verify::{
    AuditCheckError, ConsistencyProof, FilterColumns, HeadToCheck, InclusionProof, LogReport,
    LogVerifier, PublicKey, Signatures,
};

use serde_json::{Value, json};

/// The `details` of a change the gateway records: the state before and after, and the RFC 6902
/// JSON Patch that turns one into the other (what a reviewer reads first).
pub fn change_details(before: Option<&Value>, after: Option<&Value>) -> Value {
    let null = Value::Null;
    let patch = json_patch::diff(before.unwrap_or(&null), after.unwrap_or(&null));
    json!({
        "before": before.cloned().unwrap_or(Value::Null),
        "after": after.cloned().unwrap_or(Value::Null),
        "diff": serde_json::to_value(patch).unwrap_or(Value::Null),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_details_carry_before_after_and_a_json_patch() {
        let before = json!({"versions": [{"version": "1.0.0", "weight": 1.0}]});
        let after = json!({"versions": [{"version": "1.0.0", "weight": 0.9}, {"version": "1.1.0", "weight": 0.1}]});
        let details = change_details(Some(&before), Some(&after));
        assert_eq!(details["before"], before);
        assert_eq!(details["after"], after);
        let patch: json_patch::Patch =
            serde_json::from_value(details["diff"].clone()).expect("the diff is a JSON Patch");
        let mut patched = before.clone();
        json_patch::patch(&mut patched, &patch).expect("the patch applies");
        assert_eq!(patched, after);
        assert_eq!(change_details(None, Some(&after))["before"], Value::Null);
    }
}
