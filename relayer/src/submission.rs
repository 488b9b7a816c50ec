//! The payer's side of the relayer, without HTTP: a payer who paid for an inference on chain
//! submits its prompt and reads the completion with its attribution.
//!
//! This is where the relayer checks payment: [`Submissions::submit`] reads the request on
//! chain and keeps the prompt only when the request is paid, open, for a served model and for
//! the SHA-256 of this prompt, and when this relayer can still commit its packet (it is one of
//! the request's attestors and the request is not about to expire). The engine runs on kept
//! prompts only, and checks nothing itself.
//!
//! Only the payer reads a completion back: the first submission of a request's prompt is
//! handed a random token, kept hashed in the outbox, that [`Submissions::read`] asks for.
//! Submitting the prompt again (which proves it again) answers with the same completion.
//!
//! What decides the packet is fixed, not the payer's: the method the request was paid under
//! (its terms on chain) and [`Sampling::for_paid_request`]. Otherwise a payer could ask each
//! attestor for another completion, leave the request without quorum and be refunded at expiry
//! after being served.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use thiserror::Error;
use tokio::sync::{watch, Notify};
use tributary_attrib_api::{CompletionRequest, CompletionResponse, Sampling, SamplingRequest};
use tributary_client::{verify_signature, Error as ChainError};
use tributary_types::payout::{InferenceRequest, RequestStatus, RequestTerms};

use crate::attributor::Progress;
use crate::engine::EngineCallError;
use crate::inputs::{proof_message, RequestInputs, VerifierProof, PROOF_WINDOW_SECONDS};
use crate::ledger::Ledger;
use crate::outbox::{Outbox, OutboxError, PromptKept, QueueLimits, RequestRecord, RequestState};

/// `POST /v1/completions`: the paid request and the prompt whose hash it paid for, with the
/// engine's sampling fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PaidCompletion {
    pub request_id: u64,
    pub prompt: String,
    /// Ignored: the chain says which model the request paid for.
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(flatten)]
    pub sampling: SamplingRequest,
    /// Fields no version of this gateway takes, refused by name rather than ignored.
    #[serde(flatten, default, skip_serializing)]
    #[schemars(skip)]
    pub unknown: BTreeMap<String, serde_json::Value>,
}

/// Why a submission or a read was refused.
#[derive(Debug, Error)]
pub enum SubmitError {
    #[error("unknown fields {0}: a paid completion takes request_id, prompt, model, method, max_tokens, temperature, top_k and seed (and OpenAI's stream, n and user)")]
    UnknownFields(String),
    #[error("request {0} is not paid on chain")]
    NotPaid(u64),
    #[error("request {request_id} paid for model {model_id} version {version}, which this relayer does not serve")]
    NotServed {
        request_id: u64,
        model_id: u64,
        version: u32,
    },
    #[error("request {request_id} is {status}")]
    Closed {
        request_id: u64,
        status: &'static str,
    },
    #[error("the prompt does not match the prompt_hash paid for in request {0}")]
    PromptMismatch(u64),
    #[error("request {request_id} may only be committed by its attestors, and this relayer ({attestor}) is not one: it serves no prompt it cannot commit")]
    NotAnAttestor { request_id: u64, attestor: String },
    #[error("request {request_id} expires in {remaining} s; this relayer serves a prompt only with {margin} s left to commit its packet")]
    TooLate {
        request_id: u64,
        remaining: u64,
        margin: u64,
    },
    #[error("request {request_id} was paid for method {paid}: leave method out or give {paid}, not {asked}")]
    MethodFixed {
        request_id: u64,
        asked: String,
        paid: String,
    },
    #[error("a paid request is generated with fixed sampling, so that every attestor commits the same packet: leave out {0}")]
    SamplingFixed(String),
    #[error("the chain cannot be read: {0}")]
    ChainUnavailable(ChainError),
    #[error("request {0} was already submitted with other parameters")]
    Conflict(u64),
    #[error("no prompt was submitted for request {0}")]
    NoPrompt(u64),
    /// The queue of prompts is full for this payer or for everyone.
    #[error("{0}; submit again later")]
    Busy(OutboxError),
    #[error("this relayer gave request {request_id} up: {reason}")]
    GivenUp { request_id: u64, reason: String },
    #[error("request {0} is queued for attribution; submit it again or read it later")]
    StillQueued(u64),
    /// The prompt is kept and waits for attribution; `token` (on a first submission) reads
    /// the completion later.
    #[error(
        "request {request_id} is queued: {cause}; submit it again or read it later with its token"
    )]
    Queued {
        request_id: u64,
        token: Option<String>,
        cause: String,
    },
    #[error("the completion of request {0} was not kept")]
    NotKept(u64),
    #[error("reading request {0} needs the token its first submission was given, as Authorization: Bearer <token>")]
    Unauthorized(u64),
    #[error("the verifier's proof is not valid: {0}")]
    BadProof(String),
    #[error("{0} does not hold the payout contract's minimum verifier bond")]
    NotAVerifier(String),
    #[error("the operating system gave no random bytes for a token: {0}")]
    NoRandomness(String),
    #[error(transparent)]
    Engine(#[from] EngineCallError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

/// What a request must allow for its prompt to be served: this relayer must still be able to
/// commit its packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubmissionRules {
    /// This relayer's attestor address; a request it may not commit for is not served.
    pub attestor: String,
    /// A request with less time than this left before it expires is not served.
    pub commit_margin_seconds: u64,
    /// The caps of the queue of prompts waiting for attribution.
    pub queue: QueueLimits,
    /// How long a submission waits for its completion before answering that it is queued.
    pub response_timeout: Duration,
}

