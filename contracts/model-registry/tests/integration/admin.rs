//! Instantiation, the admin's config changes and migration.

use crate::suite::{Suite, MIN_CONTRIBUTORS_BPS, MIN_PROTOCOL_BPS};
use cosmwasm_std::Addr;
use cw_multi_test::{App, ContractWrapper, Executor};
use tributary_model_registry::contract::{CONTRACT_NAME, CONTRACT_VERSION};
use tributary_model_registry::error::ContractError;
use tributary_types::registry::{ConfigResponse, ExecuteMsg, InstantiateMsg, MigrateMsg, QueryMsg};
use tributary_types::upgrade::UpgradeError;
use tributary_types::FeeSplit;

fn instantiate_err(msg: &InstantiateMsg) -> ContractError {
    let mut app = App::default();
    let code = app.store_code(Box::new(ContractWrapper::new(
        tributary_model_registry::contract::execute,
        tributary_model_registry::contract::instantiate,
        tributary_model_registry::contract::query,
    )));
    let sender = app.api().addr_make("admin");
    app.instantiate_contract(code, sender, msg, &[], "model-registry", None)
        .unwrap_err()
        .downcast::<ContractError>()
        .unwrap()
}

#[test]
fn instantiate_defaults_the_admin_to_the_sender() {
    let suite = Suite::new();
    let config: ConfigResponse = suite.query(&QueryMsg::Config {});
    assert_eq!(
        config,
        ConfigResponse {
            admin: suite.admin.clone(),
            datanet_contract: suite.datanet.clone(),
            min_contributors_bps: MIN_CONTRIBUTORS_BPS,
            min_protocol_bps: MIN_PROTOCOL_BPS,
        }
    );
    let stored = cw2::query_contract_info(&suite.app.wrap(), &suite.registry).unwrap();
    assert_eq!(stored.contract, CONTRACT_NAME);
    assert_eq!(stored.version, CONTRACT_VERSION);
}

#[test]
fn instantiate_refuses_minimums_over_10000() {
    let datanet = App::default().api().addr_make("datanet").to_string();
    assert_eq!(
        instantiate_err(&InstantiateMsg {
            admin: None,
            datanet_contract: datanet.clone(),
            min_contributors_bps: 9_000,
            min_protocol_bps: 1_001,
        }),
        ContractError::MinimumSharesTooHigh {
            contributors_bps: 9_000,
            protocol_bps: 1_001
        }
    );
    assert_eq!(
        instantiate_err(&InstantiateMsg {
            admin: None,
            datanet_contract: datanet,
            min_contributors_bps: u16::MAX,
            min_protocol_bps: 0,
        }),
        ContractError::MinimumSharesTooHigh {
            contributors_bps: u16::MAX,
            protocol_bps: 0
        }
    );
}

#[test]
fn instantiate_refuses_a_datanet_contract_that_is_not_one() {
    // Every lineage is checked against the datanet contract, which cannot be changed later: a
    // wrong address would leave a registry on which no model can ever be registered.
    let mut suite = Suite::new();
    let account = suite.owner.to_string();
    let not_a_datanet = suite.registry.to_string();
    let code = suite.registry_code;
    let admin = suite.admin.clone();
    for address in [account, not_a_datanet] {
        let err = suite
            .app
            .instantiate_contract(
                code,
                admin.clone(),
                &InstantiateMsg {
                    admin: None,
                    datanet_contract: address.clone(),
                    min_contributors_bps: 0,
                    min_protocol_bps: 0,
                },
                &[],
                "model-registry",
                None,
            )
            .unwrap_err()
            .downcast::<ContractError>()
            .unwrap();
        assert_eq!(err, ContractError::NotADatanetContract { address });
    }
}

#[test]
fn instantiate_refuses_malformed_addresses() {
    let datanet = App::default().api().addr_make("datanet").to_string();
    assert_eq!(
        instantiate_err(&InstantiateMsg {
            admin: None,
            datanet_contract: "datanet".to_string(),
            min_contributors_bps: 0,
            min_protocol_bps: 0,
        }),
        ContractError::InvalidAddress {
            address: "datanet".to_string()
        }
    );
    assert_eq!(
        instantiate_err(&InstantiateMsg {
            admin: Some("Admin".to_string()),
            datanet_contract: datanet,
            min_contributors_bps: 0,
            min_protocol_bps: 0,
        }),
        ContractError::InvalidAddress {
            address: "Admin".to_string()
        }
    );
}

fn update(admin: Option<&Addr>, contributors: Option<u16>, protocol: Option<u16>) -> ExecuteMsg {
    ExecuteMsg::UpdateConfig {
        admin: admin.map(Addr::to_string),
        min_contributors_bps: contributors,
        min_protocol_bps: protocol,
    }
}

#[test]
fn only_the_admin_updates_the_config() {
    let mut suite = Suite::new();
    let owner = suite.owner.clone();
    assert_eq!(
        suite.execute_err(&owner, &update(Some(&owner), None, None)),
        ContractError::NotAdmin {
            sender: owner.to_string()
        }
    );
    let config: ConfigResponse = suite.query(&QueryMsg::Config {});
    assert_eq!(config.admin, suite.admin);
}

