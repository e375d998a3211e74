//! Tampering with the audit log's database behind a real gateway's back (the issue's "must
//! show"): the triggers refuse edits; with a trigger dropped, an edited, deleted or inserted row
//! is named by `verify`; a log rewritten consistently (every hash recomputed) no longer matches a
//! signed head an auditor kept; and an audit write that fails fails the change with it.
//!
//! On both stores: the statements are the same SQL (placeholders translated by [`RawDb`]);
//! what differs is named per store (the triggers, SQLite's `INSERT OR REPLACE`).

use promptgate_audit::canonical::to_canonical_string;
use promptgate_audit::entry::chain_hash;
use promptgate_audit::head;
use promptgate_audit::merkle::{self, Hash};
use serde_json::{Value, json};

use crate::audit::*;
use crate::harness::*;

/// A gateway whose log holds a dozen entries of every kind, and the head signed over them.
struct Logged {
    server: Server,
    token: String,
    entries: Vec<Value>,
    saved: Value,
}

async fn logged_server() -> Logged {
    let server = Server::start();
    let token = server.admin_token().await;
    let (created, _) = server.create_prompt(&token, &prompt_body("tampered")).await;
    let id = str_field(&created, "id");
    server
        .put(
            &prompt_path(&id),
            &token,
            &json!({"systemPrompt": "Two.", "version": "1.1.0"}),
            None,
        )
        .await
        .ok(200);
    server
        .create_client(&token, "bystander", &["ai:prompt:read"])
        .await;
    for i in 0..7 {
        post_entry(
            &server,
            &token,
            &json!({"promptId": id, "action": "REVIEW", "details": {"i": i},
                "complianceStatus": "VALIDATED"}),
        )
        .await;
    }
    let entries = all_entries(&server, &token).await;
    assert_eq!(entries.len(), 12, "{entries:#?}");
    assert_chain(&entries);
    // The auditor keeps a signed head, checked with the public key.
    let saved = checkpoint(&server, &token).await;
    assert_eq!(saved["treeSize"], json!(entries.len()));
    let key = server.get(PUBLIC_KEY, Some(&token)).await.ok(200);
    let public = head::parse_public_key(&str_field(&key, "publicKey")).unwrap();
    assert_eq!(head::verify(&public, &signed_head(&saved)), Ok(()));
    let report = verify(&server, &token).await;
    assert_eq!(report["valid"], true, "{report}");
    Logged {
        server,
        token,
        entries,
        saved,
    }
}

/// A guard of the audit tables that an operator with full access can remove.
#[derive(Clone, Copy, Debug)]
enum Guard {
    EntriesNoUpdate,
    EntriesNoDelete,
    EntriesExtendChain,
    HeadsNoDelete,
}

/// Removes the trigger that is `guard`. On PostgreSQL one trigger refuses both UPDATE and
/// DELETE of a table, so removing either removes both.
async fn drop_trigger(db: &mut RawDb, guard: Guard) {
    let sql = match (db.kind(), guard) {
        (StoreKind::Sqlite, Guard::EntriesNoUpdate) => "DROP TRIGGER audit_entries_no_update",
        (StoreKind::Sqlite, Guard::EntriesNoDelete) => "DROP TRIGGER audit_entries_no_delete",
        (StoreKind::Sqlite, Guard::EntriesExtendChain) => "DROP TRIGGER audit_entries_extend_chain",
        (StoreKind::Sqlite, Guard::HeadsNoDelete) => "DROP TRIGGER audit_tree_heads_no_delete",
        (StoreKind::Postgres, Guard::EntriesNoUpdate | Guard::EntriesNoDelete) => {
            "DROP TRIGGER IF EXISTS audit_entries_append_only ON audit_entries"
        }
        (StoreKind::Postgres, Guard::EntriesExtendChain) => {
            "DROP TRIGGER audit_entries_extend_chain ON audit_entries"
        }
        (StoreKind::Postgres, Guard::HeadsNoDelete) => {
            "DROP TRIGGER audit_tree_heads_append_only ON audit_tree_heads"
        }
    };
    db.execute(sql, &[]).await.unwrap();
}

async fn stored_body(db: &mut RawDb, sequence: u64) -> Value {
    let rows = db
        .fetch(
            "SELECT body FROM audit_entries WHERE sequence = ?",
            &[Arg::Int(sequence as i64)],
        )
        .await;
    serde_json::from_str(rows[0][0].as_str().unwrap()).unwrap()
}

