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

    /// Any other failure of a transaction's simulation (the SDK reports those all as
    /// `sdk` code 6, so only the text tells them apart).
    #[error("simulation failed: {message}")]
    Simulation { message: String },

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

    #[error("the chain made no block after height {height} before the confirmation timeout")]
    BlockTimeout { height: u64 },

    /// A governance proposal this client submitted did not take effect in time.
    #[error("proposal {proposal_id} did not pass: {reason}")]
    ProposalNotPassed { proposal_id: u64, reason: String },

    #[error("RPC error: {0}")]
    Rpc(String),

    #[error("decoding failed: {0}")]
    Decode(String),
    /// A wasm artifact or deployment file is missing, unreadable or does not match its checksum.
    #[error("artifact: {0}")]
    Artifact(String),

    #[error("encoding failed: {0}")]
    Encode(String),

    /// No transaction the node holds carries settlement batch `batch_id` as the contract
    /// recorded it (the node prunes or does not index transactions, or the batch is unknown).
    #[error("settlement batch {batch_id}'s inferences are not available: {reason}")]
    BatchUnavailable { batch_id: u64, reason: String },

    #[error("gateway at {url} does not answer: {reason}")]
    GatewayUnreachable { url: String, reason: String },

    /// The gateway refused with `status`; `message` is its reason.
    #[error("gateway at {url} refused ({status}): {message}")]
    GatewayRefused {
        url: String,
        status: u16,
        message: String,
    },

    #[error("gateway at {url} had no completion for request {request_id} after {waited_s} s ({last}); the prompt stays queued there: read it later")]
    GatewayTimeout {
        url: String,
        request_id: u64,
        waited_s: u64,
        last: String,
    },

    #[error("no attestor of model {model_id} version {version} publishes a gateway; pass one")]
    NoGateway { model_id: u64, version: u32 },

    /// A dry run: the transaction was simulated, not broadcast.
    #[error("dry run: simulated at {gas_used} gas; a {gas_limit} gas limit would pay {fee}")]
    DryRun {
        gas_used: u64,
        gas_limit: u64,
        fee: String,
    },
}

impl From<tendermint_rpc::Error> for Error {
    fn from(e: tendermint_rpc::Error) -> Self {
        Error::Rpc(rpc_reason(&e))
    }
}

