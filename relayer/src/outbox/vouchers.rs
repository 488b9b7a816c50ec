//! The outbox's voucher side: inferences served against signed vouchers, from the moment the
//! payer is answered until the settlement batch that redeems them is in a block.
//!
//! Same crash model as the rest of the outbox: each change is one write transaction. An
//! inference is recorded with its voucher and result before the payer reads its completion, so
//! nothing served is lost; a batch's hash is recorded before it leaves, so after a restart the
//! relayer asks the chain what became of it and never settles an inference twice (the contract
//! refuses a voucher already redeemed in any case).

use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use tributary_attrib_api::CompletionResponse;
use tributary_types::batch::BatchResult;
use tributary_types::voucher::SignedVoucher;

use super::{decode, encode, Outbox, OutboxError, Result};

/// Series key → JSON [`SeriesRecord`].
pub(super) const SERIES: TableDefinition<&str, &[u8]> = TableDefinition::new("voucher_series");
/// (series key, count) → JSON [`VoucherItem`].
pub(super) const ITEMS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("voucher_items");
/// (series key, count) of every inference waiting for a batch: what the batcher scans, however
/// many inferences were settled before.
pub(super) const PENDING: TableDefinition<(&str, u64), ()> =
    TableDefinition::new("voucher_pending");
/// Batch transaction hash → JSON [`BatchTx`], until confirmed or reverted.
pub(super) const BATCH_TXS: TableDefinition<&str, &[u8]> = TableDefinition::new("voucher_txs");
/// Batch id → its `finalizable_at` (unix seconds), until finalized.
pub(super) const BATCHES: TableDefinition<u64, u64> = TableDefinition::new("voucher_batches");
/// Request id on chain → (series key, count) of the settled inference it is, so that a
/// challenged inference's inputs are found by its request id like a paid request's.
pub(super) const REQUESTS: TableDefinition<u64, (&str, u64)> =
    TableDefinition::new("voucher_requests");

/// One payer's vouchers to this relayer on one model version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesRecord {
    pub payer: String,
    pub model_id: u64,
    pub version: u32,
    /// Inferences served so far (the count of the last voucher accepted).
    pub served: u64,
    /// The prompt chain after them, hex.
    pub chain: String,
    /// What they cost in all.
    pub charged: u128,
    /// Inferences redeemed on chain.
    pub settled: u64,
}

/// Where a served inference stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ItemState {
    /// Served, waiting for a batch.
    Pending,
    /// In the batch transaction with this hash.
    InTx(String),
    /// Redeemed on chain.
    Settled,
}

/// One inference served against a voucher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VoucherItem {
    /// The voucher whose count is this inference's.
    pub voucher: SignedVoucher,
    /// SHA-256 of the prompt, hex.
    pub prompt_hash: String,
    /// The prompt, for verifiers and disputes (empty in items recorded before it was kept).
    #[serde(default)]
    pub prompt: String,
    pub result: BatchResult,
    /// What the payer was answered.
    pub response: CompletionResponse,
    pub state: ItemState,
}

/// A broadcast settlement batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchTx {
    pub timeout_height: u64,
    /// (series key, count) of every inference it carries, in its order.
    pub items: Vec<(String, u64)>,
}

/// Where a confirmed settlement batch sits on chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettledBatch {
    pub batch_id: u64,
    /// The request id of its first inference; the others follow in the batch's order.
    pub first_request_id: u64,
    /// Unix seconds from which it can be finalized.
    pub finalizable_at: u64,
}

/// The key of a series.
pub fn series_key(payer: &str, model_id: u64, version: u32) -> String {
    format!("{payer}/{model_id}/{version}")
}

