//! The client's one error type, and how chain failures (CheckTx, DeliverTx, simulation and
//! query logs) become variants a caller can act on.

use thiserror::Error;

/// Every way a client call can fail.
#[derive(Error, Debug)]
pub enum Error {
    #[error("node at {url} does not answer: {reason}")]
    NodeUnreachable { url: String, reason: String },

    #[error("node is on chain {actual:?}, the configuration expects {expected:?}")]
    WrongChainId { expected: String, actual: String },

    #[error("invalid configuration: {0}")]
    Config(String),

    #[error("invalid mnemonic: {0}")]
    Mnemonic(String),

    #[error("key derivation failed: {0}")]
    Key(String),

    #[error("{address:?} is not a valid address: {reason}")]
    InvalidAddress { address: String, reason: String },

    #[error("account {address} does not exist on chain (it has never received funds)")]
    UnknownAccount { address: String },

    #[error("insufficient funds: {message}")]
    InsufficientFunds { message: String },

    #[error("out of gas (gas wanted {gas_wanted}, gas used {gas_used}): {message}")]
    OutOfGas {
        gas_wanted: u64,
        gas_used: u64,
        message: String,
    },

    #[error("fee too low: {message}")]
    FeeTooLow { message: String },

    #[error("account sequence mismatch (chain expects {expected:?}): {message}")]
    SequenceMismatch {
        expected: Option<u64>,
        message: String,
    },

    /// The contract refused the message or query; `message` is the contract's own error text.
    #[error("contract error: {message}")]
    Contract { message: String },

    /// Any other failure the chain reports with a code.
    #[error("transaction failed ({codespace} code {code}): {log}")]
    TxFailed {
        codespace: String,
        code: u32,
        log: String,
        /// The transaction's hash when it reached a block.
        hash: Option<String>,
    },

    /// Any other failure of an ABCI query.
    #[error("query {path} failed ({codespace} code {code}): {log}")]
    QueryFailed {
        path: String,
        codespace: String,
        code: u32,
        log: String,
    },

    #[error("transaction {hash} was not included before the confirmation timeout")]
    ConfirmTimeout { hash: String },

    #[error("RPC error: {0}")]
    Rpc(String),

    #[error("decoding failed: {0}")]
    Decode(String),

    #[error("encoding failed: {0}")]
    Encode(String),
}

impl From<tendermint_rpc::Error> for Error {
    fn from(e: tendermint_rpc::Error) -> Self {
        Error::Rpc(e.to_string())
    }
}

impl From<prost::DecodeError> for Error {
    fn from(e: prost::DecodeError) -> Self {
        Error::Decode(e.to_string())
    }
}

/// Where a failure was reported; simulation and queries lose the original code (the SDK rewraps
/// them as gRPC errors), so their text decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    Tx,
    Simulate,
    Query,
}

/// The SDK's own codespace and the codes a caller can act on.
const SDK: &str = "sdk";
const SDK_INSUFFICIENT_FUNDS: u32 = 5;
const SDK_OUT_OF_GAS: u32 = 11;
const SDK_INSUFFICIENT_FEE: u32 = 13;
const SDK_WRONG_SEQUENCE: u32 = 32;

/// The suffixes wasmd appends to a contract's own error text (`x/wasm/types/errors.go`).
const CONTRACT_FAILURES: [&str; 4] = [
    ": execute wasm contract failed",
    ": instantiate wasm contract failed",
    ": query wasm contract failed",
    ": migrate wasm contract failed",
];

