//! A chain with the datanet contract, two datanets with frozen versions, and the registry.

use cosmwasm_std::{coins, Addr, Coin, Empty, HexBinary, Uint128};
use cw_multi_test::error::AnyResult;
use cw_multi_test::{App, AppBuilder, AppResponse, Contract, ContractWrapper, Executor};
use serde::de::DeserializeOwned;
use tributary_model_registry::error::ContractError;
use tributary_types::asset::{AssetInfo, Price};
use tributary_types::datanet::{
    contribution_commitment, CurationPolicy, DatanetVersion, DatanetsResponse,
    ExecuteMsg as DatanetExecuteMsg, InstantiateMsg as DatanetInstantiateMsg,
    QueryMsg as DatanetQueryMsg,
};
use tributary_types::hash::{sha256, to_hex};
use tributary_types::registry::{
    AttributionMethod, ExecuteMsg, InstantiateMsg, ModelVersionInput, QueryMsg,
};
use tributary_types::{DatanetRoot, FeeSplit};

/// The admin's and the owner's starting balance, so tests can attach funds to any message.
pub const START_BALANCE: u128 = 1_000_000;
/// The denom of [`START_BALANCE`].
pub const DENOM: &str = "utrib";

/// Minimum contributors' share the suite's registry starts with.
pub const MIN_CONTRIBUTORS_BPS: u16 = 1000;
/// Minimum protocol share the suite's registry starts with.
pub const MIN_PROTOCOL_BPS: u16 = 100;

fn datanet_contract() -> Box<dyn Contract<Empty>> {
    Box::new(ContractWrapper::new(
        tributary_datanet::contract::execute,
        tributary_datanet::contract::instantiate,
        tributary_datanet::contract::query,
    ))
}

fn registry_contract() -> Box<dyn Contract<Empty>> {
    Box::new(
        ContractWrapper::new(
            tributary_model_registry::contract::execute,
            tributary_model_registry::contract::instantiate,
            tributary_model_registry::contract::query,
        )
        .with_migrate(tributary_model_registry::contract::migrate),
    )
}

/// Test chain, its actors and the frozen datanet versions models can be trained on.
pub struct Suite {
    pub app: App,
    pub datanet: Addr,
    pub registry: Addr,
    pub registry_code: u64,
    pub admin: Addr,
    pub owner: Addr,
    pub curator: Addr,
    pub attestors: Vec<Addr>,
    /// Datanet 1 at version 1 (two contributions).
    pub d1v1: DatanetRoot,
    /// Datanet 1 at version 2 (three contributions).
    pub d1v2: DatanetRoot,
    /// Datanet 2 at version 1 (one contribution).
    pub d2v1: DatanetRoot,
    contributions: u64,
}

impl Suite {
    /// Instantiates both contracts and freezes the three datanet versions.
    pub fn new() -> Self {
        let mut app = AppBuilder::new().build(|router, api, storage| {
            for name in ["admin", "owner"] {
                router
                    .bank
                    .init_balance(storage, &api.addr_make(name), coins(START_BALANCE, DENOM))
                    .unwrap();
            }
        });
        let admin = app.api().addr_make("admin");
        let owner = app.api().addr_make("owner");
        let curator = app.api().addr_make("curator");
        let attestors = vec![
            app.api().addr_make("attestor-a"),
            app.api().addr_make("attestor-b"),
        ];

        let datanet_code = app.store_code(datanet_contract());
        let datanet = app
            .instantiate_contract(
                datanet_code,
                admin.clone(),
                &DatanetInstantiateMsg {
                    admin: None,
                    usage_recorder: None,
                },
                &[],
                "datanet",
                Some(admin.to_string()),
            )
            .unwrap();

        let registry_code = app.store_code(registry_contract());
        let registry = app
            .instantiate_contract(
                registry_code,
                admin.clone(),
                &InstantiateMsg {
                    admin: None,
                    datanet_contract: datanet.to_string(),
                    min_contributors_bps: MIN_CONTRIBUTORS_BPS,
                    min_protocol_bps: MIN_PROTOCOL_BPS,
                },
                &[],
                "model-registry",
                Some(admin.to_string()),
            )
            .unwrap();

        let placeholder = DatanetRoot {
            datanet_id: 0,
            version: 0,
            root: HexBinary::default(),
        };
        let mut suite = Suite {
            app,
            datanet,
            registry,
            registry_code,
            admin,
            owner,
            curator,
            attestors,
            d1v1: placeholder.clone(),
            d1v2: placeholder.clone(),
            d2v1: placeholder,
            contributions: 0,
        };

        let first = suite.create_datanet("code");
        suite.contribute(first, 2);
        suite.d1v1 = suite.snapshot(first);
        suite.contribute(first, 1);
        suite.d1v2 = suite.snapshot(first);
        let second = suite.create_datanet("prose");
        suite.contribute(second, 1);
        suite.d2v1 = suite.snapshot(second);
        suite
    }

