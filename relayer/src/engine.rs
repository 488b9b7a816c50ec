//! The attribution engine as the relayer reaches it: loaded into this process (the
//! `in-process-engine` feature), or the engine's HTTP gateway on another host. Either way a
//! completion request goes in and the engine's response (completion, attribution and packet)
//! comes out.
//!
//! The engine checks no payment for the relayer: the relayer checks each request on chain
//! before its prompt is kept, and only kept prompts reach the engine.

use std::time::Duration;

use async_trait::async_trait;
use thiserror::Error;
use tributary_attrib_api::{
    CompletionRequest, CompletionResponse, ErrorBody, ModelInfo, ModelList,
};

/// The name the in-process engine serves its model under.
pub const IN_PROCESS_MODEL: &str = "model";

/// How long one HTTP call to a remote engine may take (generation and attribution included).
const HTTP_TIMEOUT: Duration = Duration::from_secs(120);

/// Why the engine gave no response.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum EngineCallError {
    /// The engine is down or failed on its side: try again later; nothing is lost.
    #[error("the attribution engine is unavailable: {0}")]
    Unavailable(String),
    /// The engine refused the request itself (HTTP 4xx): trying again will not help.
    #[error("the attribution engine refused the request ({status}): {message}")]
    Rejected { status: u16, message: String },
}

/// A source of completions and attribution packets.
#[async_trait]
pub trait EngineBackend: Send + Sync {
    /// The engine's model name to put in completion requests.
    fn model_name(&self) -> &str;

    /// Completes and attributes `request`; the same request gives the same response.
    async fn complete(
        &self,
        request: &CompletionRequest,
    ) -> Result<CompletionResponse, EngineCallError>;

    /// What the engine serves under the model name `name`: its weights, index and parameter
    /// hashes.
    async fn model_info(&self, name: &str) -> Result<ModelInfo, EngineCallError>;
}

/// The model named `name` in an engine's list, or a rejection naming those it serves.
fn find_model(list: ModelList, name: &str) -> Result<ModelInfo, EngineCallError> {
    let names: Vec<String> = list.models.iter().map(|m| m.name.clone()).collect();
    list.models
        .into_iter()
        .find(|m| m.name == name)
        .ok_or_else(|| EngineCallError::Rejected {
            status: 404,
            message: format!(
                "the engine serves no model named {name:?} (it serves {})",
                names.join(", ")
            ),
        })
}

#[cfg(feature = "in-process-engine")]
pub use in_process::InProcessEngine;

#[cfg(feature = "in-process-engine")]
mod in_process {
    use std::path::Path;
    use std::sync::Arc;

    use async_trait::async_trait;
    use tributary_attrib::engine::Engine;
    use tributary_attrib::serve::{
        status_of, CompletionService, GatewayConfig, ServeError, ServedModel, Unchecked,
    };
    use tributary_attrib_api::{CompletionRequest, CompletionResponse, ModelInfo};

    use super::{EngineBackend, EngineCallError, IN_PROCESS_MODEL};

    /// The engine loaded into the relayer and called through its [`CompletionService`] (no
    /// socket, no JSON), so validation, the per-request seed and the response store are the
    /// engine's own.
    pub struct InProcessEngine {
        service: CompletionService,
    }

    impl InProcessEngine {
        /// Opens a trained model and its gradient index (both verified on open).
        pub fn open(model_dir: &Path, index_dir: &Path) -> Result<Self, String> {
            let engine = Engine::open(model_dir, index_dir).map_err(|e| e.to_string())?;
            Ok(Self::new(engine))
        }

        /// Serves an already opened engine.
        pub fn new(engine: Engine) -> Self {
            let models = vec![ServedModel {
                name: IN_PROCESS_MODEL.into(),
                engine,
            }];
            // Unchecked: the relayer checked each request on chain before keeping its prompt,
            // and only kept prompts are sent here.
            InProcessEngine {
                service: CompletionService::new(
                    models,
                    Arc::new(Unchecked),
                    GatewayConfig::default(),
                ),
            }
        }
    }

    #[async_trait]
    impl EngineBackend for InProcessEngine {
        fn model_name(&self) -> &str {
            IN_PROCESS_MODEL
        }

        async fn complete(
            &self,
            request: &CompletionRequest,
        ) -> Result<CompletionResponse, EngineCallError> {
            match self.service.complete(request).await {
                Ok(response) => Ok((*response).clone()),
                Err(e @ ServeError::Engine(_)) => Err(EngineCallError::Unavailable(e.to_string())),
                Err(e) => Err(EngineCallError::Rejected {
                    status: status_of(&e).as_u16(),
                    message: e.to_string(),
                }),
            }
        }

        async fn model_info(&self, name: &str) -> Result<ModelInfo, EngineCallError> {
            super::find_model(self.service.models(), name)
        }
    }
}

