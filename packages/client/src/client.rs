//! The connection to a node: `/status`, ABCI queries with protobuf, accounts and balances.

use crate::error::query_error;
use crate::{ChainConfig, Error};
use cosmrs::proto::cosmos::auth::v1beta1::{QueryAccountInfoRequest, QueryAccountInfoResponse};
use cosmrs::proto::cosmos::bank::v1beta1::{
    QueryAllBalancesRequest, QueryAllBalancesResponse, QueryBalanceRequest, QueryBalanceResponse,
};
use cosmrs::proto::cosmos::base::query::v1beta1::PageRequest;
use cosmrs::tendermint::abci::Code;
use cosmrs::{AccountId, Coin};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tendermint_rpc::client::CompatMode;
use tendermint_rpc::endpoint::abci_query::AbciQuery;
use tendermint_rpc::{Client as _, HttpClient, HttpClientUrl};

/// How long `connect` waits for `/status`, and every RPC call for its answer.
const RPC_TIMEOUT: Duration = Duration::from_secs(10);
/// How often `wait_for_block_after` asks the node for its height.
const BLOCK_POLL: Duration = Duration::from_millis(250);

/// An account's number and next sequence, as signing needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    pub number: u64,
    pub sequence: u64,
}

/// A block's height and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockInfo {
    pub height: u64,
    /// Nanoseconds since the Unix epoch.
    pub time_nanos: u64,
}

/// The cached account of one signer; its lock also serializes that signer's broadcasts so two
/// tasks never sign with the same sequence.
pub(crate) type AccountSlot = Arc<tokio::sync::Mutex<Option<Account>>>;

/// A connection to one node of one chain.
#[derive(Debug)]
pub struct Client {
    pub(crate) config: ChainConfig,
    pub(crate) rpc: HttpClient,
    accounts: Mutex<HashMap<String, AccountSlot>>,
}

impl Client {
    /// Connects to `config.rpc_url` and checks that the node is on `config.chain_id`.
    pub async fn connect(config: ChainConfig) -> Result<Self, Error> {
        config.validate()?;
        let url: HttpClientUrl = config
            .rpc_url
            .parse()
            .map_err(|e| Error::Config(format!("rpc_url {:?}: {e}", config.rpc_url)))?;
        let rpc = HttpClient::builder(url)
            .compat_mode(CompatMode::V0_38)
            .timeout(RPC_TIMEOUT)
            .build()
            .map_err(|e| Error::Config(format!("rpc_url {:?}: {e}", config.rpc_url)))?;
        let unreachable = |reason: String| Error::NodeUnreachable {
            url: config.rpc_url.clone(),
            reason,
        };
        let status = tokio::time::timeout(RPC_TIMEOUT, rpc.status())
            .await
            .map_err(|_| unreachable(format!("no answer in {}s", RPC_TIMEOUT.as_secs())))?
            .map_err(|e| unreachable(crate::error::rpc_reason(&e)))?;
        let actual = status.node_info.network.to_string();
        if actual != config.chain_id {
            return Err(Error::WrongChainId {
                expected: config.chain_id,
                actual,
            });
        }
        Ok(Self {
            config,
            rpc,
            accounts: Mutex::new(HashMap::new()),
        })
    }

    /// The configuration this client was connected with.
    pub fn config(&self) -> &ChainConfig {
        &self.config
    }

    /// The underlying CometBFT RPC client, for calls this crate does not wrap.
    pub fn rpc(&self) -> &HttpClient {
        &self.rpc
    }

    /// The latest block height the node reports.
    pub async fn latest_height(&self) -> Result<u64, Error> {
        Ok(self
            .rpc
            .status()
            .await?
            .sync_info
            .latest_block_height
            .value())
    }

    /// Waits until the application has committed a block above `height` and returns that
    /// height. A transaction simulated after that runs at a later height than one included at
    /// `height`, as a datanet reveal must. The application's height (ABCI `info`) is asked, not
    /// the node's `/status`: the node lists a block as its latest a moment before the
    /// application has committed it, and queries and simulations see the application's state.
    pub async fn wait_for_block_after(&self, height: u64) -> Result<u64, Error> {
        let deadline = Instant::now() + self.config.confirm_timeout;
        loop {
            let latest = self.rpc.abci_info().await?.last_block_height.value();
            if latest > height {
                return Ok(latest);
            }
            if Instant::now() >= deadline {
                return Err(Error::BlockTimeout { height });
            }
            tokio::time::sleep(BLOCK_POLL).await;
        }
    }

