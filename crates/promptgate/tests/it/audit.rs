//! The audit log through the real binary (API.md, "Audit log"): the entry every change writes,
//! client entries, what a failed change does not write, validation, scopes, 405s, listing with
//! filters, signed tree heads, inclusion and consistency proofs, 32 concurrent appends, and the
//! configuration that keeps system prompts out of the log.
//!
//! Hashes are recomputed here the way an outside auditor would: SHA-256 (the `sha2` crate) over
//! the raw previous hash and the RFC 8785 canonical JSON of the served entry without `hash`; only
//! the canonicalisation is borrowed from `promptgate_audit`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use promptgate_audit::canonical::to_canonical_string;
use promptgate_audit::merkle::{self, Hash};
use promptgate_audit::{ChainVerifier, SignedTreeHead, TreeHead, head};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::harness::*;

pub const AUDIT: &str = "/api/v2/ai/llm/gateway/audit-logs";
pub const VERIFY: &str = "/api/v2/ai/llm/gateway/audit-logs/verify";
pub const CHECKPOINT: &str = "/api/v2/ai/llm/gateway/audit-logs/checkpoint";
pub const PUBLIC_KEY: &str = "/api/v2/ai/llm/gateway/audit-logs/public-key";
pub const CONSISTENCY: &str = "/api/v2/ai/llm/gateway/audit-logs/consistency";

/// Every member a served entry has, always.
const MEMBERS: [&str; 12] = [
    "id",
    "sequence",
    "timestamp",
    "actor",
    "action",
    "promptId",
    "details",
    "clientTimestamp",
    "complianceStatus",
    "metadata",
    "prevHash",
    "hash",
];

pub const ZEROS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

pub fn entry_path(sequence: u64) -> String {
    format!("{AUDIT}/{sequence}")
}

pub fn proof_path(sequence: u64) -> String {
    format!("{AUDIT}/{sequence}/proof")
}

/// Every entry, oldest first, through the listing (pages of 500).
pub async fn all_entries(server: &Server, token: &str) -> Vec<Value> {
    list_all(server, token, &[], 500).await
}

/// Walks every page of a filtered listing and answers the entries in order.
pub async fn list_all(
    server: &Server,
    token: &str,
    filters: &[(&str, &str)],
    page_size: u32,
) -> Vec<Value> {
    let size = page_size.to_string();
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10_000 {
        let mut query: Vec<(&str, &str)> = filters.to_vec();
        query.push(("pageSize", &size));
        if let Some(c) = &cursor {
            query.push(("cursor", c));
        }
        let resp = server.get_query(AUDIT, token, &query).await;
        let page = resp.ok(200);
        assert_eq!(page["pageSize"], json!(page_size), "{resp}");
        let entities = page["entities"]
            .as_array()
            .unwrap_or_else(|| panic!("no entities: {resp}"));
        assert!(entities.len() <= page_size as usize, "{resp}");
        out.extend(entities.iter().cloned());
        match page["nextPageCursor"].as_str() {
            Some(next) => {
                assert!(!entities.is_empty(), "a cursor after an empty page: {resp}");
                cursor = Some(next.to_owned());
            }
            None => {
                assert!(page["nextPageCursor"].is_null(), "{resp}");
                return out;
            }
        }
    }
    panic!("the listing never ended")
}

pub async fn verify(server: &Server, token: &str) -> Value {
    server.get(VERIFY, Some(token)).await.ok(200)
}

/// How many entries the log holds, per `verify`.
pub async fn log_size(server: &Server, token: &str) -> u64 {
    verify(server, token).await["entries"].as_u64().unwrap()
}

pub async fn checkpoint(server: &Server, token: &str) -> Value {
    server.get(CHECKPOINT, Some(token)).await.ok(200)
}

pub async fn post_entry(server: &Server, token: &str, body: &Value) -> Value {
    server.post(AUDIT, Some(token), body).await.ok(201)
}

pub fn seq(entry: &Value) -> u64 {
    entry["sequence"]
        .as_u64()
        .unwrap_or_else(|| panic!("no sequence in {entry}"))
}

pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn from_hex(text: &str) -> Vec<u8> {
    assert!(
        text.len().is_multiple_of(2) && text.bytes().all(|b| b.is_ascii_hexdigit()),
        "not hex: {text:?}"
    );
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    to_hex(&Sha256::digest(bytes))
}

/// The served entry without `hash`, as RFC 8785 canonical JSON: the bytes that are hashed.
pub fn canonical_body(entry: &Value) -> String {
    let mut object = entry.as_object().unwrap().clone();
    object.remove("hash");
    to_canonical_string(&Value::Object(object))
}

/// `SHA-256(prevHash as 32 raw bytes ‖ canonical entry without hash)`, by hand.
pub fn recompute_hash(entry: &Value) -> String {
    let prev = from_hex(entry["prevHash"].as_str().unwrap());
    assert_eq!(prev.len(), 32, "{entry}");
    let mut hasher = Sha256::new();
    hasher.update(&prev);
    hasher.update(canonical_body(entry).as_bytes());
    to_hex(&hasher.finalize())
}

/// `SHA-256(0x00 ‖ canonical entry without hash)`, by hand.
pub fn leaf_of(entry: &Value) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0u8]);
    hasher.update(canonical_body(entry).as_bytes());
    hasher.finalize().into()
}

pub fn hash_field(value: &Value, field: &str) -> Hash {
    merkle::from_hex(
        value[field]
            .as_str()
            .unwrap_or_else(|| panic!("no {field} in {value}")),
    )
    .unwrap_or_else(|e| panic!("{field} is not a hash ({e}): {value}"))
}

/// The checkpoint's JSON as the audit library's signed head.
pub fn signed_head(checkpoint: &Value) -> SignedTreeHead {
    SignedTreeHead {
        head: TreeHead {
            tree_size: checkpoint["treeSize"].as_u64().unwrap(),
            root_hash: hash_field(checkpoint, "rootHash"),
            timestamp: str_field(checkpoint, "timestamp"),
        },
        key_id: str_field(checkpoint, "keyId"),
        signature: str_field(checkpoint, "signature"),
    }
}

/// Replays listed entries with the library's verifier.
pub fn replay(entries: &[Value]) -> promptgate_audit::ChainReport {
    let mut verifier = ChainVerifier::new();
    for entry in entries {
        verifier.push(entry);
    }
    verifier.report()
}

/// A read-write connection to the server's database (the SQLite file or the PostgreSQL
/// database), beside the running server.
pub async fn open_db(server: &Server) -> RawDb {
    RawDb::open(server).await
}

/// Asserts the chain: sequences 1..=n without gap, each prevHash the previous hash, each hash
/// recomputed by hand.
#[track_caller]
pub fn assert_chain(entries: &[Value]) {
    let mut prev = ZEROS.to_owned();
    for (i, entry) in entries.iter().enumerate() {
        assert_eq!(seq(entry), i as u64 + 1, "a gap or a repeat at {entry}");
        assert_eq!(entry["prevHash"], json!(prev), "a broken link at {entry}");
        assert_eq!(
            entry["hash"],
            json!(recompute_hash(entry)),
            "the hash does not recompute: {entry}"
        );
        prev = str_field(entry, "hash");
    }
}

fn find_action<'a>(entries: &'a [Value], action: &str) -> Vec<&'a Value> {
    entries.iter().filter(|e| e["action"] == action).collect()
}

fn weights(traffic: &Value) -> BTreeMap<String, f64> {
    traffic["versions"]
        .as_array()
        .unwrap_or_else(|| panic!("no versions in {traffic}"))
        .iter()
        .map(|v| (str_field(v, "version"), v["weight"].as_f64().unwrap()))
        .collect()
}

#[track_caller]
fn assert_same_traffic(logged: &Value, served: &Value) {
    assert_eq!(
        logged["defaultVersion"], served["defaultVersion"],
        "{logged} vs {served}"
    );
    assert_eq!(
        logged["splitStrategy"], served["splitStrategy"],
        "{logged} vs {served}"
    );
    let (a, b) = (weights(logged), weights(served));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "{logged} vs {served}"
    );
    for (version, w) in &a {
        assert!((w - b[version]).abs() < 1e-9, "{logged} vs {served}");
    }
}

