//! The payer's side against a scripted chain and engine: no node, no model.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use cosmwasm_std::{Addr, HexBinary, Timestamp, Uint128};
use tributary_attrib_api::{AttributionSummary, Sampling};
use tributary_types::payout::{InferenceRequest, RequestTerms};
use tributary_types::FeeSplit;
use tributary_types::{AssetInfo, AttributionPacket, Price};

use super::*;

const PAYER: &str = "trib18pz45j9fupuumnf2a5hamgaptvax0s0djymqpw";
/// This relayer's key.
const ATTESTOR: &str = "trib1qnwy70dsu82ua4cffqku0wr2mehpdgzs83w2kj7qm8j6k5u60lqs9excyz";
/// The method every scripted request was paid under.
const METHOD: &str = "graddot-logra-v1";
/// Scripted requests are paid at 1 000 s and expire at 4 600 s.
const EXPIRES_AT: u64 = 4_600;

/// Request ids with their prompts and terms, as paid on chain, and the chain's clock.
struct ScriptedLedger {
    requests: Mutex<HashMap<u64, InferenceRequest>>,
    attestors: Mutex<Vec<Addr>>,
    now: Mutex<u64>,
}

impl ScriptedLedger {
    fn new() -> Self {
        ScriptedLedger {
            requests: Mutex::new(HashMap::new()),
            attestors: Mutex::new(vec![Addr::unchecked(ATTESTOR)]),
            now: Mutex::new(1_000),
        }
    }

    fn set_now(&self, seconds: u64) {
        *self.now.lock().unwrap() = seconds;
    }

    fn set_attestors(&self, attestors: &[&str]) {
        *self.attestors.lock().unwrap() = attestors.iter().map(|a| Addr::unchecked(*a)).collect();
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
            expires_at: Timestamp::from_seconds(EXPIRES_AT),
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
        SubmissionRules {
            attestor: ATTESTOR.into(),
            commit_margin_seconds: 60,
        },
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

fn paid_with(id: u64, prompt: &str, fields: serde_json::Value) -> PaidCompletion {
    let mut body = serde_json::json!({"request_id": id, "prompt": prompt});
    for (k, v) in fields.as_object().unwrap() {
        body[k] = v.clone();
    }
    serde_json::from_value(body).unwrap()
}

// --- what decides the packet is not the payer's to choose -------------------------------

#[tokio::test]
async fn a_paid_request_is_generated_with_the_method_it_was_paid_under_and_the_fixed_sampling() {
    let d = desk();
    d.ledger.pay(11, "What is a pipe?", (1, 1));
    d.submissions
        .submit(paid(11, "What is a pipe?"))
        .await
        .unwrap();
    let asked = d.engine.last();
    assert_eq!(asked.method.as_deref(), Some(METHOD));
    assert_eq!(
        asked.sampling,
        SamplingRequest::exactly(&Sampling::for_paid_request(11))
    );
}

#[tokio::test]
async fn a_payer_chosen_method_or_sampling_is_refused() {
    let d = desk();
    d.ledger.pay(12, "What is a pipe?", (1, 1));
    for (fields, mentions) in [
        (serde_json::json!({"method": "cosine-logra-v1"}), METHOD),
        (serde_json::json!({"seed": 7}), "seed 7 (fixed at 12)"),
        (serde_json::json!({"max_tokens": 16}), "max_tokens 16"),
        (serde_json::json!({"temperature": 0.0}), "temperature 0"),
        (serde_json::json!({"top_k": 1}), "top_k 1"),
    ] {
        let e = d
            .submissions
            .submit(paid_with(12, "What is a pipe?", fields.clone()))
            .await
            .unwrap_err();
        assert!(e.to_string().contains(mentions), "{fields}: {e}");
    }
    assert_eq!(d.engine.calls(), 0, "nothing refused reached the engine");
    assert!(d.outbox.prompt(12).unwrap().is_none());
    // The values the request is served with anyway may be given.
    let fixed = Sampling::for_paid_request(12);
    let same = serde_json::json!({"method": METHOD, "seed": 12, "max_tokens": fixed.max_tokens});
    d.submissions
        .submit(paid_with(12, "What is a pipe?", same))
        .await
        .unwrap();
}

// --- a prompt is served only while the relayer can still commit -------------------------

#[tokio::test]
async fn a_request_close_to_its_expiry_is_not_served() {
    let d = desk();
    d.ledger.pay(13, "late", (1, 1));
    d.ledger.set_now(EXPIRES_AT - 59);
    let e = d.submissions.submit(paid(13, "late")).await.unwrap_err();
    assert!(
        matches!(
            e,
            SubmitError::TooLate {
                remaining: 59,
                margin: 60,
                ..
            }
        ),
        "{e}"
    );
    d.ledger.set_now(EXPIRES_AT + 5);
    let e = d.submissions.submit(paid(13, "late")).await.unwrap_err();
    assert!(
        matches!(e, SubmitError::TooLate { remaining: 0, .. }),
        "{e}"
    );
    assert_eq!(d.engine.calls(), 0);
    assert!(d.outbox.prompt(13).unwrap().is_none());
    d.ledger.set_now(EXPIRES_AT - 60);
    d.submissions.submit(paid(13, "late")).await.unwrap();
}

#[tokio::test]
async fn a_request_this_relayer_may_not_commit_is_not_served() {
    let d = desk();
    d.ledger.pay(14, "hi", (1, 1));
    d.ledger.set_attestors(&[PAYER]);
    let e = d.submissions.submit(paid(14, "hi")).await.unwrap_err();
    assert!(matches!(e, SubmitError::NotAnAttestor { .. }), "{e}");
    assert_eq!(d.engine.calls(), 0);
}
