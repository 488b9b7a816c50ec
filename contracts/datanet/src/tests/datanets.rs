//! Creating, updating and handing over datanets; curators, allow lists and the config.

use cosmwasm_std::Addr;
use cw_multi_test::{App, Executor};
use tributary_types::datanet::{
    ConfigResponse, CurationPolicy, DatanetsResponse, ExecuteMsg, InstantiateMsg, QueryMsg,
    MAX_ADDRESS_LIST_LEN, MAX_CONTRIBUTION_BYTES,
};
use tributary_types::merkle::Frontier;
use tributary_types::validate::TextError;

use super::suite::{attr, create_msg, datanet_contract, Suite};
use crate::error::ContractError;
use crate::execute::MAX_CURATORS;

fn create_with(
    suite: &mut Suite,
    change: impl FnOnce(&mut ExecuteMsg),
) -> Result<u64, ContractError> {
    let mut msg = create_msg(CurationPolicy::Open, vec![]);
    change(&mut msg);
    let owner = suite.owner.clone();
    match suite.execute(&owner, &msg) {
        Ok(response) => Ok(attr(&response, "datanet_id").unwrap().parse().unwrap()),
        Err(err) => Err(err.downcast().unwrap()),
    }
}

fn create_fields(msg: &mut ExecuteMsg) -> CreateFields<'_> {
    match msg {
        ExecuteMsg::CreateDatanet {
            name,
            description,
            domain_tags,
            license,
            curators,
            max_contribution_bytes,
            ..
        } => CreateFields {
            name,
            description,
            domain_tags,
            license,
            curators,
            max_contribution_bytes,
        },
        _ => unreachable!("create_msg builds a CreateDatanet"),
    }
}

struct CreateFields<'a> {
    name: &'a mut String,
    description: &'a mut String,
    domain_tags: &'a mut Vec<String>,
    license: &'a mut String,
    curators: &'a mut Vec<String>,
    max_contribution_bytes: &'a mut u64,
}

fn tags_query(suite: &Suite, tag: &str) -> Vec<u64> {
    let response: DatanetsResponse = suite
        .query(&QueryMsg::Datanets {
            domain_tag: Some(tag.to_string()),
            start_after: None,
            limit: None,
        })
        .unwrap();
    response.datanets.iter().map(|d| d.id).collect()
}

#[test]
fn instantiate_defaults_the_admin_to_the_sender() {
    let suite = Suite::new();
    let config: ConfigResponse = suite.query(&QueryMsg::Config {}).unwrap();
    assert_eq!(config.admin, suite.admin);
    assert_eq!(config.usage_recorder, Some(suite.recorder.clone()));
}

#[test]
fn instantiate_refuses_an_invalid_admin() {
    let mut app = App::default();
    let code_id = app.store_code(datanet_contract());
    let sender = app.api().addr_make("sender");
    let err = app
        .instantiate_contract(
            code_id,
            sender,
            &InstantiateMsg {
                admin: Some("not an address".to_string()),
                usage_recorder: None,
            },
            &[],
            "datanet",
            None,
        )
        .unwrap_err();
    assert_eq!(
        err.downcast::<ContractError>().unwrap(),
        ContractError::InvalidAddress {
            address: "not an address".to_string()
        }
    );
}

#[test]
fn created_datanet_is_stored_with_sequential_ids_and_an_empty_tree() {
    let mut suite = Suite::new();
    let first = suite.create_datanet(CurationPolicy::CuratorReview);
    let second = suite.create_datanet(CurationPolicy::Open);
    assert_eq!((first, second), (1, 2));

    let datanet = suite.datanet(first);
    assert_eq!(datanet.owner, suite.owner);
    assert_eq!(datanet.name, "Rust snippets");
    assert_eq!(datanet.domain_tags, vec!["code", "rust"]);
    assert_eq!(datanet.policy, CurationPolicy::CuratorReview);
    assert_eq!(datanet.max_contribution_bytes, 1_000_000);
    assert_eq!(datanet.latest_version, 0);
    assert_eq!(datanet.contribution_count, 0);
    assert_eq!(datanet.frontier, Frontier::default());
    assert_eq!(datanet.created_at, suite.app.block_info().time);

    let curators: Vec<Addr> = suite
        .query(&QueryMsg::Curators { datanet_id: first })
        .unwrap();
    assert_eq!(curators, vec![suite.curator.clone()]);
}

