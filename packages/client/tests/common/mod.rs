//! What the live tests and the chain benchmark share: a devnet of their own, its keys, and the
//! contracts' inputs. Each test binary uses a different part of it.
#![allow(dead_code)]

use cosmwasm_std::{HexBinary, Timestamp, Uint128};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};
use tendermint_rpc::Client as _;
use tributary_client::{
    coin, ChainConfig, Client, Decimal, Deployment, NewContribution, NewDatanet, Signer,
};
use tributary_devnet::{Devnet, DevnetParams, InitOptions, Tributaryd};
use tributary_types::datanet::CurationPolicy;
use tributary_types::packet::DatanetRoot;
use tributary_types::registry::{AttributionMethod, ModelVersionInput};
use tributary_types::{sha256, AssetInfo, FeeSplit, Price};

/// A running one-validator devnet, stopped when its owner ends however it ends.
pub struct LiveNet {
    pub devnet: Devnet,
    pub params: DevnetParams,
    _home: tempfile::TempDir,
}

impl Drop for LiveNet {
    fn drop(&mut self) {
        let _ = self.devnet.stop();
    }
}

impl LiveNet {
    /// Starts a one-validator devnet on its own ports; `block_time_ms` overrides the
    /// parameters' block time.
    pub async fn start(port_offset: u16, block_time_ms: Option<u64>) -> LiveNet {
        Self::start_validators(port_offset, block_time_ms, 1).await
    }

    /// Starts a devnet of `validators` validators.
    pub async fn start_validators(
        port_offset: u16,
        block_time_ms: Option<u64>,
        validators: usize,
    ) -> LiveNet {
        let home = tempfile::tempdir().unwrap();
        let params = DevnetParams::default_devnet();
        let devnet = Devnet::init(
            &Tributaryd::from_env(),
            &home.path().join("devnet"),
            &params,
            &InitOptions {
                validators,
                port_offset,
                block_time_ms,
                ..InitOptions::default()
            },
        )
        .unwrap();
        let net = LiveNet {
            devnet,
            params,
            _home: home,
        };
        net.devnet.start().unwrap();
        net.devnet
            .wait_for_height(0, 2, Duration::from_secs(90))
            .await
            .unwrap();
        net
    }

    pub fn config(&self) -> ChainConfig {
        ChainConfig::new(
            &self.devnet.chain_id,
            self.devnet.rpc_url(),
            &self.params.bech32_prefix,
            Decimal::from_str(&self.params.fees.min_gas_price).unwrap(),
            &self.devnet.denom,
        )
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.config()).await.unwrap()
    }

    /// The signer of a funded devnet key.
    pub fn signer(&self, name: &str) -> Signer {
        let key = self.devnet.key(name).unwrap();
        let signer = Signer::from_mnemonic(&key.mnemonic, &self.params.bech32_prefix).unwrap();
        assert_eq!(signer.address().as_ref(), key.address);
        signer
    }
}

pub fn utrib(amount: u128) -> Vec<cosmrs::Coin> {
    vec![coin(amount, "utrib").unwrap()]
}

/// A `MsgSend` of `amount` utrib, for transactions built by hand.
pub fn bank_send(from: &Signer, to: &str, amount: u128) -> cosmrs::Any {
    use cosmrs::tx::Msg;
    cosmrs::bank::MsgSend {
        from_address: from.address().clone(),
        to_address: to.parse().unwrap(),
        amount: utrib(amount),
    }
    .to_any()
    .unwrap()
}

pub fn artifacts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../artifacts")
}

pub fn artifact(name: &str) -> Vec<u8> {
    let path = artifacts_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run ci/build-wasm)", path.display()))
}

/// A text contribution registered by its SHA-256.
pub fn content(text: &str) -> NewContribution {
    NewContribution {
        content_hash: HexBinary::from(sha256(text.as_bytes()).as_slice()).to_hex(),
        size_bytes: text.len() as u64,
        uri: format!("tributary://blobs/{}", text.len()),
        media_type: "text/plain".into(),
        metadata: None,
    }
}

