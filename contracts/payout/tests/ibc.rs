//! The IBC entry points against mocked registry and datanet contracts: channel handshake rules,
//! packets committed exactly as `CommitAttribution` commits them, and error acknowledgements that
//! leave the state untouched.

use cosmwasm_std::testing::{
    message_info, mock_dependencies, mock_env, mock_ibc_channel_close_confirm,
    mock_ibc_channel_connect_ack, mock_ibc_channel_open_init, mock_ibc_channel_open_try,
    mock_ibc_packet_ack, mock_ibc_packet_recv, mock_ibc_packet_timeout, MockApi, MockQuerier,
    MockStorage,
};
use cosmwasm_std::{
    coins, from_json, to_json_binary, Addr, Binary, ContractResult, Deps, Env, HexBinary,
    Ibc3ChannelOpenResponse, IbcAcknowledgement, IbcOrder, IbcReceiveResponse, Order, OwnedDeps,
    StdAck, Storage, SystemResult, Timestamp, Uint128, WasmQuery,
};
use cw_storage_plus::Map;
use tributary_payout::contract::{execute, instantiate, query};
use tributary_payout::error::ContractError;
use tributary_payout::ibc::{
    ibc_channel_close, ibc_channel_connect, ibc_channel_open, ibc_packet_ack, ibc_packet_receive,
    ibc_packet_timeout,
};
use tributary_types::datanet::{layout, Contribution, ContributionStatus, DatanetVersion};
use tributary_types::payout::{
    ChannelBinding, CommitInfo, ExecuteMsg, InferenceRequest, InstantiateMsg, QueryMsg,
    RequestStatus,
};
use tributary_types::registry::{self, AttributionMethod, ModelVersion};
use tributary_types::{
    sha256, AssetInfo, AttributionEntry, AttributionPacket, DatanetRoot, FeeSplit, Price,
    IBC_APP_VERSION,
};

type MockDeps = OwnedDeps<MockStorage, MockApi, MockQuerier>;

const CHANNEL: &str = "channel-3";
const PRICE: u128 = 1_000;

fn hash(label: &str) -> HexBinary {
    HexBinary::from(sha256(label.as_bytes()).as_slice())
}

/// The addresses of one mocked deployment.
struct Actors {
    admin: Addr,
    payer: Addr,
    attestors: [Addr; 2],
    outsider: Addr,
    registry: Addr,
    datanet: Addr,
}

fn actors(api: &MockApi) -> Actors {
    Actors {
        admin: api.addr_make("admin"),
        payer: api.addr_make("payer"),
        attestors: [api.addr_make("attestor-a"), api.addr_make("attestor-b")],
        outsider: api.addr_make("outsider"),
        registry: api.addr_make("registry"),
        datanet: api.addr_make("datanet"),
    }
}

fn root() -> DatanetRoot {
    DatanetRoot {
        datanet_id: 1,
        version: 1,
        root: hash("root"),
    }
}

fn model_version(a: &Actors) -> ModelVersion {
    ModelVersion {
        model_id: 1,
        version: 1,
        lineage: vec![root()],
        weights_hash: hash("weights"),
        weights_uri: "tributary://weights".into(),
        index_hash: hash("index"),
        method: AttributionMethod {
            id: "trak-logra-v1".into(),
            params_hash: hash("params"),
            params: None,
        },
        price: Price {
            asset: AssetInfo::native("utrib"),
            amount: Uint128::new(PRICE),
        },
        split: FeeSplit {
            contributors_bps: 7000,
            developer_bps: 1500,
            operator_bps: 1000,
            protocol_bps: 500,
        },
        attestors: a.attestors.to_vec(),
        quorum: 2,
        deprecated: false,
        developer: a.admin.clone(),
        created_at: Timestamp::from_seconds(1),
    }
}

fn contribution(id: u64, contributor: &Addr) -> Contribution {
    Contribution {
        id,
        datanet_id: 1,
        contributor: contributor.clone(),
        content_hash: hash(&format!("content-{id}")).to_hex(),
        size_bytes: 10,
        uri: "tributary://blob".into(),
        media_type: "text/plain".into(),
        metadata: None,
        status: ContributionStatus::Accepted,
        submitted_at: Timestamp::from_seconds(1),
        reviewed_by: None,
        reason: None,
        leaf_index: Some(id - 1),
        usage_count: 0,
    }
}

