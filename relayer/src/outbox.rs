//! The durable outbox: every paid request from the moment it is seen on chain until its
//! commit is confirmed in a block.
//!
//! Crash model: the process may die between any two calls. Each state change is one redb
//! write transaction (durable on commit), so after a restart the outbox is exactly as it was
//! after the last completed call, and the relayer resumes from it: `pending_attribution`,
//! `ready_to_commit` and `in_flight` tell it what is left to do. A request is only ever
//! committed through a recorded broadcast, and it leaves `Broadcast` only by being confirmed
//! or by the operator-visible decision that its transaction expired, so it is never lost and
//! never committed twice by this relayer.

use redb::{Database, ReadableTable, Table, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use thiserror::Error;
use tributary_types::AttributionPacket;

/// request_id → JSON [`StoredEntry`].
const REQUESTS: TableDefinition<u64, &[u8]> = TableDefinition::new("requests");
/// (state tag, seen_height, request_id) → (); keeps per-state queries off the full history.
const BY_STATE: TableDefinition<(u8, u64, u64), ()> = TableDefinition::new("requests_by_state");
/// request_id → JSON packet; kept through `Broadcast` so a reverted tx can be re-sent as is.
const PACKETS: TableDefinition<u64, &[u8]> = TableDefinition::new("packets");
/// tx_hash → JSON [`TxRecord`] for every broadcast not yet confirmed or reverted.
const TXS: TableDefinition<&str, &[u8]> = TableDefinition::new("in_flight_txs");
/// request_id → the payer's completion request (JSON, opaque here), kept until the request
/// leaves the outbox's care so a restart can recompute its packet.
const PROMPTS: TableDefinition<u64, &[u8]> = TableDefinition::new("prompts");
/// Scalars such as the scan cursor.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const CURSOR_KEY: &str = "scanned_through_height";

/// A paid inference request as read from a `wasm-inference_requested` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// The payout contract's request id.
    pub request_id: u64,
    /// The requested model.
    pub model_id: u64,
    /// The requested model version.
    pub version: u32,
    /// The paying account.
    pub payer: String,
    /// Hash of the prompt, hex.
    pub prompt_hash: String,
    /// The amount paid, as the event's decimal string.
    pub amount: String,
    /// The asset paid in (denom or cw20 address).
    pub asset: String,
    /// The block the request was seen in.
    pub seen_height: u64,
}

/// Where a request is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestState {
    /// Seen on chain, not attributed yet.
    Seen,
    /// Attributed, waiting for a commit transaction.
    Attributed {
        /// The packet to commit.
        packet: AttributionPacket,
    },
    /// Sent in a transaction not yet confirmed in a block.
    Broadcast {
        /// The transaction carrying it.
        tx_hash: String,
        /// Every request in that transaction.
        packets_in_tx: Vec<u64>,
        /// The transaction's timeout height: once the chain is past it without the
        /// transaction, it can never be included and the request may be sent again.
        timeout_height: u64,
    },
    /// Its commit is in a block; terminal.
    Committed {
        /// The confirmed transaction.
        tx_hash: String,
        /// The block that included it.
        height: u64,
    },
    /// Rejected for good (expired, refunded, unattributable); terminal.
    Failed {
        /// Why, for the operator.
        reason: String,
        /// How many times it had been broadcast.
        attempts: u32,
    },
}

impl RequestState {
    /// The state without its data.
    pub fn kind(&self) -> StateKind {
        match self {
            RequestState::Seen => StateKind::Seen,
            RequestState::Attributed { .. } => StateKind::Attributed,
            RequestState::Broadcast { .. } => StateKind::Broadcast,
            RequestState::Committed { .. } => StateKind::Committed,
            RequestState::Failed { .. } => StateKind::Failed,
        }
    }
}

/// The name of a [`RequestState`], used in errors and counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StateKind {
    /// See [`RequestState::Seen`].
    Seen,
    /// See [`RequestState::Attributed`].
    Attributed,
    /// See [`RequestState::Broadcast`].
    Broadcast,
    /// See [`RequestState::Committed`].
    Committed,
    /// See [`RequestState::Failed`].
    Failed,
}

