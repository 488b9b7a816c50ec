//! Which chain to talk to and how to pay for gas.

use crate::Error;
use cosmrs::Coin;
use cosmwasm_std::{Decimal, Uint128};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A chain and the fee policy of the transactions sent to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainConfig {
    /// Checked against the node's `/status` on connect.
    pub chain_id: String,
    /// CometBFT RPC, e.g. `http://127.0.0.1:26657`.
    pub rpc_url: String,
    /// Price of one unit of gas in `gas_denom`, exact (`"0.025"`), so fees never round up a
    /// binary-fraction error.
    pub gas_price_amount: Decimal,
    pub gas_denom: String,
    /// Simulated gas is multiplied by this to give the gas limit.
    #[serde(default = "default_gas_adjustment")]
    pub gas_adjustment: f64,
    pub bech32_prefix: String,
    /// A fixed gas limit for every transaction instead of simulation (like `--gas` of wasmd's
    /// CLI); a transaction's own [`crate::TxOptions::gas_limit`] still wins.
    #[serde(default)]
    pub gas_limit: Option<u64>,
    /// A fixed fee in `gas_denom` for every transaction instead of gas limit × gas price (like
    /// `--fees` of wasmd's CLI).
    #[serde(default)]
    pub fixed_fee: Option<u128>,
    /// Simulate instead of broadcasting: every signed transaction ends in [`Error::DryRun`]
    /// with its simulated gas, gas limit and fee, and nothing reaches the chain.
    #[serde(default)]
    pub dry_run: bool,
    /// How long to wait for a broadcast transaction to be included in a block.
    #[serde(default = "default_confirm_timeout", with = "seconds")]
    pub confirm_timeout: Duration,
}

fn default_gas_adjustment() -> f64 {
    1.3
}

fn default_confirm_timeout() -> Duration {
    Duration::from_secs(30)
}

impl ChainConfig {
    /// A configuration with the default gas adjustment (1.3) and confirmation timeout (30 s).
    pub fn new(
        chain_id: impl Into<String>,
        rpc_url: impl Into<String>,
        bech32_prefix: impl Into<String>,
        gas_price_amount: Decimal,
        gas_denom: impl Into<String>,
    ) -> Self {
        Self {
            chain_id: chain_id.into(),
            rpc_url: rpc_url.into(),
            gas_price_amount,
            gas_denom: gas_denom.into(),
            gas_adjustment: default_gas_adjustment(),
            bech32_prefix: bech32_prefix.into(),
            gas_limit: None,
            fixed_fee: None,
            dry_run: false,
            confirm_timeout: default_confirm_timeout(),
        }
    }

    /// The fee of a transaction with gas limit `gas`: the fixed fee when there is one, else
    /// [`ChainConfig::fee_for`].
    pub fn fee_of(&self, gas: u64) -> Result<Coin, Error> {
        match self.fixed_fee {
            Some(amount) => coin(amount, &self.gas_denom),
            None => self.fee_for(gas),
        }
    }

    /// The fee for `gas`: `ceil(gas * gas_price)` in the gas denom.
    pub fn fee_for(&self, gas: u64) -> Result<Coin, Error> {
        let amount = Uint128::from(gas)
            .checked_mul_ceil(self.gas_price_amount)
            .map_err(|e| Error::Config(format!("fee for {gas} gas: {e}")))?;
        coin(amount.u128(), &self.gas_denom)
    }

    /// The gas limit for a transaction that simulated at `simulated` gas.
    pub fn gas_limit_for(&self, simulated: u64) -> u64 {
        (simulated as f64 * self.gas_adjustment).ceil() as u64
    }

    /// Checks what a connection cannot check: the numbers and the denom.
    pub fn validate(&self) -> Result<(), Error> {
        if !(self.gas_adjustment.is_finite() && self.gas_adjustment >= 1.0) {
            return Err(Error::Config(format!(
                "gas_adjustment must be at least 1, got {}",
                self.gas_adjustment
            )));
        }
        if self.chain_id.is_empty() || self.bech32_prefix.is_empty() {
            return Err(Error::Config(
                "chain_id and bech32_prefix must be set".into(),
            ));
        }
        coin(0, &self.gas_denom).map(|_| ())
    }
}

/// A coin of `amount` `denom`, checking the denom.
pub fn coin(amount: u128, denom: &str) -> Result<Coin, Error> {
    Coin::new(amount, denom).map_err(|e| Error::Config(format!("denom {denom:?}: {e}")))
}

/// `Duration` as a number of seconds, the way people write timeouts in config files.
mod seconds {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn config(price: &str) -> ChainConfig {
        ChainConfig::new(
            "tributary-devnet-1",
            "http://127.0.0.1:26657",
            "trib",
            Decimal::from_str(price).unwrap(),
            "utrib",
        )
    }

    #[test]
    fn fees_round_up_exactly() {
        let c = config("0.025");
        // 0.025 * 200000 in f64 is 5000.000000000001; the exact price gives 5000.
        assert_eq!(c.fee_for(200_000).unwrap().amount, 5000);
        assert_eq!(c.fee_for(200_001).unwrap().amount, 5001);
        assert_eq!(c.fee_for(1).unwrap().amount, 1);
        assert_eq!(c.fee_for(0).unwrap().amount, 0);
        assert_eq!(config("0").fee_for(123_456).unwrap().amount, 0);
        assert_eq!(config("1.5").fee_for(3).unwrap().amount, 5);
        assert_eq!(c.fee_for(40).unwrap().denom.as_ref(), "utrib");
    }

    #[test]
    fn gas_limit_applies_the_adjustment() {
        let mut c = config("0.025");
        assert_eq!(c.gas_limit_for(100_000), 130_000);
        c.gas_adjustment = 1.0;
        assert_eq!(c.gas_limit_for(77), 77);
        c.gas_adjustment = 1.5;
        assert_eq!(c.gas_limit_for(3), 5);
    }

    #[test]
    fn configs_read_from_json_with_defaults() {
        let c: ChainConfig = serde_json::from_str(
            r#"{"chain_id":"tributary-devnet-1","rpc_url":"http://127.0.0.1:26657",
                "gas_price_amount":"0.025","gas_denom":"utrib","bech32_prefix":"trib"}"#,
        )
        .unwrap();
        assert_eq!(c, config("0.025"));
        let back: ChainConfig = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        let mut bad = c.clone();
        bad.gas_adjustment = 0.5;
        assert!(matches!(bad.validate(), Err(Error::Config(_))));
        bad = c;
        bad.gas_denom = "x".into();
        assert!(matches!(bad.validate(), Err(Error::Config(_))));
    }
}