#[test]
fn create_datanet_emits_its_id_and_owner() {
    let mut suite = Suite::new();
    let owner = suite.owner.clone();
    let response = suite
        .execute(&owner, &create_msg(CurationPolicy::Open, vec![]))
        .unwrap();
    assert_eq!(attr(&response, "action").unwrap(), "create_datanet");
    assert_eq!(attr(&response, "datanet_id").unwrap(), "1");
    assert_eq!(attr(&response, "owner").unwrap(), owner.as_str());
}

#[test]
fn datanet_text_fields_are_validated() {
    let mut suite = Suite::new();
    let err = create_with(&mut suite, |m| create_fields(m).name.clear()).unwrap_err();
    assert_eq!(
        err,
        ContractError::Text(TextError::Length {
            field: "name",
            min: 1,
            max: 64,
            len: 0
        })
    );
    let err = create_with(&mut suite, |m| *create_fields(m).name = "n".repeat(65)).unwrap_err();
    assert!(matches!(
        err,
        ContractError::Text(TextError::Length {
            field: "name",
            len: 65,
            ..
        })
    ));
    let err = create_with(&mut suite, |m| {
        *create_fields(m).description = "d".repeat(2049)
    })
    .unwrap_err();
    assert!(matches!(
        err,
        ContractError::Text(TextError::Length {
            field: "description",
            len: 2049,
            ..
        })
    ));
    let err = create_with(&mut suite, |m| create_fields(m).license.clear()).unwrap_err();
    assert!(matches!(
        err,
        ContractError::Text(TextError::Length {
            field: "license",
            len: 0,
            ..
        })
    ));
    let err = create_with(&mut suite, |m| {
        *create_fields(m).name = "bad\u{7}name".to_string()
    })
    .unwrap_err();
    assert_eq!(
        err,
        ContractError::Text(TextError::ControlCharacter { field: "name" })
    );
    // An empty description is allowed.
    assert_eq!(
        create_with(&mut suite, |m| create_fields(m).description.clear()),
        Ok(1)
    );
}

#[test]
fn datanet_needs_one_to_eight_distinct_valid_tags() {
    let mut suite = Suite::new();
    let err = create_with(&mut suite, |m| create_fields(m).domain_tags.clear()).unwrap_err();
    assert_eq!(
        err,
        ContractError::TagCount {
            count: 0,
            min: 1,
            max: 8
        }
    );
    let err = create_with(&mut suite, |m| {
        *create_fields(m).domain_tags = (0..9).map(|i| format!("tag-{i}")).collect()
    })
    .unwrap_err();
    assert_eq!(
        err,
        ContractError::TagCount {
            count: 9,
            min: 1,
            max: 8
        }
    );
    let err = create_with(&mut suite, |m| {
        create_fields(m).domain_tags.push("Upper".to_string())
    })
    .unwrap_err();
    assert_eq!(
        err,
        ContractError::Text(TextError::Tag {
            tag: "Upper".to_string()
        })
    );
    let err = create_with(&mut suite, |m| {
        create_fields(m).domain_tags.push("rust".to_string())
    })
    .unwrap_err();
    assert_eq!(
        err,
        ContractError::DuplicateTag {
            tag: "rust".to_string()
        }
    );
}

#[test]
fn zero_size_cap_is_rejected() {
    let mut suite = Suite::new();
    let err =
        create_with(&mut suite, |m| *create_fields(m).max_contribution_bytes = 0).unwrap_err();
    assert_eq!(err, ContractError::ZeroMaxContributionBytes);
}

#[test]
fn size_cap_above_the_limit_is_rejected_on_create_and_update() {
    let mut suite = Suite::new();
    let too_large = MAX_CONTRIBUTION_BYTES + 1;
    let err = create_with(&mut suite, |m| {
        *create_fields(m).max_contribution_bytes = too_large
    })
    .unwrap_err();
    let expected = ContractError::MaxContributionBytesTooLarge {
        max_contribution_bytes: too_large,
        limit: MAX_CONTRIBUTION_BYTES,
    };
    assert_eq!(err, expected);
    let id = create_with(&mut suite, |m| {
        *create_fields(m).max_contribution_bytes = MAX_CONTRIBUTION_BYTES
    })
    .unwrap();
    let owner = suite.owner.clone();
    let update = ExecuteMsg::UpdateDatanet {
        datanet_id: id,
        description: None,
        domain_tags: None,
        license: None,
        policy: None,
        max_contribution_bytes: Some(u64::MAX),
    };
    assert_eq!(
        suite.execute_err(&owner, &update),
        ContractError::MaxContributionBytesTooLarge {
            max_contribution_bytes: u64::MAX,
            limit: MAX_CONTRIBUTION_BYTES,
        }
    );
}

