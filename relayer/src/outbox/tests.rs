use super::*;
use tributary_attrib_api::{AttributionSummary, Sampling, SamplingRequest};
use tributary_types::{AttributionEntry, DatanetRoot};

/// Caps no test here reaches unless it means to.
const LIMITS: QueueLimits = QueueLimits {
    per_payer: 1_000,
    total: 10_000,
};

fn request(id: u64, height: u64) -> RequestRecord {
    RequestRecord {
        request_id: id,
        model_id: 1,
        version: 1,
        payer: "trib18pz45j9fupuumnf2a5hamgaptvax0s0djymqpw".into(),
        prompt_hash: "ab".repeat(32),
        amount: "1000".into(),
        asset: "utrib".into(),
        seen_height: height,
        expires_at: Some(10_000),
    }
}

/// The engine request a payer's prompt for `id` becomes.
fn prompt_for(id: u64) -> CompletionRequest {
    CompletionRequest {
        model: "model".into(),
        prompt: format!("prompt {id}"),
        sampling: SamplingRequest::exactly(&Sampling::for_paid_request(id)),
        request_id: Some(id),
        model_id: Some(1),
        model_version: Some(1),
        method: Some("trak-logra-v1".into()),
    }
}

/// The engine's response carrying `packet`.
fn response_with(packet: AttributionPacket) -> CompletionResponse {
    CompletionResponse {
        model: "model".into(),
        request_id: Some(packet.request_id),
        completion: " ok".into(),
        completion_hex: "206f6b".into(),
        sampling: Sampling::for_paid_request(packet.request_id),
        weights_hash: "07".repeat(32),
        attribution: AttributionSummary {
            method: packet.method.clone(),
            top: Vec::new(),
            contributors: Vec::new(),
        },
        packet: Some(packet),
    }
}

/// Keeps a prompt for request `id` if it is only `Seen`, then its response with `packet`.
fn attribute_with(outbox: &Outbox, id: u64, packet: AttributionPacket) -> Result<()> {
    if let Some(entry) = outbox.get(id)? {
        if entry.state == RequestState::Seen {
            outbox.record_prompt(&entry.request, &prompt_for(id), &[7; 32], LIMITS)?;
        }
    }
    outbox.set_attributed(id, &response_with(packet))
}

fn in_flight(outbox: &Outbox) -> Vec<(String, Vec<u64>, u64)> {
    outbox
        .in_flight()
        .unwrap()
        .into_iter()
        .map(|t| (t.tx_hash, t.request_ids, t.timeout_height))
        .collect()
}

fn packet(id: u64) -> AttributionPacket {
    // HexBinary is built through `From<Vec<u8>>` so the tests need no cosmwasm-std dependency.
    let h = || vec![7u8; 32].into();
    AttributionPacket {
        request_id: id,
        model_id: 1,
        model_version: 1,
        weights_hash: h(),
        datanet_roots: vec![DatanetRoot {
            datanet_id: 1,
            version: 1,
            root: h(),
        }],
        method: "trak-logra-v1".into(),
        params_hash: h(),
        output_hash: h(),
        scores_root: h(),
        entries: vec![AttributionEntry {
            contribution_id: 3,
            weight_bps: 5000,
        }],
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // A nested path also checks that `open` creates the directory.
        let path = dir.path().join("state/outbox.redb");
        Self { _dir: dir, path }
    }

    fn open(&self) -> Outbox {
        Outbox::open(&self.path).unwrap()
    }
}

fn kind(outbox: &Outbox, id: u64) -> StateKind {
    outbox.get(id).unwrap().unwrap().state.kind()
}

fn assert_illegal(result: Result<impl fmt::Debug>, id: u64, from: StateKind, to: StateKind) {
    match result {
        Err(OutboxError::IllegalTransition {
            request_id,
            from: f,
            to: t,
        }) => assert_eq!((request_id, f, t), (id, from, to)),
        other => panic!("expected IllegalTransition {id} {from}->{to}, got {other:?}"),
    }
}

