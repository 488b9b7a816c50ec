//! The HTTP API end to end: the real server on a folder store, called over real sockets on
//! 127.0.0.1 through `HttpStore`, plain requests and raw TCP.

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use reqwest::StatusCode;
use tokio::net::TcpListener;
use tributary_store::api::{ErrorCode, PutReceipt};
use tributary_store::{
    router, serve_with_shutdown, AllowedOrigins, BlockingStore, ContentHash, ContentStore, Error,
    HttpStore, LocalStore, OpenPolicy, ServerConfig, Stored,
};

use support::{capped, error_body, json, raw_exchange, TestServer};

#[tokio::test]
async fn blobs_round_trip_through_the_http_store() {
    let server = TestServer::start(ServerConfig::default()).await;
    let store = server.http_store();
    let bytes = b"rows of a contributed dataset".to_vec();

    let hash = store.put(bytes.clone()).await.unwrap();
    assert_eq!(hash, ContentHash::of(&bytes));
    assert_eq!(store.get(&hash).await.unwrap().unwrap(), bytes);
    assert_eq!(store.size(&hash).await.unwrap(), Some(bytes.len() as u64));
    assert!(store.contains(&hash).await.unwrap());
    assert_eq!(
        store.put_expected(&hash, bytes.clone()).await.unwrap(),
        Stored::AlreadyPresent
    );
    // The bytes landed in the folder behind the server.
    assert_eq!(server.local.get(&hash).unwrap().unwrap(), bytes);
}

