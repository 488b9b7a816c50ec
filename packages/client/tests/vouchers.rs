//! Prepaid credit and vouchers through signed transactions on a one-validator devnet: a payer
//! deposits once and signs vouchers off chain, the operator opens all of their requests in one
//! transaction, and the chain refuses a replayed voucher, a voucher the credit does not cover,
//! and a withdrawal before its notice. Needs the binary (`TRIBUTARYD=$(chain/build)`) and the
//! artifacts (`ci/build-wasm`).

mod common;

use common::{artifacts_dir, hash, utrib, wait_for_block_time, LiveNet, TestModel};
use cosmwasm_std::{HexBinary, Timestamp, Uint128};
use tributary_client::{deploy, DeploySettings, Error, Signer};
use tributary_types::packet::{AttributionEntry, AttributionPacket};
use tributary_types::payout::RequestStatus;
use tributary_types::voucher::{chain_prompt, Voucher, VoucherRedemption, EMPTY_CHAIN};
use tributary_types::AssetInfo;

const PRICE: u128 = 1000;
const WINDOW: u64 = 2;
/// The request expiry, which is also the withdrawal notice.
const EXPIRY: u64 = 12;

/// The payer's side of a voucher series: its prompts so far and the next voucher.
struct Series {
    chain_id: String,
    contract: String,
    payer: String,
    redeemer: String,
    model_id: u64,
    prompts: Vec<HexBinary>,
}

impl Series {
    fn ask(
        &mut self,
        payer: &Signer,
        n: usize,
    ) -> (tributary_types::voucher::SignedVoucher, Vec<HexBinary>) {
        let before = self.prompts.len();
        for i in before..before + n {
            self.prompts
                .push(hash(&format!("prompt {i} of {}", self.payer)));
        }
        let chain = self
            .prompts
            .iter()
            .fold(EMPTY_CHAIN, |c, p| chain_prompt(&c, p));
        let voucher = Voucher {
            chain_id: self.chain_id.clone(),
            contract: self.contract.clone(),
            payer: self.payer.clone(),
            redeemer: self.redeemer.clone(),
            model_id: self.model_id,
            version: 1,
            count: self.prompts.len() as u64,
            max_amount: Uint128::new(PRICE * self.prompts.len() as u128),
            prompts: HexBinary::from(chain.as_slice()),
        };
        (
            payer.sign_voucher(voucher).unwrap(),
            self.prompts[before..].to_vec(),
        )
    }
}

fn contract_error(result: Result<impl std::fmt::Debug, Error>) -> String {
    match result {
        Err(Error::Contract { message }) => message,
        other => panic!("expected a contract error, got {other:?}"),
    }
}

#[tokio::test]
async fn one_deposit_pays_for_vouchers_redeemed_once_and_withdraws_after_notice() {
    let net = LiveNet::start(3100, Some(300)).await;
    let client = net.client().await;
    let curator = net.signer("curator");
    let developer = net.signer("developer");
    let operator = net.signer("operator");
    let user = net.signer("user");
    let contributor = net.signer("contributor1");

    let deployment = deploy(
        &client,
        &curator,
        &artifacts_dir(),
        DeploySettings {
            challenge_window_seconds: WINDOW,
            request_expiry_seconds: EXPIRY,
            ..DeploySettings::default()
        },
    )
    .await
    .unwrap();
    let payouts = client.payout(&deployment.contracts.payout);
    let model = TestModel::register(
        &client,
        &deployment,
        &developer,
        &contributor,
        1,
        &[operator.address().to_string()],
        1,
        PRICE,
    )
    .await;
    let (model_id, contribution_id) = (model.id, model.contributions[0]);

    let native = AssetInfo::native("utrib");
    payouts.deposit(&user, utrib(5 * PRICE)).await.unwrap();
    let mut series = Series {
        chain_id: net.config().chain_id.clone(),
        contract: payouts.address().to_string(),
        payer: user.address().to_string(),
        redeemer: operator.address().to_string(),
        model_id,
        prompts: Vec::new(),
    };

    // Three inferences, one voucher, one redemption by the operator.
    let (voucher, prompts) = series.ask(&user, 3);
    let redemption = VoucherRedemption {
        voucher,
        prompt_hashes: prompts.clone(),
    };
    let opened = payouts
        .redeem_vouchers(&operator, vec![redemption.clone()])
        .await
        .unwrap();
    assert_eq!(opened.len(), 3);
    for (request, prompt) in opened.iter().zip(&prompts) {
        let stored = payouts.request(request.request_id).await.unwrap();
        assert_eq!(stored.payer.as_str(), user.address().as_ref());
        assert_eq!(stored.prompt_hash, *prompt);
    }
    let credit = payouts
        .credit(user.address().as_ref(), native.clone())
        .await
        .unwrap();
    assert_eq!(credit.balance.u128(), 2 * PRICE);

    // The same voucher again: refused, nothing charged.
    let replay = payouts.redeem_vouchers(&operator, vec![redemption]).await;
    assert!(contract_error(replay).contains("already redeemed"));

    // Three more than the credit covers: refused whole.
    let (voucher, prompts) = series.ask(&user, 3);
    let overdraft = payouts
        .redeem_vouchers(
            &operator,
            vec![VoucherRedemption {
                voucher,
                prompt_hashes: prompts,
            }],
        )
        .await;
    assert!(contract_error(overdraft).contains("in credit"));
    let state = payouts
        .redeemed_vouchers(
            user.address().as_ref(),
            operator.address().as_ref(),
            model_id,
            1,
        )
        .await
        .unwrap();
    assert_eq!((state.count, state.charged.u128()), (3, 3 * PRICE));

    // A redeemed request settles like any other.
    let first = opened[0].request_id;
    let packet = AttributionPacket {
        request_id: first,
        model_id,
        model_version: 1,
        weights_hash: hash("weights"),
        datanet_roots: model.lineage.clone(),
        method: model.method.id.clone(),
        params_hash: model.method.params_hash.clone(),
        output_hash: hash("output"),
        scores_root: hash("scores"),
        entries: vec![AttributionEntry {
            contribution_id,
            weight_bps: 10_000,
        }],
    };
    payouts
        .commit_attribution(&operator, vec![packet])
        .await
        .unwrap();

    // The rest of the credit: not before the notice, then in full.
    let outcome = payouts
        .request_withdrawal(&user, native.clone(), Uint128::new(2 * PRICE))
        .await
        .unwrap();
    let ready_at: u64 = outcome
        .wasm_attribute(payouts.address(), "ready_at")
        .unwrap()
        .parse()
        .unwrap();
    let early = payouts.withdraw(&user, native.clone()).await;
    assert!(contract_error(early).contains("can be executed from"));
    // The attribute is in whole seconds; the notice ends within the next one.
    wait_for_block_time(&client, Timestamp::from_seconds(ready_at + 1)).await;
    let before = client
        .balance(user.address().as_ref(), "utrib")
        .await
        .unwrap();
    let outcome = payouts.withdraw(&user, native.clone()).await.unwrap();
    let after = client
        .balance(user.address().as_ref(), "utrib")
        .await
        .unwrap();
    assert_eq!(after + outcome.fee.amount, before + 2 * PRICE);
    let credit = payouts
        .credit(user.address().as_ref(), native)
        .await
        .unwrap();
    assert!(credit.balance.is_zero() && credit.withdrawal.is_none());

    payouts.finalize(&operator, vec![first]).await.unwrap();
    assert_eq!(
        payouts.request(first).await.unwrap().status,
        RequestStatus::Finalized
    );
}