/// `verify` says invalid, naming `sequence`; the library's replay of the listing agrees.
#[track_caller]
fn assert_names(report: &Value, entries: &[Value], sequence: u64) {
    assert_eq!(report["valid"], false, "{report}");
    assert_eq!(report["firstInvalidSequence"], json!(sequence), "{report}");
    let reason = report["reason"]
        .as_str()
        .unwrap_or_else(|| panic!("no reason: {report}"));
    assert!(reason.contains(&sequence.to_string()), "{report}");
    let replayed = replay(entries);
    assert_eq!(
        replayed.first_break.as_ref().map(|b| b.sequence()),
        Some(sequence),
        "{replayed:?}"
    );
    assert_eq!(
        report["rootHash"],
        json!(merkle::to_hex(&replayed.root_hash))
    );
}

#[tokio::test]
async fn the_database_itself_refuses_updates_deletes_and_inserts_that_do_not_extend_the_chain() {
    let Logged {
        server,
        token,
        entries,
        ..
    } = logged_server().await;
    let before = server.dump().await;
    let mut db = open_db(&server).await;
    let last = entries.last().unwrap();
    let n = seq(last) as i64;

    let refused = [
        (
            "UPDATE audit_entries SET actor = 'mallory' WHERE sequence = 3",
            "append-only",
        ),
        (
            "UPDATE audit_entries SET body = replace(body, 'REVIEW', 'REVIEWED')",
            "append-only",
        ),
        (
            "DELETE FROM audit_entries WHERE sequence = 5",
            "append-only",
        ),
        ("DELETE FROM audit_entries", "append-only"),
        ("UPDATE audit_tree_heads SET root_hash = 'x'", "append-only"),
        ("DELETE FROM audit_tree_heads", "append-only"),
    ];
    let mut refused: Vec<(&str, &str)> = refused.to_vec();
    if db.kind() == StoreKind::Postgres {
        refused.extend([
            ("TRUNCATE audit_entries", "append-only"),
            ("TRUNCATE audit_tree_heads", "append-only"),
        ]);
    }
    for (sql, message) in refused {
        let err = db.execute(sql, &[]).await.expect_err(sql);
        assert!(err.contains(message), "{sql}: {err}");
    }
    // Inserts: a replacement of an existing sequence (SQLite's INSERT OR REPLACE deletes without
    // firing delete triggers; PostgreSQL's upsert), a gap, and a wrong link.
    let insert = match db.kind() {
        StoreKind::Sqlite => {
            "INSERT OR REPLACE INTO audit_entries (sequence, id, recorded_at, actor, action, \
             prompt_id, body, prev_hash, hash, leaf_hash) \
             VALUES (?, ?, 0, 'mallory', 'X', NULL, '{}', ?, ?, ?)"
        }
        StoreKind::Postgres => {
            "INSERT INTO audit_entries (sequence, id, recorded_at, actor, action, \
             prompt_id, body, prev_hash, hash, leaf_hash) \
             VALUES (?, ?, 0, 'mallory', 'X', NULL, '{}', ?, ?, ?) \
             ON CONFLICT (sequence) DO UPDATE SET body = EXCLUDED.body, actor = EXCLUDED.actor"
        }
    };
    let last_hash = str_field(last, "hash");
    for (sequence, prev) in [
        (3, str_field(&entries[1], "hash")),
        (n + 2, last_hash.clone()),
        (n + 1, ZEROS.to_owned()),
        (n + 1, str_field(&entries[0], "hash")),
    ] {
        let args = [
            Arg::Int(sequence),
            Arg::Uuid(uuid::Uuid::new_v4().to_string()),
            Arg::from(&prev),
            Arg::from(ZEROS),
            Arg::from(ZEROS),
        ];
        let err = db
            .execute(insert, &args)
            .await
            .expect_err("a forged insert");
        assert!(err.contains("extend the chain"), "{sequence}: {err}");
    }
    db.close().await;
    assert_eq!(
        server.dump().await,
        before,
        "the refused statements changed something"
    );
    let report = verify(&server, &token).await;
    assert_eq!(report["valid"], true, "{report}");
}

