//! Prepaid credit and vouchers against the real contracts: a deposit pays for many inferences
//! that one redemption opens, a voucher cannot be redeemed twice or past the credit or its cap,
//! anything altered after signing is refused, and a withdrawal waits for its notice while
//! vouchers can still spend the credit.

mod common;

use common::keys::{deposit, KeyPayer};
use common::*;
use cosmwasm_std::{to_json_binary, Addr, Uint128};
use cw20::Cw20ExecuteMsg;
use cw_multi_test::Executor;
use tributary_payout::error::ContractError;
use tributary_types::payout::{self, ReceiveMsg, RequestStatus};
use tributary_types::voucher::{CreditAccount, Voucher, VoucherRedemption, VoucherState};
use tributary_types::AssetInfo;

const PRICE: u128 = 1_000;

fn ask(payer: &mut KeyPayer, w: &World, redeemer: &Addr, model_id: u64, n: usize) -> Voucher {
    payer.ask(w, redeemer, model_id, n, PRICE)
}

fn redeem(
    w: &mut World,
    redeemer: &Addr,
    redemptions: Vec<VoucherRedemption>,
) -> Result<Vec<u64>, ContractError> {
    let response = w
        .execute_payout(
            redeemer,
            &payout::ExecuteMsg::RedeemVouchers { redemptions },
        )
        .map_err(contract_err)?;
    Ok(response
        .events
        .iter()
        .filter(|e| e.ty == "wasm-inference_requested")
        .flat_map(|e| &e.attributes)
        .filter(|a| a.key == "request_id")
        .map(|a| a.value.parse().unwrap())
        .collect())
}

fn credit(w: &World, payer: &Addr) -> CreditAccount {
    w.app
        .wrap()
        .query_wasm_smart(
            &w.payout,
            &payout::QueryMsg::Credit {
                address: payer.to_string(),
                asset: AssetInfo::native(DENOM),
            },
        )
        .unwrap()
}

fn redeemed(w: &World, payer: &Addr, redeemer: &Addr, model_id: u64) -> VoucherState {
    w.app
        .wrap()
        .query_wasm_smart(
            &w.payout,
            &payout::QueryMsg::RedeemedVouchers {
                payer: payer.to_string(),
                redeemer: redeemer.to_string(),
                model_id,
                version: 1,
            },
        )
        .unwrap()
}

/// A world with a one-attestor model, a key-holding payer with `deposit` in credit.
fn setup(deposit_amount: u128) -> (World, u64, KeyPayer, Addr) {
    let mut w = World::new();
    let model_id = w.native_model(PRICE, 2, 1);
    let payer = KeyPayer::new(&mut w, 7);
    deposit(&mut w, &payer.address, deposit_amount);
    let redeemer = w.attestors[0].clone();
    (w, model_id, payer, redeemer)
}

#[test]
fn one_redemption_opens_every_request_a_deposit_pays_for() {
    let (mut w, model_id, mut payer, redeemer) = setup(10 * PRICE);
    let voucher = ask(&mut payer, &w, &redeemer, model_id, 3);
    let ids = redeem(&mut w, &redeemer, vec![payer.redemption(voucher, 0)]).unwrap();
    assert_eq!(ids.len(), 3);
    for (id, prompt) in ids.iter().zip(&payer.prompts) {
        let request = w.request_state(*id);
        assert_eq!(request.payer, payer.address);
        assert_eq!(request.prompt_hash, *prompt);
        assert_eq!(request.status, RequestStatus::Open);
        assert_eq!(request.price.amount.u128(), PRICE);
    }
    assert_eq!(credit(&w, &payer.address).balance.u128(), 7 * PRICE);
    let state = redeemed(&w, &payer.address, &redeemer, model_id);
    assert_eq!(state.count, 3);
    assert_eq!(state.charged.u128(), 3 * PRICE);

    // The next voucher of the series extends it: only the new prompts are opened.
    let voucher = ask(&mut payer, &w, &redeemer, model_id, 2);
    let more = redeem(&mut w, &redeemer, vec![payer.redemption(voucher, 3)]).unwrap();
    assert_eq!(more.len(), 2);
    assert_eq!(credit(&w, &payer.address).balance.u128(), 5 * PRICE);

    // A redeemed request is attested and settled like a paid one.
    let packet = w.packet(ids[0], model_id, 1, &[(w.accepted[0], 10_000)]);
    w.commit(&redeemer, vec![packet]).unwrap();
    w.advance(WINDOW);
    w.finalize(vec![ids[0]]).unwrap();
    assert_eq!(w.request_state(ids[0]).status, RequestStatus::Finalized);
    let paid_out: u128 = w
        .request_state(ids[0])
        .settlement
        .map(|s| {
            s.protocol.u128()
                + s.developer.u128()
                + s.operators.iter().map(|o| o.u128()).sum::<u128>()
                + s.contributions.iter().map(|c| c.1.u128()).sum::<u128>()
                + s.unattributed.u128()
        })
        .unwrap();
    assert_eq!(paid_out, PRICE);
}

