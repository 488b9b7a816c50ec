//! What keeps the server from being exhausted: bodies stream to disk, stalled or abandoned
//! uploads are dropped, requests in flight and disk use are capped, and a damaged blob is never
//! served as whole.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tributary_store::api::ErrorCode;
use tributary_store::local::{CHUNK_BYTES, QUARANTINE_DIR, TEMP_DIR};
use tributary_store::{ContentHash, ContentStore, LocalStore, OpenPolicy, ServerConfig};

use support::{error_body, raw_exchange, TestServer};

/// Opens a connection and sends the head of a `PUT` of `len` bytes and the first `sent` of them.
async fn start_upload(
    server: &TestServer,
    hash: &ContentHash,
    len: usize,
    sent: &[u8],
) -> TcpStream {
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "PUT /blobs/{hash} HTTP/1.1\r\nHost: {}\r\nContent-Length: {len}\r\n\r\n",
        server.addr
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(sent).await.unwrap();
    stream.flush().await.unwrap();
    stream
}

/// The bytes in the store's `tmp/` folder.
fn bytes_in_flight(root: &Path) -> u64 {
    std::fs::read_dir(root.join(TEMP_DIR))
        .unwrap()
        .filter_map(|entry| entry.ok()?.metadata().ok())
        .map(|meta| meta.len())
        .sum()
}

/// Polls `condition` for up to five seconds.
async fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    for _ in 0..100 {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    condition()
}

// ---- streaming ----

#[tokio::test]
async fn an_upload_is_written_to_disk_as_it_arrives() {
    let server = TestServer::start(ServerConfig::default()).await;
    let bytes = vec![5u8; 1 << 20];
    let hash = ContentHash::of(&bytes);
    let half = &bytes[..bytes.len() / 2];
    let mut stream = start_upload(&server, &hash, bytes.len(), half).await;

    // Half the body has arrived: a server that buffered bodies would have written nothing.
    let root = server.local.root().to_path_buf();
    assert!(eventually(|| bytes_in_flight(&root) > 0).await);
    assert!(
        !server.local.contains(&hash).unwrap(),
        "visible half-written"
    );

    stream.write_all(&bytes[bytes.len() / 2..]).await.unwrap();
    let local = server.local.clone();
    assert!(eventually(|| local.contains(&hash).unwrap()).await);
    assert_eq!(server.local.get(&hash).unwrap().unwrap(), bytes);
    assert_eq!(bytes_in_flight(&root), 0);
}

#[tokio::test]
async fn an_abandoned_upload_leaves_nothing_behind() {
    let server = TestServer::start(ServerConfig::default()).await;
    let bytes = vec![6u8; 1 << 20];
    let hash = ContentHash::of(&bytes);
    let stream = start_upload(&server, &hash, bytes.len(), &bytes[..1000]).await;
    let root = server.local.root().to_path_buf();
    assert!(eventually(|| bytes_in_flight(&root) > 0).await);

    drop(stream);
    assert!(eventually(|| bytes_in_flight(&root) == 0).await);
    assert!(server.folder_is_empty());
}

#[tokio::test]
async fn a_stalled_upload_is_cut_off_with_408_and_leaves_nothing_behind() {
    let config = ServerConfig {
        body_idle_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    };
    let server = TestServer::start(config).await;
    let hash = ContentHash::of(b"never finished");
    let request = format!(
        "PUT /blobs/{hash} HTTP/1.1\r\nHost: {}\r\nContent-Length: 100\r\n\r\nsome",
        server.addr
    );
    let answer = raw_exchange(server.addr, request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"timeout\""), "{answer}");
    assert!(server.folder_is_empty());
}

// ---- requests in flight ----

