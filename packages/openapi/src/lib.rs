//! OpenAPI 3.0 documents for Tributary's HTTP APIs, built by the code that builds their routers.
//!
//! An [`ApiRouter`] is an axum router that takes each route together with its [`Operation`]:
//! summary, parameters, request body and responses. The document comes from the same calls that
//! register the handlers, so a route cannot be served without being documented or documented
//! without being served. Schemas come from the Rust types on the wire through `schemars` (the
//! generator behind the contracts' JSON schemas), in its OpenAPI 3.0 dialect, so a field added to
//! a type is in the document at once.
//!
//! [`ApiRouter::finish`] adds `GET /openapi.json`, serving the document itself.
//!
//! ```
//! use axum::Json;
//! use tributary_openapi::{ApiRouter, Operation};
//!
//! async fn health() -> Json<String> {
//!     Json("ok".into())
//! }
//!
//! let api = ApiRouter::<()>::new("Example", "1.0.0", "An example API.")
//!     .get("/healthz", Operation::new("Liveness").json::<String>(200, "Always ok"), health);
//! let (_router, document) = api.finish();
//! assert!(document["paths"]["/healthz"]["get"].is_object());
//! assert!(document["paths"]["/openapi.json"]["get"].is_object());
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::handler::Handler;
use axum::routing::{on, MethodFilter};
use axum::{Json, Router};
use schemars::gen::{SchemaGenerator, SchemaSettings};
use schemars::JsonSchema;
use serde_json::{json, Map, Value};

pub mod testing;

/// The OpenAPI version the documents follow (the dialect `schemars` writes schemas in).
pub const OPENAPI_VERSION: &str = "3.0.3";

/// Where [`ApiRouter::finish`] serves the document.
pub const DOCUMENT_PATH: &str = "/openapi.json";

/// Writes a type's schema (a reference for a named type) into a generator.
type SchemaFn = fn(&mut SchemaGenerator) -> schemars::schema::Schema;

fn schema_of<T: JsonSchema>() -> SchemaFn {
    SchemaGenerator::subschema_for::<T>
}

/// An HTTP method an [`Operation`] is served under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
}

impl Method {
    fn filter(self) -> MethodFilter {
        match self {
            Method::Get => MethodFilter::GET,
            Method::Head => MethodFilter::HEAD,
            Method::Post => MethodFilter::POST,
            Method::Put => MethodFilter::PUT,
            Method::Delete => MethodFilter::DELETE,
        }
    }

    /// The method's key in an OpenAPI path item, lower case.
    pub fn key(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Head => "head",
            Method::Post => "post",
            Method::Put => "put",
            Method::Delete => "delete",
        }
    }

    /// The method by its key in a path item, or `None` for another key (`parameters`, ...).
    pub fn from_key(key: &str) -> Option<Method> {
        Some(match key {
            "get" => Method::Get,
            "head" => Method::Head,
            "post" => Method::Post,
            "put" => Method::Put,
            "delete" => Method::Delete,
            _ => return None,
        })
    }
}

/// What a body holds.
#[derive(Clone)]
enum Content {
    /// No body.
    Empty,
    /// `application/json` of a type.
    Json(SchemaFn),
    /// Raw bytes of a media type.
    Binary(&'static str),
    /// `text/event-stream` whose events carry JSON of a type.
    EventStream(SchemaFn),
}

impl Content {
    fn render(&self, generator: &mut SchemaGenerator) -> Option<Value> {
        let (media, schema) = match self {
            Content::Empty => return None,
            Content::Json(schema) => ("application/json", schema_value(generator, *schema)),
            Content::Binary(media) => (*media, json!({"type": "string", "format": "binary"})),
            Content::EventStream(schema) => (
                "text/event-stream",
                json!({
                    "type": "string",
                    "description": format!(
                        "Server-sent events; each `data:` line holds {}, and the last one `[DONE]`.",
                        describe_ref(&schema_value(generator, *schema))
                    ),
                }),
            ),
        };
        Some(json!({ media: { "schema": schema } }))
    }
}

/// A schema as JSON, after the generator's visitors: in the OpenAPI 3.0 dialect they move a
/// reference's siblings (a field's description) beside it into an `allOf`, as 3.0 ignores them.
fn finished(generator: &mut SchemaGenerator, mut schema: schemars::schema::Schema) -> Value {
    for visitor in generator.visitors_mut() {
        visitor.visit_schema(&mut schema);
    }
    serde_json::to_value(schema).unwrap_or(Value::Null)
}

/// A type's schema (a reference for a named type), finished.
fn schema_value(generator: &mut SchemaGenerator, schema: SchemaFn) -> Value {
    let schema = schema(generator);
    finished(generator, schema)
}

/// `a Name object` for a reference, `JSON` otherwise.
fn describe_ref(schema: &Value) -> String {
    schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.rsplit('/').next())
        .map_or_else(|| "JSON".to_string(), |name| format!("a `{name}` object"))
}