impl Outbox {
    /// A series as served so far, if this relayer served it.
    pub fn voucher_series(&self, key: &str) -> Result<Option<SeriesRecord>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(SERIES)?;
        let value = table.get(key)?;
        value
            .map(|v| decode(v.value(), || format!("voucher series {key}")))
            .transpose()
    }

    /// A served inference.
    pub fn voucher_item(&self, key: &str, count: u64) -> Result<Option<VoucherItem>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(ITEMS)?;
        let value = table.get((key, count))?;
        value
            .map(|v| decode(v.value(), || format!("voucher item {key}#{count}")))
            .transpose()
    }

    /// Records a served inference and its series' new state, atomically; refuses one whose
    /// count was recorded already.
    pub fn record_voucher_item(
        &self,
        key: &str,
        series: &SeriesRecord,
        item: &VoucherItem,
    ) -> Result<()> {
        self.write(|txn| {
            let mut items = txn.open_table(ITEMS)?;
            let count = item.voucher.voucher.count;
            if items.get((key, count))?.is_some() {
                return Err(OutboxError::DuplicateVoucher {
                    series: key.to_string(),
                    count,
                });
            }
            let bytes = encode(item, || format!("voucher item {key}#{count}"))?;
            items.insert((key, count), bytes.as_slice())?;
            if item.state == ItemState::Pending {
                txn.open_table(PENDING)?.insert((key, count), ())?;
            }
            let bytes = encode(series, || format!("voucher series {key}"))?;
            txn.open_table(SERIES)?.insert(key, bytes.as_slice())?;
            Ok(())
        })
    }

    /// Up to `max` inferences waiting for a batch, by series and count.
    pub fn pending_voucher_items(&self, max: usize) -> Result<Vec<(String, VoucherItem)>> {
        let txn = self.db.begin_read()?;
        let pending = txn.open_table(PENDING)?;
        let items = txn.open_table(ITEMS)?;
        let mut out = Vec::new();
        for row in pending.iter()?.take(max) {
            let (key, _) = row?;
            let (series, count) = key.value();
            let what = || format!("voucher item {series}#{count}");
            let value = items
                .get((series, count))?
                .ok_or_else(|| OutboxError::UnknownVoucherItem(what()))?;
            out.push((series.to_string(), decode(value.value(), what)?));
        }
        Ok(out)
    }

    /// Records that `items` were sent in `tx_hash`; call before it is broadcast.
    pub fn mark_batch_broadcast(
        &self,
        items: &[(String, u64)],
        tx_hash: &str,
        timeout_height: u64,
    ) -> Result<()> {
        if items.is_empty() {
            return Err(OutboxError::EmptyBatch);
        }
        self.write(|txn| {
            let mut txs = txn.open_table(BATCH_TXS)?;
            if txs.get(tx_hash)?.is_some() {
                return Err(OutboxError::DuplicateTx(tx_hash.to_string()));
            }
            set_state(txn, items, |state| {
                (*state == ItemState::Pending).then(|| ItemState::InTx(tx_hash.to_string()))
            })?;
            let record = BatchTx {
                timeout_height,
                items: items.to_vec(),
            };
            let bytes = encode(&record, || format!("batch transaction {tx_hash}"))?;
            txs.insert(tx_hash, bytes.as_slice())?;
            Ok(())
        })
    }

    /// Batches broadcast and not yet confirmed or reverted.
    pub fn batches_in_flight(&self) -> Result<Vec<(String, BatchTx)>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(BATCH_TXS)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (hash, value) = row?;
            let hash = hash.value().to_string();
            let record = decode(value.value(), || format!("batch transaction {hash}"))?;
            out.push((hash, record));
        }
        Ok(out)
    }

    /// The batch `tx_hash` is in a block as batch `batch_id`, its inferences request ids
    /// `first_request_id..`: they are settled, and the batch waits to be finalized from
    /// `finalizable_at`.
    pub fn mark_batch_settled(&self, tx_hash: &str, batch: SettledBatch) -> Result<usize> {
        self.write(|txn| {
            let record = take_tx(txn, tx_hash)?;
            set_state(txn, &record.items, |state| {
                matches!(state, ItemState::InTx(h) if h == tx_hash).then_some(ItemState::Settled)
            })?;
            let mut requests = txn.open_table(REQUESTS)?;
            for (offset, (key, count)) in record.items.iter().enumerate() {
                requests.insert(
                    batch.first_request_id + offset as u64,
                    (key.as_str(), *count),
                )?;
            }
            let mut series = txn.open_table(SERIES)?;
            for (key, count) in &record.items {
                let value = series.get(key.as_str())?.map(|v| v.value().to_vec());
                if let Some(bytes) = value {
                    let mut record: SeriesRecord =
                        decode(&bytes, || format!("voucher series {key}"))?;
                    record.settled = record.settled.max(*count);
                    let bytes = encode(&record, || format!("voucher series {key}"))?;
                    series.insert(key.as_str(), bytes.as_slice())?;
                }
            }
            txn.open_table(BATCHES)?
                .insert(batch.batch_id, batch.finalizable_at)?;
            Ok(record.items.len())
        })
    }

    /// The prompt and the completion (hex) of the settled voucher inference that has request id
    /// `request_id` on chain, if this relayer served it and kept its prompt.
    pub fn batched_inputs(&self, request_id: u64) -> Result<Option<(String, String)>> {
        let txn = self.db.begin_read()?;
        let requests = txn.open_table(REQUESTS)?;
        let Some(slot) = requests.get(request_id)? else {
            return Ok(None);
        };
        let (key, count) = slot.value();
        let Some(value) = txn.open_table(ITEMS)?.get((key, count))? else {
            return Ok(None);
        };
        let item: VoucherItem = decode(value.value(), || format!("voucher item {key}#{count}"))?;
        Ok((!item.prompt.is_empty()).then_some((item.prompt, item.response.completion_hex)))
    }

    /// The batch `tx_hash` will never execute, or failed: its inferences wait again.
    pub fn revert_batch(&self, tx_hash: &str) -> Result<usize> {
        self.write(|txn| {
            let record = take_tx(txn, tx_hash)?;
            set_state(txn, &record.items, |state| {
                matches!(state, ItemState::InTx(h) if h == tx_hash).then_some(ItemState::Pending)
            })?;
            Ok(record.items.len())
        })
    }

    /// Settled batches not yet finalized whose window ends at or before `now` (unix seconds).
    pub fn batches_to_finalize(&self, now: u64) -> Result<Vec<u64>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(BATCHES)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (id, at) = row?;
            if at.value() <= now {
                out.push(id.value());
            }
        }
        Ok(out)
    }

    /// Batches finalized on chain leave the outbox.
    pub fn forget_batches(&self, ids: &[u64]) -> Result<()> {
        self.write(|txn| {
            let mut table = txn.open_table(BATCHES)?;
            for id in ids {
                table.remove(id)?;
            }
            Ok(())
        })
    }
}