/// Applies an RFC 6902 patch (add, remove, replace: what a diff produces) the way a reviewer's
/// tool would; panics on anything else.
pub fn apply_patch(doc: &Value, patch: &Value) -> Value {
    fn tokens(pointer: &str) -> Vec<String> {
        if pointer.is_empty() {
            return Vec::new();
        }
        assert!(pointer.starts_with('/'), "bad pointer {pointer:?}");
        pointer[1..]
            .split('/')
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect()
    }
    fn walk<'a>(doc: &'a mut Value, path: &[String]) -> &'a mut Value {
        path.iter().fold(doc, |at, token| match at {
            Value::Object(map) => map.get_mut(token).unwrap(),
            Value::Array(items) => items.get_mut(token.parse::<usize>().unwrap()).unwrap(),
            other => panic!("cannot descend into {other}"),
        })
    }
    let mut doc = doc.clone();
    for op in patch
        .as_array()
        .unwrap_or_else(|| panic!("not a patch: {patch}"))
    {
        let path = tokens(op["path"].as_str().unwrap());
        let kind = op["op"].as_str().unwrap();
        let Some((last, parent_path)) = path.split_last() else {
            assert!(kind == "replace" || kind == "add", "{op}");
            doc = op["value"].clone();
            continue;
        };
        let parent = walk(&mut doc, parent_path);
        match (kind, parent) {
            ("add", Value::Object(map)) | ("replace", Value::Object(map)) => {
                map.insert(last.clone(), op["value"].clone());
            }
            ("remove", Value::Object(map)) => {
                map.remove(last).unwrap();
            }
            ("add", Value::Array(items)) => {
                let at = if last == "-" {
                    items.len()
                } else {
                    last.parse().unwrap()
                };
                items.insert(at, op["value"].clone());
            }
            ("replace", Value::Array(items)) => {
                items[last.parse::<usize>().unwrap()] = op["value"].clone();
            }
            ("remove", Value::Array(items)) => {
                items.remove(last.parse::<usize>().unwrap());
            }
            (other, parent) => panic!("unexpected op {other} on {parent}"),
        }
    }
    doc
}

/// `details` of a gateway change: `before`, `after`, and a diff that turns one into the other.
#[track_caller]
fn assert_change_details(details: &Value) {
    let patched = apply_patch(&details["before"], &details["diff"]);
    assert_eq!(
        to_canonical_string(&patched),
        to_canonical_string(&details["after"]),
        "the diff does not turn before into after: {details}"
    );
}

#[tokio::test]
async fn a_fresh_log_starts_with_the_bootstrap_admin_then_the_configuration() {
    let server = Server::start();
    let token = server.admin_token().await;
    let entries = all_entries(&server, &token).await;
    assert_eq!(entries.len(), 2, "{entries:#?}");
    let created = &entries[0];
    assert_eq!(created["action"], "CLIENT_CREATED", "{created}");
    assert_eq!(created["actor"], "system", "{created}");
    assert_eq!(created["promptId"], Value::Null);
    assert_eq!(created["prevHash"], ZEROS);
    assert_eq!(created["details"]["before"], Value::Null, "{created}");
    assert_eq!(
        created["details"]["after"]["clientId"],
        json!(server.admin_id)
    );
    assert_eq!(created["details"]["after"]["name"], "admin");
    let scopes = created["details"]["after"]["scopes"].as_array().unwrap();
    assert!(scopes.contains(&json!("admin")), "{created}");
    let config = &entries[1];
    assert_eq!(config["action"], "CONFIG_RELOADED", "{config}");
    assert_eq!(config["actor"], "system");
    assert_eq!(config["details"]["before"], Value::Null, "{config}");
    assert!(config["details"]["after"].is_object(), "{config}");
    for entry in &entries {
        let keys: BTreeSet<&str> = entry
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, MEMBERS.into_iter().collect(), "{entry}");
        assert!(is_uuid(&str_field(entry, "id")), "{entry}");
        assert!(is_rfc3339_utc(&str_field(entry, "timestamp")), "{entry}");
    }
    assert_chain(&entries);
    // The admin secret is nowhere in the log.
    let text = serde_json::to_string(&entries).unwrap();
    assert!(!text.contains(&server.admin_secret), "{text}");

    let report = verify(&server, &token).await;
    assert_eq!(report["valid"], true, "{report}");
    assert_eq!(report["entries"], 2);
    assert_eq!(report["headSequence"], 2);
    assert_eq!(report["headHash"], entries[1]["hash"]);
    assert_eq!(report["firstInvalidSequence"], Value::Null);
}

#[tokio::test]
async fn every_change_writes_its_entry_with_actor_prompt_and_change() {
    let server = Server::start();
    let admin = server.admin_token().await;
    // A second client makes the prompt changes, so the actor is not simply the admin.
    let (editor_id, editor_secret) = server
        .create_client(
            &admin,
            "editor",
            &["ai:prompt:read", "ai:prompt:write", "ai:audit:read"],
        )
        .await;
    let editor = server.token(&editor_id, &editor_secret, None).await;
    let start = log_size(&server, &admin).await;

    // Create.
    let body = full_prompt_body("audited");
    let (created, _) = server.create_prompt(&editor, &body).await;
    let id = str_field(&created, "id");
    // A new version.
    let second_text = "You are a terse support agent.";
    let put = server
        .put(
            &prompt_path(&id),
            &editor,
            &json!({"systemPrompt": second_text, "version": "1.1.0"}),
            None,
        )
        .await;
    let with_version = put.ok(200);
    // Traffic 90/10.
    let split = json!({"trafficDistribution": {"versions": [
        {"version": "1.0.0", "weight": 0.9}, {"version": "1.1.0", "weight": 0.1}]}});
    let with_split = server
        .put(&prompt_path(&id), &editor, &split, None)
        .await
        .ok(200);
    // Archive.
    server
        .delete(&prompt_path(&id), Some(&editor))
        .await
        .ok(200);
    // A client, created and disabled by the admin.
    let (bot_id, bot_secret) = server
        .create_client(&admin, "ci-bot", &["ai:prompt:read"])
        .await;
    server
        .post(
            &format!("{CLIENTS}/{bot_id}/disable"),
            Some(&admin),
            &json!({}),
        )
        .await
        .ok(200);

    let entries = all_entries(&server, &admin).await;
    assert_chain(&entries);
    let new: Vec<&Value> = entries.iter().skip(start as usize).collect();
    let actions: Vec<&str> = new.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "PROMPT_CREATED",
            "VERSION_CREATED",
            "TRAFFIC_UPDATED",
            "PROMPT_ARCHIVED",
            "CLIENT_CREATED",
            "CLIENT_DISABLED"
        ],
        "one entry per change, in order: {new:#?}"
    );

    // The editor's own creation, by the admin.
    let editor_created = entries
        .iter()
        .find(|e| e["action"] == "CLIENT_CREATED" && e["details"]["after"]["name"] == "editor")
        .unwrap();
    assert_eq!(editor_created["actor"], json!(server.admin_id));

    // PROMPT_CREATED: the prompt and the first version's snapshot.
    let e = new[0];
    assert_eq!(e["actor"], json!(editor_id), "{e}");
    assert_eq!(e["promptId"], json!(id), "{e}");
    let after = &e["details"]["after"];
    assert_eq!(e["details"]["before"], Value::Null, "{e}");
    assert_eq!(after["name"], "audited", "{e}");
    assert_eq!(after["status"], created["status"], "{e}");
    assert_same_traffic(
        &after["trafficDistribution"],
        &created["trafficDistribution"],
    );
    let snapshot = &after["version"];
    assert_eq!(snapshot["version"], "1.0.0", "{e}");
    assert_eq!(snapshot["systemPrompt"], body["systemPrompt"], "{e}");
    assert_eq!(
        snapshot["systemPromptSha256"],
        json!(sha256_hex(
            body["systemPrompt"].as_str().unwrap().as_bytes()
        )),
        "{e}"
    );
    assert_eq!(snapshot["temperature"].as_f64(), Some(0.2), "{e}");
    assert_change_details(&e["details"]);

    // VERSION_CREATED: before and after are the newest version and the new one.
    let e = new[1];
    assert_eq!(e["actor"], json!(editor_id), "{e}");
    assert_eq!(e["promptId"], json!(id), "{e}");
    assert_eq!(e["details"]["version"], "1.1.0", "{e}");
    assert_eq!(e["details"]["comparedWith"], "1.0.0", "{e}");
    assert_eq!(e["details"]["before"]["version"], "1.0.0", "{e}");
    assert_eq!(
        e["details"]["before"]["systemPrompt"], body["systemPrompt"],
        "{e}"
    );
    assert_eq!(e["details"]["after"]["version"], "1.1.0", "{e}");
    assert_eq!(e["details"]["after"]["systemPrompt"], second_text, "{e}");
    assert_eq!(
        e["details"]["after"]["systemPromptSha256"],
        json!(sha256_hex(second_text.as_bytes())),
        "{e}"
    );
    assert!(
        e["details"]["diff"]
            .as_array()
            .unwrap()
            .iter()
            .any(|op| op["path"] == "/systemPrompt"),
        "the diff names the changed system prompt: {e}"
    );
    assert_change_details(&e["details"]);

    // TRAFFIC_UPDATED: before and after are the distributions, the diff a JSON Patch.
    let e = new[2];
    assert_eq!(e["actor"], json!(editor_id), "{e}");
    assert_eq!(e["promptId"], json!(id), "{e}");
    assert_same_traffic(
        &e["details"]["before"],
        &with_version["trafficDistribution"],
    );
    assert_same_traffic(&e["details"]["after"], &with_split["trafficDistribution"]);
    let logged = weights(&e["details"]["after"]);
    assert!((logged["1.0.0"] - 0.9).abs() < 1e-9, "{e}");
    assert!((logged["1.1.0"] - 0.1).abs() < 1e-9, "{e}");
    assert!(!e["details"]["diff"].as_array().unwrap().is_empty(), "{e}");
    assert_change_details(&e["details"]);

    // PROMPT_ARCHIVED.
    let e = new[3];
    assert_eq!(e["actor"], json!(editor_id), "{e}");
    assert_eq!(e["promptId"], json!(id), "{e}");
    assert_eq!(e["details"]["before"]["status"], "ACTIVE", "{e}");
    assert_eq!(e["details"]["after"]["status"], "ARCHIVED", "{e}");
    assert_change_details(&e["details"]);

    // CLIENT_CREATED, by the admin, without the secret.
    let e = new[4];
    assert_eq!(e["actor"], json!(server.admin_id), "{e}");
    assert_eq!(e["promptId"], Value::Null, "{e}");
    assert_eq!(e["details"]["after"]["clientId"], json!(bot_id), "{e}");
    assert_eq!(e["details"]["after"]["name"], "ci-bot", "{e}");
    assert_eq!(
        e["details"]["after"]["scopes"],
        json!(["ai:prompt:read"]),
        "{e}"
    );
    assert_change_details(&e["details"]);

    // CLIENT_DISABLED.
    let e = new[5];
    assert_eq!(e["actor"], json!(server.admin_id), "{e}");
    assert_eq!(e["promptId"], Value::Null, "{e}");
    assert_eq!(e["details"]["clientId"], json!(bot_id), "{e}");
    assert_eq!(e["details"]["before"]["disabled"], false, "{e}");
    assert_eq!(e["details"]["after"]["disabled"], true, "{e}");

    // No secret anywhere in the log.
    let text = serde_json::to_string(&entries).unwrap();
    for secret in [&bot_secret, &editor_secret, &server.admin_secret] {
        assert!(!text.contains(secret.as_str()), "a secret is in the log");
    }

    // Filtering by the prompt finds exactly its four entries.
    let by_prompt = list_all(&server, &editor, &[("promptId", &id)], 50).await;
    let seqs: Vec<u64> = by_prompt.iter().map(seq).collect();
    assert_eq!(
        seqs,
        new[..4].iter().map(|e| seq(e)).collect::<Vec<_>>(),
        "{by_prompt:#?}"
    );

    let report = verify(&server, &admin).await;
    assert_eq!(report["valid"], true, "{report}");
    assert_eq!(report["entries"], json!(entries.len()));
}

