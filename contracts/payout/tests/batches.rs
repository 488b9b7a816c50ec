//! Settlement batches against the real contracts: a batch pays every party exactly what the
//! per-request path pays for the same inferences, a batch with one bad result changes nothing,
//! one inference of a batch can be challenged and settled by the committee while the rest of
//! the batch finalizes, and vouchers redeemed in a batch cannot be redeemed again.

mod common;

use common::keys::{deposit, KeyPayer};
use common::*;
use cosmwasm_std::{coins, Addr, HexBinary, Uint128};
use cw_multi_test::error::AnyResult;
use cw_multi_test::{AppResponse, BankSudo, Executor, SudoMsg};
use tributary_payout::error::ContractError;
use tributary_types::batch::{batch_leaf, BatchInfo, BatchLeaf, BatchResult, BatchStatus};
use tributary_types::datanet::{self, Contribution};
use tributary_types::merkle::{inclusion_path, Leaves};
use tributary_types::payout::{self, RequestStatus};
use tributary_types::verification::{ChallengeOutcome, VerificationParams};
use tributary_types::voucher::VoucherRedemption;
use tributary_types::{AssetInfo, AttributionEntry};

const PRICE: u128 = 10_007;
const BOND: u128 = 2_000_000;
const CHALLENGE_BOND: u128 = 1_000_000;

/// The attribution of inference `i`: weights that differ per inference and leave dust.
fn entries(w: &World, i: usize) -> Vec<(u64, u16)> {
    let a = w.accepted[i % w.accepted.len()];
    let b = w.accepted[(i + 1) % w.accepted.len()];
    vec![(a, 6_667), (b, 3_333)]
}

fn result(i: usize, entries: &[(u64, u16)]) -> BatchResult {
    BatchResult {
        output_hash: h(&format!("completion {i}")),
        scores_root: h(&format!("scores {i}")),
        entries: entries
            .iter()
            .map(|&(contribution_id, weight_bps)| AttributionEntry {
                contribution_id,
                weight_bps,
            })
            .collect(),
    }
}

/// Two key-holding payers with credit, on a one-attestor model (quorum 1).
struct Batched {
    w: World,
    model: u64,
    payers: Vec<KeyPayer>,
    attestor: Addr,
}

impl Batched {
    fn new() -> Self {
        let mut w = World::new();
        let model = w.native_model(PRICE, 1, 1);
        let mut payers = Vec::new();
        for seed in [21u8, 22] {
            let payer = KeyPayer::new(&mut w, seed);
            deposit(&mut w, &payer.address, 100 * PRICE);
            payers.push(payer);
        }
        let attestor = w.attestors[0].clone();
        Batched {
            w,
            model,
            payers,
            attestor,
        }
    }

    /// Vouchers for `counts[p]` more inferences of payer `p`, and the results for them.
    fn batch(&mut self, counts: &[usize]) -> (Vec<VoucherRedemption>, Vec<BatchResult>) {
        let mut redemptions = Vec::new();
        let mut results = Vec::new();
        for (payer, &n) in self.payers.iter_mut().zip(counts) {
            let before = payer.prompts.len();
            let voucher = payer.ask(&self.w, &self.attestor, self.model, n, PRICE);
            redemptions.push(payer.redemption(voucher, before));
        }
        let total: usize = counts.iter().sum();
        for i in 0..total {
            results.push(result(i, &entries(&self.w, i)));
        }
        (redemptions, results)
    }

    fn settle(
        &mut self,
        redemptions: Vec<VoucherRedemption>,
        results: Vec<BatchResult>,
    ) -> AnyResult<AppResponse> {
        let attestor = self.attestor.clone();
        self.w.execute_payout(
            &attestor,
            &payout::ExecuteMsg::SettleBatch {
                redemptions,
                results,
            },
        )
    }

    fn finalize(&mut self, batch_ids: Vec<u64>) -> AnyResult<AppResponse> {
        let anyone = self.w.app.api().addr_make("anyone");
        self.w
            .execute_payout(&anyone, &payout::ExecuteMsg::FinalizeBatches { batch_ids })
    }

