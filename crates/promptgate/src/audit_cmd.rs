//! `promptgate audit …`: read the audit log, and check it the way an outside auditor would, with
//! nothing but the entries, signed tree heads and the gateway's public key.
//!
//! Every check is offline: the gateway (or a database, or an export file) only supplies data, and
//! the verdict comes from `promptgate-audit`'s checks (through the SDK's `audit` module, or, for a
//! database, the same store replay the gateway's `verify` runs, run here on the rows read), never
//! from a running gateway's opinion of itself.
//! `verify`, `prove` and `consistency` exit 0 when everything checks, 1 when something does not
//! (after printing what and where), and keep the usual 2 (usage), 3 (API error) and 4 (the
//! gateway cannot be reached) for everything else.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use futures_util::StreamExt;
use promptgate_audit::Signatures;
use promptgate_client::api::{AuditEntry, AuditEntryRequest, SignedTreeHead};
use promptgate_client::audit::{
    AuditCheckError, LogReport, LogVerifier, PublicKey, check_consistency, check_inclusion,
    head_to_check, verify_signed_head,
};
use promptgate_client::{AuditQuery, Client};
use serde_json::{Value, json};

use crate::UsageError;
use crate::output::Output;

/// Exit code when a check ran and found the log, a proof or a head invalid.
const EXIT_INVALID: u8 = 1;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List audit entries in sequence order (oldest first).
    #[command(
        after_help = "Example:\n  promptgate audit list --action PROMPT_CREATED --start-time 2026-11-01T00:00:00Z --json"
    )]
    List(ListArgs),
    /// Verify the whole log: replay the hash chain and check signed tree heads against it.
    #[command(after_help = VERIFY_HELP)]
    Verify(VerifyArgs),
    /// Write the log as JSON Lines on standard output, ending with the signed tree head.
    #[command(after_help = EXPORT_HELP)]
    Export,
    /// Print the gateway's Ed25519 public key (base64 of its 32 raw bytes).
    #[command(
        after_help = "Examples:\n  promptgate audit public-key > gateway.pub\n  promptgate audit public-key --json    # {\"keyId\": …, \"publicKey\": …}\n\nCompare it once with a copy obtained out of band; then verify with that copy."
    )]
    PublicKey,
    /// Print the latest signed tree head as JSON (keep it: it pins the log as it is now).
    #[command(
        after_help = "Example:\n  promptgate audit checkpoint > head-2026-11-27.json\n\nA saved head lets `audit consistency` and `audit verify --head` show later that nothing it\ncovers was rewritten."
    )]
    Checkpoint,
    /// Prove that one entry is in the tree a signed head commits to, checked offline.
    #[command(
        after_help = "Examples:\n  promptgate audit prove 42 --public-key gateway.pub\n  promptgate audit prove 42 --head head-2026-11-27.json --public-key gateway.pub\n\nThe entry is fetched and re-hashed locally; the proof must lead from it to the head's root.\nExit 0 when proven, 1 when not."
    )]
    Prove(ProveArgs),
    /// Prove that an old signed head's tree is a prefix of a newer one's, checked offline.
    #[command(
        after_help = "Example:\n  promptgate audit consistency head-monday.json head-friday.json --public-key gateway.pub\n\nExit 0 when the log was only appended to between the two heads, 1 when not."
    )]
    Consistency(ConsistencyArgs),
    /// Append a client entry to the audit log (scope ai:gateway:write).
    #[command(
        after_help = "Example:\n  promptgate audit append --action CREATE --prompt-id 01a21b90-f811-7001-9495-3ba146e3a674 \\\n      --details '{\"version\": \"1.0.0\"}' --compliance-status VALIDATED \\\n      --metadata '{\"sourceSystem\": \"prompt-manager\"}'"
    )]
    Append(AppendArgs),
}

