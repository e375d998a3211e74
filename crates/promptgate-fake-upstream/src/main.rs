//! A fake model provider for benchmarks: OpenAI Chat Completions (`POST /v1/chat/completions`)
//! and Anthropic Messages (`POST /v1/messages`), each whole or streamed as server-sent events,
//! always with the same short answer after a fixed delay (see [`promptgate_fake_upstream::bench`]).
//!
//! ```sh
//! promptgate-fake-upstream --listen 127.0.0.1:0 --delay-ms 0
//! # prints "listening on http://127.0.0.1:PORT" on stdout, then serves until killed
//! ```
//!
//! Point a gateway endpoint at it with `provider = "openai"` and `base_url = "http://ADDR/v1"`,
//! or `provider = "anthropic"` and `base_url = "http://ADDR"`. Any key is accepted.
//!
//! `--delay-ms` is the time before the answer (whole answers) or before the first byte of the
//! body (streams; the response head is sent at once, as real providers do). A stream then sends
//! its events `--chunk-interval-ms` apart (default 0: back to back, each its own body chunk).
//!
//! `--rules` serves a deterministic model instead of the fixed answer (see
//! [`promptgate_fake_upstream::rules`]): `call NAME {JSON}` calls a tool the request defines,
//! a tool result is answered `The tool answered: …`, `json {JSON}` is the answer when the
//! request requires JSON output, anything else is echoed. `--delay-ms` and
//! `--chunk-interval-ms` do not apply to it.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use promptgate_fake_upstream::bench::{Answers, serve};

#[derive(Debug, Parser)]
#[command(
    name = "promptgate-fake-upstream",
    about = "A fake OpenAI-compatible and Anthropic model provider for benchmarks (and, with --rules, for tool-calling tests)"
)]
struct Args {
    /// Address to listen on; port 0 picks a free one. The address is printed on stdout.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Delay before each answer (streams: before the body's first byte), in milliseconds.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Pause between a stream's events after the first, in milliseconds.
    #[arg(long, default_value_t = 0)]
    chunk_interval_ms: u64,
    /// Worker threads (default: one per CPU).
    #[arg(long)]
    threads: Option<usize>,
    /// Answer from the request by the rules of `promptgate_fake_upstream::rules` (tool calls,
    /// tool results, JSON output, echoes) instead of with the benchmark's fixed answer.
    #[arg(long, conflicts_with_all = ["delay_ms", "chunk_interval_ms"])]
    rules: bool,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        builder.worker_threads(threads.max(1));
    }
    let runtime = builder.enable_all().build()?;
    if args.rules {
        return runtime.block_on(promptgate_fake_upstream::rules::serve(
            args.listen,
            announce,
        ));
    }
    let answers = Answers::new(
        Duration::from_millis(args.delay_ms),
        Duration::from_millis(args.chunk_interval_ms),
    );
    runtime.block_on(serve(args.listen, answers, announce))
}

/// Prints the address scripts read, and flushes it (stdout may be a pipe).
#[allow(clippy::print_stdout)]
fn announce(address: SocketAddr) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on http://{address}")?;
    out.flush()
}
