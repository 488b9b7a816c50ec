//! Random sequences of bonds, unbonds, withdrawals, payments, commits (honest and forged),
//! challenges, reveals, votes, resolutions, finalizations, claims and the clock, from random
//! actors, against the real contracts. After every step the payout contract holds, in the bond
//! denom, exactly what it owes: every bond (active and unbonding), the bond of every open
//! challenge, every claimable balance and the escrow of every open request. Bonding, unbonding
//! and slashing move funds; they never create or destroy them. No message may panic.

mod common;

use common::*;
use cosmwasm_std::{coins, Addr, HexBinary, Uint128};
use cw_multi_test::{BankSudo, Executor, SudoMsg};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tributary_types::payout::{self, InferenceRequest, RequestStatus, RequestsResponse};
use tributary_types::verification::{
    BondsResponse, ChallengeInfo, ChallengeOutcome, ChallengesResponse, VerificationParams,
};
use tributary_types::{AssetInfo, AttributionPacket};

const PRICE: u128 = 10_000;
const VERIFIERS: usize = 5;

#[derive(Debug, Clone)]
enum Step {
    Bond { who: u8, amount: u32 },
    Unbond { who: u8, amount: u32 },
    Withdraw { who: u8 },
    Pay,
    Commit { request: u8, forged: bool },
    Challenge { who: u8, request: u8, forged: bool },
    Reveal { request: u8, wrong: bool },
    Vote { who: u8, request: u8, forged: bool },
    Resolve { request: u8 },
    Finalize { request: u8 },
    Claim { who: u8 },
    Advance { seconds: u16 },
}

/// Weighted toward the steps of a dispute, so that sequences reach every outcome.
fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => (any::<u8>(), 1u32..3_000_000).prop_map(|(who, amount)| Step::Bond { who, amount }),
        1 => (any::<u8>(), 1u32..3_000_000).prop_map(|(who, amount)| Step::Unbond { who, amount }),
        1 => any::<u8>().prop_map(|who| Step::Withdraw { who }),
        2 => Just(Step::Pay),
        3 => (any::<u8>(), any::<bool>())
            .prop_map(|(request, forged)| Step::Commit { request, forged }),
        3 => (any::<u8>(), any::<u8>(), any::<bool>())
            .prop_map(|(who, request, forged)| Step::Challenge { who, request, forged }),
        3 => (any::<u8>(), prop::bool::weighted(0.1))
            .prop_map(|(request, wrong)| Step::Reveal { request, wrong }),
        8 => (any::<u8>(), any::<u8>(), prop::bool::weighted(0.3))
            .prop_map(|(who, request, forged)| Step::Vote { who, request, forged }),
        3 => any::<u8>().prop_map(|request| Step::Resolve { request }),
        2 => any::<u8>().prop_map(|request| Step::Finalize { request }),
        1 => any::<u8>().prop_map(|who| Step::Claim { who }),
        1 => (1u16..700).prop_map(|seconds| Step::Advance { seconds }),
    ]
}

struct Run {
    w: World,
    model: u64,
    /// The verifiers, then the model's attestor.
    actors: Vec<Addr>,
    requests: Vec<u64>,
}

impl Run {
    fn new() -> Run {
        let mut w = World::new();
        let admin = w.admin.clone();
        let params = VerificationParams {
            bond_denom: DENOM.into(),
            min_verifier_bond: Uint128::new(1_000_000),
            min_attestor_bond: Uint128::zero(),
            unbonding_seconds: WINDOW + 1_200,
            challenge_bond: Uint128::new(500_000),
            committee_size: 3,
            reveal_seconds: 600,
            vote_seconds: 600,
            slash_bps: 3_333,
            vote_reward: Uint128::new(70_001),
        };
        w.execute_payout(&admin, &payout::ExecuteMsg::UpdateVerification { params })
            .unwrap();
        let mut actors: Vec<Addr> = (0..VERIFIERS)
            .map(|i| w.app.api().addr_make(&format!("verifier-{i}")))
            .collect();
        actors.push(w.attestors[0].clone());
        for who in &actors {
            w.app
                .sudo(SudoMsg::Bank(BankSudo::Mint {
                    to_address: who.to_string(),
                    amount: coins(1_000_000_000, DENOM),
                }))
                .unwrap();
        }
        let model = w.native_model(PRICE, 1, 1);
        // Everyone starts bonded, so that challenges and committees can happen at all.
        for who in &actors {
            w.app
                .execute_contract(
                    who.clone(),
                    w.payout.clone(),
                    &payout::ExecuteMsg::Bond {},
                    &coins(2_000_000, DENOM),
                )
                .unwrap();
        }
        Run {
            w,
            model,
            actors,
            requests: Vec::new(),
        }
    }

