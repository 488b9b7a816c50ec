//! What a paid request is guaranteed whatever happens around it: its rules are fixed when it is
//! paid, the contributors' share reaches contributors, a served request is settled rather than
//! refunded, and a failing peer contract cannot lock anyone's funds.

mod common;

use common::*;
use cosmwasm_std::{coins, to_json_binary, Addr, Uint128};
use cw_multi_test::{BankSudo, Executor, SudoMsg};
use cw_utils::PaymentError;
use tributary_payout::error::ContractError;
use tributary_types::packet::PacketError;
use tributary_types::payout::{
    self, LineageVersion, Pool, PoolsResponse, RequestStatus, RequestTerms, MAX_POOL_CLAIMS,
};
use tributary_types::{datanet, registry, AssetInfo, Price};

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

// ---------------------------------------------------------------- the contributors' share

#[test]
fn a_packet_whose_weights_sum_below_10000_is_refused() {
    let (mut w, model) = paid(2, 2);
    let attestor = w.attestors[0].clone();
    let light = w.packet(
        1,
        model,
        1,
        &[(w.accepted[0], 6_000), (w.accepted[1], 3_999)],
    );
    assert_eq!(
        err_of(w.commit(&attestor, vec![light])),
        ContractError::Packet(PacketError::WeightsSum { sum: 9_999 })
    );
}

#[test]
fn a_packet_with_no_entries_pays_the_developer_only_its_own_share() {
    let (mut w, model) = paid(1, 1);
    let attestor = w.attestors[0].clone();
    w.commit(&attestor, vec![w.packet(1, model, 1, &[])])
        .unwrap();
    w.advance(WINDOW);
    w.finalize(vec![1]).unwrap();
    // 10_000 at 70/15/10/5.
    assert_eq!(w.claimable(&w.developer.clone()), native(1_500));
    assert_eq!(w.claimable(&w.treasury.clone()), native(500));
    assert_eq!(w.claimable(&attestor), native(1_000));
    let settlement = w.request_state(1).settlement.unwrap();
    assert_eq!(settlement.unattributed, Uint128::new(7_000));
    assert!(settlement.contributions.is_empty());
}

#[test]
fn the_contributors_share_of_a_packet_without_entries_is_claimed_by_the_versions_contributors() {
    let (mut w, model) = paid(1, 1);
    let attestor = w.attestors[0].clone();
    w.commit(&attestor, vec![w.packet(1, model, 1, &[])])
        .unwrap();
    w.advance(WINDOW);
    w.finalize(vec![1]).unwrap();
    let utrib = AssetInfo::native(DENOM);
    assert_eq!(
        pools(&w, &w.root.clone()),
        vec![Pool {
            datanet_id: w.root.datanet_id,
            version: w.root.version,
            asset: utrib.clone(),
            contributions: 4,
            total: Uint128::new(7_000),
            distributed: Uint128::zero(),
        }]
    );
    assert_eq!(pool_owed(&w, &utrib, w.accepted[2]), 1_750);
    // Anyone may credit the contributors; contributor 0 holds two of the four contributions.
    let keeper = w.payers[2].clone();
    let accepted = w.accepted.clone();
    claim_pool(&mut w, &keeper, &utrib, &accepted[..1]).unwrap();
    claim_pool(&mut w, &keeper, &utrib, &accepted).unwrap();
    let [c0, c1, c2] = [0, 1, 2].map(|i| w.contributors[i].clone());
    assert_eq!(w.claimable(&c0), native(3_500));
    assert_eq!(w.claimable(&c1), native(1_750));
    assert_eq!(w.claimable(&c2), native(1_750));
    assert!(w.claimable(&keeper).is_empty());
    assert_eq!(
        pools(&w, &w.root.clone())[0].distributed,
        Uint128::new(7_000)
    );
    assert_eq!(pool_owed(&w, &utrib, w.accepted[2]), 0);
    assert_eq!(
        err_of(claim_pool(&mut w, &keeper, &utrib, &accepted)),
        ContractError::NothingToClaim
    );
    let before = w.native_balance(&c1);
    w.claim(&c1).unwrap();
    assert_eq!(w.native_balance(&c1), before + 1_750);
}