#[test]
fn raised_minimums_apply_to_later_versions_only() {
    let mut suite = Suite::new();
    let model_id = suite.register(suite.input());
    let admin = suite.admin.clone();
    let response = suite
        .execute(&admin, &update(None, Some(8_000), Some(600)))
        .unwrap();
    assert!(response.events.iter().any(|e| e
        .attributes
        .iter()
        .any(|a| a.key == "action" && a.value == "update_config")));
    let config: ConfigResponse = suite.query(&QueryMsg::Config {});
    assert_eq!(config.min_contributors_bps, 8_000);
    assert_eq!(config.min_protocol_bps, 600);
    assert_eq!(config.admin, suite.admin);

    // The registered 70/15/10/5 split is now too small for a new version.
    let owner = suite.owner.clone();
    let input = suite.input();
    assert_eq!(
        suite.execute_err(
            &owner,
            &ExecuteMsg::AddVersion {
                model_id,
                version: input
            }
        ),
        ContractError::ContributorsShareTooLow {
            share: 7_000,
            min: 8_000
        }
    );
    let mut input = suite.input();
    input.split = FeeSplit {
        contributors_bps: 8_000,
        developer_bps: 1_000,
        operator_bps: 500,
        protocol_bps: 500,
    };
    assert_eq!(
        suite.execute_err(
            &owner,
            &ExecuteMsg::AddVersion {
                model_id,
                version: input.clone()
            }
        ),
        ContractError::ProtocolShareTooLow {
            share: 500,
            min: 600
        }
    );
    input.split.operator_bps = 400;
    input.split.protocol_bps = 600;
    suite
        .execute(
            &owner,
            &ExecuteMsg::AddVersion {
                model_id,
                version: input,
            },
        )
        .unwrap();
}

#[test]
fn update_config_refuses_minimums_over_10000() {
    let mut suite = Suite::new();
    let admin = suite.admin.clone();
    // Only the protocol minimum changes; the stored contributors' minimum counts towards the sum.
    assert_eq!(
        suite.execute_err(&admin, &update(None, None, Some(9_001))),
        ContractError::MinimumSharesTooHigh {
            contributors_bps: MIN_CONTRIBUTORS_BPS,
            protocol_bps: 9_001
        }
    );
    let config: ConfigResponse = suite.query(&QueryMsg::Config {});
    assert_eq!(config.min_protocol_bps, MIN_PROTOCOL_BPS);
}

#[test]
fn admin_hands_over_to_a_new_admin() {
    let mut suite = Suite::new();
    let admin = suite.admin.clone();
    let next = suite.app.api().addr_make("next-admin");
    assert_eq!(
        suite.execute_err(
            &admin,
            &ExecuteMsg::UpdateConfig {
                admin: Some("next-admin".to_string()),
                min_contributors_bps: None,
                min_protocol_bps: None,
            }
        ),
        ContractError::InvalidAddress {
            address: "next-admin".to_string()
        }
    );
    suite
        .execute(&admin, &update(Some(&next), None, None))
        .unwrap();
    let config: ConfigResponse = suite.query(&QueryMsg::Config {});
    assert_eq!(config.admin, next);
    assert_eq!(config.min_contributors_bps, MIN_CONTRIBUTORS_BPS);
    assert_eq!(
        suite.execute_err(&admin, &update(None, Some(0), None)),
        ContractError::NotAdmin {
            sender: admin.to_string()
        }
    );
    suite.execute(&next, &update(None, Some(0), None)).unwrap();
}

fn migrate_err(suite: &mut Suite, contract: &Addr) -> ContractError {
    let admin = suite.admin.clone();
    suite
        .app
        .migrate_contract(admin, contract.clone(), &MigrateMsg {}, suite.registry_code)
        .unwrap_err()
        .downcast::<ContractError>()
        .unwrap()
}

#[test]
fn migrating_to_the_same_version_keeps_the_state() {
    let mut suite = Suite::new();
    let model_id = suite.register(suite.input());
    let admin = suite.admin.clone();
    let registry = suite.registry.clone();
    let code = suite.registry_code;
    suite
        .app
        .migrate_contract(admin, registry, &MigrateMsg {}, code)
        .unwrap();
    let model: tributary_types::registry::Model = suite.query(&QueryMsg::Model { model_id });
    assert_eq!(model.owner, suite.owner);
    let stored = cw2::query_contract_info(&suite.app.wrap(), &suite.registry).unwrap();
    assert_eq!(stored.version, CONTRACT_VERSION);
}

#[test]
fn migrate_refuses_a_downgrade() {
    let mut suite = Suite::new();
    let registry = suite.registry.clone();
    cw2::set_contract_version(
        suite.app.contract_storage_mut(&registry).as_mut(),
        CONTRACT_NAME,
        "99.0.0",
    )
    .unwrap();
    assert_eq!(
        migrate_err(&mut suite, &registry),
        ContractError::Upgrade(UpgradeError::Downgrade {
            stored: "99.0.0".to_string(),
            new: CONTRACT_VERSION.to_string()
        })
    );
}

#[test]
fn migrate_refuses_another_contract() {
    let mut suite = Suite::new();
    // The datanet contract, migrated onto the registry's code.
    let datanet = suite.datanet.clone();
    assert_eq!(
        migrate_err(&mut suite, &datanet),
        ContractError::Upgrade(UpgradeError::WrongContract {
            stored: tributary_datanet::contract::CONTRACT_NAME.to_string(),
            expected: CONTRACT_NAME.to_string()
        })
    );
}
