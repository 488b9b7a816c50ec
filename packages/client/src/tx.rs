//! Signed transactions: simulation, fees, SIGN_MODE_DIRECT signing, broadcast, sequence
//! re-sync and confirmation.

use crate::client::Account;
use crate::error::{chain_error, Stage};
use crate::events::Event;
use crate::{Client, Error, Signer};
use cosmrs::proto::cosmos::tx::v1beta1::{SimulateRequest, SimulateResponse};
use cosmrs::tendermint::abci::Code;
use cosmrs::tx::{Body, Fee, SignDoc, SignerInfo};
use cosmrs::{Any, Coin};
use prost::Message as _;
use std::time::{Duration, Instant};
use tendermint_rpc::Client as _;

/// How often confirmation asks the node for the transaction.
const CONFIRM_POLL: Duration = Duration::from_millis(250);

/// How one transaction is built; the default simulates gas and has no memo.
#[derive(Debug, Clone, Default)]
pub struct TxOptions {
    /// A fixed gas limit instead of simulated gas times the gas adjustment.
    pub gas_limit: Option<u64>,
    pub memo: String,
    /// The last block height that may include the transaction (0: none). Past it the
    /// transaction can never execute, which is how a broadcast whose fate is unknown is settled.
    pub timeout_height: u64,
}

/// A signed transaction not yet broadcast: its hash is known before it leaves, so a caller can
/// record it durably first and later ask the chain what became of it.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedTx {
    /// Upper-case hex SHA-256 of `bytes`, as CometBFT names the transaction.
    pub hash: String,
    pub bytes: Vec<u8>,
    /// The account sequence it was signed with.
    pub sequence: u64,
    pub gas_limit: u64,
    pub fee: Coin,
    /// See [`TxOptions::timeout_height`].
    pub timeout_height: u64,
}

/// What the chain says about a transaction hash.
#[derive(Debug)]
pub enum TxLookup {
    /// Not in any block (yet).
    NotFound,
    /// In a block and executed successfully.
    Committed(TxOutcome),
    /// In a block, failed; its fee was spent.
    Failed(Error),
}

/// Gas a simulation reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GasInfo {
    pub gas_wanted: u64,
    pub gas_used: u64,
}

/// A transaction included in a block and executed successfully.
#[derive(Debug, Clone, PartialEq)]
pub struct TxOutcome {
    /// Upper-case hex, as CometBFT prints it.
    pub hash: String,
    pub height: u64,
    pub gas_wanted: u64,
    pub gas_used: u64,
    /// The fee paid.
    pub fee: Coin,
    pub events: Vec<Event>,
}

impl TxOutcome {
    /// The first value of `key` on an event of type `kind`.
    pub fn attribute(&self, kind: &str, key: &str) -> Option<&str> {
        self.events
            .iter()
            .filter(|e| e.kind == kind)
            .find_map(|e| e.attribute(key))
    }

    /// The first value of `key` on the `wasm` event of `contract`.
    pub fn wasm_attribute(&self, contract: &str, key: &str) -> Option<&str> {
        self.events
            .iter()
            .filter(|e| e.kind == "wasm" && e.attribute("_contract_address") == Some(contract))
            .find_map(|e| e.attribute(key))
    }
}

impl Client {
    /// Signs `msgs` with `signer`, broadcasts them in one transaction and waits for its block.
    pub async fn sign_and_broadcast(
        &self,
        signer: &Signer,
        msgs: Vec<Any>,
        options: &TxOptions,
    ) -> Result<TxOutcome, Error> {
        let hash = self.broadcast(signer, &msgs, options).await?;
        self.confirm(&hash).await
    }

    /// Simulates `msgs` signed by `signer` at its current sequence.
    pub async fn simulate(&self, signer: &Signer, msgs: &[Any]) -> Result<GasInfo, Error> {
        let slot = self.account_slot(signer.address().as_ref());
        let mut cached = slot.lock().await;
        let account = self.cached_or_synced(signer, &mut cached).await?;
        self.simulate_at(signer, msgs, "", account).await
    }