    fn batch_info(&self, id: u64) -> BatchInfo {
        self.w
            .app
            .wrap()
            .query_wasm_smart(&self.w.payout, &payout::QueryMsg::Batch { batch_id: id })
            .unwrap()
    }

    fn credit_of(&self, p: usize) -> u128 {
        let account: tributary_types::voucher::CreditAccount = self
            .w
            .app
            .wrap()
            .query_wasm_smart(
                &self.w.payout,
                &payout::QueryMsg::Credit {
                    address: self.payers[p].address.to_string(),
                    asset: AssetInfo::native(DENOM),
                },
            )
            .unwrap();
        account.balance.u128()
    }
}

fn native_claimable(w: &World, who: &Addr) -> u128 {
    w.claimable(who)
        .into_iter()
        .filter(|(asset, _)| *asset == AssetInfo::native(DENOM))
        .map(|(_, amount)| amount)
        .sum()
}

fn usage_count(w: &World, contribution_id: u64) -> u64 {
    let c: Contribution = w
        .app
        .wrap()
        .query_wasm_smart(
            &w.datanet,
            &datanet::QueryMsg::Contribution { contribution_id },
        )
        .unwrap();
    c.usage_count
}

#[test]
fn a_batch_pays_every_party_what_the_per_request_path_pays() {
    let mut b = Batched::new();
    let (redemptions, results) = b.batch(&[3, 2]);
    b.settle(redemptions, results).unwrap();
    let batch = b.batch_info(1);
    assert_eq!((batch.count, batch.first_request_id), (5, 1));
    assert_eq!(b.credit_of(0), 97 * PRICE);
    assert_eq!(b.credit_of(1), 98 * PRICE);
    let early = b.finalize(vec![1]).unwrap_err();
    assert!(matches!(
        contract_err(early),
        ContractError::BatchWindowOpen { id: 1, .. }
    ));
    b.w.advance(WINDOW);
    b.finalize(vec![1]).unwrap();
    assert_eq!(b.batch_info(1).status, BatchStatus::Finalized);
    assert!(matches!(
        contract_err(b.finalize(vec![1]).unwrap_err()),
        ContractError::BatchFinalized { id: 1 }
    ));

    // The same five inferences, each paid, committed and finalized on its own.
    let mut r = World::new();
    let model = r.native_model(PRICE, 1, 1);
    let payer = r.payers[0].clone();
    let attestor = r.attestors[0].clone();
    let mut ids = Vec::new();
    for i in 0..5 {
        let id = r.paid_request(&payer, model, PRICE);
        let mut packet = r.packet(id, model, 1, &entries(&r, i));
        packet.output_hash = h(&format!("completion {i}"));
        r.commit(&attestor, vec![packet]).unwrap();
        ids.push(id);
    }
    r.advance(WINDOW);
    r.finalize(ids).unwrap();

    let parties = |w: &World| {
        let mut who = vec![
            w.developer.clone(),
            w.treasury.clone(),
            w.attestors[0].clone(),
        ];
        who.extend(w.contributors.iter().cloned());
        who.iter()
            .map(|a| native_claimable(w, a))
            .collect::<Vec<_>>()
    };
    let batched = parties(&b.w);
    assert_eq!(batched, parties(&r));
    assert_eq!(batched.iter().sum::<u128>(), 5 * PRICE);
    for &id in &b.w.accepted {
        assert_eq!(
            usage_count(&b.w, id),
            usage_count(&r, id),
            "contribution {id}"
        );
    }
    assert!(b.w.accepted.iter().any(|&id| usage_count(&b.w, id) > 1));
}

