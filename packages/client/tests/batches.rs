//! Settlement batches through signed transactions on a one-validator devnet: a batch with one
//! bad result is refused whole and charges nothing; a good one is committed in one
//! transaction; one of its inferences is challenged with its merkle proof, recomputed by a
//! committee and settled by the challenger's packet, while the rest of the batch is finalized
//! and credited. Needs the binary (`TRIBUTARYD=$(chain/build)`) and the artifacts
//! (`ci/build-wasm`).

mod common;

use common::{artifacts_dir, bank_send, hash, utrib, wait_for_block_time, LiveNet, TestModel};
use cosmwasm_std::{HexBinary, Timestamp, Uint128};
use tributary_client::{deploy, DeploySettings, Error, Signer, TxOptions};
use tributary_types::batch::{batch_leaf, BatchInfo, BatchLeaf, BatchResult, BatchStatus};
use tributary_types::merkle::{inclusion_path, Leaves};
use tributary_types::packet::AttributionEntry;
use tributary_types::payout::{self, RequestStatus};
use tributary_types::verification::{ChallengeInfo, ChallengeOutcome};
use tributary_types::voucher::{chain_prompt, Voucher, VoucherRedemption, EMPTY_CHAIN};
use tributary_types::AssetInfo;

const PRICE: u128 = 1000;
/// Long enough to challenge after the batch lands.
const WINDOW: u64 = 20;
const VERIFIER_BOND: u128 = 2_000_000;

/// A payer's prompts and its voucher to the operator.
struct Payer {
    signer: Signer,
    prompts: Vec<String>,
}

impl Payer {
    fn redemption(
        &self,
        chain_id: &str,
        contract: &str,
        redeemer: &str,
        model_id: u64,
    ) -> VoucherRedemption {
        let hashes: Vec<HexBinary> = self
            .prompts
            .iter()
            .map(|p| HexBinary::from(tributary_types::sha256(p.as_bytes()).as_slice()))
            .collect();
        let chain = hashes.iter().fold(EMPTY_CHAIN, |c, p| chain_prompt(&c, p));
        let voucher = Voucher {
            chain_id: chain_id.to_string(),
            contract: contract.to_string(),
            payer: self.signer.address().to_string(),
            redeemer: redeemer.to_string(),
            model_id,
            version: 1,
            count: hashes.len() as u64,
            max_amount: Uint128::new(PRICE * hashes.len() as u128),
            prompts: HexBinary::from(chain.as_slice()),
        };
        VoucherRedemption {
            voucher: self.signer.sign_voucher(voucher).unwrap(),
            prompt_hashes: hashes,
        }
    }
}

fn result(completion: &str, entries: &[(u64, u16)]) -> BatchResult {
    BatchResult {
        output_hash: HexBinary::from(tributary_types::sha256(completion.as_bytes()).as_slice()),
        scores_root: hash(&format!("scores of {completion}")),
        entries: entries
            .iter()
            .map(|&(contribution_id, weight_bps)| AttributionEntry {
                contribution_id,
                weight_bps,
            })
            .collect(),
    }
}