    /// Broadcasts with the signer's cached sequence; on a sequence mismatch, re-syncs once and
    /// tries again. Returns the hash once CheckTx accepted the transaction.
    async fn broadcast(
        &self,
        signer: &Signer,
        msgs: &[Any],
        options: &TxOptions,
    ) -> Result<cosmrs::tendermint::Hash, Error> {
        // A key read with another chain's prefix would sign for an address this chain rejects.
        self.parse_address(signer.address().as_ref())?;
        let slot = self.account_slot(signer.address().as_ref());
        let mut cached = slot.lock().await;
        let mut resynced = false;
        loop {
            let account = self.cached_or_synced(signer, &mut cached).await?;
            match self.broadcast_at(signer, msgs, options, account).await {
                Ok(accepted) => {
                    // CheckTx passed: the sequence is spent even if DeliverTx fails.
                    *cached = Some(Account {
                        sequence: account.sequence + 1,
                        ..account
                    });
                    return Ok(accepted);
                }
                Err(Error::SequenceMismatch { expected, .. }) if !resynced => {
                    resynced = true;
                    // The node's expected sequence counts its mempool; the committed account
                    // does not, so it is only the fallback.
                    *cached = expected.map(|sequence| Account {
                        sequence,
                        ..account
                    });
                }
                Err(e) => {
                    if matches!(e, Error::Rpc(_) | Error::SequenceMismatch { .. }) {
                        // Unknown whether the node took it: ask the chain next time.
                        *cached = None;
                    }
                    return Err(e);
                }
            }
        }
    }

    async fn cached_or_synced(
        &self,
        signer: &Signer,
        cached: &mut Option<Account>,
    ) -> Result<Account, Error> {
        if let Some(account) = *cached {
            return Ok(account);
        }
        let account = self.account(signer.address().as_ref()).await?;
        *cached = Some(account);
        Ok(account)
    }

    async fn broadcast_at(
        &self,
        signer: &Signer,
        msgs: &[Any],
        options: &TxOptions,
        account: Account,
    ) -> Result<cosmrs::tendermint::Hash, Error> {
        if self.config.dry_run {
            let simulated = self
                .simulate_at(signer, msgs, &options.memo, account)
                .await?;
            let gas_limit = options
                .gas_limit
                .or(self.config.gas_limit)
                .unwrap_or_else(|| self.config.gas_limit_for(simulated.gas_used));
            let fee = self.config.fee_of(gas_limit)?;
            return Err(Error::DryRun {
                gas_used: simulated.gas_used,
                gas_limit,
                fee: format!("{}{}", fee.amount, fee.denom),
            });
        }
        let prepared = self.prepare_at(signer, msgs, options, account).await?;
        self.send_prepared(&prepared).await
    }

    /// Simulates (unless the gas is fixed) and signs at `account`'s sequence.
    async fn prepare_at(
        &self,
        signer: &Signer,
        msgs: &[Any],
        options: &TxOptions,
        account: Account,
    ) -> Result<PreparedTx, Error> {
        let gas_limit = match options.gas_limit.or(self.config.gas_limit) {
            Some(gas) => gas,
            None => {
                // Right after a block, until the mempool is rechecked, simulation sees committed
                // state without this signer's transactions still in the mempool: when it names
                // another sequence, simulate at that one. Gas does not depend on the sequence,
                // and the transaction is still signed with `account`'s (CheckTx judges that one,
                // against the mempool).
                let simulated = match self.simulate_at(signer, msgs, &options.memo, account).await {
                    Err(Error::SequenceMismatch {
                        expected: Some(sequence),
                        ..
                    }) if sequence != account.sequence => {
                        let committed = Account {
                            sequence,
                            ..account
                        };
                        self.simulate_at(signer, msgs, &options.memo, committed)
                            .await?
                    }
                    other => other?,
                };
                self.config.gas_limit_for(simulated.gas_used)
            }
        };
        let fee = self.config.fee_of(gas_limit)?;
        let bytes = self.sign(
            signer,
            msgs,
            (&options.memo, options.timeout_height),
            account,
            gas_limit,
            &fee,
        )?;
        let hash = cosmrs::tendermint::Hash::Sha256(sha256(&bytes)).to_string();
        Ok(PreparedTx {
            hash,
            bytes,
            sequence: account.sequence,
            gas_limit,
            fee,
            timeout_height: options.timeout_height,
        })
    }

    /// Broadcasts a signed transaction; `Ok` once CheckTx accepted it.
    async fn send_prepared(
        &self,
        prepared: &PreparedTx,
    ) -> Result<cosmrs::tendermint::Hash, Error> {
        let response = self.rpc.broadcast_tx_sync(prepared.bytes.clone()).await?;
        if let Code::Err(code) = response.code {
            return Err(chain_error(
                Stage::Tx,
                &response.codespace,
                code.get(),
                &response.log,
                (prepared.gas_limit, 0),
            ));
        }
        Ok(response.hash)
    }

