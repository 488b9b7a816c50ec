//! Whatever the price, split, attribution and attestor set, money is conserved through the real
//! contracts: what the payer spent is exactly what the parties claimed, and the payout contract
//! ends with nothing.

mod common;

use common::*;
use cosmwasm_std::{coins, Addr, Uint128};
use proptest::prelude::*;
use tributary_payout::error::ContractError;
use tributary_types::payout;
use tributary_types::{AssetInfo, FeeSplit, Price};

/// One generated scenario.
#[derive(Debug, Clone)]
struct Case {
    price: u128,
    excess: u128,
    split: FeeSplit,
    max_entries: u32,
    /// Indexes into the world's accepted contributions, with their weights.
    entries: Vec<(usize, u16)>,
    honest: usize,
    quorum: u32,
    challenger: bool,
    cw20: bool,
}

const CONTRIBUTIONS: usize = 12;

fn case() -> impl Strategy<Value = Case> {
    (
        1u128..=500_000_000,
        0u128..=1_000,
        (0u16..=10_000, 0u16..=10_000, 0u16..=10_000),
        1u32..=CONTRIBUTIONS as u32,
        proptest::sample::subsequence((0..CONTRIBUTIONS).collect::<Vec<_>>(), 0..=CONTRIBUTIONS),
        proptest::collection::vec(1u32..=10_000, CONTRIBUTIONS),
        1usize..=3,
        1u32..=3,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(price, excess, cuts, max_entries, picked, raw, honest, quorum, challenger, cw20)| {
                let mut cuts = [cuts.0, cuts.1, cuts.2];
                cuts.sort();
                let split = FeeSplit {
                    contributors_bps: cuts[0],
                    developer_bps: cuts[1] - cuts[0],
                    operator_bps: cuts[2] - cuts[1],
                    protocol_bps: 10_000 - cuts[2],
                };
                let picked: Vec<usize> = picked.into_iter().take(max_entries as usize).collect();
                // Scale the weights to sum to exactly 10 000, as the engine does (largest
                // remainder); an entry left at zero is dropped.
                let total: u32 = picked.iter().map(|&i| raw[i]).sum();
                let mut weights: Vec<(usize, u32, u32)> = picked
                    .iter()
                    .map(|&i| {
                        (
                            i,
                            raw[i] * 10_000 / total.max(1),
                            raw[i] * 10_000 % total.max(1),
                        )
                    })
                    .collect();
                let given: u32 = weights.iter().map(|w| w.1).sum();
                let mut order: Vec<usize> = (0..weights.len()).collect();
                order.sort_by(|&a, &b| weights[b].2.cmp(&weights[a].2).then(a.cmp(&b)));
                for &k in order.iter().take((10_000 - given.min(10_000)) as usize) {
                    weights[k].1 += 1;
                }
                let entries = weights
                    .into_iter()
                    .filter(|w| w.1 > 0)
                    .map(|(i, w, _)| (i, w as u16))
                    .collect();
                let attestors = honest + usize::from(challenger);
                Case {
                    price,
                    excess,
                    split,
                    max_entries,
                    entries,
                    honest,
                    quorum: quorum.min(attestors as u32),
                    challenger,
                    cw20,
                }
            },
        )
}

