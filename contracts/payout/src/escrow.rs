//! Paying for inferences (native coins or a cw20 `Send`) and refunding expired requests.

use cosmwasm_std::{
    coins, from_json, to_json_binary, Addr, BankMsg, CosmosMsg, DepsMut, Env, Event, HexBinary,
    MessageInfo, Response, StdError, Storage, Uint128, WasmMsg,
};
use cw20::{Cw20ExecuteMsg, Cw20ReceiveMsg};
use tributary_types::hash::hash32;
use tributary_types::payout::{InferenceRequest, ReceiveMsg, RequestStatus, RequestTerms};
use tributary_types::AssetInfo;

use crate::error::ContractError;
use crate::state::{Config, CONFIG, REQUESTS, REQUEST_SEQ};
use crate::terms;
use crate::time::later;

/// Native payment: escrows exactly the price from `info.funds` and refunds the excess.
pub fn request_inference(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    model_id: u64,
    version: u32,
    prompt_hash: HexBinary,
) -> Result<Response, ContractError> {
    hash32(&prompt_hash)?;
    let config = CONFIG.load(deps.storage)?;
    let terms = terms::snapshot(deps.as_ref(), &config, model_id, version)?;
    let price = terms.price.clone();
    let AssetInfo::Native { denom } = &price.asset else {
        return Err(ContractError::WrongPaymentAsset {
            expected: price.asset,
        });
    };
    let mut paid = Uint128::zero();
    for coin in &info.funds {
        if coin.denom != *denom {
            return Err(ContractError::UnexpectedFunds {
                denom: coin.denom.clone(),
                expected: denom.clone(),
            });
        }
        paid = paid.checked_add(coin.amount)?;
    }
    let excess = excess_over(paid, price.amount)?;
    let purchase = Purchase {
        payer: info.sender,
        model_id,
        version,
        prompt_hash,
        terms,
    };
    open_request(deps, &env, &config, purchase, excess)
}

/// cw20 payment through `Send`: `info.sender` is the token, the payer is the sender of the `Send`.
pub fn receive_cw20(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    receive: Cw20ReceiveMsg,
) -> Result<Response, ContractError> {
    let config = CONFIG.load(deps.storage)?;
    let token = info.sender;
    if !config.accepted_cw20.contains(&token) {
        return Err(ContractError::TokenNotAccepted { token });
    }
    let payer = deps.api.addr_validate(&receive.sender)?;
    let (model_id, version, prompt_hash) = match from_json(&receive.msg)? {
        ReceiveMsg::RequestInference {
            model_id,
            version,
            prompt_hash,
        } => (model_id, version, prompt_hash),
        ReceiveMsg::Deposit {} => {
            return crate::credit::deposit_cw20(deps, payer, &token, receive.amount)
        }
    };
    hash32(&prompt_hash)?;
    let terms = terms::snapshot(deps.as_ref(), &config, model_id, version)?;
    if terms.price.asset != AssetInfo::cw20(token.as_str()) {
        return Err(ContractError::WrongPaymentAsset {
            expected: terms.price.asset,
        });
    }
    let excess = excess_over(receive.amount, terms.price.amount)?;
    let purchase = Purchase {
        payer,
        model_id,
        version,
        prompt_hash,
        terms,
    };
    open_request(deps, &env, &config, purchase, excess)
}

/// Anyone, after expiry: returns the escrow of a request no attestor committed to its payer.
pub fn refund(deps: DepsMut, env: Env, request_id: u64) -> Result<Response, ContractError> {
    let mut request = load_open_request(deps.storage, request_id)?;
    if env.block.time < request.expires_at {
        return Err(ContractError::NotExpired {
            id: request_id,
            expires_at: request.expires_at,
        });
    }
    // An authorized attestor committed, so the inference was served: it is settled, never
    // refunded (see `crate::settlement`). Only a request nobody attested returns the fee.
    if request.distinct_packets > 0 {
        return Err(ContractError::NotRefundable { id: request_id });
    }
    request.status = RequestStatus::Refunded;
    REQUESTS.save(deps.storage, request_id, &request)?;
    let response = Response::new()
        .add_attribute("action", "refund")
        .add_attribute("request_id", request_id.to_string())
        .add_attribute("payer", request.payer.as_str())
        .add_attribute("amount", request.price.amount)
        .add_attribute("asset", request.price.asset.to_string());
    return_escrow(response, &request)
}

/// `response` with the transfer of `request`'s escrow back to its payer (none when it is zero).
pub fn return_escrow(
    response: Response,
    request: &InferenceRequest,
) -> Result<Response, ContractError> {
    if request.price.amount.is_zero() {
        return Ok(response);
    }
    Ok(response.add_message(transfer(
        &request.payer,
        &request.price.asset,
        request.price.amount,
    )?))
}

