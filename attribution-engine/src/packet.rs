//! From contribution scores to the on-chain [`AttributionPacket`].
//!
//! Scores are floats; the chain needs integers that every attestor reproduces. Each
//! contribution's score is normalized by the largest absolute score and rounded to
//! [`SCORE_SCALE`] (fixed point); the merkle root covers all of them, and the top-K positive
//! ones are turned into basis points by the largest-remainder rule, in integer arithmetic.

use cosmwasm_std::HexBinary;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tributary_types::merkle::{root_from_leaves, score_leaf};
use tributary_types::{AttributionEntry, AttributionPacket, DatanetRoot};

/// Fixed-point scale of normalized scores: the largest score maps to ±1 000 000.
pub const SCORE_SCALE: f64 = 1_000_000.0;
/// Basis points shared among the top entries.
const TOTAL_BPS: u128 = 10_000;

/// Which inference a packet is for, and how many entries the contract accepts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PacketRequest {
    pub request_id: u64,
    pub model_id: u64,
    pub model_version: u32,
    pub top_k: usize,
}

/// Fixed-point scores, one per contribution, in the order given.
pub fn fixed_point(scores: &[(u64, f64)]) -> Vec<(u64, i64)> {
    let max = scores.iter().map(|(_, s)| s.abs()).fold(0.0, f64::max);
    scores
        .iter()
        .map(|&(id, s)| {
            let v = if max > 0.0 && s.is_finite() {
                (s / max * SCORE_SCALE).round() as i64
            } else {
                0
            };
            (id, v)
        })
        .collect()
}

/// Merkle root over every contribution's fixed-point score, leaves in contribution-id order.
pub fn scores_root(fixed: &[(u64, i64)]) -> [u8; 32] {
    let mut sorted = fixed.to_vec();
    sorted.sort_by_key(|(id, _)| *id);
    let leaves: Vec<_> = sorted.iter().map(|&(id, v)| score_leaf(id, v)).collect();
    root_from_leaves(&leaves)
}

/// The top `k` positive scores as weights summing to 10 000 bps (largest remainder; ties go
/// to the lower contribution id). Entries that would get 0 bps are left out.
pub fn top_k_weights(fixed: &[(u64, i64)], k: usize) -> Vec<AttributionEntry> {
    let mut positive: Vec<(u64, i64)> = fixed.iter().copied().filter(|&(_, v)| v > 0).collect();
    positive.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    positive.truncate(k);
    let total: u128 = positive.iter().map(|&(_, v)| v as u128).sum();
    if total == 0 {
        return Vec::new();
    }
    let mut shares: Vec<(u64, u128, u128)> = positive
        .iter()
        .map(|&(id, v)| {
            let exact = v as u128 * TOTAL_BPS;
            (id, exact / total, exact % total)
        })
        .collect();
    let assigned: u128 = shares.iter().map(|s| s.1).sum();
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|&a, &b| {
        shares[b]
            .2
            .cmp(&shares[a].2)
            .then(shares[a].0.cmp(&shares[b].0))
    });
    for &i in order.iter().take((TOTAL_BPS - assigned) as usize) {
        shares[i].1 += 1;
    }
    shares
        .into_iter()
        .filter(|s| s.1 > 0)
        .map(|(contribution_id, bps, _)| AttributionEntry {
            contribution_id,
            weight_bps: bps as u16,
        })
        .collect()
}

/// Hash of the method and everything it depends on, so two attestors agree on the method
/// exactly when they agree on this hash.
pub fn params_hash(params: &serde_json::Value) -> [u8; 32] {
    // serde_json's map is ordered by key, so the encoding is canonical.
    Sha256::digest(serde_json::to_vec(params).unwrap_or_default()).into()
}

/// Everything a packet is built from.
pub struct PacketInputs<'a> {
    pub request: &'a PacketRequest,
    pub weights_hash: &'a str,
    pub datanet_roots: &'a [DatanetRoot],
    pub method: &'a str,
    pub params: &'a serde_json::Value,
    pub completion: &'a [u8],
    /// Score of every contribution of the model's lineage.
    pub scores: &'a [(u64, f64)],
}

