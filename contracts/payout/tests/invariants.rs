//! Random sequences of messages from random actors against the real datanet, model-registry,
//! payout and cw20 contracts: payments in native coins and cw20, honest and conflicting
//! commits, attestor changes and deprecations in the registry, finalizations, refunds, claims,
//! pool claims, configuration updates, funds attached by mistake and the clock running past
//! windows and expiries. After every step:
//!
//! - per asset, the payout contract holds exactly the escrow of its open requests, plus every
//!   claimable balance, plus what its pools still hold for contributors;
//! - every payer has spent exactly the price of each of its requests not refunded;
//! - every other account has received (paid out or still claimable) exactly what the finalized
//!   settlements and its pool claims credit it, and no contribution was credited more from a
//!   pool than its equal part;
//! - every finalized request's settlement adds up to its price, every refunded one had no commit.
//!
//! No message may panic; errors are fine.

mod common;

use std::collections::BTreeMap;
use std::time::Instant;

use common::*;
use cosmwasm_std::{coins, Addr, Uint128};
use cw_multi_test::Executor;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tributary_payout::error::ContractError;
use tributary_types::datanet;
use tributary_types::payout::{
    self, CommitInfo, InferenceRequest, PoolsResponse, RequestStatus, RequestsResponse,
};
use tributary_types::registry;
use tributary_types::{AssetInfo, Price};

const NATIVE_PRICE: u128 = 10_007;
const TOKEN_PRICE: u128 = 3_001;
const CONTRIBUTIONS: usize = 6;

/// One step of a scenario; indexes pick actors, models and requests modulo their counts.
#[derive(Debug, Clone)]
enum Step {
    PayNative {
        payer: u8,
        model: u8,
        excess: u16,
    },
    PayCw20 {
        payer: u8,
        excess: u16,
    },
    /// An honest commit is the packet every honest attestor computes for the request.
    Commit {
        attestor: u8,
        request: u8,
        honest: bool,
        entries: u8,
        output: u8,
    },
    SetAttestors {
        model: u8,
        set: u8,
        quorum: u8,
    },
    Deprecate {
        model: u8,
    },
    Finalize {
        first: u8,
        count: u8,
    },
    Refund {
        request: u8,
    },
    Claim {
        actor: u8,
    },
    ClaimPool {
        cw20: bool,
        picked: u8,
    },
    UpdateConfig {
        by_admin: bool,
        window: u8,
        expiry: u8,
    },
    WithFunds {
        payer: u8,
        message: u8,
    },
    Advance {
        seconds: u8,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (any::<u8>(), any::<u8>(), 0u16..50).prop_map(|(payer, model, excess)| {
            Step::PayNative { payer, model, excess }
        }),
        2 => (any::<u8>(), 0u16..50).prop_map(|(payer, excess)| Step::PayCw20 { payer, excess }),
        12 => (any::<u8>(), any::<u8>(), proptest::bool::weighted(0.8), any::<u8>(), 0u8..3)
            .prop_map(|(attestor, request, honest, entries, output)| {
                Step::Commit { attestor, request, honest, entries, output }
            }),
        1 => (any::<u8>(), 1u8..16, 0u8..5).prop_map(|(model, set, quorum)| {
            Step::SetAttestors { model, set, quorum }
        }),
        1 => Just(Step::Deprecate { model: 1 }),
        5 => (any::<u8>(), prop_oneof![4 => Just(1u8), 1 => 2u8..4])
            .prop_map(|(first, count)| Step::Finalize { first, count }),
        2 => any::<u8>().prop_map(|request| Step::Refund { request }),
        4 => any::<u8>().prop_map(|actor| Step::Claim { actor }),
        2 => (any::<bool>(), any::<u8>()).prop_map(|(cw20, picked)| Step::ClaimPool { cw20, picked }),
        1 => (any::<bool>(), 0u8..4, 0u8..4).prop_map(|(by_admin, window, expiry)| {
            Step::UpdateConfig { by_admin, window, expiry }
        }),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(payer, message)| Step::WithFunds { payer, message }),
        4 => prop_oneof![6 => 0u8..2, 3 => Just(2u8), 1 => Just(3u8)]
            .prop_map(|seconds| Step::Advance { seconds }),
    ]
}

