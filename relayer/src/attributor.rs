//! The attribution worker: turns requests whose prompt arrived into packets, the only caller of
//! the engine.
//!
//! Each round takes up to [`ROUND`] `Prompted` requests from the outbox, taking turns between
//! models and payers, so a payer with many requests (or many that never get a prompt, which
//! wait apart in `Seen`) cannot hold the others back. Payers waiting on their completion hear of
//! every request done through [`Progress`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use thiserror::Error;
use tokio::sync::{watch, Notify};

use crate::engine::{EngineBackend, EngineCallError};
use crate::metrics::Metrics;
use crate::outbox::{Outbox, OutboxError, RequestRecord};

/// Most requests one round attributes before it looks at the queue again.
pub const ROUND: usize = 16;

/// Why a round stopped; the worker retries it.
#[derive(Debug, Error)]
pub enum AttributeError {
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error(transparent)]
    Engine(EngineCallError),
}

/// What the attributor has done, for the payers waiting on their completions.
pub struct Progress {
    changed: watch::Sender<u64>,
    /// Why the engine failed, and the change count when it did.
    engine_down: Mutex<Option<(String, u64)>>,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            changed: watch::Sender::new(0),
            engine_down: Mutex::new(None),
        }
    }
}

impl Progress {
    /// Counts every request attributed or given up and every change of the engine's health.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Why the engine failed the last request it was given, while it keeps failing.
    pub fn engine_down(&self) -> Option<String> {
        self.engine_down_since(0)
    }

    /// [`Progress::engine_down`], when the engine failed after the count was `seen`: a payer
    /// who started waiting then hears of an outage only once the worker met it.
    pub fn engine_down_since(&self, seen: u64) -> Option<String> {
        self.engine_down
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .filter(|(_, at)| *at > seen)
            .map(|(reason, _)| reason.clone())
    }

    fn set_engine_down(&self, reason: Option<String>) {
        let mut down = self
            .engine_down
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.changed();
        *down = reason.map(|r| (r, *self.changed.borrow()));
    }

    /// Tells the waiting payers to look again.
    pub fn changed(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// The attribution worker's parts.
pub struct Attributor {
    outbox: Arc<Outbox>,
    engine: Arc<dyn EngineBackend>,
    metrics: Arc<Metrics>,
    progress: Arc<Progress>,
    wake_committer: Arc<Notify>,
    /// When each packet became ready: a partial batch waits `max_delay_ms` from the oldest.
    attributed_at: Arc<Mutex<HashMap<u64, Instant>>>,
}

impl Attributor {
    pub fn new(
        outbox: Arc<Outbox>,
        engine: Arc<dyn EngineBackend>,
        metrics: Arc<Metrics>,
        progress: Arc<Progress>,
        wake_committer: Arc<Notify>,
        attributed_at: Arc<Mutex<HashMap<u64, Instant>>>,
    ) -> Self {
        Attributor {
            outbox,
            engine,
            metrics,
            progress,
            wake_committer,
            attributed_at,
        }
    }

    /// Attributes up to [`ROUND`] prompted requests, taking turns between models and payers;
    /// returns how many it settled (attributed or given up). Stops at the first engine outage,
    /// leaving the rest queued.
    pub async fn attribute_round(&self) -> Result<usize, AttributeError> {
        let ready = self.outbox.ready_to_attribute(ROUND)?;
        let mut settled = 0;
        for (record, prompt) in ready {
            let id = record.request_id;
            let started = Instant::now();
            let outcome = self.engine.complete(&prompt).await;
            self.metrics
                .engine_latency
                .observe(started.elapsed().as_secs_f64());
            match outcome {
                Ok(response) if response.packet.is_some() => {
                    match self.outbox.set_attributed(id, &response) {
                        Ok(()) => {}
                        // Given up meanwhile (expired): nothing to commit.
                        Err(OutboxError::IllegalTransition { .. }) => continue,
                        Err(e) => return Err(e.into()),
                    }
                    self.metrics.packets_attributed.inc();
                    self.metrics
                        .count(record.model_id, record.version, "attributed");
                    self.attributed_at
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(id, Instant::now());
                    tracing::info!(request_id = id, payer = %record.payer, "attributed");
                    self.wake_committer.notify_one();
                }
                Ok(_) => self.fail(&record, "the engine returned no attribution packet")?,
                Err(EngineCallError::Rejected { message, .. }) => self.fail(
                    &record,
                    &format!("the engine refused the request: {message}"),
                )?,
                Err(e @ EngineCallError::Unavailable(_)) => {
                    self.progress.set_engine_down(Some(e.to_string()));
                    return Err(AttributeError::Engine(e));
                }
            }
            settled += 1;
            if self.progress.engine_down().is_some() {
                self.progress.set_engine_down(None);
            } else {
                self.progress.changed();
            }
        }
        Ok(settled)
    }

    /// Gives up every request still to be committed whose expiry is at or before `now`
    /// (block time, unix seconds).
    pub fn prune_expired(&self, now: u64) -> Result<usize, OutboxError> {
        let pruned = self.outbox.prune_expired(now)?;
        for id in &pruned {
            if let Some(entry) = self.outbox.get(*id)? {
                self.metrics
                    .count(entry.request.model_id, entry.request.version, "failed");
            }
            tracing::warn!(
                request_id = id,
                "request expired before its packet was committed"
            );
        }
        self.metrics.requests_failed.inc_by(pruned.len() as u64);
        if !pruned.is_empty() {
            self.progress.changed();
        }
        Ok(pruned.len())
    }

    fn fail(&self, record: &RequestRecord, reason: &str) -> Result<(), OutboxError> {
        let request_id = record.request_id;
        tracing::error!(request_id, reason, "request given up");
        self.outbox.mark_failed(request_id, reason)?;
        self.metrics.requests_failed.inc();
        self.metrics
            .count(record.model_id, record.version, "failed");
        Ok(())
    }
}

/// Counts `request_id` under its model version in [`Metrics::requests`].
pub fn count_outcome(
    outbox: &Outbox,
    metrics: &Metrics,
    request_id: u64,
    outcome: &'static str,
) -> Result<(), OutboxError> {
    if let Some(entry) = outbox.get(request_id)? {
        metrics.count(entry.request.model_id, entry.request.version, outcome);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
