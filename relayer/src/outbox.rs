//! The durable outbox: every paid request from the moment it is seen on chain until its
//! commit is confirmed in a block.
//!
//! Crash model: the process may die between any two calls. Each state change is one redb
//! write transaction (durable on commit), so after a restart the outbox is exactly as it was
//! after the last completed call, and the relayer resumes from it: `ready_to_attribute`,
//! `ready_to_commit` and `in_flight` tell it what is left to do.
//!
//! No payer can stall the others: a request waits for its prompt (`Seen`) apart from the
//! requests whose prompt arrived (`Prompted`), only the latter are attributed, in turns between
//! models and payers, and both queues are capped per payer and overall ([`QueueLimits`]).
//! Each request keeps its expiry from the chain, so expired ones leave every queue by a
//! comparison with the block time ([`Outbox::prune_expired`]), without a query per request. A request is only ever
//! committed through a recorded broadcast, and it leaves `Broadcast` only by being confirmed
//! or by the operator-visible decision that its transaction expired, so it is never lost and
//! never committed twice by this relayer.

use redb::{Database, ReadableTable, Table, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};
use thiserror::Error;
use tributary_attrib_api::{CompletionRequest, CompletionResponse};
use tributary_types::AttributionPacket;

/// request_id → JSON [`StoredEntry`].
const REQUESTS: TableDefinition<u64, &[u8]> = TableDefinition::new("requests");
/// (state tag, seen_height, request_id) → (); keeps per-state queries off the full history.
const BY_STATE: TableDefinition<(u8, u64, u64), ()> = TableDefinition::new("requests_by_state");
/// request_id → JSON packet; kept through `Broadcast` so a reverted tx can be re-sent as is.
const PACKETS: TableDefinition<u64, &[u8]> = TableDefinition::new("packets");
/// tx_hash → JSON [`TxRecord`] for every broadcast not yet confirmed or reverted.
const TXS: TableDefinition<&str, &[u8]> = TableDefinition::new("in_flight_txs");
/// request_id → the engine request made from the payer's prompt (JSON [`CompletionRequest`]),
/// kept so a restart can recompute its packet.
const PROMPTS: TableDefinition<u64, &[u8]> = TableDefinition::new("prompts");
/// request_id → the engine's response (JSON [`CompletionResponse`]), written with the packet:
/// what the payer reads back, without running the engine again.
const RESPONSES: TableDefinition<u64, &[u8]> = TableDefinition::new("responses");
/// request_id → SHA-256 of the token handed to the payer with its first submission; reading
/// the completion back needs the token.
const TOKENS: TableDefinition<u64, &[u8]> = TableDefinition::new("tokens");
/// Scalars such as the scan cursor.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const CURSOR_KEY: &str = "scanned_through_height";
const SCHEMA_KEY: &str = "schema_version";

/// The layout of the tables and records this release reads and writes. A release that changes
/// them incompatibly raises it and migrates older files in [`Outbox::open`]; a file written by
/// a newer release is refused rather than misread. Files from before the version was recorded
/// have layout 1.
pub const SCHEMA_VERSION: u64 = 1;

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
    /// The block the request was seen in (for a prompt that arrived first, the scan height
    /// then).
    pub seen_height: u64,
    /// When the payout contract expires the request, in block time (unix seconds); `None` in
    /// records kept before the outbox stored it.
    #[serde(default)]
    pub expires_at: Option<u64>,
}

/// Caps on the requests one queue holds for one payer and for everyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Most requests of one payer in the queue.
    pub per_payer: usize,
    /// Most requests in the queue.
    pub total: usize,
}

/// Whether [`Outbox::record_prompt`] kept the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptKept {
    /// It is the request's first prompt: the request is now ready to attribute.
    New,
    /// The request already had its prompt; the first one stays.
    Already,
}

/// Where a request is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RequestState {
    /// Seen on chain; its prompt has not arrived.
    Seen,
    /// Its prompt arrived: ready to attribute.
    Prompted,
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
            RequestState::Prompted => StateKind::Prompted,
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
    /// See [`RequestState::Prompted`].
    Prompted,
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
    const ALL: [StateKind; 6] = [
        StateKind::Seen,
        StateKind::Prompted,
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
            StateKind::Prompted => 5,
        }
    }
}

impl fmt::Display for StateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StateKind::Seen => "seen",
            StateKind::Prompted => "prompted",
            StateKind::Attributed => "attributed",
            StateKind::Broadcast => "broadcast",
            StateKind::Committed => "committed",
            StateKind::Failed => "failed",
        })
    }
}