    /// The latest block's height and time (nanoseconds since the Unix epoch), as the node
    /// reports them; contracts compare deadlines with that time, not the local clock.
    pub async fn latest_block(&self) -> Result<BlockInfo, Error> {
        let sync = self.rpc.status().await?.sync_info;
        let nanos = sync.latest_block_time.unix_timestamp_nanos();
        Ok(BlockInfo {
            height: sync.latest_block_height.value(),
            time_nanos: u64::try_from(nanos).unwrap_or_default(),
        })
    }

    /// Parses an address with this chain's prefix.
    pub fn parse_address(&self, address: &str) -> Result<AccountId, Error> {
        let invalid = |reason: String| Error::InvalidAddress {
            address: address.to_string(),
            reason,
        };
        let id: AccountId = address.parse().map_err(|e| invalid(format!("{e}")))?;
        if id.prefix() != self.config.bech32_prefix {
            return Err(invalid(format!(
                "expected prefix {:?}",
                self.config.bech32_prefix
            )));
        }
        Ok(id)
    }

    /// A raw ABCI query; failures are left to the caller to classify.
    pub(crate) async fn abci(&self, path: &str, data: Vec<u8>) -> Result<AbciQuery, Error> {
        Ok(self
            .rpc
            .abci_query(Some(path.to_string()), data, None, false)
            .await?)
    }

    /// A gRPC query over `abci_query`: `path` such as `/cosmos.bank.v1beta1.Query/Balance`.
    pub async fn query_proto<Req, Resp>(&self, path: &str, request: &Req) -> Result<Resp, Error>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        let response = self.abci(path, request.encode_to_vec()).await?;
        if let Code::Err(code) = response.code {
            return Err(query_error(
                path,
                &response.codespace,
                code.get(),
                &response.log,
            ));
        }
        Ok(Resp::decode(response.value.as_slice())?)
    }

    /// The account's number and sequence on chain; `UnknownAccount` when it has none yet.
    pub async fn account(&self, address: &str) -> Result<Account, Error> {
        self.parse_address(address)?;
        let response: QueryAccountInfoResponse = self
            .query_proto(
                "/cosmos.auth.v1beta1.Query/AccountInfo",
                &QueryAccountInfoRequest {
                    address: address.to_string(),
                },
            )
            .await?;
        let info = response.info.ok_or_else(|| Error::UnknownAccount {
            address: address.to_string(),
        })?;
        Ok(Account {
            number: info.account_number,
            sequence: info.sequence,
        })
    }

    /// The balance of one denom (0 when the address holds none).
    pub async fn balance(&self, address: &str, denom: &str) -> Result<u128, Error> {
        self.parse_address(address)?;
        let response: QueryBalanceResponse = self
            .query_proto(
                "/cosmos.bank.v1beta1.Query/Balance",
                &QueryBalanceRequest {
                    address: address.to_string(),
                    denom: denom.to_string(),
                },
            )
            .await?;
        response.balance.map_or(Ok(0), |c| amount(&c.amount))
    }

    /// Every balance of an address, all pages.
    pub async fn balances(&self, address: &str) -> Result<Vec<Coin>, Error> {
        self.parse_address(address)?;
        let mut coins = Vec::new();
        let mut key = Vec::new();
        loop {
            let response: QueryAllBalancesResponse = self
                .query_proto(
                    "/cosmos.bank.v1beta1.Query/AllBalances",
                    &QueryAllBalancesRequest {
                        address: address.to_string(),
                        pagination: Some(PageRequest {
                            key: key.clone(),
                            ..PageRequest::default()
                        }),
                        resolve_denom: false,
                    },
                )
                .await?;
            for c in response.balances {
                coins.push(crate::config::coin(amount(&c.amount)?, &c.denom)?);
            }
            match response.pagination {
                Some(page) if !page.next_key.is_empty() => key = page.next_key,
                _ => return Ok(coins),
            }
        }
    }

    /// The cached account of a signer, if this client has used or synced it.
    pub async fn cached_account(&self, address: &str) -> Option<Account> {
        *self.account_slot(address).lock().await
    }

    /// Drops the cached account of a signer; the next transaction queries it again.
    pub async fn forget_account(&self, address: &str) {
        *self.account_slot(address).lock().await = None;
    }

    pub(crate) fn account_slot(&self, address: &str) -> AccountSlot {
        self.accounts
            .lock()
            .expect("account cache lock is never poisoned")
            .entry(address.to_string())
            .or_default()
            .clone()
    }
}

/// A protobuf decimal-string amount.
pub(crate) fn amount(text: &str) -> Result<u128, Error> {
    text.parse()
        .map_err(|_| Error::Decode(format!("amount {text:?} is not an integer")))
}
