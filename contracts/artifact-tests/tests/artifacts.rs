//! The optimized artifacts in `artifacts/` (from `ci/build-wasm`), executed by `cosmwasm-vm`
//! 3.0: the bytes that a chain stores, judged by the VM the chain runs. Cross-contract queries
//! are answered by the VM's mock querier with values built from `tributary-types`.

use cosmwasm_std_vm::testing::mock_ibc_channel_open_init;
use cosmwasm_std_vm::{
    coins, BankMsg, Binary, ContractResult, CosmosMsg, Empty, IbcOrder, Response, SystemResult,
    WasmMsg, WasmQuery,
};
use cosmwasm_vm::internals::{check_wasm, compile_module, Logger};
use cosmwasm_vm::testing::{
    execute, ibc_channel_open, instantiate, mock_env, mock_info, mock_instance, query, MockApi,
    MockQuerier, MockStorage,
};
use cosmwasm_vm::Instance;
use cw_storage_plus::Map;
use serde::de::DeserializeOwned;
use std::path::PathBuf;
use tributary_types::datanet::{self, ContributionStatus, CurationPolicy, ReviewDecision};
use tributary_types::hash::to_hex;
use tributary_types::merkle::contribution_leaf;
use tributary_types::payout::{self, RequestStatus};
use tributary_types::registry::{self, AttributionMethod, ModelVersionInput};
use tributary_types::{
    sha256, AssetInfo, AttributionEntry, AttributionPacket, DatanetRoot, FeeSplit, Price,
    IBC_APP_VERSION,
};

type VmInstance = Instance<MockApi, MockStorage, MockQuerier>;

fn artifacts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../artifacts")
}

fn artifact(name: &str) -> Vec<u8> {
    let path = artifacts_dir().join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; run ci/build-wasm first",
            path.display()
        )
    })
}

fn addr(name: &str) -> String {
    MockApi::default().addr_make(name)
}

fn hex32(data: &[u8]) -> cosmwasm_std::HexBinary {
    cosmwasm_std::HexBinary::from(sha256(data).as_slice())
}

fn ok<T: std::fmt::Debug>(result: ContractResult<T>) -> T {
    match result {
        ContractResult::Ok(value) => value,
        ContractResult::Err(err) => panic!("contract error: {err}"),
    }
}

fn err<T: std::fmt::Debug>(result: ContractResult<T>) -> String {
    match result {
        ContractResult::Ok(value) => panic!("expected an error, got {value:?}"),
        ContractResult::Err(err) => err,
    }
}

fn run(
    instance: &mut VmInstance,
    sender: &str,
    funds: &[cosmwasm_std_vm::Coin],
    msg: impl serde::Serialize,
) -> ContractResult<Response<Empty>> {
    execute(instance, mock_env(), mock_info(sender, funds), msg)
}

fn ask<T: DeserializeOwned>(instance: &mut VmInstance, msg: impl serde::Serialize) -> T {
    let bytes = ok(query(instance, mock_env(), msg));
    serde_json::from_slice(bytes.as_slice()).expect("query response matches tributary-types")
}

fn attribute(response: &Response<Empty>, key: &str) -> String {
    response
        .attributes
        .iter()
        .find(|a| a.key == key)
        .unwrap_or_else(|| panic!("no attribute {key} in {:?}", response.attributes))
        .value
        .clone()
}

#[test]
fn checksums_match_the_artifacts() {
    let listing = std::fs::read_to_string(artifacts_dir().join("checksums.txt"))
        .expect("artifacts/checksums.txt; run ci/build-wasm first");
    let mut names = Vec::new();
    for line in listing.lines() {
        let (sum, name) = line.split_once("  ").expect("sha256sum format");
        let bytes = std::fs::read(artifacts_dir().join(name)).unwrap();
        assert_eq!(to_hex(&sha256(&bytes)), sum, "{name}");
        names.push(name.to_string());
    }
    names.sort();
    assert_eq!(
        names,
        [
            "cw20_base.wasm",
            "tributary_datanet.wasm",
            "tributary_model_registry.wasm",
            "tributary_payout.wasm"
        ]
    );
}

