//! `chain/devnet.toml`, the reviewed chain parameters.

use crate::Error;
use serde::{Deserialize, Serialize};

/// The repository's `chain/devnet.toml`, compiled in as the default.
pub const DEFAULT_PARAMS_TOML: &str = include_str!("../../../chain/devnet.toml");

/// Chain parameters of a devnet.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DevnetParams {
    pub chain_id: String,
    pub bech32_prefix: String,
    pub denom: String,
    pub display_denom: String,
    pub decimals: u32,
    pub coin_type: u32,
    pub fees: Fees,
    pub consensus: Consensus,
    pub wasm: Wasm,
    pub governance: Governance,
    pub api: Api,
    pub ports: Ports,
    pub accounts: Accounts,
}

/// Gas prices, per unit of gas, in `denom`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Fees {
    pub min_gas_price: String,
    pub low: String,
    pub average: String,
    pub high: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Consensus {
    pub block_time_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Wasm {
    pub code_upload_access: String,
    pub instantiate_default_permission: String,
    pub smart_query_gas_limit: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Governance {
    pub voting_period: String,
    pub expedited_voting_period: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Api {
    pub rest: bool,
    pub grpc: bool,
    pub cors_open: bool,
}

/// Base ports of node 0; node `i` adds `i * stride`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Ports {
    pub rpc: u16,
    pub p2p: u16,
    pub rest: u16,
    pub grpc: u16,
    pub stride: u16,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Accounts {
    pub balance: String,
    pub self_delegation: String,
    pub names: Vec<String>,
}

impl DevnetParams {
    /// Parses and checks parameters in the `chain/devnet.toml` format.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        let params: DevnetParams =
            toml::from_str(text).map_err(|e| Error::Params(e.to_string()))?;
        params.check()?;
        Ok(params)
    }

    /// The parameters compiled into this crate.
    pub fn default_devnet() -> Self {
        Self::from_toml(DEFAULT_PARAMS_TOML).expect("chain/devnet.toml is valid")
    }

    /// The minimum gas price as the node writes it, e.g. `0.025utrib`.
    pub fn min_gas_prices(&self) -> String {
        format!("{}{}", self.fees.min_gas_price, self.denom)
    }

    fn check(&self) -> Result<(), Error> {
        let numeric = |name: &str, v: &str| {
            v.parse::<f64>()
                .ok()
                .filter(|x| *x >= 0.0)
                .map(|_| ())
                .ok_or_else(|| {
                    Error::Params(format!("{name} = {v:?} is not a non-negative number"))
                })
        };
        numeric("fees.min_gas_price", &self.fees.min_gas_price)?;
        numeric("fees.low", &self.fees.low)?;
        numeric("fees.average", &self.fees.average)?;
        numeric("fees.high", &self.fees.high)?;
        for (name, v) in [
            ("accounts.balance", &self.accounts.balance),
            ("accounts.self_delegation", &self.accounts.self_delegation),
        ] {
            v.parse::<u128>()
                .map_err(|_| Error::Params(format!("{name} = {v:?} is not an integer")))?;
        }
        if self.chain_id.is_empty() || self.denom.is_empty() || self.ports.stride < 5 {
            return Err(Error::Params(
                "chain_id and denom must be set and ports.stride must be at least 5".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_parameters_parse() {
        let p = DevnetParams::default_devnet();
        assert_eq!(p.chain_id, "tributary-devnet-1");
        assert_eq!(p.bech32_prefix, "trib");
        assert_eq!(p.min_gas_prices(), "0.025utrib");
    }

    #[test]
    fn bad_numbers_are_refused() {
        let text =
            DEFAULT_PARAMS_TOML.replace("min_gas_price = \"0.025\"", "min_gas_price = \"cheap\"");
        assert!(
            matches!(DevnetParams::from_toml(&text), Err(Error::Params(m)) if m.contains("min_gas_price"))
        );
    }
}