#[test]
fn a_batch_with_one_bad_result_changes_nothing() {
    let mut b = Batched::new();
    let (redemptions, mut results) = b.batch(&[3, 2]);
    let foreign = b.w.foreign;
    results[3] = result(3, &[(foreign, 10_000)]);
    let err = contract_err(b.settle(redemptions.clone(), results.clone()).unwrap_err());
    assert_eq!(
        err,
        ContractError::BadBatchItem {
            index: 3,
            error: Box::new(ContractError::ContributionNotInLineage {
                contribution_id: foreign
            }),
        }
    );
    // Weights that do not sum to 10 000 are refused the same way, by index.
    results[3] = result(3, &[(b.w.accepted[0], 9_999)]);
    let err = contract_err(b.settle(redemptions.clone(), results.clone()).unwrap_err());
    assert!(
        matches!(err, ContractError::BadBatchItem { index: 3, .. }),
        "{err:?}"
    );
    // One result short.
    results.pop();
    let err = contract_err(b.settle(redemptions.clone(), results).unwrap_err());
    assert_eq!(
        err,
        ContractError::BatchResultCount {
            prompts: 5,
            results: 4
        }
    );
    // Nothing was charged or stored: the same vouchers still settle.
    assert_eq!((b.credit_of(0), b.credit_of(1)), (100 * PRICE, 100 * PRICE));
    let results = (0..5).map(|i| result(i, &entries(&b.w, i))).collect();
    b.settle(redemptions.clone(), results).unwrap();
    assert_eq!(b.batch_info(1).count, 5);
    // And never again.
    let results = (0..5).map(|i| result(i, &entries(&b.w, i))).collect();
    let err = contract_err(b.settle(redemptions, results).unwrap_err());
    assert!(
        matches!(err, ContractError::VoucherCountMismatch { .. }),
        "{err:?}"
    );
}

#[test]
fn batches_need_a_quorum_of_one() {
    let mut w = World::new();
    let model = w.native_model(PRICE, 2, 2);
    let mut payer = KeyPayer::new(&mut w, 30);
    deposit(&mut w, &payer.address, 10 * PRICE);
    let attestor = w.attestors[0].clone();
    let voucher = payer.ask(&w, &attestor, model, 1, PRICE);
    let redemption = payer.redemption(voucher, 0);
    let results = vec![result(0, &entries(&w, 0))];
    let err = w
        .execute_payout(
            &attestor,
            &payout::ExecuteMsg::SettleBatch {
                redemptions: vec![redemption],
                results,
            },
        )
        .unwrap_err();
    assert!(matches!(
        contract_err(err),
        ContractError::BatchNeedsQuorumOne { quorum: 2, .. }
    ));
}