#[test]
fn only_the_versions_accepted_contributions_share_its_pool() {
    let (mut w, model) = paid(1, 1);
    let attestor = w.attestors[0].clone();
    w.commit(&attestor, vec![w.packet(1, model, 1, &[])])
        .unwrap();
    w.advance(WINDOW);
    w.finalize(vec![1]).unwrap();
    let keeper = w.payers[2].clone();
    let utrib = AssetInfo::native(DENOM);
    let (datanet_id, version) = (w.root.datanet_id, w.root.version);
    for outside in [w.rejected, w.pending, w.late, w.foreign, 999] {
        let ids = [w.accepted[0], outside];
        assert_eq!(
            err_of(claim_pool(&mut w, &keeper, &utrib, &ids)),
            ContractError::ContributionNotInPool {
                contribution_id: outside,
                datanet_id,
                version
            },
            "contribution {outside}"
        );
    }
    let uatom = AssetInfo::native("uatom");
    let ids = [w.accepted[0]];
    assert_eq!(
        err_of(claim_pool(&mut w, &keeper, &uatom, &ids)),
        ContractError::UnknownPool {
            datanet_id,
            version,
            asset: uatom.clone()
        }
    );
    assert_eq!(
        err_of(claim_pool(&mut w, &keeper, &utrib, &[])),
        ContractError::EmptyBatch
    );
    let many = vec![w.accepted[0]; MAX_POOL_CLAIMS + 1];
    assert_eq!(
        err_of(claim_pool(&mut w, &keeper, &utrib, &many)),
        ContractError::BatchTooLarge {
            count: MAX_POOL_CLAIMS + 1,
            max: MAX_POOL_CLAIMS
        }
    );
}

#[test]
fn pool_remainders_stay_with_the_versions_contributors_across_requests() {
    let mut w = World::new();
    let model = w.native_model(10_003, 1, 1);
    let payer = w.payers[0].clone();
    let attestor = w.attestors[0].clone();
    let keeper = w.payers[2].clone();
    let utrib = AssetInfo::native(DENOM);
    let accepted = w.accepted.clone();
    // Each request leaves 10_003 - 500 - 1_000 - 1_500 = 7_003 to the pool of 4 contributions.
    let mut credited = 0;
    for round in 1..=3u64 {
        let id = w.paid_request(&payer, model, 10_003);
        w.commit(&attestor, vec![w.packet(id, model, 1, &[])])
            .unwrap();
        w.advance(WINDOW);
        w.finalize(vec![id]).unwrap();
        assert_eq!(
            w.claimable(&w.developer.clone()),
            native(1_500 * round as u128)
        );
        // Only the first contribution claims in the first rounds; the others catch up.
        let ids = if round < 3 {
            &accepted[..1]
        } else {
            &accepted[..]
        };
        claim_pool(&mut w, &keeper, &utrib, ids).unwrap();
        credited = pools(&w, &w.root.clone())[0].distributed.u128();
    }
    // 21_009 over 4 leaves: 5_253 for the first leaf, 5_252 for the others.
    assert_eq!(credited, 3 * 7_003);
    let [c0, c1, c2] = [0, 1, 2].map(|i| w.contributors[i].clone());
    assert_eq!(w.claimable(&c0), native(5_253 + 5_252));
    assert_eq!(w.claimable(&c1), native(5_252));
    assert_eq!(w.claimable(&c2), native(5_252));
}

#[test]
fn a_lineage_of_two_datanets_splits_the_pool_by_their_sizes() {
    let mut w = World::new();
    let spec = ModelSpec {
        price: Price {
            asset: AssetInfo::native(DENOM),
            amount: Uint128::new(PRICE),
        },
        split: default_split(),
        attestors: w.attestors[..1].to_vec(),
        quorum: 1,
    };
    let mut input = w.version_input("model-1-v1", &spec);
    input.lineage.push(w.foreign_root.clone());
    let developer = w.developer.clone();
    w.app
        .execute_contract(
            developer,
            w.registry.clone(),
            &registry::ExecuteMsg::RegisterModel {
                name: "two-datanets".into(),
                description: String::new(),
                architecture: "llama".into(),
                version: input,
            },
            &[],
        )
        .unwrap();
    let payer = w.payers[0].clone();
    w.paid_request(&payer, 1, PRICE);
    let attestor = w.attestors[0].clone();
    w.commit(&attestor, vec![w.packet(1, 1, 1, &[])]).unwrap();
    w.advance(WINDOW);
    w.finalize(vec![1]).unwrap();
    // 7_000 over 4 + 1 contributions: 5_600 to the first datanet, 1_400 to the other.
    assert_eq!(pools(&w, &w.root.clone())[0].total, Uint128::new(5_600));
    assert_eq!(
        pools(&w, &w.foreign_root.clone())[0].total,
        Uint128::new(1_400)
    );
}