#[tokio::test]
async fn an_edited_row_is_named_by_verify() {
    let Logged {
        server,
        token,
        entries,
        ..
    } = logged_server().await;
    let k = 7;
    let original = &entries[k as usize - 1];
    let mut db = open_db(&server).await;
    drop_trigger(&mut db, Guard::EntriesNoUpdate).await;
    // Someone rewrites who did it, in the body and in the indexed column.
    let mut body = stored_body(&mut db, k).await;
    assert_eq!(body["actor"], json!(server.admin_id));
    body["actor"] = json!("mallory");
    db.execute(
        "UPDATE audit_entries SET body = ?, actor = 'mallory' WHERE sequence = ?",
        &[Arg::Text(to_canonical_string(&body)), Arg::Int(k as i64)],
    )
    .await
    .unwrap();

    let edited = server.get(&entry_path(k), Some(&token)).await.ok(200);
    assert_eq!(edited["actor"], "mallory");
    // The auditor's own computation catches it…
    assert_ne!(edited["hash"], json!(recompute_hash(&edited)));
    assert_eq!(original["hash"], json!(recompute_hash(original)));
    // …and so does the gateway's verify, naming that entry.
    let listed = all_entries(&server, &token).await;
    let report = verify(&server, &token).await;
    assert_names(&report, &listed, k);
    assert_eq!(report["entries"], json!(entries.len()));
    assert!(
        report["reason"].as_str().unwrap().contains("edited"),
        "{report}"
    );

    // An edit of a field the chain does not cover but the listing shows (detail of entry 9).
    let mut body = stored_body(&mut db, 9).await;
    body["details"]["i"] = json!(99);
    db.execute(
        "UPDATE audit_entries SET body = ? WHERE sequence = 9",
        &[Arg::Text(to_canonical_string(&body))],
    )
    .await
    .unwrap();
    // Still the first bad one is named.
    let report = verify(&server, &token).await;
    assert_eq!(report["firstInvalidSequence"], json!(k), "{report}");
}

#[tokio::test]
async fn a_deleted_row_is_named_by_verify() {
    let Logged {
        server,
        token,
        entries,
        ..
    } = logged_server().await;
    let k = 5;
    let mut db = open_db(&server).await;
    drop_trigger(&mut db, Guard::EntriesNoDelete).await;
    let deleted = db
        .execute(
            "DELETE FROM audit_entries WHERE sequence = ?",
            &[Arg::Int(k as i64)],
        )
        .await
        .unwrap();
    assert_eq!(deleted, 1);

    let listed = all_entries(&server, &token).await;
    assert_eq!(listed.len(), entries.len() - 1);
    let report = verify(&server, &token).await;
    assert_names(&report, &listed, k);
    assert_eq!(report["entries"], json!(entries.len() - 1));
    server
        .get(&entry_path(k), Some(&token))
        .await
        .error(404, "not.found");
}

#[tokio::test]
async fn removing_the_newest_rows_is_caught_by_the_signed_head() {
    let Logged {
        server,
        token,
        entries,
        saved,
    } = logged_server().await;
    let n = entries.len() as u64;
    let mut db = open_db(&server).await;
    drop_trigger(&mut db, Guard::EntriesNoDelete).await;
    let deleted = db
        .execute(
            "DELETE FROM audit_entries WHERE sequence > ?",
            &[Arg::Int((n - 2) as i64)],
        )
        .await
        .unwrap();
    assert_eq!(deleted, 2);
    // What is left is a valid chain by itself…
    let listed = all_entries(&server, &token).await;
    assert_eq!(listed.len() as u64, n - 2);
    assert!(replay(&listed).is_valid());
    // …but the gateway signed a head over more.
    let report = verify(&server, &token).await;
    assert_eq!(report["valid"], false, "{report}");
    assert_eq!(report["entries"], json!(n - 2));
    let reason = report["reason"].as_str().unwrap();
    assert!(
        reason.contains("removed") && reason.contains(&n.to_string()),
        "{report}"
    );

    // Growing the log back to the old size does not hide it: the root at that size differs.
    for i in 0..2 {
        post_entry(
            &server,
            &token,
            &json!({"action": "REGROWN", "details": {"i": i}}),
        )
        .await;
    }
    let listed = all_entries(&server, &token).await;
    assert_eq!(listed.len() as u64, n);
    assert!(replay(&listed).is_valid());
    let leaves: Vec<Hash> = listed.iter().map(leaf_of).collect();
    assert_ne!(
        json!(merkle::to_hex(&merkle::root(&leaves))),
        saved["rootHash"]
    );
    let report = verify(&server, &token).await;
    assert_eq!(report["valid"], false, "{report}");
    assert!(
        report["reason"].as_str().unwrap().contains("tree head"),
        "{report}"
    );
}