#[test]
fn one_inference_of_a_batch_is_challenged_and_the_rest_finalizes() {
    let mut b = Batched::new();
    let admin = b.w.admin.clone();
    let params = VerificationParams {
        bond_denom: DENOM.into(),
        min_verifier_bond: Uint128::new(BOND),
        min_attestor_bond: Uint128::zero(),
        unbonding_seconds: 10_000,
        challenge_bond: Uint128::new(CHALLENGE_BOND),
        committee_size: 3,
        reveal_seconds: 600,
        vote_seconds: 600,
        slash_bps: 5000,
        vote_reward: Uint128::new(100_000),
    };
    b.w.execute_payout(&admin, &payout::ExecuteMsg::UpdateVerification { params })
        .unwrap();
    let verifiers: Vec<Addr> = (0..4)
        .map(|i| b.w.app.api().addr_make(&format!("verifier-{i}")))
        .collect();
    for who in verifiers.iter().chain(std::iter::once(&b.attestor)) {
        b.w.app
            .sudo(SudoMsg::Bank(BankSudo::Mint {
                to_address: who.to_string(),
                amount: coins(10 * BOND, DENOM),
            }))
            .unwrap();
        b.w.app
            .execute_contract(
                who.clone(),
                b.w.payout.clone(),
                &payout::ExecuteMsg::Bond {},
                &coins(BOND, DENOM),
            )
            .unwrap();
    }

    // Inference 1 of the batch (payer 0's second prompt) is forged: all of it to one
    // contribution, where the honest result splits it.
    let (redemptions, mut results) = b.batch(&[3, 2]);
    let honest = results[1].clone();
    results[1] = result(1, &[(b.w.accepted[3], 10_000)]);
    let leaves: Vec<BatchLeaf> = {
        let payers = [0, 0, 0, 1, 1];
        let prompts = [0, 1, 2, 0, 1];
        (0..5)
            .map(|i| BatchLeaf {
                payer: b.payers[payers[i]].address.to_string(),
                prompt_hash: b.payers[payers[i]].prompts[prompts[i]].clone(),
                result: results[i].clone(),
            })
            .collect()
    };
    b.settle(redemptions, results).unwrap();
    let hashes: Vec<_> = leaves.iter().map(|l| batch_leaf(l).unwrap()).collect();
    let proof: Vec<HexBinary> = inclusion_path(&Leaves(&hashes), 1, 5)
        .unwrap()
        .unwrap()
        .iter()
        .map(|p| HexBinary::from(p.as_slice()))
        .collect();

    let challenge = |leaf: BatchLeaf, index: u32, proof: Vec<HexBinary>| {
        payout::ExecuteMsg::ChallengeBatchItem {
            batch_id: 1,
            index,
            leaf,
            proof,
            result: honest.clone(),
        }
    };
    let challenger = verifiers[0].clone();
    // A proof for another index, or another leaf, does not hold.
    let wrong =
        b.w.app
            .execute_contract(
                challenger.clone(),
                b.w.payout.clone(),
                &challenge(leaves[1].clone(), 2, proof.clone()),
                &coins(CHALLENGE_BOND, DENOM),
            )
            .unwrap_err();
    assert_eq!(
        contract_err(wrong),
        ContractError::NotInBatch {
            batch_id: 1,
            index: 2
        }
    );
    b.w.app
        .execute_contract(
            challenger.clone(),
            b.w.payout.clone(),
            &challenge(leaves[1].clone(), 1, proof.clone()),
            &coins(CHALLENGE_BOND, DENOM),
        )
        .unwrap();
    let request = b.w.request_state(2);
    assert_eq!(request.status, RequestStatus::Challenged);
    assert_eq!(request.payer, b.payers[0].address);
    assert_eq!(b.batch_info(1).challenged, vec![2]);

    // The committee recomputes: the honest result wins, the attestor is slashed.
    let prompt = format!("{} prompt 1", b.payers[0].address);
    let anyone = b.w.app.api().addr_make("anyone");
    b.w.execute_payout(
        &anyone,
        &payout::ExecuteMsg::RevealInputs {
            request_id: 2,
            prompt,
            completion: HexBinary::from("completion 1".as_bytes()),
        },
    )
    .unwrap();
    let state: Option<tributary_types::verification::ChallengeInfo> =
        b.w.app
            .wrap()
            .query_wasm_smart(
                &b.w.payout,
                &payout::QueryMsg::ChallengeOf { request_id: 2 },
            )
            .unwrap();
    let state = state.unwrap();
    for member in &state.committee {
        b.w.execute_payout(
            member,
            &payout::ExecuteMsg::Vote {
                request_id: 2,
                packet_hash: state.challenger_packet.clone(),
            },
        )
        .unwrap();
    }
    b.w.execute_payout(&anyone, &payout::ExecuteMsg::Resolve { request_id: 2 })
        .unwrap();
    let resolved: Option<tributary_types::verification::ChallengeInfo> =
        b.w.app
            .wrap()
            .query_wasm_smart(
                &b.w.payout,
                &payout::QueryMsg::ChallengeOf { request_id: 2 },
            )
            .unwrap();
    assert_eq!(resolved.unwrap().outcome, Some(ChallengeOutcome::Upheld));
    // The rest of the batch finalizes after the window, without the challenged inference.
    let owed = |b: &Batched| -> u128 {
        [
            b.w.developer.clone(),
            b.w.treasury.clone(),
            b.attestor.clone(),
        ]
        .iter()
        .chain(&b.w.contributors)
        .map(|a| native_claimable(&b.w, a))
        .sum()
    };
    b.w.advance(WINDOW);
    let before = owed(&b);
    b.finalize(vec![1]).unwrap();
    assert_eq!(owed(&b) - before, 4 * PRICE);

    b.w.finalize(vec![2]).unwrap();
    let settlement = b.w.request_state(2).settlement.unwrap();
    let paid_to: Vec<u64> = settlement.contributions.iter().map(|(id, _)| *id).collect();
    let honest_ids: Vec<u64> = honest.entries.iter().map(|e| e.contribution_id).collect();
    assert_eq!(paid_to, honest_ids);
}