impl StateKind {
    const ALL: [StateKind; 5] = [
        StateKind::Seen,
        StateKind::Attributed,
        StateKind::Broadcast,
        StateKind::Committed,
        StateKind::Failed,
    ];

    // Stored in BY_STATE keys: never renumber.
    fn tag(self) -> u8 {
        match self {
            StateKind::Seen => 0,
            StateKind::Attributed => 1,
            StateKind::Broadcast => 2,
            StateKind::Committed => 3,
            StateKind::Failed => 4,
        }
    }
}

impl fmt::Display for StateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StateKind::Seen => "seen",
            StateKind::Attributed => "attributed",
            StateKind::Broadcast => "broadcast",
            StateKind::Committed => "committed",
            StateKind::Failed => "failed",
        })
    }
}

/// A request and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// The request as seen on chain.
    pub request: RequestRecord,
    /// Its current state.
    pub state: RequestState,
    /// How many times it has been put in a broadcast transaction.
    pub broadcast_attempts: u32,
}

/// How many requests are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxCounts {
    /// Waiting for attribution.
    pub seen: u64,
    /// Waiting for a commit transaction.
    pub attributed: u64,
    /// In an unconfirmed transaction.
    pub broadcast: u64,
    /// Confirmed.
    pub committed: u64,
    /// Rejected for good.
    pub failed: u64,
}

/// Why an outbox operation was refused or could not complete; the outbox is unchanged.
#[derive(Debug, Error)]
pub enum OutboxError {
    /// The database file could not be opened, read or written.
    // Boxed: redb's error is large and would bloat every `Result` in the hot path.
    #[error("outbox database error: {0}")]
    Database(Box<redb::Error>),
    /// The outbox file's directory could not be created.
    #[error("cannot create the outbox directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The requested state change is not allowed from the request's current state.
    #[error("request {request_id} cannot go from {from} to {to}")]
    IllegalTransition {
        request_id: u64,
        from: StateKind,
        to: StateKind,
    },
    /// No request with this id was ever recorded.
    #[error("request {0} is not in the outbox")]
    UnknownRequest(u64),
    /// No unconfirmed broadcast with this hash is recorded.
    #[error("transaction {0} is not an in-flight broadcast in the outbox")]
    UnknownTx(String),
    /// A broadcast with this hash is already recorded.
    #[error("transaction {0} is already recorded as in flight")]
    DuplicateTx(String),
    /// A broadcast must carry at least one request.
    #[error("a broadcast must carry at least one request")]
    EmptyBatch,
    /// The same request was listed twice for one broadcast.
    #[error("request {0} appears twice in one broadcast")]
    DuplicateInBatch(u64),
    /// The packet does not belong to the request it was given for.
    #[error("packet does not match request {request_id}: {reason}")]
    PacketMismatch { request_id: u64, reason: String },
    /// The scan cursor would move back, which would rescan or hide blocks.
    #[error("scan cursor cannot move back from height {current} to {requested}")]
    CursorRegression { current: u64, requested: u64 },
    /// A request claims a height beyond the scan it was recorded with.
    #[error("request {request_id} was seen at height {seen_height}, beyond the scanned height {scanned_through_height}")]
    RequestAboveCursor {
        request_id: u64,
        seen_height: u64,
        scanned_through_height: u64,
    },
    /// Stored data could not be decoded; the file was changed by something else or is damaged.
    #[error("outbox data for {what} is unreadable (damaged file?): {source}")]
    Corrupt {
        what: String,
        source: serde_json::Error,
    },
    /// A value could not be encoded for storage.
    #[error("cannot encode {what} for the outbox: {source}")]
    Encode {
        what: String,
        source: serde_json::Error,
    },
}

// redb splits its errors by operation; the operator only needs to know the database failed.
macro_rules! redb_error_from {
    ($($t:ty),*) => {$(
        impl From<$t> for OutboxError {
            fn from(e: $t) -> Self {
                OutboxError::Database(Box::new(e.into()))
            }
        }
    )*};
}
redb_error_from!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

type Result<T, E = OutboxError> = std::result::Result<T, E>;

