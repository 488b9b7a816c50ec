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
    /// Price of a unit of gas instead of the deployment's, e.g. `0.03utrib` (in its denom).
    #[arg(long, global = true)]
    pub gas_prices: Option<String>,
    /// A fixed fee for each transaction instead of gas limit × gas price, e.g. `6000utrib`.
    #[arg(long, global = true, conflicts_with = "gas_prices")]
    pub fees: Option<String>,
    /// Simulate the command's (first) transaction and print its gas and fee; broadcast nothing.
    #[arg(long, global = true)]
    pub dry_run: bool,
}

/// `AMOUNT` or `AMOUNTDENOM`, whose denom must be `denom`.
fn amount_in<T: std::str::FromStr>(flag: &str, value: &str, denom: &str) -> Result<T> {
    let number = value.strip_suffix(denom).unwrap_or(value);
    number.parse().map_err(|_| {
        anyhow::anyhow!(
            "--{flag} {value:?}: expected an amount in {denom}, e.g. 0.03{denom} or 6000{denom}"
        )
    })
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
        let gas_price: Decimal = match &self.gas_prices {
            Some(price) => amount_in("gas-prices", price, &deployment.denom)?,
            None => deployment.gas_price.parse().with_context(|| {
                format!("gas price {:?} in the deployment", deployment.gas_price)
            })?,
        };
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
        config.fixed_fee = match &self.fees {
            Some(fees) => Some(amount_in("fees", fees, &deployment.denom)?),
            None => None,
        };
        config.dry_run = self.dry_run;
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
