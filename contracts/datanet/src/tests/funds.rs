//! No message of the contract takes funds: coins sent by mistake are refused, not kept.

use cosmwasm_std::{coins, Addr, Uint128};
use cw_multi_test::Executor;
use cw_utils::PaymentError;
use tributary_types::asset::AssetInfo;
use tributary_types::datanet::{
    CurationPolicy, ExecuteMsg, InstantiateMsg, ReviewDecision, UsageRecord,
};

use super::suite::{commit_msg, create_msg, reveal_msg, Suite, DENOM, START_BALANCE};
use crate::error::ContractError;

/// `msg` with one coin attached is refused for the coin, and the coin stays with the sender;
/// the same message without funds then succeeds, so the coin was the only reason.
fn refuses_funds_then_runs(suite: &mut Suite, sender: &Addr, msg: &ExecuteMsg) {
    let before = suite.app.wrap().query_balance(sender, DENOM).unwrap();
    let err = suite
        .execute_with_funds(sender, msg, &coins(1, DENOM))
        .expect_err("a message with funds attached should be refused")
        .downcast::<ContractError>()
        .unwrap();
    assert_eq!(
        err,
        ContractError::Payment(PaymentError::NonPayable {}),
        "{msg:?}"
    );
    let after = suite.app.wrap().query_balance(sender, DENOM).unwrap();
    assert_eq!(before, after, "{msg:?}");
    suite
        .execute(sender, msg)
        .unwrap_or_else(|e| panic!("{msg:?} without funds: {e}"));
}

#[test]
fn every_execute_message_refuses_attached_funds() {
    let mut suite = Suite::new();
    let (owner, curator, alice, recorder, admin) = (
        suite.owner.clone(),
        suite.curator.clone(),
        suite.alice.clone(),
        suite.recorder.clone(),
        suite.admin.clone(),
    );
    let curated = 1;
    refuses_funds_then_runs(
        &mut suite,
        &owner,
        &create_msg(CurationPolicy::CuratorReview, vec![curator.to_string()]),
    );
    refuses_funds_then_runs(
        &mut suite,
        &owner,
        &ExecuteMsg::UpdateDatanet {
            datanet_id: curated,
            description: Some("reviewed samples".to_string()),
            domain_tags: None,
            license: None,
            policy: None,
            max_contribution_bytes: None,
        },
    );
    let extra = suite.addr("extra");
    refuses_funds_then_runs(
        &mut suite,
        &owner,
        &ExecuteMsg::AddCurators {
            datanet_id: curated,
            curators: vec![extra.to_string()],
        },
    );
    refuses_funds_then_runs(
        &mut suite,
        &owner,
        &ExecuteMsg::RemoveCurators {
            datanet_id: curated,
            curators: vec![extra.to_string()],
        },
    );
    refuses_funds_then_runs(
        &mut suite,
        &owner,
        &ExecuteMsg::UpdateAllowList {
            datanet_id: curated,
            add: vec![alice.to_string()],
            remove: vec![],
        },
    );
    refuses_funds_then_runs(
        &mut suite,
        &owner,
        &ExecuteMsg::TransferOwnership {
            datanet_id: curated,
            new_owner: owner.to_string(),
        },
    );

    refuses_funds_then_runs(&mut suite, &alice, &commit_msg(&alice, curated, b"kept"));
    let kept = 1;
    suite.next_block();
    refuses_funds_then_runs(&mut suite, &alice, &reveal_msg(kept, b"kept"));
    refuses_funds_then_runs(
        &mut suite,
        &curator,
        &ExecuteMsg::Review {
            contribution_id: kept,
            decision: ReviewDecision::Accept,
            reason: None,
        },
    );
    refuses_funds_then_runs(
        &mut suite,
        &alice,
        &commit_msg(&alice, curated, b"taken back"),
    );
    refuses_funds_then_runs(
        &mut suite,
        &alice,
        &ExecuteMsg::Withdraw { contribution_id: 2 },
    );
    refuses_funds_then_runs(
        &mut suite,
        &owner,
        &ExecuteMsg::Snapshot {
            datanet_id: curated,
            note: None,
        },
    );
    refuses_funds_then_runs(
        &mut suite,
        &recorder,
        &ExecuteMsg::RecordUsage {
            records: vec![UsageRecord {
                contribution_id: kept,
                asset: AssetInfo::native(DENOM),
                amount: Uint128::new(10),
                uses: None,
            }],
        },
    );
    refuses_funds_then_runs(
        &mut suite,
        &admin,
        &ExecuteMsg::UpdateConfig {
            admin: Some(admin.to_string()),
            usage_recorder: None,
        },
    );
}

#[test]
fn instantiate_refuses_attached_funds() {
    let mut suite = Suite::new();
    let admin = suite.admin.clone();
    let err = suite
        .app
        .instantiate_contract(
            suite.code_id,
            admin.clone(),
            &InstantiateMsg {
                admin: None,
                usage_recorder: None,
            },
            &coins(5, DENOM),
            "with funds",
            None,
        )
        .unwrap_err()
        .downcast::<ContractError>()
        .unwrap();
    assert_eq!(err, ContractError::Payment(PaymentError::NonPayable {}));
    assert_eq!(
        suite
            .app
            .wrap()
            .query_balance(&admin, DENOM)
            .unwrap()
            .amount,
        Uint128::new(START_BALANCE)
    );
}