/// Builds the packet. Deterministic: equal inputs give byte-identical packets.
pub fn build_packet(inputs: &PacketInputs) -> Result<AttributionPacket, String> {
    let weights_hash = HexBinary::from_hex(inputs.weights_hash)
        .map_err(|e| format!("weights hash is not hex: {e}"))?;
    let fixed = fixed_point(inputs.scores);
    let mut datanet_roots = inputs.datanet_roots.to_vec();
    datanet_roots.sort();
    Ok(AttributionPacket {
        request_id: inputs.request.request_id,
        model_id: inputs.request.model_id,
        model_version: inputs.request.model_version,
        weights_hash,
        datanet_roots,
        method: inputs.method.to_string(),
        params_hash: HexBinary::from(params_hash(inputs.params).to_vec()),
        output_hash: HexBinary::from(Sha256::digest(inputs.completion).to_vec()),
        scores_root: HexBinary::from(scores_root(&fixed).to_vec()),
        entries: top_k_weights(&fixed, inputs.request.top_k),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_remainder_sums_to_ten_thousand() {
        // Thirds: 3333.33 each; the lowest id gets the extra basis point.
        let entries = top_k_weights(&[(3, 5), (1, 5), (2, 5)], 8);
        let weights: Vec<(u64, u16)> = entries
            .iter()
            .map(|e| (e.contribution_id, e.weight_bps))
            .collect();
        assert_eq!(weights, vec![(1, 3334), (2, 3333), (3, 3333)]);
        // Negative and zero scores get nothing; only the top k count.
        let entries = top_k_weights(&[(1, 700), (2, -900), (3, 0), (4, 300), (5, 100)], 2);
        let weights: Vec<(u64, u16)> = entries
            .iter()
            .map(|e| (e.contribution_id, e.weight_bps))
            .collect();
        assert_eq!(weights, vec![(1, 7000), (4, 3000)]);
        assert!(top_k_weights(&[(1, -1), (2, 0)], 4).is_empty());
    }

    #[test]
    fn tiny_shares_are_dropped_not_zero_weighted() {
        let entries = top_k_weights(&[(1, 1_000_000), (2, 1)], 8);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].weight_bps, 10_000);
    }

    #[test]
    fn fixed_point_normalizes_by_the_largest_magnitude() {
        let fixed = fixed_point(&[(1, 2.0), (2, -4.0), (3, 1.0), (4, f64::NAN)]);
        assert_eq!(
            fixed,
            vec![(1, 500_000), (2, -1_000_000), (3, 250_000), (4, 0)]
        );
        // The root does not depend on the order scores are listed in.
        let mut shuffled = fixed.clone();
        shuffled.reverse();
        assert_eq!(scores_root(&fixed), scores_root(&shuffled));
        assert_ne!(scores_root(&fixed), scores_root(&fixed[..3]));
    }

    #[test]
    fn packet_passes_the_contracts_shape_check() {
        let request = PacketRequest {
            request_id: 9,
            model_id: 1,
            model_version: 1,
            top_k: 3,
        };
        let roots = [DatanetRoot {
            datanet_id: 1,
            version: 1,
            root: HexBinary::from(vec![7u8; 32]),
        }];
        let params = serde_json::json!({"k": 32});
        let scores: Vec<(u64, f64)> = (1..=10).map(|i| (i, i as f64 - 4.0)).collect();
        let packet = build_packet(&PacketInputs {
            request: &request,
            weights_hash: &"ab".repeat(32),
            datanet_roots: &roots,
            method: "trak-logra-v1",
            params: &params,
            completion: b"hello",
            scores: &scores,
        })
        .unwrap();
        packet.check_shape(3).unwrap();
        let ids: Vec<u64> = packet.entries.iter().map(|e| e.contribution_id).collect();
        assert_eq!(ids, vec![10, 9, 8]);
        assert_eq!(
            packet
                .entries
                .iter()
                .map(|e| e.weight_bps as u32)
                .sum::<u32>(),
            10_000
        );
    }
}
