//! The attribution worker over a real outbox and a scripted engine.

use super::*;
use crate::outbox::{QueueLimits, RequestRecord, RequestState};
use crate::testing::ScriptedEngine;
use tributary_attrib_api::{CompletionRequest, Sampling, SamplingRequest};

const LIMITS: QueueLimits = QueueLimits {
    per_payer: 32,
    total: 4096,
};

struct Worker {
    _dir: tempfile::TempDir,
    outbox: Arc<Outbox>,
    engine: Arc<ScriptedEngine>,
    progress: Arc<Progress>,
    attributor: Attributor,
}

fn worker() -> Worker {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Arc::new(Outbox::open(dir.path().join("outbox.redb")).unwrap());
    let engine = Arc::new(ScriptedEngine::default());
    let progress = Arc::new(Progress::default());
    let attributor = Attributor::new(
        outbox.clone(),
        engine.clone(),
        Arc::new(Metrics::new()),
        progress.clone(),
        Arc::new(Notify::new()),
        Arc::new(Mutex::new(HashMap::new())),
    );
    Worker {
        _dir: dir,
        outbox,
        engine,
        progress,
        attributor,
    }
}

fn record(id: u64, payer: &str) -> RequestRecord {
    RequestRecord {
        request_id: id,
        model_id: 1,
        version: 1,
        payer: payer.into(),
        prompt_hash: "ab".repeat(32),
        amount: "1000".into(),
        asset: "utrib".into(),
        seen_height: 1,
        expires_at: Some(10_000),
    }
}

fn prompt(id: u64) -> CompletionRequest {
    CompletionRequest {
        model: "model".into(),
        prompt: format!("prompt {id}"),
        sampling: SamplingRequest::exactly(&Sampling::for_paid_request(id)),
        request_id: Some(id),
        model_id: Some(1),
        model_version: Some(1),
        method: Some("trak-logra-v1".into()),
    }
}

fn state(w: &Worker, id: u64) -> RequestState {
    w.outbox.get(id).unwrap().unwrap().state
}

#[tokio::test]
async fn a_prompted_request_is_attributed_in_the_first_round_behind_hundreds_never_prompted() {
    let w = worker();
    let unprompted: Vec<RequestRecord> = (1..=500)
        .map(|id| record(id, &format!("payer{}", id % 50)))
        .collect();
    w.outbox.record_seen(&unprompted, 1, LIMITS).unwrap();
    w.outbox
        .record_prompt(&record(501, "honest"), &prompt(501), &[7; 32], LIMITS)
        .unwrap();
    assert_eq!(w.attributor.attribute_round().await.unwrap(), 1);
    assert_eq!(
        w.engine.asked_ids(),
        vec![501],
        "only prompted requests reach the engine"
    );
    assert!(matches!(state(&w, 501), RequestState::Attributed { .. }));
    assert!(w.outbox.response(501).unwrap().is_some());
    assert_eq!(w.outbox.counts().unwrap().seen, 500);
}

#[tokio::test]
async fn one_payers_many_prompts_do_not_hold_back_anothers() {
    let w = worker();
    for id in 1..=30 {
        w.outbox
            .record_prompt(&record(id, "busy"), &prompt(id), &[7; 32], LIMITS)
            .unwrap();
    }
    w.outbox
        .record_prompt(&record(31, "other"), &prompt(31), &[7; 32], LIMITS)
        .unwrap();
    assert_eq!(w.attributor.attribute_round().await.unwrap(), ROUND);
    assert_eq!(&w.engine.asked_ids()[..3], &[1, 31, 2]);
}

#[tokio::test]
async fn an_engine_outage_keeps_the_prompt_queued_and_tells_the_waiting_payers() {
    let w = worker();
    w.outbox
        .record_prompt(&record(1, "a"), &prompt(1), &[7; 32], LIMITS)
        .unwrap();
    let changes = w.progress.subscribe();
    w.engine.set_down(true);
    assert!(matches!(
        w.attributor.attribute_round().await,
        Err(AttributeError::Engine(EngineCallError::Unavailable(_)))
    ));
    assert!(changes.has_changed().unwrap());
    assert!(w.progress.engine_down().is_some());
    assert_eq!(state(&w, 1), RequestState::Prompted);
    w.engine.set_down(false);
    assert_eq!(w.attributor.attribute_round().await.unwrap(), 1);
    assert_eq!(w.progress.engine_down(), None);
}

#[tokio::test]
async fn expired_requests_are_pruned_by_block_time() {
    let w = worker();
    w.outbox
        .record_seen(&[record(1, "a"), record(2, "b")], 1, LIMITS)
        .unwrap();
    w.outbox.set_expiry(2, 20_000).unwrap();
    assert_eq!(w.attributor.prune_expired(9_999).unwrap(), 0);
    assert_eq!(w.attributor.prune_expired(10_000).unwrap(), 1);
    assert!(matches!(state(&w, 1), RequestState::Failed { .. }));
    assert_eq!(state(&w, 2), RequestState::Seen);
}