const VERIFY_HELP: &str = "\
Sources (one of):
  (none)                 the gateway: its entries are fetched and replayed here, against its
                         latest signed tree head (the gateway's own verdict is not used)
  --database-url URL     an existing database file directly, no server needed (a missing
                         file is refused, never created); every signed tree head stored in it
                         is checked
  --file EXPORT.jsonl    a file written by `promptgate audit export`, with its signed head line

The chain catches an entry edited, removed, inserted or reordered, and names the first bad
sequence. A signed head catches what the chain cannot: a log rebuilt and re-chained, or cut short
at its end. With --public-key the heads' signatures are checked too, so nothing but the key is
trusted. --head adds a head saved earlier (e.g. by `audit checkpoint`); a log rewritten since no
longer matches it.

Exit 0 when valid; 1 when not, printing e.g.
  audit log INVALID: first bad sequence 5: entry 5: its content does not hash to its stored hash

Examples:
  promptgate audit verify --public-key gateway.pub
  promptgate audit verify --database-url sqlite:///var/lib/promptgate/promptgate.db --public-key gateway.pub
  promptgate audit export > audit.jsonl && promptgate audit verify --file audit.jsonl --public-key gateway.pub
  promptgate audit verify --head head-2026-11-27.json";

const EXPORT_HELP: &str = "\
Format (JSON Lines, one JSON object per line):
  first the signed tree head is fetched; then every entry from sequence 1 to that head's treeSize
  is written in order, exactly as the gateway serves it (with its prevHash and hash); the last
  line is the signed head itself: {\"treeSize\", \"rootHash\", \"timestamp\", \"keyId\",
  \"signature\"} (it has no \"sequence\"). `audit verify --file` recognises that line and checks
  the entries against it, its signature too with --public-key.

Example:
  promptgate audit export > audit-2026-11-27.jsonl
  promptgate audit verify --file audit-2026-11-27.jsonl --public-key gateway.pub";

/// `audit list` filters.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only entries about this prompt (id).
    #[arg(long)]
    prompt_id: Option<String>,
    /// Only this action (e.g. PROMPT_CREATED, TRAFFIC_UPDATED, or a client's own word).
    #[arg(long)]
    action: Option<String>,
    /// Only entries caused by this OAuth client id (`system` for the gateway's own).
    #[arg(long)]
    actor: Option<String>,
    /// Recorded at or after this RFC 3339 time.
    #[arg(long)]
    start_time: Option<String>,
    /// Recorded before this RFC 3339 time.
    #[arg(long)]
    end_time: Option<String>,
    /// Entries per request (1–500); every page is read either way.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=500))]
    page_size: Option<u32>,
}

/// `audit verify` arguments.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Verify this database directly instead of asking a gateway (sqlite://PATH).
    #[arg(long, conflicts_with = "file")]
    database_url: Option<String>,
    /// Verify a file written by `promptgate audit export`.
    #[arg(long)]
    file: Option<PathBuf>,
    /// The gateway's public key, base64 or a file holding base64 or PEM: check signatures too.
    #[arg(long)]
    public_key: Option<String>,
    /// A signed tree head saved earlier (JSON); the log must still match it. Repeatable.
    #[arg(long)]
    head: Vec<PathBuf>,
}

/// `audit prove` arguments.
#[derive(Debug, clap::Args)]
pub struct ProveArgs {
    /// The entry's sequence (1-based).
    sequence: u64,
    /// Prove against this saved signed head instead of the latest checkpoint.
    #[arg(long)]
    head: Option<PathBuf>,
    /// The gateway's public key, base64 or a file holding base64 or PEM: check the head's
    /// signature.
    #[arg(long)]
    public_key: Option<String>,
}

/// `audit consistency` arguments.
#[derive(Debug, clap::Args)]
pub struct ConsistencyArgs {
    /// The older signed tree head (JSON).
    old_head: PathBuf,
    /// The newer signed tree head (JSON).
    new_head: PathBuf,
    /// The gateway's public key, base64 or a file holding base64 or PEM: check both heads'
    /// signatures.
    #[arg(long)]
    public_key: Option<String>,
}

/// `audit append` arguments.
#[derive(Debug, clap::Args)]
pub struct AppendArgs {
    /// What happened, as an upper-case word: `[A-Z][A-Z0-9_]{0,99}`, such as REVIEW_APPROVED
    /// (the gateway's own action names are reserved).
    #[arg(long)]
    action: String,
    /// The prompt the entry concerns.
    #[arg(long)]
    prompt_id: Option<String>,
    /// Details, as a JSON object.
    #[arg(long)]
    details: Option<String>,
    /// A compliance status, e.g. VALIDATED.
    #[arg(long)]
    compliance_status: Option<String>,
    /// Metadata, as a JSON object.
    #[arg(long)]
    metadata: Option<String>,
    /// Your own time for the event (RFC 3339), kept as clientTimestamp.
    #[arg(long)]
    timestamp: Option<String>,
}

