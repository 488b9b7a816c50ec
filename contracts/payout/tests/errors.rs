//! Every failure a user can cause, each asserted by its exact error, and the dispute, expiry and
//! refund paths.

mod common;

use common::*;
use cosmwasm_std::testing::{message_info, mock_dependencies, mock_env};
use cosmwasm_std::{coins, Addr, Coin, HexBinary, Uint128};
use cw_multi_test::Executor;
use tributary_payout::contract::{instantiate, migrate, CONTRACT_NAME};
use tributary_payout::error::ContractError;
use tributary_types::packet::{PacketError, MAX_DATANET_ROOTS};
use tributary_types::payout::{
    self, ExecuteMsg, InstantiateMsg, MigrateMsg, RequestStatus, MAX_ACCEPTED_CW20,
    MAX_CHALLENGE_WINDOW_SECONDS, MAX_REQUEST_EXPIRY_SECONDS,
};
use tributary_types::registry;
use tributary_types::upgrade::UpgradeError;
use tributary_types::{AssetInfo, DatanetRoot, HashError};

const PRICE: u128 = 10_000;

/// A world with a native model (attestors 0 and 1, quorum 2) and one paid request (id 1).
fn world_with_request() -> (World, u64) {
    let mut w = World::new();
    let model = w.native_model(PRICE, 2, 2);
    let payer = w.payers[0].clone();
    assert_eq!(w.paid_request(&payer, model, PRICE), 1);
    (w, model)
}

fn err_of(result: cw_multi_test::error::AnyResult<cw_multi_test::AppResponse>) -> ContractError {
    contract_err(result.expect_err("the message should fail"))
}

fn instantiate_msg(window: u64, expiry: u64, max_entries: u32) -> (InstantiateMsg, Addr) {
    let api = cosmwasm_std::testing::MockApi::default();
    let admin = api.addr_make("admin");
    (
        InstantiateMsg {
            admin: None,
            datanet_contract: api.addr_make("datanet").to_string(),
            registry_contract: api.addr_make("registry").to_string(),
            treasury: api.addr_make("treasury").to_string(),
            challenge_window_seconds: window,
            request_expiry_seconds: expiry,
            accepted_cw20: vec![],
            max_entries,
            verification: None,
        },
        admin,
    )
}

// ---------------------------------------------------------------- configuration

#[test]
fn expiry_not_after_the_window_is_refused() {
    let mut deps = mock_dependencies();
    let (msg, admin) = instantiate_msg(100, 100, 8);
    assert_eq!(
        instantiate(deps.as_mut(), mock_env(), message_info(&admin, &[]), msg),
        Err(ContractError::ExpiryNotAfterWindow {
            expiry: 100,
            window: 100
        })
    );
}

#[test]
fn max_entries_outside_one_to_sixty_four_is_refused() {
    for bad in [0, 65] {
        let mut deps = mock_dependencies();
        let (msg, admin) = instantiate_msg(100, 1_000, bad);
        assert_eq!(
            instantiate(deps.as_mut(), mock_env(), message_info(&admin, &[]), msg),
            Err(ContractError::InvalidMaxEntries {
                max_entries: bad,
                max: 64
            })
        );
    }
    let mut deps = mock_dependencies();
    let (msg, admin) = instantiate_msg(100, 1_000, 64);
    assert!(instantiate(deps.as_mut(), mock_env(), message_info(&admin, &[]), msg).is_ok());
}

#[test]
fn durations_that_could_brick_the_contract_are_refused_at_instantiation() {
    // (window, expiry): a zero window, a window over 30 days, an expiry over a year, and an
    // expiry whose deadline would overflow a timestamp.
    let window_error = |window| ContractError::InvalidChallengeWindow {
        window,
        min: 1,
        max: MAX_CHALLENGE_WINDOW_SECONDS,
    };
    let expiry_error = |expiry| ContractError::ExpiryTooLong {
        expiry,
        max: MAX_REQUEST_EXPIRY_SECONDS,
    };
    for (window, expiry, expected) in [
        (0, 1_000, window_error(0)),
        (30 * 86_400 + 1, 40 * 86_400, window_error(30 * 86_400 + 1)),
        (100, 365 * 86_400 + 1, expiry_error(365 * 86_400 + 1)),
        (100, 18_000_000_000, expiry_error(18_000_000_000)),
    ] {
        let mut deps = mock_dependencies();
        let (msg, admin) = instantiate_msg(window, expiry, 8);
        let result = instantiate(deps.as_mut(), mock_env(), message_info(&admin, &[]), msg);
        assert_eq!(result, Err(expected));
    }
    let mut deps = mock_dependencies();
    let (msg, admin) = instantiate_msg(30 * 86_400, 365 * 86_400, 8);
    instantiate(deps.as_mut(), mock_env(), message_info(&admin, &[]), msg).unwrap();
}

