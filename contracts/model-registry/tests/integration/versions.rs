//! Registering models, adding and deprecating versions, rotating attestors.

use crate::suite::{attribute, hash, register, Suite};
use cosmwasm_std::Addr;
use tributary_model_registry::error::ContractError;
use tributary_types::registry::{ExecuteMsg, Model, ModelVersion, QueryMsg};

#[test]
fn registering_stores_version_one_with_the_owner_as_developer() {
    let mut suite = Suite::new();
    let input = suite.input();
    let owner = suite.owner.clone();
    let response = suite
        .execute(&owner, &register("coder-small", input.clone()))
        .unwrap();
    assert_eq!(attribute(&response, "action"), "register_model");
    assert_eq!(attribute(&response, "model_id"), "1");
    assert_eq!(attribute(&response, "version"), "1");

    let model: Model = suite.query(&QueryMsg::Model { model_id: 1 });
    assert_eq!(model.id, 1);
    assert_eq!(model.owner, suite.owner);
    assert_eq!(model.name, "coder-small");
    assert_eq!(model.architecture, "llama-60m");
    assert_eq!(model.latest_version, 1);
    assert_eq!(model.created_at, suite.app.block_info().time);

    let version: ModelVersion = suite.query(&QueryMsg::ModelVersion {
        model_id: 1,
        version: 1,
    });
    assert_eq!(version.model_id, 1);
    assert_eq!(version.version, 1);
    assert_eq!(version.lineage, vec![suite.d1v1.clone()]);
    assert_eq!(version.weights_hash, input.weights_hash);
    assert_eq!(version.weights_uri, input.weights_uri);
    assert_eq!(version.index_hash, input.index_hash);
    assert_eq!(version.method, input.method);
    assert_eq!(version.price, input.price);
    assert_eq!(version.split, input.split);
    assert_eq!(version.attestors, suite.attestors);
    assert_eq!(version.quorum, 1);
    assert!(!version.deprecated);
    assert_eq!(version.developer, suite.owner);
}

#[test]
fn model_ids_count_up_from_one() {
    let mut suite = Suite::new();
    let other = suite.app.api().addr_make("other");
    let input = suite.input();
    assert_eq!(suite.register(input.clone()), 1);
    assert_eq!(suite.register_as(&other, "second", input.clone()), 2);
    assert_eq!(suite.register(input), 3);
}

#[test]
fn add_version_appends_the_next_version() {
    let mut suite = Suite::new();
    let model_id = suite.register(suite.input());
    let mut input = suite.input_on(vec![suite.d1v2.clone()]);
    input.weights_hash = hash("weights v2");
    let owner = suite.owner.clone();
    let response = suite
        .execute(
            &owner,
            &ExecuteMsg::AddVersion {
                model_id,
                version: input,
            },
        )
        .unwrap();
    assert_eq!(attribute(&response, "action"), "add_version");
    assert_eq!(attribute(&response, "model_id"), model_id.to_string());
    assert_eq!(attribute(&response, "version"), "2");

    let model: Model = suite.query(&QueryMsg::Model { model_id });
    assert_eq!(model.latest_version, 2);
    let second: ModelVersion = suite.query(&QueryMsg::ModelVersion {
        model_id,
        version: 2,
    });
    assert_eq!(second.weights_hash, hash("weights v2"));
    assert_eq!(second.lineage, vec![suite.d1v2.clone()]);
    assert_eq!(second.developer, suite.owner);
    // The first version is untouched.
    let first: ModelVersion = suite.query(&QueryMsg::ModelVersion {
        model_id,
        version: 1,
    });
    assert_eq!(first.weights_hash, hash("weights"));
}

