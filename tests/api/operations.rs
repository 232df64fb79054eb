use crate::helpers::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn liveness_and_readiness_answer_200() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(app.get("/readyz").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_connections_events_and_errors() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut alice = app.connect().await;
    alice.join(&room_id, "alice").await;
    alice.send_text("nope").await;
    alice.next_error("INVALID_JSON").await;
    app.get("/api/rooms/nope").await;

    let response = app.get("/metrics").await;

    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    for line in [
        "chat_connections 1",
        "chat_rooms_active 1",
        "chat_frames_in_total{type=\"ENTER\"} 1",
        "chat_events_stored_total{type=\"ENTER\"} 1",
        "chat_events_out_total 1",
        "chat_errors_total{transport=\"ws\",code=\"INVALID_JSON\"} 1",
        "chat_errors_total{transport=\"http\",code=\"INVALID_REQUEST\"} 1",
        "chat_fanout_seconds_count 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
}