/// The world of one scenario: two native models and one cw20 model, and the actors.
struct Scenario {
    w: World,
    native_models: Vec<u64>,
    token_model: u64,
    /// Everyone a settlement can credit, and the payers.
    accounts: Vec<Addr>,
    requests: u64,
}

impl Scenario {
    fn new() -> Self {
        let mut w = World::with(Setup {
            contributions: CONTRIBUTIONS,
            ..Setup::default()
        });
        let native_models = vec![
            w.native_model(NATIVE_PRICE, 3, 2),
            w.native_model(NATIVE_PRICE + 1, 1, 1),
        ];
        let token_model = w.register_model(ModelSpec {
            price: Price {
                asset: AssetInfo::cw20(w.token.as_str()),
                amount: Uint128::new(TOKEN_PRICE),
            },
            split: tributary_types::FeeSplit {
                contributors_bps: 6_001,
                developer_bps: 1_999,
                operator_bps: 1_500,
                protocol_bps: 500,
            },
            attestors: w.attestors[..2].to_vec(),
            quorum: 2,
        });
        let mut accounts = vec![w.treasury.clone(), w.developer.clone()];
        accounts.extend(w.attestors.iter().cloned());
        accounts.extend(w.contributors.iter().cloned());
        accounts.extend(w.payers.iter().cloned());
        accounts.push(w.app.api().addr_make("anyone"));
        Scenario {
            w,
            native_models,
            token_model,
            accounts,
            requests: 0,
        }
    }

    fn pick<T: Clone>(items: &[T], index: u8) -> T {
        items[index as usize % items.len()].clone()
    }

    fn models(&self) -> Vec<u64> {
        let mut models = self.native_models.clone();
        models.push(self.token_model);
        models
    }

