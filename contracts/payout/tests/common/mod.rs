//! The multi-test world shared by the suites: the real datanet, model-registry, payout and
//! cw20-base contracts, a curated datanet with one frozen version, and helpers that drive them.
// Each suite uses its own subset of the helpers.
#![allow(dead_code)]

pub mod keys;

use cosmwasm_std::{coins, to_json_binary, Addr, BlockInfo, Coin, Empty, HexBinary, Uint128};
use cw20::{BalanceResponse, Cw20Coin, Cw20ExecuteMsg};
use cw_multi_test::error::AnyResult;
use cw_multi_test::{App, AppResponse, BankSudo, Contract, ContractWrapper, Executor, SudoMsg};
use tributary_payout::error::ContractError;
use tributary_types::datanet::{self, CurationPolicy, ReviewDecision};
use tributary_types::payout::{self, InferenceRequest, ReceiveMsg};
use tributary_types::registry::{self, AttributionMethod, ModelVersionInput};
use tributary_types::{
    sha256, AssetInfo, AttributionEntry, AttributionPacket, DatanetRoot, FeeSplit, Price,
};

/// The chain's native denom.
pub const DENOM: &str = "utrib";
/// Native coins every payer starts with.
pub const START_NATIVE: u128 = 10_000_000_000;
/// cw20 tokens every payer starts with.
pub const START_TOKENS: u128 = 1_000_000_000;
/// The attribution method every model in these suites registers.
pub const METHOD: &str = "trak-logra-v1";
/// Challenge window of the default world.
pub const WINDOW: u64 = 3_600;
/// Request expiry of the default world.
pub const EXPIRY: u64 = 86_400;

/// SHA-256 of a label, as the 32-byte hashes the messages carry.
pub fn h(label: &str) -> HexBinary {
    HexBinary::from(sha256(label.as_bytes()).as_slice())
}

/// The hex SHA-256 of a label, as a contribution's content hash.
pub fn content_hash(label: &str) -> String {
    h(label).to_hex()
}

pub fn payout_contract() -> Box<dyn Contract<Empty>> {
    Box::new(
        ContractWrapper::new(
            tributary_payout::contract::execute,
            tributary_payout::contract::instantiate,
            tributary_payout::contract::query,
        )
        .with_reply(tributary_payout::contract::reply)
        .with_migrate(tributary_payout::contract::migrate),
    )
}

pub fn datanet_contract() -> Box<dyn Contract<Empty>> {
    Box::new(
        ContractWrapper::new(
            tributary_datanet::contract::execute,
            tributary_datanet::contract::instantiate,
            tributary_datanet::contract::query,
        )
        .with_migrate(tributary_datanet::contract::migrate),
    )
}

pub fn registry_contract() -> Box<dyn Contract<Empty>> {
    Box::new(ContractWrapper::new(
        tributary_model_registry::contract::execute,
        tributary_model_registry::contract::instantiate,
        tributary_model_registry::contract::query,
    ))
}

pub fn cw20_contract() -> Box<dyn Contract<Empty>> {
    Box::new(ContractWrapper::new(
        cw20_base::contract::execute,
        cw20_base::contract::instantiate,
        cw20_base::contract::query,
    ))
}

/// The attribute `key` of the first event that carries it.
pub fn attr(response: &AppResponse, key: &str) -> Option<String> {
    response
        .events
        .iter()
        .flat_map(|e| e.attributes.iter())
        .find(|a| a.key == key)
        .map(|a| a.value.clone())
}

/// The contract error behind a failed execution.
pub fn contract_err(err: cw_multi_test::error::AnyError) -> ContractError {
    match err.downcast::<ContractError>() {
        Ok(err) => err,
        Err(other) => panic!("not a payout contract error: {other:?}"),
    }
}

/// The split most suites use: 70% contributors, 15% developer, 10% operators, 5% protocol.
pub fn default_split() -> FeeSplit {
    FeeSplit {
        contributors_bps: 7000,
        developer_bps: 1500,
        operator_bps: 1000,
        protocol_bps: 500,
    }
}

