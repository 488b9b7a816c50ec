//! No message of the registry takes funds: coins sent by mistake are refused, not kept.

use crate::suite::{register, Suite, DENOM, START_BALANCE};
use cosmwasm_std::{coins, Addr, Uint128};
use cw_multi_test::{ContractWrapper, Executor};
use cw_utils::PaymentError;
use tributary_model_registry::error::ContractError;
use tributary_types::registry::{ExecuteMsg, InstantiateMsg};

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
    let (owner, admin) = (suite.owner.clone(), suite.admin.clone());
    let input = suite.input();
    refuses_funds_then_runs(&mut suite, &owner, &register("coder-small", input.clone()));
    let model_id = 1;
    refuses_funds_then_runs(
        &mut suite,
        &owner,
        &ExecuteMsg::AddVersion {
            model_id,
            version: input.clone(),
        },
    );
    refuses_funds_then_runs(
        &mut suite,
        &owner,
        &ExecuteMsg::SetAttestors {
            model_id,
            version: 2,
            attestors: input.attestors.clone(),
            quorum: 2,
        },
    );
    refuses_funds_then_runs(
        &mut suite,
        &owner,
        &ExecuteMsg::DeprecateVersion {
            model_id,
            version: 1,
        },
    );
    refuses_funds_then_runs(
        &mut suite,
        &admin,
        &ExecuteMsg::UpdateConfig {
            admin: None,
            min_contributors_bps: Some(500),
            min_protocol_bps: None,
        },
    );
}

#[test]
fn instantiate_refuses_attached_funds() {
    let mut suite = Suite::new();
    let code = suite.app.store_code(Box::new(ContractWrapper::new(
        tributary_model_registry::contract::execute,
        tributary_model_registry::contract::instantiate,
        tributary_model_registry::contract::query,
    )));
    let admin = suite.admin.clone();
    let err = suite
        .app
        .instantiate_contract(
            code,
            admin.clone(),
            &InstantiateMsg {
                admin: None,
                datanet_contract: suite.datanet.to_string(),
                min_contributors_bps: 0,
                min_protocol_bps: 0,
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