#[test]
fn address_lists_of_one_message_are_bounded() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::AllowList);
    let owner = suite.owner.clone();
    let too_many: Vec<String> = (0..=MAX_ADDRESS_LIST_LEN)
        .map(|i| suite.addr(&format!("member-{i}")).to_string())
        .collect();
    let refused = |field| ContractError::TooManyAddresses {
        field,
        count: MAX_ADDRESS_LIST_LEN + 1,
        max: MAX_ADDRESS_LIST_LEN,
    };
    let many = too_many.clone();
    assert_eq!(
        create_with(&mut suite, |m| *create_fields(m).curators = many).unwrap_err(),
        refused("curators")
    );
    for (msg, field) in [
        (
            ExecuteMsg::AddCurators {
                datanet_id: id,
                curators: too_many.clone(),
            },
            "curators",
        ),
        (
            ExecuteMsg::RemoveCurators {
                datanet_id: id,
                curators: too_many.clone(),
            },
            "curators",
        ),
        (
            ExecuteMsg::UpdateAllowList {
                datanet_id: id,
                add: too_many.clone(),
                remove: vec![],
            },
            "add",
        ),
        (
            ExecuteMsg::UpdateAllowList {
                datanet_id: id,
                add: vec![],
                remove: too_many.clone(),
            },
            "remove",
        ),
    ] {
        assert_eq!(suite.execute_err(&owner, &msg), refused(field), "{msg:?}");
    }
    // At the bound the allow list takes them all.
    suite
        .execute(
            &owner,
            &ExecuteMsg::UpdateAllowList {
                datanet_id: id,
                add: too_many[..MAX_ADDRESS_LIST_LEN].to_vec(),
                remove: vec![],
            },
        )
        .unwrap();
}

#[test]
fn invalid_curator_address_is_rejected() {
    let mut suite = Suite::new();
    let err = create_with(&mut suite, |m| {
        create_fields(m).curators.push("nobody".to_string())
    })
    .unwrap_err();
    assert_eq!(
        err,
        ContractError::InvalidAddress {
            address: "nobody".to_string()
        }
    );
}

#[test]
fn curator_count_is_capped_on_create_and_on_add() {
    let mut suite = Suite::new();
    let too_many: Vec<String> = (0..=MAX_CURATORS)
        .map(|i| suite.addr(&format!("curator-{i}")).to_string())
        .collect();
    let many = too_many.clone();
    let err = create_with(&mut suite, |m| *create_fields(m).curators = many).unwrap_err();
    assert_eq!(
        err,
        ContractError::TooManyCurators {
            count: MAX_CURATORS + 1,
            max: MAX_CURATORS
        }
    );

    // Repeated addresses count once.
    let mut repeated = too_many[..MAX_CURATORS].to_vec();
    repeated.push(too_many[0].clone());
    let id = create_with(&mut suite, |m| *create_fields(m).curators = repeated).unwrap();
    let curators: Vec<Addr> = suite.query(&QueryMsg::Curators { datanet_id: id }).unwrap();
    assert_eq!(curators.len(), MAX_CURATORS);

    let owner = suite.owner.clone();
    let err = suite.execute_err(
        &owner,
        &ExecuteMsg::AddCurators {
            datanet_id: id,
            curators: vec![too_many[MAX_CURATORS].clone()],
        },
    );
    assert_eq!(
        err,
        ContractError::TooManyCurators {
            count: MAX_CURATORS + 1,
            max: MAX_CURATORS
        }
    );
    let curators: Vec<Addr> = suite.query(&QueryMsg::Curators { datanet_id: id }).unwrap();
    assert_eq!(curators.len(), MAX_CURATORS, "the failed add left no trace");
}

#[test]
fn owner_updates_fields_and_the_tag_filter_follows() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::Open);
    assert_eq!(tags_query(&suite, "rust"), vec![id]);

    let owner = suite.owner.clone();
    let response = suite
        .execute(
            &owner,
            &ExecuteMsg::UpdateDatanet {
                datanet_id: id,
                description: Some("Now with tests".to_string()),
                domain_tags: Some(vec!["testing".to_string(), "code".to_string()]),
                license: Some("MIT".to_string()),
                policy: Some(CurationPolicy::CuratorReview),
                max_contribution_bytes: Some(42),
            },
        )
        .unwrap();
    assert_eq!(attr(&response, "action").unwrap(), "update_datanet");
    assert_eq!(attr(&response, "datanet_id").unwrap(), id.to_string());

    let datanet = suite.datanet(id);
    assert_eq!(datanet.description, "Now with tests");
    assert_eq!(datanet.domain_tags, vec!["testing", "code"]);
    assert_eq!(datanet.license, "MIT");
    assert_eq!(datanet.policy, CurationPolicy::CuratorReview);
    assert_eq!(datanet.max_contribution_bytes, 42);
    assert_eq!(datanet.name, "Rust snippets", "untouched fields are kept");

    assert!(tags_query(&suite, "rust").is_empty());
    assert_eq!(tags_query(&suite, "testing"), vec![id]);
    assert_eq!(tags_query(&suite, "code"), vec![id]);
}