/// Answers the payout contract's queries as the registry and datanet contracts would.
fn mock_peers(deps: &mut MockDeps, a: &Actors) {
    let registry = a.registry.clone();
    let datanet = a.datanet.clone();
    let version = model_version(a);
    let contributor = a.outsider.clone();
    deps.querier.update_wasm(move |query| {
        let found = |value: Binary| SystemResult::Ok(ContractResult::Ok(value));
        let missing = || SystemResult::Ok(ContractResult::Err("not found".to_string()));
        let absent = || SystemResult::Ok(ContractResult::Ok(Binary::default()));
        let datanet_version = || DatanetVersion {
            datanet_id: 1,
            version: 1,
            root: root().root,
            count: 2,
            total_bytes: 20,
            created_at: Timestamp::from_seconds(1),
            created_by: contributor.clone(),
            note: None,
        };
        match query {
            // The datanet contract is read raw, from its storage layout.
            WasmQuery::Raw { contract_addr, key } if *contract_addr == datanet.as_str() => {
                let contributions = Map::<u64, Contribution>::new(layout::CONTRIBUTIONS);
                let versions = Map::<(u64, u32), DatanetVersion>::new(layout::VERSIONS);
                for id in 1..=2 {
                    if key.as_slice() == &*contributions.key(id) {
                        return found(to_json_binary(&contribution(id, &contributor)).unwrap());
                    }
                }
                if key.as_slice() == &*versions.key((1, 1)) {
                    return found(to_json_binary(&datanet_version()).unwrap());
                }
                absent()
            }
            WasmQuery::Smart { contract_addr, msg } if *contract_addr == registry.as_str() => {
                match from_json(msg) {
                    Ok(registry::QueryMsg::ModelVersion {
                        model_id: 1,
                        version: 1,
                    }) => found(to_json_binary(&version).unwrap()),
                    _ => missing(),
                }
            }
            _ => missing(),
        }
    });
}

/// Completes the handshake of `channel` (over `connection-2` to `their_port`, as the mocks
/// have it) and binds it to `attestor`.
fn open_and_bind(deps: &mut MockDeps, a: &Actors, channel: &str, attestor: &Addr) {
    let connect = mock_ibc_channel_connect_ack(channel, IbcOrder::Unordered, IBC_APP_VERSION);
    ibc_channel_connect(deps.as_mut(), mock_env(), connect).unwrap();
    execute(
        deps.as_mut(),
        mock_env(),
        message_info(&a.admin, &[]),
        bind_msg(channel, attestor),
    )
    .unwrap();
}

fn bind_msg(channel: &str, attestor: &Addr) -> ExecuteMsg {
    ExecuteMsg::BindChannel {
        channel_id: channel.into(),
        attestor: attestor.to_string(),
        connection_id: "connection-2".into(),
        counterparty_port_id: "their_port".into(),
    }
}

fn binding(channel: &str, attestor: &Addr) -> ChannelBinding {
    ChannelBinding {
        channel_id: channel.into(),
        attestor: attestor.clone(),
        connection_id: "connection-2".into(),
        counterparty_port_id: "their_port".into(),
        counterparty_channel_id: "channel-7".into(),
    }
}

/// A payout contract with one paid request (id 1) and `CHANNEL` bound to the first attestor.
fn setup() -> (MockDeps, Actors) {
    let mut deps = mock_dependencies();
    let a = actors(&deps.api);
    mock_peers(&mut deps, &a);
    instantiate(
        deps.as_mut(),
        mock_env(),
        message_info(&a.admin, &[]),
        InstantiateMsg {
            admin: None,
            datanet_contract: a.datanet.to_string(),
            registry_contract: a.registry.to_string(),
            treasury: a.admin.to_string(),
            challenge_window_seconds: 100,
            request_expiry_seconds: 1_000,
            accepted_cw20: vec![],
            max_entries: 8,
            verification: None,
        },
    )
    .unwrap();
    execute(
        deps.as_mut(),
        mock_env(),
        message_info(&a.payer, &coins(PRICE, "utrib")),
        ExecuteMsg::RequestInference {
            model_id: 1,
            version: 1,
            prompt_hash: hash("prompt"),
        },
    )
    .unwrap();
    let first = a.attestors[0].clone();
    open_and_bind(&mut deps, &a, CHANNEL, &first);
    (deps, a)
}