#[test]
fn a_voucher_cannot_be_redeemed_twice() {
    let (mut w, model_id, mut payer, redeemer) = setup(10 * PRICE);
    let voucher = ask(&mut payer, &w, &redeemer, model_id, 2);
    let first = payer.redemption(voucher, 0);
    redeem(&mut w, &redeemer, vec![first.clone()]).unwrap();
    let err = redeem(&mut w, &redeemer, vec![first.clone()]).unwrap_err();
    assert!(
        matches!(
            err,
            ContractError::VoucherCountMismatch {
                count: 2,
                redeemed: 2,
                ..
            }
        ),
        "{err:?}"
    );
    // Nor with its prompts left out, nor twice within one message.
    let mut bare = first.clone();
    bare.prompt_hashes.clear();
    assert!(matches!(
        redeem(&mut w, &redeemer, vec![bare]).unwrap_err(),
        ContractError::VoucherCountMismatch { .. }
    ));
    let voucher = ask(&mut payer, &w, &redeemer, model_id, 1);
    let next = payer.redemption(voucher, 2);
    assert!(matches!(
        redeem(&mut w, &redeemer, vec![next.clone(), next]).unwrap_err(),
        ContractError::VoucherCountMismatch { .. }
    ));
    assert_eq!(credit(&w, &payer.address).balance.u128(), 8 * PRICE);
    assert_eq!(redeemed(&w, &payer.address, &redeemer, model_id).count, 2);
}

#[test]
fn credit_is_spent_once_whoever_redeems() {
    // Three inferences in credit; two redeemers each hold a voucher for two.
    let (mut w, model_id, mut payer, first) = setup(3 * PRICE);
    let second = w.attestors[1].clone();
    let to_first = ask(&mut payer, &w, &first, model_id, 2);
    let to_first = payer.redemption(to_first, 0);
    let mut other = KeyPayer {
        key: payer.key.clone(),
        address: payer.address.clone(),
        prompts: Vec::new(),
    };
    let to_second = ask(&mut other, &w, &second, model_id, 2);
    let to_second = other.redemption(to_second, 0);
    assert_eq!(redeem(&mut w, &first, vec![to_first]).unwrap().len(), 2);
    let err = redeem(&mut w, &second, vec![to_second]).unwrap_err();
    assert!(
        matches!(err, ContractError::InsufficientCredit { available, needed, .. }
            if available.u128() == PRICE && needed.u128() == 2 * PRICE),
        "{err:?}"
    );
    assert_eq!(credit(&w, &payer.address).balance.u128(), PRICE);
}

#[test]
fn anything_altered_after_signing_is_refused() {
    let (mut w, model_id, mut payer, redeemer) = setup(10 * PRICE);
    let voucher = ask(&mut payer, &w, &redeemer, model_id, 2);
    let good = payer.redemption(voucher, 0);

    let mut raised = good.clone();
    raised.voucher.voucher.max_amount = Uint128::new(100 * PRICE);
    assert!(matches!(
        redeem(&mut w, &redeemer, vec![raised]).unwrap_err(),
        ContractError::BadVoucherSignature
    ));

    let mut other_prompt = good.clone();
    other_prompt.prompt_hashes[1] = h("a prompt the payer never sent");
    assert!(matches!(
        redeem(&mut w, &redeemer, vec![other_prompt]).unwrap_err(),
        ContractError::VoucherChainMismatch
    ));

    let stranger = KeyPayer::new(&mut w, 9);
    let mut someone_elses_key = good.clone();
    someone_elses_key.voucher.pub_key = stranger.pub_key();
    assert!(matches!(
        redeem(&mut w, &redeemer, vec![someone_elses_key]).unwrap_err(),
        ContractError::VoucherKeyMismatch { .. }
    ));

    // Signed for another redeemer, or for another contract.
    let second = w.attestors[1].clone();
    let err = redeem(&mut w, &second, vec![good.clone()]).unwrap_err();
    assert!(
        matches!(err, ContractError::NotTheRedeemer { .. }),
        "{err:?}"
    );
    let mut elsewhere = ask(&mut payer, &w, &redeemer, model_id, 0);
    elsewhere.contract = w.registry.to_string();
    let elsewhere = payer.redemption(elsewhere, 0);
    assert!(matches!(
        redeem(&mut w, &redeemer, vec![elsewhere]).unwrap_err(),
        ContractError::VoucherForOtherContract { .. }
    ));

    // Only the version's attestors redeem.
    let outsider = w.attestors[3].clone();
    let to_outsider = ask(&mut payer, &w, &outsider, model_id, 0);
    let mut fresh = KeyPayer {
        key: payer.key.clone(),
        address: payer.address.clone(),
        prompts: payer.prompts.clone(),
    };
    fresh.prompts.truncate(2);
    let err = redeem(&mut w, &outsider, vec![fresh.redemption(to_outsider, 0)]).unwrap_err();
    assert!(
        matches!(err, ContractError::UnauthorizedAttestor { .. }),
        "{err:?}"
    );

    // Nothing above changed anything; the good one still redeems.
    assert_eq!(credit(&w, &payer.address).balance.u128(), 10 * PRICE);
    assert_eq!(redeem(&mut w, &redeemer, vec![good]).unwrap().len(), 2);
}

