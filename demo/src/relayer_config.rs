//! The configuration file of a relayer or a verifier the demo runs in process.

use std::path::PathBuf;

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
