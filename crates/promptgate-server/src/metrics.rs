//! The Prometheus scrape endpoint's numbers: invocation counts, latency and token histograms by
//! prompt name, version, model and status, the dollars spent at priced endpoints by prompt name,
//! version and model, and the health of the telemetry queue and exporters.
//!
//! Written by hand in the text exposition format (version 0.0.4): the set of series is small
//! and a registry crate would add more than it saves. Observing an invocation is a few
//! additions under one short lock; rendering happens only when `/metrics` is scraped.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use promptgate_core::invocation::InvocationRecord;

use crate::exporters::{ExporterHealth, ExportersSection};
use crate::telemetry::Counters;
use crate::upstream::CircuitReport;

/// Latency buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];
/// Token-count buckets.
pub const TOKEN_BUCKETS: [f64; 9] = [
    16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0,
];

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Labels {
    prompt: String,
    version: String,
    model: String,
    status: &'static str,
}

#[derive(Debug, Clone)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: usize) -> Self {
        Histogram {
            counts: vec![0; bounds],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, bounds: &[f64], value: f64) {
        for (slot, bound) in self.counts.iter_mut().zip(bounds) {
            if value <= *bound {
                *slot += 1;
            }
        }
        self.sum += value;
        self.count += 1;
    }
}

#[derive(Debug, Clone)]
struct Series {
    latency: Histogram,
    input_tokens: Histogram,
    output_tokens: Histogram,
    /// Dollars spent; none until a record with a cost is observed, so an unpriced endpoint
    /// shows no cost series rather than a misleading 0.
    cost_usd: Option<f64>,
}

/// `[exporters.prometheus]`, defaults filled in.
#[derive(Debug, Clone, Copy)]
pub struct PrometheusSettings {
    /// Serve `/metrics` (default true).
    pub enabled: bool,
    /// Require a bearer token with `ai:telemetry:read` (default false).
    pub require_token: bool,
}

impl Default for PrometheusSettings {
    fn default() -> Self {
        PrometheusSettings {
            enabled: true,
            require_token: false,
        }
    }
}

impl PrometheusSettings {
    /// The settings of `[exporters.prometheus]`, the defaults without it.
    pub fn from_config(exporters: Option<&ExportersSection>) -> Self {
        let d = PrometheusSettings::default();
        match exporters.and_then(|e| e.prometheus.as_ref()) {
            Some(p) => PrometheusSettings {
                enabled: p.enabled.unwrap_or(d.enabled),
                require_token: p.require_token.unwrap_or(d.require_token),
            },
            None => d,
        }
    }
}

/// The gateway's invocation metrics.
#[derive(Debug, Default)]
pub struct GatewayMetrics {
    series: Mutex<BTreeMap<Labels, Series>>,
    /// `promptgate_fallbacks_total` by (prompt, from, to).
    fallbacks: Mutex<BTreeMap<(String, String, String), u64>>,
}

impl GatewayMetrics {
    /// Counts one finished invocation of the prompt named `prompt_name`.
    pub fn observe(&self, prompt_name: &str, record: &InvocationRecord) {
        let labels = Labels {
            prompt: prompt_name.to_owned(),
            version: record.version.clone(),
            model: record.model.clone(),
            status: record.status.as_str(),
        };
        let Ok(mut series) = self.series.lock() else {
            return;
        };
        let entry = series.entry(labels).or_insert_with(|| Series {
            latency: Histogram::new(LATENCY_BUCKETS.len()),
            input_tokens: Histogram::new(TOKEN_BUCKETS.len()),
            output_tokens: Histogram::new(TOKEN_BUCKETS.len()),
            cost_usd: None,
        });
        entry
            .latency
            .observe(&LATENCY_BUCKETS, record.latency_ms / 1000.0);
        entry
            .input_tokens
            .observe(&TOKEN_BUCKETS, f64::from(record.prompt_tokens));
        entry
            .output_tokens
            .observe(&TOKEN_BUCKETS, f64::from(record.completion_tokens));
        if let Some(cost) = record.cost_usd {
            *entry.cost_usd.get_or_insert(0.0) += cost;
        }
    }

    /// Counts one move of an invocation of `prompt` from the endpoint `from` (failed, or
    /// skipped because the request did not fit it) to the endpoint `to`, tried next.
    pub fn count_fallback(&self, prompt: &str, from: &str, to: &str) {
        if let Ok(mut fallbacks) = self.fallbacks.lock() {
            *fallbacks
                .entry((prompt.to_owned(), from.to_owned(), to.to_owned()))
                .or_default() += 1;
        }
    }