/// What is stored per request; `Attributed` carries no packet here because it lives in
/// `PACKETS` and must outlive the `Attributed` state.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredEntry {
    request: RequestRecord,
    state: StoredState,
    broadcast_attempts: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum StoredState {
    Seen,
    Attributed,
    Broadcast {
        tx_hash: String,
        packets_in_tx: Vec<u64>,
        timeout_height: u64,
    },
    Committed {
        tx_hash: String,
        height: u64,
    },
    Failed {
        reason: String,
        attempts: u32,
    },
}

impl StoredState {
    fn kind(&self) -> StateKind {
        match self {
            StoredState::Seen => StateKind::Seen,
            StoredState::Attributed => StateKind::Attributed,
            StoredState::Broadcast { .. } => StateKind::Broadcast,
            StoredState::Committed { .. } => StateKind::Committed,
            StoredState::Failed { .. } => StateKind::Failed,
        }
    }
}

impl StoredEntry {
    fn index_key(&self) -> (u8, u64, u64) {
        (
            self.state.kind().tag(),
            self.request.seen_height,
            self.request.request_id,
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TxRecord {
    timeout_height: u64,
    request_ids: Vec<u64>,
}

fn encode<T: Serialize>(value: &T, what: impl FnOnce() -> String) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|source| OutboxError::Encode {
        what: what(),
        source,
    })
}

fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8], what: impl FnOnce() -> String) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| OutboxError::Corrupt {
        what: what(),
        source,
    })
}

fn load_entry(table: &impl ReadableTable<u64, &'static [u8]>, id: u64) -> Result<StoredEntry> {
    let guard = table.get(id)?.ok_or(OutboxError::UnknownRequest(id))?;
    decode(guard.value(), || format!("request {id}"))
}

fn load_packet(
    table: &impl ReadableTable<u64, &'static [u8]>,
    id: u64,
) -> Result<AttributionPacket> {
    let guard = table.get(id)?.ok_or_else(|| OutboxError::Corrupt {
        what: format!("request {id}'s packet"),
        source: serde::de::Error::custom("the packet is missing"),
    })?;
    decode(guard.value(), || format!("request {id}'s packet"))
}

fn illegal(entry: &StoredEntry, to: StateKind) -> OutboxError {
    OutboxError::IllegalTransition {
        request_id: entry.request.request_id,
        from: entry.state.kind(),
        to,
    }
}

/// The request tables opened in one write transaction.
struct Writer<'txn> {
    requests: Table<'txn, u64, &'static [u8]>,
    by_state: Table<'txn, (u8, u64, u64), ()>,
}

impl<'txn> Writer<'txn> {
    fn open(txn: &'txn WriteTransaction) -> Result<Self> {
        Ok(Self {
            requests: txn.open_table(REQUESTS)?,
            by_state: txn.open_table(BY_STATE)?,
        })
    }

    fn load(&self, id: u64) -> Result<StoredEntry> {
        load_entry(&self.requests, id)
    }

    /// Stores `new`, moving its index row from `old`'s state.
    fn put(&mut self, old: Option<&StoredEntry>, new: &StoredEntry) -> Result<()> {
        if let Some(old) = old {
            self.by_state.remove(old.index_key())?;
        }
        let id = new.request.request_id;
        let bytes = encode(new, || format!("request {id}"))?;
        self.requests.insert(id, bytes.as_slice())?;
        self.by_state.insert(new.index_key(), ())?;
        Ok(())
    }
}

/// A broadcast transaction whose fate is not settled yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlightTx {
    /// Upper-case hex hash.
    pub tx_hash: String,
    /// The requests whose packets it carries.
    pub request_ids: Vec<u64>,
    /// The last height that may include it.
    pub timeout_height: u64,
}

/// The durable request outbox, one redb file.
pub struct Outbox {
    db: Database,
}

