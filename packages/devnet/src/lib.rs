//! Local `tributaryd` networks: one validator by default, several on request, each node a real
//! `tributaryd` process on loopback ports with its own home folder.
//!
//! Every chain setting comes from `chain/devnet.toml` ([`DevnetParams`]); this crate only turns
//! it into homes, a genesis and node configuration, then starts, watches and stops the nodes.

mod error;
mod network;
mod params;
mod tributaryd;

pub use error::Error;
pub use network::{DevKey, Devnet, InitOptions, Node, NodeStatus};
pub use params::{DevnetParams, DEFAULT_PARAMS_TOML};
pub use tributaryd::Tributaryd;