#[tokio::test]
async fn an_inserted_row_is_named_by_verify() {
    let Logged {
        server,
        token,
        entries,
        ..
    } = logged_server().await;
    let n = entries.len() as u64;
    let mut db = open_db(&server).await;
    drop_trigger(&mut db, Guard::EntriesExtendChain).await;
    // A forged entry appended at N+1, well-formed and self-consistent, but not linked to N.
    let mut forged = entries.last().unwrap().clone();
    let forged_id = uuid::Uuid::new_v4().to_string();
    forged["id"] = json!(forged_id);
    forged["sequence"] = json!(n + 1);
    forged["action"] = json!("APPROVE");
    forged["prevHash"] = json!(str_field(&entries[n as usize - 2], "hash"));
    let body = canonical_body(&forged);
    let prev: Hash = hash_field(&forged, "prevHash");
    let hash = chain_hash(&prev, body.as_bytes());
    forged["hash"] = json!(merkle::to_hex(&hash));
    let prompt_id = forged["promptId"]
        .as_str()
        .map_or(Arg::Null, |id| Arg::Uuid(id.to_owned()));
    db.execute(
        "INSERT INTO audit_entries (sequence, id, recorded_at, actor, action, prompt_id, body, \
         prev_hash, hash, leaf_hash) VALUES (?, ?, 0, ?, 'APPROVE', ?, ?, ?, ?, ?)",
        &[
            Arg::Int((n + 1) as i64),
            Arg::Uuid(forged_id.clone()),
            Arg::Text(str_field(&forged, "actor")),
            prompt_id,
            Arg::from(&body),
            Arg::Text(str_field(&forged, "prevHash")),
            Arg::Text(merkle::to_hex(&hash)),
            Arg::Text(merkle::to_hex(&merkle::leaf_hash(body.as_bytes()))),
        ],
    )
    .await
    .unwrap();

    let listed = all_entries(&server, &token).await;
    assert_eq!(listed.len() as u64, n + 1);
    assert_eq!(listed.last().unwrap(), &forged);
    // The forger's own hash is right; the link is not.
    assert_eq!(forged["hash"], json!(recompute_hash(&forged)));
    let report = verify(&server, &token).await;
    assert_names(&report, &listed, n + 1);
    assert!(
        report["reason"].as_str().unwrap().contains("prevHash"),
        "{report}"
    );
}

#[tokio::test]
async fn a_row_slipped_into_the_middle_is_named_by_verify() {
    let Logged {
        server,
        token,
        entries,
        ..
    } = logged_server().await;
    let k = 6u64;
    let mut db = open_db(&server).await;
    drop_trigger(&mut db, Guard::EntriesExtendChain).await;
    drop_trigger(&mut db, Guard::EntriesNoUpdate).await;
    // Make room: every row from k moves up one (highest first, for the primary key).
    let n = entries.len() as i64;
    for sequence in (k as i64..=n).rev() {
        db.execute(
            "UPDATE audit_entries SET sequence = sequence + 1 WHERE sequence = ?",
            &[Arg::Int(sequence)],
        )
        .await
        .unwrap();
    }
    // A forged entry at k whose body is not the hash the next one links to.
    let mut forged = entries[k as usize - 1].clone();
    forged["id"] = json!(uuid::Uuid::new_v4().to_string());
    forged["details"] = json!({"inserted": true});
    let body = canonical_body(&forged);
    db.execute(
        "INSERT INTO audit_entries (sequence, id, recorded_at, actor, action, prompt_id, body, \
         prev_hash, hash, leaf_hash) VALUES (?, ?, 0, 'x', 'REVIEW', NULL, ?, ?, ?, ?)",
        &[
            Arg::Int(k as i64),
            Arg::Uuid(str_field(&forged, "id")),
            Arg::from(&body),
            Arg::Text(str_field(&forged, "prevHash")),
            Arg::Text(str_field(&forged, "hash")),
            Arg::Text(merkle::to_hex(&merkle::leaf_hash(body.as_bytes()))),
        ],
    )
    .await
    .unwrap();

    let listed = all_entries(&server, &token).await;
    assert_eq!(listed.len(), entries.len() + 1);
    let report = verify(&server, &token).await;
    assert_names(&report, &listed, k);
}

