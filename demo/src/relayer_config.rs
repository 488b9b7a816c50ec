//! The configuration file of a relayer or a verifier the demo runs in process.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use tributary_client::Signer;
use tributary_keyring::{Backend, Keyring};

/// What differs between the demo's relayers and verifiers.
pub struct RelayerToml {
    pub chain_id: String,
    pub rpc: String,
    pub prefix: String,
    /// Gas price with its denom, e.g. `0.025utrib`.
    pub gas_price: String,
    /// The key's name in the keyring at `keys`.
    pub key: String,
    pub keys: PathBuf,
    pub payout: String,
    pub registry: String,
    pub models: Vec<(u64, u32)>,
    /// The whole `[engine]` section.
    pub engine: String,
    pub gateway: String,
    pub telemetry: String,
    pub outbox: PathBuf,
    /// Appended as is (a `[verifier]` section).
    pub extra: String,
}

impl RelayerToml {
    pub fn render(&self) -> String {
        let models: String = self
            .models
            .iter()
            .map(|(id, version)| format!("[[models]]\nmodel_id = {id}\nversion = {version}\n\n"))
            .collect();
        format!(
            r#"[chain]
id = "{chain_id}"
rpc = ["{rpc}"]
bech32_prefix = "{prefix}"
gas_price = "{gas_price}"
gas_adjustment = 1.4
key = "{key}"
keyring_dir = "{keys}"
keyring_backend = "test"

[contracts]
payout = "{payout}"
model_registry = "{registry}"

{models}{engine}

[gateway]
listen = "{gateway}"
public_url = "http://{gateway}"

[batch]
max_packets = 16
max_delay_ms = 1000

[finalize]
enabled = true
interval_ms = 2000

[telemetry]
listen = "{telemetry}"

[outbox]
path = "{outbox}"
{extra}"#,
            chain_id = self.chain_id,
            rpc = self.rpc,
            prefix = self.prefix,
            gas_price = self.gas_price,
            key = self.key,
            keys = self.keys.display(),
            payout = self.payout,
            registry = self.registry,
            engine = self.engine,
            gateway = self.gateway,
            telemetry = self.telemetry,
            outbox = self.outbox.display(),
            extra = self.extra,
        )
    }
}

/// Writes the keyring and config of one relayer (or verifier) and runs it until `stopped`.
pub fn spawn_process(
    dir: &Path,
    toml: &RelayerToml,
    mnemonic: String,
    verify: bool,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>> {
    std::fs::create_dir_all(dir)?;
    let signer = Signer::from_mnemonic(&mnemonic, &toml.prefix)?;
    let ring = Keyring::open(&toml.keys, Backend::Test)?;
    if ring.show(&toml.key).is_err() {
        ring.add(&toml.key, signer.address().as_ref(), &mnemonic, None)?;
    }
    let text = toml.render();
    std::fs::write(dir.join("relayer.toml"), &text)?;
    let config = tributary_relayer::config::Config::parse(&text)?;
    let engine = tributary_relayer::runner::open_engine(&config)?;
    Ok(tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        let result = if verify {
            tributary_relayer::runner::verify(config, signer, engine, shutdown).await
        } else {
            tributary_relayer::runner::start(config, signer, engine, shutdown).await
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "relayer stopped");
        }
    }))
}

pub async fn wait_ready(telemetry: &str, what: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let url = format!("http://{telemetry}/status");
    while !reqwest::get(&url)
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        if Instant::now() > deadline {
            bail!("{what} did not start");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}