#[test]
fn durations_that_could_brick_the_contract_are_refused_by_update_config() {
    let mut w = World::new();
    let admin = w.admin.clone();
    for (window, expiry, expected) in [
        (
            Some(0),
            None,
            ContractError::InvalidChallengeWindow {
                window: 0,
                min: 1,
                max: MAX_CHALLENGE_WINDOW_SECONDS,
            },
        ),
        (
            None,
            Some(18_000_000_000),
            ContractError::ExpiryTooLong {
                expiry: 18_000_000_000,
                max: MAX_REQUEST_EXPIRY_SECONDS,
            },
        ),
    ] {
        let update = ExecuteMsg::UpdateConfig {
            admin: None,
            treasury: None,
            challenge_window_seconds: window,
            request_expiry_seconds: expiry,
            accepted_cw20: None,
            max_entries: None,
        };
        assert_eq!(err_of(w.execute_payout(&admin, &update)), expected);
    }
    // Requests can still be paid.
    let model = w.native_model(PRICE, 2, 2);
    let payer = w.payers[0].clone();
    w.paid_request(&payer, model, PRICE);
}

#[test]
fn an_unbounded_list_of_accepted_tokens_is_refused() {
    let api = cosmwasm_std::testing::MockApi::default();
    let tokens: Vec<String> = (0..33)
        .map(|i| api.addr_make(&format!("token-{i}")).to_string())
        .collect();
    let mut deps = mock_dependencies();
    let (mut msg, admin) = instantiate_msg(100, 1_000, 8);
    msg.accepted_cw20 = tokens;
    assert_eq!(
        instantiate(deps.as_mut(), mock_env(), message_info(&admin, &[]), msg),
        Err(ContractError::TooManyTokens {
            count: 33,
            max: MAX_ACCEPTED_CW20
        })
    );
}

#[test]
fn only_the_admin_changes_config_and_channels() {
    let mut w = World::new();
    let stranger = w.payers[0].clone();
    let update = ExecuteMsg::UpdateConfig {
        admin: None,
        treasury: None,
        challenge_window_seconds: Some(10),
        request_expiry_seconds: None,
        accepted_cw20: None,
        max_entries: None,
    };
    assert_eq!(
        err_of(w.execute_payout(&stranger, &update)),
        ContractError::Unauthorized {
            sender: stranger.clone(),
            action: "update the config"
        }
    );
    let bind = ExecuteMsg::BindChannel {
        channel_id: "channel-0".into(),
        attestor: w.attestors[0].to_string(),
        connection_id: "connection-0".into(),
        counterparty_port_id: "wasm.attestation".into(),
    };
    assert_eq!(
        err_of(w.execute_payout(&stranger, &bind)),
        ContractError::Unauthorized {
            sender: stranger.clone(),
            action: "bind a channel"
        }
    );
    // The admin binds only open channels (tests/ibc.rs opens them).
    let admin = w.admin.clone();
    assert_eq!(
        err_of(w.execute_payout(&admin, &bind)),
        ContractError::ChannelNotOpen {
            channel_id: "channel-0".into()
        }
    );
    let unbind = ExecuteMsg::UnbindChannel {
        channel_id: "channel-0".into(),
    };
    assert_eq!(
        err_of(w.execute_payout(&stranger, &unbind)),
        ContractError::Unauthorized {
            sender: stranger,
            action: "unbind a channel"
        }
    );
    assert_eq!(
        err_of(w.execute_payout(&admin, &unbind)),
        ContractError::UnboundChannel {
            channel_id: "channel-0".into()
        }
    );
}

#[test]
fn config_updates_apply_and_are_checked_as_a_whole() {
    let mut w = World::new();
    let admin = w.admin.clone();
    let new_admin = w.app.api().addr_make("new-admin");
    let update = |window, expiry, max_entries, admin: Option<&Addr>| ExecuteMsg::UpdateConfig {
        admin: admin.map(Addr::to_string),
        treasury: None,
        challenge_window_seconds: window,
        request_expiry_seconds: expiry,
        accepted_cw20: Some(vec![]),
        max_entries,
    };
    assert_eq!(
        err_of(w.execute_payout(&admin, &update(Some(EXPIRY), None, None, None))),
        ContractError::ExpiryNotAfterWindow {
            expiry: EXPIRY,
            window: EXPIRY
        }
    );
    assert_eq!(
        err_of(w.execute_payout(&admin, &update(None, None, Some(0), None))),
        ContractError::InvalidMaxEntries {
            max_entries: 0,
            max: 64
        }
    );
    w.execute_payout(
        &admin,
        &update(Some(60), Some(600), Some(4), Some(&new_admin)),
    )
    .unwrap();
    let config: payout::ConfigResponse = w
        .app
        .wrap()
        .query_wasm_smart(&w.payout, &payout::QueryMsg::Config {})
        .unwrap();
    assert_eq!(config.admin, new_admin);
    assert_eq!(config.challenge_window_seconds, 60);
    assert_eq!(config.request_expiry_seconds, 600);
    assert_eq!(config.max_entries, 4);
    assert!(config.accepted_cw20.is_empty());
    // The old admin lost its rights; the token is no longer accepted.
    assert!(matches!(
        err_of(w.execute_payout(&admin, &update(None, None, None, None))),
        ContractError::Unauthorized { .. }
    ));
    let model = w.cw20_model(100);
    let (payer, token) = (w.payers[0].clone(), w.token.clone());
    assert_eq!(
        err_of(w.request_cw20(&payer, &token, model, 1, 100)),
        ContractError::TokenNotAccepted { token }
    );
}

