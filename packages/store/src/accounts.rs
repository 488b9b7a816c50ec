//! Writes by account: a bearer token per account, each with a byte quota.
//!
//! The accounts file is JSON that names each account, the SHA-256 of its token (so the file
//! itself is no secret) and its quota:
//!
//! ```json
//! {"accounts": [{"name": "engine", "token_sha256": "<64 hex>", "quota_bytes": 10737418240}]}
//! ```
//!
//! A token's hash is `printf %s "$TOKEN" | sha256sum`. What each account has stored is kept in a
//! ledger file beside the blobs, rewritten after each write, so a quota holds across restarts.
//! A blob counts against the account that first stored it; storing one already there is free.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tributary_types::hash::{parse_content_hash, sha256, Hash32};

use crate::error::{Error, Result};
use crate::policy::{Allowance, Decision, Denial, Settle, WriteOutcome, WritePolicy, WriteRequest};

/// The accounts file.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct AccountsFile {
    accounts: Vec<AccountEntry>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct AccountEntry {
    name: String,
    token_sha256: String,
    quota_bytes: u64,
}

/// The ledger file: bytes stored per account.
#[derive(Serialize, Deserialize, Debug, Default)]
struct LedgerFile {
    used: BTreeMap<String, u64>,
}

#[derive(Debug)]
struct Account {
    name: String,
    quota: u64,
}

#[derive(Debug, Default)]
struct Ledger {
    used: HashMap<String, u64>,
    /// Room promised to writes in flight, per account.
    reserved: HashMap<String, u64>,
}

#[derive(Debug)]
struct Accounts {
    by_token: HashMap<Hash32, Account>,
    ledger_path: PathBuf,
    ledger: Mutex<Ledger>,
}

/// Takes writes from holders of an account's bearer token, each account within its quota.
#[derive(Clone, Debug)]
pub struct AccountPolicy {
    accounts: Arc<Accounts>,
}

impl AccountPolicy {
    /// Reads the accounts at `accounts_path` and what they have stored from `ledger_path`
    /// (absent: nothing yet).
    pub fn open(accounts_path: &Path, ledger_path: impl Into<PathBuf>) -> Result<Self> {
        let ledger_path = ledger_path.into();
        let invalid = |path: &Path, message: String| Error::Accounts {
            path: path.to_path_buf(),
            message,
        };
        let text = fs::read(accounts_path).map_err(Error::io("read", accounts_path))?;
        let file: AccountsFile = serde_json::from_slice(&text)
            .map_err(|e| invalid(accounts_path, format!("not an accounts file: {e}")))?;
        let mut by_token = HashMap::new();
        let mut names = HashSet::new();
        for entry in file.accounts {
            if entry.name.is_empty() || !names.insert(entry.name.clone()) {
                return Err(invalid(
                    accounts_path,
                    format!("account name {:?} is empty or repeated", entry.name),
                ));
            }
            let token = parse_content_hash(&entry.token_sha256).map_err(|e| {
                invalid(
                    accounts_path,
                    format!("account {:?}: token_sha256: {e}", entry.name),
                )
            })?;
            let account = Account {
                name: entry.name,
                quota: entry.quota_bytes,
            };
            if let Some(other) = by_token.insert(token, account) {
                return Err(invalid(
                    accounts_path,
                    format!("account {:?} shares its token with another", other.name),
                ));
            }
        }
        let used = match fs::read(&ledger_path) {
            Ok(text) => {
                serde_json::from_slice::<LedgerFile>(&text)
                    .map_err(|e| invalid(&ledger_path, format!("not a usage ledger: {e}")))?
                    .used
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(Error::io("read", &ledger_path)(e)),
        };
        Ok(Self {
            accounts: Arc::new(Accounts {
                by_token,
                ledger_path,
                ledger: Mutex::new(Ledger {
                    used: used.into_iter().collect(),
                    reserved: HashMap::new(),
                }),
            }),
        })
    }

    /// The bytes `account` has stored, as the ledger has it.
    pub fn used_bytes(&self, account: &str) -> u64 {
        self.accounts.lock().used.get(account).copied().unwrap_or(0)
    }
}

impl Accounts {
    fn lock(&self) -> std::sync::MutexGuard<'_, Ledger> {
        // The ledger is plain numbers, consistent after every statement: a panic elsewhere
        // while it was held leaves nothing half-done.
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn save(&self, ledger: &Ledger) -> Result<()> {
        let file = LedgerFile {
            used: ledger.used.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        };
        let text = serde_json::to_vec_pretty(&file).expect("the ledger serializes");
        let tmp = self.ledger_path.with_extension("json.tmp");
        fs::write(&tmp, text)
            .and_then(|_| fs::rename(&tmp, &self.ledger_path))
            .map_err(Error::io("write", &self.ledger_path))
    }
}

/// A write's claim on its account's quota.
struct Charge {
    accounts: Arc<Accounts>,
    account: String,
    reserved: u64,
}

impl Settle for Charge {
    fn settle(self: Box<Self>, outcome: WriteOutcome) {
        let mut ledger = self.accounts.lock();
        if let Some(reserved) = ledger.reserved.get_mut(&self.account) {
            *reserved = reserved.saturating_sub(self.reserved);
        }
        if let WriteOutcome::Created { size } = outcome {
            let used = ledger.used.entry(self.account.clone()).or_insert(0);
            *used = used.saturating_add(size);
            if let Err(error) = self.accounts.save(&ledger) {
                // The blob is stored and counted in memory; only a restart would forget it.
                tracing::error!(%error, account = %self.account, "cannot save the usage ledger");
            }
        }
    }
}

#[async_trait]
impl WritePolicy for AccountPolicy {
    async fn allows(&self, request: &WriteRequest<'_>) -> Result<Decision> {
        let Some(token) = request.bearer else {
            return Ok(Decision::Deny(Denial::MissingCredential));
        };
        let Some(account) = self.accounts.by_token.get(&sha256(token.as_bytes())) else {
            return Ok(Decision::Deny(Denial::UnknownCredential));
        };
        let mut ledger = self.accounts.lock();
        let (hold, max_bytes) = match request.declared_size {
            // A repeat of a stored blob (a retry whose answer was lost) needs no room; should
            // the stored copy turn out damaged and be replaced, the copy is charged as new.
            Some(size) if request.already_stored => (0, size),
            declared => {
                let used = ledger.used.get(&account.name).copied().unwrap_or(0);
                let reserved = ledger.reserved.get(&account.name).copied().unwrap_or(0);
                let remaining = account.quota.saturating_sub(used).saturating_sub(reserved);
                let needed = declared.unwrap_or(1);
                if needed > remaining {
                    return Ok(Decision::Deny(Denial::QuotaExceeded {
                        account: account.name.clone(),
                        quota: account.quota,
                        remaining,
                        needed,
                    }));
                }
                // Without a declared length the write may use whatever is left, so all of it
                // is held until the write ends.
                let hold = declared.unwrap_or(remaining);
                (hold, hold)
            }
        };
        *ledger.reserved.entry(account.name.clone()).or_insert(0) += hold;
        let charge = Charge {
            accounts: Arc::clone(&self.accounts),
            account: account.name.clone(),
            reserved: hold,
        };
        Ok(Decision::Allow(
            Allowance::up_to(max_bytes).settled_by(Box::new(charge)),
        ))
    }
}