/// Runs an audit command. Only commands that talk to a gateway build a client, so that
/// `verify --file` and `verify --database-url` work with no gateway and no credentials.
pub async fn run(
    command: AuditCommand,
    client: impl FnOnce() -> anyhow::Result<Client>,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::List(args) => list(args, &client()?, out).await,
        AuditCommand::Verify(args) => verify(args, client, out).await,
        AuditCommand::Export => export(&client()?).await,
        AuditCommand::PublicKey => public_key(&client()?, out).await,
        AuditCommand::Checkpoint => {
            out.print_json(&client()?.audit_checkpoint().await?);
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Prove(args) => prove(args, &client()?, out).await,
        AuditCommand::Consistency(args) => consistency(args, &client()?, out).await,
        AuditCommand::Append(args) => append(args, &client()?, out).await,
    }
}

async fn list(args: ListArgs, client: &Client, out: &Output) -> anyhow::Result<ExitCode> {
    let query = AuditQuery {
        prompt_id: args.prompt_id,
        action: args.action,
        actor: args.actor,
        start_time: args.start_time,
        end_time: args.end_time,
        page_size: Some(args.page_size.unwrap_or(500)),
    };
    let mut entries: Vec<AuditEntry> = Vec::new();
    let mut stream = client.audit_entries(&query);
    while let Some(entry) = stream.next().await {
        entries.push(entry?);
    }
    if out.json {
        out.print_json(&entries);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:>8} {:<25} {:<38} {:<22} PROMPT",
        "SEQUENCE", "TIMESTAMP", "ACTOR", "ACTION"
    );
    for e in &entries {
        println!(
            "{:>8} {:<25} {:<38} {:<22} {}",
            e.sequence,
            e.timestamp,
            e.actor,
            e.action,
            e.prompt_id.as_deref().unwrap_or("-")
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn verify(
    args: VerifyArgs,
    client: impl FnOnce() -> anyhow::Result<Client>,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    let key = args
        .public_key
        .as_deref()
        .map(read_public_key)
        .transpose()?;
    let mut heads = Vec::new();
    for path in &args.head {
        heads.push(read_head(path)?);
    }
    let report = if let Some(url) = &args.database_url {
        verify_database(url, heads, key.clone()).await?
    } else if let Some(path) = &args.file {
        verify_file(path, heads, key.clone())?
    } else {
        verify_gateway(&client()?, heads, key.clone()).await?
    };
    Ok(print_log_report(&report, key.as_ref(), out))
}

/// Replays the gateway's entries against its latest signed head (fetched first, so that it
/// covers only entries that exist) and any saved heads.
async fn verify_gateway(
    client: &Client,
    mut heads: Vec<SignedTreeHead>,
    key: Option<PublicKey>,
) -> anyhow::Result<LogReport> {
    heads.push(client.audit_checkpoint().await?);
    let mut verifier = LogVerifier::new(heads, key);
    let mut stream = client.audit_entries(&AuditQuery {
        page_size: Some(500),
        ..AuditQuery::default()
    });
    while let Some(entry) = stream.next().await {
        verifier.push_entry(&entry?);
    }
    Ok(verifier.finish())
}

/// Replays a database's entries against every signed head stored in it and the saved ones,
/// with the gateway's own replay ([`promptgate_server::audit::verify_store`]), so that this and
/// `GET …/audit-logs/verify` cannot disagree. With a public key every head must be signed by it.
async fn verify_database(
    url: &str,
    heads: Vec<SignedTreeHead>,
    key: Option<PublicKey>,
) -> anyhow::Result<LogReport> {
    // Opening a SQLite URL creates the file when it is missing; verifying must not.
    if let Some(path) = sqlite_path(url)?
        && !path.is_file()
    {
        return Err(UsageError(format!(
            "no database file at {}: verify reads an existing database and never creates one",
            path.display()
        ))
        .into());
    }
    // The URL may carry a password: only its display form is ever printed.
    let shown = promptgate_core::redact::database_url_for_display(url);
    let store = promptgate_store::open(url)
        .await
        .with_context(|| format!("cannot open the database {shown}"))?;
    let signatures = match key {
        Some(key) => Signatures::Required(key.into()),
        None => Signatures::Unchecked,
    };
    let saved = heads.iter().map(head_to_check).collect();
    let result = promptgate_server::audit::verify_store(store.as_ref(), saved, signatures).await;
    store.close().await;
    result.with_context(|| format!("cannot read the audit log of {shown}"))
}

/// The file a `sqlite:` URL names (as sqlx reads it: after `sqlite://` or `sqlite:`, before any
/// `?`), refusing in-memory databases, which hold no log to verify; `None` for other databases,
/// which the store opens (or refuses) as they are.
fn sqlite_path(url: &str) -> Result<Option<PathBuf>, UsageError> {
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return Ok(None);
    };
    let (file, params) = rest.split_once('?').unwrap_or((rest, ""));
    if file.is_empty() || file == ":memory:" || params.contains("mode=memory") {
        return Err(UsageError(format!(
            "--database-url {} names no database file",
            promptgate_core::redact::database_url_for_display(url)
        )));
    }
    Ok(Some(PathBuf::from(file)))
}

/// Replays an export file. Lines that are signed heads (`signature` and `treeSize`, no
/// `sequence`) are read first, wherever they are, so each is checked at its size; every other
/// non-empty line is the next entry.
fn verify_file(
    path: &Path,
    mut heads: Vec<SignedTreeHead>,
    key: Option<PublicKey>,
) -> anyhow::Result<LogReport> {
    let mut head_problems = Vec::new();
    for (number, line) in read_lines(path)? {
        let Ok(value) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if is_head_line(&value) {
            match serde_json::from_value::<SignedTreeHead>(value) {
                Ok(head) => heads.push(head),
                Err(e) => head_problems.push(AuditCheckError::Malformed {
                    what: format!("signed head on line {number}"),
                    reason: e.to_string(),
                }),
            }
        }
    }
    let mut verifier = LogVerifier::new(heads, key);
    for (number, line) in read_lines(path)? {
        match serde_json::from_str::<Value>(&line) {
            Ok(value) if is_head_line(&value) => {}
            Ok(value) => verifier.push(&value),
            Err(e) => verifier.push_unreadable(&format!("line {number} is not JSON ({e})")),
        }
    }
    let mut report = verifier.finish();
    report.problems.extend(head_problems);
    Ok(report)
}

/// The non-empty lines of a file with their 1-based numbers.
fn read_lines(path: &Path) -> anyhow::Result<Vec<(usize, String)>> {
    let file = std::fs::File::open(path)
        .map_err(|e| UsageError(format!("cannot read {}: {e}", path.display())))?;
    let mut lines = Vec::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        if !line.trim().is_empty() {
            lines.push((index + 1, line));
        }
    }
    Ok(lines)
}