/// Turns a failure the chain reported (code, codespace, log) into a typed error.
pub(crate) fn chain_error(
    stage: Stage,
    codespace: &str,
    code: u32,
    log: &str,
    gas: (u64, u64),
) -> Error {
    if let Some(message) = contract_message(log) {
        return Error::Contract { message };
    }
    let sdk = codespace == SDK && stage == Stage::Tx;
    let text = log.to_ascii_lowercase();
    let message = clean_log(log);
    if (sdk && code == SDK_WRONG_SEQUENCE) || text.contains("account sequence mismatch") {
        return Error::SequenceMismatch {
            expected: number_after(log, "expected "),
            message,
        };
    }
    if (sdk && code == SDK_OUT_OF_GAS) || text.contains("out of gas") {
        let (gas_wanted, gas_used) = (
            number_after(log, "gasWanted: ").unwrap_or(gas.0),
            number_after(log, "gasUsed: ").unwrap_or(gas.1),
        );
        return Error::OutOfGas {
            gas_wanted,
            gas_used,
            message,
        };
    }
    if (sdk && code == SDK_INSUFFICIENT_FEE) || text.contains("insufficient fee") {
        return Error::FeeTooLow { message };
    }
    if (sdk && code == SDK_INSUFFICIENT_FUNDS) || text.contains(": insufficient funds") {
        return Error::InsufficientFunds { message };
    }
    if let Some(address) = unknown_account(log) {
        return Error::UnknownAccount { address };
    }
    Error::TxFailed {
        codespace: codespace.to_string(),
        code,
        log: log.to_string(),
        hash: None,
    }
}

/// Like [`chain_error`] for an ABCI query at `path`: unclassified failures keep the path.
pub(crate) fn query_error(path: &str, codespace: &str, code: u32, log: &str) -> Error {
    match chain_error(Stage::Query, codespace, code, log, (0, 0)) {
        Error::TxFailed { .. } => Error::QueryFailed {
            path: path.to_string(),
            codespace: codespace.to_string(),
            code,
            log: log.to_string(),
        },
        other => other,
    }
}

