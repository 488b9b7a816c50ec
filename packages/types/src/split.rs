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
    /// Shared among the attributed contributions by weight.
    pub contributors_bps: u16,
    /// The model's developer (owner); also receives every remainder.
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
    #[error("attribution weights sum to {sum} bps, at most 10000 allowed")]
    WeightsSum { sum: u32 },
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
}

impl Settlement {
    /// Sum of every part.
    pub fn total(&self) -> Option<Uint128> {
        let mut total = self.protocol.checked_add(self.developer).ok()?;
        for part in self
            .operators
            .iter()
            .chain(self.contributions.iter().map(|(_, a)| a))
        {
            total = total.checked_add(*part).ok()?;
        }
        Some(total)
    }
}

/// Splits `amount` by `split`, the contributors' share by the entries' weights, the operators'
/// share equally among `operators` payees.
///
/// Deterministic rule for remainders: every share rounds down; the first operator takes the
/// operators' rounding remainder; the developer takes everything else (its own share, the part of
/// the contributors' share not covered by weights, and all rounding dust), so the parts sum to
/// `amount` exactly. With no operator, the operators' share goes to the developer too.
pub fn settle(
    amount: Uint128,
    split: &FeeSplit,
    entries: &[AttributionEntry],
    operators: usize,
) -> Result<Settlement, SplitError> {
    split.validate()?;
    let weights: u32 = entries.iter().map(|e| e.weight_bps as u32).sum();
    if weights > BPS_DENOMINATOR {
        return Err(SplitError::WeightsSum { sum: weights });
    }
    let overflow = || SplitError::Overflow { amount };

    let protocol = apply_bps(amount, split.protocol_bps as u32);
    let operator_pool = if operators == 0 {
        Uint128::zero()
    } else {
        apply_bps(amount, split.operator_bps as u32)
    };
    let operator_shares = if operators == 0 {
        Vec::new()
    } else {
        let each = operator_pool.multiply_ratio(1u128, operators as u128);
        let mut shares = vec![each; operators];
        let rest = operator_pool
            .checked_sub(
                each.checked_mul(Uint128::from(operators as u128))
                    .map_err(|_| overflow())?,
            )
            .map_err(|_| overflow())?;
        shares[0] = shares[0].checked_add(rest).map_err(|_| overflow())?;
        shares
    };

    let pool = apply_bps(amount, split.contributors_bps as u32);
    let contributions: Vec<(u64, Uint128)> = entries
        .iter()
        .map(|e| (e.contribution_id, apply_bps(pool, e.weight_bps as u32)))
        .collect();
    let contributed = contributions
        .iter()
        .try_fold(Uint128::zero(), |acc, (_, a)| acc.checked_add(*a))
        .map_err(|_| overflow())?;

    let developer = amount
        .checked_sub(protocol)
        .and_then(|r| r.checked_sub(operator_pool))
        .and_then(|r| r.checked_sub(contributed))
        .map_err(|_| overflow())?;

    Ok(Settlement {
        protocol,
        operators: operator_shares,
        developer,
        contributions,
    })
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
    fn worked_example_rounds_down_and_gives_dust_to_the_developer() {
        // 1001 units, 70/10/15/5: pool 700 (700.7 down), operators 150 (150.15 down) across 2,
        // protocol 50 (50.05 down). Weights 1/3 + 1/3 of the pool: 3333 bps each -> 233 each.
        let s = settle(
            Uint128::new(1001),
            &split(7000, 1000, 1500, 500),
            &[entry(1, 3333), entry(2, 3333)],
            2,
        )
        .unwrap();
        assert_eq!(s.protocol, Uint128::new(50));
        assert_eq!(s.operators, vec![Uint128::new(75), Uint128::new(75)]);
        assert_eq!(
            s.contributions,
            vec![(1, Uint128::new(233)), (2, Uint128::new(233))]
        );
        assert_eq!(s.developer, Uint128::new(1001 - 50 - 150 - 466));
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
    fn bad_splits_and_weights_are_refused() {
        assert_eq!(
            settle(Uint128::new(1), &split(1, 1, 1, 1), &[], 1),
            Err(SplitError::SplitSum { sum: 4 })
        );
        assert_eq!(
            settle(
                Uint128::new(1),
                &split(10000, 0, 0, 0),
                &[entry(1, 6000), entry(2, 4001)],
                1
            ),
            Err(SplitError::WeightsSum { sum: 10001 })
        );
    }

    proptest! {
        #[test]
        fn parts_always_sum_to_the_fee(
            amount in any::<u128>(),
            shares in (0u16..=10000, 0u16..=10000, 0u16..=10000),
            weights in proptest::collection::vec(1u16..=10000, 0..40),
            operators in 0usize..5,
        ) {
            let (a, b, c) = shares;
            let mut cuts = [a, b, c];
            cuts.sort();
            let s = split(cuts[0], cuts[1] - cuts[0], cuts[2] - cuts[1], 10000 - cuts[2]);
            // Scale weights so they sum to at most 10 000.
            let total: u32 = weights.iter().map(|w| *w as u32).sum();
            let entries: Vec<_> = weights
                .iter()
                .enumerate()
                .map(|(i, w)| entry(i as u64, if total > 10000 { (*w as u32 * 10000 / total) as u16 } else { *w }))
                .collect();
            let settled = settle(Uint128::new(amount), &s, &entries, operators).unwrap();
            prop_assert_eq!(settled.total(), Some(Uint128::new(amount)));
            prop_assert_eq!(settled.operators.len(), operators);
            prop_assert!(settled.protocol <= apply_bps(Uint128::new(amount), s.protocol_bps as u32));
        }
    }
}