#[test]
fn migrate_refuses_other_contracts_and_downgrades() {
    let mut deps = mock_dependencies();
    cw2::set_contract_version(&mut deps.storage, "crates.io:tributary-datanet", "0.1.0").unwrap();
    assert_eq!(
        migrate(deps.as_mut(), mock_env(), MigrateMsg {}),
        Err(ContractError::Upgrade(UpgradeError::WrongContract {
            stored: "crates.io:tributary-datanet".into(),
            expected: CONTRACT_NAME.into(),
        }))
    );
    cw2::set_contract_version(&mut deps.storage, CONTRACT_NAME, "99.0.0").unwrap();
    assert!(matches!(
        migrate(deps.as_mut(), mock_env(), MigrateMsg {}),
        Err(ContractError::Upgrade(UpgradeError::Downgrade { .. }))
    ));
    cw2::set_contract_version(&mut deps.storage, CONTRACT_NAME, "0.0.1").unwrap();
    migrate(deps.as_mut(), mock_env(), MigrateMsg {}).unwrap();
    assert_eq!(
        cw2::get_contract_version(&deps.storage).unwrap().version,
        env!("CARGO_PKG_VERSION")
    );
}

#[test]
fn migrating_a_live_contract_keeps_its_requests() {
    let (mut w, _) = world_with_request();
    let code = w.app.store_code(payout_contract());
    let (admin, payout) = (w.admin.clone(), w.payout.clone());
    w.app
        .migrate_contract(admin, payout, &MigrateMsg {}, code)
        .unwrap();
    assert_eq!(w.request_state(1).status, RequestStatus::Open);
}

// ---------------------------------------------------------------- paying

#[test]
fn an_unknown_model_version_cannot_be_paid_for() {
    let mut w = World::new();
    let model = w.native_model(PRICE, 2, 2);
    let payer = w.payers[0].clone();
    assert_eq!(
        err_of(w.request(&payer, model, 2, &coins(PRICE, DENOM))),
        ContractError::UnknownModelVersion {
            model_id: model,
            version: 2
        }
    );
    assert_eq!(
        err_of(w.request(&payer, 99, 1, &coins(PRICE, DENOM))),
        ContractError::UnknownModelVersion {
            model_id: 99,
            version: 1
        }
    );
}

#[test]
fn a_deprecated_version_cannot_be_paid_for() {
    let mut w = World::new();
    let model = w.native_model(PRICE, 2, 2);
    let developer = w.developer.clone();
    w.app
        .execute_contract(
            developer,
            w.registry.clone(),
            &registry::ExecuteMsg::DeprecateVersion {
                model_id: model,
                version: 1,
            },
            &[],
        )
        .unwrap();
    let payer = w.payers[0].clone();
    assert_eq!(
        err_of(w.request(&payer, model, 1, &coins(PRICE, DENOM))),
        ContractError::ModelDeprecated {
            model_id: model,
            version: 1
        }
    );
}

#[test]
fn paying_in_the_wrong_asset_is_refused() {
    let mut w = World::new();
    let native_model = w.native_model(PRICE, 2, 2);
    let token_model = w.cw20_model(PRICE);
    let (payer, token) = (w.payers[0].clone(), w.token.clone());
    assert_eq!(
        err_of(w.request(&payer, token_model, 1, &coins(PRICE, DENOM))),
        ContractError::WrongPaymentAsset {
            expected: AssetInfo::cw20(token.as_str())
        }
    );
    assert_eq!(
        err_of(w.request_cw20(&payer, &token, native_model, 1, PRICE)),
        ContractError::WrongPaymentAsset {
            expected: AssetInfo::native(DENOM)
        }
    );
    // Nothing moved.
    assert_eq!(w.native_balance(&payer), START_NATIVE);
    assert_eq!(w.token_balance(&token, &payer), START_TOKENS);
}

#[test]
fn other_denoms_alongside_the_price_are_refused() {
    let mut w = World::new();
    let model = w.native_model(PRICE, 2, 2);
    let payer = w.payers[0].clone();
    let funds = vec![Coin::new(5u128, "uatom"), Coin::new(PRICE, DENOM)];
    assert_eq!(
        err_of(w.request(&payer, model, 1, &funds)),
        ContractError::UnexpectedFunds {
            denom: "uatom".into(),
            expected: DENOM.into()
        }
    );
}

#[test]
fn paying_less_than_the_price_is_refused() {
    let mut w = World::new();
    let model = w.native_model(PRICE, 2, 2);
    let token_model = w.cw20_model(PRICE);
    let (payer, token) = (w.payers[0].clone(), w.token.clone());
    assert_eq!(
        err_of(w.request(&payer, model, 1, &coins(PRICE - 1, DENOM))),
        ContractError::InsufficientPayment {
            paid: Uint128::new(PRICE - 1),
            price: Uint128::new(PRICE)
        }
    );
    assert_eq!(
        err_of(w.request(&payer, model, 1, &[])),
        ContractError::InsufficientPayment {
            paid: Uint128::zero(),
            price: Uint128::new(PRICE)
        }
    );
    assert_eq!(
        err_of(w.request_cw20(&payer, &token, token_model, 1, 1)),
        ContractError::InsufficientPayment {
            paid: Uint128::new(1),
            price: Uint128::new(PRICE)
        }
    );
}

