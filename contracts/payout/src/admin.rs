//! Configuration and IBC channel bindings, the admin's side of the contract.
//!
//! Instantiation and `UpdateConfig` check the whole configuration the same way: a challenge window from 1 s to 30 days (a
//! zero window would let a packet be finalized in the block it reached quorum, before anyone
//! could see it), an expiry longer than the window and at most a year (longer would hold a payer's escrow hostage, and an expiry
//! near `u64::MAX / 1e9` seconds made every deadline overflow and abort every payment), at most
//! [`MAX_ACCEPTED_CW20`] accepted tokens, and 1 to [`MAX_ENTRIES_LIMIT`] entries per packet.
//! Deadlines are computed with checked arithmetic ([`crate::time::later`]) in any case. A
//! request keeps the window and packet limit it was paid under (see [`crate::terms`]), so a
//! configuration change never moves the goalposts of a request already paid.
//!
//! A channel binding says which attestor the packets arriving on a channel vote for, so binding
//! the wrong channel hands that attestor's vote to whoever controls its counterparty. Channels
//! are therefore recorded when their handshake completes on this contract's port
//! (`ibc_channel_connect`, with their connection and counterparty), and `BindChannel` accepts
//! only such an open channel, and only when the admin names the connection and counterparty
//! port it expects. A channel id that does not exist yet cannot be bound, so nobody who opens
//! it later inherits a binding made in advance; a closed channel loses its record and binding.

use cosmwasm_std::{Addr, Api, DepsMut, MessageInfo, Response};
use tributary_types::payout::{
    ChannelBinding, InstantiateMsg, MAX_ACCEPTED_CW20, MAX_CHALLENGE_WINDOW_SECONDS,
    MAX_REQUEST_EXPIRY_SECONDS, MIN_CHALLENGE_WINDOW_SECONDS,
};

use tributary_types::verification::VerificationParams;

use crate::bond;
use crate::error::ContractError;
use crate::state::{Config, CHANNELS, CONFIG, OPEN_CHANNELS, REQUEST_SEQ, VERIFICATION};

/// The largest K (entries per packet) the contract can be configured with.
pub const MAX_ENTRIES_LIMIT: u32 = 64;

/// The optional fields of `ExecuteMsg::UpdateConfig`.
pub struct ConfigUpdate {
    pub admin: Option<String>,
    pub treasury: Option<String>,
    pub challenge_window_seconds: Option<u64>,
    pub request_expiry_seconds: Option<u64>,
    pub accepted_cw20: Option<Vec<String>>,
    pub max_entries: Option<u32>,
}

/// Validates and stores the initial configuration.
pub fn instantiate(
    deps: DepsMut,
    info: MessageInfo,
    msg: InstantiateMsg,
) -> Result<Response, ContractError> {
    let api = deps.api;
    let config = Config {
        admin: match msg.admin {
            Some(admin) => api.addr_validate(&admin)?,
            None => info.sender,
        },
        datanet_contract: api.addr_validate(&msg.datanet_contract)?,
        registry_contract: api.addr_validate(&msg.registry_contract)?,
        treasury: api.addr_validate(&msg.treasury)?,
        challenge_window_seconds: msg.challenge_window_seconds,
        request_expiry_seconds: msg.request_expiry_seconds,
        accepted_cw20: validate_tokens(api, &msg.accepted_cw20)?,
        max_entries: msg.max_entries,
    };
    check_config(&config)?;
    let verification = msg.verification.unwrap_or_else(|| {
        // The defaults, with an unbonding delay that outlasts any challenge of this window.
        let defaults = VerificationParams::defaults();
        let settle =
            config.challenge_window_seconds + defaults.reveal_seconds + defaults.vote_seconds;
        VerificationParams {
            unbonding_seconds: defaults.unbonding_seconds.max(settle),
            ..defaults
        }
    });
    bond::check_params(&verification, config.challenge_window_seconds)?;
    CONFIG.save(deps.storage, &config)?;
    VERIFICATION.save(deps.storage, &verification)?;
    REQUEST_SEQ.save(deps.storage, &0)?;
    Ok(Response::new()
        .add_attribute("action", "instantiate")
        .add_attribute("admin", config.admin)
        .add_attribute("datanet_contract", config.datanet_contract)
        .add_attribute("registry_contract", config.registry_contract)
        .add_attribute("treasury", config.treasury))
}

/// Admin only: changes any subset of the configuration, then checks the result as a whole.
pub fn update_config(
    deps: DepsMut,
    info: MessageInfo,
    update: ConfigUpdate,
) -> Result<Response, ContractError> {
    let mut config = CONFIG.load(deps.storage)?;
    ensure_admin(&config, &info.sender, "update the config")?;
    let api = deps.api;
    if let Some(admin) = update.admin {
        config.admin = api.addr_validate(&admin)?;
    }
    if let Some(treasury) = update.treasury {
        config.treasury = api.addr_validate(&treasury)?;
    }
    if let Some(window) = update.challenge_window_seconds {
        config.challenge_window_seconds = window;
    }
    if let Some(expiry) = update.request_expiry_seconds {
        config.request_expiry_seconds = expiry;
    }
    if let Some(tokens) = update.accepted_cw20 {
        config.accepted_cw20 = validate_tokens(api, &tokens)?;
    }
    if let Some(max_entries) = update.max_entries {
        config.max_entries = max_entries;
    }
    check_config(&config)?;
    // Unbonding must still outlast a challenge under the new window.
    bond::check_params(
        &VERIFICATION.load(deps.storage)?,
        config.challenge_window_seconds,
    )?;
    CONFIG.save(deps.storage, &config)?;
    Ok(Response::new()
        .add_attribute("action", "update_config")
        .add_attribute("admin", config.admin))
}

