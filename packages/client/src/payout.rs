//! The payout contract: inference escrow, attribution commits, finalization and claims.

use crate::events::{InferenceRequested, InferenceRequests};
use crate::{Client, Error, Signer, TxOutcome};
use cosmrs::Coin;
use cosmwasm_std::{to_json_binary, HexBinary, Uint128};
use cw20::Cw20ExecuteMsg;
use serde::de::DeserializeOwned;
use tributary_types::payout::{
    BalancesResponse, CommitInfo, ConfigResponse, ExecuteMsg, InferenceRequest, QueryMsg,
    ReceiveMsg, RequestStatus, RequestsResponse,
};
use tributary_types::voucher::{CreditAccount, VoucherRedemption, VoucherState};
use tributary_types::{AssetInfo, AttributionPacket};

/// A deployed payout contract.
#[derive(Debug, Clone, Copy)]
pub struct PayoutContract<'a> {
    pub(crate) client: &'a Client,
    pub(crate) address: &'a str,
}

impl Client {
    /// The payout contract at `address`.
    pub fn payout<'a>(&'a self, address: &'a str) -> PayoutContract<'a> {
        PayoutContract {
            client: self,
            address,
        }
    }
}

impl PayoutContract<'_> {
    /// The contract's address.
    pub fn address(&self) -> &str {
        self.address
    }

    /// Executes any payout message.
    pub async fn execute(
        &self,
        signer: &Signer,
        msg: &ExecuteMsg,
        funds: Vec<Coin>,
    ) -> Result<TxOutcome, Error> {
        self.client.execute(signer, self.address, msg, funds).await
    }

    /// Runs any payout query.
    pub async fn query<R: DeserializeOwned>(&self, msg: &QueryMsg) -> Result<R, Error> {
        self.client.query_contract(self.address, msg).await
    }

    /// Pays for an inference in native coins (any excess over the price is refunded).
    pub async fn request_inference(
        &self,
        signer: &Signer,
        model_id: u64,
        version: u32,
        prompt_hash: HexBinary,
        funds: Vec<Coin>,
    ) -> Result<InferenceRequested, Error> {
        let msg = ExecuteMsg::RequestInference {
            model_id,
            version,
            prompt_hash,
        };
        let outcome = self.execute(signer, &msg, funds).await?;
        self.announced(&outcome)
    }

    /// Pays for an inference in a cw20 token: a `Send` of `amount` to this contract.
    pub async fn request_inference_cw20(
        &self,
        signer: &Signer,
        token: &str,
        amount: u128,
        model_id: u64,
        version: u32,
        prompt_hash: HexBinary,
    ) -> Result<InferenceRequested, Error> {
        let hook = ReceiveMsg::RequestInference {
            model_id,
            version,
            prompt_hash,
        };
        let send = Cw20ExecuteMsg::Send {
            contract: self.address.to_string(),
            amount: Uint128::new(amount),
            msg: to_json_binary(&hook).map_err(|e| Error::Encode(e.to_string()))?,
        };
        let outcome = self
            .client
            .execute(signer, token, &send, Vec::new())
            .await?;
        self.announced(&outcome)
    }

    /// An attestor commits attribution packets in one message.
    pub async fn commit_attribution(
        &self,
        signer: &Signer,
        packets: Vec<AttributionPacket>,
    ) -> Result<TxOutcome, Error> {
        self.execute(
            signer,
            &ExecuteMsg::CommitAttribution { packets },
            Vec::new(),
        )
        .await
    }

    /// Settles requests past their challenge window.
    pub async fn finalize(
        &self,
        signer: &Signer,
        request_ids: Vec<u64>,
    ) -> Result<TxOutcome, Error> {
        self.execute(signer, &ExecuteMsg::Finalize { request_ids }, Vec::new())
            .await
    }

    /// Returns an expired request's escrow to its payer.
    pub async fn refund(&self, signer: &Signer, request_id: u64) -> Result<TxOutcome, Error> {
        self.execute(signer, &ExecuteMsg::Refund { request_id }, Vec::new())
            .await
    }

    /// Pays out everything the signer is owed.
    pub async fn claim(&self, signer: &Signer) -> Result<TxOutcome, Error> {
        self.execute(signer, &ExecuteMsg::Claim {}, Vec::new())
            .await
    }

    /// The contract's configuration.
    pub async fn config(&self) -> Result<ConfigResponse, Error> {
        self.query(&QueryMsg::Config {}).await
    }

    /// One inference request.
    pub async fn request(&self, request_id: u64) -> Result<InferenceRequest, Error> {
        self.query(&QueryMsg::Request { request_id }).await
    }

    /// One page of requests, optionally with one status or payer.
    pub async fn requests(
        &self,
        status: Option<RequestStatus>,
        payer: Option<String>,
        start_after: Option<u64>,
        limit: Option<u32>,
    ) -> Result<Vec<InferenceRequest>, Error> {
        let page: RequestsResponse = self
            .query(&QueryMsg::Requests {
                status,
                payer,
                start_after,
                limit,
            })
            .await?;
        Ok(page.requests)
    }

    /// The attestors' commits for a request.
    pub async fn commits(&self, request_id: u64) -> Result<Vec<CommitInfo>, Error> {
        self.query(&QueryMsg::Commits { request_id }).await
    }

    /// What `address` can claim (first page).
    pub async fn balances(&self, address: &str) -> Result<BalancesResponse, Error> {
        self.query(&QueryMsg::Balances {
            address: address.to_string(),
            start_after: None,
            limit: None,
        })
        .await
    }

    /// The requests this contract announced in block `height`.
    pub async fn requests_in_block(&self, height: u64) -> Result<Vec<InferenceRequested>, Error> {
        self.client
            .inference_requests_in_block(self.address, height)
            .await
    }

    /// A live stream of this contract's requests.
    pub async fn subscribe(&self) -> Result<InferenceRequests, Error> {
        self.client.subscribe_inference_requests(self.address).await
    }

    /// Adds `funds` (native coins) to the signer's prepaid credit.
    pub async fn deposit(&self, signer: &Signer, funds: Vec<Coin>) -> Result<TxOutcome, Error> {
        self.execute(signer, &ExecuteMsg::Deposit {}, funds).await
    }

    /// Starts the notice of a withdrawal of up to `amount` of the signer's credit.
    pub async fn request_withdrawal(
        &self,
        signer: &Signer,
        asset: AssetInfo,
        amount: Uint128,
    ) -> Result<TxOutcome, Error> {
        let msg = ExecuteMsg::RequestWithdrawal { asset, amount };
        self.execute(signer, &msg, Vec::new()).await
    }

    /// Pays out the signer's pending withdrawal once its notice has passed.
    pub async fn withdraw(&self, signer: &Signer, asset: AssetInfo) -> Result<TxOutcome, Error> {
        self.execute(signer, &ExecuteMsg::Withdraw { asset }, Vec::new())
            .await
    }

    /// The redeemer opens the requests its vouchers cover; returns them in order.
    pub async fn redeem_vouchers(
        &self,
        redeemer: &Signer,
        redemptions: Vec<VoucherRedemption>,
    ) -> Result<Vec<InferenceRequested>, Error> {
        let msg = ExecuteMsg::RedeemVouchers { redemptions };
        let outcome = self.execute(redeemer, &msg, Vec::new()).await?;
        InferenceRequested::from_events(&outcome.events, self.address)
    }

    /// The prepaid credit of `address` in `asset`.
    pub async fn credit(&self, address: &str, asset: AssetInfo) -> Result<CreditAccount, Error> {
        self.query(&QueryMsg::Credit {
            address: address.to_string(),
            asset,
        })
        .await
    }

    /// What `payer`'s vouchers to `redeemer` on a model version have redeemed.
    pub async fn redeemed_vouchers(
        &self,
        payer: &str,
        redeemer: &str,
        model_id: u64,
        version: u32,
    ) -> Result<VoucherState, Error> {
        self.query(&QueryMsg::RedeemedVouchers {
            payer: payer.to_string(),
            redeemer: redeemer.to_string(),
            model_id,
            version,
        })
        .await
    }

    fn announced(&self, outcome: &TxOutcome) -> Result<InferenceRequested, Error> {
        let mut request = InferenceRequested::from_events(&outcome.events, self.address)?
            .into_iter()
            .next()
            .ok_or_else(|| {
                Error::Decode("the transaction announced no inference request".into())
            })?;
        request.height = Some(outcome.height);
        request.tx_hash = Some(outcome.hash.clone());
        Ok(request)
    }
}