/// The contract's own error text in a wasm failure log:
/// `failed to execute message; message index: 0: <contract error>: execute wasm contract failed`.
pub(crate) fn contract_message(log: &str) -> Option<String> {
    let end = CONTRACT_FAILURES
        .iter()
        .filter_map(|suffix| log.rfind(suffix))
        .max()?;
    let head = &log[..end];
    // Everything the SDK put before the contract's text ends with "message index: N: " (a tx or a
    // simulation) or with gRPC's "desc = " (a query or a simulation).
    let start = [
        marker_end(head, "message index: "),
        marker_end(head, "desc = "),
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(0);
    Some(head[start..].trim().to_string())
}

/// The end of `marker` and the number and ": " after it, if present.
fn marker_end(text: &str, marker: &str) -> Option<usize> {
    let at = text.find(marker)? + marker.len();
    if marker == "desc = " {
        return Some(at);
    }
    let rest = &text[at..];
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let rest = &rest[digits..];
    Some(at + digits + if rest.starts_with(": ") { 2 } else { 0 })
}

/// The first unsigned number after `marker` in `text`.
fn number_after(text: &str, marker: &str) -> Option<u64> {
    let rest = &text[text.find(marker)? + marker.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The address in "account <addr> not found" (queries) or "account <addr> does not exist" (ante).
fn unknown_account(log: &str) -> Option<String> {
    for (prefix, suffix) in [("account ", " not found"), ("account ", " does not exist")] {
        if let Some(end) = log.find(suffix) {
            let head = &log[..end];
            if let Some(start) = head.rfind(prefix) {
                let address = head[start + prefix.len()..].trim();
                if !address.is_empty() && !address.contains(' ') {
                    return Some(address.to_string());
                }
            }
        }
    }
    None
}

/// A log without the gRPC wrapper of simulation and query failures.
fn clean_log(log: &str) -> String {
    match log.find("desc = ") {
        Some(at) if log.starts_with("rpc error:") => log[at + "desc = ".len()..].to_string(),
        _ => log.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WASM: &str = "wasm";

    // Logs as wasmd v0.61 / SDK v0.53 write them.

    #[test]
    fn a_contract_error_in_deliver_tx_keeps_the_contracts_text() {
        let log = "failed to execute message; message index: 0: content \
                   9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 is already \
                   contribution 1 of datanet 1: execute wasm contract failed";
        let e = chain_error(Stage::Tx, WASM, 5, log, (0, 0));
        assert!(
            matches!(e, Error::Contract { ref message } if message ==
            "content 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 is already contribution 1 of datanet 1"),
            "{e:?}"
        );
    }

    #[test]
    fn a_contract_error_in_a_later_message_and_instantiate() {
        let log = "failed to execute message; message index: 2: Generic error: bad: thing: \
                   instantiate wasm contract failed";
        let e = chain_error(Stage::Tx, WASM, 4, log, (0, 0));
        assert!(
            matches!(e, Error::Contract { ref message } if message == "Generic error: bad: thing"),
            "{e:?}"
        );
    }

    #[test]
    fn a_contract_error_during_simulation_is_a_contract_error() {
        let log = "rpc error: code = Unknown desc = failed to execute message; message index: 0: \
                   datanet 7 does not exist: execute wasm contract failed with gas used: '81234': \
                   unknown request";
        let e = chain_error(Stage::Simulate, SDK, 6, log, (0, 0));
        assert!(
            matches!(e, Error::Contract { ref message } if message == "datanet 7 does not exist"),
            "{e:?}"
        );
    }

    #[test]
    fn a_failed_smart_query_is_a_contract_error() {
        let log = "rpc error: code = Unknown desc = contribution 42 does not exist: query wasm \
                   contract failed: unknown request";
        let e = query_error("/cosmwasm.wasm.v1.Query/SmartContractState", SDK, 6, log);
        assert!(
            matches!(e, Error::Contract { ref message } if message == "contribution 42 does not exist"),
            "{e:?}"
        );
    }

    #[test]
    fn sdk_codes_become_typed_errors() {
        let seq = "account sequence mismatch, expected 7, got 5: incorrect account sequence";
        assert!(matches!(
            chain_error(Stage::Tx, SDK, 32, seq, (0, 0)),
            Error::SequenceMismatch {
                expected: Some(7),
                ..
            }
        ));
        let fee = "insufficient fees; got: 0utrib required: 5000utrib: insufficient fee";
        assert!(matches!(
            chain_error(Stage::Tx, SDK, 13, fee, (0, 0)),
            Error::FeeTooLow { .. }
        ));
        let gas = "out of gas in location: WriteFlat; gasWanted: 90000, gasUsed: 90567: out of gas";
        assert!(matches!(
            chain_error(Stage::Tx, SDK, 11, gas, (90000, 90567)),
            Error::OutOfGas {
                gas_wanted: 90000,
                gas_used: 90567,
                ..
            }
        ));
        let funds = "spendable balance 10utrib is smaller than 5000utrib: insufficient funds";
        assert!(matches!(
            chain_error(Stage::Tx, SDK, 5, funds, (0, 0)),
            Error::InsufficientFunds { .. }
        ));
        let other = "signature verification failed; please verify account number (3) and chain-id \
                     (tributary-devnet-1): unauthorized";
        assert!(matches!(
            chain_error(Stage::Tx, SDK, 4, other, (0, 0)),
            Error::TxFailed { code: 4, .. }
        ));
    }

    #[test]
    fn simulation_failures_are_classified_by_text() {
        let seq = "rpc error: code = Unknown desc = account sequence mismatch, expected 3, got 2: \
                   incorrect account sequence with gas used: '1234': unknown request";
        assert!(matches!(
            chain_error(Stage::Simulate, SDK, 6, seq, (0, 0)),
            Error::SequenceMismatch {
                expected: Some(3),
                ..
            }
        ));
        let funds =
            "rpc error: code = Unknown desc = failed to execute message; message index: 0: \
                     spendable balance 0utrib is smaller than 5utrib: insufficient funds with gas \
                     used: '50000': unknown request";
        assert!(matches!(
            chain_error(Stage::Simulate, SDK, 6, funds, (0, 0)),
            Error::InsufficientFunds { .. }
        ));
    }

    #[test]
    fn a_missing_account_names_its_address() {
        let log = "rpc error: code = NotFound desc = account trib1qqqq not found: key not found";
        let e = query_error("/cosmos.auth.v1beta1.Query/AccountInfo", SDK, 22, log);
        assert!(
            matches!(e, Error::UnknownAccount { ref address } if address == "trib1qqqq"),
            "{e:?}"
        );
    }

    #[test]
    fn unclassified_query_failures_keep_the_path() {
        let log = "rpc error: code = InvalidArgument desc = no such contract: invalid request";
        let e = query_error("/cosmwasm.wasm.v1.Query/ContractInfo", SDK, 18, log);
        assert!(matches!(e, Error::QueryFailed { code: 18, .. }), "{e:?}");
    }
}