#[test]
fn a_prompt_hash_of_the_wrong_size_is_refused() {
    let mut w = World::new();
    let model = w.native_model(PRICE, 2, 2);
    let payer = w.payers[0].clone();
    let msg = ExecuteMsg::RequestInference {
        model_id: model,
        version: 1,
        prompt_hash: HexBinary::from(vec![7u8; 31]),
    };
    let err = w
        .app
        .execute_contract(payer, w.payout.clone(), &msg, &coins(PRICE, DENOM))
        .unwrap_err();
    assert_eq!(
        contract_err(err),
        ContractError::InvalidHash(HashError::BadByteLength { len: 31 })
    );
}

#[test]
fn a_token_that_is_not_accepted_is_refused() {
    let mut w = World::new();
    let model = w.cw20_model(PRICE);
    let (payer, other) = (w.payers[0].clone(), w.other_token.clone());
    assert_eq!(
        err_of(w.request_cw20(&payer, &other, model, 1, PRICE)),
        ContractError::TokenNotAccepted { token: other }
    );
}

#[test]
fn a_cw20_model_priced_in_another_token_refuses_the_accepted_one() {
    let mut w = World::new();
    // The registry accepts any cw20 address; the payout contract checks which token pays.
    let other = w.other_token.clone();
    let model = w.register_model(ModelSpec {
        price: tributary_types::Price {
            asset: AssetInfo::cw20(other.as_str()),
            amount: Uint128::new(PRICE),
        },
        split: default_split(),
        attestors: w.attestors[..2].to_vec(),
        quorum: 2,
    });
    let (payer, token) = (w.payers[0].clone(), w.token.clone());
    assert_eq!(
        err_of(w.request_cw20(&payer, &token, model, 1, PRICE)),
        ContractError::WrongPaymentAsset {
            expected: AssetInfo::cw20(other.as_str())
        }
    );
}

#[test]
fn request_ids_count_up_and_expiry_follows_the_config() {
    let (mut w, model) = world_with_request();
    let payer = w.payers[1].clone();
    let second = w.paid_request(&payer, model, PRICE);
    assert_eq!(second, 2);
    let request = w.request_state(2);
    assert_eq!(request.payer, payer);
    assert_eq!(request.created_at, w.app.block_info().time);
    assert_eq!(request.expires_at, request.created_at.plus_seconds(EXPIRY));
    assert_eq!(request.status, RequestStatus::Open);
    assert_eq!(w.native_balance(&w.payout), 2 * PRICE);
}

// ---------------------------------------------------------------- committing

#[test]
fn an_empty_or_oversized_batch_is_refused() {
    let (mut w, model) = world_with_request();
    let attestor = w.attestors[0].clone();
    assert_eq!(
        err_of(w.commit(&attestor, vec![])),
        ContractError::EmptyBatch
    );
    let packet = w.packet(1, model, 1, &[(w.accepted[0], 10_000)]);
    assert_eq!(
        err_of(w.commit(&attestor, vec![packet; 65])),
        ContractError::BatchTooLarge { count: 65, max: 64 }
    );
}

#[test]
fn malformed_packets_are_refused_with_the_shape_error() {
    let mut w = World::with(Setup {
        max_entries: 2,
        ..Setup::default()
    });
    let model = w.native_model(PRICE, 2, 2);
    let payer = w.payers[0].clone();
    w.paid_request(&payer, model, PRICE);
    let attestor = w.attestors[0].clone();
    let a = w.accepted.clone();
    let too_many = w.packet(1, model, 1, &[(a[0], 10), (a[1], 10), (a[2], 10)]);
    assert_eq!(
        err_of(w.commit(&attestor, vec![too_many])),
        ContractError::Packet(PacketError::TooManyEntries { count: 3, max: 2 })
    );
    let mut bad_hash = w.packet(1, model, 1, &[(a[0], 10)]);
    bad_hash.scores_root = HexBinary::from(vec![1u8; 20]);
    assert_eq!(
        err_of(w.commit(&attestor, vec![bad_hash])),
        ContractError::Packet(PacketError::BadHash {
            field: "scores_root",
            len: 20
        })
    );
    let heavy = w.packet(1, model, 1, &[(a[0], 6_000), (a[1], 4_001)]);
    assert_eq!(
        err_of(w.commit(&attestor, vec![heavy])),
        ContractError::Packet(PacketError::WeightsSum { sum: 10_001 })
    );
}

#[test]
fn a_packet_for_an_unknown_request_is_refused() {
    let (mut w, model) = world_with_request();
    let attestor = w.attestors[0].clone();
    let packet = w.packet(7, model, 1, &[(w.accepted[0], 10_000)]);
    assert_eq!(
        err_of(w.commit(&attestor, vec![packet])),
        ContractError::UnknownRequest { id: 7 }
    );
}

#[test]
fn a_packet_after_expiry_is_refused() {
    let (mut w, model) = world_with_request();
    let attestor = w.attestors[0].clone();
    w.advance(EXPIRY);
    let packet = w.packet(1, model, 1, &[(w.accepted[0], 10_000)]);
    assert_eq!(
        err_of(w.commit(&attestor, vec![packet])),
        ContractError::RequestExpired { id: 1 }
    );
}