/// Seen → Attributed → Broadcast for ids at height 10.
fn broadcast(outbox: &Outbox, ids: &[u64], tx: &str) {
    let reqs: Vec<_> = ids.iter().map(|&id| request(id, 10)).collect();
    outbox.record_seen(&reqs, 10, LIMITS).unwrap();
    for &id in ids {
        attribute_with(outbox, id, packet(id)).unwrap();
    }
    outbox.mark_broadcast(ids, tx, 12).unwrap();
}

#[test]
fn full_lifecycle() {
    let f = Fixture::new();
    let outbox = f.open();
    assert_eq!(outbox.cursor().unwrap(), None);
    assert_eq!(outbox.get(1).unwrap(), None);

    outbox.record_seen(&[request(1, 5)], 5, LIMITS).unwrap();
    let e = outbox.get(1).unwrap().unwrap();
    assert_eq!(e.request, request(1, 5));
    assert_eq!(e.state, RequestState::Seen);

    attribute_with(&outbox, 1, packet(1)).unwrap();
    assert_eq!(
        outbox.get(1).unwrap().unwrap().state,
        RequestState::Attributed { packet: packet(1) }
    );

    outbox.mark_broadcast(&[1], "TX1", 7).unwrap();
    let e = outbox.get(1).unwrap().unwrap();
    assert_eq!(
        e.state,
        RequestState::Broadcast {
            tx_hash: "TX1".into(),
            packets_in_tx: vec![1],
            timeout_height: 7
        }
    );
    assert_eq!(e.broadcast_attempts, 1);

    assert_eq!(outbox.mark_committed("TX1", 8).unwrap(), vec![1]);
    assert_eq!(
        outbox.get(1).unwrap().unwrap().state,
        RequestState::Committed {
            tx_hash: "TX1".into(),
            height: 8
        }
    );
    assert!(outbox.in_flight().unwrap().is_empty());
}

#[test]
fn illegal_transitions_are_refused_and_change_nothing() {
    let f = Fixture::new();
    let outbox = f.open();
    outbox
        .record_seen(&[request(1, 1), request(2, 1)], 1, LIMITS)
        .unwrap();

    // Seen cannot be broadcast.
    assert_illegal(
        outbox.mark_broadcast(&[1], "T", 2),
        1,
        StateKind::Seen,
        StateKind::Broadcast,
    );
    attribute_with(&outbox, 1, packet(1)).unwrap();
    // Attributed twice.
    assert_illegal(
        attribute_with(&outbox, 1, packet(1)),
        1,
        StateKind::Attributed,
        StateKind::Attributed,
    );
    // A batch with one bad member is refused whole: request 1 stays Attributed.
    assert_illegal(
        outbox.mark_broadcast(&[1, 2], "T", 2),
        2,
        StateKind::Seen,
        StateKind::Broadcast,
    );
    assert_eq!(kind(&outbox, 1), StateKind::Attributed);
    assert!(outbox.in_flight().unwrap().is_empty());

    outbox.mark_broadcast(&[1], "T", 2).unwrap();
    // Broadcast cannot fail directly or be attributed or broadcast again.
    assert_illegal(
        outbox.mark_failed(1, "x"),
        1,
        StateKind::Broadcast,
        StateKind::Failed,
    );
    assert_illegal(
        attribute_with(&outbox, 1, packet(1)),
        1,
        StateKind::Broadcast,
        StateKind::Attributed,
    );
    assert_illegal(
        outbox.mark_broadcast(&[1], "T2", 3),
        1,
        StateKind::Broadcast,
        StateKind::Broadcast,
    );

    outbox.mark_committed("T", 3).unwrap();
    // Committed is terminal.
    assert_illegal(
        outbox.mark_failed(1, "x"),
        1,
        StateKind::Committed,
        StateKind::Failed,
    );
    assert_illegal(
        attribute_with(&outbox, 1, packet(1)),
        1,
        StateKind::Committed,
        StateKind::Attributed,
    );
    // The tx is no longer in flight: committing or reverting it again is refused.
    assert!(matches!(
        outbox.mark_committed("T", 4),
        Err(OutboxError::UnknownTx(h)) if h == "T"
    ));
    assert!(matches!(
        outbox.revert_to_attributed("T"),
        Err(OutboxError::UnknownTx(_))
    ));

    // Failed is terminal.
    outbox.mark_failed(2, "request expired").unwrap();
    assert_illegal(
        attribute_with(&outbox, 2, packet(2)),
        2,
        StateKind::Failed,
        StateKind::Attributed,
    );
    assert_illegal(
        outbox.mark_failed(2, "again"),
        2,
        StateKind::Failed,
        StateKind::Failed,
    );
}