    /// Runs one step and says whether its message went through; the result is only inspected
    /// where a step must fail in a known way.
    fn run(&mut self, step: &Step) -> Result<bool, TestCaseError> {
        let requests = self.requests;
        // One past the last request now and then, to hit unknown ids.
        let request_id = |index: u8| index as u64 % (requests + 1) + 1;
        let models = self.models();
        let native_models = self.native_models.clone();
        let accounts = self.accounts.clone();
        let token_model = self.token_model;
        let mut opened = false;
        let w = &mut self.w;
        let ok = match *step {
            Step::PayNative {
                payer,
                model,
                excess,
            } => {
                let payer = Self::pick(&w.payers, payer);
                let model = Self::pick(&native_models, model);
                let amount = NATIVE_PRICE + 1 + excess as u128;
                opened = w.request(&payer, model, 1, &coins(amount, DENOM)).is_ok();
                opened
            }
            Step::PayCw20 { payer, excess } => {
                let payer = Self::pick(&w.payers, payer);
                let token = w.token.clone();
                let amount = TOKEN_PRICE + excess as u128;
                opened = w
                    .request_cw20(&payer, &token, token_model, 1, amount)
                    .is_ok();
                opened
            }
            Step::Commit {
                attestor,
                request,
                honest,
                entries,
                output,
            } => {
                let attestor = Self::pick(&w.attestors, attestor);
                let id = request_id(request);
                let (model, version) = match query_request(w, id) {
                    Some(r) => (r.model_id, r.model_version),
                    None => (1, 1),
                };
                let (entries, output) = if honest {
                    (id as u8 * 2, 0)
                } else {
                    (entries, output)
                };
                let a = &w.accepted;
                let chosen: Vec<(u64, u16)> = match entries % 10 {
                    0 | 1 => vec![],
                    2 | 3 => vec![(a[0], 10_000)],
                    4 | 5 => vec![(a[1], 6_000), (a[2], 4_000)],
                    6 | 7 => vec![(a[3], 3_333), (a[4], 3_333), (a[5], 3_334)],
                    // Invalid: light weights, a contribution outside the lineage.
                    8 => vec![(a[0], 5_000)],
                    _ => vec![(w.late, 10_000)],
                };
                let mut packet = w.packet(id, model, version, &chosen);
                packet.output_hash = h(&format!("output-{id}-{output}"));
                w.commit(&attestor, vec![packet]).is_ok()
            }
            Step::SetAttestors { model, set, quorum } => {
                let model = Self::pick(&models, model);
                let chosen: Vec<Addr> = (0..4)
                    .filter(|i| set & (1 << i) != 0)
                    .map(|i| w.attestors[i].clone())
                    .collect();
                w.app
                    .execute_contract(
                        w.developer.clone(),
                        w.registry.clone(),
                        &registry::ExecuteMsg::SetAttestors {
                            model_id: model,
                            version: 1,
                            attestors: chosen.iter().map(Addr::to_string).collect(),
                            quorum: quorum as u32,
                        },
                        &[],
                    )
                    .is_ok()
            }
            Step::Deprecate { model } => {
                let model = Self::pick(&models, model);
                w.app
                    .execute_contract(
                        w.developer.clone(),
                        w.registry.clone(),
                        &registry::ExecuteMsg::DeprecateVersion {
                            model_id: model,
                            version: 1,
                        },
                        &[],
                    )
                    .is_ok()
            }
            Step::Finalize { first, count } => {
                // Mostly requests that were attested, which may or may not be ready yet.
                let attested: Vec<u64> = all_requests(w)
                    .iter()
                    .filter(|r| r.distinct_packets > 0 && r.status != RequestStatus::Finalized)
                    .map(|r| r.id)
                    .collect();
                let ids = if attested.is_empty() || first % 5 == 0 {
                    let first = request_id(first);
                    (first..first + count as u64).collect()
                } else {
                    let start = first as usize % attested.len();
                    attested
                        .iter()
                        .copied()
                        .skip(start)
                        .take(count as usize)
                        .collect()
                };
                w.finalize(ids).is_ok()
            }
            Step::Refund { request } => w.refund(request_id(request)).is_ok(),
            Step::Claim { actor } => {
                let actor = Self::pick(&accounts, actor);
                w.claim(&actor).is_ok()
            }
            Step::ClaimPool { cw20, picked } => {
                let asset = if cw20 {
                    AssetInfo::cw20(w.token.as_str())
                } else {
                    AssetInfo::native(DENOM)
                };
                let ids: Vec<u64> = (0..CONTRIBUTIONS)
                    .filter(|i| picked & (1 << i) != 0)
                    .map(|i| w.accepted[i])
                    .collect();
                let msg = payout::ExecuteMsg::ClaimPool {
                    datanet_id: w.root.datanet_id,
                    version: w.root.version,
                    asset,
                    contribution_ids: ids,
                };
                let sender = Self::pick(&w.payers, picked);
                w.execute_payout(&sender, &msg).is_ok()
            }
            Step::UpdateConfig {
                by_admin,
                window,
                expiry,
            } => {
                let windows = [0, 60, WINDOW, 31 * 86_400];
                let expiries = [30, EXPIRY, 366 * 86_400, u64::MAX / 2];
                let sender = if by_admin {
                    w.admin.clone()
                } else {
                    w.payers[0].clone()
                };
                let msg = payout::ExecuteMsg::UpdateConfig {
                    admin: None,
                    treasury: None,
                    challenge_window_seconds: Some(windows[window as usize % 4]),
                    request_expiry_seconds: Some(expiries[expiry as usize % 4]),
                    accepted_cw20: None,
                    max_entries: None,
                };
                w.execute_payout(&sender, &msg).is_ok()
            }
            Step::WithFunds { payer, message } => {
                let payer = Self::pick(&w.payers, payer);
                let msg = match message % 4 {
                    0 => payout::ExecuteMsg::Claim {},
                    1 => payout::ExecuteMsg::Finalize {
                        request_ids: vec![request_id(message)],
                    },
                    2 => payout::ExecuteMsg::Refund {
                        request_id: request_id(message),
                    },
                    _ => payout::ExecuteMsg::CommitAttribution { packets: vec![] },
                };
                let err = w
                    .app
                    .execute_contract(payer, w.payout.clone(), &msg, &coins(3, DENOM))
                    .expect_err("funds attached to a message that takes none");
                let refused = matches!(contract_err(err), ContractError::FundsNotAccepted(_));
                prop_assert!(refused, "{msg:?}");
                false
            }
            Step::Advance { seconds } => {
                w.advance([7, 600, WINDOW, EXPIRY][seconds as usize % 4]);
                true
            }
        };
        if opened {
            self.requests += 1;
        }
        Ok(ok)
    }

