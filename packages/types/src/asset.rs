//! Payment assets: a native bank denom or a cw20 token.

use cosmwasm_schema::cw_serde;
use cosmwasm_std::Uint128;

/// What a price or a balance is denominated in.
#[cw_serde]
#[derive(Eq, PartialOrd, Ord, Hash)]
pub enum AssetInfo {
    /// A bank denom such as `utrib`.
    Native { denom: String },
    /// A cw20 token contract.
    Cw20 { address: String },
}

impl AssetInfo {
    /// Builds a native asset.
    pub fn native(denom: impl Into<String>) -> Self {
        AssetInfo::Native {
            denom: denom.into(),
        }
    }

    /// Builds a cw20 asset.
    pub fn cw20(address: impl Into<String>) -> Self {
        AssetInfo::Cw20 {
            address: address.into(),
        }
    }

    /// A stable storage key: `native:<denom>` or `cw20:<address>`.
    pub fn key(&self) -> String {
        match self {
            AssetInfo::Native { denom } => format!("native:{denom}"),
            AssetInfo::Cw20 { address } => format!("cw20:{address}"),
        }
    }

    /// Inverse of [`AssetInfo::key`].
    pub fn from_key(key: &str) -> Option<Self> {
        if let Some(denom) = key.strip_prefix("native:") {
            Some(AssetInfo::native(denom))
        } else {
            key.strip_prefix("cw20:").map(AssetInfo::cw20)
        }
    }
}

impl std::fmt::Display for AssetInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AssetInfo::Native { denom } => write!(f, "{denom}"),
            AssetInfo::Cw20 { address } => write!(f, "cw20:{address}"),
        }
    }
}

/// An amount of one asset.
#[cw_serde]
pub struct Price {
    pub asset: AssetInfo,
    pub amount: Uint128,
}

/// Checks the shape of a bank denom (3 to 128 characters, starting with a letter, then letters,
/// digits and `/:._-`), the rule of the Cosmos SDK's `ValidateDenom`.
pub fn is_valid_denom(denom: &str) -> bool {
    let bytes = denom.as_bytes();
    (3..=128).contains(&bytes.len())
        && bytes[0].is_ascii_alphabetic()
        && bytes[1..]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"/:._-".contains(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        for asset in [AssetInfo::native("utrib"), AssetInfo::cw20("trib1xyz")] {
            assert_eq!(AssetInfo::from_key(&asset.key()), Some(asset));
        }
        assert_eq!(AssetInfo::from_key("bogus"), None);
    }

    #[test]
    fn denoms_follow_the_sdk_rule() {
        assert!(is_valid_denom("utrib"));
        assert!(is_valid_denom(
            "ibc/27394FB092D2ECCD56123C74F36E4C1F926001CEADA9CA97EA622B25F41E5EB2"
        ));
        assert!(!is_valid_denom("ut"));
        assert!(!is_valid_denom("1trib"));
        assert!(!is_valid_denom("u trib"));
    }
}
