//! The OpenAPI document at `/api/openapi.json`: it is OpenAPI 3.1, served without a
//! token, and names exactly the routes the server mounts (`routes::routes()`, the table
//! `routes::configure` mounts from), each of which answers rather than falling through.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::Value;

use mdt_coordinator::routes::routes;

use crate::common::{Backend, TestApp};

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "patch", "options", "head", "trace"];

async fn document(app: &TestApp) -> Value {
    let res = app.http.get(app.url("/api/openapi.json")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "served without a token");
    res.json().await.unwrap()
}

/// `(METHOD, /path/{param})` of every operation the document names.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let paths = doc["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(|m| (m.to_uppercase(), path.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn mounted() -> BTreeSet<(String, String)> {
    routes().iter().map(|r| (r.method.to_string(), r.path.to_string())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_openapi_3_1_and_names_every_mounted_route() {
    let app = TestApp::spawn(Backend::Sqlite).await.expect("SQLite app");
    let doc = document(&app).await;
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "{}", doc["openapi"]);

    let table = routes();
    assert_eq!(mounted().len(), table.len(), "a route is mounted twice");
    let (documented, mounted) = (documented(&doc), mounted());
    let undocumented: Vec<_> = mounted.difference(&documented).collect();
    let not_mounted: Vec<_> = documented.difference(&mounted).collect();
    assert!(undocumented.is_empty(), "mounted but not in /api/openapi.json: {undocumented:?}");
    assert!(not_mounted.is_empty(), "in /api/openapi.json but not mounted: {not_mounted:?}");

    // Every operation but the public ones needs the bearer token, and every error it
    // documents carries the one error body.
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    for (method, path) in &documented {
        let op = &doc["paths"][path][method.to_lowercase()];
        let responses = op["responses"].as_object().expect("responses");
        assert!(responses.keys().any(|s| s.starts_with('2') || s == "101"), "{method} {path}");
        for (status, response) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                assert!(
                    response["$ref"].as_str().is_some_and(|r| r.starts_with("#/components/")),
                    "{method} {path} {status} has the error body"
                );
            }
        }
        for param in path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')) {
            let declared = op["parameters"].as_array().is_some_and(|ps| {
                ps.iter().any(|p| p["name"] == param && p["in"] == "path" && p["required"] == true)
            });
            assert!(declared, "{method} {path} declares its path parameter {param}");
        }
    }
}

/// Each route of the table answers at its own method and path (with placeholder ids and
/// no token): never `405`, and never the API's catch-all `404` for an unknown path, so
/// no route is shadowed by another one mounted before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_in_the_table_is_reachable() {
    let app = TestApp::spawn(Backend::Sqlite).await.expect("SQLite app");
    for route in routes() {
        if route.path == "/api/sessions/{id}/live" {
            continue; // a WebSocket upgrade; tests/meeting covers it
        }
        let path: String = route
            .path
            .split('/')
            .map(|s| match s.strip_prefix('{') {
                Some(p) if p.starts_with("id") || p.ends_with("_id}") => {
                    "00000000-0000-4000-8000-000000000000"
                }
                Some(_) => "x1",
                None => s,
            })
            .collect::<Vec<_>>()
            .join("/");
        let method = reqwest::Method::from_bytes(route.method.as_str().as_bytes()).unwrap();
        let res = app.http.request(method, app.url(&path)).send().await.unwrap();
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{} {path}", route.method);
        assert!(
            !(status == StatusCode::NOT_FOUND && body["message"] == "no such resource"),
            "{} {path} fell through to the catch-all 404",
            route.method
        );
    }
}