fn pools(w: &World, root: &tributary_types::DatanetRoot) -> Vec<Pool> {
    let res: PoolsResponse = w
        .app
        .wrap()
        .query_wasm_smart(
            &w.payout,
            &payout::QueryMsg::Pools {
                datanet_id: root.datanet_id,
                version: root.version,
                start_after: None,
                limit: None,
            },
        )
        .unwrap();
    res.pools
}

fn pool_owed(w: &World, asset: &AssetInfo, contribution_id: u64) -> u128 {
    let owed: Uint128 = w
        .app
        .wrap()
        .query_wasm_smart(
            &w.payout,
            &payout::QueryMsg::PoolOwed {
                datanet_id: w.root.datanet_id,
                version: w.root.version,
                asset: asset.clone(),
                contribution_id,
            },
        )
        .unwrap();
    owed.u128()
}

fn claim_pool(
    w: &mut World,
    sender: &Addr,
    asset: &AssetInfo,
    contribution_ids: &[u64],
) -> cw_multi_test::error::AnyResult<cw_multi_test::AppResponse> {
    let msg = payout::ExecuteMsg::ClaimPool {
        datanet_id: w.root.datanet_id,
        version: w.root.version,
        asset: asset.clone(),
        contribution_ids: contribution_ids.to_vec(),
    };
    w.execute_payout(sender, &msg)
}

#[test]
fn the_contributors_rounding_dust_goes_to_the_top_entry() {
    let mut w = World::new();
    let model = w.native_model(1_003, 2, 2);
    let payer = w.payers[0].clone();
    w.paid_request(&payer, model, 1_003);
    let a = w.accepted.clone();
    let packet = w.packet(1, model, 1, &[(a[1], 3_333), (a[0], 3_334), (a[2], 3_333)]);
    for attestor in [w.attestors[0].clone(), w.attestors[1].clone()] {
        w.commit(&attestor, vec![packet.clone()]).unwrap();
    }
    w.advance(WINDOW);
    w.finalize(vec![1]).unwrap();
    // protocol floor(50.15) = 50, operators floor(100.3) = 100, developer floor(150.45) = 150;
    // the contributors get the rest, 703: 234 per third, and the dust unit to the top weight.
    assert_eq!(w.claimable(&w.developer.clone()), native(150));
    assert_eq!(w.claimable(&w.treasury.clone()), native(50));
    let [c0, c1, c2] = [0, 1, 2].map(|i| w.contributors[i].clone());
    assert_eq!(w.claimable(&c0), native(235));
    assert_eq!(w.claimable(&c1), native(234));
    assert_eq!(w.claimable(&c2), native(234));
}
// ---------------------------------------------------------------- a served request is settled

#[test]
fn a_request_with_a_commit_but_no_quorum_is_settled_at_expiry_not_refunded() {
    let (mut w, model) = paid(2, 2);
    let payer = w.payers[0].clone();
    let a = w.attestors[0].clone();
    w.commit(&a, vec![w.packet(1, model, 1, &[(w.accepted[0], 10_000)])])
        .unwrap();
    w.advance(EXPIRY);
    assert_eq!(err_of(w.refund(1)), ContractError::NotRefundable { id: 1 });
    w.finalize(vec![1]).unwrap();
    assert_eq!(w.native_balance(&payer), START_NATIVE - PRICE);
    assert_eq!(w.claimable(&a), native(1_000));
    assert_eq!(w.claimable(&w.developer.clone()), native(1_500));
    assert_eq!(w.claimable(&w.treasury.clone()), native(500));
}