#[test]
fn bad_input_is_a_typed_error() {
    let f = Fixture::new();
    let outbox = f.open();
    assert!(matches!(
        attribute_with(&outbox, 9, packet(9)),
        Err(OutboxError::UnknownRequest(9))
    ));
    assert!(matches!(
        outbox.mark_failed(9, "x"),
        Err(OutboxError::UnknownRequest(9))
    ));
    assert!(matches!(
        outbox.mark_broadcast(&[], "T", 1),
        Err(OutboxError::EmptyBatch)
    ));
    assert!(matches!(
        outbox.mark_broadcast(&[9], "T", 1),
        Err(OutboxError::UnknownRequest(9))
    ));

    outbox
        .record_seen(&[request(1, 1), request(2, 1)], 1, LIMITS)
        .unwrap();
    assert!(matches!(
        attribute_with(&outbox, 1, packet(2)),
        Err(OutboxError::PacketMismatch { request_id: 1, .. })
    ));
    let mut wrong_model = packet(1);
    wrong_model.model_version = 2;
    let err = attribute_with(&outbox, 1, wrong_model.clone()).unwrap_err();
    assert!(err.to_string().contains("model 1 version 2"), "{err}");
    assert_eq!(kind(&outbox, 1), StateKind::Prompted);
    // A response without a packet is refused.
    let mut bare = response_with(packet(1));
    bare.packet = None;
    assert!(matches!(
        outbox.set_attributed(1, &bare),
        Err(OutboxError::NoPacket(1))
    ));

    attribute_with(&outbox, 1, packet(1)).unwrap();
    attribute_with(&outbox, 2, packet(2)).unwrap();
    assert!(matches!(
        outbox.mark_broadcast(&[1, 1], "T", 1),
        Err(OutboxError::DuplicateInBatch(1))
    ));
    outbox.mark_broadcast(&[1], "T", 1).unwrap();
    assert!(matches!(
        outbox.mark_broadcast(&[2], "T", 1),
        Err(OutboxError::DuplicateTx(_))
    ));
    assert_eq!(kind(&outbox, 2), StateKind::Attributed);

    assert!(matches!(
        outbox.record_seen(&[request(3, 9)], 5, LIMITS),
        Err(OutboxError::RequestAboveCursor { request_id: 3, .. })
    ));
    assert_eq!(outbox.get(3).unwrap(), None);
}

#[test]
fn cursor_advances_with_requests_and_never_moves_back() {
    let f = Fixture::new();
    {
        let outbox = f.open();
        outbox
            .record_seen(&[request(1, 3), request(2, 4)], 4, LIMITS)
            .unwrap();
        // An empty scan still advances the cursor.
        outbox.record_seen(&[], 6, LIMITS).unwrap();
    }
    let outbox = f.open();
    assert_eq!(outbox.cursor().unwrap(), Some(6));
    assert_eq!(outbox.counts().unwrap().seen, 2);
    assert!(matches!(
        outbox.record_seen(&[request(3, 5)], 5, LIMITS),
        Err(OutboxError::CursorRegression {
            current: 6,
            requested: 5
        })
    ));
    // The refused scan left neither its request nor its cursor.
    assert_eq!(outbox.get(3).unwrap(), None);
    assert_eq!(outbox.cursor().unwrap(), Some(6));
    // Rescanning the same height is allowed (a crash right after recording it).
    outbox.record_seen(&[request(2, 4)], 6, LIMITS).unwrap();
}