/// Knobs of a [`World`].
pub struct Setup {
    /// Accepted contributions frozen into version 1, by contributors in turn.
    pub contributions: usize,
    pub max_entries: u32,
    pub window: u64,
    pub expiry: u64,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            contributions: 4,
            max_entries: 16,
            window: WINDOW,
            expiry: EXPIRY,
        }
    }
}

/// A model to register.
pub struct ModelSpec {
    pub price: Price,
    pub split: FeeSplit,
    pub attestors: Vec<Addr>,
    pub quorum: u32,
}

/// Every contract deployed and a curated datanet with one frozen version:
/// `accepted` are in version 1; `rejected`, `pending` and `late` (accepted after the snapshot)
/// are in the datanet but not in the version; `foreign` is accepted in another datanet.
pub struct World {
    pub app: App,
    pub admin: Addr,
    pub owner: Addr,
    pub developer: Addr,
    pub treasury: Addr,
    /// Four attestor addresses; models choose among them.
    pub attestors: Vec<Addr>,
    pub payers: Vec<Addr>,
    pub contributors: Vec<Addr>,
    pub datanet: Addr,
    pub registry: Addr,
    pub payout: Addr,
    /// An accepted cw20.
    pub token: Addr,
    /// A cw20 the payout contract does not accept.
    pub other_token: Addr,
    pub datanet_id: u64,
    pub root: DatanetRoot,
    pub accepted: Vec<u64>,
    pub rejected: u64,
    pub pending: u64,
    pub late: u64,
    pub foreign: u64,
    pub foreign_root: DatanetRoot,
}

impl World {
    pub fn new() -> Self {
        Self::with(Setup::default())
    }

