//! Random methods, paths, headers and bodies against a real server: every one is answered with
//! a status below 500 (a panicking handler would drop the connection instead), and the server
//! still stores and serves a blob afterwards.

mod support;

use reqwest::Method;
use sha2::{Digest, Sha256};
use tributary_store::ServerConfig;

use support::TestServer;

/// A small deterministic generator (xorshift64*), so a failure replays the same requests.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = self.below(max + 1);
        (0..len).map(|_| self.next() as u8).collect()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn no_random_request_gets_a_server_error_or_stops_the_server() {
    let server = TestServer::start(ServerConfig::default()).await;
    let client = reqwest::Client::new();
    let mut rng = Rng(0x5eed_5eed_5eed_5eed);
    let methods = [
        Method::GET,
        Method::HEAD,
        Method::PUT,
        Method::POST,
        Method::DELETE,
        Method::OPTIONS,
        Method::PATCH,
    ];
    let mut sent = 0usize;
    for _ in 0..400 {
        let body = rng.bytes(4096);
        let digest = hex(&Sha256::digest(&body));
        let path = match rng.below(9) {
            0 => format!("/blobs/{digest}"),
            1 => format!("/blobs/{}", digest.to_uppercase()),
            2 => format!("/blobs/{}", &digest[..63]),
            3 => format!("/blobs/{digest}/extra"),
            4 => "/blobs/..%2f..%2fetc%2fpasswd".to_string(),
            5 => "/blobs/".to_string(),
            6 => format!("/{}", hex(&rng.bytes(8))),
            7 => "/healthz".to_string(),
            _ => format!("/blobs/{}", "z".repeat(64)),
        };
        let method = methods[rng.below(methods.len())].clone();
        let mut request = client.request(method.clone(), server.url(&path));
        if rng.below(3) == 0 {
            request = request.header("authorization", format!("Bearer {}", hex(&rng.bytes(16))));
        }
        let response = request
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("no answer to {method} {path}: {e}"));
        assert!(
            response.status().as_u16() < 500,
            "{method} {path}: {}",
            response.status()
        );
        sent += 1;
    }
    eprintln!("sent {sent} random requests to the content store");

    // Still serving.
    let store = server.http_store();
    let stored = tributary_store::ContentStore::put(&store, b"still here".to_vec())
        .await
        .unwrap();
    let read = tributary_store::ContentStore::get(&store, &stored)
        .await
        .unwrap();
    assert_eq!(read.as_deref(), Some(b"still here".as_slice()));
}
