//! What chain commands share: the deployment to talk to and the key to sign with.

use crate::keys::KeyringArgs;
use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use tributary_client::{ChainConfig, Client, Decimal, Deployment, Signer};

#[derive(Args, Clone)]
pub struct ChainArgs {
    /// The deployment to use (written by `tributary deploy` or `tributary devnet up`).
    #[arg(long, env = "TRIBUTARY_DEPLOYMENT", default_value_os_t = default_deployment(), global = true)]
    pub deployment: PathBuf,
    /// CometBFT RPC URL, instead of the deployment's.
    #[arg(long, global = true)]
    pub node: Option<String>,
    /// Chain id the node must report, instead of the deployment's.
    #[arg(long, global = true)]
    pub chain_id: Option<String>,
    /// Simulated gas is multiplied by this.
    #[arg(long, default_value_t = 1.3, global = true)]
    pub gas_adjustment: f64,
    /// A fixed gas limit instead of simulation.
    #[arg(long, global = true)]
    pub gas: Option<u64>,
}

/// `~/.tributary/devnet/deployment.json`, where `devnet up` writes it.
pub fn default_deployment() -> PathBuf {
    crate::devnet::default_home().join("deployment.json")
}

/// A connected client and the deployment it uses.
pub struct Chain {
    pub client: Client,
    pub deployment: Deployment,
}

impl ChainArgs {
    pub async fn connect(&self) -> Result<Chain> {
        let deployment = Deployment::load(&self.deployment).with_context(|| {
            format!(
                "no deployment at {}: start a devnet (`tributary devnet up`), deploy (`tributary deploy`) or pass --deployment",
                self.deployment.display()
            )
        })?;
        let gas_price: Decimal = deployment
            .gas_price
            .parse()
            .with_context(|| format!("gas price {:?} in the deployment", deployment.gas_price))?;
        let mut config = ChainConfig::new(
            self.chain_id
                .clone()
                .unwrap_or_else(|| deployment.chain_id.clone()),
            self.node
                .clone()
                .unwrap_or_else(|| deployment.rpc_url.clone()),
            deployment.bech32_prefix.clone(),
            gas_price,
            deployment.denom.clone(),
        );
        config.gas_adjustment = self.gas_adjustment;
        config.gas_limit = self.gas;
        let client = Client::connect(config).await?;
        Ok(Chain { client, deployment })
    }
}

/// The signing key `--from NAME` of the keyring.
pub fn signer(keyring: &KeyringArgs, name: &str, prefix: &str) -> Result<Signer> {
    let ring = keyring.open()?;
    let passphrase = keyring.passphrase(false)?;
    let mnemonic = ring.mnemonic(name, passphrase.as_deref())?;
    Ok(Signer::from_mnemonic(&mnemonic, prefix)?)
}
