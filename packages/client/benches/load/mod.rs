//! What the chain benchmarks share: sending a workload at once and timing it, and the
//! node's memory and the figures' statistics.
// Each benchmark uses its own subset.
#![allow(dead_code)]

use super::common::LiveNet;
use futures::future::join_all;
use std::time::{Duration, Instant};
use tributary_client::{Any, Client, Event, Signer, TxOptions};

/// What one phase of transactions measured.
pub struct Phase {
    pub elapsed: Duration,
    pub latencies: Vec<Duration>,
    pub gas_used: Vec<u64>,
}

/// Hands every transaction to the client at once and waits for all of them. A signer's
/// transactions are broadcast one after another (the client holds its sequence), then confirmed
/// concurrently.
pub async fn run_phase(
    client: &Client,
    signers: &[Signer],
    txs: Vec<(usize, Vec<Any>)>,
    gas_limit: u64,
) -> Phase {
    run_phase_events(client, signers, txs, gas_limit).await.0
}

/// [`run_phase`], also returning each transaction's events, in the order given.
pub async fn run_phase_events(
    client: &Client,
    signers: &[Signer],
    txs: Vec<(usize, Vec<Any>)>,
    gas_limit: u64,
) -> (Phase, Vec<Vec<Event>>) {
    let options = TxOptions {
        gas_limit: Some(gas_limit),
        ..TxOptions::default()
    };
    let options = &options;
    // Every round starts just after a block, so each has the same share of a block interval.
    next_block(client).await;
    let start = Instant::now();
    let outcomes = join_all(txs.into_iter().map(|(signer, msgs)| async move {
        let submitted = Instant::now();
        let outcome = client
            .sign_and_broadcast(&signers[signer], msgs, options)
            .await
            .unwrap_or_else(|e| panic!("a measured transaction failed: {e}"));
        (submitted.elapsed(), outcome.gas_used, outcome.events)
    }))
    .await;
    let elapsed = start.elapsed();
    let mut latencies = Vec::new();
    let mut gas_used = Vec::new();
    let mut events = Vec::new();
    for (latency, gas, tx_events) in outcomes {
        latencies.push(latency);
        gas_used.push(gas);
        events.push(tx_events);
    }
    let phase = Phase {
        elapsed,
        latencies,
        gas_used,
    };
    (phase, events)
}

/// Waits for the block after the latest one.
pub async fn next_block(client: &Client) {
    let latest = client.latest_height().await.expect("latest height");
    while client.latest_height().await.expect("latest height") <= latest {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// VmRSS of the validator's process, in KiB.
pub fn resident_memory_kib(net: &LiveNet) -> Option<u64> {
    let pid = net.devnet.pid(0)?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// Nearest-rank percentile, in milliseconds.
pub fn percentile_ms(values: &[Duration], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank - 1].as_secs_f64() * 1000.0
}

pub fn fresh_signer() -> Signer {
    Signer::random("trib").expect("a random key")
}
