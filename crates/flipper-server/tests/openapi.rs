//! `openapi.json` cannot drift from the router: every route the router registers is in the
//! document and every documented operation is a route (both read from `src/api/mod.rs` and
//! probed on the live router), each with the auth the document says.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{ADMIN, SDK, app, call};
use flipper::store::MemoryStore;
use serde_json::Value;
use tower::ServiceExt;

const DOCUMENT: &str = include_str!("../openapi.json");
const ROUTER_SOURCE: &str = include_str!("../src/api/mod.rs");
const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn document() -> Value {
    serde_json::from_str(DOCUMENT).expect("openapi.json is JSON")
}

/// `(path, method)` of every documented operation.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            if METHODS.contains(&method.as_str()) {
                ops.insert((path.clone(), method.clone()));
            } else {
                assert!(
                    ["parameters", "summary", "description"].contains(&method.as_str()),
                    "{path}: unexpected member {method}"
                );
            }
        }
    }
    ops
}

/// `(path, method)` of every `.route("PATH", get(..).post(..))` in the router's source.
fn registered() -> BTreeSet<(String, String)> {
    for unsupported in [".nest(", ".merge(", ".route_service(", ".nest_service("] {
        assert!(
            !ROUTER_SOURCE.contains(unsupported),
            "the router uses {unsupported}: teach this test to read it"
        );
    }
    let mut routes = BTreeSet::new();
    for chunk in ROUTER_SOURCE.split(".route(").skip(1) {
        let chunk = chunk.trim_start();
        let rest = chunk.strip_prefix('"').expect("a route path literal");
        let (path, rest) = rest.split_once('"').expect("the end of the path literal");
        // The method router: everything up to the parenthesis that closes `.route(`.
        let mut depth = 1usize;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map_or(rest.len(), |(i, _)| i);
        let methods = &rest[..end];
        let mut found = false;
        for method in METHODS {
            let call = format!("{method}(");
            let mut from = 0;
            while let Some(at) = methods[from..].find(&call) {
                let start = from + at;
                let before = methods[..start].chars().next_back();
                if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                    routes.insert((path.to_owned(), method.to_owned()));
                    found = true;
                }
                from = start + call.len();
            }
        }
        assert!(found, "no method found for the route {path}");
    }
    routes
}

/// The status of one request, without reading the body (the stream never ends).
async fn status(app: &Router, method: &str, uri: &str, token: Option<&str>) -> StatusCode {
    let mut request = Request::builder()
        .method(method.to_uppercase().as_str())
        .uri(uri);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    response.status()
}

fn concrete(path: &str) -> String {
    path.replace("{name}", "probe").replace("{key}", "probe")
}

#[test]
fn the_file_is_openapi_3() {
    let doc = document();
    let version = doc["openapi"].as_str().expect("an openapi member");
    assert!(version.starts_with("3."), "{version}");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    // Every reference resolves.
    let mut stack = vec![&doc];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(o) => {
                if let Some(Value::String(r)) = o.get("$ref") {
                    let pointer = r.strip_prefix('#').expect("a local reference");
                    assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
                }
                stack.extend(o.values());
            }
            Value::Array(a) => stack.extend(a),
            _ => {}
        }
    }
    let schemes = &doc["components"]["securitySchemes"];
    for scheme in ["adminToken", "sdkToken"] {
        assert_eq!(schemes[scheme]["scheme"], "bearer", "{scheme}");
    }
}

#[test]
fn every_route_is_documented_and_every_operation_is_a_route() {
    let doc = documented(&document());
    let router = registered();
    for known in [
        ("/healthz", "get"),
        ("/api/v1/flags/{name}", "delete"),
        ("/metrics", "get"),
    ] {
        assert!(
            router.contains(&(known.0.to_owned(), known.1.to_owned())),
            "the source reader missed {known:?}"
        );
    }
    let missing: Vec<_> = router.difference(&doc).collect();
    let extra: Vec<_> = doc.difference(&router).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "routes not in openapi.json: {missing:?}; documented operations that are no route: {extra:?}"
    );
}

#[tokio::test]
async fn the_router_answers_as_documented() {
    let (app, _state) = app(Arc::new(MemoryStore::new())).await;
    let doc = document();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let uri = concrete(path);
        for method in METHODS {
            let got = status(&app, method, &uri, Some(ADMIN)).await;
            let Some(op) = item.get(method) else {
                assert_eq!(got, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
                continue;
            };
            assert_ne!(got, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            let responses = op["responses"].as_object().expect("responses");
            assert!(
                responses.contains_key(got.as_str()),
                "{method} {path} answered {got}, which is not documented"
            );
            // The security the document states is the one the route enforces.
            let security = op
                .get("security")
                .or_else(|| doc.get("security"))
                .and_then(Value::as_array)
                .expect("security");
            let schemes: BTreeSet<&str> = security
                .iter()
                .flat_map(|s| s.as_object().unwrap().keys().map(String::as_str))
                .collect();
            let anonymous = status(&app, method, &uri, None).await;
            let sdk = status(&app, method, &uri, Some(SDK)).await;
            if schemes.is_empty() {
                assert_ne!(anonymous, StatusCode::UNAUTHORIZED, "{method} {path}");
                continue;
            }
            assert_eq!(anonymous, StatusCode::UNAUTHORIZED, "{method} {path}");
            for code in ["401", "403"] {
                assert!(responses.contains_key(code), "{method} {path}: no {code}");
            }
            if schemes.contains("sdkToken") {
                assert_ne!(sdk, StatusCode::FORBIDDEN, "{method} {path}");
            } else {
                assert_eq!(schemes, BTreeSet::from(["adminToken"]), "{method} {path}");
                assert_eq!(sdk, StatusCode::FORBIDDEN, "{method} {path}");
            }
        }
    }
}

#[tokio::test]
async fn the_document_is_served_without_a_token() {
    let (app, _state) = app(Arc::new(MemoryStore::new())).await;
    let r = call(&app, "GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, DOCUMENT);
}