impl Outbox {
    /// Opens the outbox at `path`, creating the file and its directory if needed.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| OutboxError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let db = Database::create(path)?;
        // Create every table up front so read transactions never meet a missing table.
        let outbox = Self { db };
        outbox.write(|txn| {
            txn.open_table(REQUESTS)?;
            txn.open_table(BY_STATE)?;
            txn.open_table(PACKETS)?;
            txn.open_table(TXS)?;
            txn.open_table(PROMPTS)?;
            txn.open_table(META)?;
            Ok(())
        })?;
        Ok(outbox)
    }

    /// Runs `f` in one write transaction, committing only if it succeeds.
    fn write<T>(&self, f: impl FnOnce(&WriteTransaction) -> Result<T>) -> Result<T> {
        let txn = self.db.begin_write()?;
        // On error `txn` is dropped uncommitted, which aborts it: nothing partial is kept.
        let value = f(&txn)?;
        txn.commit()?;
        Ok(value)
    }

    /// Records newly seen requests and advances the scan cursor, atomically.
    ///
    /// Requests already known keep their state, so rescanning blocks after a crash is safe.
    pub fn record_seen(
        &self,
        requests: &[RequestRecord],
        scanned_through_height: u64,
    ) -> Result<()> {
        for r in requests {
            if r.seen_height > scanned_through_height {
                return Err(OutboxError::RequestAboveCursor {
                    request_id: r.request_id,
                    seen_height: r.seen_height,
                    scanned_through_height,
                });
            }
        }
        self.write(|txn| {
            let mut meta = txn.open_table(META)?;
            let current = meta.get(CURSOR_KEY)?.map(|g| g.value());
            if let Some(current) = current.filter(|&c| c > scanned_through_height) {
                return Err(OutboxError::CursorRegression {
                    current,
                    requested: scanned_through_height,
                });
            }
            let mut w = Writer::open(txn)?;
            for request in requests {
                if w.requests.get(request.request_id)?.is_some() {
                    continue;
                }
                let entry = StoredEntry {
                    request: request.clone(),
                    state: StoredState::Seen,
                    broadcast_attempts: 0,
                };
                w.put(None, &entry)?;
            }
            meta.insert(CURSOR_KEY, scanned_through_height)?;
            Ok(())
        })
    }

    /// The last height whose requests are all recorded; `None` before the first scan.
    pub fn cursor(&self) -> Result<Option<u64>> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let cursor = meta.get(CURSOR_KEY)?.map(|g| g.value());
        Ok(cursor)
    }

    /// Stores the packet of a `Seen` request, making it `Attributed`.
    pub fn set_attributed(&self, request_id: u64, packet: &AttributionPacket) -> Result<()> {
        self.write(|txn| {
            let mut w = Writer::open(txn)?;
            let old = w.load(request_id)?;
            if !matches!(old.state, StoredState::Seen) {
                return Err(illegal(&old, StateKind::Attributed));
            }
            let r = &old.request;
            let mismatch = if packet.request_id != request_id {
                Some(format!("packet is for request {}", packet.request_id))
            } else if packet.model_id != r.model_id || packet.model_version != r.version {
                Some(format!(
                    "packet is for model {} version {}, the request for model {} version {}",
                    packet.model_id, packet.model_version, r.model_id, r.version
                ))
            } else {
                None
            };
            if let Some(reason) = mismatch {
                return Err(OutboxError::PacketMismatch { request_id, reason });
            }
            let bytes = encode(packet, || format!("request {request_id}'s packet"))?;
            txn.open_table(PACKETS)?
                .insert(request_id, bytes.as_slice())?;
            let new = StoredEntry {
                state: StoredState::Attributed,
                ..old.clone()
            };
            w.put(Some(&old), &new)
        })
    }

    /// Up to `limit` `Seen` requests, oldest first.
    pub fn pending_attribution(&self, limit: usize) -> Result<Vec<RequestRecord>> {
        self.in_state(StateKind::Seen, limit)?
            .into_iter()
            .map(|(_, e)| Ok(e.request))
            .collect()
    }

    /// Up to `limit` `Attributed` requests and their packets, oldest request first.
    pub fn ready_to_commit(&self, limit: usize) -> Result<Vec<(u64, AttributionPacket)>> {
        let ids = self.in_state(StateKind::Attributed, limit)?;
        let txn = self.db.begin_read()?;
        let packets = txn.open_table(PACKETS)?;
        ids.into_iter()
            .map(|(id, _)| Ok((id, load_packet(&packets, id)?)))
            .collect()
    }

    fn in_state(&self, kind: StateKind, limit: usize) -> Result<Vec<(u64, StoredEntry)>> {
        let txn = self.db.begin_read()?;
        let by_state = txn.open_table(BY_STATE)?;
        let requests = txn.open_table(REQUESTS)?;
        let tag = kind.tag();
        let mut out = Vec::new();
        for row in by_state
            .range((tag, 0, 0)..=(tag, u64::MAX, u64::MAX))?
            .take(limit)
        {
            let (key, _) = row?;
            let id = key.value().2;
            out.push((id, load_entry(&requests, id)?));
        }
        Ok(out)
    }

    /// Records that `request_ids` (all `Attributed`) were sent in `tx_hash` at chain `height`.
    ///
    /// Call before the transaction is broadcast: if the process dies after sending it, the
    /// restart finds it in [`Outbox::in_flight`] rather than committing the packets again.
    pub fn mark_broadcast(&self, request_ids: &[u64], tx_hash: &str, height: u64) -> Result<()> {
        if request_ids.is_empty() {
            return Err(OutboxError::EmptyBatch);
        }
        let mut unique = BTreeSet::new();
        for &id in request_ids {
            if !unique.insert(id) {
                return Err(OutboxError::DuplicateInBatch(id));
            }
        }
        self.write(|txn| {
            let mut txs = txn.open_table(TXS)?;
            if txs.get(tx_hash)?.is_some() {
                return Err(OutboxError::DuplicateTx(tx_hash.to_string()));
            }
            let mut w = Writer::open(txn)?;
            for &id in request_ids {
                let old = w.load(id)?;
                if !matches!(old.state, StoredState::Attributed) {
                    return Err(illegal(&old, StateKind::Broadcast));
                }
                let new = StoredEntry {
                    state: StoredState::Broadcast {
                        tx_hash: tx_hash.to_string(),
                        packets_in_tx: request_ids.to_vec(),
                        timeout_height: height,
                    },
                    broadcast_attempts: old.broadcast_attempts.saturating_add(1),
                    request: old.request.clone(),
                };
                w.put(Some(&old), &new)?;
            }
            let record = TxRecord {
                timeout_height: height,
                request_ids: request_ids.to_vec(),
            };
            let bytes = encode(&record, || format!("transaction {tx_hash}"))?;
            txs.insert(tx_hash, bytes.as_slice())?;
            Ok(())
        })
    }

    /// Unconfirmed broadcasts and their requests, earliest timeout first.
    pub fn in_flight(&self) -> Result<Vec<InFlightTx>> {
        let txn = self.db.begin_read()?;
        let txs = txn.open_table(TXS)?;
        let mut out = Vec::new();
        for row in txs.iter()? {
            let (hash, value) = row?;
            let tx_hash = hash.value().to_string();
            let record: TxRecord = decode(value.value(), || format!("transaction {tx_hash}"))?;
            out.push(InFlightTx {
                tx_hash,
                request_ids: record.request_ids,
                timeout_height: record.timeout_height,
            });
        }
        out.sort_by(|a, b| (a.timeout_height, &a.tx_hash).cmp(&(b.timeout_height, &b.tx_hash)));
        Ok(out)
    }

    /// Keeps the payer's completion request for `request_id` (the first one given wins: a
    /// request's prompt is fixed by its on-chain hash). Works before the request is seen.
    pub fn record_prompt(&self, request_id: u64, request: &[u8]) -> Result<()> {
        self.write(|txn| {
            let mut prompts = txn.open_table(PROMPTS)?;
            if prompts.get(request_id)?.is_none() {
                prompts.insert(request_id, request)?;
            }
            Ok(())
        })
    }

    /// The completion request kept for `request_id`.
    pub fn prompt(&self, request_id: u64) -> Result<Option<Vec<u8>>> {
        let txn = self.db.begin_read()?;
        let prompts = txn.open_table(PROMPTS)?;
        let value = prompts.get(request_id)?.map(|v| v.value().to_vec());
        Ok(value)
    }

    /// Marks every request of `tx_hash` `Committed` at block `height`; returns their ids.
    pub fn mark_committed(&self, tx_hash: &str, height: u64) -> Result<Vec<u64>> {
        self.finish_tx(tx_hash, StateKind::Committed, |_| StoredState::Committed {
            tx_hash: tx_hash.to_string(),
            height,
        })
    }

    /// Puts every request of an expired, never-included `tx_hash` back to `Attributed`.
    pub fn revert_to_attributed(&self, tx_hash: &str) -> Result<Vec<u64>> {
        self.finish_tx(tx_hash, StateKind::Attributed, |_| StoredState::Attributed)
    }

    fn finish_tx(
        &self,
        tx_hash: &str,
        to: StateKind,
        next: impl Fn(&StoredEntry) -> StoredState,
    ) -> Result<Vec<u64>> {
        self.write(|txn| {
            let mut txs = txn.open_table(TXS)?;
            let record: TxRecord = match txs.get(tx_hash)? {
                Some(v) => decode(v.value(), || format!("transaction {tx_hash}"))?,
                None => return Err(OutboxError::UnknownTx(tx_hash.to_string())),
            };
            let mut w = Writer::open(txn)?;
            for &id in &record.request_ids {
                let old = w.load(id)?;
                // The tx table and request states are written together, so a mismatch here
                // means the file was tampered with; refuse rather than guess.
                match &old.state {
                    StoredState::Broadcast { tx_hash: h, .. } if h == tx_hash => {}
                    _ => return Err(illegal(&old, to)),
                }
                let new = StoredEntry {
                    state: next(&old),
                    ..old.clone()
                };
                w.put(Some(&old), &new)?;
            }
            txs.remove(tx_hash)?;
            Ok(record.request_ids)
        })
    }

    /// Marks a `Seen` or `Attributed` request as rejected for good.
    ///
    /// A `Broadcast` request must first be reverted: its transaction's fate is still open.
    pub fn mark_failed(&self, request_id: u64, reason: &str) -> Result<()> {
        self.write(|txn| {
            let mut w = Writer::open(txn)?;
            let old = w.load(request_id)?;
            if !matches!(old.state, StoredState::Seen | StoredState::Attributed) {
                return Err(illegal(&old, StateKind::Failed));
            }
            let new = StoredEntry {
                state: StoredState::Failed {
                    reason: reason.to_string(),
                    attempts: old.broadcast_attempts,
                },
                ..old.clone()
            };
            w.put(Some(&old), &new)
        })
    }

    /// How many requests are in each state.
    pub fn counts(&self) -> Result<OutboxCounts> {
        let txn = self.db.begin_read()?;
        let by_state = txn.open_table(BY_STATE)?;
        let mut counts = OutboxCounts::default();
        for kind in StateKind::ALL {
            let tag = kind.tag();
            let mut n = 0u64;
            for row in by_state.range((tag, 0, 0)..=(tag, u64::MAX, u64::MAX))? {
                row?;
                n += 1;
            }
            *match kind {
                StateKind::Seen => &mut counts.seen,
                StateKind::Attributed => &mut counts.attributed,
                StateKind::Broadcast => &mut counts.broadcast,
                StateKind::Committed => &mut counts.committed,
                StateKind::Failed => &mut counts.failed,
            } = n;
        }
        Ok(counts)
    }

    /// The request and its state, or `None` if it was never recorded.
    pub fn get(&self, request_id: u64) -> Result<Option<OutboxEntry>> {
        let txn = self.db.begin_read()?;
        let requests = txn.open_table(REQUESTS)?;
        let stored = match load_entry(&requests, request_id) {
            Ok(e) => e,
            Err(OutboxError::UnknownRequest(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let state = match stored.state {
            StoredState::Seen => RequestState::Seen,
            StoredState::Attributed => RequestState::Attributed {
                packet: load_packet(&txn.open_table(PACKETS)?, request_id)?,
            },
            StoredState::Broadcast {
                tx_hash,
                packets_in_tx,
                timeout_height,
            } => RequestState::Broadcast {
                tx_hash,
                packets_in_tx,
                timeout_height,
            },
            StoredState::Committed { tx_hash, height } => {
                RequestState::Committed { tx_hash, height }
            }
            StoredState::Failed { reason, attempts } => RequestState::Failed { reason, attempts },
        };
        Ok(Some(OutboxEntry {
            request: stored.request,
            state,
            broadcast_attempts: stored.broadcast_attempts,
        }))
    }
}

#[cfg(test)]
mod tests;
