//! Basis-point arithmetic and the fee split of a finalized inference.

use crate::packet::AttributionEntry;
use cosmwasm_schema::cw_serde;
use cosmwasm_std::Uint128;
use thiserror::Error;

/// 100% in basis points.
pub const BPS_DENOMINATOR: u32 = 10_000;

/// How an inference fee divides between the four parties, in basis points summing to 10 000.
#[cw_serde]
#[derive(Copy, Eq)]
pub struct FeeSplit {
    /// Shared among the attributed contributions by weight; also receives every remainder.
    pub contributors_bps: u16,
    /// The model's developer (owner).
    pub developer_bps: u16,
    /// The serving operators: the attestors whose packet was finalized.
    pub operator_bps: u16,
    /// The protocol treasury.
    pub protocol_bps: u16,
}

/// Why a split or a settlement is impossible.
#[derive(Error, Debug, Clone, PartialEq, Eq)]
pub enum SplitError {
    #[error("fee split sums to {sum} bps, it must sum to 10000")]
    SplitSum { sum: u32 },
    #[error("attribution weights sum to {sum} bps, entries must sum to exactly 10000")]
    WeightsSum { sum: u32 },
    #[error("a settlement needs at least one operator")]
    NoOperators,
    #[error("an unattributed share needs at least one contribution to go to")]
    NoContributions,
    #[error("arithmetic overflow while settling {amount}")]
    Overflow { amount: Uint128 },
}

impl FeeSplit {
    /// Sum of the four shares.
    pub fn total_bps(&self) -> u32 {
        self.contributors_bps as u32
            + self.developer_bps as u32
            + self.operator_bps as u32
            + self.protocol_bps as u32
    }

    /// Checks that the shares sum to exactly 10 000.
    pub fn validate(&self) -> Result<(), SplitError> {
        match self.total_bps() {
            BPS_DENOMINATOR => Ok(()),
            sum => Err(SplitError::SplitSum { sum }),
        }
    }
}

/// `amount * bps / 10 000`, rounded down, without overflow.
pub fn apply_bps(amount: Uint128, bps: u32) -> Uint128 {
    amount.multiply_ratio(bps, BPS_DENOMINATOR)
}

/// Who gets what out of one escrowed fee. The parts always add up to the fee exactly.
#[cw_serde]
#[derive(Eq)]
pub struct Settlement {
    pub protocol: Uint128,
    /// One share per serving operator, in the order given; the first takes the remainder.
    pub operators: Vec<Uint128>,
    pub developer: Uint128,
    /// `(contribution id, amount)` per attribution entry, in packet order.
    pub contributions: Vec<(u64, Uint128)>,
    /// The contributors' share when the packet names no contribution: it goes to the pools of
    /// the request's lineage (see [`pool_shares`]), never to another party.
    pub unattributed: Uint128,
}

impl Settlement {
    /// Sum of every part.
    pub fn total(&self) -> Option<Uint128> {
        let mut total = self
            .protocol
            .checked_add(self.developer)
            .and_then(|t| t.checked_add(self.unattributed))
            .ok()?;
        for part in self
            .operators
            .iter()
            .chain(self.contributions.iter().map(|(_, a)| a))
        {
            total = total.checked_add(*part).ok()?;
        }
        Some(total)
    }

    /// What the contributors receive in all: the attributed amounts and the unattributed one.
    pub fn contributors_total(&self) -> Option<Uint128> {
        self.contributions
            .iter()
            .try_fold(self.unattributed, |acc, (_, a)| acc.checked_add(*a).ok())
    }
}