#[test]
fn reopen_after_every_step_keeps_everything() {
    let f = Fixture::new();
    f.open()
        .record_seen(&[request(1, 1), request(2, 2)], 2, LIMITS)
        .unwrap();
    assert_eq!(f.open().waiting_for_prompt(10).unwrap().len(), 2);

    attribute_with(&f.open(), 1, packet(1)).unwrap();
    attribute_with(&f.open(), 2, packet(2)).unwrap();
    assert_eq!(
        f.open().ready_to_commit(10).unwrap(),
        vec![(1, packet(1)), (2, packet(2))]
    );

    f.open().mark_broadcast(&[1, 2], "TX", 3).unwrap();
    // A crash after broadcast: the restart sees the tx in flight, not packets to commit.
    let outbox = f.open();
    assert_eq!(in_flight(&outbox), vec![("TX".to_string(), vec![1, 2], 3)]);
    assert!(outbox.ready_to_commit(10).unwrap().is_empty());
    drop(outbox);

    f.open().revert_to_attributed("TX").unwrap();
    assert_eq!(f.open().ready_to_commit(10).unwrap().len(), 2);
    f.open().mark_broadcast(&[1, 2], "TX2", 5).unwrap();
    f.open().mark_committed("TX2", 6).unwrap();

    let outbox = f.open();
    assert_eq!(outbox.cursor().unwrap(), Some(2));
    assert_eq!(
        outbox.counts().unwrap(),
        OutboxCounts {
            committed: 2,
            ..Default::default()
        }
    );
    let e = outbox.get(2).unwrap().unwrap();
    assert_eq!(
        e.state,
        RequestState::Committed {
            tx_hash: "TX2".into(),
            height: 6
        }
    );
    assert_eq!(e.broadcast_attempts, 2);
    assert_eq!(e.request, request(2, 2));
}

#[test]
fn rerecording_keeps_current_state() {
    let f = Fixture::new();
    let outbox = f.open();
    broadcast(&outbox, &[1], "TX");
    outbox.mark_committed("TX", 11).unwrap();
    outbox.record_seen(&[request(2, 10)], 10, LIMITS).unwrap();
    attribute_with(&outbox, 2, packet(2)).unwrap();

    // A rescan after a crash sees both again, with changed fields even.
    let mut again = request(1, 10);
    again.amount = "1".into();
    outbox
        .record_seen(&[again, request(2, 10)], 12, LIMITS)
        .unwrap();

    let e = outbox.get(1).unwrap().unwrap();
    assert_eq!(e.state.kind(), StateKind::Committed);
    assert_eq!(e.request.amount, "1000");
    assert_eq!(kind(&outbox, 2), StateKind::Attributed);
    assert_eq!(outbox.cursor().unwrap(), Some(12));
    assert_eq!(
        outbox.counts().unwrap(),
        OutboxCounts {
            attributed: 1,
            committed: 1,
            ..Default::default()
        }
    );
}

#[test]
fn revert_puts_the_whole_tx_back_and_leaves_others() {
    let f = Fixture::new();
    let outbox = f.open();
    broadcast(&outbox, &[1, 2, 3], "A");
    broadcast(&outbox, &[4], "B");
    assert_eq!(outbox.counts().unwrap().broadcast, 4);

    assert_eq!(outbox.revert_to_attributed("A").unwrap(), vec![1, 2, 3]);
    for id in 1..=3 {
        assert_eq!(
            outbox.get(id).unwrap().unwrap().state,
            RequestState::Attributed { packet: packet(id) }
        );
    }
    assert_eq!(kind(&outbox, 4), StateKind::Broadcast);
    assert_eq!(in_flight(&outbox), vec![("B".to_string(), vec![4], 12)]);
    let ready: Vec<u64> = outbox
        .ready_to_commit(10)
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ready, vec![1, 2, 3]);

    // A reverted request can now be failed, and remembers its attempts.
    outbox.mark_failed(2, "request refunded").unwrap();
    assert_eq!(
        outbox.get(2).unwrap().unwrap().state,
        RequestState::Failed {
            reason: "request refunded".into(),
            attempts: 1
        }
    );
}

