//! Claims: everything finalization credited to the sender, paid out in one message.

use cosmwasm_std::{
    BankMsg, Coin, DepsMut, MessageInfo, Order, Response, StdError, StdResult, Uint128,
};
use tributary_types::AssetInfo;

use crate::error::ContractError;
use crate::escrow::transfer;
use crate::state::BALANCES;

/// Most assets one `Claim` pays out; the rest waits for the next claim.
pub const MAX_CLAIM_ASSETS: usize = 30;

/// Pays the sender every balance it holds (up to [`MAX_CLAIM_ASSETS`] assets) and clears them.
pub fn claim(deps: DepsMut, info: MessageInfo) -> Result<Response, ContractError> {
    let owner = info.sender;
    let balances = BALANCES
        .prefix(&owner)
        .range(deps.storage, None, None, Order::Ascending)
        .take(MAX_CLAIM_ASSETS)
        .collect::<StdResult<Vec<(String, Uint128)>>>()?;
    if balances.is_empty() {
        return Err(ContractError::NothingToClaim);
    }
    let mut native = Vec::new();
    let mut response = Response::new()
        .add_attribute("action", "claim")
        .add_attribute("claimant", owner.as_str());
    for (key, amount) in balances {
        BALANCES.remove(deps.storage, (&owner, &key));
        let asset = AssetInfo::from_key(&key)
            .ok_or_else(|| StdError::generic_err(format!("bad asset key {key}")))?;
        response = response.add_attribute("claimed", format!("{amount} {asset}"));
        match asset {
            // Keys sort by denom, so the coins are in the order the bank module requires.
            AssetInfo::Native { denom } => native.push(Coin { denom, amount }),
            cw20 @ AssetInfo::Cw20 { .. } => {
                response = response.add_message(transfer(&owner, &cw20, amount)?)
            }
        }
    }
    if !native.is_empty() {
        response = response.add_message(BankMsg::Send {
            to_address: owner.to_string(),
            amount: native,
        });
    }
    Ok(response)
}
