//! Crash safety: the gateway is killed with SIGKILL at random points of a mixed write load, round
//! after round, on the same database. After every kill:
//!
//! - `promptgate audit verify --database-url …` passes on the killed database, before anything
//!   restarted (signatures of the stored heads checked with the gateway's public key);
//! - after a restart, every write that got a 2xx is there with exactly what was acknowledged:
//!   each prompt version with its system prompt, each client audit entry at its sequence with
//!   the same id, hash and details, each client listed and its secret still working;
//! - nothing an earlier round read from the log is gone or changed (the log only grows);
//! - every stored prompt version has its `PROMPT_CREATED`/`VERSION_CREATED` entry and every such
//!   entry its version, every client its `CLIENT_CREATED` entry and every such entry its client
//!   (a change and its entry commit together or not at all, also for writes cut off by the
//!   kill);
//! - `GET …/audit-logs/verify` answers valid for the whole log.
//!
//! Requests in flight at the kill fail with transport errors; they are unacknowledged and may or
//! may not have committed. The test counts them, so that it cannot pass without a kill landing
//! in the middle of the load.
//!
//! The kill delays and every worker's choice of operations come from one seed, printed at the
//! start (with `--nocapture`, or in the output of a failing run); `PROMPTGATE_CRASH_SEED=<seed>`
//! replays that schedule. The machine's timing does not replay, so a replay reproduces the
//! schedule, not necessarily the same interleaving.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::RequestBuilder;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::harness::*;

const ROUNDS: u64 = 12;
const WORKERS: usize = 4;
/// The kill comes this long (uniformly drawn, in ms) after the load started.
const KILL_AFTER_MS: (u64, u64) = (50, 600);
const AUDIT: &str = "/api/v2/ai/llm/gateway/audit-logs";
const VERIFY: &str = "/api/v2/ai/llm/gateway/audit-logs/verify";
const PUBLIC_KEY: &str = "/api/v2/ai/llm/gateway/audit-logs/public-key";
const SEED_VARIABLE: &str = "PROMPTGATE_CRASH_SEED";
/// A bound on how long the workers of a round may take to notice the kill.
const WORKER_EXIT: Duration = Duration::from_secs(60);

/// SplitMix64: small, seedable, good enough to draw delays and operations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; the bias is irrelevant here).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn seed() -> u64 {
    match std::env::var(SEED_VARIABLE) {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{SEED_VARIABLE}={text:?}: {e}")),
        Err(_) => {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64;
            nanos ^ (u64::from(std::process::id()) << 32)
        }
    }
}

/// One write the gateway acknowledged with a 2xx, with what it answered.
#[derive(Clone, Debug)]
enum Ack {
    /// A prompt created with version 1.0.0 holding `text`.
    Prompt {
        id: String,
        name: String,
        owner: usize,
        text: String,
    },
    /// A new version of a prompt.
    Version {
        id: String,
        version: String,
        text: String,
    },
    /// A client audit entry.
    Entry {
        sequence: u64,
        id: String,
        hash: String,
        details: Value,
    },
    /// An OAuth client.
    Client {
        id: String,
        name: String,
        secret: String,
    },
}

/// What a worker saw in one round.
#[derive(Default)]
struct Report {
    acks: Vec<Ack>,
    /// The transport error that ended the worker: the request, whether it was in flight (the
    /// connection broke under it; otherwise the connection was refused), and the error.
    ended_by: Option<(String, bool, String)>,
    /// An answer that no request of this load should get.
    unexpected: Option<String>,
}

/// Why a worker stops.
enum Stop {
    Broken {
        what: String,
        in_flight: bool,
        error: String,
    },
    Unexpected(String),
}

/// One HTTP answer of the load.
struct Answer {
    status: u16,
    headers: HeaderMap,
    text: String,
    what: String,
}

impl Answer {
    fn json(&self) -> Result<Value, Stop> {
        serde_json::from_str(&self.text).map_err(|e| {
            Stop::Unexpected(format!(
                "{} → {}: not JSON ({e}): {}",
                self.what, self.status, self.text
            ))
        })
    }