#[tokio::test]
async fn a_client_entry_round_trips_and_its_hash_recomputes_by_hand() {
    let server = Server::start();
    let admin = server.admin_token().await;
    let (created, _) = server.create_prompt(&admin, &prompt_body("reviewed")).await;
    let prompt_id = str_field(&created, "id");
    let (client_id, client_secret) = server
        .create_client(
            &admin,
            "prompt-manager",
            &["ai:gateway:write", "ai:audit:read"],
        )
        .await;
    let token = server.token(&client_id, &client_secret, None).await;
    let before = all_entries(&server, &token).await;
    let last = before.last().unwrap();

    let details = json!({"version": "1.0.0", "score": 1.0, "ratio": 0.1, "big": 1e21,
        "text": "é ✓ \"quoted\" \u{1F600}", "nested": {"b": 1, "a": [true, null, -0.0]}});
    let metadata = json!({"sourceSystem": "prompt-manager", "ticket": 42});
    let resp = server
        .post(
            AUDIT,
            Some(&token),
            &json!({"promptId": prompt_id, "action": "CREATE",
                "timestamp": "2026-11-27T05:15:39.5+01:00", "details": details,
                "complianceStatus": "VALIDATED", "metadata": metadata}),
        )
        .await;
    let stored = resp.ok(201);
    let keys: BTreeSet<&str> = stored
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, MEMBERS.into_iter().collect(), "{stored}");
    assert_eq!(seq(&stored), seq(last) + 1, "{stored}");
    assert_eq!(stored["prevHash"], last["hash"], "{stored}");
    assert_eq!(stored["actor"], json!(client_id), "{stored}");
    assert_eq!(stored["action"], "CREATE");
    assert_eq!(stored["promptId"], json!(prompt_id));
    assert_eq!(
        to_canonical_string(&stored["details"]),
        to_canonical_string(&details),
        "{stored}"
    );
    assert_eq!(stored["metadata"], metadata);
    assert_eq!(stored["complianceStatus"], "VALIDATED");
    assert!(is_uuid(&str_field(&stored, "id")));
    assert!(is_rfc3339_utc(&str_field(&stored, "timestamp")), "{stored}");
    // The client's time is kept, as the same instant in UTC.
    let client_time = time::OffsetDateTime::parse(
        &str_field(&stored, "clientTimestamp"),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(
        client_time,
        time::macros::datetime!(2026-11-27 04:15:39.5 UTC),
        "{stored}"
    );

    // The hash, by hand: SHA-256(raw prevHash ‖ canonical entry without hash).
    assert_eq!(stored["hash"], json!(recompute_hash(&stored)), "{stored}");
    // And exactly the bytes the database holds.
    let mut db = open_db(&server).await;
    let rows = db
        .fetch(
            "SELECT body, hash, leaf_hash, prev_hash FROM audit_entries WHERE sequence = ?",
            &[Arg::Int(seq(&stored) as i64)],
        )
        .await;
    let [row] = &rows[..] else {
        panic!("not one row: {rows:?}")
    };
    let [body, hash, leaf, prev] = &row[..] else {
        panic!("not four columns: {row:?}")
    };
    assert_eq!(body, &json!(canonical_body(&stored)));
    assert_eq!(hash, &stored["hash"]);
    assert_eq!(prev, &stored["prevHash"]);
    assert_eq!(leaf, &json!(to_hex(&leaf_of(&stored))));
    db.close().await;

    // Location names it; GET by sequence and the listing serve the same object.
    let location = resp
        .header("location")
        .unwrap_or_else(|| panic!("no Location: {resp}"));
    assert_eq!(location, entry_path(seq(&stored)));
    let got = server.get(&location, Some(&token)).await.ok(200);
    assert_eq!(got, stored);
    let listed = all_entries(&server, &token).await;
    assert_eq!(listed.last().unwrap(), &stored);

    // A bare entry: only the action. Every member is still present.
    let bare = post_entry(&server, &token, &json!({"action": "NOTE"})).await;
    assert_eq!(seq(&bare), seq(&stored) + 1);
    assert_eq!(bare["prevHash"], stored["hash"]);
    for member in [
        "promptId",
        "clientTimestamp",
        "complianceStatus",
        "metadata",
    ] {
        assert_eq!(bare[member], Value::Null, "{member}: {bare}");
    }
    assert!(
        bare["details"].is_null() || bare["details"] == json!({}),
        "{bare}"
    );
    assert_eq!(bare["hash"], json!(recompute_hash(&bare)));

    // A change to any member changes the recomputed hash (so the check above can fail).
    let mut forged = bare.clone();
    forged["actor"] = json!("someone-else");
    assert_ne!(recompute_hash(&forged), str_field(&bare, "hash"));

    let all = all_entries(&server, &token).await;
    assert_chain(&all);
    let report = verify(&server, &token).await;
    assert_eq!(report["valid"], true, "{report}");
    assert_eq!(report["headHash"], bare["hash"]);
}

