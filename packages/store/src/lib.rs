//! Tributary's content store.
//!
//! Contributions' bytes live off chain, addressed by their SHA-256 in lowercase hex; the
//! chain holds only the hash. [`ContentStore`] is the one interface to such a store, with a
//! folder on disk ([`LocalStore`]) and the HTTP API ([`HttpStore`]) behind it, and
//! [`server`] puts a folder store on that API for contributors, the attribution engine and
//! the web app. Reads are public; writes are taken only as a [`WritePolicy`] allows: bytes the
//! chain knows ([`ChainGate`]), bytes from an account within its quota ([`AccountPolicy`]), or,
//! on a developer's own machine, anything ([`OpenPolicy`]).

pub mod accounts;
pub mod api;
pub mod blocking;
pub mod chain;
pub mod client;
pub mod error;
pub mod hash;
pub mod local;
pub mod policy;
pub mod server;
pub mod store;

pub use accounts::AccountPolicy;
pub use blocking::BlockingStore;
pub use chain::ChainGate;
pub use client::HttpStore;
pub use error::{Error, Result};
pub use hash::ContentHash;
pub use local::LocalStore;
pub use policy::{
    Allowance, Decision, Denial, OpenPolicy, WriteOutcome, WritePolicy, WriteRequest,
};
pub use server::{openapi, router, serve, serve_with_shutdown, AllowedOrigins, ServerConfig};
pub use store::{ContentStore, Stored};

/// The largest blob a store accepts unless configured otherwise: 64 MiB.
pub const DEFAULT_MAX_BLOB_BYTES: u64 = 64 * 1024 * 1024;
