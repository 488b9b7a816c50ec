//! CosmWasm: storing code, instantiating, executing and querying contracts; bank sends.

use crate::error::Error;
use crate::tx::{TxOptions, TxOutcome};
use crate::{Client, Signer};
use cosmrs::bank::MsgSend;
use cosmrs::cosmwasm::{ContractInfo, MsgExecuteContract, MsgInstantiateContract, MsgStoreCode};
use cosmrs::proto::cosmwasm::wasm::v1::{
    QueryContractInfoRequest, QueryContractInfoResponse, QuerySmartContractStateRequest,
    QuerySmartContractStateResponse,
};
use cosmrs::tx::Msg as _;
use cosmrs::{Any, Coin};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// One contract call of a transaction: contract, JSON message and funds.
#[derive(Debug, Clone, PartialEq)]
pub struct ContractCall {
    pub contract: String,
    pub msg: Vec<u8>,
    pub funds: Vec<Coin>,
}

impl ContractCall {
    /// Serializes `msg` to JSON.
    pub fn new(
        contract: impl Into<String>,
        msg: &impl Serialize,
        funds: Vec<Coin>,
    ) -> Result<Self, Error> {
        Ok(Self {
            contract: contract.into(),
            msg: json(msg)?,
            funds,
        })
    }
}

/// What a stored code is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeInfo {
    pub code_id: u64,
    pub creator: String,
    /// SHA-256 of the wasm.
    pub checksum: Vec<u8>,
}

/// `cosmwasm.wasm.v1.QueryCodeInfo{Request,Response}` (wasmd 0.52+), which cosmos-sdk-proto
/// 0.27 does not carry yet; the fields are wasmd's `query.proto`.
mod code_info {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Request {
        #[prost(uint64, tag = "1")]
        pub code_id: u64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Response {
        #[prost(uint64, tag = "1")]
        pub code_id: u64,
        #[prost(string, tag = "2")]
        pub creator: String,
        #[prost(bytes = "vec", tag = "3")]
        pub checksum: Vec<u8>,
    }
}

impl Client {
    /// Runs a smart query; a query the contract refuses is `Error::Contract` with its text.
    pub async fn query_contract<Q: Serialize, R: DeserializeOwned>(
        &self,
        contract: &str,
        msg: &Q,
    ) -> Result<R, Error> {
        self.parse_address(contract)?;
        let response: QuerySmartContractStateResponse = self
            .query_proto(
                "/cosmwasm.wasm.v1.Query/SmartContractState",
                &QuerySmartContractStateRequest {
                    address: contract.to_string(),
                    query_data: json(msg)?,
                },
            )
            .await?;
        serde_json::from_slice(&response.data).map_err(|e| {
            Error::Decode(format!(
                "contract {contract} answered {}: {e}",
                String::from_utf8_lossy(&response.data)
            ))
        })
    }

    /// A contract's code id, creator, admin and label.
    pub async fn contract_info(&self, contract: &str) -> Result<ContractInfo, Error> {
        self.parse_address(contract)?;
        let response: QueryContractInfoResponse = self
            .query_proto(
                "/cosmwasm.wasm.v1.Query/ContractInfo",
                &QueryContractInfoRequest {
                    address: contract.to_string(),
                },
            )
            .await?;
        response
            .contract_info
            .ok_or_else(|| Error::Decode(format!("no contract info for {contract}")))?
            .try_into()
            .map_err(|e: cosmrs::ErrorReport| Error::Decode(e.to_string()))
    }

    /// A stored code's creator and checksum.
    pub async fn code_info(&self, code_id: u64) -> Result<CodeInfo, Error> {
        let response: code_info::Response = self
            .query_proto(
                "/cosmwasm.wasm.v1.Query/CodeInfo",
                &code_info::Request { code_id },
            )
            .await?;
        Ok(CodeInfo {
            code_id: response.code_id,
            creator: response.creator,
            checksum: response.checksum,
        })
    }