#[test]
fn counts_track_every_state() {
    let f = Fixture::new();
    let outbox = f.open();
    assert_eq!(outbox.counts().unwrap(), OutboxCounts::default());
    broadcast(&outbox, &[1, 2], "A");
    outbox.mark_committed("A", 11).unwrap();
    broadcast(&outbox, &[3], "B");
    outbox
        .record_seen(
            &[request(4, 10), request(5, 10), request(6, 10)],
            10,
            LIMITS,
        )
        .unwrap();
    attribute_with(&outbox, 4, packet(4)).unwrap();
    outbox.mark_failed(5, "expired").unwrap();
    assert_eq!(
        outbox.counts().unwrap(),
        OutboxCounts {
            seen: 1,
            prompted: 0,
            attributed: 1,
            broadcast: 1,
            committed: 2,
            failed: 1,
        }
    );
}

#[test]
fn queues_are_oldest_first_and_limited() {
    let f = Fixture::new();
    let outbox = f.open();
    // Ids out of height order: order is by seen height, then id.
    outbox
        .record_seen(
            &[
                request(30, 1),
                request(5, 3),
                request(20, 2),
                request(10, 2),
            ],
            3,
            LIMITS,
        )
        .unwrap();
    let pending: Vec<u64> = outbox
        .waiting_for_prompt(10)
        .unwrap()
        .iter()
        .map(|r| r.request_id)
        .collect();
    assert_eq!(pending, vec![30, 10, 20, 5]);
    assert_eq!(outbox.waiting_for_prompt(2).unwrap().len(), 2);

    for id in [5, 20, 30, 10] {
        attribute_with(&outbox, id, packet(id)).unwrap();
    }
    let ready: Vec<u64> = outbox
        .ready_to_commit(3)
        .unwrap()
        .into_iter()
        .map(|(id, p)| {
            assert_eq!(p, packet(id));
            id
        })
        .collect();
    assert_eq!(ready, vec![30, 10, 20]);
    assert!(outbox.waiting_for_prompt(10).unwrap().is_empty());
    assert!(outbox.ready_to_attribute(10).unwrap().is_empty());
}

#[test]
fn in_flight_groups_by_tx_earliest_timeout_first() {
    let f = Fixture::new();
    let outbox = f.open();
    outbox
        .record_seen(
            &(1..=5).map(|id| request(id, 1)).collect::<Vec<_>>(),
            1,
            LIMITS,
        )
        .unwrap();
    for id in 1..=5 {
        attribute_with(&outbox, id, packet(id)).unwrap();
    }
    outbox.mark_broadcast(&[3, 1], "ZZ", 4).unwrap();
    outbox.mark_broadcast(&[2, 5], "AA", 9).unwrap();
    assert_eq!(
        in_flight(&outbox),
        vec![
            ("ZZ".to_string(), vec![3, 1], 4),
            ("AA".to_string(), vec![2, 5], 9)
        ]
    );
    assert_eq!(outbox.mark_committed("AA", 10).unwrap(), vec![2, 5]);
    assert_eq!(in_flight(&outbox), vec![("ZZ".to_string(), vec![3, 1], 4)]);
}

#[test]
fn the_first_prompt_is_kept_and_survives_a_reopen() {
    let f = Fixture::new();
    // A payer may send its prompt before the relayer has scanned the request's block: the
    // request is kept from the record the payment check read.
    let first = prompt_for(5);
    let second = CompletionRequest {
        prompt: "another".into(),
        ..prompt_for(5)
    };
    assert_eq!(
        f.open()
            .record_prompt(&request(5, 0), &first, &[7; 32], LIMITS)
            .unwrap(),
        PromptKept::New
    );
    assert_eq!(
        f.open()
            .record_prompt(&request(5, 0), &second, &[7; 32], LIMITS)
            .unwrap(),
        PromptKept::Already
    );
    let outbox = f.open();
    assert_eq!(outbox.prompt(5).unwrap(), Some(first));
    assert_eq!(outbox.prompt(6).unwrap(), None);
    assert_eq!(kind(&outbox, 5), StateKind::Prompted);
    // Scanning its block later changes nothing.
    outbox.record_seen(&[request(5, 3)], 3, LIMITS).unwrap();
    assert_eq!(kind(&outbox, 5), StateKind::Prompted);
    // The response is kept with the packet, for the payer to read back.
    assert_eq!(outbox.response(5).unwrap(), None);
    attribute_with(&outbox, 5, packet(5)).unwrap();
    assert_eq!(outbox.response(5).unwrap(), Some(response_with(packet(5))));
}

