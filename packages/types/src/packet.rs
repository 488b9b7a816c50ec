//! The attribution packet: what an attestor commits for one paid inference, by transaction or
//! over IBC.

use crate::hash::{sha256, Hash32};
use crate::split::BPS_DENOMINATOR;
use cosmwasm_schema::cw_serde;
use cosmwasm_std::{to_json_vec, HexBinary, StdResult};
use thiserror::Error;

/// The IBC application version of attribution channels (unordered).
pub const IBC_APP_VERSION: &str = "tributary-attribution-1";

/// Most datanet versions a packet may name (the registry's lineage limit).
pub const MAX_DATANET_ROOTS: usize = 16;

/// A frozen datanet version a model was trained on.
#[cw_serde]
#[derive(Eq, PartialOrd, Ord, Hash)]
pub struct DatanetRoot {
    pub datanet_id: u64,
    pub version: u32,
    /// Merkle root of the version's accepted contributions.
    pub root: HexBinary,
}

/// One attributed contribution and its share of the contributors' pool.
#[cw_serde]
#[derive(Copy, Eq)]
pub struct AttributionEntry {
    pub contribution_id: u64,
    /// Share of the contributors' pool in basis points.
    pub weight_bps: u16,
}

/// The result of Proof of Attribution for one inference request.
///
/// Any attestor running the same engine on the same inputs computes the same packet, so two
/// attestors agree exactly when their packets hash the same ([`AttributionPacket::packet_hash`]).
#[cw_serde]
#[derive(Eq)]
pub struct AttributionPacket {
    pub request_id: u64,
    pub model_id: u64,
    pub model_version: u32,
    /// Hash of the model weights that served the inference.
    pub weights_hash: HexBinary,
    /// The datanet versions the model was trained on, as registered in its lineage.
    pub datanet_roots: Vec<DatanetRoot>,
    /// Attribution method identifier, e.g. `trak-logra-v2`.
    pub method: String,
    /// Hash of the method's parameters (projection sizes, seeds, damping, ...).
    pub params_hash: HexBinary,
    /// Hash of the completion that was served.
    pub output_hash: HexBinary,
    /// Merkle root over the full score vector (leaves from [`crate::merkle::score_leaf`]).
    pub scores_root: HexBinary,
    /// The top entries, at most the contract's K; when there are any, their weights sum to
    /// exactly 10 000. No entries sends the contributors' share to the lineage's pools.
    pub entries: Vec<AttributionEntry>,
}

/// Why a packet is malformed on its own, before any chain state is consulted.
#[derive(Error, Debug, Clone, PartialEq, Eq)]
pub enum PacketError {
    #[error("packet has {count} entries, at most {max} allowed")]
    TooManyEntries { count: usize, max: u32 },
    #[error("packet weights sum to {sum} bps, entries must sum to exactly 10000")]
    WeightsSum { sum: u32 },
    #[error("contribution {contribution_id} has a zero weight")]
    ZeroWeight { contribution_id: u64 },
    #[error("contribution {contribution_id} appears more than once")]
    DuplicateEntry { contribution_id: u64 },
    #[error("field {field} must be a 32-byte hash, got {len} bytes")]
    BadHash { field: &'static str, len: usize },
    #[error("packet names no datanet version")]
    NoDatanetRoots,
    #[error("packet names {count} datanet versions, at most {max} allowed")]
    TooManyDatanetRoots { count: usize, max: usize },
    #[error("packet names datanet {datanet_id} version {version} more than once")]
    DuplicateDatanetRoot { datanet_id: u64, version: u32 },
}

impl AttributionPacket {
    /// The canonical hash: SHA-256 of the packet's JSON encoding (fields in declaration order).
    pub fn packet_hash(&self) -> StdResult<Hash32> {
        Ok(sha256(&to_json_vec(self)?))
    }

