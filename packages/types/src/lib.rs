//! Tributary's shared wire types.
//!
//! Every contract's messages live here so the contracts, the client, the relayer and the
//! attribution engine agree on one definition. The crate has no heavy dependencies and
//! builds for `wasm32-unknown-unknown` as well as native targets.

pub mod asset;
pub mod batch;
pub mod datanet;
pub mod hash;
pub mod merkle;
pub mod packet;
pub mod pagination;
pub mod payout;
pub mod registry;
pub mod split;
pub mod upgrade;
pub mod validate;
pub mod verification;
pub mod voucher;

pub use asset::{AssetInfo, Price};
pub use hash::{parse_content_hash, sha256, Hash32, HashError};
pub use packet::{AttributionEntry, AttributionPacket, DatanetRoot, IBC_APP_VERSION};
pub use split::{FeeSplit, Settlement, SplitError, BPS_DENOMINATOR};