fn packet() -> AttributionPacket {
    AttributionPacket {
        request_id: 1,
        model_id: 1,
        model_version: 1,
        weights_hash: hash("weights"),
        datanet_roots: vec![root()],
        method: "trak-logra-v1".into(),
        params_hash: hash("params"),
        output_hash: hash("output"),
        scores_root: hash("scores"),
        entries: vec![
            AttributionEntry {
                contribution_id: 1,
                weight_bps: 6000,
            },
            AttributionEntry {
                contribution_id: 2,
                weight_bps: 4000,
            },
        ],
    }
}

fn query_json<T: serde::de::DeserializeOwned>(deps: Deps, msg: QueryMsg) -> T {
    from_json(query(deps, mock_env(), msg).unwrap()).unwrap()
}

fn receive(
    deps: &mut MockDeps,
    env: Env,
    channel: &str,
    data: &impl serde::Serialize,
) -> IbcReceiveResponse {
    let msg = mock_ibc_packet_recv(channel, data).unwrap();
    ibc_packet_receive(deps.as_mut(), env, msg).unwrap()
}

fn ack(response: &IbcReceiveResponse) -> StdAck {
    from_json(
        response
            .acknowledgement
            .as_ref()
            .expect("an acknowledgement"),
    )
    .unwrap()
}

fn dump(storage: &dyn Storage) -> Vec<(Vec<u8>, Vec<u8>)> {
    storage.range(None, None, Order::Ascending).collect()
}

#[test]
fn channel_open_accepts_unordered_channels_of_our_version() {
    let (mut deps, _) = setup();
    let init = mock_ibc_channel_open_init(CHANNEL, IbcOrder::Unordered, IBC_APP_VERSION);
    assert_eq!(ibc_channel_open(deps.as_mut(), mock_env(), init), Ok(None));
    let try_ = mock_ibc_channel_open_try(CHANNEL, IbcOrder::Unordered, IBC_APP_VERSION);
    assert_eq!(ibc_channel_open(deps.as_mut(), mock_env(), try_), Ok(None));
}

#[test]
fn channel_open_without_a_version_proposes_ours() {
    let (mut deps, _) = setup();
    let init = mock_ibc_channel_open_init(CHANNEL, IbcOrder::Unordered, "");
    assert_eq!(
        ibc_channel_open(deps.as_mut(), mock_env(), init),
        Ok(Some(Ibc3ChannelOpenResponse {
            version: IBC_APP_VERSION.to_string()
        }))
    );
}

#[test]
fn channel_open_with_a_wrong_version_is_refused() {
    let (mut deps, _) = setup();
    let expected = || ContractError::InvalidIbcVersion {
        version: "ics20-1".into(),
        expected: IBC_APP_VERSION.into(),
    };
    let init = mock_ibc_channel_open_init(CHANNEL, IbcOrder::Unordered, "ics20-1");
    assert_eq!(
        ibc_channel_open(deps.as_mut(), mock_env(), init),
        Err(expected())
    );
    let try_ = mock_ibc_channel_open_try(CHANNEL, IbcOrder::Unordered, "ics20-1");
    assert_eq!(
        ibc_channel_open(deps.as_mut(), mock_env(), try_),
        Err(expected())
    );
    let connect = mock_ibc_channel_connect_ack(CHANNEL, IbcOrder::Unordered, "ics20-1");
    assert_eq!(
        ibc_channel_connect(deps.as_mut(), mock_env(), connect).unwrap_err(),
        expected()
    );
}

#[test]
fn channel_open_with_a_wrong_counterparty_version_is_refused() {
    let (mut deps, _) = setup();
    let mut msg = mock_ibc_channel_open_try(CHANNEL, IbcOrder::Unordered, IBC_APP_VERSION);
    if let cosmwasm_std::IbcChannelOpenMsg::OpenTry {
        counterparty_version,
        ..
    } = &mut msg
    {
        *counterparty_version = "tributary-attribution-0".into();
    }
    assert_eq!(
        ibc_channel_open(deps.as_mut(), mock_env(), msg),
        Err(ContractError::InvalidIbcVersion {
            version: "tributary-attribution-0".into(),
            expected: IBC_APP_VERSION.into(),
        })
    );
}

#[test]
fn ordered_channels_are_refused() {
    let (mut deps, _) = setup();
    let init = mock_ibc_channel_open_init(CHANNEL, IbcOrder::Ordered, IBC_APP_VERSION);
    assert_eq!(
        ibc_channel_open(deps.as_mut(), mock_env(), init),
        Err(ContractError::OrderedChannel {
            order: IbcOrder::Ordered
        })
    );
    let connect = mock_ibc_channel_connect_ack(CHANNEL, IbcOrder::Ordered, IBC_APP_VERSION);
    assert_eq!(
        ibc_channel_connect(deps.as_mut(), mock_env(), connect).unwrap_err(),
        ContractError::OrderedChannel {
            order: IbcOrder::Ordered
        }
    );
}

