//! The web page as HTTP serves it; tests/browser drives it in a real browser.

use crate::helpers::{assert_problem, spawn_app};

/// Every data-testid the contract names, which outside browser tests rely on.
const TEST_IDS: [&str; 16] = [
    "room-name-input",
    "create-room-button",
    "room-list",
    "nickname-input",
    "enter-button",
    "message-input",
    "send-button",
    "message-log",
    "leave-button",
    "connection-status",
    "notice",
    "outbox",
    "identity-panel",
    "identity-status",
    "token-input",
    "token-button",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_at_root_carries_every_test_id_of_the_contract() {
    let app = spawn_app().await;

    let response = app.get("/").await;

    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    let html = response.text().await.unwrap();
    for id in TEST_IDS {
        assert!(
            html.contains(&format!("data-testid=\"{id}\"")),
            "missing data-testid {id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_assets_are_served_from_the_binary_under_a_strict_policy() {
    let app = spawn_app().await;

    for (path, content_type) in [
        ("/", "text/html; charset=utf-8"),
        ("/assets/app.js", "text/javascript; charset=utf-8"),
        ("/assets/api.js", "text/javascript; charset=utf-8"),
        ("/assets/identity.js", "text/javascript; charset=utf-8"),
        ("/assets/connection.js", "text/javascript; charset=utf-8"),
        ("/assets/app.css", "text/css; charset=utf-8"),
        ("/assets/favicon.svg", "image/svg+xml"),
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers();
        assert_eq!(headers["content-type"], content_type, "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(policy.contains("script-src 'self'"), "{path}: {policy}");
        assert!(!policy.contains("unsafe-inline"), "{path}: {policy}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_module_the_page_imports_is_served_as_javascript() {
    let app = spawn_app().await;

    let mut pending = vec!["app.js".to_owned()];
    let mut served = std::collections::BTreeSet::new();
    while let Some(module) = pending.pop() {
        if !served.insert(module.clone()) {
            continue;
        }
        let response = app.get(&format!("/assets/{module}")).await;
        assert_eq!(response.status(), 200, "{module}");
        assert_eq!(
            response.headers()["content-type"],
            "text/javascript; charset=utf-8",
            "{module}"
        );
        let source = response.text().await.unwrap();
        for import in source.split(" from \"./").skip(1) {
            let end = import.find('"').expect("an import ends with a quote");
            pending.push(import[..end].to_owned());
        }
    }
    assert!(
        served.len() > 10,
        "the page is split into its modules: {served:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_loads_nothing_from_another_origin() {
    let app = spawn_app().await;

    let html = app.get("/").await.text().await.unwrap();

    for attribute in ["src=\"", "href=\""] {
        for link in html.split(attribute).skip(1) {
            assert!(
                link.starts_with('/') || link.starts_with('#'),
                "the page links outside its origin: {attribute}{}",
                &link[..link.find('"').unwrap_or(link.len())]
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_asset_is_not_found() {
    let app = spawn_app().await;

    let response = app.get("/assets/secret.txt").await;

    assert_problem(response, 404, "NOT_FOUND").await;
}
