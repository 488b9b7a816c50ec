//! Open verification against the real contracts: bonds, a challenge of an agreed packet, the
//! reveal of the prompt and completion, the committee's vote and what each outcome pays.

mod common;

use common::*;
use cosmwasm_std::{coins, Addr, HexBinary, Uint128};
use cw_multi_test::error::AnyResult;
use cw_multi_test::{AppResponse, BankSudo, Executor, SudoMsg};
use tributary_payout::error::ContractError;
use tributary_types::payout::{self, RequestStatus};
use tributary_types::verification::{
    BondInfo, ChallengeInfo, ChallengeOutcome, ChallengePhase, VerificationParams,
};
use tributary_types::{AssetInfo, AttributionPacket};

const PRICE: u128 = 10_000;
const BOND: u128 = 2_000_000;
const CHALLENGE_BOND: u128 = 1_000_000;
const REWARD: u128 = 100_000;
const REVEAL: u64 = 600;
const VOTE: u64 = 600;
const UNBONDING: u64 = 10_000;

fn err_of(result: AnyResult<AppResponse>) -> ContractError {
    contract_err(result.expect_err("the message should fail"))
}

fn params() -> VerificationParams {
    VerificationParams {
        bond_denom: DENOM.into(),
        min_verifier_bond: Uint128::new(BOND),
        min_attestor_bond: Uint128::zero(),
        unbonding_seconds: UNBONDING,
        challenge_bond: Uint128::new(CHALLENGE_BOND),
        committee_size: 3,
        reveal_seconds: REVEAL,
        vote_seconds: VOTE,
        slash_bps: 5000,
        vote_reward: Uint128::new(REWARD),
    }
}

/// A world with these parameters, `verifiers` funded accounts, a model with one attestor
/// (quorum 1) and one paid request (id 1).
struct Dispute {
    w: World,
    model: u64,
    verifiers: Vec<Addr>,
}

impl Dispute {
    fn new(verifiers: usize, params: VerificationParams) -> Self {
        let mut w = World::new();
        let admin = w.admin.clone();
        w.execute_payout(&admin, &payout::ExecuteMsg::UpdateVerification { params })
            .unwrap();
        let verifiers: Vec<Addr> = (0..verifiers)
            .map(|i| w.app.api().addr_make(&format!("verifier-{i}")))
            .collect();
        for who in verifiers.iter().chain(&w.attestors) {
            w.app
                .sudo(SudoMsg::Bank(BankSudo::Mint {
                    to_address: who.to_string(),
                    amount: coins(10 * BOND, DENOM),
                }))
                .unwrap();
        }
        let model = w.native_model(PRICE, 1, 1);
        let payer = w.payers[0].clone();
        assert_eq!(w.paid_request(&payer, model, PRICE), 1);
        let mut d = Dispute {
            w,
            model,
            verifiers,
        };
        for v in d.verifiers.clone() {
            d.bond(&v, BOND).unwrap();
        }
        d
    }

    fn attestor(&self) -> Addr {
        self.w.attestors[0].clone()
    }

    fn bond(&mut self, who: &Addr, amount: u128) -> AnyResult<AppResponse> {
        self.w.app.execute_contract(
            who.clone(),
            self.w.payout.clone(),
            &payout::ExecuteMsg::Bond {},
            &coins(amount, DENOM),
        )
    }

    /// The packet the model's honest attestors compute (all weight on the first contribution).
    fn honest(&self) -> AttributionPacket {
        self.w
            .packet(1, self.model, 1, &[(self.w.accepted[0], 10_000)])
    }

    /// A packet that pays the second contribution instead.
    fn forged(&self) -> AttributionPacket {
        self.w
            .packet(1, self.model, 1, &[(self.w.accepted[1], 10_000)])
    }

    fn challenge(&mut self, who: &Addr, packet: AttributionPacket) -> AnyResult<AppResponse> {
        self.challenge_with(who, packet, CHALLENGE_BOND)
    }

    fn challenge_with(
        &mut self,
        who: &Addr,
        packet: AttributionPacket,
        bond: u128,
    ) -> AnyResult<AppResponse> {
        self.w.app.execute_contract(
            who.clone(),
            self.w.payout.clone(),
            &payout::ExecuteMsg::Challenge {
                request_id: 1,
                packet,
            },
            &coins(bond, DENOM),
        )
    }

