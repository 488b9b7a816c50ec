//! What a paid request is guaranteed whatever happens around it: its rules are fixed when it is
//! paid, the contributors' share reaches contributors, a served request is settled rather than
//! refunded, and a failing peer contract cannot lock anyone's funds.

mod common;

use common::*;
use cosmwasm_std::Addr;
use tributary_payout::error::ContractError;
use tributary_types::payout::{self, LineageVersion, RequestStatus, RequestTerms};
use tributary_types::AssetInfo;

const PRICE: u128 = 10_000;

fn err_of(result: cw_multi_test::error::AnyResult<cw_multi_test::AppResponse>) -> ContractError {
    contract_err(result.expect_err("the message should fail"))
}

fn native(amount: u128) -> Vec<(AssetInfo, u128)> {
    vec![(AssetInfo::native(DENOM), amount)]
}

/// A world with a native model whose version 1 has the first `attestors` attestors and
/// `quorum`, and one paid request (id 1).
fn paid(attestors: usize, quorum: u32) -> (World, u64) {
    let mut w = World::new();
    let model = w.native_model(PRICE, attestors, quorum);
    let payer = w.payers[0].clone();
    assert_eq!(w.paid_request(&payer, model, PRICE), 1);
    (w, model)
}

// ---------------------------------------------------------------- the rules are fixed at payment

#[test]
fn an_attestor_added_after_payment_cannot_commit() {
    let (mut w, model) = paid(2, 2);
    let set: Vec<Addr> = w.attestors[..3].to_vec();
    w.set_attestors(model, 1, &set, 2);
    let newcomer = w.attestors[2].clone();
    let packet = w.packet(1, model, 1, &[(w.accepted[0], 10_000)]);
    assert_eq!(
        err_of(w.commit(&newcomer, vec![packet])),
        ContractError::UnauthorizedAttestor {
            attestor: newcomer,
            model_id: model,
            version: 1
        }
    );
}

#[test]
fn an_attestor_removed_after_payment_still_counts_and_is_paid() {
    let (mut w, model) = paid(2, 2);
    let [a, removed, replacement] = [0, 1, 2].map(|i| w.attestors[i].clone());
    w.set_attestors(model, 1, &[a.clone(), replacement], 2);
    let packet = w.packet(1, model, 1, &[(w.accepted[0], 10_000)]);
    w.commit(&a, vec![packet.clone()]).unwrap();
    w.commit(&removed, vec![packet]).unwrap();
    assert_eq!(w.request_state(1).status, RequestStatus::Attested);
    w.advance(WINDOW);
    w.finalize(vec![1]).unwrap();
    // 10_000 at 10% for operators, split between the two who did the work.
    assert_eq!(w.claimable(&a), native(500));
    assert_eq!(w.claimable(&removed), native(500));
}

#[test]
fn a_quorum_raised_after_payment_cannot_clear_an_agreed_packet() {
    let (mut w, model) = paid(3, 2);
    let [a, b, c] = [0, 1, 2].map(|i| w.attestors[i].clone());
    let agreed = w.packet(1, model, 1, &[(w.accepted[0], 10_000)]);
    let other = w.packet(1, model, 1, &[(w.accepted[1], 10_000)]);
    w.commit(&a, vec![agreed.clone()]).unwrap();
    w.commit(&b, vec![agreed.clone()]).unwrap();
    let attested = w.request_state(1);
    w.set_attestors(model, 1, &[a, b, c.clone()], 3);
    w.commit(&c, vec![other]).unwrap();
    let disputed = w.request_state(1);
    assert_eq!(disputed.status, RequestStatus::Disputed);
    assert_eq!(disputed.agreed_packet, attested.agreed_packet);
    assert_eq!(disputed.finalizable_at, attested.finalizable_at);
    w.advance(WINDOW);
    w.finalize(vec![1]).unwrap();
    assert_eq!(w.request_state(1).status, RequestStatus::Finalized);
}

#[test]
fn a_quorum_lowered_after_payment_does_not_let_one_vote_decide() {
    let (mut w, model) = paid(2, 2);
    let set: Vec<Addr> = w.attestors[..2].to_vec();
    w.set_attestors(model, 1, &set, 1);
    let packet = w.packet(1, model, 1, &[(w.accepted[0], 10_000)]);
    w.commit(&set[0], vec![packet]).unwrap();
    let request = w.request_state(1);
    assert_eq!(request.status, RequestStatus::Open);
    assert_eq!(request.agreed_packet, None);
}

#[test]
fn deprecating_a_version_after_payment_changes_nothing_for_the_request() {
    let (mut w, model) = paid(2, 2);
    w.deprecate(model, 1);
    let packet = w.packet(1, model, 1, &[(w.accepted[0], 10_000)]);
    for attestor in [w.attestors[0].clone(), w.attestors[1].clone()] {
        w.commit(&attestor, vec![packet.clone()]).unwrap();
    }
    w.advance(WINDOW);
    w.finalize(vec![1]).unwrap();
    assert_eq!(w.request_state(1).status, RequestStatus::Finalized);
}

#[test]
fn the_terms_of_a_request_are_those_of_the_version_when_it_was_paid() {
    let (mut w, model) = paid(2, 2);
    let later: Vec<Addr> = w.attestors[2..4].to_vec();
    w.set_attestors(model, 1, &later, 1);
    let terms: RequestTerms = w
        .app
        .wrap()
        .query_wasm_smart(&w.payout, &payout::QueryMsg::Terms { request_id: 1 })
        .unwrap();
    let label = format!("model-{model}-v1");
    assert_eq!(terms.attestors, w.attestors[..2].to_vec());
    assert_eq!(terms.quorum, 2);
    assert_eq!(terms.developer, w.developer);
    assert_eq!(terms.method_id, METHOD);
    assert_eq!(terms.params_hash, h(&format!("{label}-params")));
    assert_eq!(terms.weights_hash, h(&format!("{label}-weights")));
    assert_eq!(
        terms.lineage,
        vec![LineageVersion {
            root: w.root.clone(),
            contributions: w.accepted.len() as u64,
        }]
    );
    assert_eq!(terms.price, w.request_state(1).price);
    assert_eq!(terms.split, default_split());
    assert_eq!(terms.challenge_window_seconds, WINDOW);
}
