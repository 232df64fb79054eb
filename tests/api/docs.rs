use crate::helpers::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_openapi_document_equals_the_committed_file() {
    let app = spawn_app().await;
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .expect("openapi/openapi.json is committed");

    let response = app.get("/api-docs/openapi.json").await;

    assert_eq!(response.status(), 200);
    let served = response.text().await.unwrap();
    assert!(
        served == committed,
        "openapi/openapi.json is stale: regenerate it with `cargo run -- openapi > openapi/openapi.json`"
    );
    let document: serde_json::Value = serde_json::from_str(&served).unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/api/rooms",
        "/api/rooms/{roomId}",
        "/api/rooms/{roomId}/messages",
        "/ws/chat",
    ] {
        assert!(document["paths"][path].is_object(), "{path} is documented");
    }
    let description = document["info"]["description"].as_str().unwrap();
    for rule in ["lastSeq", "SENDER_MISMATCH", "1013", "CLOSED"] {
        assert!(
            description.contains(rule),
            "the WebSocket protocol is described ({rule})"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swagger_ui_is_served_with_its_own_assets() {
    let app = spawn_app().await;

    let page = app.get("/swagger-ui").await;
    assert_eq!(page.status(), 200, "/swagger-ui redirects to /swagger-ui/");
    assert_eq!(page.url().path(), "/swagger-ui/");
    let html = page.text().await.unwrap();
    assert!(!html.contains("://"), "no external assets: {html}");

    for asset in [
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "swagger-initializer.js",
    ] {
        let response = app.get(&format!("/swagger-ui/{asset}")).await;
        assert_eq!(response.status(), 200, "{asset}");
    }
    let initializer = app
        .get("/swagger-ui/swagger-initializer.js")
        .await
        .text()
        .await
        .unwrap();
    assert!(initializer.contains("/api-docs/openapi.json"));
}