    fn reveal(&mut self, prompt: &str, completion: &str) -> AnyResult<AppResponse> {
        let anyone = self.w.app.api().addr_make("anyone");
        self.w.execute_payout(
            &anyone,
            &payout::ExecuteMsg::RevealInputs {
                request_id: 1,
                prompt: prompt.into(),
                completion: HexBinary::from(completion.as_bytes()),
            },
        )
    }

    fn vote(&mut self, who: &Addr, packet: &AttributionPacket) -> AnyResult<AppResponse> {
        let packet_hash = HexBinary::from(packet.packet_hash().unwrap().as_slice());
        self.w.execute_payout(
            who,
            &payout::ExecuteMsg::Vote {
                request_id: 1,
                packet_hash,
            },
        )
    }

    fn resolve(&mut self) -> AnyResult<AppResponse> {
        let anyone = self.w.app.api().addr_make("anyone");
        self.w
            .execute_payout(&anyone, &payout::ExecuteMsg::Resolve { request_id: 1 })
    }

    fn challenge_state(&self) -> ChallengeInfo {
        let challenge: Option<ChallengeInfo> = self
            .w
            .app
            .wrap()
            .query_wasm_smart(
                &self.w.payout,
                &payout::QueryMsg::ChallengeOf { request_id: 1 },
            )
            .unwrap();
        challenge.expect("request 1 was challenged")
    }

    fn bond_of(&self, who: &Addr) -> BondInfo {
        self.w
            .app
            .wrap()
            .query_wasm_smart(
                &self.w.payout,
                &payout::QueryMsg::BondOf {
                    address: who.to_string(),
                },
            )
            .unwrap()
    }

    fn claimable(&self, who: &Addr) -> u128 {
        self.w
            .claimable(who)
            .into_iter()
            .filter(|(asset, _)| *asset == AssetInfo::native(DENOM))
            .map(|(_, amount)| amount)
            .sum()
    }
}

/// The prompt every request of the common world commits to (its hash is `h("prompt")`).
const PROMPT: &str = "prompt";
/// The completion the common world's packets for request 1 name (`h("output-1")`).
const COMPLETION: &str = "output-1";

#[test]
fn a_forged_packet_is_overturned_and_its_attestor_slashed() {
    let mut d = Dispute::new(4, params());
    let attestor = d.attestor();
    d.bond(&attestor, BOND).unwrap();
    let (forged, honest) = (d.forged(), d.honest());
    d.w.commit(&attestor, vec![forged.clone()]).unwrap();
    assert_eq!(d.w.request_state(1).status, RequestStatus::Attested);

    let challenger = d.verifiers[0].clone();
    d.challenge(&challenger, honest.clone()).unwrap();
    assert_eq!(d.w.request_state(1).status, RequestStatus::Challenged);
    // Nothing settles or changes a challenged request but its resolution.
    assert_eq!(
        err_of(d.w.finalize(vec![1])),
        ContractError::RequestChallenged { id: 1 }
    );
    assert_eq!(
        err_of(d.w.commit(&attestor, vec![honest.clone()])),
        ContractError::RequestChallenged { id: 1 }
    );
    assert!(matches!(
        err_of(d.w.refund(1)),
        ContractError::NotExpired { id: 1, .. }
    ));

    d.reveal(PROMPT, COMPLETION).unwrap();
    let drawn = d.challenge_state();
    assert_eq!(drawn.phase, ChallengePhase::Voting);
    // Three eligible verifiers (the challenger excluded) for a committee of three.
    let mut committee = drawn.committee.clone();
    committee.sort();
    let mut others = d.verifiers[1..].to_vec();
    others.sort();
    assert_eq!(committee, others);
    for member in &drawn.committee {
        d.vote(member, &honest).unwrap();
    }
    d.resolve().unwrap();
    let resolved = d.challenge_state();
    assert_eq!(resolved.outcome, Some(ChallengeOutcome::Upheld));

    // Half of the attestor's bond is taken: 1 000 000. Three rewards of 100 000 leave
    // 700 000, half of which goes to the challenger and the rest to the treasury.
    let slashed = BOND / 2;
    assert_eq!(resolved.slashed.u128(), slashed);
    assert_eq!(d.bond_of(&attestor).active.u128(), BOND - slashed);
    let rest = slashed - 3 * REWARD;
    for member in &drawn.committee {
        assert_eq!(d.claimable(member), REWARD);
    }

    // The honest packet settles the request at once, its challenger in the operator's place.
    let request = d.w.request_state(1);
    assert_eq!(request.status, RequestStatus::Attested);
    assert_eq!(
        request.agreed_packet,
        Some(HexBinary::from(honest.packet_hash().unwrap().as_slice()))
    );
    d.w.finalize(vec![1]).unwrap();
    // Split 70/15/10/5 of 10 000: contributors 7 000, developer 1 500, operators 1 000,
    // protocol 500.
    let paid_contributor = d.w.contributors[0].clone();
    let forged_contributor = d.w.contributors[1].clone();
    assert_eq!(d.claimable(&paid_contributor), 7_000);
    assert_eq!(d.claimable(&forged_contributor), 0);
    assert_eq!(d.claimable(&attestor), 0);
    assert_eq!(d.claimable(&challenger), CHALLENGE_BOND + rest / 2 + 1_000);
    let treasury = d.w.treasury.clone();
    assert_eq!(d.claimable(&treasury), rest - rest / 2 + 500);
}