#[test]
fn only_the_versions_attestors_may_commit() {
    let (mut w, model) = world_with_request();
    let outsider = w.attestors[3].clone();
    let packet = w.packet(1, model, 1, &[(w.accepted[0], 10_000)]);
    assert_eq!(
        err_of(w.commit(&outsider, vec![packet])),
        ContractError::UnauthorizedAttestor {
            attestor: outsider.clone(),
            model_id: model,
            version: 1
        }
    );
}

#[test]
fn a_packet_must_describe_the_requested_model_exactly() {
    let (mut w, model) = world_with_request();
    let attestor = w.attestors[0].clone();
    let entries = [(w.accepted[0], 10_000)];

    let mut wrong_model = w.packet(1, model, 1, &entries);
    wrong_model.model_version = 2;
    assert_eq!(
        err_of(w.commit(&attestor, vec![wrong_model])),
        ContractError::WrongModel {
            request_id: 1,
            expected_model: model,
            expected_version: 1,
            model_id: model,
            version: 2
        }
    );
    let mut weights = w.packet(1, model, 1, &entries);
    weights.weights_hash = h("other weights");
    assert_eq!(
        err_of(w.commit(&attestor, vec![weights])),
        ContractError::WeightsHashMismatch {
            request_id: 1,
            expected: h(&format!("model-{model}-v1-weights")).to_hex(),
            got: h("other weights").to_hex()
        }
    );
    let mut method = w.packet(1, model, 1, &entries);
    method.method = "influence-v0".into();
    assert_eq!(
        err_of(w.commit(&attestor, vec![method])),
        ContractError::MethodMismatch {
            request_id: 1,
            expected: METHOD.into(),
            method: "influence-v0".into()
        }
    );
    let mut params = w.packet(1, model, 1, &entries);
    params.params_hash = h("other params");
    assert_eq!(
        err_of(w.commit(&attestor, vec![params])),
        ContractError::MethodMismatch {
            request_id: 1,
            expected: METHOD.into(),
            method: METHOD.into()
        }
    );
}

#[test]
fn a_root_outside_the_lineage_is_refused() {
    let (mut w, model) = world_with_request();
    let attestor = w.attestors[0].clone();
    let entries = [(w.accepted[0], 10_000)];
    let mut forged = w.packet(1, model, 1, &entries);
    forged.datanet_roots[0].root = h("forged root");
    assert_eq!(
        err_of(w.commit(&attestor, vec![forged])),
        ContractError::RootNotInLineage {
            datanet_id: w.datanet_id,
            version: 1
        }
    );
    // A real root of another datanet is still not this model's lineage.
    let mut elsewhere = w.packet(1, model, 1, &entries);
    elsewhere.datanet_roots.push(w.foreign_root.clone());
    assert_eq!(
        err_of(w.commit(&attestor, vec![elsewhere])),
        ContractError::RootNotInLineage {
            datanet_id: w.foreign_root.datanet_id,
            version: w.foreign_root.version
        }
    );
    let mut later = w.packet(1, model, 1, &entries);
    later.datanet_roots = vec![DatanetRoot {
        version: 2,
        ..w.root.clone()
    }];
    assert_eq!(
        err_of(w.commit(&attestor, vec![later])),
        ContractError::RootNotInLineage {
            datanet_id: w.datanet_id,
            version: 2
        }
    );
}

#[test]
fn a_packet_naming_a_datanet_version_twice_or_too_many_is_refused() {
    let (mut w, model) = world_with_request();
    let attestor = w.attestors[0].clone();
    let mut twice = w.packet(1, model, 1, &[(w.accepted[0], 10_000)]);
    twice.datanet_roots.push(w.root.clone());
    assert_eq!(
        err_of(w.commit(&attestor, vec![twice])),
        ContractError::Packet(PacketError::DuplicateDatanetRoot {
            datanet_id: w.root.datanet_id,
            version: w.root.version
        })
    );
    let mut many = w.packet(1, model, 1, &[(w.accepted[0], 10_000)]);
    many.datanet_roots = vec![w.root.clone(); MAX_DATANET_ROOTS + 1];
    assert_eq!(
        err_of(w.commit(&attestor, vec![many])),
        ContractError::Packet(PacketError::TooManyDatanetRoots {
            count: MAX_DATANET_ROOTS + 1,
            max: MAX_DATANET_ROOTS
        })
    );
    assert_eq!(w.request_state(1).distinct_packets, 0);
}

#[test]
fn only_accepted_contributions_frozen_in_the_lineage_can_be_attributed() {
    let (mut w, model) = world_with_request();
    let attestor = w.attestors[0].clone();
    for outside in [w.rejected, w.pending, w.late, w.foreign, 999] {
        let packet = w.packet(1, model, 1, &[(w.accepted[0], 5_000), (outside, 5_000)]);
        assert_eq!(
            err_of(w.commit(&attestor, vec![packet])),
            ContractError::ContributionNotInLineage {
                contribution_id: outside
            },
            "contribution {outside}"
        );
    }
    assert_eq!(w.request_state(1).distinct_packets, 0);
}