#[derive(Clone)]
struct Parameter {
    name: String,
    location: &'static str,
    description: String,
    required: bool,
    example: Option<String>,
    schema: SchemaFn,
}

#[derive(Clone)]
struct Response {
    status: u16,
    description: String,
    content: Content,
    headers: Vec<(String, String)>,
}

/// One documented operation: what a route takes and what it answers.
#[derive(Clone)]
pub struct Operation {
    summary: String,
    description: Option<String>,
    parameters: Vec<Parameter>,
    body: Option<(Content, String)>,
    responses: Vec<Response>,
    bearer: Option<bool>,
}

impl Operation {
    /// An operation with a one-line summary.
    pub fn new(summary: impl Into<String>) -> Self {
        Operation {
            summary: summary.into(),
            description: None,
            parameters: Vec::new(),
            body: None,
            responses: Vec::new(),
            bearer: None,
        }
    }

    /// A longer description (CommonMark).
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }

    /// The path parameter `{name}`, with an example value.
    pub fn path_param<T: JsonSchema>(
        mut self,
        name: &str,
        description: impl Into<String>,
        example: impl Into<String>,
    ) -> Self {
        self.parameters.push(Parameter {
            name: name.into(),
            location: "path",
            description: description.into(),
            required: true,
            example: Some(example.into()),
            schema: schema_of::<T>(),
        });
        self
    }

    /// A request header the operation reads.
    pub fn header<T: JsonSchema>(
        mut self,
        name: &str,
        description: impl Into<String>,
        required: bool,
    ) -> Self {
        self.parameters.push(Parameter {
            name: name.into(),
            location: "header",
            description: description.into(),
            required,
            example: None,
            schema: schema_of::<T>(),
        });
        self
    }

    /// A JSON request body of type `T`.
    pub fn json_body<T: JsonSchema>(mut self, description: impl Into<String>) -> Self {
        self.body = Some((Content::Json(schema_of::<T>()), description.into()));
        self
    }

    /// A request body of raw bytes.
    pub fn binary_body(mut self, media: &'static str, description: impl Into<String>) -> Self {
        self.body = Some((Content::Binary(media), description.into()));
        self
    }

    /// Callers present `Authorization: Bearer <token>`; `required: false` when the server
    /// may be configured without one.
    pub fn bearer(mut self, required: bool) -> Self {
        self.bearer = Some(required);
        self
    }

    fn respond(mut self, status: u16, description: String, content: Content) -> Self {
        self.responses.push(Response {
            status,
            description,
            content,
            headers: Vec::new(),
        });
        self
    }

    /// A JSON response of type `T`.
    pub fn json<T: JsonSchema>(self, status: u16, description: impl Into<String>) -> Self {
        self.respond(status, description.into(), Content::Json(schema_of::<T>()))
    }

    /// Several JSON responses of one type, as the error statuses of an API.
    pub fn errors<T: JsonSchema>(mut self, statuses: &[(u16, &str)]) -> Self {
        for (status, description) in statuses {
            self = self.json::<T>(*status, *description);
        }
        self
    }

    /// A response of raw bytes.
    pub fn binary(self, status: u16, media: &'static str, description: impl Into<String>) -> Self {
        self.respond(status, description.into(), Content::Binary(media))
    }

    /// A response without a body.
    pub fn empty(self, status: u16, description: impl Into<String>) -> Self {
        self.respond(status, description.into(), Content::Empty)
    }

    /// A stream of server-sent events carrying JSON of type `T`.
    pub fn events<T: JsonSchema>(self, status: u16, description: impl Into<String>) -> Self {
        self.respond(
            status,
            description.into(),
            Content::EventStream(schema_of::<T>()),
        )
    }

    /// A header on the last response added.
    pub fn response_header(mut self, name: &str, description: impl Into<String>) -> Self {
        if let Some(last) = self.responses.last_mut() {
            last.headers.push((name.into(), description.into()));
        }
        self
    }

    fn render(&self, method: Method, path: &str, generator: &mut SchemaGenerator) -> Value {
        let mut operation = Map::new();
        // The method and the path's words, as in `get_v1_models`.
        operation.insert("operationId".into(), default_id(method, path).into());
        operation.insert("summary".into(), self.summary.clone().into());
        if let Some(text) = &self.description {
            operation.insert("description".into(), text.clone().into());
        }
        if !self.parameters.is_empty() {
            let parameters: Vec<Value> = self
                .parameters
                .iter()
                .map(|p| {
                    let mut parameter = json!({
                        "name": p.name,
                        "in": p.location,
                        "description": p.description,
                        "required": p.required,
                        "schema": schema_value(generator, p.schema),
                    });
                    if let Some(example) = &p.example {
                        parameter["example"] = example_value(example);
                    }
                    parameter
                })
                .collect();
            operation.insert("parameters".into(), parameters.into());
        }
        if let Some((content, description)) = &self.body {
            let mut body = json!({ "description": description, "required": true });
            if let Some(content) = content.render(generator) {
                body["content"] = content;
            }
            operation.insert("requestBody".into(), body);
        }
        let mut responses = Map::new();
        for response in &self.responses {
            let mut rendered = json!({ "description": response.description });
            if let Some(content) = response.content.render(generator) {
                rendered["content"] = content;
            }
            if !response.headers.is_empty() {
                let headers: Map<String, Value> = response
                    .headers
                    .iter()
                    .map(|(name, description)| {
                        (
                            name.clone(),
                            json!({ "description": description, "schema": { "type": "string" } }),
                        )
                    })
                    .collect();
                rendered["headers"] = headers.into();
            }
            // A second response of a status adds its content (another media type) to the first.
            match responses.get_mut(&response.status.to_string()) {
                Some(first) => {
                    if let (Some(Value::Object(content)), Some(Value::Object(more))) =
                        (first.get_mut("content"), rendered.get("content"))
                    {
                        content.extend(more.clone());
                    }
                    let joined = format!(
                        "{}; {}",
                        first["description"].as_str().unwrap_or_default(),
                        response.description
                    );
                    first["description"] = joined.into();
                }
                None => {
                    responses.insert(response.status.to_string(), rendered);
                }
            }
        }
        operation.insert("responses".into(), responses.into());
        match self.bearer {
            Some(true) => {
                operation.insert("security".into(), json!([{ "bearer": [] }]));
            }
            // An empty requirement beside the scheme: the token is optional.
            Some(false) => {
                operation.insert("security".into(), json!([{ "bearer": [] }, {}]));
            }
            None => {}
        }
        operation.into()
    }
}

