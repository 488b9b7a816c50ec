//! Malformed and extreme input against every entry point of the three contracts (and the cw20
//! `Send` hook): valid messages from a live world, mutated at random (numbers at their edges,
//! oversized, empty or foreign strings, repeated or emptied lists, missing and unknown fields),
//! executed from random senders with random funds. Each one must be executed or refused with an
//! error; none may panic. A second harness sends random bytes and mutated packets to the IBC
//! receive entry point.

mod common;

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};

use common::*;
use cosmwasm_std::testing::{
    message_info, mock_dependencies, mock_env, mock_ibc_channel_connect_ack, mock_ibc_packet_recv,
};
use cosmwasm_std::{
    coins, to_json_vec, Addr, Binary, Coin, CosmosMsg, Empty, IbcOrder, QueryRequest, Uint128,
    WasmMsg, WasmQuery,
};
use cw20::Cw20ExecuteMsg;
use cw_multi_test::Executor;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};
use tributary_types::datanet::{self, ReviewDecision};
use tributary_types::payout::{self, ReceiveMsg};
use tributary_types::registry;
use tributary_types::{AssetInfo, Price, IBC_APP_VERSION};

/// Which contract a seed message goes to.
#[derive(Clone, Copy, Debug)]
enum Target {
    Datanet,
    Registry,
    Payout,
    /// The inner message of a cw20 `Send` to the payout contract.
    Cw20Hook,
}

/// One way to change a JSON value at one of its nodes.
#[derive(Clone, Debug)]
enum Mutation {
    Number(u8),
    Text(u8),
    Null,
    Bool,
    EmptyObject,
    /// Empty a list, or repeat its first element up to this many times.
    List(u8),
    /// Drop a field of an object.
    DropField,
    /// Add a field nobody declared.
    UnknownField,
    /// Wrap the node in a list.
    Wrap,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<u8>().prop_map(Mutation::Number),
        any::<u8>().prop_map(Mutation::Text),
        Just(Mutation::Null),
        Just(Mutation::Bool),
        Just(Mutation::EmptyObject),
        any::<u8>().prop_map(Mutation::List),
        Just(Mutation::DropField),
        Just(Mutation::UnknownField),
        Just(Mutation::Wrap),
    ]
}

const NUMBERS: [&str; 10] = [
    "0",
    "1",
    "-1",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "1e300",
    "0.5",
    "65536",
];

fn text(choice: u8, actors: &[Addr]) -> Value {
    let long = "x".repeat(100_000);
    let options: Vec<String> = vec![
        String::new(),
        long,
        "utrib".into(),
        "ff".repeat(32),
        "ff".repeat(31),
        "not hex at all".into(),
        "340282366920938463463374607431768211455".into(),
        "340282366920938463463374607431768211456".into(),
        "0".into(),
        "channel-0".into(),
        "\u{0}\u{202e}ünïcödé".into(),
        "cosmos1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq".into(),
    ];
    let n = options.len() + actors.len();
    let i = choice as usize % n;
    match options.get(i) {
        Some(s) => Value::String(s.clone()),
        None => Value::String(actors[i - options.len()].to_string()),
    }
}

