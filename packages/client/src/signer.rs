//! Keys: a secp256k1 key derived from a BIP-39 mnemonic on the Cosmos HD path.

use crate::Error;
use cosmrs::bip32::{DerivationPath, XPrv};
use cosmrs::crypto::secp256k1::SigningKey;
use cosmrs::crypto::PublicKey;
use cosmrs::AccountId;

/// The Cosmos HD path (coin type 118), first account, first address.
pub const COSMOS_HD_PATH: &str = "m/44'/118'/0'/0/0";

/// A key that signs transactions (SIGN_MODE_DIRECT), with its account address.
pub struct Signer {
    key: SigningKey,
    public_key: PublicKey,
    address: AccountId,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("address", &self.address.as_ref())
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Derives the key at [`COSMOS_HD_PATH`] from a BIP-39 mnemonic (no passphrase).
    pub fn from_mnemonic(mnemonic: &str, prefix: &str) -> Result<Self, Error> {
        Self::from_mnemonic_at(mnemonic, prefix, COSMOS_HD_PATH)
    }

    /// Derives the key at an explicit HD path such as `m/44'/118'/0'/0/3`.
    pub fn from_mnemonic_at(mnemonic: &str, prefix: &str, path: &str) -> Result<Self, Error> {
        let mnemonic =
            bip39::Mnemonic::parse(mnemonic).map_err(|e| Error::Mnemonic(e.to_string()))?;
        let seed = mnemonic.to_seed("");
        let path: DerivationPath = path
            .parse()
            .map_err(|e| Error::Key(format!("path {path:?}: {e}")))?;
        let xprv = XPrv::derive_from_path(seed, &path).map_err(|e| Error::Key(e.to_string()))?;
        Self::from_key(SigningKey::from(xprv), prefix)
    }

    /// A new random key, e.g. a fresh test account.
    pub fn random(prefix: &str) -> Result<Self, Error> {
        Self::from_key(SigningKey::random(), prefix)
    }

    fn from_key(key: SigningKey, prefix: &str) -> Result<Self, Error> {
        let public_key = key.public_key();
        let address = public_key
            .account_id(prefix)
            .map_err(|e| Error::Key(format!("address with prefix {prefix:?}: {e}")))?;
        Ok(Self {
            key,
            public_key,
            address,
        })
    }

    /// The account address, e.g. `trib1...`.
    pub fn address(&self) -> &AccountId {
        &self.address
    }

    /// The compressed secp256k1 public key.
    pub fn public_key(&self) -> PublicKey {
        self.public_key
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// Signs an arbitrary message (ECDSA over its SHA-256, 64 bytes `r || s`), to prove
    /// holding this account's key off chain; [`verify_signature`] checks it.
    pub fn sign_message(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let signature = self
            .key
            .sign(message)
            .map_err(|e| Error::Key(format!("signing: {e}")))?;
        Ok(signature.to_bytes().to_vec())
    }

    /// Signs a voucher of this account's, exactly as a wallet's ADR-36 `signArbitrary` of
    /// [`Voucher::sign_data`] would, so the payout contract verifies either.
    pub fn sign_voucher(&self, voucher: Voucher) -> Result<SignedVoucher, Error> {
        if voucher.payer != self.address.as_ref() {
            return Err(Error::Key(format!(
                "the voucher's payer is {}, this key is {}",
                voucher.payer, self.address
            )));
        }
        let data = voucher
            .sign_data()
            .map_err(|e| Error::Encode(e.to_string()))?;
        let signature = self.sign_message(&adr36_sign_bytes(&voucher.payer, &data))?;
        Ok(SignedVoucher {
            voucher,
            pub_key: Binary::from(self.public_key.to_bytes()),
            signature: Binary::from(signature),
        })
    }
}

/// The account (with `prefix`) whose compressed secp256k1 `public_key` made `signature` over
/// `message` with [`Signer::sign_message`]; an error when the signature does not verify.
pub fn verify_signature(
    public_key: &[u8],
    message: &[u8],
    signature: &[u8],
    prefix: &str,
) -> Result<AccountId, Error> {
    use k256::ecdsa::signature::Verifier;
    let key = k256::ecdsa::VerifyingKey::from_sec1_bytes(public_key)
        .map_err(|e| Error::Key(format!("public key: {e}")))?;
    let signature = k256::ecdsa::Signature::from_slice(signature)
        .map_err(|e| Error::Key(format!("signature: {e}")))?;
    key.verify(message, &signature)
        .map_err(|_| Error::Key("the signature does not verify".into()))?;
    PublicKey::from(key)
        .account_id(prefix)
        .map_err(|e| Error::Key(format!("address with prefix {prefix:?}: {e}")))
}

use cosmwasm_std::Binary;
use tributary_types::voucher::{adr36_sign_bytes, SignedVoucher, Voucher};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_message_names_its_signer_and_nothing_else() {
        let signer = Signer::random("trib").unwrap();
        let public_key = signer.public_key().to_bytes();
        let signature = signer.sign_message(b"inputs of request 7").unwrap();
        let account = verify_signature(&public_key, b"inputs of request 7", &signature, "trib");
        assert_eq!(account.unwrap(), *signer.address());
        assert!(verify_signature(&public_key, b"inputs of request 8", &signature, "trib").is_err());
        let other = Signer::random("trib").unwrap().public_key().to_bytes();
        assert!(verify_signature(&other, b"inputs of request 7", &signature, "trib").is_err());
        assert!(verify_signature(&public_key, b"x", &[0u8; 10], "trib").is_err());
    }

    const ABANDON: &str = "abandon abandon abandon abandon abandon abandon abandon abandon \
                           abandon abandon abandon about";

    #[test]
    fn the_public_test_vector_derives_its_published_address() {
        // Published for m/44'/118'/0'/0/0 by several wallets' test suites (e.g. apophis-sdk's
        // LocalSigner test lists both addresses).
        let cosmos = Signer::from_mnemonic(ABANDON, "cosmos").unwrap();
        assert_eq!(
            cosmos.address().as_ref(),
            "cosmos19rl4cm2hmr8afy4kldpxz3fka4jguq0auqdal4"
        );
        let neutron = Signer::from_mnemonic(ABANDON, "neutron").unwrap();
        assert_eq!(
            neutron.address().as_ref(),
            "neutron19rl4cm2hmr8afy4kldpxz3fka4jguq0aclyl9j"
        );
        let trib = Signer::from_mnemonic(ABANDON, "trib").unwrap();
        assert!(trib.address().as_ref().starts_with("trib1"));
        assert_eq!(trib.address().to_bytes(), cosmos.address().to_bytes());
    }

    #[test]
    fn other_paths_give_other_keys() {
        let first = Signer::from_mnemonic(ABANDON, "trib").unwrap();
        let second = Signer::from_mnemonic_at(ABANDON, "trib", "m/44'/118'/0'/0/1").unwrap();
        assert_ne!(first.address(), second.address());
    }

    #[test]
    fn bad_mnemonics_and_paths_are_refused() {
        let wrong_checksum = ABANDON.replace("about", "abandon");
        assert!(matches!(
            Signer::from_mnemonic(&wrong_checksum, "trib"),
            Err(Error::Mnemonic(_))
        ));
        assert!(matches!(
            Signer::from_mnemonic_at(ABANDON, "trib", "m/44'/x"),
            Err(Error::Key(_))
        ));
    }
}