#[test]
fn conflicting_packets_without_quorum_pay_every_committed_attestor_at_expiry() {
    let (mut w, model) = paid(3, 2);
    let payer = w.payers[0].clone();
    let [a, b, idle] = [0, 1, 2].map(|i| w.attestors[i].clone());
    w.commit(&a, vec![w.packet(1, model, 1, &[(w.accepted[0], 10_000)])])
        .unwrap();
    w.commit(&b, vec![w.packet(1, model, 1, &[(w.accepted[1], 10_000)])])
        .unwrap();
    w.advance(EXPIRY);
    assert_eq!(err_of(w.refund(1)), ContractError::NotRefundable { id: 1 });
    w.finalize(vec![1]).unwrap();
    assert_eq!(w.native_balance(&payer), START_NATIVE - PRICE);
    assert_eq!(w.claimable(&a), native(500));
    assert_eq!(w.claimable(&b), native(500));
    assert!(w.claimable(&idle).is_empty());
    // Neither packet is trusted with the contributors' share: it goes to the lineage's pool.
    for contributor in w.contributors.clone() {
        assert!(w.claimable(&contributor).is_empty());
    }
    assert_eq!(pools(&w, &w.root.clone())[0].total, Uint128::new(7_000));
}

// ---------------------------------------------------------------- funds sent by mistake

/// Every execute message that takes no funds, each valid apart from the funds, with its sender.
fn unpaid_messages(w: &mut World) -> Vec<(Addr, payout::ExecuteMsg)> {
    // Request 1 is finalized (its pool and balances claimable), request 2 is refundable,
    // request 3 finalizable, request 4 open for a commit.
    let model = w.native_model(PRICE, 2, 2);
    let payer = w.payers[0].clone();
    for _ in 0..3 {
        w.paid_request(&payer, model, PRICE);
    }
    for request_id in [1, 3] {
        let packet = w.packet(request_id, model, 1, &[]);
        for attestor in [w.attestors[0].clone(), w.attestors[1].clone()] {
            w.commit(&attestor, vec![packet.clone()]).unwrap();
        }
    }
    w.advance(EXPIRY);
    w.finalize(vec![1]).unwrap();
    let id = w.paid_request(&payer, model, PRICE);
    let token_model = w.cw20_model(PRICE);
    let prompt = to_json_binary(&payout::ReceiveMsg::RequestInference {
        model_id: token_model,
        version: 1,
        prompt_hash: h("prompt"),
    })
    .unwrap();
    vec![
        (
            w.token.clone(),
            payout::ExecuteMsg::Receive(cw20::Cw20ReceiveMsg {
                sender: payer.to_string(),
                amount: Uint128::new(PRICE),
                msg: prompt,
            }),
        ),
        (
            w.attestors[0].clone(),
            payout::ExecuteMsg::CommitAttribution {
                packets: vec![w.packet(id, model, 1, &[])],
            },
        ),
        (
            payer.clone(),
            payout::ExecuteMsg::Finalize {
                request_ids: vec![3],
            },
        ),
        (payer.clone(), payout::ExecuteMsg::Refund { request_id: 2 }),
        (w.treasury.clone(), payout::ExecuteMsg::Claim {}),
        (
            payer.clone(),
            payout::ExecuteMsg::ClaimPool {
                datanet_id: w.root.datanet_id,
                version: w.root.version,
                asset: AssetInfo::native(DENOM),
                contribution_ids: w.accepted.clone(),
            },
        ),
        (
            w.admin.clone(),
            payout::ExecuteMsg::BindChannel {
                channel_id: "channel-0".into(),
                attestor: w.attestors[0].to_string(),
                connection_id: "connection-0".into(),
                counterparty_port_id: "wasm.attestation".into(),
            },
        ),
        (
            w.admin.clone(),
            payout::ExecuteMsg::UnbindChannel {
                channel_id: "channel-0".into(),
            },
        ),
        (
            w.admin.clone(),
            payout::ExecuteMsg::UpdateConfig {
                admin: None,
                treasury: None,
                challenge_window_seconds: None,
                request_expiry_seconds: None,
                accepted_cw20: None,
                max_entries: None,
            },
        ),
    ]
}

