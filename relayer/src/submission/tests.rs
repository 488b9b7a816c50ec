//! The payer's side against a scripted chain and engine: no node, no model.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use cosmwasm_std::{Addr, HexBinary, Timestamp, Uint128};
use tributary_attrib_api::{AttributionSummary, Sampling};
use tributary_types::payout::InferenceRequest;
use tributary_types::{AssetInfo, AttributionPacket, Price};

use super::*;

const PAYER: &str = "trib18pz45j9fupuumnf2a5hamgaptvax0s0djymqpw";

/// Request ids with their prompts, as paid on chain.
struct ScriptedLedger {
    requests: Mutex<HashMap<u64, InferenceRequest>>,
}

impl ScriptedLedger {
    fn new() -> Self {
        ScriptedLedger {
            requests: Mutex::new(HashMap::new()),
        }
    }

    fn pay(&self, id: u64, prompt: &str, model: (u64, u32)) {
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
            expires_at: Timestamp::from_seconds(4_600),
            status: RequestStatus::Open,
            agreed_packet: None,
            finalizable_at: None,
            distinct_packets: 0,
            settlement: None,
        };
        self.requests.lock().unwrap().insert(id, request);
    }

    fn set_status(&self, id: u64, status: RequestStatus) {
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
}

/// Answers every request with a packet for it, and remembers what it was asked.
#[derive(Default)]
struct ScriptedEngine {
    asked: Mutex<Vec<CompletionRequest>>,
}

impl ScriptedEngine {
    fn calls(&self) -> usize {
        self.asked.lock().unwrap().len()
    }

    fn last(&self) -> CompletionRequest {
        self.asked.lock().unwrap().last().cloned().unwrap()
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
        Ok(response_for(request))
    }
}

fn response_for(request: &CompletionRequest) -> CompletionResponse {
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

struct Desk {
    _dir: tempfile::TempDir,
    ledger: Arc<ScriptedLedger>,
    engine: Arc<ScriptedEngine>,
    outbox: Arc<Outbox>,
    submissions: Submissions,
}

/// Submissions for model 1 version 1.
fn desk() -> Desk {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Arc::new(Outbox::open(dir.path().join("outbox.redb")).unwrap());
    let ledger = Arc::new(ScriptedLedger::new());
    let engine = Arc::new(ScriptedEngine::default());
    let submissions = Submissions::new(
        ledger.clone(),
        outbox.clone(),
        engine.clone(),
        [(1, 1)].into_iter().collect(),
        Arc::new(Notify::new()),
    );
    Desk {
        _dir: dir,
        ledger,
        engine,
        outbox,
        submissions,
    }
}

fn paid(id: u64, prompt: &str) -> PaidCompletion {
    serde_json::from_value(serde_json::json!({"request_id": id, "prompt": prompt})).unwrap()
}

// --- the payment check ------------------------------------------------------------------

#[tokio::test]
async fn a_paid_prompt_is_kept_and_answered_with_its_packet() {
    let d = desk();
    d.ledger.pay(5, "What is a pipe?", (1, 1));
    let response = d
        .submissions
        .submit(paid(5, "What is a pipe?"))
        .await
        .unwrap();
    let packet = response.packet.unwrap();
    assert_eq!(
        (packet.request_id, packet.model_id, packet.model_version),
        (5, 1, 1)
    );
    assert!(d.outbox.prompt(5).unwrap().is_some(), "the prompt is kept");
    let asked = d.engine.last();
    assert_eq!(asked.model, "model");
    assert_eq!(asked.request_id, Some(5));
}

#[tokio::test]
async fn unpaid_foreign_closed_and_mismatched_requests_are_refused_before_the_engine() {
    let d = desk();
    d.ledger.pay(6, "mine", (1, 1));
    d.ledger.pay(7, "other model", (2, 1));
    d.ledger.pay(8, "closed", (1, 1));
    d.ledger.set_status(8, RequestStatus::Refunded);
    let refusals = [
        (paid(99, "unpaid"), "request 99 is not paid on chain"),
        (paid(6, "not mine"), "does not match the prompt_hash"),
        (paid(7, "other model"), "does not serve"),
        (paid(8, "closed"), "request 8 is refunded"),
    ];
    for (request, expected) in refusals {
        let e = d.submissions.submit(request).await.unwrap_err();
        assert!(e.to_string().contains(expected), "{e}");
    }
    assert_eq!(d.engine.calls(), 0);
    for id in [6, 7, 8, 99] {
        assert!(d.outbox.prompt(id).unwrap().is_none(), "request {id}");
    }
}

#[tokio::test]
async fn unknown_fields_are_refused_by_name() {
    let d = desk();
    d.ledger.pay(9, "hi", (1, 1));
    let request: PaidCompletion = serde_json::from_value(
        serde_json::json!({"request_id": 9, "prompt": "hi", "max_token": 3}),
    )
    .unwrap();
    let e = d.submissions.submit(request).await.unwrap_err();
    assert!(
        matches!(&e, SubmitError::UnknownFields(f) if f == "max_token"),
        "{e}"
    );
}