    /// Every invariant of the module docs.
    fn check(&self) -> Result<(), TestCaseError> {
        let w = &self.w;
        let requests = all_requests(w);
        let native = AssetInfo::native(DENOM);
        let token = AssetInfo::cw20(w.token.as_str());
        let assets = [native.clone(), token.clone()];

        // What the contract owes, per asset: open escrow, balances, pools.
        let mut owed: BTreeMap<AssetInfo, u128> = BTreeMap::new();
        for r in &requests {
            if !matches!(r.status, RequestStatus::Finalized | RequestStatus::Refunded) {
                *owed.entry(r.price.asset.clone()).or_default() += r.price.amount.u128();
            }
        }
        let mut claimable: BTreeMap<(Addr, AssetInfo), u128> = BTreeMap::new();
        for account in &self.accounts {
            for (asset, amount) in w.claimable(account) {
                *owed.entry(asset.clone()).or_default() += amount;
                claimable.insert((account.clone(), asset), amount);
            }
        }
        let pools = pools(w);
        for pool in &pools {
            *owed.entry(pool.asset.clone()).or_default() += (pool.total - pool.distributed).u128();
        }
        let held = [
            w.native_balance(&w.payout),
            w.token_balance(&w.token, &w.payout),
        ];
        for (asset, held) in assets.iter().zip(held) {
            prop_assert_eq!(held, owed.get(asset).copied().unwrap_or(0), "{}", asset);
        }

        // Payers spent exactly the price of each request not refunded.
        for payer in &w.payers {
            let spent = |asset: &AssetInfo| -> u128 {
                requests
                    .iter()
                    .filter(|r| r.payer == *payer && r.price.asset == *asset)
                    .filter(|r| r.status != RequestStatus::Refunded)
                    .map(|r| r.price.amount.u128())
                    .sum()
            };
            prop_assert_eq!(START_NATIVE - w.native_balance(payer), spent(&native));
            prop_assert_eq!(
                START_TOKENS - w.token_balance(&w.token, payer),
                spent(&token)
            );
        }

        // Everyone else received exactly what settlements and pool claims credit them.
        let mut entitled: BTreeMap<(Addr, AssetInfo), u128> = BTreeMap::new();
        let mut add = |who: &Addr, asset: &AssetInfo, amount: Uint128| {
            *entitled.entry((who.clone(), asset.clone())).or_default() += amount.u128();
        };
        for r in &requests {
            match r.status {
                RequestStatus::Refunded => prop_assert_eq!(r.distinct_packets, 0),
                RequestStatus::Finalized => {
                    let s = r
                        .settlement
                        .clone()
                        .expect("a finalized request has a settlement");
                    prop_assert_eq!(s.total(), Some(r.price.amount));
                    let asset = &r.price.asset;
                    add(&w.treasury, asset, s.protocol);
                    add(&w.developer, asset, s.developer);
                    let commits: Vec<CommitInfo> = w
                        .app
                        .wrap()
                        .query_wasm_smart(
                            &w.payout,
                            &payout::QueryMsg::Commits { request_id: r.id },
                        )
                        .unwrap();
                    let operators: Vec<Addr> = commits
                        .into_iter()
                        .filter(|c| r.agreed_packet.as_ref().is_none_or(|a| *a == c.packet_hash))
                        .map(|c| c.attestor)
                        .collect();
                    prop_assert_eq!(operators.len(), s.operators.len());
                    for (operator, share) in operators.iter().zip(&s.operators) {
                        add(operator, asset, *share);
                    }
                    for (contribution_id, amount) in &s.contributions {
                        add(&contributor_of(w, *contribution_id), asset, *amount);
                    }
                }
                _ => {}
            }
        }
        for pool in &pools {
            let mut credited_total = 0u128;
            for (leaf, &contribution_id) in w.accepted.iter().enumerate() {
                let count = pool.contributions as u128;
                let total = pool.total.u128();
                let equal_part = total / count + u128::from((leaf as u128) < total % count);
                let owed: Uint128 = w
                    .app
                    .wrap()
                    .query_wasm_smart(
                        &w.payout,
                        &payout::QueryMsg::PoolOwed {
                            datanet_id: pool.datanet_id,
                            version: pool.version,
                            asset: pool.asset.clone(),
                            contribution_id,
                        },
                    )
                    .unwrap();
                prop_assert!(owed.u128() <= equal_part);
                let credited = equal_part - owed.u128();
                credited_total += credited;
                add(
                    &contributor_of(w, contribution_id),
                    &pool.asset,
                    Uint128::new(credited),
                );
            }
            // Had any contribution been credited more than its part, this would not add up.
            prop_assert_eq!(credited_total, pool.distributed.u128());
        }
        for account in &self.accounts {
            if w.payers.contains(account) {
                continue;
            }
            let received = [
                w.native_balance(account),
                w.token_balance(&w.token, account),
            ];
            for (asset, paid) in assets.iter().zip(received) {
                let key = (account.clone(), asset.clone());
                let got = paid + claimable.get(&key).copied().unwrap_or(0);
                let due = entitled.get(&key).copied().unwrap_or(0);
                prop_assert_eq!(got, due, "{} in {}", account, asset);
            }
        }
        Ok(())
    }
}