/// The capabilities wasmd v0.61 (wasmvm 3.0) offers contracts, as `cosmwasm-check` 3.0 assumes.
const CHAIN_CAPABILITIES: &str = "ibc2,iterator,staking,stargate,cosmwasm_1_1,cosmwasm_1_2,\
    cosmwasm_1_3,cosmwasm_1_4,cosmwasm_2_0,cosmwasm_2_1,cosmwasm_2_2";

/// The checks the chain applies when code is stored (what `cosmwasm-check` runs): imports,
/// exports, memories, capabilities, non-deterministic instructions, then a full compile.
fn chain_static_checks(wasm: &[u8]) -> Result<(), cosmwasm_vm::VmError> {
    let capabilities = cosmwasm_vm::capabilities_from_csv(CHAIN_CAPABILITIES);
    check_wasm(
        wasm,
        &capabilities,
        &cosmwasm_vm::WasmLimits::default(),
        Logger::Off,
    )?;
    compile_module(wasm, None).map(drop)
}

#[test]
fn every_artifact_passes_the_chains_static_checks() {
    for name in [
        "cw20_base",
        "tributary_datanet",
        "tributary_model_registry",
        "tributary_payout",
    ] {
        if let Err(e) = chain_static_checks(&artifact(name)) {
            panic!("{name}.wasm would be refused by the chain: {e}");
        }
    }
}

#[test]
fn the_static_checks_refuse_a_module_that_is_not_a_contract() {
    // An empty module: valid wasm, but no memory, no interface version, no entry points.
    let empty = b"\0asm\x01\0\0\0";
    assert!(chain_static_checks(empty).is_err());
}

/// Commits to `body` as `who`, then reveals it one block later; the new contribution's id.
fn contribute(vm: &mut VmInstance, who: &str, body: &str) -> ContractResult<u64> {
    let content_hash = sha256(body.as_bytes());
    let committed = run(
        vm,
        who,
        &[],
        datanet::ExecuteMsg::Contribute {
            datanet_id: 1,
            commitment: cosmwasm_std::HexBinary::from(
                datanet::contribution_commitment(who, &content_hash).as_slice(),
            ),
            size_bytes: body.len() as u64,
            media_type: "text/plain".into(),
            metadata: None,
        },
    );
    let id: u64 = match committed {
        ContractResult::Ok(response) => attribute(&response, "contribution_id").parse().unwrap(),
        ContractResult::Err(e) => return ContractResult::Err(e),
    };
    let mut later = mock_env();
    later.block.height += 1;
    later.block.time = later.block.time.plus_seconds(5);
    let hash = to_hex(&content_hash);
    let revealed = execute::<_, _, _, _, Empty>(
        vm,
        later,
        mock_info(who, &[]),
        datanet::ExecuteMsg::RevealContribution {
            contribution_id: id,
            content_hash: hash.clone(),
            uri: format!("tributary://blobs/{hash}"),
        },
    );
    match revealed {
        ContractResult::Ok(_) => ContractResult::Ok(id),
        ContractResult::Err(e) => ContractResult::Err(e),
    }
}