/// Splits `amount` by `split`, the contributors' share by the entries' weights, the operators'
/// share equally among `operators` payees.
///
/// Rounding: the protocol, operators' and developer shares round down; the contributors' pool is
/// what is left, so every rounding remainder of the fee stays with contributors and no other
/// party ever receives a unit of their share. The first operator takes the operators' own
/// remainder. Inside the contributors' pool each entry rounds down and the pool's remainder goes
/// to the entry with the largest weight (the lowest contribution id among equals), so the entries
/// receive the whole pool. Entries must weigh exactly 10 000 bps in all; with no entries the
/// whole pool is `unattributed`.
pub fn settle(
    amount: Uint128,
    split: &FeeSplit,
    entries: &[AttributionEntry],
    operators: usize,
) -> Result<Settlement, SplitError> {
    split.validate()?;
    let weights: u32 = entries.iter().map(|e| e.weight_bps as u32).sum();
    if !entries.is_empty() && weights != BPS_DENOMINATOR {
        return Err(SplitError::WeightsSum { sum: weights });
    }
    if operators == 0 {
        return Err(SplitError::NoOperators);
    }
    let overflow = || SplitError::Overflow { amount };

    let protocol = apply_bps(amount, split.protocol_bps as u32);
    let developer = apply_bps(amount, split.developer_bps as u32);
    let operator_pool = apply_bps(amount, split.operator_bps as u32);
    let each = operator_pool.multiply_ratio(1u128, operators as u128);
    let mut operator_shares = vec![each; operators];
    let rest = operator_pool
        .checked_sub(
            each.checked_mul(Uint128::from(operators as u128))
                .map_err(|_| overflow())?,
        )
        .map_err(|_| overflow())?;
    operator_shares[0] = operator_shares[0]
        .checked_add(rest)
        .map_err(|_| overflow())?;

    let pool = amount
        .checked_sub(protocol)
        .and_then(|r| r.checked_sub(operator_pool))
        .and_then(|r| r.checked_sub(developer))
        .map_err(|_| overflow())?;
    let mut contributions: Vec<(u64, Uint128)> = entries
        .iter()
        .map(|e| (e.contribution_id, apply_bps(pool, e.weight_bps as u32)))
        .collect();
    let attributed = contributions
        .iter()
        .try_fold(Uint128::zero(), |acc, (_, a)| acc.checked_add(*a))
        .map_err(|_| overflow())?;
    let dust = pool.checked_sub(attributed).map_err(|_| overflow())?;
    let top = entries
        .iter()
        .enumerate()
        .max_by(|(_, a), (_, b)| {
            a.weight_bps
                .cmp(&b.weight_bps)
                .then(b.contribution_id.cmp(&a.contribution_id))
        })
        .map(|(i, _)| i);
    let unattributed = match top {
        Some(i) => {
            contributions[i].1 = contributions[i]
                .1
                .checked_add(dust)
                .map_err(|_| overflow())?;
            Uint128::zero()
        }
        None => pool,
    };

    Ok(Settlement {
        protocol,
        operators: operator_shares,
        developer,
        contributions,
        unattributed,
    })
}

/// Splits an unattributed `amount` among datanet versions in proportion to how many
/// contributions each froze, so every contribution of the lineage weighs the same. Each part
/// rounds down and the remainder goes to the version with the most contributions (the first
/// listed among equals): the parts sum to `amount`.
pub fn pool_shares(amount: Uint128, contributions: &[u64]) -> Result<Vec<Uint128>, SplitError> {
    let overflow = || SplitError::Overflow { amount };
    let total = contributions
        .iter()
        .try_fold(0u128, |acc, &c| acc.checked_add(c as u128))
        .ok_or_else(overflow)?;
    if total == 0 {
        return Err(SplitError::NoContributions);
    }
    let mut shares: Vec<Uint128> = contributions
        .iter()
        .map(|&c| amount.multiply_ratio(c as u128, total))
        .collect();
    let given = shares
        .iter()
        .try_fold(Uint128::zero(), |acc, s| acc.checked_add(*s))
        .map_err(|_| overflow())?;
    let dust = amount.checked_sub(given).map_err(|_| overflow())?;
    let largest = contributions
        .iter()
        .enumerate()
        .max_by(|(i, a), (j, b)| a.cmp(b).then(j.cmp(i)))
        .map(|(i, _)| i)
        .ok_or_else(overflow)?;
    shares[largest] = shares[largest].checked_add(dust).map_err(|_| overflow())?;
    Ok(shares)
}

