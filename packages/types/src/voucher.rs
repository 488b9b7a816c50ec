//! Prepaid credit and vouchers: paying for many inferences with one deposit and no transaction
//! per inference.
//!
//! A payer deposits into a credit balance of the payout contract once. For each inference it
//! signs a new [`Voucher`] for the operator that serves it (the redeemer): the voucher is
//! cumulative, naming how many inferences the payer has asked of that redeemer on that model
//! version so far, the most the redeemer may charge for all of them, and a hash chain over their
//! prompt hashes. The redeemer keeps the latest voucher of each payer and redeems it in a batch:
//! one signature check opens every request the voucher covers beyond what was redeemed before.
//!
//! - **Replay** is impossible: the contract records each (payer, redeemer, model version)'s
//!   redeemed count and chain, and a voucher must extend them by at least one prompt whose
//!   hashes, chained onto the recorded chain, give the signed one.
//! - **Double spend** is impossible: every opened request debits the payer's credit, and a
//!   redemption the balance does not cover fails whole.
//! - **Proof of authorization**: the signed voucher is what the redeemer was allowed to charge:
//!   a count, a cap and the prompts, nothing else.
//! - **Withdrawal** of unused credit takes a notice period, during which vouchers can still be
//!   redeemed against it, so a redeemer that batches within the notice is always paid.
//!
//! Signatures are ADR-36 (`signArbitrary` in Keplr and Leap) over [`Voucher::sign_data`], so a
//! browser wallet signs vouchers without a transaction.

use crate::hash::{sha256, Hash32};
use cosmwasm_schema::cw_serde;
use cosmwasm_std::{to_json_vec, Binary, HexBinary, StdResult, Timestamp, Uint128};
use ripemd::{Digest, Ripemd160};

/// The prompt chain before any prompt: 32 zero bytes.
pub const EMPTY_CHAIN: Hash32 = [0u8; 32];

/// A payer's cumulative authorization of a redeemer for one model version.
#[cw_serde]
pub struct Voucher {
    /// The chain and payout contract it is valid on, so it cannot be replayed elsewhere.
    pub chain_id: String,
    pub contract: String,
    pub payer: String,
    /// The operator allowed to redeem it (an attestor of the model version).
    pub redeemer: String,
    pub model_id: u64,
    pub version: u32,
    /// Inferences authorized so far, counting every earlier voucher of this series.
    pub count: u64,
    /// The most the redeemer may have charged in total once this voucher is redeemed, in the
    /// version's price asset.
    pub max_amount: Uint128,
    /// [`chain_prompt`] folded over the prompt hashes of the `count` inferences, in order.
    pub prompts: HexBinary,
}

/// A voucher with the payer's compressed secp256k1 public key and its ADR-36 signature.
#[cw_serde]
pub struct SignedVoucher {
    pub voucher: Voucher,
    /// 33 bytes.
    pub pub_key: Binary,
    /// 64 bytes, `r || s`.
    pub signature: Binary,
}

/// One redemption: a voucher and the prompt hashes it covers beyond the redeemed count.
#[cw_serde]
pub struct VoucherRedemption {
    pub voucher: SignedVoucher,
    /// SHA-256 of each new prompt, in the order the voucher chains them.
    pub prompt_hashes: Vec<HexBinary>,
}

/// What has been redeemed of one (payer, redeemer, model version) series.
#[cw_serde]
pub struct VoucherState {
    pub count: u64,
    /// Charged so far.
    pub charged: Uint128,
    /// The prompt chain after `count` prompts.
    pub prompts: HexBinary,
}

impl Default for VoucherState {
    fn default() -> Self {
        Self {
            count: 0,
            charged: Uint128::zero(),
            prompts: HexBinary::from(EMPTY_CHAIN.as_slice()),
        }
    }
}

/// A payer's prepaid credit in one asset.
#[cw_serde]
#[derive(Default)]
pub struct CreditAccount {
    pub balance: Uint128,
    /// A withdrawal waiting for its notice period.
    pub withdrawal: Option<PendingWithdrawal>,
}

/// A requested withdrawal of credit.
#[cw_serde]
pub struct PendingWithdrawal {
    /// Paid out up to the balance left when it is executed.
    pub amount: Uint128,
    pub ready_at: Timestamp,
}

/// The chain after one more prompt: `sha256(chain || prompt_hash)`.
pub fn chain_prompt(chain: &[u8], prompt_hash: &[u8]) -> Hash32 {
    let mut data = Vec::with_capacity(chain.len() + prompt_hash.len());
    data.extend_from_slice(chain);
    data.extend_from_slice(prompt_hash);
    sha256(&data)
}

impl Voucher {
    /// The bytes the payer signs: the voucher's JSON (fields in declaration order).
    pub fn sign_data(&self) -> StdResult<Vec<u8>> {
        to_json_vec(self)
    }

    /// The next voucher of the series: one more inference, whose prompt has SHA-256
    /// `prompt_hash`, and `price` more in the cap.
    pub fn extended(&self, prompt_hash: &[u8], price: Uint128) -> Voucher {
        Voucher {
            count: self.count + 1,
            max_amount: self.max_amount + price,
            prompts: HexBinary::from(chain_prompt(self.prompts.as_slice(), prompt_hash).as_slice()),
            ..self.clone()
        }
    }

