//! A settlement batch's inferences, read back from the transaction that carried them.
//!
//! The payout contract keeps only a merkle root over a batch's inferences; the inferences
//! themselves (payer, prompt hash and result of each) are in the `SettleBatch` message of the
//! transaction, which every node that indexes transactions serves. [`PayoutContract::batch_contents`]
//! finds that transaction by the batch's event, decodes the message and keeps it only if its
//! leaves give the root on chain: what it returns is what the contract committed to, whoever
//! ran the node.

use cosmrs::cosmwasm::MsgExecuteContract;
use cosmrs::tx::{Msg as _, Tx};
use cosmwasm_std::HexBinary;
use tendermint_rpc::query::Query;
use tendermint_rpc::{Client as _, Order};
use tributary_types::batch::{batch_leaf, BatchInfo, BatchLeaf, BatchResult};
use tributary_types::hash::Hash32;
use tributary_types::merkle::{inclusion_path, root_from_leaves, Leaves};
use tributary_types::payout::ExecuteMsg;
use tributary_types::voucher::{sampling_id, VoucherRedemption};

use crate::{Error, PayoutContract};

/// The event a `SettleBatch` emits.
const SETTLEMENT_BATCH: &str = "wasm-settlement_batch";
/// How many transactions one search may return: a batch id is emitted once per contract, so
/// more than one match is only ever another contract spoofing the event name.
const SEARCH_PAGE: u8 = 20;

/// One inference of a settlement batch, as its transaction carried it.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchItem {
    /// Its position in the batch.
    pub index: u32,
    /// The request id it has on chain, `first_request_id + index`.
    pub request_id: u64,
    /// The count of the payer's voucher it was the inference of.
    pub count: u64,
    pub leaf: BatchLeaf,
}

/// A batch with its inferences, proven against its root.
#[derive(Debug, Clone)]
pub struct BatchContents {
    pub batch: BatchInfo,
    pub items: Vec<BatchItem>,
    leaves: Vec<Hash32>,
}

impl BatchItem {
    /// The id its engine sampled and attributed it under ([`sampling_id`]).
    pub fn sampling_id(&self, batch: &BatchInfo) -> u64 {
        sampling_id(&self.leaf.payer, batch.model_id, batch.version, self.count)
    }
}

impl BatchContents {
    /// The inclusion proof of inference `index` against the batch's root, as
    /// `ChallengeBatchItem` takes it.
    pub fn proof(&self, index: u32) -> Option<Vec<HexBinary>> {
        let Ok(path) = inclusion_path(
            &Leaves(&self.leaves),
            index.into(),
            self.leaves.len() as u64,
        );
        path.map(|p| p.iter().map(|h| HexBinary::from(h.as_slice())).collect())
    }

    /// The leaf hash of inference `index`, as the root commits to it.
    pub fn leaf_hash(&self, index: u32) -> Option<HexBinary> {
        let leaf = self.leaves.get(usize::try_from(index).ok()?)?;
        Some(HexBinary::from(leaf.as_slice()))
    }

    /// The inference with request id `request_id`, if it is one of this batch's.
    pub fn item_of_request(&self, request_id: u64) -> Option<&BatchItem> {
        let index = request_id.checked_sub(self.batch.first_request_id)?;
        self.items.get(usize::try_from(index).ok()?)
    }

    /// The batch's inferences from one `SettleBatch`, if they give its root.
    fn from_message(
        batch: &BatchInfo,
        redemptions: &[VoucherRedemption],
        results: Vec<BatchResult>,
    ) -> Option<Self> {
        // In the order the contract chains them: each redemption's prompts, ending at its
        // voucher's count.
        let mut slots = Vec::with_capacity(results.len());
        for redemption in redemptions {
            let voucher = &redemption.voucher.voucher;
            let first = (voucher.count + 1).checked_sub(redemption.prompt_hashes.len() as u64)?;
            for (offset, prompt_hash) in redemption.prompt_hashes.iter().enumerate() {
                slots.push((
                    voucher.payer.clone(),
                    prompt_hash.clone(),
                    first + offset as u64,
                ));
            }
        }
        if slots.len() != results.len() || slots.len() != batch.count as usize {
            return None;
        }
        let mut items = Vec::with_capacity(slots.len());
        let mut leaves = Vec::with_capacity(slots.len());
        for (index, ((payer, prompt_hash, count), result)) in
            slots.into_iter().zip(results).enumerate()
        {
            let leaf = BatchLeaf {
                payer,
                prompt_hash,
                result,
            };
            leaves.push(batch_leaf(&leaf).ok()?);
            items.push(BatchItem {
                index: index as u32,
                request_id: batch.first_request_id + index as u64,
                count,
                leaf,
            });
        }
        (root_from_leaves(&leaves).as_slice() == batch.items_root.as_slice()).then(|| Self {
            batch: batch.clone(),
            items,
            leaves,
        })
    }
}

impl PayoutContract<'_> {
    /// `batch`'s inferences, read from the transaction that settled it and checked against its
    /// root. Needs a node that indexes transactions (CometBFT's default) and still holds the
    /// batch's block.
    pub async fn batch_contents(&self, batch: &BatchInfo) -> Result<BatchContents, Error> {
        let query = Query::eq(
            format!("{SETTLEMENT_BATCH}._contract_address"),
            self.address(),
        )
        .and_eq(format!("{SETTLEMENT_BATCH}.batch_id"), batch.id.to_string());
        let found = self
            .client
            .rpc
            .tx_search(query, false, 1, SEARCH_PAGE, Order::Ascending)
            .await?;
        let unavailable = |reason: &str| Error::BatchUnavailable {
            batch_id: batch.id,
            reason: reason.to_string(),
        };
        if found.txs.is_empty() {
            return Err(unavailable("the node has no transaction with its event"));
        }
        for tx in found.txs {
            if tx.tx_result.code.is_err() {
                continue;
            }
            let Ok(decoded) = Tx::from_bytes(&tx.tx) else {
                continue;
            };
            for any in &decoded.body.messages {
                let Ok(msg) = MsgExecuteContract::from_any(any) else {
                    continue;
                };
                if msg.contract.as_ref() != self.address() {
                    continue;
                }
                let Ok(ExecuteMsg::SettleBatch {
                    redemptions,
                    results,
                }) = serde_json::from_slice(&msg.msg)
                else {
                    continue;
                };
                if let Some(contents) = BatchContents::from_message(batch, &redemptions, results) {
                    return Ok(contents);
                }
            }
        }
        Err(unavailable(
            "no SettleBatch in the transactions with its event gives its root",
        ))
    }
}
