//! Payers that hold their own secp256k1 keys and sign vouchers, as wallets do.

use super::{h, World, DENOM, START_NATIVE};
use cosmwasm_std::{coins, Addr, Api, Binary, CanonicalAddr, HexBinary, Uint128};
use cw_multi_test::{BankSudo, Executor, SudoMsg};
use k256::ecdsa::signature::hazmat::PrehashSigner;
use k256::ecdsa::{Signature, SigningKey};
use tributary_types::payout;
use tributary_types::voucher::{
    account_bytes, chain_prompt, SignedVoucher, Voucher, VoucherRedemption, EMPTY_CHAIN,
};

/// A payer holding its own secp256k1 key, as a wallet does.
pub struct KeyPayer {
    pub key: SigningKey,
    pub address: Addr,
    /// The prompt hashes it has asked of the redeemer so far, in order.
    pub prompts: Vec<HexBinary>,
}

impl KeyPayer {
    pub fn new(w: &mut World, seed: u8) -> Self {
        let key = SigningKey::from_slice(&[seed; 32]).unwrap();
        let pub_key = key.verifying_key().to_encoded_point(true);
        let canonical = CanonicalAddr::from(account_bytes(pub_key.as_bytes()).as_slice());
        let address = w.app.api().addr_humanize(&canonical).unwrap();
        w.app
            .sudo(SudoMsg::Bank(BankSudo::Mint {
                to_address: address.to_string(),
                amount: coins(START_NATIVE, DENOM),
            }))
            .unwrap();
        KeyPayer {
            key,
            address,
            prompts: Vec::new(),
        }
    }

    pub fn pub_key(&self) -> Binary {
        Binary::from(self.key.verifying_key().to_encoded_point(true).as_bytes())
    }

    /// Asks for `n` more inferences and returns the voucher covering every one so far.
    pub fn ask(
        &mut self,
        w: &World,
        redeemer: &Addr,
        model_id: u64,
        n: usize,
        price: u128,
    ) -> Voucher {
        for _ in 0..n {
            let label = format!("{} prompt {}", self.address, self.prompts.len());
            self.prompts.push(h(&label));
        }
        let chain = self
            .prompts
            .iter()
            .fold(EMPTY_CHAIN, |chain, p| chain_prompt(&chain, p));
        Voucher {
            chain_id: w.app.block_info().chain_id,
            contract: w.payout.to_string(),
            payer: self.address.to_string(),
            redeemer: redeemer.to_string(),
            model_id,
            version: 1,
            count: self.prompts.len() as u64,
            max_amount: Uint128::new(price * self.prompts.len() as u128),
            prompts: HexBinary::from(chain.as_slice()),
        }
    }

    pub fn sign(&self, voucher: Voucher) -> SignedVoucher {
        let digest = voucher.sign_digest().unwrap();
        let signature: Signature = self.key.sign_prehash(&digest).unwrap();
        SignedVoucher {
            voucher,
            pub_key: self.pub_key(),
            signature: Binary::from(signature.to_bytes().to_vec()),
        }
    }

    /// The redemption of `voucher` for the prompts after the first `redeemed`.
    pub fn redemption(&self, voucher: Voucher, redeemed: usize) -> VoucherRedemption {
        let count = voucher.count as usize;
        VoucherRedemption {
            voucher: self.sign(voucher),
            prompt_hashes: self.prompts[redeemed..count].to_vec(),
        }
    }
}

pub fn deposit(w: &mut World, payer: &Addr, amount: u128) {
    w.app
        .execute_contract(
            payer.clone(),
            w.payout.clone(),
            &payout::ExecuteMsg::Deposit {},
            &coins(amount, DENOM),
        )
        .unwrap();
}