    /// The SHA-256 digest the payer's ADR-36 signature is over.
    pub fn sign_digest(&self) -> StdResult<Hash32> {
        Ok(sha256(&adr36_sign_bytes(&self.payer, &self.sign_data()?)))
    }
}

/// The id a voucher inference is sampled and attributed under: inference `count` of `payer`'s
/// series on model `model_id` version `version`. An engine's sampling seed and its packet's
/// `request_id` are this id, so anyone holding a settlement batch's transaction (which names
/// the payer and the counts) recomputes the same completion and result. It sits in the upper
/// half of the `u64` range, where no paid request's id on chain ever reaches, so an engine
/// never meets one id with two prompts.
pub fn sampling_id(payer: &str, model_id: u64, version: u32, count: u64) -> u64 {
    let digest = sha256(format!("{payer}/{model_id}/{version}#{count}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first) | (1 << 63)
}

/// The ADR-36 sign document of `data` by `signer`: the amino JSON of a zero-fee transaction
/// holding one `sign/MsgSignData`, keys sorted, as Keplr's `signArbitrary` builds it.
pub fn adr36_sign_bytes(signer: &str, data: &[u8]) -> Vec<u8> {
    format!(
        concat!(
            r#"{{"account_number":"0","chain_id":"","fee":{{"amount":[],"gas":"0"}},"#,
            r#""memo":"","msgs":[{{"type":"sign/MsgSignData","value":{{"data":"{}","signer":"{}"}}}}],"#,
            r#""sequence":"0"}}"#
        ),
        Binary::from(data).to_base64(),
        signer
    )
    .into_bytes()
}

/// The 20 account bytes of a compressed secp256k1 public key, `ripemd160(sha256(key))`, which
/// bech32 with the chain's prefix makes its address.
pub fn account_bytes(pub_key: &[u8]) -> [u8; 20] {
    Ripemd160::digest(sha256(pub_key)).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_ids_of_vouchers_never_meet_paid_request_ids() {
        let a = sampling_id("trib1payer", 1, 1, 1);
        assert!(a >= 1 << 63);
        assert_eq!(a, sampling_id("trib1payer", 1, 1, 1));
        assert_ne!(a, sampling_id("trib1payer", 1, 1, 2));
        assert_ne!(a, sampling_id("trib1payer", 1, 2, 1));
        assert_ne!(a, sampling_id("trib1other", 1, 1, 1));
        // The digest of "trib1payer/1/1#1", independently: its first 8 bytes with the top bit set.
        let digest = sha256(b"trib1payer/1/1#1");
        assert_eq!(
            a,
            u64::from_be_bytes(digest[..8].try_into().unwrap()) | (1 << 63)
        );
    }

    #[test]
    fn the_sign_document_matches_adr36() {
        // The document Keplr signs for `signArbitrary("cosmos1...", "hello")`.
        let bytes = adr36_sign_bytes("cosmos1abc", b"hello");
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"account_number":"0","chain_id":"","fee":{"amount":[],"gas":"0"},"memo":"","msgs":[{"type":"sign/MsgSignData","value":{"data":"aGVsbG8=","signer":"cosmos1abc"}}],"sequence":"0"}"#
        );
    }

    #[test]
    fn the_prompt_chain_depends_on_order_and_every_prompt() {
        let a = sha256(b"a");
        let b = sha256(b"b");
        let ab = chain_prompt(&chain_prompt(&EMPTY_CHAIN, &a), &b);
        let ba = chain_prompt(&chain_prompt(&EMPTY_CHAIN, &b), &a);
        assert_ne!(ab, ba);
        assert_ne!(ab, chain_prompt(&EMPTY_CHAIN, &a));
    }

    #[test]
    fn the_next_voucher_adds_one_prompt_and_its_price() {
        let first = Voucher {
            chain_id: "c".into(),
            contract: "p".into(),
            payer: "a".into(),
            redeemer: "r".into(),
            model_id: 1,
            version: 1,
            count: 0,
            max_amount: Uint128::zero(),
            prompts: HexBinary::from(EMPTY_CHAIN.as_slice()),
        };
        let prompt = sha256(b"p");
        let next = first.extended(&prompt, Uint128::new(5));
        assert_eq!((next.count, next.max_amount.u128()), (1, 5));
        assert_eq!(
            next.prompts.as_slice(),
            chain_prompt(&EMPTY_CHAIN, &prompt).as_slice()
        );
        assert_eq!(next.payer, first.payer);
    }

    #[test]
    fn account_bytes_are_the_cosmos_address_derivation() {
        // secp256k1 generator point G, compressed; its Bitcoin/Cosmos hash160 is well known
        // (the address of private key 1): 751e76e8199196d454941c45d1b3a323f1433bd6.
        let g = HexBinary::from_hex(
            "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798",
        )
        .unwrap();
        assert_eq!(
            HexBinary::from(account_bytes(&g).as_slice()).to_hex(),
            "751e76e8199196d454941c45d1b3a323f1433bd6"
        );
    }
}