#[tokio::test]
async fn requests_past_the_concurrency_limit_are_refused_with_503() {
    let config = ServerConfig {
        max_concurrent_requests: 2,
        ..ServerConfig::default()
    };
    let server = TestServer::start(config).await;
    let stored = server.local.put(b"a blob to read").unwrap();
    let hash = ContentHash::of(b"slow upload");
    let first = start_upload(&server, &hash, 100, b"abc").await;
    let second = start_upload(&server, &hash, 100, b"abc").await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let http = reqwest::Client::new();
    let refused = http
        .get(server.url(&format!("/blobs/{stored}")))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_eq!(error_body(refused).await.code, ErrorCode::Busy);
    // Health checks are not blob requests and still answer.
    let health = http.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    drop((first, second));
    let url = server.url(&format!("/blobs/{stored}"));
    let mut answered = None;
    for _ in 0..100 {
        let got = http.get(&url).send().await.unwrap();
        if got.status() != StatusCode::SERVICE_UNAVAILABLE {
            answered = Some(got);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = answered.expect("the slots come back once the uploads are gone");
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(&got.bytes().await.unwrap()[..], b"a blob to read");
}

// ---- disk ----

#[tokio::test]
async fn a_write_past_the_disk_budget_is_refused_with_507_before_its_body_is_read() {
    let server = TestServer::start_with(
        |root| {
            LocalStore::open(root)
                .unwrap()
                .with_max_total_bytes(1000)
                .unwrap()
        },
        Arc::new(OpenPolicy),
        ServerConfig::default(),
    )
    .await;
    let store = server.http_store();
    let first = vec![1u8; 600];
    store.put(first.clone()).await.unwrap();

    // Headers alone: the refusal comes without waiting for the body.
    let second = vec![2u8; 600];
    let request = format!(
        "PUT /blobs/{} HTTP/1.1\r\nHost: {}\r\nContent-Length: 600\r\n\r\n",
        ContentHash::of(&second),
        server.addr
    );
    let answer = raw_exchange(server.addr, request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 507"), "{answer}");
    assert!(answer.contains("\"code\":\"store_full\""), "{answer}");
    assert_eq!(server.local.used_bytes(), Some(600));
    assert!(!server.local.contains(&ContentHash::of(&second)).unwrap());

    // What is left still takes a blob that fits.
    store.put(vec![3u8; 400]).await.unwrap();
    assert_eq!(server.local.used_bytes(), Some(1000));
}

// ---- damage ----

#[tokio::test]
async fn a_blob_damaged_on_disk_is_never_served_as_whole_and_a_fresh_upload_replaces_it() {
    let server = TestServer::start(ServerConfig::default()).await;
    let bytes: Vec<u8> = (0..3 * CHUNK_BYTES + 17).map(|i| (i % 251) as u8).collect();
    let hash = server.local.put(&bytes).unwrap();
    // The same length, one byte changed deep inside: only the hash can tell.
    let mut damaged = bytes.clone();
    damaged[2 * CHUNK_BYTES + 5] ^= 0xff;
    std::fs::write(server.local.blob_path(&hash), &damaged).unwrap();

    let url = server.url(&format!("/blobs/{hash}"));
    let http = reqwest::Client::new();
    // The connection is cut before the last chunk: the client sees the answer end early, or,
    // when the server had not flushed its headers yet, no answer at all.
    let whole = match http.get(&url).send().await {
        Ok(got) if got.status() == StatusCode::OK => got
            .bytes()
            .await
            .ok()
            .filter(|body| body.len() == bytes.len()),
        Ok(_) | Err(_) => None,
    };
    assert!(whole.is_none(), "the damaged blob reached the client whole");

    // Quarantined: no longer served, kept aside for the operator, and open to a fresh copy.
    let local = server.local.clone();
    assert!(eventually(|| !local.contains(&hash).unwrap()).await);
    assert_eq!(
        http.get(&url).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let quarantined = std::fs::read_dir(server.local.root().join(QUARANTINE_DIR))
        .unwrap()
        .count();
    assert_eq!(quarantined, 1);
    let again = http.put(&url).body(bytes.clone()).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(
        server.http_store().get(&hash).await.unwrap().unwrap(),
        bytes
    );
}

#[tokio::test]
async fn a_small_damaged_blob_is_answered_500_corrupt_before_any_byte_is_sent() {
    let server = TestServer::start(ServerConfig::default()).await;
    let hash = server.local.put(b"twelve bytes").unwrap();
    std::fs::write(server.local.blob_path(&hash), b"twelve bytez").unwrap();

    let got = reqwest::get(server.url(&format!("/blobs/{hash}")))
        .await
        .unwrap();
    assert_eq!(got.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(error_body(got).await.code, ErrorCode::Corrupt);
    assert!(!server.local.contains(&hash).unwrap());
}
