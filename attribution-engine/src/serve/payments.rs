//! The payment checks of a standalone gateway: no paid request at all, or the payout contract's
//! word, asked over the node's REST (LCD) gateway.
//!
//! The relayer runs its engine behind [`super::Unchecked`] (in its own process, or over HTTP
//! behind the gateway's [`super::AccessToken`]): it checked every request on chain itself.

use std::time::Duration;

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE;
use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use thiserror::Error;
use tributary_attrib_api::CompletionRequest;
use tributary_types::payout::{InferenceRequest, QueryMsg, RequestStatus};

use super::service::{PaymentCheck, PaymentRefused};

/// How long one question to the chain may take before the request is answered 503.
pub const CHAIN_QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// The most of an error answer from the chain kept in a refusal.
const MAX_ERROR_TEXT: usize = 512;

/// Serves no paid request: a gateway that checks no payment builds no packet for anyone.
/// Completions without a request id (local use) are served.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoPaidRequests;

#[async_trait]
impl PaymentCheck for NoPaidRequests {
    async fn check(&self, request: &CompletionRequest) -> Result<(), PaymentRefused> {
        match request.request_id {
            None => Ok(()),
            Some(id) => Err(PaymentRefused::forbidden(format!(
                "this gateway checks no payment, so it serves no paid request (request {id}): start it with --auth-token-file for a relayer that checks payment itself, or with --chain-rest and --payout-contract"
            ))),
        }
    }
}

/// Why a [`ChainPayments`] cannot be set up.
#[derive(Debug, Error)]
pub enum ChainPaymentsError {
    #[error("the REST URL {0:?} must start with http:// or https://")]
    Url(String),
    #[error("{0:?} is not a contract address (lowercase letters and digits)")]
    Contract(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// Serves a paid request only when the payout contract holds it, open, for the model and
/// version the request names and for the SHA-256 of its prompt; a completion without a
/// request id is not paid at all and is refused.
pub struct ChainPayments {
    rest: String,
    payout: String,
    http: reqwest::Client,
}

/// The REST gateway's envelope around a smart query's answer.
#[derive(Deserialize)]
struct SmartAnswer {
    data: InferenceRequest,
}

impl ChainPayments {
    /// Asks the payout contract at `payout` through the REST gateway at `rest`, such as
    /// `http://127.0.0.1:1317`.
    pub fn new(rest: &str, payout: &str) -> Result<Self, ChainPaymentsError> {
        if !(rest.starts_with("http://") || rest.starts_with("https://")) {
            return Err(ChainPaymentsError::Url(rest.to_string()));
        }
        // It becomes a path segment: nothing but a bech32 address's characters.
        let bech32 = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
        if payout.is_empty() || !payout.chars().all(bech32) {
            return Err(ChainPaymentsError::Contract(payout.to_string()));
        }
        let http = reqwest::Client::builder()
            .timeout(CHAIN_QUERY_TIMEOUT)
            .build()
            .map_err(|e| ChainPaymentsError::Client(e.to_string()))?;
        Ok(ChainPayments {
            rest: rest.trim_end_matches('/').to_string(),
            payout: payout.to_string(),
            http,
        })
    }

    /// The URL of the payout contract's `Request` query for `request_id`.
    pub fn query_url(&self, request_id: u64) -> String {
        let query = QueryMsg::Request { request_id };
        let json = serde_json::to_vec(&query).unwrap_or_default();
        format!(
            "{}/cosmwasm/wasm/v1/contract/{}/smart/{}",
            self.rest,
            self.payout,
            URL_SAFE.encode(json)
        )
    }

    async fn request(&self, id: u64) -> Result<InferenceRequest, PaymentRefused> {
        let unavailable = |e: &dyn std::fmt::Display| {
            PaymentRefused::unavailable(format!(
                "the chain cannot be asked whether request {id} is paid ({}): {e}",
                self.rest
            ))
        };
        let response = self
            .http
            .get(self.query_url(id))
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| unavailable(&e))?;
        if !status.is_success() {
            // A query the contract refuses (no such request) comes back as 500 (or a 4xx) with
            // the gateway's `{"code", "message", "details"}`; a node or proxy in trouble says
            // 502-504, or something that is not that body.
            let refused = status.is_client_error() || status.as_u16() == 500;
            let message = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .filter(|_| refused)
                .and_then(|v| {
                    v.get("message")
                        .and_then(|m| m.as_str())
                        .map(str::to_string)
                });
            return match message {
                Some(message) => Err(PaymentRefused::payment_required(format!(
                    "request {id} is not paid on chain: {}",
                    message.chars().take(MAX_ERROR_TEXT).collect::<String>()
                ))),
                None => Err(unavailable(&format!(
                    "HTTP {status}: {}",
                    text.chars().take(MAX_ERROR_TEXT).collect::<String>()
                ))),
            };
        }
        serde_json::from_str::<SmartAnswer>(&text)
            .map(|a| a.data)
            .map_err(|e| unavailable(&format!("an answer that is not a request: {e}")))
    }
}

#[async_trait]
impl PaymentCheck for ChainPayments {
    async fn check(&self, request: &CompletionRequest) -> Result<(), PaymentRefused> {
        let (Some(id), Some(model_id), Some(version)) =
            (request.request_id, request.model_id, request.model_version)
        else {
            return Err(PaymentRefused::payment_required(
                "this gateway serves paid requests only: give the request_id, model_id and model_version paid for on chain",
            ));
        };
        let paid = self.request(id).await?;
        if matches!(
            paid.status,
            RequestStatus::Finalized | RequestStatus::Refunded
        ) {
            return Err(PaymentRefused::forbidden(format!(
                "request {id} is {}",
                paid.status.as_str()
            )));
        }
        if (paid.model_id, paid.model_version) != (model_id, version) {
            return Err(PaymentRefused::forbidden(format!(
                "request {id} paid for model {} version {}, not model {model_id} version {version}",
                paid.model_id, paid.model_version
            )));
        }
        let hash: [u8; 32] = Sha256::digest(request.prompt.as_bytes()).into();
        if paid.prompt_hash.as_slice() != hash {
            return Err(PaymentRefused::forbidden(format!(
                "the prompt does not match the prompt_hash paid for in request {id}"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_is_the_contracts_json_in_url_safe_base64() {
        let payments = ChainPayments::new("http://127.0.0.1:1317/", "trib1payout").unwrap();
        let url = payments.query_url(7);
        let prefix = "http://127.0.0.1:1317/cosmwasm/wasm/v1/contract/trib1payout/smart/";
        assert!(url.starts_with(prefix), "{url}");
        let query: serde_json::Value =
            serde_json::from_slice(&URL_SAFE.decode(&url[prefix.len()..]).unwrap()).unwrap();
        assert_eq!(query, serde_json::json!({"request": {"request_id": 7}}));
    }

    #[test]
    fn an_address_that_could_change_the_path_or_a_bad_url_is_refused() {
        for address in ["", "trib1/../x", "trib1?q", "TRIB1ABC"] {
            assert!(
                matches!(
                    ChainPayments::new("http://127.0.0.1:1317", address),
                    Err(ChainPaymentsError::Contract(_))
                ),
                "{address:?}"
            );
        }
        assert!(matches!(
            ChainPayments::new("127.0.0.1:1317", "trib1payout"),
            Err(ChainPaymentsError::Url(_))
        ));
    }
}
