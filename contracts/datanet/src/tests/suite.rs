//! A multi-test harness driving the contract through its entry points.

use cosmwasm_std::{
    coins, Addr, Binary, Coin, Deps, DepsMut, Empty, Env, HexBinary, MessageInfo, Response,
    StdError, StdResult,
};
use cw_multi_test::error::AnyResult;
use cw_multi_test::{App, AppBuilder, AppResponse, Contract, ContractWrapper, Executor};
use serde::de::DeserializeOwned;
use tributary_types::datanet::contribution_commitment;
use tributary_types::datanet::{
    Contribution, CurationPolicy, Datanet, DatanetVersion, ExecuteMsg, InstantiateMsg, QueryMsg,
    ReviewDecision,
};
use tributary_types::hash::{sha256, to_hex};

use crate::contract::{execute, instantiate, migrate, query};
use crate::error::ContractError;

/// The datanet contract as multi-test runs it.
pub fn datanet_contract() -> Box<dyn Contract<Empty>> {
    Box::new(ContractWrapper::new(execute, instantiate, query).with_migrate(migrate))
}

/// Every actor's starting balance, so tests can attach funds to any message.
pub const START_BALANCE: u128 = 1_000_000;
/// The denom of [`START_BALANCE`].
pub const DENOM: &str = "utrib";

fn stub_instantiate(_: DepsMut, _: Env, _: MessageInfo, _: Empty) -> StdResult<Response> {
    Ok(Response::new())
}

fn stub_execute(_: DepsMut, _: Env, _: MessageInfo, _: Empty) -> StdResult<Response> {
    Ok(Response::new())
}

fn stub_query(_: Deps, _: Env, _: Empty) -> StdResult<Binary> {
    Err(StdError::generic_err("a stand-in answers no query"))
}

/// A contract that does nothing: it stands in for a payout contract, whose address is what
/// the datanet contract checks and what multi-test lets a test send from.
pub fn stand_in_contract() -> Box<dyn Contract<Empty>> {
    Box::new(ContractWrapper::new(
        stub_execute,
        stub_instantiate,
        stub_query,
    ))
}

/// The hex SHA-256 of `content`, as a contributor submits it.
pub fn hash_of(content: &[u8]) -> String {
    to_hex(&sha256(content))
}

/// The commitment `contributor` makes to `content`.
pub fn commitment_of(contributor: &Addr, content: &[u8]) -> HexBinary {
    HexBinary::from(contribution_commitment(contributor.as_str(), &sha256(content)).as_slice())
}

/// A valid `Contribute`: `contributor`'s commitment to `content` (its size is its length).
pub fn commit_msg(contributor: &Addr, datanet_id: u64, content: &[u8]) -> ExecuteMsg {
    ExecuteMsg::Contribute {
        datanet_id,
        commitment: commitment_of(contributor, content),
        size_bytes: content.len() as u64,
        media_type: "text/plain".to_string(),
        metadata: None,
    }
}

/// The `RevealContribution` of `content` for contribution `contribution_id`.
pub fn reveal_msg(contribution_id: u64, content: &[u8]) -> ExecuteMsg {
    ExecuteMsg::RevealContribution {
        contribution_id,
        content_hash: hash_of(content),
        uri: format!("tributary://blobs/{}", hash_of(content)),
    }
}

/// A valid `CreateDatanet` with the given policy and curators.
pub fn create_msg(policy: CurationPolicy, curators: Vec<String>) -> ExecuteMsg {
    ExecuteMsg::CreateDatanet {
        name: "Rust snippets".to_string(),
        description: "Idiomatic Rust code samples".to_string(),
        domain_tags: vec!["code".to_string(), "rust".to_string()],
        license: "Apache-2.0".to_string(),
        policy,
        curators,
        max_contribution_bytes: 1_000_000,
    }
}

/// The value of a `wasm` event attribute, if the response carries one.
pub fn attr(response: &AppResponse, key: &str) -> Option<String> {
    response
        .events
        .iter()
        .filter(|e| e.ty == "wasm")
        .flat_map(|e| e.attributes.iter())
        .find(|a| a.key == key)
        .map(|a| a.value.clone())
}

/// A running contract with named actors.
pub struct Suite {
    pub app: App,
    pub contract: Addr,
    /// Config admin and cw2 admin of the contract.
    pub admin: Addr,
    /// Owner of the datanets created by [`Suite::create_datanet`].
    pub owner: Addr,
    /// Curator of the datanets created by [`Suite::create_datanet`].
    pub curator: Addr,
    pub alice: Addr,
    pub bob: Addr,
    /// The configured usage recorder.
    pub recorder: Addr,
    pub code_id: u64,
}

impl Suite {
    /// Instantiates the contract with `admin` and `recorder`.
    pub fn new() -> Self {
        let mut app = AppBuilder::new().build(|router, api, storage| {
            for name in ["admin", "owner", "curator", "alice", "bob", "recorder"] {
                router
                    .bank
                    .init_balance(storage, &api.addr_make(name), coins(START_BALANCE, DENOM))
                    .unwrap();
            }
        });
        let admin = app.api().addr_make("admin");
        let owner = app.api().addr_make("owner");
        let curator = app.api().addr_make("curator");
        let alice = app.api().addr_make("alice");
        let bob = app.api().addr_make("bob");
        let recorder = app.api().addr_make("recorder");
        let code_id = app.store_code(datanet_contract());
        let contract = app
            .instantiate_contract(
                code_id,
                admin.clone(),
                &InstantiateMsg {
                    admin: None,
                    usage_recorder: Some(recorder.to_string()),
                },
                &[],
                "datanet",
                Some(admin.to_string()),
            )
            .unwrap();
        Suite {
            app,
            contract,
            admin,
            owner,
            curator,
            alice,
            bob,
            recorder,
            code_id,
        }
    }