/// An example as JSON: a number when it reads as one, a string otherwise.
fn example_value(example: &str) -> Value {
    example
        .parse::<u64>()
        .map(Value::from)
        .unwrap_or_else(|_| example.into())
}

/// `get_v1_requests_request_id` for `GET /v1/requests/{request_id}`.
fn default_id(method: Method, path: &str) -> String {
    let words: Vec<&str> = path
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty())
        .collect();
    let mut id = method.key().to_string();
    for word in words {
        id.push('_');
        id.push_str(word);
    }
    id
}

/// The `{name}` parameters of a path template.
pub fn path_parameters(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

/// An axum router whose routes carry their documentation. See the crate's documentation.
pub struct ApiRouter<S = ()> {
    router: Router<S>,
    info: Value,
    paths: BTreeMap<String, Map<String, Value>>,
    generator: SchemaGenerator,
    bearer: bool,
}

impl<S> ApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    /// An empty API with its title, version and description (CommonMark).
    pub fn new(title: &str, version: &str, description: &str) -> Self {
        ApiRouter {
            router: Router::new(),
            info: json!({ "title": title, "version": version, "description": description }),
            paths: BTreeMap::new(),
            generator: SchemaSettings::openapi3().into_generator(),
            bearer: false,
        }
    }

    /// Serves `handler` for `method` on `path` and documents it as `operation`.
    ///
    /// # Panics
    /// When the path's `{name}` parameters and the operation's path parameters differ, or the
    /// method is already documented for the path: both are mistakes in the code that builds
    /// the router, found by any test that builds it.
    pub fn route<H, T>(
        mut self,
        method: Method,
        path: &str,
        operation: Operation,
        handler: H,
    ) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        let mut declared: Vec<&str> = operation
            .parameters
            .iter()
            .filter(|p| p.location == "path")
            .map(|p| p.name.as_str())
            .collect();
        let mut templated = path_parameters(path);
        declared.sort_unstable();
        templated.sort_unstable();
        assert_eq!(
            declared,
            templated,
            "{} {path}: the path's parameters and the documented ones differ",
            method.key()
        );
        if operation.bearer.is_some() {
            self.bearer = true;
        }
        let rendered = operation.render(method, path, &mut self.generator);
        let item = self.paths.entry(path.to_string()).or_default();
        assert!(
            item.insert(method.key().into(), rendered).is_none(),
            "{} {path} is documented twice",
            method.key()
        );
        self.router = self.router.route(path, on(method.filter(), handler));
        self
    }

    /// [`ApiRouter::route`] for `GET`.
    pub fn get<H, T>(self, path: &str, operation: Operation, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.route(Method::Get, path, operation, handler)
    }

    /// [`ApiRouter::route`] for `HEAD`.
    pub fn head<H, T>(self, path: &str, operation: Operation, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.route(Method::Head, path, operation, handler)
    }

    /// [`ApiRouter::route`] for `POST`.
    pub fn post<H, T>(self, path: &str, operation: Operation, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.route(Method::Post, path, operation, handler)
    }

    /// [`ApiRouter::route`] for `PUT`.
    pub fn put<H, T>(self, path: &str, operation: Operation, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.route(Method::Put, path, operation, handler)
    }

    /// Applies `f` to the router built so far, for what changes no route: a route layer over
    /// the routes added until now, above all.
    pub fn map_router(mut self, f: impl FnOnce(Router<S>) -> Router<S>) -> Self {
        self.router = f(self.router);
        self
    }

    /// The router and the document of its routes, apart: to merge with another API's before
    /// the document is served (APIs over different states, for one).
    pub fn split(mut self) -> (Router<S>, ApiDocument) {
        let definitions = self.generator.take_definitions();
        let schemas = definitions
            .into_iter()
            .map(|(name, schema)| {
                let schema = finished(&mut self.generator, schema);
                (name, schema)
            })
            .collect();
        let document = ApiDocument {
            info: self.info,
            paths: self.paths,
            schemas,
            bearer: self.bearer,
        };
        (self.router, document)
    }

    /// The document alone, with `GET /openapi.json` in it.
    pub fn document(self) -> Value {
        self.split().1.into_value()
    }

    /// The router, serving the document at `GET /openapi.json`, and the document.
    pub fn finish(self) -> (Router<S>, Value) {
        let (router, document) = self.split();
        document.serve(router)
    }
}

