//! Scripted stand-ins for the chain and the engine, for tests without a node or a model.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cosmwasm_std::{Addr, HexBinary, Timestamp, Uint128};
use tributary_attrib_api::{AttributionSummary, CompletionRequest, CompletionResponse, Sampling};
use tributary_client::Error as ChainError;
use tributary_types::payout::{InferenceRequest, RequestStatus, RequestTerms};
use tributary_types::{AssetInfo, AttributionPacket, FeeSplit, Price};

use tokio::sync::Notify;

use crate::attributor::{Attributor, Progress};
use crate::engine::{EngineBackend, EngineCallError};
use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::outbox::{Outbox, QueueLimits};
use crate::submission::{PaidCompletion, SubmissionRules, Submissions};

pub const PAYER: &str = "trib18pz45j9fupuumnf2a5hamgaptvax0s0djymqpw";
/// This relayer's key.
pub const ATTESTOR: &str = "trib1qnwy70dsu82ua4cffqku0wr2mehpdgzs83w2kj7qm8j6k5u60lqs9excyz";
/// The method every scripted request was paid under.
pub const METHOD: &str = "graddot-logra-v1";
/// Scripted requests are paid at 1 000 s and expire at 4 600 s.
pub const EXPIRES_AT: u64 = 4_600;

/// Request ids with their prompts and terms, as paid on chain, and the chain's clock.
pub struct ScriptedLedger {
    requests: Mutex<HashMap<u64, InferenceRequest>>,
    attestors: Mutex<Vec<Addr>>,
    now: Mutex<u64>,
    verifiers: Mutex<Vec<String>>,
}

impl ScriptedLedger {
    /// Counts `address` as a bonded verifier.
    pub fn bond_verifier(&self, address: &str) {
        self.verifiers.lock().unwrap().push(address.to_string());
    }

    pub fn new() -> Self {
        ScriptedLedger {
            requests: Mutex::new(HashMap::new()),
            attestors: Mutex::new(vec![Addr::unchecked(ATTESTOR)]),
            now: Mutex::new(1_000),
            verifiers: Mutex::new(Vec::new()),
        }
    }

    pub fn set_now(&self, seconds: u64) {
        *self.now.lock().unwrap() = seconds;
    }

    pub fn set_attestors(&self, attestors: &[&str]) {
        *self.attestors.lock().unwrap() = attestors.iter().map(|a| Addr::unchecked(*a)).collect();
    }

    pub fn pay(&self, id: u64, prompt: &str, model: (u64, u32)) {
        let request = InferenceRequest {
            id,
            payer: Addr::unchecked(PAYER),
            model_id: model.0,
            model_version: model.1,
            prompt_hash: HexBinary::from(tributary_types::sha256(prompt.as_bytes()).to_vec()),
            price: Price {
                asset: AssetInfo::native("utrib"),
                amount: Uint128::new(1000),
            },
            created_at: Timestamp::from_seconds(1_000),
            expires_at: Timestamp::from_seconds(EXPIRES_AT),
            status: RequestStatus::Open,
            agreed_packet: None,
            finalizable_at: None,
            distinct_packets: 0,
            settlement: None,
        };
        self.requests.lock().unwrap().insert(id, request);
    }

    pub fn set_status(&self, id: u64, status: RequestStatus) {
        self.requests.lock().unwrap().get_mut(&id).unwrap().status = status;
    }
}

#[async_trait]
impl Ledger for ScriptedLedger {
    async fn request(&self, id: u64) -> Result<InferenceRequest, ChainError> {
        self.requests
            .lock()
            .unwrap()
            .get(&id)
            .cloned()
            .ok_or_else(|| ChainError::Contract {
                message: format!("request {id} not found"),
            })
    }

    async fn terms(&self, id: u64) -> Result<RequestTerms, ChainError> {
        let request = self.request(id).await?;
        let h = HexBinary::from(vec![7u8; 32]);
        Ok(RequestTerms {
            developer: Addr::unchecked(PAYER),
            attestors: self.attestors.lock().unwrap().clone(),
            quorum: 1,
            method_id: METHOD.into(),
            params_hash: h.clone(),
            weights_hash: h,
            lineage: Vec::new(),
            price: request.price,
            split: FeeSplit {
                contributors_bps: 6000,
                developer_bps: 2000,
                operator_bps: 1500,
                protocol_bps: 500,
            },
            max_entries: 8,
            challenge_window_seconds: 60,
        })
    }

    async fn block_time(&self) -> Result<u64, ChainError> {
        Ok(*self.now.lock().unwrap())
    }

    async fn is_bonded_verifier(&self, address: &str) -> Result<bool, ChainError> {
        Ok(self.verifiers.lock().unwrap().iter().any(|v| v == address))
    }
}

