//! `tributary keys`: add, import, list and show keys of the file keyring.

use crate::output::Output;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use tributary_keyring::{Backend, KeyInfo, Keyring};

#[derive(Args)]
pub struct KeyringArgs {
    /// Keyring folder.
    #[arg(long, env = "TRIBUTARY_KEYRING_DIR", default_value_os_t = default_keyring_dir(), global = true)]
    pub keyring_dir: PathBuf,
    /// `file` (encrypted with a passphrase) or `test` (clear text, devnets only).
    #[arg(
        long,
        env = "TRIBUTARY_KEYRING_BACKEND",
        default_value = "file",
        global = true
    )]
    pub keyring_backend: Backend,
    /// Bech32 prefix of the addresses shown for new keys.
    #[arg(long, default_value = "trib", global = true)]
    pub prefix: String,
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Creates a new key and prints its mnemonic once.
    Add { name: String },
    /// Imports a key from a BIP-39 mnemonic read from standard input.
    Import { name: String },
    /// Lists keys.
    List,
    /// Shows one key's address.
    Show { name: String },
}

/// `~/.tributary/keyring`.
pub fn default_keyring_dir() -> PathBuf {
    home_dir().join(".tributary/keyring")
}

fn home_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| ".".into())
}

impl KeyringArgs {
    pub fn open(&self) -> Result<Keyring> {
        Keyring::open(&self.keyring_dir, self.keyring_backend)
            .with_context(|| format!("opening the keyring at {}", self.keyring_dir.display()))
    }

    /// The passphrase for the file backend: `$TRIBUTARY_KEYRING_PASSPHRASE` or a prompt.
    pub fn passphrase(&self, confirm: bool) -> Result<Option<String>> {
        if self.keyring_backend == Backend::Test {
            return Ok(None);
        }
        if let Ok(p) = std::env::var("TRIBUTARY_KEYRING_PASSPHRASE") {
            return Ok(Some(p));
        }
        let first = rpassword::prompt_password("keyring passphrase: ")?;
        if confirm {
            let second = rpassword::prompt_password("repeat passphrase: ")?;
            anyhow::ensure!(first == second, "the passphrases differ");
            anyhow::ensure!(
                first.len() >= 8,
                "use a passphrase of at least 8 characters"
            );
        }
        Ok(Some(first))
    }
}

pub fn run(args: &KeyringArgs, command: KeysCommand, output: Output) -> Result<()> {
    let ring = args.open()?;
    match command {
        KeysCommand::Add { name } => {
            let mnemonic = Keyring::generate_mnemonic();
            let info = add(args, &ring, &name, &mnemonic)?;
            output.print(
                &serde_json::json!({"name": info.name, "address": info.address, "mnemonic": mnemonic.as_str()}),
                || {
                    format!(
                        "{}  {}\n\nWrite this mnemonic down; it is the only way to recover the key:\n\n{}",
                        info.name, info.address, mnemonic.as_str()
                    )
                },
            );
        }
        KeysCommand::Import { name } => {
            let mut mnemonic = String::new();
            std::io::stdin().read_line(&mut mnemonic)?;
            let info = add(args, &ring, &name, mnemonic.trim())?;
            output.print(&info, || format!("{}  {}", info.name, info.address));
        }
        KeysCommand::List => {
            let keys = ring.list()?;
            output.print(&keys, || {
                keys.iter()
                    .map(|k| format!("{:<20} {}", k.name, k.address))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        KeysCommand::Show { name } => {
            let info = ring.show(&name)?;
            output.print(&info, || info.address.clone());
        }
    }
    Ok(())
}

fn add(args: &KeyringArgs, ring: &Keyring, name: &str, mnemonic: &str) -> Result<KeyInfo> {
    Keyring::validate_mnemonic(mnemonic)?;
    let address = tributary_client::Signer::from_mnemonic(mnemonic, &args.prefix)?
        .address()
        .to_string();
    let passphrase = args.passphrase(true)?;
    Ok(ring.add(name, &address, mnemonic, passphrase.as_deref())?)
}