#[test]
fn datanet_curates_snapshots_and_proves_in_the_vm() {
    let mut vm = mock_instance(&artifact("tributary_datanet"), &[]);
    let (owner, curator, alice, bob) = (addr("owner"), addr("curator"), addr("alice"), addr("bob"));
    let payout = addr("payout");
    ok(instantiate::<_, _, _, _, Empty>(
        &mut vm,
        mock_env(),
        mock_info(&owner, &[]),
        datanet::InstantiateMsg {
            admin: None,
            usage_recorder: Some(payout.clone()),
        },
    ));
    let created = ok(run(
        &mut vm,
        &owner,
        &[],
        datanet::ExecuteMsg::CreateDatanet {
            name: "systems".into(),
            description: "C library manual pages".into(),
            domain_tags: vec!["systems-programming".into()],
            license: "GPL-2.0".into(),
            policy: CurationPolicy::CuratorReview,
            curators: vec![curator.clone()],
            max_contribution_bytes: 1 << 20,
        },
    ));
    assert_eq!(attribute(&created, "datanet_id"), "1");

    let mut ids = Vec::new();
    for (who, body) in [
        (&alice, "malloc(3)"),
        (&bob, "printf(3)"),
        (&alice, "dup(2)"),
    ] {
        ids.push(ok(contribute(&mut vm, who, body)));
    }
    // The same bytes, committed later by someone else, cannot be revealed again.
    let duplicate = err(contribute(&mut vm, &bob, "malloc(3)"));
    assert!(duplicate.contains("already"), "{duplicate}");

    for (id, decision, reason) in [
        (ids[0], ReviewDecision::Accept, None),
        (ids[1], ReviewDecision::Accept, None),
        (
            ids[2],
            ReviewDecision::Reject,
            Some("off topic".to_string()),
        ),
    ] {
        ok(run(
            &mut vm,
            &curator,
            &[],
            datanet::ExecuteMsg::Review {
                contribution_id: id,
                decision,
                reason,
            },
        ));
    }
    ok(run(
        &mut vm,
        &curator,
        &[],
        datanet::ExecuteMsg::Snapshot {
            datanet_id: 1,
            note: None,
        },
    ));
    let version: datanet::DatanetVersion = ask(
        &mut vm,
        datanet::QueryMsg::Version {
            datanet_id: 1,
            version: 1,
        },
    );
    assert_eq!(version.count, 2);
    // The root is recomputed here from the rule, independently of the contract.
    let leaves = [
        contribution_leaf(ids[0], &sha256(b"malloc(3)"), &alice),
        contribution_leaf(ids[1], &sha256(b"printf(3)"), &bob),
    ];
    assert_eq!(
        version.root.as_slice(),
        tributary_types::merkle::root_from_leaves(&leaves)
    );
    let proof: datanet::InclusionProofResponse = ask(
        &mut vm,
        datanet::QueryMsg::InclusionProof {
            contribution_id: ids[1],
            version: 1,
        },
    );
    assert!(proof.verify());
    assert_eq!(proof.root, version.root);

    let rejected: datanet::Contribution = ask(
        &mut vm,
        datanet::QueryMsg::Contribution {
            contribution_id: ids[2],
        },
    );
    assert_eq!(rejected.status, ContributionStatus::Rejected);

    // Only the payout contract may record usage.
    let record = datanet::ExecuteMsg::RecordUsage {
        records: vec![datanet::UsageRecord {
            contribution_id: ids[0],
            asset: AssetInfo::native("utrib"),
            amount: 7u128.into(),
            uses: None,
        }],
    };
    err(run(&mut vm, &alice, &[], record.clone()));
    ok(run(&mut vm, &payout, &[], record));
    let stats: datanet::ContributorStats = ask(
        &mut vm,
        datanet::QueryMsg::ContributorStats {
            contributor: alice.clone(),
        },
    );
    assert_eq!(
        (
            stats.contributed,
            stats.accepted,
            stats.rejected,
            stats.usage
        ),
        (2, 1, 1, 1)
    );
    assert_eq!(stats.earned[0].amount.u128(), 7);
}

fn datanet_version(root: &cosmwasm_std::HexBinary) -> datanet::DatanetVersion {
    datanet::DatanetVersion {
        datanet_id: 1,
        version: 1,
        root: root.clone(),
        count: 2,
        total_bytes: 100,
        created_at: cosmwasm_std::Timestamp::from_seconds(1),
        created_by: cosmwasm_std::Addr::unchecked(addr("owner")),
        note: None,
    }
}

fn version_input(root: &cosmwasm_std::HexBinary, attestor: &str) -> ModelVersionInput {
    ModelVersionInput {
        lineage: vec![DatanetRoot {
            datanet_id: 1,
            version: 1,
            root: root.clone(),
        }],
        weights_hash: hex32(b"weights"),
        weights_uri: "tributary://blobs/weights".into(),
        index_hash: hex32(b"index"),
        method: AttributionMethod {
            id: "trak-logra-v1".into(),
            params_hash: hex32(b"params"),
            params: None,
        },
        price: Price {
            asset: AssetInfo::native("utrib"),
            amount: 1000u128.into(),
        },
        split: FeeSplit {
            contributors_bps: 7000,
            developer_bps: 1500,
            operator_bps: 1000,
            protocol_bps: 500,
        },
        attestors: vec![attestor.to_string()],
        quorum: 1,
    }
}

