//! Attribution packets over IBC: an unordered channel of version [`IBC_APP_VERSION`] carries one
//! `AttributionPacket` (JSON) per IBC packet, committed on behalf of the attestor the admin bound
//! to the channel. Channels are recorded when they open and forgotten when they close; only an
//! open channel can be bound (see [`crate::admin`]).

#[cfg(not(feature = "library"))]
use cosmwasm_std::entry_point;
use cosmwasm_std::{
    from_json, DepsMut, Env, Ibc3ChannelOpenResponse, IbcBasicResponse, IbcChannel,
    IbcChannelCloseMsg, IbcChannelConnectMsg, IbcChannelOpenMsg, IbcChannelOpenResponse, IbcOrder,
    IbcPacket, IbcPacketAckMsg, IbcPacketReceiveMsg, IbcPacketTimeoutMsg, IbcReceiveResponse,
    Never, StdAck,
};
use tributary_types::{AttributionPacket, IBC_APP_VERSION};

use crate::attribution::{apply_commit, validate_commit};
use crate::error::ContractError;
use crate::state::{OpenChannel, CHANNELS, CONFIG, OPEN_CHANNELS};

/// Accepts unordered channels of our version; proposes it when the counterparty left it empty.
#[cfg_attr(not(feature = "library"), entry_point)]
pub fn ibc_channel_open(
    _deps: DepsMut,
    _env: Env,
    msg: IbcChannelOpenMsg,
) -> Result<IbcChannelOpenResponse, ContractError> {
    let channel = msg.channel();
    check_order(channel)?;
    if let Some(version) = msg.counterparty_version() {
        check_version(version)?;
    }
    if channel.version.is_empty() {
        return Ok(Some(Ibc3ChannelOpenResponse {
            version: IBC_APP_VERSION.to_string(),
        }));
    }
    check_version(&channel.version)?;
    Ok(None)
}

/// Checks the negotiated channel once more and records it as open with its connection and
/// counterparty; binding it to an attestor is the admin's call (see [`crate::admin`]).
#[cfg_attr(not(feature = "library"), entry_point)]
pub fn ibc_channel_connect(
    deps: DepsMut,
    _env: Env,
    msg: IbcChannelConnectMsg,
) -> Result<IbcBasicResponse, ContractError> {
    let channel = msg.channel();
    check_order(channel)?;
    check_version(&channel.version)?;
    if let Some(version) = msg.counterparty_version() {
        check_version(version)?;
    }
    let open = OpenChannel {
        connection_id: channel.connection_id.clone(),
        counterparty_port_id: channel.counterparty_endpoint.port_id.clone(),
        counterparty_channel_id: channel.counterparty_endpoint.channel_id.clone(),
    };
    OPEN_CHANNELS.save(deps.storage, &channel.endpoint.channel_id, &open)?;
    Ok(IbcBasicResponse::new()
        .add_attribute("action", "ibc_channel_connect")
        .add_attribute("channel_id", channel.endpoint.channel_id.as_str())
        .add_attribute("connection_id", open.connection_id)
        .add_attribute("counterparty_port_id", open.counterparty_port_id)
        .add_attribute("counterparty_channel_id", open.counterparty_channel_id))
}

/// A closed channel carries no more packets; its binding goes with it.
#[cfg_attr(not(feature = "library"), entry_point)]
pub fn ibc_channel_close(
    deps: DepsMut,
    _env: Env,
    msg: IbcChannelCloseMsg,
) -> Result<IbcBasicResponse, ContractError> {
    let channel_id = msg.channel().endpoint.channel_id.as_str();
    let binding = CHANNELS.may_load(deps.storage, channel_id)?;
    CHANNELS.remove(deps.storage, channel_id);
    OPEN_CHANNELS.remove(deps.storage, channel_id);
    let mut response = IbcBasicResponse::new()
        .add_attribute("action", "ibc_channel_close")
        .add_attribute("channel_id", channel_id);
    if let Some(binding) = binding {
        response = response.add_attribute("attestor", binding.attestor);
    }
    Ok(response)
}

/// Commits the packet for the channel's attestor. A bad packet is acknowledged with an error and
/// changes nothing; returning `Err` instead would fail the relayer's transaction and leave the
/// packet unacknowledged.
#[cfg_attr(not(feature = "library"), entry_point)]
pub fn ibc_packet_receive(
    deps: DepsMut,
    env: Env,
    msg: IbcPacketReceiveMsg,
) -> Result<IbcReceiveResponse, Never> {
    let channel_id = msg.packet.dest.channel_id.clone();
    Ok(match receive(deps, env, &msg.packet) {
        Ok(response) => response,
        Err(err) => IbcReceiveResponse::new(StdAck::error(err.to_string()))
            .add_attribute("action", "ibc_packet_receive")
            .add_attribute("channel_id", channel_id)
            .add_attribute("success", "false")
            .add_attribute("error", err.to_string()),
    })
}

/// This contract sends no packets, so there is nothing to do on an acknowledgement.
#[cfg_attr(not(feature = "library"), entry_point)]
pub fn ibc_packet_ack(
    _deps: DepsMut,
    _env: Env,
    _msg: IbcPacketAckMsg,
) -> Result<IbcBasicResponse, ContractError> {
    Ok(IbcBasicResponse::new().add_attribute("action", "ibc_packet_ack"))
}

/// This contract sends no packets, so none can time out.
#[cfg_attr(not(feature = "library"), entry_point)]
pub fn ibc_packet_timeout(
    _deps: DepsMut,
    _env: Env,
    _msg: IbcPacketTimeoutMsg,
) -> Result<IbcBasicResponse, ContractError> {
    Ok(IbcBasicResponse::new().add_attribute("action", "ibc_packet_timeout"))
}

/// Validates everything before the first write, so an `Err` here means nothing was stored.
fn receive(
    deps: DepsMut,
    env: Env,
    packet: &IbcPacket,
) -> Result<IbcReceiveResponse, ContractError> {
    let channel_id = &packet.dest.channel_id;
    let attestor = CHANNELS
        .may_load(deps.storage, channel_id)?
        .ok_or_else(|| ContractError::UnboundChannel {
            channel_id: channel_id.clone(),
        })?
        .attestor;
    let attribution: AttributionPacket = from_json(&packet.data)?;
    let config = CONFIG.load(deps.storage)?;
    let commit = validate_commit(deps.as_ref(), &env, &config, &attestor, attribution)?;
    let event = apply_commit(deps.storage, &commit)?;
    Ok(IbcReceiveResponse::new(StdAck::success(b"\x01"))
        .add_attribute("action", "ibc_packet_receive")
        .add_attribute("channel_id", channel_id.as_str())
        .add_attribute("success", "true")
        .add_event(event))
}

fn check_order(channel: &IbcChannel) -> Result<(), ContractError> {
    match &channel.order {
        IbcOrder::Unordered => Ok(()),
        order => Err(ContractError::OrderedChannel {
            order: order.clone(),
        }),
    }
}

fn check_version(version: &str) -> Result<(), ContractError> {
    if version != IBC_APP_VERSION {
        return Err(ContractError::InvalidIbcVersion {
            version: version.to_string(),
            expected: IBC_APP_VERSION.to_string(),
        });
    }
    Ok(())
}