#[tokio::test]
async fn get_and_head_answer_with_the_blob_headers() {
    let server = TestServer::start(ServerConfig::default()).await;
    let hash = server.local.put(b"twelve bytes").unwrap();
    let url = server.url(&format!("/blobs/{hash}"));
    let etag = format!("\"{hash}\"");
    let http = reqwest::Client::new();

    let got = http.get(&url).send().await.unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.headers()["content-type"], "application/octet-stream");
    assert_eq!(got.headers()["etag"], etag.as_str());
    assert!(got.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    assert_eq!(&got.bytes().await.unwrap()[..], b"twelve bytes");

    let head = http.head(&url).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()["content-length"], "12");
    assert_eq!(head.headers()["etag"], etag.as_str());
    assert!(head.bytes().await.unwrap().is_empty());

    let cached = http
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
    assert!(cached.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn putting_a_blob_answers_201_then_200_once_it_is_there() {
    let server = TestServer::start(ServerConfig::default()).await;
    let bytes = b"put me twice".to_vec();
    let hash = ContentHash::of(&bytes);
    let url = server.url(&format!("/blobs/{hash}"));
    let http = reqwest::Client::new();

    let first = http.put(&url).body(bytes.clone()).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let receipt: PutReceipt = json(first).await;
    assert_eq!(
        receipt,
        PutReceipt {
            hash: hash.to_hex(),
            size: 12,
            created: true
        }
    );

    let again = http.put(&url).body(bytes.clone()).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    assert!(!json::<PutReceipt>(again).await.created);
    assert_eq!(server.local.get(&hash).unwrap().unwrap(), bytes);

    // An uppercase name is the same blob.
    let upper = server.url(&format!("/blobs/{}", hash.to_hex().to_uppercase()));
    let third = http.put(&upper).body(bytes).send().await.unwrap();
    assert_eq!(third.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_body_that_does_not_match_its_hash_is_refused_and_nothing_is_stored() {
    let server = TestServer::start(ServerConfig::default()).await;
    let claimed = ContentHash::of(b"the promised bytes");
    let url = server.url(&format!("/blobs/{claimed}"));

    let refused = reqwest::Client::new()
        .put(&url)
        .body(b"other bytes".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = error_body(refused).await;
    assert_eq!(body.code, ErrorCode::HashMismatch);
    assert!(body.error.contains(&claimed.to_hex()));
    assert!(server.folder_is_empty());
    assert!(!server.local.contains(&claimed).unwrap());

    // The client refuses a mismatch before it uploads anything.
    let err = server
        .http_store()
        .put_expected(&claimed, b"other bytes".to_vec())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::HashMismatch { expected, .. } if expected == claimed));
}

#[tokio::test]
async fn an_oversized_body_is_refused_with_413_and_nothing_is_stored() {
    let server = TestServer::start(capped(1024)).await;
    let bytes = vec![1u8; 2048];
    let hash = ContentHash::of(&bytes);

    let refused = reqwest::Client::new()
        .put(server.url(&format!("/blobs/{hash}")))
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_body(refused).await.code, ErrorCode::TooLarge);

    let err = server.http_store().put(bytes).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Remote {
                status: 413,
                code: ErrorCode::TooLarge,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(server.folder_is_empty());

    let at_cap = vec![2u8; 1024];
    assert!(server.http_store().put(at_cap).await.is_ok());
}

#[tokio::test]
async fn an_oversized_declared_length_is_refused_before_the_body_arrives() {
    let server = TestServer::start(capped(1024)).await;
    let hash = ContentHash::of(b"never sent");
    // Headers alone: a server that waited for (or buffered) the gigabyte would never answer.
    let request = format!(
        "PUT /blobs/{hash} HTTP/1.1\r\nHost: {}\r\nContent-Length: 1073741824\r\n\r\n",
        server.addr
    );
    let answer = raw_exchange(server.addr, request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"code\":\"too_large\""), "{answer}");
    assert!(server.folder_is_empty());
}

#[tokio::test]
async fn an_oversized_chunked_body_is_refused_once_it_passes_the_cap() {
    let server = TestServer::start(capped(1024)).await;
    let hash = ContentHash::of(b"never stored");
    // No length up front: the server must count as it reads. The chunk is left open so the
    // server's answer is the only way the exchange ends.
    let mut request = format!(
        "PUT /blobs/{hash} HTTP/1.1\r\nHost: {}\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
        server.addr, 1025
    )
    .into_bytes();
    request.extend_from_slice(&[0u8; 1025]);
    let answer = raw_exchange(server.addr, &request).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(server.folder_is_empty());
}

#[tokio::test]
async fn a_malformed_hash_in_the_path_is_refused_with_400() {
    let server = TestServer::start(ServerConfig::default()).await;
    let http = reqwest::Client::new();
    let too_short = "a".repeat(63);
    for name in ["not-a-hash", too_short.as_str(), &"g".repeat(64)] {
        let url = server.url(&format!("/blobs/{name}"));
        let put = http.put(&url).body("x").send().await.unwrap();
        assert_eq!(put.status(), StatusCode::BAD_REQUEST, "{name}");
        assert_eq!(error_body(put).await.code, ErrorCode::InvalidHash);
        let got = http.get(&url).send().await.unwrap();
        assert_eq!(got.status(), StatusCode::BAD_REQUEST, "{name}");
        assert_eq!(error_body(got).await.code, ErrorCode::InvalidHash);
        let head = http.head(&url).send().await.unwrap();
        assert_eq!(head.status(), StatusCode::BAD_REQUEST, "{name}");
    }
    assert!(server.folder_is_empty());
}

#[tokio::test]
async fn an_unknown_blob_is_404() {
    let server = TestServer::start(ServerConfig::default()).await;
    let hash = ContentHash::of(b"nobody stored this");
    let url = server.url(&format!("/blobs/{hash}"));
    let http = reqwest::Client::new();

    let got = http.get(&url).send().await.unwrap();
    assert_eq!(got.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_body(got).await.code, ErrorCode::NotFound);
    let head = http.head(&url).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::NOT_FOUND);
    let cached = http
        .get(&url)
        .header("if-none-match", format!("\"{hash}\""))
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), StatusCode::NOT_FOUND);

    let store = server.http_store();
    assert_eq!(store.get(&hash).await.unwrap(), None);
    assert_eq!(store.size(&hash).await.unwrap(), None);
    assert!(!store.contains(&hash).await.unwrap());

    let elsewhere = http.get(server.url("/nowhere")).send().await.unwrap();
    assert_eq!(elsewhere.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_body(elsewhere).await.code, ErrorCode::NotFound);
}