    fn unexpected(&self, why: &str) -> Stop {
        Stop::Unexpected(format!(
            "{} → {} ({why}): {}",
            self.what, self.status, self.text
        ))
    }

    fn etag(&self) -> Result<String, Stop> {
        self.headers
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| self.unexpected("no ETag"))
    }

    fn string(&self, body: &Value, field: &str) -> Result<String, Stop> {
        body[field]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| self.unexpected(&format!("no string {field}")))
    }
}

/// One concurrent writer of a round. It writes versions only to the prompts it created itself
/// (in this or an earlier round), so that its `If-Match` ETags go stale only through its own
/// writes, or through a write of an earlier round that committed without being acknowledged
/// (the ETags start unknown each round and are read first).
struct Worker {
    http: reqwest::Client,
    base: String,
    token: String,
    round: u64,
    index: usize,
    rng: Rng,
    owned: Vec<(String, Option<String>)>,
}

impl Worker {
    async fn run(mut self) -> Report {
        let mut report = Report::default();
        for n in 0u64.. {
            let roll = self.rng.below(100);
            let step = if roll < 25 || (roll < 60 && self.owned.is_empty()) {
                self.create_prompt(n).await
            } else if roll < 60 {
                self.add_version(n).await
            } else if roll < 85 {
                self.append_entry(n).await
            } else {
                self.create_client(n).await
            };
            match step {
                Ok(Some(ack)) => report.acks.push(ack),
                Ok(None) => {}
                Err(Stop::Broken {
                    what,
                    in_flight,
                    error,
                }) => {
                    report.ended_by = Some((what, in_flight, error));
                    return report;
                }
                Err(Stop::Unexpected(what)) => {
                    report.unexpected = Some(what);
                    return report;
                }
            }
        }
        unreachable!()
    }