#[tokio::test]
async fn a_failed_change_writes_no_entry() {
    let server = Server::start();
    let token = server.admin_token().await;
    let (created, stale) = server
        .create_prompt(&token, &full_prompt_body("kept"))
        .await;
    let path = prompt_path(&str_field(&created, "id"));
    server
        .put(
            &path,
            &token,
            &json!({"systemPrompt": "Two.", "version": "1.1.0"}),
            None,
        )
        .await
        .ok(200);
    let before = all_entries(&server, &token).await;

    // Duplicate name.
    server
        .post(PROMPTS, Some(&token), &prompt_body("kept"))
        .await
        .error(409, "conflict");
    // Invalid body.
    let mut body = prompt_body("invalid");
    body["temperature"] = json!(5);
    let resp = server.post(PROMPTS, Some(&token), &body).await;
    assert_eq!(resp.status, 400, "{resp}");
    let bad_split = json!({"trafficDistribution": {"versions": [
        {"version": "1.0.0", "weight": 0.7}, {"version": "1.1.0", "weight": 0.7}]}});
    let resp = server.put(&path, &token, &bad_split, None).await;
    assert_eq!(resp.status, 400, "{resp}");
    // Stale If-Match.
    server
        .put(
            &path,
            &token,
            &json!({"systemPrompt": "Three.", "version": "1.3.0"}),
            Some(&stale),
        )
        .await
        .error(412, "precondition.failed");
    // The same version again with other content.
    server
        .put(
            &path,
            &token,
            &json!({"systemPrompt": "Changed.", "version": "1.1.0"}),
            None,
        )
        .await
        .error(409, "conflict");
    // A client with an invalid scope; disabling nobody.
    let resp = server
        .post(
            CLIENTS,
            Some(&token),
            &json!({"name": "x", "scopes": ["no:such:scope"]}),
        )
        .await;
    assert_eq!(resp.status, 400, "{resp}");
    server
        .post(
            &format!("{CLIENTS}/nobody/disable"),
            Some(&token),
            &json!({}),
        )
        .await
        .error(404, "not.found");
    // An invalid client entry.
    let resp = server.post(AUDIT, Some(&token), &json!({})).await;
    assert_eq!(resp.status, 400, "{resp}");

    let after = all_entries(&server, &token).await;
    assert_eq!(
        after,
        before,
        "a rejected change wrote an entry: {:#?}",
        &after[before.len().min(after.len())..]
    );
    let report = verify(&server, &token).await;
    assert_eq!(report["valid"], true, "{report}");
    assert_eq!(report["entries"], json!(before.len()));
}

#[tokio::test]
async fn client_entries_are_validated_field_by_field() {
    let server = Server::start();
    let token = server.admin_token().await;
    let size = log_size(&server, &token).await;

    let cases: Vec<(Value, &[&str])> = vec![
        (json!({"details": {"a": 1}}), &["action"]),
        (json!({"action": ""}), &["action"]),
        (json!({"action": "   "}), &["action"]),
        (json!({"action": "x".repeat(101)}), &["action"]),
        (json!({"action": "PROMPT_CREATED"}), &["action"]),
        (json!({"action": "CONFIG_RELOADED"}), &["action"]),
        (json!({"action": "CLIENT_SECRET_ROTATED"}), &["action"]),
        (json!({"action": " VERSION_CREATED "}), &["action"]),
        (
            json!({"action": "CREATE", "details": {"blob": "z".repeat(70 * 1024)}}),
            &["details"],
        ),
        (
            json!({"action": "CREATE", "timestamp": "yesterday"}),
            &["timestamp"],
        ),
        (
            json!({"action": "CREATE", "timestamp": "2026-11-27 04:15:39"}),
            &["timestamp"],
        ),
        (json!({"action": "CREATE", "details": [1, 2]}), &["details"]),
        (json!({"action": "CREATE", "details": "text"}), &["details"]),
        (json!({"action": "CREATE", "metadata": 7}), &["metadata"]),
        (
            json!({"action": "CREATE", "promptId": "not-a-uuid"}),
            &["promptId"],
        ),
        (
            json!({"action": "CREATE", "complianceStatus": "y".repeat(101)}),
            &["complianceStatus"],
        ),
        // Every problem at once.
        (
            json!({"action": "TRAFFIC_UPDATED", "timestamp": "soon", "details": 1,
                "metadata": [], "promptId": "nope"}),
            &["action", "timestamp", "details", "metadata", "promptId"],
        ),
    ];
    for (body, fields) in &cases {
        let resp = server.post(AUDIT, Some(&token), body).await;
        assert_eq!(resp.status, 400, "{body}: {resp}");
        resp.error(400, "invalid.value");
        let expected: BTreeSet<String> = fields.iter().map(|f| (*f).to_owned()).collect();
        assert_eq!(resp.field_names(), expected, "{body}: {resp}");
    }

    // A well-formed id of no prompt: 404.
    let unknown = uuid::Uuid::new_v4().to_string();
    server
        .post(
            AUDIT,
            Some(&token),
            &json!({"action": "CREATE", "promptId": unknown}),
        )
        .await
        .error(404, "not.found");
    // Wrong JSON type and malformed JSON.
    let resp = server
        .post(AUDIT, Some(&token), &json!({"action": 5}))
        .await;
    assert_eq!(resp.status, 400, "{resp}");
    let resp = server
        .send(
            server
                .request(Method::POST, AUDIT)
                .bearer_auth(&token)
                .header("Content-Type", "application/json")
                .body("{\"action\": "),
        )
        .await;
    assert_eq!(resp.status, 400, "{resp}");

    assert_eq!(
        log_size(&server, &token).await,
        size,
        "nothing was appended"
    );

    // The limit itself is accepted.
    let ok = post_entry(&server, &token, &json!({"action": "X".repeat(100)})).await;
    assert_eq!(seq(&ok), size + 1);
}

#[tokio::test]
async fn reading_needs_audit_read_and_writing_needs_gateway_write() {
    let server = Server::start();
    let admin = server.admin_token().await;
    let writer = server
        .scoped_token("ai:gateway:write ai:prompt:read ai:prompt:write")
        .await;
    let reader = server.scoped_token("ai:audit:read").await;
    let size = log_size(&server, &admin).await;

    let reads = [
        AUDIT.to_owned(),
        entry_path(1),
        VERIFY.to_owned(),
        CHECKPOINT.to_owned(),
        PUBLIC_KEY.to_owned(),
        proof_path(1),
        format!("{CONSISTENCY}?from=1"),
    ];
    for path in &reads {
        let body = server
            .get(path, Some(&writer))
            .await
            .error(403, "missing.scope");
        assert_eq!(
            param(&body, "requiredScopes"),
            json!("ai:audit:read"),
            "{path}"
        );
        server.get(path, None).await.error(401, "unauthorized");
        server.get(path, Some(&reader)).await.ok(200);
    }

    let body = server
        .post(AUDIT, Some(&reader), &json!({"action": "CREATE"}))
        .await
        .error(403, "missing.scope");
    assert_eq!(param(&body, "requiredScopes"), json!("ai:gateway:write"));
    server
        .post(AUDIT, None, &json!({"action": "CREATE"}))
        .await
        .error(401, "unauthorized");
    assert_eq!(log_size(&server, &admin).await, size);

    let entry = post_entry(&server, &writer, &json!({"action": "CREATE"})).await;
    assert_eq!(seq(&entry), size + 1);
    assert_eq!(entry["actor"], json!(server.admin_id), "{entry}");
}

#[tokio::test]
async fn put_patch_and_delete_on_audit_paths_answer_405_and_change_nothing() {
    let server = Server::start();
    let token = server.admin_token().await;
    post_entry(&server, &token, &json!({"action": "CREATE"})).await;
    let before = all_entries(&server, &token).await;

    let paths = [
        AUDIT.to_owned(),
        entry_path(1),
        entry_path(3),
        VERIFY.to_owned(),
        CHECKPOINT.to_owned(),
        PUBLIC_KEY.to_owned(),
        CONSISTENCY.to_owned(),
        proof_path(1),
    ];
    for path in &paths {
        for method in [Method::PUT, Method::PATCH, Method::DELETE] {
            let resp = server
                .send(
                    server
                        .request(method.clone(), path)
                        .bearer_auth(&token)
                        .json(&json!({"action": "EDIT", "details": {}})),
                )
                .await;
            resp.error(405, "method.not.allowed");
        }
    }
    server
        .post(&entry_path(1), Some(&token), &json!({"action": "CREATE"}))
        .await
        .error(405, "method.not.allowed");
    assert_eq!(all_entries(&server, &token).await, before);
}

