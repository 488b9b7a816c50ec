//! A file keyring for BIP-39 mnemonics.
//!
//! One JSON file per key under the keyring folder (mode 0700, files 0600). The `file` backend
//! encrypts the mnemonic with XChaCha20-Poly1305 under a key derived from the passphrase by
//! scrypt; the `test` backend stores it in clear and exists for devnets only. The address is
//! stored in clear in both so keys can be listed without the passphrase; deriving it is the
//! client's job (coin type 118), so callers pass it in.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Where keys are kept and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Encrypted with a passphrase.
    File,
    /// In clear: devnets and tests only.
    Test,
}

impl std::str::FromStr for Backend {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "file" => Ok(Backend::File),
            "test" => Ok(Backend::Test),
            other => Err(Error::UnknownBackend(other.to_string())),
        }
    }
}

/// Keyring failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown keyring backend {0:?}: use file or test")]
    UnknownBackend(String),
    #[error("key {0:?} already exists")]
    Exists(String),
    #[error("no key named {0:?}")]
    NotFound(String),
    #[error("key names are 1 to 64 characters of letters, digits, '-' and '_', got {0:?}")]
    BadName(String),
    #[error("not a valid BIP-39 mnemonic: {0}")]
    BadMnemonic(String),
    #[error("wrong passphrase for key {0:?}")]
    WrongPassphrase(String),
    #[error("the file backend needs a passphrase")]
    PassphraseRequired,
    #[error("key {name:?} is stored by the {stored:?} backend, not {requested:?}")]
    BackendMismatch {
        name: String,
        stored: Backend,
        requested: Backend,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: corrupt key file: {message}")]
    Corrupt { path: PathBuf, message: String },
}

/// What `list` and `show` return: never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    pub name: String,
    pub address: String,
    pub backend: Backend,
}

#[derive(Serialize, Deserialize)]
struct KeyFile {
    name: String,
    address: String,
    backend: Backend,
    /// Test backend: the mnemonic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mnemonic: Option<String>,
    /// File backend: the encrypted mnemonic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed: Option<Sealed>,
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    kdf: String,
    log_n: u8,
    r: u32,
    p: u32,
    salt: String,
    nonce: String,
    ciphertext: String,
}

/// A keyring folder.
#[derive(Debug, Clone)]
pub struct Keyring {
    dir: PathBuf,
    backend: Backend,
}