#[test]
fn a_frivolous_challenge_forfeits_its_bond() {
    let mut d = Dispute::new(4, params());
    let attestor = d.attestor();
    let (honest, forged) = (d.honest(), d.forged());
    d.w.commit(&attestor, vec![honest.clone()]).unwrap();
    let challenger = d.verifiers[0].clone();
    let before = d.w.native_balance(&challenger);
    d.challenge(&challenger, forged).unwrap();
    assert_eq!(d.w.native_balance(&challenger), before - CHALLENGE_BOND);
    d.reveal(PROMPT, COMPLETION).unwrap();
    for member in d.challenge_state().committee {
        d.vote(&member, &honest).unwrap();
    }
    d.resolve().unwrap();
    assert_eq!(
        d.challenge_state().outcome,
        Some(ChallengeOutcome::Rejected)
    );
    // The challenge bond pays three rewards (300 000); half of the remaining 700 000 goes to
    // the attestor that was right, the rest to the treasury.
    let rest = CHALLENGE_BOND - 3 * REWARD;
    d.w.finalize(vec![1]).unwrap();
    assert_eq!(d.w.request_state(1).status, RequestStatus::Finalized);
    assert_eq!(d.claimable(&attestor), rest / 2 + 1_000);
    assert_eq!(d.claimable(&challenger), 0);
    assert_eq!(d.bond_of(&challenger).active.u128(), BOND);
    let treasury = d.w.treasury.clone();
    assert_eq!(d.claimable(&treasury), rest - rest / 2 + 500);
    let contributor = d.w.contributors[0].clone();
    assert_eq!(d.claimable(&contributor), 7_000);
}

#[test]
fn a_member_who_does_not_vote_gets_no_reward() {
    let mut d = Dispute::new(4, params());
    let attestor = d.attestor();
    d.bond(&attestor, BOND).unwrap();
    let (honest, forged) = (d.honest(), d.forged());
    d.w.commit(&attestor, vec![forged]).unwrap();
    d.challenge(&d.verifiers[0].clone(), honest.clone())
        .unwrap();
    d.reveal(PROMPT, COMPLETION).unwrap();
    let committee = d.challenge_state().committee;
    d.vote(&committee[0], &honest).unwrap();
    d.vote(&committee[1], &honest).unwrap();
    // Not every member voted and the period is open: not yet.
    assert!(matches!(
        err_of(d.resolve()),
        ContractError::NotResolvable { request_id: 1, .. }
    ));
    d.w.advance(VOTE);
    assert!(matches!(
        err_of(d.vote(&committee[2], &honest)),
        ContractError::VoteClosed { request_id: 1, .. }
    ));
    d.resolve().unwrap();
    assert_eq!(d.challenge_state().outcome, Some(ChallengeOutcome::Upheld));
    assert_eq!(d.claimable(&committee[0]), REWARD);
    assert_eq!(d.claimable(&committee[1]), REWARD);
    assert_eq!(d.claimable(&committee[2]), 0);
}

