//! Every way a model or version input is refused.

use crate::suite::{register, Suite, MIN_CONTRIBUTORS_BPS, MIN_PROTOCOL_BPS};
use cosmwasm_std::{HexBinary, Uint128};
use tributary_model_registry::error::ContractError;
use tributary_model_registry::validate::MAX_METHOD_PARAMS_LEN;
use tributary_types::asset::{AssetInfo, Price};
use tributary_types::registry::{ModelVersion, ModelsResponse, QueryMsg};
use tributary_types::validate::TextError;
use tributary_types::{DatanetRoot, FeeSplit, SplitError};

fn length(field: &'static str, min: usize, max: usize, len: usize) -> ContractError {
    ContractError::Text(TextError::Length {
        field,
        min,
        max,
        len,
    })
}

fn assert_nothing_registered(suite: &Suite) {
    let listed: ModelsResponse = suite.query(&QueryMsg::Models {
        start_after: None,
        limit: None,
    });
    assert!(listed.models.is_empty());
}

#[test]
fn model_text_lengths_are_checked() {
    let mut suite = Suite::new();
    let owner = suite.owner.clone();
    let input = suite.input();
    let cases = [
        ("", "", "llama", length("name", 1, 64, 0)),
        (&"n".repeat(65), "", "llama", length("name", 1, 64, 65)),
        (
            "name",
            &"d".repeat(2049),
            "llama",
            length("description", 0, 2048, 2049),
        ),
        ("name", "", "", length("architecture", 1, 128, 0)),
        (
            "name",
            "",
            &"a".repeat(129),
            length("architecture", 1, 128, 129),
        ),
    ];
    for (name, description, architecture, expected) in cases {
        let msg = tributary_types::registry::ExecuteMsg::RegisterModel {
            name: name.to_string(),
            description: description.to_string(),
            architecture: architecture.to_string(),
            version: input.clone(),
        };
        assert_eq!(suite.execute_err(&owner, &msg), expected);
    }
    let control = register("bad\u{7}name", input);
    assert_eq!(
        suite.execute_err(&owner, &control),
        ContractError::Text(TextError::ControlCharacter { field: "name" })
    );
    assert_nothing_registered(&suite);
}

#[test]
fn longest_allowed_texts_are_accepted() {
    let mut suite = Suite::new();
    let owner = suite.owner.clone();
    let input = suite.input();
    let msg = tributary_types::registry::ExecuteMsg::RegisterModel {
        name: "n".repeat(64),
        description: "d".repeat(2048),
        architecture: "a".repeat(128),
        version: input,
    };
    suite.execute(&owner, &msg).unwrap();
}

#[test]
fn empty_lineage_is_rejected() {
    let mut suite = Suite::new();
    let input = suite.input_on(vec![]);
    assert_eq!(suite.register_err(input), ContractError::EmptyLineage);
    assert_nothing_registered(&suite);
}

#[test]
fn lineage_over_sixteen_entries_is_rejected() {
    let mut suite = Suite::new();
    let lineage = (1..=17)
        .map(|version| DatanetRoot {
            version,
            ..suite.d1v1.clone()
        })
        .collect();
    let input = suite.input_on(lineage);
    assert_eq!(
        suite.register_err(input),
        ContractError::TooManyLineageEntries { count: 17, max: 16 }
    );
}

#[test]
fn duplicate_lineage_entry_is_rejected() {
    let mut suite = Suite::new();
    let input = suite.input_on(vec![
        suite.d1v1.clone(),
        suite.d2v1.clone(),
        suite.d1v1.clone(),
    ]);
    assert_eq!(
        suite.register_err(input),
        ContractError::DuplicateLineageEntry {
            datanet_id: suite.d1v1.datanet_id,
            version: 1
        }
    );
}

#[test]
fn unknown_datanet_version_is_rejected() {
    let mut suite = Suite::new();
    let future = DatanetRoot {
        version: 3,
        ..suite.d1v2.clone()
    };
    let input = suite.input_on(vec![suite.d1v1.clone(), future]);
    assert_eq!(
        suite.register_err(input),
        ContractError::UnknownDatanetVersion {
            datanet_id: suite.d1v1.datanet_id,
            version: 3
        }
    );
    let missing = DatanetRoot {
        datanet_id: 42,
        ..suite.d1v1.clone()
    };
    let input = suite.input_on(vec![missing]);
    assert_eq!(
        suite.register_err(input),
        ContractError::UnknownDatanetVersion {
            datanet_id: 42,
            version: 1
        }
    );
    assert_nothing_registered(&suite);
}

