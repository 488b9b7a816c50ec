//! What the payer-facing side of the relayer reads from the chain, behind a trait so the
//! gateway's rules can be tested without a node.

use std::sync::Arc;

use async_trait::async_trait;
use tributary_client::{Client, Error as ChainError};
use tributary_types::payout::{InferenceRequest, QueryMsg, RequestTerms};
use tributary_types::verification::{BondInfo, VerificationParams};

/// The chain's view of paid requests.
#[async_trait]
pub trait Ledger: Send + Sync {
    /// Request `id` as the payout contract holds it; a contract error when it holds none.
    async fn request(&self, id: u64) -> Result<InferenceRequest, ChainError>;

    /// The rules request `id` was paid under: its attestors, method and parameters.
    async fn terms(&self, id: u64) -> Result<RequestTerms, ChainError>;

    /// The latest block's time, in unix seconds: the clock expiry is measured by.
    async fn block_time(&self) -> Result<u64, ChainError>;

    /// Whether `address` has at least the payout contract's `min_verifier_bond` bonded.
    async fn is_bonded_verifier(&self, address: &str) -> Result<bool, ChainError>;
}

/// The [`Ledger`] of a live chain: the payout contract at `payout`.
pub struct ChainLedger {
    client: Arc<Client>,
    payout: String,
}

impl ChainLedger {
    pub fn new(client: Arc<Client>, payout: &str) -> Self {
        ChainLedger {
            client,
            payout: payout.to_string(),
        }
    }
}

#[async_trait]
impl Ledger for ChainLedger {
    async fn request(&self, id: u64) -> Result<InferenceRequest, ChainError> {
        self.client.payout(&self.payout).request(id).await
    }

    async fn terms(&self, id: u64) -> Result<RequestTerms, ChainError> {
        self.client
            .payout(&self.payout)
            .query(&QueryMsg::Terms { request_id: id })
            .await
    }

    async fn block_time(&self) -> Result<u64, ChainError> {
        let block = self.client.latest_block().await?;
        Ok(block.time_nanos / 1_000_000_000)
    }

    async fn is_bonded_verifier(&self, address: &str) -> Result<bool, ChainError> {
        let payout = self.client.payout(&self.payout);
        let params: VerificationParams = payout.query(&QueryMsg::Verification {}).await?;
        let bond: BondInfo = payout
            .query(&QueryMsg::BondOf {
                address: address.to_string(),
            })
            .await?;
        Ok(bond.active >= params.min_verifier_bond)
    }
}