impl Keyring {
    /// Opens (and creates, mode 0700) the keyring folder.
    pub fn open(dir: impl Into<PathBuf>, backend: Backend) -> Result<Self, Error> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(io(&dir))?;
        Ok(Self { dir, backend })
    }

    /// A fresh 24-word mnemonic.
    pub fn generate_mnemonic() -> Zeroizing<String> {
        let mut entropy = Zeroizing::new([0u8; 32]);
        getrandom::getrandom(entropy.as_mut()).expect("the OS provides randomness");
        let mnemonic =
            bip39::Mnemonic::from_entropy(entropy.as_ref()).expect("32 bytes is valid entropy");
        Zeroizing::new(mnemonic.to_string())
    }

    /// Checks a mnemonic's words and checksum.
    pub fn validate_mnemonic(mnemonic: &str) -> Result<(), Error> {
        bip39::Mnemonic::parse_normalized(mnemonic.trim())
            .map(|_| ())
            .map_err(|e| Error::BadMnemonic(e.to_string()))
    }

    /// Stores `mnemonic` under `name`; refuses an existing name.
    pub fn add(
        &self,
        name: &str,
        address: &str,
        mnemonic: &str,
        passphrase: Option<&str>,
    ) -> Result<KeyInfo, Error> {
        check_name(name)?;
        Self::validate_mnemonic(mnemonic)?;
        let path = self.path(name);
        if path.exists() {
            return Err(Error::Exists(name.to_string()));
        }
        let mnemonic = mnemonic.trim();
        let file = match self.backend {
            Backend::Test => KeyFile {
                name: name.into(),
                address: address.into(),
                backend: Backend::Test,
                mnemonic: Some(mnemonic.into()),
                sealed: None,
            },
            Backend::File => KeyFile {
                name: name.into(),
                address: address.into(),
                backend: Backend::File,
                mnemonic: None,
                sealed: Some(seal(
                    mnemonic,
                    passphrase.ok_or(Error::PassphraseRequired)?,
                )?),
            },
        };
        let text = serde_json::to_vec_pretty(&file).expect("key file serializes");
        // Written to a temporary owner-only file and renamed: a key file is whole or absent.
        let tmp = self.dir.join(format!(".{name}.json.tmp"));
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io(&tmp))?;
        out.write_all(&text).map_err(io(&tmp))?;
        out.sync_all().map_err(io(&tmp))?;
        fs::rename(&tmp, &path).map_err(io(&path))?;
        Ok(KeyInfo {
            name: name.into(),
            address: address.into(),
            backend: self.backend,
        })
    }

    /// Every key, by name.
    pub fn list(&self) -> Result<Vec<KeyInfo>, Error> {
        let mut keys = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let path = entry.map_err(io(&self.dir))?.path();
            let is_key = path.extension().is_some_and(|e| e == "json")
                && !path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if is_key {
                let file = read(&path)?;
                keys.push(KeyInfo {
                    name: file.name,
                    address: file.address,
                    backend: file.backend,
                });
            }
        }
        keys.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(keys)
    }

    /// One key's public information.
    pub fn show(&self, name: &str) -> Result<KeyInfo, Error> {
        let file = self.load(name)?;
        Ok(KeyInfo {
            name: file.name,
            address: file.address,
            backend: file.backend,
        })
    }

    /// The mnemonic of `name`, decrypted with `passphrase` for the file backend.
    pub fn mnemonic(
        &self,
        name: &str,
        passphrase: Option<&str>,
    ) -> Result<Zeroizing<String>, Error> {
        let file = self.load(name)?;
        if file.backend != self.backend {
            return Err(Error::BackendMismatch {
                name: name.into(),
                stored: file.backend,
                requested: self.backend,
            });
        }
        match (file.mnemonic, file.sealed) {
            (Some(m), _) => Ok(Zeroizing::new(m)),
            (None, Some(sealed)) => open(
                &sealed,
                passphrase.ok_or(Error::PassphraseRequired)?,
                name,
                &self.path(name),
            ),
            (None, None) => Err(Error::Corrupt {
                path: self.path(name),
                message: "no mnemonic".into(),
            }),
        }
    }

    fn load(&self, name: &str) -> Result<KeyFile, Error> {
        check_name(name)?;
        let path = self.path(name);
        if !path.exists() {
            return Err(Error::NotFound(name.to_string()));
        }
        read(&path)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }
}

fn check_name(name: &str) -> Result<(), Error> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::BadName(name.to_string()))
    }
}