/// The request `id`, unless it is unknown or already finalized or refunded.
pub fn load_open_request(
    storage: &dyn Storage,
    id: u64,
) -> Result<InferenceRequest, ContractError> {
    let request = REQUESTS
        .may_load(storage, id)?
        .ok_or(ContractError::UnknownRequest { id })?;
    if matches!(
        request.status,
        RequestStatus::Finalized | RequestStatus::Refunded
    ) {
        return Err(ContractError::RequestClosed {
            id,
            status: request.status,
        });
    }
    Ok(request)
}

/// A message paying `amount` of `asset` from this contract to `recipient`.
pub fn transfer(
    recipient: &Addr,
    asset: &AssetInfo,
    amount: Uint128,
) -> Result<CosmosMsg, ContractError> {
    Ok(match asset {
        AssetInfo::Native { denom } => BankMsg::Send {
            to_address: recipient.to_string(),
            amount: coins(amount.u128(), denom),
        }
        .into(),
        AssetInfo::Cw20 { address } => WasmMsg::Execute {
            contract_addr: address.clone(),
            msg: to_json_binary(&Cw20ExecuteMsg::Transfer {
                recipient: recipient.to_string(),
                amount,
            })?,
            funds: vec![],
        }
        .into(),
    })
}

/// What was paid beyond the price; paying less is an error.
fn excess_over(paid: Uint128, price: Uint128) -> Result<Uint128, ContractError> {
    paid.checked_sub(price)
        .map_err(|_| ContractError::InsufficientPayment { paid, price })
}

/// What a payer bought: one inference on a model version, under the version's terms.
pub(crate) struct Purchase {
    pub payer: Addr,
    pub model_id: u64,
    pub version: u32,
    pub prompt_hash: HexBinary,
    pub terms: RequestTerms,
}

/// Stores the new request and answers with its event and the refund of any excess.
fn open_request(
    deps: DepsMut,
    env: &Env,
    config: &Config,
    purchase: Purchase,
    excess: Uint128,
) -> Result<Response, ContractError> {
    let request = store_request(deps.storage, env, config, purchase)?;
    let mut response = request_response(&request).add_attribute("refunded", excess);
    if !excess.is_zero() {
        response = response.add_message(transfer(&request.payer, &request.price.asset, excess)?);
    }
    Ok(response)
}

/// Stores a new paid request under the next id, with its terms.
pub(crate) fn store_request(
    storage: &mut dyn Storage,
    env: &Env,
    config: &Config,
    purchase: Purchase,
) -> Result<InferenceRequest, ContractError> {
    let id = REQUEST_SEQ
        .load(storage)?
        .checked_add(1)
        .ok_or_else(|| StdError::generic_err("request ids exhausted"))?;
    REQUEST_SEQ.save(storage, &id)?;
    let created_at = env.block.time;
    let request = InferenceRequest {
        id,
        payer: purchase.payer,
        model_id: purchase.model_id,
        model_version: purchase.version,
        prompt_hash: purchase.prompt_hash,
        price: purchase.terms.price.clone(),
        created_at,
        expires_at: later(created_at, config.request_expiry_seconds)?,
        status: RequestStatus::Open,
        agreed_packet: None,
        finalizable_at: None,
        distinct_packets: 0,
        settlement: None,
    };
    REQUESTS.save(storage, id, &request)?;
    terms::save(storage, id, &purchase.terms)?;
    Ok(request)
}

/// The request's attributes, on the contract's `wasm` event (`action=request_inference`) and on
/// a `wasm-inference_requested` event for subscribers that filter by event type.
fn request_response(request: &InferenceRequest) -> Response {
    Response::new()
        .add_attribute("action", "request_inference")
        .add_attributes(request_attributes(request))
        .add_event(request_event(request))
}

/// The `wasm-inference_requested` event of a new request.
pub(crate) fn request_event(request: &InferenceRequest) -> Event {
    Event::new("inference_requested").add_attributes(request_attributes(request))
}

fn request_attributes(request: &InferenceRequest) -> Vec<(&'static str, String)> {
    vec![
        ("request_id", request.id.to_string()),
        ("model_id", request.model_id.to_string()),
        ("version", request.model_version.to_string()),
        ("payer", request.payer.to_string()),
        ("amount", request.price.amount.to_string()),
        ("asset", request.price.asset.to_string()),
        ("prompt_hash", request.prompt_hash.to_hex()),
        ("expires_at", request.expires_at.seconds().to_string()),
    ]
}