#[test]
fn every_message_but_a_payment_refuses_attached_funds() {
    let mut w = World::new();
    let messages = unpaid_messages(&mut w);
    let funds = coins(7, DENOM);
    let mut accepted = Vec::new();
    for (sender, msg) in messages {
        w.app
            .sudo(SudoMsg::Bank(BankSudo::Mint {
                to_address: sender.to_string(),
                amount: funds.clone(),
            }))
            .unwrap();
        let held = w.native_balance(&w.payout);
        let result = w
            .app
            .execute_contract(sender.clone(), w.payout.clone(), &msg, &funds);
        match result {
            Err(err) => assert_eq!(
                contract_err(err),
                ContractError::FundsNotAccepted(PaymentError::NonPayable {}),
                "{msg:?}"
            ),
            Ok(_) => accepted.push(format!("{msg:?}")),
        }
        assert_eq!(w.native_balance(&w.payout), held, "{msg:?}");
    }
    assert!(accepted.is_empty(), "accepted funds: {accepted:#?}");
    // Without the funds the same messages go through, but for the channel ones, which need an
    // open channel that multi-test cannot connect (see tests/ibc.rs).
    let mut w = World::new();
    for (sender, msg) in unpaid_messages(&mut w) {
        let channel = matches!(
            msg,
            payout::ExecuteMsg::BindChannel { .. } | payout::ExecuteMsg::UnbindChannel { .. }
        );
        if !channel {
            let result = w.app.execute_contract(sender, w.payout.clone(), &msg, &[]);
            assert!(result.is_ok(), "{msg:?}");
        }
    }
}

// ---------------------------------------------------------------- peers that fail

/// The datanet contract, except that it refuses every `RecordUsage`.
fn datanet_refusing_usage() -> Box<dyn cw_multi_test::Contract<cosmwasm_std::Empty>> {
    fn execute(
        deps: cosmwasm_std::DepsMut,
        env: cosmwasm_std::Env,
        info: cosmwasm_std::MessageInfo,
        msg: datanet::ExecuteMsg,
    ) -> Result<cosmwasm_std::Response, cosmwasm_std::StdError> {
        if let datanet::ExecuteMsg::RecordUsage { .. } = msg {
            return Err(cosmwasm_std::StdError::generic_err(
                "usage recording is down",
            ));
        }
        tributary_datanet::contract::execute(deps, env, info, msg)
            .map_err(|e| cosmwasm_std::StdError::generic_err(e.to_string()))
    }
    Box::new(
        cw_multi_test::ContractWrapper::new(
            execute,
            tributary_datanet::contract::instantiate,
            tributary_datanet::contract::query,
        )
        .with_migrate(tributary_datanet::contract::migrate),
    )
}

#[test]
fn a_failing_usage_record_does_not_stop_finalization() {
    let (mut w, model) = paid(2, 2);
    let packet = w.packet(1, model, 1, &[(w.accepted[0], 10_000)]);
    for attestor in [w.attestors[0].clone(), w.attestors[1].clone()] {
        w.commit(&attestor, vec![packet.clone()]).unwrap();
    }
    let code = w.app.store_code(datanet_refusing_usage());
    let (admin, datanet) = (w.admin.clone(), w.datanet.clone());
    w.app
        .migrate_contract(admin, datanet, &datanet::MigrateMsg {}, code)
        .unwrap();
    w.advance(WINDOW);
    let res = w.finalize(vec![1]).unwrap();
    assert!(res.events.iter().any(|e| e.ty == "wasm-usage_not_recorded"
        && e.attributes
            .iter()
            .any(|a| a.value.contains("usage recording is down"))));
    assert_eq!(w.request_state(1).status, RequestStatus::Finalized);
    let contributor = w.contributors[0].clone();
    assert_eq!(w.claimable(&contributor), native(7_000));
}