    /// Creates an open datanet owned by the curator and returns its id.
    pub fn create_datanet(&mut self, name: &str) -> u64 {
        self.app
            .execute_contract(
                self.curator.clone(),
                self.datanet.clone(),
                &DatanetExecuteMsg::CreateDatanet {
                    name: name.to_string(),
                    description: String::new(),
                    domain_tags: vec![name.to_string()],
                    license: "CC-BY-4.0".to_string(),
                    policy: CurationPolicy::Open,
                    curators: vec![],
                    max_contribution_bytes: 1 << 20,
                },
                &[],
            )
            .unwrap();
        let listed: DatanetsResponse = self
            .app
            .wrap()
            .query_wasm_smart(
                &self.datanet,
                &DatanetQueryMsg::Datanets {
                    domain_tag: None,
                    start_after: None,
                    limit: Some(100),
                },
            )
            .unwrap();
        listed.datanets.last().unwrap().id
    }

    /// Adds `count` distinct contributions (accepted at once, the datanet being open): one
    /// block commits to them all, the next reveals them.
    pub fn contribute(&mut self, datanet_id: u64, count: u64) {
        let contributor = self.app.api().addr_make("contributor");
        let mut committed = Vec::new();
        for _ in 0..count {
            self.contributions += 1;
            let content = format!("contribution {}", self.contributions);
            let content_hash = sha256(content.as_bytes());
            let response = self
                .app
                .execute_contract(
                    contributor.clone(),
                    self.datanet.clone(),
                    &DatanetExecuteMsg::Contribute {
                        datanet_id,
                        commitment: HexBinary::from(
                            contribution_commitment(contributor.as_str(), &content_hash).as_slice(),
                        ),
                        size_bytes: content.len() as u64,
                        media_type: "text/plain".to_string(),
                        metadata: None,
                    },
                    &[],
                )
                .unwrap();
            let id: u64 = attribute(&response, "contribution_id").parse().unwrap();
            committed.push((id, content_hash));
        }
        self.app.update_block(cw_multi_test::next_block);
        for (contribution_id, content_hash) in committed {
            self.app
                .execute_contract(
                    contributor.clone(),
                    self.datanet.clone(),
                    &DatanetExecuteMsg::RevealContribution {
                        contribution_id,
                        content_hash: to_hex(&content_hash),
                        uri: format!("tributary://blobs/{contribution_id}"),
                    },
                    &[],
                )
                .unwrap();
        }
    }

    /// Freezes a new version and returns it as a lineage entry, root as the datanet reports it.
    pub fn snapshot(&mut self, datanet_id: u64) -> DatanetRoot {
        let response = self
            .app
            .execute_contract(
                self.curator.clone(),
                self.datanet.clone(),
                &DatanetExecuteMsg::Snapshot {
                    datanet_id,
                    note: None,
                },
                &[],
            )
            .unwrap();
        let version: u32 = attribute(&response, "version").parse().unwrap();
        let frozen: DatanetVersion = self
            .app
            .wrap()
            .query_wasm_smart(
                &self.datanet,
                &DatanetQueryMsg::Version {
                    datanet_id,
                    version,
                },
            )
            .unwrap();
        DatanetRoot {
            datanet_id,
            version,
            root: frozen.root,
        }
    }