/// Answers the datanet contract's `Version` query for the registry.
fn answer_datanet_versions(vm: &mut VmInstance, root: cosmwasm_std::HexBinary) {
    vm.with_querier(move |querier| {
        querier.update_wasm(move |q| match q {
            WasmQuery::Smart { msg, .. } => {
                match serde_json::from_slice::<datanet::QueryMsg>(msg.as_slice()) {
                    Ok(datanet::QueryMsg::Version {
                        datanet_id: 1,
                        version: 1,
                    }) => SystemResult::Ok(ContractResult::Ok(Binary::from(
                        serde_json::to_vec(&datanet_version(&root)).unwrap(),
                    ))),
                    _ => SystemResult::Ok(ContractResult::Err("not found".into())),
                }
            }
            // The registry checks at instantiation that the datanet contract is one, by cw2.
            WasmQuery::Raw { key, .. } if key.as_slice() == b"contract_info" => {
                SystemResult::Ok(ContractResult::Ok(Binary::from(
                    serde_json::to_vec(&serde_json::json!({
                        "contract": datanet::CONTRACT_NAME,
                        "version": "0.1.0",
                    }))
                    .unwrap(),
                )))
            }
            _ => SystemResult::Ok(ContractResult::Err("unsupported".into())),
        });
        Ok(())
    })
    .unwrap();
}

#[test]
fn registry_checks_lineage_roots_in_the_vm() {
    let mut vm = mock_instance(&artifact("tributary_model_registry"), &[]);
    let root = hex32(b"version one");
    answer_datanet_versions(&mut vm, root.clone());
    let developer = addr("developer");
    ok(instantiate::<_, _, _, _, Empty>(
        &mut vm,
        mock_env(),
        mock_info(&developer, &[]),
        registry::InstantiateMsg {
            admin: None,
            datanet_contract: addr("datanet"),
            min_contributors_bps: 5000,
            min_protocol_bps: 100,
        },
    ));
    let register = |input| registry::ExecuteMsg::RegisterModel {
        name: "systems-slm".into(),
        description: String::new(),
        architecture: "decoder-only transformer".into(),
        version: input,
    };
    let wrong_root = err(run(
        &mut vm,
        &developer,
        &[],
        register(version_input(&hex32(b"forged"), &addr("attestor"))),
    ));
    assert!(wrong_root.contains("root"), "{wrong_root}");
    ok(run(
        &mut vm,
        &developer,
        &[],
        register(version_input(&root, &addr("attestor"))),
    ));
    let version: registry::ModelVersion = ask(
        &mut vm,
        registry::QueryMsg::ModelVersion {
            model_id: 1,
            version: 1,
        },
    );
    assert_eq!(version.lineage[0].root, root);
    assert_eq!(version.developer.as_str(), developer);
}