/// A 32-byte hash standing for whatever `label` names (weights, an index, an output).
pub fn hash(label: &str) -> HexBinary {
    HexBinary::from(sha256(label.as_bytes()).as_slice())
}

/// Waits until the latest block is at or past `time`: a transaction's simulation then runs at
/// that block's time, and the transaction itself in a later block.
pub async fn wait_for_block_time(client: &Client, time: Timestamp) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = client.rpc().status().await.unwrap();
        let nanos = status.sync_info.latest_block_time.unix_timestamp_nanos();
        if nanos >= i128::from(time.nanos()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no block at or past {time} in 60s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The split of every model these tests and benchmarks register.
pub const SPLIT: FeeSplit = FeeSplit {
    contributors_bps: 6000,
    developer_bps: 2000,
    operator_bps: 1000,
    protocol_bps: 1000,
};

/// A model version trained on a new open datanet's first version.
pub struct TestModel {
    pub id: u64,
    pub lineage: Vec<DatanetRoot>,
    /// The accepted contributions frozen in the version, in order.
    pub contributions: Vec<u64>,
    pub method: AttributionMethod,
}

impl TestModel {
    #[allow(clippy::too_many_arguments)]
    /// An open datanet with `contributions` texts by `contributor`, frozen by `owner`, and a
    /// model by `owner` on it, priced `price` utrib with [`SPLIT`], `attestors` and `quorum`.
    pub async fn register(
        client: &Client,
        deployment: &Deployment,
        owner: &Signer,
        contributor: &Signer,
        contributions: usize,
        attestors: &[String],
        quorum: u32,
        price: u128,
    ) -> TestModel {
        let datanets = client.datanet(&deployment.contracts.datanet);
        let datanet_id = datanets
            .create_datanet(
                owner,
                NewDatanet {
                    name: "test data".into(),
                    description: "texts of a test".into(),
                    domain_tags: vec!["test".into()],
                    license: "CC0-1.0".into(),
                    policy: CurationPolicy::Open,
                    curators: Vec::new(),
                    max_contribution_bytes: 1 << 20,
                },
            )
            .await
            .expect("a datanet");
        let texts: Vec<_> = (0..contributions)
            .map(|i| content(&format!("test contribution {i}")))
            .collect();
        let contributions = datanets
            .contribute_many(contributor, datanet_id, &texts)
            .await
            .expect("contributions")
            .ids;
        let version = datanets
            .snapshot(owner, datanet_id, None)
            .await
            .expect("a snapshot");
        let root = datanets
            .version(datanet_id, version)
            .await
            .expect("the version")
            .root;
        let lineage = vec![DatanetRoot {
            datanet_id,
            version,
            root,
        }];
        let method = AttributionMethod {
            id: "trak-logra-v1".into(),
            params_hash: hash("params"),
            params: None,
        };
        let id = client
            .registry(&deployment.contracts.model_registry)
            .register_model(
                owner,
                "test-model",
                "a model of a test",
                "transformer",
                ModelVersionInput {
                    lineage: lineage.clone(),
                    weights_hash: hash("weights"),
                    weights_uri: "tributary://weights".into(),
                    index_hash: hash("index"),
                    method: method.clone(),
                    price: Price {
                        asset: AssetInfo::native("utrib"),
                        amount: Uint128::new(price),
                    },
                    split: SPLIT,
                    attestors: attestors.to_vec(),
                    quorum,
                },
            )
            .await
            .expect("a model");
        TestModel {
            id,
            lineage,
            contributions,
            method,
        }
    }
}

/// Pins the deployed contracts' code by the devnet validator's proposal, as `devnet up` does.
pub async fn pin_contracts(net: &LiveNet, client: &Client, deployment: &Deployment) {
    let validator = Signer::from_mnemonic(
        &net.devnet.nodes[0].validator.mnemonic,
        &net.params.bech32_prefix,
    )
    .expect("the validator's key");
    let codes = &deployment.code_ids;
    client
        .pin_codes(
            &validator,
            &[
                codes.datanet,
                codes.model_registry,
                codes.payout,
                codes.cw20,
            ],
            Duration::from_secs(120),
        )
        .await
        .expect("pin the contracts' code");
}