fn query_request(w: &World, request_id: u64) -> Option<InferenceRequest> {
    w.app
        .wrap()
        .query_wasm_smart(&w.payout, &payout::QueryMsg::Request { request_id })
        .ok()
}

fn all_requests(w: &World) -> Vec<InferenceRequest> {
    let mut all = Vec::new();
    loop {
        let page: RequestsResponse = w
            .app
            .wrap()
            .query_wasm_smart(
                &w.payout,
                &payout::QueryMsg::Requests {
                    status: None,
                    payer: None,
                    start_after: all.last().map(|r: &InferenceRequest| r.id),
                    limit: Some(100),
                },
            )
            .unwrap();
        if page.requests.is_empty() {
            return all;
        }
        all.extend(page.requests);
    }
}

fn pools(w: &World) -> Vec<payout::Pool> {
    let res: PoolsResponse = w
        .app
        .wrap()
        .query_wasm_smart(
            &w.payout,
            &payout::QueryMsg::Pools {
                datanet_id: w.root.datanet_id,
                version: w.root.version,
                start_after: None,
                limit: None,
            },
        )
        .unwrap();
    res.pools
}

fn contributor_of(w: &World, contribution_id: u64) -> Addr {
    let c: datanet::Contribution = w
        .app
        .wrap()
        .query_wasm_smart(
            &w.datanet,
            &datanet::QueryMsg::Contribution { contribution_id },
        )
        .unwrap();
    c.contributor
}

#[test]
fn random_message_sequences_keep_every_account_whole() {
    let cases = 40;
    let mut runner = TestRunner::new(Config {
        cases,
        // Shrinking replays whole scenarios; a failing sequence is printed as it is.
        max_shrink_iters: 64,
        ..Config::default()
    });
    // Steps run and, per kind of step, how many went through.
    let steps = std::cell::Cell::new(0usize);
    let passed = std::cell::RefCell::new(BTreeMap::<String, usize>::new());
    let started = Instant::now();
    let result = runner.run(&proptest::collection::vec(step(), 60..120), |sequence| {
        let mut scenario = Scenario::new();
        scenario.check()?;
        for step in &sequence {
            let ok = scenario.run(step)?;
            scenario.check()?;
            steps.set(steps.get() + 1);
            if ok {
                let kind = format!("{step:?}");
                let kind = kind
                    .split([' ', '{'])
                    .next()
                    .unwrap_or_default()
                    .to_string();
                *passed.borrow_mut().entry(kind).or_default() += 1;
            }
        }
        Ok(())
    });
    eprintln!(
        "invariants: {} steps in {cases} scenarios, {:.1?}; went through: {:?}",
        steps.get(),
        started.elapsed(),
        passed.borrow()
    );
    if let Err(err) = result {
        panic!("{err}");
    }
}