#[tokio::test]
async fn a_batch_is_refused_whole_for_one_bad_result_and_one_challenged_inference_leaves_it() {
    let net = LiveNet::start(3700, Some(300)).await;
    let client = net.client().await;
    let curator = net.signer("curator");
    let developer = net.signer("developer");
    let operator = net.signer("operator");
    let funder = net.signer("attestor2");
    let contributor = net.signer("contributor1");

    let deployment = deploy(
        &client,
        &curator,
        &artifacts_dir(),
        DeploySettings {
            challenge_window_seconds: WINDOW,
            ..DeploySettings::default()
        },
    )
    .await
    .unwrap();
    let chain_id = net.config().chain_id.clone();
    let payouts = client.payout(&deployment.contracts.payout);
    let model = TestModel::register(
        &client,
        &deployment,
        &developer,
        &contributor,
        3,
        &[operator.address().to_string()],
        1,
        PRICE,
    )
    .await;
    let (model_id, ids) = (model.id, model.contributions.clone());

    // Two payers with credit and four bonded verifiers, funded from a devnet key.
    let payers: Vec<Payer> = (0..2)
        .map(|p| Payer {
            signer: Signer::random("trib").unwrap(),
            prompts: (0..3 - p)
                .map(|i| format!("payer {p} prompt {i}"))
                .collect(),
        })
        .collect();
    let verifiers: Vec<Signer> = (0..4).map(|_| Signer::random("trib").unwrap()).collect();
    let funding = payers
        .iter()
        .map(|p| &p.signer)
        .chain(&verifiers)
        .map(|s| bank_send(&funder, s.address().as_ref(), 100_000_000))
        .collect();
    client
        .sign_and_broadcast(&funder, funding, &TxOptions::default())
        .await
        .unwrap();
    for payer in &payers {
        payouts
            .deposit(&payer.signer, utrib(10 * PRICE))
            .await
            .unwrap();
    }
    for verifier in &verifiers {
        payouts
            .execute(verifier, &payout::ExecuteMsg::Bond {}, utrib(VERIFIER_BOND))
            .await
            .unwrap();
    }

    let redemptions: Vec<VoucherRedemption> = payers
        .iter()
        .map(|p| {
            p.redemption(
                &chain_id,
                payouts.address(),
                operator.address().as_ref(),
                model_id,
            )
        })
        .collect();
    let leaves_of = |results: &[BatchResult]| -> Vec<BatchLeaf> {
        let mut leaves = Vec::new();
        let mut results = results.iter();
        for (payer, redemption) in payers.iter().zip(&redemptions) {
            for prompt_hash in &redemption.prompt_hashes {
                leaves.push(BatchLeaf {
                    payer: payer.signer.address().to_string(),
                    prompt_hash: prompt_hash.clone(),
                    result: results.next().unwrap().clone(),
                });
            }
        }
        leaves
    };
    let completions: Vec<String> = (0..5).map(|i| format!("completion {i}")).collect();
    let honest = |i: usize| {
        result(
            &completions[i],
            &[(ids[i % 3], 7000), (ids[(i + 1) % 3], 3000)],
        )
    };
    let mut results: Vec<BatchResult> = (0..5).map(honest).collect();

    // A contribution outside the lineage in inference 3: the whole batch is refused.
    results[3] = result(&completions[3], &[(ids[2] + 100, 10_000)]);
    let settle = |results: Vec<BatchResult>| payout::ExecuteMsg::SettleBatch {
        redemptions: redemptions.clone(),
        results,
    };
    let refused = payouts
        .execute(&operator, &settle(results.clone()), Vec::new())
        .await;
    match refused {
        Err(Error::Contract { message }) => {
            assert!(message.starts_with("inference 3 of the batch"), "{message}")
        }
        other => panic!("expected the batch to be refused, got {other:?}"),
    }
    for payer in &payers {
        let credit = payouts
            .credit(payer.signer.address().as_ref(), AssetInfo::native("utrib"))
            .await
            .unwrap();
        assert_eq!(credit.balance.u128(), 10 * PRICE);
    }

    // Inference 1 is forged (all to one contribution); the rest are honest.
    results[3] = honest(3);
    results[1] = result(&completions[1], &[(ids[2], 10_000)]);
    let outcome = payouts
        .execute(&operator, &settle(results.clone()), Vec::new())
        .await
        .unwrap();
    let batch_id: u64 = outcome
        .attribute("wasm-settlement_batch", "batch_id")
        .unwrap()
        .parse()
        .unwrap();
    let batch: BatchInfo = payouts
        .query(&payout::QueryMsg::Batch { batch_id })
        .await
        .unwrap();
    assert_eq!(batch.count, 5);

    // A verifier proves inference 1 against the root and challenges it.
    let leaves = leaves_of(&results);
    let hashes: Vec<_> = leaves.iter().map(|l| batch_leaf(l).unwrap()).collect();
    let proof = inclusion_path(&Leaves(&hashes), 1, 5)
        .unwrap()
        .unwrap()
        .iter()
        .map(|p| HexBinary::from(p.as_slice()))
        .collect();
    let challenger = &verifiers[0];
    payouts
        .execute(
            challenger,
            &payout::ExecuteMsg::ChallengeBatchItem {
                batch_id,
                index: 1,
                leaf: leaves[1].clone(),
                proof,
                result: honest(1),
            },
            utrib(1_000_000),
        )
        .await
        .unwrap();
    let request_id = batch.first_request_id + 1;
    assert_eq!(
        payouts.request(request_id).await.unwrap().status,
        RequestStatus::Challenged
    );

    // The inputs, then the committee recomputes and votes for the challenger's packet.
    payouts
        .execute(
            &funder,
            &payout::ExecuteMsg::RevealInputs {
                request_id,
                prompt: payers[0].prompts[1].clone(),
                completion: HexBinary::from(completions[1].as_bytes()),
            },
            Vec::new(),
        )
        .await
        .unwrap();
    let challenge: Option<ChallengeInfo> = payouts
        .query(&payout::QueryMsg::ChallengeOf { request_id })
        .await
        .unwrap();
    let challenge = challenge.unwrap();
    for member in &challenge.committee {
        let signer = verifiers
            .iter()
            .find(|v| v.address().as_ref() == member.as_str())
            .expect("the committee is drawn from the verifiers");
        payouts
            .execute(
                signer,
                &payout::ExecuteMsg::Vote {
                    request_id,
                    packet_hash: challenge.challenger_packet.clone(),
                },
                Vec::new(),
            )
            .await
            .unwrap();
    }
    payouts
        .execute(
            &funder,
            &payout::ExecuteMsg::Resolve { request_id },
            Vec::new(),
        )
        .await
        .unwrap();
    let resolved: Option<ChallengeInfo> = payouts
        .query(&payout::QueryMsg::ChallengeOf { request_id })
        .await
        .unwrap();
    assert_eq!(resolved.unwrap().outcome, Some(ChallengeOutcome::Upheld));

    // After the window the batch's other four inferences are credited, the challenged one is
    // settled as a request.
    wait_for_block_time(
        &client,
        Timestamp::from_nanos(batch.finalizable_at.nanos()).plus_seconds(1),
    )
    .await;
    let developer_before = developer_claimable(&payouts, &developer).await;
    payouts
        .execute(
            &funder,
            &payout::ExecuteMsg::FinalizeBatches {
                batch_ids: vec![batch_id],
            },
            Vec::new(),
        )
        .await
        .unwrap();
    let batch: BatchInfo = payouts
        .query(&payout::QueryMsg::Batch { batch_id })
        .await
        .unwrap();
    assert_eq!(batch.status, BatchStatus::Finalized);
    assert_eq!(batch.challenged, vec![request_id]);
    // 20 % of each of four inferences.
    assert_eq!(
        developer_claimable(&payouts, &developer).await - developer_before,
        4 * PRICE / 5
    );
    payouts.finalize(&funder, vec![request_id]).await.unwrap();
    let settled = payouts
        .request(request_id)
        .await
        .unwrap()
        .settlement
        .unwrap();
    let paid_to: Vec<u64> = settled.contributions.iter().map(|(id, _)| *id).collect();
    assert_eq!(paid_to, vec![ids[1], ids[2]]);
}

async fn developer_claimable(
    payouts: &tributary_client::PayoutContract<'_>,
    developer: &Signer,
) -> u128 {
    payouts
        .balances(developer.address().as_ref())
        .await
        .unwrap()
        .balances
        .iter()
        .filter(|e| e.asset == AssetInfo::native("utrib"))
        .map(|e| e.amount.u128())
        .sum()
}
