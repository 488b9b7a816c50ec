//! The usage recorder: the payout contract whose finalizations record usage here. No change of
//! the config may leave a payout contract that holds escrow unable to record.

use cosmwasm_std::{Addr, Uint128};
use tributary_types::asset::AssetInfo;
use tributary_types::datanet::{
    ConfigResponse, CurationPolicy, ExecuteMsg, QueryMsg, UsageRecord, MAX_RETIRED_USAGE_RECORDERS,
};

use super::suite::Suite;
use crate::error::ContractError;

fn set_recorder(recorder: &Addr) -> ExecuteMsg {
    ExecuteMsg::UpdateConfig {
        admin: None,
        usage_recorder: Some(recorder.to_string()),
    }
}

fn one_use(contribution_id: u64) -> ExecuteMsg {
    ExecuteMsg::RecordUsage {
        records: vec![UsageRecord {
            contribution_id,
            asset: AssetInfo::native("utrib"),
            amount: Uint128::new(1),
            uses: None,
        }],
    }
}

fn config(suite: &Suite) -> ConfigResponse {
    suite.query(&QueryMsg::Config {}).unwrap()
}

/// A suite with one accepted contribution; returns it and its id.
fn with_contribution() -> (Suite, u64) {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::Open);
    let alice = suite.alice.clone();
    let cid = suite.contribute(&alice, id, b"used");
    (suite, cid)
}

#[test]
fn a_replaced_recorder_contract_still_records_usage() {
    let (mut suite, cid) = with_contribution();
    let admin = suite.admin.clone();
    let first = suite.stand_in("payout-1");
    let second = suite.stand_in("payout-2");
    suite.execute(&admin, &set_recorder(&first)).unwrap();
    suite.execute(&first, &one_use(cid)).unwrap();

    // A second payout contract takes over; the first may still hold requests in escrow whose
    // finalization records usage, so it keeps recording.
    suite.execute(&admin, &set_recorder(&second)).unwrap();
    suite.execute(&first, &one_use(cid)).unwrap();
    suite.execute(&second, &one_use(cid)).unwrap();
    assert_eq!(suite.contribution(cid).usage_count, 3);
    let now = config(&suite);
    assert_eq!(now.usage_recorder, Some(second.clone()));
    assert_eq!(now.retired_usage_recorders, vec![first.clone()]);

    // `None` leaves the recorder as it is: there is no way to unset it.
    suite
        .execute(
            &admin,
            &ExecuteMsg::UpdateConfig {
                admin: None,
                usage_recorder: None,
            },
        )
        .unwrap();
    assert_eq!(config(&suite).usage_recorder, Some(second.clone()));
    suite.execute(&second, &one_use(cid)).unwrap();

    // Going back to a retired recorder makes it current again and retires the other.
    suite.execute(&admin, &set_recorder(&first)).unwrap();
    let now = config(&suite);
    assert_eq!(now.usage_recorder, Some(first.clone()));
    assert_eq!(now.retired_usage_recorders, vec![second.clone()]);
    suite.execute(&first, &one_use(cid)).unwrap();
    suite.execute(&second, &one_use(cid)).unwrap();
}

#[test]
fn the_usage_recorder_must_be_a_contract() {
    let mut suite = Suite::new();
    let (admin, bob) = (suite.admin.clone(), suite.bob.clone());
    assert_eq!(
        suite.execute_err(&admin, &set_recorder(&bob)),
        ContractError::RecorderNotAContract {
            address: bob.clone()
        }
    );
    assert_eq!(config(&suite).usage_recorder, Some(suite.recorder.clone()));
}

#[test]
fn an_account_recorder_is_replaced_outright() {
    // An account set at instantiation (before the payout contract exists) holds no escrow, so
    // a contract replacing it does not keep it authorized.
    let (mut suite, cid) = with_contribution();
    let (admin, account) = (suite.admin.clone(), suite.recorder.clone());
    let payout = suite.stand_in("payout");
    suite.execute(&admin, &set_recorder(&payout)).unwrap();
    assert_eq!(
        suite.execute_err(&account, &one_use(cid)),
        ContractError::Unauthorized {
            sender: account,
            action: "record usage"
        }
    );
    assert!(config(&suite).retired_usage_recorders.is_empty());
    suite.execute(&payout, &one_use(cid)).unwrap();
}

#[test]
fn retired_recorders_are_bounded_and_all_keep_recording() {
    let (mut suite, cid) = with_contribution();
    let admin = suite.admin.clone();
    let recorders: Vec<Addr> = (0..=MAX_RETIRED_USAGE_RECORDERS + 1)
        .map(|i| suite.stand_in(&format!("payout-{i}")))
        .collect();
    for recorder in &recorders[..=MAX_RETIRED_USAGE_RECORDERS] {
        suite.execute(&admin, &set_recorder(recorder)).unwrap();
    }
    assert_eq!(
        config(&suite).retired_usage_recorders.len(),
        MAX_RETIRED_USAGE_RECORDERS
    );
    let last = &recorders[MAX_RETIRED_USAGE_RECORDERS + 1];
    assert_eq!(
        suite.execute_err(&admin, &set_recorder(last)),
        ContractError::TooManyRetiredRecorders {
            max: MAX_RETIRED_USAGE_RECORDERS
        }
    );
    for recorder in &recorders[..=MAX_RETIRED_USAGE_RECORDERS] {
        suite.execute(recorder, &one_use(cid)).unwrap();
    }
    assert_eq!(
        suite.contribution(cid).usage_count,
        MAX_RETIRED_USAGE_RECORDERS as u64 + 1
    );
}