/// Rewrites the log from `k` on, consistently: entry `k` edited by `edit`, then every body
/// re-linked and every hash and leaf recomputed with `promptgate_audit`, so the chain verifies.
async fn rewrite_from(db: &mut RawDb, k: u64, edit: impl Fn(&mut Value)) {
    drop_trigger(db, Guard::EntriesNoUpdate).await;
    let rows = db
        .fetch(
            "SELECT sequence, body, prev_hash FROM audit_entries ORDER BY sequence",
            &[],
        )
        .await;
    let mut prev: Option<Hash> = None;
    for row in rows {
        let sequence = row[0].as_i64().unwrap();
        if (sequence as u64) < k {
            continue;
        }
        let mut body: Value = serde_json::from_str(row[1].as_str().unwrap()).unwrap();
        if sequence as u64 == k {
            edit(&mut body);
            prev = Some(merkle::from_hex(row[2].as_str().unwrap()).unwrap());
        }
        let link = prev.unwrap();
        body["prevHash"] = json!(merkle::to_hex(&link));
        let text = to_canonical_string(&body);
        let hash = chain_hash(&link, text.as_bytes());
        db.execute(
            "UPDATE audit_entries SET body = ?, prev_hash = ?, hash = ?, leaf_hash = ? \
             WHERE sequence = ?",
            &[
                Arg::from(&text),
                Arg::Text(merkle::to_hex(&link)),
                Arg::Text(merkle::to_hex(&hash)),
                Arg::Text(merkle::to_hex(&merkle::leaf_hash(text.as_bytes()))),
                Arg::Int(sequence),
            ],
        )
        .await
        .unwrap();
        prev = Some(hash);
    }
}