    /// A valid version trained on datanet 1 at version 1.
    pub fn input(&self) -> ModelVersionInput {
        self.input_on(vec![self.d1v1.clone()])
    }

    /// A valid version trained on `lineage`.
    pub fn input_on(&self, lineage: Vec<DatanetRoot>) -> ModelVersionInput {
        ModelVersionInput {
            lineage,
            weights_hash: hash("weights"),
            weights_uri: "tributary://blobs/weights".to_string(),
            index_hash: hash("index"),
            method: AttributionMethod {
                id: "trak-logra-v1".to_string(),
                params_hash: hash("params"),
                params: Some("{\"projection\":4096}".to_string()),
            },
            price: Price {
                asset: AssetInfo::native("utrib"),
                amount: Uint128::new(1_000),
            },
            split: FeeSplit {
                contributors_bps: 7000,
                developer_bps: 1500,
                operator_bps: 1000,
                protocol_bps: 500,
            },
            attestors: self.attestors.iter().map(Addr::to_string).collect(),
            quorum: 1,
        }
    }

    /// Executes a registry message as `sender`.
    pub fn execute(&mut self, sender: &Addr, msg: &ExecuteMsg) -> AnyResult<AppResponse> {
        self.app
            .execute_contract(sender.clone(), self.registry.clone(), msg, &[])
    }

    /// Executes a registry message as `sender` with `funds` attached.
    pub fn execute_with_funds(
        &mut self,
        sender: &Addr,
        msg: &ExecuteMsg,
        funds: &[Coin],
    ) -> AnyResult<AppResponse> {
        self.app
            .execute_contract(sender.clone(), self.registry.clone(), msg, funds)
    }

    /// Executes a message that must fail, returning the contract's error.
    pub fn execute_err(&mut self, sender: &Addr, msg: &ExecuteMsg) -> ContractError {
        self.execute(sender, msg)
            .unwrap_err()
            .downcast::<ContractError>()
            .unwrap()
    }

    /// Registers a model named `name` owned by `owner` and returns its id.
    pub fn register_as(&mut self, owner: &Addr, name: &str, input: ModelVersionInput) -> u64 {
        let response = self.execute(owner, &register(name, input)).unwrap();
        attribute(&response, "model_id").parse().unwrap()
    }

    /// Registers a model owned by the suite's owner and returns its id.
    pub fn register(&mut self, input: ModelVersionInput) -> u64 {
        let owner = self.owner.clone();
        self.register_as(&owner, "coder-small", input)
    }

    /// Registers with the suite's owner, expecting a failure.
    pub fn register_err(&mut self, input: ModelVersionInput) -> ContractError {
        let owner = self.owner.clone();
        self.execute_err(&owner, &register("coder-small", input))
    }

    /// Queries the registry, which must answer.
    pub fn query<T: DeserializeOwned>(&self, msg: &QueryMsg) -> T {
        self.app
            .wrap()
            .query_wasm_smart(&self.registry, msg)
            .unwrap()
    }
}

/// A `RegisterModel` message with fixed descriptive fields.
pub fn register(name: &str, version: ModelVersionInput) -> ExecuteMsg {
    ExecuteMsg::RegisterModel {
        name: name.to_string(),
        description: "a small code model".to_string(),
        architecture: "llama-60m".to_string(),
        version,
    }
}

/// SHA-256 of `label` as a `HexBinary`.
pub fn hash(label: &str) -> HexBinary {
    HexBinary::from(sha256(label.as_bytes()).as_slice())
}

/// The value of the wasm event attribute `key`.
pub fn attribute(response: &AppResponse, key: &str) -> String {
    response
        .events
        .iter()
        .filter(|e| e.ty == "wasm")
        .flat_map(|e| &e.attributes)
        .find(|a| a.key == key)
        .unwrap_or_else(|| panic!("no attribute {key}"))
        .value
        .clone()
}
