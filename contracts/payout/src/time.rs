//! Deadline arithmetic that cannot overflow a timestamp.

use cosmwasm_std::{OverflowError, OverflowOperation, Timestamp};

use crate::error::ContractError;

/// `time` plus `seconds`, or an error where `Timestamp::plus_seconds` would panic.
pub fn later(time: Timestamp, seconds: u64) -> Result<Timestamp, ContractError> {
    let overflow = || OverflowError::new(OverflowOperation::Add);
    let nanos = seconds
        .checked_mul(1_000_000_000)
        .and_then(|delta| time.nanos().checked_add(delta))
        .ok_or_else(overflow)?;
    Ok(Timestamp::from_nanos(nanos))
}