/// A request and where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxEntry {
    /// The request as seen on chain.
    pub request: RequestRecord,
    /// Its current state.
    #[serde(flatten)]
    pub state: RequestState,
    /// How many times it has been put in a broadcast transaction.
    pub broadcast_attempts: u32,
}

/// How many requests are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxCounts {
    /// Waiting for their prompt.
    pub seen: u64,
    /// Waiting for attribution.
    #[serde(default)]
    pub prompted: u64,
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
    /// An inference with this voucher count was recorded already.
    #[error("voucher {count} of series {series} is already recorded")]
    DuplicateVoucher { series: String, count: u64 },
    /// A batch named an inference that is not recorded in the state it expects.
    #[error("{0} is not recorded as the batch expects")]
    UnknownVoucherItem(String),
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
    /// The queue already holds as many requests as its limits allow.
    #[error("{payer} already has {waiting} requests waiting for attribution (at most {limit})")]
    PayerQueueFull {
        payer: String,
        waiting: usize,
        limit: usize,
    },
    /// The queue already holds as many requests as its limits allow.
    #[error("{waiting} requests are waiting for attribution (at most {limit})")]
    QueueFull { waiting: usize, limit: usize },
    /// A response to keep carries no packet.
    #[error("the response for request {0} carries no attribution packet")]
    NoPacket(u64),
    /// A value could not be encoded for storage.
    #[error("cannot encode {what} for the outbox: {source}")]
    Encode {
        what: String,
        source: serde_json::Error,
    },
    /// The file was written by a newer release, in a layout this one cannot read.
    #[error("the outbox has layout {found}, newer than the {supported} this release reads: run the release that wrote it")]
    NewerSchema { found: u64, supported: u64 },
    /// An export could not be written.
    #[error("writing the export: {0}")]
    Export(std::io::Error),
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
    Prompted,
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
            StoredState::Prompted => StateKind::Prompted,
            StoredState::Attributed => StateKind::Attributed,
            StoredState::Broadcast { .. } => StateKind::Broadcast,
            StoredState::Committed { .. } => StateKind::Committed,
            StoredState::Failed { .. } => StateKind::Failed,
        }
    }
}

/// The entries of one state, in index order (seen height, then id).
fn entries_in(
    by_state: &impl ReadableTable<(u8, u64, u64), ()>,
    requests: &impl ReadableTable<u64, &'static [u8]>,
    kind: StateKind,
    limit: usize,
) -> Result<Vec<StoredEntry>> {
    let tag = kind.tag();
    let mut out = Vec::new();
    for row in by_state
        .range((tag, 0, 0)..=(tag, u64::MAX, u64::MAX))?
        .take(limit)
    {
        let (key, _) = row?;
        out.push(load_entry(requests, key.value().2)?);
    }
    Ok(out)
}

/// How many requests a queue holds, per payer and in all.
#[derive(Default)]
struct QueueCounts {
    per_payer: HashMap<String, usize>,
    total: usize,
}

impl QueueCounts {
    fn of(entries: &[StoredEntry]) -> Self {
        let mut counts = QueueCounts::default();
        for e in entries {
            counts.add(&e.request.payer);
        }
        counts
    }

    fn add(&mut self, payer: &str) {
        *self.per_payer.entry(payer.to_string()).or_default() += 1;
        self.total += 1;
    }

    /// Why one more request of `payer` would not fit, if it would not.
    fn refuse(&self, payer: &str, limits: QueueLimits) -> Option<OutboxError> {
        let waiting = self.per_payer.get(payer).copied().unwrap_or(0);
        if waiting >= limits.per_payer {
            Some(OutboxError::PayerQueueFull {
                payer: payer.to_string(),
                waiting,
                limit: limits.per_payer,
            })
        } else if self.total >= limits.total {
            Some(OutboxError::QueueFull {
                waiting: self.total,
                limit: limits.total,
            })
        } else {
            None
        }
    }
}