    /// The exposition text: invocation series, the telemetry queue and each exporter's health.
    pub fn render(
        &self,
        queue: &Counters,
        exporters: &[(String, std::sync::Arc<ExporterHealth>)],
    ) -> String {
        let series = self.series.lock().map(|s| s.clone()).unwrap_or_default();
        let mut out = String::with_capacity(4096);
        header(
            &mut out,
            "promptgate_invocations_total",
            "counter",
            "Invocations by prompt, version, model and status.",
        );
        for (labels, s) in &series {
            let _ = writeln!(
                out,
                "promptgate_invocations_total{{{}}} {}",
                label_text(labels, &[]),
                s.latency.count
            );
        }
        header(
            &mut out,
            "promptgate_invocation_duration_seconds",
            "histogram",
            "Time in the gateway per invocation.",
        );
        for (labels, s) in &series {
            histogram(
                &mut out,
                "promptgate_invocation_duration_seconds",
                &label_text(labels, &[]),
                &LATENCY_BUCKETS,
                &s.latency,
            );
        }
        header(
            &mut out,
            "promptgate_tokens",
            "histogram",
            "Tokens per invocation, by type (input or output).",
        );
        for (labels, s) in &series {
            histogram(
                &mut out,
                "promptgate_tokens",
                &label_text(labels, &[("type", "input")]),
                &TOKEN_BUCKETS,
                &s.input_tokens,
            );
            histogram(
                &mut out,
                "promptgate_tokens",
                &label_text(labels, &[("type", "output")]),
                &TOKEN_BUCKETS,
                &s.output_tokens,
            );
        }
        // The cost counter has no status label: a failed call's tokens cost money too, and a
        // spend is read per prompt, version and model. Series of one triple are summed.
        let mut costs: BTreeMap<String, f64> = BTreeMap::new();
        for (labels, s) in &series {
            if let Some(cost) = s.cost_usd {
                *costs.entry(model_labels(labels)).or_default() += cost;
            }
        }
        header(
            &mut out,
            "promptgate_cost_usd_total",
            "counter",
            "US dollars spent at priced model endpoints, by prompt, version and model.",
        );
        for (labels, cost) in &costs {
            let _ = writeln!(out, "promptgate_cost_usd_total{{{labels}}} {cost}");
        }
        for (name, help, value) in [
            (
                "promptgate_telemetry_records_queued_total",
                "Telemetry records queued for storage.",
                queue.emitted(),
            ),
            (
                "promptgate_telemetry_records_dropped_total",
                "Telemetry records dropped because the queue was full (normally zero).",
                queue.dropped(),
            ),
            (
                "promptgate_telemetry_records_stored_total",
                "Telemetry records stored in the database.",
                queue.stored(),
            ),
            (
                "promptgate_telemetry_store_failures_total",
                "Telemetry batches the database refused (retried).",
                queue.store_failures(),
            ),
        ] {
            header(&mut out, name, "counter", help);
            let _ = writeln!(out, "{name} {value}");
        }
        let exporter_series: [ExporterSeries; 4] = [
            (
                "promptgate_exporter_queued_records",
                "gauge",
                "Stored records an exporter has not delivered yet.",
                |h| h.queued.load(Ordering::Relaxed),
            ),
            (
                "promptgate_exporter_delivered_records_total",
                "counter",
                "Records an exporter delivered.",
                |h| h.delivered.load(Ordering::Relaxed),
            ),
            (
                "promptgate_exporter_failures_total",
                "counter",
                "Failed delivery attempts (each retried).",
                |h| h.failed.load(Ordering::Relaxed),
            ),
            (
                "promptgate_exporter_skipped_records_total",
                "counter",
                "Records skipped because the backlog was over its bounds.",
                |h| h.skipped.load(Ordering::Relaxed),
            ),
        ];
        for (name, kind, help, read) in exporter_series {
            header(&mut out, name, kind, help);
            for (exporter, health) in exporters {
                let _ = writeln!(
                    out,
                    "{name}{{exporter=\"{}\"}} {}",
                    escape(exporter),
                    read(health)
                );
            }
        }
        let fallbacks = self.fallbacks.lock().map(|f| f.clone()).unwrap_or_default();
        header(
            &mut out,
            "promptgate_fallbacks_total",
            "counter",
            "Moves of an invocation from a failed model endpoint to the next one it tries.",
        );
        for ((prompt, from, to), count) in &fallbacks {
            let _ = writeln!(
                out,
                "promptgate_fallbacks_total{{prompt=\"{}\",from=\"{}\",to=\"{}\"}} {count}",
                escape(prompt),
                escape(from),
                escape(to)
            );
        }
        out
    }
}

/// Appends each model endpoint's circuit breaker: `promptgate_circuit_state` (0 closed, 1 open,
/// 2 half-open) and `promptgate_circuit_opened_total`.
pub fn write_circuits(out: &mut String, circuits: &[(String, CircuitReport)]) {
    header(
        out,
        "promptgate_circuit_state",
        "gauge",
        "Each model endpoint's circuit breaker: 0 closed, 1 open, 2 half-open.",
    );
    for (endpoint, report) in circuits {
        let _ = writeln!(
            out,
            "promptgate_circuit_state{{endpoint=\"{}\"}} {}",
            escape(endpoint),
            report.snapshot.state.gauge()
        );
    }
    header(
        out,
        "promptgate_circuit_opened_total",
        "counter",
        "Times each model endpoint's circuit breaker opened.",
    );
    for (endpoint, report) in circuits {
        let _ = writeln!(
            out,
            "promptgate_circuit_opened_total{{endpoint=\"{}\"}} {}",
            escape(endpoint),
            report.opened_total
        );
    }
}

