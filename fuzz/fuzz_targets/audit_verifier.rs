//! The audit log verifier (`promptgate_audit`, and the SDK's wire-form wrappers the CLI uses).
//!
//! Every input is read three ways:
//! 1. as a JSONL export, read exactly as `promptgate audit verify --file` reads one (signed-head
//!    lines first, every other non-empty line the next entry, lines that are not JSON counted
//!    as unreadable entries), replayed by `LogVerifier` without and with a public key;
//! 2. (`arbitrary`) as drafts sealed into an honest chain with `AuditDraft::seal`, signed tree
//!    heads over prefixes of it, their inclusion and consistency proofs, and one byte flipped
//!    in one served entry;
//! 3. (`arbitrary`) as arbitrary proofs and heads given to `check_inclusion`,
//!    `check_consistency` and the Merkle proof checks.
//!
//! Properties:
//! - nothing panics;
//! - a report is valid iff it lists no problem, counts every entry line, and names a first
//!   invalid sequence within the log; with a key and no head it is never valid;
//! - an honest chain always verifies (chain, stored leaves, every signed head, with the key
//!   required), its report gives its root and head, and every inclusion and consistency proof
//!   the tree builds verifies, in the core and the SDK's wire forms;
//! - any corrupted proof hash makes its proof fail;
//! - a byte flipped in one served entry makes the chain fail at exactly that entry, unless the
//!   flip left the entry's hashed content (RFC 8785 canonical form) and its `hash` unchanged,
//!   in which case it still verifies (e.g. a digit of an integer beyond 2^53, which JCS reads as
//!   a double).
#![no_main]

use std::sync::LazyLock;

use arbitrary::{Arbitrary, Result as ArbResult, Unstructured};
use libfuzzer_sys::fuzz_target;
use promptgate_api as api;
use promptgate_audit::canonical::to_canonical_string;
use promptgate_audit::head::{self, TreeHead};
use promptgate_audit::merkle::{self, Hash};
use promptgate_audit::{
    AuditDraft, ConsistencyProof, GENESIS_HASH, InclusionProof, LogReport, LogVerifier, PublicKey,
    Signatures, SignedTreeHead,
};
use promptgate_client::audit as sdk;
use serde_json::{Map, Value};

/// The key the seeds' signed heads are signed with: base64 of the seed bytes 1..=32.
const SIGNING_KEY_SEED_B64: &str = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";

struct Keys {
    signing: ed25519_dalek::SigningKey,
    public: PublicKey,
}

static KEYS: LazyLock<Keys> = LazyLock::new(|| {
    let signing = head::parse_signing_key(SIGNING_KEY_SEED_B64).expect("a literal key");
    let public = PublicKey::from(signing.verifying_key());
    Keys { signing, public }
});

// ---------------------------------------------------------------------------------------------
// 1. A JSONL export, as the CLI reads it.

fn is_head_line(value: &Value) -> bool {
    value.get("signature").is_some()
        && value.get("treeSize").is_some()
        && value.get("sequence").is_none()
}

fn check_report_shape(report: &LogReport, entries: u64) {
    assert_eq!(report.entries, entries, "every entry line is counted");
    assert_eq!(report.is_valid(), report.problems.is_empty());
    assert_eq!(report.is_valid(), report.first_problem().is_none());
    if let Some(sequence) = report.first_invalid_sequence() {
        assert!(
            (1..=entries).contains(&sequence),
            "first invalid sequence {sequence} outside a log of {entries}"
        );
    }
    for problem in &report.problems {
        let _ = problem.to_string();
    }
}