/// What the contribution at `leaf` of a pool over `contributions` leaves is owed once `total`
/// has been paid into it: an equal part each, the first `total % contributions` leaves one unit
/// more. The amounts never decrease as `total` grows and sum to `total` exactly.
pub fn pool_entitlement(total: Uint128, contributions: u64, leaf: u64) -> Uint128 {
    if contributions == 0 || leaf >= contributions {
        return Uint128::zero();
    }
    let count = Uint128::from(contributions);
    let base = total.checked_div(count).unwrap_or_default();
    let remainder = total.checked_rem(count).unwrap_or_default();
    if Uint128::from(leaf) < remainder {
        // A remainder means at least two leaves, so `base` is at most half of `total`.
        base.saturating_add(Uint128::one())
    } else {
        base
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn split(c: u16, d: u16, o: u16, p: u16) -> FeeSplit {
        FeeSplit {
            contributors_bps: c,
            developer_bps: d,
            operator_bps: o,
            protocol_bps: p,
        }
    }

    fn entry(id: u64, w: u16) -> AttributionEntry {
        AttributionEntry {
            contribution_id: id,
            weight_bps: w,
        }
    }

    #[test]
    fn worked_example_rounds_down_and_gives_every_remainder_to_contributors() {
        // 1001 units, 70/10/15/5: protocol 50 (50.05 down), operators 150 (150.15 down) across
        // 2, developer 100 (100.1 down); the contributors' pool is the rest, 701. Weights
        // 3334/3333/3333: 233 each (233.71, 233.64, 233.64 down), the 2 left to the top weight.
        let s = settle(
            Uint128::new(1001),
            &split(7000, 1000, 1500, 500),
            &[entry(1, 3333), entry(2, 3334), entry(3, 3333)],
            2,
        )
        .unwrap();
        assert_eq!(s.protocol, Uint128::new(50));
        assert_eq!(s.operators, vec![Uint128::new(75), Uint128::new(75)]);
        assert_eq!(s.developer, Uint128::new(100));
        assert_eq!(
            s.contributions,
            vec![
                (1, Uint128::new(233)),
                (2, Uint128::new(235)),
                (3, Uint128::new(233))
            ]
        );
        assert_eq!(s.unattributed, Uint128::zero());
        assert_eq!(s.total(), Some(Uint128::new(1001)));
    }

    #[test]
    fn equal_top_weights_give_the_dust_to_the_lowest_contribution_id() {
        let s = settle(
            Uint128::new(3),
            &split(10000, 0, 0, 0),
            &[entry(9, 5000), entry(4, 5000)],
            1,
        )
        .unwrap();
        assert_eq!(
            s.contributions,
            vec![(9, Uint128::new(1)), (4, Uint128::new(2))]
        );
    }

    #[test]
    fn no_entries_leave_the_whole_contributors_pool_unattributed() {
        let s = settle(Uint128::new(1001), &split(7000, 1500, 1000, 500), &[], 1).unwrap();
        assert_eq!(s.developer, Uint128::new(150));
        assert!(s.contributions.is_empty());
        assert_eq!(s.unattributed, Uint128::new(1001 - 50 - 100 - 150));
        assert_eq!(s.total(), Some(Uint128::new(1001)));
    }

    #[test]
    fn odd_operator_pool_gives_the_remainder_to_the_first_operator() {
        let s = settle(Uint128::new(100), &split(0, 0, 10000, 0), &[], 3).unwrap();
        assert_eq!(
            s.operators,
            vec![Uint128::new(34), Uint128::new(33), Uint128::new(33)]
        );
    }

    #[test]
    fn bad_splits_weights_and_operator_counts_are_refused() {
        assert_eq!(
            settle(Uint128::new(1), &split(1, 1, 1, 1), &[], 1),
            Err(SplitError::SplitSum { sum: 4 })
        );
        for weights in [[6000, 4001], [6000, 3999]] {
            assert_eq!(
                settle(
                    Uint128::new(1),
                    &split(10000, 0, 0, 0),
                    &[entry(1, weights[0]), entry(2, weights[1])],
                    1
                ),
                Err(SplitError::WeightsSum {
                    sum: (weights[0] + weights[1]) as u32
                })
            );
        }
        assert_eq!(
            settle(Uint128::new(1), &split(10000, 0, 0, 0), &[], 0),
            Err(SplitError::NoOperators)
        );
    }

    #[test]
    fn pools_split_by_contributions_with_the_remainder_to_the_largest() {
        let shares = pool_shares(Uint128::new(100), &[1, 3, 3]).unwrap();
        // 14.28, 42.85, 42.85 down: 14, 42, 42; the 2 left to the first of the largest.
        assert_eq!(
            shares,
            vec![Uint128::new(14), Uint128::new(44), Uint128::new(42)]
        );
        assert_eq!(
            pool_shares(Uint128::new(1), &[0, 0]),
            Err(SplitError::NoContributions)
        );
    }

    #[test]
    fn pool_entitlements_give_the_first_leaves_the_remainder() {
        let owed: Vec<u128> = (0..4)
            .map(|leaf| pool_entitlement(Uint128::new(10), 4, leaf).u128())
            .collect();
        assert_eq!(owed, vec![3, 3, 2, 2]);
        assert_eq!(pool_entitlement(Uint128::new(10), 4, 4), Uint128::zero());
    }

    /// Weights for `raw`, scaled to sum to exactly 10 000 (largest remainder, as the engine does).
    fn whole(raw: &[u16]) -> Vec<AttributionEntry> {
        let total: u64 = raw.iter().map(|&w| w as u64).sum();
        let mut weights: Vec<u64> = raw.iter().map(|&w| w as u64 * 10_000 / total).collect();
        let mut left = 10_000 - weights.iter().sum::<u64>();
        for w in weights.iter_mut() {
            if left == 0 {
                break;
            }
            *w += 1;
            left -= 1;
        }
        weights
            .iter()
            .enumerate()
            .filter(|(_, &w)| w > 0)
            .map(|(i, &w)| entry(i as u64, w as u16))
            .collect()
    }

    proptest! {
        #[test]
        fn parts_sum_to_the_fee_and_the_developer_gets_exactly_its_share(
            amount in any::<u128>(),
            shares in (0u16..=10000, 0u16..=10000, 0u16..=10000),
            weights in proptest::collection::vec(1u16..=10000, 0..40),
            operators in 1usize..5,
        ) {
            let (a, b, c) = shares;
            let mut cuts = [a, b, c];
            cuts.sort();
            let s = split(cuts[0], cuts[1] - cuts[0], cuts[2] - cuts[1], 10000 - cuts[2]);
            let entries = if weights.is_empty() { vec![] } else { whole(&weights) };
            let amount = Uint128::new(amount);
            let settled = settle(amount, &s, &entries, operators).unwrap();
            prop_assert_eq!(settled.total(), Some(amount));
            prop_assert_eq!(settled.operators.len(), operators);
            prop_assert_eq!(settled.protocol, apply_bps(amount, s.protocol_bps as u32));
            prop_assert_eq!(settled.developer, apply_bps(amount, s.developer_bps as u32));
            let operators_total: Uint128 = settled.operators.iter().copied().sum();
            prop_assert_eq!(operators_total, apply_bps(amount, s.operator_bps as u32));
            // The contributors receive at least their share, and all of what they receive goes
            // to the entries when there are any.
            let contributors = settled.contributors_total().unwrap();
            prop_assert!(contributors >= apply_bps(amount, s.contributors_bps as u32));
            prop_assert_eq!(settled.unattributed.is_zero(), !entries.is_empty() || contributors.is_zero());
        }

        #[test]
        fn pool_shares_and_entitlements_are_exact(
            amount in any::<u128>(),
            counts in proptest::collection::vec(0u64..50, 1..16),
        ) {
            let amount = Uint128::new(amount);
            match pool_shares(amount, &counts) {
                Ok(shares) => {
                    prop_assert_eq!(shares.iter().copied().sum::<Uint128>(), amount);
                    for (share, &count) in shares.iter().zip(&counts) {
                        let owed: Uint128 = (0..count)
                            .map(|leaf| pool_entitlement(*share, count, leaf))
                            .sum();
                        prop_assert_eq!(owed, if count == 0 { Uint128::zero() } else { *share });
                    }
                }
                Err(err) => {
                    prop_assert_eq!(err, SplitError::NoContributions);
                    prop_assert!(counts.iter().all(|&c| c == 0));
                }
            }
        }
    }
}