    pub fn with(setup: Setup) -> Self {
        let mut app = App::default();
        let api = app.api();
        let admin = api.addr_make("admin");
        let owner = api.addr_make("datanet-owner");
        let developer = api.addr_make("developer");
        let treasury = api.addr_make("treasury");
        let attestors: Vec<Addr> = (0..4)
            .map(|i| api.addr_make(&format!("attestor-{i}")))
            .collect();
        let payers: Vec<Addr> = (0..3)
            .map(|i| api.addr_make(&format!("payer-{i}")))
            .collect();
        let contributors: Vec<Addr> = (0..3)
            .map(|i| api.addr_make(&format!("contributor-{i}")))
            .collect();

        for payer in &payers {
            app.sudo(SudoMsg::Bank(BankSudo::Mint {
                to_address: payer.to_string(),
                amount: vec![
                    Coin::new(START_NATIVE, DENOM),
                    Coin::new(START_NATIVE, "uatom"),
                ],
            }))
            .unwrap();
        }

        let datanet_code = app.store_code(datanet_contract());
        let registry_code = app.store_code(registry_contract());
        let payout_code = app.store_code(payout_contract());
        let cw20_code = app.store_code(cw20_contract());

        let datanet = app
            .instantiate_contract(
                datanet_code,
                admin.clone(),
                &datanet::InstantiateMsg {
                    admin: None,
                    usage_recorder: None,
                },
                &[],
                "datanet",
                Some(admin.to_string()),
            )
            .unwrap();
        let registry = app
            .instantiate_contract(
                registry_code,
                admin.clone(),
                &registry::InstantiateMsg {
                    admin: None,
                    datanet_contract: datanet.to_string(),
                    min_contributors_bps: 0,
                    min_protocol_bps: 0,
                },
                &[],
                "registry",
                Some(admin.to_string()),
            )
            .unwrap();
        let token_msg = |symbol: &str| cw20_base::msg::InstantiateMsg {
            name: format!("{symbol} token"),
            symbol: symbol.to_string(),
            decimals: 6,
            initial_balances: payers
                .iter()
                .map(|p| Cw20Coin {
                    address: p.to_string(),
                    amount: Uint128::new(START_TOKENS),
                })
                .collect(),
            mint: None,
            marketing: None,
        };
        let token = app
            .instantiate_contract(
                cw20_code,
                admin.clone(),
                &token_msg("TRIBX"),
                &[],
                "token",
                None,
            )
            .unwrap();
        let other_token = app
            .instantiate_contract(
                cw20_code,
                admin.clone(),
                &token_msg("OTHER"),
                &[],
                "other",
                None,
            )
            .unwrap();
        let payout = app
            .instantiate_contract(
                payout_code,
                admin.clone(),
                &payout::InstantiateMsg {
                    admin: None,
                    datanet_contract: datanet.to_string(),
                    registry_contract: registry.to_string(),
                    treasury: treasury.to_string(),
                    challenge_window_seconds: setup.window,
                    request_expiry_seconds: setup.expiry,
                    accepted_cw20: vec![token.to_string()],
                    max_entries: setup.max_entries,
                    verification: None,
                },
                &[],
                "payout",
                Some(admin.to_string()),
            )
            .unwrap();
        app.execute_contract(
            admin.clone(),
            datanet.clone(),
            &datanet::ExecuteMsg::UpdateConfig {
                admin: None,
                usage_recorder: Some(payout.to_string()),
            },
            &[],
        )
        .unwrap();

        let mut world = World {
            app,
            admin,
            owner,
            developer,
            treasury,
            attestors,
            payers,
            contributors,
            datanet,
            registry,
            payout,
            token,
            other_token,
            datanet_id: 0,
            root: DatanetRoot {
                datanet_id: 0,
                version: 0,
                root: HexBinary::default(),
            },
            accepted: vec![],
            rejected: 0,
            pending: 0,
            late: 0,
            foreign: 0,
            foreign_root: DatanetRoot {
                datanet_id: 0,
                version: 0,
                root: HexBinary::default(),
            },
        };

        world.datanet_id = world.create_datanet("corpus");
        for i in 0..setup.contributions {
            let contributor = world.contributors[i % world.contributors.len()].clone();
            let id = world.contribute(world.datanet_id, &contributor, &format!("doc-{i}"));
            world.review(id, ReviewDecision::Accept);
            world.accepted.push(id);
        }
        let contributor = world.contributors[0].clone();
        world.rejected = world.contribute(world.datanet_id, &contributor, "rejected");
        world.review(world.rejected, ReviewDecision::Reject);
        world.pending = world.contribute(world.datanet_id, &contributor, "pending");
        world.root = world.snapshot(world.datanet_id);
        world.late = world.contribute(world.datanet_id, &contributor, "late");
        world.review(world.late, ReviewDecision::Accept);

        let other = world.create_datanet("elsewhere");
        world.foreign = world.contribute(other, &contributor, "foreign");
        world.review(world.foreign, ReviewDecision::Accept);
        world.foreign_root = world.snapshot(other);
        world
    }

    /// Creates a curator-reviewed datanet owned (and curated) by `owner`.
    pub fn create_datanet(&mut self, name: &str) -> u64 {
        let res = self
            .app
            .execute_contract(
                self.owner.clone(),
                self.datanet.clone(),
                &datanet::ExecuteMsg::CreateDatanet {
                    name: name.to_string(),
                    description: "Rust snippets".to_string(),
                    domain_tags: vec!["code".to_string()],
                    license: "CC-BY-4.0".to_string(),
                    policy: CurationPolicy::CuratorReview,
                    curators: vec![],
                    max_contribution_bytes: 1_000_000,
                },
                &[],
            )
            .unwrap();
        attr(&res, "datanet_id").unwrap().parse().unwrap()
    }

