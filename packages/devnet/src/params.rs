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

    /// The chain description Keplr's `experimentalSuggestChain` takes.
    pub fn keplr_chain_info(&self, rpc_url: &str, rest_url: &str) -> serde_json::Value {
        let prefix = &self.bech32_prefix;
        let currency = serde_json::json!({
            "coinDenom": self.display_denom,
            "coinMinimalDenom": self.denom,
            "coinDecimals": self.decimals,
        });
        let price = |v: &str| v.parse::<f64>().unwrap_or_default();
        let mut fee_currency = currency.clone();
        fee_currency["gasPriceStep"] = serde_json::json!({
            "low": price(&self.fees.low),
            "average": price(&self.fees.average),
            "high": price(&self.fees.high),
        });
        serde_json::json!({
            "chainId": self.chain_id,
            "chainName": format!("Tributary ({})", self.chain_id),
            "rpc": rpc_url,
            "rest": rest_url,
            "bip44": { "coinType": self.coin_type },
            "bech32Config": {
                "bech32PrefixAccAddr": prefix,
                "bech32PrefixAccPub": format!("{prefix}pub"),
                "bech32PrefixValAddr": format!("{prefix}valoper"),
                "bech32PrefixValPub": format!("{prefix}valoperpub"),
                "bech32PrefixConsAddr": format!("{prefix}valcons"),
                "bech32PrefixConsPub": format!("{prefix}valconspub"),
            },
            "currencies": [currency.clone()],
            "feeCurrencies": [fee_currency],
            "stakeCurrency": currency,
            "features": ["cosmwasm"],
        })
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
    fn keplr_chain_info_carries_the_prefix_denom_and_fee_tiers() {
        let info = DevnetParams::default_devnet()
            .keplr_chain_info("http://127.0.0.1:26657", "http://127.0.0.1:1317");
        assert_eq!(info["chainId"], "tributary-devnet-1");
        assert_eq!(info["bip44"]["coinType"], 118);
        assert_eq!(info["bech32Config"]["bech32PrefixValAddr"], "tribvaloper");
        assert_eq!(info["feeCurrencies"][0]["coinMinimalDenom"], "utrib");
        assert_eq!(info["feeCurrencies"][0]["gasPriceStep"]["average"], 0.03);
        assert_eq!(info["rest"], "http://127.0.0.1:1317");
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