    /// Instantiates a fresh [`stand_in_contract`] and returns its address.
    pub fn stand_in(&mut self, label: &str) -> Addr {
        let code_id = self.app.store_code(stand_in_contract());
        self.app
            .instantiate_contract(code_id, self.admin.clone(), &Empty {}, &[], label, None)
            .unwrap()
    }

    /// A valid address for `name`.
    pub fn addr(&self, name: &str) -> Addr {
        self.app.api().addr_make(name)
    }

    /// Executes `msg` as `sender`.
    pub fn execute(&mut self, sender: &Addr, msg: &ExecuteMsg) -> AnyResult<AppResponse> {
        self.app
            .execute_contract(sender.clone(), self.contract.clone(), msg, &[])
    }

    /// Executes `msg` as `sender` with `funds` attached.
    pub fn execute_with_funds(
        &mut self,
        sender: &Addr,
        msg: &ExecuteMsg,
        funds: &[Coin],
    ) -> AnyResult<AppResponse> {
        self.app
            .execute_contract(sender.clone(), self.contract.clone(), msg, funds)
    }

    /// Executes `msg` as `sender`, expecting the contract to refuse it.
    pub fn execute_err(&mut self, sender: &Addr, msg: &ExecuteMsg) -> ContractError {
        self.execute(sender, msg)
            .expect_err("the message should have failed")
            .downcast::<ContractError>()
            .unwrap()
    }

    /// Runs a query.
    pub fn query<T: DeserializeOwned>(&self, msg: &QueryMsg) -> StdResult<T> {
        self.app.wrap().query_wasm_smart(&self.contract, msg)
    }

    /// Runs a query expected to fail with `expected`; the querier only carries its message.
    pub fn assert_query_err(&self, msg: &QueryMsg, expected: ContractError) {
        let err = self
            .query::<cosmwasm_std::Binary>(msg)
            .expect_err("the query should have failed")
            .to_string();
        assert!(
            err.ends_with(&expected.to_string()),
            "got {err:?}, expected {expected}"
        );
    }

    /// `owner` creates a datanet with `curator` as its curator; returns its id.
    pub fn create_datanet(&mut self, policy: CurationPolicy) -> u64 {
        let owner = self.owner.clone();
        let msg = create_msg(policy, vec![self.curator.to_string()]);
        let response = self.execute(&owner, &msg).unwrap();
        attr(&response, "datanet_id").unwrap().parse().unwrap()
    }

    /// Moves the chain to its next block.
    pub fn next_block(&mut self) {
        self.app.update_block(cw_multi_test::next_block);
    }

    /// `sender` commits to `content`; returns the contribution id.
    pub fn commit(&mut self, sender: &Addr, datanet_id: u64, content: &[u8]) -> u64 {
        let response = self
            .execute(sender, &commit_msg(sender, datanet_id, content))
            .unwrap();
        attr(&response, "contribution_id").unwrap().parse().unwrap()
    }

    /// `sender` reveals `content` for its commitment `contribution_id`.
    pub fn reveal(&mut self, sender: &Addr, contribution_id: u64, content: &[u8]) -> AppResponse {
        self.execute(sender, &reveal_msg(contribution_id, content))
            .unwrap()
    }

    /// `sender` contributes `content`: commits, and reveals in the next block; returns the id.
    pub fn contribute(&mut self, sender: &Addr, datanet_id: u64, content: &[u8]) -> u64 {
        let id = self.commit(sender, datanet_id, content);
        self.next_block();
        self.reveal(sender, id, content);
        id
    }

    /// The datanet's curator decides on a pending contribution.
    pub fn review(&mut self, contribution_id: u64, decision: ReviewDecision) {
        let curator = self.curator.clone();
        let reason = match decision {
            ReviewDecision::Accept => None,
            ReviewDecision::Reject => Some("off topic".to_string()),
        };
        self.execute(
            &curator,
            &ExecuteMsg::Review {
                contribution_id,
                decision,
                reason,
            },
        )
        .unwrap();
    }

    /// The owner freezes a new version; returns its number.
    pub fn snapshot(&mut self, datanet_id: u64) -> u32 {
        let owner = self.owner.clone();
        let response = self
            .execute(
                &owner,
                &ExecuteMsg::Snapshot {
                    datanet_id,
                    note: None,
                },
            )
            .unwrap();
        attr(&response, "version").unwrap().parse().unwrap()
    }

    /// One datanet.
    pub fn datanet(&self, datanet_id: u64) -> Datanet {
        self.query(&QueryMsg::Datanet { datanet_id }).unwrap()
    }

    /// One contribution.
    pub fn contribution(&self, contribution_id: u64) -> Contribution {
        self.query(&QueryMsg::Contribution { contribution_id })
            .unwrap()
    }

    /// One version.
    pub fn version(&self, datanet_id: u64, version: u32) -> DatanetVersion {
        self.query(&QueryMsg::Version {
            datanet_id,
            version,
        })
        .unwrap()
    }
}