    async fn call(&self, builder: RequestBuilder, what: String) -> Result<Answer, Stop> {
        let broken = |in_flight: bool, e: reqwest::Error| Stop::Broken {
            what: what.clone(),
            in_flight,
            error: format!("{e:?}"),
        };
        let response = builder
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| broken(!e.is_connect(), e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        // A body cut off by the kill: the write is unacknowledged.
        let text = response.text().await.map_err(|e| broken(true, e))?;
        Ok(Answer {
            status,
            headers,
            text,
            what: what.clone(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn create_prompt(&mut self, n: u64) -> Result<Option<Ack>, Stop> {
        let name = format!("crash-r{}-w{}-{n}", self.round, self.index);
        let text = format!("You are support agent {name}; this is version 1.0.0.");
        let body = json!({"name": name, "modelEndpointRef": "builtin/echo",
            "systemPrompt": text, "version": "1.0.0"});
        let answer = self
            .call(
                self.http.post(self.url(PROMPTS)).json(&body),
                format!("POST prompts ({name})"),
            )
            .await?;
        if answer.status != 201 {
            return Err(answer.unexpected("expected 201"));
        }
        let created = answer.json()?;
        if created["name"] != json!(name)
            || created["version"] != "1.0.0"
            || created["systemPrompt"] != json!(text)
        {
            return Err(answer.unexpected("not the prompt that was sent"));
        }
        let id = answer.string(&created, "id")?;
        self.owned.push((id.clone(), Some(answer.etag()?)));
        Ok(Some(Ack::Prompt {
            id,
            name,
            owner: self.index,
            text,
        }))
    }

    async fn add_version(&mut self, n: u64) -> Result<Option<Ack>, Stop> {
        let i = self.rng.below(self.owned.len() as u64) as usize;
        let id = self.owned[i].0.clone();
        let etag = match self.owned[i].1.clone() {
            Some(etag) => etag,
            None => {
                let answer = self
                    .call(
                        self.http.get(self.url(&prompt_path(&id))),
                        format!("GET prompt {id}"),
                    )
                    .await?;
                if answer.status != 200 {
                    return Err(answer.unexpected("expected 200"));
                }
                answer.etag()?
            }
        };
        // Unique per prompt: the round and the worker are in it, and a prompt has one writer.
        let version = format!("{}.{}.{n}", self.round + 1, self.index);
        let text = format!("You are support agent {id}; this is version {version}.");
        let answer = self
            .call(
                self.http
                    .put(self.url(&prompt_path(&id)))
                    .header("If-Match", &etag)
                    .json(&json!({"systemPrompt": text, "version": version})),
                format!("PUT prompt {id} version {version}"),
            )
            .await?;
        match answer.status {
            200 => {
                let updated = answer.json()?;
                if updated["version"] != json!(version) || updated["systemPrompt"] != json!(text) {
                    return Err(answer.unexpected("not the version that was sent"));
                }
                self.owned[i].1 = Some(answer.etag()?);
                Ok(Some(Ack::Version { id, version, text }))
            }
            412 => {
                // Stale: read the ETag again next time.
                self.owned[i].1 = None;
                Ok(None)
            }
            _ => Err(answer.unexpected("expected 200 or 412")),
        }
    }

    async fn append_entry(&mut self, n: u64) -> Result<Option<Ack>, Stop> {
        let details = json!({"round": self.round, "worker": self.index, "n": n});
        let body = json!({"action": "CRASH_TEST", "details": details,
            "complianceStatus": "VALIDATED", "metadata": {"sourceSystem": "crash-test"}});
        let answer = self
            .call(
                self.http.post(self.url(AUDIT)).json(&body),
                format!("POST audit-logs {details}"),
            )
            .await?;
        if answer.status != 201 {
            return Err(answer.unexpected("expected 201"));
        }
        let stored = answer.json()?;
        if stored["details"] != details || stored["action"] != "CRASH_TEST" {
            return Err(answer.unexpected("not the entry that was sent"));
        }
        let sequence = stored["sequence"]
            .as_u64()
            .ok_or_else(|| answer.unexpected("no sequence"))?;
        Ok(Some(Ack::Entry {
            sequence,
            id: answer.string(&stored, "id")?,
            hash: answer.string(&stored, "hash")?,
            details,
        }))
    }

    async fn create_client(&mut self, n: u64) -> Result<Option<Ack>, Stop> {
        let name = format!("crash-r{}-w{}-{n}", self.round, self.index);
        let answer = self
            .call(
                self.http
                    .post(self.url(CLIENTS))
                    .json(&json!({"name": name, "scopes": ["ai:prompt:read"]})),
                format!("POST clients ({name})"),
            )
            .await?;
        if answer.status != 201 {
            return Err(answer.unexpected("expected 201"));
        }
        let created = answer.json()?;
        if created["name"] != json!(name) {
            return Err(answer.unexpected("not the client that was sent"));
        }
        Ok(Some(Ack::Client {
            id: answer.string(&created, "clientId")?,
            name,
            secret: answer.string(&created, "clientSecret")?,
        }))
    }
}

struct AckedPrompt {
    name: String,
    owner: usize,
    /// version → system prompt
    versions: BTreeMap<String, String>,
}

/// Everything acknowledged so far, over all rounds.
#[derive(Default)]
struct Ledger {
    prompts: BTreeMap<String, AckedPrompt>,
    /// sequence → (id, hash, details)
    entries: BTreeMap<u64, (String, String, Value)>,
    /// id → (name, secret)
    clients: BTreeMap<String, (String, String)>,
    all: Vec<Ack>,
}

impl Ledger {
    fn record(&mut self, acks: &[Ack], ctx: &str) {
        for ack in acks {
            match ack.clone() {
                Ack::Prompt {
                    id,
                    name,
                    owner,
                    text,
                } => {
                    let versions = BTreeMap::from([("1.0.0".to_owned(), text)]);
                    let old = self.prompts.insert(
                        id.clone(),
                        AckedPrompt {
                            name,
                            owner,
                            versions,
                        },
                    );
                    assert!(old.is_none(), "{ctx}: prompt id {id} acknowledged twice");
                }
                Ack::Version { id, version, text } => {
                    let prompt = self.prompts.get_mut(&id).unwrap();
                    assert!(
                        prompt.versions.insert(version.clone(), text).is_none(),
                        "{ctx}: version {version} of {id} acknowledged twice"
                    );
                }
                Ack::Entry {
                    sequence,
                    id,
                    hash,
                    details,
                } => {
                    let old = self.entries.insert(sequence, (id, hash, details));
                    assert!(
                        old.is_none(),
                        "{ctx}: two acknowledged entries at sequence {sequence}: {old:?} and {ack:?}"
                    );
                }
                Ack::Client { id, name, secret } => {
                    assert!(
                        self.clients.insert(id.clone(), (name, secret)).is_none(),
                        "{ctx}: client {id} acknowledged twice"
                    );
                }
            }
            self.all.push(ack.clone());
        }
    }

    /// The prompts worker `index` writes to, their ETags to be read first.
    fn owned_by(&self, index: usize) -> Vec<(String, Option<String>)> {
        self.prompts
            .iter()
            .filter(|(_, p)| p.owner == index)
            .map(|(id, _)| (id.clone(), None))
            .collect()
    }
}

/// The totals over all rounds, so the test cannot pass vacuously.
#[derive(Default, Debug)]
struct Totals {
    prompts: usize,
    versions: usize,
    entries: usize,
    clients: usize,
    /// Writes cut off by a kill after they were sent.
    in_flight: usize,
    /// Requests refused: the server was gone before they were sent.
    refused: usize,
    /// Writes found stored that were never acknowledged (cut off by a kill after they committed).
    unacknowledged_present: usize,
}

impl Totals {
    fn count(&mut self, ack: &Ack) {
        match ack {
            Ack::Prompt { .. } => self.prompts += 1,
            Ack::Version { .. } => self.versions += 1,
            Ack::Entry { .. } => self.entries += 1,
            Ack::Client { .. } => self.clients += 1,
        }
    }
}

/// Walks every page of a listing (`entities`, `nextPageCursor`) and answers the entities.
async fn list_all(server: &Server, token: &str, path: &str, ctx: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10_000 {
        let mut query = vec![("pageSize", "500")];
        if let Some(c) = &cursor {
            query.push(("cursor", c));
        }
        let resp = server.get_query(path, token, &query).await;
        assert_eq!(resp.status, 200, "{ctx}: {resp}");
        let page = resp.json();
        out.extend(
            page["entities"]
                .as_array()
                .unwrap_or_else(|| panic!("{ctx}: no entities: {resp}"))
                .iter()
                .cloned(),
        );
        match page["nextPageCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return out,
        }
    }
    panic!("{ctx}: the listing of {path} never ended")
}

/// Checks the restarted gateway against everything acknowledged; `content` are the writes whose
/// stored content is read back one by one (the others are checked through the listings).
/// Answers how many stored writes were never acknowledged.
async fn check(
    server: &Server,
    ledger: &Ledger,
    content: &[Ack],
    seen_log: &mut Vec<String>,
    ctx: &str,
) -> usize {
    let token = server.admin_token().await;

    // The audit log: gap-free, a continuation of what earlier rounds read, every acknowledged
    // client entry at its sequence, unchanged.
    let entries = list_all(server, &token, AUDIT, ctx).await;
    for (i, entry) in entries.iter().enumerate() {
        assert_eq!(
            entry["sequence"].as_u64(),
            Some(i as u64 + 1),
            "{ctx}: the log has a gap or is out of order at index {i}: {entry}"
        );
    }
    for (i, hash) in seen_log.iter().enumerate() {
        let now = entries.get(i).map(|e| &e["hash"]);
        assert_eq!(
            now,
            Some(&json!(hash)),
            "{ctx}: entry {} was read with hash {hash} before this kill; now: {:?} (log size {})",
            i + 1,
            entries.get(i),
            entries.len()
        );
    }
    for (sequence, (id, hash, details)) in &ledger.entries {
        let stored = entries.get(*sequence as usize - 1).unwrap_or_else(|| {
            panic!(
                "{ctx}: the acknowledged entry {sequence} ({details}) is missing: the log has {} entries",
                entries.len()
            )
        });
        assert_eq!(
            (&stored["id"], &stored["hash"], &stored["details"]),
            (&json!(id), &json!(hash), details),
            "{ctx}: the entry at acknowledged sequence {sequence} is not the acknowledged one: {stored}"
        );
    }
    let report = server.get(VERIFY, Some(&token)).await;
    assert_eq!(report.status, 200, "{ctx}: {report}");
    let report = report.json();
    assert_eq!(report["valid"], json!(true), "{ctx}: verify: {report}");
    assert_eq!(
        report["firstInvalidSequence"],
        Value::Null,
        "{ctx}: {report}"
    );
    assert_eq!(
        report["entries"].as_u64(),
        Some(entries.len() as u64),
        "{ctx}: {report}"
    );
    assert_eq!(
        Some(&report["headHash"]),
        entries.last().map(|e| &e["hash"]),
        "{ctx}: {report}"
    );

    // Prompts: every acknowledged prompt with its name and versions.
    let prompts = list_all(server, &token, PROMPTS, ctx).await;
    let mut stored_versions: BTreeSet<(String, String)> = BTreeSet::new();
    let mut stored_prompts: BTreeMap<String, (String, BTreeSet<String>)> = BTreeMap::new();
    for prompt in &prompts {
        let id = str_field(prompt, "id");
        let versions: BTreeSet<String> = prompt["versions"]
            .as_array()
            .unwrap_or_else(|| panic!("{ctx}: no versions: {prompt}"))
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        for version in &versions {
            stored_versions.insert((id.clone(), version.clone()));
        }
        stored_prompts.insert(id, (str_field(prompt, "name"), versions));
    }
    let mut unacknowledged = 0;
    for (id, (_, versions)) in &stored_prompts {
        match ledger.prompts.get(id) {
            Some(acked) => {
                unacknowledged += versions
                    .iter()
                    .filter(|v| !acked.versions.contains_key(*v))
                    .count()
            }
            None => unacknowledged += versions.len(),
        }
    }
    for (id, acked) in &ledger.prompts {
        let (name, versions) = stored_prompts.get(id).unwrap_or_else(|| {
            panic!(
                "{ctx}: the acknowledged prompt {id} ({}) is missing",
                acked.name
            )
        });
        assert_eq!(name, &acked.name, "{ctx}: prompt {id}");
        for version in acked.versions.keys() {
            assert!(
                versions.contains(version),
                "{ctx}: the acknowledged version {version} of prompt {id} ({name}) is missing; stored: {versions:?}"
            );
        }
    }

    // Clients: every acknowledged client listed under its name.
    let clients = server.get(CLIENTS, Some(&token)).await;
    assert_eq!(clients.status, 200, "{ctx}: {clients}");
    let listed: BTreeMap<String, String> = clients.json()["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (str_field(c, "clientId"), str_field(c, "name")))
        .collect();
    for (id, (name, _)) in &ledger.clients {
        assert_eq!(
            listed.get(id),
            Some(name),
            "{ctx}: the acknowledged client {id} ({name}) is not listed"
        );
    }
    unacknowledged += listed
        .keys()
        .filter(|id| !ledger.clients.contains_key(*id) && **id != server.admin_id)
        .count();
    let acked_entries: BTreeSet<u64> = ledger.entries.keys().copied().collect();
    unacknowledged += entries
        .iter()
        .filter(|e| {
            e["action"] == "CRASH_TEST" && !acked_entries.contains(&e["sequence"].as_u64().unwrap())
        })
        .count();

    // No change without its entry, no entry without its change, kills notwithstanding.
    let mut logged_versions: BTreeSet<(String, String)> = BTreeSet::new();
    let mut logged_clients: BTreeSet<String> = BTreeSet::new();
    for entry in &entries {
        let pair = match entry["action"].as_str() {
            Some("PROMPT_CREATED") => Some(&entry["details"]["after"]["version"]["version"]),
            Some("VERSION_CREATED") => Some(&entry["details"]["version"]),
            Some("CLIENT_CREATED") => {
                logged_clients.insert(str_field(&entry["details"]["after"], "clientId"));
                None
            }
            _ => None,
        };
        if let Some(version) = pair {
            let version = version
                .as_str()
                .unwrap_or_else(|| panic!("{ctx}: no version in {entry}"));
            let added = logged_versions.insert((str_field(entry, "promptId"), version.to_owned()));
            assert!(added, "{ctx}: a version logged twice: {entry}");
        }
    }
    assert_eq!(
        logged_versions
            .symmetric_difference(&stored_versions)
            .collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "{ctx}: prompt versions stored without their audit entry, or logged but not stored"
    );
    let listed_ids: BTreeSet<String> = listed.keys().cloned().collect();
    assert_eq!(
        logged_clients
            .symmetric_difference(&listed_ids)
            .collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "{ctx}: clients stored without their audit entry, or logged but not stored"
    );

    // The content of the writes asked for, read back one by one.
    for ack in content {
        match ack {
            Ack::Prompt { id, text, .. } => {
                check_version(server, &token, id, "1.0.0", text, ctx).await
            }
            Ack::Version { id, version, text } => {
                check_version(server, &token, id, version, text, ctx).await
            }
            Ack::Entry {
                sequence,
                hash,
                details,
                ..
            } => {
                let resp = server
                    .get(&format!("{AUDIT}/{sequence}"), Some(&token))
                    .await;
                assert_eq!(resp.status, 200, "{ctx}: {resp}");
                let stored = resp.json();
                assert_eq!(
                    (&stored["hash"], &stored["details"]),
                    (&json!(hash), details),
                    "{ctx}: {resp}"
                );
            }
            Ack::Client { id, secret, .. } => {
                // The secret's hash was stored with the client: the secret still works.
                let resp = server
                    .token_request(&[("grant_type", "client_credentials")], Some((id, secret)))
                    .await;
                assert_eq!(
                    resp.status, 200,
                    "{ctx}: the acknowledged client {id} cannot get a token: {resp}"
                );
            }
        }
    }

    *seen_log = entries
        .iter()
        .map(|e| e["hash"].as_str().unwrap().to_owned())
        .collect();
    unacknowledged
}

async fn check_version(
    server: &Server,
    token: &str,
    id: &str,
    version: &str,
    text: &str,
    ctx: &str,
) {
    let resp = server.get(&version_path(id, version), Some(token)).await;
    assert_eq!(
        resp.status, 200,
        "{ctx}: the acknowledged version {version} of {id} cannot be read: {resp}"
    );
    assert_eq!(
        resp.json()["systemPrompt"],
        json!(text),
        "{ctx}: version {version} of {id} is not what was acknowledged: {resp}"
    );
}

/// `promptgate audit verify --database-url …` on the database, checking the stored heads'
/// signatures with the gateway's key: exit 0, and a log that holds every acknowledged entry.
fn cli_verify(server: &Server, public_key: &str, ledger: &Ledger, ctx: &str) -> Value {
    let output = tokio::task::block_in_place(|| {
        server.cli(&["audit", "verify", "--public-key", public_key, "--json"])
    });
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{ctx}: audit verify on the database: {:?}\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{ctx}: audit verify --json ({e}): {stdout}"));
    assert_eq!(report["valid"], json!(true), "{ctx}: {report}");
    let last_acked = ledger.entries.keys().next_back().copied().unwrap_or(0);
    assert!(
        report["entries"].as_u64().unwrap() >= last_acked,
        "{ctx}: the database holds fewer entries than were acknowledged (up to {last_acked}): {report}"
    );
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill_at_random_points_and_the_log_verifies() {
    let seed = seed();
    let store = store_kind();
    eprintln!("crash test on {store:?}: seed {seed} ({SEED_VARIABLE}={seed} replays the schedule)");
    let mut rng = Rng(seed);
    let mut server = tokio::task::block_in_place(|| Server::start_with(Options::default()));
    let token = server.admin_token().await;
    let public_key = str_field(
        &server.get(PUBLIC_KEY, Some(&token)).await.ok(200),
        "publicKey",
    );

    let mut ledger = Ledger::default();
    let mut seen_log: Vec<String> = Vec::new();
    let mut totals = Totals::default();
    for round in 1..=ROUNDS {
        let ctx = format!("{store:?}, round {round}/{ROUNDS}, seed {seed}");
        let token = server.admin_token().await;
        // A client of the load's own: no connection of it outlives the round's server.
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let workers: Vec<_> = (0..WORKERS)
            .map(|index| {
                let worker = Worker {
                    http: http.clone(),
                    base: server.base.clone(),
                    token: token.clone(),
                    round,
                    index,
                    rng: Rng(rng.next()),
                    owned: ledger.owned_by(index),
                };
                tokio::spawn(worker.run())
            })
            .collect();
        let delay = KILL_AFTER_MS.0 + rng.below(KILL_AFTER_MS.1 - KILL_AFTER_MS.0 + 1);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        let status = tokio::task::block_in_place(|| server.signal_and_wait("KILL"));
        assert_eq!(
            status.signal(),
            Some(9),
            "{ctx}: the server ended otherwise than by the SIGKILL: {status:?}\n{}",
            server.log()
        );

        let mut fresh = Vec::new();
        let (mut in_flight, mut reads_cut_off, mut refused) = (0, 0, 0);
        let mut cut_off = Vec::new();
        for (index, worker) in workers.into_iter().enumerate() {
            let report = tokio::time::timeout(WORKER_EXIT, worker)
                .await
                .unwrap_or_else(|_| panic!("{ctx}: worker {index} did not stop after the kill"))
                .unwrap_or_else(|e| panic!("{ctx}: worker {index}: {e}"));
            if let Some(what) = &report.unexpected {
                panic!("{ctx}: worker {index} got an unexpected answer: {what}");
            }
            match &report.ended_by {
                // A read cut off (the ETag a version needs) is no write in flight.
                Some((what, true, _)) if !what.starts_with("GET ") => {
                    in_flight += 1;
                    cut_off.push(what.clone());
                }
                Some((_, true, _)) => reads_cut_off += 1,
                Some((_, false, _)) => refused += 1,
                None => panic!("{ctx}: worker {index} stopped without an error"),
            }
            fresh.extend(report.acks);
        }
        for ack in &fresh {
            totals.count(ack);
        }
        totals.in_flight += in_flight;
        totals.refused += refused;
        eprintln!(
            "{ctx}: killed after {delay} ms; {} writes acknowledged, {in_flight} writes cut off in flight ({}), {reads_cut_off} reads cut off, {refused} refused",
            fresh.len(),
            cut_off.join("; ")
        );
        ledger.record(&fresh, &ctx);

        // The killed database, as it was left, before any gateway opened it again.
        cli_verify(&server, &public_key, &ledger, &ctx);

        // A gateway on the same database: everything acknowledged is there.
        let restarted = tokio::task::block_in_place(|| {
            Server::start_in(server.dir.clone(), server.options.clone())
        });
        server = restarted;
        totals.unacknowledged_present = check(&server, &ledger, &fresh, &mut seen_log, &ctx).await;
    }

    // Once more with the content of every write of every round, then a clean stop and the CLI
    // on the database.
    let ctx = format!("{store:?}, after round {ROUNDS}, seed {seed}");
    check(&server, &ledger, &ledger.all, &mut seen_log, &ctx).await;
    let status = tokio::task::block_in_place(|| server.signal_and_wait("TERM"));
    assert!(
        status.success(),
        "{ctx}: SIGTERM: {status:?}\n{}",
        server.log()
    );
    let report = cli_verify(&server, &public_key, &ledger, &ctx);
    assert_eq!(
        report["entries"].as_u64(),
        Some(seen_log.len() as u64),
        "{ctx}: {report}"
    );
    assert!(
        report["signedHeadsChecked"].as_u64().unwrap() >= 1,
        "{ctx}: the clean stop signs a head: {report}"
    );

    eprintln!("crash test on {store:?}, seed {seed}: {totals:?}");
    // Not vacuous: writes of every kind were acknowledged and had to survive, and kills landed
    // while requests were in flight.
    assert!(
        totals.prompts > 0 && totals.versions > 0 && totals.entries > 0 && totals.clients > 0,
        "seed {seed}: some kind of write was never acknowledged: {totals:?}"
    );
    assert!(
        totals.in_flight > 0,
        "seed {seed}: no kill landed while a write was in flight: {totals:?}"
    );
}