#[test]
fn lineage_root_must_be_the_datanets_own() {
    let mut suite = Suite::new();
    // The root of version 2 claimed for version 1.
    let swapped = DatanetRoot {
        root: suite.d1v2.root.clone(),
        ..suite.d1v1.clone()
    };
    let input = suite.input_on(vec![swapped]);
    assert_eq!(
        suite.register_err(input),
        ContractError::LineageRootMismatch {
            datanet_id: suite.d1v1.datanet_id,
            version: 1
        }
    );
    let truncated = DatanetRoot {
        root: HexBinary::from(&suite.d2v1.root.as_slice()[..16]),
        ..suite.d2v1.clone()
    };
    let input = suite.input_on(vec![truncated]);
    assert_eq!(
        suite.register_err(input),
        ContractError::LineageRootMismatch {
            datanet_id: suite.d2v1.datanet_id,
            version: 1
        }
    );
    assert_nothing_registered(&suite);
}

#[test]
fn hashes_must_be_32_bytes() {
    let mut suite = Suite::new();
    let mut input = suite.input();
    input.weights_hash = HexBinary::from(vec![7u8; 31]);
    assert_eq!(
        suite.register_err(input),
        ContractError::InvalidHash {
            field: "weights_hash",
            len: 31
        }
    );
    let mut input = suite.input();
    input.index_hash = HexBinary::from(vec![7u8; 33]);
    assert_eq!(
        suite.register_err(input),
        ContractError::InvalidHash {
            field: "index_hash",
            len: 33
        }
    );
    let mut input = suite.input();
    input.method.params_hash = HexBinary::default();
    assert_eq!(
        suite.register_err(input),
        ContractError::InvalidHash {
            field: "method.params_hash",
            len: 0
        }
    );
}

#[test]
fn weights_uri_needs_a_scheme() {
    let mut suite = Suite::new();
    let mut input = suite.input();
    input.weights_uri = "weights.safetensors".to_string();
    assert_eq!(
        suite.register_err(input),
        ContractError::Text(TextError::Uri {
            uri: "weights.safetensors".to_string()
        })
    );
}

#[test]
fn method_id_length_is_checked() {
    let mut suite = Suite::new();
    let mut input = suite.input();
    input.method.id = String::new();
    assert_eq!(suite.register_err(input), length("method.id", 1, 64, 0));
    let mut input = suite.input();
    input.method.id = "m".repeat(65);
    assert_eq!(suite.register_err(input), length("method.id", 1, 64, 65));
}

#[test]
fn method_params_length_is_checked() {
    let mut suite = Suite::new();
    let mut input = suite.input();
    input.method.params = Some("p".repeat(MAX_METHOD_PARAMS_LEN + 1));
    assert_eq!(
        suite.register_err(input),
        length(
            "method.params",
            0,
            MAX_METHOD_PARAMS_LEN,
            MAX_METHOD_PARAMS_LEN + 1
        )
    );
    let mut input = suite.input();
    input.method.params = Some("p".repeat(MAX_METHOD_PARAMS_LEN));
    suite.register(input);
}

#[test]
fn zero_price_is_rejected() {
    let mut suite = Suite::new();
    let mut input = suite.input();
    input.price.amount = Uint128::zero();
    assert_eq!(suite.register_err(input), ContractError::ZeroPrice);
}

#[test]
fn malformed_denom_is_rejected() {
    let mut suite = Suite::new();
    let mut input = suite.input();
    input.price.asset = AssetInfo::native("1trib");
    assert_eq!(
        suite.register_err(input),
        ContractError::InvalidDenom {
            denom: "1trib".to_string()
        }
    );
}

#[test]
fn cw20_price_needs_a_valid_token_address() {
    let mut suite = Suite::new();
    let mut input = suite.input();
    input.price.asset = AssetInfo::cw20("not-a-token");
    assert_eq!(
        suite.register_err(input),
        ContractError::InvalidAddress {
            address: "not-a-token".to_string()
        }
    );

    let token = suite.app.api().addr_make("token");
    let mut input = suite.input();
    input.price = Price {
        asset: AssetInfo::cw20(token.to_string()),
        amount: Uint128::new(5),
    };
    let model_id = suite.register(input);
    let version: ModelVersion = suite.query(&QueryMsg::ModelVersion {
        model_id,
        version: 1,
    });
    assert_eq!(version.price.asset, AssetInfo::cw20(token.to_string()));
}