fn read(path: &Path) -> Result<KeyFile, Error> {
    let text = fs::read(path).map_err(io(path))?;
    serde_json::from_slice(&text).map_err(|e| Error::Corrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

// scrypt N = 2^15, r = 8, p = 1: the interactive-login strength of the scrypt paper.
const LOG_N: u8 = 15;
const R: u32 = 8;
const P: u32 = 1;

fn derive(passphrase: &str, salt: &[u8], log_n: u8, r: u32, p: u32) -> Zeroizing<[u8; 32]> {
    let params = scrypt::Params::new(log_n, r, p, 32).expect("valid scrypt parameters");
    let mut key = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(passphrase.as_bytes(), salt, &params, key.as_mut())
        .expect("32-byte output is valid");
    key
}

fn seal(mnemonic: &str, passphrase: &str) -> Result<Sealed, Error> {
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 24];
    getrandom::getrandom(&mut salt).expect("the OS provides randomness");
    getrandom::getrandom(&mut nonce).expect("the OS provides randomness");
    let key = derive(passphrase, &salt, LOG_N, R, P);
    let cipher = XChaCha20Poly1305::new(key.as_ref().into());
    let ciphertext = cipher
        .encrypt(&XNonce::from(nonce), mnemonic.as_bytes())
        .expect("encryption of a short message succeeds");
    Ok(Sealed {
        kdf: "scrypt".into(),
        log_n: LOG_N,
        r: R,
        p: P,
        salt: hex::encode(salt),
        nonce: hex::encode(nonce),
        ciphertext: hex::encode(ciphertext),
    })
}

fn open(
    sealed: &Sealed,
    passphrase: &str,
    name: &str,
    path: &Path,
) -> Result<Zeroizing<String>, Error> {
    let corrupt = |message: &str| Error::Corrupt {
        path: path.to_path_buf(),
        message: message.to_string(),
    };
    if sealed.kdf != "scrypt" {
        return Err(corrupt("unknown kdf"));
    }
    let salt = hex::decode(&sealed.salt).map_err(|_| corrupt("bad salt"))?;
    let nonce = hex::decode(&sealed.nonce).map_err(|_| corrupt("bad nonce"))?;
    let ciphertext = hex::decode(&sealed.ciphertext).map_err(|_| corrupt("bad ciphertext"))?;
    let nonce: [u8; 24] = nonce.try_into().map_err(|_| corrupt("bad nonce"))?;
    if sealed.log_n > 24 {
        return Err(corrupt("bad parameters"));
    }
    let key = derive(passphrase, &salt, sealed.log_n, sealed.r, sealed.p);
    let cipher = XChaCha20Poly1305::new(key.as_ref().into());
    let plain = cipher
        .decrypt(&XNonce::from(nonce), ciphertext.as_slice())
        .map_err(|_| Error::WrongPassphrase(name.to_string()))?;
    String::from_utf8(plain)
        .map(Zeroizing::new)
        .map_err(|_| corrupt("mnemonic is not UTF-8"))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io { path, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABANDON: &str = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";

    #[test]
    fn file_backend_encrypts_and_needs_the_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let ring = Keyring::open(dir.path().join("keys"), Backend::File).unwrap();
        ring.add("alice", "trib1alice", ABANDON, Some("correct horse"))
            .unwrap();
        let raw = fs::read_to_string(dir.path().join("keys/alice.json")).unwrap();
        assert!(!raw.contains("abandon"), "mnemonic stored in clear");
        assert_eq!(
            ring.mnemonic("alice", Some("correct horse"))
                .unwrap()
                .as_str(),
            ABANDON
        );
        assert!(matches!(
            ring.mnemonic("alice", Some("wrong")),
            Err(Error::WrongPassphrase(_))
        ));
        assert!(matches!(
            ring.mnemonic("alice", None),
            Err(Error::PassphraseRequired)
        ));
        let mode = fs::metadata(dir.path().join("keys/alice.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = fs::metadata(dir.path().join("keys"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
    }

    #[test]
    fn names_addresses_and_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let ring = Keyring::open(dir.path(), Backend::Test).unwrap();
        ring.add("bob", "trib1bob", ABANDON, None).unwrap();
        ring.add("amy", "trib1amy", &Keyring::generate_mnemonic(), None)
            .unwrap();
        assert!(matches!(
            ring.add("bob", "x", ABANDON, None),
            Err(Error::Exists(_))
        ));
        assert!(matches!(
            ring.add("../evil", "x", ABANDON, None),
            Err(Error::BadName(_))
        ));
        assert!(matches!(
            ring.add("carl", "x", "abandon abandon", None),
            Err(Error::BadMnemonic(_))
        ));
        let names: Vec<_> = ring.list().unwrap().into_iter().map(|k| k.name).collect();
        assert_eq!(names, ["amy", "bob"]);
        assert_eq!(ring.show("bob").unwrap().address, "trib1bob");
        assert!(matches!(ring.show("nobody"), Err(Error::NotFound(_))));
        let file_ring = Keyring::open(dir.path(), Backend::File).unwrap();
        assert!(matches!(
            file_ring.mnemonic("bob", Some("x")),
            Err(Error::BackendMismatch { .. })
        ));
    }

    #[test]
    fn generated_mnemonics_are_valid_24_words() {
        let m = Keyring::generate_mnemonic();
        assert_eq!(m.split_whitespace().count(), 24);
        Keyring::validate_mnemonic(&m).unwrap();
    }
}