/// What went wrong in an RPC call, without the backtrace that `tendermint_rpc::Error`'s
/// `Display` appends when `RUST_BACKTRACE` is set.
pub(crate) fn rpc_reason(e: &tendermint_rpc::Error) -> String {
    e.detail().to_string()
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
    if stage == Stage::Simulate {
        return Error::Simulation { message };
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

/// A log without what the SDK wraps around simulation and query failures: the gRPC prefix, the
/// gas trailer and source locations such as `[cosmos/cosmos-sdk@v0.53.6/x/bank/keeper/send.go:298]`.
fn clean_log(log: &str) -> String {
    let mut text = log;
    if text.starts_with("rpc error:") {
        if let Some(at) = text.find("desc = ") {
            text = &text[at + "desc = ".len()..];
        }
    }
    if let Some(at) = text.rfind(" with gas used: '") {
        text = &text[..at];
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(" [") {
        match rest[start..].find(']') {
            Some(len) if rest[start..start + len].contains(".go:") => {
                out.push_str(&rest[..start]);
                rest = &rest[start + len + 1..];
            }
            _ => {
                out.push_str(&rest[..start + 2]);
                rest = &rest[start + 2..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Logs exactly as tributaryd (wasmd v0.61.14, Cosmos SDK v0.53.6) wrote them in the live tests.

    const DUPLICATE: &str =
        "content 350856c0e1b3f3d7aefa1f11bce8a012a05cd6a79a629e3f663b40fee3600f15 \
                             is already contribution 1 of datanet 1";

    #[test]
    fn a_contract_error_in_a_block_keeps_the_contracts_text() {
        let log = "failed to execute message; message index: 0: content \
                   350856c0e1b3f3d7aefa1f11bce8a012a05cd6a79a629e3f663b40fee3600f15 is already \
                   contribution 1 of datanet 1: execute wasm contract failed";
        let e = chain_error(Stage::Tx, "wasm", 5, log, (400_000, 150_000));
        assert!(
            matches!(e, Error::Contract { ref message } if message == DUPLICATE),
            "{e:?}"
        );
    }

    #[test]
    fn a_contract_error_during_simulation_is_a_contract_error() {
        let log = "rpc error: code = Unknown desc = failed to execute message; message index: 0: \
                   content 350856c0e1b3f3d7aefa1f11bce8a012a05cd6a79a629e3f663b40fee3600f15 is \
                   already contribution 1 of datanet 1: execute wasm contract failed \
                   [CosmWasm/wasmd/x/wasm/keeper/keeper.go:452] with gas used: '119253': unknown \
                   request";
        let e = chain_error(Stage::Simulate, "sdk", 6, log, (0, 0));
        assert!(
            matches!(e, Error::Contract { ref message } if message == DUPLICATE),
            "{e:?}"
        );
    }

    #[test]
    fn a_refused_smart_query_is_a_contract_error() {
        let log = "contribution 9999 does not exist: query wasm contract failed: unknown request";
        let e = query_error("/cosmwasm.wasm.v1.Query/SmartContractState", "sdk", 6, log);
        assert!(
            matches!(e, Error::Contract { ref message } if message == "contribution 9999 does not exist"),
            "{e:?}"
        );
    }

    #[test]
    fn contract_text_after_a_later_message_index_and_with_colons() {
        // wasmd's format for the third message of a tx whose contract error has colons in it.
        let log = "failed to execute message; message index: 2: Generic error: bad: thing: \
                   instantiate wasm contract failed";
        let e = chain_error(Stage::Tx, "wasm", 4, log, (0, 0));
        assert!(
            matches!(e, Error::Contract { ref message } if message == "Generic error: bad: thing"),
            "{e:?}"
        );
    }

    #[test]
    fn check_tx_failures_become_typed_errors() {
        let fee = "insufficient fees; got:  required: 1606utrib: insufficient fee";
        let e = chain_error(Stage::Tx, "sdk", 13, fee, (64_202, 0));
        assert!(
            matches!(e, Error::FeeTooLow { ref message } if message == fee),
            "{e:?}"
        );

        let gas = "out of gas in location: ReadFlat; gasWanted: 5000, gasUsed: 5429: out of gas";
        assert!(matches!(
            chain_error(Stage::Tx, "sdk", 11, gas, (5000, 0)),
            Error::OutOfGas {
                gas_wanted: 5000,
                gas_used: 5429,
                ..
            }
        ));

        let other = "failed to execute message; message index: 0: 0utrib: invalid coins";
        assert!(matches!(
            chain_error(Stage::Tx, "sdk", 10, other, (200_000, 60_000)),
            Error::TxFailed { code: 10, ref log, .. } if log == other
        ));
    }

    #[test]
    fn deliver_tx_out_of_gas_in_a_contract() {
        let log =
            "out of gas in location: wasm contract; gasWanted: 137955, gasUsed: 138802: out of gas";
        assert!(matches!(
            chain_error(Stage::Tx, "sdk", 11, log, (137_955, 138_802)),
            Error::OutOfGas {
                gas_wanted: 137_955,
                gas_used: 138_802,
                ..
            }
        ));
    }

    #[test]
    fn simulation_failures_are_classified_by_their_text() {
        let seq = "rpc error: code = Unknown desc = account sequence mismatch, expected 2, got 1: \
                   incorrect account sequence [cosmos/cosmos-sdk@v0.53.6/x/auth/ante/sigverify.go:364] \
                   with gas used: '32195': unknown request";
        let e = chain_error(Stage::Simulate, "sdk", 6, seq, (0, 0));
        assert!(
            matches!(
                e,
                Error::SequenceMismatch { expected: Some(2), ref message }
                    if message == "account sequence mismatch, expected 2, got 1: incorrect account sequence"
            ),
            "{e:?}"
        );

        let funds =
            "rpc error: code = Unknown desc = failed to execute message; message index: 0: \
                     spendable balance 12344utrib is smaller than 1000000utrib: insufficient funds \
                     [cosmos/cosmos-sdk@v0.53.6/x/bank/keeper/send.go:298] with gas used: '66413': \
                     unknown request";
        let e = chain_error(Stage::Simulate, "sdk", 6, funds, (0, 0));
        assert!(
            matches!(
                e,
                Error::InsufficientFunds { ref message } if message == "failed to execute message; \
                    message index: 0: spendable balance 12344utrib is smaller than 1000000utrib: \
                    insufficient funds"
            ),
            "{e:?}"
        );

        let invalid = "rpc error: code = Unknown desc = failed to execute message; message index: \
                       0: 0utrib: invalid coins \
                       [cosmos/cosmos-sdk@v0.53.6/x/bank/keeper/msg_server.go:49] with gas used: \
                       '61846': unknown request";
        let e = chain_error(Stage::Simulate, "sdk", 6, invalid, (0, 0));
        assert!(
            matches!(
                e,
                Error::Simulation { ref message }
                    if message == "failed to execute message; message index: 0: 0utrib: invalid coins"
            ),
            "{e:?}"
        );
    }

    #[test]
    fn a_missing_account_names_its_address() {
        let log = "rpc error: code = NotFound desc = account \
                   trib18pz45j9fupuumnf2a5hamgaptvax0s0djymqpw not found: key not found";
        let e = query_error("/cosmos.auth.v1beta1.Query/AccountInfo", "sdk", 22, log);
        assert!(
            matches!(
                e,
                Error::UnknownAccount { ref address } if address == "trib18pz45j9fupuumnf2a5hamgaptvax0s0djymqpw"
            ),
            "{e:?}"
        );
    }

    #[test]
    fn unclassified_query_failures_keep_the_path() {
        let log = "address trib1dsx9ruurlz7cxydz5q64dv9tmsvs62jnnxacv6: no such contract: unknown \
                   request";
        let e = query_error("/cosmwasm.wasm.v1.Query/ContractInfo", "sdk", 6, log);
        assert!(
            matches!(e, Error::QueryFailed { code: 6, ref path, .. } if path.ends_with("ContractInfo")),
            "{e:?}"
        );
    }
}