    /// Commits to the content `label`, then reveals it in the next block; returns its id.
    pub fn contribute(&mut self, datanet_id: u64, contributor: &Addr, label: &str) -> u64 {
        let hash = content_hash(label);
        let commitment =
            datanet::contribution_commitment(contributor.as_str(), &sha256(label.as_bytes()));
        let res = self
            .app
            .execute_contract(
                contributor.clone(),
                self.datanet.clone(),
                &datanet::ExecuteMsg::Contribute {
                    datanet_id,
                    commitment: HexBinary::from(commitment.as_slice()),
                    size_bytes: 100,
                    media_type: "text/plain".to_string(),
                    metadata: None,
                },
                &[],
            )
            .unwrap();
        let id = attr(&res, "contribution_id").unwrap().parse().unwrap();
        self.app.update_block(|block: &mut BlockInfo| {
            block.height += 1;
            block.time = block.time.plus_seconds(5);
        });
        self.app
            .execute_contract(
                contributor.clone(),
                self.datanet.clone(),
                &datanet::ExecuteMsg::RevealContribution {
                    contribution_id: id,
                    content_hash: hash.clone(),
                    uri: format!("tributary://blobs/{hash}"),
                },
                &[],
            )
            .unwrap();
        id
    }

    pub fn review(&mut self, contribution_id: u64, decision: ReviewDecision) {
        let reason = match decision {
            ReviewDecision::Accept => None,
            ReviewDecision::Reject => Some("off topic".to_string()),
        };
        self.app
            .execute_contract(
                self.owner.clone(),
                self.datanet.clone(),
                &datanet::ExecuteMsg::Review {
                    contribution_id,
                    decision,
                    reason,
                },
                &[],
            )
            .unwrap();
    }

    /// Freezes the next version and returns its root as the datanet contract reports it.
    pub fn snapshot(&mut self, datanet_id: u64) -> DatanetRoot {
        self.app
            .execute_contract(
                self.owner.clone(),
                self.datanet.clone(),
                &datanet::ExecuteMsg::Snapshot {
                    datanet_id,
                    note: None,
                },
                &[],
            )
            .unwrap();
        let datanet: datanet::Datanet = self
            .app
            .wrap()
            .query_wasm_smart(&self.datanet, &datanet::QueryMsg::Datanet { datanet_id })
            .unwrap();
        let version: datanet::DatanetVersion = self
            .app
            .wrap()
            .query_wasm_smart(
                &self.datanet,
                &datanet::QueryMsg::Version {
                    datanet_id,
                    version: datanet.latest_version,
                },
            )
            .unwrap();
        DatanetRoot {
            datanet_id,
            version: version.version,
            root: version.root,
        }
    }

    /// A model version trained on `self.root`, with weights and method derived from `label`.
    pub fn version_input(&self, label: &str, spec: &ModelSpec) -> ModelVersionInput {
        ModelVersionInput {
            lineage: vec![self.root.clone()],
            weights_hash: h(&format!("{label}-weights")),
            weights_uri: format!("tributary://weights/{label}"),
            index_hash: h(&format!("{label}-index")),
            method: AttributionMethod {
                id: METHOD.to_string(),
                params_hash: h(&format!("{label}-params")),
                params: Some("proj=256;damping=0.01".to_string()),
            },
            price: spec.price.clone(),
            split: spec.split,
            attestors: spec.attestors.iter().map(Addr::to_string).collect(),
            quorum: spec.quorum,
        }
    }

    /// Registers a model owned by `developer`; its version 1 uses the weights label `model-<id>-v1`.
    pub fn register_model(&mut self, spec: ModelSpec) -> u64 {
        let models: registry::ModelsResponse = self
            .app
            .wrap()
            .query_wasm_smart(
                &self.registry,
                &registry::QueryMsg::Models {
                    start_after: None,
                    limit: Some(100),
                },
            )
            .unwrap();
        let label = format!("model-{}-v1", models.models.len() + 1);
        let res = self
            .app
            .execute_contract(
                self.developer.clone(),
                self.registry.clone(),
                &registry::ExecuteMsg::RegisterModel {
                    name: "tiny-coder".to_string(),
                    description: "a small code model".to_string(),
                    architecture: "llama".to_string(),
                    version: self.version_input(&label, &spec),
                },
                &[],
            )
            .unwrap();
        attr(&res, "model_id").unwrap().parse().unwrap()
    }

