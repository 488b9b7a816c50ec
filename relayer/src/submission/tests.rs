//! The payer's side against a scripted chain and engine: no node, no model.

use tributary_types::payout::RequestStatus;

use super::*;
use crate::testing::{desk, desk_with, paid, EXPIRES_AT, METHOD, PAYER};

// --- the payment check ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_prompt_is_kept_and_answered_with_its_packet() {
    let d = desk();
    d.ledger.pay(5, "What is a pipe?", (1, 1));
    let submitted = d
        .submissions
        .submit(paid(5, "What is a pipe?"))
        .await
        .unwrap();
    let packet = submitted.response.packet.unwrap();
    assert_eq!(
        (packet.request_id, packet.model_id, packet.model_version),
        (5, 1, 1)
    );
    assert!(d.outbox.prompt(5).unwrap().is_some(), "the prompt is kept");
    let asked = d.engine.last();
    assert_eq!(asked.model, "model");
    assert_eq!(asked.request_id, Some(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_served_version_is_generated_by_its_own_engine_model() {
    let d = desk();
    d.ledger.pay(21, "for the second model", (3, 1));
    d.ledger.pay(22, "for the first model", (1, 1));
    for (id, prompt, model) in [
        (21, "for the second model", "second-model"),
        (22, "for the first model", "model"),
    ] {
        d.submissions.submit(paid(id, prompt)).await.unwrap();
        let asked = d.engine.last();
        assert_eq!((asked.request_id, asked.model.as_str()), (Some(id), model));
        assert_eq!(asked.model_id, Some(if id == 21 { 3 } else { 1 }));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpaid_foreign_closed_and_mismatched_requests_are_refused_before_the_engine() {
    let d = desk();
    d.ledger.pay(6, "mine", (1, 1));
    d.ledger.pay(7, "other model", (2, 1));
    d.ledger.pay(8, "closed", (1, 1));
    d.ledger.set_status(8, RequestStatus::Refunded);
    let refusals = [
        (paid(99, "unpaid"), "request 99 is not paid on chain"),
        (paid(6, "not mine"), "does not match the prompt_hash"),
        (paid(7, "other model"), "does not serve"),
        (paid(8, "closed"), "request 8 is refunded"),
    ];
    for (request, expected) in refusals {
        let e = d.submissions.submit(request).await.unwrap_err();
        assert!(e.to_string().contains(expected), "{e}");
    }
    assert_eq!(d.engine.calls(), 0);
    for id in [6, 7, 8, 99] {
        assert!(d.outbox.prompt(id).unwrap().is_none(), "request {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_fields_are_refused_by_name() {
    let d = desk();
    d.ledger.pay(9, "hi", (1, 1));
    let request: PaidCompletion = serde_json::from_value(
        serde_json::json!({"request_id": 9, "prompt": "hi", "max_token": 3}),
    )
    .unwrap();
    let e = d.submissions.submit(request).await.unwrap_err();
    assert!(
        matches!(&e, SubmitError::UnknownFields(f) if f == "max_token"),
        "{e}"
    );
}

fn paid_with(id: u64, prompt: &str, fields: serde_json::Value) -> PaidCompletion {
    let mut body = serde_json::json!({"request_id": id, "prompt": prompt});
    for (k, v) in fields.as_object().unwrap() {
        body[k] = v.clone();
    }
    serde_json::from_value(body).unwrap()
}

// --- what decides the packet is not the payer's to choose -------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_request_is_generated_with_the_method_it_was_paid_under_and_the_fixed_sampling() {
    let d = desk();
    d.ledger.pay(11, "What is a pipe?", (1, 1));
    d.submissions
        .submit(paid(11, "What is a pipe?"))
        .await
        .unwrap();
    let asked = d.engine.last();
    assert_eq!(asked.method.as_deref(), Some(METHOD));
    assert_eq!(
        asked.sampling,
        SamplingRequest::exactly(&Sampling::for_paid_request(11))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payer_chosen_method_or_sampling_is_refused() {
    let d = desk();
    d.ledger.pay(12, "What is a pipe?", (1, 1));
    for (fields, mentions) in [
        (serde_json::json!({"method": "cosine-logra-v1"}), METHOD),
        (serde_json::json!({"seed": 7}), "seed 7 (fixed at 12)"),
        (serde_json::json!({"max_tokens": 16}), "max_tokens 16"),
        (serde_json::json!({"temperature": 0.0}), "temperature 0"),
        (serde_json::json!({"top_k": 1}), "top_k 1"),
    ] {
        let e = d
            .submissions
            .submit(paid_with(12, "What is a pipe?", fields.clone()))
            .await
            .unwrap_err();
        assert!(e.to_string().contains(mentions), "{fields}: {e}");
    }
    assert_eq!(d.engine.calls(), 0, "nothing refused reached the engine");
    assert!(d.outbox.prompt(12).unwrap().is_none());
    // The values the request is served with anyway may be given.
    let fixed = Sampling::for_paid_request(12);
    let same = serde_json::json!({"method": METHOD, "seed": 12, "max_tokens": fixed.max_tokens});
    d.submissions
        .submit(paid_with(12, "What is a pipe?", same))
        .await
        .unwrap();
}

// --- a prompt is served only while the relayer can still commit -------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_close_to_its_expiry_is_not_served() {
    let d = desk();
    d.ledger.pay(13, "late", (1, 1));
    d.ledger.set_now(EXPIRES_AT - 59);
    let e = d.submissions.submit(paid(13, "late")).await.unwrap_err();
    assert!(
        matches!(
            e,
            SubmitError::TooLate {
                remaining: 59,
                margin: 60,
                ..
            }
        ),
        "{e}"
    );
    d.ledger.set_now(EXPIRES_AT + 5);
    let e = d.submissions.submit(paid(13, "late")).await.unwrap_err();
    assert!(
        matches!(e, SubmitError::TooLate { remaining: 0, .. }),
        "{e}"
    );
    assert_eq!(d.engine.calls(), 0);
    assert!(d.outbox.prompt(13).unwrap().is_none());
    d.ledger.set_now(EXPIRES_AT - 60);
    d.submissions.submit(paid(13, "late")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_this_relayer_may_not_commit_is_not_served() {
    let d = desk();
    d.ledger.pay(14, "hi", (1, 1));
    d.ledger.set_attestors(&[PAYER]);
    let e = d.submissions.submit(paid(14, "hi")).await.unwrap_err();
    assert!(matches!(e, SubmitError::NotAnAttestor { .. }), "{e}");
    assert_eq!(d.engine.calls(), 0);
}

// --- the queue ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payer_over_its_queue_cap_is_asked_to_come_back_later() {
    let d = desk_with(QueueLimits {
        per_payer: 1,
        total: 10,
    });
    d.engine.set_down(true);
    d.ledger.pay(21, "one", (1, 1));
    d.ledger.pay(22, "two", (1, 1));
    // The engine is down: the first prompt is kept, and the payer hears why it waits.
    let e = d.submissions.submit(paid(21, "one")).await.unwrap_err();
    assert!(
        matches!(&e, SubmitError::Queued { token: Some(_), cause, .. } if cause.contains("unavailable")),
        "{e}"
    );
    assert!(d.outbox.prompt(21).unwrap().is_some());
    // Its second waits for the first to be attributed.
    let e = d.submissions.submit(paid(22, "two")).await.unwrap_err();
    assert!(matches!(e, SubmitError::Busy(_)), "{e}");
    assert!(d.outbox.prompt(22).unwrap().is_none());
    // Back up: the first is attributed from its kept prompt, and the second gets its turn.
    d.engine.set_down(false);
    let first = d.submissions.submit(paid(21, "one")).await.unwrap();
    assert_eq!(first.response.request_id, Some(21));
    let second = d.submissions.submit(paid(22, "two")).await.unwrap();
    assert_eq!(second.response.request_id, Some(22));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_given_up_is_not_served() {
    let d = desk();
    d.ledger.pay(23, "late", (1, 1));
    let record = RequestRecord {
        request_id: 23,
        model_id: 1,
        version: 1,
        payer: PAYER.into(),
        prompt_hash: String::new(),
        amount: "1000".into(),
        asset: "utrib".into(),
        seen_height: 1,
        expires_at: Some(EXPIRES_AT),
    };
    d.outbox
        .record_seen(
            &[record],
            1,
            QueueLimits {
                per_payer: 9,
                total: 9,
            },
        )
        .unwrap();
    d.outbox.mark_failed(23, "expired").unwrap();
    let e = d.submissions.submit(paid(23, "late")).await.unwrap_err();
    assert!(matches!(e, SubmitError::GivenUp { .. }), "{e}");
    assert_eq!(d.engine.calls(), 0);
}

// --- only the payer reads a completion, and nothing runs without payment ---------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_a_completion_needs_the_token_handed_out_at_submission() {
    let d = desk();
    d.ledger.pay(31, "mine", (1, 1));
    let submitted = d.submissions.submit(paid(31, "mine")).await.unwrap();
    let token = submitted
        .token
        .clone()
        .expect("the first submission hands out a token");
    assert_eq!(token.len(), 64);
    for wrong in [None, Some("0".repeat(64)), Some(String::new())] {
        let e = d.submissions.read(31, wrong.as_deref()).await.unwrap_err();
        assert!(matches!(e, SubmitError::Unauthorized(31)), "{wrong:?}: {e}");
    }
    assert_eq!(
        d.submissions.read(31, Some(&token)).await.unwrap(),
        submitted.response
    );
    // Submitting the prompt again proves it again: the same completion, no second token.
    let again = d.submissions.submit(paid(31, "mine")).await.unwrap();
    assert_eq!(again.response, submitted.response);
    assert_eq!(again.token, None);
    // Only a hash of the token is kept.
    let kept = d.outbox.token_hash(31).unwrap().unwrap();
    assert_eq!(kept, tributary_types::sha256(token.as_bytes()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_a_completion_never_runs_the_engine() {
    let d = desk();
    d.ledger.pay(32, "mine", (1, 1));
    let submitted = d.submissions.submit(paid(32, "mine")).await.unwrap();
    assert_eq!(d.engine.calls(), 1);
    let token = submitted.token.unwrap();
    for _ in 0..3 {
        d.submissions.read(32, Some(&token)).await.unwrap();
    }
    assert_eq!(d.engine.calls(), 1, "reads are served from the outbox");
    // Nothing was submitted for 33: there is nothing to read, and nothing runs.
    let e = d.submissions.read(33, Some(&token)).await.unwrap_err();
    assert!(matches!(e, SubmitError::NoPrompt(33)), "{e}");
    assert_eq!(d.engine.calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payer_whose_completion_is_queued_gets_its_token_to_read_it_later() {
    let d = desk();
    d.engine.set_down(true);
    d.ledger.pay(34, "later", (1, 1));
    let e = d.submissions.submit(paid(34, "later")).await.unwrap_err();
    let SubmitError::Queued { token, .. } = e else {
        panic!("{e}");
    };
    let token = token.expect("the first submission hands out a token");
    d.engine.set_down(false);
    let again = d.submissions.submit(paid(34, "later")).await.unwrap();
    assert_eq!(again.token, None);
    assert_eq!(
        d.submissions.read(34, Some(&token)).await.unwrap(),
        again.response
    );
}