#[tokio::test]
async fn listing_filters_and_pages_without_gaps_or_repeats() {
    let server = Server::start();
    let admin = server.admin_token().await;
    let (a, _) = server.create_prompt(&admin, &prompt_body("alpha")).await;
    let (b, _) = server.create_prompt(&admin, &prompt_body("beta")).await;
    let (a, b) = (str_field(&a, "id"), str_field(&b, "id"));
    let (other_id, other_secret) = server
        .create_client(&admin, "reviewer", &["ai:gateway:write", "ai:audit:read"])
        .await;
    let other = server.token(&other_id, &other_secret, None).await;
    let mut expected_review_a = Vec::new();
    for i in 0..5 {
        let e = post_entry(
            &server,
            &admin,
            &json!({"promptId": a, "action": "REVIEW", "details": {"i": i}}),
        )
        .await;
        expected_review_a.push(seq(&e));
        if i % 2 == 0 {
            let e = post_entry(
                &server,
                &other,
                &json!({"promptId": a, "action": "REVIEW", "details": {"i": i}}),
            )
            .await;
            expected_review_a.push(seq(&e));
        }
        post_entry(&server, &admin, &json!({"promptId": b, "action": "REVIEW"})).await;
    }
    post_entry(
        &server,
        &other,
        &json!({"promptId": a, "action": "APPROVE"}),
    )
    .await;

    let all = all_entries(&server, &admin).await;
    assert_chain(&all);
    // Small pages cover the same entries as one large page.
    for size in [1, 2, 7] {
        assert_eq!(
            list_all(&server, &admin, &[], size).await,
            all,
            "pageSize {size}"
        );
    }
    // Default page size 50.
    let page = server.get(AUDIT, Some(&admin)).await.ok(200);
    assert_eq!(page["pageSize"], 50);
    assert_eq!(page["entities"].as_array().unwrap().len(), all.len());
    assert_eq!(page["nextPageCursor"], Value::Null);

    let expect = |pred: &dyn Fn(&Value) -> bool| -> Vec<u64> {
        all.iter().filter(|e| pred(e)).map(seq).collect()
    };
    let seqs = |entries: Vec<Value>| -> Vec<u64> { entries.iter().map(seq).collect() };

    let got = seqs(
        list_all(
            &server,
            &admin,
            &[("promptId", &a), ("action", "REVIEW")],
            2,
        )
        .await,
    );
    assert_eq!(got, expected_review_a);
    assert_eq!(got.len(), 8);
    assert_eq!(
        got,
        expect(&|e| e["promptId"] == json!(a) && e["action"] == "REVIEW")
    );

    let got = seqs(list_all(&server, &admin, &[("actor", &other_id)], 2).await);
    assert_eq!(got.len(), 4);
    assert_eq!(got, expect(&|e| e["actor"] == json!(other_id)));

    let got = seqs(list_all(&server, &admin, &[("promptId", &a)], 3).await);
    assert_eq!(got.len(), 10, "creation, 8 reviews, 1 approval");
    assert_eq!(got, expect(&|e| e["promptId"] == json!(a)));

    let got = seqs(list_all(&server, &admin, &[("action", "PROMPT_CREATED")], 1).await);
    assert_eq!(got.len(), 2);
    assert_eq!(got, expect(&|e| e["action"] == "PROMPT_CREATED"));

    let got = seqs(
        list_all(
            &server,
            &admin,
            &[
                ("promptId", &a),
                ("actor", &other_id),
                ("action", "APPROVE"),
            ],
            5,
        )
        .await,
    );
    assert_eq!(got, vec![seq(all.last().unwrap())]);

    let got = list_all(&server, &admin, &[("action", "NO_SUCH_ACTION")], 5).await;
    assert!(got.is_empty());

    // Time filters against the log's own timestamps: startTime inclusive, endTime exclusive.
    let pivot = &all[all.len() / 2];
    let t = str_field(pivot, "timestamp");
    let got = seqs(list_all(&server, &admin, &[("startTime", &t)], 4).await);
    assert!(got.contains(&seq(pivot)));
    assert_eq!(got, expect(&|e| str_field(e, "timestamp") >= t));
    let got = seqs(list_all(&server, &admin, &[("endTime", &t)], 4).await);
    assert!(!got.contains(&seq(pivot)));
    assert_eq!(got, expect(&|e| str_field(e, "timestamp") < t));
    let first = str_field(&all[0], "timestamp");
    let got = seqs(
        list_all(
            &server,
            &admin,
            &[("startTime", &first), ("endTime", &t)],
            4,
        )
        .await,
    );
    assert_eq!(got, expect(&|e| str_field(e, "timestamp") < t));

    // The filters may come as a JSON body on GET.
    let resp = server
        .send(
            server
                .request(Method::GET, AUDIT)
                .bearer_auth(&admin)
                .json(&json!({"promptId": a, "action": "APPROVE"})),
        )
        .await;
    let page = resp.ok(200);
    assert_eq!(
        seqs(page["entities"].as_array().unwrap().clone()),
        vec![seq(all.last().unwrap())],
        "{resp}"
    );

    // Bad parameters, each named.
    for (query, field) in [
        (vec![("pageSize", "0")], "pageSize"),
        (vec![("pageSize", "501")], "pageSize"),
        (vec![("pageSize", "many")], "pageSize"),
        (vec![("cursor", "not-a-cursor")], "cursor"),
        (vec![("promptId", "nope")], "promptId"),
        (vec![("startTime", "yesterday")], "startTime"),
        (vec![("endTime", "2026-13-45T00:00:00Z")], "endTime"),
        (
            vec![
                ("startTime", "2026-11-27T04:00:00Z"),
                ("endTime", "2026-11-27T03:00:00Z"),
            ],
            "endTime",
        ),
    ] {
        let resp = server.get_query(AUDIT, &admin, &query).await;
        assert_eq!(resp.status, 400, "{query:?}: {resp}");
        assert!(
            resp.field_names().contains(field),
            "{query:?} does not name {field}: {resp}"
        );
    }
    // pageSize 500 is the largest accepted.
    let page = server
        .get_query(AUDIT, &admin, &[("pageSize", "500")])
        .await
        .ok(200);
    assert_eq!(page["pageSize"], 500);

    // One entry by sequence; none beyond the end; not a number.
    for entry in [&all[0], pivot, all.last().unwrap()] {
        let got = server.get(&entry_path(seq(entry)), Some(&admin)).await;
        assert_eq!(&got.ok(200), entry);
    }
    server
        .get(&entry_path(all.len() as u64 + 1), Some(&admin))
        .await
        .error(404, "not.found");
    for bad in ["abc", "0", "-1", "1.5"] {
        let resp = server.get(&format!("{AUDIT}/{bad}"), Some(&admin)).await;
        resp.error(400, "invalid.value");
        assert!(resp.field_names().contains("sequence"), "{resp}");
    }
}