/// One exporter metric: name, type, help, and how to read it from an exporter's health.
type ExporterSeries = (
    &'static str,
    &'static str,
    &'static str,
    fn(&ExporterHealth) -> u64,
);

/// Appends one counter without labels (for the gateway's own counts kept outside
/// [`GatewayMetrics`], such as failed logins).
pub fn write_counter(out: &mut String, name: &str, help: &str, value: u64) {
    header(out, name, "counter", help);
    let _ = writeln!(out, "{name} {value}");
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn histogram(out: &mut String, name: &str, labels: &str, bounds: &[f64], h: &Histogram) {
    for (bound, count) in bounds.iter().zip(&h.counts) {
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {count}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum);
    let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
}

fn label_text(labels: &Labels, extra: &[(&str, &str)]) -> String {
    let mut text = format!("{},status=\"{}\"", model_labels(labels), labels.status);
    for (name, value) in extra {
        let _ = write!(text, ",{name}=\"{}\"", escape(value));
    }
    text
}

/// The prompt, version and model labels, escaped (every series but the cost adds the status).
fn model_labels(labels: &Labels) -> String {
    format!(
        "prompt=\"{}\",version=\"{}\",model=\"{}\"",
        escape(&labels.prompt),
        escape(&labels.version),
        escape(&labels.model),
    )
}

/// Escapes a label value as the exposition format requires.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use promptgate_core::invocation::InvocationStatus;

    fn record(latency_ms: f64, status: InvocationStatus) -> InvocationRecord {
        InvocationRecord {
            id: "inv-1".into(),
            timestamp: time::OffsetDateTime::UNIX_EPOCH,
            prompt_id: uuid::Uuid::nil(),
            version: "1.0.0".into(),
            model: "echo".into(),
            status,
            error_code: None,
            latency_ms,
            upstream_latency_ms: None,
            time_to_first_token_ms: None,
            prompt_tokens: 20,
            completion_tokens: 300,
            session_id: None,
            client_id: "c".into(),
            metadata: BTreeMap::new(),
            label: None,
            variable_names: Vec::new(),
            schema_valid: None,
            tool_call_count: 0,
            api_key_id: None,
            cost_usd: None,
            endpoint_ref: "openai/gpt-4o".to_owned(),
            fallback_attempts: Vec::new(),
        }
    }

    #[test]
    fn histograms_are_cumulative_and_labels_escaped() {
        let metrics = GatewayMetrics::default();
        metrics.observe("say \"hi\"\\", &record(3.0, InvocationStatus::Success));
        metrics.observe("say \"hi\"\\", &record(700.0, InvocationStatus::Success));
        let text = metrics.render(&Counters::default(), &[]);
        assert!(text.contains(r#"prompt="say \"hi\"\\""#), "{text}");
        assert!(text.contains(r#"le="0.005"} 1"#), "{text}");
        assert!(text.contains(r#"le="1"} 2"#), "{text}");
        assert!(text.contains(r#"le="+Inf"} 2"#), "{text}");
        assert!(text.contains("promptgate_invocations_total{"), "{text}");
        assert!(text.contains(r#"type="output",le="256"} 0"#), "{text}");
        assert!(text.contains(r#"type="output",le="1024"} 2"#), "{text}");
        assert!(
            !text.contains("promptgate_cost_usd_total{"),
            "no cost series for unpriced calls: {text}"
        );
    }

    #[test]
    fn cost_is_summed_per_prompt_version_and_model_over_statuses() {
        let metrics = GatewayMetrics::default();
        let priced = |cost, status| InvocationRecord {
            cost_usd: Some(cost),
            ..record(5.0, status)
        };
        metrics.observe("p", &priced(0.25, InvocationStatus::Success));
        metrics.observe("p", &priced(0.5, InvocationStatus::Success));
        metrics.observe("p", &priced(0.125, InvocationStatus::Error));
        metrics.observe("p", &record(5.0, InvocationStatus::Success));
        metrics.observe(
            "p",
            &InvocationRecord {
                version: "2.0.0".into(),
                ..record(5.0, InvocationStatus::Success)
            },
        );
        let text = metrics.render(&Counters::default(), &[]);
        assert!(
            text.contains("# TYPE promptgate_cost_usd_total counter\n"),
            "{text}"
        );
        // 0.25 + 0.5 + 0.125, the ERROR call's included; the unpriced call adds nothing.
        assert!(
            text.contains(
                "promptgate_cost_usd_total{prompt=\"p\",version=\"1.0.0\",model=\"echo\"} 0.875\n"
            ),
            "{text}"
        );
        assert!(!text.contains(r#"promptgate_cost_usd_total{prompt="p",version="2.0.0""#));
    }
}