fn count_nodes(value: &Value) -> usize {
    1 + match value {
        Value::Array(items) => items.iter().map(count_nodes).sum(),
        Value::Object(fields) => fields.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// Applies `mutation` to the node numbered `target` in depth-first order.
fn mutate(value: &mut Value, target: &mut usize, mutation: &Mutation, actors: &[Addr]) -> bool {
    if *target == 0 {
        apply(value, mutation, actors);
        return true;
    }
    *target -= 1;
    match value {
        Value::Array(items) => items
            .iter_mut()
            .any(|item| mutate(item, target, mutation, actors)),
        Value::Object(fields) => fields
            .values_mut()
            .any(|field| mutate(field, target, mutation, actors)),
        _ => false,
    }
}

fn apply(value: &mut Value, mutation: &Mutation, actors: &[Addr]) {
    match mutation {
        Mutation::Number(choice) => {
            let raw = NUMBERS[*choice as usize % NUMBERS.len()];
            *value = serde_json::from_str(raw).unwrap_or(Value::Null);
        }
        Mutation::Text(choice) => *value = text(*choice, actors),
        Mutation::Null => *value = Value::Null,
        Mutation::Bool => *value = Value::Bool(true),
        Mutation::EmptyObject => *value = json!({}),
        Mutation::List(times) => match value {
            Value::Array(items) if *times % 4 == 0 => items.clear(),
            Value::Array(items) => {
                if let Some(first) = items.first().cloned() {
                    items.extend(std::iter::repeat_n(first, *times as usize));
                }
            }
            other => *other = Value::Array(vec![]),
        },
        Mutation::DropField => {
            if let Value::Object(fields) = value {
                if let Some(key) = fields.keys().next().cloned() {
                    fields.remove(&key);
                }
            }
        }
        Mutation::UnknownField => {
            if let Value::Object(fields) = value {
                fields.insert("unexpected".into(), json!(1));
            }
        }
        Mutation::Wrap => *value = Value::Array(vec![value.take()]),
    }
}

/// A world with a model, a paid request and a committed packet, and one valid message for every
/// execute variant of every contract.
struct Fixture {
    world: World,
    seeds: Vec<(Target, Value)>,
    queries: Vec<(Target, Value)>,
    actors: Vec<Addr>,
}

fn fixture() -> Fixture {
    let mut world = World::new();
    let model = world.native_model(1_000, 2, 1);
    let request = world.paid_request(&world.payers[0].clone(), model, 1_000);
    let packet = world.packet(request, model, 1, &[(world.accepted[0], 10_000)]);
    world
        .commit(&world.attestors[0].clone(), vec![packet.clone()])
        .unwrap();
    let spec = ModelSpec {
        price: Price {
            asset: AssetInfo::native(DENOM),
            amount: Uint128::new(1_000),
        },
        split: default_split(),
        attestors: world.attestors[..2].to_vec(),
        quorum: 1,
    };
    let version = world.version_input("fuzz", &spec);
    let root = world.root.clone();
    let datanet_id = world.datanet_id;
    let contribution = world.accepted[0];
    let someone = world.contributors[0].to_string();
    let seeds = vec![
        (
            Target::Datanet,
            to_value(&datanet::ExecuteMsg::CreateDatanet {
                name: "fuzz".into(),
                description: "d".into(),
                domain_tags: vec!["t".into()],
                license: "MIT".into(),
                policy: datanet::CurationPolicy::CuratorReview,
                curators: vec![someone.clone()],
                max_contribution_bytes: 10,
            }),
        ),
        (
            Target::Datanet,
            to_value(&datanet::ExecuteMsg::UpdateDatanet {
                datanet_id,
                description: Some("d".into()),
                domain_tags: Some(vec!["t".into()]),
                license: Some("MIT".into()),
                policy: Some(datanet::CurationPolicy::Open),
                max_contribution_bytes: Some(5),
            }),
        ),
        (
            Target::Datanet,
            to_value(&datanet::ExecuteMsg::AddCurators {
                datanet_id,
                curators: vec![someone.clone()],
            }),
        ),
        (
            Target::Datanet,
            to_value(&datanet::ExecuteMsg::RemoveCurators {
                datanet_id,
                curators: vec![someone.clone()],
            }),
        ),
        (
            Target::Datanet,
            to_value(&datanet::ExecuteMsg::UpdateAllowList {
                datanet_id,
                add: vec![someone.clone()],
                remove: vec![],
            }),
        ),
        (
            Target::Datanet,
            to_value(&datanet::ExecuteMsg::TransferOwnership {
                datanet_id,
                new_owner: someone.clone(),
            }),
        ),
        (
            Target::Datanet,
            to_value(&datanet::ExecuteMsg::Contribute {
                datanet_id,
                commitment: h("commitment"),
                size_bytes: 1,
                media_type: "text/plain".into(),
                metadata: None,
            }),
        ),
        (
            Target::Datanet,
            to_value(&datanet::ExecuteMsg::RevealContribution {
                contribution_id: contribution,
                content_hash: content_hash("x"),
                uri: "u".into(),
            }),
        ),
        (
            Target::Datanet,
            to_value(&datanet::ExecuteMsg::Withdraw {
                contribution_id: contribution,
            }),
        ),
        (
            Target::Datanet,
            to_value(&datanet::ExecuteMsg::Review {
                contribution_id: world.pending,
                decision: ReviewDecision::Reject,
                reason: Some("r".into()),
            }),
        ),
        (
            Target::Datanet,
            to_value(&datanet::ExecuteMsg::Snapshot {
                datanet_id,
                note: None,
            }),
        ),
        (
            Target::Datanet,
            to_value(&datanet::ExecuteMsg::RecordUsage {
                records: vec![datanet::UsageRecord {
                    contribution_id: contribution,
                    asset: AssetInfo::native(DENOM),
                    amount: Uint128::new(5),
                    uses: None,
                }],
            }),
        ),
        (
            Target::Datanet,
            to_value(&datanet::ExecuteMsg::UpdateConfig {
                admin: Some(someone.clone()),
                usage_recorder: Some(world.payout.to_string()),
            }),
        ),
        (
            Target::Registry,
            to_value(&registry::ExecuteMsg::RegisterModel {
                name: "m".into(),
                description: "d".into(),
                architecture: "a".into(),
                version: version.clone(),
            }),
        ),
        (
            Target::Registry,
            to_value(&registry::ExecuteMsg::AddVersion {
                model_id: model,
                version,
            }),
        ),
        (
            Target::Registry,
            to_value(&registry::ExecuteMsg::DeprecateVersion {
                model_id: model,
                version: 1,
            }),
        ),
        (
            Target::Registry,
            to_value(&registry::ExecuteMsg::SetAttestors {
                model_id: model,
                version: 1,
                attestors: vec![someone.clone()],
                quorum: 1,
            }),
        ),
        (
            Target::Registry,
            to_value(&registry::ExecuteMsg::UpdateConfig {
                admin: None,
                min_contributors_bps: Some(100),
                min_protocol_bps: Some(100),
            }),
        ),
        (
            Target::Payout,
            to_value(&payout::ExecuteMsg::RequestInference {
                model_id: model,
                version: 1,
                prompt_hash: h("prompt"),
            }),
        ),
        (
            Target::Payout,
            to_value(&payout::ExecuteMsg::CommitAttribution {
                packets: vec![packet.clone()],
            }),
        ),
        (
            Target::Payout,
            to_value(&payout::ExecuteMsg::Finalize {
                request_ids: vec![request],
            }),
        ),
        (
            Target::Payout,
            to_value(&payout::ExecuteMsg::Refund {
                request_id: request,
            }),
        ),
        (Target::Payout, to_value(&payout::ExecuteMsg::Claim {})),
        (
            Target::Payout,
            to_value(&payout::ExecuteMsg::ClaimPool {
                datanet_id: root.datanet_id,
                version: root.version,
                asset: AssetInfo::native(DENOM),
                contribution_ids: vec![contribution],
            }),
        ),
        (
            Target::Payout,
            to_value(&payout::ExecuteMsg::BindChannel {
                channel_id: "channel-0".into(),
                attestor: someone.clone(),
                connection_id: "connection-0".into(),
                counterparty_port_id: "wasm.x".into(),
            }),
        ),
        (
            Target::Payout,
            to_value(&payout::ExecuteMsg::UnbindChannel {
                channel_id: "channel-0".into(),
            }),
        ),
        (
            Target::Payout,
            to_value(&payout::ExecuteMsg::UpdateConfig {
                admin: None,
                treasury: Some(someone.clone()),
                challenge_window_seconds: Some(10),
                request_expiry_seconds: Some(100),
                accepted_cw20: Some(vec![world.token.to_string()]),
                max_entries: Some(8),
            }),
        ),
        (
            Target::Cw20Hook,
            to_value(&ReceiveMsg::RequestInference {
                model_id: model,
                version: 1,
                prompt_hash: h("prompt"),
            }),
        ),
    ];
    let queries = vec![
        (
            Target::Datanet,
            json!({"contributions": {"datanet_id": datanet_id, "start_after": 0, "limit": 10}}),
        ),
        (
            Target::Datanet,
            json!({"version": {"datanet_id": datanet_id, "version": 1}}),
        ),
        (
            Target::Datanet,
            json!({"contribution": {"contribution_id": contribution}}),
        ),
        (
            Target::Registry,
            json!({"model_version": {"model_id": model, "version": 1}}),
        ),
        (
            Target::Registry,
            json!({"models": {"start_after": 0, "limit": 5}}),
        ),
        (Target::Payout, json!({"request": {"request_id": request}})),
        (
            Target::Payout,
            json!({"requests": {"status": "open", "payer": someone, "start_after": 0, "limit": 3}}),
        ),
        (
            Target::Payout,
            json!({"balances": {"address": someone, "start_after": null, "limit": 3}}),
        ),
        (Target::Payout, json!({"commits": {"request_id": request}})),
    ];
    let mut actors = vec![
        world.admin.clone(),
        world.owner.clone(),
        world.developer.clone(),
        world.treasury.clone(),
        world.datanet.clone(),
        world.payout.clone(),
    ];
    actors.extend(world.attestors.iter().cloned());
    actors.extend(world.payers.iter().cloned());
    actors.extend(world.contributors.iter().cloned());
    Fixture {
        world,
        seeds,
        queries,
        actors,
    }
}

/// A message as the JSON value the mutations work on.
fn to_value(msg: &impl serde::Serialize) -> Value {
    serde_json::to_value(msg).expect("messages serialize")
}

/// One fuzzed call: a seed, the mutations applied to it, the sender, the funds, and whether it is
/// sent as a query instead of an execution.
type Step = (usize, Vec<(usize, Mutation)>, usize, u8, bool);

fn step() -> impl Strategy<Value = Step> {
    (
        any::<usize>(),
        prop::collection::vec((any::<usize>(), mutation()), 1..4),
        any::<usize>(),
        any::<u8>(),
        prop::bool::weighted(0.2),
    )
}

fn funds(choice: u8) -> Vec<Coin> {
    match choice % 5 {
        0 | 1 => vec![],
        2 => coins(1, DENOM),
        3 => coins(1_000, DENOM),
        _ => coins(7, "uatom"),
    }
}

fn run_step(fixture: &mut Fixture, step: &Step) -> Result<(), String> {
    let (seed, mutations, sender, funds_choice, as_query) = step;
    let pool = if *as_query {
        &fixture.queries
    } else {
        &fixture.seeds
    };
    let (target, seed) = &pool[seed % pool.len()];
    let mut message = seed.clone();
    for (node, mutation) in mutations {
        let mut node = node % count_nodes(&message);
        mutate(&mut message, &mut node, mutation, &fixture.actors);
    }
    let sender = fixture.actors[sender % fixture.actors.len()].clone();
    let funds = funds(*funds_choice);
    let world = &mut fixture.world;
    let contract = match target {
        Target::Datanet => world.datanet.clone(),
        Target::Registry => world.registry.clone(),
        Target::Payout | Target::Cw20Hook => world.payout.clone(),
    };
    // Serialized here with serde_json: the chain hands contracts bytes, and the float and other
    // values that the contracts' own serializer refuses are part of what is tried.
    let bytes = Binary::from(serde_json::to_vec(&message).expect("json"));
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        if *as_query {
            let request: QueryRequest<Empty> = QueryRequest::Wasm(WasmQuery::Smart {
                contract_addr: contract.to_string(),
                msg: bytes,
            });
            let _ = world
                .app
                .wrap()
                .raw_query(&to_json_vec(&request).expect("query request"));
        } else if let Target::Cw20Hook = target {
            let send = Cw20ExecuteMsg::Send {
                contract: contract.to_string(),
                amount: Uint128::new(1_000),
                msg: bytes,
            };
            let _ = world
                .app
                .execute_contract(sender, world.token.clone(), &send, &[]);
        } else {
            let _ = world.app.execute(
                sender,
                CosmosMsg::Wasm(WasmMsg::Execute {
                    contract_addr: contract.to_string(),
                    msg: bytes,
                    funds,
                }),
            );
        }
    }));
    outcome.map_err(|_| format!("{target:?} panicked on {message}"))
}

