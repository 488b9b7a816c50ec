//! Who may write to the content store, and how much.
//!
//! Reads are public: a blob is named by its hash and the chain publishes those names. Writes
//! cost disk, so the server asks a [`WritePolicy`] before it reads a byte of a body:
//!
//! - [`crate::ChainGate`]: only bytes the chain knows, a live contribution on the datanet
//!   contract with that content hash, and no longer than the chain recorded;
//! - [`crate::AccountPolicy`]: only holders of an account's bearer token, within its quota;
//! - [`OpenPolicy`]: anyone, for local development only.

use std::fmt;

use async_trait::async_trait;
use thiserror::Error;

use crate::error::Result;
use crate::hash::ContentHash;

/// What the server knows of a write when it asks whether to take it.
#[derive(Clone, Copy, Debug)]
pub struct WriteRequest<'a> {
    /// The blob the body claims to be.
    pub hash: &'a ContentHash,
    /// The body's length from `Content-Length`, when the client sent one.
    pub declared_size: Option<u64>,
    /// The token of an `Authorization: Bearer` header, when there is one.
    pub bearer: Option<&'a str>,
    /// Whether the store already holds a blob of this name and the declared length, so the
    /// write, if that blob is intact, adds nothing to the disk.
    pub already_stored: bool,
}

/// A policy's answer.
#[derive(Debug)]
pub enum Decision {
    /// Take the write, within the allowance.
    Allow(Allowance),
    /// Refuse it, for this reason.
    Deny(Denial),
}

/// Why a policy refuses a write.
#[derive(Error, Clone, Debug, PartialEq, Eq)]
pub enum Denial {
    #[error("writes to this store need an account's bearer token")]
    MissingCredential,
    #[error("the bearer token is not one of this store's accounts")]
    UnknownCredential,
    #[error("no live contribution on chain has content hash {hash}")]
    NotOnChain { hash: ContentHash },
    #[error(
        "account {account:?} has {remaining} of its {quota} bytes left, and the write needs {needed}"
    )]
    QuotaExceeded {
        account: String,
        quota: u64,
        remaining: u64,
        needed: u64,
    },
}

/// What became of an allowed write, for policies that keep accounts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The blob was stored, `size` bytes long.
    Created { size: u64 },
    /// The blob was already there; nothing new is on disk.
    AlreadyPresent,
    /// The write failed or was abandoned; nothing new is on disk.
    Failed,
}

/// Told what became of a write once it ends; a policy that reserved room releases or charges it.
pub trait Settle: Send {
    /// Records the write's outcome.
    fn settle(self: Box<Self>, outcome: WriteOutcome);
}

/// The terms of an allowed write: how long it may be, and whom to tell how it ended.
///
/// Dropped without [`Allowance::settle`], as when the client hangs up, it settles as
/// [`WriteOutcome::Failed`].
pub struct Allowance {
    max_bytes: Option<u64>,
    settlement: Option<Box<dyn Settle>>,
}

impl Allowance {
    /// A write up to the server's own cap.
    pub fn within_server_cap() -> Self {
        Self {
            max_bytes: None,
            settlement: None,
        }
    }

    /// A write of at most `max_bytes`.
    pub fn up_to(max_bytes: u64) -> Self {
        Self {
            max_bytes: Some(max_bytes),
            settlement: None,
        }
    }

    /// The same allowance, telling `settlement` how the write ended.
    pub fn settled_by(mut self, settlement: Box<dyn Settle>) -> Self {
        self.settlement = Some(settlement);
        self
    }

    /// The most bytes the write may carry, if the policy limits it below the server's cap.
    pub fn max_bytes(&self) -> Option<u64> {
        self.max_bytes
    }

    /// Records how the write ended.
    pub fn settle(mut self, outcome: WriteOutcome) {
        if let Some(settlement) = self.settlement.take() {
            settlement.settle(outcome);
        }
    }
}

impl Drop for Allowance {
    fn drop(&mut self) {
        if let Some(settlement) = self.settlement.take() {
            settlement.settle(WriteOutcome::Failed);
        }
    }
}

impl fmt::Debug for Allowance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Allowance")
            .field("max_bytes", &self.max_bytes)
            .field("settled", &self.settlement.is_some())
            .finish()
    }
}

/// Decides whether the server takes a write.
#[async_trait]
pub trait WritePolicy: Send + Sync {
    /// Whether to take the write described by `request`. An `Err` is the policy failing to
    /// decide (the chain unreachable), which the server answers 503: never a silent allow.
    async fn allows(&self, request: &WriteRequest<'_>) -> Result<Decision>;
}

/// Every write is taken: for a store on a developer's own machine, never one others reach.
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenPolicy;

#[async_trait]
impl WritePolicy for OpenPolicy {
    async fn allows(&self, _request: &WriteRequest<'_>) -> Result<Decision> {
        Ok(Decision::Allow(Allowance::within_server_cap()))
    }
}