#[test]
fn without_a_committee_the_request_is_refunded_and_nobody_slashed() {
    // Two verifiers: once the challenger is excluded, one is left for a committee of three.
    let mut d = Dispute::new(2, params());
    let attestor = d.attestor();
    d.bond(&attestor, BOND).unwrap();
    let (honest, forged) = (d.honest(), d.forged());
    d.w.commit(&attestor, vec![forged]).unwrap();
    let challenger = d.verifiers[0].clone();
    let payer = d.w.payers[0].clone();
    let paid = d.w.native_balance(&payer);
    d.challenge(&challenger, honest).unwrap();
    let response = d.reveal(PROMPT, COMPLETION).unwrap();
    assert_eq!(attr(&response, "committee").as_deref(), Some("unavailable"));
    assert_eq!(
        d.challenge_state().outcome,
        Some(ChallengeOutcome::Refunded)
    );
    assert_eq!(d.w.request_state(1).status, RequestStatus::Refunded);
    assert_eq!(d.w.native_balance(&payer), paid + PRICE);
    assert_eq!(d.claimable(&challenger), CHALLENGE_BOND);
    assert_eq!(d.bond_of(&attestor).active.u128(), BOND);
}

#[test]
fn inputs_never_revealed_refund_the_request() {
    let mut d = Dispute::new(4, params());
    let attestor = d.attestor();
    let (honest, forged) = (d.honest(), d.forged());
    d.w.commit(&attestor, vec![forged]).unwrap();
    let challenger = d.verifiers[0].clone();
    d.challenge(&challenger, honest).unwrap();
    assert!(matches!(
        err_of(d.resolve()),
        ContractError::NotResolvable { request_id: 1, .. }
    ));
    d.w.advance(REVEAL);
    assert!(matches!(
        err_of(d.reveal(PROMPT, COMPLETION)),
        ContractError::RevealClosed { request_id: 1, .. }
    ));
    d.resolve().unwrap();
    assert_eq!(d.w.request_state(1).status, RequestStatus::Refunded);
    assert_eq!(d.claimable(&challenger), CHALLENGE_BOND);
}

#[test]
fn a_split_committee_refunds_the_request() {
    let mut d = Dispute::new(4, params());
    let attestor = d.attestor();
    let (honest, forged) = (d.honest(), d.forged());
    d.w.commit(&attestor, vec![forged.clone()]).unwrap();
    d.challenge(&d.verifiers[0].clone(), honest.clone())
        .unwrap();
    d.reveal(PROMPT, COMPLETION).unwrap();
    let committee = d.challenge_state().committee;
    d.vote(&committee[0], &honest).unwrap();
    d.vote(&committee[1], &forged).unwrap();
    d.w.advance(VOTE);
    d.resolve().unwrap();
    assert_eq!(
        d.challenge_state().outcome,
        Some(ChallengeOutcome::Refunded)
    );
    assert_eq!(d.w.request_state(1).status, RequestStatus::Refunded);
}

