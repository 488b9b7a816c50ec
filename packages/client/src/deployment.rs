//! `deployment.json`: how every service finds the chain and the contracts, and the deploy step
//! that writes it (store the four artifacts, instantiate them wired together).

use crate::{Client, Error, Signer};
use serde::{Deserialize, Serialize};
use std::path::Path;
use tributary_types::hash::{sha256, to_hex};
use tributary_types::verification::VerificationParams;
use tributary_types::{datanet, payout, registry};

/// One value per deployed contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contracts<T> {
    pub datanet: T,
    pub model_registry: T,
    pub payout: T,
    /// The cw20 token accepted for payments.
    pub cw20: T,
}

/// The artifact file of each contract in `artifacts/`.
pub const ARTIFACTS: Contracts<&str> = Contracts {
    datanet: "tributary_datanet.wasm",
    model_registry: "tributary_model_registry.wasm",
    payout: "tributary_payout.wasm",
    cw20: "cw20_base.wasm",
};

/// Protocol settings chosen at deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploySettings {
    /// Receives the protocol share; the deployer when absent.
    pub treasury: Option<String>,
    pub challenge_window_seconds: u64,
    pub request_expiry_seconds: u64,
    pub min_contributors_bps: u16,
    pub min_protocol_bps: u16,
    pub max_entries: u32,
    pub token_name: String,
    pub token_symbol: String,
    /// Initial cw20 balances: `(address, amount)`.
    pub token_balances: Vec<(String, u128)>,
    /// Bonds and disputes of the payout contract; the contract's defaults when absent.
    #[serde(default)]
    pub verification: Option<VerificationParams>,
}

impl Default for DeploySettings {
    fn default() -> Self {
        Self {
            treasury: None,
            challenge_window_seconds: 30,
            request_expiry_seconds: 3600,
            min_contributors_bps: 5000,
            min_protocol_bps: 100,
            max_entries: 32,
            token_name: "Tributary Credit".into(),
            token_symbol: "TRC".into(),
            token_balances: Vec::new(),
            verification: Some(devnet_verification()),
        }
    }
}

/// Bond and dispute parameters sized for a devnet: a challenge is revealed, voted and
/// resolved within minutes, and unbonding takes ten.
pub fn devnet_verification() -> VerificationParams {
    VerificationParams {
        reveal_seconds: 120,
        vote_seconds: 120,
        unbonding_seconds: 600,
        ..VerificationParams::defaults()
    }
}

/// What `tributary deploy` writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    pub chain_id: String,
    pub rpc_url: String,
    pub rest_url: Option<String>,
    pub grpc_addr: Option<String>,
    pub bech32_prefix: String,
    pub denom: String,
    /// Per unit of gas, in `denom`.
    pub gas_price: String,
    /// The deployer, admin of the contracts.
    pub admin: String,
    pub treasury: String,
    pub code_ids: Contracts<u64>,
    /// SHA-256 of each stored artifact (lowercase hex), as in `artifacts/checksums.txt`.
    pub checksums: Contracts<String>,
    pub contracts: Contracts<String>,
    pub settings: DeploySettings,
}

impl Deployment {
    /// Reads a `deployment.json`.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Artifact(format!("{}: {e}", path.display())))?;
        serde_json::from_str(&text).map_err(|e| Error::Decode(format!("{}: {e}", path.display())))
    }

    /// Writes it atomically (temporary file, then rename).
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self).expect("deployment serializes");
        std::fs::write(&tmp, text)
            .and_then(|_| std::fs::rename(&tmp, path))
            .map_err(|e| Error::Artifact(format!("{}: {e}", path.display())))
    }
}

/// Reads the artifacts and checks each against `checksums.txt`.
pub fn read_artifacts(dir: &Path) -> Result<Contracts<Vec<u8>>, Error> {
    let listing_path = dir.join("checksums.txt");
    let listing = std::fs::read_to_string(&listing_path).map_err(|e| {
        Error::Artifact(format!(
            "{}: {e} (build the artifacts with ci/build-wasm)",
            listing_path.display()
        ))
    })?;
    let read = |name: &str| -> Result<Vec<u8>, Error> {
        let expected = listing
            .lines()
            .find_map(|l| {
                l.split_once("  ")
                    .filter(|(_, f)| *f == name)
                    .map(|(h, _)| h)
            })
            .ok_or_else(|| {
                Error::Artifact(format!(
                    "{name} is not listed in {}",
                    listing_path.display()
                ))
            })?;
        let path = dir.join(name);
        let bytes = std::fs::read(&path)
            .map_err(|e| Error::Artifact(format!("{}: {e}", path.display())))?;
        let actual = to_hex(&sha256(&bytes));
        if actual != expected {
            return Err(Error::Artifact(format!(
                "{name} has sha256 {actual}, checksums.txt says {expected}"
            )));
        }
        Ok(bytes)
    };
    Ok(Contracts {
        datanet: read(ARTIFACTS.datanet)?,
        model_registry: read(ARTIFACTS.model_registry)?,
        payout: read(ARTIFACTS.payout)?,
        cw20: read(ARTIFACTS.cw20)?,
    })
}

