//! The payer's side of the relayer, without HTTP: a payer who paid for an inference on chain
//! submits its prompt and reads the completion with its attribution.
//!
//! This is where the relayer checks payment: [`Submissions::submit`] reads the request on
//! chain and keeps the prompt only when the request is paid, open, for a served model and for
//! the SHA-256 of this prompt. The engine runs on kept prompts only, and checks nothing itself.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::sync::Notify;
use tributary_attrib_api::{CompletionRequest, CompletionResponse, SamplingRequest};
use tributary_client::Error as ChainError;
use tributary_types::payout::RequestStatus;

use crate::engine::{EngineBackend, EngineCallError};
use crate::ledger::Ledger;
use crate::outbox::{Outbox, OutboxError};

/// `POST /v1/completions`: the paid request and the prompt whose hash it paid for, with the
/// engine's sampling fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    pub unknown: BTreeMap<String, serde_json::Value>,
}

/// Why a submission or a read was refused.
#[derive(Debug, Error)]
pub enum SubmitError {
    #[error("unknown fields {0}: a paid completion takes request_id, prompt, model, method, max_tokens, temperature, top_k and seed")]
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
    #[error("the chain cannot be read: {0}")]
    ChainUnavailable(ChainError),
    #[error("request {0} was already submitted with other parameters")]
    Conflict(u64),
    #[error("no prompt was submitted for request {0}")]
    NoPrompt(u64),
    #[error("request {request_id}'s kept submission is unreadable: {source}")]
    Unreadable {
        request_id: u64,
        source: serde_json::Error,
    },
    #[error(transparent)]
    Engine(#[from] EngineCallError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

/// Payers' submissions: the payment check, the kept prompts and the engine's answers.
pub struct Submissions {
    ledger: Arc<dyn Ledger>,
    outbox: Arc<Outbox>,
    engine: Arc<dyn EngineBackend>,
    served: BTreeSet<(u64, u32)>,
    prompt_arrived: Arc<Notify>,
}

impl Submissions {
    /// Submissions for the model versions `served`, waking `prompt_arrived` for each kept
    /// prompt.
    pub fn new(
        ledger: Arc<dyn Ledger>,
        outbox: Arc<Outbox>,
        engine: Arc<dyn EngineBackend>,
        served: BTreeSet<(u64, u32)>,
        prompt_arrived: Arc<Notify>,
    ) -> Self {
        Submissions {
            ledger,
            outbox,
            engine,
            served,
            prompt_arrived,
        }
    }

    /// Checks `paid` on chain, keeps its prompt and answers with the completion.
    pub async fn submit(&self, paid: PaidCompletion) -> Result<CompletionResponse, SubmitError> {
        if !paid.unknown.is_empty() {
            let names: Vec<&str> = paid.unknown.keys().map(String::as_str).collect();
            return Err(SubmitError::UnknownFields(names.join(", ")));
        }
        let id = paid.request_id;
        let (model_id, version) = self.check_paid(id, &paid.prompt).await?;
        // The chain decides which model serves the request.
        let request = CompletionRequest {
            model: self.engine.model_name().to_string(),
            prompt: paid.prompt,
            sampling: paid.sampling,
            request_id: Some(id),
            model_id: Some(model_id),
            model_version: Some(version),
            method: paid.method,
        };
        if let Some(kept) = self.kept(id)? {
            if kept != request {
                return Err(SubmitError::Conflict(id));
            }
        } else {
            let bytes = serde_json::to_vec(&request).map_err(|source| SubmitError::Unreadable {
                request_id: id,
                source,
            })?;
            self.outbox.record_prompt(id, &bytes)?;
            self.prompt_arrived.notify_one();
        }
        Ok(self.engine.complete(&request).await?)
    }

    /// The completion of request `request_id`, from its kept prompt.
    pub async fn read(&self, request_id: u64) -> Result<CompletionResponse, SubmitError> {
        let request = self
            .kept(request_id)?
            .ok_or(SubmitError::NoPrompt(request_id))?;
        Ok(self.engine.complete(&request).await?)
    }

    fn kept(&self, id: u64) -> Result<Option<CompletionRequest>, SubmitError> {
        let Some(bytes) = self.outbox.prompt(id)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| SubmitError::Unreadable {
                request_id: id,
                source,
            })
    }

    /// Checks on chain that request `id` is paid, open, for a served model and for this
    /// prompt; returns its model id and version.
    async fn check_paid(&self, id: u64, prompt: &str) -> Result<(u64, u32), SubmitError> {
        let request = match self.ledger.request(id).await {
            Ok(r) => r,
            Err(ChainError::Contract { .. }) => return Err(SubmitError::NotPaid(id)),
            Err(e) => return Err(SubmitError::ChainUnavailable(e)),
        };
        if !self
            .served
            .contains(&(request.model_id, request.model_version))
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
        Ok((request.model_id, request.model_version))
    }
}

#[cfg(test)]
mod tests;