/// A cw20 that takes payments (`Send` calls the recipient's hook) but refuses every transfer.
fn frozen_token() -> Box<dyn cw_multi_test::Contract<cosmwasm_std::Empty>> {
    use cosmwasm_std::{
        Binary, Deps, DepsMut, Empty, Env, MessageInfo, Response, StdError, StdResult,
    };
    fn instantiate(_: DepsMut, _: Env, _: MessageInfo, _: Empty) -> StdResult<Response> {
        Ok(Response::new())
    }
    fn execute(
        _: DepsMut,
        _: Env,
        info: MessageInfo,
        msg: cw20::Cw20ExecuteMsg,
    ) -> StdResult<Response> {
        match msg {
            cw20::Cw20ExecuteMsg::Send {
                contract,
                amount,
                msg,
            } => Ok(Response::new().add_message(
                cw20::Cw20ReceiveMsg {
                    sender: info.sender.to_string(),
                    amount,
                    msg,
                }
                .into_cosmos_msg(contract)?,
            )),
            _ => Err(StdError::generic_err("transfers are frozen")),
        }
    }
    fn query(_: Deps, _: Env, _: Empty) -> StdResult<Binary> {
        Err(StdError::generic_err("no queries"))
    }
    Box::new(cw_multi_test::ContractWrapper::new(
        execute,
        instantiate,
        query,
    ))
}

#[test]
fn a_claim_pays_every_other_asset_when_one_token_refuses_its_transfer() {
    let mut w = World::new();
    let code = w.app.store_code(frozen_token());
    let admin = w.admin.clone();
    let frozen = w
        .app
        .instantiate_contract(
            code,
            admin.clone(),
            &cosmwasm_std::Empty {},
            &[],
            "frozen",
            None,
        )
        .unwrap();
    let update = payout::ExecuteMsg::UpdateConfig {
        admin: None,
        treasury: None,
        challenge_window_seconds: None,
        request_expiry_seconds: None,
        accepted_cw20: Some(vec![w.token.to_string(), frozen.to_string()]),
        max_entries: None,
    };
    w.execute_payout(&admin, &update).unwrap();
    let spec = ModelSpec {
        price: Price {
            asset: AssetInfo::cw20(frozen.as_str()),
            amount: Uint128::new(PRICE),
        },
        split: default_split(),
        attestors: w.attestors[..1].to_vec(),
        quorum: 1,
    };
    let frozen_model = w.register_model(spec);
    let token_model = w.register_model(ModelSpec {
        price: Price {
            asset: AssetInfo::cw20(w.token.as_str()),
            amount: Uint128::new(PRICE),
        },
        split: default_split(),
        attestors: w.attestors[..1].to_vec(),
        quorum: 1,
    });
    let native_model = w.native_model(PRICE, 1, 1);
    let (payer, token) = (w.payers[0].clone(), w.token.clone());
    w.request_cw20(&payer, &frozen, frozen_model, 1, PRICE)
        .unwrap();
    w.request_cw20(&payer, &token, token_model, 1, PRICE)
        .unwrap();
    w.paid_request(&payer, native_model, PRICE);
    let attestor = w.attestors[0].clone();
    let packets = vec![
        w.packet(1, frozen_model, 1, &[(w.accepted[0], 10_000)]),
        w.packet(2, token_model, 1, &[(w.accepted[0], 10_000)]),
        w.packet(3, native_model, 1, &[(w.accepted[0], 10_000)]),
    ];
    w.commit(&attestor, packets).unwrap();
    w.advance(WINDOW);
    w.finalize(vec![1, 2, 3]).unwrap();

    let treasury = w.treasury.clone();
    let frozen_share = vec![(AssetInfo::cw20(frozen.as_str()), 500)];
    for round in 1..=2 {
        let res = w.claim(&treasury).unwrap();
        let failed: Vec<_> = res
            .events
            .iter()
            .filter(|e| e.ty == "wasm-claim_payout_failed")
            .collect();
        assert_eq!(failed.len(), 1, "round {round}");
        assert!(failed[0]
            .attributes
            .iter()
            .any(|a| a.key == "credited_back" && a.value == format!("500 cw20:{frozen}")));
        // The other assets were paid; the frozen token's share is still the treasury's.
        assert_eq!(w.native_balance(&treasury), 500);
        assert_eq!(w.token_balance(&token, &treasury), 500);
        assert_eq!(w.claimable(&treasury), frozen_share);
    }
    // Every payout's record went with its reply.
    for id in 1..=6u64 {
        let key = tributary_payout::state::PENDING_PAYOUTS.key(id);
        let raw = w
            .app
            .wrap()
            .query_wasm_raw(&w.payout, key.to_vec())
            .unwrap();
        assert_eq!(raw, None, "pending payout {id}");
    }
}