#[test]
fn who_may_challenge_and_with_what() {
    let mut d = Dispute::new(4, params());
    let attestor = d.attestor();
    let (honest, forged) = (d.honest(), d.forged());
    // Nothing agreed yet.
    let verifier = d.verifiers[0].clone();
    assert!(matches!(
        err_of(d.challenge(&verifier, honest.clone())),
        ContractError::NotChallengeable { id: 1, .. }
    ));
    d.w.commit(&attestor, vec![forged.clone()]).unwrap();
    // The attestor and the developer are parties.
    d.bond(&attestor, BOND).unwrap();
    assert_eq!(
        err_of(d.challenge(&attestor, honest.clone())),
        ContractError::PartyCannotChallenge {
            request_id: 1,
            sender: attestor.clone()
        }
    );
    let developer = d.w.developer.clone();
    d.w.app
        .sudo(SudoMsg::Bank(BankSudo::Mint {
            to_address: developer.to_string(),
            amount: coins(10 * BOND, DENOM),
        }))
        .unwrap();
    d.bond(&developer, BOND).unwrap();
    assert!(matches!(
        err_of(d.challenge(&developer, honest.clone())),
        ContractError::PartyCannotChallenge { .. }
    ));
    // An unbonded account, a wrong bond, the agreed packet itself, another completion.
    let stranger = d.w.payers[1].clone();
    assert!(matches!(
        err_of(d.challenge(&stranger, honest.clone())),
        ContractError::NotBonded { .. }
    ));
    assert!(matches!(
        err_of(d.challenge_with(&verifier, honest.clone(), CHALLENGE_BOND - 1)),
        ContractError::WrongChallengeBond { .. }
    ));
    assert_eq!(
        err_of(d.challenge(&verifier, forged.clone())),
        ContractError::ChallengeRepeatsAgreedPacket
    );
    let mut elsewhere = honest.clone();
    elsewhere.output_hash = h("another completion");
    assert_eq!(
        err_of(d.challenge(&verifier, elsewhere)),
        ContractError::ChallengeOtherCompletion
    );
    // A packet naming a contribution outside the lineage fails like a commit would.
    let mut outside = honest.clone();
    outside.entries[0].contribution_id = d.w.rejected;
    assert!(matches!(
        err_of(d.challenge(&verifier, outside)),
        ContractError::ContributionNotInLineage { .. }
    ));

    d.challenge(&verifier, honest.clone()).unwrap();
    assert_eq!(
        err_of(d.challenge(&d.verifiers[1].clone(), honest.clone())),
        ContractError::AlreadyChallenged { id: 1 }
    );
    // The prompt and completion must be the ones committed.
    assert_eq!(
        err_of(d.reveal("another prompt", COMPLETION)),
        ContractError::InputMismatch { what: "prompt" }
    );
    assert_eq!(
        err_of(d.reveal(PROMPT, "another completion")),
        ContractError::InputMismatch { what: "completion" }
    );
    d.reveal(PROMPT, COMPLETION).unwrap();
    let committee = d.challenge_state().committee;
    assert!(matches!(
        err_of(d.vote(&verifier, &honest)),
        ContractError::NotOnCommittee { .. }
    ));
    d.vote(&committee[0], &honest).unwrap();
    assert!(matches!(
        err_of(d.vote(&committee[0], &honest)),
        ContractError::AlreadyVoted { .. }
    ));
    let third = d.w.packet(1, d.model, 1, &[(d.w.accepted[2], 10_000)]);
    assert_eq!(
        err_of(d.vote(&committee[1], &third)),
        ContractError::VoteForOtherPacket
    );
}

#[test]
fn the_challenge_window_bounds_challenges() {
    let mut d = Dispute::new(4, params());
    let attestor = d.attestor();
    let (honest, forged) = (d.honest(), d.forged());
    d.w.commit(&attestor, vec![forged]).unwrap();
    d.w.advance(WINDOW);
    assert!(matches!(
        err_of(d.challenge(&d.verifiers[0].clone(), honest)),
        ContractError::ChallengeWindowClosed { id: 1, .. }
    ));
    d.w.finalize(vec![1]).unwrap();
}

#[test]
fn attestors_must_bond_where_the_contract_asks_it() {
    let mut d = Dispute::new(
        0,
        VerificationParams {
            min_attestor_bond: Uint128::new(BOND),
            ..params()
        },
    );
    let attestor = d.attestor();
    let honest = d.honest();
    assert!(matches!(
        err_of(d.w.commit(&attestor, vec![honest.clone()])),
        ContractError::NotBonded {
            action: "attest",
            ..
        }
    ));
    d.bond(&attestor, BOND).unwrap();
    d.w.commit(&attestor, vec![honest]).unwrap();
}

#[test]
fn unbonding_waits_and_stays_slashable() {
    let mut d = Dispute::new(4, params());
    let attestor = d.attestor();
    d.bond(&attestor, BOND).unwrap();
    let (honest, forged) = (d.honest(), d.forged());
    d.w.commit(&attestor, vec![forged]).unwrap();
    // The attestor tries to leave with its bond right after committing the forged packet.
    let unbond = |d: &mut Dispute, amount: u128| {
        d.w.execute_payout(
            &attestor,
            &payout::ExecuteMsg::Unbond {
                amount: Uint128::new(amount),
            },
        )
    };
    assert!(matches!(
        err_of(unbond(&mut d, BOND + 1)),
        ContractError::InsufficientBond { .. }
    ));
    unbond(&mut d, BOND).unwrap();
    let withdraw = |d: &mut Dispute| {
        d.w.execute_payout(&attestor, &payout::ExecuteMsg::WithdrawUnbonded {})
    };
    assert!(matches!(
        err_of(withdraw(&mut d)),
        ContractError::StillUnbonding { .. }
    ));
    d.challenge(&d.verifiers[0].clone(), honest.clone())
        .unwrap();
    d.reveal(PROMPT, COMPLETION).unwrap();
    for member in d.challenge_state().committee {
        d.vote(&member, &honest).unwrap();
    }
    d.resolve().unwrap();
    let bond = d.bond_of(&attestor);
    assert_eq!(bond.active.u128(), 0);
    assert_eq!(bond.unbonding.u128(), BOND / 2);
    d.w.advance(UNBONDING);
    let before = d.w.native_balance(&attestor);
    withdraw(&mut d).unwrap();
    assert_eq!(d.w.native_balance(&attestor), before + BOND / 2);
    assert!(matches!(
        err_of(withdraw(&mut d)),
        ContractError::NothingUnbonding { .. }
    ));
}