#[test]
fn committing_the_same_packet_twice_is_a_no_op() {
    let (mut w, model) = world_with_request();
    let attestor = w.attestors[0].clone();
    let packet = w.packet(1, model, 1, &[(w.accepted[0], 10_000)]);
    w.commit(&attestor, vec![packet.clone()]).unwrap();
    let before = w.request_state(1);
    let res = w.commit(&attestor, vec![packet.clone(), packet]).unwrap();
    let duplicates: Vec<_> = res
        .events
        .iter()
        .filter(|e| e.ty == "wasm-commit_attribution")
        .map(|e| {
            e.attributes
                .iter()
                .find(|a| a.key == "duplicate")
                .map(|a| a.value.clone())
        })
        .collect();
    assert_eq!(duplicates, vec![Some("true".into()), Some("true".into())]);
    assert_eq!(w.request_state(1), before);
    let commits: Vec<payout::CommitInfo> = w
        .app
        .wrap()
        .query_wasm_smart(&w.payout, &payout::QueryMsg::Commits { request_id: 1 })
        .unwrap();
    assert_eq!(commits.len(), 1);
}

#[test]
fn an_attestor_cannot_change_its_packet() {
    let (mut w, model) = world_with_request();
    let attestor = w.attestors[0].clone();
    let first = w.packet(1, model, 1, &[(w.accepted[0], 10_000)]);
    let second = w.packet(1, model, 1, &[(w.accepted[1], 10_000)]);
    w.commit(&attestor, vec![first]).unwrap();
    assert_eq!(
        err_of(w.commit(&attestor, vec![second])),
        ContractError::ConflictingCommit {
            request_id: 1,
            attestor: attestor.clone()
        }
    );
}

#[test]
fn one_bad_packet_fails_the_whole_batch() {
    let (mut w, model) = world_with_request();
    let payer = w.payers[0].clone();
    w.paid_request(&payer, model, PRICE);
    let attestor = w.attestors[0].clone();
    let good = w.packet(1, model, 1, &[(w.accepted[0], 10_000)]);
    let bad = w.packet(2, model, 1, &[(w.rejected, 10_000)]);
    assert_eq!(
        err_of(w.commit(&attestor, vec![good, bad])),
        ContractError::ContributionNotInLineage {
            contribution_id: w.rejected
        }
    );
    assert_eq!(w.request_state(1).distinct_packets, 0);
}

