//! A file keyring for BIP-39 mnemonics.
//!
//! One JSON file per key under the keyring folder (mode 0700, files 0600). The `file` backend
//! encrypts the mnemonic with XChaCha20-Poly1305 under a key derived from the passphrase by
//! scrypt; the `test` backend stores it in clear and exists for devnets only. The address is
//! stored in clear in both so keys can be listed without the passphrase; deriving it is the
//! client's job (coin type 118), so callers pass it in.
//!
//! From format version 2 the key's name and address are the cipher's associated data, so a file
//! whose address was swapped does not open. Version 1 files (no `version` field, no associated
//! data) are still read. Files are created exclusively and never through a symlink, and every
//! parameter read back from a file is bounded before it sizes any work or memory.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use zeroize::{Zeroize, Zeroizing};

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
    /// The cipher cannot tell a wrong passphrase from a file whose name or address was altered.
    #[error("wrong passphrase for key {0:?}, or its file was altered")]
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
    #[error("{path}: key file format version {version} is not one this keyring reads")]
    UnsupportedVersion { path: PathBuf, version: u32 },
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

/// The format this keyring writes: the name and address are the cipher's associated data.
const FORMAT_VERSION: u32 = 2;
/// Files without a `version` field: the mnemonic alone is authenticated.
const LEGACY_VERSION: u32 = 1;

/// A key file is a few hundred bytes; anything this long is not one and is not read whole.
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;
/// The longest mnemonic the keyring seals: 24 words of at most 8 letters, with spaces, fits.
const MAX_MNEMONIC_BYTES: usize = 256;
/// XChaCha20-Poly1305's tag, appended to every ciphertext.
const TAG_BYTES: usize = 16;

#[derive(Serialize, Deserialize)]
struct KeyFile {
    #[serde(default = "legacy_version")]
    version: u32,
    name: String,
    address: String,
    backend: Backend,
    /// Test backend: the mnemonic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mnemonic: Option<ClearMnemonic>,
    /// File backend: the encrypted mnemonic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed: Option<Sealed>,
}

fn legacy_version() -> u32 {
    LEGACY_VERSION
}

/// A test-backend mnemonic, wiped from memory when the key file is dropped.
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
struct ClearMnemonic(String);