/// The document of an [`ApiRouter`]'s routes, from [`ApiRouter::split`].
pub struct ApiDocument {
    info: Value,
    paths: BTreeMap<String, Map<String, Value>>,
    schemas: Map<String, Value>,
    bearer: bool,
}

impl ApiDocument {
    /// Adds `other`'s operations and schemas (its title and description are dropped).
    ///
    /// # Panics
    /// When both document one method of one path.
    pub fn merge(&mut self, other: ApiDocument) {
        for (path, item) in other.paths {
            let mine = self.paths.entry(path.clone()).or_default();
            for (method, operation) in item {
                assert!(
                    mine.insert(method.clone(), operation).is_none(),
                    "{method} {path} is documented twice"
                );
            }
        }
        self.schemas.extend(other.schemas);
        self.bearer |= other.bearer;
    }

    /// The OpenAPI document, `GET /openapi.json` included.
    pub fn into_value(mut self) -> Value {
        let operation = json!({
            "operationId": "get_openapi_document",
            "summary": "This document",
            "description": format!(
                "The OpenAPI {OPENAPI_VERSION} document of this API, generated from the code that serves it."
            ),
            "responses": {
                "200": {
                    "description": "The document",
                    "content": { "application/json": { "schema": { "type": "object" } } },
                },
            },
        });
        self.paths
            .entry(DOCUMENT_PATH.to_string())
            .or_default()
            .insert(Method::Get.key().into(), operation);
        let mut components = json!({ "schemas": self.schemas });
        if self.bearer {
            components["securitySchemes"] = json!({
                "bearer": { "type": "http", "scheme": "bearer" }
            });
        }
        let paths: Map<String, Value> = self
            .paths
            .into_iter()
            .map(|(path, item)| (path, Value::Object(item)))
            .collect();
        json!({
            "openapi": OPENAPI_VERSION,
            "info": self.info,
            "paths": paths,
            "components": components,
        })
    }