#[test]
fn packets_and_requests_that_do_not_exist_are_reported_by_queries() {
    let (w, _) = world_with_request();
    let err = w
        .app
        .wrap()
        .query_wasm_smart::<payout::InferenceRequest>(
            &w.payout,
            &payout::QueryMsg::Request { request_id: 5 },
        )
        .unwrap_err();
    assert!(err
        .to_string()
        .contains(&ContractError::UnknownRequest { id: 5 }.to_string()));
    let err = w
        .app
        .wrap()
        .query_wasm_smart::<tributary_types::AttributionPacket>(
            &w.payout,
            &payout::QueryMsg::Packet {
                request_id: 1,
                packet_hash: h("nothing"),
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains(
        &ContractError::UnknownPacket {
            request_id: 1,
            packet_hash: h("nothing").to_hex()
        }
        .to_string()
    ));
}

// ---------------------------------------------------------------- finalizing

#[test]
fn an_empty_or_oversized_finalize_is_refused() {
    let (mut w, _) = world_with_request();
    assert_eq!(err_of(w.finalize(vec![])), ContractError::EmptyBatch);
    assert_eq!(
        err_of(w.finalize((1..=51).collect())),
        ContractError::BatchTooLarge { count: 51, max: 50 }
    );
}

#[test]
fn finalizing_an_unknown_or_unattested_request_is_refused() {
    let (mut w, model) = world_with_request();
    assert_eq!(
        err_of(w.finalize(vec![3])),
        ContractError::UnknownRequest { id: 3 }
    );
    assert_eq!(
        err_of(w.finalize(vec![1])),
        ContractError::NotFinalizable {
            id: 1,
            status: RequestStatus::Open
        }
    );
    // One vote of two is not quorum.
    let attestor = w.attestors[0].clone();
    let packet = w.packet(1, model, 1, &[(w.accepted[0], 10_000)]);
    w.commit(&attestor, vec![packet]).unwrap();
    w.advance(WINDOW);
    assert_eq!(
        err_of(w.finalize(vec![1])),
        ContractError::NotFinalizable {
            id: 1,
            status: RequestStatus::Open
        }
    );
}

#[test]
fn finalizing_inside_the_challenge_window_is_refused() {
    let (mut w, model) = world_with_request();
    let packet = w.packet(1, model, 1, &[(w.accepted[0], 10_000)]);
    for attestor in [w.attestors[0].clone(), w.attestors[1].clone()] {
        w.commit(&attestor, vec![packet.clone()]).unwrap();
    }
    let ready_at = w.app.block_info().time.plus_seconds(WINDOW);
    w.advance(WINDOW - 1);
    assert_eq!(
        err_of(w.finalize(vec![1])),
        ContractError::ChallengeWindowOpen { id: 1, ready_at }
    );
    w.advance(1);
    w.finalize(vec![1]).unwrap();
}

#[test]
fn a_finalized_request_is_closed_to_everything() {
    let (mut w, model) = world_with_request();
    let packet = w.packet(1, model, 1, &[(w.accepted[0], 10_000)]);
    for attestor in [w.attestors[0].clone(), w.attestors[1].clone()] {
        w.commit(&attestor, vec![packet.clone()]).unwrap();
    }
    w.advance(WINDOW);
    w.finalize(vec![1]).unwrap();
    let closed = ContractError::RequestClosed {
        id: 1,
        status: RequestStatus::Finalized,
    };
    assert_eq!(err_of(w.finalize(vec![1])), closed);
    let attestor = w.attestors[0].clone();
    assert_eq!(err_of(w.commit(&attestor, vec![packet])), closed);
    w.advance(EXPIRY);
    assert_eq!(err_of(w.refund(1)), closed);
}

#[test]
fn one_unready_request_fails_the_whole_finalize() {
    let (mut w, model) = world_with_request();
    let payer = w.payers[1].clone();
    w.paid_request(&payer, model, PRICE);
    let packet = w.packet(1, model, 1, &[(w.accepted[0], 10_000)]);
    for attestor in [w.attestors[0].clone(), w.attestors[1].clone()] {
        w.commit(&attestor, vec![packet.clone()]).unwrap();
    }
    w.advance(WINDOW);
    assert_eq!(
        err_of(w.finalize(vec![1, 2])),
        ContractError::NotFinalizable {
            id: 2,
            status: RequestStatus::Open
        }
    );
    assert_eq!(w.request_state(1).status, RequestStatus::Attested);
    assert!(w.claimable(&w.treasury.clone()).is_empty());
}

// ---------------------------------------------------------------- disputes and refunds

#[test]
fn a_conflicting_packet_disputes_the_request_and_it_settles_without_attribution_at_expiry() {
    let (mut w, model) = world_with_request();
    let payer = w.payers[0].clone();
    let [a, b] = [w.attestors[0].clone(), w.attestors[1].clone()];
    let honest = w.packet(1, model, 1, &[(w.accepted[0], 10_000)]);
    let other = w.packet(1, model, 1, &[(w.accepted[1], 10_000)]);
    w.commit(&a, vec![honest]).unwrap();
    w.commit(&b, vec![other]).unwrap();
    let request = w.request_state(1);
    assert_eq!(request.status, RequestStatus::Disputed);
    assert_eq!(request.distinct_packets, 2);
    assert_eq!(request.agreed_packet, None);

    w.advance(WINDOW);
    assert_eq!(
        err_of(w.finalize(vec![1])),
        ContractError::NotFinalizable {
            id: 1,
            status: RequestStatus::Disputed
        }
    );
    assert_eq!(
        err_of(w.refund(1)),
        ContractError::NotExpired {
            id: 1,
            expires_at: request.expires_at
        }
    );
    w.advance(EXPIRY - WINDOW);
    // The completion was served and attested: no refund, a settlement without attribution.
    assert_eq!(err_of(w.refund(1)), ContractError::NotRefundable { id: 1 });
    w.finalize(vec![1]).unwrap();
    assert_eq!(w.native_balance(&payer), START_NATIVE - PRICE);
    let request = w.request_state(1);
    assert_eq!(request.status, RequestStatus::Finalized);
    let settlement = request.settlement.unwrap();
    assert_eq!(settlement.unattributed, Uint128::new(7_000));
    assert_eq!(settlement.operators, vec![Uint128::new(500); 2]);
    assert_eq!(w.claimable(&a), vec![(AssetInfo::native(DENOM), 500)]);
    assert_eq!(w.claimable(&b), vec![(AssetInfo::native(DENOM), 500)]);
    assert_eq!(
        err_of(w.refund(1)),
        ContractError::RequestClosed {
            id: 1,
            status: RequestStatus::Finalized
        }
    );
}

#[test]
fn with_quorum_one_a_challenger_makes_the_request_ambiguous_until_expiry() {
    let mut w = World::new();
    let model = w.native_model(PRICE, 2, 1);
    let payer = w.payers[0].clone();
    w.paid_request(&payer, model, PRICE);
    let [a, challenger] = [w.attestors[0].clone(), w.attestors[1].clone()];
    let first = w.packet(1, model, 1, &[(w.accepted[0], 10_000)]);
    w.commit(&a, vec![first.clone()]).unwrap();
    let attested = w.request_state(1);
    assert_eq!(attested.status, RequestStatus::Attested);
    assert_eq!(
        attested.agreed_packet.as_deref(),
        Some(first.packet_hash().unwrap().as_slice())
    );

    let challenge = w.packet(1, model, 1, &[(w.accepted[1], 10_000)]);
    w.commit(&challenger, vec![challenge]).unwrap();
    let disputed = w.request_state(1);
    assert_eq!(disputed.status, RequestStatus::Disputed);
    assert_eq!(disputed.agreed_packet, None);
    assert_eq!(disputed.finalizable_at, None);

    w.advance(WINDOW);
    assert_eq!(
        err_of(w.finalize(vec![1])),
        ContractError::NotFinalizable {
            id: 1,
            status: RequestStatus::Disputed
        }
    );
    w.advance(EXPIRY);
    assert_eq!(err_of(w.refund(1)), ContractError::NotRefundable { id: 1 });
    w.finalize(vec![1]).unwrap();
    assert_eq!(w.native_balance(&payer), START_NATIVE - PRICE);
    assert_eq!(w.claimable(&a), vec![(AssetInfo::native(DENOM), 500)]);
    assert_eq!(
        w.claimable(&challenger),
        vec![(AssetInfo::native(DENOM), 500)]
    );
}

#[test]
fn a_dispute_with_one_packet_at_quorum_still_finalizes_for_its_attestors() {
    let mut w = World::new();
    let model = w.native_model(PRICE, 3, 2);
    let payer = w.payers[0].clone();
    w.paid_request(&payer, model, PRICE);
    let [a, b, c] = [0, 1, 2].map(|i| w.attestors[i].clone());
    let agreed = w.packet(1, model, 1, &[(w.accepted[0], 10_000)]);
    let minority = w.packet(1, model, 1, &[(w.accepted[1], 10_000)]);
    w.commit(&a, vec![agreed.clone()]).unwrap();
    w.commit(&b, vec![agreed.clone()]).unwrap();
    let ready_at = w.request_state(1).finalizable_at;
    w.advance(10);
    w.commit(&c, vec![minority]).unwrap();
    let request = w.request_state(1);
    assert_eq!(request.status, RequestStatus::Disputed);
    assert_eq!(
        request.agreed_packet.as_deref(),
        Some(agreed.packet_hash().unwrap().as_slice())
    );
    // The challenge does not move the window.
    assert_eq!(request.finalizable_at, ready_at);
    w.advance(WINDOW);
    w.finalize(vec![1]).unwrap();
    // Operators are the two attestors of the agreed packet: 1_000 split 500 / 500.
    assert_eq!(w.claimable(&a), vec![(AssetInfo::native(DENOM), 500)]);
    assert_eq!(w.claimable(&b), vec![(AssetInfo::native(DENOM), 500)]);
    assert!(w.claimable(&c).is_empty());
}

#[test]
fn a_second_packet_reaching_quorum_clears_the_agreement() {
    let mut w = World::new();
    let model = w.native_model(PRICE, 4, 2);
    let payer = w.payers[0].clone();
    w.paid_request(&payer, model, PRICE);
    let attestors: Vec<Addr> = w.attestors.clone();
    let x = w.packet(1, model, 1, &[(w.accepted[0], 10_000)]);
    let y = w.packet(1, model, 1, &[(w.accepted[1], 10_000)]);
    w.commit(&attestors[0], vec![x.clone()]).unwrap();
    w.commit(&attestors[1], vec![x]).unwrap();
    w.commit(&attestors[2], vec![y.clone()]).unwrap();
    assert!(w.request_state(1).agreed_packet.is_some());
    w.commit(&attestors[3], vec![y]).unwrap();
    let request = w.request_state(1);
    assert_eq!(request.status, RequestStatus::Disputed);
    assert_eq!(request.agreed_packet, None);
    w.advance(WINDOW);
    assert_eq!(
        err_of(w.finalize(vec![1])),
        ContractError::NotFinalizable {
            id: 1,
            status: RequestStatus::Disputed
        }
    );
    // At expiry the four attestors who served it share the operators' part; no packet decides.
    w.advance(EXPIRY);
    assert_eq!(err_of(w.refund(1)), ContractError::NotRefundable { id: 1 });
    w.finalize(vec![1]).unwrap();
    assert_eq!(w.native_balance(&payer), START_NATIVE - PRICE);
    for attestor in &attestors {
        assert_eq!(w.claimable(attestor), vec![(AssetInfo::native(DENOM), 250)]);
    }
    assert!(w
        .request_state(1)
        .settlement
        .unwrap()
        .contributions
        .is_empty());
}

#[test]
fn a_request_nobody_attested_is_refunded_at_expiry() {
    let mut w = World::new();
    let model = w.native_model(PRICE, 2, 2);
    let token_model = w.cw20_model(PRICE);
    let (payer, token) = (w.payers[0].clone(), w.token.clone());
    w.paid_request(&payer, model, PRICE);
    w.request_cw20(&payer, &token, token_model, 1, PRICE + 7)
        .unwrap();
    assert_eq!(w.token_balance(&token, &payer), START_TOKENS - PRICE);
    assert_eq!(err_of(w.refund(9)), ContractError::UnknownRequest { id: 9 });
    w.advance(EXPIRY - 1);
    assert!(matches!(
        err_of(w.refund(1)),
        ContractError::NotExpired { id: 1, .. }
    ));
    w.advance(1);
    w.refund(1).unwrap();
    w.refund(2).unwrap();
    assert_eq!(w.native_balance(&payer), START_NATIVE);
    assert_eq!(w.token_balance(&token, &payer), START_TOKENS);
    assert_eq!(w.native_balance(&w.payout), 0);
    assert_eq!(w.token_balance(&token, &w.payout), 0);
}

#[test]
fn a_finalizable_request_cannot_be_refunded() {
    let (mut w, model) = world_with_request();
    let packet = w.packet(1, model, 1, &[(w.accepted[0], 10_000)]);
    for attestor in [w.attestors[0].clone(), w.attestors[1].clone()] {
        w.commit(&attestor, vec![packet.clone()]).unwrap();
    }
    w.advance(EXPIRY);
    assert_eq!(err_of(w.refund(1)), ContractError::NotRefundable { id: 1 });
    // Finalizing is still possible after expiry.
    w.finalize(vec![1]).unwrap();
}

#[test]
fn claiming_with_nothing_owed_is_refused() {
    let (mut w, _) = world_with_request();
    let payer = w.payers[0].clone();
    assert_eq!(err_of(w.claim(&payer)), ContractError::NothingToClaim);
}