fn split(contributors: u16, developer: u16, operator: u16, protocol: u16) -> FeeSplit {
    FeeSplit {
        contributors_bps: contributors,
        developer_bps: developer,
        operator_bps: operator,
        protocol_bps: protocol,
    }
}

#[test]
fn split_must_sum_to_10000() {
    let mut suite = Suite::new();
    let mut input = suite.input();
    input.split = split(7000, 1500, 1000, 400);
    assert_eq!(
        suite.register_err(input),
        ContractError::InvalidSplit(SplitError::SplitSum { sum: 9900 })
    );
}

#[test]
fn contributors_share_below_the_minimum_is_rejected() {
    let mut suite = Suite::new();
    let mut input = suite.input();
    input.split = split(MIN_CONTRIBUTORS_BPS - 1, 8501, 0, 500);
    assert_eq!(
        suite.register_err(input),
        ContractError::ContributorsShareTooLow {
            share: MIN_CONTRIBUTORS_BPS - 1,
            min: MIN_CONTRIBUTORS_BPS
        }
    );
}

#[test]
fn protocol_share_below_the_minimum_is_rejected() {
    let mut suite = Suite::new();
    let mut input = suite.input();
    input.split = split(7000, 2000, 901, MIN_PROTOCOL_BPS - 1);
    assert_eq!(
        suite.register_err(input),
        ContractError::ProtocolShareTooLow {
            share: MIN_PROTOCOL_BPS - 1,
            min: MIN_PROTOCOL_BPS
        }
    );
}

#[test]
fn split_at_exactly_the_minimums_is_accepted() {
    let mut suite = Suite::new();
    let mut input = suite.input();
    input.split = split(
        MIN_CONTRIBUTORS_BPS,
        10_000 - MIN_CONTRIBUTORS_BPS - MIN_PROTOCOL_BPS,
        0,
        MIN_PROTOCOL_BPS,
    );
    suite.register(input);
}

#[test]
fn attestor_set_is_checked() {
    let mut suite = Suite::new();
    let mut input = suite.input();
    input.attestors = vec![];
    assert_eq!(suite.register_err(input), ContractError::NoAttestors);

    let mut input = suite.input();
    input.attestors = (0..17)
        .map(|i| {
            suite
                .app
                .api()
                .addr_make(&format!("attestor-{i}"))
                .to_string()
        })
        .collect();
    assert_eq!(
        suite.register_err(input),
        ContractError::TooManyAttestors { count: 17, max: 16 }
    );

    let mut input = suite.input();
    input.attestors.push("attestor".to_string());
    assert_eq!(
        suite.register_err(input),
        ContractError::InvalidAddress {
            address: "attestor".to_string()
        }
    );

    let mut input = suite.input();
    input.attestors.push(suite.attestors[1].to_string());
    assert_eq!(
        suite.register_err(input),
        ContractError::DuplicateAttestor {
            attestor: suite.attestors[1].to_string()
        }
    );
    assert_nothing_registered(&suite);
}

#[test]
fn sixteen_attestors_with_full_quorum_are_accepted() {
    let mut suite = Suite::new();
    let mut input = suite.input();
    input.attestors = (0..16)
        .map(|i| {
            suite
                .app
                .api()
                .addr_make(&format!("attestor-{i}"))
                .to_string()
        })
        .collect();
    input.quorum = 16;
    let model_id = suite.register(input);
    let version: ModelVersion = suite.query(&QueryMsg::ModelVersion {
        model_id,
        version: 1,
    });
    assert_eq!(version.attestors.len(), 16);
    assert_eq!(version.quorum, 16);
}

#[test]
fn quorum_must_be_between_one_and_the_attestor_count() {
    let mut suite = Suite::new();
    let mut input = suite.input();
    input.quorum = 0;
    assert_eq!(
        suite.register_err(input),
        ContractError::InvalidQuorum {
            quorum: 0,
            attestors: 2
        }
    );
    let mut input = suite.input();
    input.quorum = 3;
    assert_eq!(
        suite.register_err(input),
        ContractError::InvalidQuorum {
            quorum: 3,
            attestors: 2
        }
    );
}
