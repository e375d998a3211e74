//! Sealing audit drafts onto the chain: what both stores do inside their append transaction,
//! once they hold the log's write lock and have read its head. The stores differ only in how
//! they lock and how they bind the row; the chain arithmetic (next sequence, previous hash,
//! the genesis hash for an empty log) is this one function.

use promptgate_audit::merkle::to_hex;
use promptgate_audit::{AuditDraft, GENESIS_HASH, SealedEntry};

use crate::StoreError;
use crate::codec::{millis, nul_free, sql_sequence, stored_hash};

/// One sealed draft as its `audit_entries` row binds it (the draft's id and prompt id are
/// bound by each store in its own column type).
pub(crate) struct SealedRow<'d> {
    /// The draft it seals.
    pub(crate) draft: &'d AuditDraft,
    /// The sealed entry, as `append_audit` answers it.
    pub(crate) entry: SealedEntry,
    /// `sequence`.
    pub(crate) sequence: i64,
    /// `recorded_at`, in Unix milliseconds.
    pub(crate) recorded_at: i64,
    /// `actor` (NUL-free).
    pub(crate) actor: String,
    /// `action` (NUL-free).
    pub(crate) action: String,
    /// `prev_hash`, hex.
    pub(crate) prev_hash: String,
    /// `hash`, hex.
    pub(crate) hash: String,
    /// `leaf_hash`, hex.
    pub(crate) leaf_hash: String,
}

/// Seals `drafts`, in order, onto the chain whose newest entry is `head` (its stored sequence
/// and hex hash; `None` for an empty log): the first gets the next sequence and `head`'s hash
/// as its previous hash, each next one extends the one before.
pub(crate) fn seal<'d>(
    head: Option<(i64, String)>,
    drafts: &'d [AuditDraft],
) -> Result<Vec<SealedRow<'d>>, StoreError> {
    let (mut sequence, mut prev_hash) = match head {
        Some((sequence, hash)) => (
            u64::try_from(sequence)
                .map_err(|_| StoreError::Corrupt(format!("audit sequence {sequence}")))?,
            stored_hash(&hash)?,
        ),
        None => (0, GENESIS_HASH),
    };
    let mut rows = Vec::with_capacity(drafts.len());
    for draft in drafts {
        sequence += 1;
        let entry = draft.seal(sequence, &prev_hash);
        prev_hash = entry.hash;
        rows.push(SealedRow {
            draft,
            sequence: sql_sequence(sequence),
            recorded_at: millis(draft.timestamp),
            actor: nul_free(&draft.actor),
            action: nul_free(&draft.action),
            prev_hash: to_hex(&entry.prev_hash),
            hash: to_hex(&entry.hash),
            leaf_hash: to_hex(&entry.leaf_hash),
            entry,
        });
    }
    Ok(rows)
}

/// The sealed entries of `rows`, once they are inserted.
pub(crate) fn entries(rows: Vec<SealedRow<'_>>) -> Vec<SealedEntry> {
    rows.into_iter().map(|row| row.entry).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use promptgate_audit::ChainVerifier;
    use serde_json::json;
    use time::OffsetDateTime;

    fn drafts(n: usize) -> Vec<AuditDraft> {
        (0..n)
            .map(|i| {
                AuditDraft::new(
                    OffsetDateTime::UNIX_EPOCH,
                    "admin\0",
                    "PROMPT_CREATED",
                    None,
                    json!({ "i": i }),
                )
            })
            .collect()
    }

    #[test]
    fn an_empty_log_starts_at_one_on_the_genesis_hash() {
        let drafts = drafts(2);
        let rows = seal(None, &drafts).unwrap();
        assert_eq!(rows[0].sequence, 1);
        assert_eq!(rows[0].entry.prev_hash, GENESIS_HASH);
        assert_eq!(rows[1].sequence, 2);
        assert_eq!(rows[1].entry.prev_hash, rows[0].entry.hash);
        assert_eq!(rows[1].prev_hash, rows[0].hash);
        // What is bound is what the entry says, NUL-free where the column is text.
        assert_eq!(rows[0].hash, to_hex(&rows[0].entry.hash));
        assert_eq!(rows[0].leaf_hash, to_hex(&rows[0].entry.leaf_hash));
        assert_eq!(rows[0].actor, "admin\u{FFFD}");
        assert_eq!(rows[0].recorded_at, 0);
    }

    #[test]
    fn a_batch_extends_the_chain_from_its_head() {
        let all = drafts(5);
        let first = entries(seal(None, &all[..3]).unwrap());
        let head = first.last().map(|e| (3, to_hex(&e.hash)));
        let rest = entries(seal(head, &all[3..]).unwrap());
        assert_eq!(rest[0].sequence, 4);
        assert_eq!(rest[0].prev_hash, first[2].hash);
        // The two batches are one valid chain, the same as sealing all five at once.
        let whole = entries(seal(None, &all).unwrap());
        let mut verifier = ChainVerifier::new();
        for (a, b) in first.iter().chain(&rest).zip(&whole) {
            assert_eq!(a, b);
            verifier.push(&promptgate_audit::entry::served_entry(&a.body, &a.hash));
        }
        let report = verifier.report();
        assert_eq!(report.first_break, None);
        assert_eq!(report.head_sequence, 5);
    }

    #[test]
    fn a_corrupt_head_is_reported() {
        let drafts = drafts(1);
        assert!(matches!(
            seal(Some((1, "not hex".to_owned())), &drafts),
            Err(StoreError::Corrupt(m)) if m == "audit hash \"not hex\""
        ));
        assert!(matches!(
            seal(Some((-1, "00".repeat(32))), &drafts),
            Err(StoreError::Corrupt(m)) if m == "audit sequence -1"
        ));
    }
}