    /// Simulates and signs `msgs` at the signer's next sequence without broadcasting them.
    ///
    /// With [`Client::broadcast_prepared`] this lets a caller store the hash before the
    /// transaction leaves. One signer's prepared transactions must be broadcast in the order
    /// they were prepared, and before the next is prepared.
    pub async fn prepare_tx(
        &self,
        signer: &Signer,
        msgs: Vec<Any>,
        options: &TxOptions,
    ) -> Result<PreparedTx, Error> {
        self.parse_address(signer.address().as_ref())?;
        let slot = self.account_slot(signer.address().as_ref());
        let mut cached = slot.lock().await;
        let account = self.cached_or_synced(signer, &mut cached).await?;
        self.prepare_at(signer, &msgs, options, account).await
    }

    /// Broadcasts a transaction from [`Client::prepare_tx`]; `Ok` once CheckTx accepted it.
    ///
    /// Keeps the signer's cached sequence right: one past the transaction's on success, the
    /// node's expected one on a sequence mismatch (then prepare again), unknown after a
    /// transport failure (the next preparation asks the chain).
    pub async fn broadcast_prepared(
        &self,
        signer: &Signer,
        prepared: &PreparedTx,
    ) -> Result<(), Error> {
        let slot = self.account_slot(signer.address().as_ref());
        let mut cached = slot.lock().await;
        match self.send_prepared(prepared).await {
            Ok(_) => {
                *cached = cached.map(|account| Account {
                    sequence: account.sequence.max(prepared.sequence + 1),
                    ..account
                });
                Ok(())
            }
            Err(e) => {
                *cached = match (&e, *cached) {
                    (
                        Error::SequenceMismatch {
                            expected: Some(sequence),
                            ..
                        },
                        Some(account),
                    ) => Some(Account {
                        sequence: *sequence,
                        ..account
                    }),
                    (Error::SequenceMismatch { .. } | Error::Rpc(_), _) => None,
                    (_, unchanged) => unchanged,
                };
                Err(e)
            }
        }
    }

