//! A relayer's payer-facing gateway: where a paid request's prompt goes and its completion,
//! with its attribution, comes back.
//!
//! The gateways of a model version are published on chain by its attestors
//! ([`crate::RegistryContract::gateways`]); [`GatewayClient::complete`] sends a prompt and waits
//! for its completion, reading it back with the bearer token the first submission returns
//! while the relayer is still attributing.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tributary_attrib_api::{CompletionResponse, ErrorBody};

use crate::Error;

/// How often a queued completion is asked for again.
const POLL: Duration = Duration::from_millis(500);

/// How long a `402` (not paid) is retried: the relayer's node may not have the block of the
/// payment yet.
const PAYMENT_GRACE: Duration = Duration::from_secs(15);

/// A completion of a paid request, as the gateway returns it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PaidCompletion {
    #[serde(flatten)]
    pub response: CompletionResponse,
    /// Handed out to the first submission of a request's prompt: reads the completion back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// What one submission got.
#[derive(Clone, Debug, PartialEq)]
pub enum Submission {
    /// The completion, attributed.
    Served(Box<PaidCompletion>),
    /// Not ready within the gateway's wait (or the relayer cannot reach its chain or engine
    /// right now): the prompt stays queued. `token` is set on the first submission.
    Pending {
        token: Option<String>,
        message: String,
    },
}

/// A relayer's gateway at a base URL.
#[derive(Clone, Debug)]
pub struct GatewayClient {
    http: reqwest::Client,
    url: String,
}

impl GatewayClient {
    /// The gateway at `url` (`http(s)://host[:port][/path]`).
    pub fn new(url: &str) -> Result<GatewayClient, Error> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Error::Config(format!(
                "gateway URL {url:?} must start with http:// or https://"
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(GatewayClient {
            http,
            url: url.trim_end_matches('/').to_string(),
        })
    }

    /// The base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `POST /v1/completions` once.
    pub async fn submit(&self, request_id: u64, prompt: &str) -> Result<Submission, Error> {
        let body = serde_json::json!({ "request_id": request_id, "prompt": prompt });
        let request = self
            .http
            .post(format!("{}/v1/completions", self.url))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        let (status, bytes) = self.send(request).await?;
        match status {
            200 => Ok(Submission::Served(Box::new(self.decode(&bytes)?))),
            503 => {
                let refusal: Refusal = self.decode(&bytes)?;
                Ok(Submission::Pending {
                    token: refusal.token,
                    message: refusal.error,
                })
            }
            status => Err(self.refused(status, &bytes)),
        }
    }

    /// `GET /v1/requests/{id}` with the token of the first submission; `None` while it is
    /// still being attributed.
    pub async fn read(
        &self,
        request_id: u64,
        token: &str,
    ) -> Result<Option<CompletionResponse>, Error> {
        let request = self
            .http
            .get(format!("{}/v1/requests/{request_id}", self.url))
            .bearer_auth(token);
        let (status, bytes) = self.send(request).await?;
        match status {
            200 => Ok(Some(self.decode(&bytes)?)),
            503 => Ok(None),
            status => Err(self.refused(status, &bytes)),
        }
    }

    /// Sends the prompt of paid request `request_id` and waits up to `wait` for its
    /// completion: polls with the token while the relayer attributes, and submits again when
    /// this is not the first submission (the gateway then hands out no token).
    pub async fn complete(
        &self,
        request_id: u64,
        prompt: &str,
        wait: Duration,
    ) -> Result<PaidCompletion, Error> {
        let start = Instant::now();
        let mut token: Option<String> = None;
        loop {
            let outcome = match &token {
                Some(t) => self.read(request_id, t).await.map(|read| match read {
                    Some(response) => Submission::Served(Box::new(PaidCompletion {
                        response,
                        token: Some(t.clone()),
                    })),
                    None => Submission::Pending {
                        token: None,
                        message: "still being attributed".into(),
                    },
                }),
                None => self.submit(request_id, prompt).await,
            };
            let message = match outcome {
                Ok(Submission::Served(completion)) => return Ok(*completion),
                Ok(Submission::Pending { token: t, message }) => {
                    token = token.or(t);
                    message
                }
                // The relayer's node may be a block behind the payment.
                Err(Error::GatewayRefused {
                    status: 402,
                    message,
                    ..
                }) if start.elapsed() < PAYMENT_GRACE => message,
                Err(e) => return Err(e),
            };
            if start.elapsed() >= wait {
                return Err(Error::GatewayTimeout {
                    url: self.url.clone(),
                    request_id,
                    waited_s: start.elapsed().as_secs(),
                    last: message,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<(u16, Vec<u8>), Error> {
        let unreachable = |e: reqwest::Error| Error::GatewayUnreachable {
            url: self.url.clone(),
            reason: e.to_string(),
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(unreachable)?;
        Ok((status, bytes.to_vec()))
    }

    fn decode<T: serde::de::DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, Error> {
        serde_json::from_slice(bytes)
            .map_err(|e| Error::Decode(format!("the gateway at {} answered: {e}", self.url)))
    }

    fn refused(&self, status: u16, bytes: &[u8]) -> Error {
        let message = serde_json::from_slice::<ErrorBody>(bytes)
            .map(|b| b.error)
            .unwrap_or_else(|_| String::from_utf8_lossy(bytes).chars().take(200).collect());
        Error::GatewayRefused {
            url: self.url.clone(),
            status,
            message,
        }
    }
}

/// A refusal body, with the token a queued first submission carries.
#[derive(Deserialize)]
struct Refusal {
    error: String,
    #[serde(default)]
    token: Option<String>,
}