/// The fields of `ExecuteMsg::BindChannel`.
pub struct ChannelRequest {
    pub channel_id: String,
    pub attestor: String,
    pub connection_id: String,
    pub counterparty_port_id: String,
}

/// Admin only: packets arriving on an open channel are committed on behalf of `attestor`.
pub fn bind_channel(
    deps: DepsMut,
    info: MessageInfo,
    request: ChannelRequest,
) -> Result<Response, ContractError> {
    let config = CONFIG.load(deps.storage)?;
    ensure_admin(&config, &info.sender, "bind a channel")?;
    let attestor = deps.api.addr_validate(&request.attestor)?;
    let channel_id = request.channel_id;
    let open = OPEN_CHANNELS
        .may_load(deps.storage, &channel_id)?
        .ok_or_else(|| ContractError::ChannelNotOpen {
            channel_id: channel_id.clone(),
        })?;
    if open.connection_id != request.connection_id
        || open.counterparty_port_id != request.counterparty_port_id
    {
        return Err(ContractError::ChannelMismatch {
            channel_id,
            connection_id: open.connection_id,
            counterparty_port_id: open.counterparty_port_id,
        });
    }
    let binding = ChannelBinding {
        channel_id: channel_id.clone(),
        attestor,
        connection_id: open.connection_id,
        counterparty_port_id: open.counterparty_port_id,
        counterparty_channel_id: open.counterparty_channel_id,
    };
    CHANNELS.save(deps.storage, &channel_id, &binding)?;
    Ok(Response::new()
        .add_attribute("action", "bind_channel")
        .add_attribute("channel_id", channel_id)
        .add_attribute("attestor", binding.attestor)
        .add_attribute("connection_id", binding.connection_id)
        .add_attribute("counterparty_port_id", binding.counterparty_port_id)
        .add_attribute("counterparty_channel_id", binding.counterparty_channel_id))
}

/// Admin only: packets on `channel_id` are refused from now on.
pub fn unbind_channel(
    deps: DepsMut,
    info: MessageInfo,
    channel_id: String,
) -> Result<Response, ContractError> {
    let config = CONFIG.load(deps.storage)?;
    ensure_admin(&config, &info.sender, "unbind a channel")?;
    if !CHANNELS.has(deps.storage, &channel_id) {
        return Err(ContractError::UnboundChannel { channel_id });
    }
    CHANNELS.remove(deps.storage, &channel_id);
    Ok(Response::new()
        .add_attribute("action", "unbind_channel")
        .add_attribute("channel_id", channel_id))
}

fn ensure_admin(config: &Config, sender: &Addr, action: &'static str) -> Result<(), ContractError> {
    if *sender != config.admin {
        return Err(ContractError::Unauthorized {
            sender: sender.clone(),
            action,
        });
    }
    Ok(())
}

/// Every duration and list is bounded, so no configuration can make a deadline overflow a
/// timestamp (which would abort every payment), let a packet be finalized without any window
/// for a challenge, hold escrow for more than a year, or make the token check unbounded.
fn check_config(config: &Config) -> Result<(), ContractError> {
    let window = config.challenge_window_seconds;
    if !(MIN_CHALLENGE_WINDOW_SECONDS..=MAX_CHALLENGE_WINDOW_SECONDS).contains(&window) {
        return Err(ContractError::InvalidChallengeWindow {
            window,
            min: MIN_CHALLENGE_WINDOW_SECONDS,
            max: MAX_CHALLENGE_WINDOW_SECONDS,
        });
    }
    if config.request_expiry_seconds > MAX_REQUEST_EXPIRY_SECONDS {
        return Err(ContractError::ExpiryTooLong {
            expiry: config.request_expiry_seconds,
            max: MAX_REQUEST_EXPIRY_SECONDS,
        });
    }
    if config.accepted_cw20.len() > MAX_ACCEPTED_CW20 {
        return Err(ContractError::TooManyTokens {
            count: config.accepted_cw20.len(),
            max: MAX_ACCEPTED_CW20,
        });
    }
    if config.request_expiry_seconds <= config.challenge_window_seconds {
        return Err(ContractError::ExpiryNotAfterWindow {
            expiry: config.request_expiry_seconds,
            window: config.challenge_window_seconds,
        });
    }
    if !(1..=MAX_ENTRIES_LIMIT).contains(&config.max_entries) {
        return Err(ContractError::InvalidMaxEntries {
            max_entries: config.max_entries,
            max: MAX_ENTRIES_LIMIT,
        });
    }
    Ok(())
}

/// Validated token addresses, sorted and without repeats.
fn validate_tokens(api: &dyn Api, tokens: &[String]) -> Result<Vec<Addr>, ContractError> {
    // Checked before validating each, so a huge list costs little to refuse.
    if tokens.len() > MAX_ACCEPTED_CW20 {
        return Err(ContractError::TooManyTokens {
            count: tokens.len(),
            max: MAX_ACCEPTED_CW20,
        });
    }
    let mut addrs = tokens
        .iter()
        .map(|t| api.addr_validate(t))
        .collect::<Result<Vec<_>, _>>()?;
    addrs.sort();
    addrs.dedup();
    Ok(addrs)
}