    /// What became of a transaction (hex hash), without waiting: not found, committed, or
    /// failed in its block. Transport failures are errors.
    pub async fn lookup_tx(&self, hash: &str) -> Result<TxLookup, Error> {
        let parsed = parse_hash(hash)?;
        match self.rpc.tx(parsed, false).await {
            Ok(response) => Ok(match self.outcome(&parsed, response) {
                Ok(outcome) => TxLookup::Committed(outcome),
                Err(e) => TxLookup::Failed(e),
            }),
            Err(e) if is_not_found(&e) => Ok(TxLookup::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    async fn simulate_at(
        &self,
        signer: &Signer,
        msgs: &[Any],
        memo: &str,
        account: Account,
    ) -> Result<GasInfo, Error> {
        // Simulation runs with an unlimited gas meter, skips signature checks and the minimum
        // fee, but deducts whatever fee the transaction names: a token fee makes it meter the
        // fee transfer that the real transaction pays for (an empty fee under-counts by ~15k).
        let token = u128::from(!self.config.gas_price_amount.is_zero());
        let fee = crate::config::coin(token, &self.config.gas_denom)?;
        let tx_bytes = self.sign(signer, msgs, (memo, 0), account, 0, &fee)?;
        #[allow(deprecated)]
        let request = SimulateRequest { tx: None, tx_bytes };
        let response = self
            .abci(
                "/cosmos.tx.v1beta1.Service/Simulate",
                request.encode_to_vec(),
            )
            .await?;
        if let Code::Err(code) = response.code {
            return Err(chain_error(
                Stage::Simulate,
                &response.codespace,
                code.get(),
                &response.log,
                (0, 0),
            ));
        }
        let gas = SimulateResponse::decode(response.value.as_slice())?
            .gas_info
            .ok_or_else(|| Error::Decode("simulation returned no gas info".into()))?;
        Ok(GasInfo {
            gas_wanted: gas.gas_wanted,
            gas_used: gas.gas_used,
        })
    }

    fn sign(
        &self,
        signer: &Signer,
        msgs: &[Any],
        (memo, timeout_height): (&str, u64),
        account: Account,
        gas_limit: u64,
        fee: &Coin,
    ) -> Result<Vec<u8>, Error> {
        let encode = |e: cosmrs::ErrorReport| Error::Encode(e.to_string());
        let timeout = cosmrs::tendermint::block::Height::try_from(timeout_height)
            .map_err(|e| Error::Config(format!("timeout height {timeout_height}: {e}")))?;
        let body = Body::new(msgs.to_vec(), memo, timeout);
        let fee = Fee {
            // A zero coin is not a valid fee amount; "no fee" is an empty list.
            amount: if fee.amount == 0 {
                Vec::new()
            } else {
                vec![fee.clone()]
            },
            gas_limit,
            payer: None,
            granter: None,
        };
        let auth_info =
            SignerInfo::single_direct(Some(signer.public_key()), account.sequence).auth_info(fee);
        let chain_id: cosmrs::tendermint::chain::Id = self
            .config
            .chain_id
            .parse()
            .map_err(|e| Error::Config(format!("chain_id: {e}")))?;
        let doc = SignDoc::new(&body, &auth_info, &chain_id, account.number).map_err(encode)?;
        doc.sign(signer.signing_key())
            .map_err(encode)?
            .to_bytes()
            .map_err(encode)
    }

    /// Waits for a broadcast transaction (hex hash) to be in a block, as `sign_and_broadcast`
    /// does; e.g. to settle a transaction broadcast before a restart.
    pub async fn wait_for_tx(&self, hash: &str) -> Result<TxOutcome, Error> {
        self.confirm(&parse_hash(hash)?).await
    }

    /// Polls the node for the transaction until it is in a block or `confirm_timeout` passes.
    async fn confirm(&self, hash: &cosmrs::tendermint::Hash) -> Result<TxOutcome, Error> {
        let deadline = Instant::now() + self.config.confirm_timeout;
        let response = loop {
            match self.rpc.tx(*hash, false).await {
                Ok(response) => break response,
                // Not indexed yet (or the node is briefly away): keep asking until the deadline.
                Err(_) if Instant::now() < deadline => tokio::time::sleep(CONFIRM_POLL).await,
                Err(_) => {
                    return Err(Error::ConfirmTimeout {
                        hash: hash.to_string(),
                    })
                }
            }
        };
        self.outcome(hash, response)
    }

    /// A transaction's result in its block: its outcome, or the error it failed with.
    fn outcome(
        &self,
        hash: &cosmrs::tendermint::Hash,
        response: tendermint_rpc::endpoint::tx::Response,
    ) -> Result<TxOutcome, Error> {
        let fee = self.paid_fee(&response.tx)?;
        let result = response.tx_result;
        let gas_wanted = u64::try_from(result.gas_wanted).unwrap_or_default();
        let gas_used = u64::try_from(result.gas_used).unwrap_or_default();
        if let Code::Err(code) = result.code {
            return Err(
                match chain_error(
                    Stage::Tx,
                    &result.codespace,
                    code.get(),
                    &result.log,
                    (gas_wanted, gas_used),
                ) {
                    Error::TxFailed {
                        codespace,
                        code,
                        log,
                        ..
                    } => Error::TxFailed {
                        codespace,
                        code,
                        log,
                        hash: Some(hash.to_string()),
                    },
                    other => other,
                },
            );
        }
        Ok(TxOutcome {
            hash: hash.to_string(),
            height: response.height.value(),
            gas_wanted,
            gas_used,
            fee,
            events: result.events.iter().map(Event::from).collect(),
        })
    }

    /// The fee a transaction names (its first coin; none is zero of the gas denom).
    fn paid_fee(&self, tx: &[u8]) -> Result<Coin, Error> {
        let tx = cosmrs::Tx::from_bytes(tx).map_err(|e| Error::Decode(e.to_string()))?;
        match tx.auth_info.fee.amount.into_iter().next() {
            Some(fee) => Ok(fee),
            None => crate::config::coin(0, &self.config.gas_denom),
        }
    }
}

fn parse_hash(hash: &str) -> Result<cosmrs::tendermint::Hash, Error> {
    cosmrs::tendermint::Hash::from_hex_upper(
        cosmrs::tendermint::hash::Algorithm::Sha256,
        &hash.to_ascii_uppercase(),
    )
    .map_err(|e| Error::Decode(format!("transaction hash {hash:?}: {e}")))
}

/// CometBFT answers an unknown hash with an RPC error whose data says "not found".
fn is_not_found(e: &tendermint_rpc::Error) -> bool {
    let text = e.to_string();
    text.contains("not found")
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    tributary_types::sha256(bytes)
}