    fn actor(&self, i: u8) -> Addr {
        self.actors[i as usize % self.actors.len()].clone()
    }

    fn request(&self, i: u8) -> Option<u64> {
        (!self.requests.is_empty()).then(|| self.requests[i as usize % self.requests.len()])
    }

    fn packet(&self, id: u64, forged: bool) -> AttributionPacket {
        let contribution = self.w.accepted[usize::from(forged)];
        self.w.packet(id, self.model, 1, &[(contribution, 10_000)])
    }

    fn apply(&mut self, step: &Step) {
        let payout = self.w.payout.clone();
        let send = |w: &mut World, who: &Addr, msg: &payout::ExecuteMsg, funds: u128| {
            let funds = if funds == 0 {
                vec![]
            } else {
                coins(funds, DENOM)
            };
            // Errors are expected and fine; panics are not.
            let _ = w
                .app
                .execute_contract(who.clone(), payout.clone(), msg, &funds);
        };
        match *step {
            Step::Bond { who, amount } => {
                let who = self.actor(who);
                send(
                    &mut self.w,
                    &who,
                    &payout::ExecuteMsg::Bond {},
                    amount.into(),
                );
            }
            Step::Unbond { who, amount } => {
                let who = self.actor(who);
                let msg = payout::ExecuteMsg::Unbond {
                    amount: Uint128::from(amount),
                };
                send(&mut self.w, &who, &msg, 0);
            }
            Step::Withdraw { who } => {
                let who = self.actor(who);
                send(
                    &mut self.w,
                    &who,
                    &payout::ExecuteMsg::WithdrawUnbonded {},
                    0,
                );
            }
            Step::Pay => {
                let payer = self.w.payers[0].clone();
                let id = self.w.paid_request(&payer, self.model, PRICE);
                self.requests.push(id);
            }
            Step::Commit { request, forged } => {
                if let Some(id) = self.request(request) {
                    let attestor = self.w.attestors[0].clone();
                    let _ = self.w.commit(&attestor, vec![self.packet(id, forged)]);
                }
            }
            Step::Challenge {
                who,
                request,
                forged,
            } => {
                if let Some(id) = self.request(request) {
                    let who = self.actor(who);
                    let msg = payout::ExecuteMsg::Challenge {
                        request_id: id,
                        packet: self.packet(id, forged),
                    };
                    send(&mut self.w, &who, &msg, 500_000);
                }
            }
            Step::Reveal { request, wrong } => {
                if let Some(id) = self.request(request) {
                    let who = self.actor(0);
                    let msg = payout::ExecuteMsg::RevealInputs {
                        request_id: id,
                        prompt: if wrong { "other" } else { "prompt" }.into(),
                        completion: HexBinary::from(format!("output-{id}").as_bytes()),
                    };
                    send(&mut self.w, &who, &msg, 0);
                }
            }
            Step::Vote {
                who,
                request,
                forged,
            } => {
                if let Some(id) = self.request(request) {
                    // Mostly a member of the committee, if one was drawn.
                    let committee = self.challenge(id).map(|c| c.committee).unwrap_or_default();
                    let who = match committee.len() {
                        0 => self.actor(who),
                        n if who % 8 != 0 => committee[who as usize % n].clone(),
                        _ => self.actor(who),
                    };
                    let hash = self.packet(id, forged).packet_hash().unwrap();
                    let msg = payout::ExecuteMsg::Vote {
                        request_id: id,
                        packet_hash: HexBinary::from(hash.as_slice()),
                    };
                    send(&mut self.w, &who, &msg, 0);
                }
            }
            Step::Resolve { request } => {
                if let Some(id) = self.request(request) {
                    let who = self.actor(0);
                    send(
                        &mut self.w,
                        &who,
                        &payout::ExecuteMsg::Resolve { request_id: id },
                        0,
                    );
                }
            }
            Step::Finalize { request } => {
                if let Some(id) = self.request(request) {
                    let _ = self.w.finalize(vec![id]);
                }
            }
            Step::Claim { who } => {
                let who = self.actor(who);
                let _ = self.w.claim(&who);
            }
            Step::Advance { seconds } => self.w.advance(seconds.into()),
        }
    }