#[test]
fn a_given_up_request_takes_no_prompt() {
    let f = Fixture::new();
    let outbox = f.open();
    outbox.record_seen(&[request(1, 1)], 1, LIMITS).unwrap();
    outbox.mark_failed(1, "expired").unwrap();
    assert_illegal(
        outbox.record_prompt(&request(1, 1), &prompt_for(1), &[7; 32], LIMITS),
        1,
        StateKind::Failed,
        StateKind::Prompted,
    );
    assert_eq!(outbox.prompt(1).unwrap(), None);
}

// --- queues a payer cannot stall ---------------------------------------------------------

/// Request `id` of its own payer.
fn request_of(id: u64, height: u64, payer: &str) -> RequestRecord {
    RequestRecord {
        payer: payer.to_string(),
        ..request(id, height)
    }
}

fn ids(ready: Vec<(RequestRecord, CompletionRequest)>) -> Vec<u64> {
    ready.into_iter().map(|(r, _)| r.request_id).collect()
}

#[test]
fn a_prompted_request_behind_hundreds_of_unprompted_ones_is_attributable_first() {
    let f = Fixture::new();
    let outbox = f.open();
    let unprompted: Vec<RequestRecord> = (1..=300)
        .map(|id| request_of(id, 1, &format!("payer{id}")))
        .collect();
    outbox.record_seen(&unprompted, 1, LIMITS).unwrap();
    outbox.record_seen(&[request(301, 2)], 2, LIMITS).unwrap();
    outbox
        .record_prompt(&request(301, 2), &prompt_for(301), &[7; 32], LIMITS)
        .unwrap();
    assert_eq!(ids(outbox.ready_to_attribute(16).unwrap()), vec![301]);
    assert_eq!(outbox.counts().unwrap().seen, 300);
    assert_eq!(outbox.counts().unwrap().prompted, 1);
}

#[test]
fn attribution_takes_turns_between_models_and_payers() {
    let f = Fixture::new();
    let outbox = f.open();
    // Payer a prompts ten requests first, then b and c one each; c's is for model 2.
    let mut records: Vec<RequestRecord> = (1..=10).map(|id| request_of(id, 1, "a")).collect();
    records.push(request_of(11, 2, "b"));
    records.push(RequestRecord {
        model_id: 2,
        ..request_of(12, 2, "c")
    });
    outbox.record_seen(&records, 2, LIMITS).unwrap();
    for r in &records {
        outbox
            .record_prompt(r, &prompt_for(r.request_id), &[7; 32], LIMITS)
            .unwrap();
    }
    // Model 1 and model 2 in turn, and within model 1, a and b in turn.
    assert_eq!(
        ids(outbox.ready_to_attribute(5).unwrap()),
        vec![1, 12, 11, 2, 3]
    );
    assert_eq!(outbox.ready_to_attribute(100).unwrap().len(), 12);
}

