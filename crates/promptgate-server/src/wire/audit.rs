//! The audit log's answers on the wire: the verification report and the signed tree head.

use promptgate_api as api;
use promptgate_audit::SignedTreeHead;
use promptgate_audit::merkle::to_hex;
use promptgate_audit::verify::LogReport;

/// The contract's answer to `GET …/audit-logs/verify` for a replay: `reason` is the first
/// problem in words, `firstInvalidSequence` the first bad entry (null when only a signed head
/// disagrees, since then no single entry can be blamed).
pub fn verification(report: &LogReport) -> api::AuditVerification {
    api::AuditVerification {
        valid: report.is_valid(),
        entries: report.entries,
        head_sequence: report.head_sequence,
        head_hash: report.head_hash.clone(),
        root_hash: report.root_hash.clone(),
        first_invalid_sequence: report.first_invalid_sequence(),
        reason: report.first_problem().map(ToString::to_string),
        signed_heads_checked: report.heads_checked,
    }
}

/// The signed head as the contract serves it.
pub fn wire_head(signed: &SignedTreeHead) -> api::SignedTreeHead {
    api::SignedTreeHead {
        tree_size: signed.head.tree_size,
        root_hash: to_hex(&signed.head.root_hash),
        timestamp: signed.head.timestamp.clone(),
        key_id: signed.key_id.clone(),
        signature: signed.signature.clone(),
    }
}