    /// Checks everything that does not need chain state: entry count, weights, hash sizes.
    /// Weights are `u16`, so their sum cannot overflow a `u32` for any number of entries.
    pub fn check_shape(&self, max_entries: u32) -> Result<(), PacketError> {
        if self.entries.len() > max_entries as usize {
            return Err(PacketError::TooManyEntries {
                count: self.entries.len(),
                max: max_entries,
            });
        }
        // Bounded before anything iterates them: each root costs a lookup in the lineage.
        if self.datanet_roots.len() > MAX_DATANET_ROOTS {
            return Err(PacketError::TooManyDatanetRoots {
                count: self.datanet_roots.len(),
                max: MAX_DATANET_ROOTS,
            });
        }
        for (field, value) in [
            ("weights_hash", &self.weights_hash),
            ("params_hash", &self.params_hash),
            ("output_hash", &self.output_hash),
            ("scores_root", &self.scores_root),
        ]
        .into_iter()
        .chain(
            self.datanet_roots
                .iter()
                .map(|r| ("datanet_roots.root", &r.root)),
        ) {
            if value.len() != 32 {
                return Err(PacketError::BadHash {
                    field,
                    len: value.len(),
                });
            }
        }
        if self.datanet_roots.is_empty() {
            return Err(PacketError::NoDatanetRoots);
        }
        let mut versions = std::collections::BTreeSet::new();
        for root in &self.datanet_roots {
            if !versions.insert((root.datanet_id, root.version)) {
                return Err(PacketError::DuplicateDatanetRoot {
                    datanet_id: root.datanet_id,
                    version: root.version,
                });
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut sum = 0u32;
        for entry in &self.entries {
            if entry.weight_bps == 0 {
                return Err(PacketError::ZeroWeight {
                    contribution_id: entry.contribution_id,
                });
            }
            if !seen.insert(entry.contribution_id) {
                return Err(PacketError::DuplicateEntry {
                    contribution_id: entry.contribution_id,
                });
            }
            sum += entry.weight_bps as u32;
        }
        // Anything short of the whole pool would leave a part of it for someone to take.
        if !self.entries.is_empty() && sum != BPS_DENOMINATOR {
            return Err(PacketError::WeightsSum { sum });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet() -> AttributionPacket {
        let h = HexBinary::from(sha256(b"x").as_slice());
        AttributionPacket {
            request_id: 1,
            model_id: 1,
            model_version: 1,
            weights_hash: h.clone(),
            datanet_roots: vec![DatanetRoot {
                datanet_id: 1,
                version: 1,
                root: h.clone(),
            }],
            method: "trak-logra-v1".into(),
            params_hash: h.clone(),
            output_hash: h.clone(),
            scores_root: h,
            entries: vec![
                AttributionEntry {
                    contribution_id: 1,
                    weight_bps: 6000,
                },
                AttributionEntry {
                    contribution_id: 2,
                    weight_bps: 4000,
                },
            ],
        }
    }

    #[test]
    fn a_well_formed_packet_passes_and_hashes_stably() {
        let p = packet();
        assert_eq!(p.check_shape(32), Ok(()));
        assert_eq!(p.packet_hash().unwrap(), p.clone().packet_hash().unwrap());
        let mut q = p.clone();
        q.entries[0].weight_bps = 5999;
        assert_ne!(p.packet_hash().unwrap(), q.packet_hash().unwrap());
    }

    #[test]
    fn shape_errors_name_the_problem() {
        let p = packet();
        assert_eq!(
            p.check_shape(1),
            Err(PacketError::TooManyEntries { count: 2, max: 1 })
        );
        let mut q = p.clone();
        q.entries[1].weight_bps = 4001;
        assert_eq!(
            q.check_shape(32),
            Err(PacketError::WeightsSum { sum: 10001 })
        );
        let mut q = p.clone();
        q.entries[1].weight_bps = 3999;
        assert_eq!(
            q.check_shape(32),
            Err(PacketError::WeightsSum { sum: 9999 })
        );
        let mut q = p.clone();
        q.entries.clear();
        assert_eq!(q.check_shape(32), Ok(()));
        let mut q = p.clone();
        q.entries[1].contribution_id = 1;
        assert_eq!(
            q.check_shape(32),
            Err(PacketError::DuplicateEntry { contribution_id: 1 })
        );
        let mut q = p.clone();
        q.entries[0].weight_bps = 0;
        assert_eq!(
            q.check_shape(32),
            Err(PacketError::ZeroWeight { contribution_id: 1 })
        );
        let mut q = p.clone();
        q.output_hash = HexBinary::from(vec![0u8; 3]);
        assert_eq!(
            q.check_shape(32),
            Err(PacketError::BadHash {
                field: "output_hash",
                len: 3
            })
        );
        let mut q = p.clone();
        q.datanet_roots.clear();
        assert_eq!(q.check_shape(32), Err(PacketError::NoDatanetRoots));
        let mut q = p.clone();
        let mut other = q.datanet_roots[0].clone();
        other.root = HexBinary::from(sha256(b"y").as_slice());
        q.datanet_roots.push(other);
        assert_eq!(
            q.check_shape(32),
            Err(PacketError::DuplicateDatanetRoot {
                datanet_id: 1,
                version: 1
            })
        );
        let mut q = p;
        q.datanet_roots = (0..=MAX_DATANET_ROOTS as u32)
            .map(|version| DatanetRoot {
                version,
                ..q.datanet_roots[0].clone()
            })
            .collect();
        assert_eq!(
            q.check_shape(32),
            Err(PacketError::TooManyDatanetRoots {
                count: MAX_DATANET_ROOTS + 1,
                max: MAX_DATANET_ROOTS
            })
        );
    }
}