#[test]
fn payout_escrows_commits_finalizes_and_claims_in_the_vm() {
    let mut vm = mock_instance(&artifact("tributary_payout"), &[]);
    let (admin, payer, attestor, contributor) = (
        addr("admin"),
        addr("payer"),
        addr("attestor"),
        addr("contributor"),
    );
    let (datanet_addr, registry_addr, treasury) =
        (addr("datanet"), addr("registry"), addr("treasury"));
    let root = hex32(b"version one");
    // The version the registry would hold for `version_input`.
    let input = version_input(&root, &attestor);
    let model = registry::ModelVersion {
        model_id: 1,
        version: 1,
        lineage: input.lineage,
        weights_hash: input.weights_hash,
        weights_uri: input.weights_uri,
        index_hash: input.index_hash,
        method: input.method,
        price: input.price,
        split: input.split,
        attestors: vec![cosmwasm_std::Addr::unchecked(&attestor)],
        quorum: input.quorum,
        deprecated: false,
        developer: cosmwasm_std::Addr::unchecked(addr("developer")),
        created_at: cosmwasm_std::Timestamp::from_seconds(1),
    };
    let contribution = datanet::Contribution {
        id: 7,
        datanet_id: 1,
        contributor: cosmwasm_std::Addr::unchecked(&contributor),
        content_hash: to_hex(&sha256(b"malloc(3)")),
        size_bytes: 9,
        uri: "tributary://blobs/x".into(),
        media_type: "text/plain".into(),
        metadata: None,
        status: ContributionStatus::Accepted,
        submitted_at: cosmwasm_std::Timestamp::from_seconds(1),
        reviewed_by: None,
        reason: None,
        leaf_index: Some(0),
        usage_count: 0,
    };
    {
        let (registry_addr, datanet_addr, root) =
            (registry_addr.clone(), datanet_addr.clone(), root.clone());
        vm.with_querier(move |querier| {
            querier.update_wasm(move |q| {
                // The datanet contract is read raw, from its storage layout.
                if let WasmQuery::Raw { contract_addr, key } = q {
                    if *contract_addr != datanet_addr {
                        return SystemResult::Ok(ContractResult::Err("unsupported".into()));
                    }
                    let contributions =
                        Map::<u64, datanet::Contribution>::new(datanet::layout::CONTRIBUTIONS);
                    let versions =
                        Map::<(u64, u32), datanet::DatanetVersion>::new(datanet::layout::VERSIONS);
                    let value = if key.as_slice() == &*contributions.key(7) {
                        serde_json::to_vec(&contribution).unwrap()
                    } else if key.as_slice() == &*versions.key((1, 1)) {
                        serde_json::to_vec(&datanet_version(&root)).unwrap()
                    } else {
                        Vec::new()
                    };
                    return SystemResult::Ok(ContractResult::Ok(Binary::from(value)));
                }
                let WasmQuery::Smart { contract_addr, msg } = q else {
                    return SystemResult::Ok(ContractResult::Err("unsupported".into()));
                };
                let answer = if *contract_addr == registry_addr {
                    match serde_json::from_slice::<registry::QueryMsg>(msg.as_slice()) {
                        Ok(registry::QueryMsg::ModelVersion { .. }) => {
                            serde_json::to_vec(&model).ok()
                        }
                        _ => None,
                    }
                } else {
                    None
                };
                SystemResult::Ok(match answer {
                    Some(bytes) => ContractResult::Ok(Binary::from(bytes)),
                    None => ContractResult::Err(format!(
                        "no answer for {}",
                        String::from_utf8_lossy(msg.as_slice())
                    )),
                })
            });
            Ok(())
        })
        .unwrap();
    }
    ok(instantiate::<_, _, _, _, Empty>(
        &mut vm,
        mock_env(),
        mock_info(&admin, &[]),
        payout::InstantiateMsg {
            admin: None,
            datanet_contract: datanet_addr.clone(),
            registry_contract: registry_addr,
            treasury: treasury.clone(),
            challenge_window_seconds: 60,
            request_expiry_seconds: 3600,
            accepted_cw20: vec![],
            max_entries: 32,
            verification: None,
        },
    ));

    // Pay 1500 for a 1000 price: 500 comes straight back.
    let paid = ok(run(
        &mut vm,
        &payer,
        &coins(1500, "utrib"),
        payout::ExecuteMsg::RequestInference {
            model_id: 1,
            version: 1,
            prompt_hash: hex32(b"prompt"),
        },
    ));
    let request_id: u64 = attribute(&paid, "request_id").parse().unwrap();
    assert!(paid.messages.iter().any(|m| m.msg
        == CosmosMsg::Bank(BankMsg::Send {
            to_address: payer.clone(),
            amount: coins(500, "utrib"),
        })));

    let packet = AttributionPacket {
        request_id,
        model_id: 1,
        model_version: 1,
        weights_hash: hex32(b"weights"),
        datanet_roots: vec![DatanetRoot {
            datanet_id: 1,
            version: 1,
            root,
        }],
        method: "trak-logra-v1".into(),
        params_hash: hex32(b"params"),
        output_hash: hex32(b"completion"),
        scores_root: hex32(b"scores"),
        entries: vec![AttributionEntry {
            contribution_id: 7,
            weight_bps: 10_000,
        }],
    };
    let commit = payout::ExecuteMsg::CommitAttribution {
        packets: vec![packet],
    };
    let stranger = err(run(&mut vm, &payer, &[], commit.clone()));
    assert!(stranger.to_lowercase().contains("attestor"), "{stranger}");
    ok(run(&mut vm, &attestor, &[], commit));

    let finalize = payout::ExecuteMsg::Finalize {
        request_ids: vec![request_id],
    };
    err(run(&mut vm, &payer, &[], finalize.clone()));
    let mut later = mock_env();
    later.block.time = later.block.time.plus_seconds(61);
    let finalized = ok(execute::<_, _, _, _, Empty>(
        &mut vm,
        later.clone(),
        mock_info(&payer, &[]),
        finalize,
    ));
    // Usage goes to the datanet contract in the same transaction.
    assert!(finalized.messages.iter().any(|m| matches!(
        &m.msg,
        CosmosMsg::Wasm(WasmMsg::Execute { contract_addr, .. }) if *contract_addr == datanet_addr
    )));
    let request: payout::InferenceRequest = ask(&mut vm, payout::QueryMsg::Request { request_id });
    assert_eq!(request.status, RequestStatus::Finalized);

    // 1000 at 70/15/10/5 with one entry of weight 100%: 700, 150, 100, 50.
    for (who, expected) in [
        (&contributor, 700u128),
        (&attestor, 100),
        (&treasury, 50),
        (&addr("developer"), 150),
    ] {
        let claimed = ok(execute::<_, _, _, _, Empty>(
            &mut vm,
            later.clone(),
            mock_info(who, &[]),
            payout::ExecuteMsg::Claim {},
        ));
        assert_eq!(
            claimed.messages[0].msg,
            CosmosMsg::Bank(BankMsg::Send {
                to_address: who.to_string(),
                amount: coins(expected, "utrib"),
            })
        );
    }
    err(execute::<_, _, _, _, Empty>(
        &mut vm,
        later,
        mock_info(&contributor, &[]),
        payout::ExecuteMsg::Claim {},
    ));
}