#[test]
fn connect_names_the_channel() {
    let (mut deps, _) = setup();
    let connect = mock_ibc_channel_connect_ack(CHANNEL, IbcOrder::Unordered, IBC_APP_VERSION);
    let response = ibc_channel_connect(deps.as_mut(), mock_env(), connect).unwrap();
    assert!(response
        .attributes
        .iter()
        .any(|attr| attr.key == "channel_id" && attr.value == CHANNEL));
}

#[test]
fn closing_a_channel_removes_its_binding() {
    let (mut deps, a) = setup();
    let bindings: Vec<ChannelBinding> = query_json(
        deps.as_ref(),
        QueryMsg::Channels {
            start_after: None,
            limit: None,
        },
    );
    assert_eq!(bindings, vec![binding(CHANNEL, &a.attestors[0])]);
    let close = mock_ibc_channel_close_confirm(CHANNEL, IbcOrder::Unordered, IBC_APP_VERSION);
    ibc_channel_close(deps.as_mut(), mock_env(), close).unwrap();
    let bindings: Vec<ChannelBinding> = query_json(
        deps.as_ref(),
        QueryMsg::Channels {
            start_after: None,
            limit: None,
        },
    );
    assert!(bindings.is_empty());
    let response = receive(&mut deps, mock_env(), CHANNEL, &packet());
    assert_eq!(
        ack(&response),
        StdAck::error(
            ContractError::UnboundChannel {
                channel_id: CHANNEL.into()
            }
            .to_string()
        )
    );
}

#[test]
fn a_packet_on_a_bound_channel_commits_like_commit_attribution() {
    let (mut by_ibc, a) = setup();
    let (mut by_tx, _) = setup();

    let response = receive(&mut by_ibc, mock_env(), CHANNEL, &packet());
    assert_eq!(ack(&response), StdAck::success(b"\x01"));
    execute(
        by_tx.as_mut(),
        mock_env(),
        message_info(&a.attestors[0], &[]),
        ExecuteMsg::CommitAttribution {
            packets: vec![packet()],
        },
    )
    .unwrap();

    let packet_hash = HexBinary::from(packet().packet_hash().unwrap().as_slice());
    for deps in [&by_ibc, &by_tx] {
        let commits: Vec<CommitInfo> =
            query_json(deps.as_ref(), QueryMsg::Commits { request_id: 1 });
        assert_eq!(
            commits,
            vec![CommitInfo {
                attestor: a.attestors[0].clone(),
                packet_hash: packet_hash.clone(),
            }]
        );
        let stored: AttributionPacket = query_json(
            deps.as_ref(),
            QueryMsg::Packet {
                request_id: 1,
                packet_hash: packet_hash.clone(),
            },
        );
        assert_eq!(stored, packet());
    }
    let via_ibc: InferenceRequest =
        query_json(by_ibc.as_ref(), QueryMsg::Request { request_id: 1 });
    let via_tx: InferenceRequest = query_json(by_tx.as_ref(), QueryMsg::Request { request_id: 1 });
    assert_eq!(via_ibc, via_tx);
    assert_eq!(via_ibc.status, RequestStatus::Open);
    assert_eq!(via_ibc.distinct_packets, 1);
    // Identical writes: the two stores differ in nothing but what was set up identically.
    assert_eq!(dump(&by_ibc.storage), dump(&by_tx.storage));
}

#[test]
fn the_second_attestor_over_ibc_brings_the_request_to_quorum() {
    let (mut deps, a) = setup();
    let second = a.attestors[1].clone();
    open_and_bind(&mut deps, &a, "channel-4", &second);
    let env = mock_env();
    assert_eq!(
        ack(&receive(&mut deps, env.clone(), CHANNEL, &packet())),
        StdAck::success(b"\x01")
    );
    assert_eq!(
        ack(&receive(&mut deps, env.clone(), "channel-4", &packet())),
        StdAck::success(b"\x01")
    );
    let request: InferenceRequest = query_json(deps.as_ref(), QueryMsg::Request { request_id: 1 });
    assert_eq!(request.status, RequestStatus::Attested);
    assert_eq!(
        request.agreed_packet,
        Some(HexBinary::from(packet().packet_hash().unwrap().as_slice()))
    );
    assert_eq!(
        request.finalizable_at,
        Some(env.block.time.plus_seconds(100))
    );
}