    /// Adds version `n + 1` to a model; its weights label is `model-<id>-v<n+1>`.
    pub fn add_version(&mut self, model_id: u64, spec: ModelSpec) -> u32 {
        let model: registry::Model = self
            .app
            .wrap()
            .query_wasm_smart(&self.registry, &registry::QueryMsg::Model { model_id })
            .unwrap();
        let version = model.latest_version + 1;
        let label = format!("model-{model_id}-v{version}");
        self.app
            .execute_contract(
                self.developer.clone(),
                self.registry.clone(),
                &registry::ExecuteMsg::AddVersion {
                    model_id,
                    version: self.version_input(&label, &spec),
                },
                &[],
            )
            .unwrap();
        version
    }

    /// The model owner replaces the attestors and quorum of a version in the registry.
    pub fn set_attestors(&mut self, model_id: u64, version: u32, attestors: &[Addr], quorum: u32) {
        self.app
            .execute_contract(
                self.developer.clone(),
                self.registry.clone(),
                &registry::ExecuteMsg::SetAttestors {
                    model_id,
                    version,
                    attestors: attestors.iter().map(Addr::to_string).collect(),
                    quorum,
                },
                &[],
            )
            .unwrap();
    }

    /// The model owner deprecates a version in the registry.
    pub fn deprecate(&mut self, model_id: u64, version: u32) {
        self.app
            .execute_contract(
                self.developer.clone(),
                self.registry.clone(),
                &registry::ExecuteMsg::DeprecateVersion { model_id, version },
                &[],
            )
            .unwrap();
    }

    /// A model priced at `price` utrib with the default split and the first `n` attestors.
    pub fn native_model(&mut self, price: u128, attestors: usize, quorum: u32) -> u64 {
        let spec = ModelSpec {
            price: Price {
                asset: AssetInfo::native(DENOM),
                amount: Uint128::new(price),
            },
            split: default_split(),
            attestors: self.attestors[..attestors].to_vec(),
            quorum,
        };
        self.register_model(spec)
    }

    /// A model priced in the accepted cw20, with the first two attestors and quorum 2.
    pub fn cw20_model(&mut self, price: u128) -> u64 {
        let spec = ModelSpec {
            price: Price {
                asset: AssetInfo::cw20(self.token.as_str()),
                amount: Uint128::new(price),
            },
            split: default_split(),
            attestors: self.attestors[..2].to_vec(),
            quorum: 2,
        };
        self.register_model(spec)
    }

    /// The packet an honest attestor computes for `request_id` on version `version` of `model_id`.
    pub fn packet(
        &self,
        request_id: u64,
        model_id: u64,
        version: u32,
        entries: &[(u64, u16)],
    ) -> AttributionPacket {
        let label = format!("model-{model_id}-v{version}");
        AttributionPacket {
            request_id,
            model_id,
            model_version: version,
            weights_hash: h(&format!("{label}-weights")),
            datanet_roots: vec![self.root.clone()],
            method: METHOD.to_string(),
            params_hash: h(&format!("{label}-params")),
            output_hash: h(&format!("output-{request_id}")),
            scores_root: h(&format!("scores-{request_id}")),
            entries: entries
                .iter()
                .map(|&(contribution_id, weight_bps)| AttributionEntry {
                    contribution_id,
                    weight_bps,
                })
                .collect(),
        }
    }

    /// Pays for an inference in native coins.
    pub fn request(
        &mut self,
        payer: &Addr,
        model_id: u64,
        version: u32,
        funds: &[Coin],
    ) -> AnyResult<AppResponse> {
        self.app.execute_contract(
            payer.clone(),
            self.payout.clone(),
            &payout::ExecuteMsg::RequestInference {
                model_id,
                version,
                prompt_hash: h("prompt"),
            },
            funds,
        )
    }