#[test]
fn payout_ibc_channels_need_the_attribution_version_in_the_vm() {
    let mut vm = mock_instance(&artifact("tributary_payout"), &[]);
    let wrong = ibc_channel_open(
        &mut vm,
        mock_env(),
        mock_ibc_channel_open_init("channel-0", IbcOrder::Unordered, "ics20-1"),
    );
    err(wrong);
    let ordered = ibc_channel_open(
        &mut vm,
        mock_env(),
        mock_ibc_channel_open_init("channel-0", IbcOrder::Ordered, IBC_APP_VERSION),
    );
    err(ordered);
    ok(ibc_channel_open(
        &mut vm,
        mock_env(),
        mock_ibc_channel_open_init("channel-0", IbcOrder::Unordered, IBC_APP_VERSION),
    ));
}

#[test]
fn cw20_token_transfers_in_the_vm() {
    let mut vm = mock_instance(&artifact("cw20_base"), &[]);
    let (alice, bob) = (addr("alice"), addr("bob"));
    ok(instantiate::<_, _, _, _, Empty>(
        &mut vm,
        mock_env(),
        mock_info(&alice, &[]),
        cw20_base::msg::InstantiateMsg {
            name: "Tributary Credit".into(),
            symbol: "TRC".into(),
            decimals: 6,
            initial_balances: vec![cw20::Cw20Coin {
                address: alice.clone(),
                amount: 1_000u128.into(),
            }],
            mint: None,
            marketing: None,
        },
    ));
    ok(run(
        &mut vm,
        &alice,
        &[],
        cw20::Cw20ExecuteMsg::Transfer {
            recipient: bob.clone(),
            amount: 250u128.into(),
        },
    ));
    let too_much = err(run(
        &mut vm,
        &bob,
        &[],
        cw20::Cw20ExecuteMsg::Transfer {
            recipient: alice.clone(),
            amount: 251u128.into(),
        },
    ));
    assert!(
        too_much.to_lowercase().contains("overflow") || too_much.contains("insufficient"),
        "{too_much}"
    );
    for (who, expected) in [(&alice, 750u128), (&bob, 250)] {
        let balance: cw20::BalanceResponse = ask(
            &mut vm,
            cw20::Cw20QueryMsg::Balance {
                address: who.clone(),
            },
        );
        assert_eq!(balance.balance.u128(), expected);
    }
}