#[tokio::test]
async fn a_consistently_rewritten_log_no_longer_matches_an_old_signed_head() {
    let Logged {
        mut server,
        token,
        entries,
        saved,
    } = logged_server().await;
    let saved_head = signed_head(&saved);
    let n = saved_head.head.tree_size;
    let key = server.get(PUBLIC_KEY, Some(&token)).await.ok(200);
    let public = head::parse_public_key(&str_field(&key, "publicKey")).unwrap();

    // The operator stops the gateway and rewrites history from entry 4 on.
    let status = server.signal_and_wait("TERM");
    assert!(status.success(), "{status:?}");
    let k = 4u64;
    {
        let mut db = open_db(&server).await;
        rewrite_from(&mut db, k, |body| {
            body["complianceStatus"] = json!("REJECTED");
            body["details"] = json!({"rewritten": true});
        })
        .await;
    }
    let options = Options {
        admin: server.options.admin.clone(),
        ..server.options.clone()
    };
    let server = Server::start_in(server.dir.clone(), options);
    let token = server.admin_token().await;

    let listed = all_entries(&server, &token).await;
    assert_eq!(listed.len() as u64, n, "nothing appended on restart");
    assert_eq!(
        listed[k as usize - 1]["details"],
        json!({"rewritten": true})
    );
    assert_ne!(listed[k as usize - 1], entries[k as usize - 1]);
    // The chain alone is fooled: every link and hash recomputes.
    assert_chain(&listed);
    assert!(replay(&listed).is_valid());

    // The gateway kept its signed heads, and the rewritten log no longer matches them.
    let report = verify(&server, &token).await;
    assert_eq!(report["valid"], false, "{report}");
    assert_eq!(report["firstInvalidSequence"], Value::Null, "{report}");
    let reason = report["reason"].as_str().unwrap();
    assert!(reason.contains("tree head"), "{report}");
    assert_ne!(report["rootHash"], saved["rootHash"]);

    // The auditor's saved head is still a genuine signature of the gateway's key…
    assert_eq!(head::verify(&public, &saved_head), Ok(()));
    // …over a root the log no longer has.
    let leaves: Vec<Hash> = listed.iter().map(leaf_of).collect();
    assert_ne!(merkle::root(&leaves), saved_head.head.root_hash);
    let n_text = n.to_string();
    let proof = server
        .get_query(CONSISTENCY, &token, &[("from", &n_text), ("to", &n_text)])
        .await
        .ok(200);
    assert_ne!(proof["fromRoot"], saved["rootHash"], "{proof}");
    assert_eq!(proof["toRoot"], report["rootHash"]);
    // An inclusion proof of the rewritten entry does not lead to the saved root.
    let resp = server
        .get_query(&proof_path(k), &token, &[("treeSize", &n_text)])
        .await;
    let inclusion = resp.ok(200);
    let path: Vec<Hash> = inclusion["auditPath"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| merkle::from_hex(h.as_str().unwrap()).unwrap())
        .collect();
    let leaf = leaf_of(&listed[k as usize - 1]);
    assert_eq!(
        inclusion["leafHash"],
        json!(merkle::to_hex(&leaf)),
        "{resp}"
    );
    assert!(merkle::verify_inclusion(&leaf, k - 1, n, &path, &saved_head.head.root_hash).is_err());

    // The log grows; the new head cannot be proven consistent with the saved one.
    post_entry(&server, &token, &json!({"action": "AFTER"})).await;
    let new = checkpoint(&server, &token).await;
    let new_head = signed_head(&new);
    assert_eq!(head::verify(&public, &new_head), Ok(()));
    let proof = server
        .get_query(CONSISTENCY, &token, &[("from", &n_text)])
        .await
        .ok(200);
    let hashes: Vec<Hash> = proof["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| merkle::from_hex(h.as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(proof["toRoot"], new["rootHash"]);
    assert!(
        merkle::verify_consistency(
            n,
            new_head.head.tree_size,
            &saved_head.head.root_hash,
            &new_head.head.root_hash,
            &hashes
        )
        .is_err(),
        "the rewritten log proved consistent with the old head"
    );
    // (With the log's own old root, the same proof does verify: it is the saved head that
    // the log no longer matches.)
    assert_eq!(
        merkle::verify_consistency(
            n,
            new_head.head.tree_size,
            &hash_field(&proof, "fromRoot"),
            &new_head.head.root_hash,
            &hashes
        ),
        Ok(())
    );
}

#[tokio::test]
async fn an_operator_who_also_removes_the_stored_heads_is_still_caught_by_a_kept_head() {
    let Logged {
        mut server, saved, ..
    } = logged_server().await;
    let saved_head = signed_head(&saved);
    let n = saved_head.head.tree_size;
    let status = server.signal_and_wait("TERM");
    assert!(status.success(), "{status:?}");
    {
        let mut db = open_db(&server).await;
        // Entry 5 is a client's review (editing the recorded configuration, entry 2, would make
        // the gateway record its configuration again on start).
        rewrite_from(&mut db, 5, |body| {
            body["details"] = json!({"edited": true});
        })
        .await;
        drop_trigger(&mut db, Guard::HeadsNoDelete).await;
        let removed = db
            .execute("DELETE FROM audit_tree_heads", &[])
            .await
            .unwrap();
        assert!(removed >= 1, "no stored head to remove");
        db.close().await;
    }
    let options = Options {
        admin: server.options.admin.clone(),
        ..server.options.clone()
    };
    let server = Server::start_in(server.dir.clone(), options);
    let token = server.admin_token().await;
    // The gateway has nothing left to contradict the rewrite…
    let report = verify(&server, &token).await;
    assert_eq!(report["valid"], true, "{report}");
    // …and even signs a fresh head over the rewritten log, for the same size.
    let fresh = checkpoint(&server, &token).await;
    assert_eq!(fresh["treeSize"], json!(n));
    assert_eq!(fresh["rootHash"], report["rootHash"]);
    // Two heads signed by the same key for the same size with different roots: the auditor's
    // kept head proves the rewrite.
    let key = server.get(PUBLIC_KEY, Some(&token)).await.ok(200);
    let public = head::parse_public_key(&str_field(&key, "publicKey")).unwrap();
    assert_eq!(head::verify(&public, &saved_head), Ok(()));
    assert_eq!(head::verify(&public, &signed_head(&fresh)), Ok(()));
    assert_ne!(fresh["rootHash"], saved["rootHash"]);
    let n_text = n.to_string();
    let proof = server
        .get_query(CONSISTENCY, &token, &[("from", &n_text)])
        .await
        .ok(200);
    assert_ne!(proof["fromRoot"], saved["rootHash"]);
}

#[tokio::test]
async fn an_audit_write_failure_fails_the_change_end_to_end() {
    let server = Server::start();
    let token = server.admin_token().await;
    let (created, _) = server.create_prompt(&token, &prompt_body("steady")).await;
    let id = str_field(&created, "id");
    server
        .put(
            &prompt_path(&id),
            &token,
            &json!({"systemPrompt": "Two.", "version": "1.1.0"}),
            None,
        )
        .await
        .ok(200);
    let (client_id, client_secret) = server
        .create_client(&token, "to-disable", &["ai:prompt:read"])
        .await;
    let reader = server.scoped_token("ai:prompt:read").await;
    // Sign a head now, so that the background signer has nothing to add while we compare.
    checkpoint(&server, &token).await;
    let entries_before = all_entries(&server, &token).await;
    let before = server.dump().await;

    let mut db = open_db(&server).await;
    let (break_inserts, repair) = match db.kind() {
        StoreKind::Sqlite => (
            vec![
                "CREATE TRIGGER audit_broken BEFORE INSERT ON audit_entries \
                 BEGIN SELECT RAISE(ABORT, 'x'); END",
            ],
            vec!["DROP TRIGGER audit_broken"],
        ),
        StoreKind::Postgres => (
            vec![
                "CREATE FUNCTION audit_broken() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'x'; END $$",
                "CREATE TRIGGER audit_broken BEFORE INSERT ON audit_entries \
                 FOR EACH ROW EXECUTE FUNCTION audit_broken()",
            ],
            vec![
                "DROP TRIGGER audit_broken ON audit_entries",
                "DROP FUNCTION audit_broken()",
            ],
        ),
    };
    for sql in break_inserts {
        db.execute(sql, &[]).await.unwrap();
    }

    // Every kind of change answers 500 and leaves nothing behind.
    server
        .post(PROMPTS, Some(&token), &prompt_body("never-created"))
        .await
        .error(500, "internal.server.error");
    server
        .put(
            &prompt_path(&id),
            &token,
            &json!({"systemPrompt": "Three.", "version": "1.2.0"}),
            None,
        )
        .await
        .error(500, "internal.server.error");
    let split = json!({"trafficDistribution": {"versions": [
        {"version": "1.0.0", "weight": 0.5}, {"version": "1.1.0", "weight": 0.5}]}});
    server
        .put(&prompt_path(&id), &token, &split, None)
        .await
        .error(500, "internal.server.error");
    server
        .delete(&prompt_path(&id), Some(&token))
        .await
        .error(500, "internal.server.error");
    server
        .post(
            CLIENTS,
            Some(&token),
            &json!({"name": "never-client", "scopes": ["ai:prompt:read"]}),
        )
        .await
        .error(500, "internal.server.error");
    server
        .post(
            &format!("{CLIENTS}/{client_id}/disable"),
            Some(&token),
            &json!({}),
        )
        .await
        .error(500, "internal.server.error");
    server
        .post(AUDIT, Some(&token), &json!({"action": "NOTE"}))
        .await
        .error(500, "internal.server.error");

    let after = server.dump().await;
    assert!(
        after == before,
        "a failed change left rows behind:\n{}",
        diff_lines(&before, &after)
    );

    // Through the API: no such prompt, no such version, the traffic and status unchanged, the
    // client still enabled, no new entry.
    let list = server.get(PROMPTS, Some(&reader)).await.ok(200);
    let names: Vec<&str> = list["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(!names.contains(&"never-created"), "{list}");
    server
        .get(&version_path(&id, "1.2.0"), Some(&reader))
        .await
        .error(404, "not.found");
    let prompt = server.get(&prompt_path(&id), Some(&reader)).await.ok(200);
    assert_eq!(prompt["status"], "ACTIVE", "{prompt}");
    assert_eq!(prompt["trafficDistribution"]["defaultVersion"], "1.0.0");
    let clients = server.get(CLIENTS, Some(&token)).await.ok(200);
    assert!(!clients.to_string().contains("never-client"), "{clients}");
    server.token(&client_id, &client_secret, None).await;
    assert_eq!(all_entries(&server, &token).await, entries_before);

    // Once the database accepts entries again, the same change succeeds and the chain goes on.
    for sql in repair {
        db.execute(sql, &[]).await.unwrap();
    }
    db.close().await;
    server
        .create_prompt(&token, &prompt_body("never-created"))
        .await;
    let entries = all_entries(&server, &token).await;
    assert_eq!(entries.len(), entries_before.len() + 1);
    assert_chain(&entries);
    let report = verify(&server, &token).await;
    assert_eq!(report["valid"], true, "{report}");
}

/// `verify` (the gateway's, and the CLI's on the database) names `sequence` for a filter column
/// that disagrees with its entry, saying which column.
async fn assert_column_named(server: &Server, token: &str, sequence: u64, column: &str) {
    let report = verify(server, token).await;
    assert_eq!(report["valid"], false, "{report}");
    assert_eq!(report["firstInvalidSequence"], json!(sequence), "{report}");
    let reason = report["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&format!("entry {sequence}:")) && reason.contains(column),
        "{report}"
    );
    let output = server.cli(&["audit", "verify", "--json"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let cli: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)));
    assert_eq!(cli["firstInvalidSequence"], json!(sequence), "{cli}");
    assert_eq!(cli["reason"], report["reason"], "{cli}");
}

#[tokio::test]
async fn verify_ignores_the_filter_columns_no_more() {
    let Logged {
        server,
        token,
        entries,
        ..
    } = logged_server().await;
    let review = entries
        .iter()
        .filter(|e| e["action"] == "REVIEW")
        .nth(2)
        .unwrap()
        .clone();
    let k = seq(&review);
    let prompt_id = str_field(&review, "promptId");
    let mut db = open_db(&server).await;
    drop_trigger(&mut db, Guard::EntriesNoUpdate).await;
    let key = Arg::Int(k as i64);

    // The action column says PROMPT_ARCHIVED: a filtered view shows a review as an archival,
    // while every hash still verifies.
    db.execute(
        "UPDATE audit_entries SET action = 'PROMPT_ARCHIVED' WHERE sequence = ?",
        std::slice::from_ref(&key),
    )
    .await
    .unwrap();
    let archived = list_all(&server, &token, &[("action", "PROMPT_ARCHIVED")], 50).await;
    assert!(
        archived
            .iter()
            .any(|e| seq(e) == k && e["action"] == "REVIEW"),
        "the filtered view lies: {archived:#?}"
    );
    assert_eq!(
        replay(&all_entries(&server, &token).await).first_break,
        None
    );
    assert_column_named(&server, &token, k, "action").await;
    db.execute(
        "UPDATE audit_entries SET action = 'REVIEW' WHERE sequence = ?",
        std::slice::from_ref(&key),
    )
    .await
    .unwrap();
    assert_eq!(verify(&server, &token).await["valid"], true);

    // The actor column names the gateway itself.
    db.execute(
        "UPDATE audit_entries SET actor = 'system' WHERE sequence = ?",
        std::slice::from_ref(&key),
    )
    .await
    .unwrap();
    let by_system = list_all(&server, &token, &[("actor", "system")], 50).await;
    assert!(by_system.iter().any(|e| seq(e) == k), "{by_system:#?}");
    assert_column_named(&server, &token, k, "actor").await;
    db.execute(
        "UPDATE audit_entries SET actor = ? WHERE sequence = ?",
        &[Arg::Text(server.admin_id.clone()), key.clone()],
    )
    .await
    .unwrap();

    // The prompt id column emptied: the entry drops out of its prompt's history.
    db.execute(
        "UPDATE audit_entries SET prompt_id = NULL WHERE sequence = ?",
        std::slice::from_ref(&key),
    )
    .await
    .unwrap();
    let history = list_all(&server, &token, &[("promptId", &prompt_id)], 50).await;
    assert!(history.iter().all(|e| seq(e) != k), "{history:#?}");
    assert_column_named(&server, &token, k, "prompt_id").await;
    db.execute(
        "UPDATE audit_entries SET prompt_id = ? WHERE sequence = ?",
        &[Arg::Uuid(prompt_id.clone()), key.clone()],
    )
    .await
    .unwrap();

    // The recording time moved a day back: a time-range filter no longer finds it.
    db.execute(
        "UPDATE audit_entries SET recorded_at = recorded_at - 86400000 WHERE sequence = ?",
        std::slice::from_ref(&key),
    )
    .await
    .unwrap();
    assert_column_named(&server, &token, k, "recorded_at").await;
    db.execute(
        "UPDATE audit_entries SET recorded_at = recorded_at + 86400000 WHERE sequence = ?",
        std::slice::from_ref(&key),
    )
    .await
    .unwrap();

    // Put back as they were, every column agrees again.
    let report = verify(&server, &token).await;
    assert_eq!(report["valid"], true, "{report}");
    db.close().await;
}