#[test]
fn each_queue_is_capped_per_payer_and_in_all() {
    let f = Fixture::new();
    let outbox = f.open();
    let limits = QueueLimits {
        per_payer: 2,
        total: 3,
    };
    // Waiting for prompts: a's third request and anyone's fourth are not kept.
    let seen = [
        request_of(1, 1, "a"),
        request_of(2, 1, "a"),
        request_of(3, 1, "a"),
        request_of(4, 1, "b"),
        request_of(5, 1, "c"),
    ];
    assert_eq!(outbox.record_seen(&seen, 1, limits).unwrap(), vec![3, 5]);
    assert_eq!(outbox.get(3).unwrap(), None);
    // A request not kept is still served if its prompt comes: it is kept from the chain's
    // record then.
    assert_eq!(
        outbox
            .record_prompt(&seen[2], &prompt_for(3), &[7; 32], limits)
            .unwrap(),
        PromptKept::New
    );
    assert_eq!(kind(&outbox, 3), StateKind::Prompted);
    // Waiting for attribution: a's third prompt is refused, and anyone's fourth.
    outbox
        .record_prompt(&seen[0], &prompt_for(1), &[7; 32], limits)
        .unwrap();
    assert!(matches!(
        outbox.record_prompt(&seen[1], &prompt_for(2), &[7; 32], limits),
        Err(OutboxError::PayerQueueFull { ref payer, waiting: 2, limit: 2 }) if payer == "a"
    ));
    outbox
        .record_prompt(&seen[3], &prompt_for(4), &[7; 32], limits)
        .unwrap();
    assert!(matches!(
        outbox.record_prompt(&seen[4], &prompt_for(5), &[7; 32], limits),
        Err(OutboxError::QueueFull {
            waiting: 3,
            limit: 3
        })
    ));
    assert_eq!(
        kind(&outbox, 2),
        StateKind::Seen,
        "a refused prompt changes nothing"
    );
    // Attributing one makes room.
    attribute_with(&outbox, 1, packet(1)).unwrap();
    outbox
        .record_prompt(&seen[1], &prompt_for(2), &[7; 32], limits)
        .unwrap();
}

#[test]
fn expired_requests_leave_every_queue_by_block_time() {
    let f = Fixture::new();
    let outbox = f.open();
    let at = |id: u64, expires_at: Option<u64>| RequestRecord {
        expires_at,
        ..request(id, 1)
    };
    let records = [
        at(1, Some(100)),
        at(2, Some(100)),
        at(3, Some(100)),
        at(4, Some(200)),
        at(5, None),
        at(6, Some(100)),
    ];
    outbox.record_seen(&records, 1, LIMITS).unwrap();
    outbox
        .record_prompt(&records[1], &prompt_for(2), &[7; 32], LIMITS)
        .unwrap();
    attribute_with(&outbox, 3, packet(3)).unwrap();
    attribute_with(&outbox, 6, packet(6)).unwrap();
    outbox.mark_broadcast(&[6], "TX", 9).unwrap();
    assert_eq!(outbox.without_expiry(10).unwrap(), vec![5]);

    assert!(outbox.prune_expired(99).unwrap().is_empty());
    let mut pruned = outbox.prune_expired(100).unwrap();
    pruned.sort();
    // Seen, prompted and attributed ones go; the one in a transaction waits for its fate.
    assert_eq!(pruned, vec![1, 2, 3]);
    for id in [1, 2, 3] {
        assert_eq!(kind(&outbox, id), StateKind::Failed);
    }
    assert_eq!(kind(&outbox, 4), StateKind::Seen);
    assert_eq!(kind(&outbox, 6), StateKind::Broadcast);
    outbox.set_expiry(5, 150).unwrap();
    assert!(outbox.without_expiry(10).unwrap().is_empty());
    assert_eq!(outbox.prune_expired(150).unwrap(), vec![5]);
}