    /// Uploads wasm code, gzipped as wasmd's own CLI sends it (the chain stores and checksums
    /// the uncompressed code); returns its code id. Compressed, a contract of several hundred KB
    /// stays well inside the node's RPC request limit, which the hex-encoded simulation of the
    /// raw code would exceed.
    pub async fn store_code(&self, signer: &Signer, wasm: Vec<u8>) -> Result<u64, Error> {
        let msg = MsgStoreCode {
            sender: signer.address().clone(),
            wasm_byte_code: gzip(&wasm)?,
            instantiate_permission: None,
        };
        let outcome = self
            .sign_and_broadcast(signer, vec![any(msg.to_any())?], &TxOptions::default())
            .await?;
        let code_id = outcome
            .attribute("store_code", "code_id")
            .ok_or_else(|| Error::Decode("store_code event has no code_id".into()))?;
        code_id
            .parse()
            .map_err(|_| Error::Decode(format!("code_id {code_id:?} is not a number")))
    }

    /// Instantiates a contract; returns its address.
    pub async fn instantiate(
        &self,
        signer: &Signer,
        code_id: u64,
        msg: &impl Serialize,
        label: &str,
        admin: Option<&str>,
        funds: Vec<Coin>,
    ) -> Result<String, Error> {
        let msg = MsgInstantiateContract {
            sender: signer.address().clone(),
            admin: admin.map(|a| self.parse_address(a)).transpose()?,
            code_id,
            label: Some(label.to_string()),
            msg: json(msg)?,
            funds,
        };
        let outcome = self
            .sign_and_broadcast(signer, vec![any(msg.to_any())?], &TxOptions::default())
            .await?;
        outcome
            .attribute("instantiate", "_contract_address")
            .map(str::to_string)
            .ok_or_else(|| Error::Decode("instantiate event has no _contract_address".into()))
    }

    /// Executes one contract message.
    pub async fn execute(
        &self,
        signer: &Signer,
        contract: &str,
        msg: &impl Serialize,
        funds: Vec<Coin>,
    ) -> Result<TxOutcome, Error> {
        self.execute_many(signer, vec![ContractCall::new(contract, msg, funds)?])
            .await
    }

    /// Executes several contract messages in one transaction (all or nothing).
    pub async fn execute_many(
        &self,
        signer: &Signer,
        calls: Vec<ContractCall>,
    ) -> Result<TxOutcome, Error> {
        let msgs = self.execute_msgs(signer, calls)?;
        self.sign_and_broadcast(signer, msgs, &TxOptions::default())
            .await
    }

    /// The `MsgExecuteContract`s of `calls`, for [`Client::sign_and_broadcast`] with options.
    pub fn execute_msgs(
        &self,
        signer: &Signer,
        calls: Vec<ContractCall>,
    ) -> Result<Vec<Any>, Error> {
        calls
            .into_iter()
            .map(|call| {
                any(MsgExecuteContract {
                    sender: signer.address().clone(),
                    contract: self.parse_address(&call.contract)?,
                    msg: call.msg,
                    funds: call.funds,
                }
                .to_any())
            })
            .collect()
    }

    /// Sends coins from the signer to `to`.
    pub async fn send(
        &self,
        signer: &Signer,
        to: &str,
        coins: Vec<Coin>,
    ) -> Result<TxOutcome, Error> {
        let msg = MsgSend {
            from_address: signer.address().clone(),
            to_address: self.parse_address(to)?,
            amount: coins,
        };
        self.sign_and_broadcast(signer, vec![any(msg.to_any())?], &TxOptions::default())
            .await
    }
}

fn json(msg: &impl Serialize) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(msg).map_err(|e| Error::Encode(e.to_string()))
}

fn any(msg: Result<Any, cosmrs::ErrorReport>) -> Result<Any, Error> {
    msg.map_err(|e| Error::Encode(e.to_string()))
}

/// `code` gzipped at the best compression.
fn gzip(code: &[u8]) -> Result<Vec<u8>, Error> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder
        .write_all(code)
        .and_then(|()| encoder.finish())
        .map_err(|e| Error::Decode(format!("gzip of the wasm code failed: {e}")))
}