/// `entries` (in queue order) taking turns: one request of each model in turn, and within a
/// model one of each payer in turn, so a payer or model with many requests waits for its
/// turn rather than making everyone else wait.
fn taking_turns(entries: Vec<StoredEntry>, limit: usize) -> Vec<StoredEntry> {
    struct ModelQueue {
        model: (u64, u32),
        payers: Vec<(String, VecDeque<StoredEntry>)>,
        next: usize,
    }
    let mut models: Vec<ModelQueue> = Vec::new();
    for e in entries {
        let model = (e.request.model_id, e.request.version);
        let queue = match models.iter().position(|m| m.model == model) {
            Some(i) => &mut models[i],
            None => {
                models.push(ModelQueue {
                    model,
                    payers: Vec::new(),
                    next: 0,
                });
                models.last_mut().expect("just pushed")
            }
        };
        match queue.payers.iter().position(|(p, _)| *p == e.request.payer) {
            Some(i) => queue.payers[i].1.push_back(e),
            None => queue
                .payers
                .push((e.request.payer.clone(), VecDeque::from([e]))),
        }
    }
    let mut out = Vec::new();
    while out.len() < limit {
        let mut took = false;
        for m in &mut models {
            for step in 0..m.payers.len() {
                let i = (m.next + step) % m.payers.len();
                if let Some(e) = m.payers[i].1.pop_front() {
                    m.next = (i + 1) % m.payers.len();
                    out.push(e);
                    took = true;
                    break;
                }
            }
            if out.len() == limit {
                break;
            }
        }
        if !took {
            break;
        }
    }
    out
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

fn load_prompt(
    table: &impl ReadableTable<u64, &'static [u8]>,
    id: u64,
) -> Result<Option<CompletionRequest>> {
    let Some(guard) = table.get(id)? else {
        return Ok(None);
    };
    decode(guard.value(), || format!("request {id}'s prompt")).map(Some)
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
            {
                let mut meta = txn.open_table(META)?;
                let found = meta.get(SCHEMA_KEY)?.map(|g| g.value());
                match found {
                    Some(found) if found > SCHEMA_VERSION => {
                        return Err(OutboxError::NewerSchema {
                            found,
                            supported: SCHEMA_VERSION,
                        })
                    }
                    // Layout 1 is the first: nothing older to migrate yet.
                    Some(_) => {}
                    None => {
                        meta.insert(SCHEMA_KEY, SCHEMA_VERSION)?;
                    }
                }
            }
            txn.open_table(REQUESTS)?;
            txn.open_table(BY_STATE)?;
            txn.open_table(PACKETS)?;
            txn.open_table(TXS)?;
            txn.open_table(PROMPTS)?;
            txn.open_table(RESPONSES)?;
            txn.open_table(TOKENS)?;
            txn.open_table(META)?;
            txn.open_table(vouchers::SERIES)?;
            txn.open_table(vouchers::ITEMS)?;
            txn.open_table(vouchers::PENDING)?;
            txn.open_table(vouchers::BATCH_TXS)?;
            txn.open_table(vouchers::BATCHES)?;
            txn.open_table(vouchers::REQUESTS)?;
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

    /// Records newly seen requests and advances the scan cursor, atomically; returns the ids
    /// of the requests it did not keep because `limits` of the queue waiting for prompts were
    /// reached. Those are served still if their prompt arrives ([`Outbox::record_prompt`]
    /// keeps the request then).
    ///
    /// Requests already known keep their state, so rescanning blocks after a crash is safe.
    pub fn record_seen(
        &self,
        requests: &[RequestRecord],
        scanned_through_height: u64,
        limits: QueueLimits,
    ) -> Result<Vec<u64>> {
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
            let mut dropped = Vec::new();
            if !requests.is_empty() {
                let waiting = entries_in(&w.by_state, &w.requests, StateKind::Seen, usize::MAX)?;
                let mut counts = QueueCounts::of(&waiting);
                for request in requests {
                    if w.requests.get(request.request_id)?.is_some() {
                        continue;
                    }
                    if counts.refuse(&request.payer, limits).is_some() {
                        dropped.push(request.request_id);
                        continue;
                    }
                    counts.add(&request.payer);
                    let entry = StoredEntry {
                        request: request.clone(),
                        state: StoredState::Seen,
                        broadcast_attempts: 0,
                    };
                    w.put(None, &entry)?;
                }
            }
            meta.insert(CURSOR_KEY, scanned_through_height)?;
            Ok(dropped)
        })
    }

    /// The last height whose requests are all recorded; `None` before the first scan.
    pub fn cursor(&self) -> Result<Option<u64>> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let cursor = meta.get(CURSOR_KEY)?.map(|g| g.value());
        Ok(cursor)
    }

    /// Keeps the engine's response to a `Prompted` request and its packet, making it
    /// `Attributed`.
    pub fn set_attributed(&self, request_id: u64, response: &CompletionResponse) -> Result<()> {
        let packet = response
            .packet
            .as_ref()
            .ok_or(OutboxError::NoPacket(request_id))?;
        self.write(|txn| {
            let mut w = Writer::open(txn)?;
            let old = w.load(request_id)?;
            if !matches!(old.state, StoredState::Prompted) {
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
            let bytes = encode(response, || format!("request {request_id}'s response"))?;
            txn.open_table(RESPONSES)?
                .insert(request_id, bytes.as_slice())?;
            let new = StoredEntry {
                state: StoredState::Attributed,
                ..old.clone()
            };
            w.put(Some(&old), &new)
        })
    }

    /// Up to `limit` `Prompted` requests with their prompts, taking turns between models and,
    /// within a model, between payers (each payer's oldest first).
    pub fn ready_to_attribute(
        &self,
        limit: usize,
    ) -> Result<Vec<(RequestRecord, CompletionRequest)>> {
        let txn = self.db.begin_read()?;
        let by_state = txn.open_table(BY_STATE)?;
        let requests = txn.open_table(REQUESTS)?;
        let prompts = txn.open_table(PROMPTS)?;
        let waiting = entries_in(&by_state, &requests, StateKind::Prompted, usize::MAX)?;
        taking_turns(waiting, limit)
            .into_iter()
            .map(|e| {
                let id = e.request.request_id;
                let prompt = load_prompt(&prompts, id)?.ok_or_else(|| OutboxError::Corrupt {
                    what: format!("request {id}'s prompt"),
                    source: serde::de::Error::custom("the prompt is missing"),
                })?;
                Ok((e.request, prompt))
            })
            .collect()
    }

    /// Up to `limit` `Seen` requests (waiting for their prompt), oldest first.
    pub fn waiting_for_prompt(&self, limit: usize) -> Result<Vec<RequestRecord>> {
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
        Ok(entries_in(&by_state, &requests, kind, limit)?
            .into_iter()
            .map(|e| (e.request.request_id, e))
            .collect())
    }

    /// Marks every request still to be committed (`Seen`, `Prompted`, `Attributed`) whose
    /// expiry is at or before `now` (block time, unix seconds) `Failed`: the contract takes no
    /// commit for it any more. Returns their ids.
    pub fn prune_expired(&self, now: u64) -> Result<Vec<u64>> {
        self.write(|txn| {
            let mut w = Writer::open(txn)?;
            let mut pruned = Vec::new();
            for kind in [StateKind::Seen, StateKind::Prompted, StateKind::Attributed] {
                for old in entries_in(&w.by_state, &w.requests, kind, usize::MAX)? {
                    let Some(expires_at) = old.request.expires_at.filter(|t| *t <= now) else {
                        continue;
                    };
                    let new = StoredEntry {
                        state: StoredState::Failed {
                            reason: format!(
                                "the request expired at {expires_at} (block time) before its packet was committed"
                            ),
                            attempts: old.broadcast_attempts,
                        },
                        ..old.clone()
                    };
                    w.put(Some(&old), &new)?;
                    pruned.push(old.request.request_id);
                }
            }
            Ok(pruned)
        })
    }

    /// Up to `limit` requests still to be committed whose expiry is not known (kept before
    /// the outbox stored it).
    pub fn without_expiry(&self, limit: usize) -> Result<Vec<u64>> {
        let txn = self.db.begin_read()?;
        let by_state = txn.open_table(BY_STATE)?;
        let requests = txn.open_table(REQUESTS)?;
        let mut out = Vec::new();
        for kind in [StateKind::Seen, StateKind::Prompted, StateKind::Attributed] {
            for e in entries_in(&by_state, &requests, kind, usize::MAX)? {
                if e.request.expires_at.is_none() && out.len() < limit {
                    out.push(e.request.request_id);
                }
            }
        }
        Ok(out)
    }

    /// Records request `request_id`'s expiry (block time, unix seconds).
    pub fn set_expiry(&self, request_id: u64, expires_at: u64) -> Result<()> {
        self.write(|txn| {
            let mut w = Writer::open(txn)?;
            let old = w.load(request_id)?;
            let mut new = old.clone();
            new.request.expires_at = Some(expires_at);
            w.put(Some(&old), &new)
        })
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

    /// Keeps the engine request made from the payer's prompt for `request`, with the hash of
    /// the token handed to the payer (the first prompt given wins: a request's prompt is fixed
    /// by its on-chain hash, and so does its token), making the request
    /// `Prompted`: ready to attribute. A request not seen yet (its block not scanned, or left
    /// out by the limits of the queue waiting for prompts) is kept from `request`, the record
    /// the payment check read on chain.
    ///
    /// Refused when the queue of prompted requests is at `limits` for the payer or overall,
    /// and for a request given up (`Failed`).
    pub fn record_prompt(
        &self,
        request: &RequestRecord,
        prompt: &CompletionRequest,
        token_hash: &[u8; 32],
        limits: QueueLimits,
    ) -> Result<PromptKept> {
        let id = request.request_id;
        self.write(|txn| {
            let mut prompts = txn.open_table(PROMPTS)?;
            let mut w = Writer::open(txn)?;
            let old = match w.load(id) {
                Ok(entry) => Some(entry),
                Err(OutboxError::UnknownRequest(_)) => None,
                Err(e) => return Err(e),
            };
            match old.as_ref().map(|e| &e.state) {
                None | Some(StoredState::Seen) => {}
                Some(StoredState::Failed { .. }) => {
                    return Err(illegal(old.as_ref().expect("matched"), StateKind::Prompted))
                }
                Some(_) if prompts.get(id)?.is_some() => return Ok(PromptKept::Already),
                Some(_) => {
                    return Err(illegal(old.as_ref().expect("matched"), StateKind::Prompted))
                }
            }
            let waiting = entries_in(&w.by_state, &w.requests, StateKind::Prompted, usize::MAX)?;
            if let Some(full) = QueueCounts::of(&waiting).refuse(&request.payer, limits) {
                return Err(full);
            }
            let bytes = encode(prompt, || format!("request {id}'s prompt"))?;
            prompts.insert(id, bytes.as_slice())?;
            txn.open_table(TOKENS)?.insert(id, token_hash.as_slice())?;
            let new = match &old {
                Some(seen) => StoredEntry {
                    state: StoredState::Prompted,
                    ..seen.clone()
                },
                None => {
                    let cursor = txn.open_table(META)?.get(CURSOR_KEY)?.map(|g| g.value());
                    StoredEntry {
                        request: RequestRecord {
                            seen_height: cursor.unwrap_or(0),
                            ..request.clone()
                        },
                        state: StoredState::Prompted,
                        broadcast_attempts: 0,
                    }
                }
            };
            w.put(old.as_ref(), &new)?;
            Ok(PromptKept::New)
        })
    }

    /// The engine request kept for `request_id`.
    pub fn prompt(&self, request_id: u64) -> Result<Option<CompletionRequest>> {
        let txn = self.db.begin_read()?;
        load_prompt(&txn.open_table(PROMPTS)?, request_id)
    }

    /// The SHA-256 of the token handed out with request `request_id`'s first submission.
    pub fn token_hash(&self, request_id: u64) -> Result<Option<[u8; 32]>> {
        let txn = self.db.begin_read()?;
        let tokens = txn.open_table(TOKENS)?;
        let Some(guard) = tokens.get(request_id)? else {
            return Ok(None);
        };
        let hash: [u8; 32] = guard.value().try_into().map_err(|_| OutboxError::Corrupt {
            what: format!("request {request_id}'s token"),
            source: serde::de::Error::custom("a token hash is 32 bytes"),
        })?;
        Ok(Some(hash))
    }

    /// The engine's response kept for `request_id` once it was attributed.
    pub fn response(&self, request_id: u64) -> Result<Option<CompletionResponse>> {
        let txn = self.db.begin_read()?;
        let responses = txn.open_table(RESPONSES)?;
        let Some(guard) = responses.get(request_id)? else {
            return Ok(None);
        };
        decode(guard.value(), || format!("request {request_id}'s response")).map(Some)
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

    /// Marks a `Seen`, `Prompted` or `Attributed` request as rejected for good.
    ///
    /// A `Broadcast` request must first be reverted: its transaction's fate is still open.
    pub fn mark_failed(&self, request_id: u64, reason: &str) -> Result<()> {
        self.write(|txn| {
            let mut w = Writer::open(txn)?;
            let old = w.load(request_id)?;
            if !matches!(
                old.state,
                StoredState::Seen | StoredState::Prompted | StoredState::Attributed
            ) {
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
                StateKind::Prompted => &mut counts.prompted,
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
        Ok(Some(entry_of(&txn, stored)?))
    }

    /// The layout the file is in ([`SCHEMA_VERSION`] once opened by this release).
    pub fn schema_version(&self) -> Result<u64> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let version = meta.get(SCHEMA_KEY)?.map_or(SCHEMA_VERSION, |g| g.value());
        Ok(version)
    }

    /// Up to `limit` requests by ascending id after `start_after`, only those in `state` when
    /// given.
    pub fn list(
        &self,
        state: Option<StateKind>,
        start_after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>> {
        let txn = self.db.begin_read()?;
        let requests = txn.open_table(REQUESTS)?;
        let from = start_after.map_or(0, |id| id.saturating_add(1));
        let mut out = Vec::new();
        if start_after == Some(u64::MAX) {
            return Ok(out);
        }
        for row in requests.range(from..)? {
            if out.len() >= limit {
                break;
            }
            let (key, value) = row?;
            let id = key.value();
            let stored: StoredEntry = decode(value.value(), || format!("request {id}"))?;
            if state.is_some_and(|kind| stored.state.kind() != kind) {
                continue;
            }
            out.push(entry_of(&txn, stored)?);
        }
        Ok(out)
    }

    /// Gives a failed request another turn: back to waiting for attribution when its prompt is
    /// kept, else to waiting for its prompt. For a failure the operator has since fixed (an
    /// engine that refused, a commit refused for a reason that no longer holds); a request the
    /// chain has closed fails again on its own. Returns the state it is in now.
    pub fn retry(&self, request_id: u64) -> Result<StateKind> {
        self.write(|txn| {
            let mut w = Writer::open(txn)?;
            let old = w.load(request_id)?;
            let prompted = txn.open_table(PROMPTS)?.get(request_id)?.is_some();
            let (state, kind) = if prompted {
                (StoredState::Prompted, StateKind::Prompted)
            } else {
                (StoredState::Seen, StateKind::Seen)
            };
            if !matches!(old.state, StoredState::Failed { .. }) {
                return Err(illegal(&old, kind));
            }
            let new = StoredEntry {
                state,
                ..old.clone()
            };
            w.put(Some(&old), &new)?;
            Ok(kind)
        })
    }

    /// Writes every request as one JSON line (the request, its state, its packet, prompt and
    /// response when kept) after a first line naming the layout; returns how many. Read in one
    /// transaction, so the export is one consistent moment of the outbox.
    pub fn export(&self, out: &mut impl std::io::Write) -> Result<u64> {
        let txn = self.db.begin_read()?;
        let requests = txn.open_table(REQUESTS)?;
        let prompts = txn.open_table(PROMPTS)?;
        let responses = txn.open_table(RESPONSES)?;
        let meta = txn.open_table(META)?;
        let header = serde_json::json!({
            "tributary_relayer_outbox": meta.get(SCHEMA_KEY)?.map_or(SCHEMA_VERSION, |g| g.value()),
            "cursor": meta.get(CURSOR_KEY)?.map(|g| g.value()),
        });
        let line = |out: &mut dyn std::io::Write, value: &serde_json::Value| {
            writeln!(out, "{value}").map_err(OutboxError::Export)
        };
        line(out, &header)?;
        let mut n = 0;
        for row in requests.iter()? {
            let (key, value) = row?;
            let id = key.value();
            let stored: StoredEntry = decode(value.value(), || format!("request {id}"))?;
            let entry = entry_of(&txn, stored)?;
            let prompt = load_prompt(&prompts, id)?;
            let response: Option<CompletionResponse> = match responses.get(id)? {
                Some(g) => Some(decode(g.value(), || format!("request {id}'s response"))?),
                None => None,
            };
            let value = serde_json::json!({
                "entry": entry,
                "prompt": prompt,
                "response": response,
            });
            line(out, &value)?;
            n += 1;
        }
        Ok(n)
    }
}

/// A stored entry as [`OutboxEntry`], its packet read when it has one.
fn entry_of(txn: &redb::ReadTransaction, stored: StoredEntry) -> Result<OutboxEntry> {
    let request_id = stored.request.request_id;
    let state = match stored.state {
        StoredState::Seen => RequestState::Seen,
        StoredState::Prompted => RequestState::Prompted,
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
        StoredState::Committed { tx_hash, height } => RequestState::Committed { tx_hash, height },
        StoredState::Failed { reason, attempts } => RequestState::Failed { reason, attempts },
    };
    Ok(OutboxEntry {
        request: stored.request,
        state,
        broadcast_attempts: stored.broadcast_attempts,
    })
}

mod vouchers;
pub use vouchers::{series_key, BatchTx, ItemState, SeriesRecord, SettledBatch, VoucherItem};

#[cfg(test)]
mod tests;