#[test]
fn only_the_owner_adds_versions() {
    let mut suite = Suite::new();
    let model_id = suite.register(suite.input());
    let stranger = suite.app.api().addr_make("stranger");
    let input = suite.input();
    assert_eq!(
        suite.execute_err(
            &stranger,
            &ExecuteMsg::AddVersion {
                model_id,
                version: input
            }
        ),
        ContractError::NotModelOwner {
            model_id,
            sender: stranger.to_string()
        }
    );
    let model: Model = suite.query(&QueryMsg::Model { model_id });
    assert_eq!(model.latest_version, 1);
}

#[test]
fn adding_a_version_to_an_unknown_model_is_rejected() {
    let mut suite = Suite::new();
    let owner = suite.owner.clone();
    let input = suite.input();
    assert_eq!(
        suite.execute_err(
            &owner,
            &ExecuteMsg::AddVersion {
                model_id: 7,
                version: input
            }
        ),
        ContractError::ModelNotFound { model_id: 7 }
    );
}

#[test]
fn new_versions_are_checked_like_the_first() {
    let mut suite = Suite::new();
    let model_id = suite.register(suite.input());
    let mut input = suite.input();
    input.quorum = 3;
    let owner = suite.owner.clone();
    assert_eq!(
        suite.execute_err(
            &owner,
            &ExecuteMsg::AddVersion {
                model_id,
                version: input
            }
        ),
        ContractError::InvalidQuorum {
            quorum: 3,
            attestors: 2
        }
    );
}

#[test]
fn deprecating_marks_only_that_version() {
    let mut suite = Suite::new();
    let model_id = suite.register(suite.input());
    let owner = suite.owner.clone();
    let input = suite.input();
    suite
        .execute(
            &owner,
            &ExecuteMsg::AddVersion {
                model_id,
                version: input,
            },
        )
        .unwrap();
    let response = suite
        .execute(
            &owner,
            &ExecuteMsg::DeprecateVersion {
                model_id,
                version: 1,
            },
        )
        .unwrap();
    assert_eq!(attribute(&response, "action"), "deprecate_version");
    assert_eq!(attribute(&response, "model_id"), model_id.to_string());
    assert_eq!(attribute(&response, "version"), "1");

    let first: ModelVersion = suite.query(&QueryMsg::ModelVersion {
        model_id,
        version: 1,
    });
    let second: ModelVersion = suite.query(&QueryMsg::ModelVersion {
        model_id,
        version: 2,
    });
    assert!(first.deprecated);
    assert!(!second.deprecated);
}

#[test]
fn deprecating_twice_is_rejected() {
    let mut suite = Suite::new();
    let model_id = suite.register(suite.input());
    let owner = suite.owner.clone();
    let msg = ExecuteMsg::DeprecateVersion {
        model_id,
        version: 1,
    };
    suite.execute(&owner, &msg).unwrap();
    assert_eq!(
        suite.execute_err(&owner, &msg),
        ContractError::AlreadyDeprecated {
            model_id,
            version: 1
        }
    );
}

#[test]
fn deprecating_an_unknown_version_is_rejected() {
    let mut suite = Suite::new();
    let model_id = suite.register(suite.input());
    let owner = suite.owner.clone();
    assert_eq!(
        suite.execute_err(
            &owner,
            &ExecuteMsg::DeprecateVersion {
                model_id,
                version: 2
            }
        ),
        ContractError::VersionNotFound {
            model_id,
            version: 2
        }
    );
    assert_eq!(
        suite.execute_err(
            &owner,
            &ExecuteMsg::DeprecateVersion {
                model_id: 9,
                version: 1
            }
        ),
        ContractError::ModelNotFound { model_id: 9 }
    );
}

#[test]
fn only_the_owner_deprecates() {
    let mut suite = Suite::new();
    let model_id = suite.register(suite.input());
    let admin = suite.admin.clone();
    assert_eq!(
        suite.execute_err(
            &admin,
            &ExecuteMsg::DeprecateVersion {
                model_id,
                version: 1
            }
        ),
        ContractError::NotModelOwner {
            model_id,
            sender: admin.to_string()
        }
    );
    let version: ModelVersion = suite.query(&QueryMsg::ModelVersion {
        model_id,
        version: 1,
    });
    assert!(!version.deprecated);
}