#[test]
fn a_repeated_packet_is_acknowledged_and_changes_nothing() {
    let (mut deps, _) = setup();
    receive(&mut deps, mock_env(), CHANNEL, &packet());
    let before = dump(&deps.storage);
    let response = receive(&mut deps, mock_env(), CHANNEL, &packet());
    assert_eq!(ack(&response), StdAck::success(b"\x01"));
    assert!(response.events[0]
        .attributes
        .iter()
        .any(|attr| attr.key == "duplicate" && attr.value == "true"));
    assert_eq!(dump(&deps.storage), before);
}

#[test]
fn bad_packets_get_an_error_ack_and_store_nothing() {
    let (mut deps, a) = setup();
    let mut wrong_weights = packet();
    wrong_weights.weights_hash = hash("other weights");
    let mut unknown_request = packet();
    unknown_request.request_id = 9;
    let mut not_in_lineage = packet();
    not_in_lineage.entries[1].contribution_id = 3;
    let mut too_heavy = packet();
    too_heavy.entries[0].weight_bps = 9000;

    let cases: Vec<(Binary, ContractError)> = vec![
        (
            to_json_binary(&wrong_weights).unwrap(),
            ContractError::WeightsHashMismatch {
                request_id: 1,
                expected: hash("weights").to_hex(),
                got: hash("other weights").to_hex(),
            },
        ),
        (
            to_json_binary(&unknown_request).unwrap(),
            ContractError::UnknownRequest { id: 9 },
        ),
        (
            to_json_binary(&not_in_lineage).unwrap(),
            ContractError::ContributionNotInLineage { contribution_id: 3 },
        ),
        (
            to_json_binary(&too_heavy).unwrap(),
            ContractError::Packet(tributary_types::packet::PacketError::WeightsSum { sum: 13000 }),
        ),
    ];
    for (data, expected) in cases {
        let before = dump(&deps.storage);
        let msg = mock_ibc_packet_recv(CHANNEL, &()).unwrap();
        let mut msg = msg;
        msg.packet.data = data;
        let response = ibc_packet_receive(deps.as_mut(), mock_env(), msg).unwrap();
        assert_eq!(ack(&response), StdAck::error(expected.to_string()));
        assert_eq!(dump(&deps.storage), before, "{expected}");
    }

    // Not JSON of a packet at all.
    let before = dump(&deps.storage);
    let mut msg = mock_ibc_packet_recv(CHANNEL, &()).unwrap();
    msg.packet.data = Binary::from(b"not json".as_slice());
    let response = ibc_packet_receive(deps.as_mut(), mock_env(), msg).unwrap();
    assert!(matches!(ack(&response), StdAck::Error(_)));
    assert_eq!(dump(&deps.storage), before);

    // A channel bound to an address that is not an attestor of the version.
    let outsider = a.outsider.clone();
    open_and_bind(&mut deps, &a, "channel-9", &outsider);
    let before = dump(&deps.storage);
    let response = receive(&mut deps, mock_env(), "channel-9", &packet());
    assert_eq!(
        ack(&response),
        StdAck::error(
            ContractError::UnauthorizedAttestor {
                attestor: a.outsider.clone(),
                model_id: 1,
                version: 1,
            }
            .to_string()
        )
    );
    assert_eq!(dump(&deps.storage), before);
}

#[test]
fn a_packet_after_expiry_gets_an_error_ack() {
    let (mut deps, _) = setup();
    let mut env = mock_env();
    env.block.time = env.block.time.plus_seconds(1_000);
    let before = dump(&deps.storage);
    let response = receive(&mut deps, env, CHANNEL, &packet());
    assert_eq!(
        ack(&response),
        StdAck::error(ContractError::RequestExpired { id: 1 }.to_string())
    );
    assert_eq!(dump(&deps.storage), before);
}

#[test]
fn an_unbound_channel_gets_an_error_ack() {
    let (mut deps, _) = setup();
    let before = dump(&deps.storage);
    let response = receive(&mut deps, mock_env(), "channel-77", &packet());
    assert_eq!(
        ack(&response),
        StdAck::error(
            ContractError::UnboundChannel {
                channel_id: "channel-77".into()
            }
            .to_string()
        )
    );
    assert_eq!(dump(&deps.storage), before);
}