/// Stores the four artifacts and instantiates them wired together: the registry checks lineage
/// against the datanet contract, the payout contract settles through both and accepts the cw20,
/// and the datanet contract takes usage only from the payout contract.
pub async fn deploy(
    client: &Client,
    admin: &Signer,
    artifacts: &Path,
    settings: DeploySettings,
) -> Result<Deployment, Error> {
    let code = read_artifacts(artifacts)?;
    let checksums = Contracts {
        datanet: to_hex(&sha256(&code.datanet)),
        model_registry: to_hex(&sha256(&code.model_registry)),
        payout: to_hex(&sha256(&code.payout)),
        cw20: to_hex(&sha256(&code.cw20)),
    };
    let code_ids = Contracts {
        datanet: client.store_code(admin, code.datanet).await?,
        model_registry: client.store_code(admin, code.model_registry).await?,
        payout: client.store_code(admin, code.payout).await?,
        cw20: client.store_code(admin, code.cw20).await?,
    };
    let admin_addr = admin.address().to_string();
    let treasury = settings
        .treasury
        .clone()
        .unwrap_or_else(|| admin_addr.clone());

    let datanet = client
        .instantiate(
            admin,
            code_ids.datanet,
            &datanet::InstantiateMsg {
                admin: None,
                usage_recorder: None,
            },
            "tributary-datanet",
            Some(&admin_addr),
            vec![],
        )
        .await?;
    let model_registry = client
        .instantiate(
            admin,
            code_ids.model_registry,
            &registry::InstantiateMsg {
                admin: None,
                datanet_contract: datanet.clone(),
                min_contributors_bps: settings.min_contributors_bps,
                min_protocol_bps: settings.min_protocol_bps,
            },
            "tributary-model-registry",
            Some(&admin_addr),
            vec![],
        )
        .await?;
    let cw20 = client
        .instantiate(
            admin,
            code_ids.cw20,
            &serde_json::json!({
                "name": settings.token_name,
                "symbol": settings.token_symbol,
                "decimals": 6,
                "initial_balances": settings
                    .token_balances
                    .iter()
                    .map(|(address, amount)| serde_json::json!({"address": address, "amount": amount.to_string()}))
                    .collect::<Vec<_>>(),
                "mint": {"minter": admin_addr},
            }),
            "tributary-cw20",
            Some(&admin_addr),
            vec![],
        )
        .await?;
    let payout = client
        .instantiate(
            admin,
            code_ids.payout,
            &payout::InstantiateMsg {
                admin: None,
                datanet_contract: datanet.clone(),
                registry_contract: model_registry.clone(),
                treasury: treasury.clone(),
                challenge_window_seconds: settings.challenge_window_seconds,
                request_expiry_seconds: settings.request_expiry_seconds,
                accepted_cw20: vec![cw20.clone()],
                max_entries: settings.max_entries,
                verification: settings.verification.clone(),
            },
            "tributary-payout",
            Some(&admin_addr),
            vec![],
        )
        .await?;
    client
        .execute(
            admin,
            &datanet,
            &datanet::ExecuteMsg::UpdateConfig {
                admin: None,
                usage_recorder: Some(payout.clone()),
            },
            vec![],
        )
        .await?;

    let config = client.config();
    Ok(Deployment {
        chain_id: config.chain_id.clone(),
        rpc_url: config.rpc_url.clone(),
        rest_url: None,
        grpc_addr: None,
        bech32_prefix: config.bech32_prefix.clone(),
        denom: config.gas_denom.clone(),
        gas_price: config.gas_price_amount.to_string(),
        admin: admin_addr,
        treasury,
        code_ids,
        checksums,
        contracts: Contracts {
            datanet,
            model_registry,
            payout,
            cw20,
        },
        settings,
    })
}