fn is_head_line(value: &Value) -> bool {
    value.get("signature").is_some()
        && value.get("treeSize").is_some()
        && value.get("sequence").is_none()
}

fn print_log_report(report: &LogReport, key: Option<&PublicKey>, out: &Output) -> ExitCode {
    let valid = report.is_valid();
    if out.json {
        out.print_json(&json!({
            "valid": valid,
            "entries": report.entries,
            "headSequence": report.head_sequence,
            "headHash": report.head_hash,
            "rootHash": report.root_hash,
            "firstInvalidSequence": report.first_invalid_sequence(),
            "reason": report.first_problem().map(ToString::to_string),
            "problems": report.problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "signedHeadsChecked": report.heads_checked,
            "signaturesChecked": report.signatures_checked,
            "keyId": key.map(PublicKey::key_id),
        }));
    } else if let Some(first) = report.first_problem() {
        match first.sequence() {
            Some(sequence) => {
                println!("audit log INVALID: first bad sequence {sequence}: {first}");
            }
            None => println!("audit log INVALID: {first}"),
        }
        for other in report.problems.iter().skip(1) {
            println!("  also: {other}");
        }
    } else {
        println!(
            "audit log valid: {} entries, head sequence {}, root {}",
            report.entries, report.head_sequence, report.root_hash
        );
        let signatures = match key {
            Some(key) => format!(
                "{} signature(s) verified with key {}",
                report.signatures_checked,
                key.key_id()
            ),
            None => "signatures not checked (give --public-key)".to_owned(),
        };
        println!(
            "signed tree heads checked: {}; {signatures}",
            report.heads_checked
        );
    }
    if valid && report.heads_checked == 0 {
        eprintln!(
            "promptgate: note: no signed tree head covers this log, so entries removed from its end would go unnoticed"
        );
    }
    verdict(valid)
}