#[test]
fn no_mutated_message_panics_a_contract() {
    let mut runner = TestRunner::new(Config {
        cases: 160,
        failure_persistence: None,
        ..Config::default()
    });
    let steps_run = Cell::new(0usize);
    let result = runner.run(&prop::collection::vec(step(), 1..60), |steps| {
        let mut fixture = fixture();
        for step in &steps {
            run_step(&mut fixture, step).map_err(TestCaseError::fail)?;
            // Time moves so that expiries, windows and reveal delays are crossed too.
            fixture.world.advance(600);
        }
        steps_run.set(steps_run.get() + steps.len());
        Ok(())
    });
    eprintln!(
        "fuzzed {} mutated messages against the three contracts",
        steps_run.get()
    );
    result.unwrap();
}

#[test]
fn no_ibc_packet_panics_the_payout_contract() {
    let mut deps = mock_dependencies();
    let api = deps.api;
    let admin = api.addr_make("admin");
    tributary_payout::contract::instantiate(
        deps.as_mut(),
        mock_env(),
        message_info(&admin, &[]),
        payout::InstantiateMsg {
            admin: None,
            datanet_contract: api.addr_make("datanet").to_string(),
            registry_contract: api.addr_make("registry").to_string(),
            treasury: api.addr_make("treasury").to_string(),
            challenge_window_seconds: WINDOW,
            request_expiry_seconds: EXPIRY,
            accepted_cw20: vec![],
            max_entries: 16,
            verification: None,
        },
    )
    .unwrap();
    let connect = mock_ibc_channel_connect_ack("channel-0", IbcOrder::Unordered, IBC_APP_VERSION);
    let channel = connect.channel().clone();
    tributary_payout::ibc::ibc_channel_connect(deps.as_mut(), mock_env(), connect).unwrap();
    tributary_payout::contract::execute(
        deps.as_mut(),
        mock_env(),
        message_info(&admin, &[]),
        payout::ExecuteMsg::BindChannel {
            channel_id: channel.endpoint.channel_id.clone(),
            attestor: api.addr_make("attestor").to_string(),
            connection_id: channel.connection_id.clone(),
            counterparty_port_id: channel.counterparty_endpoint.port_id.clone(),
        },
    )
    .unwrap();
    let world = World::new();
    let seed = serde_json::to_value(world.packet(1, 1, 1, &[(1, 10_000)])).unwrap();
    let actors = vec![admin];
    let mut runner = TestRunner::new(Config {
        cases: 1024,
        failure_persistence: None,
        ..Config::default()
    });
    let packets = Cell::new(0usize);
    let deps = RefCell::new(deps);
    let data = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512).prop_map(|bytes| (bytes, vec![])),
        prop::collection::vec((any::<usize>(), mutation()), 1..4).prop_map(|m| (vec![], m)),
    ];
    let result = runner.run(&(data, prop::bool::ANY), |((raw, mutations), bound)| {
        let bytes = if mutations.is_empty() {
            raw
        } else {
            let mut packet = seed.clone();
            for (node, mutation) in &mutations {
                let mut node = node % count_nodes(&packet);
                mutate(&mut packet, &mut node, mutation, &actors);
            }
            serde_json::to_vec(&packet).unwrap()
        };
        let channel_id = if bound { "channel-0" } else { "channel-9" };
        let mut msg = mock_ibc_packet_recv(channel_id, &()).expect("packet");
        msg.packet.data = Binary::from(bytes);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            tributary_payout::ibc::ibc_packet_receive(deps.borrow_mut().as_mut(), mock_env(), msg)
        }));
        packets.set(packets.get() + 1);
        prop_assert!(outcome.is_ok(), "ibc_packet_receive panicked");
        Ok(())
    });
    eprintln!(
        "fuzzed {} IBC packets against the payout contract",
        packets.get()
    );
    result.unwrap();
}