#[test]
fn update_datanet_validates_like_create() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::Open);
    let owner = suite.owner.clone();
    let update = |tags: Option<Vec<String>>, license: Option<String>, max: Option<u64>| {
        ExecuteMsg::UpdateDatanet {
            datanet_id: id,
            description: None,
            domain_tags: tags,
            license,
            policy: None,
            max_contribution_bytes: max,
        }
    };
    assert_eq!(
        suite.execute_err(&owner, &update(Some(vec![]), None, None)),
        ContractError::TagCount {
            count: 0,
            min: 1,
            max: 8
        }
    );
    assert!(matches!(
        suite.execute_err(&owner, &update(None, Some(String::new()), None)),
        ContractError::Text(TextError::Length {
            field: "license",
            ..
        })
    ));
    assert_eq!(
        suite.execute_err(&owner, &update(None, None, Some(0))),
        ContractError::ZeroMaxContributionBytes
    );
    assert_eq!(tags_query(&suite, "rust"), vec![id]);
}

#[test]
fn only_the_owner_manages_a_datanet() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::AllowList);
    let curator = suite.curator.clone();
    let alice = suite.alice.to_string();
    let messages = [
        (
            ExecuteMsg::UpdateDatanet {
                datanet_id: id,
                description: Some("x".to_string()),
                domain_tags: None,
                license: None,
                policy: None,
                max_contribution_bytes: None,
            },
            "update this datanet",
        ),
        (
            ExecuteMsg::AddCurators {
                datanet_id: id,
                curators: vec![alice.clone()],
            },
            "add curators",
        ),
        (
            ExecuteMsg::RemoveCurators {
                datanet_id: id,
                curators: vec![curator.to_string()],
            },
            "remove curators",
        ),
        (
            ExecuteMsg::UpdateAllowList {
                datanet_id: id,
                add: vec![alice.clone()],
                remove: vec![],
            },
            "update the allow list",
        ),
        (
            ExecuteMsg::TransferOwnership {
                datanet_id: id,
                new_owner: alice.clone(),
            },
            "transfer this datanet",
        ),
    ];
    for (msg, action) in &messages {
        // Even a curator is not the owner.
        assert_eq!(
            suite.execute_err(&curator, msg),
            ContractError::Unauthorized {
                sender: curator.clone(),
                action
            }
        );
    }
}

#[test]
fn managing_an_unknown_datanet_fails() {
    let mut suite = Suite::new();
    let owner = suite.owner.clone();
    let err = suite.execute_err(
        &owner,
        &ExecuteMsg::AddCurators {
            datanet_id: 7,
            curators: vec![],
        },
    );
    assert_eq!(err, ContractError::DatanetNotFound { datanet_id: 7 });
    suite.assert_query_err(
        &QueryMsg::Datanet { datanet_id: 7 },
        ContractError::DatanetNotFound { datanet_id: 7 },
    );
}

#[test]
fn curators_are_added_and_removed() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::CuratorReview);
    let owner = suite.owner.clone();
    let (alice, bob, curator) = (
        suite.alice.clone(),
        suite.bob.clone(),
        suite.curator.clone(),
    );
    let response = suite
        .execute(
            &owner,
            &ExecuteMsg::AddCurators {
                datanet_id: id,
                curators: vec![alice.to_string(), bob.to_string()],
            },
        )
        .unwrap();
    assert_eq!(attr(&response, "datanet_id").unwrap(), id.to_string());
    let mut expected = vec![alice.clone(), bob.clone(), curator.clone()];
    expected.sort();
    let curators: Vec<Addr> = suite.query(&QueryMsg::Curators { datanet_id: id }).unwrap();
    assert_eq!(curators, expected);

    suite
        .execute(
            &owner,
            &ExecuteMsg::RemoveCurators {
                datanet_id: id,
                curators: vec![curator.to_string(), bob.to_string()],
            },
        )
        .unwrap();
    let curators: Vec<Addr> = suite.query(&QueryMsg::Curators { datanet_id: id }).unwrap();
    assert_eq!(curators, vec![alice]);

    let err = suite.execute_err(
        &owner,
        &ExecuteMsg::RemoveCurators {
            datanet_id: id,
            curators: vec!["bad address".to_string()],
        },
    );
    assert_eq!(
        err,
        ContractError::InvalidAddress {
            address: "bad address".to_string()
        }
    );
}