fn run(case: Case) -> Result<(), TestCaseError> {
    let mut w = World::with(Setup {
        contributions: CONTRIBUTIONS,
        max_entries: case.max_entries,
        ..Setup::default()
    });
    let asset = if case.cw20 {
        AssetInfo::cw20(w.token.as_str())
    } else {
        AssetInfo::native(DENOM)
    };
    let honest: Vec<Addr> = w.attestors[..case.honest].to_vec();
    let challenger = w.attestors[3].clone();
    let mut attestors = honest.clone();
    if case.challenger {
        attestors.push(challenger.clone());
    }
    let model = w.register_model(ModelSpec {
        price: Price {
            asset: asset.clone(),
            amount: Uint128::new(case.price),
        },
        split: case.split,
        attestors,
        quorum: case.quorum,
    });

    let token = w.token.clone();
    let holdings = |w: &World, who: &Addr| match &asset {
        AssetInfo::Native { .. } => w.native_balance(who),
        AssetInfo::Cw20 { .. } => w.token_balance(&token, who),
    };
    let payer = w.payers[0].clone();
    let paid_before = holdings(&w, &payer);
    let offered = case.price + case.excess;
    if case.cw20 {
        w.request_cw20(&payer, &token, model, 1, offered).unwrap();
    } else {
        w.request(&payer, model, 1, &coins(offered, DENOM)).unwrap();
    }
    prop_assert_eq!(holdings(&w, &payer), paid_before - case.price);

    let entries: Vec<(u64, u16)> = case
        .entries
        .iter()
        .map(|&(i, weight)| (w.accepted[i], weight))
        .collect();
    let packet = w.packet(1, model, 1, &entries);
    for attestor in &honest {
        w.commit(attestor, vec![packet.clone()]).unwrap();
    }
    if case.challenger {
        let mut other = packet.clone();
        other.output_hash = h("a different completion");
        w.commit(&challenger, vec![other]).unwrap();
    }

    // From the rule: the honest packet holds quorum alone unless a challenger's packet does too.
    // Either way the request was served, so at expiry it settles: by the agreed packet, or
    // without attribution, the contributors' share going to the datanet's pool.
    let quorum = case.quorum as usize;
    let agreed = case.honest >= quorum && !(case.challenger && quorum == 1);
    w.advance(EXPIRY);
    let refused = matches!(
        contract_err(w.refund(1).unwrap_err()),
        ContractError::NotRefundable { id: 1 }
    );
    prop_assert!(refused);
    w.finalize(vec![1]).unwrap();
    let settlement = w.request_state(1).settlement.unwrap();
    prop_assert_eq!(
        settlement.contributions.is_empty(),
        !agreed || case.entries.is_empty()
    );
    let committed = if agreed {
        case.honest
    } else {
        case.honest + usize::from(case.challenger)
    };
    prop_assert_eq!(settlement.operators.len(), committed);

    // The developer is credited its own share, rounded down, and never a unit more.
    let developer_share =
        Uint128::new(case.price).multiply_ratio(case.split.developer_bps, 10_000u32);
    let credited: u128 = w
        .claimable(&w.developer.clone())
        .iter()
        .map(|(_, a)| a)
        .sum();
    prop_assert_eq!(credited, developer_share.u128());

    // A packet naming no contribution left the contributors' share in the datanet's pool.
    let pool = payout::ExecuteMsg::ClaimPool {
        datanet_id: w.root.datanet_id,
        version: w.root.version,
        asset: asset.clone(),
        contribution_ids: w.accepted.clone(),
    };
    let anyone = w.payers[1].clone();
    match w.execute_payout(&anyone, &pool) {
        Ok(_) => prop_assert!(!settlement.unattributed.is_zero()),
        Err(err) => {
            let nothing = matches!(
                contract_err(err),
                ContractError::UnknownPool { .. } | ContractError::NothingToClaim
            );
            prop_assert!(nothing);
        }
    }

    let mut parties = vec![w.treasury.clone(), w.developer.clone()];
    parties.extend(w.attestors.iter().cloned());
    parties.extend(w.contributors.iter().cloned());
    let mut claimed = 0u128;
    for who in &parties {
        let before = holdings(&w, who);
        match w.claim(who) {
            Ok(_) => {}
            Err(err) => prop_assert_eq!(contract_err(err), ContractError::NothingToClaim),
        }
        claimed += holdings(&w, who) - before;
    }
    let spent = paid_before - holdings(&w, &payer);
    prop_assert_eq!(claimed, spent);
    prop_assert_eq!(spent, case.price);
    prop_assert_eq!(w.native_balance(&w.payout), 0);
    prop_assert_eq!(w.token_balance(&token, &w.payout), 0);
    Ok(())
}

proptest! {
    // Each case deploys four contracts and runs a dozen transactions.
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn money_is_conserved_from_payment_to_claims(case in case()) {
        run(case)?;
    }
}