#[test]
fn bonds_take_the_bond_denom_and_a_first_bond_its_minimum() {
    let mut d = Dispute::new(0, params());
    let who = d.w.payers[1].clone();
    assert!(matches!(
        err_of(d.bond(&who, BOND - 1)),
        ContractError::BondTooSmall { .. }
    ));
    assert!(matches!(
        err_of(d.w.app.execute_contract(
            who.clone(),
            d.w.payout.clone(),
            &payout::ExecuteMsg::Bond {},
            &coins(BOND, "uatom"),
        )),
        ContractError::WrongBondFunds { .. }
    ));
    d.bond(&who, BOND).unwrap();
    // Topping up has no minimum.
    d.bond(&who, 1).unwrap();
    assert_eq!(d.bond_of(&who).active.u128(), BOND + 1);
}

#[test]
fn verification_parameters_are_checked() {
    let mut d = Dispute::new(0, params());
    let admin = d.w.admin.clone();
    let bad = [
        VerificationParams {
            committee_size: 2,
            ..params()
        },
        VerificationParams {
            slash_bps: 10_001,
            ..params()
        },
        VerificationParams {
            unbonding_seconds: WINDOW,
            ..params()
        },
        VerificationParams {
            challenge_bond: Uint128::zero(),
            ..params()
        },
    ];
    for params in bad {
        assert!(matches!(
            err_of(d.w.execute_payout(&admin, &payout::ExecuteMsg::UpdateVerification { params })),
            ContractError::InvalidVerification { .. }
        ));
    }
    let stranger = d.w.payers[0].clone();
    assert!(matches!(
        err_of(d.w.execute_payout(
            &stranger,
            &payout::ExecuteMsg::UpdateVerification { params: params() }
        )),
        ContractError::Unauthorized { .. }
    ));
}

#[test]
fn a_late_attestor_cannot_undo_a_committees_result() {
    // Two attestors, quorum 1: the first commits a forged packet, which is overturned; the
    // second, committing the forged packet afterwards, would otherwise make it agreed again.
    let mut w = World::new();
    let admin = w.admin.clone();
    w.execute_payout(
        &admin,
        &payout::ExecuteMsg::UpdateVerification { params: params() },
    )
    .unwrap();
    let model = w.native_model(PRICE, 2, 1);
    let payer = w.payers[0].clone();
    assert_eq!(w.paid_request(&payer, model, PRICE), 1);
    let verifiers: Vec<Addr> = (0..4)
        .map(|i| w.app.api().addr_make(&format!("verifier-{i}")))
        .collect();
    let mut d = Dispute {
        w,
        model,
        verifiers: verifiers.clone(),
    };
    for v in &verifiers {
        d.w.app
            .sudo(SudoMsg::Bank(BankSudo::Mint {
                to_address: v.to_string(),
                amount: coins(10 * BOND, DENOM),
            }))
            .unwrap();
        d.bond(v, BOND).unwrap();
    }
    let (forged, honest) = (d.forged(), d.honest());
    let (first, second) = (d.w.attestors[0].clone(), d.w.attestors[1].clone());
    d.w.commit(&first, vec![forged.clone()]).unwrap();
    d.challenge(&verifiers[0], honest.clone()).unwrap();
    d.reveal(PROMPT, COMPLETION).unwrap();
    for member in d.challenge_state().committee {
        d.vote(&member, &honest).unwrap();
    }
    d.resolve().unwrap();
    assert_eq!(
        err_of(d.w.commit(&second, vec![forged])),
        ContractError::RequestChallenged { id: 1 }
    );
    assert_eq!(
        d.w.request_state(1).agreed_packet,
        Some(HexBinary::from(honest.packet_hash().unwrap().as_slice()))
    );
    d.w.finalize(vec![1]).unwrap();
    assert_eq!(d.claimable(&d.w.contributors[0].clone()), 7_000);
}