#[test]
fn allow_list_is_updated_by_the_owner() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::AllowList);
    let owner = suite.owner.clone();
    let is_allowed = |suite: &Suite, who: &Addr| -> bool {
        suite
            .query(&QueryMsg::IsAllowed {
                datanet_id: id,
                contributor: who.to_string(),
            })
            .unwrap()
    };
    let (alice, bob) = (suite.alice.clone(), suite.bob.clone());
    assert!(!is_allowed(&suite, &alice));

    let response = suite
        .execute(
            &owner,
            &ExecuteMsg::UpdateAllowList {
                datanet_id: id,
                add: vec![alice.to_string(), bob.to_string()],
                remove: vec![],
            },
        )
        .unwrap();
    assert_eq!(attr(&response, "action").unwrap(), "update_allow_list");
    assert_eq!(attr(&response, "datanet_id").unwrap(), id.to_string());
    assert!(is_allowed(&suite, &alice));
    assert!(is_allowed(&suite, &bob));

    suite
        .execute(
            &owner,
            &ExecuteMsg::UpdateAllowList {
                datanet_id: id,
                add: vec![],
                remove: vec![bob.to_string()],
            },
        )
        .unwrap();
    assert!(is_allowed(&suite, &alice));
    assert!(!is_allowed(&suite, &bob));

    let err = suite.execute_err(
        &owner,
        &ExecuteMsg::UpdateAllowList {
            datanet_id: id,
            add: vec!["x".to_string()],
            remove: vec![],
        },
    );
    assert_eq!(
        err,
        ContractError::InvalidAddress {
            address: "x".to_string()
        }
    );
}

#[test]
fn ownership_transfer_moves_every_owner_right() {
    let mut suite = Suite::new();
    let id = suite.create_datanet(CurationPolicy::Open);
    let (owner, alice) = (suite.owner.clone(), suite.alice.clone());

    let err = suite.execute_err(
        &owner,
        &ExecuteMsg::TransferOwnership {
            datanet_id: id,
            new_owner: "nobody".to_string(),
        },
    );
    assert_eq!(
        err,
        ContractError::InvalidAddress {
            address: "nobody".to_string()
        }
    );

    let response = suite
        .execute(
            &owner,
            &ExecuteMsg::TransferOwnership {
                datanet_id: id,
                new_owner: alice.to_string(),
            },
        )
        .unwrap();
    assert_eq!(attr(&response, "new_owner").unwrap(), alice.as_str());
    assert_eq!(suite.datanet(id).owner, alice);

    let back = ExecuteMsg::TransferOwnership {
        datanet_id: id,
        new_owner: owner.to_string(),
    };
    assert_eq!(
        suite.execute_err(&owner, &back),
        ContractError::Unauthorized {
            sender: owner.clone(),
            action: "transfer this datanet"
        }
    );
    suite.execute(&alice, &back).unwrap();
    assert_eq!(suite.datanet(id).owner, owner);
}

#[test]
fn only_the_admin_updates_the_config() {
    let mut suite = Suite::new();
    let (admin, alice) = (suite.admin.clone(), suite.alice.clone());
    let payout = suite.stand_in("payout");
    let msg = ExecuteMsg::UpdateConfig {
        admin: Some(alice.to_string()),
        usage_recorder: Some(payout.to_string()),
    };
    assert_eq!(
        suite.execute_err(&alice, &msg),
        ContractError::Unauthorized {
            sender: alice.clone(),
            action: "update the config"
        }
    );
    assert_eq!(
        suite.execute_err(
            &admin,
            &ExecuteMsg::UpdateConfig {
                admin: None,
                usage_recorder: Some("bad".to_string()),
            }
        ),
        ContractError::InvalidAddress {
            address: "bad".to_string()
        }
    );

    let response = suite.execute(&admin, &msg).unwrap();
    assert_eq!(attr(&response, "action").unwrap(), "update_config");
    let config: ConfigResponse = suite.query(&QueryMsg::Config {}).unwrap();
    assert_eq!(config.admin, alice);
    assert_eq!(config.usage_recorder, Some(payout));
    assert!(matches!(
        suite.execute_err(&admin, &msg),
        ContractError::Unauthorized { .. }
    ));
}