    fn challenge(&self, id: u64) -> Option<ChallengeInfo> {
        self.w
            .app
            .wrap()
            .query_wasm_smart(
                &self.w.payout,
                &payout::QueryMsg::ChallengeOf { request_id: id },
            )
            .unwrap()
    }

    /// The outcomes of every challenge so far.
    fn outcomes(&self) -> Vec<ChallengeOutcome> {
        self.requests
            .iter()
            .filter_map(|id| self.challenge(*id).and_then(|c| c.outcome))
            .collect()
    }

    /// What the contract owes in the bond denom, from its own queries.
    fn owed(&self) -> u128 {
        let q = self.w.app.wrap();
        let bonds: BondsResponse = q
            .query_wasm_smart(
                &self.w.payout,
                &payout::QueryMsg::Bonds {
                    start_after: None,
                    limit: Some(100),
                },
            )
            .unwrap();
        let bonded: u128 = bonds
            .bonds
            .iter()
            .map(|b| b.active.u128() + b.unbonding.u128())
            .sum();
        let open: ChallengesResponse = q
            .query_wasm_smart(
                &self.w.payout,
                &payout::QueryMsg::OpenChallenges {
                    start_after: None,
                    limit: Some(100),
                },
            )
            .unwrap();
        let challenged: u128 = open
            .challenges
            .iter()
            .map(|c: &ChallengeInfo| c.bond.u128())
            .sum();
        let mut accounts = self.actors.clone();
        accounts.extend(self.w.contributors.iter().cloned());
        accounts.extend([self.w.treasury.clone(), self.w.developer.clone()]);
        let claimable: u128 = accounts
            .iter()
            .flat_map(|a| self.w.claimable(a))
            .filter(|(asset, _)| *asset == AssetInfo::native(DENOM))
            .map(|(_, amount)| amount)
            .sum();
        let requests: RequestsResponse = q
            .query_wasm_smart(
                &self.w.payout,
                &payout::QueryMsg::Requests {
                    status: None,
                    payer: None,
                    start_after: None,
                    limit: Some(100),
                },
            )
            .unwrap();
        let escrow: u128 = requests
            .requests
            .iter()
            .filter(|r: &&InferenceRequest| {
                !matches!(r.status, RequestStatus::Finalized | RequestStatus::Refunded)
            })
            .map(|r| r.price.amount.u128())
            .sum();
        bonded + challenged + claimable + escrow
    }
}

#[test]
fn bonds_challenges_and_slashing_never_create_or_destroy_funds() {
    let mut runner = TestRunner::new(Config {
        cases: 200,
        ..Config::default()
    });
    let seen = std::cell::RefCell::new(Vec::new());
    runner
        .run(&prop::collection::vec(step(), 20..120), |steps| {
            let mut run = Run::new();
            for (i, step) in steps.iter().enumerate() {
                run.apply(step);
                let held = run.w.native_balance(&run.w.payout.clone());
                let owed = run.owed();
                prop_assert_eq!(held, owed, "after step {} ({:?})", i, step);
            }
            seen.borrow_mut().extend(run.outcomes());
            Ok(())
        })
        .unwrap();
    // The sequences reached every outcome, slashing included, not only failed messages.
    let seen = seen.into_inner();
    for outcome in [
        ChallengeOutcome::Upheld,
        ChallengeOutcome::Rejected,
        ChallengeOutcome::Refunded,
    ] {
        assert!(seen.contains(&outcome), "no {outcome:?} among {seen:?}");
    }
}