fn take_tx(txn: &redb::WriteTransaction, tx_hash: &str) -> Result<BatchTx> {
    let mut txs = txn.open_table(BATCH_TXS)?;
    let bytes = txs
        .remove(tx_hash)?
        .map(|v| v.value().to_vec())
        .ok_or_else(|| OutboxError::UnknownTx(tx_hash.to_string()))?;
    decode(&bytes, || format!("batch transaction {tx_hash}"))
}

/// Moves each listed item to `change(state)`; an item whose state `change` refuses (`None`)
/// fails the whole transaction.
fn set_state(
    txn: &redb::WriteTransaction,
    items: &[(String, u64)],
    change: impl Fn(&ItemState) -> Option<ItemState>,
) -> Result<()> {
    let mut table = txn.open_table(ITEMS)?;
    let mut pending = txn.open_table(PENDING)?;
    for (key, count) in items {
        let what = || format!("voucher item {key}#{count}");
        let bytes = table
            .get((key.as_str(), *count))?
            .map(|v| v.value().to_vec())
            .ok_or_else(|| OutboxError::UnknownVoucherItem(what()))?;
        let mut item: VoucherItem = decode(&bytes, what)?;
        item.state = change(&item.state).ok_or_else(|| OutboxError::UnknownVoucherItem(what()))?;
        if item.state == ItemState::Pending {
            pending.insert((key.as_str(), *count), ())?;
        } else {
            pending.remove((key.as_str(), *count))?;
        }
        let bytes = encode(&item, what)?;
        table.insert((key.as_str(), *count), bytes.as_slice())?;
    }
    Ok(())
}