#[tokio::test]
async fn a_browser_preflight_is_answered_for_any_origin_by_default() {
    let server = TestServer::start(ServerConfig::default()).await;
    let hash = server.local.put(b"for the web app").unwrap();
    let url = server.url(&format!("/blobs/{hash}"));
    let http = reqwest::Client::new();

    let preflight = http
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "PUT")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    let methods = preflight.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap();
    assert!(methods.contains("PUT"), "{methods}");

    let got = http
        .get(&url)
        .header("origin", "http://localhost:5173")
        .send()
        .await
        .unwrap();
    assert_eq!(got.headers()["access-control-allow-origin"], "*");
    let exposed = got.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap();
    assert!(exposed.contains("etag"), "{exposed}");

    // Refusals carry the header too, or the browser would hide them behind a CORS error.
    let refused = http
        .put(server.url("/blobs/nope"))
        .header("origin", "http://localhost:5173")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert_eq!(refused.headers()["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn cors_admits_only_the_configured_origins() {
    let config = ServerConfig {
        allowed_origins: AllowedOrigins::List(vec!["https://app.tributary.example".to_string()]),
        ..ServerConfig::default()
    };
    let server = TestServer::start(config).await;
    let url = server.url(&format!("/blobs/{}", ContentHash::of(b"x")));
    let http = reqwest::Client::new();
    let preflight = |origin: &'static str| {
        http.request(reqwest::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", "PUT")
            .send()
    };

    let admitted = preflight("https://app.tributary.example").await.unwrap();
    assert_eq!(
        admitted.headers()["access-control-allow-origin"],
        "https://app.tributary.example"
    );
    let other = preflight("https://elsewhere.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());

    for bad in [
        "https://app.tributary.example/",
        "app.tributary.example",
        "https://App.example",
    ] {
        let config = ServerConfig {
            allowed_origins: AllowedOrigins::List(vec![bad.to_string()]),
            ..ServerConfig::default()
        };
        assert!(
            matches!(
                router(server.local.clone(), Arc::new(OpenPolicy), &config),
                Err(Error::InvalidOrigin { .. })
            ),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn the_http_store_refuses_bytes_a_server_passes_off_as_a_blob() {
    let lying = Router::new().route("/blobs/{hash}", get(|| async { "not what you asked for" }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, lying).await });

    let hash = ContentHash::of(b"the real blob");
    let store = HttpStore::new(&format!("http://{addr}")).unwrap();
    assert!(matches!(
        store.get(&hash).await,
        Err(Error::Corrupt { hash: h, .. }) if h == hash
    ));
}

#[tokio::test]
async fn the_api_works_mounted_under_a_path() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let app = Router::new().nest(
        "/store",
        router(store, Arc::new(OpenPolicy), &ServerConfig::default()).unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let client = HttpStore::new(&format!("http://{addr}/store")).unwrap();
    assert_eq!(client.base_url().as_str(), format!("http://{addr}/store/"));
    let hash = client.put(b"nested".to_vec()).await.unwrap();
    assert_eq!(client.get(&hash).await.unwrap().unwrap(), b"nested");

    assert!(matches!(
        HttpStore::new("ftp://example.com"),
        Err(Error::InvalidUrl { .. })
    ));
}

#[tokio::test]
async fn healthz_answers_and_the_server_stops_on_its_shutdown_signal() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_with_shutdown(
        listener,
        store,
        Arc::new(OpenPolicy),
        ServerConfig::default(),
        async {
            let _ = stopped.await;
        },
    ));

    let health = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let body: serde_json::Value = json(health).await;
    assert_eq!(body["status"], "ok");

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the server stops")
        .unwrap()
        .unwrap();
}

#[test]
fn blocking_callers_reach_the_server_through_the_http_store() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(TestServer::start(ServerConfig::default()));

    let store = BlockingStore::new(Arc::new(server.http_store())).unwrap();
    let hash = store.put(b"from a plain thread".to_vec()).unwrap();
    assert_eq!(store.get(&hash).unwrap().unwrap(), b"from a plain thread");
    assert_eq!(store.size(&hash).unwrap(), Some(19));
    assert!(store.contains(&hash).unwrap());
    assert_eq!(
        store
            .put_expected(&hash, b"from a plain thread".to_vec())
            .unwrap(),
        Stored::AlreadyPresent
    );
    assert_eq!(
        server.local.get(&hash).unwrap().unwrap(),
        b"from a plain thread"
    );
}

#[tokio::test]
async fn the_openapi_document_matches_the_routes_and_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let app = router(store, Arc::new(OpenPolicy), &ServerConfig::default()).unwrap();
    let document = tributary_store::openapi();
    let unrouted = tributary_openapi::testing::unrouted_operations(app.clone(), &document).await;
    assert!(
        unrouted.is_empty(),
        "documented but not served: {unrouted:?}"
    );
    let blobs = &document["paths"]["/blobs/{hash}"];
    for method in ["get", "head", "put"] {
        assert!(blobs[method].is_object(), "{method} /blobs/{{hash}}");
    }
    // Every error code is in the schema, with its documentation.
    let codes = document["components"]["schemas"]["ErrorCode"].to_string();
    for code in ["hash_mismatch", "not_on_chain", "store_full"] {
        assert!(codes.contains(&format!("\"{code}\"")), "{code}: {codes}");
    }

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let served = reqwest::get(format!("http://{addr}/openapi.json"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let served: serde_json::Value = serde_json::from_slice(&served).unwrap();
    assert_eq!(served, document);
}