    /// `router` serving the document at `GET /openapi.json`, and the document.
    pub fn serve<S>(self, router: Router<S>) -> (Router<S>, Value)
    where
        S: Clone + Send + Sync + 'static,
    {
        let document = self.into_value();
        let served = Arc::new(document.clone());
        let router = router.route(
            DOCUMENT_PATH,
            on(MethodFilter::GET, move || {
                let served = served.clone();
                async move { Json(served.as_ref().clone()) }
            }),
        );
        (router, document)
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::extract::Path;
    use axum::http::{Request, StatusCode};
    use serde::Serialize;
    use tower::ServiceExt;

    use super::*;

    #[derive(Serialize, JsonSchema)]
    struct Thing {
        id: u64,
        /// What it is called.
        name: Option<String>,
    }

    async fn thing(Path(id): Path<u64>) -> Json<Thing> {
        Json(Thing { id, name: None })
    }

    async fn put_thing() -> StatusCode {
        StatusCode::CREATED
    }

    fn api() -> ApiRouter<()> {
        ApiRouter::new("Things", "0.1.0", "Things by id.")
            .get(
                "/things/{id}",
                Operation::new("Read a thing")
                    .path_param::<u64>("id", "The thing's id", "7")
                    .json::<Thing>(200, "The thing")
                    .bearer(false),
                thing,
            )
            .put(
                "/things/{id}",
                Operation::new("Write a thing")
                    .path_param::<u64>("id", "The thing's id", "7")
                    .binary_body("application/octet-stream", "The thing's bytes")
                    .empty(201, "Written"),
                put_thing,
            )
    }

    #[test]
    fn the_document_describes_each_method_with_schemas_from_the_types() {
        let document = api().document();
        assert_eq!(document["openapi"], OPENAPI_VERSION);
        let item = &document["paths"]["/things/{id}"];
        assert_eq!(item["get"]["operationId"], "get_things_id");
        assert_eq!(item["put"]["operationId"], "put_things_id");
        assert_eq!(item["get"]["parameters"][0]["in"], "path");
        assert_eq!(item["get"]["parameters"][0]["example"], 7);
        assert_eq!(
            item["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Thing"
        );
        assert_eq!(item["get"]["security"], json!([{ "bearer": [] }, {}]));
        assert!(item["put"].get("security").is_none());
        assert!(item["put"]["responses"]["201"].get("content").is_none());
        let thing = &document["components"]["schemas"]["Thing"];
        assert_eq!(thing["required"], json!(["id"]));
        // OpenAPI 3.0's dialect: an option is nullable, not a type list.
        assert_eq!(thing["properties"]["name"]["nullable"], true);
        assert_eq!(
            thing["properties"]["name"]["description"],
            "What it is called."
        );
        assert_eq!(
            document["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
    }

    #[tokio::test]
    async fn the_router_serves_every_documented_method_and_the_document() {
        let (router, document) = api().finish();
        let unrouted = testing::unrouted_operations(router.clone(), &document).await;
        assert!(unrouted.is_empty(), "{unrouted:?}");
        let response = router
            .oneshot(Request::get(DOCUMENT_PATH).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let served: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(served, document);
    }

    #[tokio::test]
    async fn an_operation_documented_but_not_served_is_found() {
        let (router, mut document) = api().finish();
        document["paths"]["/things/{id}"]["delete"] = json!({ "responses": {} });
        document["paths"]["/gone"] = json!({ "get": { "responses": {} } });
        let mut unrouted = testing::unrouted_operations(router, &document).await;
        unrouted.sort();
        assert_eq!(unrouted, ["DELETE /things/{id}", "GET /gone"]);
    }

    #[test]
    #[should_panic(expected = "the path's parameters and the documented ones differ")]
    fn a_path_parameter_left_undocumented_is_refused() {
        let _ = ApiRouter::<()>::new("x", "0", "x").get(
            "/things/{id}",
            Operation::new("Read").json::<Thing>(200, "The thing"),
            thing,
        );
    }
}
