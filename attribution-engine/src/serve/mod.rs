//! The inference gateway: completions with Proof of Attribution over HTTP.
//!
//! ```text
//! GET  /healthz                   {"status":"ok","models":N}
//! GET  /v1/models                 every served model: hashes, lineage, index size, methods
//! POST /v1/completions            generate, attribute, and (for a paid request) build the packet
//! GET  /v1/requests/{request_id}  the stored response of a served request
//! ```
//!
//! Three layers: the wire types ([`tributary_attrib_api`], re-exported here), the typed
//! [`CompletionService`] (resolve, payment check, compute, response store, [`ServeError`]) and
//! the thin axum [`router`] over it. The relayer calls the service directly when it runs the
//! engine in its own process, and the routes when it reaches the engine over HTTP.
//!
//! A request that names a `request_id` is generated with that id as its seed (unless it gives
//! one), so every attestor that serves the same paid request regenerates the same completion
//! and commits the same packet. Responses are kept in memory by request id, for one model and
//! one prompt: asking again returns the stored response instead of recomputing it, and the
//! same id with another model or prompt is refused (409).
//!
//! Nothing is a free inference endpoint: every completion, a stored one included, passes the
//! service's [`PaymentCheck`] first. A standalone gateway either wants a bearer
//! [`AccessToken`] from its callers (a relayer, which checked payment on chain) and serves
//! stored responses only to them, or checks each request against the payout contract
//! ([`ChainPayments`]), or serves no paid request at all ([`NoPaidRequests`]).
//!
//! Errors are JSON, `{"error": "..."}`, with a status that says whose fault they are.

pub mod http;
pub mod payments;
pub mod service;

pub use http::{
    router, serve, serve_with_shutdown, shutdown_signal, status_of, AccessToken, TokenError,
};
pub use payments::{ChainPayments, NoPaidRequests};
pub use service::{
    parse_method, summarize, CompletionService, GatewayConfig, PaymentCheck, PaymentRefused,
    ServeError, ServedModel, Unchecked, TOP_CONTRIBUTIONS, TOP_CONTRIBUTORS,
};
pub use tributary_attrib_api::{
    AttributionSummary, CompletionRequest, CompletionResponse, ContributorShare, ErrorBody,
    ModelInfo, ModelList, Sampling, SamplingRequest, TopContribution,
};