    /// Pays `price` utrib exactly and returns the request id.
    pub fn paid_request(&mut self, payer: &Addr, model_id: u64, price: u128) -> u64 {
        let res = self
            .request(payer, model_id, 1, &coins(price, DENOM))
            .unwrap();
        attr(&res, "request_id").unwrap().parse().unwrap()
    }

    /// Pays for an inference with a cw20 `Send` of `amount` of `token`.
    pub fn request_cw20(
        &mut self,
        payer: &Addr,
        token: &Addr,
        model_id: u64,
        version: u32,
        amount: u128,
    ) -> AnyResult<AppResponse> {
        self.app.execute_contract(
            payer.clone(),
            token.clone(),
            &Cw20ExecuteMsg::Send {
                contract: self.payout.to_string(),
                amount: Uint128::new(amount),
                msg: to_json_binary(&ReceiveMsg::RequestInference {
                    model_id,
                    version,
                    prompt_hash: h("prompt"),
                })
                .unwrap(),
            },
            &[],
        )
    }

    pub fn commit(
        &mut self,
        attestor: &Addr,
        packets: Vec<AttributionPacket>,
    ) -> AnyResult<AppResponse> {
        self.app.execute_contract(
            attestor.clone(),
            self.payout.clone(),
            &payout::ExecuteMsg::CommitAttribution { packets },
            &[],
        )
    }

    pub fn finalize(&mut self, request_ids: Vec<u64>) -> AnyResult<AppResponse> {
        let anyone = self.app.api().addr_make("anyone");
        self.app.execute_contract(
            anyone,
            self.payout.clone(),
            &payout::ExecuteMsg::Finalize { request_ids },
            &[],
        )
    }

    pub fn refund(&mut self, request_id: u64) -> AnyResult<AppResponse> {
        let anyone = self.app.api().addr_make("anyone");
        self.app.execute_contract(
            anyone,
            self.payout.clone(),
            &payout::ExecuteMsg::Refund { request_id },
            &[],
        )
    }

    pub fn claim(&mut self, who: &Addr) -> AnyResult<AppResponse> {
        self.app.execute_contract(
            who.clone(),
            self.payout.clone(),
            &payout::ExecuteMsg::Claim {},
            &[],
        )
    }

    pub fn execute_payout(
        &mut self,
        sender: &Addr,
        msg: &payout::ExecuteMsg,
    ) -> AnyResult<AppResponse> {
        self.app
            .execute_contract(sender.clone(), self.payout.clone(), msg, &[])
    }

    pub fn advance(&mut self, seconds: u64) {
        self.app.update_block(|block: &mut BlockInfo| {
            block.time = block.time.plus_seconds(seconds);
            block.height += seconds / 5 + 1;
        });
    }

    pub fn request_state(&self, request_id: u64) -> InferenceRequest {
        self.app
            .wrap()
            .query_wasm_smart(&self.payout, &payout::QueryMsg::Request { request_id })
            .unwrap()
    }

    pub fn native_balance(&self, who: &Addr) -> u128 {
        self.app
            .wrap()
            .query_balance(who, DENOM)
            .unwrap()
            .amount
            .u128()
    }

    pub fn token_balance(&self, token: &Addr, who: &Addr) -> u128 {
        let res: BalanceResponse = self
            .app
            .wrap()
            .query_wasm_smart(
                token,
                &cw20::Cw20QueryMsg::Balance {
                    address: who.to_string(),
                },
            )
            .unwrap();
        res.balance.u128()
    }

    /// What `who` can claim from the payout contract, by asset.
    pub fn claimable(&self, who: &Addr) -> Vec<(AssetInfo, u128)> {
        let res: payout::BalancesResponse = self
            .app
            .wrap()
            .query_wasm_smart(
                &self.payout,
                &payout::QueryMsg::Balances {
                    address: who.to_string(),
                    start_after: None,
                    limit: None,
                },
            )
            .unwrap();
        res.balances
            .into_iter()
            .map(|e| (e.asset, e.amount.u128()))
            .collect()
    }
}