/// Answers every request with a packet for it (or, while down, with an outage), and
/// remembers what it was asked.
#[derive(Default)]
pub struct ScriptedEngine {
    asked: Mutex<Vec<CompletionRequest>>,
    down: AtomicBool,
}

impl ScriptedEngine {
    pub fn calls(&self) -> usize {
        self.asked.lock().unwrap().len()
    }

    pub fn last(&self) -> CompletionRequest {
        self.asked.lock().unwrap().last().cloned().unwrap()
    }

    /// The request ids asked for, in order.
    pub fn asked_ids(&self) -> Vec<u64> {
        self.asked
            .lock()
            .unwrap()
            .iter()
            .filter_map(|r| r.request_id)
            .collect()
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }
}

#[async_trait]
impl EngineBackend for ScriptedEngine {
    fn model_name(&self) -> &str {
        "model"
    }

    async fn complete(
        &self,
        request: &CompletionRequest,
    ) -> Result<CompletionResponse, EngineCallError> {
        self.asked.lock().unwrap().push(request.clone());
        if self.down.load(Ordering::SeqCst) {
            return Err(EngineCallError::Unavailable("connection refused".into()));
        }
        Ok(response_for(request))
    }

    async fn model_info(
        &self,
        _name: &str,
    ) -> Result<tributary_attrib_api::ModelInfo, EngineCallError> {
        Err(EngineCallError::Unavailable(
            "a scripted engine has no model to describe".into(),
        ))
    }
}

pub fn response_for(request: &CompletionRequest) -> CompletionResponse {
    let h = || HexBinary::from(vec![7u8; 32]);
    let method = request
        .method
        .clone()
        .unwrap_or_else(|| "trak-logra-v1".into());
    CompletionResponse {
        model: request.model.clone(),
        request_id: request.request_id,
        completion: " ok".into(),
        completion_hex: hex_of(b" ok"),
        sampling: Sampling::default(),
        weights_hash: "07".repeat(32),
        attribution: AttributionSummary {
            method: method.clone(),
            top: Vec::new(),
            contributors: Vec::new(),
        },
        packet: request.request_id.map(|id| AttributionPacket {
            request_id: id,
            model_id: request.model_id.unwrap_or_default(),
            model_version: request.model_version.unwrap_or_default(),
            weights_hash: h(),
            datanet_roots: Vec::new(),
            method,
            params_hash: h(),
            output_hash: h(),
            scores_root: h(),
            entries: Vec::new(),
        }),
    }
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Submissions over a scripted chain and engine, with a real outbox and attribution worker.
pub struct Desk {
    _dir: tempfile::TempDir,
    pub ledger: Arc<ScriptedLedger>,
    pub engine: Arc<ScriptedEngine>,
    pub outbox: Arc<Outbox>,
    pub submissions: Arc<Submissions>,
    worker: tokio::task::JoinHandle<()>,
}

impl Drop for Desk {
    fn drop(&mut self) {
        self.worker.abort();
    }
}

/// Submissions for model 1 version 1 (and model 3 version 1, engine model `second-model`), with an attribution worker woken by each prompt.
pub fn desk() -> Desk {
    desk_with(QueueLimits {
        per_payer: 32,
        total: 4096,
    })
}

pub fn desk_with(queue: QueueLimits) -> Desk {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Arc::new(Outbox::open(dir.path().join("outbox.redb")).unwrap());
    let ledger = Arc::new(ScriptedLedger::new());
    let engine = Arc::new(ScriptedEngine::default());
    let progress = Arc::new(Progress::default());
    let prompt_arrived = Arc::new(Notify::new());
    let attributor = Attributor::new(
        outbox.clone(),
        engine.clone(),
        Arc::new(Metrics::new()),
        progress.clone(),
        Arc::new(Notify::new()),
        Arc::new(Mutex::new(HashMap::new())),
    );
    let wake = prompt_arrived.clone();
    let worker = tokio::spawn(async move {
        loop {
            wake.notified().await;
            while matches!(attributor.attribute_round().await, Ok(n) if n > 0) {}
        }
    });
    let submissions = Submissions::new(
        ledger.clone(),
        outbox.clone(),
        // Version 1 of model 3 is served by another of the engine's models.
        [
            ((1, 1), engine.model_name().to_string()),
            ((3, 1), "second-model".to_string()),
        ]
        .into_iter()
        .collect(),
        SubmissionRules {
            attestor: ATTESTOR.into(),
            commit_margin_seconds: 60,
            queue,
            response_timeout: Duration::from_secs(5),
        },
        prompt_arrived,
        progress,
    );
    Desk {
        _dir: dir,
        ledger,
        engine,
        outbox,
        submissions: Arc::new(submissions),
        worker,
    }
}

pub fn paid(id: u64, prompt: &str) -> PaidCompletion {
    serde_json::from_value(serde_json::json!({"request_id": id, "prompt": prompt})).unwrap()
}