/// A new token for a payer: 32 random bytes from the OS, hex.
fn new_token() -> Result<String, SubmitError> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|e| SubmitError::NoRandomness(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A submission's answer: the completion, and the token that reads it back.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Submitted {
    #[serde(flatten)]
    pub response: CompletionResponse,
    /// Handed out once, to the first submission of the request's prompt: `GET
    /// /v1/requests/{id}` wants it as `Authorization: Bearer <token>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// The outbox record of a request read on chain.
fn record_of(request: &InferenceRequest) -> RequestRecord {
    RequestRecord {
        request_id: request.id,
        model_id: request.model_id,
        version: request.model_version,
        payer: request.payer.to_string(),
        prompt_hash: request.prompt_hash.to_hex(),
        amount: request.price.amount.to_string(),
        asset: request.price.asset.to_string(),
        seen_height: 0,
        expires_at: Some(request.expires_at.seconds()),
    }
}

/// A request checked on chain, with the rules it was paid under.
struct CheckedRequest {
    request: InferenceRequest,
    terms: RequestTerms,
}

/// Payers' submissions: the payment check, the kept prompts and the engine's answers.
pub struct Submissions {
    ledger: Arc<dyn Ledger>,
    outbox: Arc<Outbox>,
    /// The served model versions, each with the engine's name of the model serving it.
    served: BTreeMap<(u64, u32), String>,
    rules: SubmissionRules,
    prompt_arrived: Arc<Notify>,
    progress: Arc<Progress>,
}

impl Submissions {
    /// Submissions for the model versions `served` (each with its engine model), waking
    /// `prompt_arrived` (the attribution worker) for each kept prompt and hearing of its work
    /// through `progress`.
    pub fn new(
        ledger: Arc<dyn Ledger>,
        outbox: Arc<Outbox>,
        served: BTreeMap<(u64, u32), String>,
        rules: SubmissionRules,
        prompt_arrived: Arc<Notify>,
        progress: Arc<Progress>,
    ) -> Self {
        Submissions {
            ledger,
            outbox,
            served,
            rules,
            prompt_arrived,
            progress,
        }
    }

    /// Checks `paid` on chain, keeps its prompt and answers with the completion.
    ///
    /// The payer chooses neither the method nor the sampling: the request is generated with
    /// the method it was paid under and [`Sampling::for_paid_request`], so every attestor
    /// commits the same packet. Fields that ask for anything else are refused.
    /// The model versions served, in order.
    pub fn served_versions(&self) -> Vec<(u64, u32)> {
        self.served.keys().copied().collect()
    }

    pub async fn submit(&self, paid: PaidCompletion) -> Result<Submitted, SubmitError> {
        if !paid.unknown.is_empty() {
            let names: Vec<&str> = paid.unknown.keys().map(String::as_str).collect();
            return Err(SubmitError::UnknownFields(names.join(", ")));
        }
        let id = paid.request_id;
        let sampling = Sampling::for_paid_request(id);
        let differences = paid.sampling.differences_from(&sampling);
        if !differences.is_empty() {
            return Err(SubmitError::SamplingFixed(differences.join(", ")));
        }
        let checked = self.check_paid(id, &paid.prompt).await?;
        let method = checked.terms.method_id;
        if let Some(asked) = paid.method.filter(|asked| *asked != method) {
            return Err(SubmitError::MethodFixed {
                request_id: id,
                asked,
                paid: method,
            });
        }
        // The chain decides which model serves the request, and how.
        let request = CompletionRequest {
            model: self
                .served
                .get(&(checked.request.model_id, checked.request.model_version))
                .cloned()
                .unwrap_or_default(),
            prompt: paid.prompt,
            sampling: SamplingRequest::exactly(&sampling),
            request_id: Some(id),
            model_id: Some(checked.request.model_id),
            model_version: Some(checked.request.model_version),
            method: Some(method),
        };
        let mut token = None;
        if let Some(kept) = self.outbox.prompt(id)? {
            if kept != request {
                return Err(SubmitError::Conflict(id));
            }
        } else {
            if let Some(RequestState::Failed { reason, .. }) = self.outbox.get(id)?.map(|e| e.state)
            {
                return Err(SubmitError::GivenUp {
                    request_id: id,
                    reason,
                });
            }
            let record = record_of(&checked.request);
            let new_token = new_token()?;
            let hash = tributary_types::sha256(new_token.as_bytes());
            match self
                .outbox
                .record_prompt(&record, &request, &hash, self.rules.queue)
            {
                Ok(PromptKept::New) => token = Some(new_token),
                Ok(PromptKept::Already) => {}
                Err(e @ (OutboxError::PayerQueueFull { .. } | OutboxError::QueueFull { .. })) => {
                    return Err(SubmitError::Busy(e))
                }
                Err(e) => return Err(e.into()),
            }
        }
        // Subscribed before the worker is woken, so no news of this request is missed.
        let mut changes = self.progress.subscribe();
        let started = *changes.borrow_and_update();
        self.prompt_arrived.notify_one();
        match self.completion(id, changes, started).await {
            Ok(response) => Ok(Submitted { response, token }),
            Err(SubmitError::Engine(EngineCallError::Unavailable(reason))) => {
                Err(SubmitError::Queued {
                    request_id: id,
                    token,
                    cause: format!("the attribution engine is unavailable: {reason}"),
                })
            }
            Err(SubmitError::StillQueued(_)) => Err(SubmitError::Queued {
                request_id: id,
                token,
                cause: format!(
                    "it was not attributed within {} ms",
                    self.rules.response_timeout.as_millis()
                ),
            }),
            Err(e) => Err(e),
        }
    }

    /// Waits for the attribution worker to settle request `id`: its response once attributed,
    /// the reason it was given up, or that the engine failed after the count of `changes` was
    /// `started`, or that the wait was too long (the prompt stays queued either way).
    async fn completion(
        &self,
        id: u64,
        mut changes: watch::Receiver<u64>,
        started: u64,
    ) -> Result<CompletionResponse, SubmitError> {
        let deadline = tokio::time::Instant::now() + self.rules.response_timeout;
        loop {
            changes.borrow_and_update();
            match self.outbox.get(id)?.map(|e| e.state) {
                Some(
                    RequestState::Attributed { .. }
                    | RequestState::Broadcast { .. }
                    | RequestState::Committed { .. },
                ) => return self.outbox.response(id)?.ok_or(SubmitError::NotKept(id)),
                Some(RequestState::Failed { reason, .. }) => {
                    return Err(SubmitError::GivenUp {
                        request_id: id,
                        reason,
                    })
                }
                _ => {
                    if let Some(reason) = self.progress.engine_down_since(started) {
                        return Err(SubmitError::Engine(EngineCallError::Unavailable(reason)));
                    }
                }
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return Err(SubmitError::StillQueued(id)),
            }
        }
    }

    /// The completion of request `request_id` for the holder of the token its first
    /// submission was given: read from the outbox, never computed here.
    pub async fn read(
        &self,
        request_id: u64,
        token: Option<&str>,
    ) -> Result<CompletionResponse, SubmitError> {
        let Some(expected) = self.outbox.token_hash(request_id)? else {
            return Err(match self.outbox.prompt(request_id)? {
                // Kept before tokens were handed out: nobody can prove to be its payer.
                Some(_) => SubmitError::Unauthorized(request_id),
                None => SubmitError::NoPrompt(request_id),
            });
        };
        let presented = tributary_types::sha256(token.unwrap_or_default().as_bytes());
        if token.is_none() || !bool::from(presented.ct_eq(&expected)) {
            return Err(SubmitError::Unauthorized(request_id));
        }
        match self.outbox.get(request_id)?.map(|e| e.state) {
            Some(
                RequestState::Attributed { .. }
                | RequestState::Broadcast { .. }
                | RequestState::Committed { .. },
            ) => self
                .outbox
                .response(request_id)?
                .ok_or(SubmitError::NotKept(request_id)),
            Some(RequestState::Failed { reason, .. }) => {
                Err(SubmitError::GivenUp { request_id, reason })
            }
            _ => Err(SubmitError::StillQueued(request_id)),
        }
    }

    /// The prompt and completion of `request_id` for a bonded verifier proving its key with
    /// `proof` (see [`crate::inputs`]).
    pub async fn inputs(
        &self,
        request_id: u64,
        proof: &VerifierProof,
    ) -> Result<RequestInputs, SubmitError> {
        let now = self
            .ledger
            .block_time()
            .await
            .map_err(SubmitError::ChainUnavailable)?;
        if proof.time.abs_diff(now) > PROOF_WINDOW_SECONDS {
            return Err(SubmitError::BadProof(format!(
                "its time {} is more than {PROOF_WINDOW_SECONDS} s from the chain's {now}",
                proof.time
            )));
        }
        let attestor = &self.rules.attestor;
        let prefix = attestor.rsplit_once('1').map_or("", |(hrp, _)| hrp);
        let message = proof_message(attestor, request_id, proof.time);
        let account = verify_signature(&proof.public_key, &message, &proof.signature, prefix)
            .map_err(|e| SubmitError::BadProof(e.to_string()))?;
        let account = account.to_string();
        if !self
            .ledger
            .is_bonded_verifier(&account)
            .await
            .map_err(SubmitError::ChainUnavailable)?
        {
            return Err(SubmitError::NotAVerifier(account));
        }
        let (prompt, completion_hex) = served_inputs(&self.outbox, request_id)?;
        Ok(RequestInputs {
            request_id,
            prompt,
            completion_hex,
        })
    }

    /// Checks on chain that request `id` is paid, open, for a served model and for this
    /// prompt, and that this relayer can still commit it: it is one of the request's
    /// attestors and the request has `commit_margin_seconds` left.
    async fn check_paid(&self, id: u64, prompt: &str) -> Result<CheckedRequest, SubmitError> {
        let request = match self.ledger.request(id).await {
            Ok(r) => r,
            Err(ChainError::Contract { .. }) => return Err(SubmitError::NotPaid(id)),
            Err(e) => return Err(SubmitError::ChainUnavailable(e)),
        };
        if !self
            .served
            .contains_key(&(request.model_id, request.model_version))
        {
            return Err(SubmitError::NotServed {
                request_id: id,
                model_id: request.model_id,
                version: request.model_version,
            });
        }
        if matches!(
            request.status,
            RequestStatus::Finalized | RequestStatus::Refunded
        ) {
            return Err(SubmitError::Closed {
                request_id: id,
                status: request.status.as_str(),
            });
        }
        let hash = tributary_types::sha256(prompt.as_bytes());
        if request.prompt_hash.as_slice() != hash.as_slice() {
            return Err(SubmitError::PromptMismatch(id));
        }
        let terms = self
            .ledger
            .terms(id)
            .await
            .map_err(SubmitError::ChainUnavailable)?;
        if !terms
            .attestors
            .iter()
            .any(|a| a.as_str() == self.rules.attestor)
        {
            return Err(SubmitError::NotAnAttestor {
                request_id: id,
                attestor: self.rules.attestor.clone(),
            });
        }
        let now = self
            .ledger
            .block_time()
            .await
            .map_err(SubmitError::ChainUnavailable)?;
        let remaining = request.expires_at.seconds().saturating_sub(now);
        if remaining < self.rules.commit_margin_seconds {
            return Err(SubmitError::TooLate {
                request_id: id,
                remaining,
                margin: self.rules.commit_margin_seconds,
            });
        }
        Ok(CheckedRequest { request, terms })
    }
}

#[cfg(test)]
mod tests;

/// The prompt and the completion (hex) this relayer served for request `request_id`: a paid
/// request's, or the voucher inference's that a settled batch gave that request id.
pub fn served_inputs(outbox: &Outbox, request_id: u64) -> Result<(String, String), SubmitError> {
    if let Some(prompt) = outbox.prompt(request_id)? {
        let response = outbox
            .response(request_id)?
            .ok_or(SubmitError::StillQueued(request_id))?;
        return Ok((prompt.prompt, response.completion_hex));
    }
    outbox
        .batched_inputs(request_id)?
        .ok_or(SubmitError::NoPrompt(request_id))
}
