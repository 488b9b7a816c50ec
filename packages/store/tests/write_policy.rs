//! Who may write: bytes the chain knows (against a stand-in for the node's REST gateway),
//! accounts with bearer tokens and quotas, and nobody else.

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode as AxumStatus;
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE;
use base64::Engine;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tributary_store::api::ErrorCode;
use tributary_store::{
    AccountPolicy, ChainGate, ContentHash, ContentStore, Error, LocalStore, ServerConfig,
};

use support::{error_body, TestServer};

const DATANET: &str = "trib1datanet";

/// Contributions by content hash, as the datanet contract would list them.
type Contributions = Arc<Mutex<HashMap<String, Vec<Value>>>>;

/// A stand-in for the node's REST gateway that answers the datanet contract's
/// `contributions_by_hash` smart query from `contributions`.
async fn fake_chain(contributions: Contributions) -> String {
    async fn smart(
        State(contributions): State<Contributions>,
        UrlPath((contract, query)): UrlPath<(String, String)>,
    ) -> (AxumStatus, Json<Value>) {
        if contract != DATANET {
            let error = json!({"code": 5, "message": "no such contract"});
            return (AxumStatus::INTERNAL_SERVER_ERROR, Json(error));
        }
        let query: Value = serde_json::from_slice(&URL_SAFE.decode(query).unwrap()).unwrap();
        let hash = query["contributions_by_hash"]["content_hash"]
            .as_str()
            .unwrap()
            .to_string();
        let listed = contributions
            .lock()
            .unwrap()
            .get(&hash)
            .cloned()
            .unwrap_or_default();
        (
            AxumStatus::OK,
            Json(json!({"data": {"contributions": listed}})),
        )
    }
    let app = Router::new()
        .route(
            "/cosmwasm/wasm/v1/contract/{contract}/smart/{query}",
            get(smart),
        )
        .with_state(contributions);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// A contribution as the datanet contract answers it.
fn contribution(id: u64, bytes: &[u8], status: &str, size_bytes: usize) -> Value {
    json!({
        "id": id,
        "datanet_id": 1,
        "contributor": "trib1contributor",
        "content_hash": ContentHash::of(bytes).to_hex(),
        "size_bytes": size_bytes,
        "uri": "tributary://blobs",
        "media_type": "text/plain",
        "metadata": null,
        "status": status,
        "submitted_at": "1700000000000000000",
        "reviewed_by": null,
        "reason": null,
        "leaf_index": null,
        "usage_count": 0,
    })
}

async fn chain_gated(contributions: Contributions) -> TestServer {
    let rest = fake_chain(contributions).await;
    let gate = ChainGate::new(&rest, DATANET).unwrap();
    TestServer::start_with(
        |root| LocalStore::open(root).unwrap(),
        Arc::new(gate),
        ServerConfig::default(),
    )
    .await
}

async fn put(server: &TestServer, bytes: &[u8], token: Option<&str>) -> reqwest::Response {
    let hash = ContentHash::of(bytes);
    let mut request = reqwest::Client::new()
        .put(server.url(&format!("/blobs/{hash}")))
        .body(bytes.to_vec());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

// ---- the chain ----

#[tokio::test]
async fn a_stranger_cannot_write_bytes_the_chain_does_not_know() {
    let server = chain_gated(Contributions::default()).await;
    let refused = put(&server, b"anything at all", None).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body = error_body(refused).await;
    assert_eq!(body.code, ErrorCode::NotOnChain);
    assert!(body
        .error
        .contains(&ContentHash::of(b"anything at all").to_hex()));
    assert!(server.folder_is_empty());
}

#[tokio::test]
async fn bytes_of_a_live_contribution_are_taken_up_to_the_size_the_chain_recorded() {
    let contributions = Contributions::default();
    let pending = b"a pending contribution".to_vec();
    let accepted = b"an accepted contribution".to_vec();
    let understated = b"recorded on chain as shorter than it is".to_vec();
    for (id, (bytes, status, size)) in [
        (&pending, "pending", pending.len()),
        (&accepted, "accepted", accepted.len()),
        (&understated, "pending", 10),
    ]
    .into_iter()
    .enumerate()
    {
        contributions.lock().unwrap().insert(
            ContentHash::of(bytes).to_hex(),
            vec![contribution(id as u64, bytes, status, size)],
        );
    }
    let server = chain_gated(contributions).await;

    assert_eq!(
        put(&server, &pending, None).await.status(),
        StatusCode::CREATED
    );
    let store = server.http_store();
    assert_eq!(
        store.put(accepted.clone()).await.unwrap(),
        ContentHash::of(&accepted)
    );
    assert_eq!(
        store
            .get(&ContentHash::of(&pending))
            .await
            .unwrap()
            .unwrap(),
        pending
    );

    let refused = put(&server, &understated, None).await;
    assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_body(refused).await.code, ErrorCode::TooLarge);
    assert!(!server
        .local
        .contains(&ContentHash::of(&understated))
        .unwrap());
}

#[tokio::test]
async fn bytes_whose_contributions_were_all_rejected_or_withdrawn_are_refused() {
    let contributions = Contributions::default();
    let bytes = b"curated out".to_vec();
    contributions.lock().unwrap().insert(
        ContentHash::of(&bytes).to_hex(),
        vec![
            contribution(1, &bytes, "rejected", bytes.len()),
            contribution(2, &bytes, "withdrawn", bytes.len()),
            contribution(3, &bytes, "superseded", bytes.len()),
            // Live, but for other bytes: a gateway or contract that answers loosely.
            contribution(4, b"other bytes", "pending", bytes.len()),
        ],
    );
    let server = chain_gated(contributions.clone()).await;
    let refused = put(&server, &bytes, None).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_body(refused).await.code, ErrorCode::NotOnChain);

    // One live contribution among them is enough.
    contributions
        .lock()
        .unwrap()
        .get_mut(&ContentHash::of(&bytes).to_hex())
        .unwrap()
        .push(contribution(5, &bytes, "accepted", bytes.len()));
    assert_eq!(
        put(&server, &bytes, None).await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn when_the_chain_cannot_be_asked_writes_are_refused_with_503() {
    // Nothing listens on the port of a listener just dropped.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let unreachable = ChainGate::new(&dead, DATANET).unwrap();
    let server = TestServer::start_with(
        |root| LocalStore::open(root).unwrap(),
        Arc::new(unreachable),
        ServerConfig::default(),
    )
    .await;
    let refused = put(&server, b"bytes", None).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_body(refused).await.code, ErrorCode::ChainUnavailable);

    // A gateway that answers with an error (here: a contract it does not know) is the same.
    let rest = fake_chain(Contributions::default()).await;
    let wrong_contract = ChainGate::new(&rest, "trib1other").unwrap();
    let server = TestServer::start_with(
        |root| LocalStore::open(root).unwrap(),
        Arc::new(wrong_contract),
        ServerConfig::default(),
    )
    .await;
    let refused = put(&server, b"bytes", None).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(server.folder_is_empty());
}

// ---- accounts ----

const ENGINE_TOKEN: &str = "s3cret-engine-token";

fn write_accounts(dir: &Path, quota_bytes: u64) -> std::path::PathBuf {
    let path = dir.join("accounts.json");
    let token_sha256 = ContentHash::of(ENGINE_TOKEN.as_bytes()).to_hex();
    let file = json!({"accounts": [
        {"name": "engine", "token_sha256": token_sha256, "quota_bytes": quota_bytes},
    ]});
    std::fs::write(&path, serde_json::to_vec(&file).unwrap()).unwrap();
    path
}

async fn with_accounts(policy: AccountPolicy) -> TestServer {
    TestServer::start_with(
        |root| LocalStore::open(root).unwrap(),
        Arc::new(policy),
        ServerConfig::default(),
    )
    .await
}

#[tokio::test]
async fn writes_by_account_need_a_known_bearer_token_and_reads_need_none() {
    let dir = tempfile::tempdir().unwrap();
    let accounts = write_accounts(dir.path(), 1 << 20);
    let policy = AccountPolicy::open(&accounts, dir.path().join("usage.json")).unwrap();
    let server = with_accounts(policy).await;

    let anonymous = put(&server, b"bytes", None).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    assert_eq!(error_body(anonymous).await.code, ErrorCode::Unauthorized);
    let wrong = put(&server, b"bytes", Some("guessed")).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let basic = reqwest::Client::new()
        .put(server.url(&format!("/blobs/{}", ContentHash::of(b"bytes"))))
        .header("authorization", "Basic ZW5naW5lOnB3")
        .body("bytes")
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    assert!(server.folder_is_empty());

    let store = server.http_store().with_bearer_token(ENGINE_TOKEN);
    let hash = store.put(b"bytes".to_vec()).await.unwrap();
    assert!(
        !format!("{store:?}").contains(ENGINE_TOKEN),
        "the token in a Debug string"
    );
    // Anyone reads.
    assert_eq!(
        server.http_store().get(&hash).await.unwrap().unwrap(),
        b"bytes"
    );
}

#[tokio::test]
async fn an_account_cannot_store_past_its_quota_and_storing_a_blob_again_is_free() {
    let dir = tempfile::tempdir().unwrap();
    let accounts = write_accounts(dir.path(), 100);
    let ledger = dir.path().join("usage.json");
    let policy = AccountPolicy::open(&accounts, &ledger).unwrap();
    let server = with_accounts(policy.clone()).await;

    let first = vec![1u8; 60];
    assert_eq!(
        put(&server, &first, Some(ENGINE_TOKEN)).await.status(),
        StatusCode::CREATED
    );
    let over = put(&server, &[2u8; 60], Some(ENGINE_TOKEN)).await;
    assert_eq!(over.status(), StatusCode::FORBIDDEN);
    let body = error_body(over).await;
    assert_eq!(body.code, ErrorCode::QuotaExceeded);
    assert!(body.error.contains("40 of its 100"), "{}", body.error);
    assert_eq!(
        put(&server, &first, Some(ENGINE_TOKEN)).await.status(),
        StatusCode::OK
    );
    assert_eq!(policy.used_bytes("engine"), 60);
    assert_eq!(
        put(&server, &[3u8; 40], Some(ENGINE_TOKEN)).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(policy.used_bytes("engine"), 100);

    // The ledger outlives the process: a restarted server still counts what was stored.
    let reopened = AccountPolicy::open(&accounts, &ledger).unwrap();
    assert_eq!(reopened.used_bytes("engine"), 100);
    let restarted = with_accounts(reopened).await;
    let refused = put(&restarted, &[4u8; 1], Some(ENGINE_TOKEN)).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_failed_write_gives_its_reserved_quota_back() {
    let dir = tempfile::tempdir().unwrap();
    let accounts = write_accounts(dir.path(), 100);
    let policy = AccountPolicy::open(&accounts, dir.path().join("usage.json")).unwrap();
    let server = with_accounts(policy.clone()).await;

    // Claims 90 bytes, sends bytes that hash to something else.
    let claimed = ContentHash::of(&[9u8; 90]);
    let mismatch = reqwest::Client::new()
        .put(server.url(&format!("/blobs/{claimed}")))
        .bearer_auth(ENGINE_TOKEN)
        .body(vec![8u8; 90])
        .send()
        .await
        .unwrap();
    assert_eq!(mismatch.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(policy.used_bytes("engine"), 0);
    assert_eq!(
        put(&server, &[7u8; 90], Some(ENGINE_TOKEN)).await.status(),
        StatusCode::CREATED
    );
}

#[test]
fn an_accounts_file_that_is_ambiguous_or_malformed_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("usage.json");
    let hash = ContentHash::of(b"t").to_hex();
    for file in [
        json!({"accounts": [
            {"name": "a", "token_sha256": hash, "quota_bytes": 1},
            {"name": "b", "token_sha256": hash, "quota_bytes": 1},
        ]}),
        json!({"accounts": [
            {"name": "a", "token_sha256": hash, "quota_bytes": 1},
            {"name": "a", "token_sha256": ContentHash::of(b"u").to_hex(), "quota_bytes": 1},
        ]}),
        json!({"accounts": [{"name": "a", "token_sha256": "not hex", "quota_bytes": 1}]}),
        json!({"accounts": [{"name": "a", "token": "in clear", "quota_bytes": 1}]}),
    ] {
        let path = dir.path().join("accounts.json");
        std::fs::write(&path, serde_json::to_vec(&file).unwrap()).unwrap();
        assert!(
            matches!(
                AccountPolicy::open(&path, &ledger),
                Err(Error::Accounts { .. })
            ),
            "{file}"
        );
    }
}