impl Drop for ClearMnemonic {
    fn drop(&mut self) {
        self.0.zeroize();
    }
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
        // Sized up front so the words are never copied by a reallocation that leaves the old
        // buffer unwiped.
        let mut phrase = Zeroizing::new(String::with_capacity(MAX_MNEMONIC_BYTES));
        for (i, word) in mnemonic.words().enumerate() {
            if i > 0 {
                phrase.push(' ');
            }
            phrase.push_str(word);
        }
        phrase
    }

    /// Checks a mnemonic's words and checksum.
    pub fn validate_mnemonic(mnemonic: &str) -> Result<(), Error> {
        bip39::Mnemonic::parse_normalized(mnemonic.trim())
            .map(|_| ())
            .map_err(|e| Error::BadMnemonic(e.to_string()))
    }

    /// Stores `mnemonic` under `name`; refuses an existing name, and anything at all (a
    /// symlink included) already at the key's path.
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
        // Checked early only to skip the slow key derivation; `write_new` is what refuses.
        if fs::symlink_metadata(&path).is_ok() {
            return Err(Error::Exists(name.to_string()));
        }
        let mnemonic = mnemonic.trim();
        let file = match self.backend {
            Backend::Test => KeyFile {
                version: FORMAT_VERSION,
                name: name.into(),
                address: address.into(),
                backend: Backend::Test,
                mnemonic: Some(ClearMnemonic(mnemonic.into())),
                sealed: None,
            },
            Backend::File => KeyFile {
                version: FORMAT_VERSION,
                name: name.into(),
                address: address.into(),
                backend: Backend::File,
                mnemonic: None,
                sealed: Some(seal(
                    mnemonic,
                    passphrase.ok_or(Error::PassphraseRequired)?,
                    &associated_data(name, address),
                )?),
            },
        };
        let mut text = Zeroizing::new(Vec::with_capacity(MAX_KEY_FILE_BYTES as usize));
        serde_json::to_writer_pretty(&mut *text, &file).expect("key file serializes");
        self.write_new(name, &path, &text)?;
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
            let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
            if let (true, Some(name)) = (is_key, stem) {
                let file = read(&path, &name)?;
                keys.push(KeyInfo {
                    name,
                    address: file.address.clone(),
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
            name: name.into(),
            address: file.address.clone(),
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
        let path = self.path(name);
        match (&file.mnemonic, &file.sealed) {
            (Some(m), _) => Ok(Zeroizing::new(m.0.clone())),
            (None, Some(sealed)) => {
                let aad = match file.version {
                    LEGACY_VERSION => Vec::new(),
                    _ => associated_data(name, &file.address),
                };
                open(
                    sealed,
                    passphrase.ok_or(Error::PassphraseRequired)?,
                    &aad,
                    name,
                    &path,
                )
            }
            (None, None) => Err(Error::Corrupt {
                path,
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
        read(&path, name)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// Writes `bytes` as the new file `path`: whole or not at all, owner-only, never over
    /// anything already there and never through a symlink.
    fn write_new(&self, name: &str, path: &Path, bytes: &[u8]) -> Result<(), Error> {
        // An unpredictable name, created exclusively: nothing planted in the folder can
        // redirect the write.
        let mut suffix = [0u8; 8];
        getrandom::getrandom(&mut suffix).expect("the OS provides randomness");
        let tmp = self
            .dir
            .join(format!(".{name}.{}.tmp", hex::encode(suffix)));
        let written = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .and_then(|mut out| {
                out.write_all(bytes)?;
                out.sync_all()
            });
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io(&tmp)(e));
        }
        // A hard link, unlike a rename, fails when the final name exists, whatever it is.
        let linked = fs::hard_link(&tmp, path);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => fs::File::open(&self.dir)
                .and_then(|dir| dir.sync_all())
                .map_err(io(&self.dir)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(Error::Exists(name.to_string()))
            }
            Err(e) => Err(io(path)(e)),
        }
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

/// Reads the key file of `name` at `path`, refusing one that is too long, of an unknown
/// version or filed under another name.
fn read(path: &Path, name: &str) -> Result<KeyFile, Error> {
    let corrupt = |message: String| Error::Corrupt {
        path: path.to_path_buf(),
        message,
    };
    let mut text = Zeroizing::new(Vec::with_capacity(MAX_KEY_FILE_BYTES as usize + 1));
    fs::File::open(path)
        .and_then(|file| file.take(MAX_KEY_FILE_BYTES + 1).read_to_end(&mut text))
        .map_err(io(path))?;
    if text.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(corrupt(format!(
            "longer than the {MAX_KEY_FILE_BYTES} bytes a key file may have"
        )));
    }
    let file: KeyFile = serde_json::from_slice(&text).map_err(|e| corrupt(e.to_string()))?;
    if !matches!(file.version, LEGACY_VERSION | FORMAT_VERSION) {
        return Err(Error::UnsupportedVersion {
            path: path.to_path_buf(),
            version: file.version,
        });
    }
    if file.name != name {
        return Err(corrupt(format!(
            "it holds key {:?}, not {name:?}",
            file.name
        )));
    }
    Ok(file)
}

/// What the cipher authenticates besides the mnemonic: the key's name and address, each
/// length-prefixed so no two pairs encode alike.
fn associated_data(name: &str, address: &str) -> Vec<u8> {
    let mut aad = b"tributary-keyring".to_vec();
    aad.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    for field in [name, address] {
        aad.extend_from_slice(&(field.len() as u64).to_be_bytes());
        aad.extend_from_slice(field.as_bytes());
    }
    aad
}

// scrypt N = 2^15, r = 8, p = 1: the interactive-login strength of the scrypt paper.
const LOG_N: u8 = 15;
const R: u32 = 8;
const P: u32 = 1;

/// The bounds on scrypt parameters read from a file. A file is data, not a request for
/// unbounded memory or time: scrypt takes 128·r·2^log_n bytes, p times over.
const LOG_N_RANGE: std::ops::RangeInclusive<u8> = 10..=20;
const R_RANGE: std::ops::RangeInclusive<u32> = 1..=32;
const P_RANGE: std::ops::RangeInclusive<u32> = 1..=4;
const MAX_KDF_MEMORY_BYTES: u64 = 256 << 20;
const SALT_BYTES: std::ops::RangeInclusive<usize> = 16..=64;

/// The scrypt parameters of a file, if they are within bounds.
fn kdf_params(log_n: u8, r: u32, p: u32) -> Result<scrypt::Params, String> {
    if !LOG_N_RANGE.contains(&log_n) || !R_RANGE.contains(&r) || !P_RANGE.contains(&p) {
        return Err(format!(
            "scrypt parameters log_n = {log_n}, r = {r}, p = {p} are outside \
             log_n {LOG_N_RANGE:?}, r {R_RANGE:?}, p {P_RANGE:?}"
        ));
    }
    let memory = (128u64 * u64::from(r)) << log_n;
    if memory > MAX_KDF_MEMORY_BYTES {
        return Err(format!(
            "scrypt parameters log_n = {log_n}, r = {r} need {memory} bytes, over {MAX_KDF_MEMORY_BYTES}"
        ));
    }
    scrypt::Params::new(log_n, r, p, 32).map_err(|e| format!("scrypt parameters: {e}"))
}

fn derive(passphrase: &str, salt: &[u8], params: &scrypt::Params) -> Zeroizing<[u8; 32]> {
    let mut key = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(passphrase.as_bytes(), salt, params, key.as_mut())
        .expect("32 bytes is a valid scrypt output length");
    key
}

fn seal(mnemonic: &str, passphrase: &str, aad: &[u8]) -> Result<Sealed, Error> {
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 24];
    getrandom::getrandom(&mut salt).expect("the OS provides randomness");
    getrandom::getrandom(&mut nonce).expect("the OS provides randomness");
    let params = kdf_params(LOG_N, R, P).expect("the keyring's own parameters are in bounds");
    let key = derive(passphrase, &salt, &params);
    let cipher = XChaCha20Poly1305::new(key.as_ref().into());
    let payload = Payload {
        msg: mnemonic.as_bytes(),
        aad,
    };
    let ciphertext = cipher
        .encrypt(&XNonce::from(nonce), payload)
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
    aad: &[u8],
    name: &str,
    path: &Path,
) -> Result<Zeroizing<String>, Error> {
    let corrupt = |message: String| Error::Corrupt {
        path: path.to_path_buf(),
        message,
    };
    if sealed.kdf != "scrypt" {
        return Err(corrupt(format!("unknown kdf {:?}", sealed.kdf)));
    }
    let params = kdf_params(sealed.log_n, sealed.r, sealed.p).map_err(corrupt)?;
    let salt = hex::decode(&sealed.salt).map_err(|e| corrupt(format!("salt: {e}")))?;
    if !SALT_BYTES.contains(&salt.len()) {
        return Err(corrupt(format!(
            "a salt of {} bytes, not {SALT_BYTES:?}",
            salt.len()
        )));
    }
    let nonce = hex::decode(&sealed.nonce).map_err(|e| corrupt(format!("nonce: {e}")))?;
    let nonce: [u8; 24] = nonce
        .try_into()
        .map_err(|n: Vec<u8>| corrupt(format!("a nonce of {} bytes, not 24", n.len())))?;
    let ciphertext =
        hex::decode(&sealed.ciphertext).map_err(|e| corrupt(format!("ciphertext: {e}")))?;
    if !(TAG_BYTES + 1..=TAG_BYTES + MAX_MNEMONIC_BYTES).contains(&ciphertext.len()) {
        return Err(corrupt(format!(
            "a ciphertext of {} bytes cannot hold a mnemonic",
            ciphertext.len()
        )));
    }
    let key = derive(passphrase, &salt, &params);
    let cipher = XChaCha20Poly1305::new(key.as_ref().into());
    let payload = Payload {
        msg: ciphertext.as_slice(),
        aad,
    };
    let plain = Zeroizing::new(
        cipher
            .decrypt(&XNonce::from(nonce), payload)
            .map_err(|_| Error::WrongPassphrase(name.to_string()))?,
    );
    let mnemonic =
        std::str::from_utf8(&plain).map_err(|_| corrupt("mnemonic is not UTF-8".into()))?;
    Ok(Zeroizing::new(mnemonic.to_owned()))
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

    /// A file-backend keyring in a fresh folder holding `alice`, and the path of her file.
    fn ring_with_alice(dir: &Path) -> (Keyring, PathBuf) {
        let ring = Keyring::open(dir.join("keys"), Backend::File).unwrap();
        ring.add("alice", "trib1alice", ABANDON, Some("correct horse"))
            .unwrap();
        (ring, dir.join("keys/alice.json"))
    }

    /// Rewrites the key file at `path` through `edit` on its JSON.
    fn tamper(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
        let mut json: serde_json::Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
        edit(&mut json);
        fs::write(path, serde_json::to_vec(&json).unwrap()).unwrap();
    }

    #[test]
    fn tampered_kdf_parameters_are_a_typed_error_not_a_panic_or_a_huge_allocation() {
        let dir = tempfile::tempdir().unwrap();
        let (ring, path) = ring_with_alice(dir.path());
        let original = fs::read(&path).unwrap();
        // Each would panic in scrypt, or ask it for gigabytes to terabytes of memory.
        let cases: [(&str, serde_json::Value); 9] = [
            ("r", 0.into()),
            ("p", 0.into()),
            ("log_n", 0.into()),
            ("log_n", 63.into()),
            ("log_n", 24.into()),
            ("r", (1u64 << 20).into()),
            ("p", u64::from(u32::MAX).into()),
            ("salt", "".into()),
            ("ciphertext", "00".repeat(1 << 16).into()),
        ];
        for (field, value) in cases {
            fs::write(&path, &original).unwrap();
            tamper(&path, |json| json["sealed"][field] = value.clone());
            let result = ring.mnemonic("alice", Some("correct horse"));
            assert!(
                matches!(result, Err(Error::Corrupt { .. })),
                "{field} = {value}: {:?}",
                result.map(|_| "a mnemonic")
            );
        }
    }

    #[test]
    fn a_swapped_address_or_name_is_detected_when_the_key_is_opened() {
        let dir = tempfile::tempdir().unwrap();
        let (ring, path) = ring_with_alice(dir.path());
        let original = fs::read(&path).unwrap();

        tamper(&path, |json| json["address"] = "trib1mallory".into());
        assert!(matches!(
            ring.mnemonic("alice", Some("correct horse")),
            Err(Error::WrongPassphrase(_))
        ));

        // The same sealed mnemonic filed under another name.
        fs::write(&path, &original).unwrap();
        let bob = dir.path().join("keys/bob.json");
        fs::write(&bob, &original).unwrap();
        tamper(&bob, |json| json["name"] = "bob".into());
        assert!(ring.mnemonic("bob", Some("correct horse")).is_err());

        // Dropping the version to pass the file off as the unauthenticated old format.
        tamper(&path, |json| {
            json.as_object_mut().unwrap().remove("version");
            json["address"] = "trib1mallory".into();
        });
        assert!(ring.mnemonic("alice", Some("correct horse")).is_err());

        fs::write(&path, &original).unwrap();
        assert_eq!(
            ring.mnemonic("alice", Some("correct horse"))
                .unwrap()
                .as_str(),
            ABANDON
        );
    }

    #[test]
    fn a_symlink_at_the_key_path_is_refused_and_its_target_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let ring = Keyring::open(dir.path().join("keys"), Backend::Test).unwrap();
        let target = dir.path().join("outside.json");
        let link = dir.path().join("keys/alice.json");
        std::os::unix::fs::symlink(&target, &link).unwrap();

        assert!(matches!(
            ring.add("alice", "trib1alice", ABANDON, None),
            Err(Error::Exists(_))
        ));
        assert!(!target.exists(), "written through the link");
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[test]
    fn a_symlink_planted_at_a_temporary_name_is_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let ring = Keyring::open(dir.path().join("keys"), Backend::Test).unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("keys/.alice.json.tmp")).unwrap();

        ring.add("alice", "trib1alice", ABANDON, None).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(ring.mnemonic("alice", None).unwrap().as_str(), ABANDON);
    }

    #[test]
    fn an_existing_key_file_is_refused_and_left_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let (ring, path) = ring_with_alice(dir.path());
        let before = fs::read(&path).unwrap();
        assert!(matches!(
            ring.add("alice", "trib1other", ABANDON, Some("another passphrase")),
            Err(Error::Exists(_))
        ));
        assert_eq!(fs::read(&path).unwrap(), before);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn an_unknown_format_version_is_refused_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let (ring, path) = ring_with_alice(dir.path());
        tamper(&path, |json| json["version"] = 99.into());
        let err = ring.mnemonic("alice", Some("correct horse")).unwrap_err();
        assert!(
            matches!(err, Error::UnsupportedVersion { version: 99, .. }),
            "{err}"
        );
    }

    #[test]
    fn a_version_1_key_file_without_associated_data_still_opens() {
        let dir = tempfile::tempdir().unwrap();
        let ring = Keyring::open(dir.path(), Backend::File).unwrap();
        let legacy = serde_json::json!({
            "name": "old",
            "address": "trib1old",
            "backend": "file",
            "sealed": seal(ABANDON, "correct horse", &[]).unwrap(),
        });
        fs::write(
            dir.path().join("old.json"),
            serde_json::to_vec(&legacy).unwrap(),
        )
        .unwrap();
        assert_eq!(ring.show("old").unwrap().address, "trib1old");
        assert_eq!(
            ring.mnemonic("old", Some("correct horse"))
                .unwrap()
                .as_str(),
            ABANDON
        );
    }

    #[test]
    fn a_key_file_too_long_to_be_one_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let ring = Keyring::open(dir.path(), Backend::Test).unwrap();
        let padded = format!(
            "{{\"name\":\"big\",\"address\":\"trib1big\",\"backend\":\"test\",\"mnemonic\":\"{ABANDON}\"{}}}",
            " ".repeat(MAX_KEY_FILE_BYTES as usize)
        );
        fs::write(dir.path().join("big.json"), padded).unwrap();
        let err = ring.show("big").unwrap_err();
        assert!(
            matches!(&err, Error::Corrupt { message, .. } if message.contains("longer")),
            "{err}"
        );
    }

    #[test]
    fn generated_mnemonics_are_valid_24_words() {
        let m = Keyring::generate_mnemonic();
        assert_eq!(m.split_whitespace().count(), 24);
        Keyring::validate_mnemonic(&m).unwrap();
    }
}
