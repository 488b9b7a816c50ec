//! Pinning contract code in the VM's memory cache through governance.
//!
//! wasmd charges a fixed 60 000 gas for every call into unpinned code (loading it from disk) and
//! about 2 000 for pinned code, so each transaction into a contract, and each contract's query of
//! another, costs tens of thousands of gas less once its code is pinned. Only the chain's
//! authority (the governance module) may pin: [`Client::pin_codes`] submits an expedited
//! proposal carrying `MsgPinCodes`, votes yes from the proposer, and waits until the chain lists
//! the codes as pinned. On a devnet the proposer is the only validator, so its vote decides; on a
//! real network the same proposal goes to the stakers' vote.

use crate::error::Error;
use crate::tx::TxOptions;
use crate::{Client, Signer};
use cosmrs::proto::cosmos::base::query::v1beta1::PageRequest;
use cosmrs::proto::cosmos::gov::v1::{
    MsgSubmitProposal, MsgVote, Params, QueryParamsRequest, QueryParamsResponse, VoteOption,
};
use cosmrs::proto::cosmwasm::wasm::v1::{
    MsgPinCodes, QueryPinnedCodesRequest, QueryPinnedCodesResponse,
};
use cosmrs::{AccountId, Any};
use prost::{Message, Name};
use std::time::{Duration, Instant};
use tributary_types::hash::sha256;

/// How often [`Client::pin_codes`] asks whether the codes are pinned yet.
const PINNED_POLL: Duration = Duration::from_millis(500);
/// Most pinned code ids one `PinnedCodes` page returns.
const PINNED_PAGE: u64 = 1000;

/// A protobuf message as a transaction's `Any`.
fn any<M: Message + Name>(msg: &M) -> Any {
    Any {
        type_url: M::type_url(),
        value: msg.encode_to_vec(),
    }
}

impl Client {
    /// The address of the module account `name` (`sha256(name)[..20]`, as the SDK derives it).
    pub fn module_address(&self, name: &str) -> Result<AccountId, Error> {
        AccountId::new(&self.config.bech32_prefix, &sha256(name.as_bytes())[..20])
            .map_err(|e| Error::Encode(e.to_string()))
    }

    /// The code ids the chain keeps pinned.
    pub async fn pinned_codes(&self) -> Result<Vec<u64>, Error> {
        let response: QueryPinnedCodesResponse = self
            .query_proto(
                "/cosmwasm.wasm.v1.Query/PinnedCodes",
                &QueryPinnedCodesRequest {
                    pagination: Some(PageRequest {
                        limit: PINNED_PAGE,
                        ..PageRequest::default()
                    }),
                },
            )
            .await?;
        Ok(response.code_ids)
    }

    /// The governance module's parameters (deposits, voting periods).
    pub async fn governance_params(&self) -> Result<Params, Error> {
        let response: QueryParamsResponse = self
            .query_proto(
                "/cosmos.gov.v1.Query/Params",
                &QueryParamsRequest {
                    params_type: String::new(),
                },
            )
            .await?;
        response
            .params
            .ok_or_else(|| Error::Decode("the chain returned no governance parameters".into()))
    }

    /// Pins `code_ids` by an expedited proposal that `proposer` submits with the expedited
    /// minimum deposit and votes yes on; returns the proposal id once every code is pinned.
    /// Codes already pinned are left out; with none left, nothing is sent and it returns `None`.
    /// Fails with `ProposalNotPassed` if they are not pinned within `timeout` (the proposal did
    /// not pass: other stakers voted no, or too few voted).
    pub async fn pin_codes(
        &self,
        proposer: &Signer,
        code_ids: &[u64],
        timeout: Duration,
    ) -> Result<Option<u64>, Error> {
        let pinned = self.pinned_codes().await?;
        let wanted: Vec<u64> = code_ids
            .iter()
            .copied()
            .filter(|id| !pinned.contains(id))
            .collect();
        if wanted.is_empty() {
            return Ok(None);
        }
        let params = self.governance_params().await?;
        let authority = self.module_address("gov")?;
        let proposal = MsgSubmitProposal {
            messages: vec![any(&MsgPinCodes {
                authority: authority.to_string(),
                code_ids: wanted.clone(),
            })],
            initial_deposit: params.expedited_min_deposit,
            proposer: proposer.address().to_string(),
            metadata: String::new(),
            title: "Pin contract code".into(),
            summary: format!("Keep codes {wanted:?} in the VM cache."),
            expedited: true,
        };
        let submitted = self
            .sign_and_broadcast(proposer, vec![any(&proposal)], &TxOptions::default())
            .await?;
        let proposal_id: u64 = submitted
            .attribute("submit_proposal", "proposal_id")
            .and_then(|id| id.parse().ok())
            .ok_or_else(|| {
                Error::Decode("the proposal's transaction named no proposal id".into())
            })?;
        let vote = MsgVote {
            proposal_id,
            voter: proposer.address().to_string(),
            option: VoteOption::Yes as i32,
            metadata: String::new(),
        };
        self.sign_and_broadcast(proposer, vec![any(&vote)], &TxOptions::default())
            .await?;
        let deadline = Instant::now() + timeout;
        loop {
            let pinned = self.pinned_codes().await?;
            if wanted.iter().all(|id| pinned.contains(id)) {
                return Ok(Some(proposal_id));
            }
            if Instant::now() >= deadline {
                return Err(Error::ProposalNotPassed {
                    proposal_id,
                    reason: format!("codes {wanted:?} were not pinned within {timeout:?}"),
                });
            }
            tokio::time::sleep(PINNED_POLL).await;
        }
    }
}