#[test]
fn acks_and_timeouts_are_accepted_without_effect() {
    let (mut deps, _) = setup();
    let before = dump(&deps.storage);
    let ack_msg =
        mock_ibc_packet_ack(CHANNEL, &packet(), IbcAcknowledgement::new(b"\x01")).unwrap();
    ibc_packet_ack(deps.as_mut(), mock_env(), ack_msg).unwrap();
    let timeout = mock_ibc_packet_timeout(CHANNEL, &packet()).unwrap();
    ibc_packet_timeout(deps.as_mut(), mock_env(), timeout).unwrap();
    assert_eq!(dump(&deps.storage), before);
}

#[test]
fn binding_a_channel_that_was_never_opened_is_refused() {
    let (mut deps, a) = setup();
    // Whoever opens channel-9 later must not inherit a binding made in advance.
    let result = execute(
        deps.as_mut(),
        mock_env(),
        message_info(&a.admin, &[]),
        bind_msg("channel-9", &a.attestors[1]),
    );
    assert_eq!(
        result,
        Err(ContractError::ChannelNotOpen {
            channel_id: "channel-9".into()
        })
    );
    let open = mock_ibc_channel_connect_ack("channel-9", IbcOrder::Unordered, IBC_APP_VERSION);
    ibc_channel_connect(deps.as_mut(), mock_env(), open).unwrap();
    let response = receive(&mut deps, mock_env(), "channel-9", &packet());
    assert_eq!(
        ack(&response),
        StdAck::error(
            ContractError::UnboundChannel {
                channel_id: "channel-9".into()
            }
            .to_string()
        )
    );
}

#[test]
fn a_closed_channel_cannot_be_bound_again() {
    let (mut deps, a) = setup();
    let close = mock_ibc_channel_close_confirm(CHANNEL, IbcOrder::Unordered, IBC_APP_VERSION);
    ibc_channel_close(deps.as_mut(), mock_env(), close).unwrap();
    let result = execute(
        deps.as_mut(),
        mock_env(),
        message_info(&a.admin, &[]),
        bind_msg(CHANNEL, &a.attestors[0]),
    );
    assert_eq!(
        result,
        Err(ContractError::ChannelNotOpen {
            channel_id: CHANNEL.into()
        })
    );
}

#[test]
fn binding_names_the_connection_and_counterparty_it_expects() {
    let (mut deps, a) = setup();
    let connect = mock_ibc_channel_connect_ack("channel-5", IbcOrder::Unordered, IBC_APP_VERSION);
    ibc_channel_connect(deps.as_mut(), mock_env(), connect).unwrap();
    let mismatch = || ContractError::ChannelMismatch {
        channel_id: "channel-5".into(),
        connection_id: "connection-2".into(),
        counterparty_port_id: "their_port".into(),
    };
    for (connection_id, counterparty_port_id) in [
        ("connection-9", "their_port"),
        ("connection-2", "wasm.other"),
    ] {
        let result = execute(
            deps.as_mut(),
            mock_env(),
            message_info(&a.admin, &[]),
            ExecuteMsg::BindChannel {
                channel_id: "channel-5".into(),
                attestor: a.attestors[1].to_string(),
                connection_id: connection_id.into(),
                counterparty_port_id: counterparty_port_id.into(),
            },
        );
        assert_eq!(result, Err(mismatch()));
    }
}

#[test]
fn bindings_are_listed_with_their_connection_and_counterparty() {
    let (mut deps, a) = setup();
    let second = a.attestors[1].clone();
    open_and_bind(&mut deps, &a, "channel-1", &second);
    let bindings: Vec<ChannelBinding> = query_json(
        deps.as_ref(),
        QueryMsg::Channels {
            start_after: None,
            limit: None,
        },
    );
    assert_eq!(
        bindings,
        vec![
            binding("channel-1", &a.attestors[1]),
            binding(CHANNEL, &a.attestors[0])
        ]
    );
    let page: Vec<ChannelBinding> = query_json(
        deps.as_ref(),
        QueryMsg::Channels {
            start_after: Some("channel-1".into()),
            limit: Some(1),
        },
    );
    assert_eq!(page, vec![binding(CHANNEL, &a.attestors[0])]);
    // Unbinding leaves the channel open, so it can be bound again.
    execute(
        deps.as_mut(),
        mock_env(),
        message_info(&a.admin, &[]),
        ExecuteMsg::UnbindChannel {
            channel_id: "channel-1".into(),
        },
    )
    .unwrap();
    execute(
        deps.as_mut(),
        mock_env(),
        message_info(&a.admin, &[]),
        bind_msg("channel-1", &a.attestors[0]),
    )
    .unwrap();
}
