//! Settlement batches: many voucher-paid inferences paid, attributed and committed in one
//! message, settled together after one challenge window.
//!
//! A batch is the chain-scale path. The per-request path stores a request, its terms, each
//! attestor's commit and the whole packet for every inference; a batch stores none of that per
//! inference. The redeemer, an attestor of the model version, sends the vouchers that pay for
//! the batch's prompts and one [`BatchResult`] per prompt; the contract checks every result as it
//! checks a packet (shape, lineage, weights), computes every inference's split, and keeps only
//! their sum per party, plus the merkle root over the batch's [`BatchLeaf`]s:
//!
//! - the results stay available in the transaction that carried them, and anyone holding one
//!   proves it against the root ([`batch_leaf`], [`crate::merkle::verify_inclusion`]);
//! - a verifier who disagrees with one result challenges it with the result, its proof and its
//!   own packet: the inference then becomes an ordinary request, taken out of the batch's sums
//!   and settled by the dispute like any other;
//! - after the challenge window anyone finalizes the batch, which credits its sums at once:
//!   one balance write per party and one usage record per contribution, whatever the number of
//!   inferences.
//!
//! Each inference of a batch has a request id (`first_request_id + index`), the id its
//! [`crate::AttributionPacket`] carries when a challenge turns it into a request. The leaves do
//! not contain it, so a batch's root depends only on what was paid and computed.

use crate::asset::Price;
use crate::hash::{sha256, Hash32};
use crate::merkle::leaf_hash;
use crate::packet::{AttributionEntry, AttributionPacket};
use crate::payout::RequestTerms;
use cosmwasm_schema::cw_serde;
use cosmwasm_std::{to_json_vec, Addr, HexBinary, StdResult, Timestamp};

/// Most inferences one `SettleBatch` may carry: about half a megabyte of results, within the
/// node's default transaction and RPC body limits.
pub const MAX_BATCH_INFERENCES: usize = 1024;

/// One inference's attribution in a batch: the packet fields that differ between inferences.
/// The model, weights, lineage, method and parameters are the version's.
#[cw_serde]
pub struct BatchResult {
    /// SHA-256 of the completion served.
    pub output_hash: HexBinary,
    /// Merkle root over the full score vector.
    pub scores_root: HexBinary,
    /// The top entries; weights sum to exactly 10 000 when there are any.
    pub entries: Vec<AttributionEntry>,
}

/// What the batch root commits to for each inference, in the order the vouchers chain them.
#[cw_serde]
pub struct BatchLeaf {
    pub payer: String,
    pub prompt_hash: HexBinary,
    pub result: BatchResult,
}

/// Where a batch stands.
#[cw_serde]
#[derive(Copy, Eq)]
pub enum BatchStatus {
    /// Committed; challengeable until `finalizable_at`.
    Attested,
    /// Its sums were credited.
    Finalized,
}

/// A committed batch.
#[cw_serde]
pub struct BatchInfo {
    pub id: u64,
    pub model_id: u64,
    pub version: u32,
    /// The attestor that redeemed, attributed and committed it.
    pub attestor: Addr,
    /// The request id of its first inference; the others follow in order.
    pub first_request_id: u64,
    pub count: u32,
    /// The price of each of its inferences.
    pub price: Price,
    /// Root over [`batch_leaf`] of every inference, in order.
    pub items_root: HexBinary,
    /// SHA-256 of the terms its inferences were paid under (`Terms` of any of them once a
    /// challenge turns it into a request).
    pub terms_hash: HexBinary,
    pub created_at: Timestamp,
    pub finalizable_at: Timestamp,
    pub status: BatchStatus,
    /// Request ids taken out of the batch by a challenge, settled as requests.
    pub challenged: Vec<u64>,
}

#[cw_serde]
pub struct BatchesResponse {
    pub batches: Vec<BatchInfo>,
}

/// The leaf hash of one inference of a batch.
pub fn batch_leaf(leaf: &BatchLeaf) -> StdResult<Hash32> {
    Ok(leaf_hash(&to_json_vec(leaf)?))
}

impl BatchResult {
    /// The packet of this result for request `request_id` under `terms` (a version's header).
    pub fn packet(
        &self,
        request_id: u64,
        model_id: u64,
        version: u32,
        terms: &RequestTerms,
    ) -> AttributionPacket {
        AttributionPacket {
            request_id,
            model_id,
            model_version: version,
            weights_hash: terms.weights_hash.clone(),
            datanet_roots: terms.lineage.iter().map(|l| l.root.clone()).collect(),
            method: terms.method_id.clone(),
            params_hash: terms.params_hash.clone(),
            output_hash: self.output_hash.clone(),
            scores_root: self.scores_root.clone(),
            entries: self.entries.clone(),
        }
    }
}

/// The hash under which terms are stored once for every request and batch paid under them.
pub fn terms_hash(terms: &RequestTerms) -> StdResult<Hash32> {
    Ok(sha256(&to_json_vec(terms)?))
}
