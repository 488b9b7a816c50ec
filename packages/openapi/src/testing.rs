//! Checks that a router serves what a document says it does.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Request as HttpRequest, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use serde_json::Value;
use tower::ServiceExt;

use crate::{path_parameters, Method};

/// The header a route layer adds to every answer of a matched route.
const ROUTED: &str = "x-tributary-routed";

async fn mark(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert(ROUTED, HeaderValue::from_static("1"));
    response
}

/// The operations of `document` that `router` does not serve, as `METHOD /path`.
///
/// Sends one request per documented operation, its path parameters filled with their examples
/// (`0` where there is none) and an empty body (`{}` for a JSON one). An operation is served
/// when a route matched it, whatever the handler answered: a route layer marks every answer of
/// a matched route, which no fallback gets, and a matched path with another method answers 405.
pub async fn unrouted_operations(router: Router, document: &Value) -> Vec<String> {
    let marked = router.route_layer(middleware::from_fn(mark));
    let mut unrouted = Vec::new();
    let Some(paths) = document["paths"].as_object() else {
        return vec!["the document has no paths".into()];
    };
    for (path, item) in paths {
        let Some(item) = item.as_object() else {
            continue;
        };
        for (key, operation) in item {
            let Some(method) = Method::from_key(key) else {
                continue;
            };
            let name = method.key().to_ascii_uppercase();
            let json_body = operation["requestBody"]["content"]
                .get("application/json")
                .is_some();
            let mut request = HttpRequest::builder()
                .method(name.as_str())
                .uri(fill(path, operation));
            if json_body {
                request = request.header(header::CONTENT_TYPE, "application/json");
            }
            let body = if json_body {
                Body::from("{}")
            } else {
                Body::empty()
            };
            let Ok(request) = request.body(body) else {
                unrouted.push(format!("{name} {path} (no request can be built for it)"));
                continue;
            };
            let response = match marked.clone().oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            let routed = response.headers().contains_key(ROUTED)
                && response.status() != StatusCode::METHOD_NOT_ALLOWED;
            if !routed {
                unrouted.push(format!("{name} {path}"));
            }
        }
    }
    unrouted
}

/// `path` with each `{name}` replaced by the parameter's example.
fn fill(path: &str, operation: &Value) -> String {
    let mut filled = path.to_string();
    for name in path_parameters(path) {
        let example = operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == name && p["in"] == "path")
            .and_then(|p| p.get("example"))
            .map_or_else(
                || "0".to_string(),
                |e| e.as_str().map_or_else(|| e.to_string(), str::to_string),
            );
        filled = filled.replace(&format!("{{{name}}}"), &example);
    }
    filled
}