fn rotate(model_id: u64, version: u32, attestors: &[Addr], quorum: u32) -> ExecuteMsg {
    ExecuteMsg::SetAttestors {
        model_id,
        version,
        attestors: attestors.iter().map(Addr::to_string).collect(),
        quorum,
    }
}

#[test]
fn attestors_rotate_with_their_quorum() {
    let mut suite = Suite::new();
    let model_id = suite.register(suite.input());
    let owner = suite.owner.clone();
    let api = suite.app.api();
    let next = vec![
        api.addr_make("attestor-c"),
        api.addr_make("attestor-d"),
        api.addr_make("attestor-e"),
    ];
    let response = suite
        .execute(&owner, &rotate(model_id, 1, &next, 2))
        .unwrap();
    assert_eq!(attribute(&response, "action"), "set_attestors");
    assert_eq!(attribute(&response, "model_id"), model_id.to_string());
    assert_eq!(attribute(&response, "version"), "1");

    let version: ModelVersion = suite.query(&QueryMsg::ModelVersion {
        model_id,
        version: 1,
    });
    assert_eq!(version.attestors, next);
    assert_eq!(version.quorum, 2);
}

#[test]
fn deprecated_versions_can_still_rotate_attestors() {
    let mut suite = Suite::new();
    let model_id = suite.register(suite.input());
    let owner = suite.owner.clone();
    suite
        .execute(
            &owner,
            &ExecuteMsg::DeprecateVersion {
                model_id,
                version: 1,
            },
        )
        .unwrap();
    let next = vec![suite.app.api().addr_make("attestor-c")];
    suite
        .execute(&owner, &rotate(model_id, 1, &next, 1))
        .unwrap();
    let version: ModelVersion = suite.query(&QueryMsg::ModelVersion {
        model_id,
        version: 1,
    });
    assert_eq!(version.attestors, next);
    assert!(version.deprecated);
}

#[test]
fn attestor_rotation_is_checked_like_registration() {
    let mut suite = Suite::new();
    let model_id = suite.register(suite.input());
    let owner = suite.owner.clone();
    let attestors = suite.attestors.clone();
    assert_eq!(
        suite.execute_err(&owner, &rotate(model_id, 1, &attestors, 0)),
        ContractError::InvalidQuorum {
            quorum: 0,
            attestors: 2
        }
    );
    assert_eq!(
        suite.execute_err(&owner, &rotate(model_id, 1, &[], 1)),
        ContractError::NoAttestors
    );
    let doubled = vec![attestors[0].clone(), attestors[0].clone()];
    assert_eq!(
        suite.execute_err(&owner, &rotate(model_id, 1, &doubled, 1)),
        ContractError::DuplicateAttestor {
            attestor: attestors[0].to_string()
        }
    );
    // Nothing changed.
    let version: ModelVersion = suite.query(&QueryMsg::ModelVersion {
        model_id,
        version: 1,
    });
    assert_eq!(version.attestors, attestors);
    assert_eq!(version.quorum, 1);
}

#[test]
fn only_the_owner_rotates_attestors_of_existing_versions() {
    let mut suite = Suite::new();
    let model_id = suite.register(suite.input());
    let attestors = suite.attestors.clone();
    let stranger = attestors[0].clone();
    assert_eq!(
        suite.execute_err(&stranger, &rotate(model_id, 1, &attestors, 2)),
        ContractError::NotModelOwner {
            model_id,
            sender: stranger.to_string()
        }
    );
    let owner = suite.owner.clone();
    assert_eq!(
        suite.execute_err(&owner, &rotate(model_id, 4, &attestors, 2)),
        ContractError::VersionNotFound {
            model_id,
            version: 4
        }
    );
    assert_eq!(
        suite.execute_err(&owner, &rotate(99, 1, &attestors, 2)),
        ContractError::ModelNotFound { model_id: 99 }
    );
}