fn export_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return; // the CLI stops on a file that is not UTF-8
    };
    let lines: Vec<(usize, &str)> = text
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| (i + 1, line))
        .collect();
    let mut heads = Vec::new();
    let mut entries = 0u64;
    for (_, line) in &lines {
        match serde_json::from_str::<Value>(line) {
            Ok(value) if is_head_line(&value) => {
                if let Ok(head) = serde_json::from_value::<api::SignedTreeHead>(value) {
                    heads.push(head);
                }
            }
            _ => entries += 1,
        }
    }
    for key in [None, Some(sdk::PublicKey::from(KEYS.public.clone()))] {
        let with_key = key.is_some();
        let mut verifier = sdk::LogVerifier::new(heads.clone(), key);
        for (number, line) in &lines {
            match serde_json::from_str::<Value>(line) {
                Ok(value) if is_head_line(&value) => {}
                Ok(value) => verifier.push(&value),
                Err(e) => verifier.push_unreadable(&format!("line {number} is not JSON ({e})")),
            }
        }
        assert_eq!(verifier.len(), entries);
        let report = verifier.finish();
        check_report_shape(&report, entries);
        if with_key && heads.is_empty() {
            assert!(
                !report.is_valid(),
                "a key was given and no head vouches for the log"
            );
        }
        if report.is_valid() {
            assert!(heads.len() as u64 <= report.heads_checked);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 2. An honest chain from fuzz-chosen drafts.

/// A JSON value of bounded depth and size.
fn arbitrary_json(u: &mut Unstructured<'_>, depth: u32) -> ArbResult<Value> {
    let choice = if depth == 0 {
        u.int_in_range(0..=5)?
    } else {
        u.int_in_range(0..=7)?
    };
    Ok(match choice {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::from(u.arbitrary::<i64>()?),
        3 => Value::from(u.arbitrary::<u64>()?),
        4 => serde_json::Number::from_f64(u.arbitrary::<f64>()?).map_or(Value::Null, Value::Number),
        5 => Value::String(u.arbitrary()?),
        6 => {
            let n = u.int_in_range(0..=4)?;
            Value::Array(
                (0..n)
                    .map(|_| arbitrary_json(u, depth - 1))
                    .collect::<ArbResult<_>>()?,
            )
        }
        _ => {
            let n = u.int_in_range(0..=4)?;
            let mut members = Map::new();
            for _ in 0..n {
                members.insert(u.arbitrary()?, arbitrary_json(u, depth - 1)?);
            }
            Value::Object(members)
        }
    })
}

#[derive(Debug)]
struct Json(Value);

impl<'a> Arbitrary<'a> for Json {
    fn arbitrary(u: &mut Unstructured<'a>) -> ArbResult<Self> {
        arbitrary_json(u, 3).map(Json)
    }
}

#[derive(Debug, Arbitrary)]
struct DraftInput {
    id: u128,
    at: i64,
    actor: String,
    action: String,
    prompt_id: Option<u128>,
    details: Json,
    client_at: Option<i64>,
    compliance_status: Option<String>,
    metadata: Option<Json>,
}

#[derive(Debug, Arbitrary)]
struct ChainInput {
    drafts: Vec<DraftInput>,
    /// Sizes of the signed heads, modulo the log's length + 1.
    head_sizes: Vec<u8>,
    /// Entry (modulo the length), byte (modulo the served text's length), xor mask (0 → 1).
    flip: Option<(u16, u16, u8)>,
}

fn datetime(seconds: i64) -> time::OffsetDateTime {
    // Any instant from year 0 to 9999, so that the RFC 3339 form exists.
    let span = 253_402_300_799i64 + 62_167_219_200;
    let seconds = seconds.rem_euclid(span) - 62_167_219_200;
    time::OffsetDateTime::from_unix_timestamp(seconds).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

fn draft(input: &DraftInput) -> AuditDraft {
    AuditDraft {
        id: uuid::Uuid::from_u128(input.id),
        timestamp: datetime(input.at),
        actor: input.actor.clone(),
        action: input.action.clone(),
        prompt_id: input.prompt_id.map(uuid::Uuid::from_u128),
        details: input.details.0.clone(),
        client_timestamp: input.client_at.map(datetime),
        compliance_status: input.compliance_status.clone(),
        metadata: input.metadata.as_ref().map(|m| m.0.clone()),
    }
}

fn sign(size: u64, root: Hash) -> SignedTreeHead {
    head::sign(
        &KEYS.signing,
        TreeHead {
            tree_size: size,
            root_hash: root,
            timestamp: "2026-11-27T12:00:00.000Z".to_owned(),
        },
    )
}

fn wire_hash(h: &Hash) -> String {
    merkle::to_hex(h)
}

fn corrupt(hashes: &[Hash], which: usize) -> Vec<Hash> {
    let mut bad = hashes.to_vec();
    let i = which % bad.len();
    bad[i][which % 32] ^= 0x01;
    bad
}

/// The hashed content of a served entry and its `hash` member, for comparing an altered entry.
fn hashed_form(entry: &Value) -> Option<(String, Option<Value>)> {
    let mut object = entry.as_object()?.clone();
    let hash = object.remove("hash");
    Some((to_canonical_string(&Value::Object(object)), hash))
}

fn honest_chain(input: ChainInput) {
    let drafts: Vec<AuditDraft> = input.drafts.iter().take(12).map(draft).collect();
    let n = drafts.len() as u64;
    let mut prev = GENESIS_HASH;
    let sealed: Vec<_> = drafts
        .iter()
        .zip(1u64..)
        .map(|(d, sequence)| {
            let s = d.seal(sequence, &prev);
            prev = s.hash;
            s
        })
        .collect();
    let entries: Vec<Value> = sealed.iter().map(|s| s.to_value()).collect();
    let leaves: Vec<Hash> = sealed.iter().map(|s| s.leaf_hash).collect();
    for (entry, s) in entries.iter().zip(&sealed) {
        assert_eq!(promptgate_audit::verify::leaf_hash_of(entry), s.leaf_hash);
    }

    let mut sizes: Vec<u64> = input
        .head_sizes
        .iter()
        .take(4)
        .map(|&s| u64::from(s) % (n + 1))
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    let heads: Vec<SignedTreeHead> = sizes
        .iter()
        .map(|&s| sign(s, merkle::root(&leaves[..s as usize])))
        .collect();

    // The whole log verifies, with the key required when there are heads.
    let signatures = if heads.is_empty() {
        Signatures::Unchecked
    } else {
        Signatures::Required(KEYS.public.clone())
    };
    let mut verifier = LogVerifier::new(heads.clone(), signatures.clone());
    for entry in &entries {
        verifier.push(entry);
    }
    let report = verifier.finish();
    assert!(
        report.is_valid(),
        "an honest chain failed: {:?}",
        report.problems
    );
    assert_eq!(report.entries, n);
    assert_eq!(report.head_sequence, n);
    assert_eq!(report.heads_checked, heads.len() as u64);
    assert_eq!(report.signatures_checked, heads.len() as u64);
    assert_eq!(report.root_hash, merkle::to_hex(&merkle::root(&leaves)));
    assert_eq!(report.head_hash, merkle::to_hex(&prev));

    // With the stored leaves beside the entries (as the database holds them).
    let mut verifier = LogVerifier::new(heads.clone(), signatures);
    for (entry, leaf) in entries.iter().zip(&leaves) {
        verifier.push_with_stored_leaf(entry, leaf);
    }
    assert!(verifier.finish().is_valid());

    // Inclusion proofs of every entry a head covers, in the core and the wire forms.
    for head in &heads {
        let size = head.head.tree_size;
        let wire_head = sdk::wire_head(head);
        assert!(sdk::verify_signed_head(&wire_head, &KEYS.public.clone().into()).is_ok());
        for index in 0..size {
            let path = merkle::inclusion_proof(&leaves, index, size).expect("an index in the tree");
            let proof = InclusionProof {
                sequence: index + 1,
                leaf_index: index,
                tree_size: size,
                leaf_hash: leaves[index as usize],
                audit_path: path.clone(),
                root_hash: head.head.root_hash,
            };
            let entry = &entries[index as usize];
            promptgate_audit::verify::check_inclusion(entry, &proof, head)
                .unwrap_or_else(|e| panic!("inclusion of {} in {size}: {e}", index + 1));
            let wire_entry: api::AuditEntry = serde_json::from_value(entry.clone())
                .expect("a served entry reads as the wire type");
            let wire_proof = api::InclusionProof {
                sequence: index + 1,
                leaf_index: index,
                tree_size: size,
                leaf_hash: wire_hash(&leaves[index as usize]),
                audit_path: path.iter().map(wire_hash).collect(),
                root_hash: wire_hash(&head.head.root_hash),
            };
            sdk::check_inclusion(&wire_entry, &wire_proof, &wire_head)
                .unwrap_or_else(|e| panic!("wire inclusion of {} in {size}: {e}", index + 1));
            if !path.is_empty() {
                let bad = InclusionProof {
                    audit_path: corrupt(&path, index as usize),
                    ..proof
                };
                assert!(promptgate_audit::verify::check_inclusion(entry, &bad, head).is_err());
            }
        }
    }

    // Consistency between every pair of heads.
    for (i, old) in heads.iter().enumerate() {
        for new in &heads[i..] {
            let (from, to) = (old.head.tree_size, new.head.tree_size);
            let path = merkle::consistency_proof(&leaves, from, to).expect("sizes in order");
            let proof = ConsistencyProof {
                from,
                to,
                from_root: old.head.root_hash,
                to_root: new.head.root_hash,
                proof: path.clone(),
            };
            promptgate_audit::verify::check_consistency(&proof, old, new)
                .unwrap_or_else(|e| panic!("consistency {from} → {to}: {e}"));
            let wire = api::ConsistencyProof {
                from,
                to,
                from_root: wire_hash(&old.head.root_hash),
                to_root: wire_hash(&new.head.root_hash),
                proof: path.iter().map(wire_hash).collect(),
            };
            sdk::check_consistency(&wire, &sdk::wire_head(old), &sdk::wire_head(new))
                .unwrap_or_else(|e| panic!("wire consistency {from} → {to}: {e}"));
            if !path.is_empty() {
                let bad = ConsistencyProof {
                    proof: corrupt(&path, (from + to) as usize),
                    ..proof
                };
                assert!(
                    promptgate_audit::verify::check_consistency(&bad, old, new).is_err(),
                    "a corrupted consistency proof {from} → {to} verified"
                );
            }
        }
    }

    // One byte flipped in one served entry.
    if let (Some((which, at, mask)), false) = (input.flip, entries.is_empty()) {
        let j = usize::from(which) % entries.len();
        let mut bytes = serde_json::to_vec(&entries[j]).expect("a Value serialises");
        let at = usize::from(at) % bytes.len();
        bytes[at] ^= mask.max(1);
        let altered: Option<Value> = std::str::from_utf8(&bytes)
            .ok()
            .and_then(|text| serde_json::from_str(text).ok());
        let mut verifier = LogVerifier::new(Vec::<SignedTreeHead>::new(), Signatures::Unchecked);
        for (k, entry) in entries.iter().enumerate() {
            match (&altered, k == j) {
                (_, false) => verifier.push(entry),
                (Some(value), true) => verifier.push(value),
                (None, true) => verifier.push_unreadable("the flipped entry is not JSON"),
            }
        }
        let report = verifier.finish();
        check_report_shape(&report, n);
        let unchanged = altered
            .as_ref()
            .and_then(hashed_form)
            .is_some_and(|form| Some(form) == hashed_form(&entries[j]));
        if unchanged {
            assert!(
                report.is_valid(),
                "an entry with unchanged content failed: {:?}",
                report.problems
            );
        } else {
            assert_eq!(
                report.first_invalid_sequence(),
                Some(j as u64 + 1),
                "byte {at} of entry {} flipped with {mask:#04x}: {:?}",
                j + 1,
                report.problems
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Arbitrary proofs and heads.

#[derive(Debug, Arbitrary)]
struct ProofInput {
    entry: Json,
    sequence: u64,
    leaf_index: u64,
    tree_size: u64,
    other_size: u64,
    leaf: [u8; 32],
    path: Vec<[u8; 32]>,
    root: [u8; 32],
    other_root: [u8; 32],
    key_id: String,
    signature: String,
    wire_path: Vec<String>,
    wire_root: String,
    public_key: String,
}

fn arbitrary_proofs(p: ProofInput) {
    let path: Vec<Hash> = p.path.iter().take(70).copied().collect();
    let signed = |size: u64, root: Hash| SignedTreeHead {
        head: TreeHead {
            tree_size: size,
            root_hash: root,
            timestamp: "2026-11-27T12:00:00.000Z".to_owned(),
        },
        key_id: p.key_id.clone(),
        signature: p.signature.clone(),
    };
    let head = signed(p.tree_size, p.root);
    let other = signed(p.other_size, p.other_root);

    let inclusion = InclusionProof {
        sequence: p.sequence,
        leaf_index: p.leaf_index,
        tree_size: p.tree_size,
        leaf_hash: p.leaf,
        audit_path: path.clone(),
        root_hash: p.root,
    };
    let _ = promptgate_audit::verify::check_inclusion(&p.entry.0, &inclusion, &head);
    let _ = merkle::verify_inclusion(&p.leaf, p.leaf_index, p.tree_size, &path, &p.root);
    let consistency = ConsistencyProof {
        from: p.other_size,
        to: p.tree_size,
        from_root: p.other_root,
        to_root: p.root,
        proof: path.clone(),
    };
    let _ = promptgate_audit::verify::check_consistency(&consistency, &other, &head);
    let _ = merkle::verify_consistency(p.other_size, p.tree_size, &p.other_root, &p.root, &path);
    let _ = promptgate_audit::verify::verify_signed_head(&head, &KEYS.public);
    let _ = PublicKey::parse(&p.public_key);
    let _ = PublicKey::from_published(&p.key_id, &p.public_key);

    // Wire forms: hex that may not be hex.
    let wire_head = api::SignedTreeHead {
        tree_size: p.tree_size,
        root_hash: p.wire_root.clone(),
        timestamp: "2026-11-27T12:00:00.000Z".to_owned(),
        key_id: p.key_id.clone(),
        signature: p.signature.clone(),
    };
    let _ = sdk::head_to_check(&wire_head);
    let _ = sdk::verify_signed_head(&wire_head, &KEYS.public.clone().into());
    let wire_consistency = api::ConsistencyProof {
        from: p.other_size,
        to: p.tree_size,
        from_root: merkle::to_hex(&p.other_root),
        to_root: p.wire_root.clone(),
        proof: p.wire_path.iter().take(70).cloned().collect(),
    };
    let _ = sdk::check_consistency(&wire_consistency, &sdk::wire_head(&other), &wire_head);
    if let Ok(entry) = serde_json::from_value::<api::AuditEntry>(p.entry.0.clone()) {
        let wire_inclusion = api::InclusionProof {
            sequence: p.sequence,
            leaf_index: p.leaf_index,
            tree_size: p.tree_size,
            leaf_hash: merkle::to_hex(&p.leaf),
            audit_path: p.wire_path.iter().take(70).cloned().collect(),
            root_hash: p.wire_root.clone(),
        };
        let _ = sdk::check_inclusion(&entry, &wire_inclusion, &wire_head);
        let _ = sdk::leaf_hash_of(&entry);
    }
}

fuzz_target!(|data: &[u8]| {
    export_file(data);
    if let Ok(input) = ChainInput::arbitrary(&mut Unstructured::new(data)) {
        honest_chain(input);
    }
    if let Ok(input) = ProofInput::arbitrary(&mut Unstructured::new(data)) {
        arbitrary_proofs(input);
    }
});
