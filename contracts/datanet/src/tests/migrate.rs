//! Migrating the contract in place.

use cw_multi_test::Executor;
use tributary_types::datanet::{CurationPolicy, MigrateMsg};
use tributary_types::upgrade::UpgradeError;

use super::suite::{attr, Suite};
use crate::contract::{CONTRACT_NAME, CONTRACT_VERSION};
use crate::error::ContractError;

fn store_version(suite: &mut Suite, name: &str, version: &str) {
    let contract = suite.contract.clone();
    let mut storage = suite.app.contract_storage_mut(&contract);
    cw2::set_contract_version(storage.as_mut(), name, version).unwrap();
}

fn stored_version(suite: &Suite) -> cw2::ContractVersion {
    cw2::query_contract_info(&suite.app.wrap(), suite.contract.to_string()).unwrap()
}

fn migrate(suite: &mut Suite) -> Result<cw_multi_test::AppResponse, ContractError> {
    let (admin, contract, code_id) = (suite.admin.clone(), suite.contract.clone(), suite.code_id);
    suite
        .app
        .migrate_contract(admin, contract, &MigrateMsg {}, code_id)
        .map_err(|err| err.downcast().unwrap())
}

#[test]
fn instantiate_records_the_contract_version() {
    let suite = Suite::new();
    let version = stored_version(&suite);
    assert_eq!(version.contract, CONTRACT_NAME);
    assert_eq!(version.version, CONTRACT_VERSION);
}

#[test]
fn migrate_from_an_older_version_keeps_state_and_bumps_the_version() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::Open);
    let alice = suite.alice.clone();
    suite.contribute(&alice, id, b"kept");
    store_version(&mut suite, CONTRACT_NAME, "0.0.1");

    let response = migrate(&mut suite).unwrap();
    assert_eq!(attr(&response, "action").unwrap(), "migrate");
    assert_eq!(attr(&response, "from_version").unwrap(), "0.0.1");
    assert_eq!(attr(&response, "to_version").unwrap(), CONTRACT_VERSION);
    assert_eq!(stored_version(&suite).version, CONTRACT_VERSION);
    assert_eq!(suite.datanet(id).accepted_count, 1);

    // Re-running the same version is allowed.
    migrate(&mut suite).unwrap();
}

#[test]
fn migrate_refuses_a_downgrade() {
    let mut suite = Suite::new();
    store_version(&mut suite, CONTRACT_NAME, "99.0.0");
    assert_eq!(
        migrate(&mut suite).unwrap_err(),
        ContractError::Upgrade(UpgradeError::Downgrade {
            stored: "99.0.0".to_string(),
            new: CONTRACT_VERSION.to_string(),
        })
    );
    assert_eq!(stored_version(&suite).version, "99.0.0");
}

#[test]
fn migrate_refuses_another_contract() {
    let mut suite = Suite::new();
    store_version(&mut suite, "crates.io:cw20-base", CONTRACT_VERSION);
    assert_eq!(
        migrate(&mut suite).unwrap_err(),
        ContractError::Upgrade(UpgradeError::WrongContract {
            stored: "crates.io:cw20-base".to_string(),
            expected: CONTRACT_NAME.to_string(),
        })
    );
}

#[test]
fn migrate_refuses_a_stored_version_that_is_not_semver() {
    let mut suite = Suite::new();
    store_version(&mut suite, CONTRACT_NAME, "latest");
    assert_eq!(
        migrate(&mut suite).unwrap_err(),
        ContractError::Upgrade(UpgradeError::BadVersion {
            version: "latest".to_string(),
        })
    );
}