/// The engine's HTTP gateway (`tributary-attrib serve --auth-token-file`) at `url`, which
/// answers only callers presenting its token.
pub struct HttpEngine {
    url: String,
    model_name: String,
    token: String,
    http: reqwest::Client,
}

impl HttpEngine {
    /// The gateway at `url` serving `model_name`, called with `token` as its bearer token.
    pub fn new(url: &str, model_name: &str, token: &str) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(HttpEngine {
            url: url.trim_end_matches('/').to_string(),
            model_name: model_name.to_string(),
            token: token.trim().to_string(),
            http,
        })
    }
}

#[async_trait]
impl EngineBackend for HttpEngine {
    fn model_name(&self) -> &str {
        &self.model_name
    }

    async fn complete(
        &self,
        request: &CompletionRequest,
    ) -> Result<CompletionResponse, EngineCallError> {
        let body = serde_json::to_vec(request)
            .map_err(|e| EngineCallError::Unavailable(format!("encoding the request: {e}")))?;
        let response = self
            .http
            .post(format!("{}/v1/completions", self.url))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .bearer_auth(&self.token)
            .body(body)
            .send()
            .await
            .map_err(|e| EngineCallError::Unavailable(format!("{}: {e}", self.url)))?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| EngineCallError::Unavailable(format!("{}: {e}", self.url)))?;
        decode(status, &bytes)
    }

    async fn model_info(&self, name: &str) -> Result<ModelInfo, EngineCallError> {
        let unavailable =
            |e: reqwest::Error| EngineCallError::Unavailable(format!("{}: {e}", self.url));
        let response = self
            .http
            .get(format!("{}/v1/models", self.url))
            .send()
            .await
            .map_err(unavailable)?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(unavailable)?;
        if status != 200 {
            return Err(EngineCallError::Unavailable(format!(
                "{}/v1/models answered {status}",
                self.url
            )));
        }
        let list: ModelList = serde_json::from_slice(&bytes)
            .map_err(|e| EngineCallError::Unavailable(format!("{}/v1/models: {e}", self.url)))?;
        find_model(list, name)
    }
}

/// A gateway answer: the response on 200, the engine's `{"error": ...}` text otherwise.
fn decode(status: u16, body: &[u8]) -> Result<CompletionResponse, EngineCallError> {
    if status == 200 {
        return serde_json::from_slice(body).map_err(|e| {
            EngineCallError::Unavailable(format!("the engine's response is unreadable: {e}"))
        });
    }
    let message = serde_json::from_slice::<ErrorBody>(body)
        .map(|b| b.error)
        .unwrap_or_else(|_| String::from_utf8_lossy(body).into_owned());
    if (400..500).contains(&status) {
        Err(EngineCallError::Rejected { status, message })
    } else {
        Err(EngineCallError::Unavailable(format!(
            "HTTP {status}: {message}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use axum::Json;

    use super::*;
    use crate::testing::response_for;

    /// An engine gateway stand-in that answers only `Bearer secret`.
    async fn engine_wanting(secret: &'static str) -> String {
        let app = axum::Router::new().route(
            "/v1/completions",
            axum::routing::post(
                move |headers: HeaderMap, Json(request): Json<CompletionRequest>| async move {
                    let bearer = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.strip_prefix("Bearer "));
                    if bearer != Some(secret) {
                        let body = ErrorBody {
                            error: "a token, please".into(),
                        };
                        return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
                    }
                    Json(response_for(&request)).into_response()
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    fn request() -> CompletionRequest {
        serde_json::from_value(serde_json::json!({
            "model": "systems", "prompt": "hi", "request_id": 3, "model_id": 1, "model_version": 1
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn the_http_engine_presents_its_token() {
        let url = engine_wanting("s3cret").await;
        let engine = HttpEngine::new(&url, "systems", "s3cret\n").unwrap();
        let response = engine.complete(&request()).await.unwrap();
        assert_eq!(response.packet.unwrap().request_id, 3);
        let wrong = HttpEngine::new(&url, "systems", "guess").unwrap();
        assert_eq!(
            wrong.complete(&request()).await,
            Err(EngineCallError::Rejected {
                status: 401,
                message: "a token, please".into()
            })
        );
    }

    #[test]
    fn client_errors_are_rejections_and_server_errors_are_retried() {
        let body = br#"{"error":"the prompt is empty"}"#;
        assert_eq!(
            decode(422, body),
            Err(EngineCallError::Rejected {
                status: 422,
                message: "the prompt is empty".into()
            })
        );
        assert!(matches!(
            decode(500, b"boom"),
            Err(EngineCallError::Unavailable(m)) if m == "HTTP 500: boom"
        ));
        assert!(matches!(
            decode(200, b"{not json"),
            Err(EngineCallError::Unavailable(_))
        ));
    }
}