async fn export(client: &Client) -> anyhow::Result<ExitCode> {
    let head = client.audit_checkpoint().await?;
    let mut written = 0u64;
    let mut stream = client.audit_entries(&AuditQuery {
        page_size: Some(500),
        ..AuditQuery::default()
    });
    while let Some(entry) = stream.next().await {
        let entry = entry?;
        if entry.sequence > head.tree_size {
            break;
        }
        println!("{}", serde_json::to_string(&entry)?);
        written += 1;
    }
    println!("{}", serde_json::to_string(&head)?);
    if written != head.tree_size {
        eprintln!(
            "promptgate: note: the signed head covers {} entries but the gateway listed {written}",
            head.tree_size
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn public_key(client: &Client, out: &Output) -> anyhow::Result<ExitCode> {
    let wire = client.audit_public_key().await?;
    // Refuse a key that is not one, or an id that is not the key's, rather than hand it on.
    let key = PublicKey::from_wire(&wire).context("the gateway's public key is unusable")?;
    if out.json {
        out.print_json(&json!({"keyId": key.key_id(), "publicKey": key.to_base64()}));
    } else {
        println!("{}", key.to_base64());
    }
    Ok(ExitCode::SUCCESS)
}

async fn prove(args: ProveArgs, client: &Client, out: &Output) -> anyhow::Result<ExitCode> {
    let key = args
        .public_key
        .as_deref()
        .map(read_public_key)
        .transpose()?;
    let head = match &args.head {
        Some(path) => read_head(path)?,
        None => client.audit_checkpoint().await?,
    };
    let sequence = args.sequence;
    if sequence == 0 || sequence > head.tree_size {
        return Err(UsageError(format!(
            "entry {sequence} is not covered by the signed head, whose tree has {} entries",
            head.tree_size
        ))
        .into());
    }
    let mut problems = Vec::new();
    if let Some(key) = &key
        && let Err(problem) = verify_signed_head(&head, key)
    {
        problems.push(problem);
    }
    let entry = client.audit_entry(sequence).await?;
    let proof = client
        .inclusion_proof(sequence, Some(head.tree_size))
        .await?;
    if let Err(problem) = check_inclusion(&entry, &proof, &head) {
        problems.push(problem);
    }
    let valid = problems.is_empty();
    if out.json {
        out.print_json(&json!({
            "valid": valid,
            "sequence": sequence,
            "treeSize": head.tree_size,
            "rootHash": head.root_hash,
            "leafHash": proof.leaf_hash,
            "signatureChecked": key.is_some() && valid,
            "keyId": key.as_ref().map(PublicKey::key_id),
            "problems": problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }));
    } else if valid {
        println!(
            "entry {sequence} is in the tree of size {} with root {}",
            head.tree_size, head.root_hash
        );
        println!("{}", signature_line(&head, key.as_ref()));
    } else {
        print_problems("inclusion proof INVALID", &problems);
    }
    Ok(verdict(valid))
}

async fn consistency(
    args: ConsistencyArgs,
    client: &Client,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    let key = args
        .public_key
        .as_deref()
        .map(read_public_key)
        .transpose()?;
    let old = read_head(&args.old_head)?;
    let new = read_head(&args.new_head)?;
    if old.tree_size > new.tree_size {
        return Err(UsageError(format!(
            "{} covers {} entries but {} only {}: give the older head first",
            args.old_head.display(),
            old.tree_size,
            args.new_head.display(),
            new.tree_size
        ))
        .into());
    }
    let mut problems = Vec::new();
    if let Some(key) = &key {
        for head in [&old, &new] {
            if let Err(problem) = verify_signed_head(head, key) {
                problems.push(problem);
            }
        }
    }
    let proof = client
        .consistency_proof(old.tree_size, Some(new.tree_size))
        .await?;
    if let Err(problem) = check_consistency(&proof, &old, &new) {
        problems.push(problem);
    }
    let valid = problems.is_empty();
    if out.json {
        out.print_json(&json!({
            "valid": valid,
            "from": old.tree_size,
            "to": new.tree_size,
            "fromRoot": old.root_hash,
            "toRoot": new.root_hash,
            "signaturesChecked": key.is_some() && valid,
            "keyId": key.as_ref().map(PublicKey::key_id),
            "problems": problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }));
    } else if valid {
        println!(
            "consistent: the tree of size {} (root {}) is a prefix of the tree of size {} (root {})",
            old.tree_size, old.root_hash, new.tree_size, new.root_hash
        );
        let signatures = match &key {
            Some(key) => format!("both heads are signed by key {}", key.key_id()),
            None => "signatures not checked (give --public-key)".to_owned(),
        };
        println!("{signatures}");
    } else {
        print_problems("consistency proof INVALID", &problems);
    }
    Ok(verdict(valid))
}

async fn append(args: AppendArgs, client: &Client, out: &Output) -> anyhow::Result<ExitCode> {
    let request = AuditEntryRequest {
        prompt_id: args.prompt_id,
        action: Some(args.action),
        timestamp: args.timestamp,
        details: args
            .details
            .as_deref()
            .map(|text| json_option("--details", text))
            .transpose()?,
        compliance_status: args.compliance_status,
        metadata: args
            .metadata
            .as_deref()
            .map(|text| json_option("--metadata", text))
            .transpose()?,
    };
    let entry = client.append_audit_entry(&request).await?;
    if out.json {
        out.print_json(&entry);
    } else {
        println!(
            "appended audit entry {} ({}) with hash {}",
            entry.sequence, entry.action, entry.hash
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn json_option(flag: &str, text: &str) -> Result<Value, UsageError> {
    serde_json::from_str(text).map_err(|e| UsageError(format!("{flag} is not JSON: {e}")))
}

/// Reads `--public-key`: a file holding the key (base64 or PEM) when one exists at that path,
/// else the key itself in base64.
fn read_public_key(arg: &str) -> Result<PublicKey, UsageError> {
    let path = Path::new(arg);
    if path.is_file() {
        let text = std::fs::read_to_string(path)
            .map_err(|e| UsageError(format!("cannot read --public-key {arg}: {e}")))?;
        return PublicKey::parse(&text).map_err(|_| {
            UsageError(format!(
                "--public-key: {arg} holds no Ed25519 public key (base64 of 32 bytes, or PEM)"
            ))
        });
    }
    PublicKey::parse(arg).map_err(|_| {
        UsageError(format!(
            "--public-key: {arg:?} is neither a file nor base64 of a 32-byte Ed25519 public key"
        ))
    })
}

/// Reads a saved signed tree head (the JSON `audit checkpoint` prints, or an export's last
/// line).
fn read_head(path: &Path) -> Result<SignedTreeHead, UsageError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(text.trim()).map_err(|e| {
        UsageError(format!(
            "{} is not a signed tree head ({{\"treeSize\", \"rootHash\", \"timestamp\", \"keyId\", \"signature\"}}): {e}",
            path.display()
        ))
    })
}

fn signature_line(head: &SignedTreeHead, key: Option<&PublicKey>) -> String {
    match key {
        Some(key) => format!(
            "the head (signed at {}) is signed by key {}",
            head.timestamp,
            key.key_id()
        ),
        None => format!(
            "the head (signed at {} by key {}) was not checked: give --public-key",
            head.timestamp, head.key_id
        ),
    }
}

fn print_problems(title: &str, problems: &[AuditCheckError]) {
    for (i, problem) in problems.iter().enumerate() {
        if i == 0 {
            println!("{title}: {problem}");
        } else {
            println!("  also: {problem}");
        }
    }
}

fn verdict(valid: bool) -> ExitCode {
    if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INVALID)
    }
}