#[test]
fn the_layout_is_recorded_and_a_newer_one_is_refused() {
    let f = Fixture::new();
    {
        let outbox = f.open();
        assert_eq!(outbox.schema_version().unwrap(), SCHEMA_VERSION);
        outbox.record_seen(&[request(1, 5)], 5, LIMITS).unwrap();
    }
    // A later release wrote layout SCHEMA_VERSION + 1: this one refuses to read it.
    {
        let db = Database::create(&f.path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert(SCHEMA_KEY, SCHEMA_VERSION + 1)
            .unwrap();
        txn.commit().unwrap();
    }
    match Outbox::open(&f.path) {
        Err(OutboxError::NewerSchema { found, supported }) => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("opened a newer layout: {:?}", other.map(|_| ())),
    }
}

#[test]
fn a_failed_request_is_retried_from_where_its_inputs_allow() {
    let f = Fixture::new();
    let outbox = f.open();
    outbox
        .record_seen(&[request(1, 5), request(2, 5), request(3, 5)], 5, LIMITS)
        .unwrap();
    attribute_with(&outbox, 1, packet(1)).unwrap();
    outbox.mark_failed(1, "the engine refused").unwrap();
    outbox.mark_failed(2, "expired before its prompt").unwrap();

    // With its prompt kept it goes back to attribution; without, to waiting for the prompt.
    assert_eq!(outbox.retry(1).unwrap(), StateKind::Prompted);
    assert_eq!(kind(&outbox, 1), StateKind::Prompted);
    assert_eq!(outbox.get(1).unwrap().unwrap().broadcast_attempts, 0);
    assert_eq!(outbox.retry(2).unwrap(), StateKind::Seen);
    assert_eq!(kind(&outbox, 2), StateKind::Seen);
    let counts = outbox.counts().unwrap();
    assert_eq!((counts.failed, counts.prompted, counts.seen), (0, 1, 2));

    // Only a failed request is retried, and an unknown one is named.
    assert_illegal(outbox.retry(3), 3, StateKind::Seen, StateKind::Seen);
    assert!(matches!(
        outbox.retry(9),
        Err(OutboxError::UnknownRequest(9))
    ));
}

#[test]
fn listing_pages_by_id_and_filters_by_state() {
    let f = Fixture::new();
    let outbox = f.open();
    let requests: Vec<RequestRecord> = (1..=7).map(|id| request(id, 5)).collect();
    outbox.record_seen(&requests, 5, LIMITS).unwrap();
    for id in [2, 4, 6] {
        attribute_with(&outbox, id, packet(id)).unwrap();
    }
    let ids = |entries: Vec<OutboxEntry>| -> Vec<u64> {
        entries.iter().map(|e| e.request.request_id).collect()
    };
    assert_eq!(ids(outbox.list(None, None, 3).unwrap()), vec![1, 2, 3]);
    assert_eq!(ids(outbox.list(None, Some(3), 3).unwrap()), vec![4, 5, 6]);
    assert_eq!(ids(outbox.list(None, Some(6), 3).unwrap()), vec![7]);
    assert_eq!(
        ids(outbox.list(Some(StateKind::Attributed), None, 10).unwrap()),
        vec![2, 4, 6]
    );
    assert_eq!(
        ids(outbox
            .list(Some(StateKind::Attributed), Some(2), 1)
            .unwrap()),
        vec![4]
    );
    assert!(outbox.list(None, Some(u64::MAX), 10).unwrap().is_empty());
    let listed = outbox.list(Some(StateKind::Attributed), None, 1).unwrap();
    assert_eq!(
        listed[0].state,
        RequestState::Attributed { packet: packet(2) }
    );
}

#[test]
fn an_export_has_the_layout_then_every_request_with_its_inputs() {
    let f = Fixture::new();
    let outbox = f.open();
    outbox
        .record_seen(&[request(1, 5), request(2, 5)], 5, LIMITS)
        .unwrap();
    attribute_with(&outbox, 2, packet(2)).unwrap();
    let mut out = Vec::new();
    assert_eq!(outbox.export(&mut out).unwrap(), 2);
    let lines: Vec<serde_json::Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["tributary_relayer_outbox"], SCHEMA_VERSION);
    assert_eq!(lines[0]["cursor"], 5);
    assert_eq!(lines[1]["entry"]["request"]["request_id"], 1);
    assert_eq!(lines[1]["entry"]["state"], "seen");
    assert!(lines[1]["prompt"].is_null() && lines[1]["response"].is_null());
    assert_eq!(lines[2]["entry"]["state"], "attributed");
    assert_eq!(lines[2]["entry"]["packet"]["request_id"], 2);
    assert_eq!(lines[2]["prompt"]["prompt"], "prompt 2");
    assert_eq!(lines[2]["response"]["completion_hex"], "206f6b");
}