#[test]
fn a_voucher_charges_no_more_than_its_cap() {
    let (mut w, model_id, mut payer, redeemer) = setup(10 * PRICE);
    let mut voucher = ask(&mut payer, &w, &redeemer, model_id, 3);
    voucher.max_amount = Uint128::new(2 * PRICE);
    let err = redeem(&mut w, &redeemer, vec![payer.redemption(voucher, 0)]).unwrap_err();
    assert!(
        matches!(err, ContractError::VoucherCapExceeded { needed, .. } if needed.u128() == 3 * PRICE),
        "{err:?}"
    );
}

#[test]
fn a_withdrawal_waits_for_its_notice_and_vouchers_spend_credit_meanwhile() {
    let (mut w, model_id, mut payer, redeemer) = setup(5 * PRICE);
    let native = AssetInfo::native(DENOM);
    let before = w.native_balance(&payer.address);
    let withdraw = payout::ExecuteMsg::Withdraw {
        asset: native.clone(),
    };
    assert!(matches!(
        contract_err(w.execute_payout(&payer.address, &withdraw).unwrap_err()),
        ContractError::NoWithdrawalPending { .. }
    ));
    let too_much = payout::ExecuteMsg::RequestWithdrawal {
        asset: native.clone(),
        amount: Uint128::new(6 * PRICE),
    };
    assert!(matches!(
        contract_err(w.execute_payout(&payer.address, &too_much).unwrap_err()),
        ContractError::InsufficientCredit { .. }
    ));
    let all = payout::ExecuteMsg::RequestWithdrawal {
        asset: native.clone(),
        amount: Uint128::new(5 * PRICE),
    };
    w.execute_payout(&payer.address, &all).unwrap();
    w.advance(EXPIRY - 1);
    assert!(matches!(
        contract_err(w.execute_payout(&payer.address, &withdraw).unwrap_err()),
        ContractError::WithdrawalNotReady { .. }
    ));
    // The redeemer still collects during the notice.
    let voucher = ask(&mut payer, &w, &redeemer, model_id, 2);
    redeem(&mut w, &redeemer, vec![payer.redemption(voucher, 0)]).unwrap();
    w.advance(1);
    let response = w.execute_payout(&payer.address, &withdraw).unwrap();
    assert_eq!(attr(&response, "amount").unwrap(), (3 * PRICE).to_string());
    assert_eq!(w.native_balance(&payer.address), before + 3 * PRICE);
    assert_eq!(credit(&w, &payer.address), CreditAccount::default());
    assert!(matches!(
        contract_err(w.execute_payout(&payer.address, &withdraw).unwrap_err()),
        ContractError::NoWithdrawalPending { .. }
    ));
}

#[test]
fn cw20_credit_pays_a_cw20_priced_model() {
    let mut w = World::new();
    let model_id = w.cw20_model(PRICE);
    let mut payer = KeyPayer::new(&mut w, 11);
    let funder = w.payers[0].clone();
    let token = w.token.clone();
    w.app
        .execute_contract(
            funder,
            token.clone(),
            &Cw20ExecuteMsg::Transfer {
                recipient: payer.address.to_string(),
                amount: Uint128::new(4 * PRICE),
            },
            &[],
        )
        .unwrap();
    w.app
        .execute_contract(
            payer.address.clone(),
            token.clone(),
            &Cw20ExecuteMsg::Send {
                contract: w.payout.to_string(),
                amount: Uint128::new(4 * PRICE),
                msg: to_json_binary(&ReceiveMsg::Deposit {}).unwrap(),
            },
            &[],
        )
        .unwrap();
    let redeemer = w.attestors[0].clone();
    let voucher = ask(&mut payer, &w, &redeemer, model_id, 4);
    let ids = redeem(&mut w, &redeemer, vec![payer.redemption(voucher, 0)]).unwrap();
    assert_eq!(ids.len(), 4);
    assert_eq!(
        w.request_state(ids[3]).price.asset,
        AssetInfo::cw20(token.as_str())
    );
    // The native credit was never touched, and there is none.
    assert_eq!(credit(&w, &payer.address).balance, Uint128::zero());
}

#[test]
fn a_deposit_needs_funds() {
    let mut w = World::new();
    let payer = w.payers[0].clone();
    let err = w
        .app
        .execute_contract(
            payer,
            w.payout.clone(),
            &payout::ExecuteMsg::Deposit {},
            &[],
        )
        .unwrap_err();
    assert!(matches!(contract_err(err), ContractError::EmptyDeposit));
}
