//! `tributary deploy`: store and instantiate the contracts, write deployment.json.

use crate::keys::KeyringArgs;
use crate::output::Output;
use anyhow::{Context, Result};
use std::path::Path;
use tributary_client::{deploy, ChainConfig, Client, Decimal, DeploySettings, Deployment, Signer};

/// Deploys with `admin` and writes `out`.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    config: ChainConfig,
    admin: &Signer,
    artifacts: &Path,
    settings: DeploySettings,
    rest_url: Option<String>,
    grpc_addr: Option<String>,
    out: &Path,
) -> Result<Deployment> {
    let client = Client::connect(config).await?;
    let mut deployment = deploy(&client, admin, artifacts, settings)
        .await
        .context("deploying the contracts")?;
    deployment.rest_url = rest_url;
    deployment.grpc_addr = grpc_addr;
    deployment
        .save(out)
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(deployment)
}

/// `tributary deploy` from the command line.
#[allow(clippy::too_many_arguments)]
pub async fn command(
    keyring: &KeyringArgs,
    from: &str,
    node: String,
    chain_id: String,
    gas_price: String,
    denom: String,
    artifacts: &Path,
    challenge_window_seconds: u64,
    out: &Path,
    output: Output,
) -> Result<()> {
    let admin = crate::context::signer(keyring, from, &keyring.prefix)?;
    let price: Decimal = gas_price.parse().context("--gas-price")?;
    let config = ChainConfig::new(chain_id, node, keyring.prefix.clone(), price, denom);
    let settings = DeploySettings {
        challenge_window_seconds,
        ..DeploySettings::default()
    };
    let deployment = run(config, &admin, artifacts, settings, None, None, out).await?;
    print(&deployment, out, output);
    Ok(())
}

pub fn print(deployment: &Deployment, out: &Path, output: Output) {
    output.print(deployment, || {
        format!(
            "deployed on {} (written to {})\n  datanet         {}\n  model registry  {}\n  payout          {}\n  cw20 token      {}",
            deployment.chain_id,
            out.display(),
            deployment.contracts.datanet,
            deployment.contracts.model_registry,
            deployment.contracts.payout,
            deployment.contracts.cw20
        )
    });
}