#[tokio::test]
async fn the_checkpoint_is_signed_and_proofs_verify_against_it() {
    let server = Server::start();
    let token = server.admin_token().await;
    for i in 0..5 {
        post_entry(
            &server,
            &token,
            &json!({"action": "STEP", "details": {"i": i}}),
        )
        .await;
    }

    // The public key, and its id by hand: the first 16 hex digits of SHA-256 of the raw key.
    let key = server.get(PUBLIC_KEY, Some(&token)).await.ok(200);
    let public = head::parse_public_key(&str_field(&key, "publicKey")).unwrap();
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(str_field(&key, "publicKey"))
        .unwrap();
    assert_eq!(raw.len(), 32);
    assert_eq!(key["keyId"], json!(sha256_hex(&raw)[..16]));

    let old = checkpoint(&server, &token).await;
    let old_head = signed_head(&old);
    assert_eq!(old["keyId"], key["keyId"]);
    assert!(is_rfc3339_utc(&str_field(&old, "timestamp")), "{old}");
    assert_eq!(head::verify(&public, &old_head), Ok(()));
    // The signature covers exactly the three members: any change fails.
    let mut bigger = old_head.clone();
    bigger.head.tree_size += 1;
    assert!(head::verify(&public, &bigger).is_err());
    let mut other_time = old_head.clone();
    other_time.head.timestamp.push(' ');
    assert!(head::verify(&public, &other_time).is_err());

    // It covers every entry at that moment, with verify's root.
    let report = verify(&server, &token).await;
    assert_eq!(old["treeSize"], report["entries"], "{old} {report}");
    assert_eq!(old["rootHash"], report["rootHash"], "{old} {report}");
    // And the root recomputes from the served entries.
    let entries = all_entries(&server, &token).await;
    let leaves: Vec<Hash> = entries.iter().map(leaf_of).collect();
    assert_eq!(merkle::root(&leaves), old_head.head.root_hash);
    // Asking again without new entries answers the same head.
    assert_eq!(checkpoint(&server, &token).await, old);

    // More entries; a new head.
    for i in 0..6 {
        post_entry(
            &server,
            &token,
            &json!({"action": "MORE", "details": {"i": i}}),
        )
        .await;
    }
    let new = checkpoint(&server, &token).await;
    let new_head = signed_head(&new);
    assert_eq!(head::verify(&public, &new_head), Ok(()));
    let report = verify(&server, &token).await;
    assert_eq!(new["treeSize"], report["entries"]);
    assert_eq!(new["rootHash"], report["rootHash"]);
    assert!(new_head.head.tree_size > old_head.head.tree_size);
    let entries = all_entries(&server, &token).await;
    assert_eq!(entries.len() as u64, new_head.head.tree_size);

    // Inclusion proofs of several entries, against both heads.
    for signed in [&old_head, &new_head] {
        let size = signed.head.tree_size;
        for sequence in [1, 2, size / 2, size - 1, size] {
            let size_text = size.to_string();
            let resp = server
                .get_query(&proof_path(sequence), &token, &[("treeSize", &size_text)])
                .await;
            let proof = resp.ok(200);
            assert_eq!(proof["sequence"], json!(sequence), "{resp}");
            assert_eq!(proof["leafIndex"], json!(sequence - 1), "{resp}");
            assert_eq!(proof["treeSize"], json!(size), "{resp}");
            assert_eq!(
                proof["rootHash"],
                json!(merkle::to_hex(&signed.head.root_hash))
            );
            // The auditor computes the leaf from the entry itself.
            let leaf = leaf_of(&entries[sequence as usize - 1]);
            assert_eq!(proof["leafHash"], json!(merkle::to_hex(&leaf)), "{resp}");
            let path: Vec<Hash> = proof["auditPath"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| merkle::from_hex(h.as_str().unwrap()).unwrap())
                .collect();
            assert_eq!(
                merkle::verify_inclusion(&leaf, sequence - 1, size, &path, &signed.head.root_hash),
                Ok(()),
                "{resp}"
            );
            // One flipped bit anywhere fails.
            if let Some(first) = path.first() {
                let mut bad = path.clone();
                bad[0] = {
                    let mut h = *first;
                    h[31] ^= 1;
                    h
                };
                assert!(
                    merkle::verify_inclusion(
                        &leaf,
                        sequence - 1,
                        size,
                        &bad,
                        &signed.head.root_hash
                    )
                    .is_err()
                );
            }
            let mut other_leaf = leaf;
            other_leaf[0] ^= 0x80;
            assert!(
                merkle::verify_inclusion(
                    &other_leaf,
                    sequence - 1,
                    size,
                    &path,
                    &signed.head.root_hash
                )
                .is_err()
            );
        }
    }
    // Without treeSize: the whole log.
    let proof = server.get(&proof_path(3), Some(&token)).await.ok(200);
    assert_eq!(proof["treeSize"], new["treeSize"]);
    assert_eq!(proof["rootHash"], new["rootHash"]);

    // Consistency between the old head and the new one.
    let (from, to) = (old_head.head.tree_size, new_head.head.tree_size);
    let resp = server
        .get_query(
            CONSISTENCY,
            &token,
            &[("from", &from.to_string()), ("to", &to.to_string())],
        )
        .await;
    let proof = resp.ok(200);
    assert_eq!(proof["from"], json!(from));
    assert_eq!(proof["to"], json!(to));
    assert_eq!(proof["fromRoot"], old["rootHash"], "{resp}");
    assert_eq!(proof["toRoot"], new["rootHash"], "{resp}");
    let hashes: Vec<Hash> = proof["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| merkle::from_hex(h.as_str().unwrap()).unwrap())
        .collect();
    assert!(!hashes.is_empty());
    assert_eq!(
        merkle::verify_consistency(
            from,
            to,
            &old_head.head.root_hash,
            &new_head.head.root_hash,
            &hashes
        ),
        Ok(())
    );
    let mut bad = hashes.clone();
    let last = bad.len() - 1;
    bad[last][0] ^= 1;
    assert!(
        merkle::verify_consistency(
            from,
            to,
            &old_head.head.root_hash,
            &new_head.head.root_hash,
            &bad
        )
        .is_err()
    );
    // `to` defaults to the log's size; every smaller size is consistent with it too.
    for from in 1..=to {
        let proof = server
            .get_query(CONSISTENCY, &token, &[("from", &from.to_string())])
            .await
            .ok(200);
        assert_eq!(proof["to"], json!(to));
        let hashes: Vec<Hash> = proof["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| merkle::from_hex(h.as_str().unwrap()).unwrap())
            .collect();
        let from_root = merkle::root(
            &entries[..from as usize]
                .iter()
                .map(leaf_of)
                .collect::<Vec<_>>(),
        );
        assert_eq!(proof["fromRoot"], json!(merkle::to_hex(&from_root)));
        assert_eq!(
            merkle::verify_consistency(from, to, &from_root, &new_head.head.root_hash, &hashes),
            Ok(()),
            "from {from}"
        );
    }

    // verify checked the stored heads, ours among them.
    let report = verify(&server, &token).await;
    assert_eq!(report["valid"], true, "{report}");
    assert!(
        report["signedHeadsChecked"].as_u64().unwrap() >= 2,
        "{report}"
    );
}

#[tokio::test]
async fn bad_proof_parameters_are_refused() {
    let server = Server::start();
    let token = server.admin_token().await;
    for _ in 0..3 {
        post_entry(&server, &token, &json!({"action": "STEP"})).await;
    }
    let size = log_size(&server, &token).await; // 5
    let size_text = size.to_string();
    let beyond = (size + 1).to_string();

    // Inclusion.
    for (sequence, tree_size, field) in [
        ("3", "2", "treeSize"),
        ("1", "0", "treeSize"),
        ("2", beyond.as_str(), "treeSize"),
        ("2", "many", "treeSize"),
        ("2", "-1", "treeSize"),
        ("abc", "2", "sequence"),
        ("0", "2", "sequence"),
        ("18446744073709551616", "2", "sequence"),
        ("2", "18446744073709551615", "treeSize"),
    ] {
        let resp = server
            .get_query(
                &format!("{AUDIT}/{sequence}/proof"),
                &token,
                &[("treeSize", tree_size)],
            )
            .await;
        resp.error(400, "invalid.value");
        assert!(
            resp.field_names().contains(field),
            "{sequence}/{tree_size} does not name {field}: {resp}"
        );
    }
    server
        .get(&proof_path(size + 1), Some(&token))
        .await
        .error(404, "not.found");
    server
        .get(&format!("{AUDIT}/18446744073709551615/proof"), Some(&token))
        .await
        .error(404, "not.found");
    server
        .get(&format!("{AUDIT}/18446744073709551615"), Some(&token))
        .await
        .error(404, "not.found");
    server
        .get_query(&proof_path(size + 5), &token, &[("treeSize", &size_text)])
        .await
        .error(404, "not.found");
    // The edges are accepted.
    server
        .get_query(&proof_path(size), &token, &[("treeSize", &size_text)])
        .await
        .ok(200);
    server
        .get_query(&proof_path(1), &token, &[("treeSize", "1")])
        .await
        .ok(200);

    // Consistency.
    for (query, field) in [
        (vec![("from", "0")], "from"),
        (vec![("from", "0"), ("to", "3")], "from"),
        (vec![("from", "4"), ("to", "3")], "from"),
        (vec![("from", "1"), ("to", beyond.as_str())], "to"),
        (vec![("from", "x")], "from"),
        (vec![("from", "1"), ("to", "y")], "to"),
        (vec![("from", "18446744073709551615")], "from"),
        (vec![("from", "1"), ("to", "18446744073709551615")], "to"),
        (vec![("to", "3")], "from"),
        (vec![], "from"),
    ] {
        let resp = server.get_query(CONSISTENCY, &token, &query).await;
        resp.error(400, "invalid.value");
        assert!(
            resp.field_names().contains(field),
            "{query:?} does not name {field}: {resp}"
        );
    }
    let proof = server
        .get_query(CONSISTENCY, &token, &[("from", "3"), ("to", "3")])
        .await
        .ok(200);
    assert_eq!(proof["proof"], json!([]));
    assert_eq!(proof["fromRoot"], proof["toRoot"]);
    let proof = server
        .get_query(CONSISTENCY, &token, &[("from", &size_text)])
        .await
        .ok(200);
    assert_eq!(proof["toRoot"], verify(&server, &token).await["rootHash"]);
}

/// What one of the concurrent tasks did.
enum Done {
    Prompt(String),
    Version(String),
    Client(String),
    Entry(Value),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn thirty_two_concurrent_appends_form_one_gap_free_chain() {
    let server = Arc::new(Server::start());
    let admin = server.admin_token().await;
    let (shared, _) = server.create_prompt(&admin, &prompt_body("shared")).await;
    let shared_id = str_field(&shared, "id");
    let start = log_size(&server, &admin).await;

    let mut tasks = Vec::new();
    for i in 0..32u32 {
        let server = server.clone();
        let token = admin.clone();
        let shared_id = shared_id.clone();
        tasks.push(tokio::spawn(async move {
            match i % 4 {
                0 => {
                    let (created, _) = server
                        .create_prompt(&token, &prompt_body(&format!("concurrent-{i}")))
                        .await;
                    Done::Prompt(str_field(&created, "id"))
                }
                1 => {
                    let version = format!("2.{i}.0");
                    server
                        .put(
                            &prompt_path(&shared_id),
                            &token,
                            &json!({"systemPrompt": format!("Version {i}."), "version": version}),
                            None,
                        )
                        .await
                        .ok(200);
                    Done::Version(version)
                }
                2 => {
                    let (id, _) = server
                        .create_client(&token, &format!("client-{i}"), &["ai:prompt:read"])
                        .await;
                    Done::Client(id)
                }
                _ => Done::Entry(
                    post_entry(
                        &server,
                        &token,
                        &json!({"promptId": shared_id, "action": "CONCURRENT", "details": {"i": i}}),
                    )
                    .await,
                ),
            }
        }));
    }
    let mut done = Vec::new();
    for task in tasks {
        done.push(task.await.unwrap());
    }

    let report = verify(&server, &admin).await;
    assert_eq!(report["valid"], true, "{report}");
    assert_eq!(report["firstInvalidSequence"], Value::Null);
    let entries = all_entries(&server, &admin).await;
    assert_eq!(entries.len() as u64, start + 32, "one entry per change");
    assert_eq!(report["entries"], json!(entries.len()));
    assert_eq!(report["headSequence"], json!(entries.len()));
    // Gap-free 1..=N, each linked to the one before, each hash recomputed by hand.
    assert_chain(&entries);
    // The library's replay agrees with the server.
    let replayed = replay(&entries);
    assert!(replayed.is_valid(), "{replayed:?}");
    assert_eq!(replayed.entries, entries.len() as u64);
    assert_eq!(
        report["headHash"],
        json!(merkle::to_hex(&replayed.head_hash))
    );
    assert_eq!(
        report["rootHash"],
        json!(merkle::to_hex(&replayed.root_hash))
    );

    // Every change has exactly its entry.
    let new = &entries[start as usize..];
    let ids: BTreeSet<u64> = new.iter().map(seq).collect();
    assert_eq!(ids.len(), 32);
    for d in &done {
        let matching: Vec<&Value> = match d {
            Done::Prompt(id) => new
                .iter()
                .filter(|e| e["action"] == "PROMPT_CREATED" && e["promptId"] == json!(id))
                .collect(),
            Done::Version(v) => new
                .iter()
                .filter(|e| e["action"] == "VERSION_CREATED" && e["details"]["version"] == json!(v))
                .collect(),
            Done::Client(id) => new
                .iter()
                .filter(|e| {
                    e["action"] == "CLIENT_CREATED"
                        && e["details"]["after"]["clientId"] == json!(id)
                })
                .collect(),
            Done::Entry(stored) => {
                // What the POST answered is what is stored at that sequence.
                assert_eq!(&entries[seq(stored) as usize - 1], stored);
                vec![stored]
            }
        };
        assert_eq!(matching.len(), 1, "{matching:#?}");
    }
    assert_eq!(find_action(new, "PROMPT_CREATED").len(), 8);
    assert_eq!(find_action(new, "VERSION_CREATED").len(), 8);
    assert_eq!(find_action(new, "CLIENT_CREATED").len(), 8);
    assert_eq!(find_action(new, "CONCURRENT").len(), 8);

    // And a head signed now covers them all.
    let cp = checkpoint(&server, &admin).await;
    assert_eq!(cp["treeSize"], json!(entries.len()));
    assert_eq!(cp["rootHash"], report["rootHash"]);
}

#[tokio::test]
async fn hash_system_prompts_keeps_the_text_out_of_the_log_and_the_change_is_recorded() {
    let secret_text = "You are the confidential triage agent for case 7731-Q.";
    let second_text = "You are the confidential triage agent, version two.";
    // First without the option: the text is in the log.
    let mut server = Server::start();
    let token = server.admin_token().await;
    let mut body = prompt_body("plain");
    body["systemPrompt"] = json!(secret_text);
    server.create_prompt(&token, &body).await;
    let entries = all_entries(&server, &token).await;
    let created = find_action(&entries, "PROMPT_CREATED")[0];
    assert_eq!(
        created["details"]["after"]["version"]["systemPrompt"],
        secret_text
    );
    let configs_before = find_action(&entries, "CONFIG_RELOADED").len();
    assert_eq!(configs_before, 1);

    // Restart with the same (empty) configuration: no new CONFIG_RELOADED.
    server = server.restart();
    let token = server.admin_token().await;
    let entries = all_entries(&server, &token).await;
    assert_eq!(find_action(&entries, "CONFIG_RELOADED").len(), 1);

    // Restart with hash_system_prompts = true: the change is recorded, by the system.
    let status = server.signal_and_wait("TERM");
    assert!(status.success(), "{status:?}");
    let options = Options {
        config: Some("[audit]\nhash_system_prompts = true\n".to_owned()),
        admin: server.options.admin.clone(),
        ..Options::default()
    };
    let server = Server::start_in(server.dir.clone(), options);
    let token = server.admin_token().await;
    let entries = all_entries(&server, &token).await;
    let configs = find_action(&entries, "CONFIG_RELOADED");
    assert_eq!(configs.len(), 2, "{entries:#?}");
    let reloaded = configs[1];
    assert_eq!(reloaded["actor"], "system");
    assert_eq!(seq(reloaded), entries.len() as u64, "the last entry");
    assert_eq!(
        reloaded["details"]["after"]["audit"]["hash_system_prompts"], true,
        "{reloaded}"
    );
    assert_change_details(&reloaded["details"]);
    assert!(
        reloaded["details"]["diff"]
            .as_array()
            .unwrap()
            .iter()
            .any(|op| op["path"].as_str().unwrap().starts_with("/audit")),
        "{reloaded}"
    );

    let start = entries.len();
    let mut body = prompt_body("hashed");
    body["systemPrompt"] = json!(secret_text);
    let (created, _) = server.create_prompt(&token, &body).await;
    let id = str_field(&created, "id");
    server
        .put(
            &prompt_path(&id),
            &token,
            &json!({"systemPrompt": second_text, "version": "1.1.0"}),
            None,
        )
        .await
        .ok(200);
    let entries = all_entries(&server, &token).await;
    assert_chain(&entries);
    let new = &entries[start..];
    assert_eq!(new.len(), 2, "{new:#?}");
    let snapshot = &new[0]["details"]["after"]["version"];
    assert_eq!(new[0]["action"], "PROMPT_CREATED");
    assert!(snapshot.get("systemPrompt").is_none(), "{snapshot}");
    assert_eq!(
        snapshot["systemPromptSha256"],
        json!(sha256_hex(secret_text.as_bytes()))
    );
    assert_eq!(snapshot["version"], "1.0.0");
    let version = &new[1];
    assert_eq!(version["action"], "VERSION_CREATED");
    assert!(version["details"]["after"].get("systemPrompt").is_none());
    assert!(version["details"]["before"].get("systemPrompt").is_none());
    assert_eq!(
        version["details"]["after"]["systemPromptSha256"],
        json!(sha256_hex(second_text.as_bytes()))
    );
    assert_eq!(
        version["details"]["before"]["systemPromptSha256"],
        json!(sha256_hex(secret_text.as_bytes()))
    );
    for entry in new {
        let text = entry.to_string();
        assert!(!text.contains("case 7731-Q"), "{text}");
        assert!(!text.contains("version two"), "{text}");
    }
    // Nor in the stored bodies of these entries.
    let mut db = open_db(&server).await;
    let leaked = db
        .fetch(
            "SELECT COUNT(*) FROM audit_entries WHERE sequence > ? \
             AND (body LIKE '%7731-Q%' OR body LIKE '%version two%')",
            &[Arg::Int(start as i64)],
        )
        .await;
    assert_eq!(leaked, [[json!(0)]]);
    db.close().await;
    // The prompt itself still serves its text.
    let got = server.get(&prompt_path(&id), Some(&token)).await.ok(200);
    assert_eq!(got["systemPrompt"], secret_text);

    let report = verify(&server, &token).await;
    assert_eq!(report["valid"], true, "{report}");
}

#[tokio::test]
async fn a_change_that_changes_nothing_writes_nothing_and_one_put_may_write_two_entries() {
    let server = Server::start();
    let token = server.admin_token().await;
    let (created, _) = server.create_prompt(&token, &prompt_body("noop")).await;
    let id = str_field(&created, "id");
    let path = prompt_path(&id);
    let (client_id, _) = server
        .create_client(&token, "noop-client", &["ai:prompt:read"])
        .await;
    let start = log_size(&server, &token).await;

    // A new version and a new split in one request: two entries, one after the other.
    let both = json!({"systemPrompt": "Two.", "version": "1.1.0", "trafficDistribution": {
        "versions": [{"version": "1.0.0", "weight": 0.5}, {"version": "1.1.0", "weight": 0.5}]}});
    let updated = server.put(&path, &token, &both, None).await.ok(200);
    let entries = all_entries(&server, &token).await;
    let new: Vec<&str> = entries[start as usize..]
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(new, ["VERSION_CREATED", "TRAFFIC_UPDATED"]);
    let traffic = entries.last().unwrap();
    assert_same_traffic(
        &traffic["details"]["after"],
        &updated["trafficDistribution"],
    );
    assert_same_traffic(
        &traffic["details"]["before"],
        &created["trafficDistribution"],
    );
    let size = entries.len();

    // Re-sending the same request, an empty update, archiving twice, disabling twice: the
    // second of each changes nothing and writes nothing.
    server.put(&path, &token, &both, None).await.ok(200);
    server.put(&path, &token, &json!({}), None).await.ok(200);
    server.delete(&path, Some(&token)).await.ok(200);
    server.delete(&path, Some(&token)).await.ok(200);
    let disable = format!("{CLIENTS}/{client_id}/disable");
    server
        .post(&disable, Some(&token), &json!({}))
        .await
        .ok(200);
    server
        .post(&disable, Some(&token), &json!({}))
        .await
        .ok(200);
    let entries = all_entries(&server, &token).await;
    let new: Vec<&str> = entries[size..]
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(new, ["PROMPT_ARCHIVED", "CLIENT_DISABLED"]);
    assert_chain(&entries);
}

#[tokio::test]
async fn a_head_is_signed_in_the_background_within_the_configured_interval() {
    let server = Server::start_with(Options::with_config(
        "[audit]\ncheckpoint_interval_seconds = 1\n",
    ));
    let token = server.admin_token().await;
    for i in 0..3 {
        post_entry(
            &server,
            &token,
            &json!({"action": "TICK", "details": {"i": i}}),
        )
        .await;
    }
    let size = log_size(&server, &token).await;
    // Read the stored heads directly: asking for the checkpoint would sign one on demand.
    let mut db = open_db(&server).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let signed = loop {
        let row = db
            .fetch(
                "SELECT tree_size, key_id, root_hash, signed_at, signature FROM audit_tree_heads \
                 WHERE tree_size = ?",
                &[Arg::Int(size as i64)],
            )
            .await
            .into_iter()
            .next();
        if row.is_some() || std::time::Instant::now() >= deadline {
            break row;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    db.close().await;
    let signed =
        signed.unwrap_or_else(|| panic!("no head was signed for {size} entries in the background"));
    let [tree_size, key_id, root_hash, signed_at, signature] = &signed[..] else {
        panic!("not five columns: {signed:?}")
    };
    let stored = json!({"treeSize": tree_size, "rootHash": root_hash, "timestamp": signed_at,
        "keyId": key_id, "signature": signature});
    let key = server.get(PUBLIC_KEY, Some(&token)).await.ok(200);
    let public = head::parse_public_key(&str_field(&key, "publicKey")).unwrap();
    assert_eq!(head::verify(&public, &signed_head(&stored)), Ok(()));
    assert_eq!(
        stored["rootHash"],
        verify(&server, &token).await["rootHash"]
    );
    // The checkpoint serves that head rather than signing another.
    assert_eq!(checkpoint(&server, &token).await, stored);
}

#[tokio::test]
async fn the_signing_key_is_generated_private_beside_the_database_and_kept_across_restarts() {
    let server = Server::start();
    let token = server.admin_token().await;
    // On PostgreSQL there is no database file to put it beside: the harness configures this
    // same path as `[audit] signing_key_file`, which is generated the same way when missing.
    let key_path = server.dir.path().join("promptgate.db.audit-key.pem");
    let text = std::fs::read_to_string(&key_path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    let served = server.get(PUBLIC_KEY, Some(&token)).await.ok(200);
    let from_file = head::parse_signing_key(&text).unwrap().verifying_key();
    assert_eq!(
        served["publicKey"],
        json!(head::public_key_base64(&from_file))
    );
    post_entry(&server, &token, &json!({"action": "BEFORE_RESTART"})).await;
    let old = checkpoint(&server, &token).await;

    let server = server.restart();
    let token = server.admin_token().await;
    assert_eq!(server.get(PUBLIC_KEY, Some(&token)).await.ok(200), served);
    let public = head::parse_public_key(&str_field(&served, "publicKey")).unwrap();
    assert_eq!(head::verify(&public, &signed_head(&old)), Ok(()));
    let report = verify(&server, &token).await;
    assert_eq!(report["valid"], true, "{report}");
    assert!(report["signedHeadsChecked"].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn a_configured_signing_key_signs_the_heads() {
    use base64::Engine as _;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let key_path = dir.path().join("given.key");
    let seed = base64::engine::general_purpose::STANDARD.encode([42u8; 32]);
    std::fs::write(&key_path, &seed).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let config = format!("[audit]\nsigning_key_file = \"{}\"\n", key_path.display());
    let server = Server::start_in(dir.clone(), Options::with_config(&config));
    let token = server.admin_token().await;
    let expected = head::parse_signing_key(&seed).unwrap().verifying_key();
    let served = server.get(PUBLIC_KEY, Some(&token)).await.ok(200);
    assert_eq!(
        served["publicKey"],
        json!(head::public_key_base64(&expected))
    );
    assert_eq!(served["keyId"], json!(head::key_id(&expected)));
    let cp = checkpoint(&server, &token).await;
    assert_eq!(head::verify(&expected, &signed_head(&cp)), Ok(()));
    assert!(
        !dir.path().join("promptgate.db.audit-key.pem").exists(),
        "a key was generated although one is configured"
    );
}

#[tokio::test]
async fn reserved_audit_actions_cannot_be_imitated() {
    let server = Server::start();
    let token = server.scoped_token("ai:gateway:write ai:audit:read").await;
    let size = log_size(&server, &token).await;
    let charset = "A-Z, 0-9, _";
    let mut cases: Vec<(String, &str)> = vec![
        // A zero-width space after, and before, a reserved name.
        ("CLIENT_DISABLED\u{200b}".into(), charset),
        ("\u{200b}CLIENT_DISABLED".into(), charset),
        // A Cyrillic А in place of the Latin A; full-width letters.
        ("CLIENT_DIS\u{0410}BLED".into(), charset),
        ("\u{FF23}\u{FF2C}IENT_DISABLED".into(), charset),
        // Letter case, spaces, a leading digit or underscore, a hyphen, a newline.
        ("client_disabled".into(), charset),
        ("Client_Disabled".into(), charset),
        (" VERSION_CREATED ".into(), charset),
        ("1REVIEW".into(), charset),
        ("_REVIEW".into(), charset),
        ("REVIEW-DONE".into(), charset),
        ("REVIEW\n".into(), charset),
        // Too long.
        ("A".repeat(101), "the limit is 100"),
    ];
    for reserved in promptgate_audit::action::RESERVED {
        cases.push((reserved.to_owned(), "reserved"));
    }
    for (action, rule) in &cases {
        let resp = server
            .post(AUDIT, Some(&token), &json!({"action": action}))
            .await;
        let body = resp.error(400, "invalid.value");
        assert_eq!(
            resp.field_names(),
            BTreeSet::from(["action".to_owned()]),
            "{action:?}: {resp}"
        );
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains(rule), "{action:?}: {resp}");
        assert!(message.starts_with("action"), "{action:?}: {resp}");
    }
    assert_eq!(
        log_size(&server, &token).await,
        size,
        "nothing was appended"
    );

    // What the rule allows is appended as sent.
    for action in ["A", "REVIEW_2", "X9_", &"Z".repeat(100)] {
        let entry = post_entry(&server, &token, &json!({"action": action})).await;
        assert_eq!(entry["action"], json!(action));
    }
    let report = verify(&server, &token).await;
    assert_eq!(report["valid"], true, "{report}");
}
