//! Prometheus metrics and the telemetry endpoint: `/healthz`, `/metrics`, `/status`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use serde::Serialize;

use crate::outbox::{Outbox, OutboxCounts};

/// The labels of [`Metrics::requests`]: which model version, and what became of the request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub model: String,
    pub version: String,
    /// `attributed`, `committed` or `failed`.
    pub outcome: &'static str,
}

/// Every metric the relayer exports.
pub struct Metrics {
    registry: Registry,
    pub requests_seen: Counter,
    pub requests_dropped: Counter,
    pub packets_attributed: Counter,
    pub packets_committed: Counter,
    pub commit_txs: Counter,
    pub requests_failed: Counter,
    pub requests_finalized: Counter,
    pub retries: Counter,
    pub fees_spent: Counter,
    pub pending: Gauge,
    pub in_flight_txs: Gauge,
    pub last_height: Gauge,
    pub commit_latency: Histogram,
    /// Requests by model version and outcome.
    pub requests: Family<RequestLabels, Counter>,
    /// One engine call: generation and attribution of one prompt.
    pub engine_latency: Histogram,
    /// The relayer key's balance of the fee denom, in its base unit.
    pub balance: Gauge,
    /// Unix seconds of the last successful chain call; `/healthz` reports it.
    last_chain_contact: AtomicU64,
    /// The last error worth showing an operator, if any.
    last_error: Mutex<Option<String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tributary_relayer");
        let commit_latency = Histogram::new(exponential_buckets(0.25, 2.0, 12));
        let m = Metrics {
            requests_seen: Counter::default(),
            requests_dropped: Counter::default(),
            packets_attributed: Counter::default(),
            packets_committed: Counter::default(),
            commit_txs: Counter::default(),
            requests_failed: Counter::default(),
            requests_finalized: Counter::default(),
            retries: Counter::default(),
            fees_spent: Counter::default(),
            pending: Gauge::default(),
            in_flight_txs: Gauge::default(),
            last_height: Gauge::default(),
            commit_latency,
            requests: Family::default(),
            engine_latency: Histogram::new(exponential_buckets(0.01, 2.0, 14)),
            balance: Gauge::default(),
            last_chain_contact: AtomicU64::new(0),
            last_error: Mutex::new(None),
            registry: Registry::default(),
        };
        registry.register(
            "requests_seen",
            "Paid requests of served models seen on chain",
            m.requests_seen.clone(),
        );
        registry.register(
            "requests_dropped",
            "Paid requests not kept while waiting for their prompt: their payer or everyone had too many waiting",
            m.requests_dropped.clone(),
        );
        registry.register(
            "packets_attributed",
            "Attribution packets computed",
            m.packets_attributed.clone(),
        );
        registry.register(
            "packets_committed",
            "Packets whose commit is confirmed in a block",
            m.packets_committed.clone(),
        );
        registry.register(
            "commit_txs",
            "CommitAttribution transactions confirmed",
            m.commit_txs.clone(),
        );
        registry.register(
            "requests_failed",
            "Requests given up for good (expired, closed, refused by the contract)",
            m.requests_failed.clone(),
        );
        registry.register(
            "requests_finalized",
            "Requests settled by this relayer's Finalize transactions",
            m.requests_finalized.clone(),
        );
        registry.register(
            "retries",
            "Operations retried after a transient failure",
            m.retries.clone(),
        );
        registry.register(
            "fees_spent",
            "Fees paid by the relayer's key, in the fee denom's base unit",
            m.fees_spent.clone(),
        );
        registry.register(
            "pending_requests",
            "Requests in the outbox not yet committed",
            m.pending.clone(),
        );
        registry.register(
            "in_flight_txs",
            "Broadcast transactions not yet settled",
            m.in_flight_txs.clone(),
        );
        registry.register(
            "last_height",
            "The last block height scanned for requests",
            m.last_height.clone(),
        );
        registry.register(
            "commit_latency_seconds",
            "From a request being seen to its commit being confirmed",
            m.commit_latency.clone(),
        );
        registry.register(
            "requests",
            "Requests by model, version and outcome (attributed, committed, failed)",
            m.requests.clone(),
        );
        registry.register(
            "engine_latency_seconds",
            "One engine call: a prompt's completion and attribution",
            m.engine_latency.clone(),
        );
        registry.register(
            "operator_balance",
            "The relayer key's bank balance of the fee denom, in its base unit",
            m.balance.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Counts one request of model `model` version `version` with `outcome`.
    pub fn count(&self, model: u64, version: u32, outcome: &'static str) {
        self.requests
            .get_or_create(&RequestLabels {
                model: model.to_string(),
                version: version.to_string(),
                outcome,
            })
            .inc();
    }

    /// Notes a successful chain call.
    pub fn chain_ok(&self) {
        self.last_chain_contact.store(unix_now(), Ordering::Relaxed);
    }

    /// Keeps an error for `/status` and `/healthz`.
    pub fn set_error(&self, message: Option<String>) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = message;
    }

    fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The registry in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }

    /// Refreshes the outbox gauges.
    pub fn observe_outbox(&self, counts: &OutboxCounts, in_flight: usize) {
        let pending = counts.seen + counts.prompted + counts.attributed + counts.broadcast;
        self.pending.set(i64::try_from(pending).unwrap_or(i64::MAX));
        self.in_flight_txs
            .set(i64::try_from(in_flight).unwrap_or(i64::MAX));
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// `GET /status` and the `status` command's answer.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct StatusReport {
    pub address: String,
    pub chain_id: String,
    pub scanned_through_height: Option<u64>,
    pub counts: OutboxCounts,
    pub in_flight_txs: usize,
    pub last_chain_contact_unix: u64,
    pub last_error: Option<String>,
}

/// What the telemetry routes read.
pub struct Telemetry {
    pub metrics: Arc<Metrics>,
    pub outbox: Arc<Outbox>,
    pub address: String,
    pub chain_id: String,
}

impl Telemetry {
    pub fn report(&self) -> Result<StatusReport, String> {
        let counts = self.outbox.counts().map_err(|e| e.to_string())?;
        let in_flight = self.outbox.in_flight().map_err(|e| e.to_string())?.len();
        Ok(StatusReport {
            address: self.address.clone(),
            chain_id: self.chain_id.clone(),
            scanned_through_height: self.outbox.cursor().map_err(|e| e.to_string())?,
            counts,
            in_flight_txs: in_flight,
            last_chain_contact_unix: self.metrics.last_chain_contact.load(Ordering::Relaxed),
            last_error: self.metrics.last_error(),
        })
    }
}

/// `/healthz`, `/metrics` and `/status`.
pub fn telemetry_router(telemetry: Arc<Telemetry>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .with_state(telemetry)
}

async fn healthz(State(t): State<Arc<Telemetry>>) -> Response {
    let last = t.metrics.last_chain_contact.load(Ordering::Relaxed);
    // Healthy while the chain answered within the last minute.
    let ok = last != 0 && unix_now().saturating_sub(last) <= 60;
    let body = serde_json::json!({
        "status": if ok { "ok" } else { "degraded" },
        "last_chain_contact_unix": last,
        "last_height": t.metrics.last_height.get(),
        "last_error": t.metrics.last_error(),
    });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics(State(t): State<Arc<Telemetry>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        t.metrics.encode(),
    )
        .into_response()
}

async fn status(State(t): State<Arc<Telemetry>>) -> Response {
    match t.report() {
        Ok(report) => Json(report).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(serde_json::json!({ "error": e })),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_every_metric_with_the_prefix() {
        let m = Metrics::new();
        m.packets_committed.inc_by(3);
        m.commit_latency.observe(1.5);
        let text = m.encode();
        assert!(
            text.contains("tributary_relayer_packets_committed_total 3"),
            "{text}"
        );
        assert!(
            text.contains("tributary_relayer_commit_latency_seconds_count 1"),
            "{text}"
        );
        for name in [
            "requests_seen",
            "fees_spent",
            "last_height",
            "pending_requests",
            "retries",
        ] {
            assert!(
                text.contains(&format!("tributary_relayer_{name}")),
                "{name}: {text}"
            );
        }
    }

    #[test]
    fn requests_are_counted_by_model_version_and_outcome() {
        let m = Metrics::new();
        m.count(3, 1, "attributed");
        m.count(3, 1, "attributed");
        m.count(3, 2, "failed");
        m.balance.set(12_345);
        m.engine_latency.observe(0.2);
        let text = m.encode();
        for line in [
            "tributary_relayer_requests_total{model=\"3\",version=\"1\",outcome=\"attributed\"} 2",
            "tributary_relayer_requests_total{model=\"3\",version=\"2\",outcome=\"failed\"} 1",
            "tributary_relayer_operator_balance 12345",
            "tributary_relayer_engine_latency_seconds_count 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
    }

    #[test]
    fn the_grafana_dashboard_queries_only_metrics_the_relayer_exports() {
        let dashboard: serde_json::Value =
            serde_json::from_str(include_str!("../deploy/grafana-dashboard.json")).unwrap();
        let m = Metrics::new();
        m.count(1, 1, "attributed");
        let text = m.encode();
        let exported: std::collections::BTreeSet<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .collect();
        let mut queried = 0;
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"].as_str().unwrap();
                for (at, _) in expr.match_indices("tributary_relayer_") {
                    let name: String = expr[at..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    assert!(
                        exported.contains(name.as_str()),
                        "panel {:?} queries {name}, which the relayer does not export",
                        panel["title"]
                    );
                    queried += 1;
                }
            }
        }
        assert!(queried >= 10, "{queried}");
    }
}
